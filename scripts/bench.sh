#!/usr/bin/env bash
# Reproduces every figure of BENCHMARKS.md on this machine in one run (< 10 minutes on 2 cores,
# release builds included): machine description, binary size, fsync floor, load scenarios
# (edgetwin next to the raw WebSocket echo baseline in the same run), footprint, micro-benchmarks.
# Usage: scripts/bench.sh [--quick] [--no-micro]     (--quick: 2 s windows, for a smoke run)
#        scripts/bench.sh --summary LOG   (the summary and issue 21 targets of an earlier run)
# Output: a log under target/bench-results/ and a summary at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

# The summary of a log (also: scripts/bench.sh --summary LOG, for a log of an earlier run)
summary() {
  local OUT=$1
  kv() { sed -n "s/.* $1=\([^ ]*\).*/\1/p"; }
  grep '^RESULT' "$OUT" | while read -r line; do
    printf '%-22s %-9s %9s cmd/s  p50 %6s us  p99 %6s us  p999 %6s us  ev p99 %6s us  rss %6s KiB  %5s us/cmd  other %s cores\n' \
      "$(echo "$line" | kv label)" "$(echo "$line" | kv target)" "$(echo "$line" | kv tput)" \
      "$(echo "$line" | kv p50_us)" "$(echo "$line" | kv p99_us)" "$(echo "$line" | kv p999_us)" \
      "$(echo "$line" | kv ev_p99_us)" "$(echo "$line" | kv rss_kib)" "$(echo "$line" | kv us_per_cmd)" \
      "$(echo "$line" | kv other_cores)"
  done
  grep -E '^(RATIO|FIRST|FOOTPRINT|FSYNC|BINARY|FLASH)' "$OUT"
  # Issue 21's targets, from the rows above (sled unless the label says redb)
  r() { grep "^RESULT label=$1 target=$2 " "$OUT" | kv "$3" | head -1; }
  f() { grep "^FIRST label=$1 target=edgetwin " "$OUT" | kv "$2" | head -1; }
  pct() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f %%", 100 * a / b; else print "?" }'; }
  T100=$(r modify_4conn edgetwin tput)
  echo "TARGETS (issue 21; sled unless noted)"
  echo "  server CPU/cmd, 100 twins:        $(r modify_4conn edgetwin us_per_cmd) us   (target <= 5)"
  echo "  throughput, 100 twins:            $T100 cmd/s = $(pct "$T100" "$(r modify_4conn echo tput)") of echo   (target >= 250k)"
  echo "  10k / 100k vs 100 twins:          $(pct "$(r modify_4conn_10k edgetwin tput)" "$T100") / $(pct "$(r modify_4conn_100k edgetwin tput)" "$T100") ($(r modify_4conn_10k edgetwin tput) / $(r modify_4conn_100k edgetwin tput); redb $(r modify_4conn_100k_redb edgetwin tput))   (target >= 60 % at 100k)"
  echo "  server CPU/cmd, 100k twins:       $(r modify_4conn_100k edgetwin us_per_cmd) us (redb $(r modify_4conn_100k_redb edgetwin us_per_cmd))   (target <= 10; steady state: every twin written before)"
  echo "  first modify of a twin, 100k:     $(f modify_4conn_100k us_per_cmd) us, $(f modify_4conn_100k tput) cmd/s (redb $(f modify_4conn_100k_redb us_per_cmd) us, $(f modify_4conn_100k_redb tput) cmd/s)"
  echo "  cmd->event p99 at 10 % load:      $(r events_10pct edgetwin ev_p99_us) us (redb $(r events_10pct_redb edgetwin ev_p99_us))   (target <= 1000)"
  echo "  cmd->event p99 at peak:           $(r events_peak edgetwin ev_p99_us) us   (target <= 10000)"
  echo "  one command at a time vs echo:    $(pct "$(r roundtrip edgetwin tput)" "$(r roundtrip echo tput)")   (target >= 80 %)"
  echo "  search count 1,000 of 100k p99:   $(grep -m1 '^| count eq attributes/room' "$OUT" | cut -d'|' -f4 | tr -d ' ') ms   (target <= 5)"
  echo "log: $OUT"
}

SECS=4
MICRO=1
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) SECS=2 ;;
    --no-micro) MICRO=0 ;;
    --summary) summary "$2"; exit 0 ;;
    *) echo "usage: $0 [--quick] [--no-micro] | --summary LOG" >&2; exit 2 ;;
  esac
  shift
done

mkdir -p target/bench-results
OUT="target/bench-results/bench-$(date -u +%Y%m%dT%H%M%SZ).txt"
exec > >(tee "$OUT") 2>&1
T0=$(date +%s)

