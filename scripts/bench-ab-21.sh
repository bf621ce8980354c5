#!/usr/bin/env bash
# Issue 21's load rows for two edgetwin binaries in ONE run, interleaved A B A B per scenario, so
# that a busy shared machine slows both alike; prints each run and the B/A ratios of the medians.
# Usage: scripts/bench-ab-21.sh BIN_A BIN_B [ROUNDS]   (e.g. a copy of main's target/release/edgetwin
#        as A, this tree's as B; ROUNDS per binary and scenario, default 2; 4 s windows)
#        ONLY="modify_4conn modify_4conn_10k" runs only the rows with these labels.
# Needs target/release/examples/loadgen (cargo build --release --example loadgen).
set -euo pipefail
cd "$(dirname "$0")/.."
A=$1 B=$2 ROUNDS=${3:-2}
L=target/release/examples/loadgen
. scripts/ab-common.sh
ab_start ab "$A" "$B"

row() { # label, field, loadgen options...
  local label=$1 field=$2; shift 2
  if [ -n "${ONLY:-}" ] && ! [[ " $ONLY " == *" $label "* ]]; then return; fi
  for r in $(seq "$ROUNDS"); do
    for who in A B; do
      local bin=$A; [ "$who" = B ] && bin=$B
      $L load --label "$label.$who" --target edgetwin --server-bin "$bin" --secs 4 --warmup 1 "$@" |
        grep -E '^(RESULT|FIRST)' || true
    done
  done
  local a b
  a=$(grep "^RESULT label=$label.A " "$OUT" | kv "$field" | median)
  b=$(grep "^RESULT label=$label.B " "$OUT" | kv "$field" | median)
  echo "AB $label $field A=$a B=$b B/A=$(ratio "$a" "$b")"
  if grep -q "^FIRST label=$label.A " "$OUT"; then # --touch-all: the first modify of each twin
    a=$(grep "^FIRST label=$label.A " "$OUT" | kv us_per_cmd | median)
    b=$(grep "^FIRST label=$label.B " "$OUT" | kv us_per_cmd | median)
    echo "AB ${label}_first us_per_cmd A=$a B=$b B/A=$(ratio "$a" "$b")"
  fi
}

row modify_4conn us_per_cmd --conns 4
row modify_4conn_redb us_per_cmd --conns 4 --store redb   # the default store of a new data dir
# 10k/100k: every twin modified once before the window (--touch-all): the window measures the
# steady state, the `_first` line the first modify of each twin (the touch pass)
row modify_4conn_10k us_per_cmd --conns 4 --twins 10000 --touch-all
row modify_4conn_100k us_per_cmd --conns 4 --twins 100000 --touch-all
row modify_4conn_100k_redb us_per_cmd --conns 4 --twins 100000 --store redb --touch-all
row events_peak ev_p99_us --conns 4 --subscribers 1 --client-threads 2
# command -> event at 10 % load (one connection paced at 6,000 cmd/s), one subscriber
row events_10pct ev_p99_us --conns 1 --window 1024 --rate 6000 --subscribers 1
row events_10pct_redb ev_p99_us --conns 1 --window 1024 --rate 6000 --subscribers 1 --store redb
row roundtrip tput --conns 1 --window 1
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== summary (medians of $ROUNDS runs each; us_per_cmd = server CPU per command)"
grep '^AB ' "$OUT"
grep '^RESULT' "$OUT" | while read -r line; do
  # wait srv/cli: threads of the server / of loadgen runnable but waiting for a CPU (average)
  printf '%-28s %8s cmd/s  %7s us/cmd  p99 %7s us  ev p99 %7s us  other %s cores  wait srv %s cli %s\n' \
    "$(echo "$line" | kv label)" "$(echo "$line" | kv tput)" "$(echo "$line" | kv us_per_cmd)" \
    "$(echo "$line" | kv p99_us)" "$(echo "$line" | kv ev_p99_us)" "$(echo "$line" | kv other_cores)" \
    "$(echo "$line" | kv server_wait)" "$(echo "$line" | kv client_wait)"
done
echo "log: $OUT"
