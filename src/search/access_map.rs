//! The access part of the index (`search::access`) in memory, so a count of many candidates
//! decides each one's visibility without an index read: per thing whose policy has the thing's
//! ID (Ditto's default; no `a|id|t` entry), its access key prefix and its policy's READ summary
//! as a class number. Built by a count from its reader, used while no access entry has been
//! written since (`Store::watched_changes`), bounded by `[search] count_map_kib` (a map that
//! would be larger covers the first keys only; the rest are read as before). Empty until a count
//! needs it: an idle gateway holds nothing.

use super::access::{self, Verdict};
use crate::store::{Reader, StoreError, Tree};
use std::sync::{Arc, Mutex};

/// Default bound of the map in KiB (`[search] count_map_kib`): ~2.2 MiB at 100k twins with
/// 13-byte IDs, ~4 MiB with 30-byte IDs.
pub const DEFAULT_KIB: u64 = 4096;
/// A count builds the map after this many candidates read the slow way.
pub const BUILD_AFTER: u32 = 64;
/// Distinct READ summaries in one map (more: those things are read as before).
const MAX_CLASSES: usize = 255;
/// Entries read per scan step while building.
const STEP: usize = 1024;

/// The shared map of one hub.
#[derive(Default)]
pub struct AccessMap {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    max_bytes: Option<usize>,
    snap: Option<Arc<Snapshot>>,
    /// a map was built before (then one is only built again when no access entry changed
    /// between two counts that wanted it: see `build`)
    built: bool,
    /// `Store::watched_changes` at the last count that wanted a map and found none current
    wanted: Option<u64>,
}

/// The access entries of the things with their own policy, as of `tag`.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// `Store::watched_changes` when the copy began
    tag: u64,
    /// access key prefixes (`a | id 00 01`), concatenated in key order
    bytes: Vec<u8>,
    /// end of each prefix in `bytes`
    ends: Vec<u32>,
    /// each prefix's summary class (index into `classes`)
    class: Vec<u8>,
    /// the distinct stored summaries, and their bytes
    classes: Vec<Vec<u8>>,
    class_bytes: usize,
}

/// The access entries of one ID while they are read.
#[derive(Default)]
struct Group {
    prefix: Vec<u8>,
    class: Option<u8>,
    foreign: bool,
}

