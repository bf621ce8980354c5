//! `edgetwin ws URL`: a small WebSocket client for trying the gateway from a shell (Debian 12
//! packages no websocat): each line of stdin goes out as a text frame, each text frame that
//! arrives is printed on a line of its own. `ws://` and `wss://` (trusting `--cacert` or the
//! system CA bundle), HTTP Basic from `-u`. Ends when the server closes the connection, or once
//! stdin has ended and no frame arrived for `wait`.

use async_tungstenite::tungstenite::client::IntoClientRequest;
use async_tungstenite::tungstenite::{Error as WsError, Message};
use base64::Engine;
use futures_lite::future::or;
use futures_lite::io::{AsyncRead, AsyncWrite};
use futures_lite::StreamExt;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The system CA bundle (Debian's ca-certificates), used for `wss://` without `--cacert`.
const SYSTEM_CAS: &str = "/etc/ssl/certs/ca-certificates.crt";

/// What `edgetwin ws` was asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    /// `ws://host[:port]/path` or `wss://...`
    pub url: String,
    /// HTTP Basic credentials
    pub user: Option<(String, String)>,
    /// PEM file with the CA (or self-signed certificate) to trust for `wss://`
    pub cacert: Option<PathBuf>,
    /// how long to keep printing frames after stdin ended
    pub wait: Duration,
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

enum Event {
    Line(Option<String>),
    Frame(Option<Result<Message, WsError>>),
    Quiet,
}

/// Runs the session until the server closes it or stdin ended and `wait` passed quietly.
pub fn run(o: Options) -> Result<(), String> {
    smol::block_on(session(o))
}

async fn session(o: Options) -> Result<(), String> {
    let mut req = o
        .url
        .as_str()
        .into_client_request()
        .map_err(|e| format!("{}: {e}", o.url))?;
    let uri = req.uri().clone();
    let tls = match uri.scheme_str() {
        Some("ws") => false,
        Some("wss") => true,
        _ => {
            return Err(format!(
                "{}: the URL must start with ws:// or wss://",
                o.url
            ))
        }
    };
    let host = uri.host().ok_or_else(|| format!("{}: no host", o.url))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    if let Some((u, p)) = &o.user {
        let v = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
        let v = format!("Basic {v}")
            .parse()
            .map_err(|_| "invalid user name")?;
        req.headers_mut().insert("authorization", v);
    }
    let tcp = smol::net::TcpStream::connect((host, port))
        .await
        .map_err(|e| format!("{host}:{port}: {e}"))?;
    let io: Box<dyn Io> = if tls {
        Box::new(connect_tls(host, tcp, o.cacert.as_ref()).await?)
    } else {
        Box::new(tcp)
    };
    let (ws, _) = async_tungstenite::client_async(req, io)
        .await
        .map_err(refused)?;
    let (mut tx, mut rx) = ws.split();
    let lines = stdin_lines();
    let mut stdin_open = true;
    loop {
        let frame = async { Event::Frame(rx.next().await) };
        let event = if stdin_open {
            or(async { Event::Line(lines.recv().await.ok()) }, frame).await
        } else {
            let quiet = async {
                smol::Timer::after(o.wait).await;
                Event::Quiet
            };
            or(frame, quiet).await
        };
        match event {
            Event::Line(Some(l)) if l.trim().is_empty() => {}
            Event::Line(Some(l)) => tx
                .send(Message::text(l))
                .await
                .map_err(|e| format!("send: {e}"))?,
            Event::Line(None) => stdin_open = false,
            Event::Frame(Some(Ok(Message::Text(t)))) => {
                let mut out = std::io::stdout().lock();
                if writeln!(out, "{}", t.as_str())
                    .and_then(|_| out.flush())
                    .is_err()
                {
                    return Ok(()); // stdout closed (e.g. `| head`)
                }
            }
            Event::Frame(Some(Ok(Message::Close(frame)))) => {
                if let Some(f) = frame {
                    eprintln!("edgetwin ws: closed by the server: {} {}", f.code, f.reason);
                }
                return Ok(());
            }
            Event::Frame(Some(Ok(_))) => {}
            Event::Frame(Some(Err(e))) => return Err(e.to_string()),
            Event::Frame(None) => return Ok(()),
            Event::Quiet => {
                let _ = tx.close(None).await;
                return Ok(());
            }
        }
    }
}

/// Lines of stdin, read on a thread of their own; the channel closes at end of input.
fn stdin_lines() -> async_channel::Receiver<String> {
    let (tx, rx) = async_channel::bounded(16);
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.send_blocking(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// A refused upgrade as the server answered it (status and Ditto's error JSON).
fn refused(e: WsError) -> String {
    match e {
        WsError::Http(r) => {
            let body = r
                .body()
                .as_deref()
                .map(String::from_utf8_lossy)
                .unwrap_or_default();
            format!("the server answered {}: {body}", r.status())
        }
        e => e.to_string(),
    }
}

pub(crate) async fn connect_tls(
    host: &str,
    tcp: smol::net::TcpStream,
    cacert: Option<&PathBuf>,
) -> Result<futures_rustls::client::TlsStream<smol::net::TcpStream>, String> {
    let file = cacert.cloned().unwrap_or_else(|| SYSTEM_CAS.into());
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(&file)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {e}", file.display()))?;
    let (added, _) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(format!("{}: no usable certificate", file.display()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from(host.to_owned()).map_err(|e| format!("{host}: {e}"))?;
    futures_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS with {host}: {e}"))
}
