#!/usr/bin/env bash
# The one test command (README, CI): installs what the tests need on a fresh Debian box
# (mosquitto for the MQTT bridge tests, curl for the HTTP doc-example tests, openssl for the
# MQTT TLS test certificates), then checks formatting and lints and runs every test, and the
# TLS test again with the optional `mqtt-tls` feature.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

need_apt=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need_apt+=(mosquitto)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
# systemd-analyze checks the service unit offline (tests/ops/ops_systemd.rs); no running systemd needed
command -v systemd-analyze >/dev/null 2>&1 || need_apt+=(systemd)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "== installing: ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
# Debian installs mosquitto with a system service; the tests start their own brokers on free ports.
export PATH="$PATH:/usr/sbin"

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets -- -D warnings
echo "== cargo test"
cargo test --no-fail-fast "$@"
echo "== features mqtt-tls and bench (criterion micro-benchmarks): clippy; tests/mqtt/mqtt_tls.rs"
cargo clippy --features mqtt-tls,bench --all-targets -- -D warnings
cargo test --features mqtt-tls --test mqtt -- mqtt_tls
