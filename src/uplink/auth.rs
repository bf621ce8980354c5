//! The uplink's credentials: HTTP Basic on the upgrade, or a bearer JWT read from a file and
//! read again whenever the file changes (size or modification time), so a token renewed by
//! another process reaches the open session (`JWT-TOKEN`) and every reconnect. The token's
//! `exp` is read (not verified: the cloud verifies) to show it and to stop using a dead token.

use base64::Engine;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Largest token file read (a JWT is a few KiB at most).
const MAX_TOKEN_BYTES: u64 = 64 * 1024;

/// A bearer token as read from the file.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    /// the JWT (whitespace trimmed)
    pub jwt: String,
    /// its `exp` claim in epoch millis, if it has one
    pub expires: Option<i64>,
}

/// What authenticates the uplink.
#[derive(Debug)]
pub enum Credentials {
    /// `Authorization: Basic ...`
    Basic(String),
    /// `Authorization: Bearer ...` from a file
    Bearer(TokenFile),
}

/// A token file and what was last read from it.
#[derive(Debug)]
pub struct TokenFile {
    path: PathBuf,
    seen: Option<(u64, Option<SystemTime>)>,
    token: Option<Token>,
}

impl Credentials {
    /// From the config: Basic if a user is set, else the token file (`None`: neither).
    pub fn from_config(cfg: &super::config::UplinkConfig) -> Option<Credentials> {
        match (&cfg.username, &cfg.password, &cfg.token_file) {
            (Some(u), Some(p), _) => Some(Credentials::Basic(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            ))),
            (_, _, Some(f)) => Some(Credentials::Bearer(TokenFile::new(f))),
            _ => None,
        }
    }

    /// The `Authorization` header for an upgrade (re-reads a changed token file first);
    /// `Err` when the token file cannot be read or holds no token.
    pub fn header(&mut self) -> Result<String, String> {
        match self {
            Credentials::Basic(h) => Ok(h.clone()),
            Credentials::Bearer(f) => {
                f.refresh()?;
                f.token
                    .as_ref()
                    .map(|t| format!("Bearer {}", t.jwt))
                    .ok_or_else(|| format!("{}: no token in the file", f.path.display()))
            }
        }
    }
}

impl TokenFile {
    /// A token file not read yet.
    pub fn new(path: &Path) -> TokenFile {
        TokenFile {
            path: path.to_path_buf(),
            seen: None,
            token: None,
        }
    }

    /// The token last read.
    pub fn token(&self) -> Option<&Token> {
        self.token.as_ref()
    }

    /// Reads the file again if its size or modification time changed; `Ok(true)` if the
    /// token is new.
    pub fn refresh(&mut self) -> Result<bool, String> {
        let at = |e: std::io::Error| format!("{}: {e}", self.path.display());
        let meta = std::fs::metadata(&self.path).map_err(at)?;
        let stamp = (meta.len(), meta.modified().ok());
        if self.seen == Some(stamp) && self.token.is_some() {
            return Ok(false);
        }
        if meta.len() > MAX_TOKEN_BYTES {
            return Err(format!(
                "{}: larger than {MAX_TOKEN_BYTES} bytes",
                self.path.display()
            ));
        }
        let text = std::fs::read_to_string(&self.path).map_err(at)?;
        self.seen = Some(stamp);
        let jwt = text.trim();
        if jwt.is_empty() {
            self.token = None;
            return Err(format!("{}: no token in the file", self.path.display()));
        }
        let new = Token {
            jwt: jwt.to_owned(),
            expires: expiry(jwt),
        };
        let changed = self.token.as_ref() != Some(&new);
        self.token = Some(new);
        Ok(changed)
    }
}

/// The `exp` claim of a JWT in epoch millis (payload decoded, signature not checked).
pub fn expiry(jwt: &str) -> Option<i64> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    let exp = claims.get("exp")?;
    let secs = exp.as_i64().or_else(|| exp.as_f64().map(|f| f as i64))?;
    Some(secs.saturating_mul(1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(exp: i64) -> String {
        let enc = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!(
            "{}.{}.sig",
            enc(r#"{"alg":"HS256"}"#),
            enc(&format!(r#"{{"sub":"edge-1","exp":{exp}}}"#))
        )
    }

    #[test]
    fn expiry_is_read_from_the_payload() {
        assert_eq!(expiry(&jwt(1_700_000_000)), Some(1_700_000_000_000));
        assert_eq!(expiry("not-a-jwt"), None);
    }

    #[test]
    fn the_token_file_is_read_again_when_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.jwt");
        std::fs::write(&path, format!("{}\n", jwt(1))).unwrap();
        let mut c = Credentials::Bearer(TokenFile::new(&path));
        assert_eq!(c.header().unwrap(), format!("Bearer {}", jwt(1)));
        let Credentials::Bearer(f) = &mut c else {
            unreachable!()
        };
        assert_eq!(f.refresh(), Ok(false), "unchanged file");
        // a longer token: the size changes even within the file system's time resolution
        std::fs::write(&path, jwt(1_000_000)).unwrap();
        assert_eq!(f.refresh(), Ok(true));
        assert_eq!(f.token().unwrap().expires, Some(1_000_000_000));
        std::fs::write(&path, "  \n").unwrap();
        assert!(f.refresh().is_err());
        std::fs::remove_file(&path).unwrap();
        assert!(c.header().is_err());
    }

    #[test]
    fn basic_from_config() {
        let cfg = crate::uplink::config::UplinkConfig {
            username: Some("edge-1".into()),
            password: Some("pw".into()),
            ..Default::default()
        };
        let mut c = Credentials::from_config(&cfg).unwrap();
        assert_eq!(c.header().unwrap(), "Basic ZWRnZS0xOnB3");
    }
}
