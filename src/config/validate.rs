//! Raw config → validated [`Config`]: defaults filled in, every value checked, relative paths
//! resolved, and every problem reported at once, each naming its key. The mail server sections
//! (`[intake]`, `[outbound]`) are checked in `servers`, `[license]` in `license`.

mod license;
mod metrics;
mod reminders;
mod servers;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{NaiveTime, Weekday};
use chrono_tz::Tz;

use super::diagnostics::{Diagnostic, Diagnostics};
use super::model::*;
use super::raw::{RawConfig, RawDesk, RawHours, RawStaff};
use crate::core::address::Address;
use crate::core::calendar::{BusinessCalendar, CalendarSpec, CompanyClosure, Window};
use crate::core::date::parse_ymd;
use license::validate_license;
use servers::{validate_intake, validate_outbound};

impl Config {
    /// Validates a raw config, reporting every problem found.
    pub fn from_raw(raw: RawConfig, base_dir: &Path) -> Result<Config, Diagnostics> {
        let mut p = Problems::default();
        let desk = validate_desk(&raw.desk, &mut p);
        let staff = validate_staff(&raw.staff, &mut p);
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
        let max_message_size = size_field(
            &mut p,
            "intake.max_message_size",
            raw.intake.max_message_size.as_deref(),
            DEFAULT_MAX_MESSAGE_SIZE,
        );
        let outbound = validate_outbound(&raw.outbound, base_dir, &mut p);
        let license = validate_license(raw.license.as_ref(), base_dir, &mut p);
        let metrics = metrics::validate_metrics(raw.metrics.as_ref(), &mut p);
        let reminders = reminders::validate_reminders(&raw.reminders, &mut p);
        let sla = reminders::validate_sla(&raw.sla, &mut p);
        match (desk, calendar, intake, outbound, staff) {
            (Some(desk), Some(calendar), Some(intake), Some(outbound), Some(staff))
                if p.0.is_empty() =>
            {
                Ok(Config {
                    desk,
                    calendar,
                    storage,
                    intake,
                    max_message_size,
                    outbound,
                    staff,
                    license,
                    classify: raw.classify.clone(),
                    form_labels: raw.forms.clone(),
                    source_path: None,
                    metrics,
                    reminders,
                    sla,
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
                Err(p.0.into())
            }
        }
    }
}

/// Collects problems while validation carries on.
#[derive(Default)]
pub(super) struct Problems(Vec<Diagnostic>);

impl Problems {
    pub(super) fn push(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.0.push(Diagnostic::at_key(key, message));
    }
}

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
    let flood_per_hour = int_field(
        p,
        "desk.flood_per_hour",
        raw.flood_per_hour,
        DEFAULT_FLOOD_PER_HOUR,
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
        flood_per_hour,
        auto_reply_limit_per_hour,
        reply_charset,
    })
}

