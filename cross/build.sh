#!/usr/bin/env bash
# Cross-builds release binaries of edgetwin for Raspberry Pi-class boards and bundles each with
# the systemd unit, the example config and install.sh:
#   cross/build.sh [aarch64] [armv7] [x86_64]      (default: aarch64 armv7)
# -> dist/edgetwin-<arch>/ and dist/edgetwin-<arch>.tar.gz; prints stripped sizes.
# On a fresh Debian box it installs what it needs first: the rustup target and Debian's cross
# gcc (armv7: the linker and ring's C; aarch64: ring's C only, it links with rust-lld).
#   aarch64 -> aarch64-unknown-linux-musl     static musl   (64-bit Pi OS, Pi 3/4/5, Zero 2)
#   armv7   -> armv7-unknown-linux-gnueabihf  static glibc  (32-bit Pi OS armhf, Pi 2/3/4)
# Linker, runner and flags per target are in .cargo/config.toml.
set -euo pipefail
cd "$(dirname "$0")/.."

arches=("$@")
if [ ${#arches[@]} -eq 0 ]; then arches=(aarch64 armv7); fi

triple() {
  case "$1" in
    aarch64) echo aarch64-unknown-linux-musl ;;
    armv7) echo armv7-unknown-linux-gnueabihf ;;
    x86_64) rustc -vV | sed -n 's/^host: //p' ;;
    *) echo "cross/build.sh: unknown arch '$1' (aarch64, armv7, x86_64)" >&2; return 1 ;;
  esac
}

# Debian packages, installed (after one apt-get update) if not installed yet.
apt_need() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    local sudo=""; if [ "$(id -u)" -ne 0 ]; then sudo=sudo; fi
    echo "== apt-get install ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

setup() {
  local t
  t="$(triple "$1")"
  if ! rustup target list --installed | grep -qx "$t"; then
    echo "== rustup target add $t"
    rustup target add "$t"
  fi
  case "$1" in
    aarch64)
      # a C compiler for ring (TLS); linking stays with rust-lld
      apt_need gcc-aarch64-linux-gnu libc6-dev-arm64-cross
      ;;
    armv7)
      # libc6-dev-armhf-cross (the glibc to link statically) is only a Recommends of the gcc
      apt_need gcc-arm-linux-gnueabihf libc6-dev-armhf-cross
      ;;
  esac
}

for a in "${arches[@]}"; do
  t="$(triple "$a")"
  setup "$a"
  echo "== cargo build --release --target $t"
  if [ "$a" = x86_64 ]; then
    cargo build --release --locked
    bin="target/release/edgetwin"
  else
    cargo build --release --locked --target "$t"
    bin="target/$t/release/edgetwin"
  fi
  out="dist/edgetwin-$a"
  rm -rf "$out"
  mkdir -p "$out"
  cp "$bin" "$out/edgetwin"
  cp systemd/edgetwin.service systemd/edgetwin.toml systemd/install.sh "$out/"
  tar -C dist -czf "dist/edgetwin-$a.tar.gz" "edgetwin-$a"
  size=$(stat -c %s "$out/edgetwin")
  echo "== $out/edgetwin: $size bytes ($((size / 1024)) KiB), $(file -b "$out/edgetwin" 2>/dev/null | cut -d, -f1-2 || true)"
done
