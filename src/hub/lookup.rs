//! The hub's reads for the core (`engine::Lookup`): things through the twin cache, policies from
//! the store. A failed store read is an error (503 `things:thing.unavailable` /
//! `policies:policy.unavailable`), never "not found".

use super::Hub;
use crate::engine::{Lookup, ThingState};
use crate::error::DittoError;
use serde_json::Value;

/// `Lookup` over a hub.
pub struct HubLookup<'a>(pub &'a Hub);

impl Lookup for HubLookup<'_> {
    fn thing(&self, id: &str) -> Result<Option<ThingState>, DittoError> {
        self.0.load_thing(id)
    }
    fn policy(&self, id: &str) -> Result<Option<Value>, DittoError> {
        self.0.load_policy(id)
    }
}
