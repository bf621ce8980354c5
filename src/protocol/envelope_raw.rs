//! The fields of an inbound frame as serde reads them (`Envelope::parse`): the topic borrowed
//! from the text, the headers read straight into `Headers` (no JSON map in between), the rest
//! as JSON values. Shapes are checked afterwards, so a wrong type is an answer, not a parse error.

use super::headers::{self, Headers, MAX_HEADERS};
use crate::error::DittoError;
use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::fmt;

#[derive(Deserialize)]
pub(super) struct Raw<'a> {
    #[serde(borrow)]
    pub topic: Option<Text<'a>>,
    pub headers: Option<HeadersField>,
    pub path: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub value: Option<Value>,
    pub status: Option<Value>,
    pub fields: Option<Value>,
    pub extra: Option<Value>,
    pub revision: Option<Value>,
    pub timestamp: Option<Value>,
    pub metadata: Option<Value>,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// A string field, borrowed when it has no escapes; `Other` for any other JSON value.
pub(super) enum Text<'a> {
    Str(Cow<'a, str>),
    Other,
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TextVisitor)
    }
}

struct TextVisitor;

/// The `visit_*` of a field that takes anything but one shape (the rest is read and dropped;
/// the frame's depth was bounded before parsing).
macro_rules! anything_else {
    ($other:expr) => {
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Self::Value, A::Error> {
            while s.next_element::<IgnoredAny>()?.is_some() {}
            Ok($other)
        }
    };
}

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Text<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(Text::Str(Cow::Borrowed(s)))
    }
    fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Text::Str(Cow::Owned(s.to_owned())))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
        while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Text::Other)
    }
    anything_else!(Text::Other);
}

/// The `headers` field: what `Headers::from_map` makes of the JSON object (`Err` 431 beyond
/// [`MAX_HEADERS`]), or `NotObject`.
pub(super) enum HeadersField {
    Read(Result<Headers, DittoError>),
    NotObject,
}

impl<'de> Deserialize<'de> for HeadersField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(HeadersVisitor)
    }
}

struct HeadersVisitor;

impl<'de> Visitor<'de> for HeadersVisitor {
    type Value = HeadersField;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(HeadersField::NotObject)
    }
    /// As `Headers::from_map` of the object serde_json would build: while every name differs
    /// (ignoring case) from those before it, the headers are that object's entries in order;
    /// at the first name that does not, the rest goes through the JSON object as before
    /// (later exact duplicates replace in place, then case-insensitive merging).
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
        let mut h = Headers::new();
        let mut slow: Option<Map<String, Value>> = None;
        let mut too_many = false;
        while let Some(Name(k)) = m.next_key::<Name>()? {
            if too_many {
                m.next_value::<IgnoredAny>()?;
                continue;
            }
            let v: Value = m.next_value()?;
            match &mut slow {
                Some(map) => {
                    map.insert(k.into_owned(), v);
                    too_many = map.len() > MAX_HEADERS;
                }
                None if h.get(&k).is_some() => {
                    let mut map: Map<String, Value> =
                        h.iter().map(|(k, v)| (k.to_owned(), v.clone())).collect();
                    map.insert(k.into_owned(), v);
                    too_many = map.len() > MAX_HEADERS;
                    slow = Some(map);
                }
                None => {
                    h.insert(k, v);
                    too_many = h.len() > MAX_HEADERS;
                }
            }
        }
        Ok(HeadersField::Read(match (too_many, slow) {
            (true, _) => Err(headers::too_large()),
            (false, Some(map)) => Headers::from_map(map),
            (false, None) => Ok(h),
        }))
    }
    anything_else!(HeadersField::NotObject);
}

/// A header name as read: a known name without a copy (`headers::header_name`).
struct Name(Cow<'static, str>);

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(NameVisitor)
    }
}

struct NameVisitor;

impl Visitor<'_> for NameVisitor {
    type Value = Name;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a header name")
    }
    fn visit_str<E>(self, s: &str) -> Result<Name, E> {
        Ok(Name(headers::header_name(s)))
    }
    fn visit_string<E>(self, s: String) -> Result<Name, E> {
        Ok(Name(headers::owned_name(s)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Envelope;

    /// The headers as before: serde_json's object of the `headers` text, then `from_map`.
    fn through_the_map(headers: &str) -> Result<Headers, DittoError> {
        match serde_json::from_str::<Value>(headers).unwrap() {
            Value::Null => Ok(Headers::new()),
            Value::Object(m) => Headers::from_map(m),
            _ => Err(DittoError::json_format(
                "Value for field </headers> is not of the expected type JsonObject.",
            )),
        }
    }

    #[test]
    fn headers_read_in_place_equal_the_map_path() {
        let mut rng = fastrand::Rng::with_seed(0x4ead);
        let names = ["a", "A", "b", "B", "correlation-id", "Correlation-ID", "x"];
        let values = [
            r#""v""#,
            "1",
            "[1,{\"k\":[]}]",
            "null",
            r#"{"q":"\"[{"}"#,
            "true",
        ];
        let mut texts: Vec<String> = ["\"x\"", "5", "[1,[2]]", "null", "true", "{}"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        for _ in 0..3000 {
            let many = rng.u32(0..4) == 0;
            let n = if many {
                rng.usize(60..70)
            } else {
                rng.usize(0..8)
            };
            let entries: Vec<String> = (0..n)
                .map(|i| {
                    let k = if many && rng.u32(0..8) != 0 {
                        format!("h{i}")
                    } else {
                        names[rng.usize(0..names.len())].to_owned()
                    };
                    format!("\"{k}\":{}", values[rng.usize(0..values.len())])
                })
                .collect();
            texts.push(format!("{{{}}}", entries.join(",")));
        }
        let (mut refused, mut merged) = (0, 0);
        for h in &texts {
            let frame = format!(
                r#"{{"topic":"n/t/things/twin/commands/retrieve","headers":{h},"path":"/"}}"#
            );
            let want = through_the_map(h);
            match Envelope::parse(&frame) {
                Ok(env) => assert_eq!(Ok(env.headers), want, "{h}"),
                Err(f) => {
                    refused += 1;
                    assert_eq!(Err(f.error), want, "{h}")
                }
            }
            merged += usize::from(want.is_ok_and(|w| w.len() < h.matches("\":").count()));
        }
        assert!(refused > 100 && merged > 1000, "{refused} {merged}");
    }

    #[test]
    fn a_topic_with_escapes_or_of_another_type() {
        let parse = |t: &str| {
            Envelope::parse(&format!(r#"{{"topic":{t},"path":"/"}}"#)).map(|e| e.topic.to_string())
        };
        assert_eq!(
            parse(r#""n\/t/things/twin/commands/retrieve""#).unwrap(),
            "n/t/things/twin/commands/retrieve"
        );
        for t in ["5", "[\"a\"]", "{\"a\":[1]}", "true"] {
            let e = parse(t).unwrap_err().error;
            assert_eq!(
                e.message, "Value for field </topic> is not of the expected type String.",
                "{t}"
            );
        }
        assert_eq!(parse("null").unwrap_err().error.error, "json.field.missing");
    }
}
