//! contracts.csv and orders.csv (DESIGN.md, "Files"): parsing and validation, no database.
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
//! - dates are exactly `YYYY-MM-DD`.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::Read;

use chrono::NaiveDate;

use crate::core::contract::{
    ContractPeriods, Order, OrderError, OrderKind, OrderProblem, SupportPeriod, periods_from_orders,
};
use crate::core::date::{DateError, parse_ymd};

/// Input larger than this is refused rather than read into memory (real files are kilobytes).
const MAX_BYTES: u64 = 64 * 1024 * 1024;
/// Longest value quoted back in an error message; garbage can be arbitrarily long.
const MAX_SHOWN: usize = 60;

/// One row of contracts.csv, validated and normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContractRecord {
    /// Line in the file (header = 1).
    pub line: usize,
    pub contract_id: String,
    pub customer: String,
    pub license_serial: String,
    /// Lowercased addresses, at least one, duplicates removed, file order kept.
    pub contacts: Vec<String>,
    /// Lowercased domains without `@`, possibly none, duplicates removed, file order kept.
    pub domains: Vec<String>,
    pub customized: bool,
    /// Whether the customer also holds desknet's NEO annual support (R3).
    pub neo_support: bool,
    /// May be empty (not known yet).
    pub server_id: String,
}

/// One row of orders.csv.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRecord {
    pub contract_id: String,
    /// Line in the file (header = 1).
    pub line: usize,
    pub order: Order,
}

/// One problem in a CSV file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvError {
    pub file: String,
    /// 1-based, the header is line 1; 0 when the problem concerns the whole file (unreadable).
    pub line: usize,
    /// The column's header name, when the problem is in one field.
    pub column: Option<String>,
    pub reason: String,
}

impl fmt::Display for CsvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
        }
        if let Some(column) = &self.column {
            write!(f, ": column '{column}'")?;
        }
        write!(f, ": {}", self.reason)
    }
}

impl std::error::Error for CsvError {}

/// Every problem found in a file (never empty when returned as an error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvErrors {
    pub errors: Vec<CsvError>,
}

impl fmt::Display for CsvErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for CsvErrors {}

impl From<CsvError> for CsvErrors {
    fn from(e: CsvError) -> Self {
        CsvErrors { errors: vec![e] }
    }
}

const CONTRACT_COLUMNS: &[Column] = &[
    Column::required("contract_id"),
    Column::required("customer"),
    Column::required("license_serial"),
    Column::required("contacts"),
    Column::optional("domains"),
    Column::required("customized"),
    Column::required("neo_support"),
    Column::optional("server_id"),
];

const ORDER_COLUMNS: &[Column] = &[
    Column::required("contract_id"),
    Column::required("kind"),
    Column::required("received"),
    Column::optional("purchased"),
    Column::optional("start"),
    Column::optional("end"),
];

/// Parses contracts.csv. Contract ids must be unique (ignoring ASCII case, since customers
/// type them into mail and the desk matches them loosely).
pub fn parse_contracts(
    file_name: &str,
    input: impl Read,
) -> Result<Vec<ContractRecord>, CsvErrors> {
    read_contracts(file_name, input).finish()
}

/// What one CSV file gave: the rows that passed, every problem, and the contract ids of the
/// rows that did not pass (as far as they could be read).
struct FileRead<T> {
    records: Vec<T>,
    errors: Vec<CsvError>,
    /// `false` when the file could not be read as a table at all (encoding, header).
    readable: bool,
    /// Contract ids on rows that were rejected.
    rejected_ids: Vec<String>,
}

impl<T> FileRead<T> {
    fn unreadable(p: Problems) -> Self {
        FileRead {
            records: Vec::new(),
            errors: p.errors,
            readable: false,
            rejected_ids: Vec::new(),
        }
    }

    fn finish(self) -> Result<Vec<T>, CsvErrors> {
        if self.errors.is_empty() {
            Ok(self.records)
        } else {
            Err(CsvErrors {
                errors: self.errors,
            })
        }
    }
}

fn read_contracts(file_name: &str, input: impl Read) -> FileRead<ContractRecord> {
    let mut p = Problems::new(file_name);
    let Some(Table { rows, dropped_keys }) = read_table(&mut p, input, CONTRACT_COLUMNS) else {
        return FileRead::unreadable(p);
    };
    let mut rejected_ids = dropped_keys;
    let mut records = Vec::with_capacity(rows.len());
    let mut seen: HashMap<String, usize> = HashMap::new();
    for row in rows {
        let before = p.errors.len();
        let mut f = Fields::new(&mut p, &row, CONTRACT_COLUMNS);
        let contract_id = f.contract_id("contract_id");
        let customer = f.non_empty("customer");
        let license_serial = f.non_empty("license_serial");
        let contacts = f.list("contacts", true, parse_address);
        let domains = f.list("domains", false, parse_domain);
        let customized = f.yes_no("customized");
        let neo_support = f.yes_no("neo_support");
        let server_id = f.text("server_id").to_string();
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
        if p.errors.len() != before {
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
        ) = (
            contract_id,
            customer,
            license_serial,
            contacts,
            domains,
            customized,
            neo_support,
        ) {
            records.push(ContractRecord {
                line: row.line,
                contract_id,
                customer,
                license_serial,
                contacts,
                domains,
                customized,
                neo_support,
                server_id,
            });
        }
    }
    FileRead {
        records,
        errors: p.errors,
        readable: true,
        rejected_ids,
    }
}

