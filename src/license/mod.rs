//! License keys (R7, R8): the issuer that makes the key for one application, as `[license]`
//! configures it. Part of the I/O shell (it reads the signing key file and runs the vendor's
//! command) but with no clock and no store: the desk passes `issued_at`, stores the key before
//! it is mailed, and retries a failed issue with backoff.
//!
//! - `builtin`: PASETO v4.public tokens (pasetors), PASERK keys and ids, [`verify`];
//! - `keyfile`: the signing key's file: [`keygen`], reading it with its mode checked;
//! - `command`: the vendor's generator as a child process, with a timeout;
//! - `preflight`: [`preflight`], what `check-config` checks beyond the file;
//! - here: the request, the issued key, [`Issuer`], the errors.
//!
//! A builtin key is `v4.public.<claims JSON + Ed25519 signature>.<footer>`, with claims
//! `{"product","sub","contract","server_id","iat","jti"}` (`sub` the license serial, `iat`
//! RFC 3339 UTC to the second) and footer `{"kid":"k4.pid.…"}`, the PASERK id of the public
//! key the product checks it with (`license public-key`).

mod builtin;
mod command;
mod keyfile;
mod preflight;

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::{IssuerConfig, LicenseConfig};

pub use builtin::{Claims, PublicKeyInfo, SigningKey, verify};
pub use command::{CommandIssuer, MAX_KEY_LEN, PASSED_ENV};
pub use keyfile::keygen;
pub use preflight::{Preflight, preflight, preflight_with};

/// How the environment is read (`${NAME}` in `signing_key_file`); tests pass their own.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// What a key is issued for: the claims of a builtin key, and the JSON a command issuer gets
/// on stdin (`issued_at` as RFC 3339 UTC to the second).
#[derive(Debug, Clone, Serialize)]
pub struct KeyRequest {
    /// The application's unique id (claim `jti`).
    pub jti: String,
    /// Claim `product` (`[license] product`).
    pub product: String,
    /// Claim `sub`.
    pub license_serial: String,
    /// Claim `contract`.
    pub contract_id: String,
    /// The new server (claim `server_id`).
    pub server_id: String,
    /// Claim `iat`; the desk's clock, passed in.
    #[serde(serialize_with = "builtin::serialize_rfc3339")]
    pub issued_at: DateTime<Utc>,
    pub ticket: u64,
}

/// A key as issued, with the id staff see instead of the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedKey {
    pub key: String,
    /// Builtin: the signing key's PASERK `k4.pid.…`. Command: the id the command gave, else
    /// `sha256:` and 16 hex digits of the key's SHA-256.
    pub key_id: String,
}

/// The configured issuer, ready to issue: the signing key read and checked, or the command.
#[derive(Debug)]
pub enum Issuer {
    Builtin(SigningKey),
    Command(CommandIssuer),
}

impl Issuer {
    /// The issuer `cfg` names; a builtin issuer's key file is read and checked now, with
    /// `${NAME}` in its path expanded from the process environment; a command issuer takes
    /// the few variables it passes on ([`PASSED_ENV`]) from it.
    pub fn from_config(cfg: &LicenseConfig) -> Result<Issuer, LicenseError> {
        Issuer::from_config_with(cfg, &|name| std::env::var(name).ok())
    }

    /// [`Issuer::from_config`] with an explicit environment.
    pub fn from_config_with(cfg: &LicenseConfig, env: Env<'_>) -> Result<Issuer, LicenseError> {
        match &cfg.issuer {
            IssuerConfig::Builtin { signing_key_file } => Ok(Issuer::Builtin(
                keyfile::read_signing_key(signing_key_file, env)?,
            )),
            IssuerConfig::Command { argv, timeout } => Ok(Issuer::Command(CommandIssuer::new(
                argv.clone(),
                *timeout,
                env,
            ))),
        }
    }

    /// The key for `req`. The builtin issuer only computes; the command issuer runs the
    /// command once (killed after its timeout).
    pub async fn issue(&self, req: &KeyRequest) -> Result<IssuedKey, LicenseError> {
        check_request(req)?;
        match self {
            Issuer::Builtin(key) => Ok(IssuedKey {
                key: key.issue(req)?,
                key_id: key.public().pid.clone(),
            }),
            Issuer::Command(command) => command.issue(req).await,
        }
    }

    /// The public key of a builtin issuer.
    pub fn public_key(&self) -> Option<&PublicKeyInfo> {
        match self {
            Issuer::Builtin(key) => Some(key.public()),
            Issuer::Command(_) => None,
        }
    }
}

