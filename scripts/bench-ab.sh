#!/usr/bin/env bash
# A/B load figures: the load scenarios of scripts/bench.sh for two edgetwin binaries in one run,
# interleaved (A, B, A, B per scenario) so machine noise hits both alike; prints the B/A ratio of
# the medians (every run in target/bench-ab.log). Use it to show a change does not regress (BENCHMARKS.md).
# Usage: scripts/bench-ab.sh A_BIN B_BIN [ROUNDS]   (builds the loadgen example; 4 s windows)
set -euo pipefail
cd "$(dirname "$0")/.."
A=$1 B=$2 ROUNDS=${3:-2} SECS=${SECS:-4}
cargo build --release --example loadgen 2>&1 | tail -1
L=target/release/examples/loadgen
echo "A: $A ($(stat -c %s "$A") bytes)  B: $B ($(stat -c %s "$B") bytes)  load: $(cut -d' ' -f1-3 /proc/loadavg)"
run() { # label bin args... -> cmd/s
  local label=$1 bin=$2; shift 2
  $L load --secs "$SECS" --warmup 1 --target edgetwin --server-bin "$bin" --label "$label" "$@" |
    grep -o "RESULT .*" | tee -a target/bench-ab.log | sed -n 's/.* tput=\([0-9]*\).*/\1/p'
}
median() { sort -n | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
scenario() { # label args...
  local label=$1 a=() b=(); shift
  for _ in $(seq "$ROUNDS"); do
    a+=("$(run "$label" "$A" "$@")"); b+=("$(run "$label" "$B" "$@")")
  done
  local ma mb; ma=$(printf '%s\n' "${a[@]}" | median); mb=$(printf '%s\n' "${b[@]}" | median)
  printf 'AB %-20s A %8s  B %8s cmd/s  B/A %s\n' "$label" "$ma" "$mb" \
    "$(awk -v a="$ma" -v b="$mb" 'BEGIN {printf "%.3f", b / a}')" | tee -a target/bench-ab.txt
}
: > target/bench-ab.txt; : > target/bench-ab.log
scenario modify_1conn --conns 1
scenario modify_4conn --conns 4
scenario persisted_4conn --conns 4 --acks persisted
scenario persisted_16conn --conns 16 --window 16 --acks persisted
scenario roundtrip --conns 1 --window 1
scenario mix_4conn --conns 4 --mix modify=60,merge=20,retrieve=20 --payload 256
scenario persisted_4conn_redb --conns 4 --acks persisted --store redb
echo "== summary (load at end: $(cut -d' ' -f1-3 /proc/loadavg))"
cat target/bench-ab.txt; echo "runs: target/bench-ab.log"
