//! Database care: an online backup with SQLite's backup API (consistent while the daemon
//! writes), the integrity and foreign-key check, and the automatic backup taken before a
//! migration changes the schema of an existing database.
//!
//! The copy reads one snapshot: a read transaction on the source is held across all the
//! steps, so the copy never restarts however much the daemon writes meanwhile (in WAL mode a
//! reader and the writer do not block each other), and the pause between steps leaves the
//! disk to the daemon. The copy is written to `FILE.tmp`, checked, synced, then renamed: a
//! file at `FILE` is always a complete backup that passed `PRAGMA integrity_check`.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};
use serde::Serialize;

use super::{StoreError, migrations};

/// Pages copied per step (1 MiB at the default 4 KiB page).
pub const PAGES_PER_STEP: i32 = 256;
/// The pause between steps.
pub const STEP_PAUSE: Duration = Duration::from_millis(5);
/// How long a step may keep finding the backup file locked before the backup gives up.
const BUSY_LIMIT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum CareError {
    #[error("{path} already exists; a backup never overwrites a file (choose another name)")]
    Exists { path: PathBuf },
    #[error("no database at {path}")]
    Missing { path: PathBuf },
    #[error("cannot open the database {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("cannot create the backup file {path}")]
    Create {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot copy the database into {path}")]
    Copy {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("cannot put the backup in place at {path}")]
    Finish {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "cannot trust the copy {path}: SQLite's integrity check found {problems}; it is left \
         there and not renamed (the database itself may be damaged: run `madoguchi db check`)"
    )]
    Damaged { path: PathBuf, problems: String },
}

/// What `db backup` made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackupReport {
    pub path: PathBuf,
    pub bytes: u64,
    pub schema_version: i64,
    pub pages: i64,
    pub page_size: i64,
    /// Backup steps taken (pages / [`PAGES_PER_STEP`], rounded up: the copy never restarted).
    pub steps: u64,
}

/// What `db check` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    pub path: PathBuf,
    pub ok: bool,
    /// `PRAGMA integrity_check` and `PRAGMA foreign_key_check` findings, or the error that
    /// stopped them.
    pub problems: Vec<String>,
    pub schema_version: Option<i64>,
    pub supported_version: i64,
    pub bytes: u64,
    pub page_size: Option<i64>,
    pub pages: Option<i64>,
    pub free_pages: Option<i64>,
    pub journal_mode: Option<String>,
    /// Rows per kind (tickets, messages, held quarantine, raw messages, outbox by state …),
    /// as far as the database can still be read.
    pub counts: BTreeMap<String, i64>,
}

/// Opens an existing database as it is: never created, never migrated, nothing written.
fn open_existing(path: &Path) -> Result<Connection, CareError> {
    if fs::symlink_metadata(path).is_err() {
        return Err(CareError::Missing {
            path: path.to_path_buf(),
        });
    }
    let open_err = |source| CareError::Open {
        path: path.to_path_buf(),
        source,
    };
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(open_err)?;
    conn.busy_timeout(Duration::from_secs(10))
        .map_err(open_err)?;
    conn.pragma_update(None, "query_only", "ON")
        .map_err(open_err)?;
    Ok(conn)
}

/// `path` with `suffix` appended to its file name.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(suffix);
    PathBuf::from(name)
}

/// `db backup`: copies the database at `database` to `to` while others may write to it.
pub fn backup_database(database: &Path, to: &Path) -> Result<BackupReport, CareError> {
    let conn = open_existing(database)?;
    backup_from(&conn, database, to)
}

