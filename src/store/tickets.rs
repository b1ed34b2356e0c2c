//! Messages, tickets, articles, thread ids and the outbox. Functions take a `&Connection` so
//! the desk runs a whole batch of them inside one transaction.

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::cached::Cached;
pub use super::listings::{ArticleListing, TicketListing};
use super::{QueryContext, Store, StoreError};

/// A write transaction: the typed operations a decision's effects are carried out with. Only
/// [`Store::write`] makes one, so every write happens inside a transaction.
pub struct Tx<'a> {
    conn: Cached<'a>,
}

impl<'a> Tx<'a> {
    /// The connection, for the store's other query modules.
    pub(super) fn conn(&self) -> &'a Connection {
        self.conn.0
    }
}
use crate::core::decide::{Delivery, SenderLoad};
use crate::core::ticket::{TicketFacts, TicketState};
use crate::outbound::Queued;

/// Stored times: RFC 3339 UTC with microseconds, so text order is time order.
pub fn time_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

pub(crate) fn time_from_text(text: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| StoreError::Corrupt(format!("stored time {text:?} is not RFC 3339")))
}

pub use crate::core::ticket::Verdict;

#[derive(Debug, Clone, Copy)]
pub struct MessageRow<'a> {
    pub source: &'a str,
    pub source_key: &'a str,
    pub message_id: Option<&'a str>,
    pub content_sha256: &'a str,
    pub raw_path: &'a str,
    pub size: usize,
    pub received_at: DateTime<Utc>,
    pub processed_at: DateTime<Utc>,
    pub from_address: Option<&'a str>,
    pub subject: &'a str,
    pub verdict: Verdict,
    pub reason: Option<&'a str>,
    pub ticket: Option<u64>,
}

impl Tx<'_> {
    /// The verdict already recorded for a message from this source, if any.
    pub fn seen_verdict(&self, source: &str, key: &str) -> Result<Option<Verdict>, StoreError> {
        let code: Option<String> = self
            .conn
            .query_row(
                "SELECT verdict FROM messages WHERE source = ?1 AND source_key = ?2",
                params![source, key],
                |r| r.get(0),
            )
            .optional()
            .doing("look up a message")?;
        Ok(code.as_deref().and_then(Verdict::from_code))
    }
}

impl Tx<'_> {
    /// An earlier message with the same Message-ID and content (a re-delivered duplicate); a
    /// released one no longer counts (its release's own row does).
    pub fn same_message(
        &self,
        message_id: &str,
        sha: &str,
    ) -> Result<Option<(i64, Option<u64>)>, StoreError> {
        self.conn
            .query_row(
                "SELECT id, ticket FROM messages WHERE message_id = ?1 AND content_sha256 = ?2
         AND verdict != 'duplicate' AND released_at IS NULL ORDER BY id LIMIT 1",
                params![message_id, sha],
                |r| Ok((r.get(0)?, r.get::<_, Option<i64>>(1)?.map(|t| t as u64))),
            )
            .optional()
            .doing("look up a duplicate")
    }
}

impl Tx<'_> {
    /// Keeps a message's raw bytes once per content; returns where `messages.raw_path` finds them.
    pub fn keep_raw(&self, sha256: &str, bytes: &[u8]) -> Result<String, StoreError> {
        self.conn
            .prepare_cached("INSERT OR IGNORE INTO raw_messages (sha256, bytes) VALUES (?1, ?2)")
            .and_then(|mut s| s.execute(params![sha256, bytes]))
            .doing("keep raw mail")?;
        Ok(format!("sqlite:raw_messages/{sha256}"))
    }
}

impl Tx<'_> {
    /// The raw bytes of a recorded message.
    pub fn raw_message(&self, sha256: &str) -> Result<Option<Vec<u8>>, StoreError> {
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
    pub fn insert_message(&self, m: &MessageRow<'_>) -> Result<i64, StoreError> {
        self.conn.prepare_cached(
        "INSERT INTO messages (source, source_key, message_id, content_sha256, raw_path, size,
             received_at, processed_at, from_address, subject, verdict, reason, ticket)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )
    .and_then(|mut s| {
        s.execute(params![
            m.source,
            m.source_key,
            m.message_id,
            m.content_sha256,
            m.raw_path,
            m.size as i64,
            time_text(m.received_at),
            time_text(m.processed_at),
            m.from_address,
            m.subject,
            m.verdict.code(),
            m.reason,
            m.ticket.map(|t| t as i64),
        ])
    })
    .doing("record a message")?;
        Ok(self.conn.last_insert_rowid())
    }
}

