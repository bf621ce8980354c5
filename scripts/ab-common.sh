# Shared by the scripts/bench-ab-*.sh A/B benchmarks (sourced, not run): the log file every line
# is copied to, the header naming both binaries, and the median/ratio helpers.
# Usage: ab_start NAME BIN_A BIN_B   (sets OUT=target/bench-results/NAME-<time>.txt)

kv() { sed -n "s/.* $1=\([^ ]*\).*/\1/p"; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR) print (NR % 2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2); else print "nan"}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0) printf "%.2f", b / a; else print "?" }'; }

ab_start() {
  mkdir -p target/bench-results
  OUT="target/bench-results/$1-$(date -u +%Y%m%dT%H%M%SZ).txt"
  exec > >(tee "$OUT") 2>&1
  echo "A=$2 ($(stat -c %y "$2" | cut -d. -f1))"
  echo "B=$3 ($(stat -c %y "$3" | cut -d. -f1))"
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
}
