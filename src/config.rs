//! Configuration: a raw TOML layer ([`RawConfig`], every table `deny_unknown_fields`) and the
//! validated [`Config`] the daemon runs on.
//!
//! Validation reports every problem at once, each naming its key, so an admin fixes a config in
//! one round instead of one error per restart: a table that does not fit its raw struct is read
//! again key by key, so an unknown or mistyped key is one problem beside the others of its
//! section, not a veil over them. Secrets are never inline: a [`Secret`] records
//! where the password lives and reads it only at connect time.
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

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::core::classify::ClassifyRules;
use crate::core::date::parse_ymd;
use crate::core::form::FormLabels;
use chrono::{NaiveTime, Weekday};
use chrono_tz::Tz;
use serde::Deserialize;
use serde::de::{DeserializeOwned, IgnoredAny};
use std::str::FromStr;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use crate::core::calendar::{BusinessCalendar, CalendarSpec, CompanyClosure, Window};

/// The annotated example config, embedded so `demo` can write a working config file.
pub const EXAMPLE_TOML: &str = include_str!("../deploy/madoguchi.example.toml");

// `[hours]` defaults are `CalendarSpec::default()` (the support terms), not repeated here.
pub const DEFAULT_TICKET_PREFIX: &str = "NEO-DS";
pub const DEFAULT_REOPEN_DAYS: u32 = 14;
pub const DEFAULT_AUTO_REPLY_LIMIT_PER_HOUR: u32 = 5;
pub const DEFAULT_DATABASE: &str = "var/madoguchi.sqlite3";
pub const DEFAULT_FILES: &str = "var/files";
pub const DEFAULT_MAILDIR: &str = "var/inbox";
pub const DEFAULT_OUTBOX: &str = "var/outbox";
pub const DEFAULT_IMAP_MAILBOX: &str = "INBOX";
pub const DEFAULT_IMAP_PROCESSED: &str = "Processed";
pub const DEFAULT_IMAP_QUARANTINE: &str = "Quarantine";
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(60);
pub const DEFAULT_BATCH_SIZE: u32 = 100;
pub const DEFAULT_SMTP_PARALLEL: u32 = 4;
pub const DEFAULT_SMTP_TIMEOUT: Duration = Duration::from_secs(60);

const INLINE_PASSWORD: &str = "inline passwords are not allowed; use password_file or password_env";

// ───────────────────────────── raw layer ─────────────────────────────

/// The config file as written. Every field is optional here; defaults and checks live in
/// [`Config::from_raw`]. Integers are `i64` so out-of-range values get our message, not serde's.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub desk: RawDesk,
    #[serde(default)]
    pub hours: RawHours,
    #[serde(default)]
    pub storage: RawStorage,
    #[serde(default)]
    pub intake: RawIntake,
    #[serde(default)]
    pub outbound: RawOutbound,
    /// Keyword and form-category rules for classification (R1–R3); defaults built in.
    #[serde(default)]
    pub classify: ClassifyRules,
    /// The web forms' `【label】` texts, when the forms use other wording.
    #[serde(default)]
    pub forms: FormLabels,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDesk {
    pub address: Option<String>,
    pub ticket_prefix: Option<String>,
    pub staff: Option<Vec<String>>,
    pub notify: Option<Vec<String>>,
    pub form_senders: Option<Vec<String>>,
    pub reopen_days: Option<i64>,
    pub auto_reply_limit_per_hour: Option<i64>,
    /// `"utf-8"` (default) or `"iso-2022-jp"`.
    pub reply_charset: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHours {
    pub timezone: Option<String>,
    pub windows: Option<Vec<String>>,
    pub weekdays: Option<Vec<String>>,
    pub national_holidays: Option<bool>,
    pub company_holidays: Option<Vec<String>>,
    pub license_cutoff: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStorage {
    pub database: Option<String>,
    pub files: Option<String>,
}

/// `[intake]`: `kind = "maildir"` uses `maildir`; `kind = "imap"` uses the rest.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIntake {
    pub kind: Option<String>,
    pub maildir: Option<String>,
    pub host: Option<String>,
    pub port: Option<i64>,
    pub tls: Option<String>,
    pub allow_plaintext: Option<bool>,
    pub user: Option<String>,
    /// Accepted by the parser only to be rejected with a specific message; the value is
    /// discarded unread so it can never reach a log.
    pub password: Option<IgnoredAny>,
    pub password_file: Option<String>,
    pub password_env: Option<String>,
    pub mailbox: Option<String>,
    pub processed: Option<String>,
    pub quarantine: Option<String>,
    pub idle: Option<bool>,
    pub poll_interval: Option<String>,
    pub batch_size: Option<i64>,
}

/// `[outbound]`: `kind = "file"` uses `dir`; `kind = "smtp"` uses the rest.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOutbound {
    pub kind: Option<String>,
    pub dir: Option<String>,
    pub host: Option<String>,
    pub port: Option<i64>,
    pub tls: Option<String>,
    pub allow_plaintext: Option<bool>,
    pub user: Option<String>,
    /// See [`RawIntake::password`].
    pub password: Option<IgnoredAny>,
    pub password_file: Option<String>,
    pub password_env: Option<String>,
    pub parallel: Option<i64>,
    pub timeout: Option<String>,
}

// ───────────────────────────── validated layer ─────────────────────────────

/// A validated configuration. Paths are absolute when the config came from a file (relative
/// ones are resolved against the file's directory).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub desk: Desk,
    pub calendar: CalendarSpec,
    pub storage: Storage,
    pub intake: Intake,
    pub outbound: Outbound,
    pub classify: ClassifyRules,
    pub form_labels: FormLabels,
    /// The file this was loaded from, if any.
    pub source_path: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desk {
    /// The support mailbox; From of every reply.
    pub address: String,
    pub ticket_prefix: String,
    pub staff: Vec<String>,
    pub notify: Vec<String>,
    pub form_senders: Vec<String>,
    pub reopen_days: u32,
    pub auto_reply_limit_per_hour: u32,
    /// The charset of the mail the desk writes (a message with a character ISO-2022-JP cannot
    /// carry still goes in UTF-8).
    pub reply_charset: ReplyCharset,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Storage {
    pub database: PathBuf,
    /// Raw mail and attachments.
    pub files: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intake {
    Maildir { dir: PathBuf },
    Imap(ImapConfig),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImapConfig {
    pub host: String,
    pub port: u16,
    pub tls: Tls,
    pub user: String,
    pub password: Secret,
    pub mailbox: String,
    pub processed: String,
    pub quarantine: String,
    pub idle: bool,
    /// How often to look for new mail when IDLE is off or unsupported.
    pub poll_interval: Duration,
    pub batch_size: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outbound {
    File { dir: PathBuf },
    Smtp(SmtpConfig),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub tls: Tls,
    /// `None`: the relay accepts mail without authentication.
    pub auth: Option<Credentials>,
    pub parallel: u32,
    pub timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub password: Secret,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tls {
    /// TLS from the first byte (IMAPS 993, SMTPS 465).
    Implicit,
    /// Plain connect, then STARTTLS (IMAP 143, submission 587).
    StartTls,
    /// No encryption; only with `allow_plaintext = true`.
    None,
}

impl Tls {
    pub fn as_str(self) -> &'static str {
        match self {
            Tls::Implicit => "implicit",
            Tls::StartTls => "starttls",
            Tls::None => "none",
        }
    }
}

impl fmt::Display for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The inverse of [`Tls::as_str`].
impl FromStr for Tls {
    type Err = UnknownValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Tls::Implicit, Tls::StartTls, Tls::None]
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or(UnknownValue)
    }
}

/// The charset of the mail the desk writes. UTF-8 by default; ISO-2022-JP for customers whose
/// old mail clients show anything else as garbage (DESIGN.md, "Mail formats").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ReplyCharset {
    #[default]
    Utf8,
    Iso2022Jp,
}

impl ReplyCharset {
    /// The spelling in the config (`desk.reply_charset`).
    pub fn as_str(self) -> &'static str {
        match self {
            ReplyCharset::Utf8 => "utf-8",
            ReplyCharset::Iso2022Jp => "iso-2022-jp",
        }
    }
}

/// [`ReplyCharset::as_str`]'s spellings in any ASCII case, and `utf8`.
impl FromStr for ReplyCharset {
    type Err = UnknownValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "utf-8" | "utf8" => Ok(ReplyCharset::Utf8),
            "iso-2022-jp" => Ok(ReplyCharset::Iso2022Jp),
            _ => Err(UnknownValue),
        }
    }
}

/// A config value that is none of its enum's spellings; the validator says which key and
/// which values would do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownValue;

// ───────────────────────────── secrets ─────────────────────────────

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
fn expand_vars(template: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
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

fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

// ───────────────────────────── errors ─────────────────────────────

/// One thing wrong with the config. `key` is the dotted path (`hours.windows[1]`); empty when
/// the problem concerns the whole file (a TOML syntax error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.key, self.message)
        }
    }
}

