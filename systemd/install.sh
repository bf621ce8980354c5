#!/usr/bin/env bash
# Installs edgetwin as a systemd service: binary to /usr/local/bin, unit to /etc/systemd/system,
# example config to /etc/edgetwin/edgetwin.toml (never overwrites an existing one); then enables
# and (re)starts the service. The unit uses DynamicUser=yes, so no user account is created.
#
#   sudo ./install.sh [install] [--bin FILE] [--tls]  install or upgrade, enable, start
#   sudo ./install.sh uninstall [--purge]          stop, disable, remove binary and unit;
#                                                  config and data stay unless --purge
#   --tls        HTTPS/WSS: a self-signed certificate for this host's names and addresses in
#                /etc/edgetwin/tls/ (kept if there), [tls] set in the config if it has none.
#   --root DIR   lay the files out below DIR and enable offline (systemctl --root); no start.
# Run from an unpacked bundle (cross/build.sh) or from the repository (uses target/release).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
action=install
bin=""
root=""
purge=0
tls=0
while [ $# -gt 0 ]; do
  case "$1" in
    install | uninstall) action="$1" ;;
    --bin) bin="${2:?--bin needs a file}"; shift ;;
    --root) root="${2:?--root needs a directory}"; shift ;;
    --purge) purge=1 ;;
    --tls) tls=1 ;;
    -h | --help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done

if [ -z "$root" ] && [ "$(id -u)" -ne 0 ]; then
  echo "install.sh: run as root (sudo $0 $action)" >&2
  exit 1
fi
root="${root%/}"
live=0 # talk to a running systemd?
if [ -z "$root" ] && [ -d /run/systemd/system ]; then live=1; fi

sysctl() {
  if [ "$live" = 1 ]; then
    systemctl "$@"
  elif command -v systemctl >/dev/null 2>&1; then
    systemctl --root="${root:-/}" "$@" 2>/dev/null || true
  fi
}

unit_dst="$root/etc/systemd/system/edgetwin.service"
dropin_dir="$root/etc/systemd/system/edgetwin.service.d"
bin_dst="$root/usr/local/bin/edgetwin"
conf_dir="$root/etc/edgetwin"

if [ "$action" = uninstall ]; then
  if [ "$live" = 1 ]; then
    systemctl disable --now edgetwin.service 2>/dev/null || true
  else
    sysctl disable edgetwin.service
  fi
  rm -f "$bin_dst" "$unit_dst" "$dropin_dir/tls.conf"
  if [ "$live" = 1 ]; then systemctl daemon-reload; fi
  if [ "$purge" = 1 ]; then
    # DynamicUser keeps the state in /var/lib/private/edgetwin behind a /var/lib/edgetwin link.
    rm -rf "$conf_dir" "$root/var/lib/edgetwin" "$root/var/lib/private/edgetwin"
    echo "edgetwin removed, with its configuration and data"
  else
    echo "edgetwin removed; kept $conf_dir and $root/var/lib/edgetwin (remove with --purge)"
  fi
  exit 0
fi

if [ -z "$bin" ]; then
  for c in "$here/edgetwin" "$here/../target/release/edgetwin"; do
    if [ -f "$c" ]; then bin="$c"; break; fi
  done
fi
if [ -z "$bin" ] || [ ! -f "$bin" ]; then
  echo "install.sh: no edgetwin binary found (give --bin FILE, or build: cargo build --release)" >&2
  exit 1
fi
if ! "$bin" --help >/dev/null 2>&1; then
  echo "install.sh: $bin does not run on this machine (built for another architecture?)" >&2
  exit 1
fi

# Check the config that will be live (the kept one, or the example) before changing anything.
if [ -f "$conf_dir/edgetwin.toml" ]; then
  "$bin" check-config "$conf_dir/edgetwin.toml"
else
  "$bin" check-config "$here/edgetwin.toml" >/dev/null
fi

