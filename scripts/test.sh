#!/usr/bin/env bash
# The one test command (README, CI). On a fresh Debian box it first installs what building and
# testing need: a C compiler (build-essential: ring, the linker), mosquitto and its clients (MQTT
# bridge tests, docs/mqtt.md), curl (README/docs examples), openssl (test certificates), systemd
# (systemd-analyze checks the unit offline), procps, and the rustfmt and clippy components;
# whatever it cannot install it names, and stops. Then: cargo fmt --check, clippy, every test,
# and the MQTT TLS test again with the optional `mqtt-tls` feature. A test that cannot run here
# passes but prints `SKIPPED: reason`; the summary at the end counts and lists those. The full
# test output is kept in target/test-output.log. Exit status 0 only if every step passed.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS

# ---- system packages (Debian/Ubuntu) ----
missing=()
if command -v dpkg-query >/dev/null 2>&1; then
  installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
  installed build-essential || missing+=(build-essential)
  command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
  command -v mosquitto_pub >/dev/null 2>&1 || missing+=(mosquitto-clients)
  command -v curl >/dev/null 2>&1 || missing+=(curl)
  command -v openssl >/dev/null 2>&1 || missing+=(openssl)
  command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
  command -v ps >/dev/null 2>&1 || missing+=(procps)
  if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then
      if command -v sudo >/dev/null 2>&1; then
        sudo=sudo
      else
        echo "scripts/test.sh: needs these Debian packages: ${missing[*]}" >&2
        echo "  not root and no sudo: install them as root (apt-get install ${missing[*]}), then run again" >&2
        exit 1
      fi
    fi
    echo "== apt-get install ${missing[*]}"
    if ! { $sudo apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }; then
      echo "scripts/test.sh: could not install: ${missing[*]} (see apt-get's message above)" >&2
      exit 1
    fi
  fi
else
  echo "== no dpkg: not a Debian box; make sure a C compiler, mosquitto, curl, openssl and systemd-analyze are installed"
fi
# Debian installs mosquitto with a system service; the tests start their own brokers on free ports.
export PATH="$PATH:/usr/sbin"

# ---- Rust toolchain components ----
if ! command -v cargo >/dev/null 2>&1; then
  echo "scripts/test.sh: cargo not found. Install Rust with rustup (https://rustup.rs):" >&2
  echo "  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y && . ~/.cargo/env" >&2
  exit 1
fi
for c in rustfmt clippy; do
  sub=fmt
  if [ "$c" = clippy ]; then sub=clippy; fi
  if ! cargo "$sub" --version >/dev/null 2>&1; then
    if command -v rustup >/dev/null 2>&1; then
      echo "== rustup component add $c"
      rustup component add "$c"
    else
      echo "scripts/test.sh: cargo $sub is missing and there is no rustup to add the $c component" >&2
      exit 1
    fi
  fi
done

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets -- -D warnings
echo "== cargo clippy --features mqtt-tls,bench (criterion micro-benchmarks)"
cargo clippy --features mqtt-tls,bench --all-targets -- -D warnings

# ---- tests ----
# --show-output keeps the output of passing tests (where SKIPPED lines are); the terminal gets
# everything except that output, plus the SKIPPED lines; the log gets everything.
log=target/test-output.log
mkdir -p target
: >"$log"
show() {
  awk '
    /^successes:$/ { quiet = 1 }
    /^failures:$/ || /^test result:/ { quiet = 0 }
    !quiet || /^SKIPPED/ { print; fflush() }
  '
}
# scripts/test.sh [CARGO TEST ARGS] [-- HARNESS ARGS]
cargo_args=() harness_args=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do cargo_args+=("$1"); shift; done
if [ $# -gt 0 ]; then shift; harness_args=("$@"); fi
status=0
echo "== cargo test"
set +e
cargo test --no-fail-fast ${cargo_args[@]+"${cargo_args[@]}"} -- --show-output ${harness_args[@]+"${harness_args[@]}"} 2>&1 | tee -a "$log" | show
st=${PIPESTATUS[0]}
[ "$st" -eq 0 ] || status=$st
echo "== cargo test --features mqtt-tls (tests/mqtt/mqtt_tls.rs)"
cargo test --features mqtt-tls --test mqtt -- --show-output mqtt_tls 2>&1 | tee -a "$log" | show
st=${PIPESTATUS[0]}
[ "$st" -eq 0 ] || status=$st
set -e

# ---- summary ----
awk -v secs=$((SECONDS - start)) '
  /^ *Running / { bin = $2 }
  /^ *Doc-tests / { bin = "doc-tests " $2 }
  /^---- .* stdout ----$/ { name = $2 }
  /^SKIPPED/ { skipped[++n] = bin " " name ": " $0 }
  /^test result:/ {
    for (i = 1; i <= NF; i++) {
      if ($(i + 1) ~ /^passed;?$/) passed += $i
      if ($(i + 1) ~ /^failed;?$/) failed += $i
      if ($(i + 1) ~ /^ignored;?$/) ignored += $i
    }
  }
  END {
    printf "== summary: %d passed, %d failed, %d ignored; %d SKIPPED (tests, or parts of tests, that could not run here, listed below); %d min %d s\n",
      passed, failed, ignored, n, secs / 60, secs % 60
    for (i = 1; i <= n; i++) print "   " skipped[i]
  }
' "$log"
if [ "$status" -ne 0 ]; then
  echo "== FAILED (cargo test exit status $status); full output: $log" >&2
fi
exit "$status"
