//! `contracts import`: contracts.csv and orders.csv (DESIGN.md, "Files") read and checked into
//! plain [`Contract`]s and [`OrderRecord`]s for the store; no database here.
//!
//! Both files are UTF-8 with a header line; a UTF-8 BOM is skipped and every field (and header
//! name) is trimmed. Every problem in a file is reported, each with its file, line (1-based, the
//! header is line 1) and column, so an administrator can fix a file in one go; [`check_import`]
//! does the same for both files of an import at once (field errors, unknown contracts, R9–R11),
//! sorted by file then line. Conventions:
//! - header names match ASCII case-insensitively and may come in any order; unknown or repeated
//!   names are errors. Columns whose values may be empty (`domains`, `server_id`; `purchased`,
//!   `start`, `end`) may also be left out of the header entirely;
//! - rows whose fields are all empty (blank lines, Excel's trailing `,,,,` rows) are skipped;
//! - control characters are rejected in every field (they only arrive with garbage input);
//! - booleans are `yes`/`no` only (any ASCII case): `1`/`true` are not accepted, so a shifted
//!   column cannot pass as a flag;
//! - dates are exactly `YYYY-MM-DD` (`core::date::parse_ymd`, as everywhere).
//!
//! Problems are [`Diagnostic`](crate::config::Diagnostic)s, the same type the config reports
//! with (`file:line: column 'name': what`). `table` reads a file as rows and typed fields;
//! `contracts` and `orders` give the rows their meaning.

mod contracts;
mod orders;
mod table;

#[cfg(test)]
mod tests;

use std::io::Read;

use crate::config::{Diagnostic, Diagnostics};
use crate::core::contract::{Contract, OrderRecord};
use contracts::read_contracts;
use orders::{check_contracts_known, periods_by_contract, read_orders};
use table::Lined;

pub use contracts::parse_contracts;
pub use orders::parse_orders;

/// The files of one `contracts import`, checked together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportFiles {
    pub contracts: Vec<Contract>,
    /// `None` when no orders file was given.
    pub orders: Option<Vec<OrderRecord>>,
}

/// Checks contracts.csv and, when given, orders.csv for an import, and reports every problem
/// of both in one go, sorted by file (contracts first) then line: field errors in either file,
/// orders naming a contract that neither the file nor `known` (the store's ids) has, and order
/// histories R9–R11 reject. Nothing is guessed at: a contract whose row was rejected still
/// counts as known to its orders, and the history of a contract with a rejected order row is
/// not judged (its missing order would make a false conflict).
pub fn check_import(
    contracts_file: &str,
    contracts: impl Read,
    orders: Option<(&str, &mut dyn Read)>,
    known: &[String],
) -> Result<ImportFiles, Diagnostics> {
    let contracts = read_contracts(contracts_file, contracts);
    let mut errors: Vec<(usize, Diagnostic)> =
        contracts.problems.into_iter().map(|e| (0, e)).collect();
    let orders = orders.map(|(orders_file, input)| {
        let read = read_orders(orders_file, input);
        errors.extend(read.problems.into_iter().map(|e| (1, e)));
        // Unknown contracts, unless contracts.csv could not be read (then every order would be
        // "unknown", and the file's own error says what is wrong).
        if contracts.readable {
            let mut all_known = known.to_vec();
            all_known.extend(
                contracts
                    .records
                    .iter()
                    .map(|c| c.record.contract_id.clone()),
            );
            all_known.extend(contracts.rejected_ids.iter().cloned());
            if let Err(e) = check_contracts_known(&read.records, &all_known, orders_file) {
                errors.extend(e.problems.into_iter().map(|e| (1, e)));
            }
        }
        let complete: Vec<Lined<OrderRecord>> = read
            .records
            .iter()
            .filter(|o| !read.rejected_ids.contains(&o.record.contract_id))
            .cloned()
            .collect();
        if let Err(e) = periods_by_contract(&complete, orders_file) {
            errors.extend(e.problems.into_iter().map(|e| (1, e)));
        }
        read.records.into_iter().map(|o| o.record).collect()
    });
    if errors.is_empty() {
        return Ok(ImportFiles {
            contracts: contracts.records.into_iter().map(|c| c.record).collect(),
            orders,
        });
    }
    // Stable: problems on one line keep their column order.
    errors.sort_by_key(|(file, e)| (*file, e.line));
    Err(errors
        .into_iter()
        .map(|(_, e)| e)
        .collect::<Vec<_>>()
        .into())
}
