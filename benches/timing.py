#!/usr/bin/env python3
"""A benchmark of the benchmarker: the generator's timing error, request by request, against the
simulated server's own record of when it sent each token.

The release binary serves the simulated server pinned to core 1, in random-timing mode (TTFT
drawn per request, ITL per gap, seeded) with `--record-file`, and runs the generator pinned to
core 0 (`--workers 1`) with `--save-requests`. The server is stopped with SIGTERM, which writes
its records (JSON Lines). Client and server are joined by request id: the generator sends its
requests log `id` as `x-request-id`, which the server keeps as `request_id`.

Per request:
  TTFT error       = client `ttft_ms` − server first-token offset (`token_offsets_us[0]`)
  per-gap ITL error = client gap − server gap, for each pair of consecutive tokens (the
                     simulated server sends one token per chunk, so chunk k is token k; a
                     request whose chunk count differs from the server's token count is counted,
                     not compared)
  schedule lateness = the client's `queue_delay_ms` (`sent_at − scheduled_at`)

Scenarios:
  poisson50   open loop, 50 req/s Poisson arrivals, 64 tokens, server TTFT 10–100 ms and ITL
              5–25 ms: |TTFT error| p99 ≤ 0.5 ms, |per-gap ITL error| p99 ≤ 0.2 ms,
              schedule lateness p99 ≤ 1 ms
  closed256   closed loop, 256 users, 100 tokens, server TTFT 10–30 ms and ITL 9–11 ms
              (~25,000 tokens/s): |TTFT error| p99 ≤ 2 ms

Before them, `machine_floor` measures the same three errors with nothing in between: a minimal
Python client (core 0) and server (core 1) exchanging one byte per request and per token over
loopback TCP (Poisson 50 req/s, gaps 5–25 ms). It is the machine's own limit (scheduler and
wake-up latency of the two cores): a figure near its floor is not the generator's doing.

Prints one JSON summary: `summary` (every figure with its target, PASS/MISS and the machine
floor), then per scenario the join counts, the signed distributions, where in the step the TTFT
errors come from (`ttft_error_ms_by_phase`), the request path's jitter (server receipt − client
send, by wall clock, above the fastest request), how often the server itself fell behind its own
schedule, and both processes' CPU use. Exits 1 when a request is missing or unmatched on either
side (or a process fails) — never on a MISS: a missed target is a finding to report.

Usage: benches/timing.py [--duration 45] [--quick] [--scenario NAME] [--keep] [--no-floor]
(build first: cargo build --release). About 2 minutes; --quick runs 10 s steps (~40 s).
"""
import argparse
import json
import math
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from common import BIN, pinned

# Flags every generator run gets on top of its scenario's (set from the command line).
EXTRA_ARGS = []
WARMUP = "2s"
PROMPT = "num_tokens=50,min_tokens=50,max_tokens=50,variance=0"

SCENARIOS = [
    {
        "name": "poisson50",
        "sim": ["--random-ttft-ms", "10:100", "--random-itl-ms", "5:25"],
        "generator": ["-b", "rate", "-r", "50", "--arrival", "poisson", "-m", "1000",
                      "--no-saturation-stop"],
        "tokens": 64,
        "targets": {"ttft_error_abs_p99_ms": 0.5, "itl_gap_error_abs_p99_ms": 0.2,
                    "schedule_lateness_p99_ms": 1.0},
    },
    {
        "name": "closed256",
        "sim": ["--random-ttft-ms", "10:30", "--random-itl-ms", "9:11"],
        "generator": ["-b", "throughput", "-m", "256"],
        "users": 256,
        "tokens": 100,
        "targets": {"ttft_error_abs_p99_ms": 2.0},
    },
]


class Broken(Exception):
    """A process failed or a request is missing: exit 1."""


