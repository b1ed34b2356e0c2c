//! Configuration: a raw TOML layer ([`RawConfig`], every table `deny_unknown_fields`) and the
//! validated [`Config`] the daemon runs on.
//!
//! - `raw`: the schema as written, and reading TOML into it key by key;
//! - `model`: the validated [`Config`] and its parts and defaults;
//! - `validate`: raw → model, every problem at once;
//! - `secrets`: where passwords live ([`Secret`]), read only at connect time;
//! - `diagnostics`: [`Diagnostic`], a problem with where it is and what it is, shared with the
//!   contracts import;
//! - here: loading a file, and the public names.
//!
//! Validation reports every problem at once, each naming its key, so an admin fixes a config in
//! one round instead of one error per restart: a table that does not fit its raw struct is read
//! again key by key, so an unknown or mistyped key is one problem beside the others of its
//! section, not a veil over them.
//!
//! Choices the design left open (the annotated `deploy/madoguchi.example.toml` says the same to
//! admins):
//! - `[intake]` and `[outbound]` are flat tables selected by `kind`; a key that belongs to the
//!   other kind is an error rather than silently ignored.
//! - Durations (`poll_interval`, `timeout`) are strings with a unit: `"90s"`, `"5m"`, `"1h"`.
//! - `password_file` may contain `${NAME}`, expanded from the environment when the password is
//!   read (systemd sets `$CREDENTIALS_DIRECTORY` only inside the service), so
//!   `password_file = "${CREDENTIALS_DIRECTORY}/imap"` works with `LoadCredential=`.
//! - IMAP always needs `user` + a password source; SMTP may run without authentication.
//! - `[staff] authentication` defaults to `"authentication-results"` with no trusted
//!   authserv-id, which authenticates no staff mail: a config without `[staff]` stays valid
//!   (staff mail is held, as before the section existed) and `check-config` warns when
//!   `desk.staff` lists anyone. Writing `authentication = "authentication-results"` or
//!   `trusted_authserv_ids` with no id is an error, since nothing could ever pass.
//! - A valid config can still have [`Config::warnings`]: printed by `check-config`, which
//!   still succeeds.

mod diagnostics;
mod model;
mod raw;
mod secrets;
mod validate;

#[cfg(test)]
mod tests;

use std::io;
use std::path::{Path, PathBuf};

use raw::parse_raw;

pub use diagnostics::{Diagnostic, Diagnostics, Place};
pub use model::*;
pub use raw::{
    RawConfig, RawDesk, RawHours, RawIntake, RawLicense, RawOutbound, RawStaff, RawStorage,
};
pub(crate) use secrets::expand_vars;
pub use secrets::{Secret, SecretError, SecretSource};
pub use validate::parse_duration;

/// The annotated example config, embedded so `demo` can write a working config file.
pub const EXAMPLE_TOML: &str = include_str!("../../deploy/madoguchi.example.toml");

/// Renders every problem on its own line, each prefixed by the config path when known.
pub fn render_errors(errors: &Diagnostics) -> String {
    errors.to_string()
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Invalid(#[from] Diagnostics),
}

impl Config {
    /// Reads, parses and validates a config file. Relative paths inside resolve against the
    /// file's directory (made absolute, so a later `chdir` cannot change their meaning).
    pub fn load(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        let given = path.as_ref();
        let text = std::fs::read_to_string(given).map_err(|source| ConfigError::Read {
            path: given.to_path_buf(),
            source,
        })?;
        let abs = std::path::absolute(given).unwrap_or_else(|_| given.to_path_buf());
        let base = abs.parent().map(Path::to_path_buf).unwrap_or_default();
        match Config::from_toml_str(&text, &base) {
            Ok(mut config) => {
                config.source_path = Some(abs);
                Ok(config)
            }
            Err(mut errors) => {
                let file = given.display().to_string();
                for problem in &mut errors.problems {
                    problem.file = Some(file.clone());
                }
                Err(errors.into())
            }
        }
    }

    /// Parses and validates TOML text; relative paths resolve against `base_dir`. Every problem
    /// of the file is reported: keys that do not fit the schema (unknown, wrong type) first, in
    /// file order, then the values that fail validation.
    pub fn from_toml_str(text: &str, base_dir: &Path) -> Result<Config, Diagnostics> {
        let parsed = parse_raw(text);
        let Some(raw) = parsed.raw else {
            return Err(parsed.problems.into());
        };
        let mut problems = parsed.problems;
        match Config::from_raw(raw, base_dir) {
            Ok(config) if problems.is_empty() => return Ok(config),
            Ok(_) => {}
            // A key left out for not fitting the schema reads as unset; what validation says
            // about it (or under it) is an artefact of that, not news.
            Err(more) => problems.extend(
                more.problems
                    .into_iter()
                    .filter(|p| !parsed.dropped.iter().any(|d| is_at_or_under(p.key(), d))),
            ),
        }
        Err(problems.into())
    }

    /// The embedded default (Maildir in, `.eml` files out, SQLite, all under `base_dir/var`)
    /// for the given desk address: what `demo` and a fresh install run on.
    pub fn default_for(base_dir: &Path, address: &str) -> Result<Config, Diagnostics> {
        let raw = RawConfig {
            desk: RawDesk {
                address: Some(address.to_owned()),
                ..RawDesk::default()
            },
            ..RawConfig::default()
        };
        Config::from_raw(raw, base_dir)
    }
}

/// `key` is `prefix` or a key inside it (`desk.staff` is under `desk`; `desk.staff[1]` under
/// `desk.staff`).
fn is_at_or_under(key: &str, prefix: &str) -> bool {
    key.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
}
