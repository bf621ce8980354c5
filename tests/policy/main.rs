//! Black-box tests, one binary: authentication (Basic, JWT, pre-auth) and policies: enforcement,
//! imports, expiry, checkPermissions, policy conformance.
//! Each module starts the real edgetwin binary on free ports with a temp data dir.

#[path = "../authkit/mod.rs"]
mod authkit;
#[path = "../common/mod.rs"]
mod common;
#[path = "../livekit/mod.rs"]
mod livekit;

mod auth_cors;
mod auth_devops;
mod auth_jwt;
mod auth_limits;
mod auth_policies;
mod check_permissions;
mod conformance_policies;
mod http_policies;
mod http_policies_sse;
mod live_permissions;
mod metadata_policies;
mod policy_expiry_restart;
mod policy_imports;
mod policy_memory;
