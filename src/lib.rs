//! edgetwin: an Eclipse Ditto compatible digital-twin gateway for edge boxes.
//! Sans-IO core (`protocol`, `model`, `engine`, `rql`) inside thin IO shells (`server`, `ws`),
//! with the `hub` routing between them and the `store` persisting twins with group commit.
#![forbid(unsafe_code)]

pub mod app;
pub mod auth;
pub mod bounds;
pub mod clock;
pub mod config;
pub mod conn;
pub mod engine;
pub mod error;
pub mod exec;
pub(crate) mod fasthash;
#[doc(hidden)]
pub mod fuzz;
pub mod history;
pub mod http;
pub mod hub;
pub mod limits;
pub mod model;
pub mod mqtt;
pub mod ops;
pub mod policy;
pub mod protocol;
pub mod rql;
pub mod rules;
pub mod search;
pub mod server;
pub mod state;
pub mod store;
pub mod tls;
pub mod uplink;
pub mod ws;
