//! The SQLite store: one file in WAL mode, versioned migrations, one module of queries per table.
//! Every write that follows from a decision happens in one transaction (DESIGN.md, invariants 2–4).

mod adhoc;
pub mod backup;
mod cached;
mod contracts;
pub mod daemon_status;
pub mod licenses;
mod listings;
mod migrations;
pub mod quarantine;
pub mod reminders;
mod report;
pub mod tickets;

use std::path::{Path, PathBuf};

use rusqlite::Connection;

pub use contracts::{ImportSummary, StoredContract};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot take the migration lock of database {path}")]
    MigrationLock {
        path: PathBuf,
        #[source]
        source: crate::instance::LockError,
    },
    #[error("cannot open database {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("cannot create the database directory {path}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "database schema version {found} is newer than this madoguchi supports ({supported}); \
         refusing to touch it — run the newer binary or restore a backup"
    )]
    TooNew { found: i64, supported: i64 },
    #[error("cannot migrate the database to schema version {version}")]
    Migrate {
        version: i64,
        #[source]
        source: rusqlite::Error,
    },
    #[error("cannot {action}")]
    Query {
        action: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "cannot back up the database to {path} before migrating its schema from version \
         {found} to {target}; the schema was not changed"
    )]
    PreMigrationBackup {
        path: PathBuf,
        found: i64,
        target: i64,
        #[source]
        source: Box<backup::CareError>,
    },
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
}

/// Attaches what the store was trying to do to a SQLite error.
pub(crate) trait QueryContext<T> {
    fn doing(self, action: &'static str) -> Result<T, StoreError>;
}

impl<T> QueryContext<T> for Result<T, rusqlite::Error> {
    fn doing(self, action: &'static str) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Query { action, source })
    }
}

/// How long a write waits for another connection's write lock.
pub(crate) const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

pub struct Store {
    conn: Connection,
}

impl Store {
    /// Opens (creating when absent) the database file and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let conn = Connection::open(path).map_err(|source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        Self::prepare(conn, path)
    }

    /// A new database at `path` with the schema an older madoguchi left: migrated up to
    /// `version` only. For tests of what happens when the current binary opens it.
    #[doc(hidden)]
    pub fn create_at_version(path: &Path, version: i64) -> Result<Self, StoreError> {
        let open_err = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        let mut conn = Connection::open(path).map_err(open_err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(open_err)?;
        migrations::apply_up_to(&mut conn, version)?;
        Ok(Self { conn })
    }

    /// A private in-memory database, for tests and dry runs.
    pub fn open_in_memory() -> Result<Self, StoreError> {
        let conn = Connection::open_in_memory().map_err(|source| StoreError::Open {
            path: PathBuf::from(":memory:"),
            source,
        })?;
        Self::prepare(conn, Path::new(":memory:"))
    }

    fn prepare(mut conn: Connection, path: &Path) -> Result<Self, StoreError> {
        let open_err = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        // First the busy timeout: two processes opening a new database at once (the daemon
        // starting, `status` asking) wait for each other's locks instead of failing.
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        // WAL lets the CLI read while the daemon writes; NORMAL sync is durable across process
        // crashes in WAL mode, which is the failure we design for.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(open_err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(open_err)?;
        conn.set_prepared_statement_cache_capacity(cached::CAPACITY);
        if path != Path::new(":memory:")
            && migrations::current_version(&conn)? < migrations::supported_version()
        {
            // One process at a time backs up and migrates (the daemon starting while `status`
            // probes): the next finds the schema current and does neither.
            let mut lock = path.as_os_str().to_owned();
            lock.push(".migrate.lock");
            let lock = PathBuf::from(lock);
            let _held = crate::instance::lock_waiting(&lock).map_err(|source| {
                StoreError::MigrationLock {
                    path: path.to_path_buf(),
                    source,
                }
            })?;
            backup::before_migration(&conn, path)?;
            migrations::apply(&mut conn)?;
            return Ok(Self { conn });
        }
        migrations::apply(&mut conn)?;
        Ok(Self { conn })
    }

    /// Changes whenever another connection commits (SQLite `PRAGMA data_version`): how the
    /// daemon notices a `contracts import` made by the CLI.
    pub fn data_version(&self) -> Result<i64, StoreError> {
        self.conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))
            .doing("read the data version")
    }

    /// The schema version the database is at (SQLite `user_version`).
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        migrations::current_version(&self.conn)
    }
}
