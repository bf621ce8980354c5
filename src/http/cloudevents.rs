//! `POST /api/2/cloudevents`: Ditto's CloudEvents HTTP binding (`CloudEventsRoute`). A CloudEvent
//! (binary mode: `ce-*` headers + data; structured mode: `application/cloudevents+json`) whose
//! data is a Ditto Protocol message enters the hub through the same door as WS and MQTT messages.
//! Success is 202 without body; errors are Ditto's, with their status.

use super::params::{self, Query};
use super::response;
use crate::error::DittoError;
use crate::http::body::Body;
use crate::hub::Requester;
use crate::protocol::{Action, Channel, Criterion, Envelope, Group};
use crate::state::State;
use base64::Engine;
use hyper::body::Incoming;
use hyper::http::request::Parts;
use hyper::{Method, Response};
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::Duration;

/// Data content types Ditto accepts (gateway `cloud-events.data-types`).
const DATA_TYPES: [&str; 2] = ["application/json", "application/vnd.eclipse.ditto+json"];

/// A CloudEvent as far as Ditto looks at it.
#[derive(Debug, Clone, PartialEq)]
pub struct CloudEvent {
    /// `datacontenttype` (binary mode: the `Content-Type` header)
    pub data_content_type: Option<String>,
    /// `dataschema`
    pub data_schema: Option<String>,
    /// the data (`None` = absent)
    pub data: Option<Vec<u8>>,
}

/// 400 `cloudevent.unparsable`.
fn unparsable(why: &str) -> DittoError {
    DittoError::new(
        400,
        "cloudevent.unparsable",
        format!("Unable to parse as Cloud Event because of: <{why}>"),
    )
    .describe("Ensure that the event is being transmitted according to the Cloud Events HTTP binding specification v1.0 and that all mandatory headers were set.")
    .href("https://github.com/cloudevents/spec/blob/v1.0/http-protocol-binding.md")
}

fn media_type(v: &str) -> String {
    v.split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Reads a CloudEvent from an HTTP request (v1.0 binary or structured mode).
pub fn read(headers: &hyper::HeaderMap, body: &[u8]) -> Result<CloudEvent, DittoError> {
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    let content_type = header("content-type");
    let mt = content_type.map(media_type);
    if mt.as_deref() == Some("application/cloudevents-batch+json") {
        return Err(unparsable("batch mode is not supported"));
    }
    if mt.as_deref() == Some("application/cloudevents+json") {
        return structured(body);
    }
    let Some(version) = header("ce-specversion") else {
        return Err(unparsable(
            "no ce-specversion header and no structured content type",
        ));
    };
    if version != "1.0" {
        return Err(unparsable(&format!("unsupported specversion '{version}'")));
    }
    for required in ["ce-id", "ce-source", "ce-type"] {
        if header(required).is_none_or(str::is_empty) {
            return Err(unparsable(&format!("missing mandatory header {required}")));
        }
    }
    Ok(CloudEvent {
        // without a Content-Type Ditto takes the entity's default (application/octet-stream)
        data_content_type: Some(
            content_type
                .unwrap_or("application/octet-stream")
                .to_owned(),
        ),
        data_schema: header("ce-dataschema").map(str::to_owned),
        data: (!body.is_empty()).then(|| body.to_vec()),
    })
}

fn structured(body: &[u8]) -> Result<CloudEvent, DittoError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| unparsable(&format!("the event is not JSON: {e}")))?;
    let Value::Object(m) = v else {
        return Err(unparsable("the event is not a JSON object"));
    };
    let text = |k: &str| m.get(k).and_then(Value::as_str);
    match text("specversion") {
        Some("1.0") => {}
        Some(other) => return Err(unparsable(&format!("unsupported specversion '{other}'"))),
        None => return Err(unparsable("missing mandatory attribute specversion")),
    }
    for required in ["id", "source", "type"] {
        if text(required).is_none_or(str::is_empty) {
            return Err(unparsable(&format!(
                "missing mandatory attribute {required}"
            )));
        }
    }
    let data = match (m.get("data"), text("data_base64")) {
        (Some(Value::Null) | None, None) => None,
        (Some(Value::String(s)), None) => Some(s.as_bytes().to_vec()),
        (Some(d), None) => Some(d.to_string().into_bytes()),
        (None, Some(b)) => Some(
            base64::engine::general_purpose::STANDARD
                .decode(b)
                .map_err(|e| unparsable(&format!("data_base64 is not base64: {e}")))?,
        ),
        (Some(_), Some(_)) => return Err(unparsable("both data and data_base64 are set")),
    };
    Ok(CloudEvent {
        data_content_type: text("datacontenttype").map(str::to_owned),
        data_schema: text("dataschema").map(str::to_owned),
        data,
    })
}

