//! The planner (pure): which part of the store can produce a SUPERSET of a filter's matches —
//! a range of index keys (`eq`, `in`, `gt ge lt le`, `exists`, `like` with a literal prefix,
//! `ne` via existence), a thingId range or prefix of the Things tree (`thingId`, `_namespace`),
//! point lookups, or a union for `or`/`in`. The executor picks among the top-level conjuncts by
//! counting, re-checks every candidate with the evaluator, and falls back to scanning Things.

use super::keys::{self, EXISTS, TAG_BOOL, TAG_NULL, TAG_STR, VALUE};
use crate::rql::{CmpOp, Literal, Property, Query};
use std::cmp::Ordering;

/// A bound of a thingId range: (id, inclusive).
pub type IdBound = (String, bool);

/// Where candidates come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// Things whose ID starts with one of `prefixes` (sorted, none a prefix of another; empty =
    /// all) within `lo`..`hi`, in thingId order.
    Things {
        /// thingId prefixes
        prefixes: Vec<String>,
        /// lower bound
        lo: Option<IdBound>,
        /// upper bound
        hi: Option<IdBound>,
    },
    /// Point lookups, sorted and deduplicated.
    Ids(Vec<String>),
    /// A range of index keys.
    Index(Range),
    /// Any of several sources (a thing may come from several of them).
    Union(Vec<Source>),
}

/// A range of index keys of one kind on one path.
#[derive(Debug, Clone, PartialEq)]
pub struct Range {
    /// the indexed path
    pub path: String,
    /// `keys::VALUE` or `keys::EXISTS`
    pub kind: u8,
    /// every key in the range starts with this
    pub prefix: Vec<u8>,
    /// length of `kind | path 00 01` (the value encoding starts there)
    pub vstart: usize,
    /// scan strictly after this key (`None`: from `prefix`)
    pub after: Option<Vec<u8>>,
    /// the last value encoding in the range and whether it is included
    pub end: Option<(Vec<u8>, bool)>,
    /// all keys share one value encoding, so they come in thingId order
    pub single_value: bool,
}

impl Range {
    fn new(kind: u8, path: &str) -> Range {
        let prefix = keys::path_prefix(kind, path);
        Range {
            path: path.to_owned(),
            kind,
            vstart: prefix.len(),
            prefix,
            after: None,
            end: None,
            single_value: false,
        }
    }

    /// True if `key` lies in the range.
    pub fn contains(&self, key: &[u8]) -> bool {
        if !key.starts_with(&self.prefix) || self.after.as_deref().is_some_and(|a| key <= a) {
            return false;
        }
        match (&self.end, self.kind) {
            (Some((end, incl)), VALUE) => match self.value_of(key) {
                Some(v) => match v.cmp(end.as_slice()) {
                    Ordering::Less => true,
                    Ordering::Equal => *incl,
                    Ordering::Greater => false,
                },
                None => false,
            },
            _ => true,
        }
    }

    /// True if `key` (at or after the range start) is beyond the range's end: a scan stops.
    pub fn past_end(&self, key: &[u8]) -> bool {
        !key.starts_with(&self.prefix) || (self.kind == VALUE && !self.contains(key))
    }

    /// The value encoding of a value key.
    pub fn value_of<'k>(&self, key: &'k [u8]) -> Option<&'k [u8]> {
        keys::split_value(key.get(self.vstart..)?).map(|(v, _)| v)
    }

    /// The thingId of a key of this range.
    pub fn thing_id<'k>(&self, key: &'k [u8]) -> Option<&'k str> {
        let rest = key.get(self.vstart..)?;
        if self.kind == VALUE {
            keys::split_value(rest).map(|(_, id)| id)
        } else {
            std::str::from_utf8(rest).ok()
        }
    }
}

impl Source {
    /// True if the source yields every thing at most once, in thingId order.
    pub fn ordered_by_id(&self) -> bool {
        match self {
            Source::Things { .. } | Source::Ids(_) => true,
            Source::Index(r) => r.single_value,
            Source::Union(_) => false,
        }
    }

    /// A source without any candidate.
    pub fn empty() -> Source {
        Source::Ids(Vec::new())
    }

    /// Static preference when nothing can be counted: point lookups, equality, ranges, existence.
    pub fn rank(&self) -> u8 {
        match self {
            Source::Ids(_) => 0,
            Source::Index(r) if r.single_value => 1,
            Source::Index(r) if r.kind == VALUE => 2,
            Source::Things { prefixes, lo, hi }
                if !prefixes.is_empty() || lo.is_some() || hi.is_some() =>
            {
                3
            }
            Source::Index(_) => 4,
            Source::Union(_) => 5,
            Source::Things { .. } => 6,
        }
    }
}

