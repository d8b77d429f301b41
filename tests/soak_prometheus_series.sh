#!/usr/bin/env bash
# Soak check of the Prometheus sink's cardinality: the number of series /metrics exports after
# 10,000 requests equals the number after 100 (no per-request labels, nothing grows with time).
# Runs the binary against the simulated server (fixed timing, fast) for about a minute.
#
# usage: tests/soak_prometheus_series.sh [REQUESTS]   (default 10000; exit 0: equal, 1: not)
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:-10000}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cargo build -q --bin inference-benchmarker
bin=target/debug/inference-benchmarker
sim_port=$(free_port); metrics_port=$(free_port)
out=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$out"; }
trap cleanup EXIT

"$bin" sim --host 127.0.0.1 --port "$sim_port" --slots 512 --fixed-ttft-ms 2 --fixed-itl-ms 1 \
  >"$out/sim.log" 2>&1 &
pids+=($!)
"$bin" -u "http://127.0.0.1:$sim_port" -b throughput -m 32 -d 30m -w 0s -n --run-id soak \
  --prompt-options num_tokens=20,max_tokens=20,min_tokens=20,variance=0 \
  --decode-options num_tokens=8,max_tokens=8,min_tokens=8,variance=0 --dataset synthetic \
  --output-dir "$out" --prometheus-listen "127.0.0.1:$metrics_port" --prometheus-linger 0s \
  >"$out/run.log" 2>&1 &
bench=$!
pids+=($bench)

# series: every sample line; requests: sum of requests_total over outcomes.
measure() {
  curl -fsS "http://127.0.0.1:$metrics_port/metrics" 2>/dev/null | awk '
    /^#/ || NF == 0 { next }
    { series++ }
    /^inference_benchmarker_requests_total\{/ { requests += $NF }
    END { printf "%d %d\n", series, requests }'
}

first=""; deadline=$((SECONDS + 600))
while (( SECONDS < deadline )); do
  read -r series requests < <(measure || echo "0 0")
  if [[ -z "$first" && $requests -ge 100 ]]; then
    first=$series; echo "after $requests requests: $series series"
  fi
  if [[ -n "$first" && $requests -ge $target ]]; then
    echo "after $requests requests: $series series"
    kill -INT "$bench"; wait "$bench" || true
    if [[ "$series" == "$first" ]]; then echo "OK: the series count did not grow"; exit 0; fi
    echo "FAIL: $first series after 100 requests, $series after $requests"; exit 1
  fi
  # Fine-grained until the first count is taken (it should be close to 100 requests).
  if [[ -z "$first" ]]; then sleep 0.02; else sleep 0.5; fi
done
echo "FAIL: $target requests not reached in 10 minutes"; tail -5 "$out/run.log"; exit 1
