//! The MQTT bridge as a read-only Ditto connection (issue 16 point 11) against a real
//! mosquitto: `/api/2/connections[/mqtt-bridge[/status|/metrics|/logs]]` in Ditto's shapes
//! with the bridge's real state and counters (messages counted in the windows, a bad payload
//! as a failure and a log entry, the broker going away), and writes refused.

use crate::common;
use common::http::Http;
use common::mqtt::{Broker, Device, Edge};
use common::{basic, block_on};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const PASSWORD: &str = "devops-pass";

fn toml() -> String {
    let hash = edgetwin::auth::hash_password(PASSWORD).expect("hash");
    format!(
        "[[users]]\nname = \"admin\"\npassword_hash = \"{hash}\"\n[auth]\ndevops_users = [\"admin\"]\n\
         [mqtt]\nowners = [\"nginx:admin\"]\n[[mqtt.mappings]]\ntopic = \"sensors/{{thing}}/{{property}}\"\nfeature = \"env\"\n"
    )
}

/// Polls `path` (as the DevOps user) until `pred` holds on its JSON.
async fn wait_json(http: &Http, path: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = http.get(path).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        let v = r.json();
        if pred(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "{path} never matched: {v}");
        smol::Timer::after(Duration::from_millis(50)).await;
    }
}

#[test]
fn the_bridge_shows_as_a_read_only_connection_with_its_real_state() {
    let mut broker = Broker::start();
    let edge = Edge::start(&broker.url(), &toml());
    let http = Http {
        addr: edge.addr(),
        auth: Some(basic("admin", PASSWORD)),
    };
    block_on(async {
        let base = "/api/2/connections/mqtt-bridge";
        let status = wait_json(&http, &format!("{base}/status"), |s| {
            s["liveStatus"] == "open" && s["sourceStatus"][0]["status"] == "open"
        })
        .await;
        assert_eq!(status["connectionStatus"], "open");
        assert_eq!(status["recoveryStatus"], "succeeded");
        assert!(status["connectedSince"].is_string(), "{status}");

        let list = http.get("/api/2/connections").await.json();
        assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
        let c = &list[0];
        assert_eq!(c["id"], "mqtt-bridge");
        assert_eq!(c["connectionType"], "mqtt");
        assert_eq!(c["uri"], format!("tcp://127.0.0.1:{}", broker.port));
        let sources = c["sources"][0]["addresses"].to_string();
        assert!(
            sources.contains("edgetwin/+/ditto") && sources.contains("sensors/+/+"),
            "{sources}"
        );
        assert_eq!(http.get(base).await.json(), *c);
        assert_eq!(
            http.get("/api/2/connections?ids-only=true").await.json(),
            json!([{"id": "mqtt-bridge"}])
        );

        // three readings and a broken Ditto Protocol message
        let dev = Device::connect(broker.port, "conn-sensor");
        for v in ["20", "21", "22"] {
            dev.publish_acked("sensors/hall/temperature", v);
        }
        dev.publish_acked("edgetwin/hall/ditto", "not json");
        let m = wait_json(&http, &format!("{base}/metrics"), |m| {
            m["connectionMetrics"]["inbound"]["mapped"]["failure"]["PT1M"] == 1
        })
        .await;
        let inbound = &m["connectionMetrics"]["inbound"];
        assert_eq!(inbound["mapped"]["success"]["PT1M"], 3, "{m}");
        assert_eq!(inbound["mapped"]["success"]["PT24H"], 3);
        assert_eq!(inbound["consumed"]["success"]["PT1H"], 4);
        assert!(inbound["consumed"]["success"]["lastMessageAt"].is_string());
        assert_eq!(m["containsFailures"], true);
        let logs = http.get(&format!("{base}/logs")).await.json();
        let entries = logs["connectionLogs"].as_array().expect("entries");
        assert!(
            entries
                .iter()
                .any(|e| e["message"] == "connected to the broker"),
            "{logs}"
        );
        assert!(
            entries
                .iter()
                .any(|e| e["level"] == "failure" && e["category"] == "source"),
            "{logs}"
        );

        // read-only
        let r = http.put(base, &json!({"connectionType": "mqtt"})).await;
        assert_eq!((r.status, r.header("allow")), (405, Some("GET")));
        let r = http.delete(base).await;
        assert_eq!(r.status, 405);
        let cmd = |c: &'static str| {
            let http = http.clone();
            async move {
                http.send(
                    "POST",
                    "/api/2/connections/mqtt-bridge/command",
                    &[("Content-Type", "text/plain")],
                    Some(c.as_bytes()),
                )
                .await
            }
        };
        let r = cmd("connectivity.commands:resetConnectionMetrics").await;
        assert_eq!(
            (r.status, r.error()),
            (409, "connectivity:signal.illegal".into())
        );
        let r = cmd("connectivity.commands:explode").await;
        assert_eq!(
            (r.status, r.error()),
            (400, "connectivity:command.invalid".into())
        );
        let r = http.get("/api/2/connections/other").await;
        assert_eq!(
            (r.status, r.error()),
            (404, "connectivity:connection.notfound".into())
        );

        // the broker goes away: the status says so
        broker.stop();
        let s = wait_json(&http, &format!("{base}/status"), |s| {
            s["liveStatus"] == "failed"
        })
        .await;
        assert_eq!(s["recoveryStatus"], "ongoing");
        assert!(s.get("connectedSince").is_none(), "{s}");
        assert_ne!(s["sourceStatus"][0]["status"], "open");
    });
}
