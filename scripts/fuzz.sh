#!/usr/bin/env bash
# Long fuzz runs of the harnesses in src/fuzz (CI runs each for a few seconds in `cargo test`):
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]      (default: 600 s, every target)
# FUZZ_ENGINE=libfuzzer (default when `cargo fuzz` is installed): coverage-guided libFuzzer via
#   cargo-fuzz (fuzz/), seeded from tests/conformance; needs a nightly compiler, or stable with
#   RUSTC_BOOTSTRAP=1 (set here). Findings land in fuzz/artifacts/<target>/.
# FUZZ_ENGINE=stable: the stable seeded mutator of `cargo test` in an optimized build with
#   overflow checks (profile `fuzz`); FUZZ_SEED picks the mutation sequence. Findings land in
#   target/fuzz-failures/ with the command that replays them.
# JOBS targets run at a time (default: number of CPUs), niced. Prints one line per target:
#   fuzz <target>: <inputs> inputs ... / libfuzzer <target>: <runs> runs in <s> s, <findings>
set -euo pipefail
cd "$(dirname "$0")/.."

secs="${1:-600}"
shift || true
all=(topic envelope headers pointer control message_path policy_path ids twin_command
  policy_command merge rql search_options fields cursor mqtt_inbound mqtt_mapping config
  http_request cloudevents backup_file stored_value read_summary)
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then targets=("${all[@]}"); fi
jobs="${JOBS:-$(nproc)}"
engine="${FUZZ_ENGINE:-}"
if [ -z "$engine" ]; then
  if cargo fuzz --version >/dev/null 2>&1; then engine=libfuzzer; else engine=stable; fi
fi

if [ "$engine" = stable ]; then
  filters=()
  for t in "${targets[@]}"; do filters+=("fuzz::tests::$t"); done
  seed="${FUZZ_SEED:-$RANDOM}"
  echo "== stable mutator, $secs s per target, seed $seed, $jobs at a time"
  mkdir -p target
  EDGETWIN_FUZZ_SECS="$secs" EDGETWIN_FUZZ_ITERS=0 EDGETWIN_FUZZ_SEED="$seed" \
    nice -n 10 cargo test --profile fuzz --lib -- --exact "${filters[@]}" \
    --nocapture --test-threads="$jobs" 2>&1 | tee target/fuzz-stable.log |
    grep -oE 'fuzz [a-z_]+(: [0-9]+ inputs.*| \(seed.*)|panicked.*|^input:.*|^saved:.*|^replay:.*|test result.*'
  exit "${PIPESTATUS[0]}"
fi

export RUSTC_BOOTSTRAP=1
echo "== libFuzzer (cargo-fuzz), $secs s per target, $jobs at a time"
EDGETWIN_FUZZ_EXPORT="$PWD/fuzz/corpus" cargo test --lib -- fuzz::tests:: --test-threads=1 \
  --nocapture >/dev/null
(cd fuzz && nice -n 10 cargo fuzz build -O)
run_one() {
  local t="$1" secs="$2" log
  log="fuzz/artifacts/$t.log"
  mkdir -p "fuzz/artifacts/$t"
  (cd fuzz && nice -n 10 cargo fuzz run -O "$t" "corpus/$t" -- -max_total_time="$secs" \
    -max_len=65536 -rss_limit_mb=2048 -timeout=10 -print_final_stats=1) >"$log" 2>&1 || true
  local runs findings
  runs=$(grep -Eo 'Done [0-9]+ runs in [0-9]+ second' "$log" | tail -1 || true)
  findings=$(find "fuzz/artifacts/$t" -type f \( -name 'crash-*' -o -name 'oom-*' -o -name 'timeout-*' \) | wc -l)
  echo "libfuzzer $t: ${runs:-no summary (see $log)}, $findings findings in fuzz/artifacts/$t"
}
export -f run_one
printf '%s\n' "${targets[@]}" | xargs -P "$jobs" -I{} bash -c "run_one {} $secs"
