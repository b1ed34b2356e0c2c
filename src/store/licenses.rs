//! License key applications (R7/R8): one row per application ticket, the key stored before its
//! mail is queued (a crash between the two resends the same key), and an audit row for every
//! step.

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{OptionalExtension, Row, params};

use super::tickets::{Tx, time_from_text, time_text};
use super::{QueryContext, Store, StoreError};
use crate::core::license::letters::ApplicationRecord;
use crate::core::license::{ApplicationState, EarlierApplication};

/// A new application as the decision recorded it.
#[derive(Debug, Clone)]
pub struct NewApplication<'a> {
    pub ticket: u64,
    pub jti: &'a str,
    pub contract_id: &'a str,
    pub license_serial: &'a str,
    pub server_id: &'a str,
    pub previous_server_id: Option<&'a str>,
    pub applicant: &'a str,
    pub message_id: Option<&'a str>,
    pub applied_at: DateTime<Utc>,
    pub due: Option<NaiveDate>,
    pub send_at: Option<DateTime<Utc>>,
    pub state: ApplicationState,
    pub detail: Option<&'a str>,
}

/// An application whose key is due to be made now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueKey {
    pub ticket: u64,
    pub jti: String,
    pub contract_id: String,
    pub license_serial: String,
    pub server_id: String,
    pub applicant: String,
    pub message_id: Option<String>,
    pub attempts: u32,
}

/// A key already made (for `license resend`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    pub key: String,
    pub key_id: String,
    pub message_id: Option<String>,
}

/// One step of an application's audit trail.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuditRow {
    pub at: DateTime<Utc>,
    pub step: String,
    pub detail: Option<String>,
}

/// An open application with the notices it has had (for reminders and escalations).
#[derive(Debug, Clone)]
pub struct OpenApplication {
    pub record: ApplicationRecord,
    pub reminded: bool,
    pub escalated: bool,
}

const RECORD_COLUMNS: &str = "ticket, contract_id, license_serial, server_id, applicant,
     applied_at, due, send_at, state, key_id, issued_at, sent_at, approved_by, detail";

fn record(r: &Row<'_>) -> rusqlite::Result<RawRecord> {
    Ok(RawRecord {
        ticket: r.get::<_, i64>(0)? as u64,
        contract_id: r.get(1)?,
        license_serial: r.get(2)?,
        server_id: r.get(3)?,
        applicant: r.get(4)?,
        applied_at: r.get(5)?,
        due: r.get(6)?,
        send_at: r.get(7)?,
        state: r.get(8)?,
        key_id: r.get(9)?,
        issued_at: r.get(10)?,
        sent_at: r.get(11)?,
        approved_by: r.get(12)?,
        detail: r.get(13)?,
    })
}

struct RawRecord {
    ticket: u64,
    contract_id: String,
    license_serial: String,
    server_id: String,
    applicant: String,
    applied_at: String,
    due: Option<String>,
    send_at: Option<String>,
    state: String,
    key_id: Option<String>,
    issued_at: Option<String>,
    sent_at: Option<String>,
    approved_by: Option<String>,
    detail: Option<String>,
}

impl RawRecord {
    fn typed(self) -> Result<ApplicationRecord, StoreError> {
        let time = |t: Option<String>| t.as_deref().map(time_from_text).transpose();
        Ok(ApplicationRecord {
            ticket: self.ticket,
            contract_id: self.contract_id,
            license_serial: self.license_serial,
            server_id: self.server_id,
            applicant: self.applicant,
            applied_at: time_from_text(&self.applied_at)?,
            due: self.due.as_deref().map(date_from_text).transpose()?,
            send_at: time(self.send_at)?,
            state: ApplicationState::from_code(&self.state).ok_or_else(|| {
                StoreError::Corrupt(format!("unknown application state {:?}", self.state))
            })?,
            key_id: self.key_id,
            issued_at: time(self.issued_at)?,
            sent_at: time(self.sent_at)?,
            approved_by: self.approved_by,
            detail: self.detail,
        })
    }
}

fn date_from_text(text: &str) -> Result<NaiveDate, StoreError> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| StoreError::Corrupt(format!("stored date {text:?} is not YYYY-MM-DD")))
}

