//! Reading candidates out of the store for a [`Source`]: batched, ordered scans of `Tree::Index`
//! ranges and `Tree::Things` ID ranges, point lookups, unions; bounded counting (to pick the most
//! selective conjunct); and the membership tests used to report a thing only once when a union
//! or a multi-valued path yields it several times.

use super::index::Entries;
use super::keys::{self, FLAG_MULTI, OVERFLOW};
use super::plan::{IdBound, Range, Source};
use crate::error::DittoError;
use crate::store::{Reader, Tree};

/// Entries read per store scan.
pub const BATCH: usize = 256;

/// One candidate as a scan yields it.
pub struct Cand<'a> {
    /// the thing
    pub id: &'a str,
    /// the index key it came from (index ranges)
    pub key: Option<&'a [u8]>,
    /// the stored thing, when the scan read it anyway (Things ranges)
    pub bytes: Option<&'a [u8]>,
    /// the index entry is one of several values of its path in this thing
    pub multi: bool,
    /// which part of a union yielded it (0 otherwise)
    pub branch: usize,
}

/// Go on or stop a scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// next candidate
    Go,
    /// stop the whole scan
    Stop,
}

/// The visitor of a scan.
pub type Visit<'v> = dyn FnMut(Cand) -> Result<Flow, DittoError> + 'v;

pub(super) fn store_err(e: crate::store::StoreError) -> DittoError {
    tracing::error!(error = %e, "search: store read failed");
    // Ditto's search has no own code for this; its gateway answers unreachable services so
    DittoError::new(
        503,
        "gateway:service.unavailable",
        "The service you wanted to reach is currently not available.",
    )
    .describe("Please contact the service team if this happens again.")
}

fn id_in(id: &str, lo: &Option<IdBound>, hi: &Option<IdBound>) -> bool {
    let lo_ok = lo
        .as_ref()
        .is_none_or(|(b, incl)| id > b.as_str() || (*incl && id == b));
    let hi_ok = hi
        .as_ref()
        .is_none_or(|(b, incl)| id < b.as_str() || (*incl && id == b));
    lo_ok && hi_ok
}

/// True if the Things range holds `id`.
pub fn things_contains(
    prefixes: &[String],
    lo: &Option<IdBound>,
    hi: &Option<IdBound>,
    id: &str,
) -> bool {
    (prefixes.is_empty() || prefixes.iter().any(|p| id.starts_with(p.as_str())))
        && id_in(id, lo, hi)
}

/// True if scanning `src` would yield the thing `id` whose index entries are `entries`.
pub fn emits(src: &Source, id: &str, entries: &Entries) -> bool {
    match src {
        Source::Things { prefixes, lo, hi } => things_contains(prefixes, lo, hi, id),
        Source::Ids(ids) => ids.binary_search_by(|x| x.as_str().cmp(id)).is_ok(),
        Source::Index(r) => first_in(r, entries).is_some(),
        Source::Union(parts) => parts.iter().any(|p| emits(p, id, entries)),
    }
}

/// The first of a thing's index keys inside `r`.
pub fn first_in<'e>(r: &Range, entries: &'e Entries) -> Option<&'e [u8]> {
    entries
        .range(r.prefix.clone()..)
        .take_while(|(k, _)| k.starts_with(&r.prefix))
        .map(|(k, _)| k.as_slice())
        .find(|k| r.contains(k))
}

/// Scans `src` in its order. `after_id` skips things up to that ID in thingId-ordered sources;
/// `after_key` starts an index range after that key (if later than its own start).
pub fn scan(
    store: &Reader,
    src: &Source,
    after_id: Option<&str>,
    after_key: Option<&[u8]>,
    visit: &mut Visit,
) -> Result<Flow, DittoError> {
    scan_branch(store, src, after_id, after_key, 0, visit)
}

fn scan_branch(
    store: &Reader,
    src: &Source,
    after_id: Option<&str>,
    after_key: Option<&[u8]>,
    branch: usize,
    visit: &mut Visit,
) -> Result<Flow, DittoError> {
    match src {
        Source::Things { prefixes, lo, hi } => {
            let mut lo = lo.clone();
            if let Some(a) = after_id {
                if id_in(a, &lo, &None) {
                    lo = Some((a.to_owned(), false));
                }
            }
            let all = [String::new()];
            let prefixes = if prefixes.is_empty() {
                &all[..]
            } else {
                prefixes
            };
            for p in prefixes {
                if scan_things(store, p, &lo, hi, branch, visit)? == Flow::Stop {
                    return Ok(Flow::Stop);
                }
            }
            Ok(Flow::Go)
        }
        Source::Ids(ids) => {
            for id in ids {
                if after_id.is_some_and(|a| id.as_str() <= a) {
                    continue;
                }
                let c = Cand {
                    id,
                    key: None,
                    bytes: None,
                    multi: false,
                    branch,
                };
                if visit(c)? == Flow::Stop {
                    return Ok(Flow::Stop);
                }
            }
            Ok(Flow::Go)
        }
        Source::Index(r) => scan_index(store, r, after_id, after_key, branch, visit),
        Source::Union(parts) => {
            for (i, p) in parts.iter().enumerate() {
                if scan_branch(store, p, None, None, i, visit)? == Flow::Stop {
                    return Ok(Flow::Stop);
                }
            }
            Ok(Flow::Go)
        }
    }
}

