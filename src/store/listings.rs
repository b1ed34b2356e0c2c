//! Tickets and their articles as the command line lists and shows them.

use chrono::{DateTime, Utc};
use rusqlite::params;
use serde::Serialize;

use super::tickets::time_from_text;
use super::{QueryContext, Store, StoreError};
use crate::core::ticket::TicketState;

/// A ticket as `tickets list` and `queue` show it (the `--json` keys of DESIGN.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TicketListing {
    pub number: u64,
    pub state: String,
    pub category: String,
    pub contract_id: Option<String>,
    pub customer: String,
    pub customer_name: String,
    pub subject: String,
    pub accepted_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub license_due: Option<String>,
    pub continues: Option<u64>,
    pub entitlement: serde_json::Value,
    /// Business minutes from acceptance to the first staff reply the customer got.
    pub first_response_minutes: Option<i64>,
    /// The staff member the ticket is assigned to (`#assign`).
    pub assignee: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArticleListing {
    /// `customer`, `staff`, `staff_reply`, `note`, `auto_reply` or `notice`.
    pub kind: String,
    pub direction: String,
    pub author: String,
    #[serde(rename = "at")]
    pub created_at: DateTime<Utc>,
    pub subject: String,
    pub text: String,
    /// For outgoing mail: pending, sent or failed, and a bounce if one came back.
    pub delivery: Option<String>,
    pub bounced: Option<String>,
}

const LISTING_SQL: &str = "SELECT number, state, category, contract_id, customer_address,
    customer_name, subject, accepted_at, received_at, license_due, continues, entitlement,
    first_response_minutes, assignee
    FROM tickets";

fn listing(row: &rusqlite::Row<'_>) -> rusqlite::Result<(TicketListing, String, String)> {
    let entitlement: String = row.get(11)?;
    Ok((
        TicketListing {
            number: row.get::<_, i64>(0)? as u64,
            state: row.get(1)?,
            category: row.get(2)?,
            contract_id: row.get(3)?,
            customer: row.get(4)?,
            customer_name: row.get(5)?,
            subject: row.get(6)?,
            accepted_at: DateTime::<Utc>::MIN_UTC,
            received_at: DateTime::<Utc>::MIN_UTC,
            license_due: row.get(9)?,
            continues: row.get::<_, Option<i64>>(10)?.map(|n| n as u64),
            first_response_minutes: row.get(12)?,
            assignee: row.get(13)?,
            entitlement: serde_json::from_str(&entitlement).map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(
                    11,
                    rusqlite::types::Type::Text,
                    Box::new(e),
                )
            })?,
        },
        row.get(7)?,
        row.get(8)?,
    ))
}

impl Store {
    /// Tickets, optionally in one state, in acceptance order.
    pub fn tickets(&self, state: Option<&str>) -> Result<Vec<TicketListing>, StoreError> {
        let sql =
            format!("{LISTING_SQL} WHERE (?1 IS NULL OR state = ?1) ORDER BY accepted_at, number");
        self.listings(&sql, params![state])
    }

    /// Open and waiting tickets in acceptance order.
    pub fn queue(&self) -> Result<Vec<TicketListing>, StoreError> {
        let sql = format!("{LISTING_SQL} WHERE state != 'closed' ORDER BY accepted_at, number");
        self.listings(&sql, [])
    }

    pub fn ticket(&self, number: u64) -> Result<Option<TicketListing>, StoreError> {
        let sql = format!("{LISTING_SQL} WHERE number = ?1");
        Ok(self.listings(&sql, [number as i64])?.into_iter().next())
    }

    fn listings(
        &self,
        sql: &str,
        args: impl rusqlite::Params,
    ) -> Result<Vec<TicketListing>, StoreError> {
        let mut stmt = self.conn.prepare_cached(sql).doing("list tickets")?;
        let rows = stmt
            .query_map(args, listing)
            .doing("list tickets")?
            .collect::<Result<Vec<_>, _>>()
            .doing("list tickets")?;
        rows.into_iter()
            .map(|(mut t, accepted, received)| {
                t.accepted_at = time_from_text(&accepted)?;
                t.received_at = time_from_text(&received)?;
                Ok(t)
            })
            .collect()
    }

    pub fn articles(&self, number: u64) -> Result<Vec<ArticleListing>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT a.direction, a.author, a.created_at, a.subject, a.text, o.state, o.bounced,
                     a.kind
                 FROM articles a LEFT JOIN outbox o ON o.id = a.outbox
                 WHERE a.ticket = ?1 ORDER BY a.id",
            )
            .doing("read articles")?;
        let rows = stmt
            .query_map([number as i64], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, Option<String>>(5)?,
                    r.get::<_, Option<String>>(6)?,
                    r.get::<_, Option<String>>(7)?,
                ))
            })
            .doing("read articles")?
            .collect::<Result<Vec<_>, _>>()
            .doing("read articles")?;
        rows.into_iter()
            .map(
                |(direction, author, created, subject, text, delivery, bounced, kind)| {
                    // Articles from before kinds were recorded: by their direction.
                    let kind = kind.unwrap_or_else(|| {
                        if direction == "in" {
                            "customer"
                        } else {
                            "auto_reply"
                        }
                        .to_string()
                    });
                    Ok(ArticleListing {
                        kind,
                        direction,
                        author,
                        created_at: time_from_text(&created)?,
                        subject,
                        text,
                        delivery,
                        bounced,
                    })
                },
            )
            .collect()
    }

    /// Closes a ticket (a staff action; follow-ups within the reopen window reopen it).
    pub fn close_ticket(&mut self, number: u64, now: DateTime<Utc>) -> Result<bool, StoreError> {
        self.write(|tx| {
            let exists = tx.ticket_head(number)?.is_some();
            if exists {
                tx.set_ticket_state(number, TicketState::Closed, now)?;
            }
            Ok(exists)
        })
    }

    /// How many messages ended with each verdict (the corpus tests and the demo print it).
    pub fn verdict_counts(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT verdict, COUNT(*) FROM messages GROUP BY verdict ORDER BY verdict")
            .doing("count verdicts")?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))
            .doing("count verdicts")?
            .collect::<Result<Vec<_>, _>>()
            .doing("count verdicts")?;
        Ok(rows)
    }
}
