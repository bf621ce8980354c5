//! Control messages of a WS session: START-SEND-* validates `filter` (RQL) and `extraFields`,
//! then subscribes and answers `:ACK`; STOP-SEND-* unsubscribes and answers `:ACK`. An invalid
//! filter is answered with a 400 error and no ACK, leaving the previous subscription in place.

use crate::error::DittoError;
use crate::hub::{Outbound, SessionHandle};
use crate::model::FieldSelector;
use crate::protocol::{error_envelope, Control};
use crate::rules::fanout::Subscription;
use crate::state::State;
use std::sync::Arc;

async fn send(session: &SessionHandle, text: String) {
    session.reply(Outbound::Now(Arc::from(text))).await;
}

/// Handles one parsed control message.
pub(super) async fn handle(
    st: &Arc<State>,
    session: &Arc<SessionHandle>,
    ctrl: Result<Control, String>,
) {
    let ctrl = match ctrl {
        Ok(c) => c,
        Err(msg) => {
            let e = DittoError::new(400, "rql.expression.invalid", msg)
                .describe("Check that all parameters are URL-encoded.");
            return send(session, error_envelope(None, None, &e).to_text()).await;
        }
    };
    let ack = ctrl.ack();
    match ctrl {
        Control::Start(kind, p) => {
            let cid = p.correlation_id.as_deref();
            let filter = match p.filter.as_deref().map(crate::rql::parse).transpose() {
                Ok(f) => f,
                Err(e) => {
                    return send(session, error_envelope(None, cid, &e.to_ditto()).to_text()).await
                }
            };
            let extra = match p
                .extra_fields
                .as_deref()
                .map(FieldSelector::parse)
                .transpose()
            {
                Ok(x) => x,
                Err(e) => return send(session, error_envelope(None, cid, &e).to_text()).await,
            };
            st.hub.subscribe(
                session,
                kind,
                Subscription {
                    namespaces: p.namespaces,
                    filter,
                    extra,
                },
            );
        }
        Control::Stop(kind) => st.hub.unsubscribe(session, kind),
        // JWT-TOKEN is handled by the session loop (ws/mod.rs) before control messages.
        Control::JwtToken(_) => {}
    }
    if let Some(ack) = ack {
        send(session, ack).await;
    }
}
