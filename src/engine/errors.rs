//! The things error catalogue: Ditto's codes, messages and descriptions for every resource a
//! thing command can address (`*.notfound`, `*.notmodifiable`, conflicts, preconditions, ...).

use crate::error::DittoError;
use crate::protocol::ThingPath;

const DESC_ID: &str =
    "Check if the ID of your requested Thing was correct and you have sufficient permissions.";
const DESC_ID_FEATURE: &str = "Check if the ID of the Thing and the Feature ID was correct and you have sufficient permissions.";

fn ptr(p: &[String]) -> String {
    p.iter().fold(String::new(), |mut s, seg| {
        s.push('/');
        s.push_str(seg);
        s
    })
}

/// 404 `*.notfound` for the addressed resource (also used when READ is missing).
pub fn not_found(id: &str, path: &ThingPath) -> DittoError {
    let (code, message, desc): (&str, String, &str) = match path {
        ThingPath::Root => ("things:thing.notfound", format!("The Thing with ID '{id}' could not be found or requester had insufficient permissions to access it."), DESC_ID),
        ThingPath::PolicyId => ("things:policyId.notfound", format!("The Policy ID of the Thing with ID <{id}> could not be found or requester had insufficient permissions to access it."), DESC_ID),
        ThingPath::Definition => ("things:definition.notfound", format!("The Definition of the Thing with ID <{id}> could not be found or the requester had insufficient permissions to access it."), "Check if the ID of the thing and the key of your requested definition was correct and you have sufficient permissions."),
        ThingPath::Attributes => ("things:attributes.notfound", format!("The Attributes of the Thing with ID '{id}' could not be found or the requester had insufficient permissions to access it."), "Check if the ID of the Thing was correct and you have sufficient permissions."),
        ThingPath::Attribute(p) => ("things:attribute.notfound", format!("The attribute with key '{}' on the thing with ID '{id}' could not be found or the requester had insufficient permissions to access it.", ptr(p)), "Check if the ID of the thing and the key of your requested attribute was correct and you have sufficient permissions."),
        ThingPath::Features => ("things:features.notfound", format!("The Features on the Thing with ID '{id}' do not exist or the requester had insufficient permissions to access it."), "Check if the ID of the Thing was correct and you have sufficient permissions."),
        ThingPath::Feature(f) => return feature_not_found(id, f),
        ThingPath::FeatureDefinition(f) => ("things:feature.definition.notfound", format!("The Definition of the Feature with ID '{f}' on the Thing with ID '{id}' does not exist or the requester had insufficient permissions to access it."), DESC_ID_FEATURE),
        ThingPath::Properties(f) => ("things:feature.properties.notfound", format!("The Properties of the Feature with ID '{f}' on the Thing with ID '{id}' do not exist or the requester had insufficient permissions to access it."), DESC_ID_FEATURE),
        ThingPath::Property(f, p) => ("things:feature.property.notfound", format!("The Property with JSON Pointer '{}' of the Feature with ID '{f}' on the Thing with ID '{id}' does not exist or the requester had insufficient permissions to access it.", ptr(p)), "Check if the ID of the Thing, the Feature ID and the key of your requested property was correct and you have sufficient permissions."),
        ThingPath::DesiredProperties(f) => ("things:feature.desiredProperties.notfound", format!("The desired properties of the Feature with ID '{f}' on the Thing with ID '{id}' do not exist or the requester had insufficient permissions to access it."), DESC_ID_FEATURE),
        ThingPath::DesiredProperty(f, p) => ("things:feature.desiredProperty.notfound", format!("The desired property with JSON Pointer '{}' of the Feature with ID '{f}' on the Thing with ID '{id}' does not exist or the requester had insufficient permissions to access it.", ptr(p)), "Check if the ID of the Thing, the Feature ID and the key of your requested desired property was correct and you have sufficient permissions."),
    };
    DittoError::new(404, code, message).describe(desc)
}

/// 404 `things:feature.notfound`.
pub fn feature_not_found(id: &str, f: &str) -> DittoError {
    DittoError::new(
        404,
        "things:feature.notfound",
        format!("The Feature with ID '{f}' on the Thing with ID '{id}' could not be found or the requester had insufficient permissions to access it."),
    )
    .describe("Check if the ID of the Thing and the ID of your requested Feature was correct and you have sufficient permissions.")
}

