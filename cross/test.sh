#!/usr/bin/env bash
# Tests the cross-built binaries under qemu-user (installed here if missing):
#   cross/test.sh [--no-unit] [aarch64] [armv7]      (default: aarch64 armv7)
# For each arch: cross/build.sh builds the release binary; the end-to-end tests
# (tests/ops/ops_smoke.rs: /ws/2 create + retrieve, HTTP checks, SIGTERM -> exit 0 without losing
# answered writes, restart with the data; tests/ops/ops_service.rs: READY/WATCHDOG/STOPPING) run
# against it through qemu (EDGETWIN_BIN + EDGETWIN_RUNNER); then the crate's unit tests run
# under emulation (cargo's runner from .cargo/config.toml), unless --no-unit.
set -euo pipefail
cd "$(dirname "$0")/.."

unit=1
arches=()
for a in "$@"; do
  case "$a" in
    --no-unit) unit=0 ;;
    *) arches+=("$a") ;;
  esac
done
if [ ${#arches[@]} -eq 0 ]; then arches=(aarch64 armv7); fi

if ! command -v qemu-aarch64 >/dev/null 2>&1 || ! command -v qemu-arm >/dev/null 2>&1; then
  sudo=""; if [ "$(id -u)" -ne 0 ]; then sudo=sudo; fi
  echo "== apt-get install qemu-user"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends qemu-user >/dev/null
fi

for a in "${arches[@]}"; do
  case "$a" in
    aarch64) t=aarch64-unknown-linux-musl qemu=qemu-aarch64 ;;
    armv7) t=armv7-unknown-linux-gnueabihf qemu=qemu-arm ;;
    *) echo "cross/test.sh: unknown arch '$a' (aarch64, armv7)" >&2; exit 2 ;;
  esac
  bash cross/build.sh "$a"
  echo "== $a: end-to-end tests against dist/edgetwin-$a/edgetwin under $qemu"
  EDGETWIN_BIN="$PWD/dist/edgetwin-$a/edgetwin" EDGETWIN_RUNNER="$qemu" \
    cargo test --locked --test ops -- ops_smoke:: ops_service::
  if [ "$unit" = 1 ]; then
    # crash_kill9 re-executes its own test binary as a child; without binfmt_misc (containers,
    # CI) the kernel cannot start an ARM child, so only that test is left out under emulation.
    echo "== $a: unit tests under $qemu"
    # the fuzz targets (src/fuzz) get 2 s each under emulation (8 s natively)
    EDGETWIN_FUZZ_SECS=2 cargo test --locked --lib --target "$t" -- --skip crash_kill9
  fi
done
