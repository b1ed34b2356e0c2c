//! What the daemon tells its service manager, apart from the loop itself: the one-line status an
//! admin reads in `systemctl status` ([`ServiceStatus`]), the backlog it shows ([`Backlog`]),
//! and the watchdog's view of the loop ([`Heartbeat`], fed by the desk's [`Progress`]).
//!
//! The watchdog rule: the loop pings only while it shows it is alive. A wait for mail is alive
//! until its own bound plus half the watchdog interval; a pass is alive as long as one of its
//! steps (a fetch, a batch recorded, an acknowledgement, a slice sent) finished within the last
//! half interval. The pings come from the loop's own task, between and during its awaits, never
//! from a task of their own: a loop stuck in a step (a store waiting on a lock, a server that
//! never answers, a thread that blocks the runtime) stops them, and systemd restarts it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use tokio::time::{Instant, Interval, MissedTickBehavior};

use crate::config::{Config, Intake};
use crate::desk::PassSummary;

/// How many steps the desk has finished, ever: the loop watches it change during a pass.
#[derive(Debug, Clone, Default)]
pub struct Progress(Arc<AtomicU64>);

impl Progress {
    /// One more step done.
    pub fn step(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// The work waiting in the store, as the status line shows it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Backlog {
    /// Tickets not closed (staff's queue, `madoguchi queue`).
    pub open_tickets: u64,
    /// Of those, tickets that arrived outside reception hours and wait for the opening.
    pub awaiting_acceptance: u64,
    /// Outgoing mail not yet taken by the relay.
    pub outbox_pending: u64,
}

/// What the service is doing, in the words of `systemctl status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Starting,
    Running,
    Reloading,
    Stopping,
}

/// The daemon's state as the status line reports it; the loop updates it, the observer shows
/// [`ServiceStatus::line`].
#[derive(Debug, Clone)]
pub struct ServiceStatus {
    tz: Tz,
    mailbox: String,
    pub phase: Phase,
    /// The mailbox could not be opened: since when, and why.
    pub mailbox_down: Option<(DateTime<Utc>, String)>,
    /// The relay could not be reached: since when, and why.
    pub relay_down: Option<(DateTime<Utc>, String)>,
    pub last_pass: Option<(DateTime<Utc>, PassSummary)>,
    /// The last pass failed (cleared by the next one that succeeds).
    pub pass_failed: Option<(DateTime<Utc>, String)>,
    pub backlog: Option<Backlog>,
}

/// The longest reason the line carries; the log has the whole of it.
const REASON_MAX: usize = 160;

impl ServiceStatus {
    pub fn new(config: &Config) -> Self {
        let mailbox = match &config.intake {
            Intake::Maildir { dir } => format!("watching the Maildir {}", dir.display()),
            Intake::Imap(imap) if imap.idle => format!("idle on {} at {}", imap.mailbox, imap.host),
            Intake::Imap(imap) => format!(
                "polling {} at {} every {} s",
                imap.mailbox,
                imap.host,
                imap.poll_interval.as_secs()
            ),
        };
        Self {
            tz: config.calendar.timezone,
            mailbox,
            phase: Phase::Starting,
            mailbox_down: None,
            relay_down: None,
            last_pass: None,
            pass_failed: None,
            backlog: None,
        }
    }

    /// After a reload: the new config's mailbox; what happened so far stays.
    pub fn reconfigure(&mut self, config: &Config) {
        let fresh = Self::new(config);
        self.tz = fresh.tz;
        self.mailbox = fresh.mailbox;
    }

    /// A failure since `at`: the first one's time is kept while the trouble lasts.
    pub fn down(slot: &mut Option<(DateTime<Utc>, String)>, at: DateTime<Utc>, why: String) {
        let since = slot.as_ref().map_or(at, |(since, _)| *since);
        *slot = Some((since, why));
    }

