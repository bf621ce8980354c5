//! The index writes of one twin write, derived from where the twin changed: only subtrees that
//! differ between the old and the new state become index entries, so writing one attribute of a
//! twin costs that attribute, not the twin. Always equal to `index::delta(entries(old),
//! entries(new))` (tested against it on random twins); falls back to it when it cannot be sure.

use super::index::{
    delta, sized_entries, Builder, Entries, Size, FEATURE_PARTS, MAX_ENTRIES, MAX_PATH_BYTES,
};
use super::keys;
use crate::clock::format_millis;
use crate::engine::state::{Replaced, ThingState};
use crate::model::pointer;
use crate::store::{Op, Tree};
use serde_json::{Map, Value};

/// Things with more entries than this take the full path (the overflow bound must be exact).
const SCOPED_MAX: usize = MAX_ENTRIES / 2;

/// The index ops that turn `old` into `new` and how `new` is indexed. `old_size` is how `old` is
/// indexed, when known (a cached twin); unknown means the full computation.
pub fn write_ops(
    old: Option<&ThingState>,
    old_size: Option<Size>,
    new: Option<&ThingState>,
) -> (Vec<Op>, Size) {
    if let (Some(o), Some(Size::Entries(n)), Some(nw)) = (old, old_size, new) {
        if let Some(done) = scoped(o, n, nw) {
            return done;
        }
    }
    let old = old.map(|s| sized_entries(s).0).unwrap_or_default();
    let (new, size) = new.map_or((Entries::new(), Size::Entries(0)), sized_entries);
    (delta(&old, &new), size)
}

/// True for a path whose write `write_ops_replaced` can follow alone when its parent object
/// exists: below an attribute, or in an indexed part of a feature.
pub fn in_place_path(path: &[String]) -> bool {
    match path {
        [a, _, ..] if a == "attributes" => true,
        [f, _, part, ..] => f == "features" && FEATURE_PARTS.contains(&part.as_str()),
        _ => false,
    }
}

/// `write_ops` of a write done in place (`engine::apply_in_place`): `new` is the state after it,
/// `r` what it replaced. Only the written subtree and the times are compared (the rest of the
/// thing is the same object); an unknown size or an unsure result takes `write_ops` on the
/// state before, rebuilt.
pub fn write_ops_replaced(
    new: &ThingState,
    old_size: Option<Size>,
    r: &Replaced,
) -> (Vec<Op>, Size) {
    if let Some(Size::Entries(n)) = old_size {
        if let Some(done) = scoped_replaced(new, n, r) {
            return done;
        }
    }
    let old = r.index_view_before(new);
    write_ops(Some(&old), old_size, Some(new))
}

fn scoped_replaced(new: &ThingState, n: usize, r: &Replaced) -> Option<(Vec<Op>, Size)> {
    let id = new.thing.get("thingId").and_then(Value::as_str)?;
    let parent_is_object = matches!(
        r.path
            .split_last()
            .and_then(|(_, p)| pointer::get(&new.thing, p)),
        Some(Value::Object(_))
    );
    if new.deleted || n > SCOPED_MAX || !in_place_path(&r.path) || !parent_is_object {
        return None;
    }
    let mut d = Diff::new(id, n);
    d.stamp("_created", r.created, new.created);
    d.stamp("_modified", r.modified, new.modified);
    // every ancestor is an object before and after, so `scoped` would walk down to here
    d.node(
        &r.path.join("/"),
        r.old.as_ref(),
        pointer::get(&new.thing, &r.path),
    );
    (!d.unsure && d.count <= SCOPED_MAX).then_some((d.ops, Size::Entries(d.count)))
}

struct Diff<'a> {
    id: &'a str,
    ops: Vec<Op>,
    count: usize,
    unsure: bool,
}

