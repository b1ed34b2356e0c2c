//! The reminders the desk queued (migration 12): one row per reminder, keyed by what it is for
//! (`core::reminders`), written in the transaction that queues its mail; and what the staff
//! reminders and the morning digest read about tickets, license applications, failed mail and
//! quarantined mail.

use std::collections::HashSet;

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{OptionalExtension, params};

use super::tickets::{Tx, time_from_text, time_text};
use super::{QueryContext, Store, StoreError};
use crate::core::reminders::TicketWait;
use crate::core::reminders::letters::{DigestFailed, DigestLicense, DigestQuarantined};
use crate::core::ticket::TicketState;

/// One reminder to record with its mail.
#[derive(Debug, Clone, Default)]
pub struct ReminderRow<'a> {
    pub key: &'a str,
    /// `renewal`, `lapsed`, `recontinuation`, `first_response`, `next_response`, `digest`.
    pub kind: &'a str,
    pub contract_id: Option<&'a str>,
    pub period_end: Option<NaiveDate>,
    pub days: Option<u32>,
    pub ticket: Option<u64>,
    pub level: Option<u8>,
    pub waiting_since: Option<DateTime<Utc>>,
    pub day: Option<NaiveDate>,
    pub nominal: String,
    pub outbox: Option<i64>,
}

/// A reminder as `contracts show` and `tickets show` list it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SentReminder {
    pub kind: String,
    pub days: Option<u32>,
    pub period_end: Option<String>,
    pub level: Option<u8>,
    pub nominal: String,
    pub queued_at: DateTime<Utc>,
    pub outbox: Option<i64>,
    /// The outbox row's state (`pending`, `sent`, `failed`).
    pub mail_state: Option<String>,
}

/// An open ticket as the staff reminders and the digest read it.
#[derive(Debug, Clone)]
pub struct OpenTicket {
    pub wait: TicketWait,
    pub subject: String,
    pub customer: String,
}

fn date_text(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

fn keys(conn: &rusqlite::Connection, sql: &str) -> Result<HashSet<String>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).doing("read reminders")?;
    let rows = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .doing("read reminders")?
        .collect::<Result<HashSet<_>, _>>()
        .doing("read reminders")?;
    Ok(rows)
}

impl Store {
    /// Keys of every contract reminder queued.
    pub fn contract_reminder_keys(&self) -> Result<HashSet<String>, StoreError> {
        keys(
            &self.conn,
            "SELECT key FROM reminders WHERE kind IN ('renewal', 'lapsed', 'recontinuation')",
        )
    }

    /// Keys of the staff reminders of tickets waiting for staff.
    pub fn staff_reminder_keys(&self) -> Result<HashSet<String>, StoreError> {
        keys(
            &self.conn,
            "SELECT r.key FROM reminders r JOIN tickets t ON t.number = r.ticket
             WHERE r.kind IN ('first_response', 'next_response') AND t.state = 'open'",
        )
    }

