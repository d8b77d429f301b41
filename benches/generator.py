#!/usr/bin/env python3
"""A benchmark of the benchmarker: what the load generator itself costs.

Runs the release binary against the built-in simulated server on loopback, the server pinned to
one core and the generator to the other (taskset), and prints per-unit costs:

  - client CPU microseconds per streamed token and per request (user + system time of the
    generator process, from wait4's rusage, divided by the tokens/requests it streamed),
  - tokens/s and requests/s the run sustained,
  - the generator's peak RSS.

Scenarios (each a closed-loop throughput step, warmup excluded from the JSON but not from CPU):
  itl10     256 users, 100 tokens per request, server TTFT 10 ms and ITL 10 ms
  ceiling   256 users, 100 tokens per request, server with zero latency (as fast as it can)

Usage: benches/generator.py [--duration 20] [--quick]   (build first: cargo build --release)
--quick runs 5 s steps: the short CI guard against gross regressions (`--max-us-per-token`).
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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "inference-benchmarker")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pinned(core, argv):
    if shutil.which("taskset") and os.cpu_count() and os.cpu_count() >= 2:
        return ["taskset", "-c", str(core)] + argv
    return argv


def wait_healthy(port, deadline=10.0):
    end = time.time() + deadline
    while time.time() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"simulated server on port {port} did not start")


def run(name, sim_args, users, tokens, duration):
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
        argv = pinned(0, [
            BIN, "-u", f"http://127.0.0.1:{port}", "-b", "throughput", "-m", str(users),
            "-d", f"{duration}s", "-w", "2s", "--workers", "1", "-n",
            "--prompt-options", "num_tokens=50,min_tokens=50,max_tokens=50,variance=0",
            "--decode-options", decode, "--output-dir", out,
        ])
        started = time.time()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.time() - started
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"{name}: the generator failed: {proc.stderr.read().decode()[-2000:]}")
        doc = json.load(open(next(os.path.join(out, f) for f in os.listdir(out) if f.endswith(".json"))))
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
            "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
            "failed": step["failed_requests"],
            "ttft_p50_ms": step["time_to_first_token_ms"]["p50"],
        }
    finally:
        sim.terminate()
        sim.wait(timeout=10)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=20)
    ap.add_argument("--quick", action="store_true", help="5 s steps (CI)")
    ap.add_argument("--max-us-per-token", type=float, default=None,
                    help="exit 1 if the itl10 scenario costs more client CPU per token")
    args = ap.parse_args()
    if not os.path.exists(BIN):
        raise SystemExit("build first: cargo build --release")
    duration = 5 if args.quick else args.duration
    rows = [
        run("itl10", ["--fixed-ttft-ms", "10", "--fixed-itl-ms", "10"], 256, 100, duration),
        run("ceiling", ["--fixed-ttft-ms", "0", "--fixed-itl-ms", "0"], 256, 100, duration),
    ]
    print(json.dumps(rows, indent=2))
    if args.max_us_per_token is not None and rows[0]["cpu_us_per_token"] > args.max_us_per_token:
        print(f"REGRESSION: {rows[0]['cpu_us_per_token']} µs/token > {args.max_us_per_token}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
