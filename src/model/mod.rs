//! Pure data helpers of the twin model (no IO): namespaced entity IDs, Ditto JSON pointers,
//! JSON key validation, RFC 7396 merge patches (with Ditto's regex-delete extension), field
//! selectors (`fields=`) and stable value hashes for ETags. Everything here follows Eclipse
//! Ditto 3.x semantics and reports failures as `DittoError`s with Ditto's codes and texts.

pub mod etag;
pub mod fields;
pub mod id;
pub mod keys;
pub mod merge;
pub mod pointer;
mod projection;

pub use etag::value_hash;
pub use fields::FieldSelector;
pub use id::{
    is_valid_name, is_valid_namespace, parse_namespaced_id, parse_policy_id, parse_thing_id,
    validate_definition, validate_feature_definition, validate_feature_id, EntityId,
};
pub use keys::{validate_key, validate_keys, validate_pointer_keys};
pub use merge::{merge_patch, minimize_patch, strip_nulls, validate_patch_regexes};
pub use pointer::{format_pointer, parse_pointer};
