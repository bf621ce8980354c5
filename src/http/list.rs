//! `GET /api/2/things`: with `ids` the retrieve-multiple command (request order, missing and
//! unreadable things skipped); without `ids` a simple paged listing of the things tree in
//! `thingId` order (`option=size(n),cursor(c)`, `fields`, `namespaces`, `Link` headers).
//! Filtering and sorting belong to `/api/2/search/things`.

use super::params::Query;
use super::response;
use crate::engine::ThingState;
use crate::error::DittoError;
use crate::hub::Requester;
use crate::model::parse_thing_id;
use crate::protocol::{Action, Channel, Criterion, Envelope, Headers, Signal, Topic};
use crate::rql::{parse_options, MAX_PAGE_SIZE};
use crate::server::{Body, State};
use crate::store::Tree;
use base64::Engine;
use hyper::header::{HeaderValue, LINK};
use hyper::http::request::Parts;
use hyper::Response;
use serde_json::{json, Value};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Entries read from the store per scan call while filling a page.
const SCAN_BATCH: usize = 256;

/// Retrieves things by ID (`ids=a,b` or repeated `ids`), in request order.
pub(super) fn by_ids(
    st: &State,
    who: &Requester,
    ids: &str,
    query: &Query,
    headers: Headers,
) -> Result<Response<Body>, DittoError> {
    let thing_ids: Vec<String> = ids
        .split(',')
        .map(|s| parse_thing_id(s).map(|id| id.to_string()))
        .collect::<Result<_, _>>()?;
    let fields = query.joined("fields");
    let things = retrieve(st, who, &thing_ids, fields.as_deref(), headers)?;
    Ok(response::json(200, &things))
}

/// The retrieve-multiple command through the hub (the same path the WebSocket uses).
fn retrieve(
    st: &State,
    who: &Requester,
    ids: &[String],
    fields: Option<&str>,
    headers: Headers,
) -> Result<Value, DittoError> {
    let topic = Topic::thing(
        "_",
        "_",
        Channel::Twin,
        Criterion::Commands(Action::Retrieve),
    );
    let mut env = Envelope::new(topic, headers, "/");
    env.value = Some(json!({ "thingIds": ids }));
    env.fields = fields.map(str::to_owned);
    let Signal::RetrieveThings(r) = Signal::from_envelope(env)? else {
        return Err(DittoError::internal("retrieve things did not parse"));
    };
    st.hub.retrieve_things(who, &r)
}

/// The continuation state carried in `cursor(...)`: where to go on, and the listing's
/// parameters (so that the `next` link needs nothing else).
#[derive(Debug, Clone, PartialEq)]
struct Cursor {
    after: String,
    namespaces: Vec<String>,
    fields: Option<String>,
    size: usize,
}

impl Cursor {
    fn encode(&self) -> String {
        let v = json!({"a": self.after, "n": self.namespaces, "f": self.fields, "s": self.size});
        B64.encode(v.to_string())
    }

