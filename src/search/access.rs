//! Who may READ a thing, kept in the search index so a count decides visibility without
//! loading the thing's policy (pure): per policy, a summary of its READ grants on `thing:/`
//! (`a | policyId 00 01 p`), per thing its policy ID (`a | thingId 00 01 t`, written with the
//! thing's other entries; no entry when it is the thing's own ID, Ditto's default, which saves
//! an index entry per twin). Ditto keeps the granted and revoked subjects per path in each thing's
//! search document (`thingsearch` `EnforcedThingMapper`, `EvaluatedPolicy`); one summary per
//! policy suffices here: a count asks "READ on the whole thing, nothing, or in between?".
//!
//! A policy whose enforcer depends on more than its own entries (imports, expiring subjects,
//! namespace-restricted entries) is marked fine-grained: its candidates take the full path.

use super::keys;
use crate::policy::model::{rules, READ};
use crate::store::{Op, Tree};
use serde_json::Value;

/// Entry kind (first key byte) of the access part of the index.
pub const ACCESS: u8 = b'a';
/// Last key byte: a policy's summary.
pub const POLICY: u8 = b'p';
/// Last key byte: a thing's policy ID.
pub const THING: u8 = b't';

/// `a | id 00 01`: the prefix of both access entries of an ID (a thing whose policy has its
/// own ID, Ditto's default, has both next to each other).
pub fn prefix(id: &str) -> Vec<u8> {
    keys::path_prefix(ACCESS, id)
}

/// The key of an access entry.
pub fn key(id: &str, kind: u8) -> Vec<u8> {
    let mut k = prefix(id);
    k.push(kind);
    k
}

/// The stored value of a thing's access entry: its policy ID; `None` (no entry) when that is
/// the thing's own ID (Ditto's default: most twins). An empty policy ID is stored as it is (no
/// policy has it: a count asks the enforcer).
pub fn thing_value(thing: &str, policy: &str) -> Option<Vec<u8>> {
    (policy != thing).then(|| policy.as_bytes().to_vec())
}

/// The policy ID of a thing whose access entry holds `value` (see [`thing_value`]).
pub fn policy_of<'a>(thing: &'a [u8], value: Option<&'a [u8]>) -> &'a [u8] {
    value.unwrap_or(thing)
}

/// What a requester may READ of a thing under a policy, as far as the summary knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// READ on `thing:/` and not revoked anywhere below: the READ view is the whole thing
    All,
    /// no READ anywhere in the thing: not visible
    Nothing,
    /// something in between, or the summary cannot tell: ask the policy's enforcer
    Ask,
}

/// The READ grants of one policy on `thing:` resources.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Summary {
    /// the policy's enforcer depends on more than its entries: always `Verdict::Ask`
    pub fine: bool,
    /// subjects granted READ at `thing:/`
    pub root: Vec<String>,
    /// subjects with a READ revoke at `thing:/` or below
    pub revoked: Vec<String>,
    /// subjects granted READ only below `thing:/`
    pub below: Vec<String>,
}

fn push_unique(list: &mut Vec<String>, s: &str) {
    if !list.iter().any(|x| x == s) {
        list.push(s.to_owned());
    }
}

impl Summary {
    /// The summary of a policy's JSON (`policyId`, `entries`, `imports`).
    pub fn of(policy: &Value) -> Summary {
        let imports = policy
            .get("imports")
            .is_some_and(|i| !i.as_object().is_some_and(|m| m.is_empty()));
        let rules = rules(policy);
        let mut s = Summary {
            fine: imports,
            ..Summary::default()
        };
        for r in &rules {
            if !r.namespaces.is_empty() || r.subjects.iter().any(|x| x.expiry.is_some()) {
                s.fine = true;
            }
            for res in r.resources.iter().filter(|x| x.rtype == "thing") {
                for sub in &r.subjects {
                    if res.revoke & READ != 0 {
                        push_unique(&mut s.revoked, &sub.id);
                    }
                    if res.grant & READ != 0 {
                        let list = if res.path.is_empty() {
                            &mut s.root
                        } else {
                            &mut s.below
                        };
                        push_unique(list, &sub.id);
                    }
                }
            }
        }
        if s.fine {
            return Summary {
                fine: true,
                ..Summary::default()
            };
        }
        let root = std::mem::take(&mut s.root);
        s.below.retain(|b| !root.contains(b));
        s.root = root;
        s
    }