/// Parses orders.csv. Checks each row on its own (kind, dates, `purchased` only on initial
/// orders, certificate `start`/`end` both or neither and in order); the rules across a
/// contract's orders (R9–R11) are checked by [`periods_by_contract`].
pub fn parse_orders(file_name: &str, input: impl Read) -> Result<Vec<OrderRecord>, CsvErrors> {
    read_orders(file_name, input).finish()
}

fn read_orders(file_name: &str, input: impl Read) -> FileRead<OrderRecord> {
    let mut p = Problems::new(file_name);
    let Some(Table { rows, dropped_keys }) = read_table(&mut p, input, ORDER_COLUMNS) else {
        return FileRead::unreadable(p);
    };
    let mut rejected_ids = dropped_keys;
    let mut records = Vec::with_capacity(rows.len());
    for row in rows {
        let before = p.errors.len();
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
        if p.errors.len() != before {
            rejected_ids.extend(contract_id);
            continue;
        }
        if let (Some(contract_id), Some(kind), Some(Some(received)), Some(purchased)) =
            (contract_id, kind, received, purchased)
        {
            records.push(OrderRecord {
                contract_id,
                line: row.line,
                order: Order {
                    kind,
                    received,
                    purchased,
                    certificate,
                },
            });
        }
    }
    FileRead {
        records,
        errors: p.errors,
        readable: true,
        rejected_ids,
    }
}

