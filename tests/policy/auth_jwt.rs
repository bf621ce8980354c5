//! Authentication end to end: JWT bearer tokens (HS256 secret, ES256 PEM, RS256 JWKS) on HTTP
//! and `/ws/2` (header and `?access_token=`), refusals with Ditto's errors (expired, forged,
//! `alg: none`, unknown issuer, malformed, bad Basic password), WS session expiry and
//! `JWT-TOKEN` refresh, pre-authentication from trusted proxies only, the failed-login limit,
//! and every route refusing requests without credentials.

use crate::authkit;
use crate::common;
use authkit::{fixture, hs256, http, jwt_issuers, mint, now_secs, start, user};
use base64::Engine;
use common::{block_on, command, Ws, WAIT};
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{json, Value};

fn bearer(t: &str) -> Vec<(&'static str, String)> {
    vec![("authorization", format!("Bearer {t}"))]
}

fn whoami(addr: std::net::SocketAddr, headers: &[(&str, String)]) -> authkit::Resp {
    http(addr, "GET", "/api/2/whoami", headers, None)
}

#[test]
fn tokens_of_each_algorithm_authenticate_with_the_issuer_prefix() {
    let env = start(&[], &jwt_issuers());
    let a = env.srv.addr;
    let r = whoami(a, &bearer(&hs256("alice", 60)));
    assert_eq!(
        r.json(),
        json!({"defaultSubject": "test:alice", "subjects": ["test:alice"]})
    );
    let es = std::fs::read(fixture("es256-private.pem")).unwrap();
    let t = mint(
        Algorithm::ES256,
        &EncodingKey::from_ec_pem(&es).unwrap(),
        None,
        json!({"iss": "es.test", "sub": "bob", "exp": now_secs() + 60}),
    );
    assert_eq!(whoami(a, &bearer(&t)).json()["defaultSubject"], "es:bob");
    let rs = std::fs::read(fixture("rs256-private.pem")).unwrap();
    let t = mint(
        Algorithm::RS256,
        &EncodingKey::from_rsa_pem(&rs).unwrap(),
        Some("rs1"),
        json!({"iss": "https://rs.test", "sub": "carol", "exp": now_secs() + 60}),
    );
    assert_eq!(whoami(a, &bearer(&t)).json()["defaultSubject"], "rs:carol");
}

#[test]
fn bad_tokens_and_credentials_are_refused_with_dittos_errors() {
    let env = start(
        &["owner"],
        &format!("[auth]\nmax_failed_logins = 100\n{}", jwt_issuers()),
    );
    let a = env.srv.addr;
    let exp = now_secs() + 60;
    let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let claims = json!({"iss": "issuer.test", "sub": "alice", "exp": exp});
    type Case<'a> = (&'a str, Vec<(&'a str, String)>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            "no credentials",
            vec![],
            401,
            "gateway:authentication.failed",
        ),
        (
            "wrong password",
            vec![("authorization", common::basic("owner", "nope"))],
            401,
            "gateway:authentication.failed",
        ),
        (
            "expired",
            bearer(&hs256("alice", -60)),
            401,
            "gateway:authentication.failed",
        ),
        (
            "forged",
            bearer(&mint(
                Algorithm::HS256,
                &EncodingKey::from_secret(b"another-secret-another-secret!!"),
                None,
                claims.clone(),
            )),
            401,
            "gateway:authentication.failed",
        ),
        (
            "alg none",
            bearer(&format!(
                "{}.{}.",
                b64(json!({"alg": "none"})),
                b64(claims.clone())
            )),
            401,
            "gateway:authentication.failed",
        ),
        (
            "es256 claimed, signed with the HS secret",
            bearer(&mint(
                Algorithm::HS256,
                &EncodingKey::from_secret(authkit::SECRET.as_bytes()),
                None,
                json!({"iss": "es.test", "sub": "x", "exp": exp}),
            )),
            401,
            "gateway:authentication.failed",
        ),
        (
            "unknown issuer",
            bearer(&mint(
                Algorithm::HS256,
                &EncodingKey::from_secret(authkit::SECRET.as_bytes()),
                None,
                json!({"iss": "evil", "sub": "x", "exp": exp}),
            )),
            401,
            "gateway:jwt.issuer.notsupported",
        ),
        ("malformed", bearer("not-a-jwt"), 400, "jwt:invalid"),
    ];
    for (what, headers, status, code) in cases {
        let r = whoami(a, &headers);
        assert_eq!(
            (r.status, r.json()["error"].clone()),
            (status, json!(code)),
            "{what}: {}",
            r.body
        );
        let keys: Vec<String> = r.json().as_object().unwrap().keys().cloned().collect();
        assert!(
            keys.iter()
                .all(|k| ["status", "error", "message", "description"].contains(&k.as_str())),
            "{what}: only the error"
        );
        if status == 401 {
            assert!(
                r.headers.contains_key("www-authenticate"),
                "{what}: WWW-Authenticate"
            );
        }
    }
    assert_eq!(whoami(a, &[("authorization", user("owner"))]).status, 200);
}

