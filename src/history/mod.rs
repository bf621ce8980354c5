//! History of things and policies, as Ditto serves it (docs: "History capabilities",
//! `basic-history`): every change is kept as an event keyed by entity and revision in
//! `Tree::History`, written in the same store unit as the change itself; a state at a revision
//! or a time is rebuilt from the nearest snapshot and the events after it; retention by age,
//! revisions per entity and total bytes drops the oldest history first.

pub mod config;
mod deferred;
pub mod events;
pub mod keys;
mod log;
mod read;
pub mod record;
mod retention;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_headers;

pub use config::HistoryConfig;
pub use keys::Kind;
pub use log::{Change, History, SNAPSHOT_EVERY};
pub use read::{At, Found};
pub use record::Record;
pub use retention::{Locked, Swept};
