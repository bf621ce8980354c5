//! Policies (pure core): the policy model and its validation, Ditto's trie enforcer with READ
//! filtering of JSON values, the policy command engine (create/modify/retrieve/delete on every
//! policy path), and subject expiry with `subjectDeletion` announcements.

pub mod apply;
pub mod check;
pub mod command;
pub mod enforcer;
pub mod errors;
pub mod expiry;
pub mod expiry_index;
pub mod imports;
pub mod json;
pub mod model;
pub mod path;
pub mod ready;
mod write;

pub use command::{PolicyCommand, PolicyOutcome, PolicyState};
pub use enforcer::{Enforcer, POLICY_ALLOWLIST, THING_ALLOWLIST};
pub use model::{EXECUTE, READ, WRITE};
pub use path::PolicyPath;
