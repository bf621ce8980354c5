//! Down from the cloud: a desired property set in the cloud reaches the local twin and the MQTT
//! device's command topic (real mosquitto); a cloud HTTP message is answered by a local WS
//! device and by an MQTT device, a cloud live retrieve by a local WS device, each with the
//! cloud caller's correlation-id and within its timeout.

use crate::common::mqtt::{wait_ready, Broker, Device};
use crate::common::{block_on, Ws, WAIT};
use crate::uplinkkit::{uplink_toml, wait_thing, Cloud, Edge, CONVERGE};
use serde_json::{json, Value};

use crate::uplinkkit::UPLINK_SUBJECT as UPLINK;

fn mqtt_toml(cloud: &Cloud) -> String {
    format!(
        "{}[mqtt]\nclient_id = \"uplink-test-{}\"\nowners = [\"nginx:ditto\", \"{UPLINK}\"]\n\
         [[mqtt.mappings]]\ntopic = \"sensors/{{thing}}/{{property}}\"\nfeature = \"env\"\n\
         command = \"sensors/{{thing}}/{{property}}/set\"\n",
        uplink_toml(&cloud.url()),
        crate::common::mqtt::free_port()
    )
}

/// A local thing whose policy lets the dev user (the device's session) and the uplink in.
fn device_thing() -> Value {
    json!({"attributes": {"kind": "ws-device"}, "_policy": crate::uplinkkit::policy_with_uplink()})
}

#[test]
fn a_desired_property_set_in_the_cloud_reaches_the_mqtt_device() {
    let broker = Broker::start();
    let cloud = Cloud::start();
    let edge = Edge::start(&mqtt_toml(&cloud), &["--mqtt", &broker.url()]);
    let dev = Device::connect(broker.port, "lamp1");
    dev.subscribe("sensors/lamp1/temp/set");
    block_on(async {
        wait_ready(edge.addr()).await;
        edge.wait_connected().await;
    });
    dev.publish("sensors/lamp1/temp", "21");
    block_on(async {
        wait_thing(cloud.addr(), "edge:lamp1", CONVERGE, |t| {
            t["features"]["env"]["properties"]["temp"] == 21
        })
        .await;
        let r = cloud
            .http()
            .put(
                "/api/2/things/edge:lamp1/features/env/desiredProperties/temp",
                &json!(25),
            )
            .await;
        assert!(r.status == 201 || r.status == 204, "{}", r.text());
    });
    assert_eq!(dev.text_on("sensors/lamp1/temp/set"), "25");
    block_on(async {
        let t = wait_thing(edge.addr(), "edge:lamp1", WAIT, |t| {
            t["features"]["env"]["desiredProperties"]["temp"] == 25
        })
        .await;
        assert_eq!(t["features"]["env"]["properties"]["temp"], 21);
        let s = edge.wait_synced(CONVERGE).await;
        assert!(s["counters"]["changesDown"].as_u64().unwrap() >= 1, "{s}");
        assert!(s["counters"]["cloudEvents"].as_u64().unwrap() >= 1, "{s}");
    });
}

/// The next frame on `ws` that is a live signal (not an event), skipping others.
async fn next_live(ws: &mut Ws) -> Value {
    loop {
        let v = ws.recv().await;
        if v["topic"].as_str().unwrap_or("").contains("/live/") {
            return v;
        }
    }
}

