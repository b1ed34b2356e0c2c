//! SMTP sending against a real server (the aiosmtpd sink on loopback): byte-exact delivery and
//! envelopes, 4xx/5xx classification, the server going away and coming back, and the desk's
//! outbox driven end to end over SMTP.

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use madoguchi::config::{Config, Credentials, Secret, SmtpConfig, Tls};
use madoguchi::core::reply::{OutgoingKind, OutgoingMail};
use madoguchi::desk::Desk;
use madoguchi::endpoints::MailSender;
use madoguchi::import::{parse_contracts, parse_orders};
use madoguchi::intake::maildir::Maildir;
use madoguchi::outbound::smtp::SmtpSender;
use madoguchi::outbound::{Queued, ReplyCharset, SendError, Sender, compose};

use crate::smtp_sink::SmtpSink;
use crate::util::demo_fixture;
use crate::util::{block_on, jst};

fn config(port: u16, parallel: u32) -> SmtpConfig {
    SmtpConfig {
        host: "127.0.0.1".to_string(),
        port,
        tls: Tls::None,
        auth: None,
        parallel,
        timeout: Duration::from_secs(5),
    }
}

fn plain(id: i64, to: &[&str], body: &str) -> Queued {
    let message_id = format!("plain-{id}@desk.example.co.jp");
    Queued {
        outbox_id: id,
        sender: "support@example.co.jp".to_string(),
        recipients: to.iter().map(|s| s.to_string()).collect(),
        raw: format!(
            "From: support@example.co.jp\r\nTo: {}\r\nSubject: test {id}\r\n\
             Message-ID: <{message_id}>\r\nMIME-Version: 1.0\r\n\
             Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: 8bit\r\n\
             \r\n{body}",
            to.join(", ")
        )
        .into_bytes(),
        message_id,
    }
}

fn composed(id: i64, to: &str) -> Queued {
    let mail = OutgoingMail {
        kind: OutgoingKind::StaffNotification,
        ticket: 7,
        to: vec![to.to_string()],
        reply_to: None,
        attachments: Vec::new(),
        files: Vec::new(),
        subject: "[NEO-DS#000007] 新規チケット".to_string(),
        body: "お問い合わせを受け付けました。\n.先頭のドット\n".to_string(),
        in_reply_to: Some("q1@alpha.example.co.jp".to_string()),
        references: vec!["q1@alpha.example.co.jp".to_string()],
    };
    let message_id = format!("composed-{id}@desk.example.co.jp");
    let c = compose(
        ReplyCharset::Utf8,
        &mail,
        "support@example.co.jp",
        "サポート窓口",
        &message_id,
        Utc.with_ymd_and_hms(2026, 11, 25, 1, 0, 0)
            .single()
            .expect("time"),
        &[],
    )
    .expect("compose");
    Queued {
        outbox_id: id,
        message_id: c.message_id,
        sender: c.sender,
        recipients: c.recipients,
        raw: c.raw,
    }
}

#[track_caller]
fn assert_temporary(result: &Result<(), SendError>, needle: &str) {
    match result {
        Err(SendError::Temporary(why)) => assert!(why.contains(needle), "{why}"),
        other => panic!("expected a temporary failure with {needle:?}, got {other:?}"),
    }
}

