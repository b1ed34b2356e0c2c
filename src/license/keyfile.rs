//! The builtin issuer's signing key file: one line, the PASERK `k4.secret.…`. Made by
//! [`keygen`] (mode 0600, never over an existing file); read with its mode checked, since a key
//! others can read lets them mint license keys. The secret is never logged or printed: errors
//! say what is wrong with the file, never what is in it.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use pasetors::keys::{AsymmetricKeyPair, Generate};
use pasetors::version4::V4;
use zeroize::Zeroizing;

use super::builtin::{PublicKeyInfo, SigningKey};
use super::{Env, LicenseError};
use crate::config::expand_vars;

/// A key file is a line of about 100 bytes; more is not a key file.
const MAX_KEY_FILE: u64 = 4096;

/// Mode bits a signing key file must not have: group write and anything for others.
const FORBIDDEN_MODE: u32 = 0o027;

/// Makes a new signing key and writes it to `path` (the PASERK `k4.secret.…` and a newline,
/// mode 0600). Refuses to overwrite an existing file: keys issued with it could no longer be
/// checked. Returns the public key to hand to the product.
pub fn keygen(path: &Path) -> Result<PublicKeyInfo, LicenseError> {
    let pair = AsymmetricKeyPair::<V4>::generate()
        .map_err(|e| LicenseError::Generate(format!("{e:?}")))?;
    let key = SigningKey::from_secret(pair.secret)
        .map_err(|reason| LicenseError::Generate(reason.to_owned()))?;
    let text = key
        .secret_paserk()
        .map_err(|reason| LicenseError::Generate(reason.to_owned()))?;
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| match source.kind() {
            io::ErrorKind::AlreadyExists => LicenseError::KeyExists {
                path: path.to_path_buf(),
            },
            _ => LicenseError::CreateKey {
                path: path.to_path_buf(),
                source,
            },
        })?;
    let written = file
        .write_all(text.as_bytes())
        .and_then(|()| file.write_all(b"\n"))
        .and_then(|()| file.sync_all());
    if let Err(source) = written {
        // A half-written key is no key; leave nothing that looks like one.
        let _ = std::fs::remove_file(path);
        return Err(LicenseError::CreateKey {
            path: path.to_path_buf(),
            source,
        });
    }
    Ok(key.public().clone())
}

/// The signing key in the file `template` names (`${NAME}` expanded from `env`).
pub(super) fn read_signing_key(template: &Path, env: Env<'_>) -> Result<SigningKey, LicenseError> {
    let path = expand(template, env)?;
    let mut file = File::open(&path).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => LicenseError::MissingKey { path: path.clone() },
        _ => LicenseError::ReadKey {
            path: path.clone(),
            source,
        },
    })?;
    // The mode of the file opened, not of whatever the path names a moment later.
    let meta = file.metadata().map_err(|source| LicenseError::ReadKey {
        path: path.clone(),
        source,
    })?;
    if !meta.is_file() {
        return Err(LicenseError::NotASecretKey {
            path,
            reason: "it is not a regular file",
        });
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & FORBIDDEN_MODE != 0 {
        return Err(LicenseError::KeyMode { path, mode });
    }
    let mut bytes = Zeroizing::new(Vec::new());
    (&mut file)
        .take(MAX_KEY_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| LicenseError::ReadKey {
            path: path.clone(),
            source,
        })?;
    let not_a_key = |reason| LicenseError::NotASecretKey {
        path: path.clone(),
        reason,
    };
    if bytes.len() as u64 > MAX_KEY_FILE {
        return Err(not_a_key("it is larger than 4 KiB"));
    }
    let text = std::str::from_utf8(&bytes).map_err(|_| not_a_key("it is not text"))?;
    let text = text.trim();
    if text.is_empty() {
        return Err(not_a_key("it is empty"));
    }
    if text.starts_with("k4.public.") {
        return Err(not_a_key(
            "it holds a public key (k4.public.…); the signing key is the file keygen wrote",
        ));
    }
    SigningKey::from_paserk(text).map_err(not_a_key)
}

/// `template` with `${NAME}` expanded; the result must be absolute (a relative path in the
/// config was already made absolute; one from a variable must be).
fn expand(template: &Path, env: Env<'_>) -> Result<PathBuf, LicenseError> {
    // Not UTF-8, so it cannot hold a `${…}` the config accepted: used as is.
    let Some(text) = template.to_str() else {
        return Ok(template.to_path_buf());
    };
    let fail = |reason| LicenseError::KeyPath {
        template: text.to_owned(),
        reason,
    };
    let expanded = expand_vars(text, env).map_err(fail)?;
    let path = PathBuf::from(&expanded);
    if path.is_relative() {
        return Err(fail(format!("{expanded:?} is not an absolute path")));
    }
    Ok(path)
}

/// Whether expanding `template` failed for want of a variable that is only set elsewhere
/// (`$CREDENTIALS_DIRECTORY` outside the service).
pub(super) fn unset_variable(template: &Path, env: Env<'_>) -> Option<String> {
    let text = template.to_str()?;
    let mut rest = text;
    while let Some(i) = rest.find("${") {
        let after = &rest[i + 2..];
        let end = after.find('}')?;
        let name = &after[..end];
        if env(name).is_none() {
            return Some(name.to_owned());
        }
        rest = &after[end + 1..];
    }
    None
}