/// Groups orders by contract and applies R9–R12 to each contract's orders
/// ([`periods_from_orders`]); a rejected order is reported at its own line.
pub fn periods_by_contract(
    orders: &[OrderRecord],
    file_name: &str,
) -> Result<BTreeMap<String, ContractPeriods>, CsvErrors> {
    let mut p = Problems::new(file_name);
    let mut groups: BTreeMap<&str, Vec<&OrderRecord>> = BTreeMap::new();
    for record in orders {
        groups.entry(&record.contract_id).or_default().push(record);
    }
    let mut out = BTreeMap::new();
    for (contract_id, records) in groups {
        let list: Vec<Order> = records.iter().map(|r| r.order).collect();
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
pub fn check_contracts_known(
    orders: &[OrderRecord],
    known: &[String],
    file_name: &str,
) -> Result<(), CsvErrors> {
    let mut p = Problems::new(file_name);
    for record in orders {
        if known.contains(&record.contract_id) {
            continue;
        }
        let hint = known
            .iter()
            .find(|k| k.eq_ignore_ascii_case(&record.contract_id))
            .map(|k| format!(" (did you mean {}?)", shown(k)))
            .unwrap_or_default();
        p.push(
            record.line,
            Some("contract_id"),
            format!("no contract {} is known{hint}", shown(&record.contract_id)),
        );
    }
    p.finish(())
}

/// The files of one `contracts import`, checked together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportFiles {
    pub contracts: Vec<ContractRecord>,
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
) -> Result<ImportFiles, CsvErrors> {
    let contracts = read_contracts(contracts_file, contracts);
    let mut errors: Vec<(usize, CsvError)> = contracts.errors.into_iter().map(|e| (0, e)).collect();
    let orders = orders.map(|(orders_file, input)| {
        let read = read_orders(orders_file, input);
        errors.extend(read.errors.into_iter().map(|e| (1, e)));
        // Unknown contracts, unless contracts.csv could not be read (then every order would be
        // "unknown", and the file's own error says what is wrong).
        if contracts.readable {
            let mut all_known = known.to_vec();
            all_known.extend(contracts.records.iter().map(|c| c.contract_id.clone()));
            all_known.extend(contracts.rejected_ids.iter().cloned());
            if let Err(e) = check_contracts_known(&read.records, &all_known, orders_file) {
                errors.extend(e.errors.into_iter().map(|e| (1, e)));
            }
        }
        let complete: Vec<OrderRecord> = read
            .records
            .iter()
            .filter(|o| !read.rejected_ids.contains(&o.contract_id))
            .cloned()
            .collect();
        if let Err(e) = periods_by_contract(&complete, orders_file) {
            errors.extend(e.errors.into_iter().map(|e| (1, e)));
        }
        read.records
    });
    if errors.is_empty() {
        return Ok(ImportFiles {
            contracts: contracts.records,
            orders,
        });
    }
    // Stable: problems on one line keep their column order.
    errors.sort_by_key(|(file, e)| (*file, e.line));
    Err(CsvErrors {
        errors: errors.into_iter().map(|(_, e)| e).collect(),
    })
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

#[derive(Debug, Clone, Copy)]
struct Column {
    name: &'static str,
    required: bool,
}

impl Column {
    const fn required(name: &'static str) -> Self {
        Column {
            name,
            required: true,
        }
    }
    const fn optional(name: &'static str) -> Self {
        Column {
            name,
            required: false,
        }
    }
}

/// A data row with its values in the order of the column spec ("" for absent optional columns).
struct Row {
    line: usize,
    values: Vec<String>,
}

/// The rows of a file that could be read.
struct Table {
    rows: Vec<Row>,
    /// The first spec column's value (the contract id) of rows dropped as unreadable (wrong
    /// field count, control characters), where there is one.
    dropped_keys: Vec<String>,
}

struct Problems {
    file: String,
    errors: Vec<CsvError>,
}

impl Problems {
    fn new(file: &str) -> Self {
        Problems {
            file: file.to_string(),
            errors: Vec::new(),
        }
    }

    fn push(&mut self, line: usize, column: Option<&str>, reason: impl Into<String>) {
        self.errors.push(CsvError {
            file: self.file.clone(),
            line,
            column: column.map(str::to_string),
            reason: reason.into(),
        });
    }

    fn finish<T>(self, value: T) -> Result<T, CsvErrors> {
        if self.errors.is_empty() {
            Ok(value)
        } else {
            Err(CsvErrors {
                errors: self.errors,
            })
        }
    }
}

/// Reads the whole input, checks encoding and header, and returns the non-blank rows with
/// values arranged per `spec`. Problems that make the file unreadable (encoding, header) are
/// added to `p` and give `None`; per-row problems (wrong field count, control characters) are
/// added to `p` and the row dropped, so the caller can go on collecting.
fn read_table(p: &mut Problems, input: impl Read, spec: &[Column]) -> Option<Table> {
    let mut bytes = Vec::new();
    if let Err(e) = input.take(MAX_BYTES + 1).read_to_end(&mut bytes) {
        p.push(0, None, format!("cannot read the file: {e}"));
        return None;
    }
    if bytes.len() as u64 > MAX_BYTES {
        p.push(
            0,
            None,
            format!("the file is larger than {} MiB", MAX_BYTES >> 20),
        );
        return None;
    }
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    let text = match std::str::from_utf8(body) {
        Ok(text) => text,
        Err(e) => {
            let valid = &body[..e.valid_up_to()];
            let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
            p.push(
                line,
                None,
                "not valid UTF-8 text (a Shift_JIS export or a binary file?); save the file as \
                 UTF-8 (Excel: \"CSV UTF-8\")",
            );
            return None;
        }
    };
    let expected = spec.iter().map(|c| c.name).collect::<Vec<_>>().join(",");

    // csv reports where the previous record ended, before the blank lines it skips; so find
    // the record's first byte and count the newlines before it.
    let newlines: Vec<usize> = text
        .bytes()
        .enumerate()
        .filter_map(|(i, b)| (b == b'\n').then_some(i))
        .collect();
    let line_of = |pos: &csv::Position| {
        let from = usize::try_from(pos.byte()).unwrap_or(usize::MAX);
        let start = text
            .as_bytes()
            .get(from..)
            .and_then(|rest| rest.iter().position(|&b| b != b'\n' && b != b'\r'))
            .map_or(text.len(), |skip| from + skip);
        newlines.partition_point(|&nl| nl < start) + 1
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut records = reader.records();
    let header = loop {
        match records.next() {
            None => {
                p.push(
                    1,
                    None,
                    format!("the file is empty; expected the header {expected}"),
                );
                return None;
            }
            Some(Err(e)) => {
                let line = e.position().map_or(1, &line_of);
                p.push(line, None, format!("unreadable CSV: {e}"));
                return None;
            }
            Some(Ok(r)) if r.iter().all(|f| f.trim().is_empty()) => continue,
            Some(Ok(r)) => break r,
        }
    };
    let header_line = header.position().map_or(1, &line_of);
    let names: Vec<String> = header
        .iter()
        .map(|n| n.trim().to_ascii_lowercase())
        .collect();

    // Where each spec column sits in the file.
    let mut at: Vec<Option<usize>> = vec![None; spec.len()];
    let mut header_ok = true;
    if !names.iter().any(|n| spec.iter().any(|c| c.name == n)) {
        p.push(
            header_line,
            None,
            format!(
                "not the expected header: expected {expected}, got {}",
                shown(&header.iter().collect::<Vec<_>>().join(","))
            ),
        );
        return None;
    }
    for (i, name) in names.iter().enumerate() {
        match spec.iter().position(|c| c.name == name) {
            None if name.is_empty() => {
                header_ok = false;
                p.push(
                    header_line,
                    None,
                    format!("header field {} is empty", i + 1),
                );
            }
            None => {
                header_ok = false;
                // Escaped and shortened: an unknown name may be garbage.
                let shown_name: String = name.escape_debug().take(MAX_SHOWN).collect();
                p.push(
                    header_line,
                    Some(&shown_name),
                    format!("unknown column (expected columns: {expected})"),
                );
            }
            Some(s) if at[s].is_some() => {
                header_ok = false;
                p.push(header_line, Some(name), "column appears more than once");
            }
            Some(s) => at[s] = Some(i),
        }
    }
    for (column, place) in spec.iter().zip(&at) {
        if column.required && place.is_none() {
            header_ok = false;
            p.push(header_line, Some(column.name), "missing column");
        }
    }
    if !header_ok {
        return None;
    }

    let mut rows = Vec::new();
    let mut dropped_keys = Vec::new();
    let key_of = |record: &csv::StringRecord| {
        at.first()
            .copied()
            .flatten()
            .and_then(|i| record.get(i))
            .map(str::trim)
            .filter(|k| !k.is_empty() && !k.chars().any(char::is_control))
            .map(str::to_string)
    };
    for record in records {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, &line_of);
                p.push(line, None, format!("unreadable CSV: {e}"));
                break;
            }
        };
        let line = record.position().map_or(0, &line_of);
        if record.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        if record.len() != names.len() {
            p.push(
                line,
                None,
                format!(
                    "{} fields, but the header has {}",
                    record.len(),
                    names.len()
                ),
            );
            dropped_keys.extend(key_of(&record));
            continue;
        }
        let mut clean = true;
        for (i, field) in record.iter().enumerate() {
            if field.trim().chars().any(char::is_control) {
                clean = false;
                p.push(line, Some(&names[i]), "contains a control character");
            }
        }
        if !clean {
            dropped_keys.extend(key_of(&record));
            continue;
        }
        let values = at
            .iter()
            .map(|place| {
                place
                    .and_then(|i| record.get(i))
                    .unwrap_or("")
                    .trim()
                    .to_string()
            })
            .collect();
        rows.push(Row { line, values });
    }
    Some(Table { rows, dropped_keys })
}

