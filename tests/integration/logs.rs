//! Where the real binary's log goes, and what never goes in it.
//!
//! - stderr that is not the journal's stream (`JOURNAL_STREAM` names another file): plain lines;
//! - stderr that is (`JOURNAL_STREAM` = its device and inode): structured entries to journald.
//!   tracing-journald always writes to `/run/systemd/journal/socket`, so the binary runs in a
//!   mount namespace of its own (`unshare`) where that path is a socket of the test, and the
//!   test reads the entries in journald's native protocol;
//! - a whole IMAP + SMTP session with logins, at `MADOGUCHI_LOG=trace`: no password, in any
//!   form a login sends it, anywhere in the log.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use base64::Engine;

use crate::daemon::Daemon;
use crate::dovecot::{self, Dovecot};
use crate::smtp_sink::SmtpSink;
use crate::util::{Desk, MINIMAL_CONFIG, arg};
use crate::wait;

/// A customer's question, and a message without a From (quarantined: a warning).
fn deliver(desk: &Desk) {
    let inbox = desk.dir().join("var/inbox");
    for sub in ["new", "cur", "tmp"] {
        fs::create_dir_all(inbox.join(sub)).expect("maildir");
    }
    let question = "From: Customer <customer1@example.jp>\r\nTo: support@example.co.jp\r\n\
                    Subject: question\r\nMessage-ID: <q1@example.jp>\r\n\
                    Date: Wed, 25 Nov 2026 10:00:00 +0900\r\n\r\nhello\r\n";
    fs::write(inbox.join("new/1.test"), question).expect("deliver");
    let anonymous =
        "To: support@example.co.jp\r\nSubject: who\r\nMessage-ID: <q2@example.jp>\r\n\r\n?\r\n";
    fs::write(inbox.join("new/2.test"), anonymous).expect("deliver");
}

/// `JOURNAL_STREAM` naming `file`'s device and inode, as systemd formats it.
fn journal_stream(file: &Path) -> String {
    let meta = fs::metadata(file).expect("stat");
    format!("{}:{}", meta.dev(), meta.ino())
}

/// `madoguchi run --once` with stderr to `log` and `JOURNAL_STREAM` set, through `wrapper`
/// (a command prefix; empty to run it directly).
fn run_once(desk: &Desk, log: &Path, stream: &str, wrapper: &[&str]) -> Output {
    let stderr = fs::File::create(log).expect("log");
    let mut command = Command::new(
        wrapper
            .first()
            .copied()
            .unwrap_or(env!("CARGO_BIN_EXE_madoguchi")),
    );
    if !wrapper.is_empty() {
        command
            .args(&wrapper[1..])
            .arg(env!("CARGO_BIN_EXE_madoguchi"));
    }
    command
        .args(["--config", arg(desk.config()), "run", "--once"])
        .env("JOURNAL_STREAM", stream)
        .env("MADOGUCHI_LOG", "info")
        .env("TZ", "Pacific/Honolulu")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .output()
        .expect("run madoguchi")
}

#[test]
fn stderr_that_is_not_the_journal_gets_plain_lines() {
    let desk = Desk::with_config(MINIMAL_CONFIG);
    deliver(&desk);
    let log = desk.dir().join("stderr.log");
    // The variable is there (inherited, say) but names another file: plain lines.
    let out = run_once(&desk, &log, &journal_stream(desk.config()), &[]);
    let text = fs::read_to_string(&log).expect("log");
    assert!(out.status.success(), "{text}");
    let accepted = text
        .lines()
        .find(|l| l.contains("Accepted request."))
        .unwrap_or_else(|| panic!("no plain line for the new ticket:\n{text}"));
    for part in [" INFO ", "ticket=1", "q1@example.jp", "mail{mail_key="] {
        assert!(accepted.contains(part), "{part} not in {accepted}");
    }
    assert!(
        text.lines()
            .any(|l| l.contains(" WARN ") && l.contains("Quarantined message.")),
        "{text}"
    );
}

/// One journal entry: its fields in order (a field may repeat).
type Entry = Vec<(String, String)>;

