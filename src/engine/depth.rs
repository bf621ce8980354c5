//! The depth bound of a written thing (`write::finish`): the encoded state is scanned only
//! when the write could have made the thing deeper than `plan_modify` already checked, i.e.
//! not for a modify that replaced one value below the root (the hot path of a twin write).

use super::ThingState;
use crate::bounds::{self, MAX_JSON_DEPTH};
use crate::error::DittoError;
use serde_json::Value;

/// 400 `json.invalid` when the thing or its `_metadata` would be nested deeper than
/// [`MAX_JSON_DEPTH`] (`bytes` wrap both in one object) and deeper than before, so that whatever
/// is stored stays readable; a thing stored deeper by an older version can still be changed
/// and have its deep parts deleted.
///
/// `replaced_below_root`: the write set one value at a path below the root and `plan_modify`
/// checked that path plus the value's depth against the bound. The new thing is then no deeper
/// than the old one or than that bound, so it passes whenever its `metadata` is within the
/// bound (`tests_depth` checks this against the scan on random writes); only the metadata is
/// measured then.
pub(super) fn check(
    prev: Option<&ThingState>,
    bytes: &[u8],
    metadata: Option<&Value>,
    replaced_below_root: bool,
) -> Result<(), DittoError> {
    if replaced_below_root && metadata.is_none_or(|m| bounds::value_depth(m) <= MAX_JSON_DEPTH) {
        return Ok(());
    }
    scan(prev, bytes)
}

/// The check on the encoded state, whatever the write was.
pub(super) fn scan(prev: Option<&ThingState>, bytes: &[u8]) -> Result<(), DittoError> {
    let depth = bounds::text_depth(bytes).saturating_sub(1);
    if depth <= MAX_JSON_DEPTH {
        return Ok(());
    }
    let before = prev.map_or(0, |p| {
        let md = p.metadata.as_ref().map_or(0, bounds::value_depth);
        bounds::value_depth(&p.thing).max(md)
    });
    if depth <= before {
        return Ok(());
    }
    Err(bounds::document_too_deep("thing", depth))
}