/// Every problem found in one config, in file order by section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors {
    /// The config file, when there is one; prefixes each rendered line.
    pub path: Option<PathBuf>,
    pub problems: Vec<Problem>,
}

impl ConfigErrors {
    /// The keys of all problems, in order (handy for tests and `--json`).
    pub fn keys(&self) -> Vec<&str> {
        self.problems.iter().map(|p| p.key.as_str()).collect()
    }
}

/// One problem per line, each prefixed by the config path (`PATH: key: message`).
impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            match &self.path {
                Some(path) => write!(f, "{}: {p}", path.display())?,
                None => write!(f, "{p}")?,
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Renders every problem on its own line, prefixed by the config path.
pub fn render_errors(errors: &ConfigErrors) -> String {
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
    Invalid(#[from] ConfigErrors),
}

/// Collects problems while validation carries on.
#[derive(Default)]
struct Problems(Vec<Problem>);

impl Problems {
    fn push(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            key: key.into(),
            message: message.into(),
        });
    }
}

// ───────────────────────────── loading ─────────────────────────────

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
                errors.path = Some(given.to_path_buf());
                Err(errors.into())
            }
        }
    }

    /// Parses and validates TOML text; relative paths resolve against `base_dir`. Every problem
    /// of the file is reported: keys that do not fit the schema (unknown, wrong type) first, in
    /// file order, then the values that fail validation.
    pub fn from_toml_str(text: &str, base_dir: &Path) -> Result<Config, ConfigErrors> {
        let parsed = parse_raw(text);
        let Some(raw) = parsed.raw else {
            return Err(ConfigErrors {
                path: None,
                problems: parsed.problems,
            });
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
                    .filter(|p| !parsed.dropped.iter().any(|d| is_at_or_under(&p.key, d))),
            ),
        }
        Err(ConfigErrors {
            path: None,
            problems,
        })
    }

    /// The embedded default (Maildir in, `.eml` files out, SQLite, all under `base_dir/var`)
    /// for the given desk address: what `demo` and a fresh install run on.
    pub fn default_for(base_dir: &Path, address: &str) -> Result<Config, ConfigErrors> {
        let raw = RawConfig {
            desk: RawDesk {
                address: Some(address.to_owned()),
                ..RawDesk::default()
            },
            ..RawConfig::default()
        };
        Config::from_raw(raw, base_dir)
    }

    /// Validates a raw config, reporting every problem found.
    pub fn from_raw(raw: RawConfig, base_dir: &Path) -> Result<Config, ConfigErrors> {
        let mut p = Problems::default();
        let desk = validate_desk(&raw.desk, &mut p);
        let calendar = validate_hours(&raw.hours, &mut p);
        let storage = Storage {
            database: path_field(
                &mut p,
                "storage.database",
                raw.storage.database.as_deref(),
                DEFAULT_DATABASE,
                base_dir,
            ),
            files: path_field(
                &mut p,
                "storage.files",
                raw.storage.files.as_deref(),
                DEFAULT_FILES,
                base_dir,
            ),
        };
        let intake = validate_intake(&raw.intake, base_dir, &mut p);
        let outbound = validate_outbound(&raw.outbound, base_dir, &mut p);
        match (desk, calendar, intake, outbound) {
            (Some(desk), Some(calendar), Some(intake), Some(outbound)) if p.0.is_empty() => {
                Ok(Config {
                    desk,
                    calendar,
                    storage,
                    intake,
                    outbound,
                    classify: raw.classify.clone(),
                    form_labels: raw.forms.clone(),
                    source_path: None,
                })
            }
            _ => {
                if p.0.is_empty() {
                    // A validator returned nothing without saying why: a bug here, not in the file.
                    p.push(
                        "",
                        "internal error: validation failed without a reported problem",
                    );
                }
                Err(ConfigErrors {
                    path: None,
                    problems: p.0,
                })
            }
        }
    }

    /// A few lines for `check-config`: what the desk will actually do.
    pub fn summary(&self) -> String {
        let d = &self.desk;
        let c = &self.calendar;
        let windows: Vec<String> = c
            .windows
            .iter()
            .map(|w| format!("{}-{}", w.start.format("%H:%M"), w.end.format("%H:%M")))
            .collect();
        let days: Vec<String> = c.weekdays.iter().map(|w| w.to_string()).collect();
        let mut s = format!(
            "desk: {} (tickets [{}#…], {} staff, {} notify, {} form senders, reopen {} days, \
             {} auto-replies/hour/sender)\n",
            d.address,
            d.ticket_prefix,
            d.staff.len(),
            d.notify.len(),
            d.form_senders.len(),
            d.reopen_days,
            d.auto_reply_limit_per_hour
        );
        s += &format!(
            "hours: {} {} {}, {} on national holidays, {} company closures, license cutoff {}\n",
            c.timezone.name(),
            days.join(","),
            windows.join(" "),
            if c.national_holidays {
                "closed"
            } else {
                "open"
            },
            c.company_holidays.len(),
            c.license_cutoff.format("%H:%M")
        );
        s += &format!(
            "storage: database {}, files {}\n",
            self.storage.database.display(),
            self.storage.files.display()
        );
        s += &match &self.intake {
            Intake::Maildir { dir } => format!("intake: maildir {}\n", dir.display()),
            Intake::Imap(i) => format!(
                "intake: imap {}:{} tls={} user {} ({}), mailbox {} → {} / {}, {}\n",
                i.host,
                i.port,
                i.tls,
                i.user,
                i.password,
                i.mailbox,
                i.processed,
                i.quarantine,
                if i.idle {
                    "IDLE".to_owned()
                } else {
                    format!("poll every {}s", i.poll_interval.as_secs())
                }
            ),
        };
        s += &match &self.outbound {
            Outbound::File { dir } => format!("outbound: file {}", dir.display()),
            Outbound::Smtp(o) => format!(
                "outbound: smtp {}:{} tls={} {}, {} parallel, timeout {}s",
                o.host,
                o.port,
                o.tls,
                match &o.auth {
                    Some(a) => format!("user {} ({})", a.user, a.password),
                    None => "no auth".to_owned(),
                },
                o.parallel,
                o.timeout.as_secs()
            ),
        };
        s
    }
}

/// `key` is `prefix` or a key inside it (`desk.staff` is under `desk`; `desk.staff[1]` under
/// `desk.staff`).
fn is_at_or_under(key: &str, prefix: &str) -> bool {
    key.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
}

/// The file read into [`RawConfig`] as far as it fits the schema.
struct Parsed {
    /// `None` only when the file is not TOML at all.
    raw: Option<RawConfig>,
    /// Keys that do not fit the schema, in file order.
    problems: Vec<Problem>,
    /// Dotted paths left out of `raw` because of those problems.
    dropped: Vec<String>,
}

/// Reads the file into the `deny_unknown_fields` raw structs without letting one bad key hide
/// the rest: serde stops at the first error of a struct, so a table that fails as a whole is
/// read again key by key, each key alone against the same struct. A key that fails on its own
/// (unknown, wrong type) is one problem and is left out; the table's other keys still count.
/// The raw structs stay the one schema: no list of known keys is kept beside them.
fn parse_raw(text: &str) -> Parsed {
    let doc = match DeTable::parse(text) {
        Ok(doc) => doc,
        Err(e) => {
            return Parsed {
                raw: None,
                problems: vec![toml_problem(text, "", &e)],
                dropped: Vec::new(),
            };
        }
    };

    /// The top level: only its keys are checked here; each section is read below.
    #[derive(Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)] // only read for its key check
    struct TopLevel {
        desk: Option<IgnoredAny>,
        hours: Option<IgnoredAny>,
        storage: Option<IgnoredAny>,
        intake: Option<IgnoredAny>,
        outbound: Option<IgnoredAny>,
        classify: Option<IgnoredAny>,
        forms: Option<IgnoredAny>,
    }

    let mut reader = KeyReader {
        text,
        problems: Vec::new(),
        dropped: Vec::new(),
    };
    let span = doc.span();
    let root = doc.into_inner();
    let _: TopLevel = reader.read("", &Spanned::new(span, DeValue::Table(root.clone())));
    let section = |name: &str| root.get(name);
    let raw = RawConfig {
        desk: reader.read_opt("desk", section("desk")),
        hours: reader.read_opt("hours", section("hours")),
        storage: reader.read_opt("storage", section("storage")),
        intake: reader.read_opt("intake", section("intake")),
        outbound: reader.read_opt("outbound", section("outbound")),
        classify: reader.read_opt("classify", section("classify")),
        forms: reader.read_opt("forms", section("forms")),
    };
    // `kind` decides which keys a section may have: without it, every other complaint about
    // the section would be a guess.
    for kind in ["intake.kind", "outbound.kind"] {
        if reader.dropped.iter().any(|d| d == kind)
            && let Some((section, _)) = kind.split_once('.')
        {
            reader.dropped.push(section.to_owned());
        }
    }
    reader.problems.sort_by_key(|(at, _)| *at);
    Parsed {
        raw: Some(raw),
        problems: reader.problems.into_iter().map(|(_, p)| p).collect(),
        dropped: reader.dropped,
    }
}

