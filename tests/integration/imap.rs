//! IMAP intake against a real Dovecot (see `dovecot.rs`), through the library with a fixed
//! clock: fetch by UID with INTERNALDATE, move after commit, quarantine, a 1,000-message
//! backlog, a UIDVALIDITY reset, a server restart mid-run, IDLE, a refused login, servers
//! without MOVE/UIDPLUS/IDLE, TLS that cannot be had, and a message the server cannot read.
//!
//! Tests that only need a mailbox take a user of their own on the shared Dovecot
//! ([`Dovecot::shared`]); those that stop, restart or reconfigure the server, or fail a login
//! (Dovecot then slows every login from 127.0.0.1 for seconds), start a private one.

use crate::util::jst;
use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use madoguchi::config::{Config, ImapConfig, Intake};
use madoguchi::desk::{Desk, DeskError, PassSummary};
use madoguchi::intake::imap::ImapSource;
use madoguchi::intake::{Ack, Incoming, IntakeError, Source};
use madoguchi::outbound::file::FileSender;

use crate::dovecot::Dovecot;

const DESK: &str = r#"[desk]
address = "support@example.co.jp"
staff = ["tanaka@example.co.jp"]
notify = ["support-team@example.co.jp"]
form_senders = ["form@example.co.jp"]
"#;

/// The source's log lines, shown with a failing test's output (`--nocapture` shows them always).
fn logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "warn,madoguchi::intake=info",
        ))
        .with_test_writer()
        .with_ansi(false)
        .try_init();
}

fn mail(from: &str, subject: &str, message_id: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: support@example.co.jp\r\nSubject: {subject}\r\nMessage-ID: <{message_id}>\r\n\
         Date: Wed, 25 Nov 2026 10:00:00 +0900\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=UTF-8\r\n\r\nお世話になっております。\r\n"
    )
    .into_bytes()
}

/// A message nobody can be answered for: the desk quarantines it.
fn no_from_mail(message_id: &str) -> Vec<u8> {
    format!(
        "To: support@example.co.jp\r\nSubject: ???\r\nMessage-ID: <{message_id}>\r\n\r\nno sender\r\n"
    )
    .into_bytes()
}

/// A desk in a temp dir whose `[intake]` is the Dovecot's.
struct ImapDesk {
    _dir: tempfile::TempDir,
    root: PathBuf,
    desk: Desk,
    imap: ImapConfig,
    sender: FileSender,
}

impl ImapDesk {
    fn new(dovecot: &Dovecot, intake_extra: &str) -> ImapDesk {
        logs();
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().to_path_buf();
        let toml = format!("{DESK}\n{}", dovecot.config_toml(intake_extra));
        fs::write(root.join("madoguchi.toml"), toml).expect("config");
        let config = Config::load(root.join("madoguchi.toml")).expect("valid config");
        let Intake::Imap(imap) = config.intake.clone() else {
            panic!("not an IMAP intake: {:?}", config.intake);
        };
        let desk = Desk::open(config).expect("desk");
        let sender = FileSender::new(root.join("var/outbox"));
        ImapDesk {
            _dir: dir,
            root,
            desk,
            imap,
            sender,
        }
    }

    async fn source(&self) -> ImapSource {
        ImapSource::connect(&self.imap).await.expect("connect")
    }

    async fn pass<S: Source>(
        &mut self,
        source: &mut S,
        now: DateTime<Utc>,
    ) -> Result<PassSummary, DeskError> {
        self.desk.pass(source, &mut self.sender, now).await
    }

    /// Passes until one succeeds (a pass after a server restart may fail first); returns it and
    /// the number of failed passes before it.
    async fn pass_until_ok<S: Source>(
        &mut self,
        source: &mut S,
        now: DateTime<Utc>,
    ) -> (PassSummary, usize) {
        let mut failed = 0;
        loop {
            match self.pass(source, now).await {
                Ok(summary) => return (summary, failed),
                Err(e) => {
                    failed += 1;
                    assert!(failed < 6, "no pass succeeded: {e:#?}");
                }
            }
        }
    }

