//! Versioned migrations kept in `PRAGMA user_version`. Each entry moves the schema one version
//! up; a database newer than the binary is refused rather than guessed at.

use rusqlite::Connection;

use super::{QueryContext, StoreError};

/// Migration N (1-based) is `MIGRATIONS[N - 1]`. Append only; never edit a released entry.
const MIGRATIONS: &[&str] = &[
    // 1: contracts, their contacts and domains, and the orders their periods are computed from.
    "CREATE TABLE contracts (
        contract_id    TEXT PRIMARY KEY,
        customer       TEXT NOT NULL,
        license_serial TEXT NOT NULL,
        customized     INTEGER NOT NULL,
        neo_support    INTEGER NOT NULL,
        server_id      TEXT NOT NULL
    );
    CREATE TABLE contract_contacts (
        contract_id TEXT NOT NULL REFERENCES contracts(contract_id) ON DELETE CASCADE,
        address     TEXT NOT NULL,
        PRIMARY KEY (contract_id, address)
    );
    CREATE INDEX contract_contacts_by_address ON contract_contacts(address);
    CREATE TABLE contract_domains (
        contract_id TEXT NOT NULL REFERENCES contracts(contract_id) ON DELETE CASCADE,
        domain      TEXT NOT NULL,
        PRIMARY KEY (contract_id, domain)
    );
    CREATE INDEX contract_domains_by_domain ON contract_domains(domain);
    CREATE TABLE orders (
        contract_id TEXT NOT NULL REFERENCES contracts(contract_id) ON DELETE CASCADE,
        seq         INTEGER NOT NULL,
        kind        TEXT NOT NULL CHECK (kind IN ('initial', 'renewal', 'recontinuation')),
        received    TEXT NOT NULL,
        purchased   TEXT,
        cert_start  TEXT,
        cert_end    TEXT,
        PRIMARY KEY (contract_id, seq)
    );",
];

/// The newest schema version this binary knows.
pub fn supported_version() -> i64 {
    MIGRATIONS.len() as i64
}

pub fn current_version(conn: &Connection) -> Result<i64, StoreError> {
    conn.query_row("PRAGMA user_version", [], |row| row.get(0))
        .doing("read the schema version")
}

pub fn apply(conn: &mut Connection) -> Result<(), StoreError> {
    let found = current_version(conn)?;
    let supported = supported_version();
    if found > supported {
        return Err(StoreError::TooNew { found, supported });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(found.max(0) as usize) {
        let version = index as i64 + 1;
        let migrate = |source| StoreError::Migrate { version, source };
        // Each migration and its version bump commit together, so a crash leaves a known version.
        let tx = conn.transaction().map_err(migrate)?;
        tx.execute_batch(sql).map_err(migrate)?;
        tx.pragma_update(None, "user_version", version)
            .map_err(migrate)?;
        tx.commit().map_err(migrate)?;
        tracing::info!(version, "Migrated database schema.");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[test]
    fn a_new_database_reaches_the_newest_version_and_reopening_is_a_no_op() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db/m.sqlite3");
        let store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), supported_version());
        drop(store);
        let store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), supported_version());
    }

    #[test]
    fn a_database_newer_than_the_binary_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.sqlite3");
        drop(Store::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", supported_version() + 1)
            .unwrap();
        drop(conn);
        match Store::open(&path) {
            Err(StoreError::TooNew { found, supported }) => {
                assert_eq!(found, supported_version() + 1);
                assert_eq!(supported, supported_version());
            }
            Err(other) => panic!("unexpected error {other}"),
            Ok(_) => panic!("a newer database was opened"),
        }
    }

    #[test]
    fn the_journal_is_wal() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("w.sqlite3")).unwrap();
        let mode: String = store
            .conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }
}
