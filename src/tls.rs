//! TLS on the listener (`[tls] cert_file`, `key_file`, or `$EDGETWIN_TLS_KEY_FILE`): HTTPS and
//! WSS on the same port as plain HTTP would be. Loads the PEM files into a rustls server config
//! (ring provider), and wraps each accepted connection (`conn::Conn`: the TCP socket with its
//! slot and send timeout) in a handshake bounded by `handshake_timeout_secs`; everything above
//! (hyper, the WebSocket upgrade) sees one stream type, plain or TLS.

use crate::conn::Conn;
use futures_lite::io::{AsyncRead, AsyncWrite};
use futures_rustls::server::TlsStream;
use futures_rustls::TlsAcceptor;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// Read instead of `key_file` when set: the unit drop-in of `install.sh --tls` points it at a
/// copy of the key that the service's dynamic user may read (the file named by `key_file`
/// stays readable by root only, and check-config, run as root, reads that).
pub const KEY_FILE_ENV: &str = "EDGETWIN_TLS_KEY_FILE";

/// `[tls]`: both files set = HTTPS and WSS only; neither = plain HTTP and WS.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain (the server's certificate first)
    pub cert_file: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of that certificate
    pub key_file: Option<PathBuf>,
    /// a client must finish the TLS handshake within this time, else the connection is closed
    pub handshake_timeout_secs: u64,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            cert_file: None,
            key_file: None,
            handshake_timeout_secs: 10,
        }
    }
}

/// The listener's TLS: the acceptor and the handshake bound.
#[derive(Clone)]
pub struct Tls {
    acceptor: TlsAcceptor,
    handshake_timeout: Duration,
}

impl TlsConfig {
    /// Problems with the settings or the files (each one line, starting with `tls:`).
    pub fn problems(&self) -> Vec<String> {
        if self.handshake_timeout_secs == 0 {
            return vec!["tls: handshake_timeout_secs must be positive".into()];
        }
        match self.acceptor() {
            Ok(_) => Vec::new(),
            Err(e) => vec![format!("tls: {e}")],
        }
    }

    /// The listener's TLS for these settings; `None` when TLS is off.
    pub fn acceptor(&self) -> Result<Option<Tls>, String> {
        let key_file = std::env::var_os(KEY_FILE_ENV)
            .map(PathBuf::from)
            .or_else(|| self.key_file.clone());
        let (cert_file, key_file) = match (&self.cert_file, &key_file) {
            (None, None) => return Ok(None),
            (Some(c), Some(k)) => (c, k),
            _ => return Err("cert_file and key_file must be set together".into()),
        };
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_file)
            .and_then(|it| it.collect::<Result<_, _>>())
            .map_err(|e| format!("cert_file {}: {e}", cert_file.display()))?;
        if certs.is_empty() {
            return Err(format!(
                "cert_file {}: no certificate in it",
                cert_file.display()
            ));
        }
        let key = PrivateKeyDer::from_pem_file(key_file)
            .map_err(|e| format!("key_file {}: {e}", key_file.display()))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| format!("{} and {}: {e}", cert_file.display(), key_file.display()))?;
        // HTTP/1.1 only (hyper's http1 server); WebSocket upgrades are HTTP/1.1 too
        server.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Some(Tls {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            handshake_timeout: Duration::from_secs(self.handshake_timeout_secs),
        }))
    }
}

/// An accepted connection: plain TCP, or TLS over TCP.
pub enum Stream {
    /// plain HTTP / WS
    Plain(Conn),
    /// HTTPS / WSS
    Tls(Box<TlsStream<Conn>>),
}

impl Stream {
    /// The connection below (plain or under TLS).
    pub fn conn(&self) -> &Conn {
        match self {
            Stream::Plain(c) => c,
            Stream::Tls(s) => s.get_ref().0,
        }
    }
}

/// Wraps an accepted TCP stream: as is without TLS, else after a handshake that must finish
/// within the handshake timeout (`None` if it fails or times out; logged at debug).
pub async fn accept(tls: Option<&Tls>, tcp: Conn) -> Option<Stream> {
    let Some(tls) = tls else {
        return Some(Stream::Plain(tcp));
    };
    let handshake = async { Some(tls.acceptor.accept(tcp).await) };
    let timeout = async {
        smol::Timer::after(tls.handshake_timeout).await;
        None
    };
    match futures_lite::future::or(handshake, timeout).await {
        Some(Ok(s)) => Some(Stream::Tls(Box::new(s))),
        Some(Err(e)) => {
            tracing::debug!(error = %e, "tls handshake failed");
            None
        }
        None => {
            tracing::debug!("tls handshake timed out");
            None
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_close(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_close(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_by_default_and_both_files_or_none() {
        assert!(TlsConfig::default().problems().is_empty());
        let half = TlsConfig {
            cert_file: Some("/etc/edgetwin/cert.pem".into()),
            ..TlsConfig::default()
        };
        assert_eq!(
            half.problems(),
            vec!["tls: cert_file and key_file must be set together"]
        );
        let missing = TlsConfig {
            cert_file: Some("/nonexistent/cert.pem".into()),
            key_file: Some("/nonexistent/key.pem".into()),
            ..TlsConfig::default()
        };
        let p = missing.problems();
        assert!(
            p[0].starts_with("tls: cert_file /nonexistent/cert.pem"),
            "{p:?}"
        );
    }
}