#[test]
fn cloud_messages_and_live_retrieves_are_answered_by_a_local_ws_device() {
    let cloud = Cloud::start();
    let edge = Edge::start(&uplink_toml(&cloud.url()), &[]);
    block_on(async {
        edge.wait_connected().await;
        let r = edge
            .http()
            .put("/api/2/things/edge:dev1", &device_thing())
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        wait_thing(cloud.addr(), "edge:dev1", CONVERGE, |t| !t.is_null()).await;
        let mut dev = Ws::connect(edge.addr(), Some(("ditto", "ditto")))
            .await
            .unwrap();
        dev.control("START-SEND-MESSAGES").await;
        dev.control("START-SEND-LIVE-COMMANDS").await;

        // a message to the thing's inbox over the cloud's HTTP API
        let http = cloud.http();
        let ask = smol::spawn(async move {
            http.send(
                "POST",
                "/api/2/things/edge:dev1/inbox/messages/hello?timeout=10",
                &[
                    ("Content-Type", "application/json"),
                    ("correlation-id", "cloud-m1"),
                ],
                Some(br#"{"x":1}"#),
            )
            .await
        });
        let m = next_live(&mut dev).await;
        assert_eq!(m["topic"], "edge/dev1/things/live/messages/hello");
        assert_eq!(m["headers"]["correlation-id"], "cloud-m1");
        assert_eq!(m["value"], json!({"x": 1}));
        dev.send(&json!({"topic": m["topic"], "path": m["path"], "status": 200,
                         "headers": {"correlation-id": "cloud-m1", "content-type": "application/json"},
                         "value": {"y": 2}}))
            .await;
        let r = ask.await;
        assert_eq!((r.status, r.json()), (200, json!({"y": 2})), "{}", r.text());
        assert_eq!(r.header("correlation-id"), Some("cloud-m1"));

        // a live retrieve over the cloud's HTTP API, answered by the device
        let http = cloud.http();
        let get = smol::spawn(async move {
            http.get_with(
                "/api/2/things/edge:dev1/attributes?channel=live&timeout=10",
                &[("correlation-id", "cloud-r1")],
            )
            .await
        });
        let c = next_live(&mut dev).await;
        assert_eq!(c["topic"], "edge/dev1/things/live/commands/retrieve");
        assert_eq!(c["path"], "/attributes");
        dev.send(
            &json!({"topic": c["topic"], "path": c["path"], "status": 200,
                         "headers": {"correlation-id": c["headers"]["correlation-id"]},
                         "value": {"kind": "live-answer"}}),
        )
        .await;
        let r = get.await;
        assert_eq!(
            (r.status, r.json()),
            (200, json!({"kind": "live-answer"})),
            "{}",
            r.text()
        );
        let s = edge.status(None).await;
        assert_eq!(s["counters"]["liveDown"], 2, "{s}");
        assert_eq!(s["counters"]["answersUp"], 2, "{s}");
    });
}

/// A device speaking Ditto Protocol over MQTT (passthrough) answers a cloud message itself
/// (a mapped device's messages become commands on its topic, answered 202 by the bridge).
#[test]
fn a_cloud_message_is_answered_by_an_mqtt_device() {
    let broker = Broker::start();
    let cloud = Cloud::start();
    let edge = Edge::start(&mqtt_toml(&cloud), &["--mqtt", &broker.url()]);
    let dev = Device::connect(broker.port, "lamp2");
    dev.subscribe("edgetwin/edge:lamp2/live");
    dev.subscribe("edgetwin/edge:lamp2/ditto/reply");
    block_on(async {
        wait_ready(edge.addr()).await;
        edge.wait_connected().await;
    });
    dev.publish(
        "edgetwin/edge:lamp2/ditto",
        json!({"topic": "edge/lamp2/things/twin/commands/create",
               "headers": {"correlation-id": "create-1"}, "path": "/",
               "value": {"features": {"lamp": {"properties": {"on": false}}}}})
        .to_string(),
    );
    assert_eq!(
        dev.json_on("edgetwin/edge:lamp2/ditto/reply")["status"],
        201
    );
    block_on(wait_thing(cloud.addr(), "edge:lamp2", CONVERGE, |t| {
        !t.is_null()
    }));
    let responder = std::thread::spawn(move || {
        let m = dev.json_on("edgetwin/edge:lamp2/live");
        assert_eq!(m["topic"], "edge/lamp2/things/live/messages/brew");
        assert_eq!(m["value"], json!({"cups": 2}));
        let a = json!({"topic": m["topic"], "path": m["path"], "status": 200,
                       "headers": {"correlation-id": m["headers"]["correlation-id"],
                                   "content-type": "application/json"},
                       "value": {"eta": 90}});
        dev.publish("edgetwin/edge:lamp2/ditto", a.to_string());
    });
    block_on(async {
        let r = cloud
            .http()
            .post(
                "/api/2/things/edge:lamp2/inbox/messages/brew?timeout=10",
                &json!({"cups": 2}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json(), json!({"eta": 90}));
    });
    responder.join().expect("device thread");
}