/// A key names a serial, a contract and a server; one without them is a bug upstream.
fn check_request(req: &KeyRequest) -> Result<(), LicenseError> {
    for (name, value) in [
        ("jti", &req.jti),
        ("product", &req.product),
        ("license_serial", &req.license_serial),
        ("contract_id", &req.contract_id),
        ("server_id", &req.server_id),
    ] {
        if value.trim().is_empty() {
            return Err(LicenseError::Request {
                reason: format!("its {name} is empty"),
            });
        }
    }
    Ok(())
}

/// The public key of the configured builtin issuer's signing key.
pub fn public_key(cfg: &LicenseConfig) -> Result<PublicKeyInfo, LicenseError> {
    match Issuer::from_config(cfg)? {
        Issuer::Builtin(key) => Ok(key.public().clone()),
        Issuer::Command(_) => Err(LicenseError::NotBuiltin),
    }
}

/// Why a key could not be issued or checked. Never carries the signing key.
#[derive(Debug, thiserror::Error)]
pub enum LicenseError {
    #[error("cannot expand signing_key_file {template:?}: {reason}")]
    KeyPath { template: String, reason: String },
    #[error(
        "cannot read signing key file {}: it does not exist; make it with \
         `madoguchi license keygen {}`",
        path.display(), path.display()
    )]
    MissingKey { path: PathBuf },
    #[error("cannot read signing key file {}", path.display())]
    ReadKey {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "cannot use signing key file {}: its mode {mode:04o} lets {}; run `chmod 600 {}` \
         (or 640 to let its group read it)",
        path.display(),
        if mode & 0o007 != 0 { "any user on the host use it" } else { "its group change it" },
        path.display()
    )]
    KeyMode { path: PathBuf, mode: u32 },
    #[error(
        "cannot use signing key file {}: it is not a PASETO v4 signing key (PASERK \
         k4.secret.…): {reason}",
        path.display()
    )]
    NotASecretKey { path: PathBuf, reason: &'static str },
    #[error(
        "cannot write signing key file {}: it already exists, and keygen never overwrites a \
         key (keys issued with it could no longer be checked); move it away first",
        path.display()
    )]
    KeyExists { path: PathBuf },
    #[error("cannot create signing key file {}", path.display())]
    CreateKey {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot generate a signing key: {0}")]
    Generate(String),
    #[error("cannot sign the license key: {reason}")]
    Sign { reason: String },
    #[error("cannot read the public key: {reason} (expected PASERK k4.public.…)")]
    PublicKey { reason: &'static str },
    #[error(
        "cannot show a public key: [license] issuer is \"command\", whose keys the vendor's \
         generator holds"
    )]
    NotBuiltin,
    #[error("cannot issue a key for this application: {reason}")]
    Request { reason: String },
    #[error("invalid license key: {0}")]
    Invalid(#[from] InvalidKey),
    #[error("cannot start the key command {program}")]
    CommandStart {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot talk to the key command {program}")]
    CommandIo {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "cannot issue a key: the key command {program} {status}{}",
        stderr_part(stderr)
    )]
    CommandFailed {
        program: String,
        status: String,
        stderr: String,
    },
    #[error(
        "cannot issue a key: the key command {program} printed no key{}",
        stderr_part(stderr)
    )]
    CommandEmpty { program: String, stderr: String },
    #[error("cannot issue a key: the key command {program} printed {reason}")]
    CommandOutput {
        program: String,
        reason: &'static str,
    },
    #[error(
        "cannot issue a key: the key command {program} did not finish within {}s and was killed",
        timeout.as_secs()
    )]
    CommandTimeout { program: String, timeout: Duration },
}

fn stderr_part(stderr: &str) -> String {
    if stderr.is_empty() {
        String::new()
    } else {
        format!("; its stderr: {stderr}")
    }
}

/// Why a token is not a valid license key for the public key it was checked against.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidKey {
    #[error("it is not a PASETO v4.public token (it must start with \"v4.public.\")")]
    NotV4Public,
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    #[error("it has no footer naming the key it was signed with")]
    NoFooter,
    #[error("its footer is not {{\"kid\":\"k4.pid.…\"}}")]
    BadFooter,
    #[error("it was signed with another key (kid {kid}; this public key is {expected})")]
    OtherKey { kid: String, expected: String },
    #[error("the signature does not verify: the token was changed, or signed with another key")]
    Signature,
    #[error("{0}")]
    Claims(String),
}