    /// The status line at `now` (`STATUS=`): the mailbox, the last pass, the queue and the
    /// outbox, or what the service is busy with.
    pub fn line(&self, now: DateTime<Utc>) -> String {
        match self.phase {
            Phase::Starting => return "starting: opening the mailbox and the relay".into(),
            Phase::Reloading => return "reloading the config".into(),
            Phase::Stopping => return "stopping: finishing the batch in hand".into(),
            Phase::Running => {}
        }
        let mut parts = Vec::new();
        parts.push(match &self.mailbox_down {
            Some((since, why)) => format!(
                "mailbox unreachable since {}: {}",
                self.time(*since, now),
                short(why)
            ),
            None => self.mailbox.clone(),
        });
        let failed_last = match (&self.pass_failed, &self.last_pass) {
            (Some((failed, _)), Some((passed, _))) => failed >= passed,
            (failed, _) => failed.is_some(),
        };
        match (&self.pass_failed, &self.last_pass) {
            (Some((at, why)), _) if failed_last => parts.push(format!(
                "last pass failed at {}: {}",
                self.time(*at, now),
                short(why)
            )),
            (_, Some((at, summary))) => parts.push(format!(
                "last pass {}: {}",
                self.time(*at, now),
                counts(summary)
            )),
            _ => parts.push("no pass yet".into()),
        }
        if let Some(b) = &self.backlog {
            let mut queue = format!("queue {} open", b.open_tickets);
            if b.awaiting_acceptance > 0 {
                queue.push_str(&format!(" ({} awaiting acceptance)", b.awaiting_acceptance));
            }
            parts.push(queue);
            parts.push(format!("outbox {} pending", b.outbox_pending));
        }
        if let Some((since, why)) = &self.relay_down {
            parts.push(format!(
                "relay unreachable since {}: {}",
                self.time(*since, now),
                short(why)
            ));
        }
        parts.join("; ")
    }

    /// `10:05:12` today (in the desk's timezone), `11-24 10:05:12` on another day.
    fn time(&self, at: DateTime<Utc>, now: DateTime<Utc>) -> String {
        let local = at.with_timezone(&self.tz);
        if local.date_naive() == now.with_timezone(&self.tz).date_naive() {
            local.format("%H:%M:%S").to_string()
        } else {
            local.format("%m-%d %H:%M:%S").to_string()
        }
    }
}

/// A pass's counts, the ones that are not zero.
fn counts(s: &PassSummary) -> String {
    let items = [
        (s.messages, "message", "messages"),
        (s.new_tickets, "new ticket", "new tickets"),
        (s.follow_ups, "follow-up", "follow-ups"),
        (s.quarantined, "quarantined", "quarantined"),
        (s.opened, "ticket opened", "tickets opened"),
        (s.keys_issued, "license key", "license keys"),
        (s.sent, "sent", "sent"),
        (s.send_retries, "to retry", "to retry"),
        (s.send_failures, "failed", "failed"),
    ];
    let shown: Vec<String> = items
        .iter()
        .filter(|(n, _, _)| *n > 0)
        .map(|(n, one, many)| format!("{n} {}", if *n == 1 { one } else { many }))
        .collect();
    if shown.is_empty() {
        "nothing new".into()
    } else {
        shown.join(", ")
    }
}

/// One line, at most [`REASON_MAX`] characters.
fn short(why: &str) -> String {
    let line = why.replace(['\n', '\r'], " ");
    match line.char_indices().nth(REASON_MAX) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}

/// The loop's watchdog: ticks at a quarter of the interval; at each tick, whether a ping is
/// deserved (see the module documentation).
pub(crate) struct Heartbeat {
    ticks: Option<Interval>,
    /// Half the watchdog interval: how long a step may show no progress.
    grace: Duration,
    alive_until: Instant,
    seen: u64,
}

impl Heartbeat {
    /// `watchdog`: systemd's `WATCHDOG_USEC`, or `None` without a watchdog.
    pub(crate) fn new(watchdog: Option<Duration>) -> Self {
        let ticks = watchdog.filter(|w| !w.is_zero()).map(|w| {
            let mut ticks = tokio::time::interval((w / 4).max(Duration::from_millis(1)));
            ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
            ticks
        });
        Self {
            ticks,
            grace: watchdog.unwrap_or_default() / 2,
            alive_until: Instant::now(),
            seen: 0,
        }
    }

    /// The next tick; never, without a watchdog.
    pub(crate) async fn tick(&mut self) {
        match self.ticks.as_mut() {
            Some(ticks) => {
                ticks.tick().await;
            }
            None => std::future::pending().await,
        }
    }

    /// A step begins that should end within the grace.
    pub(crate) fn begin(&mut self) {
        self.alive_until = Instant::now() + self.grace;
    }

    /// A pass begins: alive while `progress` moves at least once a grace.
    pub(crate) fn step(&mut self, progress: u64) {
        self.seen = progress;
        self.begin();
    }

    /// A wait begins that ends by itself within `bound`.
    pub(crate) fn waiting(&mut self, bound: Duration) {
        self.alive_until = Instant::now() + bound + self.grace;
    }