fn scoped(old: &ThingState, n: usize, new: &ThingState) -> Option<(Vec<Op>, Size)> {
    let id = old.thing.get("thingId").and_then(Value::as_str)?;
    let same_id = new.thing.get("thingId").and_then(Value::as_str) == Some(id);
    if old.deleted || new.deleted || !same_id || n > SCOPED_MAX {
        return None;
    }
    let mut d = Diff::new(id, n);
    let (o, w) = (&old.thing, &new.thing);
    for field in ["policyId", "definition"] {
        d.node(field, o.get(field), w.get(field));
    }
    d.stamp("_created", old.created, new.created);
    d.stamp("_modified", old.modified, new.modified);
    let (oa, wa) = (object(o, "attributes"), object(w, "attributes"));
    for k in union(oa, wa) {
        d.node(&format!("attributes/{k}"), oa.get(k), wa.get(k));
    }
    let (of, wf) = (object(o, "features"), object(w, "features"));
    for fid in union(of, wf) {
        d.feature(fid, of.get(fid), wf.get(fid));
    }
    (!d.unsure && d.count <= SCOPED_MAX).then_some((d.ops, Size::Entries(d.count)))
}

impl<'a> Diff<'a> {
    /// No ops yet, for a thing whose index holds `count` entries.
    fn new(id: &'a str, count: usize) -> Diff<'a> {
        Diff {
            id,
            ops: Vec::new(),
            count,
            unsure: false,
        }
    }

    /// A node indexed by `Builder::walk` (objects are walked into, everything else rebuilt).
    fn node(&mut self, path: &str, old: Option<&Value>, new: Option<&Value>) {
        if old == new {
            return;
        }
        if let (Some(Value::Object(o)), Some(Value::Object(w))) = (old, new) {
            // the object's existence entry stays; only changed members matter
            for k in union(o, w) {
                self.node(&format!("{path}/{k}"), o.get(k), w.get(k));
            }
            return;
        }
        if let (Some(o), Some(w)) = (old, new) {
            if scalar(o) && scalar(w) && path != "policyId" && path.len() <= MAX_PATH_BYTES {
                // what `rebuild` gives for one value entry replaced by another (no entry maps
                // built): the count stays, the old key goes, the new one is created
                let (ko, kw) = (
                    keys::value_key(path, o, self.id),
                    keys::value_key(path, w, self.id),
                );
                if ko != kw {
                    self.ops.push(Op::delete(Tree::Index, ko));
                    self.ops.push(Op::create(Tree::Index, kw, vec![0]));
                }
                return;
            }
        }
        self.rebuild(old, new, |b, v| b.walk(path, v, false));
    }

    fn feature(&mut self, fid: &str, old: Option<&Value>, new: Option<&Value>) {
        if old == new {
            return;
        }
        if let (Some(Value::Object(o)), Some(Value::Object(w))) = (old, new) {
            for part in FEATURE_PARTS {
                self.node(&format!("features/{fid}/{part}"), o.get(part), w.get(part));
            }
            return;
        }
        self.rebuild(old, new, |b, v| b.feature(fid, v));
    }

    /// A time stamp (`Builder::stamp`: one value entry, never an overflow) changed from `old`
    /// to `new`: what `rebuild` gives, without building two entry maps (every write does it).
    fn stamp(&mut self, field: &str, old: i64, new: i64) {
        if old == new {
            return;
        }
        let key = |t| match crate::clock::millis_text(t) {
            // ASCII digits and separators: always UTF-8
            Some(b) => keys::str_value_key(field, std::str::from_utf8(&b).unwrap_or(""), self.id),
            None => keys::value_key(field, &Value::String(format_millis(t)), self.id),
        };
        let (o, w) = (key(old), key(new));
        if o != w {
            self.ops.push(Op::delete(Tree::Index, o));
            // the index holds exactly the thing's entries: the new stamp's is not there
            self.ops.push(Op::create(Tree::Index, w, vec![0]));
        }
    }

    /// Replaces the entries `build` makes of `old` by those it makes of `new`.
    fn rebuild<T>(&mut self, old: Option<T>, new: Option<T>, build: impl Fn(&mut Builder, &T)) {
        let id = self.id;
        let make = |x: Option<T>| {
            let mut b = Builder::new(id);
            if let Some(x) = x {
                build(&mut b, &x);
            }
            b
        };
        let (o, w) = (make(old), make(new));
        if o.overflow || w.overflow {
            self.unsure = true;
            return;
        }
        self.count = (self.count + w.out.len()).saturating_sub(o.out.len());
        self.ops.extend(delta(&o.out, &w.out));
    }
}

/// Neither an object nor an array: `Builder::walk` makes one value entry of it.
fn scalar(v: &Value) -> bool {
    !matches!(v, Value::Object(_) | Value::Array(_))
}

fn object<'v>(thing: &'v Value, field: &str) -> &'v Map<String, Value> {
    static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
    match thing.get(field) {
        Some(Value::Object(m)) => m,
        _ => EMPTY.get_or_init(Map::new),
    }
}

