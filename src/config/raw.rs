//! The config file as written: the serde schema ([`RawConfig`], every table
//! `deny_unknown_fields`) and reading TOML text into it without one bad key hiding the rest.
//! Defaults and checks are not here but in `validate`.

use serde::Deserialize;
use serde::de::{DeserializeOwned, IgnoredAny};
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use super::diagnostics::Diagnostic;
use crate::core::classify::ClassifyRules;
use crate::core::form::FormLabels;

/// The config file as written. Every field is optional here; defaults and checks live in
/// [`super::Config::from_raw`]. Integers are `i64` so out-of-range values get our message, not serde's.
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
    #[serde(default)]
    pub staff: RawStaff,
    /// `None` without a `[license]` section: license keys are not issued.
    #[serde(default)]
    pub license: Option<RawLicense>,
    /// Keyword and form-category rules for classification (R1–R3); defaults built in.
    #[serde(default)]
    pub classify: ClassifyRules,
    /// The web forms' `【label】` texts, when the forms use other wording.
    #[serde(default)]
    pub forms: FormLabels,
    /// `None` without a `[metrics]` section: no metrics are served.
    #[serde(default)]
    pub metrics: Option<RawMetrics>,
    /// Renewal reminders to customers and the morning digest to staff.
    #[serde(default)]
    pub reminders: RawReminders,
    /// How long a ticket may wait for staff before they are reminded.
    #[serde(default)]
    pub sla: RawSla,
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
    pub flood_per_hour: Option<i64>,
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
    /// `"60s"`: the longest the IMAP server may take to answer one step.
    pub timeout: Option<String>,
    /// `"25MB"`: larger mail is quarantined unread (both kinds).
    pub max_message_size: Option<String>,
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

/// `[staff]`: how mail from a `desk.staff` address is authenticated before it may act.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStaff {
    /// `"authentication-results"` (default), `"dkim"` or `"none"`.
    pub authentication: Option<String>,
    /// Whose `Authentication-Results` headers to believe (authentication-results only).
    pub trusted_authserv_ids: Option<Vec<String>>,
    /// The DNS server that DKIM keys are looked up at (dkim only; default: the system's
    /// resolvers, `/etc/resolv.conf`).
    pub dns_resolver: Option<String>,
}

/// `[license]`: license keys by mail (R7, R8). `issuer = "builtin"` uses `signing_key_file`;
/// `issuer = "command"` uses `command` and `command_timeout`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLicense {
    /// `"auto"` (default) or `"staff"`.
    pub approval: Option<String>,
    pub early: Option<bool>,
    /// `HH:MM`.
    pub remind_at: Option<String>,
    pub product: Option<String>,
    /// `"builtin"` (default) or `"command"`.
    pub issuer: Option<String>,
    pub signing_key_file: Option<String>,
    /// The program and its arguments (no shell).
    pub command: Option<Vec<String>>,
    pub command_timeout: Option<String>,
}

/// `[metrics]`: Prometheus metrics and a health check over HTTP.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMetrics {
    /// `IP:PORT` to listen on (default `127.0.0.1:9464`).
    pub listen: Option<String>,
}

/// `[reminders]`: what the desk tells customers before their support lapses (R10/R11), and
/// the staff's morning digest.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReminders {
    /// Days before a support period's last day that its contacts are reminded (`[60, 30, 7]`;
    /// `[]` for none).
    pub renewal_days: Option<Vec<i64>>,
    /// The notice the day after a period ended (support stopped; renew by when).
    pub lapsed: Option<bool>,
    /// Days before the last day of a plain renewal that the re-continuation warning goes out
    /// (30; 0 for none).
    pub recontinuation_days: Option<i64>,
    /// The morning digest to `desk.notify` at the first opening of each business day.
    pub digest: Option<bool>,
}

/// `[sla]`: business hours (R5 calendar) a ticket may wait for staff before a reminder.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSla {
    /// Hours from acceptance to the first staff reply (8).
    pub first_response: Option<i64>,
    /// Hours from a customer's follow-up to the next staff reply (8).
    pub next_response: Option<i64>,
}

/// The file read into [`RawConfig`] as far as it fits the schema.
pub(super) struct Parsed {
    /// `None` only when the file is not TOML at all.
    pub raw: Option<RawConfig>,
    /// Keys that do not fit the schema, in file order.
    pub problems: Vec<Diagnostic>,
    /// Dotted paths left out of `raw` because of those problems.
    pub dropped: Vec<String>,
}

/// Reads the file into the `deny_unknown_fields` raw structs without letting one bad key hide
/// the rest: serde stops at the first error of a struct, so a table that fails as a whole is
/// read again key by key, each key alone against the same struct. A key that fails on its own
/// (unknown, wrong type) is one problem and is left out; the table's other keys still count.
/// The raw structs stay the one schema: no list of known keys is kept beside them.
pub(super) fn parse_raw(text: &str) -> Parsed {
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
        staff: Option<IgnoredAny>,
        license: Option<IgnoredAny>,
        classify: Option<IgnoredAny>,
        forms: Option<IgnoredAny>,
        metrics: Option<IgnoredAny>,
        reminders: Option<IgnoredAny>,
        sla: Option<IgnoredAny>,
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
        staff: reader.read_opt("staff", section("staff")),
        license: reader.read_opt("license", section("license")),
        classify: reader.read_opt("classify", section("classify")),
        forms: reader.read_opt("forms", section("forms")),
        metrics: reader.read_opt("metrics", section("metrics")),
        reminders: reader.read_opt("reminders", section("reminders")),
        sla: reader.read_opt("sla", section("sla")),
    };
    // `kind` (in `[license]`, `issuer`) decides which keys a section may have: without it,
    // every other complaint about the section would be a guess.
    for kind in ["intake.kind", "outbound.kind", "license.issuer"] {
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
    problems: Vec<(usize, Diagnostic)>,
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
fn toml_problem(text: &str, key: &str, e: &toml::de::Error) -> Diagnostic {
    let message = match e.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
            format!("line {line}, column {column}: {}", e.message().trim_end())
        }
        None => e.message().trim_end().to_owned(),
    };
    Diagnostic::at_key(key, message)
}