impl Tx<'_> {
    pub fn insert_attachment(
        &self,
        message: i64,
        seq: usize,
        a: &crate::core::inbound::Attachment,
    ) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO attachments (message, seq, name, content_type, size, sha256)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    message,
                    seq as i64,
                    a.name,
                    a.content_type,
                    a.size as i64,
                    a.sha256
                ])
            })
            .doing("record an attachment")?;
        Ok(())
    }
}

pub struct TicketRow<'a> {
    pub number: u64,
    pub state: TicketState,
    pub category: &'a str,
    pub contract_id: Option<&'a str>,
    pub matched_by: Option<&'a str>,
    pub entitlement_json: &'a str,
    pub customer_address: &'a str,
    pub customer_name: &'a str,
    pub subject: &'a str,
    pub received_at: DateTime<Utc>,
    pub accepted_at: DateTime<Utc>,
    pub license_due: Option<chrono::NaiveDate>,
    pub continues: Option<u64>,
    pub now: DateTime<Utc>,
}

impl Tx<'_> {
    pub fn insert_ticket(&self, t: &TicketRow<'_>) -> Result<u64, StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO tickets (state, category, contract_id, matched_by, entitlement,
             customer_address, customer_name, subject, received_at, accepted_at, license_due,
             continues, updated_at, number)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    t.state.code(),
                    t.category,
                    t.contract_id,
                    t.matched_by,
                    t.entitlement_json,
                    t.customer_address,
                    t.customer_name,
                    t.subject,
                    time_text(t.received_at),
                    time_text(t.accepted_at),
                    t.license_due.map(|d| d.format("%Y-%m-%d").to_string()),
                    t.continues.map(|n| n as i64),
                    time_text(t.now),
                    t.number as i64,
                ])
            })
            .doing("create a ticket")?;
        Ok(t.number)
    }
}

impl Tx<'_> {
    /// The number the next ticket gets (inside the write transaction, so nobody else takes it).
    pub fn next_ticket_number(&self) -> Result<u64, StoreError> {
        self.conn
            .prepare_cached("SELECT COALESCE(MAX(number), 0) + 1 FROM tickets")
            .and_then(|mut s| s.query_row([], |r| r.get::<_, i64>(0)))
            .map(|n| n as u64)
            .doing("number a new ticket")
    }
}

impl Tx<'_> {
    pub fn set_message_ticket(&self, message: i64, ticket: u64) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE messages SET ticket = ?2 WHERE id = ?1",
                params![message, ticket as i64],
            )
            .doing("link a message to its ticket")?;
        Ok(())
    }
}

pub struct ArticleRow<'a> {
    pub ticket: u64,
    pub kind: crate::core::ticket::ArticleKind,
    pub inbound: bool,
    pub message: Option<i64>,
    pub outbox: Option<i64>,
    pub author: &'a str,
    pub created_at: DateTime<Utc>,
    pub subject: &'a str,
    pub text: &'a str,
}

impl Tx<'_> {
    pub fn insert_article(&self, a: &ArticleRow<'_>) -> Result<i64, StoreError> {
        self.conn.prepare_cached(
        "INSERT INTO articles (ticket, direction, message, outbox, author, created_at, subject, text,
             kind)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )
    .and_then(|mut s| {
        s.execute(params![
            a.ticket as i64,
            if a.inbound { "in" } else { "out" },
            a.message,
            a.outbox,
            a.author,
            time_text(a.created_at),
            a.subject,
            a.text,
            a.kind.code(),
        ])
    })
    .doing("add an article")?;
        Ok(self.conn.last_insert_rowid())
    }
}

impl Tx<'_> {
    /// Remembers a Message-ID as belonging to a ticket; `ours` when the desk made it.
    pub fn insert_thread_id(
        &self,
        message_id: &str,
        ticket: u64,
        ours: bool,
    ) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT OR IGNORE INTO thread_ids (message_id, ticket, ours) VALUES (?1, ?2, ?3)",
            )
            .and_then(|mut s| s.execute(params![message_id, ticket as i64, ours]))
            .doing("remember a thread id")?;
        Ok(())
    }
}