    fn verdicts(&self) -> Vec<(String, u64)> {
        self.desk.store().verdict_counts().expect("verdict counts")
    }

    fn count(&self, sql: &str) -> i64 {
        crate::util::count(&self.desk.store(), sql)
    }

    fn outbox_files(&self) -> usize {
        fs::read_dir(self.root.join("var/outbox")).map_or(0, |d| d.count())
    }
}

fn total(verdicts: &[(String, u64)]) -> u64 {
    verdicts.iter().map(|(_, n)| n).sum()
}

fn verdict(verdicts: &[(String, u64)], name: &str) -> u64 {
    verdicts
        .iter()
        .find(|(v, _)| v == name)
        .map_or(0, |(_, n)| *n)
}

#[tokio::test]
async fn mail_is_fetched_with_its_internaldate_ticketed_and_moved_or_quarantined() {
    let dovecot = Dovecot::shared();
    dovecot.append_at(
        "INBOX",
        &mail(
            "yamada@alpha.example.co.jp",
            "同期エラー",
            "a1@alpha.example.co.jp",
        ),
        "24-Nov-2026 10:00:00 +0900",
    );
    dovecot.append_at(
        "INBOX",
        &no_from_mail("nofrom@unknown.example"),
        " 2-Nov-2026 09:00:00 +0900",
    );
    let mut t = ImapDesk::new(&dovecot, "");
    let mut source = t.source().await;
    let uidvalidity = source.uidvalidity().expect("selected");
    assert_eq!(
        source.name(),
        format!(
            "imap://{}@127.0.0.1:{}/INBOX",
            dovecot.user(),
            dovecot.port()
        )
    );
    // Folders are there from the start, for staff to see.
    assert_eq!(dovecot.count("Processed"), 0);
    assert!(dovecot.client().status("Quarantine", "MESSAGES").is_some());

    // Looking does not acknowledge: oldest INTERNALDATE first, keyed UIDVALIDITY:UID.
    let peek = source.fetch(10).await.expect("fetch");
    assert_eq!(peek.len(), 2);
    assert_eq!(peek[0].received_at, jst(2026, 11, 2, 9, 0));
    assert_eq!(peek[0].key, format!("{uidvalidity}:2"));
    assert_eq!(peek[1].received_at, jst(2026, 11, 24, 10, 0));
    assert_eq!(
        (peek[1].key.as_str(), peek[1].handle.as_str()),
        (format!("{uidvalidity}:1").as_str(), "1")
    );
    assert!(
        peek[1]
            .raw
            .starts_with(b"From: yamada@alpha.example.co.jp\r\n")
    );
    assert_eq!(dovecot.count("INBOX"), 2);

    let s = t
        .pass(&mut source, jst(2026, 11, 25, 10, 0))
        .await
        .expect("pass");
    assert_eq!(
        (s.messages, s.new_tickets, s.quarantined),
        (2, 1, 1),
        "{s:?}"
    );
    assert_eq!(dovecot.count("INBOX"), 0);
    assert_eq!(dovecot.count("Processed"), 1);
    assert_eq!(dovecot.count("Quarantine"), 1);
    assert_eq!(
        t.count(
            "SELECT COUNT(*) FROM messages WHERE verdict = 'article' \
             AND received_at = '2026-11-24T01:00:00.000000Z'"
        ),
        1
    );
    assert_eq!(
        t.count("SELECT COUNT(*) FROM tickets WHERE received_at = '2026-11-24T01:00:00.000000Z'"),
        1
    );
    // The raw bytes went through unchanged (only CRLF on the wire).
    let again = t
        .pass(&mut source, jst(2026, 11, 25, 10, 5))
        .await
        .expect("pass");
    assert_eq!(again.messages + again.already_seen, 0, "{again:?}");
}

