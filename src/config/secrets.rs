//! Passwords are never in the config: a [`Secret`] says where one lives (`password_file` or
//! `password_env`) and reads it only when a connection is made, so rotating it needs no reload
//! and a loaded config never carries it. `password_file` may contain `${NAME}`, expanded from
//! the environment at that moment: systemd sets `$CREDENTIALS_DIRECTORY` only inside the
//! service, so `password_file = "${CREDENTIALS_DIRECTORY}/imap"` works with `LoadCredential=`.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Where a password comes from. Holds no password itself, so it is safe to log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// A file whose contents (trailing newline trimmed) are the password. May contain `${NAME}`,
    /// expanded from the environment at [`Secret::resolve`] time.
    File(PathBuf),
    /// An environment variable holding the password.
    Env(String),
}

/// A password reference, resolved at connect time so rotating the secret needs no reload and a
/// loaded config never carries it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    source: SecretSource,
}

// Hand-written so that adding a cached value later can never leak it through `{:?}`.
impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Secret").field(&self.source).finish()
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            SecretSource::File(p) => write!(f, "password_file {}", p.display()),
            SecretSource::Env(n) => write!(f, "password_env {n}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cannot read password file {}", path.display())]
    ReadFile {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("password file {} is empty", path.display())]
    EmptyFile { path: PathBuf },
    #[error("environment variable {name} is not set")]
    EnvNotSet { name: String },
    #[error("environment variable {name} is empty")]
    EnvEmpty { name: String },
    #[error("cannot expand password_file {template:?}: {reason}")]
    Expand { template: String, reason: String },
}

impl Secret {
    pub fn file(path: impl Into<PathBuf>) -> Secret {
        Secret {
            source: SecretSource::File(path.into()),
        }
    }

    pub fn env(name: impl Into<String>) -> Secret {
        Secret {
            source: SecretSource::Env(name.into()),
        }
    }

    pub fn source(&self) -> &SecretSource {
        &self.source
    }

    /// Reads the password now, from the process environment.
    pub fn resolve(&self) -> Result<String, SecretError> {
        self.resolve_with(|name| std::env::var(name).ok())
    }

    /// Like [`Secret::resolve`] with an explicit environment (tests; no global state).
    pub fn resolve_with(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<String, SecretError> {
        match &self.source {
            SecretSource::Env(name) => match env(name) {
                None => Err(SecretError::EnvNotSet { name: name.clone() }),
                Some(v) if v.is_empty() => Err(SecretError::EnvEmpty { name: name.clone() }),
                Some(v) => Ok(v),
            },
            SecretSource::File(template) => {
                let path = match template.to_str() {
                    Some(t) => {
                        let expanded =
                            expand_vars(t, &env).map_err(|reason| SecretError::Expand {
                                template: t.to_owned(),
                                reason,
                            })?;
                        let path = PathBuf::from(&expanded);
                        if path.is_relative() {
                            return Err(SecretError::Expand {
                                template: t.to_owned(),
                                reason: format!("{expanded:?} is not an absolute path"),
                            });
                        }
                        path
                    }
                    // Not UTF-8, so it cannot contain a `${...}` we wrote: use as is.
                    None => template.clone(),
                };
                let text =
                    std::fs::read_to_string(&path).map_err(|source| SecretError::ReadFile {
                        path: path.clone(),
                        source,
                    })?;
                let password = text.trim_end_matches(['\n', '\r']);
                if password.is_empty() {
                    return Err(SecretError::EmptyFile { path });
                }
                Ok(password.to_owned())
            }
        }
    }
}

/// Expands `${NAME}`; a `$` not followed by `{` is literal. No default/escape syntax: paths
/// rarely need it and every extra rule is one more surprise.
pub(crate) fn expand_vars(
    template: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let Some(end) = after.find('}') else {
            return Err("unterminated \"${\"".to_owned());
        };
        let name = &after[..end];
        if !is_env_name(name) {
            return Err(format!("{name:?} is not a valid variable name"));
        }
        match env(name) {
            Some(v) => out.push_str(&v),
            None => return Err(format!("environment variable {name} is not set")),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

pub(super) fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn secret_debug_never_shows_the_password() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "correct horse\n").unwrap();
        let s = Secret::file(&path);
        assert_eq!(s.resolve().unwrap(), "correct horse");
        assert!(!format!("{s:?} {s}").contains("correct horse"));
        assert_eq!(format!("{:?}", Secret::env("P")), "Secret(Env(\"P\"))");
    }

    #[test]
    fn resolve_from_file_and_env() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "s3cret\r\n").unwrap();
        assert_eq!(Secret::file(&path).resolve().unwrap(), "s3cret");
        std::fs::write(&path, "  spaced  \n").unwrap();
        assert_eq!(Secret::file(&path).resolve().unwrap(), "  spaced  ");
        std::fs::write(&path, "\n").unwrap();
        assert!(matches!(
            Secret::file(&path).resolve(),
            Err(SecretError::EmptyFile { .. })
        ));

        let missing = dir.path().join("missing");
        let err = Secret::file(&missing).resolve().unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("cannot read password file {}", missing.display())
        );
        assert!(std::error::Error::source(&err).is_some());

        let env: HashMap<&str, &str> = [("P", "from-env"), ("EMPTY", "")].into();
        let lookup = |n: &str| env.get(n).map(|v| v.to_string());
        assert_eq!(Secret::env("P").resolve_with(lookup).unwrap(), "from-env");
        assert_eq!(
            Secret::env("NOPE")
                .resolve_with(lookup)
                .unwrap_err()
                .to_string(),
            "environment variable NOPE is not set"
        );
        assert!(matches!(
            Secret::env("EMPTY").resolve_with(lookup),
            Err(SecretError::EnvEmpty { .. })
        ));
        // The real environment path: a name nobody sets.
        assert!(matches!(
            Secret::env("MADOGUCHI_TEST_SURELY_UNSET_VARIABLE").resolve(),
            Err(SecretError::EnvNotSet { .. })
        ));
    }
}
