#!/usr/bin/env bash
# Runs every target to at least RUNS executions (default 10 million), one after another, on
# one core, growing fuzz/corpus. Logs go to fuzz/logs/TARGET.log.
set -uo pipefail
cd "$(dirname "$0")"
runs="${RUNS:-10000000}"
mkdir -p logs
for target in $(cargo +nightly fuzz list); do
  mkdir -p "corpus/$target"
  taskset -c "${CORE:-1}" "target/x86_64-unknown-linux-gnu/release/$target" \
    -runs="$runs" -rss_limit_mb=2048 -print_final_stats=1 \
    "corpus/$target" "seeds/$target" > "logs/$target.log" 2>&1
  echo "$target: exit $? $(grep -E 'Done [0-9]+ runs' "logs/$target.log")"
done
