//! The builtin issuer's format: PASETO v4.public tokens (Ed25519, the `pasetors` crate) whose
//! payload is our claims JSON and whose footer is `{"kid":"k4.pid.…"}`, the PASERK id of the
//! public key; keys as PASERK `k4.secret.…` / `k4.public.…`.
//!
//! pasetors' own `Claims` type is not used: it brings `exp`/`nbf` rules a license key does not
//! have. The token is still the standard one: pasetors signs and verifies our JSON bytes.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, SecondsFormat, Utc};
use pasetors::keys::{AsymmetricPublicKey, AsymmetricSecretKey};
use pasetors::paserk::{FormatAsPaserk, Id};
use pasetors::token::UntrustedToken;
use pasetors::version4::{PublicToken, V4};
use pasetors::{Public, errors::Error as PasetoError};
use serde::{Deserialize, Serialize, Serializer};
use zeroize::Zeroizing;

use super::{InvalidKey, KeyRequest, LicenseError};

/// The header of every token we make and accept.
const HEADER: &str = "v4.public.";

/// A token longer than this is not one of ours (ours are about 400 bytes).
const MAX_TOKEN_LEN: usize = 16 * 1024;

/// A public key as the product sees it: PASERK `k4.public.…` and its id `k4.pid.…` (the `kid`
/// in every token's footer). Serialized as `{"public_key", "key_id"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublicKeyInfo {
    #[serde(rename = "public_key")]
    pub paserk: String,
    #[serde(rename = "key_id")]
    pub pid: String,
}

impl PublicKeyInfo {
    /// Reads a PASERK `k4.public.…` (surrounding whitespace ignored) and computes its id.
    pub fn parse(paserk: &str) -> Result<PublicKeyInfo, LicenseError> {
        let bad = |reason| LicenseError::PublicKey { reason };
        let text = paserk.trim();
        let body = text
            .strip_prefix("k4.public.")
            .ok_or_else(|| bad("it does not start with \"k4.public.\""))?;
        let bytes = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| bad("it is not base64url after \"k4.public.\""))?;
        let key = AsymmetricPublicKey::<V4>::from(&bytes)
            .map_err(|_| bad("it does not hold 32 bytes"))?;
        PublicKeyInfo::of(&key).map_err(bad)
    }

    fn of(key: &AsymmetricPublicKey<V4>) -> Result<PublicKeyInfo, &'static str> {
        Ok(PublicKeyInfo {
            paserk: paserk(key)?,
            pid: paserk(&Id::from(key))?,
        })
    }

    fn key(&self) -> Result<AsymmetricPublicKey<V4>, LicenseError> {
        AsymmetricPublicKey::<V4>::try_from(self.paserk.as_str()).map_err(|_| {
            LicenseError::PublicKey {
                reason: "it is not a PASERK k4.public key",
            }
        })
    }
}

fn paserk(key: &dyn FormatAsPaserk) -> Result<String, &'static str> {
    let mut out = String::new();
    key.fmt(&mut out)
        .map_err(|_| "cannot write the key as PASERK")?;
    Ok(out)
}

/// The builtin issuer's signing key. Its `Debug` shows only the key id.
pub struct SigningKey {
    secret: AsymmetricSecretKey<V4>,
    public: PublicKeyInfo,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.public.pid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Reads a PASERK `k4.secret.…` (64 bytes: the Ed25519 seed, then its public key). The
    /// `Err` says what is wrong without quoting the text.
    pub(super) fn from_paserk(text: &str) -> Result<SigningKey, &'static str> {
        let body = text
            .strip_prefix("k4.secret.")
            .ok_or("it does not start with \"k4.secret.\"")?;
        let bytes = Zeroizing::new(
            URL_SAFE_NO_PAD
                .decode(body)
                .map_err(|_| "it is not base64url after \"k4.secret.\"")?,
        );
        if bytes.len() != 64 {
            return Err("it does not hold 64 bytes");
        }
        // pasetors panics on an all-zero seed; a file must never make the desk panic.
        if bytes[..32].iter().all(|b| *b == 0) {
            return Err("its seed is all zeros");
        }
        let secret = AsymmetricSecretKey::<V4>::from(&bytes)
            .map_err(|_| "its public half does not belong to its seed")?;
        SigningKey::from_secret(secret)
    }

    pub(super) fn from_secret(secret: AsymmetricSecretKey<V4>) -> Result<SigningKey, &'static str> {
        let public = AsymmetricPublicKey::<V4>::try_from(&secret)
            .map_err(|_| "cannot derive its public key")?;
        Ok(SigningKey {
            public: PublicKeyInfo::of(&public)?,
            secret,
        })
    }

    /// The PASERK `k4.secret.…`, for the key file only.
    pub(super) fn secret_paserk(&self) -> Result<Zeroizing<String>, &'static str> {
        let mut out = Zeroizing::new(String::new());
        self.secret
            .fmt(&mut *out)
            .map_err(|_| "cannot write the key as PASERK")?;
        Ok(out)
    }

    pub fn public(&self) -> &PublicKeyInfo {
        &self.public
    }

    /// The key for `req`: claims JSON signed, footer `{"kid":"k4.pid.…"}`.
    pub fn issue(&self, req: &KeyRequest) -> Result<String, LicenseError> {
        let payload = Payload {
            product: &req.product,
            sub: &req.license_serial,
            contract: &req.contract_id,
            server_id: &req.server_id,
            iat: rfc3339(&req.issued_at),
            jti: &req.jti,
        };
        let payload = serde_json::to_vec(&payload).map_err(|e| LicenseError::Sign {
            reason: e.to_string(),
        })?;
        let footer = serde_json::to_vec(&Footer {
            kid: self.public.pid.clone(),
        })
        .map_err(|e| LicenseError::Sign {
            reason: e.to_string(),
        })?;
        self.sign_raw(&payload, &footer)
    }

    /// A v4.public token over any payload and footer (no implicit assertion).
    pub(super) fn sign_raw(&self, payload: &[u8], footer: &[u8]) -> Result<String, LicenseError> {
        let footer = (!footer.is_empty()).then_some(footer);
        PublicToken::sign(&self.secret, payload, footer, None).map_err(|e| LicenseError::Sign {
            reason: format!("{e:?}"),
        })
    }
}

