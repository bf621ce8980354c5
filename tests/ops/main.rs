//! Black-box tests, one binary: operations: the command line, config checks, TLS on the
//! listener, journald, systemd unit and notify protocol, smoke test of a built binary, backup
//! and restore.
//! Each module starts the real edgetwin binary on free ports with a temp data dir.

#[path = "../authkit/mod.rs"]
mod authkit;
#[path = "../common/mod.rs"]
mod common;

mod backup_restore;
mod ops_cli;
mod ops_config;
mod ops_journald;
mod ops_service;
mod ops_smoke;
mod ops_systemd;
mod ops_systemd_boot;
mod ops_tls;
