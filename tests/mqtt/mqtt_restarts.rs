//! QoS 1 end to end across restarts: every telemetry message the broker acknowledged to the
//! device reaches the twin when the broker restarts while messages are in flight to edgetwin,
//! and when the broker crashes while it holds messages for a stopped edgetwin (persistent
//! session). edgetwin acknowledges a message once its change is applied (second durability
//! class, README "MQTT devices"): a kill -9 of edgetwin keeps everything applied more than one
//! flush interval before it, and the broker delivers what edgetwin had not acknowledged.

use crate::common;
use common::mqtt::{wait_ready, wait_thing, Broker, Device, Edge};
use common::{block_on, http::Http};
use std::time::Duration;

const MAPPING: &str = r#"[mqtt]
[[mqtt.mappings]]
topic = "t/{thing}/{property}"
feature = "v"
"#;
const METERS: usize = 8;

/// Publishes values `range` (value i on `t/meter<i % METERS>/p<i>`) and waits for the broker's
/// acknowledgements.
fn publish(dev: &Device, range: std::ops::Range<usize>) {
    let start = dev.acked();
    let n = range.len();
    for i in range {
        dev.publish(&format!("t/meter{}/p{i}", i % METERS), i.to_string());
    }
    dev.wait_acked(start + n);
}

/// Waits until every value below `n` is in its twin.
fn all_arrived(edge: &Edge, n: usize) {
    block_on(async {
        for m in 0..METERS {
            wait_thing(edge.addr(), &format!("edge:meter{m}"), |t| {
                let p = &t["features"]["v"]["properties"];
                (m..n).step_by(METERS).all(|i| p[format!("p{i}")] == i)
            })
            .await;
        }
    });
}

/// The number of values of meter0 already in its twin.
fn arrived(edge: &Edge) -> usize {
    block_on(async {
        let r = Http::new(edge.addr())
            .get("/api/2/things/edge:meter0/features/v/properties")
            .await;
        if r.status == 200 {
            r.json().as_object().map_or(0, |m| m.len())
        } else {
            0
        }
    })
}

/// The default `store.flush_interval_ms`, plus room for a busy machine.
const INTERVAL_AND_SLACK: Duration = Duration::from_millis(2000);

#[test]
fn edgetwin_killed_mid_stream_keeps_what_is_older_than_the_flush_interval() {
    let broker = Broker::start();
    let mut edge = Edge::start(&broker.url(), MAPPING);
    let dev = Device::connect(broker.port, "meters");
    block_on(wait_ready(edge.addr()));
    publish(&dev, 0..800);
    all_arrived(&edge, 800);
    std::thread::sleep(INTERVAL_AND_SLACK);
    publish(&dev, 800..1600);
    // kill while the bridge is still working through the second part (or right after it)
    while arrived(&edge) < 110 {
        std::thread::sleep(Duration::from_millis(2));
    }
    edge.kill9();
    publish(&dev, 1600..2000); // queued by the broker for edgetwin's session
    edge.start_again();
    // applied more than an interval before the kill: on disk; published while it was down:
    // delivered by the broker
    block_on(async {
        for m in 0..METERS {
            wait_thing(edge.addr(), &format!("edge:meter{m}"), |t| {
                let p = &t["features"]["v"]["properties"];
                (m..800).step_by(METERS).all(|i| p[format!("p{i}")] == i)
                    && (1600 + m..2000)
                        .step_by(METERS)
                        .all(|i| p[format!("p{i}")] == i)
            })
            .await;
        }
    });
}

#[test]
fn broker_restarted_mid_stream_loses_no_acked_telemetry() {
    let mut broker = Broker::start();
    let edge = Edge::start(&broker.url(), MAPPING);
    let dev = Device::connect(broker.port, "meters");
    block_on(wait_ready(edge.addr()));
    publish(&dev, 0..1600);
    broker.restart(); // SIGTERM: mosquitto saves what is in flight to edgetwin
    let dev = Device::connect(broker.port, "meters-2");
    block_on(wait_ready(edge.addr()));
    publish(&dev, 1600..2000);
    all_arrived(&edge, 2000);
}

#[test]
fn broker_crash_keeps_telemetry_queued_for_a_stopped_edgetwin() {
    let mut broker = Broker::start();
    let mut edge = Edge::start(&broker.url(), MAPPING);
    let dev = Device::connect(broker.port, "meters");
    block_on(wait_ready(edge.addr()));
    publish(&dev, 0..400);
    all_arrived(&edge, 400);
    std::thread::sleep(INTERVAL_AND_SLACK); // on disk (second durability class)
    edge.kill9();
    publish(&dev, 400..800);
    drop(dev);
    // mosquitto saves its state every second (autosave_interval 1 in the test broker): the
    // broker's own durability, not edgetwin's, decides what survives a SIGKILL of the broker
    std::thread::sleep(Duration::from_millis(2500));
    broker.kill9();
    broker.start_again();
    edge.start_again();
    let dev = Device::connect(broker.port, "meters-2");
    block_on(wait_ready(edge.addr()));
    publish(&dev, 800..1000);
    all_arrived(&edge, 1000);
}
