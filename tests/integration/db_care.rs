//! Database care with the real binary: `db backup` while the daemon works through a steady
//! stream of mail gives a copy that is consistent (every message with its ticket, raw bytes
//! and reply; a count between the live ones before and after); `db check` passes a good
//! database and fails a copy with a damaged page, listing the problem; a database an older
//! madoguchi left is backed up beside itself before the binary migrates it.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use madoguchi::store::Store;

use crate::daemon::Daemon;
use crate::util::{Desk, arg, count};
use crate::wait;

const CONFIG: &str = "[desk]\naddress = \"support@example.co.jp\"\n\n\
     [storage]\ndatabase = \"var/db.sqlite3\"\nfiles = \"var/files\"\n\n\
     [intake]\nkind = \"maildir\"\nmaildir = \"var/inbox\"\n\n\
     [outbound]\nkind = \"file\"\ndir = \"var/outbox\"\n";

/// A customer's question with a body of about `kib` KiB (the raw bytes go into the database).
fn question(i: usize, kib: usize) -> Vec<u8> {
    let line = "分散サーバーの設定について質問です。ログを添えます。\r\n";
    let body = line.repeat(kib * 1024 / line.len() + 1);
    format!(
        "From: Customer {i} <customer{i}@example.jp>\r\nTo: support@example.co.jp\r\n\
         Subject: question {i}\r\nMessage-ID: <bq{i}@example.jp>\r\n\
         Date: Wed, 25 Nov 2026 10:00:00 +0900\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=UTF-8\r\n\r\n{body}"
    )
    .into_bytes()
}

/// Delivers as an MDA does: written in `tmp/`, renamed into `new/`.
fn deliver(inbox: &Path, i: usize, raw: &[u8]) {
    let tmp = inbox.join("tmp").join(format!("{i}.feeder"));
    fs::write(&tmp, raw).expect("write mail");
    fs::rename(&tmp, inbox.join("new").join(format!("{i}.feeder"))).expect("deliver");
}

fn live(db: &Path, sql: &str) -> i64 {
    count(&Store::open(db).expect("open the live database"), sql)
}