    /// The verdict for a requester's subjects. Follows the trie enforcer (`policy::enforcer`,
    /// Ditto's `TrieBasedPolicyEnforcer`): `has_unrestricted(thing:/, READ)` holds iff a
    /// subject has READ granted at `thing:/` and none has a READ revoke at or below it (grants
    /// at the root weigh 0, revokes at or below weigh >= 0); `has_partial` needs a READ grant
    /// somewhere.
    pub fn verdict(&self, subjects: &[String]) -> Verdict {
        if self.fine {
            return Verdict::Ask;
        }
        let any = |l: &[String]| subjects.iter().any(|s| l.contains(s));
        decide(any(&self.root), any(&self.revoked), any(&self.below))
    }

    /// Stored form: `F` (fine-grained) or `P` then per subject its list tag (`g` root grant,
    /// `r` revoke, `b` grant below), its length (u16 BE) and bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        if self.fine {
            return vec![b'F'];
        }
        let mut out = vec![b'P'];
        for (tag, list) in [
            (b'g', &self.root),
            (b'r', &self.revoked),
            (b'b', &self.below),
        ] {
            for s in list {
                let Ok(n) = u16::try_from(s.len()) else {
                    // longer than any valid subject ID: let the enforcer decide
                    return vec![b'F'];
                };
                out.push(tag);
                out.extend_from_slice(&n.to_be_bytes());
                out.extend_from_slice(s.as_bytes());
            }
        }
        out
    }

    /// Decodes the stored form; `None` if malformed (the caller asks the enforcer).
    pub fn from_bytes(b: &[u8]) -> Option<Summary> {
        let (first, mut rest) = b.split_first()?;
        let mut s = Summary::default();
        match first {
            b'F' => {
                s.fine = true;
                return rest.is_empty().then_some(s);
            }
            b'P' => {}
            _ => return None,
        }
        while let Some((&tag, r)) = rest.split_first() {
            let n = usize::from(u16::from_be_bytes([*r.first()?, *r.get(1)?]));
            let text = std::str::from_utf8(r.get(2..2 + n)?).ok()?.to_owned();
            rest = &r[2 + n..];
            match tag {
                b'g' => s.root.push(text),
                b'r' => s.revoked.push(text),
                b'b' => s.below.push(text),
                _ => return None,
            }
        }
        Some(s)
    }
}

/// The verdict from whether the requester is among the root grants, the revokes, the grants
/// below the root (see [`Summary::verdict`]).
fn decide(root: bool, revoked: bool, below: bool) -> Verdict {
    if root && !revoked {
        Verdict::All
    } else if !root && !below {
        Verdict::Nothing
    } else {
        Verdict::Ask
    }
}

/// `Summary::from_bytes(stored)` then `verdict(subjects)` (`Ask` if malformed), read in place:
/// no allocation per candidate of a count.
pub fn verdict_of(stored: &[u8], subjects: &[String]) -> Verdict {
    let Some((b'P', mut rest)) = stored.split_first().map(|(f, r)| (*f, r)) else {
        return Verdict::Ask;
    };
    let (mut root, mut revoked, mut below) = (false, false, false);
    while let Some((&tag, r)) = rest.split_first() {
        let (Some(&hi), Some(&lo)) = (r.first(), r.get(1)) else {
            return Verdict::Ask;
        };
        let n = usize::from(u16::from_be_bytes([hi, lo]));
        let Some(Ok(text)) = r.get(2..2 + n).map(std::str::from_utf8) else {
            return Verdict::Ask;
        };
        rest = &r[2 + n..];
        let hit = subjects.iter().any(|s| s == text);
        match tag {
            b'g' => root |= hit,
            b'r' => revoked |= hit,
            b'b' => below |= hit,
            _ => return Verdict::Ask,
        }
    }
    decide(root, revoked, below)
}

/// The index op of a policy change (`None` = absent/deleted); nothing if the summary stays.
pub fn policy_op(id: &str, before: Option<&Value>, after: Option<&Value>) -> Option<Op> {
    let (was, now) = (before.map(Summary::of), after.map(Summary::of));
    if was.is_some() && was == now {
        return None;
    }
    let k = key(id, POLICY);
    Some(match now {
        Some(s) => Op::put(Tree::Index, k, s.to_bytes()),
        None => Op::delete(Tree::Index, k),
    })
}

#[cfg(test)]
#[path = "access_tests.rs"]
mod tests;
