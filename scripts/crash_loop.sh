#!/usr/bin/env bash
# kill -9 crash loop of RELIABILITY.md "Crash loop": the real binary is killed CYCLES times per
# store (sled and redb) at random moments under mixed load (writers waiting for durability and
# writers that do not); after every restart each acknowledged write must be there, of the others
# at most the last flush interval may be missing, revisions gap-free, the search index agreeing.
# Usage: scripts/crash_loop.sh [CYCLES]   (default 50; the test suite runs 3)
set -euo pipefail
cd "$(dirname "$0")/.."
CYCLES=${1:-50}
cargo build --tests 2>&1 | tail -1
EDGETWIN_CRASH_CYCLES=$CYCLES cargo test --test twin -- persistence::crash_loop --nocapture --test-threads=1 2>&1 |
  grep -E "CRASHLOOP|test result|panicked|FAILED"
