//! Black-box tests, one binary: the MQTT device bridge against a real mosquitto: mappings, presets,
//! restarts, bad input, TLS.
//! Each module starts the real edgetwin binary on free ports with a temp data dir.

#[path = "../common/mod.rs"]
mod common;

mod mqtt_bad_input;
mod mqtt_bridge;
mod mqtt_connection;
mod mqtt_presets;
mod mqtt_restarts;
mod mqtt_tls;