fn scan_things(
    store: &Reader,
    prefix: &str,
    lo: &Option<IdBound>,
    hi: &Option<IdBound>,
    branch: usize,
    visit: &mut Visit,
) -> Result<Flow, DittoError> {
    let mut from: Option<Vec<u8>> = None;
    if let Some((b, incl)) = lo {
        if b.as_str() >= prefix {
            if *incl && b.starts_with(prefix) {
                if let Some(bytes) = store.get(Tree::Things, b.as_bytes()).map_err(store_err)? {
                    let c = Cand {
                        id: b,
                        key: None,
                        bytes: Some(&bytes),
                        multi: false,
                        branch,
                    };
                    if visit(c)? == Flow::Stop {
                        return Ok(Flow::Stop);
                    }
                }
            }
            from = Some(b.as_bytes().to_vec());
        }
    }
    loop {
        let batch = store
            .scan(Tree::Things, prefix.as_bytes(), from.as_deref(), BATCH)
            .map_err(store_err)?;
        let n = batch.len();
        for (k, v) in &batch {
            let Ok(id) = std::str::from_utf8(k) else {
                continue;
            };
            if !id_in(id, &None, hi) {
                return Ok(Flow::Go);
            }
            let c = Cand {
                id,
                key: None,
                bytes: Some(v),
                multi: false,
                branch,
            };
            if visit(c)? == Flow::Stop {
                return Ok(Flow::Stop);
            }
        }
        match batch.into_iter().last() {
            Some((k, _)) if n == BATCH => from = Some(k),
            _ => return Ok(Flow::Go),
        }
    }
}

fn scan_index(
    store: &Reader,
    r: &Range,
    after_id: Option<&str>,
    after_key: Option<&[u8]>,
    branch: usize,
    visit: &mut Visit,
) -> Result<Flow, DittoError> {
    let mut from: Option<Vec<u8>> = r.after.clone();
    if let Some(k) = after_key {
        if from.as_deref().is_none_or(|f| k > f) {
            from = Some(k.to_vec());
        }
    }
    // single-value ranges are in thingId order: skip to the ID directly
    if let (Some(a), true) = (after_id, r.single_value) {
        let mut k = r.prefix.clone();
        k.extend_from_slice(a.as_bytes());
        if from.as_deref().is_none_or(|f| k.as_slice() > f) {
            from = Some(k);
        }
    }
    loop {
        let batch = store
            .scan(Tree::Index, &r.prefix, from.as_deref(), BATCH)
            .map_err(store_err)?;
        let n = batch.len();
        for (k, v) in &batch {
            if r.past_end(k) {
                return Ok(Flow::Go);
            }
            let Some(id) = r.thing_id(k) else { continue };
            let c = Cand {
                id,
                key: Some(k),
                bytes: None,
                multi: v.first().is_some_and(|f| f & FLAG_MULTI != 0),
                branch,
            };
            if visit(c)? == Flow::Stop {
                return Ok(Flow::Stop);
            }
        }
        match batch.into_iter().last() {
            Some((k, _)) if n == BATCH => from = Some(k),
            _ => return Ok(Flow::Go),
        }
    }
}

/// Counts what `src` yields, up to `cap` (`cap` = "at least that many").
pub fn estimate(store: &Reader, src: &Source, cap: usize) -> Result<usize, DittoError> {
    match src {
        Source::Ids(ids) => Ok(ids.len()),
        Source::Things {
            prefixes, lo, hi, ..
        } if prefixes.is_empty() && lo.is_none() && hi.is_none() => Ok(cap),
        _ => {
            let mut n = 0;
            scan(store, src, None, None, &mut |_| {
                n += 1;
                Ok(if n >= cap { Flow::Stop } else { Flow::Go })
            })?;
            Ok(n)
        }
    }
}

/// IDs of things with an index key prefix `prefix` (`m|path|*`, `o*`), at most `cap`;
/// `None` if there are more.
pub fn ids_with_prefix(
    store: &Reader,
    prefix: &[u8],
    cap: usize,
) -> Result<Option<Vec<String>>, DittoError> {
    let mut out = Vec::new();
    let mut from: Option<Vec<u8>> = None;
    loop {
        let batch = store
            .scan(Tree::Index, prefix, from.as_deref(), BATCH)
            .map_err(store_err)?;
        let n = batch.len();
        for (k, _) in &batch {
            if out.len() >= cap {
                return Ok(None);
            }
            if let Ok(id) = std::str::from_utf8(&k[prefix.len()..]) {
                out.push(id.to_owned());
            }
        }
        match batch.into_iter().last() {
            Some((k, _)) if n == BATCH => from = Some(k),
            _ => return Ok(Some(out)),
        }
    }
}

/// Things not in the index (too many leaves): candidates of every index-driven query.
pub fn overflow_ids(store: &Reader, cap: usize) -> Result<Option<Vec<String>>, DittoError> {
    ids_with_prefix(store, &[OVERFLOW], cap)
}

/// IDs of things with several values at `path` (sorted out of value-ordered scans).
pub fn multi_ids(
    store: &Reader,
    path: &str,
    cap: usize,
) -> Result<Option<Vec<String>>, DittoError> {
    ids_with_prefix(store, &keys::path_prefix(keys::MULTI, path), cap)
}
