#!/usr/bin/env bash
# Issue 15's disk and flash rows with history on (the default) for two edgetwin binaries in ONE
# run, interleaved A B A B, printing each run and B/A: disk per twin at 100k twins after a
# restart (`loadgen footprint --store redb --twins 100000`, with the history breakdown) and bytes
# written per update, nobody waits, 300/s over 100 twins (`flash_bench`, 60 s windows).
# Usage: scripts/bench-ab-disk.sh BIN_A BIN_B [ROUNDS]   (ROUNDS per binary, default 2)
# FP_CONFIG='[history]\nheaders_to_persist = ["ditto-originator"]' adds config lines to the
# footprint runs; FLASH=0 skips the flash_bench rounds.
# Needs target/release/examples/{loadgen,flash_bench}
# (cargo build --release --bin edgetwin --example loadgen --example flash_bench).
set -euo pipefail
cd "$(dirname "$0")/.."
A=$(realpath "$1") B=$(realpath "$2") ROUNDS=${3:-2}
L=target/release/examples/loadgen
. scripts/ab-common.sh
ab_start ab-disk "$A" "$B"
# flash_bench runs the edgetwin next to its own directory: one copy per binary
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
for who in A B; do
  mkdir -p "$T/$who/examples"
  cp target/release/examples/flash_bench "$T/$who/examples/"
done
cp "$A" "$T/A/edgetwin"
cp "$B" "$T/B/edgetwin"


for r in $(seq "$ROUNDS"); do
  for who in A B; do
    bin=$A; [ "$who" = B ] && bin=$B
    echo "== footprint $who round $r"
    $L footprint --store redb --twins 100000 --server-bin "$bin" --breakdown true \
      --config "${FP_CONFIG:-}" |
      sed "s/^FOOTPRINT label=/FOOTPRINT label=$who./"
  done
done
for r in $(seq "$ROUNDS"); do
  [ "${FLASH:-1}" = 0 ] && break
  for who in A B; do
    echo "== flash_bench $who round $r"
    "$T/$who/examples/flash_bench" --stores redb --rates 300 --writers 1 --classes interval \
      --mqtt-rates "" --secs 60 | sed "s/^/$who: /"
  done
done
for who in A B; do
  grep "^FOOTPRINT label=$who\." "$OUT" | kv disk_alloc_bytes | awk '{print $1 / 100000}' |
    median > "$T/fp.$who"
done
fa=$(cat "$T/fp.A") fb=$(cat "$T/fp.B")
echo "AB disk_alloc_bytes_per_twin A=$fa B=$fb B/A=$(ratio "$fa" "$fb")"
for who in A B; do
  grep "^$who: FLASH .*class=interval" "$OUT" | kv per_update | median > "$T/fl.$who"
done
la=$(cat "$T/fl.A") lb=$(cat "$T/fl.B")
echo "AB bytes_per_update_interval_300 A=$la B=$lb B/A=$(ratio "$la" "$lb")"
