//! The errors of the live channel, messages and acknowledgements, with Ditto's codes and texts
//! (command / ack timeouts with Ditto's thousands separator, duplicate correlation-ids, a full
//! pending table, label and permission errors).

use crate::error::DittoError;

/// `<n>` with thousands separators, as Ditto (Java's `MessageFormat`) prints milliseconds.
pub fn thousands(n: u128) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// 408 `command.timeout`.
pub fn command_timeout(timeout_ms: u64) -> DittoError {
    DittoError::new(
        408,
        "command.timeout",
        format!(
            "The Command reached the specified timeout of {}ms.",
            thousands(timeout_ms.into())
        ),
    )
    .describe("Try increasing the command timeout.")
}

/// 408 `acknowledgement:request.timeout`.
pub fn ack_timeout(timeout_ms: u64) -> DittoError {
    DittoError::new(
        408,
        "acknowledgement:request.timeout",
        format!(
            "The acknowledgement request reached the specified timeout of {}ms.",
            thousands(timeout_ms.into())
        ),
    )
    .describe(
        "Try increasing the timeout and make sure that the requested acknowledgement is sent back in time.",
    )
}

/// 409 `acknowledgement:request.duplicate.correlation-id`.
pub fn duplicate_correlation_id(cid: &str) -> DittoError {
    DittoError::new(
        409,
        "acknowledgement:request.duplicate.correlation-id",
        format!("Correlation-id <{cid}> for acknowledgement request was already used very recently."),
    )
    .describe("Please provide unique correlation-ids when requesting acknowledgements, at least unique within at least several minutes.")
}

/// 400 `acknowledgement:label.not.declared`.
pub fn label_not_declared(label: &str) -> DittoError {
    DittoError::new(
        400,
        "acknowledgement:label.not.declared",
        format!("Cannot send acknowledgement with label <{label}>, which is not declared."),
    )
    .describe("Each connection may only send acknowledgements whose label matches one declared for the connection.")
}

/// 400 `acknowledgement:ditto.acklabel.forbidden`.
pub fn built_in_forbidden(label: &str) -> DittoError {
    DittoError::new(
        400,
        "acknowledgement:ditto.acklabel.forbidden",
        format!("The Ditto internal Acknowledgement label <{label}> is not allowed to be issued externally!"),
    )
    .describe("Make sure to not issue an Ditto internal Acknowledgement label.")
}

/// 429 `too.many.requests` when the table is full.
pub fn table_full(max: usize) -> DittoError {
    DittoError::new(
        429,
        "too.many.requests",
        format!("Too many requests are waiting for responses or acknowledgements (limit {max})."),
    )
    .describe("Retry later, or raise limits.max_pending_requests in the configuration.")
}

/// 409 `acknowledgement:label.not.unique`.
pub fn label_not_unique() -> DittoError {
    DittoError::new(
        409,
        "acknowledgement:label.not.unique",
        "One or more declared acknowledgement labels are taken by other subscribers.",
    )
    .describe(
        "Please ensure all other subscribers with the declared acknowledgement labels are offline.",
    )
}

/// 405 `things:live.channelcondition.notallowed`.
pub fn condition_not_allowed() -> DittoError {
    DittoError::new(
        405,
        "things:live.channelcondition.notallowed",
        "The specified 'live-channel-condition' is only allowed to be used for retrieving API calls.",
    )
    .describe("For modifying API calls the 'live-channel-condition' cannot be used, please remove the condition.")
}

/// 403 `things:event.notallowed`.
pub fn event_not_allowed(id: &str) -> DittoError {
    DittoError::new(
        403,
        "things:event.notallowed",
        format!("You are not allowed to send events for the Thing with id '{id}'!"),
    )
    .describe("Please make sure that the Thing exists and that you have WRITE permissions on the message resource in the policy of the Thing.")
}

/// 403 `messages:send.notallowed`.
pub fn send_not_allowed(id: &str) -> DittoError {
    DittoError::new(
        403,
        "messages:send.notallowed",
        format!("You are not allowed to send messages for the Thing with id '{id}'!"),
    )
    .describe("Please make sure that the Thing exists and that you have WRITE permissions on the message resource in the policy of the Thing.")
}
