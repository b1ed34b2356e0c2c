//! Contracts, their registered contacts and domains, and the orders their support periods are
//! computed from (R9–R12). Periods are never stored: the orders are the single source of truth
//! and `core::contract::periods_from_orders` derives the periods whenever they are needed.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::{QueryContext, Store, StoreError};
use crate::core::contract::{Contract, Order, OrderKind, OrderRecord, SupportPeriod};
use crate::core::date::parse_ymd;

/// A contract as stored, with the orders its periods come from.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredContract {
    pub contract: Contract,
    pub orders: Vec<Order>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ImportSummary {
    pub contracts_added: usize,
    pub contracts_updated: usize,
    pub contracts_unchanged: usize,
    /// Contracts whose orders were replaced by the orders file.
    pub orders_replaced_for: usize,
    pub orders: usize,
}

fn date_text(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

fn date_from_text(text: &str) -> Result<NaiveDate, StoreError> {
    parse_ymd(text)
        .map_err(|_| StoreError::Corrupt(format!("stored date {text:?} is not YYYY-MM-DD")))
}

impl Store {
    /// Loads contracts (and, when given, the complete order history of the contracts the orders
    /// name) in one transaction: either all of it lands or none. Re-importing the same files
    /// changes nothing. Contracts absent from the file are kept, since tickets refer to them.
    /// The caller has validated the files (`crate::import`), including that every order names a
    /// contract known either to the file or to the store (`known_contract_ids`).
    pub fn import_contracts(
        &mut self,
        contracts: &[Contract],
        orders: Option<&[OrderRecord]>,
    ) -> Result<ImportSummary, StoreError> {
        let tx = self.conn.transaction().doing("begin the import")?;
        let mut summary = ImportSummary::default();
        for record in contracts {
            match upsert_contract(&tx, record)? {
                Upsert::Added => summary.contracts_added += 1,
                Upsert::Updated => summary.contracts_updated += 1,
                Upsert::Unchanged => summary.contracts_unchanged += 1,
            }
        }
        if let Some(orders) = orders {
            let mut by_contract: BTreeMap<&str, Vec<&OrderRecord>> = BTreeMap::new();
            for record in orders {
                by_contract
                    .entry(&record.contract_id)
                    .or_default()
                    .push(record);
            }
            for (contract_id, records) in by_contract {
                replace_orders(&tx, contract_id, &records)?;
                summary.orders_replaced_for += 1;
                summary.orders += records.len();
            }
        }
        tx.commit().doing("commit the import")?;
        Ok(summary)
    }

    /// Every contract id the store knows, for validating an orders file against it.
    pub fn known_contract_ids(&self) -> Result<Vec<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT contract_id FROM contracts ORDER BY contract_id")
            .doing("list contract ids")?;
        let ids = stmt
            .query_map([], |row| row.get(0))
            .doing("list contract ids")?
            .collect::<Result<Vec<String>, _>>()
            .doing("list contract ids")?;
        Ok(ids)
    }

    pub fn contracts(&self) -> Result<Vec<StoredContract>, StoreError> {
        let ids = self.known_contract_ids()?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(c) = self.contract(&id)? {
                out.push(c);
            }
        }
        Ok(out)
    }

    pub fn contract(&self, contract_id: &str) -> Result<Option<StoredContract>, StoreError> {
        let head = self
            .conn
            .query_row(
                "SELECT customer, license_serial, customized, neo_support, server_id, reminders
                 FROM contracts WHERE contract_id = ?1",
                [contract_id],
                |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, bool>(2)?,
                        row.get::<_, bool>(3)?,
                        row.get::<_, String>(4)?,
                        row.get::<_, bool>(5)?,
                    ))
                },
            )
            .optional()
            .doing("read a contract")?;
        let Some((customer, license_serial, customized, neo_support, server_id, reminders)) = head
        else {
            return Ok(None);
        };
        let contacts = list(&self.conn, CONTACTS_SQL, contract_id)?;
        let domains = list(&self.conn, DOMAINS_SQL, contract_id)?;
        Ok(Some(StoredContract {
            contract: Contract {
                contract_id: contract_id.to_string(),
                customer,
                license_serial,
                contacts,
                domains,
                customized,
                neo_support,
                server_id,
                reminders,
            },
            orders: self.orders(contract_id)?,
        }))
    }

    fn orders(&self, contract_id: &str) -> Result<Vec<Order>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT kind, received, purchased, cert_start, cert_end
                 FROM orders WHERE contract_id = ?1 ORDER BY seq",
            )
            .doing("read orders")?;
        let rows = stmt
            .query_map([contract_id], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, Option<String>>(2)?,
                    row.get::<_, Option<String>>(3)?,
                    row.get::<_, Option<String>>(4)?,
                ))
            })
            .doing("read orders")?
            .collect::<Result<Vec<_>, _>>()
            .doing("read orders")?;
        rows.into_iter()
            .map(|(kind, received, purchased, start, end)| {
                let kind = kind
                    .parse::<OrderKind>()
                    .map_err(|_| StoreError::Corrupt(format!("unknown order kind {kind:?}")))?;
                let certificate = match (start, end) {
                    (Some(s), Some(e)) => Some(SupportPeriod {
                        start: date_from_text(&s)?,
                        end: date_from_text(&e)?,
                    }),
                    _ => None,
                };
                Ok(Order {
                    kind,
                    received: date_from_text(&received)?,
                    purchased: purchased.as_deref().map(date_from_text).transpose()?,
                    certificate,
                })
            })
            .collect()
    }
}

