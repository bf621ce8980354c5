//! Black-box tests, one binary: the twin channel over /ws/2 and the Ditto conformance corpus,
//! persistence across restarts, metadata, patch conditions, depth bounds, connection limits and
//! closes.
//! Each module starts the real edgetwin binary on free ports with a temp data dir.

#[path = "../common/mod.rs"]
mod common;

mod bounds_depth;
mod bounds_property;
mod conformance;
mod conn_limits;
mod full_disk;
mod merge_patch_conditions;
mod metadata;
mod persistence;
mod ws_bad_input;
mod ws_events;
mod ws_pipelining;
mod ws_twin;
