//! The opaque, stateless paging cursor: base64url (no padding) of a small JSON object holding
//! what the next page needs — the filter text, namespaces and sort of the original query (as
//! Ditto's cursor does), the sort-key values and thingId of the last item, and, for the
//! `/api/2/things` listing whose `next` link carries only the cursor, its size and fields.

use super::exec::Position;
use crate::error::DittoError;
use crate::rql::{parse_property, PropertyUse, SortKey};
use base64::Engine;
use serde_json::{json, Value};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Longest cursor accepted (a cursor holds the last item's sort values).
pub const MAX_CURSOR_BYTES: usize = 32 * 1024;

/// Decoded cursor.
#[derive(Debug, Clone, PartialEq)]
pub struct Cursor {
    /// filter text of the original query
    pub filter: Option<String>,
    /// namespaces of the original query
    pub namespaces: Vec<String>,
    /// effective sort of the original query
    pub sort: Vec<SortKey>,
    /// where the next page starts
    pub after: Position,
    /// page size to use when the request names none (listing)
    pub size: Option<usize>,
    /// fields to use when the request names none (listing)
    pub fields: Option<String>,
}

/// 400 `thing-search:search.option.invalid` for a cursor (Ditto's texts).
pub fn invalid_cursor(description: &str) -> DittoError {
    DittoError::new(
        400,
        "thing-search:search.option.invalid",
        "The option 'cursor' is not valid for the search request.",
    )
    .describe(description.to_owned())
}

/// A property as parseable RQL text (every character that could end or escape it as `\uXXXX`).
fn escape_property(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        if matches!(c, ',' | '(' | ')' | '"' | '\'' | '\\') || c.is_control() || c == ' ' {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// `+attributes/a` / `-thingId`.
fn sort_text(k: &SortKey) -> String {
    format!("{}{}", if k.ascending { '+' } else { '-' }, k.prop.raw)
}

impl Cursor {
    /// The opaque text.
    pub fn encode(&self) -> String {
        let sort: Vec<String> = self.sort.iter().map(sort_text).collect();
        let mut v = json!({"S": sort, "V": self.after.values, "I": self.after.thing_id});
        if let Some(f) = &self.filter {
            v["F"] = json!(f);
        }
        if !self.namespaces.is_empty() {
            v["N"] = json!(self.namespaces);
        }
        if let Some(z) = self.size {
            v["z"] = json!(z);
        }
        if let Some(f) = &self.fields {
            v["f"] = json!(f);
        }
        B64.encode(v.to_string())
    }

    /// Parses and validates a cursor text.
    pub fn decode(text: &str) -> Result<Cursor, DittoError> {
        let bad = || invalid_cursor("The cursor could not be read: use it exactly as returned.");
        if text.len() > MAX_CURSOR_BYTES {
            return Err(bad());
        }
        let v: Value = B64
            .decode(text.trim())
            .ok()
            .and_then(|b| crate::bounds::from_slice(&b, crate::bounds::MAX_JSON_DEPTH).ok())
            .ok_or_else(bad)?;
        let strings = |key: &str| -> Result<Vec<String>, DittoError> {
            match v.get(key) {
                None => Ok(Vec::new()),
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|x| x.as_str().map(str::to_owned).ok_or_else(bad))
                    .collect(),
                Some(_) => Err(bad()),
            }
        };
        let sort = strings("S")?
            .iter()
            .map(|s| {
                let (asc, raw) = match s.split_at_checked(1) {
                    Some(("+", r)) => (true, r),
                    Some(("-", r)) => (false, r),
                    _ => return Err(bad()),
                };
                let prop =
                    parse_property(&escape_property(raw), PropertyUse::Sort).map_err(|_| bad())?;
                Ok(SortKey {
                    prop,
                    ascending: asc,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let values = v
            .get("V")
            .and_then(Value::as_array)
            .cloned()
            .ok_or_else(bad)?;
        if values.len() != sort.len() {
            return Err(bad());
        }
        Ok(Cursor {
            filter: v.get("F").and_then(Value::as_str).map(str::to_owned),
            namespaces: strings("N")?,
            sort,
            after: Position {
                values,
                thing_id: v
                    .get("I")
                    .and_then(Value::as_str)
                    .ok_or_else(bad)?
                    .to_owned(),
            },
            size: v
                .get("z")
                .and_then(Value::as_u64)
                .map(|n| n.clamp(1, crate::rql::MAX_PAGE_SIZE as u64) as usize),
            fields: v.get("f").and_then(Value::as_str).map(str::to_owned),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rql::parse_options;

    #[test]
    fn round_trip_with_odd_properties() {
        let sort = parse_options("sort(+attributes/a\\u002cb,-features/f/properties/x y,+thingId)")
            .unwrap()
            .sort;
        let c = Cursor {
            filter: Some("and(eq(attributes/a,\"x\"),gt(attributes/n,1))".into()),
            namespaces: vec!["a".into(), "b.c".into()],
            sort,
            after: Position {
                values: vec![json!("a,b)"), json!(null), json!("n:(x)")],
                thing_id: "n:(x)".into(),
            },
            size: Some(7),
            fields: Some("thingId,attributes".into()),
        };
        let text = c.encode();
        assert!(
            !text.contains([',', ')', '(', '+', '/', '=']),
            "usable inside option=cursor(...)"
        );
        assert_eq!(Cursor::decode(&text).unwrap(), c);
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "!!",
            "e30",
            &B64.encode(r#"{"S":["+foo"],"V":[1],"I":"a:b"}"#),
            &B64.encode(r#"{"S":["+thingId"],"V":[],"I":"a:b"}"#),
            &B64.encode(r#"{"S":[],"V":[]}"#),
        ] {
            let e = Cursor::decode(bad).unwrap_err();
            assert_eq!(
                (e.status, &*e.error),
                (400, "thing-search:search.option.invalid"),
                "{bad}"
            );
        }
        let ok = B64.encode(r#"{"S":[],"V":[],"I":"a:b"}"#);
        assert_eq!(Cursor::decode(&ok).unwrap().after.thing_id, "a:b");
    }
}
