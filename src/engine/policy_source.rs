//! Which policy a newly created thing gets, in Ditto's order: `_copyPolicyFrom` (a policy ID or
//! `{{ ref:things/<id>/policyId }}`, copied as the creator may READ it) -> inline `_policy` ->
//! an existing `policyId` -> the default policy for the creator's first subject.

use super::{default_policy, errors, Ctx};
use crate::error::DittoError;
use crate::model::parse_policy_id;
use crate::policy::{self, Enforcer, POLICY_ALLOWLIST, READ};
use crate::protocol::ThingCommand;
use serde_json::{Map, Value};

/// The decision: the thing's policy ID and, if a policy is to be created with it, its JSON.
pub struct Chosen {
    /// the thing's `policyId`
    pub policy_id: String,
    /// the policy to create together with the thing (validated)
    pub new_policy: Option<Value>,
    /// the policy in force for the thing (new or existing)
    pub policy: Value,
}

/// `{{ ref:things/<thingId>/policyId }}` -> the thing ID.
fn reference(s: &str) -> Option<Result<String, DittoError>> {
    let inner = s.trim().strip_prefix("{{")?.strip_suffix("}}")?.trim();
    let rest = inner.strip_prefix("ref:")?;
    let Some(rest) = rest.strip_prefix("things/") else {
        let kind = rest.split('/').next().unwrap_or_default();
        return Some(Err(DittoError::new(
            400,
            "placeholder:placeholder.reference.notsupported",
            format!("The placeholder references a not supported entity: '{kind}'."),
        )
        .describe("Please reference one of the supported entities: 'THINGS'.")));
    };
    let (id, field) = rest.split_once('/')?;
    if field != "policyId" {
        return Some(Err(unknown_field(field, id)));
    }
    Some(Ok(id.to_owned()))
}

fn unknown_field(field: &str, id: &str) -> DittoError {
    DittoError::new(
        400,
        "placeholder:placeholder.reference.unknownfield",
        format!("The referenced entity did not contain the expected field: '/{field}'."),
    )
    .describe(format!(
        "Please verify that you specified a valid field of the referenced entity with id: {id}."
    ))
}

/// Resolves `_copyPolicyFrom` to the source policy JSON as the requester may read it.
fn copy_source(spec: &str, ctx: &Ctx) -> Result<Value, DittoError> {
    let subjects = ctx.access.as_ref().map(|a| a.subjects);
    let source_id = match reference(spec) {
        Some(r) => {
            let tid = r?;
            let thing = ctx.lookup.thing(&tid)?.filter(|t| !t.deleted);
            let pid = thing
                .as_ref()
                .and_then(|t| t.thing.get("policyId"))
                .and_then(Value::as_str)
                .map(str::to_owned);
            // As Ditto resolves it: a RetrieveThing with `fields=policyId` (404 without any READ
            // on the thing), whose READ-filtered answer must contain the field.
            let policy = match pid.as_deref() {
                Some(p) => ctx.lookup.policy(p)?,
                None => None,
            };
            let enforcer = policy.map(|pol| {
                let ns = tid.split_once(':').map(|x| x.0);
                Enforcer::from_policy(&pol, ctx.now, ns)
            });
            let visible = match (subjects, &thing, &enforcer) {
                (_, None, _) | (Some(_), Some(_), None) => false,
                (None, Some(_), _) => true,
                (Some(s), Some(_), Some(e)) => e.has_partial(s, "thing", &[], READ),
            };
            if !visible {
                return Err(errors::not_found(&tid, &crate::protocol::ThingPath::Root));
            }
            let field = ["policyId".to_owned()];
            let readable = match (subjects, &enforcer) {
                (Some(s), Some(e)) => e.has_unrestricted(s, "thing", &field, READ),
                _ => true,
            };
            pid.filter(|_| readable)
                .ok_or_else(|| unknown_field("policyId", &tid))?
        }
        None => {
            parse_policy_id(spec)?;
            spec.to_owned()
        }
    };
    let src = ctx
        .lookup
        .policy(&source_id)?
        .ok_or_else(|| policy::errors::policy_not_found(&source_id))?;
    match subjects {
        None => Ok(src),
        Some(s) => Enforcer::from_policy(&src, ctx.now, None)
            .root_view(s, "policy", &src, &POLICY_ALLOWLIST)
            .ok_or_else(|| policy::errors::policy_not_found(&source_id)),
    }
}

/// 400 `things:policy.invalid`: nobody would keep WRITE on `policy:/`.
fn policy_invalid(id: &str) -> DittoError {
    DittoError::new(
        400,
        "things:policy.invalid",
        format!("The Policy specified for the Thing with ID '{id}' is invalid."),
    )
    .describe("It must contain at least one Subject with the following permission(s): '[WRITE]'!")
}

/// Chooses (and validates) the policy of a thing created by `cmd` from payload `m`.
pub fn choose(
    cmd: &ThingCommand,
    m: &Map<String, Value>,
    inline: Option<Value>,
    copy_from: Option<&Value>,
    ctx: &Ctx,
) -> Result<Chosen, DittoError> {
    let id = cmd.thing_id.to_string();
    let explicit = m.get("policyId").and_then(Value::as_str).map(str::to_owned);
    if let Some(pid) = explicit.as_deref() {
        super::validate::value_for(
            &crate::protocol::ThingPath::PolicyId,
            &Value::String(pid.to_owned()),
        )?;
    }
    let (pid, candidate) = if let Some(spec) = copy_from {
        let spec = spec
            .as_str()
            .ok_or_else(|| errors::wrong_type("/_copyPolicyFrom", "String"))?;
        (
            explicit.unwrap_or_else(|| id.clone()),
            copy_source(spec, ctx)?,
        )
    } else if let Some(p) = inline {
        if !p.is_object() {
            return Err(errors::wrong_type("/_policy", "JsonObject"));
        }
        (id.clone(), p)
    } else if let Some(pid) = explicit {
        let policy = ctx
            .lookup
            .policy(&pid)?
            .ok_or_else(|| errors::policy_missing(&id, &pid))?;
        return Ok(Chosen {
            policy_id: pid,
            new_policy: None,
            policy,
        });
    } else {
        (id.clone(), default_policy(&id, ctx.subject))
    };
    if ctx.lookup.policy(&pid)?.is_some() {
        return Err(errors::implicit_policy_failed(&id, &pid));
    }
    let mut candidate = candidate;
    if let Value::Object(p) = &mut candidate {
        p.insert("policyId".into(), Value::String(pid.clone()));
    }
    let policy = policy::model::normalize_policy(&pid, &candidate, ctx.now)?;
    if !policy::model::keeps_policy_writer(&policy) {
        return Err(policy_invalid(&id));
    }
    Ok(Chosen {
        policy_id: pid,
        new_policy: Some(policy.clone()),
        policy,
    })
}
