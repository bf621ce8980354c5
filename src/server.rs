//! The network shell: one TCP listener, HTTP/1.1 via hyper on smol, WebSocket upgrades on
//! `/ws/2` handed to async-tungstenite, health endpoints, and the shared server state
//! (hub, authenticator, config, executor). Owns the accept loop and graceful shutdown.

use crate::auth::{self, Authenticator};
use crate::config::Config;
use crate::error::DittoError;
use crate::hub::Hub;
use async_tungstenite::tungstenite::handshake::derive_accept_key;
use async_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use async_tungstenite::WebSocketStream;
use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONNECTION, CONTENT_TYPE, UPGRADE, WWW_AUTHENTICATE};
use hyper::{Request, Response, StatusCode};
use smol::net::{TcpListener, TcpStream};
use smol::Executor;
use smol_hyper::rt::{FuturesIo, SmolTimer};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Read buffer of a WebSocket connection (bytes read per syscall; see BENCHMARKS.md).
const WS_READ_BUFFER: usize = 4 * 1024;

/// Response body type of every route (full bodies and SSE streams).
pub type Body = BoxBody<Bytes, Infallible>;

/// Everything a request handler needs.
pub struct State {
    /// routing and the store
    pub hub: Hub,
    /// credential checks
    pub auth: Authenticator,
    /// effective configuration
    pub cfg: Config,
    /// the executor all tasks run on
    pub ex: Arc<Executor<'static>>,
}

/// A full body.
pub fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).boxed()
}

/// A JSON response.
pub fn json_response(status: u16, body: &serde_json::Value) -> Response<Body> {
    let mut r = Response::new(full(body.to_string()));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// The Ditto error as an HTTP response.
pub fn error_response(e: &DittoError) -> Response<Body> {
    let mut r = json_response(e.status, &e.to_json());
    if e.status == 401 {
        r.headers_mut().insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"edgetwin\""),
        );
    }
    r
}

/// Authenticates a request from its `Authorization` header (argon2 runs off the executor).
pub async fn authenticate(
    st: &Arc<State>,
    req: &Request<Incoming>,
) -> Result<auth::Subjects, DittoError> {
    let header = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let st = st.clone();
    smol::unblock(move || st.auth.authenticate(header.as_deref())).await
}

async fn route(st: Arc<State>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_owned();
    Ok(match path.as_str() {
        "/health" | "/status/health" => json_response(200, &serde_json::json!({"status": "UP"})),
        "/ws/2" => ws_upgrade(st, req).await,
        _ => error_response(
            &DittoError::new(
                404,
                "gateway:route.notfound",
                format!("The requested resource '{path}' could not be found."),
            )
            .describe("Check the URL and the HTTP method."),
        ),
    })
}

async fn ws_upgrade(st: Arc<State>, mut req: Request<Incoming>) -> Response<Body> {
    let subjects = match authenticate(&st, &req).await {
        Ok(s) => s,
        Err(e) => return error_response(&e),
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
        return error_response(
            &DittoError::new(
                400,
                "gateway:websocket.upgrade.required",
                "Expected a WebSocket upgrade request on /ws/2.",
            )
            .describe("Connect with a WebSocket client to ws://<host>/ws/2."),
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
            let Ok(parts) = upgraded.downcast::<FuturesIo<TcpStream>>() else {
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
            let pre_read = parts.read_buf.to_vec();
            // `read_buf` points into hyper's 8 KiB read buffer: keeping it would hold that
            // buffer for the connection's whole life.
            drop(parts.read_buf);
            let ws = WebSocketStream::from_partially_read(
                parts.io.into_inner(),
                pre_read,
                Role::Server,
                Some(wsc),
            )
            .await;
            crate::ws::run_session(st2, ws, subjects).await;
        })
        .detach();
    let mut r = Response::new(full(Bytes::new()));
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let hs = r.headers_mut();
    hs.insert(UPGRADE, HeaderValue::from_static("websocket"));
    hs.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        hs.insert("sec-websocket-accept", v);
    }
    r
}

async fn serve_connection(st: Arc<State>, tcp: TcpStream) {
    let _ = tcp.set_nodelay(true);
    let svc = hyper::service::service_fn(move |req| route(st.clone(), req));
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(SmolTimer::new())
        .header_read_timeout(Duration::from_secs(10))
        .max_buf_size(64 * 1024)
        .serve_connection(FuturesIo::new(tcp), svc)
        .with_upgrades();
    if let Err(e) = conn.await {
        tracing::debug!(error = %e, "http connection ended with error");
    }
}

/// Accepts connections until `stop` resolves.
pub async fn accept_loop(st: Arc<State>, listener: TcpListener) {
    let mut backoff = Duration::from_millis(10);
    loop {
        match listener.accept().await {
            Ok((tcp, _peer)) => {
                backoff = Duration::from_millis(10);
                let st2 = st.clone();
                st.ex.spawn(serve_connection(st2, tcp)).detach();
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
