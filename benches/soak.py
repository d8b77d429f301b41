#!/usr/bin/env python3
"""Soak: a long steady open-loop run against the simulated server while sampling the
generator's resident memory (VmRSS) and open file descriptors.

Memory must be flat after warm-up: the generator keeps no per-request state beyond the requests
in flight (HDR histograms, counters, a streamed requests log), with the server's metrics scraped
every second and the step summarized per time slice (--slice-duration, 1m by default): the
summary checks that the step has one slice per minute and that they add up to it.

Usage: benches/soak.py [--minutes 30] [--in-flight 500] [--slice-duration 1m]
       (build first: cargo build --release)
Prints one line per sample and a summary: RSS at 1 minute and at the end, growth in %, and the
range of open file descriptors.
"""
import argparse
import json
import os
import subprocess
import tempfile
import time

from common import BIN, free_port, rss_kb

TTFT_MS, ITL_MS, TOKENS = 50, 20, 100


def fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--in-flight", type=int, default=500)
    ap.add_argument("--sample-seconds", type=float, default=10)
    ap.add_argument("--slice-duration", default="1m")
    args = ap.parse_args()
    e2e = (TTFT_MS + ITL_MS * (TOKENS - 1)) / 1000.0
    rate = args.in_flight / e2e  # Little's law: in flight = rate × latency
    port = free_port()
    sim = subprocess.Popen(
        [BIN, "sim", "--port", str(port), "--fixed-ttft-ms", str(TTFT_MS),
         "--fixed-itl-ms", str(ITL_MS)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out = tempfile.mkdtemp(prefix="ib-soak-")
    time.sleep(1)
    decode = f"num_tokens={TOKENS},min_tokens={TOKENS},max_tokens={TOKENS},variance=0"
    gen = subprocess.Popen(
        [BIN, "-u", f"http://127.0.0.1:{port}", "-b", "rate", "-r", f"{rate:.2f}",
         "-d", f"{int(args.minutes * 60)}s", "-w", "0s", "-m", str(args.in_flight * 4), "-n",
         "--no-saturation-stop", "--prompt-options", "num_tokens=100,min_tokens=100,max_tokens=100,variance=0",
         "--decode-options", decode, "--dataset", "synthetic", "--save-requests", "--output-dir", out,
         "--slice-duration", args.slice_duration],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    samples = []
    start = time.time()
    try:
        while gen.poll() is None:
            t = time.time() - start
            try:
                s = (t, rss_kb(gen.pid), fds(gen.pid))
            except FileNotFoundError:
                break
            samples.append(s)
            print(f"t={s[0]:7.0f}s rss={s[1] / 1024:7.1f} MB fds={s[2]}", flush=True)
            time.sleep(args.sample_seconds)
    finally:
        gen.wait()
        sim.terminate()
        sim.wait()
    after_warmup = [s for s in samples if s[0] >= 60] or samples
    first, last = after_warmup[0], after_warmup[-1]
    peak = max(s[1] for s in after_warmup)
    doc = json.load(open(next(os.path.join(out, f) for f in os.listdir(out) if f.endswith(".json"))))
    step = doc["results"][0]
    slices = [s for s in doc.get("slices", []) if s["step"] == step["step"]]
    summary = {
        "minutes": args.minutes,
        "offered_rate": round(rate, 2),
        "requests": step["total_requests"],
        "failed": step["failed_requests"],
        "rss_mb_at_1_min": round(first[1] / 1024, 1),
        "rss_mb_at_end": round(last[1] / 1024, 1),
        "rss_mb_peak_after_1_min": round(peak / 1024, 1),
        "rss_growth_percent": round(100.0 * (last[1] - first[1]) / first[1], 2),
        "fds_min": min(s[2] for s in after_warmup),
        "fds_max": max(s[2] for s in after_warmup),
        "generator_bound": (step.get("generator") or {}).get("bound"),
        "server_metrics_scrapes": (step.get("server_metrics") or {}).get("scrapes"),
        "slices": len(slices),
        "slices_add_up": sum(s["total_requests"] for s in slices) == step["total_requests"],
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
