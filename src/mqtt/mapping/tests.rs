//! Mapping unit tests with payloads as zigbee2mqtt, Tasmota and Homie devices publish them.

use super::*;
use crate::mqtt::config::MqttConfig;

fn with_presets(p: &[&str]) -> Mappings {
    let cfg = MqttConfig {
        presets: p.iter().map(|s| s.to_string()).collect(),
        ..MqttConfig::default()
    };
    Mappings::build(&cfg).unwrap()
}

fn telemetry(m: &Mappings, topic: &str, payload: &str) -> (Target, Value) {
    match m.classify(topic, payload.as_bytes(), "edge") {
        Inbound::Telemetry(t, v) => (t, v),
        other => panic!("{topic}: {other:?}"),
    }
}

#[test]
fn zigbee2mqtt_samples() {
    let m = with_presets(&["zigbee2mqtt"]);
    assert_eq!(
        m.filters(),
        vec!["zigbee2mqtt/+", "zigbee2mqtt/+/availability"]
    );
    // Aqara WSDCGQ11LM
    let (t, v) = telemetry(
        &m,
        "zigbee2mqtt/0x00158d0001a2b3c4",
        r#"{"battery":100,"humidity":58.67,"linkquality":156,"pressure":1008.3,"temperature":21.34,"voltage":3015}"#,
    );
    assert_eq!(t.thing_id, "edge:0x00158d0001a2b3c4");
    assert_eq!(t.mapping, "zigbee2mqtt");
    assert_eq!(v["zigbee"]["properties"]["temperature"], json!(21.34));
    // Hue bulb with a nested object
    let (_, v) = telemetry(
        &m,
        "zigbee2mqtt/hall_light",
        r#"{"brightness":254,"color_mode":"color_temp","color_temp":366,"state":"ON","update":{"state":"idle"}}"#,
    );
    assert_eq!(v["zigbee"]["properties"]["update"]["state"], "idle");
    // availability, new (JSON) and legacy (text) formats
    for (p, online) in [
        (r#"{"state":"online"}"#, true),
        ("offline", false),
        ("online", true),
    ] {
        match m.classify("zigbee2mqtt/hall_light/availability", p.as_bytes(), "edge") {
            Inbound::Availability(t, o) => {
                assert_eq!((t.thing_id.as_str(), o), ("edge:hall_light", online))
            }
            other => panic!("{other:?}"),
        }
    }
    // wrong type / not JSON
    assert!(matches!(
        m.classify("zigbee2mqtt/x", b"42", "edge"),
        Inbound::Bad(w) if w.contains("a number")
    ));
    assert!(matches!(
        m.classify("zigbee2mqtt/x", b"{nope", "edge"),
        Inbound::Bad(_)
    ));
    assert_eq!(m.classify("other/x", b"{}", "edge"), Inbound::Unknown);
    let c = m.command("zigbee2mqtt").unwrap();
    assert_eq!(c.topic.as_str(), "zigbee2mqtt/{thing}/set");
}

#[test]
fn tasmota_samples() {
    let m = with_presets(&["tasmota"]);
    let (t, v) = telemetry(
        &m,
        "tele/tasmota_8A1F2B/SENSOR",
        r#"{"Time":"2024-03-01T12:00:00","AM2301":{"Temperature":21.3,"Humidity":45.2,"DewPoint":8.9},"TempUnit":"C"}"#,
    );
    assert_eq!(t.thing_id, "edge:tasmota_8A1F2B");
    assert_eq!(v["AM2301"]["properties"]["Humidity"], json!(45.2));
    assert_eq!(v["tasmota"]["properties"]["TempUnit"], "C");
    let (_, v) = telemetry(
        &m,
        "tele/plug/SENSOR",
        r#"{"Time":"2024-03-01T12:00:00","ENERGY":{"TotalStartTime":"2023-01-01T00:00:00","Total":12.345,"Yesterday":0.456,"Today":0.123,"Power":45,"Voltage":230,"Current":0.21}}"#,
    );
    assert_eq!(v["ENERGY"]["properties"]["Power"], json!(45));
    let (_, v) = telemetry(
        &m,
        "tele/plug/STATE",
        r#"{"Time":"2024-03-01T12:00:00","Uptime":"0T01:23:45","Heap":25,"POWER":"ON","Wifi":{"AP":1,"SSId":"home","RSSI":76,"Signal":-62}}"#,
    );
    assert_eq!(v["tasmota"]["properties"]["POWER"], "ON");
    assert_eq!(v["Wifi"]["properties"]["RSSI"], json!(76));
    let (_, v) = telemetry(&m, "stat/plug/RESULT", r#"{"POWER":"OFF"}"#);
    assert_eq!(v["tasmota"]["properties"]["POWER"], "OFF");
    let (_, v) = telemetry(&m, "stat/plug/POWER", "OFF");
    assert_eq!(v["tasmota"]["properties"]["POWER"], "OFF");
    for (p, online) in [("Online", true), ("Offline", false)] {
        assert_eq!(
            m.classify("tele/plug/LWT", p.as_bytes(), "edge"),
            Inbound::Availability(
                Target {
                    thing_id: "edge:plug".into(),
                    device: "plug".into(),
                    mapping: "tasmota".into()
                },
                online
            )
        );
    }
    assert!(matches!(
        m.classify("tele/plug/SENSOR", b"[1,2]", "edge"),
        Inbound::Bad(w) if w.contains("an array")
    ));
    assert_eq!(
        m.command("tasmota").unwrap().feature.as_deref(),
        Some("tasmota")
    );
}

#[test]
fn homie_samples() {
    let m = with_presets(&["homie"]);
    assert_eq!(m.filters(), vec!["homie/+/+/+", "homie/+/$state"]);
    let (t, v) = telemetry(&m, "homie/super-car/engine/temperature", "21.5");
    assert_eq!(t.thing_id, "edge:super-car");
    assert_eq!(v["engine"]["properties"]["temperature"], json!(21.5));
    let (_, v) = telemetry(&m, "homie/super-car/lights/power", "true");
    assert_eq!(v["lights"]["properties"]["power"], json!(true));
    let (_, v) = telemetry(&m, "homie/super-car/lights/color", "255,180,0");
    assert_eq!(v["lights"]["properties"]["color"], "255,180,0");
    assert_eq!(
        m.classify("homie/super-car/engine/$name", b"Engine", "edge"),
        Inbound::Ignored
    );
    assert!(matches!(
        m.classify("homie/super-car/$state", b"ready", "edge"),
        Inbound::Availability(_, true)
    ));
    assert!(matches!(
        m.classify("homie/super-car/$state", b"lost", "edge"),
        Inbound::Availability(_, false)
    ));
    assert_eq!(
        m.classify("homie/super-car/$state", b"init", "edge"),
        Inbound::Ignored
    );
    assert!(matches!(
        m.classify("homie/super-car/engine/t", &[0xff, 0xfe], "edge"),
        Inbound::Bad(_)
    ));
}

#[test]
fn custom_mappings_and_errors() {
    let cfg = MqttConfig {
        mappings: vec![MappingConfig {
            name: None,
            topic: Some("sensors/{thing}/{property}".into()),
            payload: PayloadMode::Auto,
            feature: Some("env".into()),
            property: None,
            availability: None,
            online: None,
            offline: None,
            command: Some("sensors/{thing}/{property}/set".into()),
        }],
        presets: vec!["zigbee2mqtt".into()],
        ..MqttConfig::default()
    };
    let m = Mappings::build(&cfg).unwrap();
    let (t, v) = telemetry(&m, "sensors/ns.x:dev/co2", "612");
    assert_eq!(
        t.thing_id, "ns.x:dev",
        "a capture with ':' is a whole thing id"
    );
    assert_eq!(t.mapping, "sensors/{thing}/{property}");
    assert_eq!(v["env"]["properties"]["co2"], json!(612));
    assert!(matches!(
        m.classify("sensors/9bad:x/co2", b"1", "edge"),
        Inbound::BadTopic(_)
    ));
    let bad = |f: fn(&mut MappingConfig)| {
        let mut c = cfg.mappings[0].clone();
        f(&mut c);
        Mappings::build(&MqttConfig {
            mappings: vec![c],
            ..MqttConfig::default()
        })
        .unwrap_err()
    };
    assert!(bad(|c| c.topic = Some("x/{feature}".into())).contains("{thing}"));
    assert!(bad(|c| c.feature = None).contains("{feature}"));
    assert!(bad(|c| {
        c.topic = Some("x/{thing}".into());
        c.payload = PayloadMode::Value;
    })
    .contains("{property}"));
    assert!(bad(|c| c.command = Some("x/+/{thing}".into())).contains("command"));
    assert!(bad(|c| c.availability = Some("x/{thing}/{feature}".into())).contains("availability"));
}

#[test]
fn connection_status_follows_ditto() {
    let on = connection_status(true, "2024-01-01T00:00:00.000Z");
    assert_eq!(
        on["ConnectionStatus"]["definition"][0],
        "org.eclipse.ditto:ConnectionStatus:1.0.0"
    );
    assert_eq!(
        on["ConnectionStatus"]["properties"]["status"]["readyUntil"],
        FOREVER
    );
    let off = connection_status(false, "2024-01-01T00:00:00.000Z");
    assert!(off["ConnectionStatus"]["properties"]["status"]
        .get("readySince")
        .is_none());
}
