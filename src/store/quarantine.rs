//! Quarantined messages as `quarantine list`, `show` and `release` see them, and the store's
//! side of a release: the old row is marked released and linked to the row its second
//! decision made, in the transaction of that decision (`desk/release.rs`).

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::tickets::{Tx, time_from_text, time_text};
use super::{QueryContext, Store, StoreError};

/// The source name of messages a release put through the desk again; their key is
/// `release:<id of the released message>`.
pub const RELEASE_SOURCE: &str = "release";

/// A recorded message, as the quarantine tools show it (`--json` keys).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageRecord {
    pub id: i64,
    pub verdict: String,
    pub reason: Option<String>,
    /// The sender (`From`), when there was a usable one.
    pub from: Option<String>,
    pub subject: String,
    /// When it arrived in the mailbox.
    pub received_at: DateTime<Utc>,
    /// When the desk decided it.
    pub processed_at: DateTime<Utc>,
    pub size: u64,
    /// The mailbox it came from (`maildir:…`, `imap://…`, or `release`).
    pub source: String,
    pub source_key: String,
    pub message_id: Option<String>,
    pub sha256: String,
    pub ticket: Option<u64>,
    pub released_at: Option<DateTime<Utc>>,
    /// The message row the release made.
    pub released_to: Option<i64>,
}

const RECORD_SQL: &str = "SELECT id, verdict, reason, from_address, subject, received_at,
    processed_at, size, source, source_key, message_id, content_sha256, ticket, released_at,
    released_to FROM messages";

type RawRecord = (MessageRecord, String, String, Option<String>);

fn record(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawRecord> {
    Ok((
        MessageRecord {
            id: row.get(0)?,
            verdict: row.get(1)?,
            reason: row.get(2)?,
            from: row.get(3)?,
            subject: row.get(4)?,
            received_at: DateTime::<Utc>::MIN_UTC,
            processed_at: DateTime::<Utc>::MIN_UTC,
            size: row.get::<_, i64>(7)?.max(0) as u64,
            source: row.get(8)?,
            source_key: row.get(9)?,
            message_id: row.get(10)?,
            sha256: row.get(11)?,
            ticket: row.get::<_, Option<i64>>(12)?.map(|t| t as u64),
            released_at: None,
            released_to: row.get(14)?,
        },
        row.get(5)?,
        row.get(6)?,
        row.get(13)?,
    ))
}

fn finish((mut m, received, processed, released): RawRecord) -> Result<MessageRecord, StoreError> {
    m.received_at = time_from_text(&received)?;
    m.processed_at = time_from_text(&processed)?;
    m.released_at = released.as_deref().map(time_from_text).transpose()?;
    Ok(m)
}

fn one(
    conn: &rusqlite::Connection,
    id: i64,
    action: &'static str,
) -> Result<Option<MessageRecord>, StoreError> {
    conn.query_row(&format!("{RECORD_SQL} WHERE id = ?1"), [id], record)
        .optional()
        .doing(action)?
        .map(finish)
        .transpose()
}

impl Store {
    /// Quarantined messages, oldest first: those still held, or with `all` the released ones
    /// too.
    pub fn quarantined(&self, all: bool) -> Result<Vec<MessageRecord>, StoreError> {
        let sql = format!(
            "{RECORD_SQL} WHERE verdict = 'quarantined' AND (?1 OR released_at IS NULL)
             ORDER BY received_at, id"
        );
        let mut stmt = self.conn.prepare(&sql).doing("list the quarantine")?;
        let rows = stmt
            .query_map([all], record)
            .doing("list the quarantine")?
            .collect::<Result<Vec<_>, _>>()
            .doing("list the quarantine")?;
        rows.into_iter().map(finish).collect()
    }

    /// Messages held in quarantine now (released ones are no longer held).
    pub fn quarantine_held(&self) -> Result<i64, StoreError> {
        self.conn
            .query_row(
                "SELECT COUNT(*) FROM messages
                 WHERE verdict = 'quarantined' AND released_at IS NULL",
                [],
                |r| r.get(0),
            )
            .doing("count the quarantine")
    }

    /// Any recorded message by its id.
    pub fn message_record(&self, id: i64) -> Result<Option<MessageRecord>, StoreError> {
        one(&self.conn, id, "read a message")
    }

    /// A recorded message's raw bytes, as they arrived.
    pub fn raw_bytes(&self, sha256: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.conn
            .query_row(
                "SELECT bytes FROM raw_messages WHERE sha256 = ?1",
                [sha256],
                |r| r.get(0),
            )
            .optional()
            .doing("read raw mail")
    }
}

impl Tx<'_> {
    /// A recorded message by its id, inside the transaction.
    pub fn message_record(&self, id: i64) -> Result<Option<MessageRecord>, StoreError> {
        one(self.conn(), id, "read a message")
    }

    /// The message recorded under this source and key.
    pub fn message_by_key(
        &self,
        source: &str,
        key: &str,
    ) -> Result<Option<MessageRecord>, StoreError> {
        self.conn()
            .query_row(
                &format!("{RECORD_SQL} WHERE source = ?1 AND source_key = ?2"),
                params![source, key],
                record,
            )
            .optional()
            .doing("read a message")?
            .map(finish)
            .transpose()
    }

    /// Marks a quarantined message released: from now on it is not held, and not the
    /// original its own second reading would be a duplicate of.
    pub fn mark_released(&self, id: i64, now: DateTime<Utc>) -> Result<(), StoreError> {
        let changed = self
            .conn()
            .execute(
                "UPDATE messages SET released_at = ?2
                 WHERE id = ?1 AND verdict = 'quarantined' AND released_at IS NULL",
                params![id, time_text(now)],
            )
            .doing("mark a message released")?;
        if changed != 1 {
            return Err(StoreError::Corrupt(format!(
                "message {id} is not a held quarantined message"
            )));
        }
        Ok(())
    }

    /// Links a released message to the row its second decision made.
    pub fn link_release(&self, id: i64, to: i64) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "UPDATE messages SET released_to = ?2 WHERE id = ?1",
                params![id, to],
            )
            .doing("link a released message")?;
        Ok(())
    }

    /// Where the mailbox copy of a message is: its own source and key, or, for a message a
    /// release made, those of the message that first arrived.
    pub fn origin(&self, id: i64) -> Result<MessageRecord, StoreError> {
        let mut at = id;
        // A release of a release of … ends at the arrival; the bound only guards a loop.
        for _ in 0..1000 {
            let Some(m) = self.message_record(at)? else {
                return Err(StoreError::Corrupt(format!("message {at} is missing")));
            };
            if m.source != RELEASE_SOURCE {
                return Ok(m);
            }
            at = m
                .source_key
                .strip_prefix("release:")
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| {
                    StoreError::Corrupt(format!("release key {:?} names no message", m.source_key))
                })?;
        }
        Err(StoreError::Corrupt(format!(
            "message {id} is released from itself"
        )))
    }
}
