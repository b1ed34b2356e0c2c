//! Floods (issue 12, item 4): one sender writing thousands of mails, through the desk on a
//! Maildir with a fixed clock. Nothing is dropped, almost nothing goes out.

use crate::desk::{TestDesk, simple_mail};
use crate::util::jst;

const STAFF: &str = "support-team@example.co.jp";

/// 2,000 mails in ten minutes from one sender: at most 5 automatic replies (the per-sender
/// limit), tickets only up to `flood_per_hour`, one flood notice, and every mail on a ticket.
#[test]
fn two_thousand_mails_in_ten_minutes_from_one_sender() {
    const N: usize = 2_000;
    let mut t = TestDesk::new();
    let flooder = "robot@flood.example.jp";
    for i in 0..N {
        let at = jst(2026, 11, 25, 10, 0) + chrono::Duration::milliseconds((i as i64) * 300);
        t.deliver(
            &simple_mail(
                flooder,
                &format!("alert {i}"),
                &format!("f{i}@flood.example.jp"),
                "",
            ),
            at,
        );
    }
    let started = std::time::Instant::now();
    let s = t.pass(jst(2026, 11, 25, 10, 10));
    let took = started.elapsed();
    assert_eq!(s.messages, N, "{s:?}");
    let sent = t.sent();
    let replies = sent.iter().filter(|(to, _, _)| to == flooder).count();
    assert!(replies <= 5, "{replies} automatic replies");
    let tickets = t.count("SELECT COUNT(*) FROM tickets");
    assert_eq!(tickets, 10, "flood_per_hour = 10 by default");
    let flood_notices = sent
        .iter()
        .filter(|(to, m, _)| to == STAFF && m.subject.contains("大量受信"))
        .count();
    assert_eq!(flood_notices, 1);
    let notices = sent.iter().filter(|(to, _, _)| to == STAFF).count();
    assert_eq!(notices, 11, "a notice per ticket and one flood notice");
    // Nothing lost: every mail is an article of a ticket.
    assert_eq!(
        t.count("SELECT COUNT(*) FROM messages WHERE verdict = 'article' AND ticket IS NOT NULL"),
        N as i64
    );
    assert_eq!(
        t.count("SELECT COUNT(*) FROM articles WHERE direction = 'in'"),
        N as i64
    );
    eprintln!("2,000 flood mails decided in {took:?}");
    // Another sender is not affected by the flood.
    t.deliver(
        &simple_mail(
            "yamada@alpha.example.co.jp",
            "質問",
            "y1@alpha.example.co.jp",
            "",
        ),
        jst(2026, 11, 25, 10, 11),
    );
    t.pass(jst(2026, 11, 25, 10, 12));
    assert_eq!(t.count("SELECT COUNT(*) FROM tickets"), 11);
    // An hour later the sender is a customer like any other again.
    t.deliver(
        &simple_mail(flooder, "next", "f-next@flood.example.jp", ""),
        jst(2026, 11, 25, 11, 30),
    );
    t.pass(jst(2026, 11, 25, 11, 31));
    assert_eq!(t.count("SELECT COUNT(*) FROM tickets"), 12);
}

// ───────────────────────── huge mail ─────────────────────────

const DESK: &str = "[desk]\naddress = \"support@example.co.jp\"\n\n\
                    [reminders]\nrenewal_days = []\nlapsed = false\nrecontinuation_days = 0\n\
                    digest = false\n\n[sla]\nfirst_response = 0\nnext_response = 0\n\n\
                    [storage]\ndatabase = \"var/db.sqlite3\"\nfiles = \"var/files\"\n\n\
                    [outbound]\nkind = \"file\"\ndir = \"var/outbox\"\n";

