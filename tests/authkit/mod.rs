//! Helpers of the auth + policy black-box tests: a server with configured users (argon2 via
//! the library), a minimal HTTP/1.1 client over std sockets, JWT minting with `jsonwebtoken`.
#![allow(dead_code)]

use crate::common::{basic, Server};
use serde_json::Value;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Password of every configured test user.
pub const PASSWORD: &str = "s3cret-pass";
/// HS256 secret of the `https://issuer.test` issuer.
pub const SECRET: &str = "0123456789abcdef0123456789abcdef";

/// A started server and its temp dir.
pub struct Env {
    pub srv: Server,
    _tmp: tempfile::TempDir,
}

/// Path of a checked-in fixture file.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Starts edgetwin with the given users (password [`PASSWORD`]) and extra TOML.
pub fn start(users: &[&str], extra_toml: &str) -> Env {
    let tmp = tempfile::tempdir().expect("tempdir");
    let hash = edgetwin::auth::hash_password(PASSWORD).expect("hash");
    // `extra_toml` first: its top-level keys must come before any table
    let mut cfg = format!("{extra_toml}\n");
    for u in users {
        cfg.push_str(&format!(
            "[[users]]\nname = \"{u}\"\npassword_hash = \"{hash}\"\n"
        ));
    }
    let path = tmp.path().join("edgetwin.toml");
    std::fs::write(&path, cfg).expect("write config");
    let srv = Server::start_in(
        &tmp.path().join("data"),
        &["--config", path.to_str().expect("utf8 path")],
    );
    Env { srv, _tmp: tmp }
}

/// `Authorization` header value for a configured user.
pub fn user(name: &str) -> String {
    basic(name, PASSWORD)
}

/// An HTTP response.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HashMap<String, String>,
    pub body: String,
}

impl Resp {
    /// The body as JSON (`Null` if empty).
    pub fn json(&self) -> Value {
        if self.body.is_empty() {
            return Value::Null;
        }
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// One HTTP/1.1 request (`Connection: close`), read to the end.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: Option<&str>,
) -> Resp {
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    let mut req = format!("{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    let body = body.unwrap_or("");
    if !body.is_empty() || method == "PUT" {
        req.push_str(&format!(
            "content-type: application/json\r\ncontent-length: {}\r\n",
            body.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).expect("write");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read");
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Resp {
        status,
        headers,
        body: rest.to_owned(),
    }
}

/// Seconds since the epoch.
pub fn now_secs() -> i64 {
    edgetwin::clock::now_millis() / 1000
}

/// An HS256 token of `https://issuer.test` for `sub`, expiring in `exp_in` seconds.
pub fn hs256(sub: &str, exp_in: i64) -> String {
    mint(
        jsonwebtoken::Algorithm::HS256,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
        None,
        serde_json::json!({"iss": "https://issuer.test", "sub": sub, "exp": now_secs() + exp_in}),
    )
}

/// A token with any claims and key.
pub fn mint(
    alg: jsonwebtoken::Algorithm,
    key: &jsonwebtoken::EncodingKey,
    kid: Option<&str>,
    claims: Value,
) -> String {
    let mut h = jsonwebtoken::Header::new(alg);
    h.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&h, &claims, key).expect("encode jwt")
}

/// The `[[auth.jwt]]` TOML of the three test issuers (HS256 secret, ES256 PEM, RS256 JWKS).
pub fn jwt_issuers() -> String {
    format!(
        "[[auth.jwt]]\nissuer = \"issuer.test\"\nprefix = \"test\"\nsecret = \"{SECRET}\"\n\
         [[auth.jwt]]\nissuer = \"es.test\"\nprefix = \"es\"\npublic_key_file = \"{}\"\n\
         [[auth.jwt]]\nissuer = \"rs.test\"\nprefix = \"rs\"\njwks_file = \"{}\"\n",
        fixture("es256-public.pem").display(),
        fixture("rs256-jwks.json").display()
    )
}

/// The three-subject setup of the policy tests (tests/policy/auth_policies.rs, tests/policy/http_policies.rs):
/// thing [`THING`] whose inline policy gives `nginx:owner` READ+WRITE on `thing:/`, `policy:/`,
/// `message:/`, `nginx:partial` READ on `thing:/features/lamp` only; `nginx:none` is not in it.
pub mod three {
    use serde_json::{json, Value};

    /// The thing of the table.
    pub const THING: &str = "ns.auth:lamp1";

    /// The policy (without `policyId`: it becomes the thing's).
    pub fn policy() -> Value {
        let rw = json!({"grant": ["READ", "WRITE"], "revoke": []});
        json!({"entries": {
            "owner": {"subjects": {"nginx:owner": {"type": "test"}},
                      "resources": {"thing:/": rw, "policy:/": rw, "message:/": rw}},
            "partial": {"subjects": {"nginx:partial": {"type": "test"}},
                        "resources": {"thing:/features/lamp": {"grant": ["READ"], "revoke": []}}}
        }})
    }

    /// The thing's create payload with the policy inline.
    pub fn thing_json() -> Value {
        json!({"_policy": policy(), "attributes": {"location": "kitchen"},
               "features": {"lamp": {"properties": {"on": false}}, "door": {"properties": {"open": true}}}})
    }
}
pub mod requester;