    /// Tickets not closed, in acceptance order. A ticket is answered by a staff reply or by
    /// its license key reaching the customer; `follow_up_at` is the customer's first mail after
    /// the last answer (a follow-up waiting for one).
    pub fn open_tickets(&self) -> Result<Vec<OpenTicket>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "WITH open AS (
                     SELECT t.*, (SELECT MAX(x) FROM (
                         SELECT MAX(b.created_at) AS x FROM articles b
                          WHERE b.ticket = t.number AND b.kind = 'staff_reply'
                         UNION ALL
                         SELECT l.sent_at FROM license_applications l WHERE l.ticket = t.number
                     )) AS answered_at
                     FROM tickets t WHERE t.state != 'closed')
                 SELECT o.number, o.state, o.accepted_at,
                        COALESCE(o.first_response_at, o.answered_at), o.subject,
                        o.customer_name, o.customer_address,
                        (SELECT MIN(a.created_at) FROM articles a
                          WHERE a.ticket = o.number AND a.direction = 'in'
                            AND COALESCE(a.kind, 'customer') = 'customer'
                            AND a.created_at > o.answered_at)
                 FROM open o ORDER BY o.accepted_at, o.number",
            )
            .doing("list open tickets")?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, String>(6)?,
                    r.get::<_, Option<String>>(7)?,
                ))
            })
            .doing("list open tickets")?
            .collect::<Result<Vec<_>, _>>()
            .doing("list open tickets")?;
        rows.into_iter()
            .map(
                |(number, state, accepted, first, subject, name, address, follow)| {
                    let state = TicketState::from_code(&state)
                        .ok_or_else(|| StoreError::Corrupt(format!("ticket state {state:?}")))?;
                    let customer = if name.trim().is_empty() {
                        address
                    } else {
                        format!("{name} <{address}>")
                    };
                    Ok(OpenTicket {
                        wait: TicketWait {
                            number: number as u64,
                            state,
                            accepted_at: time_from_text(&accepted)?,
                            first_response_at: first.as_deref().map(time_from_text).transpose()?,
                            follow_up_at: follow.as_deref().map(time_from_text).transpose()?,
                        },
                        subject,
                        customer,
                    })
                },
            )
            .collect()
    }

    /// When the last digest was queued (or found nothing to say).
    pub fn last_digest_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let at: Option<String> = self
            .conn
            .query_row(
                "SELECT MAX(queued_at) FROM reminders WHERE kind = 'digest'",
                [],
                |r| r.get(0),
            )
            .doing("read the last digest")?;
        at.as_deref().map(time_from_text).transpose()
    }

    /// License applications the digest names: due on `day` and not sent, and those waiting
    /// for approval.
    pub fn digest_licenses(
        &self,
        day: NaiveDate,
    ) -> Result<(Vec<DigestLicense>, Vec<DigestLicense>), StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT ticket, contract_id, due, state FROM license_applications
                 WHERE (due = ?1 AND state IN ('waiting', 'waiting_approval', 'issued'))
                    OR state = 'waiting_approval'
                 ORDER BY due, ticket",
            )
            .doing("list license applications")?;
        let rows = stmt
            .query_map([date_text(day)], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })
            .doing("list license applications")?
            .collect::<Result<Vec<_>, _>>()
            .doing("list license applications")?;
        let (mut due, mut approvals) = (Vec::new(), Vec::new());
        let today = date_text(day);
        for (ticket, contract_id, due_text, state) in rows {
            let item = DigestLicense {
                ticket: ticket as u64,
                contract_id,
                due: due_text
                    .as_deref()
                    .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok()),
                state: state.clone(),
            };
            if due_text.as_deref() == Some(today.as_str()) {
                due.push(item.clone());
            }
            if state == "waiting_approval" {
                approvals.push(item);
            }
        }
        Ok((due, approvals))
    }

    /// Mail that failed for good since `since` (by its last attempt).
    pub fn failed_since(&self, since: DateTime<Utc>) -> Result<Vec<DigestFailed>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, ticket, recipients, COALESCE(last_error, '') FROM outbox
                 WHERE state = 'failed' AND next_attempt_at >= ?1 ORDER BY id",
            )
            .doing("list failed mail")?;
        let rows = stmt
            .query_map([time_text(since)], |r| {
                Ok(DigestFailed {
                    outbox_id: r.get(0)?,
                    ticket: r.get::<_, Option<i64>>(1)?.map(|t| t as u64),
                    recipients: r.get(2)?,
                    error: r.get(3)?,
                })
            })
            .doing("list failed mail")?
            .collect::<Result<Vec<_>, _>>()
            .doing("list failed mail")?;
        Ok(rows
            .into_iter()
            .map(|mut f| {
                // Stored as a JSON list; shown as addresses.
                if let Ok(list) = serde_json::from_str::<Vec<String>>(&f.recipients) {
                    f.recipients = list.join(", ");
                }
                f
            })
            .collect())
    }

    /// Messages quarantined since `since` and still held.
    pub fn quarantined_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<DigestQuarantined>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, COALESCE(from_address, ''), subject, COALESCE(reason, '')
                 FROM messages
                 WHERE verdict = 'quarantined' AND released_at IS NULL AND processed_at >= ?1
                 ORDER BY id",
            )
            .doing("list quarantined mail")?;
        let rows = stmt
            .query_map([time_text(since)], |r| {
                Ok(DigestQuarantined {
                    id: r.get(0)?,
                    from: r.get(1)?,
                    subject: r.get(2)?,
                    reason: r.get(3)?,
                })
            })
            .doing("list quarantined mail")?
            .collect::<Result<Vec<_>, _>>()
            .doing("list quarantined mail")?;
        Ok(rows)
    }

    /// The reminders queued for a contract, or (with `ticket`) about a ticket, oldest first.
    pub fn reminders_of(
        &self,
        contract_id: Option<&str>,
        ticket: Option<u64>,
    ) -> Result<Vec<SentReminder>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT r.kind, r.days, r.period_end, r.level, r.nominal, r.queued_at, r.outbox,
                        o.state
                 FROM reminders r LEFT JOIN outbox o ON o.id = r.outbox
                 WHERE (?1 IS NOT NULL AND r.contract_id = ?1)
                    OR (?2 IS NOT NULL AND r.ticket = ?2)
                 ORDER BY r.id",
            )
            .doing("list reminders")?;
        let rows = stmt
            .query_map(params![contract_id, ticket.map(|t| t as i64)], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<u32>>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, Option<u8>>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, Option<i64>>(6)?,
                    r.get::<_, Option<String>>(7)?,
                ))
            })
            .doing("list reminders")?
            .collect::<Result<Vec<_>, _>>()
            .doing("list reminders")?;
        rows.into_iter()
            .map(
                |(kind, days, period_end, level, nominal, queued, outbox, mail_state)| {
                    Ok(SentReminder {
                        kind,
                        days,
                        period_end,
                        level,
                        nominal,
                        queued_at: time_from_text(&queued)?,
                        outbox,
                        mail_state,
                    })
                },
            )
            .collect()
    }
}

impl Tx<'_> {
    /// Whether the reminder `key` was already queued (checked again inside the transaction
    /// that would queue it).
    pub fn reminder_queued(&self, key: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn()
            .query_row("SELECT 1 FROM reminders WHERE key = ?1", [key], |_| Ok(()))
            .optional()
            .doing("look a reminder up")?
            .is_some())
    }

    /// Records a reminder with its mail (or, for a digest with nothing to say, none).
    pub fn record_reminder(
        &self,
        r: &ReminderRow<'_>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached(
                "INSERT INTO reminders (key, kind, contract_id, period_end, days, ticket, level,
                     waiting_since, day, nominal, queued_at, outbox)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    r.key,
                    r.kind,
                    r.contract_id,
                    r.period_end.map(date_text),
                    r.days,
                    r.ticket.map(|t| t as i64),
                    r.level,
                    r.waiting_since.map(time_text),
                    r.day.map(date_text),
                    r.nominal,
                    time_text(now),
                    r.outbox,
                ])
            })
            .doing("record a reminder")?;
        Ok(())
    }
}
