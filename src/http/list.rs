//! `GET /api/2/things?ids=..`: the retrieve-multiple command (request order, missing and
//! unreadable things skipped). Without `ids` the listing is the search (see `search::listing`).

use super::params::Query;
use super::response;
use crate::error::DittoError;
use crate::hub::Requester;
use crate::model::parse_thing_id;
use crate::protocol::{Action, Channel, Criterion, Envelope, Headers, Signal, Topic};
use crate::server::{Body, State};
use hyper::Response;
use serde_json::{json, Value};

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
