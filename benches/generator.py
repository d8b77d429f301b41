#!/usr/bin/env python3
"""A benchmark of the benchmarker: what the load generator itself costs.

Runs the release binary against the built-in simulated server on loopback, the server pinned to
one core and the generator to the other (taskset), and prints per-unit costs:

  - client CPU microseconds per streamed token and per request (user + system time of the
    generator process, from wait4's rusage, divided by the tokens/requests it streamed),
  - tokens/s and requests/s the run sustained,
  - the generator's peak RSS.

Scenarios (each a closed-loop throughput step, warmup excluded from the JSON but not from CPU):
  itl10       256 users, 100 tokens per request, server TTFT 10 ms and ITL 10 ms
  ceiling     256 users, 100 tokens per request, server with zero latency (as fast as it can)
  llama3      as itl10, with a Llama-3 tokenizer.json (--tokenizer PATH) and a 10,000-conversation
              ShareGPT-shaped dataset loaded (multi-turn: the users walk its conversations): RSS
              while requests run and peak RSS
  startup     the same tokenizer and dataset, the generator on both cores (not pinned): startup,
              process start to the first request, loading and tokenizing the dataset included
  streams10k  10,000 users, 50 tokens, ITL 250 ms: 10,000 concurrent streams, peak RSS

Each row is checked against the targets of the generator (issue "load fidelity"): ≤ 6 µs of client
CPU per token at itl10, ≤ 3.5 µs at the ceiling, ≤ 128 MB RSS with the Llama-3 tokenizer and a
dataset (while requests run; the peak while the dataset is tokenized is printed beside it),
≤ 512 MB at 10,000 streams, startup < 3 s.

Usage: benches/generator.py [--duration 20] [--scenarios itl10,ceiling,llama3,startup,streams10k]
       [--tokenizer llama3-tokenizer.json] [--quick]
(build first: cargo build --release). --quick runs the itl10 scenario for 5 s: the short CI guard
against gross regressions (`--max-us-per-token`).
"""
import argparse
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from common import BIN, cpu_seconds, free_port, pinned, rss_kb

# A Llama-3-sized tokenizer.json for the llama3 and startup scenarios (--tokenizer); the project
# ships none (third-party vocabulary), so without it those scenarios say so and are not run.
LLAMA3 = None


def wait_healthy(port, deadline=10.0):
    end = time.time() + deadline
    while time.time() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"simulated server on port {port} did not start")


WORDS = ("the of and to in is was for that on as with by at from his her an were are which this "
         "be or has had first one their its new after who they have two been more also into "
         "other time over most some years only than about any when people can out up such "
         "model server token request answer question system memory river mountain city").split()


def sharegpt_like(path, n, seed=42):
    """A ShareGPT-shaped file of n conversations, 1-4 user turns of 20-300 words with answers."""
    import random
    rng = random.Random(seed)
    def text():
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 300))).capitalize() + "."
    with open(path, "w") as f:
        json.dump([{"id": i, "conversations": [
            m for _ in range(rng.randint(1, 4))
            for m in ({"from": "human", "value": text()}, {"from": "gpt", "value": text()})]}
            for i in range(n)], f)


def run(name, sim_args, users, tokens, duration, extra=(), pin=True):
    port = free_port()
    sim = subprocess.Popen(
        pinned(1, [BIN, "sim", "--port", str(port), "--slots", "100000"] + sim_args),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_healthy(port)
        out = tempfile.mkdtemp(prefix="ib-bench-")
        decode = f"num_tokens={tokens},min_tokens={tokens},max_tokens={tokens},variance=0"
        argv = [
            BIN, "-u", f"http://127.0.0.1:{port}", "-b", "throughput", "-m", str(users),
            "-d", f"{duration}s", "-w", "2s", "--workers", "1", "-n",
            "--prompt-options", "num_tokens=50,min_tokens=50,max_tokens=50,variance=0",
            "--decode-options", decode, "--output-dir", out, *extra,
        ]
        if "--dataset-file" not in extra:
            argv += ["--dataset", "synthetic"]  # else the original tool's hub dataset
        if pin:
            argv = pinned(0, argv)
        started = time.time()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        samples = []  # (seconds since start, RSS MB) every 0.2 s: the run's RSS apart from startup
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            try:
                samples.append((time.time() - started, rss_kb(proc.pid) / 1024))
            except OSError:
                pass
            time.sleep(0.2)
        wall = time.time() - started
        # The simulated server streamed the same tokens on the other core: its CPU per token is
        # this machine's own yardstick, taken in the same run (see --max-cpu-ratio).
        server_cpu = cpu_seconds(sim.pid)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"{name}: the generator failed: {proc.stderr.read().decode()[-2000:]}")
        doc = json.load(open(next(os.path.join(out, f) for f in os.listdir(out) if f.endswith(".json"))))
        startup = rfc3339_seconds(doc["start_time"]) - started
        step = doc["results"][0]
        warm = doc["warmup"]["requests"]
        requests = step["total_requests"] + warm
        streamed = step["total_tokens"] + warm * tokens
        cpu = usage.ru_utime + usage.ru_stime
        return {
            "scenario": name,
            "users": users,
            "wall_s": round(wall, 2),
            "requests": requests,
            "tokens": streamed,
            "tokens_per_s": round(step["token_throughput_secs"], 1),
            "requests_per_s": round(step["request_rate"], 1),
            "client_cpu_s": round(cpu, 3),
            "cpu_us_per_token": round(cpu * 1e6 / max(streamed, 1), 3),
            "cpu_us_per_request": round(cpu * 1e6 / max(requests, 1), 1),
            "server_cpu_us_per_token": round(server_cpu * 1e6 / max(streamed, 1), 3),
            "client_to_server_cpu": round(cpu / max(server_cpu, 1e-9), 2),
            "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
            "failed": step["failed_requests"],
            "ttft_p50_ms": step["time_to_first_token_ms"]["p50"],
            # Process start to the run's anchor (taken just before the first request).
            "startup_s": round(startup, 2),
            # Resident memory while requests run (the peak above includes preparing the workload).
            "run_rss_mb": round(max((m for t, m in samples if t > startup), default=0.0), 1),
        }
    finally:
        sim.terminate()
        sim.wait(timeout=10)