/// Copies what `src` (the database at `src_path`) holds to `to`, through `to.tmp`.
pub(super) fn backup_from(
    src: &Connection,
    src_path: &Path,
    to: &Path,
) -> Result<BackupReport, CareError> {
    if fs::symlink_metadata(to).is_ok() {
        return Err(CareError::Exists {
            path: to.to_path_buf(),
        });
    }
    let tmp = with_suffix(to, ".tmp");
    // Private like the database: owner read/write, group read only if the database has it.
    let group = fs::metadata(src_path).map_or(0, |m| m.permissions().mode() & 0o040);
    let created = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600 | group)
        .open(&tmp);
    match created {
        Ok(file) => drop(file),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            return Err(CareError::Exists { path: tmp });
        }
        Err(source) => return Err(CareError::Create { path: tmp, source }),
    }
    let steps = match copy_into(src, &tmp) {
        Ok(steps) => steps,
        Err(source) => {
            let _ = fs::remove_file(&tmp);
            let _ = fs::remove_file(with_suffix(&tmp, "-journal"));
            return Err(CareError::Copy { path: tmp, source });
        }
    };
    let check = check_database(&tmp)?;
    if !check.ok {
        return Err(CareError::Damaged {
            path: tmp,
            problems: check.problems.join("; "),
        });
    }
    let finish = |source| CareError::Finish {
        path: to.to_path_buf(),
        source,
    };
    fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(finish)?;
    fs::rename(&tmp, to).map_err(finish)?;
    if let Some(dir) = to.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(finish)?;
    }
    Ok(BackupReport {
        path: to.to_path_buf(),
        bytes: check.bytes,
        schema_version: check.schema_version.unwrap_or(0),
        pages: check.pages.unwrap_or(0),
        page_size: check.page_size.unwrap_or(0),
        steps,
    })
}

/// The backup proper: one snapshot of `src`, copied in steps into the empty file `tmp`, which
/// ends as a self-contained rollback-journal database (no `-wal` beside it).
fn copy_into(src: &Connection, tmp: &Path) -> Result<u64, rusqlite::Error> {
    let mut dst = Connection::open_with_flags(
        tmp,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    // The snapshot: a read transaction that lasts across the steps.
    src.execute_batch("BEGIN")?;
    let copied = src
        .query_row("SELECT COUNT(*) FROM sqlite_schema", [], |_| Ok(()))
        .and_then(|()| steps(src, &mut dst));
    let ended = src.execute_batch("COMMIT");
    let steps = copied?;
    ended?;
    dst.pragma_update(None, "journal_mode", "DELETE")?;
    dst.close().map_err(|(_, e)| e)?;
    Ok(steps)
}

fn steps(src: &Connection, dst: &mut Connection) -> Result<u64, rusqlite::Error> {
    let backup = Backup::new(src, dst)?;
    let mut steps = 0u64;
    let mut busy = Duration::ZERO;
    let mut remaining = i32::MAX;
    loop {
        match backup.step(PAGES_PER_STEP)? {
            StepResult::Done => return Ok(steps + 1),
            StepResult::More => {
                steps += 1;
                // More left than before: the copy started over, which the snapshot rules out;
                // never loop on it.
                let now = backup.progress().remaining;
                if now > remaining {
                    return Err(rusqlite::Error::SqliteFailure(
                        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ABORT),
                        Some("the database changed under the copy".into()),
                    ));
                }
                remaining = now;
            }
            // Only the backup file can be locked (by someone else opening it): wait a little.
            _ => {
                busy += STEP_PAUSE;
                if busy > BUSY_LIMIT {
                    return Err(rusqlite::Error::SqliteFailure(
                        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                        Some("the backup file stayed locked".into()),
                    ));
                }
            }
        }
        std::thread::sleep(STEP_PAUSE);
    }
}

/// `db check`: `PRAGMA integrity_check` and `PRAGMA foreign_key_check` on the database at
/// `path` as it is (nothing migrated or written), with a few figures about it.
pub fn check_database(path: &Path) -> Result<CheckReport, CareError> {
    let conn = open_existing(path)?;
    let mut problems = Vec::new();
    let one = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0));
    let schema_version = match one("PRAGMA user_version") {
        Ok(v) => Some(v),
        Err(e) => {
            // Not a database at all, or its first page is damaged: nothing more to ask.
            problems.push(e.to_string());
            None
        }
    };
    if schema_version.is_some() {
        problems.extend(integrity_problems(&conn));
    }
    let mut counts = BTreeMap::new();
    if schema_version.is_some() {
        for (name, sql) in COUNTS {
            if let Ok(n) = one(sql) {
                counts.insert((*name).to_string(), n);
            }
        }
    }
    Ok(CheckReport {
        path: path.to_path_buf(),
        ok: problems.is_empty(),
        problems,
        schema_version,
        supported_version: migrations::supported_version(),
        bytes: fs::metadata(path).map_or(0, |m| m.len()),
        page_size: one("PRAGMA page_size").ok(),
        pages: one("PRAGMA page_count").ok(),
        free_pages: one("PRAGMA freelist_count").ok(),
        journal_mode: conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).ok(),
        counts,
    })
}

