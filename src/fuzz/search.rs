//! Harness of the search index's READ summaries (`search::access`): for any policy JSON the
//! summary agrees with the policy's trie enforcer (`All` only with unrestricted READ on
//! `thing:/`, `Nothing` only without any READ in the thing) for subject sets drawn from the
//! policy, and its stored form reads back; any bytes as a stored summary are refused or decoded.

use super::{Checked, Verdict};
use crate::policy::model::rules;
use crate::policy::{Enforcer, READ};
use crate::search::access::{Summary, Verdict as Read};
use serde_json::json;

/// The summary of a policy (the input, or `{"entries": input}`) against its enforcer.
pub fn read_summary(b: &[u8]) -> Checked {
    let _ = Summary::from_bytes(b);
    let Some(v) = std::str::from_utf8(b)
        .ok()
        .and_then(crate::bounds::parse_value)
    else {
        return Ok(Verdict::Rejected);
    };
    let policy = if v.get("entries").is_some() {
        v
    } else {
        json!({ "entries": v })
    };
    let summary = Summary::of(&policy);
    let back = Summary::from_bytes(&summary.to_bytes());
    Verdict::ensure(
        back.as_ref() == Some(&summary) || summary_too_long(&summary),
        || "summary does not read back".into(),
    )?;
    let mut subjects: Vec<String> = rules(&policy)
        .into_iter()
        .flat_map(|r| r.subjects.into_iter().map(|s| s.id))
        .take(6)
        .collect();
    subjects.dedup();
    let mut sets: Vec<Vec<String>> = subjects.iter().map(|s| vec![s.clone()]).collect();
    for w in subjects.windows(2) {
        sets.push(w.to_vec());
    }
    sets.push(subjects.clone());
    sets.push(vec!["fuzz:stranger".to_owned()]);
    // expiry and namespaces make the summary fine-grained; the enforcer is the one at time 0
    let e = Enforcer::from_policy(&policy, 0, Some("ns"));
    for s in &sets {
        let all = e.has_unrestricted(s, "thing", &[], READ);
        let any = e.has_partial(s, "thing", &[], READ);
        let ok = match summary.verdict(s) {
            Read::All => all,
            Read::Nothing => !any,
            Read::Ask => summary.fine || !all,
        };
        Verdict::ensure(ok, || {
            format!(
                "{:?} for {s:?}: unrestricted {all}, partial {any}",
                summary.verdict(s)
            )
        })?;
    }
    Ok(Verdict::Accepted)
}

/// A subject ID longer than the stored form holds makes the summary fine-grained on disk.
fn summary_too_long(s: &Summary) -> bool {
    let long = |l: &[String]| l.iter().any(|x| x.len() > usize::from(u16::MAX));
    long(&s.root) || long(&s.revoked) || long(&s.below)
}
