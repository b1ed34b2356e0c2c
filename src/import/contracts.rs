//! contracts.csv: `contract_id,customer,license_serial,contacts,domains,customized,neo_support,
//! server_id` → [`Contract`]s. `contacts` and `domains` are `;`-separated lists; contacts
//! are read by `core::address::Address` like every other address the desk reads.

use std::collections::HashMap;
use std::io::Read;

use super::table::{Column, Fields, FileRead, Lined, Problems, Table, read_table, shown};
use crate::config::Diagnostics;
use crate::core::address::{Address, check_domain};
use crate::core::contract::Contract;

const CONTRACT_COLUMNS: &[Column] = &[
    Column::required("contract_id"),
    Column::required("customer"),
    Column::required("license_serial"),
    Column::required("contacts"),
    Column::optional("domains"),
    Column::required("customized"),
    Column::required("neo_support"),
    Column::optional("server_id"),
    Column::optional("reminders"),
];

/// Parses contracts.csv. Contract ids must be unique (ignoring ASCII case, since customers
/// type them into mail and the desk matches them loosely).
pub fn parse_contracts(file_name: &str, input: impl Read) -> Result<Vec<Contract>, Diagnostics> {
    read_contracts(file_name, input).finish()
}

pub(super) fn read_contracts(file_name: &str, input: impl Read) -> FileRead<Contract> {
    let mut p = Problems::new(file_name);
    let Some(Table { rows, dropped_keys }) = read_table(&mut p, input, CONTRACT_COLUMNS) else {
        return FileRead::unreadable(p);
    };
    let mut rejected_ids = dropped_keys;
    let mut records = Vec::with_capacity(rows.len());
    let mut seen: HashMap<String, usize> = HashMap::new();
    for row in rows {
        let before = p.len();
        let mut f = Fields::new(&mut p, &row, CONTRACT_COLUMNS);
        let contract_id = f.contract_id("contract_id");
        let customer = f.non_empty("customer");
        let license_serial = f.non_empty("license_serial");
        let contacts = f.list("contacts", true, contact);
        let domains = f.list("domains", false, domain);
        let customized = f.yes_no("customized");
        let neo_support = f.yes_no("neo_support");
        let server_id = f.text("server_id").to_string();
        // Renewal reminders (R10/R11) unless the contract opts out; empty or absent: yes.
        let reminders = if f.text("reminders").is_empty() {
            Some(true)
        } else {
            f.yes_no("reminders")
        };
        if let Some(id) = &contract_id {
            match seen.get(&id.to_ascii_lowercase()) {
                Some(first) => p.push(
                    row.line,
                    Some("contract_id"),
                    format!(
                        "duplicate contract_id {} (already on line {first})",
                        shown(id)
                    ),
                ),
                None => {
                    seen.insert(id.to_ascii_lowercase(), row.line);
                }
            }
        }
        if p.len() != before {
            rejected_ids.extend(contract_id);
            continue;
        }
        if let (
            Some(contract_id),
            Some(customer),
            Some(license_serial),
            Some(contacts),
            Some(domains),
            Some(customized),
            Some(neo_support),
            Some(reminders),
        ) = (
            contract_id,
            customer,
            license_serial,
            contacts,
            domains,
            customized,
            neo_support,
            reminders,
        ) {
            records.push(Lined {
                line: row.line,
                record: Contract {
                    contract_id,
                    customer,
                    license_serial,
                    contacts,
                    domains,
                    customized,
                    neo_support,
                    server_id,
                    reminders,
                },
            });
        }
    }
    FileRead {
        records,
        problems: p.list,
        readable: true,
        rejected_ids,
    }
}

/// A registered contact: one address as [`Address`] reads it everywhere, lowercased.
fn contact(raw: &str) -> Result<String, String> {
    Address::parse(raw).map(Address::into_string).map_err(|_| {
        format!(
            "expected e-mail addresses separated by ';', got {}",
            shown(raw)
        )
    })
}

/// A domain such as `example.co.jp` (a leading `@` is dropped), lowercased.
fn domain(raw: &str) -> Result<String, String> {
    let value = raw.strip_prefix('@').unwrap_or(raw).to_ascii_lowercase();
    check_domain(&value).map_err(|why| {
        format!(
            "expected domains separated by ';', got {} ({why})",
            shown(raw)
        )
    })?;
    Ok(value)
}
