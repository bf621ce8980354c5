//! `Accept: application/td+json` on a thing or feature retrieve: a WoT Thing Description is
//! generated from the Thing Model its `definition` links to. edgetwin fetches no Thing Models,
//! so it answers what Ditto 3.x (`DefaultWotThingDescriptionGenerator`) answers when it cannot
//! build one: no or no URL definition 404 `wot:definition.invalid`, else 421 `wot:tm.notfound`.

use super::state::ThingState;
use crate::error::DittoError;
use crate::model::pointer;
use crate::protocol::{Headers, ThingPath};
use serde_json::Value;

/// Ditto's media type of a Thing Description.
pub const TD_JSON: &str = "application/td+json";

/// True if the command asks for a Thing Description of `path` (Ditto's `RetrieveThing` and
/// `RetrieveFeature` compare the `accept` header with `application/td+json` exactly).
pub fn requested(headers: &Headers, path: &ThingPath) -> bool {
    matches!(path, ThingPath::Root | ThingPath::Feature(_))
        && headers.get_str("accept").as_deref() == Some(TD_JSON)
}

/// True for a definition Java's `URL` parses (the protocols Ditto's JVM knows).
fn is_url(d: &str) -> bool {
    d.split_once("://").is_some_and(|(scheme, rest)| {
        ["http", "https", "ftp", "file", "jar"].contains(&scheme.to_ascii_lowercase().as_str())
            && !rest.is_empty()
    })
}

/// The error a Thing Description request gets (the thing and feature exist and are readable).
pub fn thing_description(state: &ThingState, path: &ThingPath) -> DittoError {
    let definition = match path {
        ThingPath::Feature(f) => pointer::get(
            &state.thing,
            &["features".into(), f.clone(), "definition".into()],
        )
        .and_then(|d| d.get(0)),
        _ => state.thing.get("definition"),
    };
    match definition.and_then(Value::as_str) {
        Some(url) if is_url(url) => DittoError::new(
            421,
            "wot:tm.notfound",
            format!("The WoT ThingModel at URI '{url}' could not be accessed."),
        )
        .describe("Please ensure that the linked ThingModel is publicly available in order to be downloaded."),
        d => {
            let message = match d {
                Some(d) => format!("The definition identifier '{d}' is not a valid URL."),
                None => "The definition identifier is missing from the Thing or Feature.".into(),
            };
            DittoError::new(404, "wot:definition.invalid", message).describe(
                "Please add a URL pointing to a WoT (Web of Things) ThingModel from the Thing or Feature in order to make use of the WoT integration.",
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn state(thing: Value) -> ThingState {
        ThingState {
            thing,
            revision: 1,
            created: 0,
            modified: 0,
            metadata: None,
            deleted: false,
        }
    }

    #[test]
    fn answers_as_ditto_does_without_a_thing_model() {
        let s =
            state(json!({"thingId": "a:b", "features": {"f": {"definition": ["a:f:1"]}, "g": {}}}));
        let e = thing_description(&s, &ThingPath::Root);
        assert_eq!((e.status, &*e.error), (404, "wot:definition.invalid"));
        assert_eq!(
            e.message,
            "The definition identifier is missing from the Thing or Feature."
        );
        let e = thing_description(&s, &ThingPath::Feature("f".into()));
        assert_eq!(
            e.message,
            "The definition identifier 'a:f:1' is not a valid URL."
        );
        assert_eq!(
            thing_description(&s, &ThingPath::Feature("g".into())).status,
            404
        );
        let s = state(json!({"definition": "https://models.example/lamp-1.0.0.tm.jsonld"}));
        let e = thing_description(&s, &ThingPath::Root);
        assert_eq!((e.status, &*e.error), (421, "wot:tm.notfound"));
        assert!(e
            .message
            .contains("https://models.example/lamp-1.0.0.tm.jsonld"));
    }

    #[test]
    fn only_an_exact_td_accept_on_thing_or_feature_asks() {
        let mut h = Headers::new();
        assert!(!requested(&h, &ThingPath::Root));
        h.insert("accept", "application/td+json");
        assert!(requested(&h, &ThingPath::Root));
        assert!(requested(&h, &ThingPath::Feature("f".into())));
        assert!(!requested(&h, &ThingPath::Attributes));
        h.insert("accept", "application/json");
        assert!(!requested(&h, &ThingPath::Root));
    }
}
