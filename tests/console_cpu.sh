#!/usr/bin/env bash
# Client CPU per request with the live console vs with --no-console (issue 6's measurement).
#
#   tests/console_cpu.sh target/release/inference-benchmarker 600s 10 /tmp/console-cpu
#
# Two simulated servers, two clients at the same open-loop rate for the same time, run side by
# side (same machine load for both); each client in its own tmux pane (a real terminal), one with
# the console, one with --no-console (stdout and stderr stay the pane's terminal for both).
# CPU = user + system time of the client process (GNU time).
set -euo pipefail
bin=$(realpath "${1:?binary}")
duration=${2:-600s}
rate=${3:-10}
out=${4:-/tmp/console-cpu}
rm -rf "$out"; mkdir -p "$out"
sock="ib-console-cpu-$$"
pids=()
cleanup() {
  tmux -L "$sock" kill-server 2>/dev/null || true
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

port_console=18431
port_plain=18432
for port in $port_console $port_plain; do
  "$bin" sim --port "$port" >"$out/sim-$port.log" 2>&1 &
  pids+=($!)
done
sleep 2

run() { # mode port extra-flag
  local mode=$1 port=$2 flag=$3
  local cmd="/usr/bin/time -f '%U %S' -o $out/$mode.time env -u CI $bin -u http://127.0.0.1:$port \
    -b rate -r $rate -d $duration -w 5s --max-vus 64 --no-saturation-stop --no-report \
    --prompt-options num_tokens=200,min_tokens=200,max_tokens=200,variance=0 \
    --decode-options num_tokens=64,min_tokens=64,max_tokens=64,variance=0 --dataset synthetic \
    --output-dir $out/$mode $flag; echo \$? > $out/$mode.exit"
  if tmux -L "$sock" has-session -t cpu 2>/dev/null; then
    tmux -L "$sock" new-window -t cpu -n "$mode" "$cmd"
  else
    tmux -L "$sock" new-session -d -s cpu -n "$mode" -x 160 -y 45 "$cmd"
  fi
}
run console $port_console ""
run plain $port_plain "--no-console"

while [[ ! -s "$out/console.exit" || ! -s "$out/plain.exit" ]]; do sleep 2; done

python3 - "$out" <<'EOF'
import glob, json, sys
out = sys.argv[1]
for mode in ("console", "plain"):
    user, sys_ = map(float, open(f"{out}/{mode}.time").read().split()[-2:])
    doc = json.load(open(glob.glob(f"{out}/{mode}/*.json")[0]))
    requests = sum(s["total_requests"] for s in doc["results"]) + doc["warmup"]["requests"]
    tokens = sum(s["total_tokens"] for s in doc["results"])
    cpu = user + sys_
    print(f"{mode:8} exit {open(f'{out}/{mode}.exit').read().strip()}  requests {requests}  "
          f"output tokens {tokens}  cpu {cpu:.2f} s (user {user:.2f}, sys {sys_:.2f})  "
          f"{cpu / requests * 1e6:.0f} us/request")
EOF
