//! One thing's reconciliation as a state machine over data (no IO): from the local state, the
//! sync record and what the cloud answers, the next cloud command (retrieve, create, conditional
//! merge, delete), the local merge that brings cloud changes down, and the record to store once
//! both sides hold the merge result. The shell (`sync`) sends the commands and feeds the answers.

use super::faults::{classify, Class, MAX_STALE_ROUNDS};
use super::merge::{diff, merge3, synced_part};
use super::record::SyncRecord;
use serde_json::{Map, Value};

/// The local thing as a job sees it (`None` in a job = deleted or never there).
#[derive(Debug, Clone, PartialEq)]
pub struct Local {
    /// the synced part (`merge::synced_part`)
    pub doc: Value,
    /// stored revision
    pub revision: u64,
    /// creation time (epoch millis)
    pub created: i64,
}

/// A command for the cloud (the shell adds topic, correlation-id, `requested-acks`).
#[derive(Debug, Clone, PartialEq)]
pub enum CloudCmd {
    /// retrieve the thing (its revision comes as `etag` / `entity-revision`)
    Retrieve,
    /// create it with this JSON
    Create(Value),
    /// merge this patch at `/`, if the cloud's revision is still `if_match` (0: unconditional)
    Patch {
        /// RFC 7396 patch
        patch: Value,
        /// expected cloud revision
        if_match: u64,
    },
    /// delete it
    Delete,
}

/// The cloud's answer to a `CloudCmd`.
#[derive(Debug, Clone, PartialEq)]
pub enum CloudReply {
    /// 2xx: the thing's new revision if the answer said it, and its JSON (retrieve)
    Ok {
        /// `entity-revision` / `etag` of the answer
        revision: Option<u64>,
        /// the payload
        thing: Option<Value>,
    },
    /// an error answer
    Err {
        /// HTTP status
        status: u16,
        /// Ditto error code
        code: String,
        /// its message
        message: String,
    },
}

/// A change to apply locally: a merge at `/` if the local revision is still `if_match`.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalCmd {
    /// RFC 7396 patch
    pub patch: Value,
    /// expected local revision
    pub if_match: u64,
}

/// The local hub's answer to a `LocalCmd`: the new revision or an error (status, message).
pub type LocalReply = Result<u64, (u16, String)>;

/// Where a refusal came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// the cloud refused the edge's change
    Cloud,
    /// the local hub refused the cloud's change (e.g. the uplink subject may not write)
    Local,
}

/// What the shell does next.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// send this to the cloud and feed the answer to `on_cloud`
    Cloud(CloudCmd),
    /// apply this locally and feed the answer to `on_local`
    Local(LocalCmd),
    /// both sides agree: store the record (`None`: forget it, the thing is gone on both)
    Done(Option<SyncRecord>),
    /// nothing to do (the thing is clean)
    Clean,
    /// refused for good: report and park until the thing changes locally
    Refused {
        /// which side refused
        side: Side,
        /// status
        status: u16,
        /// why
        error: String,
    },
    /// transient failure: try again after a backoff (`fault`: counts towards `max_attempts`)
    Retry {
        /// status
        status: u16,
        /// why
        error: String,
        /// a fault that may be about this change (bounded attempts)
        fault: bool,
    },
    /// the local thing changed under the job: read it again and `restart`
    Restart,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sent {
    Nothing,
    Retrieve,
    Create,
    Patch,
    Delete,
    Local,
}

/// One thing's reconciliation.
#[derive(Debug, Clone)]
pub struct Job {
    thing_id: String,
    policy_id: Option<String>,
    local: Option<Local>,
    rec: Option<SyncRecord>,
    cloud_changed: bool,
    sent: Sent,
    /// the merge result both sides are brought to
    merged: Value,
    /// cloud revision once it holds `merged` (0: unknown)
    cloud_rev: u64,
    local_patch: Option<Value>,
    stale_rounds: u32,
    /// created with `policyId` = the thing ID (its earlier implicit policy still exists)
    reuse_policy: bool,
}