enum Upsert {
    Added,
    Updated,
    Unchanged,
}

fn upsert_contract(tx: &Transaction<'_>, r: &Contract) -> Result<Upsert, StoreError> {
    let before: Option<(String, String, bool, bool, String, bool)> = tx
        .query_row(
            "SELECT customer, license_serial, customized, neo_support, server_id, reminders
             FROM contracts WHERE contract_id = ?1",
            [&r.contract_id],
            |row| {
                Ok((
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                    row.get(5)?,
                ))
            },
        )
        .optional()
        .doing("read a contract")?;
    let old_contacts = list(tx, CONTACTS_SQL, &r.contract_id)?;
    let old_domains = list(tx, DOMAINS_SQL, &r.contract_id)?;
    let mut contacts = r.contacts.clone();
    contacts.sort();
    contacts.dedup();
    let mut domains = r.domains.clone();
    domains.sort();
    domains.dedup();
    let head = (
        r.customer.clone(),
        r.license_serial.clone(),
        r.customized,
        r.neo_support,
        r.server_id.clone(),
        r.reminders,
    );
    let outcome = match &before {
        None => Upsert::Added,
        Some(old) if *old == head && old_contacts == contacts && old_domains == domains => {
            return Ok(Upsert::Unchanged);
        }
        Some(_) => Upsert::Updated,
    };
    tx.execute(
        "INSERT INTO contracts (contract_id, customer, license_serial, customized, neo_support,
             server_id, reminders)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT(contract_id) DO UPDATE SET customer = ?2, license_serial = ?3,
             customized = ?4, neo_support = ?5, server_id = ?6, reminders = ?7",
        params![
            r.contract_id,
            r.customer,
            r.license_serial,
            r.customized,
            r.neo_support,
            r.server_id,
            r.reminders
        ],
    )
    .doing("write a contract")?;
    tx.execute(
        "DELETE FROM contract_contacts WHERE contract_id = ?1",
        [&r.contract_id],
    )
    .doing("replace contract contacts")?;
    for address in &contacts {
        tx.execute(
            "INSERT INTO contract_contacts (contract_id, address) VALUES (?1, ?2)",
            params![r.contract_id, address],
        )
        .doing("replace contract contacts")?;
    }
    tx.execute(
        "DELETE FROM contract_domains WHERE contract_id = ?1",
        [&r.contract_id],
    )
    .doing("replace contract domains")?;
    for domain in &domains {
        tx.execute(
            "INSERT INTO contract_domains (contract_id, domain) VALUES (?1, ?2)",
            params![r.contract_id, domain],
        )
        .doing("replace contract domains")?;
    }
    Ok(outcome)
}

const CONTACTS_SQL: &str =
    "SELECT address FROM contract_contacts WHERE contract_id = ?1 ORDER BY address";
const DOMAINS_SQL: &str =
    "SELECT domain FROM contract_domains WHERE contract_id = ?1 ORDER BY domain";

fn list(conn: &Connection, sql: &str, key: &str) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).doing("read contract details")?;
    let rows = stmt
        .query_map([key], |row| row.get(0))
        .doing("read contract details")?
        .collect::<Result<Vec<String>, _>>()
        .doing("read contract details")?;
    Ok(rows)
}

fn replace_orders(
    tx: &Transaction<'_>,
    contract_id: &str,
    records: &[&OrderRecord],
) -> Result<(), StoreError> {
    tx.execute("DELETE FROM orders WHERE contract_id = ?1", [contract_id])
        .doing("replace orders")?;
    for (seq, record) in records.iter().enumerate() {
        let order = &record.order;
        tx.execute(
            "INSERT INTO orders (contract_id, seq, kind, received, purchased, cert_start, cert_end)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                contract_id,
                seq as i64,
                order.kind.as_str(),
                date_text(order.received),
                order.purchased.map(date_text),
                order.certificate.map(|p| date_text(p.start)),
                order.certificate.map(|p| date_text(p.end)),
            ],
        )
        .doing("replace orders")?;
    }
    Ok(())
}
