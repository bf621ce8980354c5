//! Authentication: turns request credentials into authorization subjects. HTTP Basic against
//! configured users (argon2 hashes, subject `nginx:<user>`), and the zero-config development
//! user `ditto`/`ditto` while listening on loopback with no users configured.

use crate::config::Config;
use crate::error::DittoError;
use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use base64::Engine;
use std::collections::HashMap;
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
        }
    }

    /// Authenticates an `Authorization` header value. Slow (argon2) on first sight of a secret:
    /// call from a blocking context or accept a one-off delay.
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<Subjects, DittoError> {
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
            return Err(unauthenticated());
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
