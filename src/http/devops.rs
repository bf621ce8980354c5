//! The DevOps routes, for the Basic users of `[auth] devops_users` only (401 for everyone
//! else): `GET/PUT /devops/logging[/edgetwin[/1]]` (log levels at run time, in the shape of
//! Ditto's `DevOpsRoute`: service `edgetwin`, instance `1`), `GET /devops/backup` (a backup of
//! the store, `backup.rs`) and the read-only connections API `/api/2/connections` showing the
//! MQTT bridge (Ditto's `ConnectionsRoute`).

use super::params::{self, Query};
use super::response;
use crate::error::DittoError;
use crate::http::body::Body;
use crate::model::FieldSelector;
use crate::mqtt::connection::CONNECTION_ID;
use crate::ops::loglevel;
use crate::state::{authenticate_devops, State};
use hyper::body::Incoming;
use hyper::header::ALLOW;
use hyper::{Method, Request, Response};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

/// The one "service" and "instance" of the logging API.
const SERVICE: &str = "edgetwin";
const INSTANCE: &str = "1";

/// True for the paths this module serves.
pub fn owns(path: &str) -> bool {
    path == "/devops"
        || path.starts_with("/devops/")
        || path == "/api/2/connections"
        || path.starts_with("/api/2/connections/")
}

