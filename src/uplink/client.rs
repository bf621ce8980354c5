//! Opening the cloud WebSocket: DNS, TCP, TLS for `wss://` (rustls + futures-rustls with the
//! ring provider; the system's trust store or `ca_file`), and the HTTP upgrade with the
//! `Authorization` header, all within one timeout. Failures are sorted so the caller can tell
//! a refused login (reauthenticate) from an unreachable cloud (back off).

use super::config::CloudUrl;
use async_tungstenite::tungstenite::client::IntoClientRequest;
use async_tungstenite::tungstenite::protocol::WebSocketConfig;
use async_tungstenite::tungstenite::Error as WsError;
use async_tungstenite::WebSocketStream;
use futures_lite::io::{AsyncRead, AsyncWrite};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use smol::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// A byte stream the WebSocket runs on: plain TCP or TLS over TCP.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// The open cloud WebSocket.
pub type Socket = WebSocketStream<Box<dyn Io>>;

/// Why a connection attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectError {
    /// the host name did not resolve
    Dns(String),
    /// no TCP connection
    Tcp(String),
    /// the TLS handshake failed (certificate, name, protocol)
    Tls(String),
    /// the cloud refused the credentials (401)
    Unauthorized(String),
    /// the upgrade was answered with another HTTP status
    Http(u16),
    /// the WebSocket handshake failed otherwise
    Ws(String),
    /// it all took longer than the timeout
    Timeout,
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::Dns(e) => write!(f, "DNS: {e}"),
            ConnectError::Tcp(e) => write!(f, "TCP: {e}"),
            ConnectError::Tls(e) => write!(f, "TLS: {e}"),
            ConnectError::Unauthorized(e) => write!(f, "401 Unauthorized: {e}"),
            ConnectError::Http(s) => write!(f, "the upgrade was answered with HTTP {s}"),
            ConnectError::Ws(e) => write!(f, "WebSocket: {e}"),
            ConnectError::Timeout => f.write_str("no connection within the timeout"),
        }
    }
}

/// Reads a PEM CA bundle (at least one certificate).
pub fn load_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate in it", path.display()));
    }
    Ok(certs)
}

/// The TLS client config: the certificates of `ca_file`, else the system's trust store.
pub fn tls_config(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(f) => {
            for c in load_ca_file(f)? {
                roots.add(c).map_err(|e| format!("{}: {e}", f.display()))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(
                    "no trusted certificates in the system store (set [uplink] ca_file)".into(),
                );
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

/// Connects within `timeout`: resolves, tries each address, wraps TLS, upgrades with
/// `authorization`. Frames above `max_message` bytes end the connection.
pub async fn connect(
    url: &CloudUrl,
    authorization: &str,
    tls: Option<&Arc<rustls::ClientConfig>>,
    timeout: Duration,
    max_message: usize,
) -> Result<(Socket, u64), ConnectError> {
    let attempt = open(url, authorization, tls, max_message);
    let timer = async {
        smol::Timer::after(timeout).await;
        Err(ConnectError::Timeout)
    };
    futures_lite::future::or(attempt, timer).await
}

/// Returns the socket and the bytes of the upgrade request sent.
async fn open(
    url: &CloudUrl,
    authorization: &str,
    tls: Option<&Arc<rustls::ClientConfig>>,
    max_message: usize,
) -> Result<(Socket, u64), ConnectError> {
    let addrs = smol::net::resolve((url.host.as_str(), url.port))
        .await
        .map_err(|e| ConnectError::Dns(format!("{}: {e}", url.host)))?;
    if addrs.is_empty() {
        return Err(ConnectError::Dns(format!("{}: no address", url.host)));
    }
    let mut last = String::new();
    let mut tcp = None;
    for a in addrs {
        match TcpStream::connect(a).await {
            Ok(s) => {
                tcp = Some(s);
                break;
            }
            Err(e) => last = format!("{a}: {e}"),
        }
    }
    let tcp = tcp.ok_or(ConnectError::Tcp(last))?;
    let _ = tcp.set_nodelay(true);
    let io: Box<dyn Io> = match (url.tls, tls) {
        (true, Some(cfg)) => {
            let name = ServerName::try_from(url.host.clone())
                .map_err(|e| ConnectError::Tls(format!("{}: {e}", url.host)))?;
            let s = futures_rustls::TlsConnector::from(cfg.clone())
                .connect(name, tcp)
                .await
                .map_err(|e| ConnectError::Tls(e.to_string()))?;
            Box::new(s)
        }
        (true, None) => return Err(ConnectError::Tls("no TLS configuration".into())),
        (false, _) => Box::new(tcp),
    };
    let mut req = url
        .to_url()
        .into_client_request()
        .map_err(|e| ConnectError::Ws(e.to_string()))?;
    let value = authorization
        .parse()
        .map_err(|_| ConnectError::Ws("credentials are not a valid header value".into()))?;
    req.headers_mut().insert("authorization", value);
    let sent = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum::<usize>()
        + url.path.len()
        + 16;
    let mut config = WebSocketConfig::default();
    config.max_message_size = Some(max_message);
    config.max_frame_size = Some(max_message);
    match async_tungstenite::client_async_with_config(req, io, Some(config)).await {
        Ok((socket, _)) => Ok((socket, sent as u64)),
        Err(WsError::Http(resp)) if resp.status().as_u16() == 401 => {
            let body = resp
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).chars().take(200).collect())
                .unwrap_or_default();
            Err(ConnectError::Unauthorized(body))
        }
        Err(WsError::Http(resp)) => Err(ConnectError::Http(resp.status().as_u16())),
        Err(e) => Err(ConnectError::Ws(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_files_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("ca.pem");
        std::fs::write(&f, "not a certificate").unwrap();
        assert!(load_ca_file(&f).is_err());
        assert!(load_ca_file(&dir.path().join("missing.pem")).is_err());
        assert!(tls_config(Some(&f)).is_err());
    }

    #[test]
    fn unreachable_and_unresolvable_clouds_fail_fast() {
        let url = |host: &str, port| CloudUrl {
            tls: false,
            host: host.into(),
            port,
            path: "/ws/2".into(),
        };
        // a port nobody listens on
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = free.local_addr().unwrap().port();
        drop(free);
        let r = smol::block_on(connect(
            &url("127.0.0.1", port),
            "Basic x",
            None,
            Duration::from_secs(5),
            1 << 20,
        ));
        assert!(matches!(r, Err(ConnectError::Tcp(_))), "{:?}", r.err());
        let r = smol::block_on(connect(
            &url("no-such-host.invalid", 80),
            "Basic x",
            None,
            Duration::from_secs(5),
            1 << 20,
        ));
        assert!(
            matches!(r, Err(ConnectError::Dns(_)) | Err(ConnectError::Timeout)),
            "{:?}",
            r.err()
        );
    }
}
