//! Subject expiry (pure): when a policy next needs attention, and what happens then: subjects
//! whose `expiry` passed are removed, `subjectDeletion` announcements are due `beforeExpiry`
//! ahead of the expiry and (with `whenDeleted`) when the subject is removed.

use super::model::parse_duration_ms;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// A `subjectDeletion` announcement to deliver to sessions of one of `subject_ids`.
#[derive(Debug, Clone, PartialEq)]
pub struct Announcement {
    /// the policy
    pub policy_id: String,
    /// when the subjects are (or were) deleted, epoch millis
    pub delete_at: i64,
    /// affected subjects
    pub subject_ids: Vec<String>,
}

impl Announcement {
    /// The announcement's `value` (`{"deleteAt": ..., "subjectIds": [...]}`).
    pub fn value(&self) -> Value {
        json!({
            "deleteAt": crate::clock::format_millis(self.delete_at),
            "subjectIds": self.subject_ids,
        })
    }
}

/// What processing a policy at some instant decided.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Processed {
    /// the policy without its expired subjects, if any were removed
    pub policy: Option<Value>,
    /// announcements to deliver now
    pub announcements: Vec<Announcement>,
    /// (subject, expiry) pairs announced ahead of expiry by this run
    pub announced: Vec<(String, i64)>,
}

struct Sub<'a> {
    label: &'a str,
    id: &'a str,
    expiry: i64,
    before: Option<i64>,
    when_deleted: bool,
}

fn expiring(policy: &Value) -> Vec<Sub<'_>> {
    let mut out = Vec::new();
    let Some(entries) = policy.get("entries").and_then(Value::as_object) else {
        return out;
    };
    for (label, e) in entries {
        let Some(subs) = e.get("subjects").and_then(Value::as_object) else {
            continue;
        };
        for (id, s) in subs {
            let Some(expiry) = s
                .get("expiry")
                .and_then(Value::as_str)
                .and_then(crate::clock::parse_iso)
            else {
                continue;
            };
            let a = s.get("announcement");
            out.push(Sub {
                label,
                id,
                expiry,
                before: a
                    .and_then(|a| a.get("beforeExpiry"))
                    .and_then(Value::as_str)
                    .and_then(parse_duration_ms),
                when_deleted: a
                    .and_then(|a| a.get("whenDeleted"))
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
            });
        }
    }
    out
}

/// True if some subject of the policy has an `expiry` (the policy needs the expiry timer).
pub fn has_expiring(policy: &Value) -> bool {
    !expiring(policy).is_empty()
}

/// The next instant (epoch millis) at which something is due for this policy: a removal, or a
/// `beforeExpiry` announcement not yet sent (`announced(subject, expiry)`).
pub fn next_due(policy: &Value, announced: &dyn Fn(&str, i64) -> bool) -> Option<i64> {
    expiring(policy)
        .iter()
        .flat_map(|s| {
            let ahead = s
                .before
                .filter(|_| !announced(s.id, s.expiry))
                .map(|b| s.expiry - b);
            [Some(s.expiry), ahead]
        })
        .flatten()
        .min()
}

/// Processes a policy at `now`: removes expired subjects and collects the announcements due.
pub fn process(
    policy_id: &str,
    policy: &Value,
    now: i64,
    announced: &dyn Fn(&str, i64) -> bool,
) -> Processed {
    let mut out = Processed::default();
    let mut deleted: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    let mut ahead: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    let mut removals: Vec<(String, String)> = Vec::new();
    for s in expiring(policy) {
        if s.expiry <= now {
            removals.push((s.label.to_owned(), s.id.to_owned()));
            if s.when_deleted {
                deleted.entry(s.expiry).or_default().push(s.id.to_owned());
            }
        } else if let Some(b) = s.before {
            if now >= s.expiry - b && !announced(s.id, s.expiry) {
                ahead.entry(s.expiry).or_default().push(s.id.to_owned());
                out.announced.push((s.id.to_owned(), s.expiry));
            }
        }
    }
    for (delete_at, subject_ids) in ahead.into_iter().chain(deleted) {
        out.announcements.push(Announcement {
            policy_id: policy_id.to_owned(),
            delete_at,
            subject_ids,
        });
    }
    if !removals.is_empty() {
        let mut p = policy.clone();
        for (label, id) in removals {
            if let Some(m) = p
                .get_mut("entries")
                .and_then(|e| e.get_mut(&label))
                .and_then(|e| e.get_mut("subjects"))
                .and_then(Value::as_object_mut)
            {
                m.remove(&id);
            }
        }
        out.policy = Some(p);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announces_ahead_then_removes() {
        let t = |s: &str| crate::clock::parse_iso(s).unwrap();
        let p = json!({"policyId": "a:b", "entries": {"e": {"subjects": {
            "x:keep": {"type": "t"},
            "x:tmp": {"type": "t", "expiry": "2030-01-01T01:00:00Z",
                       "announcement": {"beforeExpiry": "1h", "whenDeleted": true}},
            "x:quiet": {"type": "t", "expiry": "2030-01-01T02:00:00Z"}
        }, "resources": {"thing:/": {"grant": ["READ"], "revoke": []}}}}});
        let none = |_: &str, _: i64| false;
        assert_eq!(next_due(&p, &none), Some(t("2030-01-01T00:00:00Z")));
        let r = process("a:b", &p, t("2030-01-01T00:30:00Z"), &none);
        assert_eq!(r.policy, None);
        assert_eq!(r.announcements.len(), 1);
        assert_eq!(
            r.announcements[0].value(),
            json!({"deleteAt": "2030-01-01T01:00:00.000Z", "subjectIds": ["x:tmp"]})
        );
        assert_eq!(
            r.announced,
            vec![("x:tmp".to_owned(), t("2030-01-01T01:00:00Z"))]
        );
        let sent = |id: &str, _: i64| id == "x:tmp";
        assert_eq!(next_due(&p, &sent), Some(t("2030-01-01T01:00:00Z")));
        let r = process("a:b", &p, t("2030-01-01T01:00:00Z"), &sent);
        assert_eq!(r.announcements[0].subject_ids, vec!["x:tmp".to_owned()]);
        let left = r.policy.unwrap();
        assert!(left["entries"]["e"]["subjects"].get("x:tmp").is_none());
        assert!(left["entries"]["e"]["subjects"].get("x:quiet").is_some());
        let r = process("a:b", &left, t("2030-01-01T03:00:00Z"), &sent);
        assert!(r.announcements.is_empty(), "no whenDeleted for x:quiet");
        assert_eq!(
            r.policy.unwrap()["entries"]["e"]["subjects"],
            json!({"x:keep": {"type": "t"}})
        );
    }
}
