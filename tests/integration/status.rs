//! An admin's service with the real binary: one daemon per database (a second `run` and a
//! `run --once` are refused while one runs; after a SIGKILL a new one starts), and `madoguchi
//! status` on a real Dovecot and SMTP sink: 0 healthy, 1 with a backlog or a license at risk,
//! 2 when the daemon is not running, with the reasons in text and JSON.

use std::fs;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::daemon::Daemon;
use crate::dovecot::Dovecot;
use crate::smtp_sink::SmtpSink;
use crate::util::{Desk, Run, arg, demo_fixture, jst};
use crate::wait;

/// `madoguchi --config CONFIG ARGS` that must end by itself within `limit` (a `run` that
/// should be refused would otherwise run on as a second daemon): killed and failed if not.
#[track_caller]
pub(crate) fn run_ending(desk: &Desk, args: &[&str], limit: Duration) -> Run {
    let out = desk.dir().join("ending.out");
    let err = desk.dir().join("ending.err");
    let mut child = Command::new(env!("CARGO_BIN_EXE_madoguchi"))
        .arg("--config")
        .arg(desk.config())
        .args(args)
        .env_remove("MADOGUCHI_LOG")
        .stdin(Stdio::null())
        .stdout(fs::File::create(&out).expect("stdout file"))
        .stderr(fs::File::create(&err).expect("stderr file"))
        .spawn()
        .expect("start madoguchi");
    let mut status = None;
    let ended = wait::within(limit, || {
        status = child.try_wait().expect("try_wait");
        status.is_some()
    });
    if !ended {
        let _ = child.kill();
        let _ = child.wait();
    }
    let run = Run {
        command: format!("madoguchi {}", args.join(" ")),
        code: status.and_then(|s| s.code()),
        stdout: fs::read_to_string(&out).unwrap_or_default(),
        stderr: fs::read_to_string(&err).unwrap_or_default(),
    };
    assert!(ended, "still running after {limit:?}: {run}");
    run
}

/// `status --json` (and its exit code), once it answers with a document.
pub(crate) fn status(desk: &Desk, extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["--json", "status"];
    args.extend_from_slice(extra);
    let run = desk.run(&args);
    let doc = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("status printed no JSON ({e}): {run}"));
    (run.code.expect("an exit code"), doc)
}

/// Waits until `status` sees the daemon `pid` holding the lock with a pass recorded.
pub(crate) fn wait_until_passed(desk: &Desk, pid: u32) {
    wait::until(Duration::from_secs(30), "the daemon's first pass", || {
        let run = desk.run(&["--json", "status"]);
        let Ok(doc) = serde_json::from_str::<Value>(&run.stdout) else {
            return false; // the daemon is still creating the database
        };
        doc["daemon"]["pid"] == pid && doc["last_pass"]["at"].is_string()
    });
}