#[test]
fn smtp_delivers_a_batch_byte_for_byte_with_its_envelopes() {
    let sink = SmtpSink::start();
    let mut sender = SmtpSender::new(&config(sink.port(), 3));
    let batch = vec![
        composed(1, "yamada@alpha.example.co.jp"),
        plain(
            2,
            &["a@beta.example.jp", "b@beta.example.jp"],
            // Dot-stuffing, an 8-bit body, a lone dot line.
            ".starts with a dot\r\n.\r\n日本語の本文\r\n",
        ),
        plain(3, &["c@gamma.example.co.jp"], "no final line end"),
        composed(4, "suzuki@beta.example.jp"),
        plain(5, &["d@zeta.example.jp"], "short\r\n"),
    ];
    let results = block_on(sender.send_all(&batch));
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert!(sender.open_connections() >= 1 && sender.open_connections() <= 3);

    let mut received = sink.received();
    assert_eq!(received.len(), batch.len());
    // Parallel connections may reorder arrivals; match by Message-ID.
    for queued in &batch {
        let needle = format!("Message-ID: <{}>", queued.message_id);
        let at = received
            .iter()
            .position(|r| String::from_utf8_lossy(&r.data).contains(&needle))
            .unwrap_or_else(|| panic!("{} not received", queued.message_id));
        let got = received.remove(at);
        assert_eq!(got.mail_from, queued.sender);
        assert_eq!(got.rcpt_to, queued.recipients);
        if queued.raw.ends_with(b"\r\n") {
            assert_eq!(
                got.data,
                queued.raw,
                "{}: {}",
                queued.message_id,
                String::from_utf8_lossy(&got.data)
            );
        } else {
            // SMTP data always ends with a line end; nothing else is changed.
            assert_eq!(got.data, [queued.raw.as_slice(), b"\r\n"].concat());
        }
    }

    // The same sender keeps working on its kept-open connections.
    let again = block_on(sender.send(&plain(6, &["e@example.jp"], "again\r\n")));
    assert!(again.is_ok(), "{again:?}");
    assert_eq!(sink.messages().len(), 6);
}

#[test]
fn smtp_4xx_is_temporary_and_5xx_permanent_with_the_servers_text() {
    let sink = SmtpSink::start();
    let mut sender = SmtpSender::new(&config(sink.port(), 1));
    let message = plain(1, &["a@example.jp"], "hello\r\n");

    sink.set_mode("tempfail");
    assert_temporary(&block_on(sender.send(&message)), "451");
    sink.set_mode("tempfail-data");
    assert_temporary(&block_on(sender.send(&message)), "451");

    sink.set_mode("permfail");
    match block_on(sender.send(&message)) {
        Err(SendError::Permanent(why)) => {
            assert!(why.contains("550"), "{why}");
            assert!(why.contains("Sink in permfail mode"), "{why}");
        }
        other => panic!("expected a permanent failure, got {other:?}"),
    }
    sink.set_mode("permfail-data");
    match block_on(sender.send(&message)) {
        Err(SendError::Permanent(why)) => assert!(why.contains("554"), "{why}"),
        other => panic!("expected a permanent failure, got {other:?}"),
    }
    assert!(sink.messages().is_empty());

    // A refused message does not cost the connection (RSET), and nothing leaks into the next.
    assert_eq!(sender.open_connections(), 1);
    sink.set_mode("accept");
    let ok = block_on(sender.send(&message));
    assert!(ok.is_ok(), "{ok:?}");
    let received = sink.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].rcpt_to, vec!["a@example.jp".to_string()]);

    // Addresses that can never work are permanent without asking the server.
    let mut bad = plain(2, &["not an address"], "x\r\n");
    assert!(matches!(
        block_on(sender.send(&bad)),
        Err(SendError::Permanent(_))
    ));
    bad.recipients.clear();
    assert!(matches!(
        block_on(sender.send(&bad)),
        Err(SendError::Permanent(_))
    ));
}

#[test]
fn smtp_server_down_is_temporary_and_the_same_sender_reconnects_when_it_is_back() {
    let mut sink = SmtpSink::start();
    let mut sender = SmtpSender::new(&config(sink.port(), 2));
    let ok = block_on(sender.send(&plain(1, &["a@example.jp"], "one\r\n")));
    assert!(ok.is_ok(), "{ok:?}");

    // Down: the kept-open connection is dead and a new one is refused.
    sink.stop();
    let batch: Vec<Queued> = (2..6)
        .map(|i| plain(i, &["a@example.jp"], "down\r\n"))
        .collect();
    let results = block_on(sender.send_all(&batch));
    assert_eq!(results.len(), batch.len());
    for r in &results {
        assert_temporary(r, "refused");
    }
    assert_eq!(sender.open_connections(), 0);

    // Back on the same port: the same sender delivers the batch.
    sink.start_again();
    let results = block_on(sender.send_all(&batch));
    assert!(results.iter().all(Result::is_ok), "{results:?}");

    // Restarted while our connections sat idle: the stale ones are replaced, no failure.
    sink.start_again();
    let ok = block_on(sender.send(&plain(9, &["a@example.jp"], "after restart\r\n")));
    assert!(ok.is_ok(), "{ok:?}");
    assert_eq!(sink.messages().len(), 1 + batch.len() + 1);
}

