//! The built-in presets end to end with payloads as real devices publish them: zigbee2mqtt,
//! Tasmota and Homie 4 devices become twins (with `ConnectionStatus` from their availability
//! topics), and desired-property changes, live commands and messages go back to each device's
//! command topic in its own format.

use crate::common;
use common::http::Http;
use common::mqtt::{wait_ready, wait_thing, Broker, Device, Edge};
use common::{block_on, Ws};
use serde_json::{json, Value};

const ONLINE: &str = "9999-12-31T23:59:59Z";

fn status(t: &Value) -> &Value {
    &t["features"]["ConnectionStatus"]["properties"]["status"]
}

async fn ws(addr: std::net::SocketAddr) -> Ws {
    Ws::connect(addr, Some(("ditto", "ditto")))
        .await
        .expect("ws")
}

#[test]
fn zigbee2mqtt_devices_become_twins_and_get_their_set_commands() {
    let broker = Broker::start();
    let edge = Edge::start(
        &broker.url(),
        "[mqtt]\npresets = [\"zigbee2mqtt\"]\nnamespace = \"home\"\n",
    );
    // what zigbee2mqtt itself would do: availability (retained), state, and listen on /set
    let z2m = Device::connect(broker.port, "zigbee2mqtt");
    z2m.subscribe("zigbee2mqtt/+/set");
    block_on(wait_ready(edge.addr()));
    z2m.publish_retained(
        "zigbee2mqtt/hall_light/availability",
        r#"{"state":"online"}"#,
    );
    z2m.publish(
        "zigbee2mqtt/hall_light",
        r#"{"brightness":254,"color_mode":"color_temp","color_temp":366,"linkquality":105,"state":"ON","update":{"installed_version":16786434,"latest_version":16786434,"state":"idle"}}"#,
    );
    z2m.publish(
        "zigbee2mqtt/0x00158d0001a2b3c4",
        r#"{"battery":100,"humidity":58.67,"linkquality":156,"pressure":1008.3,"temperature":21.34,"voltage":3015}"#,
    );
    block_on(async {
        let t = wait_thing(edge.addr(), "home:hall_light", |t| {
            t["features"]["zigbee"]["properties"]["state"] == "ON"
                && status(t)["readyUntil"] == ONLINE
        })
        .await;
        assert_eq!(
            t["features"]["zigbee"]["properties"]["update"]["state"],
            "idle"
        );
        assert_eq!(
            t["attributes"]["mqtt"],
            json!({"mapping": "zigbee2mqtt", "device": "hall_light"})
        );
        let s = wait_thing(edge.addr(), "home:0x00158d0001a2b3c4", |t| {
            t["features"]["zigbee"]["properties"]["temperature"] == 21.34
        })
        .await;
        assert_eq!(s["features"]["zigbee"]["properties"]["battery"], 100);

        // desired property -> zigbee2mqtt/<name>/set with the JSON object
        let http = Http::new(edge.addr());
        let r = http
            .put(
                "/api/2/things/home:hall_light/features/zigbee/desiredProperties/state",
                &json!("OFF"),
            )
            .await;
        assert!(r.status == 201 || r.status == 204, "{}", r.text());
    });
    assert_eq!(
        z2m.json_on("zigbee2mqtt/hall_light/set"),
        json!({"state": "OFF"})
    );
    // a live command on the mapped device: sent to /set, answered by the bridge
    block_on(async {
        let mut app = ws(edge.addr()).await;
        let r = app
            .request(
                json!({"topic": "home/hall_light/things/live/commands/merge",
                            "headers": {"content-type": "application/merge-patch+json"},
                            "path": "/features/zigbee/properties",
                            "value": {"brightness": 10, "state": "ON"}}),
            )
            .await;
        assert_eq!(r["status"], 204, "{r}");
    });
    assert_eq!(
        z2m.json_on("zigbee2mqtt/hall_light/set"),
        json!({"brightness": 10, "state": "ON"})
    );
    z2m.publish(
        "zigbee2mqtt/hall_light/availability",
        r#"{"state":"offline"}"#,
    );
    block_on(wait_thing(edge.addr(), "home:hall_light", |t| {
        status(t)["readyUntil"].is_string() && status(t)["readyUntil"] != ONLINE
    }));
}

