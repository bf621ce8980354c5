//! How to run one query (reads the store to count): the planner's sources of the top-level
//! conjuncts, value ranges on one path intersected (things with several values there are
//! added separately), counted up to [`EST_CAP`] to pick the most selective driver — or one in
//! the sort order, so the scan stops early — plus ID-level checks of the other conjuncts.

use super::exec::Spec;
use super::keys;
use super::plan::{self, Range, Source};
use super::scan::{self, Flow};
use crate::error::DittoError;
use crate::store::Reader;
use std::collections::HashSet;

/// Counting stops here when choosing a driver.
pub const EST_CAP: usize = 128;
/// ID sets (intersection set, multi-valued and not-indexed things) hold at most this many IDs.
pub const SET_CAP: usize = 1024;

/// How the driving source relates to the sort order.
pub(super) enum Mode {
    /// no usable order: every candidate goes through the heap
    Heap,
    /// thingId order (sort `+thingId`): stop once the heap is full and IDs pass its worst
    ById,
    /// value order of the first sort key's path (ascending): stop once values pass the worst
    ByPath(Range),
}

/// What the chooser decided.
pub(super) struct Chosen {
    /// where candidates come from
    pub driver: Source,
    pub mode: Mode,
    /// things taken before the scan, sorted (multi-valued at the driver's path, not indexed)
    pub pre: Vec<String>,
    /// the driver's multi-valued entries are skipped: those things are in `pre`
    pub skip_multi: bool,
    /// conjunct sources checked by ID (Things/Ids sources)
    pub checks: Vec<Source>,
    /// IDs a small index conjunct allows (plus its multi-valued and not-indexed things)
    pub set: Option<HashSet<String>>,
}

/// A candidate driver: a source, plus things it needs besides (multi-valued ones of an
/// intersected range, which then skips multi-valued entries).
struct Driver {
    src: Source,
    extra: Vec<String>,
    skip_multi: bool,
}

impl Driver {
    fn of(src: Source) -> Self {
        Driver {
            src,
            extra: Vec::new(),
            skip_multi: false,
        }
    }
}

fn contains_index(s: &Source) -> bool {
    match s {
        Source::Index(_) => true,
        Source::Union(parts) => parts.iter().any(contains_index),
        _ => false,
    }
}

/// Merges value ranges on the same path (see [`plan::intersect`]).
fn merge_ranges(store: &Reader, sources: Vec<Source>) -> Result<Vec<Driver>, DittoError> {
    let mut out: Vec<Driver> = Vec::new();
    let mut groups: Vec<(Range, usize)> = Vec::new();
    for s in sources {
        match s {
            Source::Index(r) if r.kind == keys::VALUE => {
                match groups.iter_mut().find(|(g, _)| g.path == r.path) {
                    Some((g, n)) => {
                        *n += 1;
                        *g = match plan::intersect(g, &r) {
                            Some(x) => x,
                            None => {
                                // no single value is in both: an empty range
                                let mut e = g.clone();
                                e.end = Some((Vec::new(), false));
                                e
                            }
                        };
                    }
                    None => groups.push((r, 1)),
                }
            }
            other => out.push(Driver::of(other)),
        }
    }
    for (r, n) in groups {
        if n == 1 {
            out.push(Driver::of(Source::Index(r)));
            continue;
        }
        match scan::multi_ids(store, &r.path, SET_CAP)? {
            Some(extra) => out.push(Driver {
                src: Source::Index(r),
                extra,
                skip_multi: true,
            }),
            // too many multi-valued things: drive by the range without its other bounds
            None => {
                let mut loose = r;
                loose.end = None;
                loose.after = None;
                out.push(Driver::of(Source::Index(loose)));
            }
        }
    }
    Ok(out)
}

