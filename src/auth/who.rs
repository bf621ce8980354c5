//! Who a request is, once authenticated: its authorization subjects and how long that holds.
//! A leaf of `auth`: the authenticator and its cache of verified credentials both use it.

use std::sync::Arc;

/// The authorization subjects of an authenticated request.
pub type Subjects = Arc<[String]>;

/// An authenticated requester.
#[derive(Debug, Clone, PartialEq)]
pub struct Authenticated {
    /// authorization subjects, first = default subject
    pub subjects: Subjects,
    /// end of validity (JWT `exp`, epoch millis); `None` = no expiry
    pub expires_at: Option<i64>,
}