#[test]
fn tasmota_devices_become_twins_and_get_their_cmnd_topics() {
    let broker = Broker::start();
    let edge = Edge::start(&broker.url(), "[mqtt]\npresets = [\"tasmota\"]\n");
    let plug = Device::connect(broker.port, "tasmota_8A1F2B");
    plug.subscribe("cmnd/tasmota_8A1F2B/#");
    block_on(wait_ready(edge.addr()));
    plug.publish_retained("tele/tasmota_8A1F2B/LWT", "Online");
    plug.publish(
        "tele/tasmota_8A1F2B/STATE",
        r#"{"Time":"2024-03-01T12:00:00","Uptime":"0T01:23:45","UptimeSec":5025,"Heap":25,"SleepMode":"Dynamic","Sleep":50,"LoadAvg":19,"MqttCount":1,"POWER":"ON","Wifi":{"AP":1,"SSId":"home","BSSId":"AA:BB:CC:DD:EE:FF","Channel":6,"Mode":"11n","RSSI":76,"Signal":-62,"LinkCount":1,"Downtime":"0T00:00:03"}}"#,
    );
    plug.publish(
        "tele/tasmota_8A1F2B/SENSOR",
        r#"{"Time":"2024-03-01T12:00:00","ENERGY":{"TotalStartTime":"2023-01-01T00:00:00","Total":12.345,"Yesterday":0.456,"Today":0.123,"Period":1,"Power":45,"ApparentPower":50,"ReactivePower":20,"Factor":0.9,"Voltage":230,"Current":0.21},"AM2301":{"Temperature":21.3,"Humidity":45.2,"DewPoint":8.9},"TempUnit":"C"}"#,
    );
    block_on(async {
        let t = wait_thing(edge.addr(), "edge:tasmota_8A1F2B", |t| {
            t["features"]["ENERGY"]["properties"]["Power"] == 45
                && t["features"]["tasmota"]["properties"]["POWER"] == "ON"
                && status(t)["readyUntil"] == ONLINE
        })
        .await;
        assert_eq!(t["features"]["Wifi"]["properties"]["RSSI"], 76);
        assert_eq!(t["features"]["AM2301"]["properties"]["Humidity"], 45.2);
        assert_eq!(t["features"]["tasmota"]["properties"]["TempUnit"], "C");
    });
    // the device reports a switch from the button: stat/RESULT and stat/POWER
    plug.publish("stat/tasmota_8A1F2B/RESULT", r#"{"POWER":"OFF"}"#);
    block_on(wait_thing(edge.addr(), "edge:tasmota_8A1F2B", |t| {
        t["features"]["tasmota"]["properties"]["POWER"] == "OFF"
    }));
    plug.publish("stat/tasmota_8A1F2B/POWER", "ON");
    block_on(wait_thing(edge.addr(), "edge:tasmota_8A1F2B", |t| {
        t["features"]["tasmota"]["properties"]["POWER"] == "ON"
    }));
    // desired POWER -> cmnd/<dev>/POWER with the plain value
    block_on(async {
        let r = Http::new(edge.addr())
            .put(
                "/api/2/things/edge:tasmota_8A1F2B/features/tasmota/desiredProperties/POWER",
                &json!("OFF"),
            )
            .await;
        assert!(r.status == 201 || r.status == 204, "{}", r.text());
    });
    assert_eq!(plug.text_on("cmnd/tasmota_8A1F2B/POWER"), "OFF");
    // an HTTP message -> cmnd/<dev>/<subject>, answered 202 by the bridge
    block_on(async {
        let r = Http::new(edge.addr())
            .post(
                "/api/2/things/edge:tasmota_8A1F2B/inbox/messages/Dimmer?timeout=5",
                &json!(40),
            )
            .await;
        assert_eq!(r.status, 202, "{}", r.text());
    });
    assert_eq!(plug.text_on("cmnd/tasmota_8A1F2B/Dimmer"), "40");
    plug.publish("tele/tasmota_8A1F2B/LWT", "Offline");
    block_on(wait_thing(edge.addr(), "edge:tasmota_8A1F2B", |t| {
        status(t)["readyUntil"].is_string() && status(t)["readyUntil"] != ONLINE
    }));
}

#[test]
fn homie_devices_become_twins_and_get_their_set_topics() {
    let broker = Broker::start();
    let edge = Edge::start(&broker.url(), "[mqtt]\npresets = [\"homie\"]\n");
    let car = Device::connect(broker.port, "super-car");
    car.subscribe("homie/super-car/+/+/set");
    block_on(wait_ready(edge.addr()));
    // a Homie 4 device announcing itself (retained), then property values
    for (t, p) in [
        ("homie/super-car/$homie", "4.0"),
        ("homie/super-car/$name", "Super car"),
        ("homie/super-car/$nodes", "engine,lights"),
        ("homie/super-car/engine/$name", "Engine"),
        ("homie/super-car/engine/$properties", "temperature"),
        ("homie/super-car/engine/temperature/$datatype", "float"),
        ("homie/super-car/lights/$properties", "power,color"),
        ("homie/super-car/$state", "ready"),
        ("homie/super-car/engine/temperature", "21.5"),
        ("homie/super-car/lights/power", "true"),
        ("homie/super-car/lights/color", "255,180,0"),
    ] {
        car.publish_retained(t, p);
    }
    block_on(async {
        let t = wait_thing(edge.addr(), "edge:super-car", |t| {
            t["features"]["lights"]["properties"]["color"] == "255,180,0"
                && status(t)["readyUntil"] == ONLINE
        })
        .await;
        assert_eq!(t["features"]["engine"]["properties"]["temperature"], 21.5);
        assert_eq!(t["features"]["lights"]["properties"]["power"], true);
        assert!(
            t["features"]["engine"]["properties"].get("$name").is_none(),
            "$ attributes are not properties: {t}"
        );
        let r = Http::new(edge.addr())
            .put(
                "/api/2/things/edge:super-car/features/lights/desiredProperties/power",
                &json!(false),
            )
            .await;
        assert!(r.status == 201 || r.status == 204, "{}", r.text());
    });
    assert_eq!(car.text_on("homie/super-car/lights/power/set"), "false");
    car.publish("homie/super-car/$state", "lost");
    block_on(wait_thing(edge.addr(), "edge:super-car", |t| {
        status(t)["readyUntil"].is_string() && status(t)["readyUntil"] != ONLINE
    }));
}

/// The five-line `[mqtt]` block of docs/mqtt.md "MQTT devices", verbatim (the broker URL comes from
/// `--mqtt`, which overrides the file), and the zigbee2mqtt flow shown under it.
#[test]
fn the_readme_five_line_config_connects_zigbee2mqtt() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/mqtt.md"))
        .expect("docs/mqtt.md");
    let section = readme
        .split("# MQTT devices\n")
        .nth(1)
        .expect("docs/mqtt.md section MQTT devices");
    let block = section
        .split("```toml\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("first toml block");
    assert_eq!(block.lines().count(), 5, "five lines: {block}");
    let broker = Broker::start();
    let edge = Edge::start(&broker.url(), block);
    let z2m = Device::connect(broker.port, "zigbee2mqtt");
    z2m.subscribe("zigbee2mqtt/+/set");
    block_on(wait_ready(edge.addr()));
    z2m.publish(
        "zigbee2mqtt/hall_light",
        r#"{"brightness":254,"state":"ON"}"#,
    );
    block_on(async {
        wait_thing(edge.addr(), "home:hall_light", |t| {
            t["features"]["zigbee"]["properties"]["state"] == "ON"
        })
        .await;
        let r = Http::new(edge.addr())
            .put(
                "/api/2/things/home:hall_light/features/zigbee/desiredProperties/state",
                &json!("OFF"),
            )
            .await;
        assert!(r.status == 201 || r.status == 204, "{}", r.text());
    });
    assert_eq!(
        z2m.json_on("zigbee2mqtt/hall_light/set"),
        json!({"state": "OFF"})
    );
}

/// With the broker gone, commands for a mapped device wait in the client queue (`[mqtt] queue`);
/// once it is full the bridge answers 503 instead of pretending it sent them.
#[test]
fn commands_beyond_the_client_queue_are_answered_503_while_the_broker_is_gone() {
    let mut broker = Broker::start();
    let edge = Edge::start(
        &broker.url(),
        "[mqtt]\npresets = [\"zigbee2mqtt\"]\nqueue = 2\n",
    );
    let z2m = Device::connect(broker.port, "zigbee2mqtt");
    block_on(wait_ready(edge.addr()));
    z2m.publish_acked("zigbee2mqtt/lamp", r#"{"state":"ON"}"#);
    block_on(wait_thing(edge.addr(), "edge:lamp", |t| {
        t["features"]["zigbee"]["properties"]["state"] == "ON"
    }));
    drop(z2m);
    broker.kill9();
    block_on(async {
        common::mqtt::wait_status(edge.addr(), |s| s["connected"] == false).await;
        let mut app = ws(edge.addr()).await;
        // The client queue holds `queue` (2) requests. Under load it may still hold requests from
        // before the broker died and rumqttc's event loop may hold one more, so the first 503
        // comes after 0 to 3 accepted commands; from then on every command is refused.
        let mut statuses = Vec::new();
        for i in 0..5 {
            let r = app
                .request(json!({"topic": "edge/lamp/things/live/commands/modify",
                                "headers": {}, "path": "/features/zigbee/properties/brightness",
                                "value": i}))
                .await;
            let status = r["status"].as_u64().unwrap_or(0);
            if status == 503 {
                assert_eq!(r["value"]["error"], "mqtt:broker.unavailable", "{r}");
            }
            statuses.push(status);
        }
        let accepted = statuses.iter().take_while(|s| **s == 204).count();
        assert!(accepted <= 3 && accepted < statuses.len(), "{statuses:?}");
        assert!(
            statuses[accepted..].iter().all(|s| *s == 503),
            "{statuses:?}"
        );
        let refused = (statuses.len() - accepted) as u64;
        let s = common::mqtt::wait_status(edge.addr(), |s| s["dropped"] == refused).await;
        assert_eq!(s["published"].as_u64(), Some(accepted as u64), "{s}");
    });
}
