//! The hub's rule book, as plain functions over data (no IO, no clock, no locks): the
//! acknowledgement rules and aggregation (`acks`), live-channel rules and errors (`live`,
//! `live_errors`), the pending-request table (`pending`) and how its outcome is presented
//! (`outcome`), twin events (`events`), the delivery rule for pushed signals (`fanout`) and the
//! response envelopes of commands (`responses`). The hub applies them; bindings import them here.

pub mod acks;
pub mod events;
pub mod fanout;
pub mod live;
pub mod live_errors;
pub mod outcome;
pub mod pending;
pub mod responses;