    fn decode(s: &str) -> Result<Cursor, DittoError> {
        let bad = || {
            DittoError::new(
                400,
                "thing-search:search.option.invalid",
                format!("The cursor '{s}' is invalid."),
            )
            .describe("Use the cursor exactly as returned in the 'next' link.")
        };
        let v: Value = B64
            .decode(s)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(bad)?;
        Ok(Cursor {
            after: v["a"].as_str().ok_or_else(bad)?.to_owned(),
            namespaces: v["n"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
            fields: v["f"].as_str().map(str::to_owned),
            size: v["s"]
                .as_u64()
                .map_or(25, |n| n.clamp(1, MAX_PAGE_SIZE as u64) as usize),
        })
    }
}

/// One page of IDs of live things `who` may read in the given namespaces (all if empty), after
/// `after`; returns the IDs and whether more follow.
fn page_ids(
    st: &State,
    who: &Requester,
    namespaces: &[String],
    after: Option<&str>,
    size: usize,
) -> Result<(Vec<String>, bool), DittoError> {
    let mut prefixes: Vec<String> = namespaces.iter().map(|n| format!("{n}:")).collect();
    prefixes.sort();
    prefixes.dedup();
    if prefixes.is_empty() {
        prefixes.push(String::new());
    }
    let mut ids = Vec::new();
    for prefix in &prefixes {
        let mut from: Option<Vec<u8>> = after
            .filter(|a| a.as_bytes() >= prefix.as_bytes())
            .map(|a| a.as_bytes().to_vec());
        loop {
            let batch = st
                .hub
                .store()
                .scan(Tree::Things, prefix.as_bytes(), from.as_deref(), SCAN_BATCH)
                .map_err(|e| DittoError::internal(format!("store scan failed: {e}")))?;
            let n = batch.len();
            for (k, v) in batch {
                if ThingState::from_bytes(&v).is_ok_and(|s| st.hub.thing_readable(who, &s)) {
                    if ids.len() == size {
                        return Ok((ids, true));
                    }
                    ids.push(String::from_utf8_lossy(&k).into_owned());
                }
                from = Some(k);
            }
            if n < SCAN_BATCH {
                break;
            }
        }
    }
    Ok((ids, false))
}

/// The listing without `ids`.
pub(super) fn listing(
    st: &State,
    who: &Requester,
    parts: &Parts,
    query: &Query,
    headers: Headers,
) -> Result<Response<Body>, DittoError> {
    let opts = parse_options(query.get("option").unwrap_or(""))?;
    let unsupported = |what: &str| {
        DittoError::new(
            400,
            "thing-search:search.option.invalid",
            format!("The option '{what}' is not supported when listing /api/2/things."),
        )
        .describe("The listing supports size(n) and cursor(c) in thingId order; use the search API to sort.")
    };
    if opts.limit.is_some() {
        return Err(unsupported("limit"));
    }
    if opts
        .sort
        .iter()
        .any(|k| !(k.ascending && k.prop.raw == "thingId"))
    {
        return Err(unsupported("sort"));
    }
    let cursor = opts.cursor.as_deref().map(Cursor::decode).transpose()?;
    let namespaces: Vec<String> = match query.get("namespaces") {
        Some(n) => n
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        None => cursor
            .as_ref()
            .map(|c| c.namespaces.clone())
            .unwrap_or_default(),
    };
    let fields = query
        .joined("fields")
        .or_else(|| cursor.as_ref().and_then(|c| c.fields.clone()));
    crate::engine::read::parse_fields(fields.as_deref(), true)?;
    let size = opts
        .size
        .or(cursor.as_ref().map(|c| c.size))
        .unwrap_or_else(|| opts.page_size());
    let after = cursor.as_ref().map(|c| c.after.as_str());
    let (ids, more) = page_ids(st, who, &namespaces, after, size)?;
    let items = if ids.is_empty() {
        Value::Array(vec![])
    } else {
        retrieve(st, who, &ids, fields.as_deref(), headers)?
    };
    let mut r = response::json(200, &items);
    let path = parts.uri.path();
    let canonical = match parts.uri.query() {
        Some(q) => format!("<{path}?{q}>; rel=\"canonical\""),
        None => format!("<{path}>; rel=\"canonical\""),
    };
    if let Ok(v) = HeaderValue::from_str(&canonical) {
        r.headers_mut().append(LINK, v);
    }
    if let (true, Some(last)) = (more, ids.last()) {
        let c = Cursor {
            after: last.clone(),
            namespaces,
            fields,
            size,
        };
        let next = format!("<{path}?option=cursor({})>; rel=\"next\"", c.encode());
        if let Ok(v) = HeaderValue::from_str(&next) {
            r.headers_mut().append(LINK, v);
        }
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trip() {
        let c = Cursor {
            after: "ns:a(b),c".into(),
            namespaces: vec!["ns".into()],
            fields: Some("thingId".into()),
            size: 3,
        };
        let s = c.encode();
        assert!(
            !s.contains([',', ')', '(']),
            "usable inside option=cursor(...)"
        );
        assert_eq!(Cursor::decode(&s).unwrap(), c);
        assert_eq!(Cursor::decode("!!").unwrap_err().status, 400);
    }
}
