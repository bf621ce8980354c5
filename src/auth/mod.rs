//! Authentication: turns request credentials into authorization subjects. In order: Ditto's
//! `x-ditto-pre-authenticated` (only when enabled and sent by a trusted proxy address), JWT
//! bearer tokens (`jwt`), HTTP Basic against configured users (argon2 in a bounded verifier
//! pool, `verifier`; subject `nginx:<user>`) or the zero-config dev user. Password attempts are
//! counted before they are verified (`ratelimit`); verified secrets are remembered (`cache`).

pub mod cache;
pub mod jwt;
pub mod ratelimit;
pub mod verifier;
mod who;

pub use who::{Authenticated, Subjects};

use crate::config::Config;
use crate::error::DittoError;
use argon2::{Argon2, PasswordHasher};
use base64::Engine;
use ratelimit::{Locked, Refused};
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Verifies credentials; cheap to share.
pub struct Authenticator {
    dev_user: bool,
    keyed: cache::Keyed,
    verified: cache::Verified,
    jwt: jwt::JwtVerifier,
    pre_authenticated: bool,
    trusted_proxies: Vec<IpAddr>,
    failures: ratelimit::FailedLogins,
    verifiers: verifier::Verifiers,
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

/// 401 `gateway:authentication.failed`.
pub fn unauthenticated() -> DittoError {
    DittoError::new(
        401,
        "gateway:authentication.failed",
        "No applicable authentication provider was found!",
    )
    .describe("Check if your credentials were correct.")
}

/// 401 `gateway:authentication.failed` for a wrong user name or password (the same for both).
fn credentials_invalid() -> DittoError {
    DittoError::new(
        401,
        "gateway:authentication.failed",
        "The provided credentials were not valid.",
    )
    .describe("Check if your credentials were correct.")
}

/// 429 `too.many.requests` (Ditto's `TooManyRequestsException`, with `retry-after`).
fn too_many(why: &str, retry_after_secs: u64) -> DittoError {
    DittoError::new(429, "too.many.requests", "You made too many requests.")
        .describe(format!("{why} Try again in {retry_after_secs} seconds."))
        .retry_after(retry_after_secs)
}

fn locked(r: Refused) -> DittoError {
    let why = match r.by {
        Locked::Pair => "Too many failed logins for this user from this address.",
        Locked::Address => "Too many failed logins from this address.",
        Locked::User => "Too many failed logins for this user.",
    };
    too_many(why, r.retry_after_secs)
}

/// Hashes a password as `edgetwin hash-password` prints it (argon2id PHC string).
pub fn hash_password(password: &str) -> Result<String, String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

impl Authenticator {
    /// From the configured users; starts the verifier threads if there are users.
    pub fn new(cfg: &Config) -> Authenticator {
        let a = &cfg.auth;
        let users: Vec<(String, String)> = cfg
            .users
            .iter()
            .map(|u| (u.name.clone(), u.password_hash.clone()))
            .collect();
        Authenticator {
            dev_user: cfg.dev_user_active(),
            keyed: cache::Keyed::random(),
            verified: cache::Verified::new(a.verified_cache),
            jwt: jwt::JwtVerifier::new(&a.jwt),
            pre_authenticated: a.pre_authenticated,
            trusted_proxies: a.trusted_proxies.clone(),
            failures: ratelimit::FailedLogins::new(ratelimit::Limits {
                per_pair: a.max_failed_logins,
                per_address: a.max_failed_logins_per_address,
                per_user: a.max_failed_logins_per_user,
                window_ms: a.failed_login_window_secs.saturating_mul(1000) as i64,
                max_tracked: a.max_tracked,
            }),
            verifiers: verifier::Verifiers::new(&users, a.verifiers, a.verify_queue),
            devops_users: a.devops_users.clone(),
        }
    }