#[test]
fn smtp_tls_trouble_is_temporary_and_never_falls_back_to_plaintext() {
    let sink = SmtpSink::start();
    let message = plain(1, &["a@example.jp"], "secret reply\r\n");
    // The sink speaks plaintext: an implicit-TLS handshake with it fails.
    let mut implicit = SmtpSender::new(&SmtpConfig {
        tls: Tls::Implicit,
        ..config(sink.port(), 1)
    });
    assert_temporary(&block_on(implicit.send(&message)), "TLS");
    // It does not offer STARTTLS: we refuse to continue in clear.
    let mut starttls = SmtpSender::new(&SmtpConfig {
        tls: Tls::StartTls,
        ..config(sink.port(), 1)
    });
    assert_temporary(
        &block_on(starttls.send(&message)),
        "STARTTLS is not offered",
    );
    assert!(sink.messages().is_empty());
}

const TLS_CHILD: &str = "MADOGUCHI_SMTP_TLS_TEST_CHILD";

/// STARTTLS and implicit TLS to a relay whose certificate comes from a private CA. The system
/// roots must trust that CA, which they do through `SSL_CERT_FILE`; as in the IMAP TLS test, the
/// trusting part runs in a child run of this test binary with the variable set.
#[test]
fn smtp_starttls_and_implicit_tls_deliver_when_the_certificate_is_trusted() {
    let send = |tls: Tls, port: u16| {
        let mut sender = SmtpSender::new(&SmtpConfig {
            tls,
            ..config(port, 1)
        });
        block_on(sender.send(&plain(1, &["a@example.jp"], "over TLS\r\n")))
    };
    if let Ok(ports) = std::env::var(TLS_CHILD) {
        let (starttls, implicit) = ports.split_once(',').expect("two ports");
        for (tls, port) in [(Tls::StartTls, starttls), (Tls::Implicit, implicit)] {
            let sent = send(tls, port.parse().expect("port"));
            assert!(sent.is_ok(), "{tls}: {sent:?}");
        }
        return;
    }

    let certs = tempfile::tempdir().expect("temp dir");
    crate::dovecot::make_certificates(certs.path());
    let (cert, key) = (
        certs.path().join("server.pem"),
        certs.path().join("server.key"),
    );
    let starttls = SmtpSink::start_tls(&cert, &key, false);
    let implicit = SmtpSink::start_tls(&cert, &key, true);
    // Without the CA among the trusted roots: nothing is sent, and it is worth a retry.
    assert_temporary(&send(Tls::StartTls, starttls.port()), "STARTTLS");
    assert_temporary(&send(Tls::Implicit, implicit.port()), "TLS handshake");

    crate::util::run_trusting(
        "smtp::smtp_starttls_and_implicit_tls_deliver_when_the_certificate_is_trusted",
        &certs.path().join("ca.pem"),
        TLS_CHILD,
        &format!("{},{}", starttls.port(), implicit.port()),
    );
    for sink in [&starttls, &implicit] {
        let received = sink.messages();
        assert_eq!(received.len(), 1);
        assert!(has(&received[0], "over TLS"));
    }
}

#[test]
fn smtp_auth_reads_the_password_when_connecting_and_a_refused_login_is_temporary() {
    let sink = SmtpSink::start_with_auth("desk", "correct-horse");
    let dir = tempfile::tempdir().expect("temp dir");
    let password_file = dir.path().join("smtp-password");
    fs::write(&password_file, "wrong-battery\n").expect("password file");
    let mut sender = SmtpSender::new(&SmtpConfig {
        auth: Some(Credentials {
            user: "desk".to_string(),
            password: Secret::file(&password_file),
        }),
        ..config(sink.port(), 1)
    });
    let message = plain(1, &["a@example.jp"], "hello\r\n");
    // A refused login is the account's problem, not the message's: retried, not failed.
    let refused = block_on(sender.send(&message));
    assert_temporary(&refused, "535");
    assert!(!format!("{refused:?}").contains("wrong-battery"));
    // The admin fixes the file; the next connection reads it, no restart.
    fs::write(&password_file, "correct-horse\n").expect("password file");
    let ok = block_on(sender.send(&message));
    assert!(ok.is_ok(), "{ok:?}");
    assert_eq!(sink.messages().len(), 1);
}

