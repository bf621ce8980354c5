//! The policies error catalogue: Ditto's codes, messages and descriptions for every resource a
//! policy command can address (`policies:*.notfound`, `*.notmodifiable`, validation errors).

use super::path::PolicyPath;
use crate::error::DittoError;

const DESC_POLICY: &str =
    "Check if the ID of your requested Policy was correct and you have sufficient permissions.";
const DESC_ENTRY: &str = "Check if the ID of the Policy and the Label of your requested PolicyEntry was correct and you have sufficient permissions.";
const DESC_SUBJECTS_NF: &str =
    "Check if the ID of the Policy and the Label of the PolicyEntry was correct and you have sufficient permissions.";
const DESC_SUBJECTS_NM: &str = "Check if the ID of the Policy and the PolicyEntry's Label of your requested Subjects was correct and you have sufficient permissions.";
const DESC_SUBJECT: &str = "Check if the ID of the Policy, the Label of the PolicyEntry and ID of your requested Subject was correct and you have sufficient permissions.";
const DESC_RESOURCES_NM: &str = "Check if the ID of the Policy and the PolicyEntry's Label of your requested Resources was correct and you have sufficient permissions.";
const DESC_RESOURCE: &str = "Check if the ID of the Policy, the Label of the PolicyEntry and the path of your requested Resource was correct and you have sufficient permissions.";
const DESC_LOCKOUT: &str =
    "There must always be at least one PolicyEntry with 'WRITE' permissions on resource 'policy:/'.";

/// The path part of a resource key (`thing:/a` -> `/a`), as Ditto's messages show it.
fn resource_path(key: &str) -> &str {
    key.split_once(':').map(|(_, p)| p).unwrap_or(key)
}

/// 404 `policies:policy.notfound`.
pub fn policy_not_found(id: &str) -> DittoError {
    DittoError::new(404, "policies:policy.notfound", format!("The Policy with ID '{id}' could not be found or requester had insufficient permissions to access it."))
        .describe(DESC_POLICY)
}

/// 404 for the addressed resource of a policy (missing or not readable).
pub fn not_found(id: &str, path: &PolicyPath) -> DittoError {
    let nf = "could not be found or requester had insufficient permissions to access it.";
    let (code, message, desc): (&str, String, &str) = match path {
        PolicyPath::Root => return policy_not_found(id),
        PolicyPath::Entries => return policy_not_found(id),
        PolicyPath::Entry(l) | PolicyPath::EntryField(l, _) => ("policies:entry.notfound", format!("The PolicyEntry with Label '{l}' on the Policy with ID '{id}' {nf}"), DESC_ENTRY),
        PolicyPath::Subjects(l) => ("policies:subjects.notfound", format!("The Subjects of the PolicyEntry with Label '{l}' on the Policy with ID '{id}' {nf}"), DESC_SUBJECTS_NF),
        PolicyPath::Subject(l, s) => ("policies:subject.notfound", format!("The Subject with ID '{s}' of the PolicyEntry with Label '{l}' on the Policy with ID '{id}' {nf}"), DESC_SUBJECT),
        PolicyPath::Resources(l) => ("policies:resources.notfound", format!("The Resources of the PolicyEntry with Label '{l}' on the Policy with ID '{id}' {nf}"), DESC_SUBJECTS_NF),
        PolicyPath::Resource(l, k) => ("policies:resource.notfound", format!("The Resource '{}' of the PolicyEntry with Label '{l}' on the Policy with ID '{id}' {nf}", resource_path(k)), DESC_RESOURCE),
        PolicyPath::Imports => ("policies:imports.notfound", format!("The imports of the Policy with ID '{id}' {nf}"), "Check if the ID of the Policy was correct and you have sufficient permissions."),
        PolicyPath::Import(i) | PolicyPath::ImportField(i, _) => ("policies:import.notfound", format!("The Policy import '{i}' of Policy '{id}' {nf}"), "Check if the ID of the Policy and the imported Policy was correct and you have sufficient permissions."),
    };
    DittoError::new(404, code, message).describe(desc)
}