impl Tx<'_> {
    /// The ticket the first known id belongs to, preferring ids the desk made.
    pub fn find_thread(&self, ids: &[String]) -> Result<Option<(u64, bool)>, StoreError> {
        let mut best: Option<(u64, bool)> = None;
        let mut stmt = self
            .conn
            .prepare_cached("SELECT ticket, ours FROM thread_ids WHERE message_id = ?1")
            .doing("look up a thread id")?;
        for id in ids {
            let hit: Option<(i64, bool)> = stmt
                .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
                .doing("look up a thread id")?;
            if let Some((ticket, ours)) = hit {
                if ours {
                    return Ok(Some((ticket as u64, true)));
                }
                best.get_or_insert((ticket as u64, false));
            }
        }
        Ok(best)
    }
}

/// The state, times and customer of a ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketHead {
    pub number: u64,
    pub state: TicketState,
    pub accepted_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    pub customer_address: String,
    pub contract_id: Option<String>,
    pub first_response_at: Option<DateTime<Utc>>,
}

impl Tx<'_> {
    /// The ticket as the decision needs it.
    pub fn ticket_facts(&self, number: u64) -> Result<Option<TicketFacts>, StoreError> {
        Ok(self.ticket_head(number)?.map(|h| TicketFacts {
            number: h.number,
            state: h.state,
            accepted_at: h.accepted_at,
            closed_at: h.closed_at,
            contract_id: h.contract_id,
            customer_address: h.customer_address,
            first_response_at: h.first_response_at,
        }))
    }
}

impl Tx<'_> {
    pub fn ticket_head(&self, number: u64) -> Result<Option<TicketHead>, StoreError> {
        // state, accepted_at, closed_at, customer_address, contract_id, first_response_at
        type HeadRow = (
            String,
            String,
            Option<String>,
            String,
            Option<String>,
            Option<String>,
        );
        let row: Option<HeadRow> = self
            .conn
            .query_row(
                "SELECT state, accepted_at, closed_at, customer_address, contract_id,
                     first_response_at
             FROM tickets WHERE number = ?1",
                [number as i64],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                    ))
                },
            )
            .optional()
            .doing("read a ticket")?;
        let Some((state, accepted_at, closed_at, customer_address, contract_id, first_response)) =
            row
        else {
            return Ok(None);
        };
        Ok(Some(TicketHead {
            number,
            state: TicketState::from_code(&state)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown ticket state {state:?}")))?,
            accepted_at: time_from_text(&accepted_at)?,
            closed_at: closed_at.as_deref().map(time_from_text).transpose()?,
            customer_address,
            contract_id,
            first_response_at: first_response.as_deref().map(time_from_text).transpose()?,
        }))
    }

    pub fn set_ticket_contract(
        &self,
        number: u64,
        contract_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE tickets SET contract_id = ?2, matched_by = 'staff', updated_at = ?3
                 WHERE number = ?1",
                params![number as i64, contract_id, time_text(now)],
            )
            .doing("tie a ticket to a contract")?;
        Ok(())
    }

    pub fn set_ticket_assignee(
        &self,
        number: u64,
        assignee: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE tickets SET assignee = ?2, updated_at = ?3 WHERE number = ?1",
                params![number as i64, assignee, time_text(now)],
            )
            .doing("assign a ticket")?;
        Ok(())
    }

    pub fn set_ticket_category(
        &self,
        number: u64,
        category: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE tickets SET category = ?2, updated_at = ?3 WHERE number = ?1",
                params![number as i64, category, time_text(now)],
            )
            .doing("set a ticket's category")?;
        Ok(())
    }

    /// Records the ticket's first response (once: a later one changes nothing).
    pub fn set_first_response(
        &self,
        number: u64,
        at: DateTime<Utc>,
        business_minutes: i64,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE tickets SET first_response_at = ?2, first_response_minutes = ?3
                 WHERE number = ?1 AND first_response_at IS NULL",
                params![number as i64, time_text(at), business_minutes],
            )
            .doing("record a first response")?;
        Ok(())
    }
}

impl Tx<'_> {
    pub fn set_ticket_state(
        &self,
        number: u64,
        state: TicketState,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let closed_at = (state == TicketState::Closed).then(|| time_text(now));
        self.conn
            .execute(
                "UPDATE tickets SET state = ?2, closed_at = ?3, updated_at = ?4 WHERE number = ?1",
                params![number as i64, state.code(), closed_at, time_text(now)],
            )
            .doing("change a ticket's state")?;
        Ok(())
    }
}

