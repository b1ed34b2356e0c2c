//! `madoguchi status [--json]`: the desk's health for scripts, Zabbix and Nagios. Exit 0
//! healthy, 1 degraded, 2 down, with the reasons; the first line is a Nagios plugin's
//! (`MADOGUCHI OK - …`, with performance data after `|`).
//!
//! What it reads: whether a process holds the instance lock (`madoguchi::instance`), what the
//! daemon recorded after its last pass (`daemon_status`), and counts from the store. It never
//! talks to the mail servers itself: "mailbox reachable" is as the daemon last saw it.
//!
//! - **down** (2): no daemon holds the lock; no database; or no successful pass for `--stale`
//!   (default 30m; the daemon passes at least every 5 minutes).
//! - **degraded** (1): the daemon's last pass failed; the mailbox was unreachable; the oldest
//!   unsent mail has waited longer than `--outbox-age` (default 15m: a relay down for that
//!   long, the retries back off from 30 s to an hour); a license application is due and its
//!   key not sent (R8 at risk).

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use chrono::{DateTime, Utc};
use madoguchi::clock::system_now;
use madoguchi::desk::Desk;
use madoguchi::instance;
use madoguchi::store::daemon_status::{DaemonRecord, HealthCounts};
use serde::Serialize;
use serde_json::json;

use super::Output;
use super::desk::config_for_desk;

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Degraded when the oldest unsent mail has waited longer than this ("90s", "15m", "1h").
    #[arg(long, default_value = "15m", value_parser = duration_arg)]
    pub outbox_age: Duration,
    /// Down when the daemon has had no successful pass for this long.
    #[arg(long, default_value = "30m", value_parser = duration_arg)]
    pub stale: Duration,
}