/// 403 for the addressed resource of a policy (readable but not writable).
pub fn not_modifiable(id: &str, path: &PolicyPath) -> DittoError {
    let nm = "could not be modified as the requester had insufficient permissions.";
    let (code, message, desc): (&str, String, &str) = match path {
        PolicyPath::Root | PolicyPath::Entries => ("policies:policy.notmodifiable", format!("The Policy with ID '{id}' {nm}"), DESC_POLICY),
        PolicyPath::Entry(l) | PolicyPath::EntryField(l, _) => ("policies:entry.notmodifiable", format!("The PolicyEntry with Label '{l}' on the Policy with ID '{id}' {nm}"), DESC_ENTRY),
        PolicyPath::Subjects(l) => ("policies:subjects.notmodifiable", format!("The Subjects of the PolicyEntry with Label '{l}' on the Policy with ID '{id}' {nm}"), DESC_SUBJECTS_NM),
        PolicyPath::Subject(l, s) => ("policies:subject.notmodifiable", format!("The Subject with ID '{s}' of the PolicyEntry with Label '{l}' on the Policy with ID '{id}' {nm}"), DESC_SUBJECT),
        PolicyPath::Resources(l) => ("policies:resources.notmodifiable", format!("The Resources of the PolicyEntry with Label '{l}' on the Policy with ID '{id}' {nm}"), DESC_RESOURCES_NM),
        PolicyPath::Resource(l, k) => ("policies:resource.notmodifiable", format!("The Resource '{}' of the PolicyEntry with Label '{l}' on the Policy with ID '{id}' {nm}", resource_path(k)), DESC_RESOURCE),
        PolicyPath::Imports => ("policies:imports.notmodifiable", format!("The Imports of the Policy with ID '{id}' {nm}"), DESC_POLICY),
        PolicyPath::Import(i) | PolicyPath::ImportField(i, _) => ("policies:import.notmodifiable", format!("The Import of the Policy with ID '{i}' in Policy with ID '{id}' {nm}"), "Check if the ID of your requested Policy and imported Policy was correct and you have sufficient permissions."),
    };
    DittoError::new(403, code, message).describe(desc)
}

/// 409 `policies:policy.conflict`.
pub fn conflict(id: &str) -> DittoError {
    DittoError::new(
        409,
        "policies:policy.conflict",
        format!("The Policy with ID '{id}' already exists"),
    )
    .describe("Choose another Policy ID")
}

/// 403 `policies:policy.notcreatable`.
pub fn not_creatable(id: &str) -> DittoError {
    DittoError::new(403, "policies:policy.notcreatable", format!("The Policy with ID '{id}' could not be created as the requester had insufficient permissions."))
        .describe("Check if you have sufficient permissions in the new policy to create.")
}

/// 403 `policies:policy.modificationinvalid`.
pub fn modification_invalid(id: &str) -> DittoError {
    DittoError::new(403, "policies:policy.modificationinvalid", format!("The Policy with ID '{id}' could not be modified as the resulting Policy would be invalid."))
        .describe(DESC_LOCKOUT)
}

/// 403 `policies:entry.modificationinvalid`.
pub fn entry_modification_invalid(id: &str, label: &str) -> DittoError {
    DittoError::new(403, "policies:entry.modificationinvalid", format!("The PolicyEntry with Label '{label}' on the Policy with ID '{id}' could not be modified as the resulting Policy would be invalid."))
        .describe(DESC_LOCKOUT)
}

/// 400 `policies:entry.invalid`.
pub fn entry_invalid() -> DittoError {
    DittoError::new(
        400,
        "policies:entry.invalid",
        "The Policy Entry is invalid.",
    )
    .describe("Policy entry does not contain any known permission like 'READ' or 'WRITE'")
}

/// 400 `policies:entry.invalid` with another reason.
pub fn entry_invalid_because(message: impl Into<String>) -> DittoError {
    DittoError::new(400, "policies:entry.invalid", message).describe(
        "Check the structure of the policy entry (subjects, resources with grant/revoke).",
    )
}

