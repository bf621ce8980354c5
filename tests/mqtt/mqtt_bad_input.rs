//! Bad input on the MQTT side: payloads that are not JSON, have the wrong type, are too big or
//! are rejected by the twin, passthrough messages that are not Ditto Protocol, invalid thing
//! ids, topics no mapping knows (left over from an old configuration), and floods. Each is
//! counted in `/status/mqtt`, acknowledged (never redelivered forever), and the bridge keeps
//! working.

use crate::common;
use common::http::Http;
use common::mqtt::{wait_ready, wait_status, wait_thing, Broker, Device, Edge};
use common::{block_on, Ws};
use serde_json::json;

const CONFIG: &str = r#"[limits]
max_message_kib = 1

[mqtt]
presets = ["zigbee2mqtt"]
[[mqtt.mappings]]
topic = "sensors/{thing}/{property}"
feature = "env"
"#;

#[test]
fn bad_payloads_are_counted_acknowledged_and_answered() {
    let broker = Broker::start();
    let edge = Edge::start(&broker.url(), CONFIG);
    let dev = Device::connect(broker.port, "bad");
    dev.subscribe("edgetwin/edge:x/ditto/reply");
    block_on(wait_ready(edge.addr()));
    let bad_payloads: [(&str, Vec<u8>); 7] = [
        ("zigbee2mqtt/dev1", b"not json".to_vec()),
        ("zigbee2mqtt/dev1", b"42".to_vec()),
        ("zigbee2mqtt/dev1", b"[1,2]".to_vec()),
        ("zigbee2mqtt/dev1", vec![0xff, 0xfe, 0x00]),
        (
            "zigbee2mqtt/dev1",
            format!("{{\"big\":\"{}\"}}", "x".repeat(2000)).into_bytes(),
        ),
        // accepted by the mapping, rejected by the twin (a key with '/')
        ("zigbee2mqtt/dev1", br#"{"a/b":1}"#.to_vec()),
        ("sensors/dev1/temp", vec![0xc3, 0x28]),
    ];
    for (t, p) in &bad_payloads {
        dev.publish(t, p.clone());
    }
    // an invalid thing id in the topic
    dev.publish("sensors/9bad:x/temp", "1");
    // passthrough: not JSON, not Ditto Protocol, about another thing, too big
    let ditto = "edgetwin/edge:x/ditto";
    dev.publish(ditto, "{nope");
    dev.publish(
        ditto,
        r#"{"topic":"edge/x/things/twin/commands/retrieve","headers":{"correlation-id":"c-1"}}"#,
    );
    dev.publish(ditto, r#"{"topic":"edge/y/things/twin/commands/retrieve","headers":{"correlation-id":"c-2"},"path":"/"}"#);
    dev.publish(ditto, format!("{{\"pad\":\"{}\"}}", "y".repeat(2000)));
    // and still: good telemetry works
    dev.publish("zigbee2mqtt/dev1", r#"{"ok":1}"#);
    let reply = "edgetwin/edge:x/ditto/reply";
    let errors: Vec<(u64, String)> = (0..4)
        .map(|_| {
            let r = dev.json_on(reply);
            (
                r["status"].as_u64().unwrap_or(0),
                r["value"]["error"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        errors,
        vec![
            (400, "json.invalid".to_owned()),
            (400, "json.field.missing".to_owned()),
            (400, "mqtt:thing.mismatch".to_owned()),
            (413, "messages:payload.toolarge".to_owned()),
        ]
    );
    block_on(async {
        wait_thing(edge.addr(), "edge:dev1", |t| {
            t["features"]["zigbee"]["properties"]["ok"] == 1
        })
        .await;
        let total = (bad_payloads.len() + 6) as u64;
        let s = wait_status(edge.addr(), |s| s["acked"].as_u64() == Some(total)).await;
        assert_eq!(s["badPayload"], bad_payloads.len() as u64 + 4, "{s}");
        assert_eq!(s["unknownTopic"], 1, "{s}");
        assert_eq!(s["received"], total, "{s}");
        let t = Http::new(edge.addr())
            .get("/api/2/things/edge:dev1")
            .await
            .json();
        assert_eq!(t["features"]["zigbee"]["properties"], json!({"ok": 1}));
    });
}

#[test]
fn topics_of_an_old_configuration_are_counted_as_unknown() {
    let broker = Broker::start();
    let mut edge = Edge::start(&broker.url(), "[mqtt]\npresets = [\"tasmota\"]\n");
    block_on(wait_ready(edge.addr()));
    // same client id, tasmota no longer configured: the broker still has the subscription
    edge.reconfigure("[mqtt]\npresets = [\"homie\"]\n");
    let dev = Device::connect(broker.port, "plug");
    block_on(wait_ready(edge.addr()));
    dev.publish_acked("tele/plug/SENSOR", r#"{"ENERGY":{"Power":1}}"#);
    dev.publish_acked("homie/h1/node/prop", "1");
    block_on(async {
        wait_thing(edge.addr(), "edge:h1", |t| {
            t["features"]["node"]["properties"]["prop"] == 1
        })
        .await;
        let s = wait_status(edge.addr(), |s| s["unknownTopic"] == 1).await;
        assert_eq!(s["telemetry"], 1, "{s}");
        assert_eq!(
            Http::new(edge.addr())
                .get("/api/2/things/edge:plug")
                .await
                .status,
            404
        );
    });
}

#[test]
fn a_flood_neither_crashes_nor_blocks_the_bridge() {
    let broker = Broker::start();
    let edge = Edge::start(
        &broker.url(),
        "[mqtt]\npresets = [\"zigbee2mqtt\"]\nqueue = 64\n",
    );
    let dev = Device::connect(broker.port, "flood");
    block_on(wait_ready(edge.addr()));
    for i in 0..20_000 {
        dev.publish0("zigbee2mqtt/flood0", format!("garbage {i}"));
        if i % 10 == 0 {
            dev.publish("zigbee2mqtt/flood1", "[1]");
        }
    }
    block_on(async {
        // WS and HTTP answer while the bridge works through the flood
        let mut app = Ws::connect(edge.addr(), Some(("ditto", "ditto")))
            .await
            .expect("ws");
        let r = app
            .request(json!({"topic": "edge/by-ws/things/twin/commands/create",
                            "headers": {}, "path": "/", "value": {}}))
            .await;
        assert_eq!(r["status"], 201);
    });
    dev.wait_acked(2000);
    dev.publish_acked("zigbee2mqtt/after", r#"{"fine":true}"#);
    block_on(async {
        wait_thing(edge.addr(), "edge:after", |t| {
            t["features"]["zigbee"]["properties"]["fine"] == true
        })
        .await;
        let s = wait_status(edge.addr(), |s| s["acked"].as_u64() >= Some(2001)).await;
        let bad = s["badPayload"].as_u64().unwrap_or(0);
        let dropped = s["dropped"].as_u64().unwrap_or(0);
        assert!(bad >= 2000, "every QoS 1 bad payload is counted: {s}");
        assert!(bad + dropped <= 22_000, "{s}");
        assert_eq!(
            s["received"].as_u64().unwrap_or(0),
            bad + dropped + 1,
            "each message counted once: {s}"
        );
    });
}
