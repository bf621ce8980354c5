//! QoS 1 end to end across restarts: every telemetry message the broker acknowledged to the
//! device reaches the twin when edgetwin is killed mid-stream, when the broker restarts while
//! messages are in flight to edgetwin, and when the broker crashes while it holds messages for
//! a stopped edgetwin (persistent session, acks only after the change is durable).

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

#[test]
fn edgetwin_killed_mid_stream_loses_no_acked_telemetry() {
    let broker = Broker::start();
    let mut edge = Edge::start(&broker.url(), MAPPING);
    let dev = Device::connect(broker.port, "meters");
    block_on(wait_ready(edge.addr()));
    publish(&dev, 0..1600);
    // kill while the bridge is still working through the stream (or right after it)
    while arrived(&edge) < 20 {
        std::thread::sleep(Duration::from_millis(2));
    }
    edge.kill9();
    publish(&dev, 1600..2000); // queued by the broker for edgetwin's session
    edge.start_again();
    all_arrived(&edge, 2000);
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
