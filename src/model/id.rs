//! Namespaced entity IDs (`namespace:name`, Ditto's `RegexPatterns.ID_REGEX`, max 256 chars) for
//! things and policies, plus the other identifier rules of the thing model: feature IDs and
//! thing / feature definition identifiers (`ns:name:version` or an http(s) URL). The regular
//! expressions of Ditto are implemented by hand; errors carry Ditto's codes and texts.

use crate::error::DittoError;
use crate::model::keys::validate_key;
use serde::de::{self, Deserializer, Visitor};
use serde::{Serialize, Serializer};
use std::fmt;

/// Maximum length of a namespaced ID (Ditto `AbstractPatternValidator.MAX_LENGTH`), counted in
/// UTF-16 code units like Java's `String.length()`.
pub const MAX_ID_LENGTH: usize = 256;

const ID_HREF: &str = "https://www.eclipse.dev/ditto/basic-namespaces-and-names.html#namespaced-id";
const ID_DESCRIPTION: &str =
    "It must conform to the namespaced entity ID notation (see Ditto documentation)";
const NAMESPACED_ID_DESCRIPTION: &str =
    "It must conform to the namespaced entity ID notation (see Ditto \
     documentation) with a maximum name length of 256 characters.";
const DEFINITION_DESCRIPTION: &str = "An identifier string is expected to have the structure \
     'namespace:name:version' where each segment must contain at least one char of [_a-zA-Z0-9\\-.] \
     OR it must be a valid HTTP(s) URL.";
const FEATURE_DEFINITION_DESCRIPTION: &str =
    "An Identifier string is expected to have the structure \
     'namespace:name:version'. Each segment must contain at least one char of [_a-zA-Z0-9\\-.]";

/// A namespaced entity ID (`namespace:name`); the namespace may be empty. The fields are public
/// for cheap reads; build values with the parse functions or [`EntityId::from_parts`] so that
/// they stay valid.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntityId {
    /// Namespace (possibly empty).
    pub namespace: String,
    /// Name (never empty).
    pub name: String,
}

impl EntityId {
    /// Builds a thing ID from its parts (e.g. the two topic segments); invalid -> 400
    /// `things:id.invalid` naming `ns:name`.
    pub fn from_parts(namespace: &str, name: &str) -> Result<EntityId, DittoError> {
        Self::checked_parts(namespace, name)
            .ok_or_else(|| thing_id_invalid(&format!("{namespace}:{name}")))
    }

    /// Like [`EntityId::from_parts`] but for a policy ID (400 `policies:id.invalid`).
    pub fn policy_from_parts(namespace: &str, name: &str) -> Result<EntityId, DittoError> {
        Self::checked_parts(namespace, name)
            .ok_or_else(|| policy_id_invalid(&format!("{namespace}:{name}")))
    }

    fn checked_parts(namespace: &str, name: &str) -> Option<EntityId> {
        let len = utf16_len(namespace) + 1 + utf16_len(name);
        (len <= MAX_ID_LENGTH && is_valid_namespace(namespace) && is_valid_name(name)).then(|| {
            EntityId {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
            }
        })
    }

    /// The namespace (possibly empty).
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The name (never empty).
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// The text `namespace:name` of an ID, on the stack when it fits (every valid ASCII ID does):
/// the key of a thing's lock, cache entry and store record, made for every twin command.
// a value of one call on the stack (never stored): boxing the large variant is the heap
// allocation it avoids
#[allow(clippy::large_enum_variant)]
pub enum IdText {
    /// up to [`MAX_ID_LENGTH`] bytes
    Stack(heapless::String<MAX_ID_LENGTH>),
    /// longer (multi-byte characters)
    Heap(String),
}

impl IdText {
    /// `namespace:name`.
    pub fn of(namespace: &str, name: &str) -> IdText {
        let mut stack = heapless::String::new();
        match stack
            .push_str(namespace)
            .and_then(|()| stack.push(':'))
            .and_then(|()| stack.push_str(name))
        {
            Ok(()) => IdText::Stack(stack),
            Err(_) => IdText::Heap(format!("{namespace}:{name}")),
        }
    }
}

impl std::ops::Deref for IdText {
    type Target = str;
    fn deref(&self) -> &str {
        match self {
            IdText::Stack(s) => s,
            IdText::Heap(s) => s,
        }
    }
}

impl fmt::Display for IdText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self)
    }
}

