//! What the daemon records about itself (`daemon_status`, one row) and the counts `status` and
//! the metrics read: tickets by state, the outbox, quarantined mail. Each write is one small
//! statement, so recording a pass costs next to nothing.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::tickets::{time_from_text, time_text};
use super::{BUSY_TIMEOUT, QueryContext, Store, StoreError};

/// How long recording the daemon's status waits for another connection's write lock.
pub const RECORD_WAIT: std::time::Duration = std::time::Duration::from_millis(250);

/// What the daemon tells the store about itself.
#[derive(Debug, Clone, Copy)]
pub enum DaemonEvent<'a> {
    /// The loop started in process `pid` (the mailbox state is unknown until a pass).
    Started { pid: u32, at: DateTime<Utc> },
    /// A pass succeeded (the mailbox was read), taking `millis`; `summary` is its JSON.
    Passed {
        at: DateTime<Utc>,
        millis: u64,
        summary: &'a str,
    },
    /// A pass failed, or the mailbox could not be opened; `mailbox_unreachable` when the
    /// mailbox was what failed.
    Failed {
        at: DateTime<Utc>,
        error: &'a str,
        mailbox_unreachable: bool,
    },
}

/// The row as `status` reads it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DaemonRecord {
    pub pid: Option<u32>,
    pub started_at: Option<DateTime<Utc>>,
    pub last_pass_at: Option<DateTime<Utc>>,
    pub last_pass_ms: Option<u64>,
    pub last_pass_summary: Option<serde_json::Value>,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    /// `reachable` or `unreachable`; `None` before the first pass of this start.
    pub mailbox_state: Option<String>,
    pub mailbox_checked_at: Option<DateTime<Utc>>,
}

/// Tickets not closed, and the mail not yet sent: what the metrics' gauges show after a pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct QueueCounts {
    pub waiting_acceptance: u64,
    pub open: u64,
    pub pending: u64,
    /// Outbox rows not yet sent (waiting for their first attempt or a retry).
    pub unsent: u64,
    /// When the oldest of them was queued.
    pub oldest_unsent_at: Option<DateTime<Utc>>,
}

/// [`QueueCounts`] and the totals only `status` shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct HealthCounts {
    pub queue: QueueCounts,
    pub sent: u64,
    /// Given up on (a permanent refusal, or retries exhausted).
    pub failed: u64,
    pub quarantined: u64,
}

fn time_opt(text: Option<String>) -> Result<Option<DateTime<Utc>>, StoreError> {
    text.as_deref().map(time_from_text).transpose()
}

impl Store {
    /// Records what the daemon did, in one statement (its own transaction). Waits at most
    /// [`RECORD_WAIT`] for another connection's write lock: the loop is not held up by
    /// bookkeeping (the next pass records again).
    pub fn record_daemon(&self, event: DaemonEvent<'_>) -> Result<(), StoreError> {
        let conn = &self.conn;
        conn.busy_timeout(RECORD_WAIT)
            .doing("record the daemon's status")?;
        let done = self.record_daemon_now(event);
        conn.busy_timeout(BUSY_TIMEOUT)
            .doing("record the daemon's status")?;
        done
    }