def percentile(sorted_values, q):
    """Nearest rank: the smallest value with at least q of the values at or below it."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


def distribution(values):
    """Signed distribution (ms, 3 decimals = 1 µs) and the p99 of the absolute values."""
    if not values:
        return {"n": 0}
    s = sorted(values)
    r = lambda v: round(v, 3)
    return {
        "n": len(s),
        "min": r(s[0]),
        "p1": r(percentile(s, 0.01)),
        "p50": r(percentile(s, 0.50)),
        "p99": r(percentile(s, 0.99)),
        "p99.9": r(percentile(s, 0.999)),
        "max": r(s[-1]),
        "mean": r(sum(s) / len(s)),
        "abs_p99": r(percentile(sorted(abs(v) for v in s), 0.99)),
    }


def _pin(core):
    try:
        os.sched_setaffinity(0, {core})
    except (AttributeError, OSError):
        pass


def _child(core, work, out_fd):
    """Runs work() in a forked child pinned to `core`; its JSON result goes to out_fd."""
    pid = os.fork()
    if pid:
        return pid
    try:
        _pin(core)
        with os.fdopen(out_fd, "w") as out:
            json.dump(work(), out)
    finally:
        os._exit(0)


def machine_floor(requests, tokens=8, seed=3):
    """The timing errors of a minimal client/server pair on this machine (see the docstring).

    Client (core 0): at absolute due times (Poisson, 50/s) it stamps and sends one byte, then
    stamps each byte that comes back. Server (core 1): stamps the request's arrival ("handler
    entry"), then sends `tokens` bytes at absolute due times from it (TTFT 1–5 ms, gaps
    5–25 ms), stamping each just before its send. Both stamp CLOCK_MONOTONIC, one clock for the
    machine.
    """
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]

    def server():
        conn, _ = listener.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        rng = random.Random(seed + 1)
        stamps = []
        for _ in range(requests):
            if not conn.recv(1):
                break
            received = time.monotonic_ns()
            due, sent = received + int(rng.uniform(1e6, 5e6)), []
            for _ in range(tokens):
                delay = due - time.monotonic_ns()
                if delay > 0:
                    time.sleep(delay / 1e9)
                sent.append(time.monotonic_ns())
                conn.sendall(b"t")
                due += int(rng.uniform(5e6, 25e6))
            stamps.append([received, sent])
        return stamps

    def client():
        conn = socket.create_connection(("127.0.0.1", port))
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        rng = random.Random(seed)
        due = time.monotonic_ns() + 50_000_000
        stamps = []
        for _ in range(requests):
            due += int(rng.expovariate(50.0) * 1e9)
            delay = due - time.monotonic_ns()
            if delay > 0:
                time.sleep(delay / 1e9)
            sent = time.monotonic_ns()
            conn.sendall(b"q")
            arrivals = []
            while len(arrivals) < tokens:
                if not conn.recv(1):
                    break
                arrivals.append(time.monotonic_ns())
            stamps.append([due, sent, arrivals])
            due = max(due, time.monotonic_ns())  # one request at a time
        return stamps

    (srv_r, srv_w), (cli_r, cli_w) = os.pipe(), os.pipe()
    pids = [_child(1, server, srv_w), _child(0, client, cli_w)]
    os.close(srv_w)
    os.close(cli_w)
    try:
        with os.fdopen(srv_r) as f:
            server_stamps = json.load(f)
        with os.fdopen(cli_r) as f:
            client_stamps = json.load(f)
    except ValueError as e:  # a child failed before writing its stamps
        raise Broken(f"the machine-floor measurement failed: {e}")
    finally:
        for pid in pids:
            os.waitpid(pid, 0)
        listener.close()
    ms = 1e6
    ttft, gaps, lateness = [], [], []
    for (received, sent), (due, c_sent, arrivals) in zip(server_stamps, client_stamps):
        lateness.append((c_sent - due) / ms)
        ttft.append(((arrivals[0] - c_sent) - (sent[0] - received)) / ms)
        for i in range(1, min(len(sent), len(arrivals))):
            gaps.append(((arrivals[i] - arrivals[i - 1]) - (sent[i] - sent[i - 1])) / ms)
    return {
        "requests": len(ttft),
        "ttft_error_ms": distribution(ttft),
        "itl_gap_error_ms": distribution(gaps),
        "schedule_lateness_ms": distribution(lateness),
    }


def start_sim(args, record_file, log_path, seed):
    argv = pinned(1, [BIN, "sim", "--port", "0", "--seed", str(seed),
                      "--record-file", record_file] + args)
    log = open(log_path, "wb")
    sim = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log)
    # run_cli prints the address on stdout once the socket accepts connections.
    line = sim.stdout.readline().decode()
    if "listening on " not in line:
        sim.kill()
        sim.wait()
        raise Broken(f"the simulated server did not start (see {log_path}): {line!r}")
    return sim, line.rsplit(" ", 1)[1].strip()


def stop_sim(sim, record_file):
    """SIGTERM: the server stops gracefully and writes its records (tmp + rename)."""
    if sim.poll() is None:
        sim.send_signal(signal.SIGTERM)
    try:
        code = sim.wait(timeout=60)
    except subprocess.TimeoutExpired:
        sim.kill()
        sim.wait()
        raise Broken("the simulated server did not stop within 60 s of SIGTERM")
    if code != 0:
        raise Broken(f"the simulated server exited with {code}")
    if not os.path.exists(record_file):
        raise Broken(f"the simulated server wrote no {record_file}")


def cpu_seconds(pid):
    """User + system CPU time of a live process (its threads included), from /proc."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def run(scenario, duration, work, seed, floor):
    name = scenario["name"]
    out = os.path.join(work, name)
    os.makedirs(out)
    record_file = os.path.join(out, "server.records.jsonl")
    sim, url = start_sim(scenario["sim"], record_file, os.path.join(out, "sim.log"), seed)
    tokens = scenario["tokens"]
    decode = f"num_tokens={tokens},min_tokens={tokens},max_tokens={tokens},variance=0"
    argv = pinned(0, [
        BIN, "-u", url, "-d", f"{duration}s", "-w", WARMUP, "--workers", "1", "-n",
        "--no-report", "--run-id", name, "--seed", str(seed),
        "--prompt-options", PROMPT, "--decode-options", decode, "--dataset", "synthetic",
        "--save-requests", "--output-dir", out,
    ] + scenario["generator"] + EXTRA_ARGS)
    print(f"{name}: {duration} s (+{WARMUP} warmup) against {url} …", file=sys.stderr)
    cpu_before, started = cpu_seconds(sim.pid), time.time()
    try:
        with open(os.path.join(out, "generator.log"), "wb") as log:
            code = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT).returncode
        cpu_after, wall = cpu_seconds(sim.pid), time.time() - started
    finally:
        stop_sim(sim, record_file)
    # The server's own load (its core): near 100 %, it falls behind its schedule in bursts.
    server_cpu = None
    if cpu_before is not None and cpu_after is not None and wall > 0:
        server_cpu = round((cpu_after - cpu_before) / wall, 3)
    if code != 0:
        raise Broken(f"{name}: the generator exited with {code} (see {out}/generator.log)")
    results = [f for f in os.listdir(out) if f.endswith(".json")]
    logs = [f for f in os.listdir(out) if f.endswith(".requests.jsonl")]
    if len(results) != 1 or len(logs) != 1:
        raise Broken(f"{name}: expected one results file and one requests log in {out}")
    doc = json.load(open(os.path.join(out, results[0])))
    row = analyse(scenario, doc, read_jsonl(os.path.join(out, logs[0])),
                  read_jsonl(record_file), floor)
    row["server_cpu_utilization"] = server_cpu
    return row


