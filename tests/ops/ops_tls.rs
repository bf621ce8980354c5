//! TLS on the listener with certificates made by openssl for each run: HTTPS (curl, as a user
//! would) and WSS on one port; a client that does not trust the certificate (another CA, or a
//! name the certificate does not carry) refuses the connection; plain HTTP on the TLS port gets
//! no HTTP answer; check-config reports TLS files that do not fit. Needs `openssl` and `curl`
//! (scripts/test.sh installs both); prints SKIPPED without them.

use crate::common;
use async_tungstenite::tungstenite::client::IntoClientRequest;
use common::certs;
use common::{basic, block_on, Server, Ws};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::json;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

/// Tools this file needs, or the reason to skip.
fn tools() -> Result<(), String> {
    certs::available()?;
    match Command::new("curl").arg("--version").output() {
        Ok(o) if o.status.success() => Ok(()),
        _ => Err("curl not installed (scripts/test.sh installs it)".into()),
    }
}

/// A CA `ca`, a server certificate for localhost / 127.0.0.1 it signed, another CA `other`
/// and a certificate of `ca` for another name; starts edgetwin with `[tls]` on the server pair.
fn start(dir: &Path) -> Server {
    start_with(dir, "")
}

/// `start` with more `[tls]` settings.
fn start_with(dir: &Path, more_tls: &str) -> Server {
    certs::ca(dir, "ca");
    certs::ca(dir, "other");
    let (crt, key) = certs::signed(
        dir,
        "ca",
        "server",
        "subjectAltName=DNS:localhost,IP:127.0.0.1",
    );
    certs::signed(
        dir,
        "ca",
        "elsewhere",
        "subjectAltName=DNS:elsewhere.example",
    );
    let conf = dir.join("edgetwin.toml");
    std::fs::write(
        &conf,
        format!(
            "[tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n{more_tls}",
            crt.display(),
            key.display()
        ),
    )
    .expect("config");
    Server::start_in(
        &dir.join("data"),
        &["--config", conf.to_str().expect("utf-8")],
    )
}