/// 403 `*.notmodifiable` for the addressed resource (READ but no WRITE). The texts are Ditto's
/// as rendered: its `MessageFormat` templates drop the quotes of `'WRITE'`, and the attribute
/// template starts with a space.
pub fn not_modifiable(id: &str, path: &ThingPath) -> DittoError {
    let (code, message, desc): (&str, String, &str) = match path {
        ThingPath::Root => ("things:thing.notmodifiable", format!("The Thing with ID '{id}' could not be modified as the requester had insufficient permissions (WRITE is required)."), DESC_ID),
        ThingPath::PolicyId => ("things:policyId.notmodifiable", format!("The Policy ID of the Thing with ID '{id}' could not be modified as the requester had insufficient permissions (WRITE is required)."), DESC_ID),
        ThingPath::Definition => ("things:definition.notmodifiable", format!("The Definition on the Thing with ID '{id}' could not be modified as the requester had insufficient permissions (WRITE is required)."), DESC_ID),
        ThingPath::Attributes => ("things:attributes.notmodifiable", format!("The Attributes on the Thing with ID '{id}' could not be modified as the requester had insufficient permissions (WRITE is required)."), DESC_ID),
        ThingPath::Attribute(p) => ("things:attribute.notmodifiable", format!(" The Attribute with name '{}' on the Thing with ID '{id}' could not be modified as the requester had insufficient permissions (WRITE is required).", ptr(p)), DESC_ID),
        ThingPath::Features => ("things:features.notmodifiable", format!("The Features on the Thing with ID '{id}' cannot be modified as requester had insufficient permissions to modify it (WRITE is required)."), "Check if the ID of the Thing was correct and you have sufficient permissions."),
        ThingPath::Feature(f) => ("things:feature.notmodifiable", format!("The Feature with ID '{f}' on the Thing with ID '{id}' could not be modified as the requester had insufficient permissions to modify it (WRITE is required)."), "Check if the ID of the Thing and the ID of your requested Feature was correct and you have sufficient permissions."),
        ThingPath::FeatureDefinition(f) => ("things:feature.definition.notmodifiable", format!("The Definition of the Feature with ID '{f}' on the Thing with ID '{id}' cannot be modified as the requester had insufficient permissions to modify it (WRITE is required)."), DESC_ID_FEATURE),
        ThingPath::Properties(f) => ("things:feature.properties.notmodifiable", format!("The Properties of the Feature with ID '{f}' on the Thing with ID '{id}' cannot be modified as the requester had insufficient permissions to modify it (WRITE is required)."), DESC_ID_FEATURE),
        ThingPath::Property(f, p) => ("things:feature.property.notmodifiable", format!("The Property with JSON Pointer '{}' of the Feature with ID '{f}' on the Thing with ID '{id}' could not be modified as the requester had insufficient permissions to modify it (WRITE is required).", ptr(p)), "Check if the ID of the Thing, the Feature ID and the key of your requested property was correct and you have sufficient permissions."),
        ThingPath::DesiredProperties(f) => ("things:feature.desiredProperties.notmodifiable", format!("The desired properties of the Feature with ID '{f}' on the Thing with ID '{id}' cannot be modified as the requester had insufficient permissions to modify it (WRITE is required)."), DESC_ID_FEATURE),
        ThingPath::DesiredProperty(f, p) => ("things:feature.desiredProperty.notmodifiable", format!("The desired property with JSON Pointer '{}' of the Feature with ID '{f}' on the Thing with ID '{id}' could not be modified as the requester had insufficient permissions to modify it (WRITE is required).", ptr(p)), "Check if the ID of the Thing, the Feature ID and the key of your requested desired property was correct and you have sufficient permissions."),
    };
    DittoError::new(403, code, message).describe(desc)
}

/// 403 `things:thing.notdeletable`.
pub fn not_deletable(id: &str) -> DittoError {
    DittoError::new(403, "things:thing.notdeletable", format!("The Thing with ID '{id}' could not be deleted as the requester had insufficient permissions ( WRITE on root resource is required)."))
        .describe(DESC_ID)
}

/// 409 `things:thing.conflict`.
pub fn conflict(id: &str) -> DittoError {
    DittoError::new(
        409,
        "things:thing.conflict",
        format!("The Thing with ID '{id}' already exists"),
    )
    .describe("Choose another Thing ID")
}

/// 400 `things:thing.notcreatable`: the referenced policy does not exist.
pub fn policy_missing(id: &str, policy_id: &str) -> DittoError {
    DittoError::new(400, "things:thing.notcreatable", format!("The Thing with ID '{id}' could not be created as the Policy with ID '{policy_id}' is not existing."))
        .describe("Check if the ID of the Policy you created the Thing with is correct and that the Policy is existing.")
}

/// 400 `things:thing.notcreatable`: the implicit policy already exists.
pub fn implicit_policy_failed(id: &str, policy_id: &str) -> DittoError {
    DittoError::new(400, "things:thing.notcreatable", format!("The Thing with ID '{id}' could not be created because creation of its implicit Policy ID '{policy_id}' failed."))
        .describe("If you want to use an existing Policy, specify it as 'policyId' in the Thing JSON you create.")
}

/// 405 `things:thing.notcreatable` for creation on the live channel.
pub fn live_not_creatable(id: &str) -> DittoError {
    DittoError::new(
        405,
        "things:thing.notcreatable",
        format!("The Thing with ID '{id}' could not be created via the live channel."),
    )
    .describe("Create Things on the twin channel.")
}

