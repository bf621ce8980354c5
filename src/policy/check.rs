//! Ditto's `CheckPermissions` as plain data: the request (`{name: {resource, entityId,
//! hasPermissions}}`, optionally wrapped in `permissionChecks`) parsed and validated with Ditto's
//! errors, one check evaluated against an enforcer (unrestricted, every permission), and the
//! answer `{name: true|false}` in request order. Looking up the policies is the hub's job.

use super::enforcer::Enforcer;
use super::model::{parse_resource_key, perm_bit};
use crate::error::DittoError;
use crate::model::{parse_policy_id, parse_thing_id};
use serde_json::{Map, Value};

/// The resource types a check may name (Ditto's `CheckPermissionsActor`).
const SUPPORTED: [&str; 3] = ["policy", "thing", "message"];

/// One named check.
#[derive(Debug, Clone, PartialEq)]
pub struct PermissionCheck {
    /// the caller's name for the check (the key of the answer)
    pub name: String,
    /// `thing`, `message` or `policy`
    pub rtype: String,
    /// the resource path below the type
    pub path: Vec<String>,
    /// a thing ID (`thing:`, `message:`) or a policy ID (`policy:`)
    pub entity_id: String,
    /// permission bits; 0 stands for a name that is no permission (never granted)
    pub perms: Vec<u8>,
}

impl PermissionCheck {
    /// True if the entity is a policy (else a thing whose policy decides).
    pub fn policy_resource(&self) -> bool {
        self.rtype == "policy"
    }

    /// True if `subjects` have every permission, unrestricted, on the resource (Ditto's
    /// `PolicyCheckPermissionsStrategy`: `hasUnrestrictedPermissions`).
    pub fn allowed(&self, e: &Enforcer, subjects: &[String]) -> bool {
        self.perms
            .iter()
            .all(|p| *p != 0 && e.has_unrestricted(subjects, &self.rtype, &self.path, *p))
    }
}

fn string_field<'a>(m: &'a Map<String, Value>, key: &str) -> Result<&'a str, DittoError> {
    match m.get(key) {
        None => Err(DittoError::field_missing(&format!("/{key}"))),
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(DittoError::json_format(format!(
            "Value <{other}> for </{key}> is not of type <String>!"
        ))),
    }
}

fn one(name: &str, m: &Map<String, Value>) -> Result<PermissionCheck, DittoError> {
    let resource = string_field(m, "resource")?;
    let entity_id = string_field(m, "entityId")?.to_owned();
    let perms = match m.get("hasPermissions") {
        None => return Err(DittoError::field_missing("/hasPermissions")),
        Some(Value::Array(a)) if !a.is_empty() => a
            .iter()
            .map(|p| p.as_str().map(perm_bit))
            .collect::<Option<Vec<u8>>>()
            .ok_or_else(|| {
                DittoError::json_format(format!(
                    "The permissions of check '{name}' must be strings."
                ))
            })?,
        Some(_) => {
            return Err(DittoError::json_format(format!(
                "Value for </hasPermissions> of check '{name}' is not a non-empty JSON array."
            )))
        }
    };
    let (rtype, path) = parse_resource_key(resource).ok_or_else(|| {
        DittoError::new(
            400,
            "json.invalid",
            "The provided string was not in the expected format 'type:path'",
        )
    })?;
    if !SUPPORTED.contains(&rtype.as_str()) {
        return Err(DittoError::new(400, "json.invalid", format!("Unsupported resource type '{rtype}' in check '{name}'. Supported resource types are: [policy, thing, message]")));
    }
    if rtype == "policy" {
        parse_policy_id(&entity_id)?;
    } else {
        parse_thing_id(&entity_id)?;
    }
    Ok(PermissionCheck {
        name: name.to_owned(),
        rtype,
        path,
        entity_id,
        perms,
    })
}

/// Parses a request: the checks object itself, or one wrapped in `permissionChecks`; members
/// that are no objects are skipped (as `CheckPermissions.fromJson` does).
pub fn parse(v: &Value) -> Result<Vec<PermissionCheck>, DittoError> {
    let outer = request_object(v)?;
    let checks = match outer.get("permissionChecks") {
        Some(Value::Object(inner)) => inner,
        _ => outer,
    };
    checks
        .iter()
        .filter_map(|(name, c)| c.as_object().map(|m| one(name, m)))
        .collect()
}

