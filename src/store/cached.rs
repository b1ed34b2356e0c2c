//! The connection as a transaction's operations use it: every statement through rusqlite's
//! statement cache, so the few dozen statements a message runs are compiled once per
//! connection, not once per call (re-preparing was about a tenth of a batch's time, issue 14).

use rusqlite::{CachedStatement, Connection, Params, Row};

#[derive(Clone, Copy)]
pub(super) struct Cached<'a>(pub(super) &'a Connection);

/// Statements kept compiled per connection: more than a pass's distinct statements, so none
/// is pushed out between two messages.
pub(super) const CAPACITY: usize = 128;

impl<'a> Cached<'a> {
    pub(super) fn execute<P: Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.0.prepare_cached(sql)?.execute(params)
    }

    pub(super) fn query_row<T, P, F>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T>
    where
        P: Params,
        F: FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    {
        self.0.prepare_cached(sql)?.query_row(params, f)
    }

    pub(super) fn prepare_cached(&self, sql: &str) -> rusqlite::Result<CachedStatement<'a>> {
        self.0.prepare_cached(sql)
    }

    pub(super) fn last_insert_rowid(&self) -> i64 {
        self.0.last_insert_rowid()
    }
}
