//! Harnesses of the edges: MQTT device messages against the presets, MQTT mapping and whole
//! configuration files (TOML, `check-config`), and HTTP requests (method, URI, headers)
//! through the route's pure parts: Ditto headers, thing and policy paths, search parameters.

use super::{Checked, Verdict};
use crate::bounds::{self, MAX_JSON_DEPTH, MAX_POINTER_SEGMENTS};
use crate::config::Config;
use crate::http::{messages::message_target, params, search::params_of, things};
use crate::model::parse_thing_id;
use crate::mqtt::config::MqttConfig;
use crate::mqtt::mapping::{Inbound, Mappings};
use crate::policy::PolicyPath;
use crate::protocol::ThingPath;
use crate::search::request::{resolve, Endpoint};
use std::sync::OnceLock;

fn presets() -> &'static Mappings {
    static M: OnceLock<Mappings> = OnceLock::new();
    M.get_or_init(|| {
        let cfg = MqttConfig {
            presets: crate::mqtt::presets::NAMES
                .iter()
                .map(|s| s.to_string())
                .collect(),
            ..MqttConfig::default()
        };
        Mappings::build(&cfg).unwrap_or_default()
    })
}

/// `topic\npayload`: a device message against every preset. A telemetry patch names a valid
/// thing and is never nested deeper than a payload may be (plus the feature wrapper).
pub fn mqtt_inbound(b: &[u8]) -> Checked {
    let split = b.iter().position(|&c| c == b'\n').unwrap_or(b.len());
    let Ok(topic) = std::str::from_utf8(&b[..split]) else {
        return Ok(Verdict::Rejected);
    };
    let payload = b.get(split + 1..).unwrap_or_default();
    match presets().classify(topic, payload, "home") {
        Inbound::Telemetry(target, patch) => {
            Verdict::ensure(parse_thing_id(&target.thing_id).is_ok(), || {
                format!("invalid thing {}", target.thing_id)
            })?;
            let d = bounds::value_depth(&patch);
            Verdict::ensure(patch.is_object() && d <= MAX_JSON_DEPTH + 3, || {
                format!("telemetry patch {d} levels deep")
            })?;
            let _ = crate::mqtt::commands::desired_from("/features", Some(&patch), &["properties"]);
            Ok(Verdict::Accepted)
        }
        Inbound::Availability(target, _) => {
            Verdict::ensure(parse_thing_id(&target.thing_id).is_ok(), || {
                "invalid thing".into()
            })?;
            Ok(Verdict::Accepted)
        }
        _ => Ok(Verdict::Rejected),
    }
}

/// A configuration with `[mqtt]` mappings: built mappings subscribe to valid filters and
/// classify topics matching them without panicking.
pub fn mqtt_mapping(b: &[u8]) -> Checked {
    let Some(cfg) = std::str::from_utf8(b)
        .ok()
        .and_then(|s| Config::from_toml(s).ok())
    else {
        return Ok(Verdict::Rejected);
    };
    let _ = cfg.mqtt.problems();
    let Ok(m) = Mappings::build(&cfg.mqtt) else {
        return Ok(Verdict::Rejected);
    };
    for f in m.filters() {
        Verdict::ensure(!f.is_empty(), || "empty filter".into())?;
        let topic = f.replace('+', "dev").replace('#', "x/y");
        let _ = m.classify(&topic, b"{\"a\":1}", &cfg.mqtt.namespace);
        let _ = m.classify(&topic, b"online", &cfg.mqtt.namespace);
    }
    Ok(Verdict::Accepted)
}

/// A configuration file: `check-config` finding no problem implies that the gateway's own
/// parse and checks accept it too.
pub fn config(b: &[u8]) -> Checked {
    let Ok(s) = std::str::from_utf8(b) else {
        return Ok(Verdict::Rejected);
    };
    let (checked, problems) = crate::ops::check::check_text(s);
    let parsed = Config::from_toml(s);
    if problems.is_empty() {
        Verdict::ensure(checked.is_some(), || "no problems but no config".into())?;
        let ok = parsed.as_ref().is_ok_and(|c| c.problems().is_empty());
        Verdict::ensure(ok, || {
            format!("check-config accepts what the gateway refuses: {parsed:?}")
        })?;
        return Ok(Verdict::Accepted);
    }
    Ok(Verdict::Rejected)
}

