//! The MQTT bridge end to end with a real mosquitto: mapped telemetry becomes a twin (created
//! with the bridge policy) and a WS event, availability drives `ConnectionStatus`, Ditto
//! Protocol passthrough (commands answered on the reply topic), a WS live command and an HTTP
//! message answered by the device over MQTT, a broker that is down at start or goes away, and
//! `--mqtt none`.

use crate::common;
use common::http::Http;
use common::mqtt::{free_port, wait_ready, wait_status, wait_thing, Broker, Device, Edge};
use common::{block_on, Server, Ws};
use serde_json::{json, Value};

const SENSORS: &str = r#"[mqtt]
[[mqtt.mappings]]
topic = "sensors/{thing}/{property}"
feature = "env"
availability = "sensors/{thing}/status"
"#;

async fn ws(addr: std::net::SocketAddr) -> Ws {
    Ws::connect(addr, Some(("ditto", "ditto")))
        .await
        .expect("ws")
}

/// The next event on `ws` whose topic ends with `suffix`.
async fn event_ending(ws: &mut Ws, suffix: &str) -> Value {
    loop {
        let e = ws
            .next_event(common::WAIT)
            .await
            .unwrap_or_else(|| panic!("no event ending with {suffix}"));
        if e["topic"].as_str().unwrap_or("").ends_with(suffix) {
            return e;
        }
    }
}

#[test]
fn telemetry_becomes_a_twin_with_the_bridge_policy_and_a_ws_event() {
    let broker = Broker::start();
    let edge = Edge::start(&broker.url(), SENSORS);
    let dev = Device::connect(broker.port, "kitchen-sensor");
    block_on(async {
        wait_ready(edge.addr()).await;
        let mut app = ws(edge.addr()).await;
        app.control("START-SEND-EVENTS").await;

        dev.publish_acked("sensors/kitchen/temperature", "21.5");
        let created = event_ending(&mut app, "/things/twin/events/created").await;
        assert_eq!(created["topic"], "edge/kitchen/things/twin/events/created");
        assert_eq!(
            created["headers"]["ditto-originator"],
            "integration:edgetwin-mqtt"
        );
        let merged = event_ending(&mut app, "/things/twin/events/merged").await;
        assert_eq!(merged["path"], "/features");
        assert_eq!(merged["value"]["env"]["properties"]["temperature"], 21.5);

        dev.publish_acked("sensors/kitchen/humidity", "40");
        let merged = event_ending(&mut app, "/things/twin/events/merged").await;
        assert_eq!(merged["value"]["env"]["properties"]["humidity"], 40);

        let http = Http::new(edge.addr());
        let t = http.get("/api/2/things/edge:kitchen").await.json();
        assert_eq!(
            t["features"]["env"]["properties"],
            json!({"temperature": 21.5, "humidity": 40})
        );
        assert_eq!(
            t["attributes"]["mqtt"],
            json!({"mapping": "sensors/{thing}/{property}", "device": "kitchen"})
        );
        let p = http.get("/api/2/policies/edge:kitchen").await.json();
        assert_eq!(
            p["entries"]["MQTT-BRIDGE"]["resources"]["thing:/"]["grant"],
            json!(["READ", "WRITE"])
        );
        assert!(p["entries"]["OWNER"]["subjects"]
            .get("nginx:ditto")
            .is_some());

        // availability: ConnectionStatus as Ditto's convention
        dev.publish_acked("sensors/kitchen/status", "online");
        let t = wait_thing(edge.addr(), "edge:kitchen", |t| {
            t["features"]["ConnectionStatus"]["properties"]["status"]["readyUntil"]
                == "9999-12-31T23:59:59Z"
        })
        .await;
        let since = t["features"]["ConnectionStatus"]["properties"]["status"]["readySince"]
            .as_str()
            .expect("readySince")
            .to_owned();
        assert_eq!(
            t["features"]["ConnectionStatus"]["definition"],
            json!(["org.eclipse.ditto:ConnectionStatus:1.0.0"])
        );
        dev.publish_acked("sensors/kitchen/status", "offline");
        let t = wait_thing(edge.addr(), "edge:kitchen", |t| {
            let s = &t["features"]["ConnectionStatus"]["properties"]["status"];
            s["readyUntil"].is_string() && s["readyUntil"] != "9999-12-31T23:59:59Z"
        })
        .await;
        assert_eq!(
            t["features"]["ConnectionStatus"]["properties"]["status"]["readySince"],
            since.as_str(),
            "readySince stays when the device goes offline"
        );
        let s = wait_status(edge.addr(), |s| s["acked"].as_u64() >= Some(4)).await;
        assert_eq!(s["created"], 1);
        assert_eq!(s["badPayload"], 0);
    });
}