#[test]
fn a_backup_taken_while_the_daemon_works_is_consistent_and_checked() {
    let desk = Desk::with_config(CONFIG);
    let inbox = desk.dir().join("var/inbox");
    for sub in ["new", "cur", "tmp"] {
        fs::create_dir_all(inbox.join(sub)).expect("maildir");
    }
    let db = desk.dir().join("var/db.sqlite3");
    let mut daemon = Daemon::start(desk.config(), desk.dir().join("daemon.log"));
    // The daemon made the database (and its schema) before it says it runs.
    wait::until(Duration::from_secs(30), "the daemon running", || {
        daemon.log_text().contains("madoguchi: running")
    });
    // A steady stream of mail for as long as the test wants.
    let stop = Arc::new(AtomicBool::new(false));
    let delivered = Arc::new(AtomicUsize::new(0));
    let feeder = {
        let (inbox, stop, delivered) = (inbox.clone(), stop.clone(), delivered.clone());
        std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                deliver(&inbox, i, &question(i, 32));
                delivered.store(i, Ordering::Relaxed);
                // A pace, not a wait for anything: mail keeps coming during the backup.
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    wait::until(Duration::from_secs(60), "100 messages ticketed", || {
        live(&db, "SELECT COUNT(*) FROM tickets") >= 100
    });
    let before = live(&db, "SELECT COUNT(*) FROM messages");
    let copy = desk.dir().join("backup.sqlite3");
    let run = desk.run(&["db", "backup", arg(&copy)]);
    run.assert_success()
        .assert_stdout_has(&["schema version", "integrity check"]);
    let after = live(&db, "SELECT COUNT(*) FROM messages");
    stop.store(true, Ordering::Relaxed);
    feeder.join().expect("feeder");
    let sent = delivered.load(Ordering::Relaxed) as i64;
    // The daemon went on working: everything delivered is ticketed.
    wait::until(Duration::from_secs(60), "every message ticketed", || {
        live(&db, "SELECT COUNT(*) FROM messages") == sent
    });
    daemon.signal("-TERM");
    assert!(
        daemon.wait(Duration::from_secs(30)).success(),
        "{}",
        daemon.log_text()
    );
    assert!(
        !copy.with_extension("sqlite3.tmp").exists(),
        "the temporary copy is left behind"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(&copy).expect("copy").permissions().mode() & 0o777;
    assert_eq!(mode & 0o137, 0, "the copy is private: {mode:o}");

    let check = desk.run(&["--json", "db", "check", arg(&copy)]);
    check.assert_success();
    let report = check.json();
    assert_eq!(report["ok"], true, "{report:#}");
    assert_eq!(report["journal_mode"], "delete", "{report:#}");
    // Refuses to overwrite the backup.
    desk.run(&["db", "backup", arg(&copy)])
        .assert_code(2)
        .assert_stderr_has(&["already exists"]);

    let copied = Store::open(&copy).expect("the copy opens");
    let n = count(&copied, "SELECT COUNT(*) FROM messages");
    assert!(
        before <= n && n <= after,
        "the copy has {n} messages; the live database had {before} before the backup and {after} after"
    );
    assert!(n >= 100, "{n}");
    let consistent = [
        ("tickets", "SELECT COUNT(*) FROM tickets"),
        (
            "messages ticketed",
            "SELECT COUNT(*) FROM messages m JOIN tickets t ON t.number = m.ticket",
        ),
        ("raw messages", "SELECT COUNT(*) FROM raw_messages"),
        (
            "customer articles",
            "SELECT COUNT(*) FROM articles WHERE direction = 'in'",
        ),
        (
            "replies queued",
            "SELECT COUNT(DISTINCT ticket) FROM outbox",
        ),
    ];
    for (what, sql) in consistent {
        assert_eq!(count(&copied, sql), n, "{what} in the copy");
    }
    println!(
        "backup of {} messages ({} live before, {after} after); {sent} delivered",
        n, before
    );
}

/// A desk with a few tickets in its database.
fn desk_with_mail() -> Desk {
    let desk = Desk::with_config(CONFIG);
    let inbox = desk.dir().join("var/inbox");
    for sub in ["new", "cur", "tmp"] {
        fs::create_dir_all(inbox.join(sub)).expect("maildir");
    }
    for i in 0..20 {
        deliver(&inbox, i, &question(i, 8));
    }
    desk.run(&["run", "--once"]).assert_success();
    desk
}

#[test]
fn db_check_passes_a_good_database_and_lists_the_damage_of_a_flipped_page() {
    let desk = desk_with_mail();
    let run = desk.run(&["db", "check"]);
    run.assert_success()
        .assert_stdout_has(&[": OK", "schema version", "tickets 20"]);
    let doc = desk.json(&["db", "check"]);
    assert_eq!(doc["ok"], true);
    assert_eq!(doc["problems"].as_array().map(Vec::len), Some(0));
    assert_eq!(doc["counts"]["messages"], 20);

    let copy = desk.dir().join("copy.sqlite3");
    desk.run(&["db", "backup", arg(&copy)]).assert_success();
    let damaged = desk.dir().join("damaged.sqlite3");
    fs::copy(&copy, &damaged).expect("copy");
    flip_page(&damaged, 4096);

    let run = desk.run(&["db", "check", arg(&damaged)]);
    run.assert_code(1).assert_stdout_has(&["problem(s)"]);
    let run = desk.run(&["--json", "db", "check", arg(&damaged)]);
    run.assert_code(1);
    let doc = run.json();
    assert_eq!(doc["ok"], false);
    let problems = doc["problems"].as_array().expect("problems");
    assert!(!problems.is_empty(), "{doc:#}");
    println!("problems found: {problems:?}");
    // The undamaged copy still passes: it was the flip, not the copy.
    desk.run(&["db", "check", arg(&copy)]).assert_success();
    // A file that is not there is an error, not a check result.
    desk.run(&["db", "check", arg(&desk.dir().join("none.sqlite3"))])
        .assert_code(2)
        .assert_stderr_has(&["no database at"]);
}

/// Inverts the first 64 bytes of a page in the middle of the file (a b-tree page's header or
/// an overflow page's link): SQLite's check must see it.
fn flip_page(path: &Path, page_size: u64) {
    use std::io::{Read, Seek, SeekFrom, Write};
    let pages = fs::metadata(path).expect("size").len() / page_size;
    assert!(pages > 4, "too small to damage: {pages} pages");
    let mut file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .expect("open");
    let at = (pages / 2) * page_size;
    let mut bytes = [0u8; 64];
    file.seek(SeekFrom::Start(at)).expect("seek");
    file.read_exact(&mut bytes).expect("read");
    for b in &mut bytes {
        *b ^= 0xff;
    }
    file.seek(SeekFrom::Start(at)).expect("seek");
    file.write_all(&bytes).expect("write");
}

fn backups_beside(db: &Path) -> Vec<PathBuf> {
    let name = db.file_name().expect("name").to_string_lossy().into_owned();
    let mut found: Vec<PathBuf> = fs::read_dir(db.parent().expect("dir"))
        .expect("list")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(&format!("{name}.before-v")))
        })
        .collect();
    found.sort();
    found
}