fn lock(m: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    // a panic while holding it cannot leave the state half-changed (plain assignments)
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl AccessMap {
    /// Sets the bound (bytes); 0 turns the map off.
    pub fn set_max_bytes(&self, bytes: usize) {
        let mut st = lock(&self.state);
        st.max_bytes = Some(bytes);
        st.snap = None;
    }

    /// The map, if it is current (no access entry written since it was copied).
    pub fn current(&self, changes: u64) -> Option<Arc<Snapshot>> {
        let st = lock(&self.state);
        st.snap.as_ref().filter(|s| s.tag == changes).cloned()
    }

    /// Builds the map from `store` (a count asks after [`BUILD_AFTER`] slow candidates) the
    /// first time, and later when no access entry changed since the previous count that asked
    /// (so access entries that keep changing cost no rebuild per count: those counts read the
    /// entries as before). `changes` = `Store::watched_changes`, read before this call.
    pub fn build(&self, store: &Reader, changes: u64) -> Result<Option<Arc<Snapshot>>, StoreError> {
        let max = {
            let mut st = lock(&self.state);
            let max = st.max_bytes.unwrap_or(DEFAULT_KIB as usize * 1024);
            if let Some(s) = st.snap.as_ref().filter(|s| s.tag == changes) {
                return Ok(Some(Arc::clone(s)));
            }
            // a stale map is never used again
            st.snap = None;
            if max == 0 || (st.built && st.wanted != Some(changes)) {
                // access entries changed since the last count that wanted the map: they may
                // still be changing (creations, policy edits); wait for a quiet count
                st.wanted = Some(changes);
                return Ok(None);
            }
            st.built = true;
            max
        };
        let snap = Arc::new(Snapshot::read(store, changes, max)?);
        let mut st = lock(&self.state);
        if st.snap.as_ref().is_none_or(|s| s.tag < changes) {
            st.snap = Some(Arc::clone(&snap));
        }
        Ok(Some(snap))
    }
}

impl Snapshot {
    /// Copies the access entries of things with their own policy from `store`, up to `max`
    /// bytes (then the first ones only).
    pub fn read(store: &Reader, tag: u64, max: usize) -> Result<Snapshot, StoreError> {
        let mut s = Snapshot {
            tag,
            ..Snapshot::default()
        };
        // the entries of one ID: its prefix, its summary's class, whether its policy is foreign
        let mut group = Group::default();
        let mut after: Vec<u8> = Vec::new();
        let mut full = false;
        loop {
            let mut n = 0;
            let from = (!after.is_empty()).then(|| after.clone());
            store.each(
                Tree::Index,
                &[access::ACCESS],
                from.as_deref(),
                STEP,
                &mut |k, v| {
                    n += 1;
                    let Some((&kind, prefix)) = k.split_last() else {
                        return true;
                    };
                    if prefix != group.prefix.as_slice() {
                        if !s.push(&group, max) {
                            full = true;
                            return false;
                        }
                        group.prefix.clear();
                        group.prefix.extend_from_slice(prefix);
                        (group.class, group.foreign) = (None, false);
                    }
                    match kind {
                        access::POLICY => group.class = s.intern(v, max),
                        access::THING => group.foreign = true,
                        _ => {}
                    }
                    if n == STEP {
                        after.clear();
                        after.extend_from_slice(k);
                    }
                    true
                },
            )?;
            if full || n < STEP {
                break;
            }
        }
        if !full {
            s.push(&group, max);
        }
        // held for long: no growth slack (the bound counts lengths)
        s.bytes.shrink_to_fit();
        s.ends.shrink_to_fit();
        s.class.shrink_to_fit();
        Ok(s)
    }

    /// The class of a stored summary (`None`: too many classes, or no room for it).
    fn intern(&mut self, summary: &[u8], max: usize) -> Option<u8> {
        let c = match self.classes.iter().position(|c| c == summary) {
            Some(c) => c,
            None if self.classes.len() < MAX_CLASSES && self.size() + summary.len() <= max => {
                self.class_bytes += summary.len();
                self.classes.push(summary.to_vec());
                self.classes.len() - 1
            }
            None => return None,
        };
        u8::try_from(c).ok()
    }

    /// Adds a finished group; false when the bound is reached (nothing added).
    fn push(&mut self, group: &Group, max: usize) -> bool {
        let (Some(class), false) = (group.class, group.foreign) else {
            return true;
        };
        if self.size() + group.prefix.len() + 5 > max {
            return false;
        }
        let Ok(end) = u32::try_from(self.bytes.len() + group.prefix.len()) else {
            return false;
        };
        self.bytes.extend_from_slice(&group.prefix);
        self.ends.push(end);
        self.class.push(class);
        true
    }

    /// Bytes held (the bound's measure).
    pub fn size(&self) -> usize {
        self.bytes.len() + self.ends.len() * 4 + self.class.len() + self.class_bytes
    }

    /// Things in the map.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether the map holds no thing.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    fn prefix_at(&self, i: usize) -> &[u8] {
        let start = i.checked_sub(1).map_or(0, |j| self.ends[j] as usize);
        &self.bytes[start..self.ends[i] as usize]
    }

    /// The summary class of the thing whose access key prefix is `prefix`, if it is here.
    pub fn class_of(&self, prefix: &[u8]) -> Option<usize> {
        let (mut lo, mut hi) = (0, self.ends.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            match self.prefix_at(mid).cmp(prefix) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(usize::from(self.class[mid])),
            }
        }
        None
    }

    /// The verdict of summary class `c` for a requester's subjects.
    pub fn verdict(&self, c: usize, subjects: &[String]) -> Verdict {
        self.classes
            .get(c)
            .map_or(Verdict::Ask, |s| access::verdict_of(s, subjects))
    }
}

#[cfg(test)]
#[path = "access_map_tests.rs"]
mod tests;
