//! The query executor: picks the driving source (the most selective indexable conjunct, or one
//! whose order matches the sort so the scan can stop early), streams its candidates, re-checks
//! each against the requester's READ view with search semantics, and keeps only a bounded top-k
//! heap (`size + 1` items) for a sorted page. Memory is independent of the number of twins: at
//! most `size + 1` things, a few bounded ID sets (`choose::SET_CAP`) and one store batch at a
//! time.

use super::choose::{choose, Chosen, Mode};
use super::counted::ByIndex;
use super::enforcers::Enforcers;
use super::eval;
use super::index::{entries, Entries};
use super::keys;
use super::plan::Source;
use super::prune::{self, Keep};
use super::scan::{self, Cand, Flow};
use crate::engine::{self, ThingState};
use crate::error::DittoError;
use crate::hub::{Hub, HubLookup, Requester};
use crate::model::FieldSelector;
use crate::policy::{Enforcer, THING_ALLOWLIST};
use crate::rql::{compare_sort_values, lookup, Env, Query, SortKey};
use crate::store::{Reader, Tree};
use serde_json::Value;
use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::Instant;

/// A search, validated and parsed.
#[derive(Debug, Clone, Default)]
pub struct Spec {
    /// RQL filter (search semantics), `None` = all
    pub filter: Option<Query>,
    /// sort keys; empty = `+thingId`; ties always by thingId
    pub sort: Vec<SortKey>,
    /// exact namespaces; empty = all
    pub namespaces: Vec<String>,
    /// fields of the returned things
    pub fields: Option<FieldSelector>,
}

/// Where a page starts: sort-key values (null for absent) and thingId of the previous item.
#[derive(Debug, Clone, PartialEq)]
pub struct Position {
    /// one value per sort key
    pub values: Vec<Value>,
    /// thingId
    pub thing_id: String,
}

/// One page of results.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Page {
    /// the things, READ-filtered and projected on `fields`
    pub items: Vec<Value>,
    /// their thingIds (the items may not show them)
    pub ids: Vec<String>,
    /// position of the last item, if more items follow
    pub more: Option<Position>,
}

/// 408 `thing-search:query.time.exceeded`.
pub fn time_exceeded() -> DittoError {
    DittoError::new(
        408,
        "thing-search:query.time.exceeded",
        "The search query took too long to execute.",
    )
    .describe("Narrow the query, e.g. with an indexed filter on attributes or feature properties, or raise the timeout.")
}

/// The sort order of search results: each key (absent = null), then thingId.
pub fn compare(sort: &[SortKey], a: (&[Value], &str), b: (&[Value], &str)) -> Ordering {
    for (i, k) in sort.iter().enumerate() {
        let o = compare_sort_values(a.0.get(i), b.0.get(i));
        let o = if k.ascending { o } else { o.reverse() };
        if o != Ordering::Equal {
            return o;
        }
    }
    a.1.cmp(b.1)
}

/// A matching thing.
struct Hit {
    keys: Vec<Value>,
    id: String,
    state: ThingState,
    enforcer: Arc<Enforcer>,
}

struct Ranked<'s> {
    sort: &'s [SortKey],
    hit: Hit,
}

impl Ord for Ranked<'_> {
    fn cmp(&self, o: &Self) -> Ordering {
        compare(
            self.sort,
            (&self.hit.keys, &self.hit.id),
            (&o.hit.keys, &o.hit.id),
        )
    }
}
impl PartialOrd for Ranked<'_> {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl PartialEq for Ranked<'_> {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Ranked<'_> {}

/// Receives each matching thing (and the index key it came from); says when to stop.
type OnHit<'f> = dyn FnMut(Hit, Option<&[u8]>) -> Flow + 'f;

/// One search over the hub's store on behalf of a requester.
pub struct Searcher<'a> {
    hub: &'a Hub,
    who: &'a Requester,
    now: i64,
    deadline: Option<Instant>,
    enforcers: Enforcers,
    /// set while counting: what the filter looks at (see `count_pruned`)
    counting: Option<Arc<Keep>>,
    /// set while counting, if index keys can decide candidates (`search::counted`)
    by_index: Option<ByIndex>,
    steps: u64,
    /// candidates loaded and checked (diagnostics, benchmarks)
    pub examined: u64,
    /// candidates a count decided from the index alone (diagnostics, benchmarks)
    pub decided_by_index: u64,
    /// the enforcer of the hits a count decided from the index (never asked)
    blank: Arc<Enforcer>,
}

