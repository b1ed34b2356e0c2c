use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::*;
use crate::store::Store;

/// Polls `done` until it holds (a deadline of 30 s, then the test fails).
fn wait_until(done: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "timed out");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn version_of(path: &Path) -> i64 {
    Connection::open(path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap()
}

/// A store with two tables a writer keeps equal, and `megabytes` of filler so a backup takes
/// many steps.
fn busy_database(path: &Path, megabytes: usize) {
    drop(Store::open(path).unwrap());
    let conn = Connection::open(path).unwrap();
    conn.execute_batch(
        "CREATE TABLE pair_a (n INTEGER); CREATE TABLE pair_b (n INTEGER);
         CREATE TABLE filler (b BLOB);",
    )
    .unwrap();
    let tx = conn.unchecked_transaction().unwrap();
    for _ in 0..megabytes {
        tx.execute("INSERT INTO filler VALUES (zeroblob(1048576))", [])
            .unwrap();
    }
    tx.commit().unwrap();
}

#[test]
fn a_backup_while_a_writer_commits_is_one_consistent_snapshot_taken_without_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("live.sqlite3");
    busy_database(&db, 24);
    // World-readable by mistake: the copy is not (group read is kept, world never).
    fs::set_permissions(&db, fs::Permissions::from_mode(0o604)).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let commits = Arc::new(AtomicU64::new(0));
    let writer = {
        let (db, stop, commits) = (db.clone(), stop.clone(), commits.clone());
        std::thread::spawn(move || {
            let conn = Connection::open(&db).unwrap();
            conn.busy_timeout(Duration::from_secs(10)).unwrap();
            conn.pragma_update(None, "synchronous", "NORMAL").unwrap();
            let mut n = 0i64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                // Both rows or neither: a torn copy would show unequal counts.
                conn.execute_batch(&format!(
                    "BEGIN IMMEDIATE; INSERT INTO pair_a VALUES ({n});
                     INSERT INTO pair_b VALUES ({n}); COMMIT;"
                ))
                .unwrap();
                commits.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    wait_until(|| commits.load(Ordering::Relaxed) > 50);
    let before = commits.load(Ordering::Relaxed);
    let to = dir.path().join("copy.sqlite3");
    let report = backup_database(&db, &to).unwrap();
    let after = commits.load(Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();

    assert!(
        after > before,
        "the writer was held up by the backup ({before} → {after})"
    );
    let pages = report.pages;
    assert!(pages > 24 * 256, "{report:?}");
    assert_eq!(
        report.steps as i64,
        (pages + i64::from(PAGES_PER_STEP) - 1) / i64::from(PAGES_PER_STEP),
        "the copy restarted: {report:?}"
    );
    let copy = Connection::open(&to).unwrap();
    let count = |t: &str| -> i64 {
        copy.query_row(&format!("SELECT COUNT(*) FROM {t}"), [], |r| r.get(0))
            .unwrap()
    };
    let (a, b) = (count("pair_a"), count("pair_b"));
    assert_eq!(a, b, "a torn copy");
    assert!(
        a as u64 >= before && a as u64 <= after,
        "{before} ≤ {a} ≤ {after}"
    );
    assert_eq!(count("filler"), 24);
    let mode: String = copy
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "delete", "the backup is one self-contained file");
    assert_eq!(report.schema_version, migrations::supported_version());
    assert_eq!(report.bytes, fs::metadata(&to).unwrap().len());
    assert_eq!(
        fs::metadata(&to).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(!with_suffix(&to, ".tmp").exists());
    assert!(check_database(&to).unwrap().ok);
}

#[test]
fn a_backup_never_overwrites_a_file_nor_a_leftover_temporary_one() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("d.sqlite3");
    drop(Store::open(&db).unwrap());
    let to = dir.path().join("b.sqlite3");
    fs::write(&to, b"precious").unwrap();
    assert!(matches!(
        backup_database(&db, &to),
        Err(CareError::Exists { path }) if path == to
    ));
    assert_eq!(fs::read(&to).unwrap(), b"precious");
    let other = dir.path().join("c.sqlite3");
    fs::write(with_suffix(&other, ".tmp"), b"half").unwrap();
    assert!(matches!(
        backup_database(&db, &other),
        Err(CareError::Exists { .. })
    ));
    assert!(!other.exists());
    assert!(matches!(
        backup_database(&dir.path().join("none.sqlite3"), &dir.path().join("x")),
        Err(CareError::Missing { .. })
    ));
    assert!(!dir.path().join("none.sqlite3").exists(), "nothing created");
}

#[test]
fn a_file_that_is_no_database_fails_the_check_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junk.sqlite3");
    fs::write(&path, vec![0x5a; 8192]).unwrap();
    let report = check_database(&path).unwrap();
    assert!(!report.ok);
    assert!(
        report.problems.iter().any(|p| p.contains("not a database")),
        "{report:?}"
    );
}

#[test]
fn a_good_database_passes_the_check_with_its_figures() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("good.sqlite3");
    drop(Store::open(&path).unwrap());
    let report = check_database(&path).unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.schema_version, Some(migrations::supported_version()));
    assert_eq!(report.counts.get("tickets"), Some(&0));
    assert_eq!(report.counts.get("quarantine_held"), Some(&0));
    assert_eq!(report.journal_mode.as_deref(), Some("wal"));
}

#[test]
fn opening_an_older_database_backs_it_up_first_and_a_new_one_is_not_backed_up() {
    let dir = tempfile::tempdir().unwrap();
    let fresh = dir.path().join("fresh.sqlite3");
    drop(Store::open(&fresh).unwrap());
    let old = dir.path().join("old.sqlite3");
    let older = migrations::supported_version() - 1;
    drop(Store::create_at_version(&old, older).unwrap());
    assert_eq!(version_of(&old), older);
    drop(Store::open(&old).unwrap());
    assert_eq!(version_of(&old), migrations::supported_version());
    let mut names: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("before-v"))
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    let name = names.pop().unwrap();
    let prefix = format!("old.sqlite3.before-v{}.", migrations::supported_version());
    assert!(
        name.starts_with(&prefix) && name.ends_with("Z.sqlite3"),
        "{name}"
    );
    let backup = dir.path().join(&name);
    assert_eq!(
        version_of(&backup),
        older,
        "the backup holds the old schema"
    );
    assert!(check_database(&backup).unwrap().ok);
    // Opening again migrates nothing and backs up nothing.
    drop(Store::open(&old).unwrap());
    let count = fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            name.to_string_lossy().contains("before-v")
        })
        .count();
    assert_eq!(count, 1);
}

#[test]
fn when_the_backup_before_a_migration_fails_the_schema_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    // A name the database itself can have, but not its backup (over NAME_MAX, 255 bytes).
    let db = dir.path().join(format!("{}.sqlite3", "d".repeat(225)));
    let older = migrations::supported_version() - 1;
    drop(Store::create_at_version(&db, older).unwrap());
    match Store::open(&db) {
        Err(StoreError::PreMigrationBackup { found, target, .. }) => {
            assert_eq!((found, target), (older, migrations::supported_version()));
        }
        Err(other) => panic!("unexpected error: {other}"),
        Ok(_) => panic!("migrated without a backup"),
    }
    assert_eq!(version_of(&db), older, "the migration ran without a backup");
}