/// Runs curl with `args`; returns (exit code, stdout, stderr).
fn curl(args: &[&str]) -> (i32, String, String) {
    let o = Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .args(args)
        .output()
        .expect("curl");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// A WSS session as `ditto`, trusting only the CA in `ca_file`; Err carries the failure.
async fn wss(addr: std::net::SocketAddr, ca_file: &Path) -> Result<Ws, String> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca_file).map_err(|e| e.to_string())? {
        roots
            .add(c.map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = futures_rustls::TlsConnector::from(Arc::new(config));
    let tcp = smol::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let name = ServerName::try_from("localhost").map_err(|e| e.to_string())?;
    let tls = connector
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    let mut req = format!("wss://localhost:{}/ws/2", addr.port())
        .into_client_request()
        .map_err(|e| e.to_string())?;
    req.headers_mut().insert(
        "authorization",
        basic("ditto", "ditto").parse().map_err(|_| "header")?,
    );
    let io: Box<dyn common::WsIo> = Box::new(tls);
    let (stream, _) = async_tungstenite::client_async(req, io)
        .await
        .map_err(|e| e.to_string())?;
    Ok(Ws::from_stream(stream))
}

#[test]
fn https_and_wss_share_the_port_and_plain_http_gets_no_answer() {
    if let Err(why) = tools() {
        return println!("SKIPPED: {why}");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let srv = start(dir.path());
    let port = srv.addr.port();
    let ca = dir.path().join("ca.crt");
    let ca = ca.to_str().expect("utf-8");
    let url = format!("https://localhost:{port}/api/2/things/my.ns:lamp");
    let (code, out, err) = curl(&[
        "--cacert",
        ca,
        "-u",
        "ditto:ditto",
        "-X",
        "PUT",
        "-H",
        "Content-Type: application/json",
        "-d",
        r#"{"attributes":{"on":false}}"#,
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &url,
    ]);
    assert_eq!((code, out.as_str()), (0, "201"), "{err}");
    block_on(async {
        let mut ws = wss(srv.addr, &dir.path().join("ca.crt"))
            .await
            .expect("wss session");
        ws.control("START-SEND-EVENTS").await;
        // a change over HTTPS reaches the WSS session as an event
        let (code, out, err) = curl(&[
            "--cacert",
            ca,
            "-u",
            "ditto:ditto",
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/json",
            "-d",
            "true",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("{url}/attributes/on"),
        ]);
        assert_eq!((code, out.as_str()), (0, "204"), "{err}");
        let e = ws.next_event(common::WAIT).await.expect("event over WSS");
        assert_eq!(e["topic"], "my.ns/lamp/things/twin/events/modified");
        assert_eq!(e["value"], json!(true));
        let r = ws
            .request(json!({"topic": "my.ns/lamp/things/twin/commands/retrieve",
                            "headers": {}, "path": "/attributes"}))
            .await;
        assert_eq!(
            (r["status"].clone(), r["value"].clone()),
            (json!(200), json!({"on": true}))
        );
        // plain HTTP on the TLS port: no HTTP response, the connection ends
        let mut tcp = smol::net::TcpStream::connect(srv.addr).await.expect("tcp");
        tcp.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("write");
        let mut got = Vec::new();
        let read = tcp.read_to_end(&mut got);
        let _ = futures_lite::future::or(read, async {
            smol::Timer::after(common::WAIT).await;
            Ok(0)
        })
        .await;
        assert!(
            !got.starts_with(b"HTTP/"),
            "plain HTTP answered: {}",
            String::from_utf8_lossy(&got)
        );
    });
}

#[test]
fn a_client_that_does_not_trust_the_certificate_refuses_it() {
    if let Err(why) = tools() {
        return println!("SKIPPED: {why}");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let srv = start(dir.path());
    let port = srv.addr.port();
    let other = dir.path().join("other.crt");
    // curl with another CA: exit 60 (peer certificate cannot be authenticated)
    let (code, out, err) = curl(&[
        "--cacert",
        other.to_str().expect("utf-8"),
        &format!("https://localhost:{port}/health"),
    ]);
    assert_eq!(code, 60, "{out}{err}");
    // curl without --cacert: the system trust store does not know the test CA either
    let (code, _, err) = curl(&[&format!("https://localhost:{port}/health")]);
    assert_eq!(code, 60, "{err}");
    // the right CA, but a name the certificate does not carry
    let ca = dir.path().join("ca.crt");
    let (code, _, err) = curl(&[
        "--cacert",
        ca.to_str().expect("utf-8"),
        "--resolve",
        &format!("elsewhere.example:{port}:127.0.0.1"),
        &format!("https://elsewhere.example:{port}/health"),
    ]);
    assert_eq!(code, 60, "{err}");
    // and the right CA and name for comparison
    let (code, out, err) = curl(&[
        "--cacert",
        ca.to_str().expect("utf-8"),
        &format!("https://localhost:{port}/health"),
    ]);
    assert_eq!((code, out.as_str()), (0, r#"{"status":"UP"}"#), "{err}");
    block_on(async {
        let e = match wss(srv.addr, &other).await {
            Ok(_) => panic!("a WSS client trusting another CA connected"),
            Err(e) => e,
        };
        assert!(e.contains("invalid peer certificate"), "{e}");
    });
}

#[test]
fn tls_files_that_do_not_fit_are_reported_and_refuse_the_start() {
    if let Err(why) = certs::available() {
        return println!("SKIPPED: {why}");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    certs::ca(d, "ca");
    let (crt, _) = certs::signed(d, "ca", "server", "subjectAltName=DNS:localhost");
    // the CA's key does not belong to the server certificate
    let conf = d.join("edgetwin.toml");
    std::fs::write(
        &conf,
        format!(
            "listen = \"127.0.0.1:0\"\n[tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
            crt.display(),
            d.join("ca.key").display()
        ),
    )
    .expect("config");
    let conf = conf.to_str().expect("utf-8");
    let check = common::edgetwin_command()
        .args(["check-config", conf])
        .output()
        .expect("check-config");
    let out = String::from_utf8_lossy(&check.stdout);
    assert_eq!(check.status.code(), Some(1), "{out}");
    assert!(
        out.contains(":4: tls: ") || out.contains(": tls: "),
        "{out}"
    );
    let run = common::edgetwin_command()
        .args(["--config", conf, "--data"])
        .arg(d.join("data"))
        .args(["--mqtt", "none"])
        .output()
        .expect("run");
    assert_eq!(run.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&run.stderr).contains("tls: "),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
}

/// `edgetwin ws` over WSS, as docs/auth.md shows it: with the CA it gets its answer, with
/// another CA it stops at the handshake.
#[test]
fn the_built_in_ws_client_speaks_wss_and_checks_the_certificate() {
    if let Err(why) = tools() {
        return println!("SKIPPED: {why}");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let srv = start(dir.path());
    let url = format!("wss://localhost:{}/ws/2", srv.addr.port());
    let client = |ca: &str| {
        let mut child = common::edgetwin_command()
            .args(["ws", "-u", "ditto:ditto", "--cacert"])
            .arg(dir.path().join(ca))
            .arg(&url)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("edgetwin ws");
        let line = r#"{"topic":"my.ns/none/things/twin/commands/retrieve","headers":{"correlation-id":"w1"},"path":"/"}"#;
        let mut stdin = child.stdin.take().expect("stdin");
        let _ = std::io::Write::write_all(&mut stdin, format!("{line}\n").as_bytes());
        drop(stdin);
        child.wait_with_output().expect("wait")
    };
    let ok = client("ca.crt");
    let out = String::from_utf8_lossy(&ok.stdout);
    assert!(ok.status.success(), "{ok:?}");
    assert!(
        out.contains(r#""correlation-id":"w1""#) && out.contains(r#""status":404"#),
        "{out}"
    );
    let refused = client("other.crt");
    assert_eq!(refused.status.code(), Some(1));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("invalid peer certificate"), "{err}");
}

/// A client that connects and never starts the handshake is closed after
/// `handshake_timeout_secs` (1 s here; the test allows 10).
#[test]
fn a_client_that_never_starts_the_handshake_is_closed() {
    if let Err(why) = tools() {
        return println!("SKIPPED: {why}");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let srv = start_with(dir.path(), "handshake_timeout_secs = 1\n");
    block_on(async {
        let mut tcp = smol::net::TcpStream::connect(srv.addr).await.expect("tcp");
        let mut buf = Vec::new();
        let read = async { tcp.read_to_end(&mut buf).await.is_ok() };
        let closed = futures_lite::future::or(read, async {
            smol::Timer::after(common::WAIT).await;
            false
        })
        .await;
        assert!(closed, "still open after {:?}", common::WAIT);
        assert!(buf.is_empty(), "nothing is sent before a ClientHello");
    });
}