impl Tx<'_> {
    pub fn touch_ticket(&self, number: u64, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE tickets SET updated_at = ?2 WHERE number = ?1",
                params![number as i64, time_text(now)],
            )
            .doing("update a ticket")?;
        Ok(())
    }
}

impl Tx<'_> {
    /// Tickets received outside hours whose acceptance time has come become open (R5).
    pub fn open_accepted(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        self.conn
            .execute(
                "UPDATE tickets SET state = 'open', updated_at = ?1
         WHERE state = 'waiting_acceptance' AND accepted_at <= ?1",
                [time_text(now)],
            )
            .doing("open accepted tickets")
    }
}

pub struct OutboxRow<'a> {
    /// `None` for mail about no ticket.
    pub ticket: Option<u64>,
    pub kind: &'a str,
    pub auto_reply_to: Option<&'a str>,
    pub message_id: &'a str,
    pub sender: &'a str,
    pub recipients: &'a [String],
    pub subject: &'a str,
    pub raw: &'a [u8],
    pub now: DateTime<Utc>,
}

impl Tx<'_> {
    pub fn insert_outbox(&self, o: &OutboxRow<'_>) -> Result<i64, StoreError> {
        let recipients = serde_json::to_string(o.recipients)
            .map_err(|e| StoreError::Corrupt(format!("cannot encode recipients: {e}")))?;
        self.conn.prepare_cached(
        "INSERT INTO outbox (ticket, kind, auto_reply_to, message_id, sender, recipients, subject,
             raw, created_at, state, next_attempt_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'pending', ?9)",
    )
    .and_then(|mut s| {
        s.execute(params![
            o.ticket.map(|t| t as i64),
            o.kind,
            o.auto_reply_to,
            o.message_id,
            o.sender,
            recipients,
            o.subject,
            o.raw,
            time_text(o.now),
        ])
    })
    .doing("queue a message")?;
        Ok(self.conn.last_insert_rowid())
    }
}

impl Tx<'_> {
    /// Automatic replies queued for `address` since `since` (the per-sender limit).
    pub fn auto_replies_since(
        &self,
        address: &str,
        since: DateTime<Utc>,
    ) -> Result<u32, StoreError> {
        self.conn
            .query_row(
                "SELECT COUNT(*) FROM outbox WHERE auto_reply_to = ?1 AND created_at > ?2",
                params![address, time_text(since)],
                |r| r.get(0),
            )
            .doing("count automatic replies")
    }
}

impl Tx<'_> {
    /// How much `address` asked of the desk since `since` (tickets received after it).
    pub fn sender_load(
        &self,
        address: &str,
        since: DateTime<Utc>,
    ) -> Result<SenderLoad, StoreError> {
        let tickets: u32 = self
            .conn
            .query_row(
                "SELECT COUNT(*) FROM tickets WHERE customer_address = ?1 AND received_at > ?2",
                params![address, time_text(since)],
                |r| r.get(0),
            )
            .doing("count a sender's tickets")?;
        let open_ticket: Option<i64> = self
            .conn
            .query_row(
                "SELECT number FROM tickets WHERE customer_address = ?1 AND state <> 'closed'
                 ORDER BY received_at DESC, number DESC LIMIT 1",
                params![address],
                |r| r.get(0),
            )
            .optional()
            .doing("find a sender's open ticket")?;
        let flooded = match open_ticket {
            Some(ticket) => self
                .conn
                .query_row(
                    "SELECT EXISTS (SELECT 1 FROM messages WHERE ticket = ?1 AND received_at > ?2
                         AND reason LIKE 'flood:%')",
                    params![ticket, time_text(since)],
                    |r| r.get(0),
                )
                .doing("look for an earlier flood")?,
            None => false,
        };
        Ok(SenderLoad {
            tickets,
            open_ticket: open_ticket.map(|n| n as u64),
            flooded,
        })
    }
}

impl Tx<'_> {
    /// Staff notifications queued about `ticket` after `since`.
    pub fn staff_notices_since(
        &self,
        ticket: u64,
        since: DateTime<Utc>,
    ) -> Result<u32, StoreError> {
        self.conn
            .prepare_cached(
                "SELECT COUNT(*) FROM outbox WHERE ticket = ?1 AND kind = 'staff_notification'
         AND created_at > ?2",
            )
            .and_then(|mut s| s.query_row(params![ticket as i64, time_text(since)], |r| r.get(0)))
            .doing("count staff notifications")
    }
}

