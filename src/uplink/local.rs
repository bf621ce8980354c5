//! The uplink's door into the local hub, the way every binding enters it: Ditto Protocol
//! envelopes through `Hub::handle_protocol` as the uplink subject (local policies decide what
//! the cloud may change or command). Reads of the local state and sync records, local merges
//! of cloud changes (conditional on the local revision, answered once durable), delivery of
//! cloud live commands and messages, and the startup scan that finds every dirty thing.

use super::merge::synced_part;
use super::plan::{Local, LocalCmd, LocalReply};
use super::record::{self, SyncRecord};
use super::wire::rev_tag;
use crate::engine::ThingState;
use crate::hub::{Hub, Requester};
use crate::model::parse_thing_id;
use crate::protocol::{Action, Channel, Criterion, Envelope, Headers, Topic};
use crate::store::{StoreError, Tree};
use std::sync::Arc;

/// Things read per page of the startup scan.
const SCAN_PAGE: usize = 256;

/// A page of sync records: the last key read (to go on after it), how many keys were read (a
/// page shorter than asked for is the last), and the readable records.
pub struct Page {
    /// last key of the page
    pub last: Option<Vec<u8>>,
    /// keys read
    pub len: usize,
    /// `(thingId, record)`
    pub records: Vec<(String, SyncRecord)>,
}

/// The hub as the uplink uses it.
#[derive(Clone)]
pub struct LocalSide {
    hub: Hub,
    who: Requester,
}

impl LocalSide {
    /// The door for `subject`.
    pub fn new(hub: Hub, subject: &str) -> LocalSide {
        LocalSide {
            hub,
            who: Requester {
                subjects: Arc::from(vec![subject.to_owned()]),
                origin: None,
            },
        }
    }

    /// The hub.
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// The stored state of a thing (tombstones included).
    pub fn thing(&self, id: &str) -> Result<Option<ThingState>, String> {
        self.hub.load_thing(id).map_err(|e| e.message)
    }

    /// The thing as a job sees it (`None`: deleted or never there).
    pub fn local(&self, id: &str) -> Result<Option<Local>, String> {
        Ok(self.thing(id)?.filter(|s| !s.deleted).map(|s| Local {
            doc: synced_part(&s.thing),
            revision: s.revision,
            created: s.created,
        }))
    }

    /// The sync record of a thing (`None` if absent or unreadable).
    pub fn record(&self, id: &str) -> Result<Option<SyncRecord>, StoreError> {
        let b = self.hub.store().get(Tree::Meta, &record::key(id))?;
        Ok(b.and_then(|b| SyncRecord::from_bytes(&b)))
    }

    /// Stores (or forgets) a thing's record; not waited for: a record lost to a crash only
    /// makes the thing look dirty again, and the merge then finds nothing to send.
    pub fn save(&self, id: &str, rec: Option<&SyncRecord>) {
        let op = match rec {
            Some(r) => r.put(id),
            None => record::delete(id),
        };
        self.hub.store().submit(vec![op]);
    }

    /// Applies a cloud change locally: a merge at `/` if the revision is still the one merged
    /// against; answers with the new revision (not waiting for the disk: a change lost to a
    /// crash is found again by the revision sweep, as the record written after it is lost too).
    pub async fn apply(&self, id: &str, cmd: &LocalCmd) -> LocalReply {
        let tid = parse_thing_id(id).map_err(|e| (e.status, e.message))?;
        let topic = Topic::thing(
            &tid.namespace,
            &tid.name,
            Channel::Twin,
            Criterion::Commands(Action::Merge),
        );
        let mut h = Headers::new();
        h.insert(
            "correlation-id",
            crate::protocol::headers::new_correlation_id(),
        );
        h.insert("content-type", "application/merge-patch+json");
        h.insert("if-match", rev_tag(cmd.if_match));
        // nobody waits for the disk (the interval class, no forced sync): see `apply`'s doc
        h.insert("requested-acks", serde_json::json!([]));
        let mut env = Envelope::new(topic, h, "/");
        env.value = Some(cmd.patch.clone());
        let answer = self.hub.handle_protocol(&self.who, env).await;
        let reply = match answer {
            Some(a) => a.settle_envelope(&self.hub).await,
            None => None,
        };
        let Some(reply) = reply else {
            return Err((500, "no answer from the hub".into()));
        };
        let status = reply.status.unwrap_or(500);
        if status >= 400 {
            let (_, code, message) = super::wire::error_of(&reply);
            return Err((status, format!("{code}: {message}")));
        }
        super::wire::revision_of(&reply.headers)
            .ok_or_else(|| (500, "the local answer has no revision".into()))
    }

    /// Delivers a cloud live command or message to the local subscribers; the answer (the
    /// device's, or an error such as the timeout) for the cloud, if one is due.
    pub async fn deliver(&self, env: Envelope) -> Option<Envelope> {
        let answer = self.hub.handle_protocol(&self.who, env).await?;
        answer.settle_envelope(&self.hub).await
    }

    /// Every dirty thing of the mirrored namespaces (`mirrors`), in pages, for the startup
    /// scan: live things without or with another record, and records whose thing is gone.
    pub fn scan_dirty(
        &self,
        mirrors: &dyn Fn(&str) -> bool,
        mut found: impl FnMut(&str),
    ) -> Result<(), StoreError> {
        let store = self.hub.store();
        let ns_ok = |id: &str| id.split_once(':').is_some_and(|(ns, _)| mirrors(ns));
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page = store.scan(Tree::Things, b"", after.as_deref(), SCAN_PAGE)?;
            for (k, v) in &page {
                let Ok(id) = std::str::from_utf8(k) else {
                    continue;
                };
                if !ns_ok(id) {
                    continue;
                }
                let state = ThingState::from_bytes(v).ok();
                if record::is_dirty(state.as_ref(), self.record(id)?.as_ref()) {
                    found(id);
                }
            }
            match page.last() {
                Some((k, _)) if page.len() == SCAN_PAGE => after = Some(k.clone()),
                _ => break,
            }
        }
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page = store.scan(Tree::Meta, record::PREFIX, after.as_deref(), SCAN_PAGE)?;
            for (k, _) in &page {
                let Some(id) = record::thing_of(k) else {
                    continue;
                };
                if ns_ok(id) && store.get(Tree::Things, id.as_bytes())?.is_none() {
                    found(id);
                }
            }
            match page.last() {
                Some((k, _)) if page.len() == SCAN_PAGE => after = Some(k.clone()),
                _ => break,
            }
        }
        Ok(())
    }

    /// A page of records (for the revision sweep) after the key `after`.
    pub fn records_page(&self, after: Option<&[u8]>, limit: usize) -> Result<Page, StoreError> {
        let page = self
            .hub
            .store()
            .scan(Tree::Meta, record::PREFIX, after, limit)?;
        let last = page.last().map(|(k, _)| k.clone());
        let n = page.len();
        let recs = page
            .into_iter()
            .filter_map(|(k, v)| {
                let id = record::thing_of(&k)?.to_owned();
                Some((id, SyncRecord::from_bytes(&v)?))
            })
            .collect();
        Ok(Page {
            last,
            len: n,
            records: recs,
        })
    }
}
