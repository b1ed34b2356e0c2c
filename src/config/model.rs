//! The validated configuration the daemon runs on, with its defaults. Built only by
//! `validate` (from the raw file) so every value here has passed its checks.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use chrono::NaiveTime;

use super::diagnostics::Diagnostic;
use super::secrets::Secret;
use crate::core::calendar::CalendarSpec;
use crate::core::classify::ClassifyRules;
use crate::core::form::FormLabels;

// `[hours]` defaults are `CalendarSpec::default()` (the support terms), not repeated here.
pub const DEFAULT_TICKET_PREFIX: &str = "NEO-DS";
pub const DEFAULT_REOPEN_DAYS: u32 = 14;
pub const DEFAULT_AUTO_REPLY_LIMIT_PER_HOUR: u32 = 5;
/// `[desk] flood_per_hour`: new requests from one sender in an hour before the rest of that
/// hour's mail goes onto their latest open ticket without notices.
pub const DEFAULT_FLOOD_PER_HOUR: u32 = 10;
/// `[intake] max_message_size`: 25 MiB.
pub const DEFAULT_MAX_MESSAGE_SIZE: u64 = 25 * 1024 * 1024;
pub const DEFAULT_DATABASE: &str = "var/madoguchi.sqlite3";
pub const DEFAULT_FILES: &str = "var/files";
pub const DEFAULT_MAILDIR: &str = "var/inbox";
pub const DEFAULT_OUTBOX: &str = "var/outbox";
pub const DEFAULT_IMAP_MAILBOX: &str = "INBOX";
pub const DEFAULT_IMAP_PROCESSED: &str = "Processed";
pub const DEFAULT_IMAP_QUARANTINE: &str = "Quarantine";
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(60);
pub const DEFAULT_BATCH_SIZE: u32 = 100;
/// `[intake] timeout` (IMAP): the longest one step (connect, a handshake, one response) may take.
pub const DEFAULT_IMAP_TIMEOUT: Duration = Duration::from_secs(60);
pub const DEFAULT_SMTP_PARALLEL: u32 = 4;
pub const DEFAULT_SMTP_TIMEOUT: Duration = Duration::from_secs(60);
pub const DEFAULT_LICENSE_PRODUCT: &str = "desknet's NEO 分散サーバー";
/// `[license] remind_at`: the staff reminder for unapproved applications due today.
pub const DEFAULT_LICENSE_REMIND_AT: NaiveTime = match NaiveTime::from_hms_opt(15, 0, 0) {
    Some(t) => t,
    None => NaiveTime::MIN,
};
pub const DEFAULT_LICENSE_COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// A validated configuration. Paths are absolute when the config came from a file (relative
/// ones are resolved against the file's directory).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub desk: Desk,
    pub calendar: CalendarSpec,
    pub storage: Storage,
    pub intake: Intake,
    /// Mail larger than this many bytes is quarantined unread, its bytes left in the
    /// mailbox's quarantine folder (`[intake] max_message_size`).
    pub max_message_size: u64,
    pub outbound: Outbound,
    pub staff: Staff,
    /// `[license]`; `None` without the section: license keys are not issued (applications
    /// are still ticketed).
    pub license: Option<LicenseConfig>,
    pub classify: ClassifyRules,
    pub form_labels: FormLabels,
    /// The file this was loaded from, if any.
    pub source_path: Option<PathBuf>,
    /// `[metrics]`; `None` without the section: no metrics are served.
    pub metrics: Option<MetricsConfig>,
    pub reminders: Reminders,
    pub sla: Sla,
}

pub use crate::core::reminders::{
    DEFAULT_RECONTINUATION_DAYS, DEFAULT_RENEWAL_DAYS, DEFAULT_SLA_HOURS, Reminders, Sla,
};

/// `[metrics]`: where Prometheus metrics (`/metrics`) and the health check (`/healthz`) are
/// served over HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsConfig {
    pub listen: SocketAddr,
}

/// `[metrics] listen` without a value: loopback only, on 9464 (the port OpenTelemetry's
/// Prometheus exporter uses; not taken by the usual Prometheus exporters).
pub const DEFAULT_METRICS_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 9464);

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
    /// Mail from one sender in an hour that opens tickets; past it, a flood (`core::decide`).
    pub flood_per_hour: u32,
    /// The charset of the mail the desk writes (a message with a character ISO-2022-JP cannot
    /// carry still goes in UTF-8).
    pub reply_charset: ReplyCharset,
}

/// `[staff]`: what makes mail from a `desk.staff` address count as the staff member's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Staff {
    pub authentication: StaffAuthentication,
    /// With `dkim`: the DNS server the signing keys are looked up at; `None`, the system's
    /// resolvers (`/etc/resolv.conf`).
    pub dns_resolver: Option<SocketAddr>,
}

pub use crate::core::auth::StaffAuthentication;

/// The inverse of [`StaffAuthentication::as_str`], with no trusted authserv-id yet.
impl FromStr for StaffAuthentication {
    type Err = UnknownValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            StaffAuthentication::default(),
            StaffAuthentication::Dkim,
            StaffAuthentication::None,
        ]
        .into_iter()
        .find(|a| a.as_str() == s)
        .ok_or(UnknownValue)
    }
}

/// `[license]`: issuing license keys by mail (R7, R8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicenseConfig {
    pub approval: Approval,
    /// Send a key as soon as its application is eligible, not on the cutoff schedule (R8).
    pub early: bool,
    /// When staff are reminded of unapproved applications due that day (`approval = "staff"`).
    pub remind_at: NaiveTime,
    /// The `product` claim of every key.
    pub product: String,
    pub issuer: IssuerConfig,
}