/// 400 `things:id.notsettable` (Ditto Protocol wording).
pub fn id_not_settable() -> DittoError {
    DittoError::new(400, "things:id.notsettable", "The Thing ID in the thing JSON is not equal to the Thing ID in the topic path.")
        .describe("Either delete the Thing ID from the thing JSON or use the same Thing ID as in the topic path.")
}

/// 400 `things:id.notdeletable`.
pub fn id_not_deletable() -> DittoError {
    DittoError::new(
        400,
        "things:id.notdeletable",
        "The Thing ID of a Thing cannot be deleted.",
    )
    .describe("Remove the Thing ID entry from the request body and retry the request.")
}

/// 400 `things:policyId.notdeletable`.
pub fn policy_id_not_deletable() -> DittoError {
    DittoError::new(
        400,
        "things:policyId.notdeletable",
        "The Policy ID of a Thing cannot be deleted.",
    )
    .describe("Remove Policy ID entry from the request body and retry the request.")
}

/// 400 `things:merge.invalid`.
pub fn merge_invalid() -> DittoError {
    DittoError::new(
        400,
        "things:merge.invalid",
        "The provided JSON Merge Patch is invalid, it must conform to RFC7396.",
    )
    .describe("The provided JSON Merge Patch cannot be applied at the given path.")
    .href("https://tools.ietf.org/html/rfc7396")
}

/// 412 `things:precondition.failed` for an ETag header.
pub fn precondition_failed(header: &str, value: &str, actual: &str) -> DittoError {
    DittoError::new(412, "things:precondition.failed", format!("The comparison of precondition header '{header}' for the requested Thing resource evaluated to false. Header value: '{value}', actual entity-tag: '{actual}'."))
        .describe("The comparison of the provided precondition header with the current ETag value of the requested Thing resource evaluated to false. Check the value of your conditional header value.")
}

/// 304 `things:precondition.notmodified`.
pub fn not_modified(expected: &str, actual: &str) -> DittoError {
    DittoError::new(304, "things:precondition.notmodified", format!("The comparison of precondition header 'if-none-match' for the requested Thing resource evaluated to false. Expected: '{expected}' not to match actual: '{actual}'."))
        .describe("The comparison of the provided precondition header 'if-none-match' with the current ETag value of the requested Thing resource evaluated to false. Check the value of your conditional header value.")
}

/// 412 `things:precondition.failed` for `if-equal: skip`.
pub fn equal_skipped() -> DittoError {
    DittoError::new(412, "things:precondition.failed", "The previous value was equal to the new value and the 'if-equal' header was set to 'skip'.")
        .describe("Your changes were not applied, which is probably the expected outcome.")
}

/// 412 `things:condition.failed`.
pub fn condition_failed() -> DittoError {
    DittoError::new(412, "things:condition.failed", "The specified condition does not match the state of the requested Thing.")
        .describe("The provided condition did not match the actual Thing state. Please check your provided condition.")
}

/// 415 `mediatype.unsupported` for merge without `application/merge-patch+json`.
pub fn merge_media_type(content_type: Option<&str>) -> DittoError {
    match content_type {
        Some(ct) if !ct.trim().is_empty() => DittoError::new(415, "mediatype.unsupported", format!("The Media-Type <{ct}> is not supported for this resource."))
            .describe("Allowed Media-Types are: <application/merge-patch+json>."),
        _ => DittoError::new(415, "mediatype.unsupported", "The Content-Type header was empty or not present. Please provide a valid Content-Type header.")
            .describe("Allowed Media-Types are: <application/merge-patch+json>."),
    }
}

/// 413 `things:thing.toolarge`.
pub fn too_large(actual: usize, max: usize) -> DittoError {
    DittoError::new(
        413,
        "things:thing.toolarge",
        format!(
            "The size of '{}' kB exceeds the maximal allowed Thing size of '{}' kB.",
            actual as f64 / 1024.0,
            max as f64 / 1024.0
        ),
    )
    .describe("Reduce the Thing size in the bounds of the specified limit")
}

/// 400 `things:feature.definition.empty`.
pub fn feature_definition_empty() -> DittoError {
    DittoError::new(400, "things:feature.definition.empty", "Feature Definition must not be empty!")
        .describe("A Feature Definition must contain at least one element. It can however also be set to null or deleted completely.")
}

/// 400 for a value of the wrong JSON type at a path (`json.invalid`-family, Ditto's wording).
pub fn wrong_type(path: &str, expected: &str) -> DittoError {
    DittoError::new(
        400,
        "json.format.invalid",
        format!("The value at '{path}' is not of the expected type <{expected}>."),
    )
    .describe("Check that the JSON value you sent has the type the addressed resource requires.")
}