/// Field accessors for one row; each records its own problem and returns `None` on error.
struct Fields<'a> {
    p: &'a mut Problems,
    row: &'a Row,
    spec: &'static [Column],
}

impl<'a> Fields<'a> {
    fn new(p: &'a mut Problems, row: &'a Row, spec: &'static [Column]) -> Self {
        Fields { p, row, spec }
    }

    fn text(&self, column: &str) -> &'a str {
        self.spec
            .iter()
            .position(|c| c.name == column)
            .and_then(|i| self.row.values.get(i))
            .map_or("", String::as_str)
    }

    fn problem(&mut self, column: &str, reason: impl Into<String>) {
        self.p.push(self.row.line, Some(column), reason);
    }

    fn non_empty(&mut self, column: &str) -> Option<String> {
        let value = self.text(column);
        if value.is_empty() {
            self.problem(column, "is empty");
            return None;
        }
        Some(value.to_string())
    }

    /// Contract ids are typed by customers into mail, so no whitespace inside.
    fn contract_id(&mut self, column: &str) -> Option<String> {
        let value = self.non_empty(column)?;
        if value.chars().any(char::is_whitespace) {
            self.problem(
                column,
                format!("contract id {} contains whitespace", shown(&value)),
            );
            return None;
        }
        Some(value)
    }

    fn yes_no(&mut self, column: &str) -> Option<bool> {
        let value = self.text(column);
        if value.eq_ignore_ascii_case("yes") {
            Some(true)
        } else if value.eq_ignore_ascii_case("no") {
            Some(false)
        } else {
            self.problem(column, format!("expected yes or no, got {}", shown(value)));
            None
        }
    }

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

    /// `Some(None)` for an allowed empty value, `None` on error.
    fn date(&mut self, column: &str, required: bool) -> Option<Option<NaiveDate>> {
        let value = self.text(column);
        if value.is_empty() {
            if required {
                self.problem(column, "is empty; expected a date YYYY-MM-DD");
                return None;
            }
            return Some(None);
        }
        match parse_ymd(value) {
            Ok(date) => Some(Some(date)),
            Err(DateError::Shape) => {
                self.problem(
                    column,
                    format!("expected a date YYYY-MM-DD, got {}", shown(value)),
                );
                None
            }
            Err(DateError::NoSuchDate) => {
                self.problem(column, format!("no such date {}", shown(value)));
                None
            }
        }
    }

    /// A `;`-separated list; empty items (`a;;b`, a trailing `;`) are ignored and duplicates
    /// dropped.
    fn list(
        &mut self,
        column: &str,
        at_least_one: bool,
        item: fn(&str) -> Result<String, String>,
    ) -> Option<Vec<String>> {
        let mut out: Vec<String> = Vec::new();
        let mut ok = true;
        for raw in self.text(column).split(';').map(str::trim) {
            if raw.is_empty() {
                continue;
            }
            match item(raw) {
                Ok(v) if out.contains(&v) => {}
                Ok(v) => out.push(v),
                Err(reason) => {
                    ok = false;
                    self.problem(column, reason);
                }
            }
        }
        if ok && at_least_one && out.is_empty() {
            self.problem(column, "needs at least one entry");
            return None;
        }
        ok.then_some(out)
    }
}

/// A plain `local@domain` address (no display names or comments), lowercased.
fn parse_address(raw: &str) -> Result<String, String> {
    let bad = || {
        format!(
            "expected e-mail addresses separated by ';', got {}",
            shown(raw)
        )
    };
    let value = raw.to_ascii_lowercase();
    let (local, domain) = value.rsplit_once('@').ok_or_else(bad)?;
    let local_ok = !local.is_empty()
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c));
    if !local_ok || valid_domain(domain).is_err() {
        return Err(bad());
    }
    Ok(value)
}

/// A domain such as `example.co.jp` (a leading `@` is dropped), lowercased.
fn parse_domain(raw: &str) -> Result<String, String> {
    let value = raw.strip_prefix('@').unwrap_or(raw).to_ascii_lowercase();
    valid_domain(&value).map_err(|why| {
        format!(
            "expected domains separated by ';', got {} ({why})",
            shown(raw)
        )
    })?;
    Ok(value)
}