impl LicenseConfig {
    /// One line for `check-config`: who makes the keys and when they go out.
    pub fn describe(&self) -> String {
        let issuer = match &self.issuer {
            IssuerConfig::Builtin { signing_key_file } => {
                format!(
                    "builtin PASETO v4.public, key {}",
                    signing_key_file.display()
                )
            }
            IssuerConfig::Command { argv, timeout } => format!(
                "command {} (timeout {}s)",
                argv.first().map_or("", String::as_str),
                timeout.as_secs()
            ),
        };
        let when = if self.early {
            "as soon as eligible"
        } else {
            "on the cutoff schedule (R8)"
        };
        let approval = match self.approval {
            Approval::Auto => "no approval".to_owned(),
            Approval::Staff => format!(
                "staff #approve, reminder at {}",
                self.remind_at.format("%H:%M")
            ),
        };
        format!("{issuer}; sent {when}; {approval}")
    }

    fn warnings(&self, config: &Config) -> Vec<Diagnostic> {
        let mut out = Vec::new();
        if self.approval == Approval::Staff {
            if config.desk.staff.is_empty() {
                out.push(Diagnostic::at_key(
                    "license.approval",
                    "\"staff\" but desk.staff lists nobody: no key can ever be approved",
                ));
            }
            if self.remind_at >= config.calendar.license_cutoff {
                out.push(Diagnostic::at_key(
                    "license.remind_at",
                    format!(
                        "{} is not before hours.license_cutoff ({}): the reminder comes too late \
                         to approve a key in time",
                        self.remind_at.format("%H:%M"),
                        config.calendar.license_cutoff.format("%H:%M")
                    ),
                ));
            }
        }
        out
    }
}

/// Whether a key goes out by itself or waits for a staff `#approve`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Approval {
    #[default]
    Auto,
    Staff,
}

impl Approval {
    /// The spelling in the config (`license.approval`).
    pub fn as_str(self) -> &'static str {
        match self {
            Approval::Auto => "auto",
            Approval::Staff => "staff",
        }
    }
}

/// The inverse of [`Approval::as_str`].
impl FromStr for Approval {
    type Err = UnknownValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Approval::Auto, Approval::Staff]
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or(UnknownValue)
    }
}

/// Who makes the keys (`license.issuer`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssuerConfig {
    /// PASETO v4.public tokens signed with the key in this file (PASERK `k4.secret.…`). The
    /// path may hold `${NAME}` (e.g. `${CREDENTIALS_DIRECTORY}/license.key`), expanded from the
    /// environment when the key is read; otherwise it is absolute.
    Builtin { signing_key_file: PathBuf },
    /// The vendor's generator: `argv` run without a shell, the application as JSON on stdin,
    /// the key on stdout, killed after `timeout`.
    Command {
        argv: Vec<String>,
        timeout: Duration,
    },
}

impl IssuerConfig {
    /// The spelling in the config (`license.issuer`).
    pub fn as_str(&self) -> &'static str {
        match self {
            IssuerConfig::Builtin { .. } => "builtin",
            IssuerConfig::Command { .. } => "command",
        }
    }
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
    /// The longest one network step may take (connect, a handshake, one response); a whole
    /// command, ten times that (`intake::imap::COMMAND_TIMEOUTS`).
    pub timeout: Duration,
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

impl Config {
    /// What is allowed but probably not meant, each at its key, for `check-config` to print
    /// (the config is valid: the desk runs on it).
    pub fn warnings(&self) -> Vec<Diagnostic> {
        let mut out = Vec::new();
        match &self.staff.authentication {
            StaffAuthentication::None => out.push(Diagnostic::at_key(
                "staff.authentication",
                "\"none\": mail whose From is a staff address is believed without any check, and \
                 anyone can write that From; use \"authentication-results\"",
            )),
            StaffAuthentication::AuthenticationResults {
                trusted_authserv_ids,
            } if trusted_authserv_ids.is_empty() && !self.desk.staff.is_empty() => {
                out.push(Diagnostic::at_key(
                    "staff.trusted_authserv_ids",
                    format!(
                        "not set, so mail from the {} address(es) in desk.staff is never \
                         authenticated and is held; add a [staff] section naming the authserv-id \
                         your border MTA writes in Authentication-Results",
                        self.desk.staff.len()
                    ),
                ));
            }
            _ => {}
        }
        if let Some(license) = &self.license {
            out.extend(license.warnings(self));
        }
        out
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
             {} auto-replies/hour/sender, flood past {} mails/hour/sender)\n",
            d.address,
            d.ticket_prefix,
            d.staff.len(),
            d.notify.len(),
            d.form_senders.len(),
            d.reopen_days,
            d.auto_reply_limit_per_hour,
            d.flood_per_hour
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
        s += &format!("staff mail: {}\n", self.staff.authentication.describe());
        if self.staff.authentication == StaffAuthentication::Dkim {
            s += &match self.staff.dns_resolver {
                Some(at) => format!("DKIM keys: looked up at {at}\n"),
                None => "DKIM keys: looked up with the system's resolvers (/etc/resolv.conf)\n"
                    .to_owned(),
            };
        }
        s += &match &self.license {
            None => "license keys: not issued (no [license] section)\n".to_owned(),
            Some(l) => format!("license keys: {}\n", l.describe()),
        };
        if let Some(m) = &self.metrics {
            s += &format!(
                "metrics: http://{}/metrics and /healthz (Prometheus)\n",
                m.listen
            );
        }
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
