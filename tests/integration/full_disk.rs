//! Issue 12, item 3: the store on a small filesystem (a tmpfs of 2 MiB) that fills mid-batch.
//! No message is acknowledged without its commit, the failure is logged once, intake pauses,
//! and it resumes by itself when space returns (the tmpfs is remounted larger); nothing is lost
//! or duplicated. And a store whose filesystem turned read-only: a clear error, nothing
//! acknowledged, everything taken in once it is writable again. (A store locked by another
//! writer: `daemon_loop.rs` and `systemd.rs`.)

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::daemon::Daemon;
use crate::util::Desk;
use crate::wait;

/// A tmpfs mounted at a directory, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(at).expect("mount point");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "cannot mount a tmpfs at {} (the test needs root, as CI has)",
            at.display()
        );
        Tmpfs(at.to_path_buf())
    }

    fn resize(&self, size: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .expect("run mount");
        assert!(status.success(), "cannot resize the tmpfs");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// A mail of about 60 KB from customer `i` (its raw bytes are kept in the store).
fn mail(i: usize) -> Vec<u8> {
    let mut body = String::new();
    while body.len() < 60_000 {
        body.push_str("同期ログ: サーバー間の同期が停止しました。再試行しています。\r\n");
    }
    format!(
        "From: c{i}@example.jp\r\nTo: support@example.co.jp\r\nSubject: log {i}\r\n\
         Message-ID: <disk{i}@example.jp>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{body}"
    )
    .into_bytes()
}

fn files_in(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| d.count())
}

fn messages_in_store(db: &Path) -> Option<i64> {
    let store = madoguchi::store::Store::open(db).ok()?;
    store.count("SELECT COUNT(*) FROM messages").ok()
}

#[test]
fn a_full_disk_pauses_intake_without_losing_or_acknowledging_anything_and_it_resumes() {
    const N: usize = 60;
    let desk = Desk::with_config(
        "[desk]\naddress = \"support@example.co.jp\"\n\n\
         [storage]\ndatabase = \"store/db.sqlite3\"\nfiles = \"store/files\"\n\n\
         [intake]\nkind = \"maildir\"\nmaildir = \"inbox\"\n\n\
         [outbound]\nkind = \"file\"\ndir = \"outbox\"\n\n\
         [reminders]\nrenewal_days = []\nlapsed = false\nrecontinuation_days = 0\n\
         digest = false\n\n[sla]\nfirst_response = 0\nnext_response = 0\n",
    );
    let disk = Tmpfs::mount(&desk.dir().join("store"), "2m");
    let inbox = desk.dir().join("inbox");
    for sub in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(inbox.join(sub)).expect("maildir");
    }
    let log = desk.dir().join("daemon.log");
    let mut daemon = Daemon::start(desk.config(), log.clone());
    for i in 0..N {
        std::fs::write(inbox.join("new").join(format!("m{i}.eml")), mail(i)).expect("deliver");
    }
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
    wait::until(Duration::from_secs(60), "the store to fill", || {
        log_text().contains("Pass failed")
    });
    // While full: every acknowledged message (moved to cur/) is in the store, the rest wait.
    let acknowledged = files_in(&inbox.join("cur"));
    let stored = messages_in_store(&desk.dir().join("store/db.sqlite3")).unwrap_or(-1);
    assert_eq!(acknowledged as i64, stored, "acknowledged without a commit");
    assert!(acknowledged < N, "the store never filled");
    // The daemon keeps retrying (every 5 s) for a while: the failure is logged once. (A period
    // of time passing is what this checks, so it sleeps.)
    std::thread::sleep(Duration::from_secs(12));
    assert_eq!(
        log_text().matches("Pass failed; will retry").count(),
        1,
        "{}",
        log_text()
    );
    // Space returns: intake resumes by itself.
    disk.resize("64m");
    wait::until(Duration::from_secs(60), "every message taken in", || {
        files_in(&inbox.join("new")) == 0 && files_in(&inbox.join("cur")) == N
    });
    daemon.signal("-TERM");
    assert!(daemon.wait(Duration::from_secs(30)).success());
    let store = madoguchi::store::Store::open(&desk.dir().join("store/db.sqlite3")).expect("db");
    assert_eq!(
        store.count("SELECT COUNT(*) FROM messages").expect("count"),
        N as i64
    );
    assert_eq!(
        store.count("SELECT COUNT(*) FROM tickets").expect("count"),
        N as i64
    );
    assert_eq!(
        store
            .count("SELECT COUNT(DISTINCT message_id) FROM messages")
            .expect("count"),
        N as i64
    );
    assert!(
        log_text().contains("the failure has cleared"),
        "{}",
        log_text()
    );
    drop(store);
    drop(disk);
}

impl Tmpfs {
    fn remount(&self, mode: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,{mode}")])
            .arg(&self.0)
            .status()
            .expect("run mount");
        assert!(status.success(), "cannot remount the tmpfs {mode}");
    }
}

#[test]
fn a_read_only_store_refuses_the_pass_with_a_clear_error_and_acknowledges_nothing() {
    let desk = Desk::with_config(
        "[desk]\naddress = \"support@example.co.jp\"\n\n\
         [storage]\ndatabase = \"store/db.sqlite3\"\nfiles = \"store/files\"\n\n\
         [intake]\nkind = \"maildir\"\nmaildir = \"inbox\"\n\n\
         [outbound]\nkind = \"file\"\ndir = \"outbox\"\n",
    );
    let disk = Tmpfs::mount(&desk.dir().join("store"), "16m");
    let inbox = desk.dir().join("inbox");
    for sub in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(inbox.join(sub)).expect("maildir");
    }
    std::fs::write(inbox.join("new").join("m0.eml"), mail(0)).expect("deliver");
    desk.run(&["run", "--once", "--now", "2026-11-25T10:00"])
        .assert_success();
    assert_eq!(files_in(&inbox.join("cur")), 1);
    // The filesystem under the store turns read-only (an admin's mistake, a failing disk that
    // the kernel remounted): the run fails, says why, and nothing is acknowledged.
    disk.remount("ro");
    for i in 1..4 {
        std::fs::write(inbox.join("new").join(format!("m{i}.eml")), mail(i)).expect("deliver");
    }
    let run = desk.run(&["run", "--once", "--now", "2026-11-25T10:05"]);
    run.assert_failure();
    // "cannot open the lock file …/db.sqlite3.lock: Read-only file system (os error 30)"
    let said = run.all_output();
    assert!(said.contains("Read-only file system"), "{said}");
    assert_eq!(
        files_in(&inbox.join("new")),
        3,
        "acknowledged without a commit"
    );
    assert_eq!(files_in(&inbox.join("cur")), 1);
    // Writable again: everything is taken in once.
    disk.remount("rw");
    desk.run(&["run", "--once", "--now", "2026-11-25T10:10"])
        .assert_success();
    assert_eq!(files_in(&inbox.join("new")), 0);
    let store = madoguchi::store::Store::open(&desk.dir().join("store/db.sqlite3")).expect("db");
    assert_eq!(
        store.count("SELECT COUNT(*) FROM messages").expect("count"),
        4
    );
    assert_eq!(
        store.count("SELECT COUNT(*) FROM tickets").expect("count"),
        4
    );
    drop(store);
    drop(disk);
}