impl Job {
    /// A job for `thing_id`: `cloud_changed` when a cloud event (or the revision sweep after a
    /// reconnect) says the cloud's version moved since the record.
    pub fn new(
        thing_id: &str,
        policy_id: Option<&str>,
        local: Option<Local>,
        rec: Option<SyncRecord>,
        cloud_changed: bool,
    ) -> Job {
        Job {
            thing_id: thing_id.to_owned(),
            policy_id: policy_id.map(str::to_owned),
            local,
            rec,
            cloud_changed,
            sent: Sent::Nothing,
            merged: Value::Null,
            cloud_rev: 0,
            local_patch: None,
            stale_rounds: 0,
            reuse_policy: false,
        }
    }

    /// The thing.
    pub fn thing_id(&self) -> &str {
        &self.thing_id
    }

    /// Stale rounds so far (re-read and merged again).
    pub fn stale_rounds(&self) -> u32 {
        self.stale_rounds
    }

    /// The first step.
    pub fn start(&mut self) -> Step {
        let (Some(local), rec) = (&self.local, &self.rec) else {
            return match self.rec {
                None => Step::Clean,
                Some(_) => self.send(Sent::Delete, CloudCmd::Delete),
            };
        };
        let Some(rec) = rec else {
            return self.create();
        };
        let same_thing = local.created == rec.local_created;
        if self.cloud_changed || rec.cloud_rev == 0 || !same_thing {
            return self.send(Sent::Retrieve, CloudCmd::Retrieve);
        }
        if local.revision == rec.local_rev {
            return Step::Clean;
        }
        self.merged = local.doc.clone();
        match diff(&rec.base, &local.doc) {
            // e.g. only the local policy changed: nothing for the cloud
            None => self.done(rec.cloud_rev, local.revision),
            Some(patch) => {
                let if_match = rec.cloud_rev;
                self.send(Sent::Patch, CloudCmd::Patch { patch, if_match })
            }
        }
    }

    /// The local thing changed under the job (a local `412`): starts over with its new state.
    pub fn restart(&mut self, local: Option<Local>) -> Step {
        self.local = local;
        self.local_patch = None;
        self.stale_rounds += 1;
        if self.stale_rounds > MAX_STALE_ROUNDS {
            return busy();
        }
        self.start()
    }

    fn send(&mut self, sent: Sent, cmd: CloudCmd) -> Step {
        self.sent = sent;
        Step::Cloud(cmd)
    }

    fn create(&mut self) -> Step {
        let Some(local) = &self.local else {
            return Step::Clean;
        };
        let mut thing = local.doc.as_object().cloned().unwrap_or_default();
        let pid = match self.reuse_policy {
            true => Some(&self.thing_id),
            false => self.policy_id.as_ref(),
        };
        if let Some(pid) = pid {
            thing.insert("policyId".into(), Value::String(pid.clone()));
        }
        self.merged = local.doc.clone();
        self.send(Sent::Create, CloudCmd::Create(Value::Object(thing)))
    }

    fn done(&mut self, cloud_rev: u64, local_rev: u64) -> Step {
        let Some(local) = &self.local else {
            return Step::Done(None);
        };
        Step::Done(Some(SyncRecord {
            local_rev,
            local_created: local.created,
            cloud_rev,
            base: std::mem::take(&mut self.merged),
        }))
    }

    /// Feeds the cloud's answer to the last `Step::Cloud`.
    pub fn on_cloud(&mut self, reply: CloudReply) -> Step {
        let sent = std::mem::replace(&mut self.sent, Sent::Nothing);
        let (revision, thing) = match reply {
            CloudReply::Ok { revision, thing } => (revision, thing),
            CloudReply::Err {
                status,
                code,
                message,
            } => return self.on_error(sent, status, &code, message),
        };
        match sent {
            Sent::Delete => Step::Done(None),
            Sent::Create | Sent::Patch => {
                self.cloud_rev = revision.unwrap_or(0);
                self.after_cloud_write()
            }
            Sent::Retrieve => {
                let thing = thing.unwrap_or(Value::Object(Map::new()));
                let rev = revision
                    .or_else(|| thing.get("_revision").and_then(Value::as_u64))
                    .unwrap_or(0);
                self.merge_with(&synced_part(&thing), rev)
            }
            Sent::Nothing | Sent::Local => busy(),
        }
    }