    /// Authenticates a request at `now` (epoch millis), trying pre-authentication, a bearer
    /// token and Basic in that order. Basic passwords wait for a verifier thread; the future
    /// never blocks the executor.
    pub async fn authenticate_request(
        &self,
        c: &Credentials<'_>,
        now: i64,
    ) -> Result<Authenticated, DittoError> {
        if let Some(a) = self.pre_authenticated(c) {
            return Ok(a);
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
        self.basic(c.authorization, c.peer, now).await
    }

    /// Authenticates a DevOps request (`/devops`, `/api/2/connections`): only HTTP Basic of a
    /// configured user listed in `[auth] devops_users` passes (never the dev user, a token or
    /// pre-authentication); returns the user name. The password is checked (and counted)
    /// before the list, so the answer's timing does not tell which names are listed.
    pub async fn authenticate_devops(
        &self,
        c: &Credentials<'_>,
        now: i64,
    ) -> Result<String, DittoError> {
        let refused = || {
            unauthenticated().describe(
                "Only the Basic users listed in [auth] devops_users may use /devops and /api/2/connections.",
            )
        };
        let (user, _) = c.authorization.and_then(decode_basic).ok_or_else(refused)?;
        self.basic(c.authorization, c.peer, now).await?;
        if self.devops_users.contains(&user) && self.verifiers.is_user(&user) {
            Ok(user)
        } else {
            Err(refused())
        }
    }

    fn pre_authenticated(&self, c: &Credentials) -> Option<Authenticated> {
        let pre = c.pre_authenticated?;
        let trusted =
            self.pre_authenticated && c.peer.is_some_and(|ip| self.trusted_proxies.contains(&ip));
        if !trusted {
            tracing::debug!(peer = ?c.peer, "ignoring x-ditto-pre-authenticated from an untrusted peer");
            return None;
        }
        let subjects: Vec<String> = pre
            .split(',')
            .map(str::trim)
            .filter(|s| s.contains(':'))
            .map(str::to_owned)
            .collect();
        (!subjects.is_empty()).then(|| Authenticated {
            subjects: Arc::from(subjects),
            expires_at: None,
        })
    }

    /// Verifies a JWT (also for `JWT-TOKEN` refreshes on a WebSocket). Cheap and bounded: the
    /// token is at most a header long and checked against the issuer's keys only; a verified
    /// token is remembered until it expires. Tokens cannot be guessed, so failures are not
    /// counted against the failed-login limits.
    pub fn verify_jwt(&self, token: &str, now: i64) -> Result<Authenticated, DittoError> {
        if self.jwt.is_empty() {
            return Err(unauthenticated());
        }
        let key = self.keyed.digest("jwt", &[token.trim().as_bytes()]);
        if let Some(a) = self.verified.get(&key, now) {
            return Ok(a);
        }
        let v = self.jwt.verify(token, now)?;
        let a = Authenticated {
            subjects: Arc::from(vec![v.subject]),
            expires_at: Some(v.expires_at),
        };
        self.verified.put(key, a.clone(), now);
        Ok(a)
    }

    async fn basic(
        &self,
        authorization: Option<&str>,
        peer: Option<IpAddr>,
        now: i64,
    ) -> Result<Authenticated, DittoError> {
        let header = authorization.ok_or_else(unauthenticated)?;
        let (user, password) = decode_basic(header).ok_or_else(unauthenticated)?;
        // Counted before anything is checked, the remembered credentials included (else a
        // locked-out guesser could still test guesses against them for free).
        let ticket = self
            .failures
            .reserve(peer, self.keyed.user(&user), now)
            .map_err(|r| {
                self.verifiers.stats.locked.fetch_add(1, Ordering::Relaxed);
                locked(r)
            })?;
        let key = self
            .keyed
            .digest("basic", &[user.as_bytes(), password.as_bytes()]);
        if let Some(a) = self.verified.get(&key, now) {
            self.failures.succeeded(ticket, now);
            return Ok(a);
        }
        let ok = if self.dev_user {
            user == "ditto" && password == "ditto"
        } else {
            match self.verifiers.verify(&user, &password).await {
                Ok(ok) => ok,
                Err(_) => {
                    self.failures.not_run(ticket);
                    return Err(too_many(
                        "Too many logins are being verified at the moment.",
                        1,
                    ));
                }
            }
        };
        if !ok {
            return Err(credentials_invalid());
        }
        let a = Authenticated {
            subjects: Arc::from(vec![format!("nginx:{user}")]),
            expires_at: None,
        };
        self.failures.succeeded(ticket, now);
        self.verified.put(key, a.clone(), now);
        Ok(a)
    }

    /// Counters for `/status/health`: argon2 runs, refusals by a full queue and by a limit.
    pub fn stats(&self) -> serde_json::Value {
        let s = &self.verifiers.stats;
        serde_json::json!({
            "passwordVerifications": s.verifications.load(Ordering::Relaxed),
            "refusedBusy": s.busy.load(Ordering::Relaxed),
            "refusedLocked": s.locked.load(Ordering::Relaxed),
        })
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

    fn check(a: &Authenticator, authorization: Option<&str>) -> Result<Subjects, DittoError> {
        let c = Credentials {
            authorization,
            ..Credentials::default()
        };
        smol::block_on(a.authenticate_request(&c, crate::clock::now_millis())).map(|a| a.subjects)
    }

    #[test]
    fn dev_user_only_on_loopback_without_users() {
        let a = Authenticator::new(&Config::default());
        assert_eq!(
            &*check(&a, Some(&basic("ditto", "ditto"))).unwrap(),
            ["nginx:ditto".to_owned()]
        );
        assert_eq!(
            check(&a, Some(&basic("ditto", "x"))).unwrap_err().status,
            401
        );
        assert_eq!(
            check(&a, None).unwrap_err().error,
            "gateway:authentication.failed"
        );
        assert!(check(&a, Some("Bearer abc")).is_err());
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
            &*check(&a, Some(&basic("alice", "s3cret"))).unwrap(),
            ["nginx:alice".to_owned()]
        );
        assert!(check(&a, Some(&basic("alice", "wrong"))).is_err());
        assert!(
            check(&a, Some(&basic("ditto", "ditto"))).is_err(),
            "dev user is off when users exist"
        );
    }
}