#[test]
fn websocket_tokens_expire_refresh_and_close_on_another_subject() {
    let env = start(&[], &jwt_issuers());
    let a = env.srv.addr;
    block_on(async {
        let e = Ws::connect_with(
            a,
            &format!("/ws/2?access_token={}", hs256("alice", -60)),
            &[],
        )
        .await
        .err()
        .expect("expired token refused");
        assert!(e.contains("401"), "{e}");
        // ?access_token= works; the session ends at exp with gateway:websocket.session.expired
        let mut ws = Ws::connect_with(a, &format!("/ws/2?access_token={}", hs256("alice", 2)), &[])
            .await
            .unwrap();
        let r = ws.request(command("ns.jwt:t1", "create", "/", None)).await;
        assert_eq!(r["status"], 201, "{r}");
        let t = ws.try_recv_text(WAIT).await.expect("error frame at expiry");
        let v: Value = serde_json::from_str(&t).unwrap();
        assert_eq!(
            v["value"]["error"], "gateway:websocket.session.expired",
            "{v}"
        );
        assert!(
            ws.try_recv_text(WAIT).await.is_none(),
            "closed after expiry"
        );
        // a refresh with the same subject keeps the session past the first token's exp
        let mut ws = Ws::connect_with(a, "/ws/2", &bearer(&hs256("alice", 2)))
            .await
            .unwrap();
        ws.send_text(&format!("JWT-TOKEN?jwtToken={}", hs256("alice", 120)))
            .await;
        smol::Timer::after(std::time::Duration::from_secs(4)).await;
        let r = ws
            .request(command("ns.jwt:t1", "retrieve", "/", None))
            .await;
        assert_eq!(r["status"], 200, "still open after the first exp: {r}");
        // another subject: the session is closed without an error frame
        ws.send_text(&format!("JWT-TOKEN?jwtToken={}", hs256("mallory", 120)))
            .await;
        assert!(
            ws.try_recv_text(WAIT).await.is_none(),
            "closed on another sub"
        );
    });
}

#[test]
fn pre_authentication_only_from_trusted_proxies() {
    let trusted = start(
        &[],
        "[auth]\npre_authenticated = true\ntrusted_proxies = [\"127.0.0.1\"]\n",
    );
    let h = vec![(
        "x-ditto-pre-authenticated",
        "proxy:alice,proxy:team".to_owned(),
    )];
    let r = whoami(trusted.srv.addr, &h);
    assert_eq!(
        r.json(),
        json!({"defaultSubject": "proxy:alice", "subjects": ["proxy:alice", "proxy:team"]})
    );
    let untrusted = start(
        &[],
        "[auth]\npre_authenticated = true\ntrusted_proxies = [\"10.9.9.9\"]\n",
    );
    assert_eq!(whoami(untrusted.srv.addr, &h).status, 401);
    let off = start(&["owner"], "");
    assert_eq!(whoami(off.srv.addr, &h).status, 401, "off by default");
}

#[test]
fn failed_logins_are_limited_per_address() {
    let env = start(
        &["owner"],
        "[auth]\nmax_failed_logins = 3\nfailed_login_window_secs = 600\n",
    );
    let a = env.srv.addr;
    for _ in 0..3 {
        assert_eq!(
            whoami(a, &[("authorization", common::basic("owner", "guess"))]).status,
            401
        );
    }
    let r = whoami(a, &[("authorization", user("owner"))]);
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (429, json!("too.many.requests"))
    );
}

#[test]
fn every_route_refuses_requests_without_credentials() {
    let env = start(&["owner"], "");
    let a = env.srv.addr;
    let routes = [
        ("GET", "/api/2/whoami"),
        ("GET", "/api/2/policies/ns:p"),
        ("PUT", "/api/2/policies/ns:p"),
        ("DELETE", "/api/2/policies/ns:p"),
        ("GET", "/api/2/policies/ns:p/entries"),
        ("PUT", "/api/2/policies/ns:p/entries/x/subjects/a:b"),
        ("GET", "/api/2/things/ns:t"),
        ("GET", "/api/2/search/things"),
        ("GET", "/api/2/anything"),
        ("GET", "/ws/2"),
    ];
    for (m, p) in routes {
        let body = (m == "PUT").then_some("{}");
        let r = http(a, m, p, &[], body);
        assert_eq!(
            (r.status, r.json()["error"].clone()),
            (401, json!("gateway:authentication.failed")),
            "{m} {p}"
        );
    }
    block_on(async {
        let e = Ws::connect_with(a, "/ws/2", &[])
            .await
            .err()
            .expect("refused");
        assert!(e.contains("401"), "{e}");
    });
    assert_eq!(
        http(a, "GET", "/health", &[], None).status,
        200,
        "health stays public"
    );
}