const LAMP: &str = "edge.dev:lamp";

/// A device creating its own twin over the passthrough topic (it gets the bridge policy).
fn create_over_mqtt(dev: &Device) {
    dev.subscribe(&format!("edgetwin/{LAMP}/ditto/reply"));
    dev.subscribe(&format!("edgetwin/{LAMP}/live"));
    dev.publish(
        &format!("edgetwin/{LAMP}/ditto"),
        json!({"topic": "edge.dev/lamp/things/twin/commands/create",
               "headers": {"correlation-id": "create-1"}, "path": "/",
               "value": {"features": {"lamp": {"properties": {"on": false}}}}})
        .to_string(),
    );
    let r = dev.json_on(&format!("edgetwin/{LAMP}/ditto/reply"));
    assert_eq!(r["status"], 201, "{r}");
    assert_eq!(r["headers"]["correlation-id"], "create-1");
}

#[test]
fn passthrough_commands_are_answered_on_the_reply_topic() {
    let broker = Broker::start();
    let edge = Edge::start(&broker.url(), "");
    let dev = Device::connect(broker.port, "lamp");
    block_on(async { wait_ready(edge.addr()).await });
    create_over_mqtt(&dev);
    let reply = format!("edgetwin/{LAMP}/ditto/reply");
    // a merge, then a retrieve of what it wrote
    dev.publish(
        &format!("edgetwin/{LAMP}/ditto"),
        json!({"topic": "edge.dev/lamp/things/twin/commands/merge",
               "headers": {"correlation-id": "m-1", "content-type": "application/merge-patch+json"},
               "path": "/features/lamp/properties", "value": {"on": true}})
        .to_string(),
    );
    let r = dev.json_on(&reply);
    assert_eq!(
        (
            r["status"].as_u64(),
            r["headers"]["correlation-id"].as_str()
        ),
        (Some(204), Some("m-1"))
    );
    dev.publish(
        &format!("edgetwin/{LAMP}/ditto"),
        json!({"topic": "edge.dev/lamp/things/twin/commands/retrieve",
               "headers": {"correlation-id": "r-1"}, "path": "/features/lamp/properties/on"})
        .to_string(),
    );
    let r = dev.json_on(&reply);
    assert_eq!(
        (r["status"].as_u64(), &r["value"]),
        (Some(200), &json!(true))
    );
    // the owner reads it over HTTP (policy from the bridge, not the device's default)
    block_on(async {
        let http = Http::new(edge.addr());
        let t = http.get(&format!("/api/2/things/{LAMP}")).await;
        assert_eq!(t.status, 200, "{}", t.text());
        let p = http.get(&format!("/api/2/policies/{LAMP}")).await.json();
        assert!(p["entries"]["MQTT-BRIDGE"].is_object(), "{p}");
    });
    // a message about another thing is refused on this thing's topic
    dev.publish(
        &format!("edgetwin/{LAMP}/ditto"),
        json!({"topic": "edge.dev/other/things/twin/commands/retrieve",
               "headers": {"correlation-id": "x-1"}, "path": "/"})
        .to_string(),
    );
    let r = dev.json_on(&reply);
    assert_eq!(r["status"], 400);
    assert_eq!(r["value"]["error"], "mqtt:thing.mismatch");
    // response-required false: nothing comes back (the next reply is for the next request)
    dev.publish(
        &format!("edgetwin/{LAMP}/ditto"),
        json!({"topic": "edge.dev/lamp/things/twin/commands/modify",
               "headers": {"correlation-id": "q-1", "response-required": false},
               "path": "/attributes/quiet", "value": 1})
        .to_string(),
    );
    dev.publish(
        &format!("edgetwin/{LAMP}/ditto"),
        json!({"topic": "edge.dev/lamp/things/twin/commands/retrieve",
               "headers": {"correlation-id": "q-2"}, "path": "/attributes/quiet"})
        .to_string(),
    );
    let r = dev.json_on(&reply);
    assert_eq!(
        (r["headers"]["correlation-id"].as_str(), &r["value"]),
        (Some("q-2"), &json!(1))
    );
}

