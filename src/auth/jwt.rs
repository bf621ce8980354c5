//! JWT bearer tokens verified offline (HS256 / RS256 / ES256 via `jsonwebtoken` with the pure
//! Rust backend) against keys or a JWKS file per configured issuer. `iss` picks the issuer, whose
//! prefix makes the subject `<prefix>:<sub>`; `exp` (required) and `nbf` are checked here with a
//! 10 s leeway as in Ditto; `alg: none` and every other algorithm are refused.

use crate::error::DittoError;
use base64::Engine;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value;
use std::path::PathBuf;

/// One trusted JWT issuer (`[[auth.jwt]]`): tokens whose `iss` matches authenticate as
/// `<prefix>:<sub>`; verified offline with an HS256 secret, a PEM public key or a JWKS file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct JwtIssuer {
    /// expected `iss` claim (without scheme, `https://` is also accepted, as in Ditto)
    pub issuer: String,
    /// subject prefix (`<prefix>:<sub>`)
    pub prefix: String,
    /// HS256 shared secret
    #[serde(default)]
    pub secret: Option<String>,
    /// PEM file with an RSA (RS256) or P-256 (ES256) public key
    #[serde(default)]
    pub public_key_file: Option<PathBuf>,
    /// JWKS file (`{"keys": [...]}`) with RSA / EC P-256 / oct keys
    #[serde(default)]
    pub jwks_file: Option<PathBuf>,
    /// required `aud`, if set
    #[serde(default)]
    pub audience: Option<String>,
}

/// Clock skew tolerated for `exp` / `nbf` (Ditto's default).
pub const LEEWAY_MS: i64 = 10_000;

/// One verification key.
pub struct Key {
    alg: Algorithm,
    key: DecodingKey,
    kid: Option<String>,
}

/// Loads the keys of an issuer from its secret, PEM file and/or JWKS file.
pub fn load_keys(j: &JwtIssuer) -> Result<Vec<Key>, String> {
    let mut keys = Vec::new();
    if let Some(s) = &j.secret {
        if s.len() < 16 {
            return Err("secret must be at least 16 bytes".into());
        }
        keys.push(Key {
            alg: Algorithm::HS256,
            key: DecodingKey::from_secret(s.as_bytes()),
            kid: None,
        });
    }
    if let Some(f) = &j.public_key_file {
        let pem = std::fs::read(f).map_err(|e| format!("{}: {e}", f.display()))?;
        let key = if let Ok(k) = DecodingKey::from_rsa_pem(&pem) {
            Key {
                alg: Algorithm::RS256,
                key: k,
                kid: None,
            }
        } else if let Ok(k) = DecodingKey::from_ec_pem(&pem) {
            Key {
                alg: Algorithm::ES256,
                key: k,
                kid: None,
            }
        } else {
            return Err(format!(
                "{}: not an RSA or EC public key (PEM)",
                f.display()
            ));
        };
        keys.push(key);
    }
    if let Some(f) = &j.jwks_file {
        let text = std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?;
        let set: JwkSet =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", f.display()))?;
        for jwk in &set.keys {
            let alg = match &jwk.algorithm {
                AlgorithmParameters::RSA(_) => Algorithm::RS256,
                AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => {
                    Algorithm::ES256
                }
                AlgorithmParameters::OctetKey(_) => Algorithm::HS256,
                _ => continue,
            };
            let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("{}: {e}", f.display()))?;
            keys.push(Key {
                alg,
                key,
                kid: jwk.common.key_id.clone(),
            });
        }
    }
    if keys.is_empty() {
        return Err("no key configured (secret, public_key_file or jwks_file)".into());
    }
    Ok(keys)
}

struct Issuer {
    cfg: JwtIssuer,
    keys: Vec<Key>,
}

/// A verified token.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    /// `<prefix>:<sub>`
    pub subject: String,
    /// `exp` in epoch millis
    pub expires_at: i64,
}

/// Verifies tokens of the configured issuers.
#[derive(Default)]
pub struct JwtVerifier {
    issuers: Vec<Issuer>,
}

/// 400 `jwt:invalid`.
pub fn jwt_invalid() -> DittoError {
    DittoError::new(400, "jwt:invalid", "The JSON Web Token is not valid.")
        .describe("The provided token string did not have the expected format.")
}

/// 401 `gateway:authentication.failed` for a token that did not verify.
pub fn not_verified(why: impl Into<String>) -> DittoError {
    DittoError::new(
        401,
        "gateway:authentication.failed",
        "The JWT could not be verified.",
    )
    .describe(why.into())
}

fn part(s: &str) -> Result<Value, DittoError> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .map_err(|_| jwt_invalid())?;
    crate::bounds::from_slice(&bytes, crate::bounds::MAX_JSON_DEPTH).map_err(|_| jwt_invalid())
}

impl JwtVerifier {
    /// From the config (issuers whose keys fail to load are left out; `check-config` reports them).
    pub fn new(cfg: &[JwtIssuer]) -> JwtVerifier {
        let issuers = cfg
            .iter()
            .filter_map(|c| match load_keys(c) {
                Ok(keys) => Some(Issuer {
                    cfg: c.clone(),
                    keys,
                }),
                Err(e) => {
                    tracing::error!(issuer = %c.issuer, error = %e, "JWT issuer disabled");
                    None
                }
            })
            .collect();
        JwtVerifier { issuers }
    }

    /// True if no issuer is configured.
    pub fn is_empty(&self) -> bool {
        self.issuers.is_empty()
    }

