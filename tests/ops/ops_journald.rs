//! Logs reach a real journald with structured fields. The test starts `systemd-journald` in a
//! private mount namespace (tmpfs over /run and /var/log, so the host's journal is untouched),
//! runs edgetwin with stderr connected to the journal and `JOURNAL_STREAM` set as systemd
//! sets it, sends one twin command over /ws/2, and reads the entries back with `journalctl`.
//! Needs root (unshare -m) and systemd's binaries; skipped, saying why, where they are missing.

use crate::common;
use common::*;
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

const SCRIPT: &str = r#"
set -eu
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /var/log
mkdir -p /run/systemd/journal /run/log/journal
/lib/systemd/systemd-journald >/dev/null 2>&1 &
jpid=$!
epid=""
trap 'kill $epid $jpid 2>/dev/null || true' EXIT # whatever happens, stop what we started
for _ in $(seq 100); do [ -S /run/systemd/journal/stdout ] && break; sleep 0.05; done
systemd-cat -t edgetwin sh -c 'export JOURNAL_STREAM=$(stat -L -c "%d:%i" /proc/self/fd/2);
  exec "$0" --listen "$1" --data "$2"' "$BIN" "$ADDR" "$DATA" &
epid=$! # systemd-cat and sh exec, so this is edgetwin's pid
for _ in $(seq 200); do
  journalctl -D /run/log/journal -q SYSLOG_IDENTIFIER=edgetwin 2>/dev/null | grep -q listening && break
  sleep 0.05
done
echo started
read -r _go
kill -TERM "$epid"
for _ in $(seq 200); do
  journalctl -D /run/log/journal -q SYSLOG_IDENTIFIER=edgetwin 2>/dev/null | grep -q "store closed" && break
  sleep 0.05
done
journalctl -D /run/log/journal -o json --no-pager SYSLOG_IDENTIFIER=edgetwin
"#;

fn skip_reason() -> Option<String> {
    if !Path::new("/lib/systemd/systemd-journald").exists() {
        return Some("systemd-journald is not installed".into());
    }
    for tool in ["systemd-cat", "journalctl", "unshare"] {
        if Command::new(tool).arg("--version").output().is_err() {
            return Some(format!("{tool} is not installed"));
        }
    }
    let ok = Command::new("unshare")
        .args(["-m", "true"])
        .stderr(Stdio::null())
        .status();
    if !ok.is_ok_and(|s| s.success()) {
        return Some("no permission for a private mount namespace (unshare -m)".into());
    }
    None
}

#[test]
fn logs_reach_journald_with_thing_correlation_id_and_subject() {
    if let Some(why) = skip_reason() {
        eprintln!("SKIPPED logs_reach_journald_with_thing_correlation_id_and_subject: {why}");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut child = Command::new("unshare")
        .args(["-m", "bash", "-c", SCRIPT])
        .env("BIN", env!("CARGO_BIN_EXE_edgetwin"))
        .env("ADDR", addr.to_string())
        .env("DATA", tmp.path().join("data"))
        .env("RUST_LOG", "info,edgetwin::hub=debug")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "started");
    block_on(async {
        let mut ws = Ws::connect(addr, Some(("ditto", "ditto"))).await.unwrap();
        let mut c = command("jr:lamp-1", "create", "/", Some(serde_json::json!({})));
        c["headers"]["correlation-id"] = "jr-7".into();
        assert_eq!(ws.request(c).await["status"], 201);
    });
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let entries: Vec<Value> = out
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| serde_json::from_str(&l).ok())
        .collect();
    assert!(child.wait().unwrap().success());
    let find = |msg: &str| {
        entries
            .iter()
            .find(|e| e["MESSAGE"] == msg)
            .unwrap_or_else(|| panic!("no journal entry {msg:?} in {entries:#?}"))
    };
    let cmd = find("twin command");
    assert_eq!(cmd["_TRANSPORT"], "journal", "native protocol, not stdout");
    assert_eq!(cmd["THING"], "jr:lamp-1");
    assert_eq!(cmd["CORRELATION_ID"], "jr-7");
    assert_eq!(cmd["SUBJECT"], "nginx:ditto");
    assert_eq!(find("edgetwin listening")["ADDR"], addr.to_string());
    assert_eq!(find("store closed, bye")["_TRANSPORT"], "journal");
}
