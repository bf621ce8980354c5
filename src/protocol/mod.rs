//! Ditto Protocol codec: topic grammar, case-insensitive headers, the JSON envelope, and the
//! mapping from envelopes to the `Signal`s the core acts on. Pure functions over data.

pub mod control;
pub mod envelope;
mod envelope_fast;
#[cfg(test)]
mod envelope_fast_tests;
mod envelope_raw;
pub mod headers;
pub mod message;
pub mod signal;
pub mod topic;

pub use control::{parse_control, percent_decode, url_decode, Control, StartParams, StreamKind};
pub use envelope::{error_envelope, error_topic, Envelope, ParseFailure};
pub use headers::Headers;
pub use message::{Direction, MessagePath};
pub use signal::{unknown_path, RetrieveThings, Signal, ThingCommand, ThingPath};
pub use topic::{Action, Channel, Criterion, EventAction, Group, Topic};