/// Keys of `a`, then those of `b` not in `a`.
fn union<'m>(
    a: &'m Map<String, Value>,
    b: &'m Map<String, Value>,
) -> impl Iterator<Item = &'m String> {
    a.keys().chain(b.keys().filter(|k| !a.contains_key(*k)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::index::entries;
    use serde_json::json;
    use std::collections::BTreeSet;

    fn state(t: Value, modified: i64) -> ThingState {
        ThingState {
            thing: t,
            revision: 1,
            created: 7,
            modified,
            metadata: None,
            deleted: false,
        }
    }

    fn as_set(ops: &[Op]) -> BTreeSet<String> {
        ops.iter().map(|o| format!("{o:?}")).collect()
    }

    /// The scoped result equals the full delta (as a set) and reports the new size.
    fn check(old: &ThingState, new: &ThingState) -> bool {
        let (full_old, old_size) = sized_entries(old);
        let (full_new, new_size) = sized_entries(new);
        let want = as_set(&delta(&full_old, &full_new));
        let (ops, size) = write_ops(Some(old), Some(old_size), Some(new));
        assert_eq!(
            as_set(&ops),
            want,
            "old {:#}\nnew {:#}",
            old.thing,
            new.thing
        );
        assert_eq!(size, new_size);
        scoped(old, full_old.len(), new).is_some()
    }

    fn random_value(rng: &mut fastrand::Rng, depth: u32) -> Value {
        match rng.u32(0..if depth == 0 { 5 } else { 7 }) {
            0 => Value::Null,
            1 => json!(rng.bool()),
            2 => json!(rng.i32(-3..3)),
            3 => json!(rng.u32(0..3) as f64 / 2.0),
            4 => json!(["a", "b", "c"][rng.usize(0..3)]),
            5 => Value::Array(
                (0..rng.usize(0..3))
                    .map(|_| random_value(rng, depth - 1))
                    .collect(),
            ),
            _ => Value::Object(
                (0..rng.usize(0..4))
                    .map(|_| (format!("k{}", rng.u32(0..4)), random_value(rng, depth - 1)))
                    .collect(),
            ),
        }
    }

    /// A random path of the thing (existing or not) under the indexed roots.
    fn random_path(rng: &mut fastrand::Rng) -> Vec<String> {
        let mut p = match rng.u32(0..4) {
            0 => vec!["policyId".to_owned()],
            1 => vec!["attributes".to_owned()],
            _ => vec![
                "features".to_owned(),
                format!("f{}", rng.u32(0..3)),
                ["properties", "desiredProperties", "definition", "other"][rng.usize(0..4)]
                    .to_owned(),
            ],
        };
        for _ in 0..rng.usize(0..3) {
            p.push(format!("k{}", rng.u32(0..4)));
        }
        p
    }

    fn set(v: &mut Value, path: &[String], new: Option<Value>) {
        let Some((last, init)) = path.split_last() else {
            return;
        };
        let mut cur = v;
        for k in init {
            if !cur.is_object() {
                *cur = json!({});
            }
            cur = cur
                .as_object_mut()
                .unwrap()
                .entry(k.clone())
                .or_insert_with(|| json!({}));
        }
        if !cur.is_object() {
            *cur = json!({});
        }
        let m = cur.as_object_mut().unwrap();
        match new {
            Some(x) => {
                m.insert(last.clone(), x);
            }
            None => {
                m.remove(last);
            }
        }
    }

    /// A thing with up to 7 random values at random paths.
    fn random_thing(rng: &mut fastrand::Rng) -> Value {
        let mut thing = json!({"thingId": "n:t", "policyId": "n:p"});
        for _ in 0..rng.usize(0..8) {
            let p = random_path(rng);
            set(&mut thing, &p, Some(random_value(rng, 3)));
        }
        thing
    }

    #[test]
    fn scoped_delta_equals_the_full_delta_on_random_changes() {
        let mut rng = fastrand::Rng::with_seed(0x5eed);
        let (mut scoped_runs, mut runs) = (0, 0);
        for _ in 0..400 {
            let thing = random_thing(&mut rng);
            let mut old = state(thing, 1000);
            for step in 0..8 {
                let mut new = old.clone();
                new.modified += rng.i64(0..2);
                for _ in 0..rng.usize(1..3) {
                    let p = random_path(&mut rng);
                    let v = rng.bool().then(|| random_value(&mut rng, 3));
                    set(&mut new.thing, &p, v);
                }
                if step == 7 && rng.bool() {
                    new.thing["attributes"] = json!("not an object");
                }
                runs += 1;
                scoped_runs += usize::from(check(&old, &new));
                old = new;
            }
        }
        assert!(
            scoped_runs * 10 > runs * 9,
            "{scoped_runs} of {runs} scoped"
        );
    }

    #[test]
    fn the_delta_of_an_in_place_write_equals_the_full_delta() {
        let mut rng = fastrand::Rng::with_seed(0x1a_91ace);
        let (mut scoped_runs, mut runs) = (0, 0);
        for _ in 0..2000 {
            let thing = random_thing(&mut rng);
            let old = state(thing, 1000);
            let path = random_path(&mut rng);
            let Some((last, parents)) = path.split_last() else {
                continue;
            };
            let mut new = old.clone();
            new.modified += rng.i64(0..2);
            let Some(Value::Object(parent)) = pointer::get_mut(&mut new.thing, parents) else {
                continue;
            };
            if !in_place_path(&path) {
                continue;
            }
            let old_leaf = parent.insert(last.clone(), random_value(&mut rng, 3));
            let r = Replaced {
                path: path.clone(),
                old: old_leaf,
                modified: old.modified,
                created: old.created,
            };
            assert_eq!(r.index_view_before(&new), old);
            let (full_old, old_size) = sized_entries(&old);
            let (full_new, new_size) = sized_entries(&new);
            let want = as_set(&delta(&full_old, &full_new));
            for size in [Some(old_size), None] {
                let (ops, got_size) = write_ops_replaced(&new, size, &r);
                assert_eq!(as_set(&ops), want, "{path:?} old {:#}", old.thing);
                assert_eq!(got_size, new_size);
            }
            runs += 1;
            scoped_runs += usize::from(scoped_replaced(&new, full_old.len(), &r).is_some());
        }
        assert!(
            runs > 150 && scoped_runs * 10 > runs * 9,
            "{scoped_runs} of {runs}"
        );
    }

    #[test]
    fn one_attribute_changes_only_its_entries() {
        let old = state(
            json!({"thingId": "n:t", "attributes": {"a": 1, "b": [1, 2], "o": {"x": "y"}},
                "features": {"f": {"properties": {"p": 1}}}}),
            1000,
        );
        let mut new = old.clone();
        new.thing["attributes"]["a"] = json!(2);
        new.modified = 2000;
        let (ops, size) = write_ops(Some(&old), Some(sized_entries(&old).1), Some(&new));
        assert_eq!(ops.len(), 4, "a and _modified: delete + put each: {ops:?}");
        assert_eq!(size, Size::Entries(entries(&new).len()));
        assert!(check(&old, &new));
    }

    #[test]
    fn overflow_and_unknown_sizes_take_the_full_path() {
        let old = state(json!({"thingId": "n:t", "attributes": {"a": 1}}), 1);
        let mut new = old.clone();
        let long = "x".repeat(super::super::index::MAX_PATH_BYTES + 1);
        new.thing["attributes"][long] = json!(1);
        assert!(!check(&old, &new), "a too long path is the overflow marker");
        let (ops, size) = write_ops(Some(&new), Some(Size::Overflow), Some(&old));
        assert_eq!(size, Size::Entries(entries(&old).len()));
        assert_eq!(as_set(&ops), as_set(&delta(&entries(&new), &entries(&old))));
        let (ops, _) = write_ops(None, None, Some(&old));
        assert_eq!(ops.len(), entries(&old).len());
    }
}
