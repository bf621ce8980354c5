//! JWT refresh: the edge authenticates with a token file; a new token written to the file
//! reaches the open session (`JWT-TOKEN`) before the old one expires, so the cloud keeps the
//! session open past the first token's expiry (one connect, no error) and mirroring goes on.

use crate::common::block_on;
use crate::common::http::Http;
use crate::uplinkkit::{Cloud, Edge, CONVERGE};
use serde_json::json;
use std::time::Duration;

const SECRET: &str = "0123456789abcdef0123456789abcdef";

fn now_secs() -> i64 {
    edgetwin::clock::now_millis() / 1000
}

fn token(sub: &str, exp: i64, jti: &str) -> String {
    let claims = json!({"iss": "https://issuer.test", "sub": sub, "exp": exp, "jti": jti});
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .expect("encode jwt")
}

#[test]
fn a_renewed_token_file_keeps_the_session_open_past_the_first_tokens_expiry() {
    let cloud = Cloud::start_with(&format!(
        "[[auth.jwt]]\nissuer = \"issuer.test\"\nprefix = \"jwt\"\nsecret = \"{SECRET}\"\n"
    ));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("uplink.jwt");
    let first_exp = now_secs() + 6;
    std::fs::write(&file, token("edge-1", first_exp, "a")).unwrap();
    let toml = format!(
        "[uplink]\nurl = \"{}\"\ntoken_file = \"{}\"\nnamespaces = [\"edge\"]\n\
         request_timeout_secs = 10\nreconnect_max_secs = 2\n",
        cloud.url(),
        file.display()
    );
    let edge = Edge::start(&toml, &[]);
    let second_exp = now_secs() + 3600;
    block_on(async {
        let s = edge.wait_connected().await;
        assert_eq!(
            s["tokenExpires"],
            edgetwin::clock::format_millis(first_exp * 1000)
        );
        std::fs::write(&file, token("edge-1", second_exp, "second")).unwrap();
        let want = edgetwin::clock::format_millis(second_exp * 1000);
        edge.wait_status(CONVERGE, |s| s["tokenExpires"] == want.as_str())
            .await;
        // past the first token's expiry (edgetwin, like Ditto, closes a session whose JWT expired)
        let left = (first_exp + 2 - now_secs()).max(0) as u64;
        smol::Timer::after(Duration::from_secs(left)).await;
        edge.http()
            .put("/api/2/things/edge:j1", &json!({"attributes": {"a": 1}}))
            .await;
        let mut http = Http::new(cloud.addr());
        http.auth = Some(format!("Bearer {}", token("edge-1", second_exp, "reader")));
        let deadline = std::time::Instant::now() + CONVERGE;
        loop {
            let r = http.get("/api/2/things/edge:j1").await;
            if r.status == 200 {
                assert_eq!(r.json()["attributes"]["a"], 1);
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "never mirrored: {}",
                r.text()
            );
            smol::Timer::after(Duration::from_millis(50)).await;
        }
        let s = edge.status(None).await;
        assert_eq!(s["connected"], true, "{s}");
        assert_eq!(
            s["counters"]["connects"], 1,
            "the session was never closed: {s}"
        );
        assert_eq!(s["counters"]["connectionErrors"], 0, "{s}");
    });
}
