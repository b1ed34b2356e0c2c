//! `[intake]` and `[outbound]`: flat tables selected by `kind`, where a key that belongs to the
//! other kind is an error rather than silently ignored; the IMAP and SMTP connection keys
//! (host, port, tls, credentials) are checked alike.

use std::path::Path;
use std::time::Duration;

use super::super::model::*;
use super::super::raw::{RawIntake, RawOutbound};
use super::super::secrets::{Secret, expand_vars, is_env_name};
use super::{Problems, duration_field, int_field, path_field};

const INLINE_PASSWORD: &str = "inline passwords are not allowed; use password_file or password_env";

pub(super) fn validate_intake(raw: &RawIntake, base: &Path, p: &mut Problems) -> Option<Intake> {
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
        ("timeout", raw.timeout.is_some()),
    ];
    // `max_message_size` belongs to both kinds (read in `validate`).
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
            let timeout = duration_field(
                p,
                "intake.timeout",
                raw.timeout.as_deref(),
                DEFAULT_IMAP_TIMEOUT,
                Duration::from_secs(600),
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
                timeout,
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

pub(super) fn validate_outbound(
    raw: &RawOutbound,
    base: &Path,
    p: &mut Problems,
) -> Option<Outbound> {
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