#[test]
fn a_ws_live_command_reaches_the_device_and_its_answer_comes_back() {
    let broker = Broker::start();
    let edge = Edge::start(&broker.url(), "");
    let dev = Device::connect(broker.port, "lamp");
    block_on(async { wait_ready(edge.addr()).await });
    create_over_mqtt(&dev);
    let live = format!("edgetwin/{LAMP}/live");
    let responder = std::thread::spawn(move || {
        for expected in ["modify", "retrieve"] {
            let cmd = dev.json_on(&live);
            assert_eq!(
                cmd["topic"],
                format!("edge.dev/lamp/things/live/commands/{expected}")
            );
            assert_eq!(cmd["headers"]["ditto-originator"], "nginx:ditto");
            let (status, value) = match expected {
                "modify" => (204, None),
                _ => (200, Some(json!({"on": true, "watts": 7}))),
            };
            let mut a = json!({"topic": cmd["topic"], "path": cmd["path"], "status": status,
                               "headers": {"correlation-id": cmd["headers"]["correlation-id"]}});
            if let Some(v) = value {
                a["value"] = v;
            }
            dev.publish(&format!("edgetwin/{LAMP}/ditto"), a.to_string());
        }
        dev
    });
    block_on(async {
        let mut app = ws(edge.addr()).await;
        let r = app
            .request(json!({"topic": "edge.dev/lamp/things/live/commands/modify",
                            "headers": {"correlation-id": "live-1"},
                            "path": "/features/lamp/properties/on", "value": true}))
            .await;
        assert_eq!(r["status"], 204, "{r}");
        let r = app
            .request(
                json!({"topic": "edge.dev/lamp/things/live/commands/retrieve",
                            "headers": {"correlation-id": "live-2"},
                            "path": "/features/lamp/properties"}),
            )
            .await;
        assert_eq!(r["status"], 200, "{r}");
        assert_eq!(r["value"], json!({"on": true, "watts": 7}));
        // the twin was not touched by the live modify
        let t = Http::new(edge.addr())
            .get(&format!("/api/2/things/{LAMP}/features/lamp/properties/on"))
            .await;
        assert_eq!(t.json(), json!(false));
    });
    responder.join().expect("device thread");
}