/// 400 `policies:label.invalid`.
pub fn label_invalid(label: &str) -> DittoError {
    DittoError::new(
        400,
        "policies:label.invalid",
        format!("Label '{label}' is not valid!"),
    )
    .describe("It must not start with the blocklisted 'imported' or 'nsimported' prefix.")
}

/// 400 `policies:subjectid.invalid`.
pub fn subject_id_invalid(id: &str) -> DittoError {
    DittoError::new(
        400,
        "policies:subjectid.invalid",
        format!("Subject ID '{id}' is not valid!"),
    )
    .describe(
        "It must contain an issuer as prefix separated by a colon ':' from the actual subject",
    )
}

/// 400 `policies:subjectexpiry.invalid`.
pub fn expiry_invalid(expiry: &str, past: bool) -> DittoError {
    DittoError::new(
        400,
        "policies:subjectexpiry.invalid",
        format!("Subject expiry timestamp '{expiry}' is not valid."),
    )
    .describe(if past {
        "It must not be in the past, please adjust to a timestamp in the future."
    } else {
        "It must be provided as ISO-8601 formatted char sequence."
    })
}

/// 400 `policies:subjectannouncement.invalid`.
pub fn announcement_invalid(value: &str) -> DittoError {
    DittoError::new(
        400,
        "policies:subjectannouncement.invalid",
        format!("The 'beforeExpiry' duration '{value}' is not valid."),
    )
    .describe(
        "It must be a positive integer followed by 'h' (hours), 'm' (minutes) or 's' (seconds).",
    )
}

/// 400 `policies:import.invalid` (a policy importing itself).
pub fn import_invalid() -> DittoError {
    DittoError::new(
        400,
        "policies:import.invalid",
        "The Policy Import is invalid.",
    )
    .describe("The Policy Import references the policy where it is defined.")
}

/// 400 `policies:imports.toolarge`.
pub fn imports_too_large(n: usize, max: usize) -> DittoError {
    DittoError::new(
        400,
        "policies:imports.toolarge",
        format!(
            "The number of '{n}' policy imports exceeds the allowed maximum number of '{max}'."
        ),
    )
    .describe("Please reduce the number of imports you're trying to add to the policy.")
}

/// 413 `policies:policy.toolarge`.
pub fn too_large(actual: usize, max: usize) -> DittoError {
    DittoError::new(
        413,
        "policies:policy.toolarge",
        format!(
            "The size of '{}' kB exceeds the maximal allowed Policy size of '{}' kB.",
            actual as f64 / 1024.0,
            max as f64 / 1024.0
        ),
    )
    .describe("Reduce the Policy size in the bounds of the specified limit")
}

/// 400 `policies:id.notsettable`.
pub fn id_not_settable() -> DittoError {
    DittoError::new(
        400,
        "policies:id.notsettable",
        "The Policy ID in the request body is not equal to the Policy ID in the request URL.",
    )
    .describe(
        "Either delete the Policy ID from the request body or use the same Policy ID as in the request URL.",
    )
}

/// 503 `policies:policy.unavailable`.
pub fn unavailable(id: &str) -> DittoError {
    DittoError::new(
        503,
        "policies:policy.unavailable",
        format!("The Policy with ID '{id}' is not available, please try again later."),
    )
    .describe("The requested Policy is temporarily not available, please retry the performed action in order to improve resiliency.")
}

/// 400 `json.format.invalid` for a policy value of the wrong shape.
pub fn wrong_type(at: &str, expected: &str) -> DittoError {
    DittoError::new(
        400,
        "json.format.invalid",
        format!("The value at '{at}' is not of the expected type <{expected}>."),
    )
    .describe(
        "Check that the JSON value you sent has the type the addressed policy resource requires.",
    )
}

/// Turns a things precondition error (`things:precondition.*`) into the policies variant.
pub fn as_policy_precondition(mut e: DittoError) -> DittoError {
    if let Some(rest) = e.error.strip_prefix("things:") {
        e.error = format!("policies:{rest}").into();
        e.message = e.message.replace("Thing resource", "Policy resource");
        e.description = e
            .description
            .map(|d| d.replace("Thing resource", "Policy resource").into());
    }
    e
}
