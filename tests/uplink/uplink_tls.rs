//! `wss://`: the edge reaches the cloud through TLS (a TLS front with a certificate made by
//! openssl), trusting it through `ca_file`; without that CA the connection is refused as a TLS
//! failure and shown in /status/uplink. Prints SKIPPED without `openssl`.

use crate::common::block_on;
use crate::uplinkkit::{certificates, uplink_toml, wait_thing, Cloud, Edge, TlsFront, CONVERGE};
use serde_json::json;

#[test]
fn wss_with_the_clouds_ca_mirrors_and_an_untrusted_certificate_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, crt, key) = match certificates(dir.path()) {
        Ok(x) => x,
        Err(why) => {
            println!("SKIPPED: {why}");
            return;
        }
    };
    let cloud = Cloud::start();
    let front = TlsFront::start(cloud.addr(), &crt, &key);
    let url = format!("wss://localhost:{}/ws/2", front.port);
    let trusted = format!("{}ca_file = \"{}\"\n", uplink_toml(&url), ca.display());
    let edge = Edge::start(&trusted, &[]);
    block_on(async {
        edge.wait_connected().await;
        edge.http()
            .put(
                "/api/2/things/edge:tls1",
                &json!({"attributes": {"over": "wss"}}),
            )
            .await;
        wait_thing(cloud.addr(), "edge:tls1", CONVERGE, |t| {
            t["attributes"]["over"] == "wss"
        })
        .await;
        assert_eq!(edge.status(None).await["url"], url);
    });
    // the system's trust store does not know this certificate
    let untrusted = Edge::start(&uplink_toml(&url), &[]);
    block_on(async {
        let s = untrusted
            .wait_status(CONVERGE, |s| {
                s["lastError"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("TLS"))
            })
            .await;
        assert_eq!(s["connected"], false, "{s}");
        assert!(
            s["lastError"]["message"]
                .as_str()
                .unwrap()
                .contains("certificate"),
            "{s}"
        );
    });
}