    fn after_cloud_write(&mut self) -> Step {
        let local_rev = self.local.as_ref().map_or(0, |l| l.revision);
        match self.local_patch.take() {
            Some(patch) => {
                self.sent = Sent::Local;
                Step::Local(LocalCmd {
                    patch,
                    if_match: local_rev,
                })
            }
            None => self.done(self.cloud_rev, local_rev),
        }
    }

    /// The 3-way merge against the cloud's version; then the cloud patch, the local patch, or
    /// nothing but a new record.
    fn merge_with(&mut self, cloud: &Value, cloud_rev: u64) -> Step {
        let Some(local) = &self.local else {
            return self.send(Sent::Delete, CloudCmd::Delete);
        };
        let base = self
            .rec
            .as_ref()
            .filter(|r| r.local_created == local.created)
            .map(|r| &r.base);
        self.merged = merge3(base, &local.doc, cloud);
        self.local_patch = diff(&local.doc, &self.merged);
        self.cloud_rev = cloud_rev;
        match diff(cloud, &self.merged) {
            Some(patch) => self.send(
                Sent::Patch,
                CloudCmd::Patch {
                    patch,
                    if_match: cloud_rev,
                },
            ),
            None => self.after_cloud_write(),
        }
    }

    fn on_error(&mut self, sent: Sent, status: u16, code: &str, message: String) -> Step {
        let class = classify(status, code);
        match (sent, class) {
            // created again after a deletion in the cloud: Ditto keeps the deleted thing's
            // implicit policy (ID = thing ID), so a create without policyId fails; use it
            (Sent::Create, Class::Refuse)
                if code == "things:thing.notcreatable"
                    && self.policy_id.is_none()
                    && !self.reuse_policy =>
            {
                self.reuse_policy = true;
                self.create()
            }
            (Sent::Delete, Class::Missing) => Step::Done(None),
            (Sent::Retrieve, Class::Missing) | (Sent::Patch, Class::Missing) => self.create(),
            (Sent::Create | Sent::Patch, Class::Stale) => {
                self.stale_rounds += 1;
                if self.stale_rounds > MAX_STALE_ROUNDS {
                    return busy();
                }
                self.local_patch = None;
                self.send(Sent::Retrieve, CloudCmd::Retrieve)
            }
            (_, Class::Refuse) | (Sent::Create, Class::Missing) => Step::Refused {
                side: Side::Cloud,
                status,
                error: format!("{code}: {message}"),
            },
            (_, class) => Step::Retry {
                status,
                error: format!("{code}: {message}"),
                fault: class == Class::Fault,
            },
        }
    }

    /// Feeds the local hub's answer to the last `Step::Local`.
    pub fn on_local(&mut self, reply: LocalReply) -> Step {
        self.sent = Sent::Nothing;
        match reply {
            Ok(rev) => self.done(self.cloud_rev, rev),
            Err((404 | 412, _)) => Step::Restart,
            // the store does not take writes now (disk full): later
            Err((status, error)) if status >= 500 => Step::Retry {
                status,
                error,
                fault: false,
            },
            Err((status, error)) => Step::Refused {
                side: Side::Local,
                status,
                error,
            },
        }
    }
}

/// Someone keeps changing the thing (or the cloud hides it: 404 to read, 409 to create):
/// back off, a bounded number of times.
fn busy() -> Step {
    Step::Retry {
        status: 409,
        error: "the thing kept changing while it was merged; trying again later".into(),
        fault: true,
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