    /// At a tick: is the loop alive? `progress` (during a pass) counts as a step finished when
    /// it moved since the last look.
    pub(crate) fn alive(&mut self, progress: Option<u64>) -> bool {
        if let Some(p) = progress
            && p != self.seen
        {
            self.step(p);
        }
        Instant::now() <= self.alive_until
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn status() -> ServiceStatus {
        let config = Config::from_toml_str(
            "[desk]\naddress = \"support@example.co.jp\"\n[intake]\nkind = \"imap\"\n\
             host = \"imap.example.co.jp\"\nuser = \"desk\"\npassword_env = \"X\"\n",
            std::path::Path::new("/etc/madoguchi"),
        )
        .expect("config");
        ServiceStatus::new(&config)
    }

    fn jst(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        chrono_tz::Asia::Tokyo
            .with_ymd_and_hms(2026, 11, 25, h, m, s)
            .single()
            .expect("time")
            .with_timezone(&Utc)
    }

    #[test]
    fn the_line_shows_the_mailbox_the_last_pass_the_queue_and_the_outbox() {
        let mut s = status();
        s.phase = Phase::Running;
        s.last_pass = Some((
            jst(10, 5, 12),
            PassSummary {
                messages: 3,
                new_tickets: 2,
                follow_ups: 1,
                sent: 3,
                ..PassSummary::default()
            },
        ));
        s.backlog = Some(Backlog {
            open_tickets: 5,
            awaiting_acceptance: 1,
            outbox_pending: 0,
        });
        assert_eq!(
            s.line(jst(10, 6, 0)),
            "idle on INBOX at imap.example.co.jp; last pass 10:05:12: 3 messages, \
             2 new tickets, 1 follow-up, 3 sent; queue 5 open (1 awaiting acceptance); \
             outbox 0 pending"
        );
    }

    #[test]
    fn trouble_shows_since_when_and_why() {
        let mut s = status();
        s.phase = Phase::Running;
        ServiceStatus::down(&mut s.mailbox_down, jst(9, 0, 0), "first".into());
        ServiceStatus::down(
            &mut s.mailbox_down,
            jst(9, 5, 0),
            "cannot log in\nat all".into(),
        );
        s.last_pass = Some((jst(8, 0, 0), PassSummary::default()));
        s.pass_failed = Some((jst(9, 5, 0), "x".repeat(400)));
        ServiceStatus::down(&mut s.relay_down, jst(8, 59, 0), "refused".into());
        let line = s.line(jst(9, 6, 0));
        let failed = format!(
            "mailbox unreachable since 09:00:00: cannot log in at all; \
             last pass failed at 09:05:00: {}…; relay unreachable since 08:59:00: refused",
            "x".repeat(REASON_MAX)
        );
        assert_eq!(line, failed);
        // A pass that succeeds afterwards is what the line shows; another day shows the date.
        s.last_pass = Some((jst(9, 10, 0), PassSummary::default()));
        let next_day = jst(9, 10, 0) + chrono::Duration::days(1);
        assert!(
            s.line(next_day)
                .contains("last pass 11-25 09:10:00: nothing new"),
            "{}",
            s.line(next_day)
        );
    }

    #[test]
    fn a_busy_service_says_what_it_does() {
        let mut s = status();
        assert_eq!(
            s.line(jst(9, 0, 0)),
            "starting: opening the mailbox and the relay"
        );
        s.phase = Phase::Stopping;
        assert_eq!(
            s.line(jst(9, 0, 0)),
            "stopping: finishing the batch in hand"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_heartbeat_stops_when_a_step_shows_no_progress() {
        let mut beat = Heartbeat::new(Some(Duration::from_secs(8)));
        beat.step(0);
        let advance = |s| tokio::time::advance(Duration::from_secs(s));
        advance(3).await;
        assert!(beat.alive(Some(0)), "within the grace of 4 s");
        advance(2).await;
        assert!(!beat.alive(Some(0)), "5 s without progress");
        assert!(beat.alive(Some(1)), "a step finished");
        advance(5).await;
        assert!(!beat.alive(Some(1)));
        beat.waiting(Duration::from_secs(60));
        advance(63).await;
        assert!(beat.alive(None), "a wait within its bound and the grace");
        advance(2).await;
        assert!(!beat.alive(None), "a wait that overran");
        assert!(Heartbeat::new(None).ticks.is_none());
    }
}
