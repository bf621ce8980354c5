#!/usr/bin/env bash
# Issue 21's search-count row for two search_bench binaries in ONE run, interleaved A B A B, so a
# busy shared machine slows both alike: 100k twins with a policy each on redb, the count rows only
# (SEARCH_BENCH_ONLY=count); prints each run's rows and the medians of the 1,000-match count.
# Usage: scripts/bench-ab-search.sh BENCH_A BENCH_B [PAIRS] [TWINS] [ROUNDS]
#        (copies of target/release/examples/search_bench; defaults 2 pairs, 100000 twins, 200 rounds)
set -euo pipefail
cd "$(dirname "$0")/.."
A=$1 B=$2 PAIRS=${3:-2} N=${4:-100000} ROUNDS=${5:-200}
. scripts/ab-common.sh
ab_start ab-search "$A" "$B"
declare -A P50 P99
for r in $(seq "$PAIRS"); do
  for who in A B; do
    bin=$A; [ "$who" = B ] && bin=$B
    echo "--- $who run $r"
    rows=$(SEARCH_BENCH_ONLY=count "$bin" "$N" "$ROUNDS" redb own | tee /dev/stderr | grep '^| count eq')
    P50[$who]+="$(echo "$rows" | awk -F'|' '{print $3}') "
    P99[$who]+="$(echo "$rows" | awk -F'|' '{print $4}') "
  done
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
for who in A B; do
  p50=$(echo "${P50[$who]}" | tr ' ' '\n' | grep . | median)
  p99=$(echo "${P99[$who]}" | tr ' ' '\n' | grep . | median)
  echo "SEARCH-COUNT $who p50_ms=$p50 p99_ms=$p99 (runs: p50 ${P50[$who]}/ p99 ${P99[$who]})"
  eval "M50_$who=$p50 M99_$who=$p99"
done
awk -v a="$M50_A" -v b="$M50_B" -v c="$M99_A" -v d="$M99_B" \
  'BEGIN {printf "RATIO B/A p50 %.2f p99 %.2f\n", b/a, d/c}'
echo "log: $OUT"
