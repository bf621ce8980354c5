#!/usr/bin/env bash
# Issue 15's idle RSS row for several edgetwin binaries in ONE run, interleaved: each round runs
# `loadgen footprint --store redb --twins 100000` once per binary as given (e.g. as cargo wrote
# it) and once per fresh copy of it (`install -m755`, as scripts/install and a package do),
# then prints min / median / max per binary and mode.
# Usage: scripts/bench-ab-rss.sh ROUNDS BIN...   (needs target/release/examples/loadgen)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=$1
shift
L=target/release/examples/loadgen
mkdir -p target/bench-results
OUT="target/bench-results/ab-rss-$(date -u +%Y%m%dT%H%M%SZ).txt"
exec > >(tee "$OUT") 2>&1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
i=0
for b in "$@"; do
  echo "bin$i=$(realpath "$b") ($(stat -c '%s B, %y' "$b" | cut -d. -f1))"
  i=$((i + 1))
done
echo "kernel $(uname -r), load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$ROUNDS"); do
  i=0
  for b in "$@"; do
    for mode in built copy; do
      bin=$(realpath "$b")
      if [ $mode = copy ]; then
        rm -f "$T/edgetwin"
        install -m755 "$bin" "$T/edgetwin"
        bin=$T/edgetwin
      fi
      kib=$($L footprint --store redb --twins 100000 --server-bin "$bin" |
        sed -n 's/.* idle_rss_kib=\([0-9]*\).*/\1/p')
      echo "RSS bin$i $mode round $r idle_rss_kib=$kib ($(awk -v k="$kib" 'BEGIN{printf "%.2f", k/1024}') MiB)"
    done
    i=$((i + 1))
  done
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
i=0
for b in "$@"; do
  for mode in built copy; do
    grep "^RSS bin$i $mode " "$OUT" | sed 's/.*idle_rss_kib=\([0-9]*\).*/\1/' | sort -n |
      awk -v l="bin$i $mode" '{a[NR]=$1/1024} END {m=(NR%2?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2);
        printf "SUMMARY %s: idle RSS min %.2f / median %.2f / max %.2f MiB (%d runs)\n", l, a[1], m, a[NR], NR}'
  done
  i=$((i + 1))
done