/// What a license key says, read back from a verified token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Claims {
    pub product: String,
    /// The license serial.
    pub sub: String,
    /// The contract id.
    pub contract: String,
    /// The server the key is for.
    pub server_id: String,
    /// When it was issued, to the second.
    #[serde(serialize_with = "serialize_rfc3339")]
    pub iat: DateTime<Utc>,
    /// The application's unique id.
    pub jti: String,
    /// The footer's key id: the signing key's PASERK `k4.pid.…`.
    pub kid: String,
}

/// The payload as signed: the claims in this order, `iat` as RFC 3339 in UTC to the second.
#[derive(Serialize)]
struct Payload<'a> {
    product: &'a str,
    sub: &'a str,
    contract: &'a str,
    server_id: &'a str,
    iat: String,
    jti: &'a str,
}

/// The payload as read: other claims are allowed and ignored.
#[derive(Deserialize)]
struct ReadPayload {
    product: String,
    sub: String,
    contract: String,
    server_id: String,
    iat: String,
    jti: String,
}

#[derive(Serialize, Deserialize)]
struct Footer {
    kid: String,
}

pub(super) fn rfc3339(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub(super) fn serialize_rfc3339<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(t))
}

/// Checks a license key against `public`: a v4.public token whose footer names this key
/// (`kid`), whose signature verifies, and whose payload has every claim.
pub fn verify(token: &str, public: &PublicKeyInfo) -> Result<Claims, LicenseError> {
    let key = public.key()?;
    let token = token.trim();
    let footer = footer_of(token)?;
    let footer: Footer = serde_json::from_slice(&footer).map_err(|_| InvalidKey::BadFooter)?;
    if footer.kid != public.pid {
        return Err(InvalidKey::OtherKey {
            kid: footer.kid,
            expected: public.pid.clone(),
        }
        .into());
    }
    let (payload, _) = verify_raw(&key, token)?;
    let p: ReadPayload = serde_json::from_str(&payload)
        .map_err(|e| InvalidKey::Claims(format!("not the claims of a license key ({e})")))?;
    let iat = DateTime::parse_from_rfc3339(&p.iat)
        .map_err(|_| InvalidKey::Claims(format!("iat {:?} is not an RFC 3339 time", p.iat)))?
        .with_timezone(&Utc);
    Ok(Claims {
        product: p.product,
        sub: p.sub,
        contract: p.contract,
        server_id: p.server_id,
        iat,
        jti: p.jti,
        kid: footer.kid,
    })
}

/// The decoded footer of a v4.public token, before anything is verified.
fn footer_of(token: &str) -> Result<Vec<u8>, InvalidKey> {
    if !token.starts_with(HEADER) {
        return Err(InvalidKey::NotV4Public);
    }
    if token.len() > MAX_TOKEN_LEN {
        return Err(InvalidKey::Malformed("it is longer than 16 KiB"));
    }
    match token.split('.').collect::<Vec<_>>()[..] {
        [_, _, _] => Err(InvalidKey::NoFooter),
        [_, _, _, footer] => URL_SAFE_NO_PAD
            .decode(footer)
            .map_err(|_| InvalidKey::BadFooter),
        _ => Err(InvalidKey::Malformed(
            "it does not have 3 or 4 dot-separated parts",
        )),
    }
}

/// Verifies a v4.public token's signature (no implicit assertion); its payload and footer.
pub(super) fn verify_raw(
    key: &AsymmetricPublicKey<V4>,
    token: &str,
) -> Result<(String, Vec<u8>), InvalidKey> {
    if !token.starts_with(HEADER) {
        return Err(InvalidKey::NotV4Public);
    }
    let untrusted = UntrustedToken::<Public, V4>::try_from(token)
        .map_err(|_| InvalidKey::Malformed("it is not base64url, or too short to be signed"))?;
    match PublicToken::verify(key, &untrusted, None, None) {
        Ok(trusted) => Ok((trusted.payload().to_owned(), trusted.footer().to_vec())),
        Err(PasetoError::PayloadInvalidUtf8) => {
            Err(InvalidKey::Claims("the payload is not UTF-8".to_owned()))
        }
        Err(_) => Err(InvalidKey::Signature),
    }
}