/// `METHOD uri\nname: value\n...`: the route's parsing of paths, query and headers answers a
/// value or a Ditto 4xx error, and pointers stay within the bound.
pub fn http_request(b: &[u8]) -> Checked {
    let Ok(s) = std::str::from_utf8(b) else {
        return Ok(Verdict::Rejected);
    };
    let mut lines = s.split('\n');
    let first = lines.next().unwrap_or_default();
    let (method, uri) = first.split_once(' ').unwrap_or(("GET", first));
    let mut req = hyper::Request::builder().method(method).uri(uri);
    for l in lines {
        if let Some((k, v)) = l.split_once(": ") {
            req = req.header(k, v);
        }
    }
    let Ok(req) = req.body(()) else {
        return Ok(Verdict::Rejected);
    };
    let (parts, ()) = req.into_parts();
    let client_error = |e: &crate::error::DittoError| -> Result<(), Verdict> {
        Verdict::ensure((400..500).contains(&e.status), || {
            format!("{} {}", e.status, e.error)
        })
    };
    let (query, headers, cid) = match things::request_headers(&parts) {
        Ok(x) => x,
        Err(e) => {
            client_error(&e)?;
            return Ok(Verdict::Rejected);
        }
    };
    Verdict::ensure(headers.correlation_id() == Some(cid.as_str()), || {
        "correlation-id".into()
    })?;
    let path = parts.uri.path();
    if let Some(rest) = path.strip_prefix("/api/2/things/") {
        let (id, sub) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        if let Err(e) = params::decode(id, false).and_then(|i| parse_thing_id(&i)) {
            client_error(&e)?;
        }
        if let Err(e) = message_target(sub) {
            client_error(&e)?;
        }
        match things::sub_pointer(sub).and_then(|p| ThingPath::parse(&p)) {
            Ok(Some(tp)) => Verdict::ensure(tp.pointer().len() <= MAX_POINTER_SEGMENTS, || {
                "long thing path accepted".into()
            })?,
            Ok(None) => {}
            Err(e) => client_error(&e)?,
        }
    } else if let Some(rest) = path.strip_prefix("/api/2/policies/") {
        let sub = rest.find('/').map_or("", |i| &rest[i..]);
        if let Err(e) = params::decode(sub, false).and_then(|p| PolicyPath::parse(&p)) {
            client_error(&e)?;
        }
    } else if path.starts_with("/api/2/search/things") || path == "/api/2/things" {
        for endpoint in [Endpoint::Search, Endpoint::Listing] {
            if let Err(e) = resolve(&params_of(&query), endpoint) {
                client_error(&e)?;
            }
        }
    }
    Ok(Verdict::Accepted)
}

/// `name: value` header lines, an empty line, the body: a CloudEvent (binary or structured
/// mode) is read, validated and its data parsed as an envelope; every refusal is a 4xx, and no
/// envelope deeper than the frame bound gets through.
pub fn cloudevents(b: &[u8]) -> Checked {
    let split = b.windows(2).position(|w| w == b"\n\n");
    let (head, body) = match split {
        Some(i) => (&b[..i], &b[i + 2..]),
        None => (&b[..0], b),
    };
    let mut headers = hyper::HeaderMap::new();
    for l in String::from_utf8_lossy(head).lines() {
        if let Some((k, v)) = l.split_once(": ") {
            if let (Ok(k), Ok(v)) = (k.parse::<hyper::header::HeaderName>(), v.parse()) {
                headers.append(k, v);
            }
        }
    }
    let client_error = |e: &crate::error::DittoError| -> Result<(), Verdict> {
        Verdict::ensure((400..500).contains(&e.status), || {
            format!("{} {}", e.status, e.error)
        })
    };
    let ce = match crate::http::cloudevents::read(&headers, body) {
        Ok(ce) => ce,
        Err(e) => {
            client_error(&e)?;
            return Ok(Verdict::Rejected);
        }
    };
    let data = match crate::http::cloudevents::validate(&ce) {
        Ok(d) => d,
        Err(e) => {
            client_error(&e)?;
            return Ok(Verdict::Rejected);
        }
    };
    if let Ok(text) = std::str::from_utf8(data) {
        if crate::protocol::Envelope::parse(text).is_ok() {
            let d = bounds::text_depth(data);
            Verdict::ensure(d <= crate::bounds::MAX_FRAME_DEPTH, || {
                format!("{d} levels")
            })?;
        }
    }
    Ok(Verdict::Accepted)
}