/// A plain message of about `size` bytes from Yamada.
fn mail_of_size(id: &str, size: usize) -> Vec<u8> {
    let mut raw = format!(
        "From: yamada@alpha.example.co.jp\r\nTo: support@example.co.jp\r\nSubject: log {id}\r\n\
         Message-ID: <{id}@alpha.example.co.jp>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    )
    .into_bytes();
    let line = "分散サーバーの同期ログです。同期ログです。\r\n".as_bytes();
    while raw.len() < size {
        raw.extend_from_slice(line);
    }
    raw
}

fn one(desk: &crate::util::Desk, sql: &str) -> String {
    let store = madoguchi::store::Store::open(&desk.dir().join("var/db.sqlite3")).expect("db");
    store
        .select_text(sql, &[])
        .expect("query")
        .first()
        .and_then(|r| r.first().cloned().flatten())
        .unwrap_or_default()
}

/// Over `max_message_size` a Maildir message is never read: quarantined with the reason, its
/// file moved to `.Quarantine`; the small one beside it is ticketed.
#[test]
fn a_maildir_message_over_max_message_size_is_quarantined_unread() {
    let desk = crate::util::Desk::with_config(&format!(
        "{DESK}\n[intake]\nkind = \"maildir\"\nmaildir = \"var/inbox\"\nmax_message_size = \"4KB\"\n"
    ));
    let new = desk.dir().join("var/inbox/new");
    std::fs::create_dir_all(&new).expect("maildir");
    std::fs::write(new.join("big.eml"), mail_of_size("big", 8 * 1024)).expect("big");
    std::fs::write(new.join("small.eml"), mail_of_size("small", 512)).expect("small");
    desk.run(&["run", "--once"]).assert_success();
    assert_eq!(one(&desk, "SELECT COUNT(*) FROM tickets"), "1");
    let reason = one(
        &desk,
        "SELECT reason FROM messages WHERE verdict = 'quarantined'",
    );
    assert!(
        reason.contains("over max_message_size (4096 bytes)"),
        "{reason}"
    );
    assert_eq!(
        one(&desk, "SELECT COUNT(*) FROM raw_messages"),
        "1",
        "the big one not kept"
    );
    let quarantined: Vec<_> = std::fs::read_dir(desk.dir().join("var/inbox/.Quarantine/cur"))
        .expect("quarantine folder")
        .filter_map(|e| e.ok())
        .collect();
    assert_eq!(quarantined.len(), 1);
    // Never read, so there is nothing to run through the desk again: a clear refusal.
    let id = one(
        &desk,
        "SELECT id FROM messages WHERE verdict = 'quarantined'",
    );
    desk.run(&["quarantine", "release", &id])
        .assert_failure()
        .assert_stderr_has(&["never read", "max_message_size"]);
}

/// Over `max_message_size` an IMAP message is checked by RFC822.SIZE and moved to the
/// quarantine folder without being fetched: it stays unread (no \Seen).
#[test]
fn an_imap_message_over_max_message_size_is_moved_to_quarantine_unread() {
    let dovecot = crate::dovecot::Dovecot::shared();
    dovecot.append("INBOX", &mail_of_size("ibig", 8 * 1024));
    dovecot.append("INBOX", &mail_of_size("ismall", 512));
    let desk = crate::util::Desk::with_config(&format!(
        "{DESK}\n{}",
        dovecot.config_toml("max_message_size = \"4KB\"")
    ));
    desk.run(&["run", "--once"]).assert_success();
    assert_eq!(
        (
            dovecot.count("INBOX"),
            dovecot.count("Processed"),
            dovecot.count("Quarantine")
        ),
        (0, 1, 1)
    );
    assert_eq!(one(&desk, "SELECT COUNT(*) FROM tickets"), "1");
    let reason = one(
        &desk,
        "SELECT reason FROM messages WHERE verdict = 'quarantined'",
    );
    assert!(reason.contains("over max_message_size"), "{reason}");
    let folder = dovecot.maildir("Quarantine");
    let names: Vec<String> = ["new", "cur"]
        .iter()
        .filter_map(|sub| std::fs::read_dir(folder.join(sub)).ok())
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    let flags = names[0].split_once(":2,").map_or("", |(_, f)| f);
    assert!(!flags.contains('S'), "read on the server: {names:?}");
}

/// Item 4: a 50 MB message (with `max_message_size` raised above it) is taken in with peak
/// memory under 4× its size. The figure is printed; the bound is the issue's.
#[test]
fn a_50_mb_message_is_taken_in_under_four_times_its_size() {
    let desk = crate::util::Desk::with_config(&format!(
        "{DESK}\n[intake]\nkind = \"maildir\"\nmaildir = \"var/inbox\"\nmax_message_size = \"64MB\"\n"
    ));
    let new = desk.dir().join("var/inbox/new");
    std::fs::create_dir_all(&new).expect("maildir");
    let size = 50 * 1024 * 1024;
    std::fs::write(new.join("huge.eml"), mail_of_size("huge", size)).expect("huge");
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_madoguchi"));
    command.args(["--config", crate::util::arg(desk.config()), "run", "--once"]);
    let (status, peak) = crate::util::peak_rss(command, std::process::Stdio::null());
    assert!(status.success());
    assert_eq!(one(&desk, "SELECT COUNT(*) FROM tickets"), "1");
    eprintln!(
        "peak RSS {} MiB for a {} MiB message ({:.2}×)",
        peak >> 20,
        size >> 20,
        peak as f64 / size as f64
    );
    assert!(peak < 4 * size as u64, "peak {peak} bytes");
}