impl Tx<'_> {
    fn audit(
        &self,
        ticket: u64,
        at: DateTime<Utc>,
        step: &str,
        detail: Option<&str>,
    ) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "INSERT INTO license_audit (ticket, at, step, detail) VALUES (?1, ?2, ?3, ?4)",
                params![ticket as i64, time_text(at), step, detail],
            )
            .doing("record a license audit row")?;
        Ok(())
    }

    pub fn insert_application(
        &self,
        a: &NewApplication<'_>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "INSERT INTO license_applications (ticket, jti, contract_id, license_serial,
                     server_id, previous_server_id, applicant, message_id, applied_at, due,
                     send_at, state, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                params![
                    a.ticket as i64,
                    a.jti,
                    a.contract_id,
                    a.license_serial,
                    a.server_id,
                    a.previous_server_id,
                    a.applicant,
                    a.message_id,
                    time_text(a.applied_at),
                    a.due.map(|d| d.format("%Y-%m-%d").to_string()),
                    a.send_at.map(time_text),
                    a.state.code(),
                    a.detail,
                ],
            )
            .doing("record a license application")?;
        self.audit(a.ticket, now, a.state.code(), a.detail)
    }

    /// The applications that were not refused for the same contract and serial, newest first,
    /// each with the server it was for.
    pub fn earlier_applications(
        &self,
        contract_id: &str,
        license_serial: &str,
    ) -> Result<Vec<(String, EarlierApplication)>, StoreError> {
        let mut stmt = self
            .conn()
            .prepare_cached(
                "SELECT ticket, applied_at, due, sent_at, server_id FROM license_applications
                 WHERE contract_id = ?1 AND license_serial = ?2 AND state <> 'refused'
                 ORDER BY applied_at DESC LIMIT 50",
            )
            .doing("look for earlier license applications")?;
        let rows = stmt
            .query_map(params![contract_id, license_serial], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, String>(4)?,
                ))
            })
            .doing("look for earlier license applications")?
            .collect::<Result<Vec<_>, _>>()
            .doing("look for earlier license applications")?;
        rows.into_iter()
            .map(|(ticket, applied_at, due, sent_at, server_id)| {
                let due = due.ok_or_else(|| {
                    StoreError::Corrupt(format!("license application {ticket} has no due date"))
                })?;
                Ok((
                    server_id,
                    EarlierApplication {
                        ticket: ticket as u64,
                        applied_at: time_from_text(&applied_at)?,
                        due: date_from_text(&due)?,
                        sent_at: sent_at.as_deref().map(time_from_text).transpose()?,
                    },
                ))
            })
            .collect()
    }

    pub fn application_state(&self, ticket: u64) -> Result<Option<ApplicationState>, StoreError> {
        let state: Option<String> = self
            .conn()
            .query_row(
                "SELECT state FROM license_applications WHERE ticket = ?1",
                params![ticket as i64],
                |r| r.get(0),
            )
            .optional()
            .doing("read a license application's state")?;
        Ok(state.as_deref().and_then(ApplicationState::from_code))
    }

    /// Staff approved (`#approve`): the key goes out at its time.
    pub fn approve_application(
        &self,
        ticket: u64,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let changed = self
            .conn()
            .execute(
                "UPDATE license_applications SET state = 'waiting', approved_by = ?2,
                     approved_at = ?3
                 WHERE ticket = ?1 AND state = 'waiting_approval'",
                params![ticket as i64, by, time_text(at)],
            )
            .doing("approve a license application")?;
        if changed > 0 {
            self.audit(ticket, at, "approved", Some(by))?;
        }
        Ok(changed > 0)
    }

    /// The key is made and its mail queued (`outbox`), in one transaction: the contract now
    /// names the new server, and the key issued before for it is superseded.
    pub fn record_key(
        &self,
        ticket: u64,
        key: &str,
        key_id: &str,
        outbox: i64,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let conn = self.conn();
        let (contract_id, server_id): (String, String) = conn
            .query_row(
                "SELECT contract_id, server_id FROM license_applications WHERE ticket = ?1",
                params![ticket as i64],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .doing("read a license application")?;
        conn.execute(
            "UPDATE license_applications SET state = 'issued', key = ?2, key_id = ?3,
                 issued_at = ?4, outbox = ?5, detail = NULL, next_attempt_at = NULL
             WHERE ticket = ?1",
            params![ticket as i64, key, key_id, time_text(now), outbox],
        )
        .doing("store a license key")?;
        conn.execute(
            "UPDATE license_applications SET superseded_by = ?1
             WHERE contract_id = ?2 AND ticket <> ?1 AND key IS NOT NULL
               AND superseded_by IS NULL",
            params![ticket as i64, contract_id],
        )
        .doing("supersede the previous license key")?;
        conn.execute(
            "UPDATE contracts SET server_id = ?2 WHERE contract_id = ?1",
            params![contract_id, server_id],
        )
        .doing("record the contract's new server")?;
        self.audit(ticket, now, "issued", Some(key_id))
    }

    /// The issuer failed: try again at `next`.
    pub fn record_issue_failure(
        &self,
        ticket: u64,
        error: &str,
        next: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<u32, StoreError> {
        self.conn()
            .execute(
                "UPDATE license_applications SET attempts = attempts + 1, detail = ?2,
                     next_attempt_at = ?3
                 WHERE ticket = ?1",
                params![ticket as i64, error, time_text(next)],
            )
            .doing("record a failed key issue")?;
        self.audit(ticket, now, "issue_failed", Some(error))?;
        let attempts: i64 = self
            .conn()
            .query_row(
                "SELECT attempts FROM license_applications WHERE ticket = ?1",
                params![ticket as i64],
                |r| r.get(0),
            )
            .doing("read a license application")?;
        Ok(u32::try_from(attempts).unwrap_or(u32::MAX))
    }

    /// No key after all (the applicant stopped being a registered contact before it was due).
    pub fn refuse_application(
        &self,
        ticket: u64,
        why: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "UPDATE license_applications SET state = 'refused', detail = ?2 WHERE ticket = ?1",
                params![ticket as i64, why],
            )
            .doing("refuse a license application")?;
        self.audit(ticket, now, "refused", Some(why))
    }

    /// The key mail in `outbox` was taken by the relay.
    pub fn mark_key_sent(&self, outbox: i64, now: DateTime<Utc>) -> Result<(), StoreError> {
        let ticket: Option<i64> = self
            .conn()
            .query_row(
                "SELECT ticket FROM license_applications WHERE outbox = ?1",
                params![outbox],
                |r| r.get(0),
            )
            .optional()
            .doing("find the license application of a sent mail")?;
        let Some(ticket) = ticket else {
            return Ok(());
        };
        self.conn()
            .execute(
                "UPDATE license_applications SET state = 'sent', sent_at = COALESCE(sent_at, ?2)
                 WHERE ticket = ?1",
                params![ticket, time_text(now)],
            )
            .doing("mark a license key sent")?;
        self.audit(ticket as u64, now, "sent", None)
    }

    /// A key mail queued again (`license resend`).
    pub fn record_resend(
        &self,
        ticket: u64,
        outbox: i64,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "UPDATE license_applications SET outbox = ?2 WHERE ticket = ?1",
                params![ticket as i64, outbox],
            )
            .doing("record a resent license key")?;
        self.audit(ticket, now, "resent", None)
    }

    /// A notice about the application went to staff.
    pub fn mark_license_notice(
        &self,
        ticket: u64,
        escalation: bool,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let sql = if escalation {
            "UPDATE license_applications SET escalated = 1 WHERE ticket = ?1"
        } else {
            "UPDATE license_applications SET reminded = 1 WHERE ticket = ?1"
        };
        self.conn()
            .execute(sql, params![ticket as i64])
            .doing("record a license notice")?;
        let step = if escalation { "escalated" } else { "reminded" };
        self.audit(ticket, now, step, None)
    }

    /// The stored key of an application, once made.
    pub fn stored_key(&self, ticket: u64) -> Result<Option<StoredKey>, StoreError> {
        self.conn()
            .query_row(
                "SELECT key, key_id, message_id FROM license_applications
                 WHERE ticket = ?1 AND key IS NOT NULL",
                params![ticket as i64],
                |r| {
                    Ok(StoredKey {
                        key: r.get(0)?,
                        key_id: r.get(1)?,
                        message_id: r.get(2)?,
                    })
                },
            )
            .optional()
            .doing("read a stored license key")
    }

    pub fn application(&self, ticket: u64) -> Result<Option<ApplicationRecord>, StoreError> {
        let sql = format!("SELECT {RECORD_COLUMNS} FROM license_applications WHERE ticket = ?1");
        self.conn()
            .query_row(&sql, params![ticket as i64], record)
            .optional()
            .doing("read a license application")?
            .map(RawRecord::typed)
            .transpose()
    }
}