/// ASCII host name with at least two labels (IDNs must be given in punycode, `xn--…`).
fn valid_domain(domain: &str) -> Result<(), &'static str> {
    if domain.len() > 253 {
        return Err("too long");
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 {
        return Err("needs a dot");
    }
    for label in labels {
        let ok = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !ok {
            return Err("not a valid host name");
        }
    }
    Ok(())
}

/// A value quoted for an error message, shortened when long.
fn shown(value: &str) -> String {
    if value.chars().count() <= MAX_SHOWN {
        return format!("{value:?}");
    }
    let head: String = value.chars().take(MAX_SHOWN).collect();
    format!("{head:?}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("test date")
    }

    const CONTRACTS_HEADER: &str =
        "contract_id,customer,license_serial,contacts,domains,customized,neo_support,server_id\n";
    const ORDERS_HEADER: &str = "contract_id,kind,received,purchased,start,end\n";

    fn contracts(body: &str) -> Result<Vec<ContractRecord>, CsvErrors> {
        parse_contracts(
            "contracts.csv",
            format!("{CONTRACTS_HEADER}{body}").as_bytes(),
        )
    }

    fn orders(body: &str) -> Result<Vec<OrderRecord>, CsvErrors> {
        parse_orders("orders.csv", format!("{ORDERS_HEADER}{body}").as_bytes())
    }

    fn errors<T: fmt::Debug>(r: Result<T, CsvErrors>) -> Vec<String> {
        match r {
            Err(e) => e.errors.iter().map(ToString::to_string).collect(),
            Ok(v) => panic!("expected errors, got {v:?}"),
        }
    }

    #[test]
    fn good_contracts_file() {
        let got = contracts(
            "C-001, 株式会社サンプル ,NEO-1234,Taro@Example.co.jp; hanako@example.co.jp;,@Example.CO.JP;sample.jp,yes,no,srv-01\n\
             C-002,Other,NEO-9,a@b.example,,No,YES,\n",
        )
        .expect("valid");
        assert_eq!(
            got,
            vec![
                ContractRecord {
                    line: 2,
                    contract_id: "C-001".into(),
                    customer: "株式会社サンプル".into(),
                    license_serial: "NEO-1234".into(),
                    contacts: vec!["taro@example.co.jp".into(), "hanako@example.co.jp".into()],
                    domains: vec!["example.co.jp".into(), "sample.jp".into()],
                    customized: true,
                    neo_support: false,
                    server_id: "srv-01".into(),
                },
                ContractRecord {
                    line: 3,
                    contract_id: "C-002".into(),
                    customer: "Other".into(),
                    license_serial: "NEO-9".into(),
                    contacts: vec!["a@b.example".into()],
                    domains: vec![],
                    customized: false,
                    neo_support: true,
                    server_id: String::new(),
                },
            ]
        );
    }

    #[test]
    fn bom_columns_in_any_order_and_blank_rows() {
        let text = "\u{feff}Customer,contract_id,contacts,license_serial,customized,neo_support\n\
                    \n\
                    X,C-1,x@example.jp,S,no,no\n\
                    ,,,,,\n";
        let got = parse_contracts("contracts.csv", text.as_bytes()).expect("valid");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].contract_id, "C-1");
        assert_eq!(got[0].line, 3);
        assert_eq!(got[0].domains, Vec::<String>::new());
        assert_eq!(got[0].server_id, "");
    }

    #[test]
    fn bad_boolean_is_reported_like_the_design_says() {
        let e = errors(contracts(
            "C-1,X,S,x@example.jp,,yes,no,\nC-2,Y,S,y@example.jp,,maybe,no,\n",
        ));
        assert_eq!(
            e,
            vec![r#"contracts.csv:3: column 'customized': expected yes or no, got "maybe""#]
        );
    }

    #[test]
    fn every_problem_is_reported() {
        let e = errors(contracts(
            "C-1,,S,not-an-address,,1,true,\n\
             C 2,X,,,example,yes,no,\n\
             C-3,X,S,a@example.jp;b@@example.jp;c@localhost,exa_mple.jp,yes,no,\n",
        ));
        assert_eq!(
            e,
            vec![
                "contracts.csv:2: column 'customer': is empty",
                r#"contracts.csv:2: column 'contacts': expected e-mail addresses separated by ';', got "not-an-address""#,
                r#"contracts.csv:2: column 'customized': expected yes or no, got "1""#,
                r#"contracts.csv:2: column 'neo_support': expected yes or no, got "true""#,
                r#"contracts.csv:3: column 'contract_id': contract id "C 2" contains whitespace"#,
                "contracts.csv:3: column 'license_serial': is empty",
                "contracts.csv:3: column 'contacts': needs at least one entry",
                r#"contracts.csv:3: column 'domains': expected domains separated by ';', got "example" (needs a dot)"#,
                r#"contracts.csv:4: column 'contacts': expected e-mail addresses separated by ';', got "b@@example.jp""#,
                r#"contracts.csv:4: column 'contacts': expected e-mail addresses separated by ';', got "c@localhost""#,
                r#"contracts.csv:4: column 'domains': expected domains separated by ';', got "exa_mple.jp" (not a valid host name)"#,
            ]
        );
    }

    #[test]
    fn duplicate_contract_ids() {
        let e = errors(contracts(
            "C-1,X,S,x@example.jp,,yes,no,\nC-2,X,S,x@example.jp,,yes,no,\nc-1,Y,S,y@example.jp,,yes,no,\n",
        ));
        assert_eq!(
            e,
            vec![
                r#"contracts.csv:4: column 'contract_id': duplicate contract_id "c-1" (already on line 2)"#
            ]
        );
    }

    #[test]
    fn wrong_header() {
        let e = errors(parse_contracts(
            "contracts.csv",
            "id,customer,license_serial,contacts,domains,customized,neo_support,server_id,notes\n"
                .as_bytes(),
        ));
        assert_eq!(
            e,
            vec![
                "contracts.csv:1: column 'id': unknown column (expected columns: contract_id,customer,license_serial,contacts,domains,customized,neo_support,server_id)",
                "contracts.csv:1: column 'notes': unknown column (expected columns: contract_id,customer,license_serial,contacts,domains,customized,neo_support,server_id)",
                "contracts.csv:1: column 'contract_id': missing column",
            ]
        );
        let e = errors(parse_contracts(
            "contracts.csv",
            "contract_id,customer,customer\n".as_bytes(),
        ));
        assert!(
            e.contains(
                &"contracts.csv:1: column 'customer': column appears more than once".to_string()
            ),
            "{e:?}"
        );
        assert!(
            e.contains(&"contracts.csv:1: column 'contacts': missing column".to_string()),
            "{e:?}"
        );
        // The orders header given to the contracts parser.
        let e = errors(parse_contracts("contracts.csv", ORDERS_HEADER.as_bytes()));
        assert!(
            e.iter()
                .any(|m| m.contains("column 'kind': unknown column")),
            "{e:?}"
        );
    }

    #[test]
    fn field_count_mismatch() {
        let e = errors(contracts(
            "C-1,X,S,x@example.jp,,yes,no,,extra\nC-2,X,S\nC-3,X,S,x@example.jp,,yes,no,\n",
        ));
        assert_eq!(
            e,
            vec![
                "contracts.csv:2: 9 fields, but the header has 8",
                "contracts.csv:3: 3 fields, but the header has 8",
            ]
        );
    }

    #[test]
    fn empty_and_garbage_input_never_panics() {
        let e = errors(parse_contracts("contracts.csv", &b""[..]));
        assert_eq!(e.len(), 1);
        assert!(
            e[0].starts_with("contracts.csv:1: the file is empty"),
            "{e:?}"
        );
        let e = errors(parse_contracts("contracts.csv", &b"\xEF\xBB\xBF"[..]));
        assert!(e[0].contains("the file is empty"), "{e:?}");

        // Not UTF-8 (Shift_JIS 株式会社 on line 2).
        let mut sjis = CONTRACTS_HEADER.as_bytes().to_vec();
        sjis.extend_from_slice(b"C-1,\x8a\x94\x8e\xae\x89\xef\x8e\xd0,S,x@example.jp,,yes,no,\n");
        let e = errors(parse_contracts("contracts.csv", sjis.as_slice()));
        assert_eq!(e.len(), 1);
        assert!(
            e[0].starts_with("contracts.csv:2: not valid UTF-8"),
            "{e:?}"
        );

        // Binary noise: a clear header error, and nothing else.
        let noise: Vec<u8> = (0..4096u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        let e = errors(parse_contracts("contracts.csv", noise.as_slice()));
        assert_eq!(e.len(), 1, "{e:?}");
        let ascii_noise = "\0\0\x01PK\x03\x04,,\"\"\"\n\0\0";
        let e = errors(parse_orders("orders.csv", ascii_noise.as_bytes()));
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].contains("not the expected header"), "{e:?}");

        // Right header, garbage rows: each row reported, no panic.
        let mut text = ORDERS_HEADER.to_string();
        text.push_str("a\0b,c,d,e,f,g\n\"unterminated,x\n");
        let e = errors(parse_orders("orders.csv", text.as_bytes()));
        assert!(e.iter().any(|m| m.contains("control character")), "{e:?}");
    }

    #[test]
    fn long_values_are_shortened_in_messages() {
        let long = "x".repeat(500);
        let e = errors(contracts(&format!("C-1,X,S,x@example.jp,,{long},no,\n")));
        assert!(e[0].len() < 200, "{}", e[0]);
        assert!(e[0].ends_with("\"…"), "{}", e[0]);
    }

    #[test]
    fn io_error_is_reported() {
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("disk on fire"))
            }
        }
        let e = errors(parse_orders("orders.csv", Broken));
        assert_eq!(e, vec!["orders.csv: cannot read the file: disk on fire"]);
    }

    #[test]
    fn good_orders_file() {
        let got = orders(
            "C-1,initial,2026-03-15,2026-03-01,,\n\
             C-1,Renewal,2027-02-01,,2027-04-01,2028-03-31\n\
             C-2,recontinuation,2026-04-01,,,\n",
        )
        .expect("valid");
        assert_eq!(got.len(), 3);
        assert_eq!(
            got[0],
            OrderRecord {
                contract_id: "C-1".into(),
                line: 2,
                order: Order {
                    kind: OrderKind::Initial,
                    received: d("2026-03-15"),
                    purchased: Some(d("2026-03-01")),
                    certificate: None,
                },
            }
        );
        assert_eq!(
            got[1].order.certificate,
            Some(SupportPeriod {
                start: d("2027-04-01"),
                end: d("2028-03-31")
            })
        );
        assert_eq!(got[2].order.kind, OrderKind::Recontinuation);
    }

    #[test]
    fn orders_without_optional_columns() {
        let got = parse_orders(
            "orders.csv",
            "kind,contract_id,received\ninitial,C-1,2026-03-15\n".as_bytes(),
        )
        .expect("valid");
        assert_eq!(got[0].order.purchased, None);
        assert_eq!(got[0].order.certificate, None);
    }

    #[test]
    fn bad_order_fields() {
        let e = errors(orders(
            "C-1,first,2026-03-15,,,\n\
             C-1,initial,2026/03/15,,,\n\
             C-1,initial,2026-02-30,2026-3-1,,\n\
             C-1,renewal,2026-03-15,2026-03-01,,\n\
             C-1,renewal,2026-03-15,,2026-04-01,\n\
             C-1,renewal,2026-03-15,,,2027-03-31\n\
             C-1,renewal,2026-03-15,,2027-04-01,2027-03-31\n\
             ,renewal,,,,\n",
        ));
        assert_eq!(
            e,
            vec![
                r#"orders.csv:2: column 'kind': expected initial, renewal or recontinuation, got "first""#,
                r#"orders.csv:3: column 'received': expected a date YYYY-MM-DD, got "2026/03/15""#,
                r#"orders.csv:4: column 'received': no such date "2026-02-30""#,
                r#"orders.csv:4: column 'purchased': expected a date YYYY-MM-DD, got "2026-3-1""#,
                "orders.csv:5: column 'purchased': a purchase date belongs on the initial order only, not on a renewal order",
                "orders.csv:6: column 'end': is empty but start is set; a certificate period needs both",
                "orders.csv:7: column 'start': is empty but end is set; a certificate period needs both",
                "orders.csv:8: column 'end': certificate period ends on 2027-03-31, before it starts on 2027-04-01",
                "orders.csv:9: column 'contract_id': is empty",
                "orders.csv:9: column 'received': is empty; expected a date YYYY-MM-DD",
            ]
        );
    }

    #[test]
    fn periods_by_contract_computes_each_contract() {
        let records = orders(
            "C-1,initial,2026-03-15,,,\n\
             C-2,initial,2026-04-01,,,\n\
             C-1,renewal,2026-12-01,,,\n",
        )
        .expect("valid");
        let periods = periods_by_contract(&records, "orders.csv").expect("consistent");
        assert_eq!(periods.len(), 2);
        let c1: Vec<_> = periods["C-1"].periods.iter().map(|p| p.period).collect();
        assert_eq!(
            c1,
            vec![
                SupportPeriod {
                    start: d("2026-04-01"),
                    end: d("2027-03-31")
                },
                SupportPeriod {
                    start: d("2027-04-01"),
                    end: d("2028-03-31")
                },
            ]
        );
    }

    #[test]
    fn r11_contradiction_names_the_line() {
        let records = orders(
            "C-1,initial,2024-03-15,,,\n\
             C-2,initial,2026-04-01,,,\n\
             C-1,renewal,2026-04-01,,,\n\
             C-2,recontinuation,2026-05-01,,,\n\
             C-3,renewal,2026-05-01,,,\n",
        )
        .expect("valid rows");
        let e = errors(periods_by_contract(&records, "orders.csv"));
        assert_eq!(e.len(), 3, "{e:?}");
        assert!(
            e[0].starts_with(
                "orders.csv:4: column 'kind': contract \"C-1\": renewal received on 2026-04-01 is a year or more after the support period ended on 2025-03-31"
            ),
            "{e:?}"
        );
        assert!(e[0].contains("再継続年間サポート"), "{e:?}");
        assert!(
            e[1].starts_with("orders.csv:5: column 'kind': contract \"C-2\": recontinuation received on 2026-05-01"),
            "{e:?}"
        );
        assert!(
            e[2].starts_with("orders.csv:6: column 'kind': contract \"C-3\": the first order of a contract (by received date) must be an initial order, not renewal"),
            "{e:?}"
        );
    }

    #[test]
    fn certificate_through_csv_chains() {
        let records = orders(
            "C-1,initial,2026-03-15,,2026-03-20,2027-03-19\n\
             C-1,renewal,2027-03-01,,,\n",
        )
        .expect("valid");
        let periods = periods_by_contract(&records, "orders.csv").expect("ok");
        let c1 = &periods["C-1"].periods;
        assert!(c1[0].from_certificate);
        assert_eq!(c1[1].period.start, d("2027-03-20"));
    }

    #[test]
    fn unknown_contracts_in_orders() {
        let records = orders(
            "C-1,initial,2026-03-15,,,\nc-2,initial,2026-03-15,,,\nC-9,initial,2026-03-15,,,\n",
        )
        .expect("valid");
        let known = vec!["C-1".to_string(), "C-2".to_string()];
        let e = errors(check_contracts_known(&records, &known, "orders.csv"));
        assert_eq!(
            e,
            vec![
                r#"orders.csv:3: column 'contract_id': no contract "c-2" is known (did you mean "C-2"?)"#,
                r#"orders.csv:4: column 'contract_id': no contract "C-9" is known"#,
            ]
        );
    }

    fn import(
        contracts_body: &str,
        orders_body: &str,
        known: &[&str],
    ) -> Result<ImportFiles, CsvErrors> {
        let contracts = format!("{CONTRACTS_HEADER}{contracts_body}");
        let orders = format!("{ORDERS_HEADER}{orders_body}");
        let known: Vec<String> = known.iter().map(|k| k.to_string()).collect();
        check_import(
            "contracts.csv",
            contracts.as_bytes(),
            Some(("orders.csv", &mut orders.as_bytes())),
            &known,
        )
    }

    #[test]
    fn import_reports_every_kind_of_problem_in_file_and_line_order() {
        let e = errors(import(
            "C-1,良品株式会社,S-1,a@good.example.jp,,no,no,\n\
             C-2,株式会社ワルイ,S-2,b@bad.example.jp,,maybe,no,\n",
            // Line 3: R11; line 4: unknown contract; line 5: a field error.
            "C-1,initial,2024-03-15,,,\n\
             C-1,renewal,2026-04-01,,,\n\
             C-9,initial,2026-03-15,,,\n\
             C-2,bogus,2026-03-15,,,\n",
            &[],
        ));
        let places: Vec<&str> = e
            .iter()
            .map(|l| l.split(": ").next().unwrap_or(""))
            .collect();
        assert_eq!(
            places,
            [
                "contracts.csv:3",
                "orders.csv:3",
                "orders.csv:4",
                "orders.csv:5"
            ],
            "{e:#?}"
        );
        assert!(e[1].contains("contract \"C-1\": renewal"), "{e:#?}");
        assert!(e[2].contains("no contract \"C-9\" is known"), "{e:#?}");
    }

    #[test]
    fn import_does_not_guess_past_a_rejected_row() {
        // C-2's contract row is rejected but still names C-2; C-3's 2025 renewal is rejected, so
        // its 2026 renewal (fine after it) is not judged without it; C-4's renewal row has a
        // field too many, and its id still counts.
        let e = errors(import(
            "C-1,良品株式会社,S-1,a@good.example.jp,,no,no,\n\
             C-2,株式会社ワルイ,S-2,b@bad.example.jp,,maybe,no,\n",
            "C-2,initial,2024-03-15,,,\n\
             C-3,initial,2024-03-15,,,\n\
             C-3,renewal,2025-02-30,,,\n\
             C-3,renewal,2026-04-05,,,\n\
             C-4,initial,2024-03-15,,,\n\
             C-4,renewal,2025-03-01,,,,\n\
             C-4,renewal,2026-04-05,,,\n",
            &["C-3", "C-4"],
        ));
        let places: Vec<&str> = e
            .iter()
            .map(|l| l.split(": ").next().unwrap_or(""))
            .collect();
        assert_eq!(
            places,
            ["contracts.csv:3", "orders.csv:4", "orders.csv:7"],
            "{e:#?}"
        );
    }

    #[test]
    fn import_with_an_unreadable_contracts_file_does_not_call_every_order_unknown() {
        let e = errors(check_import(
            "contracts.csv",
            "id,name\nC-1,x\n".as_bytes(),
            Some((
                "orders.csv",
                &mut format!("{ORDERS_HEADER}C-1,initial,2024-03-15,,,\n").as_bytes(),
            )),
            &[],
        ));
        assert!(e.iter().all(|l| l.starts_with("contracts.csv:1")), "{e:#?}");
    }

    #[test]
    fn import_of_good_files_gives_both() {
        let got = import(
            "C-1,良品株式会社,S-1,a@good.example.jp,,no,no,\n",
            "C-1,initial,2024-03-15,,,\nC-7,initial,2024-03-15,,,\n",
            &["C-7"],
        )
        .expect("valid");
        assert_eq!(got.contracts.len(), 1);
        assert_eq!(got.orders.map(|o| o.len()), Some(2));
        let alone = check_import(
            "contracts.csv",
            format!("{CONTRACTS_HEADER}C-1,良品株式会社,S-1,a@good.example.jp,,no,no,\n")
                .as_bytes(),
            None,
            &[],
        )
        .expect("valid");
        assert_eq!(alone.orders, None);
    }

    #[test]
    fn crlf_and_blank_lines_keep_line_numbers() {
        let text = "\r\ncontract_id,kind,received\r\n\r\n\r\nC-1,initial,2026-03-15\r\nC-1,oops,2026-03-15\r\n";
        let e = errors(parse_orders("orders.csv", text.as_bytes()));
        assert_eq!(
            e,
            vec![
                r#"orders.csv:6: column 'kind': expected initial, renewal or recontinuation, got "oops""#
            ]
        );
    }

    #[test]
    fn quoted_fields_and_line_numbers() {
        // A quoted field spanning two lines is rejected (control character), and the next
        // record's line number still counts physical lines.
        let e = errors(contracts(
            "\"C-1\",\"X, Inc.\",S,x@example.jp,,yes,no,\n\"C-2\",\"two\nlines\",S,x@example.jp,,yes,no,\nC-3,X,S,bad,,yes,no,\n",
        ));
        assert_eq!(
            e,
            vec![
                "contracts.csv:3: column 'customer': contains a control character",
                r#"contracts.csv:5: column 'contacts': expected e-mail addresses separated by ';', got "bad""#,
            ]
        );
        let ok = contracts("\"C-1\",\"X, Inc.\",S,x@example.jp,,yes,no,\n").expect("ok");
        assert_eq!(ok[0].customer, "X, Inc.");
    }
}