# Each target's figure in `machine_floor`'s output.
FLOOR_OF = {
    "ttft_error_abs_p99_ms": ("ttft_error_ms", "abs_p99"),
    "itl_gap_error_abs_p99_ms": ("itl_gap_error_ms", "abs_p99"),
    "schedule_lateness_p99_ms": ("schedule_lateness_ms", "p99"),
}


def analyse(scenario, doc, client, server, floor=None):
    name = scenario["name"]
    by_id = {}
    for record in server:
        by_id.setdefault(record["request_id"], []).append(record)
    duplicated = sum(1 for records in by_id.values() if len(records) > 1)
    warmup_prefix = f"{name}-0-"  # request ids are <run id>-<step>-<n>; step 0 is the warmup
    client_ids = {line["id"] for line in client}
    unmatched_client = [line["id"] for line in client if line["id"] not in by_id]
    unmatched_server = [rid for rid in by_id if rid not in client_ids
                        and not (rid or "").startswith(warmup_prefix)]
    warmup = sum(1 for rid in by_id if (rid or "").startswith(warmup_prefix))

    ttft_err, gap_err, lateness = [], [], []
    request_path, ttft_by_sent = [], []
    failed = mismatched_chunks = 0
    for line in client:
        records = by_id.get(line["id"])
        if not records:
            continue
        rec = records[0]
        lateness.append(line["queue_delay_ms"])
        if line["outcome"] != "ok" or rec["status"] != 200 or not rec["token_offsets_us"]:
            failed += 1
            continue
        server_ms = [us / 1000.0 for us in rec["token_offsets_us"]]
        # The two TTFTs start from different points, so their difference is not pure noise:
        # the client's runs from its send stamp (just before the request is written), the
        # server's from its handler's entry (request read and parsed). The difference is the
        # request's path (client write → loopback → server read, parse, route; ~tens of µs)
        # plus the first token's path back (server yield → actix write → loopback → client
        # wake, read, SSE parse): always ≥ 0, a floor plus jitter. The per-gap errors cancel
        # the request path and both floors: only the jitter of the response path remains.
        ttft_err.append(line["ttft_ms"] - server_ms[0])
        ttft_by_sent.append((line["sent_ms"], ttft_err[-1]))
        chunks = line["chunk_offsets_ms"]
        if len(chunks) != len(server_ms):
            mismatched_chunks += 1
        else:
            for i in range(1, len(chunks)):
                gap_err.append((chunks[i] - chunks[i - 1]) - (server_ms[i] - server_ms[i - 1]))
        # Wall-clock view of the request path, up to a constant (the results' start_time is
        # only to the ms): server receipt − client send. Its spread is the request path's jitter.
        request_path.append(rec["received_at_unix_nanos"] / 1e6 - line["sent_ms"])

    # The two processes stamp different clocks (the client's monotonic clock from a wall-clock
    # anchor, the server's wall clock); they may slew apart by a few ppm, a few µs over a step.
    fastest = min(request_path) if request_path else 0.0
    step = doc["results"][0] if doc.get("results") else {}
    # Where in the step the TTFT errors come from: a closed loop starts every user at once (new
    # connections, every request arriving together), and with equal output lengths the users
    # stay in waves for a while; the second half of the step is the steady state.
    ttft_by_sent.sort()
    phases = {}
    if ttft_by_sent:
        start, end = ttft_by_sent[0][0], ttft_by_sent[-1][0]
        phases["second_half"] = distribution(
            [e for t, e in ttft_by_sent if t >= (start + end) / 2])
        users = scenario.get("users")
        if users:
            phases["first_request_of_each_user"] = distribution(
                [e for _, e in ttft_by_sent[:users]])
            phases["after_first_requests"] = distribution([e for _, e in ttft_by_sent[users:]])
    # The server against its own schedule: a gap far above the drawn range means the server
    # process itself was held up (its core busy or frozen). Both sides see such a pause, so it
    # cancels in the per-gap errors, but a request arriving during it enters the handler late.
    itl_max = float(scenario["sim"][scenario["sim"].index("--random-itl-ms") + 1].split(":")[1])
    server_gaps = [(b - a) / 1000.0 for rec in server
                   for a, b in zip(rec["token_offsets_us"], rec["token_offsets_us"][1:])]
    server_late = {
        "itl_max_ms": itl_max,
        "gaps_over_max_plus_5ms": sum(1 for g in server_gaps if g > itl_max + 5),
        "largest_gap_ms": round(max(server_gaps, default=0.0), 3),
    }
    figures = {
        "ttft_error_ms": distribution(ttft_err),
        "ttft_error_ms_by_phase": phases,
        "itl_gap_error_ms": distribution(gap_err),
        "schedule_lateness_ms": distribution(lateness),
        "request_path_jitter_ms": distribution([v - fastest for v in request_path]),
        "server_vs_its_schedule": server_late,
    }
    measured = {
        "ttft_error_abs_p99_ms": figures["ttft_error_ms"].get("abs_p99"),
        "itl_gap_error_abs_p99_ms": figures["itl_gap_error_ms"].get("abs_p99"),
        "schedule_lateness_p99_ms": figures["schedule_lateness_ms"].get("p99"),
    }
    checks = {}
    for key, target in scenario["targets"].items():
        got = measured[key]
        checks[key] = {"target": target, "measured": got,
                       "verdict": "PASS" if got is not None and got <= target else "MISS"}
        if floor:
            figure, stat = FLOOR_OF[key]
            checks[key]["machine_floor"] = floor[figure].get(stat)
    return {
        "scenario": name,
        "requests_logged": len(client),
        "server_records": len(server),
        "joined": len(client) - len(unmatched_client),
        "unmatched_client": len(unmatched_client),
        "unmatched_server": len(unmatched_server),
        "duplicated_ids": duplicated,
        "warmup_records": warmup,
        "failed": failed,
        "chunk_token_mismatches": mismatched_chunks,
        "examples_unmatched": (unmatched_client + unmatched_server)[:5],
        "request_rate": step.get("request_rate"),
        "token_throughput_secs": step.get("token_throughput_secs"),
        "generator": step.get("generator"),
        "targets": checks,
        "figures": figures,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=int, default=45, help="seconds per scenario (30–60)")
    ap.add_argument("--quick", action="store_true", help="10 s per scenario")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--scenario", action="append", choices=[s["name"] for s in SCENARIOS],
                    help="run only this one (repeatable)")
    ap.add_argument("--keep", action="store_true", help="keep the run files (printed)")
    ap.add_argument("--no-floor", action="store_true", help="skip the machine-floor measurement")
    ap.add_argument("--no-server-metrics", action="store_true",
                    help="the generator does not scrape the server's /metrics (what scraping costs)")
    args = ap.parse_args()
    if args.no_server_metrics:
        EXTRA_ARGS.append("--no-server-metrics")
    if not os.path.exists(BIN):
        raise SystemExit(f"{BIN} is missing: build first with cargo build --release")
    duration = 10 if args.quick else args.duration
    floor = None
    if not args.no_floor:
        print("floor: a minimal client/server pair on the same cores …", file=sys.stderr)
        try:
            floor = machine_floor(40 if args.quick else 150)
        except Broken as e:
            print(e, file=sys.stderr)
    work = tempfile.mkdtemp(prefix="ib-timing-")
    rows, broken = [], []
    try:
        for scenario in SCENARIOS:
            if args.scenario and scenario["name"] not in args.scenario:
                continue
            try:
                row = run(scenario, duration, work, args.seed, floor)
            except Broken as e:
                broken.append(str(e))
                continue
            if row["unmatched_client"] or row["unmatched_server"] or row["duplicated_ids"]:
                broken.append(f"{row['scenario']}: unmatched or duplicated requests")
            rows.append(row)
    finally:
        if args.keep or broken:
            print(f"run files: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    summary = [
        dict(scenario=row["scenario"], figure=key, **check)
        for row in rows for key, check in row["targets"].items()
    ]
    print(json.dumps({"duration_s": duration, "summary": summary, "machine_floor": floor,
                      "scenarios": rows, "errors": broken}, indent=2))
    sys.exit(1 if broken else 0)


if __name__ == "__main__":
    main()