/// Reads tables key by key (see [`parse_raw`]).
struct KeyReader<'t> {
    text: &'t str,
    /// With the byte offset they concern, for file order.
    problems: Vec<(usize, Problem)>,
    dropped: Vec<String>,
}

impl KeyReader<'_> {
    fn read_opt<T: DeserializeOwned + Default>(
        &mut self,
        path: &str,
        value: Option<&Spanned<DeValue<'_>>>,
    ) -> T {
        value.map_or_else(T::default, |v| self.read(path, v))
    }

    /// `T` from the table `value` at `path`, leaving out (and reporting) each key that does not
    /// fit `T` on its own.
    fn read<T: DeserializeOwned + Default>(
        &mut self,
        path: &str,
        value: &Spanned<DeValue<'_>>,
    ) -> T {
        let span = value.span();
        let whole = match T::deserialize(ValueDeserializer::from(value.clone())) {
            Ok(t) => return t,
            Err(e) => e,
        };
        let Some(table) = value.get_ref().as_table() else {
            // Not a table at all (`desk = 5`).
            self.problem(path, span.start, &whole);
            return T::default();
        };
        let mut entries: Vec<_> = table.iter().collect();
        entries.sort_by_key(|(k, _)| k.span().start);
        let mut fitting = DeTable::new();
        for (key, item) in entries {
            let mut alone = DeTable::new();
            alone.insert(key.clone(), item.clone());
            let one = Spanned::new(span.clone(), DeValue::Table(alone));
            match T::deserialize(ValueDeserializer::from(one)) {
                Ok(_) => {
                    fitting.insert(key.clone(), item.clone());
                }
                Err(e) => {
                    let key_path = if path.is_empty() {
                        key.get_ref().to_string()
                    } else {
                        format!("{path}.{}", key.get_ref())
                    };
                    self.problem(&key_path, key.span().start, &e);
                }
            }
        }
        let fitting = Spanned::new(span.clone(), DeValue::Table(fitting));
        match T::deserialize(ValueDeserializer::from(fitting)) {
            Ok(t) => t,
            // Keys that fit one by one but not together: the schema has no such rule today;
            // report the table rather than guess.
            Err(e) => {
                self.problem(path, span.start, &e);
                T::default()
            }
        }
    }

    fn problem(&mut self, path: &str, fallback_at: usize, e: &toml::de::Error) {
        let at = e.span().map_or(fallback_at, |s| s.start);
        self.problems.push((at, toml_problem(self.text, path, e)));
        self.dropped.push(path.to_owned());
    }
}

/// toml's own Display spans several lines with a source excerpt; one line per problem keeps
/// the "every problem on its own line" contract.
fn toml_problem(text: &str, key: &str, e: &toml::de::Error) -> Problem {
    let message = match e.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
            format!("line {line}, column {column}: {}", e.message().trim_end())
        }
        None => e.message().trim_end().to_owned(),
    };
    Problem {
        key: key.to_owned(),
        message,
    }
}

// ───────────────────────────── validators ─────────────────────────────

fn validate_desk(raw: &RawDesk, p: &mut Problems) -> Option<Desk> {
    let address = match &raw.address {
        None => {
            p.push("desk.address", "required: the support mailbox address");
            None
        }
        Some(a) => check_address(p, "desk.address", a),
    };
    let ticket_prefix = raw
        .ticket_prefix
        .clone()
        .unwrap_or_else(|| DEFAULT_TICKET_PREFIX.to_owned());
    if ticket_prefix.is_empty()
        || ticket_prefix.len() > 16
        || !ticket_prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        p.push(
            "desk.ticket_prefix",
            format!("{ticket_prefix:?} must be 1 to 16 ASCII letters, digits or '-'"),
        );
    }
    let mut list = |key: &str, values: &Option<Vec<String>>| -> Vec<String> {
        let mut out = Vec::new();
        for (i, v) in values.iter().flatten().enumerate() {
            let k = format!("desk.{key}[{i}]");
            if let Some(a) = check_address(p, &k, v) {
                // Mail from the desk itself is dropped by the loop guard, and notifying itself
                // would loop, so the desk's own address in these lists is always a mistake.
                if address
                    .as_deref()
                    .is_some_and(|own| own.eq_ignore_ascii_case(&a))
                {
                    p.push(k, format!("{a:?} is the desk's own address (desk.address)"));
                }
                out.push(a);
            }
        }
        out
    };
    let staff = list("staff", &raw.staff);
    let notify = list("notify", &raw.notify);
    let form_senders = list("form_senders", &raw.form_senders);
    let reopen_days = int_field(
        p,
        "desk.reopen_days",
        raw.reopen_days,
        DEFAULT_REOPEN_DAYS,
        0,
        365,
    );
    let auto_reply_limit_per_hour = int_field(
        p,
        "desk.auto_reply_limit_per_hour",
        raw.auto_reply_limit_per_hour,
        DEFAULT_AUTO_REPLY_LIMIT_PER_HOUR,
        1,
        u32::MAX,
    );
    let reply_charset = match raw.reply_charset.as_deref() {
        None => ReplyCharset::default(),
        Some(text) => text.parse().unwrap_or_else(|UnknownValue| {
            p.push(
                "desk.reply_charset",
                format!(
                    "{:?} is not a reply charset; use \"utf-8\" or \"iso-2022-jp\"",
                    text.to_ascii_lowercase()
                ),
            );
            ReplyCharset::default()
        }),
    };
    Some(Desk {
        address: address?,
        ticket_prefix,
        staff,
        notify,
        form_senders,
        reopen_days,
        auto_reply_limit_per_hour,
        reply_charset,
    })
}

fn validate_hours(raw: &RawHours, p: &mut Problems) -> Option<CalendarSpec> {
    let defaults = CalendarSpec::default();
    let problems_before = p.0.len();
    let timezone = match raw.timezone.as_deref() {
        None => Some(defaults.timezone),
        Some(name) => match name.parse::<Tz>() {
            Ok(tz) => Some(tz),
            Err(_) => {
                p.push(
                    "hours.timezone",
                    format!("{name:?} is not a known IANA time zone (e.g. \"Asia/Tokyo\")"),
                );
                None
            }
        },
    };

    let window_texts: &[String] = raw.windows.as_deref().unwrap_or_default();
    if raw.windows.is_some() && window_texts.is_empty() {
        p.push("hours.windows", "at least one reception window is required");
    }
    let mut windows = Vec::new();
    let mut prev: Option<(usize, Window)> = None;
    for (i, text) in window_texts.iter().enumerate() {
        let key = format!("hours.windows[{i}]");
        match parse_window(text) {
            Err(msg) => p.push(key, format!("{text:?} {msg}")),
            Ok(w) => {
                if let Some((j, pw)) = prev {
                    if w.start < pw.start {
                        p.push(
                            key,
                            format!("{text:?} comes before windows[{j}]; list windows in order"),
                        );
                    } else if w.start < pw.end {
                        p.push(key, format!("{text:?} overlaps windows[{j}]"));
                    }
                }
                prev = Some((i, w));
                windows.push(w);
            }
        }
    }

    if raw.windows.is_none() {
        windows = defaults.windows;
    }

    let weekday_texts: &[String] = raw.weekdays.as_deref().unwrap_or_default();
    if raw.weekdays.is_some() && weekday_texts.is_empty() {
        p.push(
            "hours.weekdays",
            "at least one business weekday is required",
        );
    }
    let mut weekdays: Vec<Weekday> = Vec::new();
    for (i, text) in weekday_texts.iter().enumerate() {
        let key = format!("hours.weekdays[{i}]");
        match parse_weekday(text) {
            None => p.push(
                key,
                format!("{text:?} is not a weekday (Mon..Sun or Monday..Sunday)"),
            ),
            Some(d) if weekdays.contains(&d) => p.push(key, format!("{text:?} is listed twice")),
            Some(d) => weekdays.push(d),
        }
    }
    if raw.weekdays.is_none() {
        weekdays = defaults.weekdays;
    }
    weekdays.sort_by_key(|d| d.num_days_from_monday());

    let mut company_holidays = Vec::new();
    for (i, text) in raw.company_holidays.iter().flatten().enumerate() {
        match parse_closure(text) {
            Ok(c) => company_holidays.push(c),
            Err(msg) => p.push(
                format!("hours.company_holidays[{i}]"),
                format!("{text:?} {msg}"),
            ),
        }
    }
    company_holidays.sort_by_key(|c| c.first);

    let license_cutoff = match raw.license_cutoff.as_deref() {
        None => Some(defaults.license_cutoff),
        Some(text) => match parse_hhmm(text) {
            Ok(t) => Some(t),
            Err(msg) => {
                p.push("hours.license_cutoff", format!("{text:?} {msg}"));
                None
            }
        },
    };

    let spec = CalendarSpec {
        timezone: timezone?,
        windows,
        weekdays,
        national_holidays: raw.national_holidays.unwrap_or(defaults.national_holidays),
        company_holidays,
        license_cutoff: license_cutoff?,
    };
    // The checks above are meant to be exactly the calendar's; this keeps it that way if the
    // calendar grows a rule, so a config that passes here always starts.
    if p.0.len() == problems_before
        && let Err(e) = BusinessCalendar::new(spec.clone())
    {
        p.push("hours", e.to_string());
        return None;
    }
    Some(spec)
}

