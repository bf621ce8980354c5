//! Black-box tests, one binary: live commands, live events, messages and acknowledgements.
//! Each module starts the real edgetwin binary on free ports with a temp data dir.

#[path = "../common/mod.rs"]
mod common;
#[path = "../livekit/mod.rs"]
mod livekit;

mod acks;
mod live_commands;
mod messages;