/// Ditto's checks of the event: data present, a JSON data content type, a `ditto:` schema.
pub fn validate(ce: &CloudEvent) -> Result<&[u8], DittoError> {
    let data = ce
        .data
        .as_deref()
        .filter(|d| !d.is_empty())
        .ok_or_else(|| {
            DittoError::new(
                400,
                "cloudevent.payload.missing",
                "The Cloud Event's payload is missing.",
            )
            .describe("Ensure to provide payload in the Cloud Event.")
        })?;
    let mt = ce.data_content_type.as_deref().map(media_type);
    if !mt.as_deref().is_some_and(|t| DATA_TYPES.contains(&t)) {
        let shown = ce.data_content_type.as_deref().unwrap_or("none");
        return Err(DittoError::new(
            415,
            "mediatype.unsupported",
            format!("The Media-Type <{shown}> is not supported for this resource."),
        )
        .describe(format!(
            "Allowed Media-Types are: <[{}]>.",
            DATA_TYPES.join(", ")
        )));
    }
    if let Some(s) = &ce.data_schema {
        if !s.starts_with("ditto:") {
            return Err(DittoError::new(
                400,
                "cloudevent.dataschema.unsupported",
                format!("The provided Cloud Event dataschema <{s}> is not supported for this resource."),
            )
            .describe("Ensure that the URI's scheme is 'ditto', so the complete dataschema starts with 'ditto:'"));
        }
    }
    Ok(data)
}

/// The Ditto Protocol message of the event, with the request's Ditto headers. A thing command
/// requests `twin-persisted`, as Ditto does (its `response-required=false` only turns the
/// success into 202, which every success here is).
fn envelope(data: &[u8], parts: &Parts) -> Result<Envelope, DittoError> {
    let text = std::str::from_utf8(data).map_err(|_| DittoError::json_invalid("<binary>"))?;
    if !matches!(serde_json::from_str::<Value>(text), Ok(Value::Object(_))) {
        return Err(DittoError::json_invalid(text));
    }
    let mut env = Envelope::parse(text).map_err(|f| f.error)?;
    let query = Query::parse(parts.uri.query())?;
    let http = params::ditto_headers(&parts.headers, &query)?;
    for (k, v) in http.iter() {
        // the transport's media types are not the message's
        if k != "content-type" && k != "accept" {
            env.headers.insert(k.to_owned(), v.clone());
        }
    }
    let twin_write = env.topic.group == Group::Things
        && env.topic.channel == Channel::Twin
        && matches!(env.topic.criterion, Criterion::Commands(a) if a != Action::Retrieve);
    if twin_write {
        env.headers.insert(
            "requested-acks",
            Value::from(vec![Value::from("twin-persisted")]),
        );
    }
    Ok(env)
}

/// `POST /api/2/cloudevents`.
pub async fn handle(
    st: &Arc<State>,
    parts: Parts,
    body: Incoming,
    who: Requester,
) -> Response<Body> {
    let cid = parts
        .headers
        .get("correlation-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if parts.method != Method::POST {
        return response::method_not_allowed(parts.method.as_str(), &["POST"], cid.as_deref());
    }
    let max = st.cfg.limits.max_message_kib * 1024;
    let timeout = Duration::from_secs(st.cfg.limits.body_timeout_secs);
    let result = async {
        let bytes = params::read_body(&parts.headers, body, max, timeout).await?;
        let ce = read(&parts.headers, &bytes)?;
        let env = envelope(validate(&ce)?, &parts)?;
        Ok::<_, DittoError>(answer(st, &who, env).await)
    }
    .await;
    match result {
        Ok(None) => response::with_cid(response::empty(202), cid.as_deref()),
        Ok(Some((status, value))) => {
            response::with_cid(response::json(status, &value), cid.as_deref())
        }
        Err(e) => response::error(&e, cid.as_deref(), None),
    }
}