/// The request as a JSON object (400 `json.format.invalid` if it is none).
pub fn request_object(v: &Value) -> Result<&Map<String, Value>, DittoError> {
    v.as_object().ok_or_else(|| {
        DittoError::json_format("The checkPermissions request must be a JSON object.")
    })
}

/// The answer: every check's name with its verdict, in request order.
pub fn answer(checks: &[PermissionCheck], verdicts: &[bool]) -> Value {
    Value::Object(
        checks
            .iter()
            .zip(verdicts)
            .map(|(c, ok)| (c.name.clone(), Value::Bool(*ok)))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_as_ditto_and_evaluates_unrestricted() {
        let req = json!({
            "read": {"resource": "thing:/features/lamp", "entityId": "a:t", "hasPermissions": ["READ"]},
            "skipped": 42,
            "admin": {"resource": "policy:/", "entityId": "a:p", "hasPermissions": ["READ", "WRITE"]}});
        let checks = parse(&req).unwrap();
        assert_eq!(checks.len(), 2);
        assert_eq!(checks[0].path, ["features", "lamp"]);
        assert!(checks[1].policy_resource());
        assert_eq!(
            parse(&json!({"permissionChecks": req.clone()})).unwrap(),
            checks
        );
        let policy = json!({"entries": {"e": {"subjects": {"s:1": {"type": "t"}}, "resources": {
            "thing:/": {"grant": ["READ"], "revoke": []},
            "thing:/features/lamp/secret": {"grant": [], "revoke": ["READ"]},
            "policy:/": {"grant": ["READ"], "revoke": []}}}}});
        let e = Enforcer::from_policy(&policy, 0, None);
        let s = ["s:1".to_owned()];
        assert!(
            !checks[0].allowed(&e, &s),
            "READ revoked below: not unrestricted"
        );
        assert!(!checks[1].allowed(&e, &s), "READ without WRITE");
        let attr = parse(
            &json!({"x": {"resource": "thing:/attributes", "entityId": "a:t",
                                        "hasPermissions": ["READ"]}}),
        )
        .unwrap();
        assert!(attr[0].allowed(&e, &s));
        assert!(!attr[0].allowed(&e, &["s:2".to_owned()]));
        let fly = parse(&json!({"x": {"resource": "thing:/", "entityId": "a:t",
                                       "hasPermissions": ["FLY"]}}))
        .unwrap();
        assert!(!fly[0].allowed(&e, &s), "unknown permission: never granted");
        assert_eq!(answer(&attr, &[true]), json!({"x": true}));
    }

    #[test]
    fn errors_follow_ditto() {
        let err = |c: Value| parse(&json!({"c": c})).unwrap_err();
        let e = err(json!({"entityId": "a:t", "hasPermissions": ["READ"]}));
        assert_eq!((e.status, e.error.as_ref()), (400, "json.field.missing"));
        let e = err(json!({"resource": "thing", "entityId": "a:t", "hasPermissions": ["READ"]}));
        assert_eq!(e.error, "json.invalid");
        let e =
            err(json!({"resource": "connection:/", "entityId": "a:t", "hasPermissions": ["READ"]}));
        assert!(e
            .message
            .starts_with("Unsupported resource type 'connection' in check 'c'"));
        let e =
            err(json!({"resource": "thing:/", "entityId": "no-colon", "hasPermissions": ["READ"]}));
        assert_eq!(e.error, "things:id.invalid");
        let e = err(
            json!({"resource": "policy:/", "entityId": "no-colon", "hasPermissions": ["READ"]}),
        );
        assert_eq!(e.error, "policies:id.invalid");
        let e = err(json!({"resource": "thing:/", "entityId": "a:t", "hasPermissions": []}));
        assert_eq!(e.status, 400);
        assert_eq!(parse(&json!([])).unwrap_err().status, 400);
    }
}