fn needs_full_view(spec: &Spec) -> bool {
    let special = |p: &crate::rql::Property| {
        matches!(
            p.root(),
            "_revision" | "_created" | "_modified" | "_metadata"
        )
    };
    spec.filter
        .as_ref()
        .is_some_and(|q| q.properties().iter().any(|p| special(p)))
        || spec.sort.iter().any(|k| special(&k.prop))
}

impl<'a> Searcher<'a> {
    /// A search at `now` (epoch millis) that fails with 408 after `deadline`.
    pub fn new(hub: &'a Hub, who: &'a Requester, now: i64, deadline: Option<Instant>) -> Self {
        Searcher {
            hub,
            who,
            now,
            deadline,
            enforcers: Enforcers::default(),
            counting: None,
            by_index: None,
            steps: 0,
            examined: 0,
            decided_by_index: 0,
            blank: Arc::default(),
        }
    }

    fn tick(&mut self) -> Result<(), DittoError> {
        self.steps += 1;
        if self.steps.is_multiple_of(64) && self.deadline.is_some_and(|d| Instant::now() > d) {
            return Err(time_exceeded());
        }
        Ok(())
    }

    /// Loads and checks one candidate: namespace, READ, filter on the READ view; the sort keys.
    fn admit(
        &mut self,
        store: &Reader,
        spec: &Spec,
        full: bool,
        c: &Cand,
        accept: Option<&dyn Fn(&ThingState) -> bool>,
    ) -> Result<Option<Hit>, DittoError> {
        self.tick()?;
        let ns = c.id.split_once(':').map_or("", |(n, _)| n);
        if !spec.namespaces.is_empty() && !spec.namespaces.iter().any(|n| n == ns) {
            return Ok(None);
        }
        if let (Some(b), Some(q), None) = (&mut self.by_index, &spec.filter, accept) {
            if let Some(hit) = b.decide(store, &self.who.subjects, q, self.now, c)? {
                self.decided_by_index += 1;
                return Ok(hit.then(|| counted(&self.blank)));
            }
        }
        let bytes = match c.bytes {
            Some(b) => Cow::Borrowed(b),
            None => match store
                .get(Tree::Things, c.id.as_bytes())
                .map_err(scan::store_err)?
            {
                Some(b) => Cow::Owned(b),
                None => return Ok(None),
            },
        };
        self.examined += 1;
        if let (Some(keep), None, false) = (&self.counting, accept, full) {
            if let Some(done) = self.count_pruned(spec, c.id, ns, &bytes, keep.clone())? {
                return Ok(done);
            }
        }
        let Ok(state) = ThingState::from_bytes(&bytes) else {
            return Ok(None);
        };
        if state.deleted || !accept.is_none_or(|a| a(&state)) {
            return Ok(None);
        }
        let Some(pid) = state.thing.get("policyId").and_then(Value::as_str) else {
            return Ok(None);
        };
        let Some((enforcer, full_read)) =
            self.enforcers.get(self.hub, self.who, pid, ns, self.now)?
        else {
            return Ok(None);
        };
        let doc: Cow<Value> = if full {
            Cow::Owned(state.full_view())
        } else {
            Cow::Borrowed(&state.thing)
        };
        let view: Cow<Value> = if full_read {
            doc
        } else {
            match enforcer.root_view(&self.who.subjects, "thing", &doc, &THING_ALLOWLIST) {
                Some(v) => Cow::Owned(v),
                None => return Ok(None),
            }
        };
        let env = Env::at(self.now);
        if let Some(q) = &spec.filter {
            if !eval::matches(q, &view, &env) {
                return Ok(None);
            }
        }
        let keys = spec
            .sort
            .iter()
            .map(|k| {
                lookup(&view, &k.prop)
                    .first()
                    .map(|v| v.clone().into_owned())
                    .unwrap_or(Value::Null)
            })
            .collect();
        drop(view);
        Ok(Some(Hit {
            keys,
            id: c.id.to_owned(),
            state,
            enforcer,
        }))
    }

