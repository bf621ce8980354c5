#!/usr/bin/env bash
# Login storm (RELIABILITY.md "Login storms"): 2,000 failed Basic logins, 100 at a time, each
# with a new wrong password, against the release binary; prints the server's peak RSS (VmHWM)
# and the refusal time of a known vs an unknown user. With `aarch64` it also runs the
# cross-built static musl binary under qemu-aarch64 (cross/build.sh; qemu-user as cross/test.sh).
#   scripts/login-storm.sh [aarch64] [-- extra loadgen options, e.g. --auth-toml 'max_failed_logins = 0; verifiers = 2']
# The failed-login limits are off by default here (`max_failed_logins = 0`): every attempt must
# reach the verifier pool, as in a storm spread over many addresses.
set -euo pipefail
cd "$(dirname "$0")/.."

arm=0
if [ "${1:-}" = aarch64 ]; then arm=1; shift; fi
if [ "${1:-}" = -- ]; then shift; fi

cargo build --release --locked --bin edgetwin --example loadgen
target/release/examples/loadgen login-storm --attempts 2000 --concurrency 100 "$@"
if [ "$arm" = 1 ]; then
  if ! command -v qemu-aarch64 >/dev/null 2>&1; then
    sudo=""; if [ "$(id -u)" -ne 0 ]; then sudo=sudo; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends qemu-user >/dev/null
  fi
  bash cross/build.sh aarch64
  target/release/examples/loadgen login-storm --attempts 2000 --concurrency 100 \
    --server-bin dist/edgetwin-aarch64/edgetwin --runner qemu-aarch64 --timing 10 "$@"
fi