/// `[staff]`. Without the section, the default authenticates no staff mail (a warning when
/// `desk.staff` lists anyone, see [`Config::warnings`]); written with nothing to trust, it is
/// an error.
fn validate_staff(raw: &RawStaff, p: &mut Problems) -> Option<Staff> {
    let written = raw.authentication.is_some() || raw.trusted_authserv_ids.is_some();
    let mode = match raw.authentication.as_deref() {
        None => StaffAuthentication::default(),
        Some(text) => match text.parse() {
            Ok(mode) => mode,
            Err(UnknownValue) => {
                p.push(
                    "staff.authentication",
                    format!(
                        "{text:?} is not a way to authenticate staff mail; use \
                         \"authentication-results\", \"dkim\" or \"none\""
                    ),
                );
                return None;
            }
        },
    };
    let authentication = match mode {
        StaffAuthentication::AuthenticationResults { .. } => {
            let mut ids: Vec<String> = Vec::new();
            for (i, text) in raw.trusted_authserv_ids.iter().flatten().enumerate() {
                let key = format!("staff.trusted_authserv_ids[{i}]");
                let id = text.trim().to_ascii_lowercase();
                if id.is_empty()
                    || id
                        .chars()
                        .any(|c| c.is_whitespace() || c.is_control() || "();=\"".contains(c))
                {
                    p.push(
                        key,
                        format!(
                            "{text:?} is not an authserv-id (the first word of an \
                             Authentication-Results header, usually the border MTA's host name)"
                        ),
                    );
                } else if ids.contains(&id) {
                    p.push(key, format!("{text:?} is listed twice"));
                } else {
                    ids.push(id);
                }
            }
            let problems = raw.trusted_authserv_ids.iter().flatten().count() != ids.len();
            if written && ids.is_empty() && !problems {
                p.push(
                    "staff.trusted_authserv_ids",
                    "required with authentication = \"authentication-results\": with no trusted \
                     authserv-id no staff mail could ever pass; name the authserv-id your border \
                     MTA writes in its Authentication-Results header (e.g. \"mx.example.co.jp\")",
                );
            }
            StaffAuthentication::AuthenticationResults {
                trusted_authserv_ids: ids,
            }
        }
        other => {
            if raw.trusted_authserv_ids.is_some() {
                p.push(
                    "staff.trusted_authserv_ids",
                    format!(
                        "only used with authentication = \"authentication-results\" (not {:?})",
                        other.as_str()
                    ),
                );
            }
            other
        }
    };
    let dns_resolver = match raw.dns_resolver.as_deref() {
        None => None,
        Some(_) if authentication != StaffAuthentication::Dkim => {
            p.push(
                "staff.dns_resolver",
                format!(
                    "only used with authentication = \"dkim\" (not {:?})",
                    authentication.as_str()
                ),
            );
            None
        }
        Some(text) => match resolver_address(text) {
            Some(at) => Some(at),
            None => {
                p.push(
                    "staff.dns_resolver",
                    format!(
                        "{text:?} is not a DNS server's address; write an IP address, with a \
                         port if it is not 53 (e.g. \"127.0.0.1:5353\", \"[::1]:53\")"
                    ),
                );
                None
            }
        },
    };
    Some(Staff {
        authentication,
        dns_resolver,
    })
}

/// `IP:PORT`, `[IPv6]:PORT` or a bare IP address (port 53); never a host name (it would need
/// a resolver to find the resolver) and never port 0.
fn resolver_address(text: &str) -> Option<SocketAddr> {
    let text = text.trim();
    let at = text.parse::<SocketAddr>().ok().or_else(|| {
        text.parse::<IpAddr>()
            .ok()
            .map(|ip| SocketAddr::new(ip, 53))
    })?;
    (at.port() != 0).then_some(at)
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

pub(super) fn path_field(
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

pub(super) fn int_field(
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

pub(super) fn duration_field(
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

/// A size like `"25MB"`: a number of bytes with an optional `KB`, `MB` or `GB` (powers of
/// 1024; `KiB`/`MiB`/`GiB` too), at least 1 KB.
pub(super) fn size_field(p: &mut Problems, key: &str, value: Option<&str>, default: u64) -> u64 {
    let Some(text) = value else { return default };
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let factor: Option<u64> = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => Some(1),
        "k" | "kb" | "kib" => Some(1 << 10),
        "m" | "mb" | "mib" => Some(1 << 20),
        "g" | "gb" | "gib" => Some(1 << 30),
        _ => None,
    };
    match (digits.parse::<u64>().ok(), factor) {
        (Some(n), Some(f)) if n.checked_mul(f).is_some_and(|b| b >= 1024) => n * f,
        (Some(_), Some(_)) => {
            p.push(key, format!("{text:?} must be at least 1KB"));
            default
        }
        _ => {
            p.push(
                key,
                format!("{text:?} is not a size; write bytes or a number with KB, MB or GB, e.g. \"25MB\""),
            );
            default
        }
    }
}

/// One plain `local@domain` address as [`Address`] reads it everywhere (config, contracts,
/// forms), kept in its normal form (trimmed, lowercased).
fn check_address(p: &mut Problems, key: &str, a: &str) -> Option<String> {
    match Address::parse(a) {
        Ok(address) => Some(address.into_string()),
        Err(_) => {
            p.push(key, format!("{a:?} is not an e-mail address (user@domain)"));
            None
        }
    }
}

/// Strict `HH:MM`, 00:00..23:59.
pub(super) fn parse_hhmm(s: &str) -> Result<NaiveTime, &'static str> {
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
/// the reader guessing between seconds and milliseconds. The one duration syntax of the config
/// and the command line (`status --outbox-age 15m`).
pub fn parse_duration(s: &str) -> Result<Duration, &'static str> {
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