/// Serves `/devops/...` and `/api/2/connections/...` after DevOps authentication.
pub async fn route(st: &Arc<State>, req: Request<Incoming>, path: &str) -> Response<Body> {
    let cid = req
        .headers()
        .get("correlation-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let cid = cid.as_deref();
    if let Err(e) = authenticate_devops(st, &req).await {
        return response::error(&e, cid, None);
    }
    let r = match path.strip_prefix("/api/2/connections") {
        Some(rest) => connections(st, req, rest).await,
        None if path == "/devops/backup" => match *req.method() {
            Method::GET => super::backup::stream(st.hub.store()).await,
            ref m => Ok(not_allowed(m, "GET", None)),
        },
        None => logging(st, req, path).await,
    };
    match r {
        Ok(r) => response::with_cid(r, cid),
        Err(e) => response::error(&e, cid, None),
    }
}

/// 405 with `Allow` (and why, when the method would write).
fn not_allowed(method: &Method, allowed: &str, why: Option<&'static str>) -> Response<Body> {
    let e = DittoError::new(
        405,
        "gateway:method.notallowed",
        format!("The provided HTTP method '{method}' is not allowed on this resource."),
    )
    .describe(why.unwrap_or("Check if you used the correct resource and method combination."));
    let mut r = response::error(&e, None, None);
    response::set(&mut r, ALLOW, allowed);
    r
}

// ---- /devops/logging ----

fn logger_configs() -> Result<Value, DittoError> {
    let loggers: Vec<Value> = loglevel::current()?
        .into_iter()
        .map(|c| json!({"level": c.level, "logger": c.logger}))
        .collect();
    Ok(
        json!({"type": "devops.responses:retrieveLoggerConfig", "status": 200,
              "serviceName": SERVICE, "instance": INSTANCE, "loggerConfigs": loggers}),
    )
}

async fn logging(
    st: &Arc<State>,
    req: Request<Incoming>,
    path: &str,
) -> Result<Response<Body>, DittoError> {
    let rest = path.strip_prefix("/devops/logging").unwrap_or("/");
    let segs: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let wrap = match segs.as_slice() {
        _ if !path.starts_with("/devops/logging") => {
            return Err(response::route_not_found(path));
        }
        [] => 2,
        [SERVICE] => 1,
        [SERVICE, INSTANCE] => 0,
        _ => return Err(response::route_not_found(path)),
    };
    let answer = match *req.method() {
        Method::GET => logger_configs()?,
        Method::PUT => {
            let (parts, body) = req.into_parts();
            let max = st.cfg.limits.max_message_kib * 1024;
            let timeout = Duration::from_secs(st.cfg.limits.body_timeout_secs);
            let bytes = params::read_body(&parts.headers, body, max, timeout).await?;
            let v = params::parse_json(&bytes)?;
            let level = v
                .get("level")
                .and_then(Value::as_str)
                .ok_or_else(|| DittoError::field_missing("/level"))?;
            loglevel::set(v.get("logger").and_then(Value::as_str), level)?;
            json!({"type": "devops.responses:changeLogLevel", "status": 200,
                   "serviceName": SERVICE, "instance": INSTANCE, "successful": true})
        }
        ref m => return Ok(not_allowed(m, "GET, PUT", None)),
    };
    let answer = match wrap {
        2 => json!({ SERVICE: { INSTANCE: answer } }),
        1 => json!({ INSTANCE: answer }),
        _ => answer,
    };
    Ok(response::json(200, &answer))
}

// ---- /api/2/connections ----

/// Why connections cannot be written.
const READ_ONLY: &str = "edgetwin's only connection is its MQTT bridge, configured in the [mqtt] \
section of the configuration file; connections cannot be created, changed or deleted over the API.";

fn not_found(id: &str) -> DittoError {
    DittoError::new(
        404,
        "connectivity:connection.notfound",
        format!("The Connection with ID '{id}' could not be found or requester had insufficient permissions to access it."),
    )
    .describe("Check if the ID of your requested Connection was correct and you have sufficient permissions.")
}

fn select(v: Value, query: &Query) -> Result<Value, DittoError> {
    match query.joined("fields").filter(|f| !f.trim().is_empty()) {
        Some(f) => Ok(FieldSelector::parse(&f)?.select(&v)),
        None => Ok(v),
    }
}

async fn connections(
    st: &Arc<State>,
    req: Request<Incoming>,
    rest: &str,
) -> Result<Response<Body>, DittoError> {
    let query = Query::parse(req.uri().query())?;
    let method = req.method().clone();
    let segs: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let bridge = st.mqtt.connection();
    let Some(id) = segs.first().copied() else {
        if method != Method::GET && method != Method::HEAD {
            return Ok(not_allowed(&method, "GET", Some(READ_ONLY)));
        }
        let ids_only = query.get("ids-only").is_some_and(|v| v == "true");
        let list: Vec<Value> = match bridge {
            Some(_) if ids_only => vec![json!({ "id": CONNECTION_ID })],
            Some((view, _)) => vec![select(view.connection(), &query)?],
            None => Vec::new(),
        };
        return Ok(response::json(200, &Value::Array(list)));
    };
    let Some((view, stats)) = bridge.filter(|_| id == CONNECTION_ID) else {
        return Err(not_found(id));
    };
    let sub = segs.get(1).copied();
    if segs.len() > 2 {
        return Err(response::route_not_found(req.uri().path()));
    }
    if sub == Some("command") {
        if method != Method::POST {
            return Ok(not_allowed(&method, "POST", None));
        }
        let (parts, body) = req.into_parts();
        let timeout = Duration::from_secs(st.cfg.limits.body_timeout_secs);
        let bytes = params::read_body(&parts.headers, body, 1024, timeout).await?;
        return Err(command_refused(String::from_utf8_lossy(&bytes).trim()));
    }
    if method != Method::GET && method != Method::HEAD {
        let why = if sub.is_none() { Some(READ_ONLY) } else { None };
        return Ok(not_allowed(&method, "GET", why));
    }
    let v = match sub {
        None => select(view.connection(), &query)?,
        Some("status") => view.status(stats, stats.subscribed()),
        Some("metrics") => view.metrics(stats, crate::clock::now_millis()),
        Some("logs") => view.logs(stats),
        Some(_) => return Err(response::route_not_found(req.uri().path())),
    };
    Ok(response::json(200, &v))
}

/// The answer to `POST .../command`: every known command would change the connection.
fn command_refused(command: &str) -> DittoError {
    const KNOWN: [&str; 5] = [
        "connectivity.commands:openConnection",
        "connectivity.commands:closeConnection",
        "connectivity.commands:resetConnectionMetrics",
        "connectivity.commands:enableConnectionLogs",
        "connectivity.commands:resetConnectionLogs",
    ];
    if KNOWN.contains(&command) {
        DittoError::new(
            409,
            "connectivity:signal.illegal",
            format!("The message '{command}' is illegal for the read-only Connection with ID '{CONNECTION_ID}'."),
        )
        .describe(READ_ONLY)
    } else {
        let shown: String = command.chars().take(100).collect();
        DittoError::new(
            400,
            "connectivity:command.invalid",
            format!("The command <{shown}> is invalid or unknown."),
        )
        .describe(
            "Choose from one of the valid commands, e.g. <connectivity.commands:openConnection>.",
        )
    }
}
