//! Replay: a kept event applied to the state before it gives exactly the state the engine
//! wrote (checked against the engine on random command sequences in the tests). Ditto rebuilds
//! historical things the same way (`ThingEventStrategies` over the journal); `src/history`
//! uses this from the nearest snapshot.

use super::write::ordered_thing;
use super::ThingState;
use crate::error::DittoError;
use crate::model::{merge, pointer};
use crate::protocol::{EventAction, ThingPath};
use serde_json::{json, Value};

/// One kept event of a thing (see `history::record`).
pub struct Step<'a> {
    pub action: EventAction,
    pub path: &'a str,
    pub value: Option<&'a Value>,
    /// the whole `_metadata` after the change (`None`: the thing has none)
    pub full_metadata: Option<&'a Value>,
    pub revision: u64,
    pub timestamp: i64,
}

fn corrupt(why: &str) -> DittoError {
    DittoError::internal(format!("history event cannot be replayed: {why}"))
}

/// The state after `step`, given the state before it (`None`: the thing did not exist).
pub fn apply(prev: Option<&ThingState>, id: &str, step: &Step) -> Result<ThingState, DittoError> {
    let path = ThingPath::parse(step.path)?.ok_or_else(|| corrupt("not a thing path"))?;
    let ptr = path.pointer();
    let live = prev.filter(|p| !p.deleted);
    let value = || step.value.cloned().ok_or_else(|| corrupt("no value"));
    let mut created = prev.map(|p| p.created).unwrap_or(step.timestamp);
    let mut deleted = false;
    let thing = match (step.action, &path, live) {
        (EventAction::Created, ThingPath::Root, _) => {
            created = step.timestamp;
            value()?
        }
        (EventAction::Deleted, ThingPath::Root, _) => {
            deleted = true;
            json!({ "thingId": id })
        }
        (_, _, None) => return Err(corrupt("a change of a thing that does not exist")),
        (EventAction::Modified, ThingPath::Root, Some(_)) => value()?,
        (EventAction::Created | EventAction::Modified, _, Some(s)) => {
            let mut t = s.thing.clone();
            pointer::set(&mut t, &ptr, value()?);
            t
        }
        (EventAction::Merged, _, Some(s)) => {
            let patch = value()?;
            let mut t = s.thing.clone();
            if patch.is_null() {
                pointer::remove(&mut t, &ptr);
            } else {
                let mut target = pointer::get(&t, &ptr).cloned().unwrap_or(Value::Null);
                merge::merge_patch(&mut target, &patch);
                if ptr.is_empty() {
                    t = target;
                } else {
                    pointer::set(&mut t, &ptr, target);
                }
            }
            if ptr.is_empty() {
                ordered_thing(id, t.as_object().cloned().unwrap_or_default())
            } else {
                t
            }
        }
        (EventAction::Deleted, _, Some(s)) => {
            let mut t = s.thing.clone();
            pointer::remove(&mut t, &ptr);
            t
        }
        (EventAction::Migrated, _, Some(_)) => return Err(corrupt("migrated")),
    };
    Ok(ThingState {
        thing,
        revision: step.revision,
        created,
        modified: step.timestamp,
        metadata: step.full_metadata.cloned(),
        deleted,
    })
}

#[cfg(test)]
mod tests;