fn checks(doc: &Value) -> Vec<(String, String)> {
    doc["reasons"]
        .as_array()
        .expect("reasons")
        .iter()
        .map(|r| {
            (
                r["check"].as_str().unwrap_or("").to_string(),
                r["level"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn pair(check: &str, level: &str) -> (String, String) {
    (check.to_string(), level.to_string())
}

#[test]
fn a_second_run_on_the_same_database_is_refused_until_the_first_dies() {
    let desk = Desk::new();
    let lock = desk.dir().join("var/db.sqlite3.lock");
    let mut first = Daemon::start(desk.config(), desk.dir().join("daemon.log"));
    wait_until_passed(&desk, first.pid());
    assert_eq!(
        fs::read_to_string(&lock).expect("lock file").trim(),
        first.pid().to_string()
    );
    for args in [&["run"][..], &["run", "--once"][..]] {
        let refused = run_ending(&desk, args, Duration::from_secs(20));
        refused.assert_failure().assert_stderr_has(&[
            "another madoguchi",
            &format!("(pid {})", first.pid()),
            "already running",
            arg(&lock),
        ]);
    }
    // The first still runs, undisturbed, and still holds the lock.
    let (code, doc) = status(&desk, &[]);
    assert_eq!(
        (code, &doc["daemon"]["pid"]),
        (0, &Value::from(first.pid()))
    );

    first.signal("-KILL");
    assert!(!first.wait(Duration::from_secs(10)).success());
    // The kernel dropped the lock: down, without anyone removing a stale file.
    let (code, doc) = status(&desk, &[]);
    assert_eq!(code, 2, "{doc:#}");
    assert_eq!(doc["status"], "down");
    assert_eq!(checks(&doc), vec![pair("daemon", "down")]);
    let text = desk.run(&["status"]);
    assert_eq!(text.code, Some(2));
    assert!(
        text.stdout
            .starts_with("MADOGUCHI CRITICAL - the daemon is not running |"),
        "{text}"
    );
    let second = Daemon::start(desk.config(), desk.dir().join("daemon2.log"));
    wait_until_passed(&desk, second.pid());
    assert_eq!(
        fs::read_to_string(&lock).expect("lock file").trim(),
        second.pid().to_string()
    );
    let (code, _) = status(&desk, &[]);
    assert_eq!(code, 0);
}

fn service_config(dovecot: &Dovecot, sink: &SmtpSink) -> String {
    format!(
        "[desk]\naddress = \"support@example.co.jp\"\nnotify = [\"support-team@example.co.jp\"]\n\n\
         [storage]\ndatabase = \"var/db.sqlite3\"\nfiles = \"var/files\"\n\n{}\n\
         [outbound]\nkind = \"smtp\"\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n\
         allow_plaintext = true\nparallel = 1\n{}",
        dovecot.config_toml(""),
        sink.port(),
        crate::util::NO_REMINDERS
    )
}

fn customer_mail(i: usize) -> Vec<u8> {
    format!(
        "From: Customer {i} <customer{i}@example.jp>\r\nTo: support@example.co.jp\r\n\
         Subject: question {i}\r\nMessage-ID: <status{i}@example.jp>\r\n\
         Date: Wed, 25 Nov 2026 10:00:00 +0900\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=UTF-8\r\n\r\n設定について質問です。\r\n"
    )
    .into_bytes()
}

#[test]
fn status_is_healthy_on_real_servers_and_degraded_when_mail_waits_for_a_dead_relay() {
    let dovecot = Dovecot::shared();
    let mut sink = SmtpSink::start();
    let desk = Desk::with_config(&service_config(&dovecot, &sink));
    // Before anything ran: no database, down (and `status` does not create one).
    let (code, doc) = status(&desk, &[]);
    assert_eq!(code, 2);
    assert_eq!(
        checks(&doc),
        vec![pair("database", "down"), pair("daemon", "down")]
    );
    assert!(!desk.dir().join("var/db.sqlite3").exists());
    desk.import_demo();

    let daemon = Daemon::start(desk.config(), desk.dir().join("daemon.log"));
    dovecot.append("INBOX", &customer_mail(1));
    wait::until(Duration::from_secs(30), "the acknowledgement", || {
        sink.received()
            .iter()
            .any(|m| m.rcpt_to.iter().any(|r| r == "customer1@example.jp"))
    });
    wait::until(Duration::from_secs(30), "a pass that sent it", || {
        let (_, doc) = status(&desk, &[]);
        doc["outbox"]["sent"].as_u64() >= Some(1) && doc["outbox"]["pending"] == 0
    });
    let (code, doc) = status(&desk, &[]);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(doc["status"], "healthy");
    assert_eq!(doc["exit_code"], 0);
    assert_eq!(doc["reasons"], serde_json::json!([]));
    assert_eq!(doc["daemon"]["running"], true);
    assert_eq!(doc["daemon"]["pid"], daemon.pid());
    assert!(doc["daemon"]["started_at"].is_string(), "{doc:#}");
    assert!(
        doc["daemon"]["lock_file"]
            .as_str()
            .is_some_and(|l| l.ends_with("db.sqlite3.lock"))
    );
    assert!(doc["last_pass"]["at"].is_string(), "{doc:#}");
    assert!(
        doc["last_pass"]["age_seconds"]
            .as_i64()
            .is_some_and(|s| s < 600)
    );
    assert!(doc["last_pass"]["duration_ms"].is_u64(), "{doc:#}");
    assert!(doc["last_pass"]["summary"].is_object(), "{doc:#}");
    assert_eq!(doc["mailbox"]["state"], "reachable");
    assert!(doc["mailbox"]["checked_at"].is_string());
    assert_eq!(
        doc["tickets"]["open"].as_u64().unwrap_or(0)
            + doc["tickets"]["waiting_acceptance"].as_u64().unwrap_or(0),
        1,
        "{doc:#}"
    );
    assert_eq!(doc["tickets"]["pending"], 0);
    assert_eq!(doc["outbox"]["failed"], 0);
    assert_eq!(doc["outbox"]["oldest_unsent_at"], Value::Null);
    assert_eq!(doc["quarantined"], 0);
    assert_eq!(doc["licenses"]["at_risk"], 0);
    assert_eq!(doc["thresholds"]["outbox_age_seconds"], 900);
    assert_eq!(doc["thresholds"]["stale_seconds"], 1800);
    let text = desk.run(&["status"]);
    assert_eq!(text.code, Some(0), "{text}");
    assert!(
        text.stdout.starts_with(&format!(
            "MADOGUCHI OK - running (pid {}), last pass ",
            daemon.pid()
        )),
        "{text}"
    );
    text.assert_stdout_has(&["outbox_pending=0", "mailbox: reachable", "tickets: "]);

    // The relay goes away; new mail is ticketed and its reply waits in the outbox.
    sink.stop();
    dovecot.append("INBOX", &customer_mail(2));
    wait::until(Duration::from_secs(30), "a reply waiting", || {
        status(&desk, &[]).1["outbox"]["pending"].as_u64() >= Some(1)
    });
    // Young: still healthy under the default limit (15 min).
    let (code, doc) = status(&desk, &[]);
    assert_eq!(code, 0, "{doc:#}");
    // Past a 1-second limit: degraded, with the reason.
    wait::until(Duration::from_secs(20), "degraded by the backlog", || {
        status(&desk, &["--outbox-age", "1s"]).0 == 1
    });
    let (_, doc) = status(&desk, &["--outbox-age", "1s"]);
    assert_eq!(doc["status"], "degraded");
    assert_eq!(doc["exit_code"], 1);
    assert_eq!(checks(&doc), vec![pair("outbox", "degraded")]);
    assert!(doc["outbox"]["oldest_unsent_age_seconds"].as_i64() >= Some(1));
    let message = doc["reasons"][0]["message"].as_str().unwrap_or("");
    assert!(
        message.contains("mail(s) unsent, the oldest for"),
        "{message}"
    );
    let text = desk.run(&["status", "--outbox-age", "1s"]);
    assert_eq!(text.code, Some(1));
    assert!(text.stdout.starts_with("MADOGUCHI WARNING - "), "{text}");
    desk.run(&["status", "--outbox-age", "soon"])
        .assert_failure()
        .assert_stderr_has(&["\"soon\" is not a duration"]);
}

#[test]
fn a_license_application_at_risk_degrades_and_a_stopped_daemon_is_down() {
    let desk = Desk::with_config(
        "[desk]\naddress = \"support@example.co.jp\"\nnotify = [\"support-team@example.co.jp\"]\n\
         form_senders = [\"license-form@example.co.jp\"]\n\n\
         [storage]\ndatabase = \"var/db.sqlite3\"\nfiles = \"var/files\"\n",
    );
    desk.import_demo();
    // Applied after the cutoff on 2026-11-25, so due 2026-11-26; no [license] section, so no
    // key is ever made: at risk on any later day (the tests run after that date).
    let form = crate::licenses::good_form("status1");
    deliver(&desk, "app.eml", &form, jst(2026, 11, 25, 17, 30));
    let mut daemon = Daemon::start(desk.config(), desk.dir().join("daemon.log"));
    wait::until(Duration::from_secs(30), "the application recorded", || {
        let (_, doc) = status(&desk, &[]);
        doc["daemon"]["pid"] == daemon.pid() && doc["licenses"]["open"] == 1
    });
    let (code, doc) = status(&desk, &[]);
    assert_eq!(code, 1, "{doc:#}");
    assert_eq!(checks(&doc), vec![pair("license", "degraded")]);
    assert_eq!(doc["licenses"]["at_risk"], 1);
    assert_eq!(doc["licenses"]["at_risk_tickets"], serde_json::json!([1]));
    desk.run(&["status"])
        .assert_code(1)
        .assert_stdout_has(&["MADOGUCHI WARNING - 1 license application(s)", "R8 at risk"]);

    daemon.signal("-TERM");
    assert!(daemon.wait(Duration::from_secs(30)).success());
    let (code, doc) = status(&desk, &[]);
    assert_eq!(code, 2);
    assert_eq!(doc["status"], "down");
    assert_eq!(
        checks(&doc),
        vec![pair("daemon", "down"), pair("license", "degraded")]
    );
    assert_eq!(doc["daemon"]["running"], false);
    assert_eq!(doc["daemon"]["pid"], Value::Null);
}

/// Delivers `raw` into the desk's default Maildir as arriving at `at`.
fn deliver(desk: &Desk, name: &str, raw: &[u8], at: chrono::DateTime<chrono::Utc>) {
    let inbox = desk.dir().join("var/inbox");
    for sub in ["new", "cur", "tmp"] {
        fs::create_dir_all(inbox.join(sub)).expect("maildir");
    }
    let path = inbox.join("new").join(name);
    fs::write(&path, raw).expect("deliver");
    fs::File::options()
        .write(true)
        .open(&path)
        .and_then(|f| f.set_modified(at.into()))
        .expect("date the delivery");
}

/// The demo's fault report, for the metrics test.
pub(crate) fn fault_report() -> Vec<u8> {
    fs::read(demo_fixture("inbox/01-fault-report-iso2022jp.eml")).expect("fixture")
}

/// Delivers `raw` into the desk's default Maildir now.
pub(crate) fn deliver_now(desk: &Desk, name: &str, raw: &[u8]) {
    let inbox = desk.dir().join("var/inbox");
    for sub in ["new", "cur", "tmp"] {
        fs::create_dir_all(inbox.join(sub)).expect("maildir");
    }
    fs::write(inbox.join("new").join(name), raw).expect("deliver");
}

#[test]
fn processes_opening_a_new_database_at_once_migrate_it_once_without_failing() {
    for round in 0..3 {
        let desk = Desk::new();
        let children: Vec<_> = (0..6)
            .map(|i| {
                let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_madoguchi"));
                command
                    .current_dir(desk.dir())
                    .args(["--config", arg(desk.config())]);
                if i % 2 == 0 {
                    command.args(["--json", "status"]);
                } else {
                    command.args(["run", "--once"]);
                }
                command
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .expect("spawn")
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().expect("wait");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                !stderr.contains("cannot") || stderr.contains("already running"),
                "round {round}: {stderr}"
            );
        }
        let store = madoguchi::store::Store::open(&desk.dir().join("var/db.sqlite3"))
            .expect("the database");
        let fresh = tempfile::tempdir().expect("temp dir");
        let newest = madoguchi::store::Store::open(&fresh.path().join("new.sqlite3"))
            .and_then(|s| s.schema_version())
            .expect("a new database");
        assert_eq!(store.schema_version().expect("version"), newest);
    }
}
