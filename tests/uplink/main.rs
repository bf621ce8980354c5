//! Black-box tests, one binary: the uplink between TWO real edgetwin processes, one playing the
//! cloud Ditto and one the edge box (tests/uplinkkit): mirroring up, desired properties, live
//! commands and messages down (with a real mosquitto where devices are MQTT), partitions,
//! offline changes across a kill -9, conflicts, stalled sockets and JWT refresh.

#[path = "../common/mod.rs"]
mod common;
#[path = "../uplinkkit/mod.rs"]
mod uplinkkit;

mod uplink_down;
mod uplink_faults;
mod uplink_jwt;
mod uplink_mirror;
mod uplink_offline;
mod uplink_tls;