fn delivery(row: &rusqlite::Row<'_>) -> rusqlite::Result<Delivery> {
    let recipients: String = row.get(3)?;
    // Stored as a JSON list by `insert_outbox`; anything else is damage, surfaced as such.
    let list: Vec<String> = serde_json::from_str(&recipients).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(3, rusqlite::types::Type::Text, Box::new(e))
    })?;
    Ok(Delivery {
        outbox_id: row.get(0)?,
        ticket: row.get::<_, Option<i64>>(1)?.map(|t| t as u64),
        kind: row.get(2)?,
        recipients: list.join(", "),
    })
}

impl Tx<'_> {
    /// The delivery of ours with this Message-ID (what a bounce reports on).
    pub fn delivery_by_message_id(&self, message_id: &str) -> Result<Option<Delivery>, StoreError> {
        self.conn
            .query_row(
                "SELECT id, ticket, kind, recipients FROM outbox WHERE message_id = ?1",
                params![message_id],
                delivery,
            )
            .optional()
            .doing("find a delivery")
    }
}

impl Tx<'_> {
    /// Records that a delivery of ours came back.
    pub fn mark_bounced(&self, outbox_id: i64, detail: &str) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE outbox SET bounced = ?2 WHERE id = ?1",
                params![outbox_id, detail],
            )
            .doing("record a bounce")?;
        Ok(())
    }
}

impl Store {
    /// Runs `work` in one transaction: all of it commits, or none of it. `BEGIN IMMEDIATE`
    /// takes the write lock up front, so a concurrent writer (the CLI closing a ticket while
    /// the daemon runs) makes this wait (busy timeout) instead of failing mid-transaction.
    pub fn write<T, E: From<StoreError>>(
        &self,
        work: impl FnOnce(&Tx<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        self.conn
            .execute_batch("BEGIN IMMEDIATE")
            .doing("begin a transaction")?;
        match work(&Tx {
            conn: Cached(&self.conn),
        }) {
            Ok(value) => {
                let committed = crate::stage!("commit")
                    .in_scope(|| self.conn.execute_batch("COMMIT"))
                    .doing("commit a transaction");
                if let Err(e) = committed {
                    let _ = self.conn.execute_batch("ROLLBACK");
                    return Err(e.into());
                }
                Ok(value)
            }
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }

    /// Runs `work` in a transaction that is always rolled back: a dry run of writes.
    pub fn dry_run<T, E: From<StoreError>>(
        &self,
        work: impl FnOnce(&Tx<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        self.conn.execute_batch("BEGIN").doing("begin a dry run")?;
        let result = work(&Tx {
            conn: Cached(&self.conn),
        });
        self.conn
            .execute_batch("ROLLBACK")
            .doing("roll a dry run back")?;
        result
    }

    /// Queued mail whose next attempt is due.
    pub fn due_outbox(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Queued>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, message_id, sender, recipients, raw FROM outbox
                 WHERE state = 'pending' AND next_attempt_at <= ?1 ORDER BY id LIMIT ?2",
            )
            .doing("read the outbox")?;
        let rows = stmt
            .query_map(params![time_text(now), limit as i64], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get::<_, String>(3)?,
                    r.get(4)?,
                ))
            })
            .doing("read the outbox")?
            .collect::<Result<Vec<_>, _>>()
            .doing("read the outbox")?;
        rows.into_iter()
            .map(|(outbox_id, message_id, sender, recipients, raw)| {
                let recipients: Vec<String> = serde_json::from_str(&recipients).map_err(|e| {
                    StoreError::Corrupt(format!("outbox {outbox_id} recipients: {e}"))
                })?;
                Ok(Queued {
                    outbox_id,
                    message_id,
                    sender,
                    recipients,
                    raw,
                })
            })
            .collect()
    }
}

