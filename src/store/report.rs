//! The rows of the monthly report (`madoguchi report`): read only, one month's window of
//! tickets, license applications and withheld replies, every reminder, the renewal orders and
//! the customers' names. The figures are computed from them in `crate::monthly`, which decides
//! the exact month in the desk's timezone.

use chrono::NaiveDate;
use rusqlite::{Connection, Row};

use super::tickets::{time_from_text, time_text};
use super::{QueryContext, Store, StoreError};
use crate::monthly::{ApplicationRow, Month, OrderRow, ReminderRow, Rows, TicketRow, WithheldRow};

fn date(text: &str) -> Result<NaiveDate, StoreError> {
    crate::core::date::parse_ymd(text)
        .map_err(|_| StoreError::Corrupt(format!("stored date {text:?} is not YYYY-MM-DD")))
}

fn rows<T>(
    conn: &Connection,
    sql: &str,
    params: &[&dyn rusqlite::ToSql],
    action: &'static str,
    map: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>, StoreError> {
    let mut stmt = conn.prepare(sql).doing(action)?;
    stmt.query_map(params, map)
        .doing(action)?
        .collect::<Result<Vec<_>, _>>()
        .doing(action)
}

impl Store {
    /// What the monthly report of `month` is computed from.
    pub fn monthly_rows(&self, month: Month) -> Result<Rows, StoreError> {
        let (from, to) = month.window();
        let (from, to) = (time_text(from), time_text(to));
        let conn = &self.conn;

        let tickets = rows(
            conn,
            "SELECT number, category, contract_id, accepted_at, first_response_minutes
               FROM tickets WHERE accepted_at >= ?1 AND accepted_at < ?2 ORDER BY number",
            &[&from, &to],
            "read the month's tickets",
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, Option<i64>>(4)?,
                ))
            },
        )?
        .into_iter()
        .map(|(number, category, contract_id, accepted, minutes)| {
            Ok(TicketRow {
                number: u64::try_from(number).unwrap_or(0),
                category,
                contract_id,
                accepted_at: time_from_text(&accepted)?,
                first_response_minutes: minutes,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;

        let (first, last) = (
            month.first_day().format("%Y-%m-%d").to_string(),
            month.last_day().format("%Y-%m-%d").to_string(),
        );
        let applications = rows(
            conn,
            "SELECT ticket, due, sent_at, state FROM license_applications
              WHERE due >= ?1 AND due <= ?2 ORDER BY ticket",
            &[&first, &last],
            "read the month's license applications",
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, String>(3)?,
                ))
            },
        )?
        .into_iter()
        .map(|(ticket, due, sent_at, state)| {
            Ok(ApplicationRow {
                ticket: u64::try_from(ticket).unwrap_or(0),
                due: due.as_deref().map(date).transpose()?,
                sent_at: sent_at.as_deref().map(time_from_text).transpose()?,
                state,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;

        let withheld = rows(
            conn,
            "SELECT received_at, reason FROM messages
              WHERE verdict = 'recorded' AND received_at >= ?1 AND received_at < ?2",
            &[&from, &to],
            "read the month's withheld replies",
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?)),
        )?
        .into_iter()
        .map(|(received, reason)| {
            Ok(WithheldRow {
                received_at: time_from_text(&received)?,
                reason,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;

        // Every reminder (a few a day at most): the month is decided on the parsed time, so
        // it does not depend on how `queued_at` was spelled.
        let reminders = rows(
            conn,
            "SELECT r.kind, r.contract_id, r.queued_at, COALESCE(o.state = 'sent', 0)
               FROM reminders r LEFT JOIN outbox o ON o.id = r.outbox ORDER BY r.id",
            &[],
            "read the reminders",
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, bool>(3)?,
                ))
            },
        )?
        .into_iter()
        .map(|(kind, contract_id, queued, sent)| {
            Ok(ReminderRow {
                kind,
                contract_id,
                queued_at: time_from_text(&queued)?,
                sent,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;

        let orders = rows(
            conn,
            "SELECT contract_id, kind, received FROM orders
              WHERE kind IN ('renewal', 'recontinuation') ORDER BY contract_id, seq",
            &[],
            "read the renewal orders",
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            },
        )?
        .into_iter()
        .map(|(contract_id, kind, received)| {
            Ok(OrderRow {
                contract_id,
                kind,
                received: date(&received)?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;

        let customers = rows(
            conn,
            "SELECT contract_id, customer FROM contracts",
            &[],
            "read the customers",
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
        )?
        .into_iter()
        .collect();

        Ok(Rows {
            tickets,
            applications,
            withheld,
            reminders,
            orders,
            customers,
        })
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use chrono_tz::Asia::Tokyo;

    use super::*;

    fn jst_text(d: u32, h: u32) -> String {
        time_text(
            Tokyo
                .with_ymd_and_hms(2026, 11, d, h, 0, 0)
                .single()
                .expect("time")
                .with_timezone(&chrono::Utc),
        )
    }

    #[test]
    fn the_rows_of_a_month_come_back_typed() {
        let store = Store::open_in_memory().expect("store");
        let at = jst_text(2, 9);
        let late = jst_text(26, 0);
        store
            .conn
            .execute_batch(&format!(
                "INSERT INTO contracts (contract_id, customer, license_serial, customized,
                    neo_support, server_id) VALUES ('C-1', 'アルファ', 'S-1', 0, 0, 'H-1');
                 INSERT INTO orders (contract_id, seq, kind, received)
                    VALUES ('C-1', 1, 'initial', '2025-11-20'), ('C-1', 2, 'renewal', '2026-11-05');
                 INSERT INTO tickets (number, state, category, contract_id, entitlement,
                    customer_address, customer_name, subject, received_at, accepted_at, updated_at,
                    first_response_minutes)
                    VALUES (1, 'open', 'fault', 'C-1', 'covered', 'a@x', 'A', 's', '{at}', '{at}',
                            '{at}', 42),
                           (2, 'open', 'fault', NULL, 'none', 'a@x', 'A', 's',
                            '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z',
                            '{at}', NULL);
                 INSERT INTO license_applications (ticket, jti, contract_id, license_serial,
                    server_id, applicant, applied_at, due, state, sent_at)
                    VALUES (1, 'j1', 'C-1', 'S-1', 'H-2', 'a@x', '{at}', '2026-11-25', 'sent',
                            '{late}');
                 INSERT INTO messages (source, source_key, content_sha256, raw_path, size,
                    received_at, processed_at, subject, verdict, reason)
                    VALUES ('maildir', 'k1', 'h', '', 1, '{at}', '{at}', 's', 'recorded',
                            'bounce: delivery failure report (bounce)');
                 INSERT INTO outbox (id, kind, message_id, sender, recipients, subject, raw,
                    created_at, state, next_attempt_at)
                    VALUES (7, 'reminder', '<m@x>', 'd@x', 'a@x', 's', x'00', '{at}', 'sent',
                            '{at}');
                 INSERT INTO reminders (key, kind, contract_id, period_end, days, nominal,
                    queued_at, outbox)
                    VALUES ('renewal:C-1:2026-11-30:30', 'renewal', 'C-1', '2026-11-30', 30,
                            '2026-10-31', '{at}', 7),
                           ('digest:2026-11-02', 'digest', NULL, NULL, NULL, '2026-11-02',
                            '{at}', NULL);"
            ))
            .expect("rows");
        let month = Month::parse("2026-11").expect("month");
        let rows = store.monthly_rows(month).expect("rows");
        assert_eq!(
            rows.tickets.len(),
            1,
            "January's ticket is outside the window"
        );
        assert_eq!(rows.tickets[0].first_response_minutes, Some(42));
        assert_eq!(rows.applications.len(), 1);
        assert!(rows.applications[0].sent_at.is_some());
        assert_eq!(rows.withheld.len(), 1);
        assert_eq!(rows.reminders.len(), 2);
        assert!(rows.reminders[0].sent && !rows.reminders[1].sent);
        assert_eq!(rows.orders.len(), 1, "initial orders are no renewals");
        assert_eq!(
            rows.customers.get("C-1").map(String::as_str),
            Some("アルファ")
        );

        let report = crate::monthly::compute(month, Tokyo, &rows);
        assert_eq!(report.tickets.total, 1);
        assert_eq!(
            report.license_keys.late, 1,
            "sent 26 Nov in Tokyo, due the 25th"
        );
        assert_eq!(
            (
                report.reminders.contracts_reminded,
                report.reminders.renewed
            ),
            (1, 1)
        );
    }
}