/// Fields of a datagram in journald's native protocol: `NAME=value\n`, or `NAME\n`, a 64-bit
/// little-endian length, the value and `\n`.
fn parse_entry(mut data: &[u8]) -> Entry {
    let mut fields = Vec::new();
    while let Some(nl) = data.iter().position(|&b| b == b'\n') {
        let line = &data[..nl];
        if let Some(eq) = line.iter().position(|&b| b == b'=') {
            let name = String::from_utf8_lossy(&line[..eq]).into_owned();
            fields.push((name, String::from_utf8_lossy(&line[eq + 1..]).into_owned()));
            data = &data[nl + 1..];
        } else {
            let name = String::from_utf8_lossy(line).into_owned();
            let len_bytes: [u8; 8] = data[nl + 1..nl + 9].try_into().expect("length");
            let len = u64::from_le_bytes(len_bytes) as usize;
            let value = &data[nl + 9..nl + 9 + len];
            fields.push((name, String::from_utf8_lossy(value).into_owned()));
            data = &data[nl + 9 + len + 1..];
        }
    }
    fields
}

fn field<'a>(entry: &'a Entry, name: &str) -> Option<&'a str> {
    entry
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// The command prefix that gives the binary a mount namespace whose
/// `/run/systemd/journal/socket` is `dir/socket`.
fn journal_namespace(dir: &Path) -> Vec<String> {
    let script = "mount -t tmpfs tmpfs /run && mkdir -p /run/systemd/journal && \
                  mount --bind \"$0\" /run/systemd/journal && exec \"$@\"";
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let mut prefix: Vec<String> = vec!["unshare".into()];
    if !root {
        prefix.extend(["--user".into(), "--map-root-user".into()]);
    }
    prefix.extend([
        "--mount".into(),
        "sh".into(),
        "-c".into(),
        script.into(),
        arg(dir).into(),
    ]);
    prefix
}

#[test]
fn stderr_that_is_the_journal_gets_structured_entries() {
    let desk = Desk::with_config(MINIMAL_CONFIG);
    deliver(&desk);
    let journal_dir = desk.dir().join("journal");
    fs::create_dir(&journal_dir).expect("journal dir");
    let socket = UnixDatagram::bind(journal_dir.join("socket")).expect("bind the journal socket");
    // Read while the binary runs: a full socket queue blocks its sends, and the queue may be
    // short (`net.unix.max_dgram_qlen` is 10 on some machines; a run logs more entries).
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("read timeout");
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut datagrams = Vec::new();
            let mut buf = vec![0u8; 1 << 16];
            loop {
                match socket.recv(&mut buf) {
                    Ok(n) if n > 0 => datagrams.push(buf[..n].to_vec()),
                    Ok(_) => {}
                    // Nothing more queued after the run: every entry is read.
                    Err(_) if done.load(std::sync::atomic::Ordering::SeqCst) => {
                        return datagrams;
                    }
                    Err(_) => {}
                }
            }
        })
    };
    let log = desk.dir().join("stderr.log");
    fs::write(&log, "").expect("log");
    let prefix = journal_namespace(&journal_dir);
    let prefix: Vec<&str> = prefix.iter().map(String::as_str).collect();
    let out = run_once(&desk, &log, &journal_stream(&log), &prefix);
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let datagrams = reader.join().expect("journal reader");
    let text = fs::read_to_string(&log).expect("log");
    assert!(
        out.status.success(),
        "{text}\n(the test needs `unshare --mount`: root, or user namespaces)"
    );

    let entries: Vec<Entry> = datagrams.iter().map(|d| parse_entry(d)).collect();
    let accepted = entries
        .iter()
        .find(|e| field(e, "MESSAGE") == Some("Accepted request."))
        .unwrap_or_else(|| panic!("no entry for the new ticket: {entries:#?}\nstderr:\n{text}"));
    for (name, value) in [
        ("PRIORITY", "6"),
        ("TICKET", "1"),
        ("MAIL_MESSAGE_ID", "q1@example.jp"),
        ("SYSLOG_IDENTIFIER", "madoguchi"),
        ("TARGET", "madoguchi::desk::shell"),
    ] {
        assert_eq!(
            field(accepted, name),
            Some(value),
            "{name} in {accepted:#?}"
        );
    }
    assert!(field(accepted, "MAIL_KEY").is_some(), "{accepted:#?}");
    let quarantined = entries
        .iter()
        .find(|e| field(e, "MESSAGE") == Some("Quarantined message."))
        .unwrap_or_else(|| panic!("no entry for the quarantine: {entries:#?}"));
    assert_eq!(field(quarantined, "PRIORITY"), Some("4"));
    assert!(field(quarantined, "REASON").is_some(), "{quarantined:#?}");
    // Into the journal, not onto the stream as well.
    assert!(!text.contains("Accepted request."), "{text}");
}