impl Tx<'_> {
    pub fn mark_sent(&self, outbox_id: i64, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE outbox SET state = 'sent', sent_at = ?2, attempts = attempts + 1,
                     last_error = NULL WHERE id = ?1",
                params![outbox_id, time_text(now)],
            )
            .doing("mark a message sent")?;
        Ok(())
    }

    pub fn mark_retry(
        &self,
        outbox_id: i64,
        error: &str,
        next: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?2, next_attempt_at = ?3
                 WHERE id = ?1",
                params![outbox_id, error, time_text(next)],
            )
            .doing("reschedule a message")?;
        Ok(())
    }

    /// Marks a send refused for good; returns what failed, for telling staff.
    pub fn mark_failed(&self, outbox_id: i64, error: &str) -> Result<Option<Delivery>, StoreError> {
        self.conn
            .query_row(
                "UPDATE outbox SET state = 'failed', attempts = attempts + 1, last_error = ?2
                 WHERE id = ?1 RETURNING id, ticket, kind, recipients",
                params![outbox_id, error],
                delivery,
            )
            .optional()
            .doing("mark a message failed")
    }

    pub fn attempts(&self, outbox_id: i64) -> Result<u32, StoreError> {
        self.conn
            .query_row(
                "SELECT attempts FROM outbox WHERE id = ?1",
                [outbox_id],
                |r| r.get(0),
            )
            .doing("read an outbox row")
    }
}

impl Store {
    /// The next moment scheduled work falls due: a waiting ticket's acceptance (R5) or an outbox
    /// retry. The daemon sleeps until then at the latest.
    pub fn next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let next: Option<String> = self
            .conn
            .query_row(
                "SELECT MIN(t) FROM (
                     SELECT MIN(accepted_at) AS t FROM tickets WHERE state = 'waiting_acceptance'
                     UNION ALL
                     SELECT MIN(next_attempt_at) AS t FROM outbox WHERE state = 'pending'
                     UNION ALL
                     SELECT MIN(MAX(send_at, COALESCE(next_attempt_at, send_at))) AS t
                     FROM license_applications WHERE state = 'waiting')",
                [],
                |r| r.get(0),
            )
            .doing("find the next due work")?;
        next.as_deref().map(time_from_text).transpose()
    }
}

/// The ticket's customer as a staff reply answers them: address, the ticket's subject, and
/// the Message-ID of the customer's latest message on it.
pub struct CustomerRow {
    pub address: String,
    pub subject: String,
    pub message_id: Option<String>,
}

impl Tx<'_> {
    pub fn customer_of_ticket(&self, ticket: u64) -> Result<Option<CustomerRow>, StoreError> {
        self.conn
            .query_row(
                "SELECT t.customer_address, t.subject,
                     (SELECT m.message_id FROM articles a JOIN messages m ON m.id = a.message
                      WHERE a.ticket = t.number AND a.direction = 'in'
                        AND lower(a.author) = lower(t.customer_address)
                      ORDER BY a.id DESC LIMIT 1)
                 FROM tickets t WHERE t.number = ?1",
                [ticket as i64],
                |r| {
                    Ok(CustomerRow {
                        address: r.get(0)?,
                        subject: r.get(1)?,
                        message_id: r.get(2)?,
                    })
                },
            )
            .optional()
            .doing("read a ticket's customer")
    }

    /// The raw bytes of the ticket's latest staff notifications, newest first.
    pub fn recent_notifications(
        &self,
        ticket: u64,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT raw FROM outbox WHERE ticket = ?1 AND kind = 'staff_notification'
                 ORDER BY id DESC LIMIT ?2",
            )
            .doing("read a ticket's notifications")?;
        let rows = stmt
            .query_map(params![ticket as i64, limit as i64], |r| r.get(0))
            .doing("read a ticket's notifications")?
            .collect::<Result<Vec<Vec<u8>>, _>>()
            .doing("read a ticket's notifications")?;
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Damaged stored data is an error that says so, never a silent `null`.
    #[test]
    fn a_damaged_entitlement_is_an_error_not_null() {
        let store = Store::open_in_memory().expect("store");
        let t = DateTime::<Utc>::MIN_UTC;
        store
            .write(|tx| {
                tx.insert_ticket(&TicketRow {
                    number: 1,
                    state: TicketState::Open,
                    category: "other",
                    contract_id: None,
                    matched_by: None,
                    entitlement_json: "{not json",
                    customer_address: "a@b.jp",
                    customer_name: "",
                    subject: "s",
                    received_at: t,
                    accepted_at: t,
                    license_due: None,
                    continues: None,
                    now: t,
                })
            })
            .expect("insert");
        let err = store.tickets(None).expect_err("damaged entitlement");
        assert!(
            format!("{err:?}").contains("FromSqlConversionFailure"),
            "{err:?}"
        );
    }
}
