//! What the network shell hands every binding: the shared `State` (hub, authenticator, config,
//! executor, bridge and uplink handles), the request's peer address and the authentication of
//! a request. Bindings import this, never the shell (`server`), so the shell can import them.

use crate::auth::{self, Authenticator};
use crate::config::Config;
use crate::error::DittoError;
use crate::exec::Executor;
use crate::hub::Hub;
use hyper::body::Incoming;
use hyper::Request;
use std::net::SocketAddr;
use std::sync::Arc;

/// Everything a request handler needs.
pub struct State {
    /// routing and the store
    pub hub: Hub,
    /// credential checks
    pub auth: Authenticator,
    /// effective configuration
    pub cfg: Config,
    /// the executor all tasks run on
    pub ex: Arc<Executor>,
    /// the MQTT device bridge (status, shutdown)
    pub mqtt: crate::mqtt::Handle,
    /// open connections and their caps (`src/conn`)
    pub conns: Arc<crate::conn::Tracker>,
    /// TLS on the listener (`[tls]`), if configured
    pub tls: Option<crate::tls::Tls>,
    /// the uplink to a cloud Ditto (status, shutdown)
    pub uplink: crate::uplink::Handle,
}

/// The TCP peer of a request (set by the accept loop as a request extension).
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

/// The credentials a request presents, owned.
struct OwnedCredentials {
    authorization: Option<String>,
    pre: Option<String>,
    token: Option<String>,
    peer: Option<std::net::IpAddr>,
}

impl OwnedCredentials {
    fn of(req: &Request<Incoming>) -> OwnedCredentials {
        let header = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let token = (req.uri().path() == "/ws/2")
            .then(|| req.uri().query())
            .flatten()
            .and_then(crate::protocol::control::parse_query)
            .and_then(|q| {
                q.into_iter()
                    .find(|(k, _)| k == "access_token")
                    .map(|(_, v)| v)
            });
        OwnedCredentials {
            authorization: header("authorization"),
            pre: header("x-ditto-pre-authenticated"),
            token,
            peer: req.extensions().get::<PeerAddr>().map(|p| p.0.ip()),
        }
    }

    fn borrow(&self) -> auth::Credentials<'_> {
        auth::Credentials {
            authorization: self.authorization.as_deref(),
            pre_authenticated: self.pre.as_deref(),
            access_token: self.token.as_deref(),
            peer: self.peer,
        }
    }
}

/// Authenticates a request: pre-authentication from a trusted proxy, `Authorization:
/// Bearer|Basic`, or `?access_token=` on `/ws/2` (HTTP, SSE and WebSocket upgrades alike).
/// argon2 runs in the bounded verifier pool (`auth::verifier`), never on the executor.
pub async fn authenticate(
    st: &Arc<State>,
    req: &Request<Incoming>,
) -> Result<auth::Authenticated, DittoError> {
    let c = OwnedCredentials::of(req);
    st.auth
        .authenticate_request(&c.borrow(), crate::clock::now_millis())
        .await
}

/// Authenticates a DevOps request: Basic of a user in `[auth] devops_users`; the user name.
pub async fn authenticate_devops(
    st: &Arc<State>,
    req: &Request<Incoming>,
) -> Result<String, DittoError> {
    let c = OwnedCredentials::of(req);
    st.auth
        .authenticate_devops(&c.borrow(), crate::clock::now_millis())
        .await
}