/// Runs the message through the hub: `None` on success, else the failure's status and body.
async fn answer(st: &Arc<State>, who: &Requester, env: Envelope) -> Option<(u16, Value)> {
    let reply = st.hub.handle_protocol(who, env).await?;
    let reply = reply.settle_envelope(&st.hub).await?;
    match reply.status {
        Some(s) if s >= 400 => Some((s, reply.value.unwrap_or(Value::Object(Map::new())))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;
    use hyper::HeaderMap;

    fn headers(h: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in h {
            m.insert(*k, HeaderValue::from_static(v));
        }
        m
    }

    const CE: [(&str, &str); 4] = [
        ("ce-specversion", "1.0"),
        ("ce-id", "1"),
        ("ce-source", "urn:test"),
        ("ce-type", "org.example"),
    ];

    #[test]
    fn binary_mode_needs_the_mandatory_headers() {
        let mut h = headers(&CE);
        h.insert("content-type", HeaderValue::from_static("application/json"));
        let ce = read(&h, b"{}").unwrap();
        assert_eq!(ce.data_content_type.as_deref(), Some("application/json"));
        assert_eq!(validate(&ce).unwrap(), b"{}");
        h.remove("ce-source");
        assert_eq!(read(&h, b"{}").unwrap_err().error, "cloudevent.unparsable");
        assert_eq!(read(&HeaderMap::new(), b"{}").unwrap_err().status, 400);
    }

    #[test]
    fn structured_mode_reads_data_and_base64() {
        let h = headers(&[(
            "content-type",
            "application/cloudevents+json; charset=utf-8",
        )]);
        let body = br#"{"specversion":"1.0","id":"1","source":"s","type":"t","datacontenttype":"application/json","data":{"topic":"a/b/things/twin/commands/retrieve"}}"#;
        let ce = read(&h, body).unwrap();
        assert_eq!(
            ce.data.as_deref(),
            Some(&br#"{"topic":"a/b/things/twin/commands/retrieve"}"#[..])
        );
        let b64 = base64::engine::general_purpose::STANDARD.encode("{\"x\":1}");
        let body = format!(
            r#"{{"specversion":"1.0","id":"1","source":"s","type":"t","data_base64":"{b64}"}}"#
        );
        assert_eq!(
            read(&h, body.as_bytes()).unwrap().data.as_deref(),
            Some(&b"{\"x\":1}"[..])
        );
        assert!(read(&h, br#"{"specversion":"1.0","id":"1","type":"t"}"#).is_err());
    }

    #[test]
    fn validation_follows_ditto() {
        let ce = |ct: Option<&str>, schema: Option<&str>, data: Option<&[u8]>| CloudEvent {
            data_content_type: ct.map(str::to_owned),
            data_schema: schema.map(str::to_owned),
            data: data.map(<[u8]>::to_vec),
        };
        let e = validate(&ce(Some("application/json"), None, None)).unwrap_err();
        assert_eq!(e.error, "cloudevent.payload.missing");
        let e = validate(&ce(None, None, Some(b"{}"))).unwrap_err();
        assert_eq!(
            (e.status, e.message.as_str()),
            (
                415,
                "The Media-Type <none> is not supported for this resource."
            )
        );
        assert_eq!(e.description.as_deref(), Some("Allowed Media-Types are: <[application/json, application/vnd.eclipse.ditto+json]>."));
        let e = validate(&ce(Some("application/json"), Some("http://x"), Some(b"{}"))).unwrap_err();
        assert_eq!(e.error, "cloudevent.dataschema.unsupported");
        assert!(validate(&ce(
            Some("application/vnd.eclipse.ditto+json; charset=utf-8"),
            Some("ditto:x"),
            Some(b"{}")
        ))
        .is_ok());
    }
}