impl EntityId {
    /// `to_string`'s text without an allocation (see [`IdText`]).
    pub fn text(&self) -> IdText {
        IdText::of(&self.namespace, &self.name)
    }
}

impl fmt::Display for EntityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.namespace, self.name)
    }
}

impl Serialize for EntityId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for EntityId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IdVisitor;
        impl Visitor<'_> for IdVisitor {
            type Value = EntityId;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a namespaced entity ID string `namespace:name`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<EntityId, E> {
                parse_namespaced_id(v).map_err(|e| E::custom(e.message))
            }
        }
        deserializer.deserialize_str(IdVisitor)
    }
}

/// Parses a thing ID; invalid -> 400 `things:id.invalid` (`Thing ID '<id>' is not valid!`).
pub fn parse_thing_id(s: &str) -> Result<EntityId, DittoError> {
    split_id(s).ok_or_else(|| thing_id_invalid(s))
}

/// Parses a policy ID; invalid -> 400 `policies:id.invalid` (`Policy ID '<id>' is not valid!`).
pub fn parse_policy_id(s: &str) -> Result<EntityId, DittoError> {
    split_id(s).ok_or_else(|| policy_id_invalid(s))
}

/// Parses an ID of no particular entity type; invalid -> 400 `namespacedentity.id.invalid`.
pub fn parse_namespaced_id(s: &str) -> Result<EntityId, DittoError> {
    split_id(s).ok_or_else(|| {
        DittoError::new(
            400,
            "namespacedentity.id.invalid",
            format!("Namespaced entity ID '{s}' is not valid!"),
        )
        .describe(NAMESPACED_ID_DESCRIPTION)
        .href(ID_HREF)
    })
}

fn thing_id_invalid(id: &str) -> DittoError {
    DittoError::new(
        400,
        "things:id.invalid",
        format!("Thing ID '{id}' is not valid!"),
    )
    .describe(ID_DESCRIPTION)
    .href(ID_HREF)
}

fn policy_id_invalid(id: &str) -> DittoError {
    DittoError::new(
        400,
        "policies:id.invalid",
        format!("Policy ID '{id}' is not valid!"),
    )
    .describe(ID_DESCRIPTION)
    .href(ID_HREF)
}

/// Length as Java counts it (UTF-16 code units).
fn utf16_len(s: &str) -> usize {
    s.chars().map(char::len_utf16).sum()
}

/// `namespace ":" name`, split at the first colon (a namespace never contains one).
fn split_id(s: &str) -> Option<EntityId> {
    if utf16_len(s) > MAX_ID_LENGTH {
        return None;
    }
    let (namespace, name) = s.split_once(':')?;
    EntityId::checked_parts(namespace, name)
}

/// Namespace regex `(|[a-zA-Z]\w*(?:[.-][a-zA-Z]\w*)*)` with `\w` = `[a-zA-Z0-9_]`.
pub fn is_valid_namespace(ns: &str) -> bool {
    let mut segment_start = true;
    for c in ns.chars() {
        if segment_start {
            if !c.is_ascii_alphabetic() {
                return false;
            }
            segment_start = false;
        } else if c == '.' || c == '-' {
            segment_start = true;
        } else if !(c.is_ascii_alphanumeric() || c == '_') {
            return false;
        }
    }
    // empty is valid; a trailing separator is not
    ns.is_empty() || !segment_start
}

/// `true` for the chars Ditto's `RegexPatterns.CONTROL_CHARS` excludes: U+0000..U+001F and
/// U+007F..U+00FF (this includes Latin-1 letters such as `ä`, exactly as in Ditto).
pub(crate) fn is_control_char(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{1F}' | '\u{7F}'..='\u{FF}')
}

/// Name regex `[^\x00-\x1F\x7F-\xFF/]+`.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c == '/' || is_control_char(c))
}