#[test]
fn a_database_an_older_madoguchi_left_is_backed_up_before_the_binary_migrates_it() {
    let desk = Desk::with_config(CONFIG);
    let db = desk.dir().join("var/db.sqlite3");
    fs::create_dir_all(db.parent().expect("dir")).expect("var");
    let newest = Store::open_in_memory()
        .and_then(|s| s.schema_version())
        .expect("schema version");
    let older = newest - 1;
    drop(Store::create_at_version(&db, older).expect("an older database"));
    // With data in it: the contracts table has not changed since version 1.
    desk.import_demo();
    let backups = backups_beside(&db);
    assert_eq!(backups.len(), 1, "{backups:?}");
    let backup = &backups[0];
    let name = backup
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    assert!(
        name.starts_with(&format!("db.sqlite3.before-v{newest}.")) && name.ends_with("Z.sqlite3"),
        "{name}"
    );
    let old = desk.json(&["db", "check", arg(backup)]);
    assert_eq!(old["schema_version"], older, "{old:#}");
    assert_eq!(old["ok"], true);
    assert_eq!(
        old["counts"]["contracts"], 0,
        "the backup is from before the import"
    );
    let now = desk.json(&["db", "check"]);
    assert_eq!(now["schema_version"], newest);
    assert!(now["counts"]["contracts"].as_i64() > Some(0), "{now:#}");
    // Nothing more to migrate: no more backups.
    desk.run(&["tickets", "list"]).assert_success();
    assert_eq!(backups_beside(&db).len(), 1);

    // A fresh database is created, not migrated from anything: no backup.
    let fresh = Desk::with_config(CONFIG);
    fresh.run(&["tickets", "list"]).assert_success();
    assert!(backups_beside(&fresh.dir().join("var/db.sqlite3")).is_empty());
}

#[test]
fn the_binary_says_so_when_the_backup_before_a_migration_fails_and_leaves_the_schema() {
    // A database name the backup's own name cannot extend (over NAME_MAX, 255 bytes).
    let long = format!("{}.sqlite3", "d".repeat(225));
    let desk = Desk::with_config(&CONFIG.replace("var/db.sqlite3", &format!("var/{long}")));
    let db = desk.dir().join("var").join(&long);
    fs::create_dir_all(db.parent().expect("dir")).expect("var");
    let newest = Store::open_in_memory()
        .and_then(|s| s.schema_version())
        .expect("schema version");
    drop(Store::create_at_version(&db, newest - 1).expect("an older database"));
    desk.run(&["tickets", "list"])
        .assert_code(2)
        .assert_stderr_has(&["cannot back up the database", "the schema was not changed"]);
    let doc = desk.json(&["db", "check", arg(&db)]);
    assert_eq!(doc["schema_version"], newest - 1, "{doc:#}");
}
