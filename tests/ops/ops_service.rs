//! The binary as a systemd service, with this test in the service manager's seat: it binds the
//! `NOTIFY_SOCKET` datagram socket and checks READY (after the listener is bound), periodic
//! WATCHDOG pings, STOPPING and exit 0 on SIGTERM; and that logs are plain text off a terminal.

use crate::common;
use common::*;
use std::os::unix::net::UnixDatagram;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Receives notifications until `pred` matches one (or panics after `WAIT`).
fn recv_until(sock: &UnixDatagram, seen: &mut Vec<String>, pred: impl Fn(&str) -> bool) {
    let deadline = Instant::now() + WAIT;
    let mut buf = [0u8; 512];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no matching notification; got {seen:?}");
        sock.set_read_timeout(Some(left)).unwrap();
        if let Ok(n) = sock.recv(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            let hit = pred(&msg);
            seen.push(msg);
            if hit {
                return;
            }
        }
    }
}

#[test]
fn notifies_ready_pings_the_watchdog_and_stops_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("notify");
    let sock = UnixDatagram::bind(&path).unwrap();
    let mut cmd = edgetwin_command();
    cmd.env("NOTIFY_SOCKET", &path)
        .env("WATCHDOG_USEC", "100000") // pings every 50 ms
        .env_remove("WATCHDOG_PID");
    let mut srv = Server::spawn(cmd, &tmp.path().join("data"), &[]);
    let mut seen = Vec::new();
    recv_until(&sock, &mut seen, |m| m.contains("READY=1"));
    assert_eq!(seen.len(), 1, "READY comes first: {seen:?}");
    assert!(
        seen[0].contains(&format!("STATUS=listening on {}", srv.addr)),
        "READY names the bound address: {seen:?}"
    );
    // The listener is bound by the time READY is sent.
    block_on(async {
        let mut ws = srv.ws().await;
        let r = ws
            .request(command("svc:t", "create", "/", Some(serde_json::json!({}))))
            .await;
        assert_eq!(r["status"], 201);
    });
    for _ in 0..3 {
        let before = seen.len();
        recv_until(&sock, &mut seen, |m| m == "WATCHDOG=1");
        assert!(seen.len() > before);
    }
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &srv.child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    recv_until(&sock, &mut seen, |m| m.contains("STOPPING=1"));
    let status = srv.child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{status:?}");
}

#[test]
fn no_watchdog_pings_for_another_pid() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("notify");
    let sock = UnixDatagram::bind(&path).unwrap();
    let mut cmd = edgetwin_command();
    // WATCHDOG_PID names a different process (as when the variable leaks to a child).
    cmd.env("NOTIFY_SOCKET", &path)
        .env("WATCHDOG_USEC", "100000")
        .env("WATCHDOG_PID", "1");
    let mut srv = Server::spawn(cmd, &tmp.path().join("data"), &[]);
    let mut seen = Vec::new();
    recv_until(&sock, &mut seen, |m| m.contains("READY=1"));
    // 20 ping intervals of silence: nothing but READY arrived.
    sock.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let mut buf = [0u8; 512];
    let got = sock.recv(&mut buf).map(|n| buf[..n].to_vec());
    assert!(
        got.is_err(),
        "unexpected notification: {:?}",
        got.map(|b| String::from_utf8_lossy(&b).into_owned())
    );
    assert_eq!(srv.terminate().code(), Some(0));
}

#[test]
fn logs_plain_text_with_structured_fields_off_a_terminal() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cmd = edgetwin_command();
    cmd.args(["--listen", "127.0.0.1:0", "--data"])
        .arg(tmp.path().join("data"))
        // a JOURNAL_STREAM that does not name our stderr (a pipe) must be ignored
        .env("JOURNAL_STREAM", "1:1")
        .env("RUST_LOG", "info,edgetwin::hub=debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let addr = line
        .trim()
        .strip_prefix("edgetwin listening on ")
        .unwrap_or_else(|| panic!("{line}"))
        .parse()
        .unwrap();
    block_on(async {
        let mut ws = Ws::connect(addr, Some(("ditto", "ditto"))).await.unwrap();
        let mut c = command("svc:logged", "create", "/", Some(serde_json::json!({})));
        c["headers"]["correlation-id"] = "cid-42".into();
        assert_eq!(ws.request(c).await["status"], 201);
    });
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("edgetwin listening"), "{log}");
    assert!(log.contains("store closed"), "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "no ANSI colours off a terminal: {log:?}"
    );
    // the twin command's log line carries the fields journald gets as THING, CORRELATION_ID, SUBJECT
    let cmd_line = log
        .lines()
        .find(|l| l.contains("twin command"))
        .unwrap_or_else(|| panic!("{log}"));
    for field in [
        "thing=svc:logged",
        "correlation_id=\"cid-42\"",
        "subject=\"nginx:ditto\"",
    ] {
        assert!(cmd_line.contains(field), "{field} missing: {cmd_line}");
    }
}