// ───────────────────────────── the desk over SMTP ─────────────────────────────

pub(crate) struct SmtpDesk {
    _dir: tempfile::TempDir,
    inbox: PathBuf,
    pub(crate) desk: Desk,
    sender: MailSender,
}

#[derive(Debug)]
pub(crate) struct Row {
    pub(crate) state: String,
    pub(crate) attempts: i64,
    pub(crate) next_attempt_at: DateTime<Utc>,
    pub(crate) last_error: Option<String>,
}

impl SmtpDesk {
    /// A desk whose `[outbound]` is the sink, configured as an admin would.
    pub(crate) fn new(sink: &SmtpSink) -> SmtpDesk {
        let dir = tempfile::tempdir().expect("temp dir");
        let toml = format!(
            "[desk]\n\
             address = \"support@example.co.jp\"\n\
             staff = [\"tanaka@example.co.jp\"]\n\
             notify = [\"support-team@example.co.jp\"]\n\
             \n\
             [outbound]\n\
             kind = \"smtp\"\n\
             host = \"127.0.0.1\"\n\
             port = {}\n\
             tls = \"none\"\n\
             allow_plaintext = true\n\
             timeout = \"5s\"\n{}",
            sink.port(),
            crate::util::NO_REMINDERS
        );
        fs::write(dir.path().join("madoguchi.toml"), toml).expect("config");
        let config = Config::load(dir.path().join("madoguchi.toml")).expect("valid config");
        let sender = MailSender::open(&config).expect("smtp sender");
        let mut desk = Desk::open(config).expect("desk");
        let read = |name: &str| fs::read(demo_fixture(name)).expect("fixture");
        let contracts =
            parse_contracts("contracts.csv", read("contracts.csv").as_slice()).expect("contracts");
        let orders = parse_orders("orders.csv", read("orders.csv").as_slice()).expect("orders");
        desk.store_mut()
            .import_contracts(&contracts, Some(&orders))
            .expect("import");
        SmtpDesk {
            inbox: dir.path().join("var/inbox"),
            _dir: dir,
            desk,
            sender,
        }
    }

    pub(crate) fn deliver(&self, name: &str, raw: &[u8]) {
        let new = self.inbox.join("new");
        fs::create_dir_all(&new).expect("inbox");
        fs::write(new.join(name), raw).expect("deliver");
    }

    pub(crate) fn pass(&mut self, now: DateTime<Utc>) {
        let mut source = Maildir::open(&self.inbox).expect("maildir");
        block_on(self.desk.pass(&mut source, &mut self.sender, now)).expect("pass");
    }

    /// The outbox row of the mail to `to`.
    pub(crate) fn row(&self, to: &str) -> Row {
        let rows = self
            .desk
            .store()
            .select_text(
                "SELECT state, attempts, next_attempt_at, last_error FROM outbox
                 WHERE recipients LIKE '%' || ?1 || '%' ORDER BY id LIMIT 1",
                &[to],
            )
            .expect("outbox row");
        let cells = rows.into_iter().next().expect("an outbox row");
        let cell = |i: usize| cells.get(i).cloned().flatten();
        Row {
            state: cell(0).expect("state"),
            attempts: cell(1).and_then(|a| a.parse().ok()).expect("attempts"),
            next_attempt_at: DateTime::parse_from_rfc3339(&cell(2).expect("next attempt"))
                .expect("RFC 3339")
                .with_timezone(&Utc),
            last_error: cell(3),
        }
    }
}

pub(crate) const CUSTOMER: &str = "yamada@alpha.example.co.jp";