/// Chooses the driver of `spec`; `sorted` = a page (order matters), else a count.
pub(super) fn choose(
    store: &Reader,
    spec: &Spec,
    now: i64,
    sorted: bool,
) -> Result<Chosen, DittoError> {
    let sources: Vec<Source> = spec
        .filter
        .iter()
        .flat_map(plan::conjuncts)
        .filter_map(|c| plan::source_for(c, now))
        .collect();
    let mut options = merge_ranges(store, sources)?;
    if !spec.namespaces.is_empty() {
        let mut prefixes: Vec<String> = spec.namespaces.iter().map(|n| format!("{n}:")).collect();
        prefixes.sort();
        prefixes.dedup();
        options.push(Driver::of(Source::Things {
            prefixes,
            lo: None,
            hi: None,
        }));
    }
    // things not in the index are candidates of every index-driven plan; if there are too many
    // of them to carry along, the index is not used at all
    let overflow = if options.iter().any(|o| contains_index(&o.src)) {
        match scan::overflow_ids(store, SET_CAP)? {
            Some(ids) => ids,
            None => {
                options.retain(|o| !contains_index(&o.src));
                Vec::new()
            }
        }
    } else {
        Vec::new()
    };
    let by_id = sorted
        && spec
            .sort
            .first()
            .is_none_or(|k| k.ascending && k.prop.raw == "thingId");
    let sort_path = spec
        .sort
        .first()
        .filter(|k| sorted && k.ascending)
        .and_then(|k| plan::index_path(&k.prop));
    // counting only matters when there is a choice
    let mut est = vec![0; options.len()];
    if options.len() > 1 {
        for (i, o) in options.iter().enumerate() {
            est[i] = scan::estimate(store, &o.src, EST_CAP)? + o.extra.len();
        }
    }
    let ordered = |s: &Source| -> bool {
        (by_id && s.ordered_by_id())
            || matches!(s, Source::Index(r) if Some(r.path.as_str()) == sort_path
                && r.kind == keys::VALUE)
    };
    let best = (0..options.len()).min_by_key(|&i| (est[i], options[i].src.rank()));
    let pick = match best {
        Some(b) if est[b] < EST_CAP || ordered(&options[b].src) => Some(b),
        Some(b) => (0..options.len())
            .find(|&i| ordered(&options[i].src))
            .or(Some(b)),
        None => None,
    };
    let Some(pick) = pick else {
        return Ok(Chosen {
            driver: Source::Things {
                prefixes: vec![],
                lo: None,
                hi: None,
            },
            mode: if by_id { Mode::ById } else { Mode::Heap },
            pre: vec![],
            skip_multi: false,
            checks: vec![],
            set: None,
        });
    };
    let driver = options.remove(pick);
    est.remove(pick);
    let mut pre = driver.extra;
    let mut skip_multi = driver.skip_multi;
    let driver = driver.src;
    let mut mode = Mode::Heap;
    if by_id && driver.ordered_by_id() {
        mode = Mode::ById;
    } else if let (Source::Index(r), Some(p)) = (&driver, sort_path) {
        if r.path == p && r.kind == keys::VALUE {
            if skip_multi {
                mode = Mode::ByPath(r.clone());
            } else if let Some(multi) = scan::multi_ids(store, p, SET_CAP)? {
                pre.extend(multi);
                skip_multi = true;
                mode = Mode::ByPath(r.clone());
            }
        }
    }
    if contains_index(&driver) {
        pre.extend(overflow.iter().cloned());
    }
    pre.sort();
    pre.dedup();
    // ID-level checks of the other conjuncts: free for Things/Ids, a set for one small index source
    let mut checks = Vec::new();
    let mut small: Option<(usize, &Driver)> = None;
    for (i, o) in options.iter().enumerate() {
        match &o.src {
            Source::Things { .. } | Source::Ids(_) => checks.push(o.src.clone()),
            _ if est[i] < EST_CAP && small.is_none_or(|(e, _)| est[i] < e) => {
                small = Some((est[i], o))
            }
            _ => {}
        }
    }
    let mut set = None;
    if let Some((_, o)) = small {
        let mut ids = HashSet::with_capacity(EST_CAP + o.extra.len() + overflow.len());
        scan::scan(store, &o.src, None, None, &mut |c| {
            ids.insert(c.id.to_owned());
            Ok(Flow::Go)
        })?;
        ids.extend(o.extra.iter().cloned());
        ids.extend(overflow);
        set = Some(ids);
    }
    Ok(Chosen {
        driver,
        mode,
        pre,
        skip_multi,
        checks,
        set,
    })
}
