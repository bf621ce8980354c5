//! The requester of the HTTP policy tests (tests/http_policies*.rs): a server with Basic users,
//! pre-authentication from 127.0.0.1 and the HS256 test issuer, and requests authenticated by
//! Basic, `X-Ditto-Pre-Authenticated` or a Bearer JWT.

use super::three::{policy, thing_json};
use super::{hs256, jwt_issuers, start, user, Env};
use crate::common::http::{Http, Resp, Sse};
use serde_json::{json, Value};
use std::net::SocketAddr;

/// The server: Basic users, pre-authentication from 127.0.0.1, and the HS256 test issuer.
pub fn server() -> Env {
    let extra = format!(
        "[auth]\npre_authenticated = true\ntrusted_proxies = [\"127.0.0.1\"]\n{}",
        jwt_issuers()
    );
    start(&["owner", "partial", "none"], &extra)
}

/// The table's policy, with the JWT subject `test:partial` next to `nginx:partial`.
pub fn table_policy() -> Value {
    let mut p = policy();
    p["entries"]["partial"]["subjects"]["test:partial"] = json!({"type": "jwt"});
    p
}

/// The table's thing with [`table_policy`] inline.
pub fn table_thing() -> Value {
    let mut t = thing_json();
    t["_policy"] = table_policy();
    t
}

/// A requester: how its requests authenticate.
pub struct As {
    pub http: Http,
    pub extra: Vec<(&'static str, String)>,
}

impl As {
    pub fn basic(addr: SocketAddr, name: &str) -> As {
        As {
            http: Http {
                addr,
                auth: Some(user(name)),
            },
            extra: vec![],
        }
    }

    pub fn jwt(addr: SocketAddr, sub: &str) -> As {
        As {
            http: Http {
                addr,
                auth: Some(format!("Bearer {}", hs256(sub, 600))),
            },
            extra: vec![],
        }
    }

    pub fn pre_authenticated(addr: SocketAddr, subject: &str) -> As {
        As {
            http: Http::anonymous(addr),
            extra: vec![("x-ditto-pre-authenticated", subject.to_owned())],
        }
    }

    fn headers(&self) -> Vec<(&str, &str)> {
        self.extra.iter().map(|(k, v)| (*k, v.as_str())).collect()
    }

    pub async fn send(&self, method: &str, path: &str, body: Option<&Value>) -> Resp {
        let mut hs = self.headers();
        if body.is_some() {
            let ct = if method == "PATCH" {
                "application/merge-patch+json"
            } else {
                "application/json"
            };
            hs.push(("Content-Type", ct));
        }
        let b = body.map(Value::to_string);
        self.http
            .send(method, path, &hs, b.as_deref().map(str::as_bytes))
            .await
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send("GET", path, None).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Resp {
        self.send("PUT", path, Some(body)).await
    }

    pub async fn sse(&self, path: &str) -> Sse {
        let hs = self.headers();
        match self.http.sse_with(path, &hs).await {
            Ok(s) => s,
            Err(r) => panic!("SSE {path} refused: {} {}", r.status, r.text()),
        }
    }
}

/// A started [`server`] with the three Basic requesters of the table.
pub struct Three {
    pub env: Env,
    pub owner: As,
    pub partial: As,
    pub none: As,
}

impl Three {
    pub fn start() -> Three {
        let env = server();
        let a = env.srv.addr;
        Three {
            owner: As::basic(a, "owner"),
            partial: As::basic(a, "partial"),
            none: As::basic(a, "none"),
            env,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.env.srv.addr
    }

    /// Creates the table's thing (with [`table_policy`] inline) as the owner; asserts 201.
    pub async fn create_thing(&self) -> Resp {
        let r = self
            .owner
            .put(
                &format!("/api/2/things/{}", super::three::THING),
                &table_thing(),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        r
    }
}