pub(crate) fn customer_mail(id: &str) -> Vec<u8> {
    format!(
        "From: Yamada <{CUSTOMER}>\r\nTo: support@example.co.jp\r\nSubject: 同期エラー\r\n\
         Message-ID: <{id}>\r\nDate: Wed, 25 Nov 2026 10:00:00 +0900\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=UTF-8\r\n\r\nお世話になっております。\r\n"
    )
    .into_bytes()
}

/// Messages at the sink addressed (envelope) to `to`.
pub(crate) fn at_sink(sink: &SmtpSink, to: &str) -> Vec<Vec<u8>> {
    sink.received()
        .into_iter()
        .filter(|r| r.rcpt_to.iter().any(|t| t == to))
        .map(|r| r.data)
        .collect()
}

pub(crate) fn has(data: &[u8], needle: &str) -> bool {
    String::from_utf8_lossy(data).contains(needle)
}

#[test]
fn smtp_desk_acknowledgement_arrives_at_the_server_and_the_row_is_sent() {
    let sink = SmtpSink::start();
    let mut t = SmtpDesk::new(&sink);
    t.deliver("1.test", &customer_mail("q1@alpha.example.co.jp"));
    t.pass(jst(2026, 11, 25, 10, 1));

    let acks = at_sink(&sink, CUSTOMER);
    assert_eq!(acks.len(), 1);
    assert!(has(&acks[0], "In-Reply-To: <q1@alpha.example.co.jp>"));
    assert!(has(&acks[0], "Auto-Submitted: auto-replied"));
    assert_eq!(at_sink(&sink, "support-team@example.co.jp").len(), 1);
    let row = t.row(CUSTOMER);
    assert_eq!((row.state.as_str(), row.attempts), ("sent", 1), "{row:?}");
}

#[test]
fn smtp_desk_tempfail_keeps_the_row_pending_and_a_later_pass_sends_it_once() {
    let sink = SmtpSink::start();
    let mut t = SmtpDesk::new(&sink);
    sink.set_mode("tempfail");
    t.deliver("1.test", &customer_mail("q1@alpha.example.co.jp"));
    let now = jst(2026, 11, 25, 10, 1);
    t.pass(now);

    assert!(sink.messages().is_empty());
    let row = t.row(CUSTOMER);
    assert_eq!(
        (row.state.as_str(), row.attempts),
        ("pending", 1),
        "{row:?}"
    );
    assert!(row.next_attempt_at > now, "{row:?}");
    assert!(
        row.last_error.as_deref().is_some_and(|e| e.contains("451")),
        "{row:?}"
    );

    // Before the retry time nothing is tried; the server is fine again meanwhile.
    sink.set_mode("accept");
    t.pass(now);
    assert!(sink.messages().is_empty());
    t.pass(row.next_attempt_at + chrono::Duration::seconds(1));
    t.pass(row.next_attempt_at + chrono::Duration::minutes(10));
    assert_eq!(at_sink(&sink, CUSTOMER).len(), 1, "sent exactly once");
    let row = t.row(CUSTOMER);
    assert_eq!((row.state.as_str(), row.attempts), ("sent", 2), "{row:?}");
    assert_eq!(row.last_error, None);
}

#[test]
fn smtp_desk_permfail_marks_the_row_failed_with_the_reply() {
    let sink = SmtpSink::start();
    let mut t = SmtpDesk::new(&sink);
    sink.set_mode("permfail");
    t.deliver("1.test", &customer_mail("q1@alpha.example.co.jp"));
    let now = jst(2026, 11, 25, 10, 1);
    t.pass(now);

    let row = t.row(CUSTOMER);
    assert_eq!(row.state, "failed", "{row:?}");
    assert!(
        row.last_error
            .as_deref()
            .is_some_and(|e| e.contains("550") && e.contains("permfail")),
        "{row:?}"
    );
    // Failed stays failed: a later pass with the server accepting does not send it.
    sink.set_mode("accept");
    t.pass(now + chrono::Duration::hours(2));
    assert!(at_sink(&sink, CUSTOMER).is_empty());
}
