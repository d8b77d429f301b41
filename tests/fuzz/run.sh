#!/usr/bin/env bash
# Fuzz the parsers of untrusted input with libFuzzer (cargo-fuzz), each target for SECONDS
# (default 120), growing the committed corpus in corpus/<target>/.
#
#   tests/fuzz/run.sh [SECONDS] [TARGET...]      targets: sse stream_chunks options
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). It builds with nightly-only sanitizer flags;
# RUSTC_BOOTSTRAP=1 lets the stable toolchain (the only one here) accept them. The first build
# takes several minutes (the whole dependency tree with AddressSanitizer).
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-120}
shift || true
targets=("${@:-sse stream_chunks options}")
read -r -a targets <<<"${targets[*]}"
total=0
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  log=$(mktemp)
  RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir . -O "$t" "corpus/$t" -- \
    -max_total_time="$seconds" -print_final_stats=1 2>&1 | tee "$log" | grep -E "^(==|SUMMARY|thread)" || true
  runs=$(grep -oP 'stat::number_of_executed_units:\s*\K[0-9]+' "$log" || echo 0)
  echo "$t: $runs executions in ${seconds}s, corpus $(ls "corpus/$t" | wc -l) inputs"
  total=$((total + runs))
  rm -f "$log"
done
echo "total: $total executions, no crash"