#[tokio::test]
async fn a_backlog_of_1000_messages_drains_with_every_message_recorded_once() {
    const N: usize = 1000;
    let dovecot = Dovecot::shared();
    let started = Instant::now();
    dovecot.append_many(
        "INBOX",
        (0..N).map(|i| {
            mail(
                &format!("customer{}@example{}.net", i % 97, i % 13),
                &format!("質問 {i}"),
                &format!("backlog-{i}@example.net"),
            )
        }),
    );
    let appended = started.elapsed();
    let mut t = ImapDesk::new(&dovecot, "batch_size = 100");
    let mut source = t.source().await;
    let started = Instant::now();
    let mut passes = 0;
    let mut messages = 0;
    loop {
        let s = t
            .pass(&mut source, jst(2026, 11, 25, 10, 0))
            .await
            .expect("pass");
        passes += 1;
        messages += s.messages;
        if s.messages == 0 {
            break;
        }
        assert!(passes < 20, "the backlog does not drain");
    }
    let drained = started.elapsed();
    println!(
        "backlog: {N} appended in {:.2} s; drained in {:.2} s ({:.0} msg/s) over {passes} passes",
        appended.as_secs_f64(),
        drained.as_secs_f64(),
        N as f64 / drained.as_secs_f64()
    );
    assert_eq!(messages, N);
    let verdicts = t.verdicts();
    assert_eq!(total(&verdicts), N as u64, "{verdicts:?}");
    assert_eq!(
        t.count("SELECT COUNT(DISTINCT source_key) FROM messages"),
        N as i64
    );
    assert_eq!(dovecot.count("INBOX"), 0);
    assert_eq!(
        dovecot.count("Processed") + dovecot.count("Quarantine"),
        N as u32
    );
    assert!(t.outbox_files() > 0);
}

/// The crash between commit and acknowledgement: the source records nothing on the server.
struct AckFails<'a>(&'a mut ImapSource);

impl Source for AckFails<'_> {
    fn name(&self) -> String {
        self.0.name()
    }
    async fn fetch(&mut self, max: usize) -> Result<Vec<Incoming>, IntakeError> {
        self.0.fetch(max).await
    }
    async fn ack(&mut self, m: &Incoming, _: Ack) -> Result<(), IntakeError> {
        Err(IntakeError::Ack {
            path: m.key.clone(),
            source: std::io::Error::other("simulated crash before the acknowledgement"),
        })
    }
    async fn wait_for_mail(&mut self, at_most: Duration) -> Result<(), IntakeError> {
        self.0.wait_for_mail(at_most).await
    }
}

#[tokio::test]
async fn a_uidvalidity_reset_brings_the_same_mail_back_as_duplicates_not_tickets() {
    let mut dovecot = Dovecot::start();
    for i in 0..3 {
        dovecot.append(
            "INBOX",
            &mail(
                "yamada@alpha.example.co.jp",
                &format!("件名 {i}"),
                &format!("u{i}@alpha.example.co.jp"),
            ),
        );
    }
    let mut t = ImapDesk::new(&dovecot, "");
    let mut source = t.source().await;
    let before = source.uidvalidity().expect("selected");
    let crashed = t
        .pass(&mut AckFails(&mut source), jst(2026, 11, 25, 10, 0))
        .await;
    assert!(crashed.is_err());
    assert_eq!(dovecot.count("INBOX"), 3);
    assert_eq!(verdict(&t.verdicts(), "article"), 3);

    dovecot.reset_uidvalidity("INBOX");
    let (s, failed) = t.pass_until_ok(&mut source, jst(2026, 11, 25, 10, 5)).await;
    println!("UIDVALIDITY reset: {failed} failed pass(es) before {s:?}");
    assert_ne!(source.uidvalidity(), Some(before));
    assert_eq!(
        (s.duplicates, s.new_tickets, s.already_seen),
        (3, 0, 0),
        "{s:?}"
    );
    let verdicts = t.verdicts();
    assert_eq!(
        (
            verdict(&verdicts, "article"),
            verdict(&verdicts, "duplicate")
        ),
        (3, 3),
        "{verdicts:?}"
    );
    assert_eq!(t.count("SELECT COUNT(*) FROM tickets"), 3);
    // One automatic reply per ticket, none for the duplicates.
    assert_eq!(
        t.count("SELECT COUNT(*) FROM outbox WHERE auto_reply_to IS NOT NULL"),
        3
    );
    assert_eq!(dovecot.count("INBOX"), 0);
    assert_eq!(dovecot.count("Processed"), 3);
}

