#!/usr/bin/env bash
# Reproduces every figure of BENCHMARKS.md on this machine in one run (< 10 minutes on 2 cores,
# release builds included): machine description, binary size, fsync floor, load scenarios
# (edgetwin next to the raw WebSocket echo baseline in the same run), footprint, micro-benchmarks.
# Usage: scripts/bench.sh [--quick] [--no-micro]     (--quick: 2 s windows, for a smoke run)
# Output: a log under target/bench-results/ and a summary at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

SECS=4
MICRO=1
for a in "$@"; do
  case "$a" in
    --quick) SECS=2 ;;
    --no-micro) MICRO=0 ;;
    *) echo "usage: $0 [--quick] [--no-micro]" >&2; exit 2 ;;
  esac
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
cargo build --release --bin edgetwin --example loadgen 2>&1 | tail -1
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
load --label modify_4conn_10k --conns 4 --twins 10000 --target edgetwin
load --label modify_4conn_redb --conns 4 --store redb --target edgetwin
load --label persisted_4conn_redb --conns 4 --acks persisted --store redb --target edgetwin

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
kv() { sed -n "s/.* $1=\([^ ]*\).*/\1/p"; }
grep '^RESULT' "$OUT" | while read -r line; do
  printf '%-22s %-9s %9s cmd/s  p50 %6s us  p99 %6s us  p999 %6s us  ev p99 %6s us  rss %6s KiB  %5s us/cmd  other %s cores\n' \
    "$(echo "$line" | kv label)" "$(echo "$line" | kv target)" "$(echo "$line" | kv tput)" \
    "$(echo "$line" | kv p50_us)" "$(echo "$line" | kv p99_us)" "$(echo "$line" | kv p999_us)" \
    "$(echo "$line" | kv ev_p99_us)" "$(echo "$line" | kv rss_kib)" "$(echo "$line" | kv us_per_cmd)" \
    "$(echo "$line" | kv other_cores)"
done
grep -E '^(RATIO|FOOTPRINT|FSYNC|BINARY|FLASH)' "$OUT"
echo "log: $OUT"