/// What `db check` counts; a table an older schema lacks is left out.
const COUNTS: &[(&str, &str)] = &[
    ("tickets", "SELECT COUNT(*) FROM tickets"),
    (
        "tickets_not_closed",
        "SELECT COUNT(*) FROM tickets WHERE state != 'closed'",
    ),
    ("messages", "SELECT COUNT(*) FROM messages"),
    (
        "quarantine_held",
        "SELECT COUNT(*) FROM messages WHERE verdict = 'quarantined' AND released_at IS NULL",
    ),
    ("raw_messages", "SELECT COUNT(*) FROM raw_messages"),
    ("articles", "SELECT COUNT(*) FROM articles"),
    (
        "outbox_pending",
        "SELECT COUNT(*) FROM outbox WHERE state = 'pending'",
    ),
    (
        "outbox_failed",
        "SELECT COUNT(*) FROM outbox WHERE state = 'failed'",
    ),
    (
        "outbox_sent",
        "SELECT COUNT(*) FROM outbox WHERE state = 'sent'",
    ),
    ("contracts", "SELECT COUNT(*) FROM contracts"),
    (
        "license_applications",
        "SELECT COUNT(*) FROM license_applications",
    ),
];

/// Every finding of SQLite's integrity and foreign-key checks, or the error that stopped them.
fn integrity_problems(conn: &Connection) -> Vec<String> {
    let mut problems = Vec::new();
    let integrity = conn
        .prepare("PRAGMA integrity_check(100)")
        .and_then(|mut s| {
            s.query_map([], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()
        });
    match integrity {
        // A finding may span lines, the first under a `*** in database main ***` heading.
        Ok(rows) => problems.extend(
            rows.iter()
                .flat_map(|r| r.lines())
                .map(str::trim)
                .filter(|l| !l.is_empty() && *l != "ok" && !l.starts_with("*** in database"))
                .map(str::to_owned),
        ),
        Err(e) => problems.push(format!("integrity check stopped: {e}")),
    }
    let foreign = conn.prepare("PRAGMA foreign_key_check").and_then(|mut s| {
        s.query_map([], |r| {
            Ok(format!(
                "{} row {}: no row in {} it refers to (foreign key {})",
                r.get::<_, String>(0)?,
                r.get::<_, Option<i64>>(1)?
                    .map_or_else(|| "?".to_string(), |n| n.to_string()),
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?
            ))
        })?
        .collect::<Result<Vec<_>, _>>()
    });
    match foreign {
        Ok(rows) => problems.extend(rows),
        Err(e) => problems.push(format!("foreign key check stopped: {e}")),
    }
    problems
}

/// Before a migration changes the schema of an existing database (not a new, empty one):
/// a backup beside it, `<database>.before-v<N>.<UTC time>.sqlite3`. When it cannot be made,
/// the migration does not run.
pub(super) fn before_migration(
    conn: &Connection,
    path: &Path,
) -> Result<Option<PathBuf>, StoreError> {
    let found = migrations::current_version(conn)?;
    let target = migrations::supported_version();
    if found <= 0 || found >= target {
        return Ok(None);
    }
    let stamp = crate::clock::system_now().format("%Y%m%dT%H%M%SZ");
    let to = with_suffix(path, &format!(".before-v{target}.{stamp}.sqlite3"));
    let report = backup_from(conn, path, &to).map_err(|source| StoreError::PreMigrationBackup {
        path: to.clone(),
        found,
        target,
        source: Box::new(source),
    })?;
    tracing::warn!(
        backup = %to.display(),
        bytes = report.bytes,
        from = found,
        to = target,
        "Backed up the database before migrating its schema; remove the backup once this version runs well."
    );
    Ok(Some(to))
}

#[cfg(test)]
#[path = "backup_tests.rs"]
mod tests;