impl Store {
    /// One application, by its ticket.
    pub fn application(&self, ticket: u64) -> Result<Option<ApplicationRecord>, StoreError> {
        self.dry_run(|tx| tx.application(ticket))
    }

    /// Eligible applications whose key is due at `now` (approved where approval is needed;
    /// past any retry delay).
    pub fn due_keys(&self, now: DateTime<Utc>) -> Result<Vec<DueKey>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT ticket, jti, contract_id, license_serial, server_id, applicant,
                     message_id, attempts
                 FROM license_applications
                 WHERE state = 'waiting' AND send_at <= ?1
                   AND (next_attempt_at IS NULL OR next_attempt_at <= ?1)
                 ORDER BY send_at, ticket",
            )
            .doing("read due license keys")?;
        stmt.query_map(params![time_text(now)], |r| {
            Ok(DueKey {
                ticket: r.get::<_, i64>(0)? as u64,
                jti: r.get(1)?,
                contract_id: r.get(2)?,
                license_serial: r.get(3)?,
                server_id: r.get(4)?,
                applicant: r.get(5)?,
                message_id: r.get(6)?,
                attempts: u32::try_from(r.get::<_, i64>(7)?).unwrap_or(u32::MAX),
            })
        })
        .doing("read due license keys")?
        .collect::<Result<Vec<_>, _>>()
        .doing("read due license keys")
    }

    /// Applications, oldest first; only those in `state` when given.
    pub fn applications(
        &self,
        state: Option<ApplicationState>,
    ) -> Result<Vec<ApplicationRecord>, StoreError> {
        let sql = format!(
            "SELECT {RECORD_COLUMNS} FROM license_applications
             WHERE ?1 IS NULL OR state = ?1 ORDER BY applied_at, ticket"
        );
        let mut stmt = self.conn.prepare(&sql).doing("list license applications")?;
        let rows = stmt
            .query_map(params![state.map(ApplicationState::code)], record)
            .doing("list license applications")?
            .collect::<Result<Vec<_>, _>>()
            .doing("list license applications")?;
        rows.into_iter().map(RawRecord::typed).collect()
    }

    /// Applications still waiting for their key (waiting, waiting for approval, issued but not
    /// sent), with the notices they had.
    pub fn open_applications(&self) -> Result<Vec<OpenApplication>, StoreError> {
        let sql = format!(
            "SELECT {RECORD_COLUMNS}, reminded, escalated FROM license_applications
             WHERE state IN ('waiting', 'waiting_approval', 'issued') ORDER BY applied_at"
        );
        let mut stmt = self
            .conn
            .prepare(&sql)
            .doing("list open license applications")?;
        let rows = stmt
            .query_map([], |r| {
                Ok((record(r)?, r.get::<_, bool>(14)?, r.get::<_, bool>(15)?))
            })
            .doing("list open license applications")?
            .collect::<Result<Vec<_>, _>>()
            .doing("list open license applications")?;
        rows.into_iter()
            .map(|(raw, reminded, escalated)| {
                Ok(OpenApplication {
                    record: raw.typed()?,
                    reminded,
                    escalated,
                })
            })
            .collect()
    }

    /// The audit trail of one application, oldest first.
    pub fn license_audit(&self, ticket: u64) -> Result<Vec<AuditRow>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT at, step, detail FROM license_audit WHERE ticket = ?1 ORDER BY id")
            .doing("read the license audit")?;
        let rows = stmt
            .query_map(params![ticket as i64], |r| {
                Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?))
            })
            .doing("read the license audit")?
            .collect::<Result<Vec<_>, _>>()
            .doing("read the license audit")?;
        rows.into_iter()
            .map(|(at, step, detail)| {
                Ok(AuditRow {
                    at: time_from_text(&at)?,
                    step,
                    detail,
                })
            })
            .collect()
    }
}
