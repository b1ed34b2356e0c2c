//! orders.csv: `contract_id,kind,received,purchased,start,end` → [`OrderRecord`]s, each row
//! checked on its own, and the checks across rows: every order names a known contract, and each
//! contract's orders make a history R9–R11 accept.

use std::collections::BTreeMap;
use std::io::Read;

use super::table::{Column, Fields, FileRead, Lined, Problems, Table, read_table, shown};
use crate::config::Diagnostics;
use crate::core::contract::{
    ContractPeriods, Order, OrderError, OrderKind, OrderProblem, OrderRecord, SupportPeriod,
    periods_from_orders,
};

const ORDER_COLUMNS: &[Column] = &[
    Column::required("contract_id"),
    Column::required("kind"),
    Column::required("received"),
    Column::optional("purchased"),
    Column::optional("start"),
    Column::optional("end"),
];

/// Parses orders.csv. Checks each row on its own (kind, dates, `purchased` only on initial
/// orders, certificate `start`/`end` both or neither and in order); the rules across a
/// contract's orders (R9–R11) are checked by `periods_by_contract` (see [`super::check_import`]).
pub fn parse_orders(file_name: &str, input: impl Read) -> Result<Vec<OrderRecord>, Diagnostics> {
    read_orders(file_name, input).finish()
}

pub(super) fn read_orders(file_name: &str, input: impl Read) -> FileRead<OrderRecord> {
    let mut p = Problems::new(file_name);
    let Some(Table { rows, dropped_keys }) = read_table(&mut p, input, ORDER_COLUMNS) else {
        return FileRead::unreadable(p);
    };
    let mut rejected_ids = dropped_keys;
    let mut records = Vec::with_capacity(rows.len());
    for row in rows {
        let before = p.len();
        let mut f = Fields::new(&mut p, &row, ORDER_COLUMNS);
        let contract_id = f.contract_id("contract_id");
        let kind = f.kind("kind");
        let received = f.date("received", true);
        let purchased = f.date("purchased", false);
        let start = f.date("start", false);
        let end = f.date("end", false);
        if let (Some(kind), Some(Some(_))) = (kind, purchased)
            && kind != OrderKind::Initial
        {
            f.problem(
                "purchased",
                format!("a purchase date belongs on the initial order only, not on a {kind} order"),
            );
        }
        let certificate = match (start, end) {
            (Some(Some(start)), Some(Some(end))) if start > end => {
                f.problem(
                    "end",
                    format!("certificate period ends on {end}, before it starts on {start}"),
                );
                None
            }
            (Some(Some(start)), Some(Some(end))) => Some(SupportPeriod { start, end }),
            (Some(Some(_)), Some(None)) => {
                f.problem(
                    "end",
                    "is empty but start is set; a certificate period needs both",
                );
                None
            }
            (Some(None), Some(Some(_))) => {
                f.problem(
                    "start",
                    "is empty but end is set; a certificate period needs both",
                );
                None
            }
            _ => None,
        };
        if p.len() != before {
            rejected_ids.extend(contract_id);
            continue;
        }
        if let (Some(contract_id), Some(kind), Some(Some(received)), Some(purchased)) =
            (contract_id, kind, received, purchased)
        {
            records.push(Lined {
                line: row.line,
                record: OrderRecord {
                    contract_id,
                    order: Order {
                        kind,
                        received,
                        purchased,
                        certificate,
                    },
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

/// Groups orders by contract and applies R9–R12 to each contract's orders
/// ([`periods_from_orders`]); a rejected order is reported at its own line.
pub(super) fn periods_by_contract(
    orders: &[Lined<OrderRecord>],
    file_name: &str,
) -> Result<BTreeMap<String, ContractPeriods>, Diagnostics> {
    let mut p = Problems::new(file_name);
    let mut groups: BTreeMap<&str, Vec<&Lined<OrderRecord>>> = BTreeMap::new();
    for lined in orders {
        groups
            .entry(&lined.record.contract_id)
            .or_default()
            .push(lined);
    }
    let mut out = BTreeMap::new();
    for (contract_id, records) in groups {
        let list: Vec<Order> = records.iter().map(|r| r.record.order).collect();
        match periods_from_orders(&list) {
            Ok(periods) => {
                out.insert(contract_id.to_string(), periods);
            }
            Err(OrderError::Rejected { index, problem }) => {
                let line = records.get(index).map_or(0, |r| r.line);
                p.push(
                    line,
                    Some(problem_column(&problem)),
                    format!("contract {}: {problem}", shown(contract_id)),
                );
            }
            Err(e @ OrderError::NoOrders) => p.push(0, None, e.to_string()),
        }
    }
    p.finish(out)
}

/// Reports orders naming a contract that is not in `known` (contract ids from contracts.csv
/// and/or the database). Ids must match exactly; a match ignoring case is suggested.
pub(super) fn check_contracts_known(
    orders: &[Lined<OrderRecord>],
    known: &[String],
    file_name: &str,
) -> Result<(), Diagnostics> {
    let mut p = Problems::new(file_name);
    for Lined { line, record } in orders {
        if known.contains(&record.contract_id) {
            continue;
        }
        let hint = known
            .iter()
            .find(|k| k.eq_ignore_ascii_case(&record.contract_id))
            .map(|k| format!(" (did you mean {}?)", shown(k)))
            .unwrap_or_default();
        p.push(
            *line,
            Some("contract_id"),
            format!("no contract {} is known{hint}", shown(&record.contract_id)),
        );
    }
    p.finish(())
}

fn problem_column(problem: &OrderProblem) -> &'static str {
    match problem {
        OrderProblem::PurchasedNotInitial { .. } => "purchased",
        OrderProblem::CertificateReversed { .. } | OrderProblem::CertificateNotForward { .. } => {
            "end"
        }
        _ => "kind",
    }
}

impl Fields<'_> {
    fn kind(&mut self, column: &str) -> Option<OrderKind> {
        let value = self.text(column);
        match value.to_ascii_lowercase().parse::<OrderKind>() {
            Ok(kind) => Some(kind),
            Err(_) => {
                self.problem(
                    column,
                    format!(
                        "expected initial, renewal or recontinuation, got {}",
                        shown(value)
                    ),
                );
                None
            }
        }
    }
}
