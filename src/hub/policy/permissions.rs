//! `checkPermissions` in the hub (Ditto's `CheckPermissionsActor`): each check's policy is found
//! (a policy ID as given; a thing's current `policyId`, read without authorization as Ditto's
//! `SudoRetrieveThing`), then the checks of one policy are evaluated against that policy with its
//! imports resolved, one policy at a time. An entity that does not exist answers `false`.

use super::{Hub, Requester};
use crate::error::DittoError;
use crate::policy::check::{self, PermissionCheck};
use crate::policy::imports::enforcer_of;
use crate::protocol::{Envelope, Headers, Topic};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

impl Hub {
    /// The verdict of every check, `{name: bool}` in request order.
    fn check_permissions(
        &self,
        who: &Requester,
        checks: &[PermissionCheck],
    ) -> Result<Value, DittoError> {
        let mut by_policy: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, c) in checks.iter().enumerate() {
            let pid = if c.policy_resource() {
                Some(c.entity_id.clone())
            } else {
                self.load_thing(&c.entity_id)?
                    .filter(|s| !s.deleted)
                    .and_then(|s| s.thing.get("policyId")?.as_str().map(str::to_owned))
            };
            if let Some(pid) = pid {
                by_policy.entry(pid).or_default().push(i);
            }
        }
        let now = self.now();
        let load = |id: &str| self.load_policy(id);
        let mut verdicts = vec![false; checks.len()];
        for (pid, idx) in by_policy {
            let Some(policy) = self.load_policy(&pid)? else {
                continue;
            };
            let e = enforcer_of(&policy, now, &load)?;
            for i in idx {
                verdicts[i] = checks[i].allowed(&e, &who.subjects);
            }
        }
        Ok(check::answer(checks, &verdicts))
    }

    /// The Ditto Protocol `_/_/policies/commands/checkPermissions` (value: the checks; a value
    /// that is no object counts as no checks, as Ditto's mapping strategy does): the answer on
    /// the same topic with status 200 and the verdicts as value.
    pub(in crate::hub) fn check_permissions_envelope(
        &self,
        who: &Requester,
        env: Envelope,
        cid: &str,
    ) -> Result<Envelope, DittoError> {
        let value = env
            .value
            .filter(Value::is_object)
            .unwrap_or(Value::Object(Map::new()));
        let checks = check::parse(&value)?;
        let topic = Topic::check_permissions();
        let mut headers = Headers::new();
        headers.insert("correlation-id", cid);
        let mut out = Envelope::new(topic, headers, "/");
        out.status = Some(200);
        out.value = Some(self.check_permissions(who, &checks)?);
        Ok(out)
    }
}