/// Feature IDs: a valid JSON key (non-empty, no `/`, no control chars, max 256) and not the
/// wildcard `*`; invalid -> 400 `json.key.invalid` (Ditto's `ImmutableFeature.of`).
pub fn validate_feature_id(s: &str) -> Result<(), DittoError> {
    validate_key(s)?;
    if s == "*" {
        return Err(DittoError::new(
            400,
            "json.key.invalid",
            format!("The JSON key <{s}> is invalid!"),
        )
        .describe("The Feature ID must not be the wildcard operator '*'."));
    }
    Ok(())
}

/// Thing definition identifier: `ns:name:version` (each `[_a-zA-Z0-9\-.]+`) or an http(s)
/// URL with a host; invalid -> 400 `things:definition.identifier.invalid`.
pub fn validate_definition(s: &str) -> Result<(), DittoError> {
    if is_definition_identifier(s) {
        return Ok(());
    }
    Err(DittoError::new(
        400,
        "things:definition.identifier.invalid",
        format!("Definition identifier <{s}> is invalid!"),
    )
    .describe(DEFINITION_DESCRIPTION))
}

/// One feature definition identifier (same syntax as [`validate_definition`]); invalid -> 400
/// `things:feature.definition.identifier.invalid` with the text of Ditto's error documentation.
pub fn validate_feature_definition(s: &str) -> Result<(), DittoError> {
    if is_definition_identifier(s) {
        return Ok(());
    }
    Err(DittoError::new(
        400,
        "things:feature.definition.identifier.invalid",
        format!("Feature Definition Identifier <{s}> is invalid!"),
    )
    .describe(FEATURE_DEFINITION_DESCRIPTION))
}

fn is_definition_identifier(s: &str) -> bool {
    is_ns_name_version(s) || is_http_url(s)
}

