//! Authentication: turns request credentials into authorization subjects. In order: Ditto's
//! `x-ditto-pre-authenticated` (only when enabled and sent by a trusted proxy address), JWT
//! bearer tokens (`jwt`), HTTP Basic against configured users (argon2, subject `nginx:<user>`)
//! or the zero-config dev user; failed attempts are limited per peer address (`ratelimit`).

pub mod jwt;
pub mod ratelimit;

use crate::config::Config;
use crate::error::DittoError;
use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use base64::Engine;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Most verified credentials remembered (argon2 is deliberately slow: verify once per secret).
const CACHE_MAX: usize = 256;

/// The authorization subjects of an authenticated request.
pub type Subjects = Arc<[String]>;

/// Verifies credentials; cheap to share.
pub struct Authenticator {
    users: HashMap<String, String>,
    dev_user: bool,
    verified: Mutex<HashMap<String, Subjects>>,
    jwt: jwt::JwtVerifier,
    pre_authenticated: bool,
    trusted_proxies: Vec<IpAddr>,
    failures: ratelimit::FailedLogins,
    devops_users: Vec<String>,
}

/// What a request presents.
#[derive(Debug, Clone, Default)]
pub struct Credentials<'a> {
    /// `Authorization` header
    pub authorization: Option<&'a str>,
    /// `x-ditto-pre-authenticated` header
    pub pre_authenticated: Option<&'a str>,
    /// `?access_token=` (WebSocket)
    pub access_token: Option<&'a str>,
    /// the TCP peer address
    pub peer: Option<IpAddr>,
}

/// An authenticated requester.
#[derive(Debug, Clone, PartialEq)]
pub struct Authenticated {
    /// authorization subjects, first = default subject
    pub subjects: Subjects,
    /// end of validity (JWT `exp`, epoch millis); `None` = no expiry
    pub expires_at: Option<i64>,
}

/// 401 `gateway:authentication.failed`.
pub fn unauthenticated() -> DittoError {
    DittoError::new(
        401,
        "gateway:authentication.failed",
        "No applicable authentication provider was found!",
    )
    .describe("Check if your credentials were correct.")
}

/// Hashes a password as `edgetwin hash-password` prints it (argon2id PHC string).
pub fn hash_password(password: &str) -> Result<String, String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

impl Authenticator {
    /// From the configured users.
    pub fn new(cfg: &Config) -> Authenticator {
        Authenticator {
            users: cfg
                .users
                .iter()
                .map(|u| (u.name.clone(), u.password_hash.clone()))
                .collect(),
            dev_user: cfg.dev_user_active(),
            verified: Mutex::new(HashMap::new()),
            jwt: jwt::JwtVerifier::new(&cfg.auth.jwt),
            pre_authenticated: cfg.auth.pre_authenticated,
            trusted_proxies: cfg.auth.trusted_proxies.clone(),
            failures: ratelimit::FailedLogins::new(
                cfg.auth.max_failed_logins,
                cfg.auth.failed_login_window_secs.saturating_mul(1000) as i64,
            ),
            devops_users: cfg.auth.devops_users.clone(),
        }
    }

    /// Authenticates an `Authorization` header value (Basic or Bearer). Slow (argon2) on first
    /// sight of a secret: call from a blocking context or accept a one-off delay.
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<Subjects, DittoError> {
        let c = Credentials {
            authorization,
            ..Credentials::default()
        };
        self.authenticate_request(&c, crate::clock::now_millis())
            .map(|a| a.subjects)
    }

    /// Authenticates a request at `now` (epoch millis), trying pre-authentication, a bearer
    /// token and Basic in that order. Failed verifications count against the peer address.
    pub fn authenticate_request(
        &self,
        c: &Credentials,
        now: i64,
    ) -> Result<Authenticated, DittoError> {
        self.limited(c.peer, now, || self.try_mechanisms(c, now))
    }

    /// Authenticates a DevOps request (`/devops`, `/api/2/connections`): only HTTP Basic of a
    /// configured user listed in `[auth] devops_users` passes (never the dev user, a token or
    /// pre-authentication); returns the user name.
    pub fn authenticate_devops(&self, c: &Credentials, now: i64) -> Result<String, DittoError> {
        self.limited(c.peer, now, || {
            let user = c
                .authorization
                .and_then(decode_basic)
                .map(|(u, _)| u)
                .filter(|u| self.devops_users.contains(u) && self.users.contains_key(u))
                .ok_or_else(|| {
                    unauthenticated().describe(
                        "Only the Basic users listed in [auth] devops_users may use /devops and /api/2/connections.",
                    )
                })?;
            self.basic(c.authorization)?;
            Ok(user)
        })
    }