fn validate_intake(raw: &RawIntake, base: &Path, p: &mut Problems) -> Option<Intake> {
    if raw.password.is_some() {
        p.push("intake.password", INLINE_PASSWORD);
    }
    let imap_keys = [
        ("host", raw.host.is_some()),
        ("port", raw.port.is_some()),
        ("tls", raw.tls.is_some()),
        ("allow_plaintext", raw.allow_plaintext.is_some()),
        ("user", raw.user.is_some()),
        ("password_file", raw.password_file.is_some()),
        ("password_env", raw.password_env.is_some()),
        ("mailbox", raw.mailbox.is_some()),
        ("processed", raw.processed.is_some()),
        ("quarantine", raw.quarantine.is_some()),
        ("idle", raw.idle.is_some()),
        ("poll_interval", raw.poll_interval.is_some()),
        ("batch_size", raw.batch_size.is_some()),
    ];
    match raw.kind.as_deref().unwrap_or("maildir") {
        "maildir" => {
            foreign_keys(p, "intake", "imap", &imap_keys);
            let dir = path_field(
                p,
                "intake.maildir",
                raw.maildir.as_deref(),
                DEFAULT_MAILDIR,
                base,
            );
            Some(Intake::Maildir { dir })
        }
        "imap" => {
            foreign_keys(
                p,
                "intake",
                "maildir",
                &[("maildir", raw.maildir.is_some())],
            );
            let conn = connection(
                p,
                "intake",
                &ConnKeys {
                    host: &raw.host,
                    port: raw.port,
                    tls: &raw.tls,
                    allow_plaintext: raw.allow_plaintext,
                    user: &raw.user,
                    inline_password: raw.password.is_some(),
                    password_file: &raw.password_file,
                    password_env: &raw.password_env,
                },
                [993, 143, 143],
                base,
            );
            let mut mailbox_field = |key: &str, v: &Option<String>, default: &str| {
                let v = v.clone().unwrap_or_else(|| default.to_owned());
                if v.trim().is_empty() {
                    p.push(format!("intake.{key}"), "must not be empty");
                }
                v
            };
            let mailbox = mailbox_field("mailbox", &raw.mailbox, DEFAULT_IMAP_MAILBOX);
            let processed = mailbox_field("processed", &raw.processed, DEFAULT_IMAP_PROCESSED);
            let quarantine = mailbox_field("quarantine", &raw.quarantine, DEFAULT_IMAP_QUARANTINE);
            // Moving a message into the folder it came from would re-read it forever.
            for (key, v) in [("processed", &processed), ("quarantine", &quarantine)] {
                if !v.is_empty() && *v == mailbox {
                    p.push(
                        format!("intake.{key}"),
                        format!("{v:?} is the same folder as intake.mailbox"),
                    );
                }
            }
            let poll_interval = duration_field(
                p,
                "intake.poll_interval",
                raw.poll_interval.as_deref(),
                DEFAULT_POLL_INTERVAL,
                Duration::from_secs(3600),
            );
            let batch_size = int_field(
                p,
                "intake.batch_size",
                raw.batch_size,
                DEFAULT_BATCH_SIZE,
                1,
                10_000,
            );
            // IMAP has no anonymous access to a mailbox worth reading. (Other login mistakes
            // were reported by `connection`.)
            if raw.user.is_none()
                && raw.password_file.is_none()
                && raw.password_env.is_none()
                && raw.password.is_none()
            {
                p.push("intake.user", "required for kind = \"imap\"");
            }
            let conn = conn?;
            // `None` only after one of the problems above or in `connection`.
            let login = conn.auth?;
            Some(Intake::Imap(ImapConfig {
                host: conn.host,
                port: conn.port,
                tls: conn.tls,
                user: login.user,
                password: login.password,
                mailbox,
                processed,
                quarantine,
                idle: raw.idle.unwrap_or(true),
                poll_interval,
                batch_size,
            }))
        }
        other => {
            p.push(
                "intake.kind",
                format!("{other:?} is not a kind of intake; use \"maildir\" or \"imap\""),
            );
            None
        }
    }
}

fn validate_outbound(raw: &RawOutbound, base: &Path, p: &mut Problems) -> Option<Outbound> {
    if raw.password.is_some() {
        p.push("outbound.password", INLINE_PASSWORD);
    }
    let smtp_keys = [
        ("host", raw.host.is_some()),
        ("port", raw.port.is_some()),
        ("tls", raw.tls.is_some()),
        ("allow_plaintext", raw.allow_plaintext.is_some()),
        ("user", raw.user.is_some()),
        ("password_file", raw.password_file.is_some()),
        ("password_env", raw.password_env.is_some()),
        ("parallel", raw.parallel.is_some()),
        ("timeout", raw.timeout.is_some()),
    ];
    match raw.kind.as_deref().unwrap_or("file") {
        "file" => {
            foreign_keys(p, "outbound", "smtp", &smtp_keys);
            let dir = path_field(p, "outbound.dir", raw.dir.as_deref(), DEFAULT_OUTBOX, base);
            Some(Outbound::File { dir })
        }
        "smtp" => {
            foreign_keys(p, "outbound", "file", &[("dir", raw.dir.is_some())]);
            let conn = connection(
                p,
                "outbound",
                &ConnKeys {
                    host: &raw.host,
                    port: raw.port,
                    tls: &raw.tls,
                    allow_plaintext: raw.allow_plaintext,
                    user: &raw.user,
                    inline_password: raw.password.is_some(),
                    password_file: &raw.password_file,
                    password_env: &raw.password_env,
                },
                [465, 587, 25],
                base,
            );
            let parallel = int_field(
                p,
                "outbound.parallel",
                raw.parallel,
                DEFAULT_SMTP_PARALLEL,
                1,
                64,
            );
            let timeout = duration_field(
                p,
                "outbound.timeout",
                raw.timeout.as_deref(),
                DEFAULT_SMTP_TIMEOUT,
                Duration::from_secs(600),
            );
            let conn = conn?;
            Some(Outbound::Smtp(SmtpConfig {
                host: conn.host,
                port: conn.port,
                tls: conn.tls,
                auth: conn.auth,
                parallel,
                timeout,
            }))
        }
        other => {
            p.push(
                "outbound.kind",
                format!("{other:?} is not a kind of outbound; use \"file\" or \"smtp\""),
            );
            None
        }
    }
}

/// Keys shared by the IMAP and SMTP sections.
struct ConnKeys<'a> {
    host: &'a Option<String>,
    port: Option<i64>,
    tls: &'a Option<String>,
    allow_plaintext: Option<bool>,
    user: &'a Option<String>,
    inline_password: bool,
    password_file: &'a Option<String>,
    password_env: &'a Option<String>,
}

struct Conn {
    host: String,
    port: u16,
    tls: Tls,
    auth: Option<Credentials>,
}

/// Validates host/port/tls/credentials. `default_ports` is indexed implicit, starttls, none.
/// Returns `None` only after pushing a problem.
fn connection(
    p: &mut Problems,
    section: &str,
    k: &ConnKeys<'_>,
    default_ports: [u16; 3],
    base: &Path,
) -> Option<Conn> {
    let key = |name: &str| format!("{section}.{name}");
    let host = match k.host.as_deref() {
        None => {
            p.push(key("host"), "required: the server's host name or address");
            None
        }
        Some(h) if h.is_empty() || h.contains(|c: char| c.is_whitespace() || c == '/') => {
            p.push(
                key("host"),
                format!("{h:?} is not a host name or address (no scheme, path or spaces)"),
            );
            None
        }
        Some(h) => Some(h.to_owned()),
    };
    let tls_text = k.tls.as_deref().unwrap_or(Tls::Implicit.as_str());
    let tls = match tls_text.parse::<Tls>() {
        Ok(tls) => Some(tls),
        Err(UnknownValue) => {
            p.push(
                key("tls"),
                format!("{tls_text:?} is not one of \"implicit\", \"starttls\", \"none\""),
            );
            None
        }
    };
    if tls == Some(Tls::None) && k.allow_plaintext != Some(true) {
        p.push(
            key("tls"),
            "\"none\" sends the password and mail unencrypted; set allow_plaintext = true to confirm",
        );
    }
    let port = match k.port {
        None => tls.map(|t| match t {
            Tls::Implicit => default_ports[0],
            Tls::StartTls => default_ports[1],
            Tls::None => default_ports[2],
        }),
        Some(n) => match u16::try_from(n) {
            Ok(port) if port >= 1 => Some(port),
            _ => {
                p.push(key("port"), format!("{n} is not a port (1..65535)"));
                None
            }
        },
    };

    let source = match (k.password_file, k.password_env) {
        (Some(_), Some(_)) => {
            p.push(
                key("password_env"),
                "password_file and password_env are both set; use one",
            );
            None
        }
        (Some(f), None) => secret_file(p, &key("password_file"), f, base),
        (None, Some(name)) => {
            if is_env_name(name) {
                Some(Secret::env(name))
            } else {
                p.push(
                    key("password_env"),
                    format!("{name:?} is not an environment variable name"),
                );
                None
            }
        }
        (None, None) => None,
    };
    let has_source = k.password_file.is_some() || k.password_env.is_some();
    let auth = match k.user.as_deref() {
        Some(u) if u.is_empty() || u.contains(char::is_whitespace) => {
            p.push(key("user"), format!("{u:?} is not a user name"));
            None
        }
        // The inline-password problem already says what to do; don't pile on.
        Some(_) if !has_source && !k.inline_password => {
            p.push(
                key("user"),
                "user is set but neither password_file nor password_env is",
            );
            None
        }
        Some(u) => source.map(|password| Credentials {
            user: u.to_owned(),
            password,
        }),
        None => {
            if has_source {
                p.push(
                    key("user"),
                    "required when password_file or password_env is set",
                );
            }
            None
        }
    };
    Some(Conn {
        host: host?,
        port: port?,
        tls: tls?,
        auth,
    })
}

