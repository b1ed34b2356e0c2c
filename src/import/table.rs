//! Reading one CSV file as a table: size, encoding, header, rows with their line numbers, and
//! typed field accessors that each record their own problem. What a contracts or orders row
//! means is in `contracts` and `orders`.

use std::io::Read;

use chrono::NaiveDate;

use crate::config::{Diagnostic, Diagnostics};
use crate::core::date::{DateError, parse_ymd};

/// Input larger than this is refused rather than read into memory (real files are kilobytes).
const MAX_BYTES: u64 = 64 * 1024 * 1024;
/// Longest value quoted back in an error message; garbage can be arbitrarily long.
const MAX_SHOWN: usize = 60;

/// A record with the line it was read from (header = 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Lined<T> {
    pub line: usize,
    pub record: T,
}

/// What one CSV file gave: the rows that passed, every problem, and the contract ids of the
/// rows that did not pass (as far as they could be read).
pub(super) struct FileRead<T> {
    pub records: Vec<Lined<T>>,
    pub problems: Vec<Diagnostic>,
    /// `false` when the file could not be read as a table at all (encoding, header).
    pub readable: bool,
    /// Contract ids on rows that were rejected.
    pub rejected_ids: Vec<String>,
}

impl<T> FileRead<T> {
    pub fn unreadable(p: Problems) -> Self {
        FileRead {
            records: Vec::new(),
            problems: p.list,
            readable: false,
            rejected_ids: Vec::new(),
        }
    }

    /// The records, or every problem of the file.
    pub fn finish(self) -> Result<Vec<T>, Diagnostics> {
        let records = self.records.into_iter().map(|r| r.record).collect();
        Diagnostics::from(self.problems).or_ok(records)
    }
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Column {
    name: &'static str,
    required: bool,
}

impl Column {
    pub const fn required(name: &'static str) -> Self {
        Column {
            name,
            required: true,
        }
    }
    pub const fn optional(name: &'static str) -> Self {
        Column {
            name,
            required: false,
        }
    }
}

/// A data row with its values in the order of the column spec ("" for absent optional columns).
pub(super) struct Row {
    pub line: usize,
    values: Vec<String>,
}

/// The rows of a file that could be read.
pub(super) struct Table {
    pub rows: Vec<Row>,
    /// The first spec column's value (the contract id) of rows dropped as unreadable (wrong
    /// field count, control characters), where there is one.
    pub dropped_keys: Vec<String>,
}

/// Collects the problems of one file.
pub(super) struct Problems {
    file: String,
    pub list: Vec<Diagnostic>,
}

impl Problems {
    pub fn new(file: &str) -> Self {
        Problems {
            file: file.to_string(),
            list: Vec::new(),
        }
    }

    /// A problem on `line` (0: the whole file), in `column` when given.
    pub fn push(&mut self, line: usize, column: Option<&str>, reason: impl Into<String>) {
        self.list
            .push(Diagnostic::in_file(&self.file, line, column, reason));
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn finish<T>(self, value: T) -> Result<T, Diagnostics> {
        Diagnostics::from(self.list).or_ok(value)
    }
}

/// Reads the whole input, checks encoding and header, and returns the non-blank rows with
/// values arranged per `spec`. Problems that make the file unreadable (encoding, header) are
/// added to `p` and give `None`; per-row problems (wrong field count, control characters) are
/// added to `p` and the row dropped, so the caller can go on collecting.
pub(super) fn read_table(p: &mut Problems, input: impl Read, spec: &[Column]) -> Option<Table> {
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
pub(super) struct Fields<'a> {
    p: &'a mut Problems,
    row: &'a Row,
    spec: &'static [Column],
}

impl<'a> Fields<'a> {
    pub fn new(p: &'a mut Problems, row: &'a Row, spec: &'static [Column]) -> Self {
        Fields { p, row, spec }
    }

    pub fn text(&self, column: &str) -> &'a str {
        self.spec
            .iter()
            .position(|c| c.name == column)
            .and_then(|i| self.row.values.get(i))
            .map_or("", String::as_str)
    }

    pub fn problem(&mut self, column: &str, reason: impl Into<String>) {
        self.p.push(self.row.line, Some(column), reason);
    }

    pub fn non_empty(&mut self, column: &str) -> Option<String> {
        let value = self.text(column);
        if value.is_empty() {
            self.problem(column, "is empty");
            return None;
        }
        Some(value.to_string())
    }

    /// Contract ids are typed by customers into mail, so no whitespace inside.
    pub fn contract_id(&mut self, column: &str) -> Option<String> {
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

    pub fn yes_no(&mut self, column: &str) -> Option<bool> {
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

    /// `Some(None)` for an allowed empty value, `None` on error.
    pub fn date(&mut self, column: &str, required: bool) -> Option<Option<NaiveDate>> {
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
    pub fn list(
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

/// A value quoted for an error message, shortened when long.
pub(super) fn shown(value: &str) -> String {
    if value.chars().count() <= MAX_SHOWN {
        return format!("{value:?}");
    }
    let head: String = value.chars().take(MAX_SHOWN).collect();
    format!("{head:?}…")
}