/// Restarts Dovecot in the middle of the desk's acknowledgements.
struct RestartDuringAck<'a> {
    inner: &'a mut ImapSource,
    dovecot: &'a mut Dovecot,
    at: usize,
    acks: usize,
}

impl Source for RestartDuringAck<'_> {
    fn name(&self) -> String {
        self.inner.name()
    }
    async fn fetch(&mut self, max: usize) -> Result<Vec<Incoming>, IntakeError> {
        self.inner.fetch(max).await
    }
    async fn ack(&mut self, m: &Incoming, ack: Ack) -> Result<(), IntakeError> {
        self.acks += 1;
        if self.acks == self.at {
            self.dovecot.restart();
        }
        self.inner.ack(m, ack).await
    }
    async fn wait_for_mail(&mut self, at_most: Duration) -> Result<(), IntakeError> {
        self.inner.wait_for_mail(at_most).await
    }
}

#[tokio::test]
async fn a_dovecot_restart_mid_run_costs_a_pass_and_loses_nothing() {
    let mut dovecot = Dovecot::start();
    dovecot.append_many(
        "INBOX",
        (0..300).map(|i| {
            mail(
                &format!("c{i}@example.net"),
                "再起動",
                &format!("r{i}@example.net"),
            )
        }),
    );
    let mut t = ImapDesk::new(&dovecot, "");
    let mut source = t.source().await;
    let now = jst(2026, 11, 25, 10, 0);
    let first = {
        let mut restarting = RestartDuringAck {
            inner: &mut source,
            dovecot: &mut dovecot,
            at: 50,
            acks: 0,
        };
        t.pass(&mut restarting, now).await
    };
    let err = first.expect_err("the server went away in the middle of the batch");
    println!("pass during the restart: {err}");
    assert!(!source.is_connected());
    // Mail that arrives meanwhile is picked up as well.
    dovecot.append_many(
        "INBOX",
        (300..350).map(|i| {
            mail(
                &format!("c{i}@example.net"),
                "再起動",
                &format!("r{i}@example.net"),
            )
        }),
    );
    let mut summaries = Vec::new();
    while dovecot.count("INBOX") > 0 {
        let (s, _) = t.pass_until_ok(&mut source, now).await;
        summaries.push(s);
        assert!(summaries.len() < 10, "{summaries:?}");
    }
    assert!(source.is_connected());
    let verdicts = t.verdicts();
    assert_eq!(total(&verdicts), 350, "{verdicts:?}");
    assert_eq!(verdict(&verdicts, "article"), 350, "{verdicts:?}");
    assert_eq!(t.count("SELECT COUNT(*) FROM tickets"), 350);
    assert_eq!(dovecot.count("Processed"), 350);
    // The batch recorded before the restart was recognised, not recorded again.
    let seen: usize = summaries.iter().map(|s| s.already_seen).sum();
    assert!(seen > 0 && seen <= 200, "{summaries:?}");
}

