//! Property names of RQL: which roots exist (thing fields, `attributes/..`, `features/..`,
//! `_metadata/..`, placeholders `topic:`, `resource:`, `entity:`, `time:`) and which paths each
//! use (comparison, exists/empty, sort) accepts, following Ditto's ThingsFieldExpressionFactory.

use super::time::TimePlaceholder;
use super::Property;

/// Where a property appears; Ditto accepts slightly different paths for each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PropertyUse {
    /// `eq`, `in`, `like`, ...: needs a value path (`features/f` alone is rejected).
    Compare,
    /// `exists` / `empty`: also whole features and their `properties` objects.
    Exists,
    /// Sort keys: thing fields, attributes, feature (desired) properties; no placeholders.
    Sort,
}

/// Thing fields that are valid only on their own (no sub-path).
const SIMPLE_FIELDS: [&str; 8] = [
    "thingId",
    "policyId",
    "definition",
    "_revision",
    "_created",
    "_modified",
    "_namespace",
    "namespace",
];

const TOPIC_NAMES: [&str; 9] = [
    "full",
    "namespace",
    "entityName",
    "group",
    "channel",
    "criterion",
    "action",
    "subject",
    "action-subject",
];
const RESOURCE_NAMES: [&str; 2] = ["type", "path"];
const ENTITY_NAMES: [&str; 3] = ["id", "namespace", "name"];

/// Builds and validates a property from its unescaped text; the error says why it is invalid.
pub(crate) fn build(text: &str, usage: PropertyUse) -> Result<Property, String> {
    let raw = text.strip_prefix('/').unwrap_or(text);
    if raw.is_empty() {
        return Err("expected a property".to_owned());
    }
    let unknown = || format!("unknown property name '{raw}'");
    let root = raw.split('/').next().unwrap_or(raw);
    if let Some((prefix, name)) = root.split_once(':') {
        if root.len() != raw.len() || !placeholder_supported(prefix, name) {
            return Err(unknown());
        }
        if usage == PropertyUse::Sort {
            return Err(format!("placeholder '{raw}' is not allowed here"));
        }
        return Ok(Property {
            raw: raw.to_owned(),
            segments: vec![raw.to_owned()],
            placeholder: Some((prefix.to_owned(), name.to_owned())),
        });
    }
    let n = raw.split('/').count();
    if n > crate::bounds::MAX_POINTER_SEGMENTS {
        let max = crate::bounds::MAX_POINTER_SEGMENTS;
        return Err(format!("property with {n} segments (at most {max})"));
    }
    let segments: Vec<String> = raw.split('/').map(str::to_owned).collect();
    if segments.iter().any(String::is_empty) {
        return Err(format!("empty segment in property '{raw}'"));
    }
    if !path_supported(&segments, usage) {
        return Err(unknown());
    }
    Ok(Property {
        raw: raw.to_owned(),
        segments,
        placeholder: None,
    })
}

fn placeholder_supported(prefix: &str, name: &str) -> bool {
    match prefix {
        "topic" => TOPIC_NAMES.contains(&name),
        "resource" => RESOURCE_NAMES.contains(&name),
        "entity" => ENTITY_NAMES.contains(&name),
        "time" => TimePlaceholder::parse(name).is_ok(),
        _ => false,
    }
}

fn path_supported(segments: &[String], usage: PropertyUse) -> bool {
    let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
    match seg.as_slice() {
        [field] if SIMPLE_FIELDS.contains(field) => true,
        ["_metadata", ..] => true,
        ["attributes", _, ..] => true,
        ["features", fid, rest @ ..] => {
            if usage == PropertyUse::Sort && *fid == "*" {
                return false;
            }
            matches!(
                (rest, usage),
                (["properties" | "desiredProperties", _, ..], _)
                    | (["definition"], PropertyUse::Compare | PropertyUse::Exists)
                    | (
                        [] | ["properties" | "desiredProperties"],
                        PropertyUse::Exists
                    )
            )
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str, usage: PropertyUse) -> Property {
        build(text, usage).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn thing_fields_and_pointers() {
        for f in SIMPLE_FIELDS {
            assert_eq!(ok(f, PropertyUse::Compare).segments, [f]);
            assert_eq!(ok(&format!("/{f}"), PropertyUse::Sort).raw, f);
        }
        let p = ok("/attributes/location/room", PropertyUse::Compare);
        assert_eq!(p.raw, "attributes/location/room");
        assert_eq!(p.segments, ["attributes", "location", "room"]);
        assert_eq!(p.placeholder, None);
        ok("_metadata", PropertyUse::Exists);
        ok("_metadata/attributes/x/issuedAt", PropertyUse::Compare);
        ok("attributes/with space/ünï", PropertyUse::Compare);
        ok("attributes/a:b", PropertyUse::Compare);
    }

    #[test]
    fn feature_paths_per_use() {
        use PropertyUse::*;
        let table: [(&str, [bool; 3]); 9] = [
            ("features/f", [false, true, false]),
            ("features/*", [false, true, false]),
            ("features/f/properties", [false, true, false]),
            ("features/f/desiredProperties", [false, true, false]),
            ("features/f/properties/a/b", [true, true, true]),
            ("features/*/properties/a", [true, true, false]),
            ("features/f/desiredProperties/a", [true, true, true]),
            ("features/f/definition", [true, true, false]),
            ("features/f/other", [false, false, false]),
        ];
        for (path, expected) in table {
            for (usage, want) in [Compare, Exists, Sort].into_iter().zip(expected) {
                assert_eq!(build(path, usage).is_ok(), want, "{path} {usage:?}");
            }
        }
    }

    #[test]
    fn placeholders() {
        let p = ok("topic:action", PropertyUse::Compare);
        assert_eq!(p.placeholder, Some(("topic".into(), "action".into())));
        assert_eq!(p.segments, ["topic:action"]);
        for name in TOPIC_NAMES {
            ok(&format!("topic:{name}"), PropertyUse::Exists);
        }
        ok("resource:path", PropertyUse::Compare);
        ok("resource:type", PropertyUse::Compare);
        ok("entity:id", PropertyUse::Compare);
        let p = ok("time:now-1d", PropertyUse::Compare);
        assert_eq!(p.placeholder, Some(("time".into(), "now-1d".into())));
        assert!(build("topic:action", PropertyUse::Sort).is_err());
        for bad in [
            "topic:foo",
            "header:x",
            "topic:action/x",
            "time:then",
            ":x",
            "topic:",
        ] {
            assert!(build(bad, PropertyUse::Compare).is_err(), "{bad}");
        }
    }

    #[test]
    fn invalid_paths() {
        for bad in [
            "",
            "/",
            "//attributes/a",
            "foo",
            "attributes",
            "attributes/",
            "attributes//x",
            "attributes/x/",
            "thingId/x",
            "features",
            "Features/f/properties/x",
            "_policy",
            "definition/x",
            "features/f/definition/x",
            "features//properties/x",
        ] {
            assert!(build(bad, PropertyUse::Exists).is_err(), "{bad}");
        }
        assert_eq!(
            build("foo", PropertyUse::Compare).unwrap_err(),
            "unknown property name 'foo'"
        );
        assert_eq!(
            build("attributes//x", PropertyUse::Compare).unwrap_err(),
            "empty segment in property 'attributes//x'"
        );
    }
}