/// A `password_file` path. Relative paths resolve against the config directory, except one
/// starting with `${VAR}`, which must expand to an absolute path when read.
fn secret_file(p: &mut Problems, key: &str, template: &str, base: &Path) -> Option<Secret> {
    if template.is_empty() {
        p.push(key, "must not be empty");
        return None;
    }
    // Syntax check only: every variable "exists" now; real values come at resolve time.
    if let Err(msg) = expand_vars(template, &|_| Some(String::new())) {
        p.push(key, format!("{template:?}: {msg}"));
        return None;
    }
    if template.starts_with("${") {
        Some(Secret::file(template))
    } else {
        Some(Secret::file(base.join(template)))
    }
}

/// Reports keys set in a section that belong to the other kind.
fn foreign_keys(p: &mut Problems, section: &str, other_kind: &str, keys: &[(&str, bool)]) {
    for (name, set) in keys {
        if *set {
            p.push(
                format!("{section}.{name}"),
                format!("only used with kind = \"{other_kind}\""),
            );
        }
    }
}

fn path_field(
    p: &mut Problems,
    key: &str,
    value: Option<&str>,
    default: &str,
    base: &Path,
) -> PathBuf {
    let v = value.unwrap_or(default);
    if v.trim().is_empty() {
        p.push(key, "must not be empty");
    }
    // `join` keeps an absolute `v` as is.
    base.join(v)
}

fn int_field(
    p: &mut Problems,
    key: &str,
    value: Option<i64>,
    default: u32,
    min: u32,
    max: u32,
) -> u32 {
    let Some(n) = value else { return default };
    match u32::try_from(n) {
        Ok(v) if (min..=max).contains(&v) => v,
        _ => {
            if max == u32::MAX {
                p.push(key, format!("{n} must be at least {min}"));
            } else {
                p.push(key, format!("{n} must be between {min} and {max}"));
            }
            default
        }
    }
}

fn duration_field(
    p: &mut Problems,
    key: &str,
    value: Option<&str>,
    default: Duration,
    max: Duration,
) -> Duration {
    let Some(text) = value else { return default };
    match parse_duration(text) {
        Ok(d) if d >= Duration::from_secs(1) && d <= max => d,
        Ok(_) => {
            p.push(
                key,
                format!("{text:?} must be between 1s and {}s", max.as_secs()),
            );
            default
        }
        Err(msg) => {
            p.push(key, format!("{text:?} {msg}"));
            default
        }
    }
}

/// Simple address check: exactly one `@`, both sides non-empty, no whitespace or control
/// characters. Full RFC 5322 is the mail parser's job; this catches typos.
fn check_address(p: &mut Problems, key: &str, a: &str) -> Option<String> {
    let ok = match a.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !a.chars().any(|c| c.is_whitespace() || c.is_control())
        }
        None => false,
    };
    if ok {
        Some(a.to_owned())
    } else {
        p.push(key, format!("{a:?} is not an e-mail address (user@domain)"));
        None
    }
}

/// Strict `HH:MM`, 00:00..23:59.
fn parse_hhmm(s: &str) -> Result<NaiveTime, &'static str> {
    let b = s.as_bytes();
    if b.len() != 5 || b[2] != b':' || ![0, 1, 3, 4].iter().all(|&i| b[i].is_ascii_digit()) {
        return Err("is not a time of day (HH:MM)");
    }
    let h = u32::from(b[0] - b'0') * 10 + u32::from(b[1] - b'0');
    let m = u32::from(b[3] - b'0') * 10 + u32::from(b[4] - b'0');
    NaiveTime::from_hms_opt(h, m, 0).ok_or("is not a time of day (00:00..23:59)")
}

fn parse_window(s: &str) -> Result<Window, &'static str> {
    let Some((a, b)) = s.split_once('-') else {
        return Err("is not a window (HH:MM-HH:MM)");
    };
    let (Ok(start), Ok(end)) = (parse_hhmm(a.trim()), parse_hhmm(b.trim())) else {
        return Err("is not a window (HH:MM-HH:MM)");
    };
    if end < start {
        return Err("ends before it starts");
    }
    if end == start {
        return Err("is empty (starts and ends at the same time)");
    }
    Ok(Window { start, end })
}

fn parse_weekday(s: &str) -> Option<Weekday> {
    const NAMES: [(&str, &str, Weekday); 7] = [
        ("mon", "monday", Weekday::Mon),
        ("tue", "tuesday", Weekday::Tue),
        ("wed", "wednesday", Weekday::Wed),
        ("thu", "thursday", Weekday::Thu),
        ("fri", "friday", Weekday::Fri),
        ("sat", "saturday", Weekday::Sat),
        ("sun", "sunday", Weekday::Sun),
    ];
    let s = s.trim().to_ascii_lowercase();
    NAMES
        .iter()
        .find(|(short, long, _)| s == *short || s == *long)
        .map(|(_, _, d)| *d)
}

fn parse_closure(s: &str) -> Result<CompanyClosure, &'static str> {
    let (a, b) = match s.split_once("..") {
        Some((a, b)) => (a.trim(), b.trim()),
        None => (s.trim(), s.trim()),
    };
    let (Ok(first), Ok(last)) = (parse_ymd(a), parse_ymd(b)) else {
        return Err("is not a date (YYYY-MM-DD) or range (YYYY-MM-DD..YYYY-MM-DD)");
    };
    if last < first {
        return Err("ends before it starts");
    }
    // A closure longer than a year is almost certainly a typo in the year.
    if (last - first).num_days() > 366 {
        return Err("spans more than a year");
    }
    Ok(CompanyClosure { first, last })
}