def rfc3339_seconds(text):
    from datetime import datetime
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


# Targets: (scenario, figure, limit).
TARGETS = [
    ("itl10", "cpu_us_per_token", 6.0),
    ("ceiling", "cpu_us_per_token", 3.5),
    ("llama3", "run_rss_mb", 128.0),
    ("startup", "startup_s", 3.0),
    ("streams10k", "peak_rss_mb", 512.0),
    ("streams10k", "run_rss_mb", 512.0),
]


def scenario(name, duration, tmp):
    if name == "itl10":
        return run(name, ["--fixed-ttft-ms", "10", "--fixed-itl-ms", "10"], 256, 100, duration)
    if name == "ceiling":
        return run(name, ["--fixed-ttft-ms", "0", "--fixed-itl-ms", "0"], 256, 100, duration)
    if name == "llama3":
        if not LLAMA3:
            print("NOT RUN llama3: give a Llama-3 tokenizer.json with --tokenizer PATH", file=sys.stderr)
            return None
        data = os.path.join(tmp, "sharegpt.json")
        sharegpt_like(data, 10_000)
        # The dataset's prompts as they are; 100 output tokens as the other scenarios.
        return run(name, ["--fixed-ttft-ms", "10", "--fixed-itl-ms", "10"], 256, 100, duration,
                   ["--tokenizer-name", LLAMA3, "--dataset-file", data])
    if name == "startup":
        # Process start to the first request with the llama3 scenario's tokenizer and dataset,
        # on both cores (tokenizing is parallel; the server idles meanwhile).
        if not LLAMA3:
            print("NOT RUN startup: give a Llama-3 tokenizer.json with --tokenizer PATH", file=sys.stderr)
            return None
        data = os.path.join(tmp, "sharegpt.json")
        if not os.path.exists(data):
            sharegpt_like(data, 10_000)
        return run(name, ["--fixed-ttft-ms", "10", "--fixed-itl-ms", "10"], 16, 100, 2,
                   ["--tokenizer-name", LLAMA3, "--dataset-file", data], pin=False)
    if name == "streams10k":
        # 10,000 users each holding a 12.5 s stream open: all of them in flight at once.
        return run(name, ["--fixed-ttft-ms", "10", "--fixed-itl-ms", "250"], 10_000, 50,
                   max(duration, 20))
    raise SystemExit(f"unknown scenario {name}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=20)
    ap.add_argument("--quick", action="store_true", help="the itl10 scenario for 5 s (CI)")
    ap.add_argument("--scenarios", default="itl10,ceiling,llama3,startup,streams10k")
    ap.add_argument("--max-us-per-token", type=float, default=None,
                    help="exit 1 if the itl10 scenario costs more client CPU per token")
    ap.add_argument("--max-cpu-ratio", type=float, default=None,
                    help="exit 1 if the itl10 scenario's client CPU is more than this many times "
                         "the simulated server's for the same tokens (machine-independent guard)")
    ap.add_argument("--tokenizer", default=None,
                    help="a Llama-3 tokenizer.json for the llama3 and startup scenarios")
    args = ap.parse_args()
    global LLAMA3
    if args.tokenizer:
        if not os.path.isfile(args.tokenizer):
            raise SystemExit(f"--tokenizer {args.tokenizer}: no such file")
        LLAMA3 = os.path.abspath(args.tokenizer)
    if not os.path.exists(BIN):
        raise SystemExit("build first: cargo build --release")
    duration = 5 if args.quick else args.duration
    names = ["itl10"] if args.quick else args.scenarios.split(",")
    tmp = tempfile.mkdtemp(prefix="ib-bench-data-")
    try:
        rows = [r for r in (scenario(n, duration, tmp) for n in names) if r]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(rows, indent=2))
    by_name = {r["scenario"]: r for r in rows}
    for name, figure, limit in TARGETS:
        if name in by_name:
            got = by_name[name][figure]
            verdict = "met" if got <= limit else "MISSED"
            print(f"target {name}.{figure} <= {limit}: {got} {verdict}")
    itl10 = by_name.get("itl10")
    if args.max_us_per_token is not None and itl10 and itl10["cpu_us_per_token"] > args.max_us_per_token:
        print(f"REGRESSION: {itl10['cpu_us_per_token']} µs/token > {args.max_us_per_token}", file=sys.stderr)
        sys.exit(1)
    if args.max_cpu_ratio is not None and itl10:
        ratio = itl10["client_to_server_cpu"]
        verdict = "REGRESSION" if ratio > args.max_cpu_ratio else "ok"
        print(f"{verdict}: client CPU {ratio}x the server's for the same tokens "
              f"(limit {args.max_cpu_ratio}x; {itl10['cpu_us_per_token']} vs "
              f"{itl10['server_cpu_us_per_token']} µs/token)", file=sys.stderr)
        if ratio > args.max_cpu_ratio:
            sys.exit(1)


if __name__ == "__main__":
    main()
