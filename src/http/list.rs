//! `GET /api/2/things?ids=..`: the retrieve-multiple command (request order, missing and
//! unreadable things skipped). Without `ids` the listing is the search (see `search::listing`).

use super::params::Query;
use super::response;
use crate::error::DittoError;
use crate::http::body::Body;
use crate::hub::Requester;
use crate::model::parse_thing_id;
use crate::protocol::{Action, Channel, Criterion, Envelope, Headers, Signal, Topic};
use crate::rules::acks::AckRequest;
use crate::rules::outcome::Finished;
use crate::state::State;
use hyper::Response;
use serde_json::{json, Value};

/// Retrieves things by ID (`ids=a,b` or repeated `ids`), in request order.
pub(super) async fn by_ids(
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
    let things = retrieve(st, who, &thing_ids, fields.as_deref(), headers).await?;
    Ok(response::json(200, &things))
}

/// The retrieve-multiple command through the hub's door (the same path the WebSocket uses).
async fn retrieve(
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
    let signal @ Signal::RetrieveThings(_) = Signal::from_envelope(env)? else {
        return Err(DittoError::internal("retrieve things did not parse"));
    };
    let answer = st.hub.call(who, signal, &AckRequest::durable()).await?;
    match answer {
        Some(a) => match a.settle(&st.hub).await {
            Finished::Response(env) => Ok(env.value.unwrap_or(Value::Null)),
            Finished::Error(e) => Err(e),
            _ => Err(DittoError::internal(
                "retrieve things ended without an answer",
            )),
        },
        None => Err(DittoError::internal(
            "retrieve things ended without an answer",
        )),
    }
}