/// The index path of a property, if the index has it (`thingId`/`_namespace` live in Things).
pub fn index_path(p: &Property) -> Option<&str> {
    if p.placeholder.is_some() {
        return None;
    }
    let s = &p.segments;
    let ok = match s.first().map(String::as_str) {
        Some("policyId" | "definition" | "_created" | "_modified") => s.len() == 1,
        Some("attributes") => s.len() >= 2,
        Some("features") => {
            s.len() >= 2
                && s[1] != "*"
                && (s.len() == 2
                    || matches!(
                        s[2].as_str(),
                        "properties" | "desiredProperties" | "definition"
                    ))
        }
        _ => false,
    };
    ok.then_some(p.raw.as_str())
}

/// Value encoding of a literal compared with `path` (`None`: not usable with the index).
fn literal_bytes(path: &str, lit: &Literal, now: i64) -> Option<(Vec<u8>, bool)> {
    let mut out = Vec::new();
    let exact = match lit {
        Literal::Null => {
            out.push(TAG_NULL);
            true
        }
        Literal::Bool(b) => {
            out.extend_from_slice(&[TAG_BOOL, u8::from(*b)]);
            true
        }
        Literal::Long(i) => keys::push_number(&mut out, *i as f64),
        Literal::Double(f) => keys::push_number(&mut out, *f),
        Literal::Str(s) => keys::push_str(&mut out, s),
        // Stored `_created`/`_modified` are ISO strings of one fixed format, so instants order
        // as text; elsewhere a time placeholder compares instants of any ISO format.
        Literal::Time(t) if !t.epoch_millis && matches!(path, "_created" | "_modified") => {
            keys::push_str(&mut out, &crate::clock::format_millis(t.instant(now)))
        }
        Literal::Time(_) => return None,
    };
    Some((out, exact))
}

fn value_range(path: &str, op: CmpOp, lit: &Literal, now: i64) -> Option<Source> {
    if let (CmpOp::Like | CmpOp::ILike, _) = (op, lit) {
        let mut r = Range::new(VALUE, path);
        match (op, lit) {
            (CmpOp::Like, Literal::Str(pattern)) => {
                let lit_prefix: String = pattern
                    .chars()
                    .take_while(|c| !matches!(c, '*' | '?'))
                    .collect();
                if lit_prefix.len() == pattern.len() {
                    return value_range(path, CmpOp::Eq, lit, now);
                }
                r.prefix.extend_from_slice(&keys::str_prefix(&lit_prefix));
            }
            _ => r.prefix.push(TAG_STR),
        }
        return Some(Source::Index(r));
    }
    let (enc, exact) = literal_bytes(path, lit, now)?;
    let mut r = Range::new(VALUE, path);
    if op == CmpOp::Eq {
        r.prefix.extend_from_slice(&enc);
        r.single_value = true;
        return Some(Source::Index(r));
    }
    if matches!(lit, Literal::Null) {
        return Some(Source::empty()); // ordering operators never match null
    }
    r.prefix.push(enc[0]);
    let mut at = keys::path_prefix(VALUE, path);
    at.extend_from_slice(&enc);
    match op {
        CmpOp::Gt if exact => {
            at.push(0xFF);
            r.after = Some(at);
        }
        CmpOp::Gt | CmpOp::Ge => r.after = Some(at),
        CmpOp::Lt => r.end = Some((enc, !exact)),
        CmpOp::Le => r.end = Some((enc, true)),
        _ => return None,
    }
    Some(Source::Index(r))
}

/// Things with a node at `path`: objects and arrays have an existence entry, scalars a value
/// entry (of any type).
fn exists_source(path: &str) -> Source {
    Source::Union(vec![
        Source::Index(Range::new(EXISTS, path)),
        Source::Index(Range::new(VALUE, path)),
    ])
}

fn things(prefixes: Vec<String>, lo: Option<IdBound>, hi: Option<IdBound>) -> Source {
    let mut prefixes = prefixes;
    prefixes.sort();
    prefixes.dedup();
    // keep only prefixes not covered by a shorter one
    let mut kept: Vec<String> = Vec::new();
    for p in prefixes {
        if !kept.iter().any(|k| p.starts_with(k.as_str())) {
            kept.push(p);
        }
    }
    Source::Things {
        prefixes: kept,
        lo,
        hi,
    }
}

fn like_prefix(lit: &Literal) -> Option<String> {
    match lit {
        Literal::Str(p) => Some(p.chars().take_while(|c| !matches!(c, '*' | '?')).collect()),
        _ => None,
    }
}