// ─────────────────────────── no secret in the log ───────────────────────────

/// Every form a login might put `password` on the wire or in a log: as is, quoted as an IMAP
/// string and as Rust's Debug prints it, and in base64 alone (AUTH LOGIN) and as SASL PLAIN.
fn forms(user: &str, password: &str) -> Vec<String> {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let quoted = password.replace('\\', "\\\\").replace('"', "\\\"");
    vec![
        password.to_string(),
        quoted,
        b64(password),
        b64(&format!("\0{user}\0{password}")),
        b64(&format!("{user}\0{user}\0{password}")),
    ]
}

#[test]
fn no_password_in_a_trace_level_log_of_a_whole_imap_and_smtp_session() {
    const SMTP_USER: &str = "desk-relay";
    const SMTP_PASSWORD: &str = "Relay-S3cret-7731";
    const WRONG_PASSWORD: &str = "Wrong-Relay-Pw-4402";
    let dovecot = Dovecot::shared();
    let sink = SmtpSink::start_with_auth(SMTP_USER, SMTP_PASSWORD);
    let scratch = tempfile::tempdir().expect("temp dir");
    let smtp_password = scratch.path().join("smtp.password");
    // First a wrong password: the relay refuses the login, and the refusal is logged.
    fs::write(&smtp_password, format!("{WRONG_PASSWORD}\n")).expect("password");
    let desk = Desk::with_config(&format!(
        "[desk]\naddress = \"support@example.co.jp\"\n\n\
         [storage]\ndatabase = \"var/db.sqlite3\"\nfiles = \"var/files\"\n\n{}\n\
         [outbound]\nkind = \"smtp\"\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n\
         allow_plaintext = true\nparallel = 1\nuser = \"{SMTP_USER}\"\npassword_file = \"{}\"\n",
        dovecot.config_toml(""),
        sink.port(),
        smtp_password.display()
    ));
    let log = desk.dir().join("daemon.log");
    let mut daemon = Daemon::start_env(
        desk.config(),
        log.clone(),
        &[],
        &[("MADOGUCHI_LOG", "trace")],
    );
    wait::until(
        Duration::from_secs(30),
        "the refused relay login logged",
        || fs::read_to_string(&log).is_ok_and(|l| l.contains("Cannot open an SMTP connection")),
    );
    fs::write(&smtp_password, format!("{SMTP_PASSWORD}\n")).expect("password");
    dovecot.wait_for_idle(Duration::from_secs(30));
    let question = "From: Customer <customer1@example.jp>\r\nTo: support@example.co.jp\r\n\
                    Subject: question\r\nMessage-ID: <q1@example.jp>\r\n\r\nhello\r\n";
    dovecot.append("INBOX", question.as_bytes());
    wait::until(Duration::from_secs(30), "the reply at the relay", || {
        !sink.received().is_empty()
    });
    daemon.signal("-TERM");
    assert!(
        daemon.wait(Duration::from_secs(30)).success(),
        "{}",
        daemon.log_text()
    );

    let text = daemon.log_text();
    // The log is the whole session at trace level: the IMAP exchange and the relay's refusal.
    assert!(text.contains("TRACE"), "not a trace-level log:\n{text}");
    assert!(text.contains("535"), "no refused login in the log:\n{text}");
    println!("{} lines of trace-level log checked", text.lines().count());
    let secrets = [
        (dovecot.user(), dovecot::PASSWORD),
        (SMTP_USER, SMTP_PASSWORD),
        (SMTP_USER, WRONG_PASSWORD),
    ];
    for (user, password) in secrets {
        for form in forms(user, password) {
            if let Some(at) = text.find(&form) {
                let line = text[..at].lines().count();
                panic!("a password ({form:?}) is in the log at line {line}");
            }
        }
    }
}