/// `"<integer><unit>"` with unit `s`, `m` or `h`. A unit is required: a bare number would leave
/// the reader guessing between seconds and milliseconds.
fn parse_duration(s: &str) -> Result<Duration, &'static str> {
    const SHAPE: &str = "is not a duration like \"90s\", \"5m\" or \"1h\"";
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).ok_or(SHAPE)?;
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| SHAPE)?;
    let factor = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return Err(SHAPE),
    };
    n.checked_mul(factor)
        .map(Duration::from_secs)
        .ok_or("is too long")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use std::collections::HashMap;

    fn parse(text: &str) -> Result<Config, ConfigErrors> {
        Config::from_toml_str(text, Path::new("/srv/desk"))
    }

    fn errors(text: &str) -> ConfigErrors {
        match parse(text) {
            Ok(c) => panic!("expected errors, got {c:#?}"),
            Err(e) => e,
        }
    }

    fn t(s: &str) -> NaiveTime {
        NaiveTime::parse_from_str(s, "%H:%M").unwrap()
    }

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    const MINIMAL: &str = "[desk]\naddress = \"support@example.co.jp\"\n";

    #[test]
    fn minimal_file_gets_documented_defaults() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!(c.desk.address, "support@example.co.jp");
        assert_eq!(c.desk.ticket_prefix, "NEO-DS");
        assert!(c.desk.staff.is_empty() && c.desk.notify.is_empty());
        assert!(c.desk.form_senders.is_empty());
        assert_eq!(c.desk.reopen_days, 14);
        assert_eq!(c.desk.auto_reply_limit_per_hour, 5);
        assert_eq!(c.calendar.timezone, chrono_tz::Asia::Tokyo);
        assert_eq!(
            c.calendar.windows,
            vec![
                Window {
                    start: t("09:00"),
                    end: t("12:00")
                },
                Window {
                    start: t("13:00"),
                    end: t("17:30")
                },
            ]
        );
        assert_eq!(
            c.calendar.weekdays,
            vec![
                Weekday::Mon,
                Weekday::Tue,
                Weekday::Wed,
                Weekday::Thu,
                Weekday::Fri
            ]
        );
        assert!(c.calendar.national_holidays);
        assert!(c.calendar.company_holidays.is_empty());
        assert_eq!(c.calendar.license_cutoff, t("17:00"));
        assert_eq!(c.calendar, CalendarSpec::default());
        assert_eq!(
            c.storage.database,
            Path::new("/srv/desk/var/madoguchi.sqlite3")
        );
        assert_eq!(c.storage.files, Path::new("/srv/desk/var/files"));
        assert_eq!(
            c.intake,
            Intake::Maildir {
                dir: "/srv/desk/var/inbox".into()
            }
        );
        assert_eq!(
            c.outbound,
            Outbound::File {
                dir: "/srv/desk/var/outbox".into()
            }
        );
        assert_eq!(c.source_path, None);
        assert_eq!(
            Config::default_for(Path::new("/srv/desk"), "support@example.co.jp").unwrap(),
            c
        );
    }

    #[test]
    fn default_for_rejects_a_bad_address() {
        let e = Config::default_for(Path::new("/x"), "not an address").unwrap_err();
        assert_eq!(e.keys(), ["desk.address"]);
    }

    #[test]
    fn missing_address_is_the_only_required_key() {
        assert_eq!(errors("").keys(), ["desk.address"]);
        assert_eq!(errors("[desk]\n").keys(), ["desk.address"]);
    }

    #[test]
    fn example_file_validates() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/madoguchi.example.toml");
        let c = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let dir = path.parent().unwrap();
        assert_eq!(c.source_path.as_deref(), Some(path.as_path()));
        assert_eq!(c.desk.address, "support@example.co.jp");
        assert_eq!(c.storage.database, dir.join("var/madoguchi.sqlite3"));
        assert_eq!(
            c.calendar.company_holidays,
            vec![
                CompanyClosure {
                    first: d("2026-08-13"),
                    last: d("2026-08-16")
                },
                CompanyClosure {
                    first: d("2026-12-29"),
                    last: d("2027-01-04")
                },
                CompanyClosure {
                    first: d("2027-05-06"),
                    last: d("2027-05-06")
                },
            ]
        );
        BusinessCalendar::new(c.calendar.clone()).unwrap();
        // The embedded copy is the same file.
        assert_eq!(parse(EXAMPLE_TOML).unwrap().desk, c.desk);
        assert!(!c.summary().is_empty());
    }

    #[test]
    fn example_server_variant_validates_when_uncommented() {
        // The commented IMAP/SMTP blocks must stay valid too: swap them in and load.
        // Convention in the example: `# prose`, `#key = value` for a commented-out setting.
        let mut text = String::new();
        let mut in_io = false;
        for line in EXAMPLE_TOML.lines() {
            if line.starts_with('[') {
                in_io = line.starts_with("[intake]") || line.starts_with("[outbound]");
            }
            let commented_key = line
                .strip_prefix('#')
                .filter(|rest| rest.starts_with(|c: char| c.is_ascii_alphabetic()));
            if in_io && let Some(rest) = commented_key {
                text.push_str(rest);
            } else if in_io && !line.starts_with('[') && !line.starts_with('#') {
                continue; // drop the active maildir/file keys
            } else {
                text.push_str(line);
            }
            text.push('\n');
        }
        let c = parse(&text).unwrap_or_else(|e| panic!("{e}\n---\n{text}"));
        let Intake::Imap(i) = c.intake else {
            panic!("{:?}", c.intake)
        };
        assert_eq!((i.port, i.tls), (993, Tls::Implicit));
        assert_eq!(
            i.password.source(),
            &SecretSource::File("${CREDENTIALS_DIRECTORY}/imap".into())
        );
        let Outbound::Smtp(s) = c.outbound else {
            panic!("{:?}", c.outbound)
        };
        assert_eq!((s.port, s.tls), (587, Tls::StartTls));
        assert!(s.auth.is_some());
    }

    #[test]
    fn server_fixture_validates_with_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/config/servers.toml");
        let c = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let Intake::Imap(i) = &c.intake else { panic!() };
        assert_eq!(i.host, "imap.example.co.jp");
        assert_eq!((i.port, i.tls), (993, Tls::Implicit));
        assert_eq!(i.user, "support");
        assert_eq!(
            i.password.source(),
            &SecretSource::File(path.parent().unwrap().join("secrets/imap.password"))
        );
        assert_eq!(
            (
                i.mailbox.as_str(),
                i.processed.as_str(),
                i.quarantine.as_str()
            ),
            ("INBOX", "Processed", "Quarantine")
        );
        assert!(i.idle);
        assert_eq!(i.poll_interval, Duration::from_secs(60));
        assert_eq!(i.batch_size, 100);
        let Outbound::Smtp(s) = &c.outbound else {
            panic!()
        };
        assert_eq!((s.port, s.tls), (465, Tls::Implicit));
        assert_eq!(s.parallel, 4);
        assert_eq!(s.timeout, Duration::from_secs(60));
        let auth = s.auth.as_ref().unwrap();
        assert_eq!(
            auth.password.source(),
            &SecretSource::Env("SMTP_PASSWORD".into())
        );
    }

    #[test]
    fn many_problems_are_all_reported() {
        let e = errors(
            r#"
[desk]
address = "support example.co.jp"
ticket_prefix = "NEO_DS"
staff = ["tanaka@example.co.jp", "nobody"]
notify = ["support example"]
reopen_days = 400
auto_reply_limit_per_hour = 0
[hours]
timezone = "Asia/Tokio"
windows = ["09:00-12:00", "13:00-12:00", "9am-5pm"]
weekdays = ["Mon", "Funday", "mon"]
company_holidays = ["2026-08-16..2026-08-13", "2026-02-30"]
license_cutoff = "25:00"
[storage]
database = ""
[intake]
kind = "imap"
host = "imap.example.co.jp"
port = 70000
tls = "none"
user = "support"
password = "hunter2"
[outbound]
kind = "carrier-pigeon"
"#,
        );
        let keys = e.keys();
        let expected = [
            "desk.address",
            "desk.ticket_prefix",
            "desk.staff[1]",
            "desk.notify[0]",
            "desk.reopen_days",
            "desk.auto_reply_limit_per_hour",
            "hours.timezone",
            "hours.windows[1]",
            "hours.windows[2]",
            "hours.weekdays[1]",
            "hours.weekdays[2]",
            "hours.company_holidays[0]",
            "hours.company_holidays[1]",
            "hours.license_cutoff",
            "storage.database",
            "intake.password",
            "intake.tls",
            "intake.port",
            "outbound.kind",
        ];
        assert_eq!(keys, expected, "{e}");
        assert_eq!(e.problems.len(), 19);
        let text = e.to_string();
        assert!(
            text.contains(r#"hours.windows[1]: "13:00-12:00" ends before it starts"#),
            "{text}"
        );
        assert!(
            text.contains(r#"hours.weekdays[2]: "mon" is listed twice"#),
            "{text}"
        );
        assert!(!text.contains("hunter2"));
    }

    #[test]
    fn unknown_keys_are_reported_per_section_with_line_and_column() {
        let e = errors(
            "[desk]\naddress = \"support@example.co.jp\"\nadress = \"x\"\n\
             [hours]\nwindows = [\"13:00-12:00\"]\n\
             [intake]\nmaildir = \"in\"\npasswrd = 1\n\
             [extra]\n",
        );
        // Keys outside the schema first, in file order, each at its own dotted path.
        assert_eq!(
            e.keys(),
            ["desk.adress", "intake.passwrd", "extra", "hours.windows[0]"],
            "{e}"
        );
        assert!(
            e.problems[0]
                .message
                .starts_with("line 3, column 1: unknown field `adress`"),
            "{e}"
        );
        assert!(
            e.problems[1].message.contains("unknown field `passwrd`"),
            "{e}"
        );
        assert!(
            e.problems[2]
                .message
                .starts_with("line 9, column 2: unknown field `extra`"),
            "{e}"
        );
        // The rest of a section with an unknown key is still read (no spurious desk.address).
        assert!(!e.keys().contains(&"desk.address"));
    }

    #[test]
    fn an_unknown_key_does_not_hide_the_other_problems_of_its_section() {
        // One typo in [desk] plus four other [desk] mistakes: all five in one run.
        let e = errors(
            "[desk]\n\
             address = \"support example.co.jp\"\n\
             ticket_prefix = \"NEO_DS\"\n\
             notfy = [\"team@example.co.jp\"]\n\
             reopen_days = 400\n\
             reply_charset = \"shift_jis\"\n",
        );
        assert_eq!(
            e.keys(),
            [
                "desk.notfy",
                "desk.address",
                "desk.ticket_prefix",
                "desk.reopen_days",
                "desk.reply_charset",
            ],
            "{e}"
        );
        assert!(
            e.problems[0]
                .message
                .starts_with("line 4, column 1: unknown field `notfy`, expected one of"),
            "{e}"
        );
        assert!(e.problems[0].message.contains("`notify`"), "{e}");
    }

    #[test]
    fn a_wrong_type_does_not_hide_the_other_problems_of_its_section() {
        let e = errors(
            "[desk]\naddress = \"a@b\"\nreopen_days = \"14\"\nticket_prefix = \"NEO_DS\"\n\
             [intake]\nkind = \"imap\"\nport = \"993\"\nhost = \"imap example\"\n\
             user = \"support\"\npassword_env = \"IMAP_PASSWORD\"\n",
        );
        assert_eq!(
            e.keys(),
            [
                "desk.reopen_days",
                "intake.port",
                "desk.ticket_prefix",
                "intake.host",
            ],
            "{e}"
        );
        assert!(
            e.problems[0]
                .message
                .starts_with("line 3, column 15: invalid type"),
            "{e}"
        );
    }

    #[test]
    fn a_key_left_out_is_not_guessed_at() {
        // A section that is not a table, a `kind` of the wrong type, a list with a bad item:
        // each is one problem, and validation says nothing about what was left out.
        let e = errors(
            "desk = 5\n\
             [intake]\nkind = 1\nhost = \"imap.example.co.jp\"\nport = 993\n\
             [outbound]\nkind = \"file\"\ndir = [\"out\", 2]\n",
        );
        assert_eq!(e.keys(), ["desk", "intake.kind", "outbound.dir"], "{e}");
        assert!(e.problems[0].message.starts_with("line 1, column "), "{e}");
        assert!(e.problems[2].message.starts_with("line 8, column "), "{e}");
    }

    #[test]
    fn syntax_error_is_one_problem_with_position() {
        let e = errors("[desk]\naddress = \"support@example.co.jp\n");
        assert_eq!(e.problems.len(), 1);
        assert_eq!(e.problems[0].key, "");
        assert!(e.problems[0].message.starts_with("line 2, column "), "{e}");
        assert!(!e.to_string().contains('\n'));
    }

    #[test]
    fn wrong_type_is_reported_with_its_key() {
        let e = errors("[desk]\naddress = \"a@b\"\nreopen_days = \"14\"\n");
        assert_eq!(e.keys(), ["desk.reopen_days"]);
        assert!(
            e.problems[0]
                .message
                .starts_with("line 3, column 15: invalid type"),
            "{e}"
        );
    }

    #[test]
    fn inline_password_is_rejected_specifically() {
        let e = errors(&format!(
            "{MINIMAL}[intake]\nkind = \"imap\"\nhost = \"h\"\nuser = \"u\"\npassword = \"s3cret\"\n\
             [outbound]\nkind = \"smtp\"\nhost = \"h\"\npassword = \"s3cret\"\n"
        ));
        assert_eq!(e.keys(), ["intake.password", "outbound.password"], "{e}");
        for p in &e.problems {
            assert_eq!(
                p.message,
                "inline passwords are not allowed; use password_file or password_env"
            );
        }
        assert!(!format!("{e:?}").contains("s3cret"));
        // Even in a maildir section it is called out as what it is.
        let e = errors(&format!("{MINIMAL}[intake]\npassword = \"x\"\n"));
        assert_eq!(e.keys(), ["intake.password"]);
    }

    #[test]
    fn both_password_sources_is_an_error() {
        let e = errors(&format!(
            "{MINIMAL}[outbound]\nkind = \"smtp\"\nhost = \"h\"\nuser = \"u\"\n\
             password_file = \"/p\"\npassword_env = \"P\"\n"
        ));
        assert_eq!(e.keys(), ["outbound.password_env"]);
        assert!(e.problems[0].message.contains("both set"));
    }

    #[test]
    fn credentials_must_come_in_pairs() {
        let e = errors(&format!(
            "{MINIMAL}[intake]\nkind = \"imap\"\nhost = \"h\"\nuser = \"u\"\n\
             [outbound]\nkind = \"smtp\"\nhost = \"h\"\npassword_env = \"P\"\n"
        ));
        assert_eq!(e.keys(), ["intake.user", "outbound.user"], "{e}");
        assert!(
            e.problems[0]
                .message
                .contains("neither password_file nor password_env")
        );
        assert!(e.problems[1].message.starts_with("required when"));
        // IMAP cannot run without a login; SMTP can.
        let e = errors(&format!(
            "{MINIMAL}[intake]\nkind = \"imap\"\nhost = \"h\"\n"
        ));
        assert_eq!(e.keys(), ["intake.user"]);
        let c = parse(&format!(
            "{MINIMAL}[outbound]\nkind = \"smtp\"\nhost = \"localhost\"\ntls = \"none\"\n\
             allow_plaintext = true\n"
        ))
        .unwrap();
        let Outbound::Smtp(s) = c.outbound else {
            panic!()
        };
        assert_eq!((s.port, s.tls, s.auth), (25, Tls::None, None));
    }

    #[test]
    fn ports_default_by_tls_and_plaintext_needs_consent() {
        let imap = |tls: &str, extra: &str| {
            parse(&format!(
                "{MINIMAL}[intake]\nkind = \"imap\"\nhost = \"h\"\nuser = \"u\"\n\
                 password_env = \"P\"\ntls = \"{tls}\"\n{extra}"
            ))
        };
        let port = |c: Config| match c.intake {
            Intake::Imap(i) => i.port,
            other => panic!("{other:?}"),
        };
        assert_eq!(port(imap("implicit", "").unwrap()), 993);
        assert_eq!(port(imap("starttls", "").unwrap()), 143);
        assert_eq!(port(imap("none", "allow_plaintext = true").unwrap()), 143);
        assert_eq!(port(imap("starttls", "port = 1143").unwrap()), 1143);
        assert_eq!(imap("none", "").unwrap_err().keys(), ["intake.tls"]);
        assert_eq!(
            imap("none", "allow_plaintext = false").unwrap_err().keys(),
            ["intake.tls"]
        );
        assert_eq!(imap("ssl", "").unwrap_err().keys(), ["intake.tls"]);
        assert_eq!(
            imap("implicit", "port = 0").unwrap_err().keys(),
            ["intake.port"]
        );
    }

    #[test]
    fn keys_of_the_other_kind_are_errors() {
        let e = errors(&format!(
            "{MINIMAL}[intake]\nmaildir = \"in\"\nhost = \"h\"\nidle = false\n\
             [outbound]\nkind = \"smtp\"\nhost = \"h\"\ndir = \"out\"\n"
        ));
        assert_eq!(
            e.keys(),
            ["intake.host", "intake.idle", "outbound.dir"],
            "{e}"
        );
        assert_eq!(e.problems[0].message, "only used with kind = \"imap\"");
        assert_eq!(e.problems[2].message, "only used with kind = \"file\"");
    }

    #[test]
    fn bad_windows_times_dates_and_timezone() {
        let hours = |body: &str| errors(&format!("{MINIMAL}[hours]\n{body}\n"));
        let one = |body: &str| {
            let e = hours(body);
            assert_eq!(e.problems.len(), 1, "{e}");
            e.problems[0].to_string()
        };
        assert_eq!(
            one(r#"windows = ["13:00-17:30", "09:00-12:00"]"#),
            r#"hours.windows[1]: "09:00-12:00" comes before windows[0]; list windows in order"#
        );
        assert_eq!(
            one(r#"windows = ["09:00-13:30", "13:00-17:30"]"#),
            r#"hours.windows[1]: "13:00-17:30" overlaps windows[0]"#
        );
        assert_eq!(
            one(r#"windows = ["09:00-09:00"]"#),
            r#"hours.windows[0]: "09:00-09:00" is empty (starts and ends at the same time)"#
        );
        assert_eq!(
            one(r#"windows = ["9:00-12:00"]"#),
            r#"hours.windows[0]: "9:00-12:00" is not a window (HH:MM-HH:MM)"#
        );
        assert_eq!(
            one("windows = []"),
            "hours.windows: at least one reception window is required"
        );
        assert_eq!(
            one(r#"license_cutoff = "17:60""#),
            r#"hours.license_cutoff: "17:60" is not a time of day (00:00..23:59)"#
        );
        assert_eq!(
            one(r#"license_cutoff = "5pm""#),
            r#"hours.license_cutoff: "5pm" is not a time of day (HH:MM)"#
        );
        assert_eq!(
            one(r#"company_holidays = ["2026-8-13"]"#),
            r#"hours.company_holidays[0]: "2026-8-13" is not a date (YYYY-MM-DD) or range (YYYY-MM-DD..YYYY-MM-DD)"#
        );
        assert_eq!(
            one(r#"company_holidays = ["2026-12-29..2072-01-04"]"#),
            r#"hours.company_holidays[0]: "2026-12-29..2072-01-04" spans more than a year"#
        );
        assert_eq!(
            one(r#"timezone = "JST""#),
            r#"hours.timezone: "JST" is not a known IANA time zone (e.g. "Asia/Tokyo")"#
        );
        assert_eq!(
            one("weekdays = []"),
            "hours.weekdays: at least one business weekday is required"
        );
        // Touching windows are fine; weekdays accept full names in any case and are sorted.
        let c = parse(&format!(
            "{MINIMAL}[hours]\nwindows = [\"09:00-12:00\", \"12:00-13:00\"]\n\
             weekdays = [\"SATURDAY\", \"monday\", \"Wed\"]\ntimezone = \"UTC\"\n\
             company_holidays = [\"2027-05-06\", \"2026-08-13..2026-08-16\"]\n"
        ))
        .unwrap();
        assert_eq!(c.calendar.windows.len(), 2);
        assert_eq!(
            c.calendar.weekdays,
            [Weekday::Mon, Weekday::Wed, Weekday::Sat]
        );
        assert_eq!(c.calendar.timezone, chrono_tz::UTC);
        assert_eq!(c.calendar.company_holidays[0].first, d("2026-08-13"));
    }

    #[test]
    fn desk_checks() {
        let e = errors(
            "[desk]\naddress = \"support@example.co.jp\"\nticket_prefix = \"ABCDEFGHIJKLMNOPQ\"\n\
             notify = [\"Support@example.co.jp\"]\nform_senders = [\"a@@b\"]\n",
        );
        assert_eq!(
            e.keys(),
            [
                "desk.ticket_prefix",
                "desk.notify[0]",
                "desk.form_senders[0]"
            ],
            "{e}"
        );
        assert!(e.problems[1].message.contains("desk's own address"));
        let c =
            parse("[desk]\naddress = \"s@x\"\nticket_prefix = \"T-1\"\nreopen_days = 0\n").unwrap();
        assert_eq!(
            (c.desk.ticket_prefix.as_str(), c.desk.reopen_days),
            ("T-1", 0)
        );
    }

    #[test]
    fn durations_need_a_unit_and_a_sane_range() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        for bad in ["60", "s", "1.5m", "-1s", "10 min", ""] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        let imap = |extra: &str| {
            parse(&format!(
                "{MINIMAL}[intake]\nkind = \"imap\"\nhost = \"h\"\nuser = \"u\"\n\
                 password_env = \"P\"\n{extra}"
            ))
        };
        let Intake::Imap(i) = imap("poll_interval = \"5m\"\nidle = false\n")
            .unwrap()
            .intake
        else {
            panic!()
        };
        assert_eq!((i.poll_interval, i.idle), (Duration::from_secs(300), false));
        assert_eq!(
            imap("poll_interval = \"0s\"").unwrap_err().keys(),
            ["intake.poll_interval"]
        );
        assert_eq!(
            imap("poll_interval = \"60\"").unwrap_err().keys(),
            ["intake.poll_interval"]
        );
        assert_eq!(
            imap("processed = \"INBOX\"\nbatch_size = 0")
                .unwrap_err()
                .keys(),
            ["intake.processed", "intake.batch_size"]
        );
    }

    #[test]
    fn relative_paths_resolve_against_the_config_directory() {
        let dir = tempfile::tempdir().unwrap();
        let etc = dir.path().join("etc");
        std::fs::create_dir(&etc).unwrap();
        let file = etc.join("madoguchi.toml");
        std::fs::write(
            &file,
            format!(
                "{MINIMAL}[storage]\ndatabase = \"db/desk.sqlite3\"\nfiles = \"/var/lib/madoguchi/files\"\n\
                 [intake]\nkind = \"imap\"\nhost = \"h\"\nuser = \"u\"\npassword_file = \"imap.password\"\n\
                 [outbound]\ndir = \"../outbox\"\n"
            ),
        )
        .unwrap();
        let c = Config::load(&file).unwrap();
        assert_eq!(c.storage.database, etc.join("db/desk.sqlite3"));
        assert_eq!(c.storage.files, Path::new("/var/lib/madoguchi/files"));
        assert_eq!(
            c.outbound,
            Outbound::File {
                dir: etc.join("../outbox")
            }
        );
        let Intake::Imap(i) = c.intake else { panic!() };
        assert_eq!(
            i.password.source(),
            &SecretSource::File(etc.join("imap.password"))
        );
        assert_eq!(c.source_path, Some(file));
    }

    #[test]
    fn load_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.toml");
        let err = Config::load(&missing).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("cannot read config file {}", missing.display())
        );
        assert!(std::error::Error::source(&err).is_some());

        let bad = dir.path().join("bad.toml");
        std::fs::write(
            &bad,
            "[desk]\naddress = \"x\"\n[hours]\nlicense_cutoff = \"7\"\n",
        )
        .unwrap();
        let ConfigError::Invalid(errs) = Config::load(&bad).unwrap_err() else {
            panic!()
        };
        let shown = bad.display();
        assert_eq!(
            render_errors(&errs),
            format!(
                "{shown}: desk.address: \"x\" is not an e-mail address (user@domain)\n\
                 {shown}: hours.license_cutoff: \"7\" is not a time of day (HH:MM)"
            )
        );
    }

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

    #[test]
    fn password_file_expands_credentials_directory_at_resolve_time() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("imap"), "cred\n").unwrap();
        let creds = dir.path().to_str().unwrap().to_owned();
        // Loading works without the variable (check-config runs outside the service)...
        let c = parse(&format!(
            "{MINIMAL}[intake]\nkind = \"imap\"\nhost = \"h\"\nuser = \"u\"\n\
             password_file = \"${{CREDENTIALS_DIRECTORY}}/imap\"\n"
        ))
        .unwrap();
        let Intake::Imap(i) = c.intake else { panic!() };
        // ...and reading expands it.
        let with = |n: &str| (n == "CREDENTIALS_DIRECTORY").then(|| creds.clone());
        assert_eq!(i.password.resolve_with(with).unwrap(), "cred");
        let err = i.password.resolve_with(|_| None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot expand password_file \"${CREDENTIALS_DIRECTORY}/imap\": \
             environment variable CREDENTIALS_DIRECTORY is not set"
        );
        let rel = i
            .password
            .resolve_with(|_| Some("relative".into()))
            .unwrap_err();
        assert!(rel.to_string().contains("not an absolute path"), "{rel}");
        // Malformed references are caught at load.
        for bad in ["${CREDENTIALS_DIRECTORY/imap", "${}/imap", "${1X}/imap"] {
            let e = errors(&format!(
                "{MINIMAL}[intake]\nkind = \"imap\"\nhost = \"h\"\nuser = \"u\"\n\
                 password_file = \"{bad}\"\n"
            ));
            assert_eq!(e.keys(), ["intake.password_file"], "{bad}: {e}");
        }
        let e = errors(&format!(
            "{MINIMAL}[intake]\nkind = \"imap\"\nhost = \"h\"\nuser = \"u\"\npassword_env = \"A-B\"\n"
        ));
        assert_eq!(e.keys(), ["intake.password_env"]);
    }
}

#[cfg(test)]
mod classify_and_forms_tests {
    use super::*;
    use crate::core::classify::Category;

    #[test]
    fn classify_and_forms_tables_override_the_defaults_and_unknown_keys_are_reported() {
        let base = Path::new("/etc/madoguchi");
        let ok = Config::from_toml_str(
            "[desk]\naddress = \"support@example.co.jp\"\n[classify]\nkeywords = [{ category = \"fault\", words = [\"起動しません\"] }]\n",
            base,
        )
        .unwrap();
        assert_eq!(ok.classify.keywords.len(), 1);
        assert_eq!(ok.classify.keywords[0].category, Category::Fault);
        let defaults =
            Config::from_toml_str("[desk]\naddress = \"support@example.co.jp\"\n", base).unwrap();
        assert_eq!(defaults.classify, ClassifyRules::default());
        assert_eq!(defaults.form_labels, FormLabels::default());
        let bad = Config::from_toml_str(
            "[desk]\naddress = \"support@example.co.jp\"\n[classify]\nkeyword = []\n[forms]\nnope = \"x\"\n",
            base,
        )
        .unwrap_err();
        assert_eq!(bad.keys(), ["classify.keyword", "forms.nope"], "{bad}");
    }

    #[test]
    fn reply_charset_is_utf8_unless_iso_2022_jp_is_asked_for() {
        let base = Path::new("/etc/madoguchi");
        let with = |v: &str| {
            Config::from_toml_str(
                &format!("[desk]\naddress = \"support@example.co.jp\"\n{v}"),
                base,
            )
        };
        assert_eq!(with("").unwrap().desk.reply_charset, ReplyCharset::Utf8);
        assert_eq!(
            with("reply_charset = \"ISO-2022-JP\"")
                .unwrap()
                .desk
                .reply_charset,
            ReplyCharset::Iso2022Jp
        );
        let bad = with("reply_charset = \"shift_jis\"").unwrap_err();
        assert_eq!(bad.keys(), ["desk.reply_charset"], "{bad}");
    }
}
