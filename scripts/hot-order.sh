#!/usr/bin/env bash
# Regenerates link/hot.txt: the functions an idle gateway runs (start-up on a populated redb
# store, one WebSocket retrieve, idle), which build.rs hands to lld as --symbol-ordering-file so
# they sit together at the start of .text (issue 15, idle RSS; BENCHMARKS.md "Idle RSS and code
# placement"). Names that no longer exist are skipped by the linker, so a stale list only costs
# RSS, never the build. Two passes over the same scenario: callgrind names every function run; a
# native run with perf's page-fault events adds code valgrind's CPU model hides (SHA-NI, SIMD).
# Needs valgrind, python3 and (optional) perf, on an x86_64 glibc host (scripts/hot-order.py).
# Rerun it after a Rust toolchain or dependency update (symbol names carry crate hashes).
# Each run keeps the previous list's names that still exist; run it twice after big changes.
# Usage: scripts/hot-order.sh [TWINS]   (twins created before the profiled restart, default 200)
set -euo pipefail
cd "$(dirname "$0")/.."
TWINS=${1:-200}
T=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$T"' EXIT
MAP=$PWD/target/hot-order.map
# the map names each function section of exactly this binary (only the final link reruns)
EDGETWIN_LINK_MAP=$MAP nice -n 5 cargo build --release --bin edgetwin
BIN=$PWD/target/release/edgetwin
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_listen() { for _ in $(seq 1200); do grep -q "listening on" "$1" && return 0; sleep 0.1; done; cat "$1" >&2; return 1; }
# the config `loadgen footprint` runs with; `run CMD... &` execs, so $! is the process
printf 'threads = 0\n' >"$T/cfg.toml"
run() { exec "$@" run --listen "127.0.0.1:$P" --store redb --data "$T/data" --config "$T/cfg.toml"; }
retrieve() {
  echo '{"topic":"bench/t0/things/twin/commands/retrieve","headers":{"correlation-id":"cold"},"path":"/"}' |
    "$BIN" ws -u ditto:ditto "ws://127.0.0.1:$P/ws/2" | grep -q '"status":200'
}

# 1. a populated store (natively)
P=$(port)
run "$BIN" >"$T/pop.log" 2>&1 &
pid=$!
wait_listen "$T/pop.log"
for k in $(seq 0 $((TWINS - 1))); do
  echo "{\"topic\":\"bench/t$k/things/twin/commands/modify\",\"headers\":{\"correlation-id\":\"s$k\"},\"path\":\"/\",\"value\":{\"attributes\":{\"a0\":\"xxxxxxxxxxxxxxxx\"},\"features\":{\"f\":{\"properties\":{\"p0\":\"xxxxxxxxxxxxxxxx\"}}}}}"
done | "$BIN" ws -u ditto:ditto "ws://127.0.0.1:$P/ws/2" >"$T/pop.out"
kill -TERM $pid
wait $pid || true

# 2. the profiled restart under callgrind: start-up, one retrieve (as `loadgen footprint`), idle
P=$(port)
run valgrind --tool=callgrind --dump-instr=yes --callgrind-out-file="$T/cg.out" \
  --compress-strings=no --compress-pos=no "$BIN" >"$T/cg.log" 2>&1 &
pid=$!
wait_listen "$T/cg.log"
retrieve
sleep 3
# dump the profile (cg.out.1) before the shutdown, so shutdown code stays out of the list
callgrind_control -d $pid >/dev/null
sleep 1
kill -TERM $pid
wait $pid || true

# 3. the same natively, recording the page faults of instruction fetches until the SIGTERM
: >"$T/pf.txt"
if command -v perf >/dev/null; then
  P=$(port)
  run perf record -q -e exceptions:page_fault_user -o "$T/pf.data" -- "$BIN" >"$T/pf.log" 2>&1 &
  pid=$!
  wait_listen "$T/pf.log"
  retrieve
  sleep 3
  stop=$(cut -d' ' -f1 /proc/uptime)
  kill -TERM "$(pgrep -P $pid)"
  wait $pid || true
  perf script -i "$T/pf.data" --show-mmap-events -F time,trace 2>/dev/null |
    awk -v stop="$stop" '/PERF_RECORD_MMAP2/ || $1 + 0 < stop' >"$T/pf.txt"
fi

# 4. addresses -> functions (link order)
readelf -SW "$BIN" | grep ' \.text ' >"$T/text.sec"
python3 scripts/hot-order.py "$T/cg.out.1" "$T/pf.txt" "$T/text.sec" "$MAP" "$BIN" link/hot.txt \
  >"$T/hot.txt"
mv "$T/hot.txt" link/hot.txt
echo "wrote link/hot.txt ($(wc -l <link/hot.txt) names); rebuild: cargo build --release"