    /// `admit` for a count from the thing pruned to what the filter looks at (`prune`), when the
    /// requester may READ the whole thing (its READ view is the thing); `None`: decide on the
    /// whole thing. The hit's state is the pruned thing (a count reads nothing from it).
    fn count_pruned(
        &mut self,
        spec: &Spec,
        id: &str,
        ns: &str,
        bytes: &[u8],
        keep: Arc<Keep>,
    ) -> Result<Option<Option<Hit>>, DittoError> {
        let Some((thing, deleted)) = prune::decode(bytes, &keep) else {
            return Ok(None);
        };
        if deleted {
            return Ok(Some(None));
        }
        let Some(pid) = thing.get("policyId").and_then(Value::as_str) else {
            return Ok(Some(None));
        };
        let Some((enforcer, full_read)) =
            self.enforcers.get(self.hub, self.who, pid, ns, self.now)?
        else {
            return Ok(Some(None));
        };
        if !full_read {
            return Ok(None);
        }
        if let Some(q) = &spec.filter {
            if !eval::matches(q, &thing, &Env::at(self.now)) {
                return Ok(Some(None));
            }
        }
        let state = ThingState {
            thing,
            revision: 0,
            created: 0,
            modified: 0,
            metadata: None,
            deleted,
        };
        Ok(Some(Some(Hit {
            keys: Vec::new(),
            id: id.to_owned(),
            state,
            enforcer,
        })))
    }

    /// Streams every matching thing of the plan to `f` (each once); `f` says when to stop.
    fn run(
        &mut self,
        store: &Reader,
        spec: &Spec,
        plan: &Chosen,
        after: Option<&Position>,
        f: &mut OnHit,
    ) -> Result<(), DittoError> {
        let full = needs_full_view(spec);
        for id in &plan.pre {
            let c = Cand {
                id,
                key: None,
                bytes: None,
                multi: false,
                branch: 0,
            };
            if let Some(hit) = self.admit(store, spec, full, &c, None)? {
                if f(hit, None) == Flow::Stop {
                    return Ok(());
                }
            }
        }
        let (after_id, after_key) = match (&plan.mode, after) {
            (Mode::ById, Some(p)) => (Some(p.thing_id.as_str()), None),
            (Mode::ByPath(r), Some(p)) => {
                let mut k = keys::path_prefix(keys::VALUE, &r.path);
                keys::push_value(&mut k, p.values.first().unwrap_or(&Value::Null));
                (None, Some(k))
            }
            _ => (None, None),
        };
        scan::scan(
            store,
            &plan.driver,
            after_id,
            after_key.as_deref(),
            &mut |c| {
                if plan.pre.binary_search_by(|x| x.as_str().cmp(c.id)).is_ok()
                    || (plan.skip_multi && c.multi)
                    || !plan
                        .checks
                        .iter()
                        .all(|s| scan::emits(s, c.id, &Entries::new()))
                    || plan.set.as_ref().is_some_and(|s| !s.contains(c.id))
                {
                    return Ok(Flow::Go);
                }
                let dedupe =
                    c.branch > 0 || (c.multi && !plan.skip_multi && !single_value(&plan.driver));
                let hit = if dedupe {
                    let accept = |st: &ThingState| first_time(&plan.driver, &c, &entries(st));
                    self.admit(store, spec, full, &c, Some(&accept))?
                } else {
                    self.admit(store, spec, full, &c, None)?
                };
                Ok(match hit {
                    Some(h) => f(h, c.key),
                    None => Flow::Go,
                })
            },
        )?;
        Ok(())
    }

    /// One page of `size` things after `after`, in sort order.
    pub fn page(
        &mut self,
        spec: &Spec,
        after: Option<&Position>,
        size: usize,
    ) -> Result<Page, DittoError> {
        // one backend view for the whole page (redb: one read transaction)
        let store = self.hub.store().reader();
        let plan = choose(&store, spec, self.now, true)?;
        let k = size + 1;
        let sort = spec.sort.as_slice();
        let mut heap: BinaryHeap<Ranked> = BinaryHeap::with_capacity(k + 1);
        let path_range = match &plan.mode {
            Mode::ByPath(r) => Some(r.clone()),
            _ => None,
        };
        let mode_id = matches!(plan.mode, Mode::ById);
        self.run(&store, spec, &plan, after, &mut |hit, key| {
            if let Some(p) = after {
                if compare(sort, (&hit.keys, &hit.id), (&p.values, &p.thing_id))
                    != Ordering::Greater
                {
                    return Flow::Go;
                }
            }
            if heap.len() == k {
                if let Some(worst) = heap.peek() {
                    let beyond = if mode_id {
                        hit.id.as_str() > worst.hit.id.as_str()
                    } else if let (Some(r), Some(key), Some(v)) =
                        (&path_range, key, worst.hit.keys.first())
                    {
                        r.value_of(key)
                            .is_some_and(|enc| enc > keys::value_bytes(v).as_slice())
                    } else {
                        false
                    };
                    if beyond {
                        return Flow::Stop;
                    }
                }
            }
            heap.push(Ranked { sort, hit });
            if heap.len() > k {
                heap.pop();
            }
            Flow::Go
        })?;
        let mut hits: Vec<Hit> = heap.into_sorted_vec().into_iter().map(|r| r.hit).collect();
        let more = if hits.len() > size {
            hits.truncate(size);
            hits.last().map(|h| Position {
                values: h.keys.clone(),
                thing_id: h.id.clone(),
            })
        } else {
            None
        };
        let (mut items, mut ids) = (Vec::with_capacity(size), Vec::with_capacity(size));
        for h in &hits {
            if let Some(v) = self.render(spec.fields.as_ref(), h)? {
                items.push(v);
                ids.push(h.id.clone());
            }
        }
        Ok(Page { items, ids, more })
    }

