//! CORS (`[cors] allowed_origins`, issue 16 point 8) as a browser on another origin sees it:
//! the preflight is answered without credentials and echoes the requested headers, the real
//! request with Basic and with a JWT carries the allowed origin, credentials and the exposed
//! headers (errors and SSE too); other origins get nothing; off by default.

use crate::authkit;
use crate::common;
use authkit::{hs256, http, jwt_issuers, start, user, Resp};
use common::block_on;
use common::http::{request_bytes, Conn};

const UI: &str = "https://ui.example.com";

fn preflight(addr: std::net::SocketAddr, origin: &str, method: &str, path: &str) -> Resp {
    http(
        addr,
        "OPTIONS",
        path,
        &[
            ("origin", origin.to_owned()),
            ("access-control-request-method", method.to_owned()),
            (
                "access-control-request-headers",
                "authorization,content-type,if-match".to_owned(),
            ),
        ],
        None,
    )
}

/// The headers a browser needs on every answer to a script of `UI`.
fn assert_cors(r: &Resp, what: &str) {
    let h = |n: &str| r.headers.get(n).cloned().unwrap_or_default();
    assert_eq!(h("access-control-allow-origin"), UI, "{what}: {r:?}");
    assert_eq!(h("access-control-allow-credentials"), "true", "{what}");
    let expose = h("access-control-expose-headers");
    for name in ["etag", "location", "correlation-id"] {
        assert!(
            expose.contains(name),
            "{what}: {name} not exposed: {expose}"
        );
    }
}

#[test]
fn a_foreign_origin_works_with_basic_and_with_a_jwt() {
    let env = start(
        &["owner"],
        &format!("[cors]\nallowed_origins = [\"{UI}\"]\n{}", jwt_issuers()),
    );
    let a = env.srv.addr;
    // the preflight needs no credentials and echoes what the script wants to send
    let p = preflight(a, UI, "PUT", "/api/2/things/cors:lamp");
    assert!(p.status == 200 || p.status == 204, "{p:?}");
    assert_cors(&p, "preflight");
    assert_eq!(
        p.headers["access-control-allow-headers"],
        "authorization,content-type,if-match"
    );
    assert!(p.headers["access-control-allow-methods"].contains("PUT"));
    let origin = ("origin", UI.to_owned());

    // Basic
    let r = http(
        a,
        "PUT",
        "/api/2/things/cors:lamp",
        &[origin.clone(), ("authorization", user("owner"))],
        Some(r#"{"attributes":{"on":true}}"#),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_cors(&r, "PUT with Basic");
    assert!(r.headers.contains_key("etag") && r.headers.contains_key("location"));

    // JWT: a policy entry for the token's subject, then a read with the bearer token
    let r = http(
        a,
        "PUT",
        "/api/2/policies/cors:lamp/entries/app",
        &[origin.clone(), ("authorization", user("owner"))],
        Some(
            r#"{"subjects":{"test:app":{"type":"jwt"}},"resources":{"thing:/":{"grant":["READ"],"revoke":[]}}}"#,
        ),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let p = preflight(a, UI, "GET", "/api/2/things/cors:lamp");
    assert_cors(&p, "preflight for the JWT request");
    let r = http(
        a,
        "GET",
        "/api/2/things/cors:lamp",
        &[
            origin.clone(),
            ("authorization", format!("Bearer {}", hs256("app", 60))),
        ],
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["attributes"]["on"], true);
    assert_cors(&r, "GET with a JWT");

    // errors carry the headers too, so the script can read them
    let r = http(
        a,
        "GET",
        "/api/2/things/cors:lamp",
        std::slice::from_ref(&origin),
        None,
    );
    assert_eq!(r.status, 401);
    assert_cors(&r, "401");
    let r = http(
        a,
        "GET",
        "/api/2/things/cors:nothing",
        &[origin.clone(), ("authorization", user("owner"))],
        None,
    );
    assert_eq!(r.status, 404);
    assert_cors(&r, "404");
    let r = http(
        a,
        "PUT",
        "/api/2/things/cors:lamp/attributes/on",
        &[
            origin.clone(),
            ("authorization", user("owner")),
            ("if-match", "\"rev:99\"".into()),
        ],
        Some("false"),
    );
    assert_eq!(r.status, 412);
    assert_cors(&r, "412");
    assert!(r.headers.contains_key("etag"), "412 names the current ETag");

    // SSE from the browser
    block_on(async {
        let auth = user("owner");
        let mut c = Conn::connect(a).await;
        let req = request_bytes(
            "GET",
            "/api/2/things?ids=cors:lamp",
            &[
                ("Accept", "text/event-stream"),
                ("Authorization", &auth),
                ("Origin", UI),
            ],
            None,
        );
        assert!(c.send(&req).await);
        let (status, headers) = c.read_head(common::WAIT).await.expect("SSE head");
        assert_eq!(status, 200);
        let get = |n: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(n))
                .map(|(_, v)| v.clone())
        };
        assert_eq!(get("access-control-allow-origin").as_deref(), Some(UI));
        assert_eq!(get("content-type").as_deref(), Some("text/event-stream"));
    });

    // another origin: no preflight answer, no CORS headers
    let p = preflight(
        a,
        "https://evil.example.com",
        "PUT",
        "/api/2/things/cors:lamp",
    );
    assert_eq!(p.status, 401, "not answered as a preflight: {p:?}");
    assert!(!p.headers.contains_key("access-control-allow-origin"));
    let r = http(
        a,
        "GET",
        "/api/2/things/cors:lamp",
        &[
            ("origin", "https://evil.example.com".into()),
            ("authorization", user("owner")),
        ],
        None,
    );
    assert_eq!(r.status, 200);
    assert!(!r.headers.contains_key("access-control-allow-origin"));
}

#[test]
fn cors_is_off_by_default_and_star_allows_any_origin() {
    let off = start(&["owner"], "");
    let p = preflight(off.srv.addr, UI, "GET", "/api/2/things/x:y");
    assert_eq!(p.status, 401);
    assert!(
        p.headers.keys().all(|k| !k.starts_with("access-control-")),
        "{p:?}"
    );

    let any = start(&["owner"], "[cors]\nallowed_origins = [\"*\"]\n");
    let origin = "http://localhost:8000";
    let p = preflight(any.srv.addr, origin, "GET", "/api/2/things/x:y");
    assert_eq!(p.headers["access-control-allow-origin"], origin);
    assert_eq!(p.headers["access-control-allow-credentials"], "true");
    let r = http(
        any.srv.addr,
        "GET",
        "/api/2/whoami",
        &[("origin", origin.into()), ("authorization", user("owner"))],
        None,
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["access-control-allow-origin"], origin);
    assert!(r.headers["vary"].to_ascii_lowercase().contains("origin"));
}