    fn record_daemon_now(&self, event: DaemonEvent<'_>) -> Result<(), StoreError> {
        let conn = &self.conn;
        let done = match event {
            DaemonEvent::Started { pid, at } => conn.execute(
                "INSERT INTO daemon_status (id, pid, started_at) VALUES (1, ?1, ?2)
                 ON CONFLICT (id) DO UPDATE SET pid = ?1, started_at = ?2,
                     mailbox_state = NULL, mailbox_checked_at = NULL",
                params![pid, time_text(at)],
            ),
            DaemonEvent::Passed {
                at,
                millis,
                summary,
            } => conn.execute(
                "INSERT INTO daemon_status (id, last_pass_at, last_pass_ms, last_pass_summary,
                     mailbox_state, mailbox_checked_at)
                 VALUES (1, ?1, ?2, ?3, 'reachable', ?1)
                 ON CONFLICT (id) DO UPDATE SET last_pass_at = ?1, last_pass_ms = ?2,
                     last_pass_summary = ?3, mailbox_state = 'reachable',
                     mailbox_checked_at = ?1",
                params![time_text(at), millis as i64, summary],
            ),
            DaemonEvent::Failed {
                at,
                error,
                mailbox_unreachable,
            } => conn.execute(
                "INSERT INTO daemon_status (id, last_error, last_error_at, mailbox_state,
                     mailbox_checked_at)
                 VALUES (1, ?2, ?1, CASE WHEN ?3 THEN 'unreachable' END,
                     CASE WHEN ?3 THEN ?1 END)
                 ON CONFLICT (id) DO UPDATE SET last_error = ?2, last_error_at = ?1,
                     mailbox_state = CASE WHEN ?3 THEN 'unreachable' ELSE mailbox_state END,
                     mailbox_checked_at = CASE WHEN ?3 THEN ?1 ELSE mailbox_checked_at END",
                params![time_text(at), error, mailbox_unreachable],
            ),
        };
        done.map(drop).doing("record the daemon's status")
    }

    /// What the daemon last recorded; `None` if no daemon ever ran on this database.
    pub fn daemon_record(&self) -> Result<Option<DaemonRecord>, StoreError> {
        type Row = (
            Option<i64>,
            Option<String>,
            Option<String>,
            Option<i64>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
        );
        let row: Option<Row> = self
            .conn
            .query_row(
                "SELECT pid, started_at, last_pass_at, last_pass_ms, last_pass_summary,
                     last_error, last_error_at, mailbox_state, mailbox_checked_at
                 FROM daemon_status WHERE id = 1",
                [],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                        r.get(7)?,
                        r.get(8)?,
                    ))
                },
            )
            .optional()
            .doing("read the daemon's status")?;
        let Some((pid, started, pass_at, pass_ms, summary, error, error_at, mailbox, checked)) =
            row
        else {
            return Ok(None);
        };
        Ok(Some(DaemonRecord {
            pid: pid.and_then(|p| u32::try_from(p).ok()),
            started_at: time_opt(started)?,
            last_pass_at: time_opt(pass_at)?,
            last_pass_ms: pass_ms.and_then(|m| u64::try_from(m).ok()),
            // A summary that does not parse is shown as absent, not as a failed status.
            last_pass_summary: summary.and_then(|s| serde_json::from_str(&s).ok()),
            last_error: error,
            last_error_at: time_opt(error_at)?,
            mailbox_state: mailbox,
            mailbox_checked_at: time_opt(checked)?,
        }))
    }

    /// Open tickets by state and the unsent outbox (indexed; cheap enough for every pass).
    pub fn queue_counts(&self) -> Result<QueueCounts, StoreError> {
        let row = self
            .conn
            .query_row(
                "SELECT
                     (SELECT COUNT(*) FROM tickets WHERE state = 'waiting_acceptance'),
                     (SELECT COUNT(*) FROM tickets WHERE state = 'open'),
                     (SELECT COUNT(*) FROM tickets WHERE state = 'pending'),
                     (SELECT COUNT(*) FROM outbox WHERE state = 'pending'),
                     (SELECT MIN(created_at) FROM outbox WHERE state = 'pending')",
                [],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, Option<String>>(4)?,
                    ))
                },
            )
            .doing("count the queue")?;
        Ok(QueueCounts {
            waiting_acceptance: row.0 as u64,
            open: row.1 as u64,
            pending: row.2 as u64,
            unsent: row.3 as u64,
            oldest_unsent_at: time_opt(row.4)?,
        })
    }

    /// [`Store::queue_counts`] and the outbox's and quarantine's totals (for `status`).
    pub fn health_counts(&self) -> Result<HealthCounts, StoreError> {
        let queue = self.queue_counts()?;
        let (sent, failed, quarantined) = self
            .conn
            .query_row(
                "SELECT
                     (SELECT COUNT(*) FROM outbox WHERE state = 'sent'),
                     (SELECT COUNT(*) FROM outbox WHERE state = 'failed'),
                     (SELECT COUNT(*) FROM messages WHERE verdict = 'quarantined')",
                [],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                    ))
                },
            )
            .doing("count the outbox and the quarantine")?;
        Ok(HealthCounts {
            queue,
            sent: sent as u64,
            failed: failed as u64,
            quarantined: quarantined as u64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, 1, min, 0).unwrap()
    }

    #[test]
    fn a_start_a_pass_and_failures_leave_one_row_with_the_latest_of_each() {
        let store = Store::open_in_memory().unwrap();
        assert_eq!(store.daemon_record().unwrap(), None);
        store
            .record_daemon(DaemonEvent::Started { pid: 42, at: at(0) })
            .unwrap();
        let r = store.daemon_record().unwrap().unwrap();
        assert_eq!(
            (r.pid, r.started_at, r.last_pass_at),
            (Some(42), Some(at(0)), None)
        );
        store
            .record_daemon(DaemonEvent::Passed {
                at: at(1),
                millis: 12,
                summary: r#"{"messages":3}"#,
            })
            .unwrap();
        // A failure that is not the mailbox's keeps the mailbox as last seen.
        store
            .record_daemon(DaemonEvent::Failed {
                at: at(2),
                error: "cannot commit: disk full",
                mailbox_unreachable: false,
            })
            .unwrap();
        let r = store.daemon_record().unwrap().unwrap();
        assert_eq!(r.last_pass_at, Some(at(1)));
        assert_eq!(r.last_pass_ms, Some(12));
        assert_eq!(r.last_pass_summary.unwrap()["messages"], 3);
        assert_eq!(r.last_error.as_deref(), Some("cannot commit: disk full"));
        assert_eq!(r.last_error_at, Some(at(2)));
        assert_eq!(r.mailbox_state.as_deref(), Some("reachable"));
        assert_eq!(r.mailbox_checked_at, Some(at(1)));
        store
            .record_daemon(DaemonEvent::Failed {
                at: at(3),
                error: "cannot connect",
                mailbox_unreachable: true,
            })
            .unwrap();
        let r = store.daemon_record().unwrap().unwrap();
        assert_eq!(r.mailbox_state.as_deref(), Some("unreachable"));
        assert_eq!(r.mailbox_checked_at, Some(at(3)));
        // A restart forgets the mailbox state (unknown until its first pass), not the history.
        store
            .record_daemon(DaemonEvent::Started { pid: 43, at: at(4) })
            .unwrap();
        let r = store.daemon_record().unwrap().unwrap();
        assert_eq!((r.pid, r.mailbox_state), (Some(43), None));
        assert_eq!(r.last_pass_at, Some(at(1)));
        assert_eq!(r.last_error_at, Some(at(3)));
    }

    #[test]
    fn recording_waits_only_briefly_for_another_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite3");
        let store = Store::open(&path).unwrap();
        let other = Store::open(&path).unwrap();
        other.conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        let began = std::time::Instant::now();
        let started = DaemonEvent::Started { pid: 1, at: at(0) };
        assert!(store.record_daemon(started).is_err());
        assert!(began.elapsed() < BUSY_TIMEOUT / 4, "{:?}", began.elapsed());
        other.conn.execute_batch("COMMIT").unwrap();
        store.record_daemon(started).unwrap();
        // The store's own writes wait the usual time again.
        let wait: i64 = store
            .conn
            .query_row("PRAGMA busy_timeout", [], |r| r.get(0))
            .unwrap();
        assert_eq!(wait, BUSY_TIMEOUT.as_millis() as i64);
    }

    #[test]
    fn counts_of_an_empty_store_are_zero() {
        let store = Store::open_in_memory().unwrap();
        assert_eq!(store.health_counts().unwrap(), HealthCounts::default());
    }
}