    /// Runs a credential check under the failed-login limit of the peer address.
    fn limited<T>(
        &self,
        peer: Option<IpAddr>,
        now: i64,
        check: impl FnOnce() -> Result<T, DittoError>,
    ) -> Result<T, DittoError> {
        if let Some(ip) = peer {
            if self.failures.blocked(ip, now) {
                return Err(DittoError::new(
                    429,
                    "too.many.requests",
                    "Too many failed authentication attempts from this address.",
                )
                .describe(format!(
                    "Wait {} seconds before trying again.",
                    self.failures.window_secs()
                )));
            }
        }
        let result = check();
        if let Some(ip) = peer {
            match &result {
                Ok(_) => self.failures.succeeded(ip),
                Err(e)
                    if e.error != "gateway:authentication.failed"
                        || !e.message.starts_with("No applicable") =>
                {
                    self.failures.failed(ip, now)
                }
                Err(_) => {}
            }
        }
        result
    }

    fn try_mechanisms(&self, c: &Credentials, now: i64) -> Result<Authenticated, DittoError> {
        if let Some(pre) = c.pre_authenticated {
            let trusted = self.pre_authenticated
                && c.peer.is_some_and(|ip| self.trusted_proxies.contains(&ip));
            if trusted {
                let subjects: Vec<String> = pre
                    .split(',')
                    .map(str::trim)
                    .filter(|s| s.contains(':'))
                    .map(str::to_owned)
                    .collect();
                if !subjects.is_empty() {
                    return Ok(Authenticated {
                        subjects: Arc::from(subjects),
                        expires_at: None,
                    });
                }
            } else {
                tracing::debug!(peer = ?c.peer, "ignoring x-ditto-pre-authenticated from an untrusted peer");
            }
        }
        let bearer = c
            .authorization
            .and_then(|h| h.trim().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim())
            .or(c.access_token);
        if let Some(token) = bearer {
            return self.verify_jwt(token, now);
        }
        self.basic(c.authorization).map(|subjects| Authenticated {
            subjects,
            expires_at: None,
        })
    }

    /// Verifies a JWT (also for `JWT-TOKEN` refreshes on a WebSocket).
    pub fn verify_jwt(&self, token: &str, now: i64) -> Result<Authenticated, DittoError> {
        if self.jwt.is_empty() {
            return Err(unauthenticated());
        }
        let v = self.jwt.verify(token, now)?;
        Ok(Authenticated {
            subjects: Arc::from(vec![v.subject]),
            expires_at: Some(v.expires_at),
        })
    }

    fn basic(&self, authorization: Option<&str>) -> Result<Subjects, DittoError> {
        let header = authorization.ok_or_else(unauthenticated)?;
        if let Some(s) = self
            .verified
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(header)
        {
            return Ok(s.clone());
        }
        let (user, password) = decode_basic(header).ok_or_else(unauthenticated)?;
        let failed = || {
            DittoError::new(
                401,
                "gateway:authentication.failed",
                "The provided credentials were not valid.",
            )
            .describe("Check if your credentials were correct.")
        };
        let ok = if self.dev_user {
            user == "ditto" && password == "ditto"
        } else {
            self.users.get(&user).is_some_and(|hash| {
                Argon2::default()
                    .verify_password(password.as_bytes(), hash.as_str())
                    .is_ok()
            })
        };
        if !ok {
            return Err(failed());
        }
        let subjects: Subjects = Arc::from(vec![format!("nginx:{user}")]);
        let mut cache = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= CACHE_MAX {
            cache.clear();
        }
        cache.insert(header.to_owned(), subjects.clone());
        Ok(subjects)
    }
}

/// `Basic base64(user:password)` -> (user, password).
pub fn decode_basic(header: &str) -> Option<(String, String)> {
    let (scheme, rest) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_owned(), p.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::User;

    fn basic(u: &str, p: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
        )
    }

    #[test]
    fn dev_user_only_on_loopback_without_users() {
        let a = Authenticator::new(&Config::default());
        assert_eq!(
            &*a.authenticate(Some(&basic("ditto", "ditto"))).unwrap(),
            ["nginx:ditto".to_owned()]
        );
        assert_eq!(
            a.authenticate(Some(&basic("ditto", "x")))
                .unwrap_err()
                .status,
            401
        );
        assert_eq!(
            a.authenticate(None).unwrap_err().error,
            "gateway:authentication.failed"
        );
        assert!(a.authenticate(Some("Bearer abc")).is_err());
    }

    #[test]
    fn configured_users_verify_argon2() {
        let hash = hash_password("s3cret").unwrap();
        let cfg = Config {
            users: vec![User {
                name: "alice".into(),
                password_hash: hash,
            }],
            ..Config::default()
        };
        let a = Authenticator::new(&cfg);
        assert_eq!(
            &*a.authenticate(Some(&basic("alice", "s3cret"))).unwrap(),
            ["nginx:alice".to_owned()]
        );
        assert!(a.authenticate(Some(&basic("alice", "wrong"))).is_err());
        assert!(
            a.authenticate(Some(&basic("ditto", "ditto"))).is_err(),
            "dev user is off when users exist"
        );
    }
}
