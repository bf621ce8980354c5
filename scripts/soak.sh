#!/usr/bin/env bash
# Soak test (issue 14): mixed load against the release build (WS commands and subscribers, HTTP
# CRUD, SSE, MQTT telemetry through a real mosquitto, stalled readers, reconnect churn, bad
# frames), printing the gateway's RSS and open fds every 30 s and a verdict: RSS flat within
# 10 % after warm-up, fds back to the baseline once the load stopped (exit 1 otherwise).
# Usage: scripts/soak.sh [MINUTES] [--sample-secs S] [--warmup-minutes W] [--store auto|redb|sled]
#   MINUTES defaults to 30 (warm-up 5); `scripts/soak.sh 3 --sample-secs 10` is a smoke run.
# Needs mosquitto (apt-get install mosquitto) for the MQTT part (skipped, and said so, without).
# Runs niced (the machine may be shared); the log is also kept under target/soak-results/.
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES="${1:-30}"
[ $# -gt 0 ] && shift
mkdir -p target/soak-results
OUT="target/soak-results/soak-$(date -u +%Y%m%dT%H%M%SZ).txt"
echo "== build (release; the load driver is examples/soak)"
nice -n 5 cargo build --release --bin edgetwin --example soak 2>&1 | tail -1
echo "== soak, $MINUTES min, log in $OUT"
nice -n 5 target/release/examples/soak --minutes "$MINUTES" "$@" | tee "$OUT"