fn id_source(op: CmpOp, lit: &Literal) -> Option<Source> {
    let Literal::Str(s) = lit else {
        // a thingId is a string: only `like` with the string form of another literal could
        // match, and never through the index
        return None;
    };
    Some(match op {
        CmpOp::Eq => Source::Ids(vec![s.clone()]),
        CmpOp::Gt => things(vec![], Some((s.clone(), false)), None),
        CmpOp::Ge => things(vec![], Some((s.clone(), true)), None),
        CmpOp::Lt => things(vec![], None, Some((s.clone(), false))),
        CmpOp::Le => things(vec![], None, Some((s.clone(), true))),
        CmpOp::Like => things(vec![like_prefix(lit)?], None, None),
        _ => return None,
    })
}

fn namespace_source(op: CmpOp, lit: &Literal) -> Option<Source> {
    match (op, lit) {
        (CmpOp::Eq, Literal::Str(ns)) => Some(things(vec![format!("{ns}:")], None, None)),
        (CmpOp::Like, _) => Some(things(vec![like_prefix(lit)?], None, None)),
        _ => None,
    }
}

/// A source producing a superset of the matches of `q` (search semantics), if any.
pub fn source_for(q: &Query, now: i64) -> Option<Source> {
    match q {
        Query::Cmp { op, prop, value } => match prop.root() {
            "thingId" if prop.segments.len() == 1 => id_source(*op, value),
            "_namespace" | "namespace" if prop.segments.len() == 1 => namespace_source(*op, value),
            _ => {
                let path = index_path(prop)?;
                match op {
                    // search semantics: `ne` needs the field
                    CmpOp::Ne => Some(exists_source(path)),
                    _ => value_range(path, *op, value, now),
                }
            }
        },
        Query::In { prop, values } => {
            let one = |v: &Literal| {
                source_for(
                    &Query::Cmp {
                        op: CmpOp::Eq,
                        prop: prop.clone(),
                        value: v.clone(),
                    },
                    now,
                )
            };
            match prop.root() {
                "thingId" => {
                    let mut ids: Vec<String> = values
                        .iter()
                        .filter_map(|v| match v {
                            Literal::Str(s) => Some(s.clone()),
                            _ => None,
                        })
                        .collect();
                    ids.sort();
                    ids.dedup();
                    Some(Source::Ids(ids))
                }
                "_namespace" | "namespace" => {
                    let prefixes: Option<Vec<String>> = values
                        .iter()
                        .map(|v| match v {
                            Literal::Str(ns) => Some(format!("{ns}:")),
                            _ => None,
                        })
                        .collect();
                    Some(things(prefixes?, None, None))
                }
                _ => {
                    let parts: Option<Vec<Source>> = values.iter().map(one).collect();
                    let mut parts = parts?;
                    Some(if parts.len() == 1 {
                        parts.remove(0)
                    } else {
                        Source::Union(parts)
                    })
                }
            }
        }
        Query::Exists(prop) => index_path(prop).map(exists_source),
        Query::And(qs) => qs
            .iter()
            .filter_map(|q| source_for(q, now))
            .min_by_key(Source::rank),
        Query::Or(qs) => {
            let parts: Option<Vec<Source>> = qs.iter().map(|q| source_for(q, now)).collect();
            Some(Source::Union(parts?))
        }
        Query::Not(_) | Query::Empty(_) => None,
    }
}

/// The keys of value range `a` that are also in `b` (same path); `None` if no key can be in both.
/// Only a driver for things with ONE value at the path: a multi-valued thing may match two
/// conjuncts with two different values (the caller adds those things separately).
pub fn intersect(a: &Range, b: &Range) -> Option<Range> {
    let (long, short) = if a.prefix.len() >= b.prefix.len() {
        (a, b)
    } else {
        (b, a)
    };
    if a.kind != VALUE
        || b.kind != VALUE
        || a.path != b.path
        || !long.prefix.starts_with(&short.prefix)
    {
        return None;
    }
    let mut r = long.clone();
    r.after = a.after.clone().max(b.after.clone());
    r.end = match (&a.end, &b.end) {
        (None, e) | (e, None) => e.clone(),
        (Some((x, xi)), Some((y, yi))) => Some(match x.cmp(y) {
            Ordering::Less => (x.clone(), *xi),
            Ordering::Greater => (y.clone(), *yi),
            Ordering::Equal => (x.clone(), *xi && *yi),
        }),
    };
    r.single_value = a.single_value || b.single_value;
    Some(r)
}

/// The top-level conjuncts of a filter (nested `and`s flattened).
pub fn conjuncts(q: &Query) -> Vec<&Query> {
    match q {
        Query::And(qs) => qs.iter().flat_map(conjuncts).collect(),
        other => vec![other],
    }
}

#[cfg(test)]
mod tests;