#[tokio::test]
async fn idle_returns_when_mail_arrives_and_after_its_limit_otherwise() {
    let dovecot = Dovecot::shared();
    let t = ImapDesk::new(&dovecot, "");
    let mut source = t.source().await;
    assert!(source.fetch(10).await.expect("fetch").is_empty());

    // Nothing arrives: IDLE lasts until the limit, and the session is still good afterwards.
    let quiet = Duration::from_millis(500);
    let started = Instant::now();
    source.wait_for_mail(quiet).await.expect("idle");
    let waited = started.elapsed();
    assert!(
        waited >= quiet,
        "returned after {waited:?}, before its limit"
    );
    assert!(source.is_connected());
    assert!(source.fetch(10).await.expect("fetch").is_empty());

    // The mail is appended once Dovecot says the session is in IDLE, so what wakes the source
    // is the server's notice, not a check it makes before idling.
    let port = dovecot.port();
    let user = dovecot.user().to_owned();
    let appender = std::thread::spawn(move || {
        crate::wait::until(Duration::from_secs(30), "the session in IDLE", || {
            crate::dovecot::idling(&user)
        });
        crate::dovecot::ImapClient::login(port, &user, crate::dovecot::PASSWORD).append(
            "INBOX",
            &mail("idle@example.net", "IDLE", "idle@example.net"),
            None,
        );
        Instant::now()
    });
    let limit = Duration::from_secs(20);
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(60), source.wait_for_mail(limit))
        .await
        .expect("wait_for_mail keeps to its limit")
        .expect("idle");
    let woke = Instant::now();
    let appended = appender.join().expect("appender");
    println!(
        "IDLE woke {:.2} s after the APPEND",
        woke.saturating_duration_since(appended).as_secs_f64()
    );
    assert!(woke - started < limit, "IDLE did not notice the new mail");
    assert!(woke >= appended, "woke before the mail arrived");
    let got = source.fetch(10).await.expect("fetch");
    assert_eq!(got.len(), 1);
}