#[test]
fn an_http_message_reaches_the_device_and_its_answer_comes_back() {
    let broker = Broker::start();
    let edge = Edge::start(&broker.url(), "");
    let dev = Device::connect(broker.port, "lamp");
    block_on(async { wait_ready(edge.addr()).await });
    create_over_mqtt(&dev);
    let live = format!("edgetwin/{LAMP}/live");
    let responder = std::thread::spawn(move || {
        let m = dev.json_on(&live);
        assert_eq!(m["topic"], "edge.dev/lamp/things/live/messages/brew");
        assert_eq!(m["path"], "/features/lamp/inbox/messages/brew");
        assert_eq!(m["value"], json!({"cups": 2}));
        let a = json!({"topic": m["topic"], "path": m["path"], "status": 200,
                       "headers": {"correlation-id": m["headers"]["correlation-id"],
                                   "content-type": "application/json"},
                       "value": {"eta": 90}});
        dev.publish(&format!("edgetwin/{LAMP}/ditto"), a.to_string());
    });
    block_on(async {
        let r = Http::new(edge.addr())
            .post(
                &format!("/api/2/things/{LAMP}/features/lamp/inbox/messages/brew?timeout=10"),
                &json!({"cups": 2}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json(), json!({"eta": 90}));
    });
    responder.join().expect("device thread");
}

#[test]
fn broker_down_at_start_or_later_keeps_ws_and_http_serving_and_reconnects() {
    let port = free_port();
    let edge = Edge::start(&format!("mqtt://127.0.0.1:{port}"), SENSORS);
    block_on(async {
        let s = wait_status(edge.addr(), |s| s["connectionErrors"].as_u64() >= Some(1)).await;
        assert_eq!(s["connected"], false);
        assert_eq!(s["state"], "waiting");
        let h = Http::new(edge.addr()).get("/status/health").await.json();
        assert_eq!(h["mqtt"], "waiting");
        let mut app = ws(edge.addr()).await;
        let r = app
            .request(
                json!({"topic": "edge/made-by-ws/things/twin/commands/create",
                            "headers": {}, "path": "/", "value": {}}),
            )
            .await;
        assert_eq!(r["status"], 201, "WS serves while the broker is down: {r}");
    });
    let mut broker = Broker::start_on(port);
    let dev = Device::connect(port, "kitchen-sensor");
    block_on(async {
        wait_ready(edge.addr()).await;
        dev.publish_acked("sensors/kitchen/temperature", "20");
        wait_thing(edge.addr(), "edge:kitchen", |t| {
            t["features"]["env"]["properties"]["temperature"] == 20
        })
        .await;
    });
    drop(dev);
    broker.kill9();
    block_on(async {
        wait_status(edge.addr(), |s| s["connected"] == false).await;
        let r = Http::new(edge.addr())
            .get("/api/2/things/edge:kitchen")
            .await;
        assert_eq!(r.status, 200, "HTTP serves while the broker is gone");
    });
    broker.start_again();
    let dev = Device::connect(port, "kitchen-sensor");
    block_on(async {
        wait_ready(edge.addr()).await;
        dev.publish_acked("sensors/kitchen/temperature", "22");
        wait_thing(edge.addr(), "edge:kitchen", |t| {
            t["features"]["env"]["properties"]["temperature"] == 22
        })
        .await;
    });
}

#[test]
fn mqtt_none_disables_the_bridge_even_with_a_configured_broker() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = dir.path().join("edgetwin.toml");
    std::fs::write(
        &conf,
        format!(
            "[mqtt]\nurl = \"{}\"\nclient_id = \"disabled-{}\"\n",
            broker.url(),
            broker.port
        ),
    )
    .expect("config");
    let srv = Server::start_in(
        &dir.path().join("data"),
        &["--config", conf.to_str().expect("path"), "--mqtt", "none"],
    );
    let dev = Device::connect(broker.port, "d");
    dev.publish_acked(
        "edgetwin/edge.dev:nobody/ditto",
        json!({"topic": "edge.dev/nobody/things/twin/commands/create", "headers": {},
               "path": "/", "value": {}})
        .to_string(),
    );
    block_on(async {
        let http = Http::new(srv.addr);
        let h = http.get("/status/health").await.json();
        assert_eq!(h["mqtt"], "disabled");
        let s = http.get("/status/mqtt").await.json();
        assert_eq!(
            (s["state"].as_str(), s["received"].as_u64()),
            (Some("disabled"), Some(0))
        );
        assert_eq!(http.get("/api/2/things/edge.dev:nobody").await.status, 404);
        // the status endpoint is authenticated like /status/health
        let anon = Http::anonymous(srv.addr).get("/status/mqtt").await;
        assert_eq!(anon.status, 401);
    });
}

#[test]
fn unknown_devices_can_be_ignored_while_known_twins_are_fed() {
    let broker = Broker::start();
    let mut edge = Edge::start(
        &broker.url(),
        &SENSORS.replace("[mqtt]\n", "[mqtt]\nunknown_devices = \"ignore\"\n"),
    );
    let dev = Device::connect(broker.port, "sensors");
    block_on(async {
        wait_ready(edge.addr()).await;
        // a twin made by a user, whose policy lets the bridge write its features
        let policy = json!({"entries": {
            "OWNER": {"subjects": {"nginx:ditto": {"type": "user"}},
                      "resources": {"thing:/": {"grant": ["READ", "WRITE"], "revoke": []},
                                    "policy:/": {"grant": ["READ", "WRITE"], "revoke": []}}},
            "BRIDGE": {"subjects": {"integration:edgetwin-mqtt": {"type": "bridge"}},
                       "resources": {"thing:/features": {"grant": ["READ", "WRITE"], "revoke": []}}}}});
        let r = Http::new(edge.addr())
            .put("/api/2/things/edge:known", &json!({"_policy": policy}))
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
    });
    dev.publish_acked("sensors/stranger/temperature", "1");
    dev.publish_acked("sensors/known/temperature", "2");
    block_on(async {
        wait_thing(edge.addr(), "edge:known", |t| {
            t["features"]["env"]["properties"]["temperature"] == 2
        })
        .await;
        let s = wait_status(edge.addr(), |s| s["acked"] == 2).await;
        assert_eq!(
            (s["unknownDevice"].as_u64(), s["created"].as_u64()),
            (Some(1), Some(0)),
            "{s}"
        );
        let r = Http::new(edge.addr())
            .get("/api/2/things/edge:stranger")
            .await;
        assert_eq!(r.status, 404);
    });
    // SIGTERM with the bridge connected: a clean, prompt exit
    assert!(edge.server.terminate().success());
}

