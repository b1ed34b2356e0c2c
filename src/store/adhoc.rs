//! Read-only queries as text, for tests, reports and an admin's look inside (moved out of
//! `tickets.rs`, which had grown past the tidy line limit).

use super::{QueryContext, Store, StoreError};

impl Store {
    /// A read-only query with every cell as text (`NULL` as `None`): for tests, reports and
    /// an admin's look inside, never for the desk's own logic.
    pub fn select_text(
        &self,
        sql: &str,
        params: &[&str],
    ) -> Result<Vec<Vec<Option<String>>>, StoreError> {
        use rusqlite::types::ValueRef;
        let mut stmt = self.conn.prepare(sql).doing("prepare a query")?;
        if !stmt.readonly() {
            return Err(StoreError::Corrupt(format!("not a read-only query: {sql}")));
        }
        let columns = stmt.column_count();
        let rows = stmt
            .query_map(rusqlite::params_from_iter(params.iter()), |r| {
                (0..columns)
                    .map(|i| {
                        Ok(match r.get_ref(i)? {
                            ValueRef::Null => None,
                            ValueRef::Integer(n) => Some(n.to_string()),
                            ValueRef::Real(f) => Some(f.to_string()),
                            ValueRef::Text(t) | ValueRef::Blob(t) => {
                                Some(String::from_utf8_lossy(t).into_owned())
                            }
                        })
                    })
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .doing("run a query")?
            .collect::<Result<Vec<_>, _>>()
            .doing("run a query")?;
        Ok(rows)
    }

    /// `SELECT COUNT(*) …` and the like: the first cell of the first row as a number.
    pub fn count(&self, sql: &str) -> Result<i64, StoreError> {
        let rows = self.select_text(sql, &[])?;
        rows.first()
            .and_then(|r| r.first())
            .and_then(|c| c.as_deref())
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| StoreError::Corrupt(format!("no number from {sql}")))
    }
}