echo "== machine"
echo "date: $(date -u +%FT%TZ)"
echo "nproc: $(nproc)"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
echo "kernel: $(uname -sr)"
echo "memory: $(free -m | awk '/Mem:/ {print $2 " MiB"}')"
echo "disk: $(findmnt -no SOURCE,FSTYPE -T "${TMPDIR:-/tmp}") (data dirs live in ${TMPDIR:-/tmp})"
echo "rustc: $(rustc -V)"
echo "git: $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo ' (dirty)')"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"

echo "== build (release, LTO; the load generator is an example, not part of the binary)"
# the binary alone, as `cargo build --release` makes it: built together with an example, its
# dependencies' features are unified with the dev-dependencies', every symbol hash changes and
# link/hot.txt matches little of it (idle RSS 4.7 -> 7.1 MiB, BENCHMARKS.md "End of the Dec 7
# forenoon session")
cargo build --release --bin edgetwin 2>&1 | tail -1
cargo build --release --example loadgen 2>&1 | tail -1
BIN=target/release/edgetwin
L=target/release/examples/loadgen

echo "== binary"
cp "$BIN" target/bench-results/edgetwin.stripped
strip target/bench-results/edgetwin.stripped
echo "BINARY release_bytes=$(stat -c %s "$BIN") stripped_bytes=$(stat -c %s target/bench-results/edgetwin.stripped)"

echo "== fsync floor"
$L fsync --n 300

load() { $L load --secs "$SECS" --warmup 1 "$@"; }

echo "== load"
# The targets' scenarios: modify-attribute, pipelined (window 64), no durability ack.
load --label modify_1conn --conns 1
load --label modify_4conn --conns 4
load --label persisted_4conn --conns 4 --acks persisted --target edgetwin
load --label persisted_16conn --conns 16 --window 16 --acks persisted --target edgetwin
# Events at 10% of the 4-connection peak, one subscriber; echo at the same rate = harness floor.
PEAK=$(grep -o 'RESULT label=modify_4conn target=edgetwin tput=[0-9]*' "$OUT" | grep -o '[0-9]*$' || echo 50000)
RATE=$((PEAK / 10))
load --label events_10pct --conns 1 --window 1024 --rate "$RATE" --subscribers 1
load --label events_10pct_redb --conns 1 --window 1024 --rate "$RATE" --subscribers 1 --store redb --target edgetwin
load --label events_peak --conns 4 --subscribers 1 --client-threads 2 --target edgetwin
# Context: one command at a time (round trip), a mixed workload, 10k twins, the redb backend.
load --label roundtrip --conns 1 --window 1
load --label mix_4conn --conns 4 --mix modify=60,merge=20,retrieve=20 --payload 256 --target edgetwin
# 10k/100k rows: --touch-all modifies every twin once before the window, so the window measures
# the steady state (twins written before) and the FIRST line the first modify of each twin.
load --label modify_4conn_10k --conns 4 --twins 10000 --touch-all --target edgetwin
load --label modify_4conn_redb --conns 4 --store redb --target edgetwin
load --label persisted_4conn_redb --conns 4 --acks persisted --store redb --target edgetwin
# Issue 21's scaling rows: the same load spread over 100k twins (each with its own policy).
load --label modify_4conn_100k --conns 4 --twins 100000 --touch-all --target edgetwin
load --label modify_4conn_100k_redb --conns 4 --twins 100000 --store redb --touch-all --target edgetwin

echo "== search count (examples/search_bench: 100k twins, a policy per twin, count rows only)"
cargo build --release --example search_bench 2>&1 | tail -1
SEARCH_BENCH_ONLY=count target/release/examples/search_bench 100000 200 sled own

echo "== MQTT bridge (examples/mqtt_bench: telemetry -> WS event next to mosquitto pub -> sub)"
if command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ]; then
  cargo build --release --example mqtt_bench 2>&1 | tail -1
  target/release/examples/mqtt_bench --rounds 3
else
  echo "skipped: mosquitto is not installed (scripts/test.sh installs it)"
fi

echo "== flash wear (examples/flash_bench: bytes written per update, per durability class and store)"
cargo build --release --example flash_bench 2>&1 | tail -1
target/release/examples/flash_bench --secs "$SECS"

echo "== footprint"
for store in sled redb; do
  $L footprint --store "$store" --twins 0 --idle-conns 1000
  $L footprint --store "$store" --twins 10000
  $L footprint --store "$store" --twins 100000
done

if [ "$MICRO" = 1 ]; then
  echo "== micro-benchmarks (criterion, bench profile without LTO, own target dir)"
  # build first, so a broken benchmark fails the script instead of printing nothing
  CARGO_TARGET_DIR=target/bench cargo bench --features bench --bench hot_paths --no-run 2>&1 | tail -1
  CARGO_TARGET_DIR=target/bench cargo bench --features bench --bench hot_paths -- \
    --warm-up-time 0.5 --measurement-time 1.5 --noplot 2>&1 |
    grep -E '^[a-z_]+ +time:|^[a-z_]+$|^ +time:' || true
fi

echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== summary ($(( $(date +%s) - T0 )) s)"
summary "$OUT"