    fn issuer(&self, iss: &str) -> Option<&Issuer> {
        let bare = |s: &str| {
            s.trim_start_matches("https://")
                .trim_end_matches('/')
                .to_owned()
        };
        self.issuers
            .iter()
            .find(|i| i.cfg.issuer == iss || bare(&i.cfg.issuer) == bare(iss))
    }

    /// Verifies a compact JWS at `now` (epoch millis).
    pub fn verify(&self, token: &str, now: i64) -> Result<Verified, DittoError> {
        let parts: Vec<&str> = token.trim().split('.').collect();
        let [h, p, _sig] = parts.as_slice() else {
            return Err(jwt_invalid());
        };
        let header = part(h)?;
        let claims = part(p)?;
        let alg = match header.get("alg").and_then(Value::as_str) {
            Some("HS256") => Algorithm::HS256,
            Some("RS256") => Algorithm::RS256,
            Some("ES256") => Algorithm::ES256,
            other => {
                return Err(not_verified(format!(
                    "The JWT algorithm '{}' is not supported (use HS256, RS256 or ES256).",
                    other.unwrap_or("<missing>")
                )))
            }
        };
        let iss = claims
            .get("iss")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let issuer = self.issuer(iss).ok_or_else(|| {
            DittoError::new(
                401,
                "gateway:jwt.issuer.notsupported",
                format!("The JWT issuer '{iss}' is not supported."),
            )
            .describe("Check if your JWT is correct.")
        })?;
        let kid = header.get("kid").and_then(Value::as_str);
        let mut validation = Validation::new(alg);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        let verified = issuer
            .keys
            .iter()
            .filter(|k| {
                k.alg == alg && (kid.is_none() || k.kid.is_none() || k.kid.as_deref() == kid)
            })
            .any(|k| jsonwebtoken::decode::<Value>(token.trim(), &k.key, &validation).is_ok());
        if !verified {
            return Err(not_verified("The signature of the JWT is invalid."));
        }
        let secs = |name: &str| {
            claims
                .get(name)
                .and_then(Value::as_f64)
                .map(|s| (s * 1000.0) as i64)
        };
        let exp = secs("exp").ok_or_else(|| not_verified("The JWT has no 'exp' claim."))?;
        if now > exp + LEEWAY_MS {
            return Err(not_verified(format!(
                "The JWT expired at {}.",
                crate::clock::format_millis(exp)
            )));
        }
        if let Some(nbf) = secs("nbf") {
            if now + LEEWAY_MS < nbf {
                return Err(not_verified("The JWT is not valid yet ('nbf')."));
            }
        }
        if let Some(aud) = &issuer.cfg.audience {
            let ok = match claims.get("aud") {
                Some(Value::String(a)) => a == aud,
                Some(Value::Array(a)) => a.iter().any(|x| x.as_str() == Some(aud)),
                _ => false,
            };
            if !ok {
                return Err(not_verified(format!(
                    "The JWT audience does not contain '{aud}'."
                )));
            }
        }
        let sub = claims
            .get("sub")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| not_verified("The JWT has no 'sub' claim."))?;
        Ok(Verified {
            subject: format!("{}:{sub}", issuer.cfg.prefix),
            expires_at: exp,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{encode, EncodingKey, Header};
    use serde_json::json;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";
    const NOW: i64 = 1_700_000_000_000;

    fn verifier() -> JwtVerifier {
        JwtVerifier::new(&[JwtIssuer {
            issuer: "issuer.example".into(),
            prefix: "ex".into(),
            secret: Some(SECRET.into()),
            public_key_file: None,
            jwks_file: None,
            audience: None,
        }])
    }

    fn token(claims: Value, secret: &str) -> String {
        encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    #[test]
    fn hs256_subject_expiry_and_refusals() {
        let v = verifier();
        let exp = NOW / 1000 + 60;
        let ok = token(
            json!({"iss": "https://issuer.example", "sub": "alice", "exp": exp}),
            SECRET,
        );
        assert_eq!(
            v.verify(&ok, NOW).unwrap(),
            Verified {
                subject: "ex:alice".into(),
                expires_at: exp * 1000
            }
        );
        let e = v.verify(&ok, NOW + 71_000).unwrap_err();
        assert_eq!(
            (e.status, &*e.error),
            (401, "gateway:authentication.failed")
        );
        let forged = token(
            json!({"iss": "issuer.example", "sub": "alice", "exp": exp}),
            "another-secret-of-32-bytes-xxxxx",
        );
        assert_eq!(v.verify(&forged, NOW).unwrap_err().status, 401);
        let other = token(json!({"iss": "evil", "sub": "alice", "exp": exp}), SECRET);
        assert_eq!(
            v.verify(&other, NOW).unwrap_err().error,
            "gateway:jwt.issuer.notsupported"
        );
        let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        let none = format!(
            "{}.{}.",
            b64(json!({"alg": "none", "typ": "JWT"})),
            b64(json!({"iss": "issuer.example", "sub": "alice", "exp": exp}))
        );
        let e = v.verify(&none, NOW).unwrap_err();
        assert_eq!(
            (e.status, &*e.error),
            (401, "gateway:authentication.failed")
        );
        assert_eq!(v.verify("garbage", NOW).unwrap_err().error, "jwt:invalid");
        let nbf = token(
            json!({"iss": "issuer.example", "sub": "a", "exp": exp, "nbf": exp}),
            SECRET,
        );
        assert!(v.verify(&nbf, NOW).is_err());
    }
}