fn is_definition_element(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fn is_ns_name_version(s: &str) -> bool {
    let mut parts = s.split(':');
    let mut count = 0;
    for p in parts.by_ref() {
        count += 1;
        if count > 3 || !is_definition_element(p) {
            return false;
        }
    }
    count == 3
}

/// `http(s)://host[:port][/...]` (scheme case-insensitive), as `java.net.URL` accepts it with
/// Ditto's extra check "protocol starts with http and host is not empty". Whitespace and
/// control characters are rejected (stricter than Java's lenient URL parser).
fn is_http_url(s: &str) -> bool {
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    let Some((scheme, rest)) = s.split_once("://") else {
        return false;
    };
    if !(scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")) {
        return false;
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    if let Some(v6) = host_port.strip_prefix('[') {
        let Some((addr, after)) = v6.split_once(']') else {
            return false;
        };
        return !addr.is_empty()
            && (after.is_empty() || after.strip_prefix(':').is_some_and(is_port));
    }
    let host = match host_port.rsplit_once(':') {
        Some((h, port)) if is_port(port) => h,
        Some(_) => return false,
        None => host_port,
    };
    !host.is_empty()
}

fn is_port(p: &str) -> bool {
    p.len() <= 5 && p.chars().all(|c| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_thing_ids() {
        for id in [
            "org.eclipse.ditto:fancy-thing",
            "foo:bar",
            "org.eclipse.ditto_42:smart-coffeee",
            "com.some-domain.ditto-rocks:foobar",
            "org.eclipse:admin policy",
            ":no-namespace",
            "a:b:c",
            "ns:foo%2Fbar",
            "ns:foo+bar%20",
            "ns:\u{100}\u{1F600}",
            "a_.b:x",
            "A9_-b:x",
        ] {
            assert!(parse_thing_id(id).is_ok(), "{id}");
        }
        let id = parse_thing_id("a:b:c").unwrap();
        assert_eq!((id.namespace(), id.name()), ("a", "b:c"));
        let id = parse_thing_id(":x").unwrap();
        assert_eq!(id.namespace(), "");
        assert_eq!(id.to_string(), ":x");
    }

    #[test]
    fn invalid_thing_ids() {
        for id in [
            "",
            ":",
            "nocolon",
            "ns:",
            "ns:a/b",
            "1ns:x",
            ".ns:x",
            "ns.:x",
            "ns..a:x",
            "ns-.a:x",
            "n s:x",
            "ns:a\u{7}",
            "ns:a\u{7F}",
            "ns:\u{E4}",
            "ns:\u{FF}",
            "ns_a.1b:x",
            "ns/a:x",
            "ns:x\n",
        ] {
            assert!(parse_thing_id(id).is_err(), "{id:?}");
        }
    }

    #[test]
    fn thing_id_error_texts() {
        let e = parse_thing_id("invalid id").unwrap_err();
        assert_eq!(e.status, 400);
        assert_eq!(e.error, "things:id.invalid");
        assert_eq!(e.message, "Thing ID 'invalid id' is not valid!");
        assert_eq!(e.description.as_deref(), Some(ID_DESCRIPTION));
        assert_eq!(e.href.as_deref(), Some(ID_HREF));
        let e = parse_policy_id("invalid id").unwrap_err();
        assert_eq!(e.error, "policies:id.invalid");
        assert_eq!(e.message, "Policy ID 'invalid id' is not valid!");
        assert_eq!(e.href.as_deref(), Some(ID_HREF));
        let e = parse_namespaced_id("x").unwrap_err();
        assert_eq!(e.error, "namespacedentity.id.invalid");
        assert_eq!(e.message, "Namespaced entity ID 'x' is not valid!");
    }

    #[test]
    fn max_length_is_256_utf16_units() {
        let ok = format!("ns:{}", "a".repeat(253));
        assert_eq!(ok.len(), 256);
        assert!(parse_thing_id(&ok).is_ok());
        assert!(parse_thing_id(&format!("ns:{}", "a".repeat(254))).is_err());
        // an emoji counts twice (surrogate pair), as in Java
        assert!(parse_thing_id(&format!("ns:{}\u{1F600}", "a".repeat(252))).is_err());
        assert!(parse_thing_id(&format!("ns:{}\u{1F600}", "a".repeat(251))).is_ok());
        assert!(EntityId::from_parts("ns", &"a".repeat(253)).is_ok());
        assert!(EntityId::from_parts("ns", &"a".repeat(254)).is_err());
    }

    #[test]
    fn from_parts_validates_and_displays() {
        let id = EntityId::from_parts("org.eclipse.ditto", "foo bar").unwrap();
        assert_eq!(id.to_string(), "org.eclipse.ditto:foo bar");
        assert_eq!(parse_thing_id("org.eclipse.ditto:foo bar").unwrap(), id);
        let e = EntityId::from_parts("1x", "y").unwrap_err();
        assert_eq!(e.message, "Thing ID '1x:y' is not valid!");
        let e = EntityId::policy_from_parts("x", "").unwrap_err();
        assert_eq!(e.error, "policies:id.invalid");
        assert!(EntityId::from_parts("x", "a/b").is_err());
    }

    #[test]
    fn namespace_and_name_helpers() {
        assert!(is_valid_namespace(""));
        assert!(is_valid_namespace("a"));
        assert!(is_valid_namespace("a.b-c_d9"));
        assert!(!is_valid_namespace("a."));
        assert!(!is_valid_namespace("-a"));
        assert!(!is_valid_namespace("a.9"));
        assert!(!is_valid_namespace("ä"));
        assert!(is_valid_name("x y%"));
        assert!(!is_valid_name(""));
        assert!(!is_valid_name("a/b"));
    }

    #[test]
    fn serde_roundtrip() {
        let id = parse_thing_id("ns:n").unwrap();
        let s = serde_json::to_string(&id).unwrap();
        assert_eq!(s, "\"ns:n\"");
        let back: EntityId = serde_json::from_str(&s).unwrap();
        assert_eq!(back, id);
        assert!(serde_json::from_str::<EntityId>("\"bad\"").is_err());
        assert!(serde_json::from_str::<EntityId>("5").is_err());
    }

    #[test]
    fn feature_ids() {
        assert!(validate_feature_id("lamp").is_ok());
        assert!(validate_feature_id("with space").is_ok());
        let e = validate_feature_id("a/b").unwrap_err();
        assert_eq!(e.error, "json.key.invalid");
        assert_eq!(e.message, "The JSON key <a/b> is invalid!");
        assert!(validate_feature_id("").is_err());
        assert!(validate_feature_id("a\u{0}").is_err());
        assert!(validate_feature_id(&"f".repeat(257)).is_err());
        let e = validate_feature_id("*").unwrap_err();
        assert_eq!(e.status, 400);
        assert_eq!(e.error, "json.key.invalid");
    }

    #[test]
    fn definitions() {
        for d in [
            "org.eclipse.ditto:HeatingDevice:2.1.0",
            "a:b:c",
            "_-.:x:1",
            "https://example.com/model.tm.jsonld",
            "http://example.com",
            "HTTPS://user@host:8080/x?y#z",
            "http://[::1]:80/x",
            "http://host?q",
        ] {
            assert!(validate_definition(d).is_ok(), "{d}");
            assert!(validate_feature_definition(d).is_ok(), "{d}");
        }
        for d in [
            "",
            "foo:bar",
            "a:b:c:d",
            "a::c",
            "a:b:",
            "a b:c:d",
            "ä:b:c",
            "ftp://host/x",
            "http://",
            "http:///x",
            "http:host",
            "https://host:port/",
            "http://a b/",
            "http://[]/",
            "http://[::1",
            "httpx://host",
            "mailto:x",
        ] {
            assert!(validate_definition(d).is_err(), "{d}");
        }
        let e = validate_definition("foo:bar").unwrap_err();
        assert_eq!(e.error, "things:definition.identifier.invalid");
        assert_eq!(e.message, "Definition identifier <foo:bar> is invalid!");
        assert_eq!(e.description.as_deref(), Some(DEFINITION_DESCRIPTION));
        let e = validate_feature_definition("foo:bar").unwrap_err();
        assert_eq!(e.status, 400);
        assert_eq!(e.error, "things:feature.definition.identifier.invalid");
        assert_eq!(
            e.message,
            "Feature Definition Identifier <foo:bar> is invalid!"
        );
        assert_eq!(
            e.description.as_deref(),
            Some(
                "An Identifier string is expected to have the structure 'namespace:name:version'. \
                 Each segment must contain at least one char of [_a-zA-Z0-9\\-.]"
            )
        );
    }

    #[test]
    fn random_inputs_never_panic() {
        let alphabet: Vec<char> = "a:/.-_ 9[]@?#\u{e4}\u{1F600}\u{7f}\u{0}http"
            .chars()
            .collect();
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        for _ in 0..20_000 {
            let mut s = String::new();
            for _ in 0..(state % 16) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                s.push(alphabet[(state % alphabet.len() as u64) as usize]);
            }
            state = state.wrapping_add(0x9E37_79B9);
            let _ = parse_thing_id(&s);
            let _ = parse_policy_id(&s);
            let _ = validate_definition(&s);
            let _ = validate_feature_id(&s);
            if let Ok(id) = parse_thing_id(&s) {
                assert_eq!(id.to_string(), s);
            }
        }
    }

    /// `text` is `to_string`, on the stack up to `MAX_ID_LENGTH` bytes and on the heap beyond
    /// (valid IDs of multi-byte characters are longer in bytes than in UTF-16 units).
    #[test]
    fn id_text_is_to_string() {
        let mut rng = fastrand::Rng::with_seed(6);
        for _ in 0..2_000 {
            let part = |rng: &mut fastrand::Rng, n: usize| -> String {
                (0..rng.usize(1..n))
                    .map(|_| ['a', 'é', '€', '-', '.'][rng.usize(0..5)])
                    .collect()
            };
            let (ns, name) = (part(&mut rng, 150), part(&mut rng, 150));
            let id = EntityId {
                namespace: ns.clone(),
                name,
            };
            let text = id.text();
            assert_eq!(&*text, id.to_string());
            assert_eq!(text.to_string(), id.to_string());
            assert_eq!(
                matches!(text, IdText::Stack(_)),
                id.to_string().len() <= MAX_ID_LENGTH
            );
        }
    }
}
