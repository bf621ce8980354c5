//! The network shell: one TCP listener, HTTP/1.1 via hyper on smol, WebSocket upgrades on
//! `/ws/2` handed to async-tungstenite, and the routing of a request to its binding (`http`,
//! `ws`). Owns the accept loop: each connection takes a slot of the connection caps (`conn`)
//! or gets the refusal answer. What bindings share (`State`, authentication) is in `state`.

use crate::conn::Conn;
use crate::error::DittoError;
use crate::http::body::Body;
use crate::http::cors;
use crate::http::relaxed::RelaxedIo;
use crate::http::response;
use crate::state::{authenticate, PeerAddr, State};
use crate::tls::Stream;
use async_tungstenite::tungstenite::handshake::derive_accept_key;
use async_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use async_tungstenite::WebSocketStream;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONNECTION, UPGRADE};
use hyper::{Request, Response};
use smol::net::TcpListener;
use smol_hyper::rt::{FuturesIo, SmolTimer};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Read buffer of a WebSocket connection (bytes read per syscall; see BENCHMARKS.md).
const WS_READ_BUFFER: usize = 4 * 1024;

async fn route(st: Arc<State>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    // CORS (`[cors]`): preflights before authentication, headers on every answer
    let origin = st.cfg.cors.allowed(req.headers());
    if let Some(o) = &origin {
        if let Some(r) = cors::preflight(req.method(), req.headers(), o) {
            return Ok(r);
        }
    }
    let path = req.uri().path().to_owned();
    let mut r = match path.as_str() {
        "/health" => crate::http::health(&st),
        "/ws/2" => ws_upgrade(st, req).await,
        _ => crate::http::route(st, req).await,
    };
    if let Some(o) = &origin {
        cors::decorate(&mut r, o);
    }
    Ok(r)
}

async fn ws_upgrade(st: Arc<State>, mut req: Request<Incoming>) -> Response<Body> {
    let authenticated = match authenticate(&st, &req).await {
        Ok(a) => a,
        Err(e) => return response::error(&e, None, None),
    };
    // acknowledgement labels this session will send (`declared-acks` query parameter or header)
    let declared = match crate::ws::declared_acks(&req) {
        Ok(d) => d,
        Err(e) => return response::error(&e, None, None),
    };
    let h = req.headers();
    let is_upgrade = h
        .get(UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
        && h.get(CONNECTION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().contains("upgrade"));
    let key = h
        .get("sec-websocket-key")
        .map(|k| derive_accept_key(k.as_bytes()));
    let (true, Some(accept)) = (is_upgrade, key) else {
        return response::error(
            &DittoError::new(
                400,
                "gateway:websocket.upgrade.required",
                "Expected a WebSocket upgrade request on /ws/2.",
            )
            .describe("Connect with a WebSocket client to ws://<host>/ws/2."),
            None,
            None,
        );
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    let st2 = st.clone();
    st.ex
        .spawn(async move {
            let upgraded = match on_upgrade.await {
                Ok(u) => u,
                Err(e) => return tracing::debug!(error = %e, "websocket upgrade failed"),
            };
            let Ok(parts) = upgraded.downcast::<FuturesIo<RelaxedIo<Stream>>>() else {
                return tracing::error!("websocket upgrade: unexpected IO type");
            };
            let max = st2.cfg.limits.max_message_kib * 1024;
            let mut wsc = WebSocketConfig::default();
            // Frames above our limit get a 413 error; only 4x beyond it the socket is closed (1009).
            wsc.max_message_size = Some(max * 4);
            wsc.max_frame_size = Some(max * 4);
            // tungstenite zero-fills its whole read buffer (default 128 KiB) on every read, so
            // that much stays resident per connection; larger frames still grow it on demand.
            wsc.read_buffer_size = WS_READ_BUFFER;
            let mut pre_read = parts.read_buf.to_vec();
            // `read_buf` points into hyper's 8 KiB read buffer: keeping it would hold that
            // buffer for the connection's whole life.
            drop(parts.read_buf);
            let (io, unread) = parts.io.into_inner().into_parts();
            pre_read.extend_from_slice(&unread);
            let ws =
                WebSocketStream::from_partially_read(io, pre_read, Role::Server, Some(wsc)).await;
            crate::ws::run_session(st2, ws, authenticated, declared).await;
        })
        .detach();
    let mut r = response::empty(101);
    let hs = r.headers_mut();
    hs.insert(UPGRADE, HeaderValue::from_static("websocket"));
    hs.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        hs.insert("sec-websocket-accept", v);
    }
    r
}

async fn serve_connection(st: Arc<State>, tcp: Conn, peer: SocketAddr) {
    let _ = tcp.tcp().set_nodelay(true);
    // HTTPS/WSS: the TLS handshake first (src/tls.rs)
    let Some(io) = crate::tls::accept(st.tls.as_ref(), tcp).await else {
        return;
    };
    let svc = hyper::service::service_fn(move |mut req: Request<Incoming>| {
        req.extensions_mut().insert(PeerAddr(peer));
        route(st.clone(), req)
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(SmolTimer::new())
        .header_read_timeout(Duration::from_secs(10))
        .max_buf_size(64 * 1024)
        .serve_connection(FuturesIo::new(RelaxedIo::new(io)), svc)
        .with_upgrades();
    if let Err(e) = conn.await {
        tracing::debug!(error = %e, "http connection ended with error");
    }
}

/// Accepts connections until the task is cancelled; a connection over a cap gets a refusal
/// (`conn::refuse`) instead of being served.
pub async fn accept_loop(st: Arc<State>, listener: TcpListener) {
    let mut backoff = Duration::from_millis(10);
    let limits = &st.cfg.limits;
    let send_timeout = Duration::from_secs(limits.send_timeout_secs);
    let close_timeout = Duration::from_secs(limits.close_timeout_secs);
    loop {
        match listener.accept().await {
            Ok((tcp, peer)) => {
                backoff = Duration::from_millis(10);
                match st.conns.admit(peer.ip()) {
                    Ok(slot) => {
                        let conn = Conn::new(tcp, slot, send_timeout);
                        st.ex
                            .spawn(serve_connection(st.clone(), conn, peer))
                            .detach();
                    }
                    Err(r) => {
                        tracing::debug!(%peer, refusal = ?r, "connection refused (cap)");
                        let refuse = crate::conn::refuse(st.conns.clone(), tcp, r, close_timeout);
                        st.ex.spawn(refuse).detach();
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "accept failed; backing off {:?}", backoff);
                smol::Timer::after(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
}

/// Binds the listener (port 0 = any free port) and returns it with the actual address.
pub async fn bind(addr: SocketAddr) -> std::io::Result<(TcpListener, SocketAddr)> {
    let l = TcpListener::bind(addr).await?;
    let a = l.local_addr()?;
    Ok((l, a))
}
