//! Black-box tests, one binary: operations: the command line, config checks, TLS on the
//! listener, journald, systemd unit and notify protocol, smoke test of a built binary.
//! Each module starts the real edgetwin binary on free ports with a temp data dir.

#[path = "../common/mod.rs"]
mod common;

mod ops_cli;
mod ops_config;
mod ops_journald;
mod ops_service;
mod ops_smoke;
mod ops_systemd;
mod ops_systemd_boot;
mod ops_tls;