#[tokio::test]
async fn a_wrong_password_is_a_clear_server_error() {
    // Private: after a failed login Dovecot delays the next ones from this address.
    let dovecot = Dovecot::start();
    let t = ImapDesk::new(&dovecot, "");
    let wrong = t.root.join("wrong-password");
    fs::write(&wrong, "not-the-password-42\n").expect("write");
    let mut config = t.imap.clone();
    config.password = madoguchi::config::Secret::file(&wrong);
    let err = match ImapSource::connect(&config).await {
        Ok(_) => panic!("logged in with a wrong password"),
        Err(e) => e,
    };
    let IntakeError::Server { action, .. } = &err else {
        panic!("not a server error: {err:?}");
    };
    assert_eq!(*action, "log in");
    let text = format!(
        "{err} / {:?} / {}",
        err,
        std::error::Error::source(&err)
            .map(|s| s.to_string())
            .unwrap_or_default()
    );
    println!("{text}");
    assert!(
        text.contains(&format!(
            "cannot log in on imap://{}@127.0.0.1",
            dovecot.user()
        )),
        "{text}"
    );
    assert!(text.contains("refused the login"), "{text}");
    assert!(!text.contains("not-the-password-42"), "{text}");

    // A missing password file is said as such, before any connection.
    config.password = madoguchi::config::Secret::file(t.root.join("missing"));
    let err = ImapSource::connect(&config)
        .await
        .err()
        .expect("no password");
    assert!(
        matches!(
            &err,
            IntakeError::Server {
                action: "read the IMAP password",
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn without_move_uidplus_and_idle_the_source_copies_expunges_and_polls() {
    for (capabilities, label) in [
        ("IMAP4rev1 LITERAL+ UIDPLUS", "UIDPLUS without MOVE"),
        ("IMAP4rev1 LITERAL+", "neither MOVE nor UIDPLUS"),
    ] {
        let dovecot = Dovecot::start_with(&format!("imap_capability = {capabilities}"));
        dovecot.append("INBOX", &mail("a@example.net", "copy", "c1@example.net"));
        dovecot.append("INBOX", &no_from_mail("c2@example.net"));
        dovecot.append("INBOX", &mail("b@example.net", "copy", "c3@example.net"));
        let mut t = ImapDesk::new(&dovecot, "poll_interval = \"1s\"");
        let mut source = t.source().await;
        let s = t
            .pass(&mut source, jst(2026, 11, 25, 10, 0))
            .await
            .expect("pass");
        assert_eq!((s.new_tickets, s.quarantined), (2, 1), "{label}: {s:?}");
        assert_eq!(dovecot.count("INBOX"), 0, "{label}");
        assert_eq!(dovecot.count("Processed"), 2, "{label}");
        assert_eq!(dovecot.count("Quarantine"), 1, "{label}");
        // No IDLE: a poll that keeps to the interval (1 s), neither returning at once nor
        // waiting for the caller's limit.
        let started = Instant::now();
        source
            .wait_for_mail(Duration::from_secs(30))
            .await
            .expect("poll");
        let waited = started.elapsed();
        assert!(
            (Duration::from_secs(1)..Duration::from_secs(30)).contains(&waited),
            "{label}: waited {waited:?}"
        );
    }
}

#[tokio::test]
async fn tls_that_the_server_cannot_do_fails_before_any_password_is_sent() {
    let dovecot = Dovecot::shared();
    let t = ImapDesk::new(&dovecot, "");
    for tls in [
        madoguchi::config::Tls::StartTls,
        madoguchi::config::Tls::Implicit,
    ] {
        let mut config = t.imap.clone();
        config.tls = tls;
        let started = Instant::now();
        let err = ImapSource::connect(&config)
            .await
            .err()
            .unwrap_or_else(|| panic!("{tls}: connected without TLS"));
        println!("{tls}: {err}: {:?}", std::error::Error::source(&err));
        assert!(
            matches!(
                &err,
                IntakeError::Server {
                    action: "start TLS",
                    ..
                }
            ),
            "{tls}: {err:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(30));
    }
    let log = dovecot.log();
    assert!(!log.contains("Login: user="), "{log}");
    assert!(!log.contains("auth failed"), "{log}");
}

#[tokio::test]
async fn a_message_the_server_cannot_read_does_not_block_the_others() {
    let dovecot = Dovecot::shared();
    for i in 0..3 {
        dovecot.append(
            "INBOX",
            &mail(
                &format!("p{i}@example.net"),
                "読めない",
                &format!("p{i}@example.net"),
            ),
        );
    }
    // The second message's file becomes unreadable for Dovecot's mail user, which makes
    // Dovecot answer its FETCH with BYE and close the connection.
    let uidlist =
        fs::read_to_string(dovecot.maildir("INBOX").join("dovecot-uidlist")).expect("uidlist");
    let second = uidlist
        .lines()
        .find_map(|l| l.strip_prefix("2 ")?.split(':').nth(1))
        .expect("UID 2 in the uidlist")
        .to_owned();
    // Dovecot moves it from new/ to cur/ once the mailbox is selected: looked up each time.
    let set_mode = |mode: u32| {
        use std::os::unix::fs::PermissionsExt;
        let file = ["new", "cur"]
            .iter()
            .flat_map(|sub| fs::read_dir(dovecot.maildir("INBOX").join(sub)).expect("maildir"))
            .map(|e| e.expect("entry").path())
            .find(|p| p.to_string_lossy().contains(&second))
            .expect("the second message's file");
        fs::set_permissions(file, fs::Permissions::from_mode(mode)).expect("chmod");
    };
    set_mode(0o000);

    let mut t = ImapDesk::new(&dovecot, "poll_interval = \"1s\"");
    let mut source = t.source().await;
    let now = jst(2026, 11, 25, 10, 0);
    let mut tickets = 0;
    for _ in 0..3 {
        let s = t.pass(&mut source, now).await.expect("pass");
        tickets += s.new_tickets;
    }
    assert_eq!(tickets, 2, "the messages around the bad one are ticketed");
    assert_eq!(dovecot.count("INBOX"), 1);
    assert_eq!(dovecot.count("Processed"), 2);

    // Readable again: fetched once its pause (poll_interval, 1 s here) is over.
    set_mode(0o644);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut passes = Vec::new();
    let s = loop {
        let s = t.pass(&mut source, now).await.expect("pass");
        if s.messages > 0 {
            break s;
        }
        passes.push(s);
        assert!(
            Instant::now() < deadline,
            "not fetched again within 30 s: {passes:?}"
        );
        tokio::time::sleep(crate::wait::POLL).await;
    };
    assert_eq!(s.new_tickets, 1, "{s:?}");
    assert_eq!(dovecot.count("INBOX"), 0);
    assert_eq!(t.count("SELECT COUNT(*) FROM tickets"), 3);
}

/// Where the child run of the TLS test finds its Dovecot: `PORT,IMAPS_PORT,PASSWORD_FILE`.
const TLS_CHILD: &str = "MADOGUCHI_TLS_TEST_CHILD";

fn tls_config(host: &str, port: u16, tls: madoguchi::config::Tls, password: &str) -> ImapConfig {
    ImapConfig {
        host: host.to_owned(),
        port,
        tls,
        user: crate::dovecot::USER.to_owned(),
        password: madoguchi::config::Secret::file(password),
        mailbox: "INBOX".to_owned(),
        processed: "Processed".to_owned(),
        quarantine: "Quarantine".to_owned(),
        idle: true,
        poll_interval: Duration::from_secs(60),
        batch_size: 100,
        timeout: madoguchi::config::DEFAULT_IMAP_TIMEOUT,
    }
}

/// STARTTLS and implicit TLS against a certificate from a private CA. The system roots
/// (rustls-native-certs) must trust that CA, which they do through `SSL_CERT_FILE`; this
/// process's environment is not changed under the other tests, so the TLS part runs in a child
/// run of this test binary with the variable set.
#[tokio::test]
async fn starttls_and_implicit_tls_log_in_when_the_certificate_is_trusted() {
    use madoguchi::config::Tls;
    if let Some(spec) = std::env::var_os(TLS_CHILD) {
        let spec = spec.to_string_lossy().into_owned();
        let mut parts = spec.split(',');
        let port: u16 = parts.next().and_then(|p| p.parse().ok()).expect("port");
        let imaps: u16 = parts
            .next()
            .and_then(|p| p.parse().ok())
            .expect("imaps port");
        let password = parts.next().expect("password file");
        for (tls, port) in [(Tls::StartTls, port), (Tls::Implicit, imaps)] {
            let mut source = ImapSource::connect(&tls_config("127.0.0.1", port, tls, password))
                .await
                .unwrap_or_else(|e| panic!("{tls}: {e}: {:?}", std::error::Error::source(&e)));
            let got = source.fetch(1).await.expect("fetch");
            assert_eq!(got.len(), 1, "{tls}");
            source.ack(&got[0], Ack::Processed).await.expect("ack");
        }
        // The certificate names 127.0.0.1, not localhost: refused.
        let err = ImapSource::connect(&tls_config("localhost", imaps, Tls::Implicit, password))
            .await
            .err()
            .expect("a certificate for another name was accepted");
        let detail = format!("{:?}", std::error::Error::source(&err));
        assert!(detail.contains("NotValidForName"), "{detail}");
        return;
    }

    let dovecot = Dovecot::start_tls();
    for i in 0..2 {
        dovecot.append(
            "INBOX",
            &mail("tls@example.net", "TLS", &format!("tls{i}@example.net")),
        );
    }
    // Without the CA among the trusted roots: no connection, and no password sent.
    let untrusted = tls_config(
        "127.0.0.1",
        dovecot.imaps_port(),
        Tls::Implicit,
        &dovecot.password_file().to_string_lossy(),
    );
    let err = ImapSource::connect(&untrusted)
        .await
        .err()
        .expect("an untrusted certificate was accepted");
    assert!(
        matches!(
            &err,
            IntakeError::Server {
                action: "start TLS",
                ..
            }
        ),
        "{err:?}"
    );

    crate::util::run_trusting(
        "imap::starttls_and_implicit_tls_log_in_when_the_certificate_is_trusted",
        &dovecot.ca_file(),
        TLS_CHILD,
        &format!(
            "{},{},{}",
            dovecot.port(),
            dovecot.imaps_port(),
            dovecot.password_file().display()
        ),
    );
    assert_eq!(dovecot.count("INBOX"), 0);
    assert_eq!(dovecot.count("Processed"), 2);
    let log = dovecot.log();
    let tls_logins = log
        .lines()
        .filter(|l| l.contains("Login: user=<tester>") && l.contains("TLS"))
        .count();
    assert_eq!(tls_logins, 2, "{log}");
}
