//! The daemon as admins run it, against a real Dovecot and a real SMTP server: mail that arrives
//! while it idles is answered; a SIGKILL mid-batch and a restart ticket every message exactly
//! once; SIGTERM stops it cleanly.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::dovecot::Dovecot;
use crate::smtp_sink::SmtpSink;
use crate::util::{Desk, arg, demo_fixture};
use crate::wait;

/// A running `madoguchi run`, killed on drop.
pub(crate) struct Daemon {
    child: Option<Child>,
    log: PathBuf,
}

impl Daemon {
    pub(crate) fn start(config: &Path, log: PathBuf) -> Daemon {
        Daemon::start_with(config, log, &[])
    }

    /// `madoguchi run` with extra arguments (`--now T`).
    pub(crate) fn start_with(config: &Path, log: PathBuf, extra: &[&str]) -> Daemon {
        Daemon::start_env(config, log, extra, &[])
    }

    /// `madoguchi run` with extra arguments and environment variables (`NOTIFY_SOCKET`, a
    /// `MADOGUCHI_LOG` of its own).
    pub(crate) fn start_env(
        config: &Path,
        log: PathBuf,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Daemon {
        let file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("daemon log");
        let child = Command::new(env!("CARGO_BIN_EXE_madoguchi"))
            .args(["--config", arg(config), "run"])
            .args(extra)
            .env("MADOGUCHI_LOG", "info")
            .env("TZ", "Pacific/Honolulu")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("start the daemon");
        Daemon {
            child: Some(child),
            log,
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).expect("running")
    }

    pub(crate) fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([sig, &self.pid().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill {sig} failed");
    }

    /// Waits for the process to exit; its exit status.
    pub(crate) fn wait(&mut self, limit: Duration) -> std::process::ExitStatus {
        let child = self.child.as_mut().expect("running");
        let mut status = None;
        let exited = wait::within(limit, || {
            status = child.try_wait().expect("try_wait");
            status.is_some()
        });
        assert!(
            exited,
            "the daemon did not exit within {limit:?}\n{}",
            self.log_text()
        );
        self.child = None;
        status.expect("exited")
    }

    pub(crate) fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn config(dovecot: &Dovecot, sink: &SmtpSink, notify: bool) -> String {
    let notify = if notify {
        "notify = [\"support-team@example.co.jp\"]\n"
    } else {
        ""
    };
    format!(
        "[desk]\naddress = \"support@example.co.jp\"\n{notify}\n\
         [storage]\ndatabase = \"var/db.sqlite3\"\nfiles = \"var/files\"\n\n{}\n\
         [outbound]\nkind = \"smtp\"\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nallow_plaintext = true\nparallel = 1\n",
        dovecot.config_toml(""),
        sink.port()
    )
}

fn customer_mail(i: usize) -> Vec<u8> {
    format!(
        "From: Customer {i} <customer{i}@example.jp>\r\nTo: support@example.co.jp\r\n\
         Subject: question {i}\r\nMessage-ID: <q{i}@example.jp>\r\nDate: Wed, 25 Nov 2026 10:00:00 +0900\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n分散サーバーの設定について質問です。\r\n"
    )
    .into_bytes()
}

fn import_demo(desk: &Desk) {
    desk.run(&[
        "contracts",
        "import",
        arg(&demo_fixture("contracts.csv")),
        "--orders",
        arg(&demo_fixture("orders.csv")),
    ])
    .assert_success();
}

#[test]
fn mail_that_arrives_while_idling_is_acknowledged_at_the_smtp_server() {
    let dovecot = Dovecot::shared();
    let sink = SmtpSink::start();
    let desk = Desk::with_config(&config(&dovecot, &sink, true));
    import_demo(&desk);
    let mut daemon = Daemon::start(desk.config(), desk.dir().join("daemon.log"));
    // Delivered once the daemon's session is in IDLE (Dovecot says so), so the IDLE path is
    // what answers it.
    dovecot.wait_for_idle(Duration::from_secs(30));
    let raw = fs::read(demo_fixture("inbox/01-fault-report-iso2022jp.eml")).expect("fixture");
    dovecot.append("INBOX", &raw);
    wait::until(
        Duration::from_secs(30),
        "the acknowledgement at the SMTP server",
        || {
            sink.received()
                .iter()
                .any(|m| m.rcpt_to.iter().any(|r| r == "yamada@alpha.example.co.jp"))
        },
    );
    wait::until(
        Duration::from_secs(10),
        "the message moved to Processed",
        || dovecot.count("INBOX") == 0 && dovecot.count("Processed") == 1,
    );
    daemon.signal("-TERM");
    let status = daemon.wait(Duration::from_secs(30));
    assert!(status.success(), "exit {status:?}\n{}", daemon.log_text());
    assert!(
        daemon.log_text().contains("Stopped."),
        "{}",
        daemon.log_text()
    );
    let tickets = desk.json(&["tickets", "list"]);
    assert_eq!(tickets.as_array().map(Vec::len), Some(1), "{tickets}");
    assert_eq!(tickets[0]["contract_id"], "C-1001");
}

#[test]
fn a_sigkill_mid_batch_and_a_restart_ticket_every_message_exactly_once() {
    const N: usize = 400;
    let dovecot = Dovecot::shared();
    let sink = SmtpSink::start();
    let desk = Desk::with_config(&config(&dovecot, &sink, false));
    assert_eq!(dovecot.append_many("INBOX", (0..N).map(customer_mail)), N);
    let log = desk.dir().join("daemon.log");
    let mut daemon = Daemon::start(desk.config(), log.clone());
    wait::until(
        Duration::from_secs(60),
        "the first acknowledgements",
        || sink.received().len() >= 20,
    );
    daemon.signal("-KILL");
    let status = daemon.wait(Duration::from_secs(10));
    assert!(!status.success(), "SIGKILL must kill");
    let at_kill = sink.received().len();

    let mut daemon = Daemon::start(desk.config(), log);
    wait::until(
        Duration::from_secs(120),
        "every message answered after the restart",
        || {
            let mut to: Vec<String> = sink
                .received()
                .into_iter()
                .flat_map(|m| m.rcpt_to)
                .collect();
            to.sort();
            to.dedup();
            to.len() == N && dovecot.count("INBOX") == 0
        },
    );
    daemon.signal("-TERM");
    assert!(
        daemon.wait(Duration::from_secs(30)).success(),
        "{}",
        daemon.log_text()
    );

    let tickets = desk.json(&["tickets", "list"]);
    let tickets = tickets.as_array().expect("array");
    assert_eq!(tickets.len(), N, "every message ticketed exactly once");
    let mut customers: Vec<&str> = tickets
        .iter()
        .filter_map(|t| t["customer"].as_str())
        .collect();
    customers.sort();
    customers.dedup();
    assert_eq!(customers.len(), N);
    let received = sink.received().len();
    println!("SIGKILL after {at_kill} acknowledgements; {received} received for {N} tickets");
    // parallel = 1: at most one message was in flight when the process died.
    assert!(
        received <= N + 1,
        "{received} acknowledgements for {N} tickets"
    );
    assert_eq!(dovecot.count("Processed"), N as u32);
}

#[test]
fn a_dovecot_restart_under_a_running_daemon_loses_nothing() {
    // Private: it restarts the server.
    let mut dovecot = Dovecot::start();
    let sink = SmtpSink::start();
    let desk = Desk::with_config(&config(&dovecot, &sink, false));
    let mut daemon = Daemon::start(desk.config(), desk.dir().join("daemon.log"));
    dovecot.append_many("INBOX", (0..5).map(customer_mail));
    wait::until(Duration::from_secs(30), "the first five answered", || {
        sink.received().len() >= 5
    });
    dovecot.restart();
    dovecot.append_many("INBOX", (5..10).map(customer_mail));
    wait::until(
        Duration::from_secs(90),
        "the next five answered after the restart",
        || sink.received().len() >= 10,
    );
    daemon.signal("-TERM");
    assert!(
        daemon.wait(Duration::from_secs(30)).success(),
        "{}",
        daemon.log_text()
    );
    assert_eq!(sink.received().len(), 10, "{}", daemon.log_text());
    assert_eq!(dovecot.count("Processed"), 10);
    let log = daemon.log_text();
    assert!(
        log.contains("WARN") || log.contains("ERROR"),
        "the outage left no log line: {log}"
    );
}

/// A port nothing listens on (bound, then released).
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

#[test]
fn replies_already_queued_go_out_while_the_mailbox_is_unreachable() {
    let sink = SmtpSink::start();
    let dead_relay = closed_port();
    let storage = "[storage]\ndatabase = \"var/db.sqlite3\"\nfiles = \"var/files\"\n";
    // First the desk took a mail from its Maildir while the relay was down: the reply waits in
    // the outbox for its retry.
    let desk = Desk::with_config(&format!(
        "[desk]\naddress = \"support@example.co.jp\"\n\n{storage}\n\
         [intake]\nkind = \"maildir\"\nmaildir = \"var/inbox\"\n\n\
         [outbound]\nkind = \"smtp\"\nhost = \"127.0.0.1\"\nport = {dead_relay}\ntls = \"none\"\n\
         allow_plaintext = true\ntimeout = \"2s\"\n{}",
        crate::util::NO_REMINDERS
    ));
    desk.import_demo();
    let new = desk.dir().join("var/inbox/new");
    fs::create_dir_all(&new).expect("maildir");
    fs::write(
        new.join("1.eml"),
        "From: Yamada <yamada@alpha.example.co.jp>\r\nTo: support@example.co.jp\r\n\
         Subject: sync\r\nMessage-ID: <down1@alpha.example.co.jp>\r\n\
         Date: Wed, 25 Nov 2026 10:00:00 +0900\r\n\r\nhello\r\n",
    )
    .expect("mail");
    desk.run(&["run", "--once", "--now", "2026-11-25T10:00"])
        .assert_success();
    assert!(sink.received().is_empty());
    // Then the mailbox moved to an IMAP server that does not answer, and the relay came back.
    let password = desk.write("imap.password", "secret\n");
    fs::write(
        desk.config(),
        format!(
            "[desk]\naddress = \"support@example.co.jp\"\n\n{storage}\n\
             [intake]\nkind = \"imap\"\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n\
             allow_plaintext = true\nuser = \"desk\"\npassword_file = \"{}\"\n\n\
             [outbound]\nkind = \"smtp\"\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n\
             allow_plaintext = true\n{}",
            closed_port(),
            password.display(),
            sink.port(),
            crate::util::NO_REMINDERS
        ),
    )
    .expect("config");
    let log = desk.dir().join("daemon.log");
    let daemon = Daemon::start_with(desk.config(), log, &["--now", "2026-11-25T10:30"]);
    wait::until(
        Duration::from_secs(30),
        "the queued reply at the relay",
        || !sink.received().is_empty(),
    );
    let received = sink.received();
    assert_eq!(received.len(), 1, "{}", daemon.log_text());
    assert!(
        daemon.log_text().contains("Cannot open the mailbox"),
        "{}",
        daemon.log_text()
    );
}