fn duration_arg(text: &str) -> Result<Duration, String> {
    madoguchi::config::parse_duration(text).map_err(|msg| format!("{text:?} {msg}"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Healthy,
    Degraded,
    Down,
}

impl Level {
    fn code(self) -> u8 {
        self as u8
    }

    fn word(self) -> &'static str {
        match self {
            Level::Healthy => "healthy",
            Level::Degraded => "degraded",
            Level::Down => "down",
        }
    }

    /// The Nagios plugin word.
    fn nagios(self) -> &'static str {
        match self {
            Level::Healthy => "OK",
            Level::Degraded => "WARNING",
            Level::Down => "CRITICAL",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reason {
    /// `daemon`, `database`, `pass`, `mailbox`, `outbox`, `license`.
    pub check: &'static str,
    pub level: Level,
    pub message: String,
}

/// What `status` found, before judging it.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub database_exists: bool,
    /// `Some(pid)` when a process holds the lock (`None` inside: its pid not written yet).
    pub holder: Option<Option<u32>>,
    pub record: Option<DaemonRecord>,
    pub counts: HealthCounts,
    /// Tickets whose license application is at risk of R8.
    pub at_risk: Vec<u64>,
    pub open_applications: usize,
}

impl Facts {
    /// The daemon's record, if it is the running daemon's: a record another process left (the
    /// previous daemon, before this one wrote its first) says nothing about this one.
    fn current_record(&self) -> Option<&DaemonRecord> {
        let record = self.record.as_ref()?;
        match self.holder {
            Some(Some(pid)) if record.pid != Some(pid) => None,
            _ => Some(record),
        }
    }
}

fn minutes(d: chrono::Duration) -> i64 {
    d.num_minutes().max(0)
}

/// Judges `facts` at `now`: every reason, worst first.
pub fn assess(facts: &Facts, args: &StatusArgs, now: DateTime<Utc>) -> Vec<Reason> {
    let mut reasons = Vec::new();
    let mut push = |check, level, message: String| {
        reasons.push(Reason {
            check,
            level,
            message,
        })
    };
    if !facts.database_exists {
        push(
            "database",
            Level::Down,
            "no database yet: the daemon has never run on this config".into(),
        );
    }
    match (facts.holder, facts.current_record()) {
        (None, _) => push("daemon", Level::Down, "the daemon is not running".into()),
        // Just started: nothing recorded yet by this process.
        (Some(_), None) => {}
        (Some(_), Some(r)) => {
            let started = r.started_at.unwrap_or(DateTime::<Utc>::MIN_UTC);
            let passed = r.last_pass_at.filter(|p| *p >= started);
            let since = passed.unwrap_or(started);
            let stale = chrono::Duration::from_std(args.stale).unwrap_or(chrono::Duration::MAX);
            if now - since > stale {
                let what = match passed {
                    Some(_) => "no successful pass for",
                    None => "no successful pass since the start",
                };
                push(
                    "pass",
                    Level::Down,
                    format!(
                        "{what} {} min (limit {} min)",
                        minutes(now - since),
                        args.stale.as_secs() / 60
                    ),
                );
            }
            if let Some(at) = r
                .last_error_at
                .filter(|e| *e >= started && Some(*e) > passed)
            {
                push(
                    "pass",
                    Level::Degraded,
                    format!(
                        "the last pass failed {} min ago: {}",
                        minutes(now - at),
                        r.last_error.as_deref().unwrap_or("(no message)")
                    ),
                );
            }
            if r.mailbox_state.as_deref() == Some("unreachable") {
                push(
                    "mailbox",
                    Level::Degraded,
                    "the mailbox is unreachable".into(),
                );
            }
        }
    }
    let q = &facts.counts.queue;
    if let Some(oldest) = q.oldest_unsent_at {
        let waited = now - oldest;
        if waited.to_std().is_ok_and(|w| w > args.outbox_age) {
            push(
                "outbox",
                Level::Degraded,
                format!(
                    "{} mail(s) unsent, the oldest for {} min (limit {} min)",
                    q.unsent,
                    minutes(waited),
                    args.outbox_age.as_secs() / 60
                ),
            );
        }
    }
    if !facts.at_risk.is_empty() {
        let tickets: Vec<String> = facts.at_risk.iter().map(|t| format!("#{t}")).collect();
        push(
            "license",
            Level::Degraded,
            format!(
                "{} license application(s) due with no key sent (R8 at risk): ticket {}",
                facts.at_risk.len(),
                tickets.join(", ")
            ),
        );
    }
    reasons.sort_by_key(|r| std::cmp::Reverse(r.level));
    reasons
}

fn seconds(d: chrono::Duration) -> i64 {
    d.num_seconds().max(0)
}

pub fn status(
    config_path: Option<&Path>,
    args: &StatusArgs,
    out: &Output,
) -> anyhow::Result<ExitCode> {
    let config = config_for_desk(config_path)?;
    let now = system_now();
    let database = config.storage.database.clone();
    let lock_file = instance::lock_path(&database);
    let holder = instance::holder(&database)?.map(|h| h.pid);
    let mut facts = Facts {
        database_exists: database.exists(),
        holder,
        ..Facts::default()
    };
    // Never create the database here: a missing one is a finding, not something to fix.
    if facts.database_exists {
        let desk = Desk::open(config)?;
        let store = desk.store();
        facts.record = store.daemon_record()?;
        facts.counts = store.health_counts()?;
        let open = store.open_applications()?;
        drop(store);
        facts.open_applications = open.len();
        facts.at_risk = open
            .iter()
            .filter(|a| super::licenses::at_risk(&a.record, &desk, now))
            .map(|a| a.record.ticket)
            .collect();
    }
    let reasons = assess(&facts, args, now);
    let level = reasons.first().map_or(Level::Healthy, |r| r.level);
    let doc = document(&facts, &reasons, level, args, now, &lock_file);
    out.emit(&doc, || human(&facts, &reasons, level, now, &lock_file))?;
    Ok(ExitCode::from(level.code()))
}

fn document(
    facts: &Facts,
    reasons: &[Reason],
    level: Level,
    args: &StatusArgs,
    now: DateTime<Utc>,
    lock_file: &Path,
) -> serde_json::Value {
    let record = facts.record.clone().unwrap_or_default();
    let q = &facts.counts.queue;
    let c = &facts.counts;
    json!({
        "status": level,
        "exit_code": level.code(),
        "reasons": reasons,
        "checked_at": now,
        "daemon": {
            "running": facts.holder.is_some(),
            "pid": facts.holder.flatten(),
            "lock_file": lock_file,
            "started_at": facts.current_record().and(record.started_at),
        },
        "last_pass": record.last_pass_at.map(|at| json!({
            "at": at,
            "age_seconds": seconds(now - at),
            "duration_ms": record.last_pass_ms,
            "summary": record.last_pass_summary,
        })),
        "last_error": record.last_error_at.map(|at| json!({
            "at": at,
            "message": record.last_error,
        })),
        "mailbox": {
            "state": record.mailbox_state.as_deref().unwrap_or("unknown"),
            "checked_at": record.mailbox_checked_at,
        },
        "tickets": {
            "waiting_acceptance": q.waiting_acceptance,
            "open": q.open,
            "pending": q.pending,
        },
        "outbox": {
            "pending": q.unsent,
            "sent": c.sent,
            "failed": c.failed,
            "oldest_unsent_at": q.oldest_unsent_at,
            "oldest_unsent_age_seconds": q.oldest_unsent_at.map(|t| seconds(now - t)),
        },
        "quarantined": c.quarantined,
        "licenses": {
            "open": facts.open_applications,
            "at_risk": facts.at_risk.len(),
            "at_risk_tickets": facts.at_risk,
        },
        "thresholds": {
            "outbox_age_seconds": args.outbox_age.as_secs(),
            "stale_seconds": args.stale.as_secs(),
        },
    })
}

fn ago(now: DateTime<Utc>, at: DateTime<Utc>) -> String {
    let s = seconds(now - at);
    match s {
        0..120 => format!("{s} s ago"),
        120..7200 => format!("{} min ago", s / 60),
        _ => format!("{} h ago", s / 3600),
    }
}

fn human(
    facts: &Facts,
    reasons: &[Reason],
    level: Level,
    now: DateTime<Utc>,
    lock_file: &Path,
) -> String {
    let record = facts.record.clone().unwrap_or_default();
    let q = &facts.counts.queue;
    let c = &facts.counts;
    let headline = match reasons.first() {
        None => match (facts.holder.flatten(), record.last_pass_at) {
            (Some(pid), Some(at)) => format!("running (pid {pid}), last pass {}", ago(now, at)),
            _ => "running".to_string(),
        },
        Some(_) => reasons
            .iter()
            .map(|r| r.message.as_str())
            .collect::<Vec<_>>()
            .join("; "),
    };
    let oldest = q.oldest_unsent_at.map_or(0, |t| seconds(now - t));
    let mut text = format!(
        "MADOGUCHI {} - {headline} | tickets_open={} tickets_waiting={} tickets_pending={} \
         outbox_pending={} outbox_oldest={oldest}s outbox_failed={} quarantined={} \
         r8_at_risk={}\n",
        level.nagios(),
        q.open,
        q.waiting_acceptance,
        q.pending,
        q.unsent,
        c.failed,
        c.quarantined,
        facts.at_risk.len()
    );
    for r in reasons {
        text += &format!("  {}: {}\n", r.level.word(), r.message);
    }
    text += &match facts.holder {
        Some(pid) => format!(
            "daemon: running{} (lock {})\n",
            pid.map(|p| format!(", pid {p}")).unwrap_or_default(),
            lock_file.display()
        ),
        None => format!(
            "daemon: not running (nothing holds {})\n",
            lock_file.display()
        ),
    };
    text += &match record.last_pass_at {
        Some(at) => format!(
            "last pass: {} ({}){}\n",
            at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            ago(now, at),
            record
                .last_pass_ms
                .map(|ms| format!(", took {ms} ms"))
                .unwrap_or_default()
        ),
        None => "last pass: none\n".to_string(),
    };
    if let (Some(at), Some(error)) = (record.last_error_at, &record.last_error) {
        text += &format!(
            "last error: {} ({}): {error}\n",
            at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            ago(now, at)
        );
    }
    text += &format!(
        "mailbox: {}\n",
        match (&record.mailbox_state, record.mailbox_checked_at) {
            (Some(state), Some(at)) => format!("{state} (checked {})", ago(now, at)),
            _ => "unknown (no pass since the daemon started)".to_string(),
        }
    );
    text += &format!(
        "tickets: {} waiting acceptance, {} open, {} pending\n",
        q.waiting_acceptance, q.open, q.pending
    );
    text += &format!(
        "outbox: {} pending, {} sent, {} failed{}\n",
        q.unsent,
        c.sent,
        c.failed,
        q.oldest_unsent_at
            .map(|t| format!("; oldest unsent queued {}", ago(now, t)))
            .unwrap_or_default()
    );
    text += &format!("quarantined: {}\n", c.quarantined);
    text += &format!(
        "license applications: {} open, {} at risk of R8\n",
        facts.open_applications,
        facts.at_risk.len()
    );
    text
}

#[cfg(test)]
mod tests;