#[test]
fn broker_credentials_are_used_and_a_refusal_is_reported() {
    let broker = Broker::start_with(free_port(), |dir| {
        let file = dir.join("passwd");
        let ok = std::process::Command::new("mosquitto_passwd")
            .args(["-b", "-c"])
            .arg(&file)
            .args(["edge", "s3cret"])
            .status()
            .expect("mosquitto_passwd (package mosquitto)");
        assert!(ok.success());
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644));
        format!("allow_anonymous false\npassword_file {}\n", file.display())
    });
    let wrong = Edge::start(
        &broker.url(),
        "[mqtt]\nusername = \"edge\"\npassword = \"wrong\"\n",
    );
    let right = Edge::start(
        &broker.url(),
        "[mqtt]\nusername = \"edge\"\npassword = \"s3cret\"\n",
    );
    block_on(async {
        wait_ready(right.addr()).await;
        let s = wait_status(wrong.addr(), |s| s["connectionErrors"].as_u64() >= Some(2)).await;
        assert_eq!(s["connects"], 0, "{s}");
        assert!(
            s["lastError"].as_str().unwrap_or("").contains("refused"),
            "{s}"
        );
        // HTTP keeps serving on the refused one
        assert_eq!(
            Http::new(wrong.addr()).get("/status/health").await.status,
            200
        );
    });
}

#[test]
fn live_events_flow_both_ways() {
    let broker = Broker::start();
    let edge = Edge::start(&broker.url(), "");
    let dev = Device::connect(broker.port, "lamp");
    block_on(async { wait_ready(edge.addr()).await });
    create_over_mqtt(&dev);
    block_on(async {
        let mut app = ws(edge.addr()).await;
        app.control("START-SEND-LIVE-EVENTS").await;
        // app -> device
        app.send(
            &json!({"topic": "edge.dev/lamp/things/live/events/modified",
                         "headers": {"correlation-id": "ev-1"},
                         "path": "/features/lamp/properties/on", "value": true}),
        )
        .await;
        let got = dev.json_on(&format!("edgetwin/{LAMP}/live"));
        assert_eq!(got["topic"], "edge.dev/lamp/things/live/events/modified");
        assert_eq!(got["headers"]["correlation-id"], "ev-1");
        // device -> app
        dev.publish(
            &format!("edgetwin/{LAMP}/ditto"),
            json!({"topic": "edge.dev/lamp/things/live/events/modified",
                   "headers": {"correlation-id": "ev-2"},
                   "path": "/features/lamp/properties/on", "value": false})
            .to_string(),
        );
        let e = app.next_event(common::WAIT).await.expect("live event");
        assert_eq!(e["topic"], "edge.dev/lamp/things/live/events/modified");
        assert_eq!(
            (e["headers"]["correlation-id"].as_str(), &e["value"]),
            (Some("ev-2"), &json!(false))
        );
        assert_eq!(
            e["headers"]["ditto-originator"],
            "integration:edgetwin-mqtt"
        );
    });
}

#[test]
fn without_a_broker_the_log_says_so_once_and_health_shows_waiting() {
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = dir.path().join("edgetwin.toml");
    // retry every second, so that many attempts fail within the test
    std::fs::write(&conf, "[mqtt]\nreconnect_max_secs = 1\n").expect("config");
    let log = dir.path().join("stderr.log");
    let mut cmd = common::edgetwin_command();
    cmd.env("RUST_LOG", "warn")
        .stderr(std::fs::File::create(&log).expect("log file"));
    let url = format!("mqtt://127.0.0.1:{}", free_port());
    let conf = conf.to_str().expect("utf-8");
    let mut srv = Server::spawn(
        cmd,
        &dir.path().join("data"),
        &["--config", conf, "--mqtt", &url],
    );
    block_on(async {
        // attempts at 0, 0.5, 1.5, 2.5 ... s: 13 failures span more than 10 s
        wait_status(srv.addr, |s| s["connectionErrors"].as_u64() >= Some(13)).await;
        let h = Http::new(srv.addr).get("/status/health").await.json();
        assert_eq!(h["mqtt"], "waiting", "{h}");
    });
    srv.terminate();
    let text = std::fs::read_to_string(&log).expect("log");
    let mqtt: Vec<&str> = text.lines().filter(|l| l.contains("mqtt")).collect();
    assert_eq!(mqtt.len(), 1, "one line for the whole outage: {text}");
    assert!(
        mqtt[0].contains(&format!("no broker at {url}")) && mqtt[0].contains("--mqtt none"),
        "{text}"
    );
}