    /// A page after skipping `offset` matches (deprecated `limit`); pages through the skipped
    /// part so memory stays bounded.
    pub fn page_at_offset(
        &mut self,
        spec: &Spec,
        offset: u64,
        count: usize,
    ) -> Result<Page, DittoError> {
        let mut after: Option<Position> = None;
        let mut left = offset;
        while left > 0 {
            let n = left.min(crate::rql::MAX_PAGE_SIZE as u64) as usize;
            let skip = Spec {
                fields: None,
                ..spec.clone()
            };
            match self.page(&skip, after.as_ref(), n)?.more {
                Some(pos) => after = Some(pos),
                None => return Ok(Page::default()),
            }
            left -= n as u64;
        }
        if count == 0 {
            return Ok(Page::default());
        }
        self.page(spec, after.as_ref(), count)
    }

    /// Number of matching things the requester may read.
    pub fn count(&mut self, spec: &Spec) -> Result<u64, DittoError> {
        // one backend view for the whole count (redb: one read transaction)
        let store = self.hub.store().reader();
        let plan = choose(&store, spec, self.now, false)?;
        let mut n = 0u64;
        self.counting = Some(Arc::new(Keep::of(spec.filter.as_ref())));
        self.by_index = ByIndex::of(
            spec.filter.as_ref(),
            &plan.driver,
            needs_full_view(spec),
            self.hub.access_map(),
            store.watched_changes(),
        );
        let done = self.run(&store, spec, &plan, None, &mut |_, _| {
            n += 1;
            Flow::Go
        });
        self.counting = None;
        self.by_index = None;
        done?;
        Ok(n)
    }

    /// The sort-key values a thing has for this requester (resuming after a known thing).
    pub fn position_of(
        &mut self,
        spec: &Spec,
        thing_id: &str,
    ) -> Result<Option<Position>, DittoError> {
        let c = Cand {
            id: thing_id,
            key: None,
            bytes: None,
            multi: false,
            branch: 0,
        };
        let unfiltered = Spec {
            filter: None,
            ..spec.clone()
        };
        let store = self.hub.store().reader();
        Ok(self
            .admit(&store, &unfiltered, needs_full_view(spec), &c, None)?
            .map(|h| Position {
                values: h.keys,
                thing_id: h.id,
            }))
    }

    fn render(&self, fields: Option<&FieldSelector>, h: &Hit) -> Result<Option<Value>, DittoError> {
        let ctx = engine::Ctx {
            now: self.now,
            subject: self.who.subject(),
            lookup: &HubLookup(self.hub),
            access: Some(engine::enforce::Access {
                subjects: &self.who.subjects,
                enforcer: Some(&h.enforcer),
            }),
        };
        engine::read::readable_thing_view(&h.state, fields, &ctx)
    }
}

/// The hit of a thing a count decided from the index (a count reads nothing from it, not even
/// its ID: no allocation per candidate).
fn counted(blank: &Arc<Enforcer>) -> Hit {
    Hit {
        keys: Vec::new(),
        id: String::new(),
        state: ThingState {
            thing: Value::Null,
            revision: 0,
            created: 0,
            modified: 0,
            metadata: None,
            deleted: false,
        },
        enforcer: Arc::clone(blank),
    }
}

fn single_value(s: &Source) -> bool {
    matches!(s, Source::Index(r) if r.single_value)
}

/// True if this is the first time the driver yields the thing: no earlier union branch yields
/// it, and the key is its first key in the branch.
fn first_time(driver: &Source, c: &Cand, e: &Entries) -> bool {
    let branch = match driver {
        Source::Union(parts) => {
            if parts[..c.branch.min(parts.len())]
                .iter()
                .any(|p| scan::emits(p, c.id, e))
            {
                return false;
            }
            parts.get(c.branch)
        }
        other => Some(other),
    };
    match (branch, c.key) {
        (Some(Source::Index(r)), Some(k)) => scan::first_in(r, e) == Some(k),
        _ => true,
    }
}