install -d -m 0755 "$root/usr/local/bin" "$root/etc/systemd/system" "$conf_dir"
install -m 0755 "$bin" "$bin_dst.new"
mv -f "$bin_dst.new" "$bin_dst"
install -m 0644 "$here/edgetwin.service" "$unit_dst"
if [ -f "$conf_dir/edgetwin.toml" ]; then
  install -m 0644 "$here/edgetwin.toml" "$conf_dir/edgetwin.toml.example"
  echo "kept $conf_dir/edgetwin.toml (the current example is edgetwin.toml.example)"
else
  install -m 0644 "$here/edgetwin.toml" "$conf_dir/edgetwin.toml"
fi

# --tls: certificate, key (0600 root), [tls] in the config, and a unit drop-in that hands the
# service a copy of the key it can read, named by EDGETWIN_TLS_KEY_FILE (overrides key_file;
# check-config, run as root, reads key_file itself).
if [ "$tls" = 1 ]; then
  tls_dir="$conf_dir/tls"
  if [ -f "$tls_dir/cert.pem" ] && [ -f "$tls_dir/key.pem" ]; then
    echo "kept $tls_dir/cert.pem and key.pem"
  else
    if ! command -v openssl >/dev/null 2>&1; then
      echo "install.sh: --tls needs openssl (apt-get install openssl)" >&2
      exit 1
    fi
    host="$(hostname)"
    san="DNS:$host,DNS:$host.local,DNS:localhost,IP:127.0.0.1,IP:::1"
    for ip in $(hostname -I 2>/dev/null || true); do san="$san,IP:$ip"; done
    install -d -m 0755 "$tls_dir"
    (umask 077 && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -keyout "$tls_dir/key.pem" -out "$tls_dir/cert.pem" -days 3650 -subj "/CN=$host" \
      -addext "subjectAltName=$san" -addext "basicConstraints=critical,CA:FALSE" \
      -addext "extendedKeyUsage=serverAuth" 2>/dev/null)
    chmod 0644 "$tls_dir/cert.pem"
    echo "created $tls_dir/cert.pem (self-signed, 10 years) for $san"
  fi
  install -d -m 0755 "$dropin_dir"
  cat >"$dropin_dir/tls.conf" <<'EOF'
# Written by install.sh --tls. The TLS key stays 0600 root; before each start a copy that only
# the service's dynamic user can read goes to its runtime directory (removed when it stops).
# (LoadCredential= would be the systemd way, but with DynamicUser=yes systemd 252 leaves the
# credential unreadable to the service.)
[Service]
RuntimeDirectory=edgetwin
RuntimeDirectoryMode=0700
ExecStartPre=+/bin/sh -c 'install -m 0400 -o "$$(stat -c %%u /run/edgetwin)" /etc/edgetwin/tls/key.pem /run/edgetwin/tls-key'
Environment=EDGETWIN_TLS_KEY_FILE=/run/edgetwin/tls-key
EOF
  conf="$conf_dir/edgetwin.toml"
  if grep -q '^#cert_file = "/etc/edgetwin/tls/cert.pem"' "$conf"; then
    sed -i -e 's|^#cert_file = "/etc/edgetwin/tls/cert.pem"|cert_file = "/etc/edgetwin/tls/cert.pem"|' \
      -e 's|^#key_file = "/etc/edgetwin/tls/key.pem"|key_file = "/etc/edgetwin/tls/key.pem"|' "$conf"
  elif ! grep -q '^\[tls\]' "$conf"; then
    printf '\n[tls]\ncert_file = "/etc/edgetwin/tls/cert.pem"\nkey_file = "/etc/edgetwin/tls/key.pem"\n' >>"$conf"
  fi
  if grep -q '^cert_file = "/etc/edgetwin/tls/cert.pem"' "$conf"; then
    echo "[tls] in $conf: HTTPS and WSS (clients trust $tls_dir/cert.pem)"
  else
    echo "$conf has its own [tls] section: left as it is" >&2
  fi
  if [ -z "$root" ]; then "$bin" check-config "$conf" >/dev/null; fi
fi

if [ "$live" = 1 ]; then
  systemctl daemon-reload
  systemctl enable edgetwin.service
  systemctl restart edgetwin.service
  systemctl --no-pager --lines=0 status edgetwin.service || true
else
  sysctl enable edgetwin.service
  echo "installed below ${root:-/} (no running systemd: not started)"
fi
