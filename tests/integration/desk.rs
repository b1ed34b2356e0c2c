//! The desk on the embedded default, driven through the library with a fixed clock: Maildir in,
//! SQLite, outbox files out. Covers issue 3's pipeline, threading, the guard and exactly-once.

use std::fs;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use madoguchi::config::Config;
use madoguchi::desk::{Desk, PassSummary};
use madoguchi::import::{parse_contracts, parse_orders};
use madoguchi::intake::maildir::Maildir;
use madoguchi::intake::{Ack, Incoming, IntakeError, Source};
use madoguchi::mail::{PARSER_FAILED, ReadOptions, read_message, read_message_with};
use madoguchi::outbound::file::FileSender;

use crate::util::{block_on, jst};
use crate::util::{corpus_dir, demo_fixture};

const CONFIG: &str = r#"[desk]
address = "support@example.co.jp"
staff = ["tanaka@example.co.jp"]
notify = ["support-team@example.co.jp"]
form_senders = ["form@example.co.jp", "license-form@example.co.jp"]
"#;

pub(crate) struct TestDesk {
    _dir: tempfile::TempDir,
    pub(crate) root: PathBuf,
    pub(crate) desk: Desk,
    delivered: usize,
}

impl TestDesk {
    pub(crate) fn new() -> Self {
        Self::with_desk_keys("")
    }

    /// A desk whose `[desk]` table has these extra keys.
    pub(crate) fn with_desk_keys(extra: &str) -> Self {
        Self::with_config(&format!("{CONFIG}{extra}\n{}", crate::util::NO_REMINDERS))
    }

    /// A desk with renewal reminders, staff reminders and the digest at their defaults.
    pub(crate) fn with_reminders() -> Self {
        Self::with_reminders_and("")
    }

    /// [`TestDesk::with_reminders`], with these extra `[desk]` keys (or later tables).
    pub(crate) fn with_reminders_and(extra: &str) -> Self {
        Self::with_config(&format!("{CONFIG}{extra}\n"))
    }

    fn with_config(toml: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().to_path_buf();
        fs::write(root.join("madoguchi.toml"), toml).expect("config");
        let config = Config::load(root.join("madoguchi.toml")).expect("valid config");
        let mut desk = Desk::open(config).expect("desk");
        let contracts = parse_contracts(
            "contracts.csv",
            fs::read(demo_fixture("contracts.csv"))
                .expect("fixture")
                .as_slice(),
        )
        .expect("demo contracts");
        let orders = parse_orders(
            "orders.csv",
            fs::read(demo_fixture("orders.csv"))
                .expect("fixture")
                .as_slice(),
        )
        .expect("demo orders");
        desk.store_mut()
            .import_contracts(&contracts, Some(&orders))
            .expect("import");
        TestDesk {
            _dir: dir,
            root,
            desk,
            delivered: 0,
        }
    }

    pub(crate) fn inbox(&self) -> PathBuf {
        self.root.join("var/inbox")
    }

    pub(crate) fn outbox(&self) -> PathBuf {
        self.root.join("var/outbox")
    }

    /// Delivers raw mail into `new/` as an MDA would, at `at`.
    pub(crate) fn deliver(&mut self, raw: &[u8], at: DateTime<Utc>) -> PathBuf {
        fs::create_dir_all(self.inbox().join("new")).expect("inbox");
        self.delivered += 1;
        let path = self
            .inbox()
            .join("new")
            .join(format!("{:06}.test", self.delivered));
        fs::write(&path, raw).expect("deliver");
        fs::File::options()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_modified(at.into()))
            .expect("set delivery time");
        path
    }

    /// A plain customer mail delivered at `at`, then a pass at `now`.
    pub(crate) fn exchange(
        &mut self,
        from: &str,
        subject: &str,
        message_id: &str,
        at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> PassSummary {
        self.deliver(&simple_mail(from, subject, message_id, ""), at);
        self.pass(now)
    }

    pub(crate) fn pass(&mut self, now: DateTime<Utc>) -> PassSummary {
        let mut source = Maildir::open(&self.inbox()).expect("maildir");
        let mut sender = FileSender::new(self.outbox());
        block_on(self.desk.pass(&mut source, &mut sender, now)).expect("pass")
    }

    /// Every mail in the outbox, parsed back, in queue order.
    pub(crate) fn sent(&self) -> Vec<(String, madoguchi::core::inbound::InboundMail, String)> {
        let mut files: Vec<PathBuf> = fs::read_dir(self.outbox())
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        files.sort();
        files
            .into_iter()
            .map(|p| {
                let raw = fs::read(&p).expect("outbox file");
                let text = String::from_utf8_lossy(&raw).into_owned();
                let mail = read_message(&raw, &[]).mail;
                let to = mail
                    .to
                    .first()
                    .map(|m| m.address.clone())
                    .unwrap_or_default();
                (to, mail, text)
            })
            .collect()
    }

    pub(crate) fn count(&self, sql: &str) -> i64 {
        crate::util::count(&self.desk.store(), sql)
    }
}

pub(crate) fn simple_mail(from: &str, subject: &str, message_id: &str, extra: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: support@example.co.jp\r\nSubject: {subject}\r\nMessage-ID: <{message_id}>\r\n\
         Date: Wed, 25 Nov 2026 10:00:00 +0900\r\n{extra}MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=UTF-8\r\n\r\nお世話になっております。\r\n"
    )
    .into_bytes()
}

fn demo_mails() -> Vec<(String, Vec<u8>)> {
    let mut names: Vec<PathBuf> = fs::read_dir(demo_fixture("inbox"))
        .expect("demo inbox")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    names.sort();
    assert!(!names.is_empty(), "fixtures/demo/inbox is empty");
    names
        .into_iter()
        .map(|p| {
            (
                p.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
                fs::read(&p).expect("eml"),
            )
        })
        .collect()
}

#[test]
fn the_demo_inbox_becomes_tickets_and_japanese_replies_exactly_once() {
    let mut t = TestDesk::new();
    for (_, raw) in demo_mails() {
        let sent_at = read_message(&raw, &[])
            .mail
            .date
            .map(|d| d.with_timezone(&Utc));
        t.deliver(&raw, sent_at.unwrap_or(jst(2026, 11, 24, 10, 0)));
    }
    let now = jst(2026, 11, 25, 12, 30);
    let s = t.pass(now);
    assert_eq!(
        (s.messages, s.new_tickets, s.recorded, s.quarantined),
        (9, 7, 2, 0),
        "{s:?}"
    );
    // Nothing is left unacknowledged, and a second pass finds nothing to do.
    assert_eq!(fs::read_dir(t.inbox().join("new")).expect("new").count(), 0);
    let again = t.pass(now);
    assert_eq!(again.messages + again.already_seen, 0, "{again:?}");
    assert_eq!(t.count("SELECT COUNT(*) FROM tickets"), 7);

    let sent = t.sent();
    let replies: Vec<_> = sent
        .iter()
        .filter(|(to, _, _)| to != "support-team@example.co.jp")
        .collect();
    let notices = sent.len() - replies.len();
    assert_eq!((replies.len(), notices), (7, 7));
    for (to, mail, text) in &replies {
        assert!(
            mail.subject.starts_with("[NEO-DS#0000"),
            "{to}: {}",
            mail.subject
        );
        assert!(text.contains("Auto-Submitted: auto-replied"), "{to}");
        assert!(
            !mail.in_reply_to.is_empty(),
            "{to}: a reply threads to the customer's mail"
        );
        assert!(
            mail.text.contains("受付番号：NEO-DS#0000"),
            "{to}: {}",
            mail.text
        );
        assert!(mail.text.contains("受付日時："), "{to}");
    }
    let reply_to = |addr: &str| {
        replies
            .iter()
            .find(|(to, _, _)| to == addr)
            .map(|(_, m, _)| m.text.clone())
            .unwrap_or_else(|| panic!("no reply to {addr}"))
    };
    // The fault report sent on the 23rd (a holiday) is accepted at the next opening.
    assert!(reply_to("yamada@alpha.example.co.jp").contains("2026年11月24日(火) 09:00"));
    // The license application at 17:05 is due the next business day (R8).
    let license = replies
        .iter()
        .find(|(to, m, _)| to == "suzuki@beta.example.jp" && m.subject.contains("ライセンス"))
        .map(|(_, m, _)| m.text.clone())
        .expect("license application acknowledged");
    assert!(license.contains("2026年11月25日(水) までに"), "{license}");
    // Expired contract: renewal explained (R10); unknown sender: asked for the customer number.
    assert!(reply_to("takahashi@gamma.example.co.jp").contains("更新"));
    assert!(reply_to("nakamura@zeta.example.jp").contains("お客様番号"));
    // Base-product question without NEO support: the R3 reply.
    assert!(reply_to("sato@alpha.example.co.jp").contains("desknet's NEO 年間サポート"));
}

#[test]
fn follow_ups_thread_by_our_message_id_and_a_tag_alone_does_not_hijack() {
    let mut t = TestDesk::new();
    t.deliver(
        &simple_mail(
            "Yamada <yamada@alpha.example.co.jp>",
            "同期エラー",
            "q1@alpha.example.co.jp",
            "",
        ),
        jst(2026, 11, 25, 10, 0),
    );
    t.pass(jst(2026, 11, 25, 10, 1));
    let ack = t
        .sent()
        .into_iter()
        .find(|(to, _, _)| to == "yamada@alpha.example.co.jp")
        .expect("ack");
    let our_id = ack.1.message_id.clone().expect("our Message-ID");

    // The customer answers our acknowledgement with an edited subject: threads by In-Reply-To.
    let extra =
        format!("In-Reply-To: <{our_id}>\r\nReferences: <q1@alpha.example.co.jp> <{our_id}>\r\n");
    t.deliver(
        &simple_mail(
            "yamada@alpha.example.co.jp",
            "追加情報",
            "q2@alpha.example.co.jp",
            &extra,
        ),
        jst(2026, 11, 25, 11, 0),
    );
    let s = t.pass(jst(2026, 11, 25, 11, 1));
    assert_eq!((s.follow_ups, s.new_tickets), (1, 0), "{s:?}");

    // A stranger with the tag in the subject gets a ticket of their own.
    let s = t.exchange(
        "attacker@evil.example",
        "Re: [NEO-DS#000001] 同期エラー",
        "x1@evil.example",
        jst(2026, 11, 25, 11, 5),
        jst(2026, 11, 25, 11, 6),
    );
    assert_eq!((s.follow_ups, s.new_tickets), (0, 1), "{s:?}");
    // A registered contact of the same contract may use the tag.
    let s = t.exchange(
        "sato@alpha.example.co.jp",
        "Re: [NEO-DS#000001] 同期エラー",
        "q3@alpha.example.co.jp",
        jst(2026, 11, 25, 11, 10),
        jst(2026, 11, 25, 11, 11),
    );
    assert_eq!((s.follow_ups, s.new_tickets), (1, 0), "{s:?}");
    assert_eq!(
        t.count("SELECT COUNT(*) FROM articles WHERE ticket = 1 AND direction = 'in'"),
        3
    );

    // Closed, then a follow-up within 14 days reopens; after 14 days a new ticket continues it.
    t.desk
        .store_mut()
        .close_ticket(1, jst(2026, 11, 26, 10, 0))
        .expect("close");
    let s = t.exchange(
        "yamada@alpha.example.co.jp",
        "Re: [NEO-DS#000001] 再発",
        "q4@alpha.example.co.jp",
        jst(2026, 12, 1, 10, 0),
        jst(2026, 12, 1, 10, 1),
    );
    assert_eq!((s.follow_ups, s.new_tickets), (1, 0), "{s:?}");
    assert_eq!(
        t.count("SELECT COUNT(*) FROM tickets WHERE number = 1 AND state = 'open'"),
        1
    );
    t.desk
        .store_mut()
        .close_ticket(1, jst(2026, 12, 2, 10, 0))
        .expect("close");
    let s = t.exchange(
        "yamada@alpha.example.co.jp",
        "Re: [NEO-DS#000001] また",
        "q5@alpha.example.co.jp",
        jst(2026, 12, 17, 10, 0),
        jst(2026, 12, 17, 10, 1),
    );
    assert_eq!((s.follow_ups, s.new_tickets), (0, 1), "{s:?}");
    assert_eq!(
        t.count("SELECT COUNT(*) FROM tickets WHERE continues = 1"),
        1
    );
}

/// A source that records but fails to acknowledge: the crash between commit and ack.
struct AckFails(Maildir);

impl Source for AckFails {
    fn name(&self) -> String {
        self.0.name()
    }
    async fn fetch(&mut self, max: usize) -> Result<Vec<Incoming>, IntakeError> {
        self.0.fetch(max).await
    }
    async fn wait_for_mail(&mut self, at_most: std::time::Duration) -> Result<(), IntakeError> {
        self.0.wait_for_mail(at_most).await
    }
    async fn ack(&mut self, m: &Incoming, _: Ack) -> Result<(), IntakeError> {
        Err(IntakeError::Ack {
            path: m.handle.clone(),
            source: std::io::Error::other("simulated crash before the acknowledgement"),
        })
    }
}

#[test]
fn a_crash_before_the_acknowledgement_and_a_redelivery_never_ticket_twice() {
    let mut t = TestDesk::new();
    let raw = simple_mail(
        "yamada@alpha.example.co.jp",
        "質問",
        "dup@alpha.example.co.jp",
        "",
    );
    t.deliver(&raw, jst(2026, 11, 25, 10, 0));
    let mut failing = AckFails(Maildir::open(&t.inbox()).expect("maildir"));
    let mut sender = FileSender::new(t.outbox());
    assert!(
        block_on(
            t.desk
                .pass(&mut failing, &mut sender, jst(2026, 11, 25, 10, 1))
        )
        .is_err()
    );
    // Restarted: the message is still in new/, recognised, acknowledged, not ticketed again.
    let s = t.pass(jst(2026, 11, 25, 10, 2));
    assert_eq!((s.messages, s.already_seen), (0, 1), "{s:?}");
    // The same message delivered again under another name: a recorded duplicate.
    t.deliver(&raw, jst(2026, 11, 25, 10, 3));
    let s = t.pass(jst(2026, 11, 25, 10, 4));
    assert_eq!((s.duplicates, s.new_tickets), (1, 0), "{s:?}");
    assert_eq!(t.count("SELECT COUNT(*) FROM tickets"), 1);
    assert_eq!(
        t.count("SELECT COUNT(*) FROM outbox WHERE kind = 'acknowledgement'"),
        1
    );
}

#[test]
fn automatic_mail_gets_no_reply_and_a_flood_is_capped() {
    let mut t = TestDesk::new();
    let autos = [
        "Auto-Submitted: auto-replied\r\n",
        "Precedence: bulk\r\n",
        "List-Id: <users.lists.example>\r\n",
        "X-Auto-Response-Suppress: All\r\n",
        "X-Madoguchi-Loop: support@example.co.jp\r\n",
    ];
    for (i, extra) in autos.iter().enumerate() {
        t.deliver(
            &simple_mail(
                "someone@unknown.example",
                "自動",
                &format!("a{i}@unknown.example"),
                extra,
            ),
            jst(2026, 11, 25, 10, 0),
        );
    }
    t.deliver(
        &simple_mail("support@example.co.jp", "loop", "self@example.co.jp", ""),
        jst(2026, 11, 25, 10, 0),
    );
    let s = t.exchange(
        "MAILER-DAEMON@mx.example",
        "Undelivered Mail Returned to Sender",
        "b@mx.example",
        jst(2026, 11, 25, 10, 0),
        jst(2026, 11, 25, 10, 1),
    );
    assert_eq!((s.recorded, s.new_tickets), (7, 0), "{s:?}");
    assert!(t.sent().is_empty());

    for i in 0..8 {
        t.deliver(
            &simple_mail(
                "flood@unknown.example",
                "質問",
                &format!("f{i}@unknown.example"),
                "",
            ),
            jst(2026, 11, 25, 10, 10),
        );
    }
    let s = t.pass(jst(2026, 11, 25, 10, 11));
    assert_eq!(s.new_tickets, 8);
    assert_eq!(
        t.count("SELECT COUNT(*) FROM outbox WHERE auto_reply_to = 'flood@unknown.example'"),
        5
    );
}

fn mail_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            mail_files(&p, out);
        } else {
            let name = p
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .to_ascii_lowercase();
            let skip = [
                "license", "readme", ".json", ".yml", ".yaml", ".csv", ".rb", ".go", ".cs", ".js",
                ".php", ".py", ".md", ".pl", ".c", ".h",
            ];
            if !skip.iter().any(|s| name.contains(s)) {
                out.push(p);
            }
        }
    }
}

/// Issue 3's corpus test: every third-party message goes through the whole desk without a
/// panic and ends with a verdict; not one automatic reply goes to a bounce. The reader turns a
/// panic of the MIME parser into a defect (which the desk does not store), so each message is
/// also read here the way the desk reads it: a caught panic is a failure too.
#[test]
fn the_corpora_go_through_the_desk_and_bounces_get_no_reply() {
    let Some(corpus) = corpus_dir() else {
        assert!(
            std::env::var_os("MADOGUCHI_CORPUS").is_none(),
            "MADOGUCHI_CORPUS is set but missing"
        );
        println!("corpus not found; skipped");
        return;
    };
    let groups: [(&str, &[&str]); 2] = [
        (
            "bounces",
            &[
                "bounces-sisimai/maildir/bsd",
                "bounces-sisimai/maildir/dos",
                "bounces-sisimai/maildir/tmp",
            ],
        ),
        (
            "other mail",
            &[
                "bounces-sisimai/maildir/not",
                "mime-stalwart",
                "mime-mikel-mail",
                "mime-enmime",
                "mime-mimekit",
                "mime-nodemailer",
                "mime-php-mime-mail-parser",
                "japanese",
                "ham-ksummit-discuss",
            ],
        ),
    ];
    for (label, dirs) in groups {
        let mut t = TestDesk::new();
        let mut files = Vec::new();
        for d in dirs {
            mail_files(&corpus.join(d), &mut files);
        }
        assert!(!files.is_empty(), "{label}: no corpus files");
        let config = t.desk.config().clone();
        let options = ReadOptions {
            form_senders: &config.desk.form_senders,
            form_labels: &config.form_labels,
        };
        let mut parser_failures = Vec::new();
        for f in &files {
            let raw = fs::read(f).expect("corpus file");
            let read = read_message_with(&raw, &options);
            if let Some(d) = read
                .mail
                .defects
                .iter()
                .find(|d| d.starts_with(PARSER_FAILED))
            {
                parser_failures.push(format!("{}: {d}", f.display()));
            }
            t.deliver(&raw, jst(2026, 11, 25, 10, 0));
        }
        assert!(
            parser_failures.is_empty(),
            "{label}: {} parser panics caught by the reader: {parser_failures:#?}",
            parser_failures.len()
        );
        let s = t.pass(jst(2026, 11, 25, 10, 30));
        let counts = t.desk.store().verdict_counts().expect("counts");
        println!("{label}: {} files → {counts:?}; {s:?}", files.len());
        let total: u64 = counts.iter().map(|(_, n)| n).sum();
        assert_eq!(
            total as usize,
            files.len(),
            "{label}: every message has exactly one verdict"
        );
        if label == "bounces" {
            let replies = t.count("SELECT COUNT(*) FROM outbox WHERE auto_reply_to IS NOT NULL");
            let tickets = t.count("SELECT COUNT(*) FROM tickets");
            println!("bounces: {replies} automatic replies, {tickets} tickets");
            assert_eq!(replies, 0, "an automatic reply went to a bounce");
        }
    }
}

#[test]
fn a_bounce_of_our_reply_marks_the_delivery_failed_and_tells_staff() {
    let mut t = TestDesk::new();
    t.deliver(
        &simple_mail(
            "yamada@alpha.example.co.jp",
            "質問",
            "q1@alpha.example.co.jp",
            "",
        ),
        jst(2026, 11, 25, 10, 0),
    );
    t.pass(jst(2026, 11, 25, 10, 1));
    let ack = t
        .sent()
        .into_iter()
        .find(|(to, _, _)| to == "yamada@alpha.example.co.jp")
        .expect("ack");
    let our_id = ack.1.message_id.expect("our Message-ID");
    let dsn = format!(
        "From: Mail Delivery System <MAILER-DAEMON@mx.alpha.example.co.jp>\r\n\
         To: support@example.co.jp\r\nSubject: Undelivered Mail Returned to Sender\r\n\
         Message-ID: <dsn1@mx.alpha.example.co.jp>\r\nAuto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n\
         --b\r\nContent-Type: text/plain\r\n\r\nThe mail could not be delivered.\r\n\
         --b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.alpha.example.co.jp\r\n\r\n\
         Final-Recipient: rfc822; yamada@alpha.example.co.jp\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n\
         --b\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <{our_id}>\r\nSubject: x\r\n\r\n--b--\r\n"
    );
    t.deliver(dsn.as_bytes(), jst(2026, 11, 25, 10, 5));
    let s = t.pass(jst(2026, 11, 25, 10, 6));
    assert_eq!((s.recorded, s.new_tickets), (1, 0), "{s:?}");
    assert_eq!(
        t.count(
            "SELECT COUNT(*) FROM outbox WHERE kind = 'acknowledgement' AND bounced LIKE '5.1.1%'"
        ),
        1
    );
    let notices: Vec<_> = t
        .sent()
        .into_iter()
        .filter(|(to, m, _)| to == "support-team@example.co.jp" && m.subject.contains("送信失敗"))
        .collect();
    assert_eq!(notices.len(), 1);
    assert!(notices[0].1.text.contains("yamada@alpha.example.co.jp"));
    // No reply of any kind went to the bounce's sender.
    assert_eq!(
        t.count("SELECT COUNT(*) FROM outbox WHERE recipients LIKE '%mailer-daemon%'"),
        0
    );
}

#[test]
fn replies_go_in_iso_2022_jp_when_the_desk_is_set_so() {
    let mut t = TestDesk::with_desk_keys("reply_charset = \"iso-2022-jp\"");
    let raw = fs::read(demo_fixture("inbox/01-fault-report-iso2022jp.eml")).expect("fixture");
    t.deliver(&raw, jst(2026, 11, 25, 10, 0));
    t.pass(jst(2026, 11, 25, 10, 1));
    let (_, mail, text) = t
        .sent()
        .into_iter()
        .find(|(to, _, _)| to == "yamada@alpha.example.co.jp")
        .expect("acknowledgement");
    assert!(
        text.to_ascii_lowercase().contains("charset=iso-2022-jp"),
        "{text}"
    );
    assert!(
        mail.subject.contains("お問合せ受付のお知らせ"),
        "{}",
        mail.subject
    );
    assert!(
        mail.text.contains("受付番号：NEO-DS#000001"),
        "{}",
        mail.text
    );
}

#[test]
fn contracts_imported_while_the_desk_runs_are_used_at_the_next_pass() {
    let mut t = TestDesk::new();
    let from = "new.person@omega.example.jp";
    t.deliver(
        &simple_mail(from, "質問", "o1@omega.example.jp", ""),
        jst(2026, 11, 25, 10, 0),
    );
    t.pass(jst(2026, 11, 25, 10, 1));
    assert_eq!(
        t.count("SELECT COUNT(*) FROM tickets WHERE contract_id IS NULL"),
        1,
        "unknown at first"
    );
    // `contracts import` from the CLI: another connection to the same database.
    let mut other = madoguchi::store::Store::open(&t.desk.config().storage.database).expect("open");
    let contracts = parse_contracts(
        "contracts.csv",
        format!(
            "contract_id,customer,license_serial,contacts,domains,customized,neo_support,server_id\n\
             C-2001,オメガ株式会社,NEO-2001,{from},,no,no,srv-1\n"
        )
        .as_bytes(),
    )
    .expect("contracts");
    let orders = parse_orders(
        "orders.csv",
        "contract_id,kind,received,purchased,start,end\nC-2001,initial,2026-04-01,,,\n".as_bytes(),
    )
    .expect("orders");
    other
        .import_contracts(&contracts, Some(&orders))
        .expect("import");
    drop(other);
    t.deliver(
        &simple_mail(from, "質問2", "o2@omega.example.jp", ""),
        jst(2026, 11, 25, 11, 0),
    );
    t.pass(jst(2026, 11, 25, 11, 1));
    assert_eq!(
        t.count("SELECT COUNT(*) FROM tickets WHERE contract_id = 'C-2001'"),
        1
    );
}

// ---- Issue 7: holes found trying the desk as a stranger would ----

/// The staff notifications in the outbox, parsed back.
fn notices(t: &TestDesk) -> Vec<(madoguchi::core::inbound::InboundMail, String)> {
    t.sent()
        .into_iter()
        .filter(|(to, _, _)| to == "support-team@example.co.jp")
        .map(|(_, m, raw)| (m, raw))
        .collect()
}

fn form_mail(body: &str, message_id: &str) -> Vec<u8> {
    format!(
        "From: form@example.co.jp\r\nTo: support@example.co.jp\r\nSubject: お問合せフォーム\r\n\
         Message-ID: <{message_id}>\r\nDate: Wed, 25 Nov 2026 10:00:00 +0900\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=UTF-8\r\n\r\n{body}"
    )
    .into_bytes()
}

/// Item 3: mail `From:` a staff address with the ticket tag does not reopen a closed ticket; it
/// is recorded on the ticket and staff are told.
#[test]
fn a_forged_staff_from_changes_no_ticket_and_staff_are_told() {
    let mut t = TestDesk::new();
    t.exchange(
        "yamada@alpha.example.co.jp",
        "同期エラー",
        "q1@alpha.example.co.jp",
        jst(2026, 11, 25, 10, 0),
        jst(2026, 11, 25, 10, 1),
    );
    t.desk
        .store_mut()
        .close_ticket(1, jst(2026, 11, 25, 11, 0))
        .expect("close");
    let before = t.sent().len();
    let s = t.exchange(
        "Tanaka <tanaka@example.co.jp>",
        "Re: [NEO-DS#000001] 同期エラー",
        "forged@evil.example",
        jst(2026, 11, 25, 12, 0),
        jst(2026, 11, 25, 13, 1),
    );
    assert_eq!((s.follow_ups, s.new_tickets), (1, 0), "{s:?}");
    assert_eq!(
        t.count("SELECT COUNT(*) FROM tickets WHERE number = 1 AND state = 'closed'"),
        1,
        "the ticket stays closed"
    );
    assert_eq!(
        t.count("SELECT COUNT(*) FROM articles WHERE ticket = 1 AND direction = 'in'"),
        2,
        "the mail is recorded on the ticket"
    );
    let sent = t.sent();
    assert_eq!(sent.len(), before + 1, "only staff are told");
    let (to, notice, raw) = sent.last().expect("notice");
    assert_eq!(to, "support-team@example.co.jp");
    // Staff answer notifications to the desk (issue 9 item 1).
    assert!(
        raw.contains("\r\nReply-To: support@example.co.jp\r\n"),
        "{raw}"
    );
    assert!(notice.text.starts_with("##- "), "{}", notice.text);
    assert!(notice.text.contains("なりすまし"), "{}", notice.text);
    assert!(notice.subject.contains("要確認"), "{}", notice.subject);
}

/// Item 4: an auto-reply from the notify address to a notification is recorded, never a
/// follow-up, so no notification answers it; and a flood on one ticket is capped per hour.
#[test]
fn notification_loops_stop_and_notices_per_ticket_are_capped() {
    let mut t = TestDesk::new();
    t.exchange(
        "yamada@alpha.example.co.jp",
        "同期エラー",
        "q1@alpha.example.co.jp",
        jst(2026, 11, 25, 10, 0),
        jst(2026, 11, 25, 10, 1),
    );
    for round in 0..3 {
        let (notice, _) = notices(&t).pop().expect("a notification");
        let id = notice.message_id.expect("our Message-ID");
        let before = t.sent().len();
        // An out-of-office without Auto-Submitted or list headers, threaded to our notice.
        let extra = format!("In-Reply-To: <{id}>\r\nReferences: <{id}>\r\n");
        t.deliver(
            &simple_mail(
                "support-team@example.co.jp",
                &format!("Re: {}", notice.subject),
                &format!("ooo{round}@example.co.jp"),
                &extra,
            ),
            jst(2026, 11, 25, 10, 5 + round),
        );
        let s = t.pass(jst(2026, 11, 25, 10, 10 + round));
        assert_eq!((s.recorded, s.follow_ups), (1, 0), "{s:?}");
        assert_eq!(t.sent().len(), before, "round {round}: nothing is sent");
        // Keep the loop going with the old notice if nothing new came (it must not).
        if round == 0 {
            assert_eq!(
                t.count(
                    "SELECT COUNT(*) FROM messages WHERE reason LIKE 'from_notify_address%' AND ticket = 1"
                ),
                1
            );
        }
    }
    // A customer writing ten times in an hour: staff hear of the ticket at most 6 times in it.
    for i in 0..10 {
        let extra = "References: <q1@alpha.example.co.jp>\r\n";
        t.deliver(
            &simple_mail(
                "yamada@alpha.example.co.jp",
                "Re: [NEO-DS#000001] 同期エラー",
                &format!("f{i}@alpha.example.co.jp"),
                extra,
            ),
            jst(2026, 11, 25, 11, i),
        );
    }
    let s = t.pass(jst(2026, 11, 25, 11, 30));
    assert_eq!(s.follow_ups, 10, "{s:?}");
    assert_eq!(
        notices(&t).len(),
        7,
        "the new-ticket notice (10:01) + 6 in the hour to 11:30"
    );
    // An hour later staff hear of it again.
    t.exchange(
        "yamada@alpha.example.co.jp",
        "Re: [NEO-DS#000001] まだです",
        "later@alpha.example.co.jp",
        jst(2026, 11, 25, 13, 0),
        jst(2026, 11, 25, 13, 1),
    );
    assert_eq!(notices(&t).len(), 8);
}

/// Item 5: a form without an address, or with two, is ticketed; nothing goes to the form
/// robot; staff are told why.
#[test]
fn a_form_without_one_usable_address_is_ticketed_without_a_reply() {
    let mut t = TestDesk::new();
    t.deliver(
        &form_mail(
            "【お客様番号】C-1001\r\n【会社名】アルファ商事株式会社\r\n【お問合せ内容】動きません\r\n",
            "form1@example.co.jp",
        ),
        jst(2026, 11, 25, 10, 0),
    );
    t.deliver(
        &form_mail(
            "【会社名】ベータ\r\n【メールアドレス】a@beta.example.jp, b@beta.example.jp\r\n\
             【お問合せ内容】質問\r\n",
            "form2@example.co.jp",
        ),
        jst(2026, 11, 25, 10, 1),
    );
    let s = t.pass(jst(2026, 11, 25, 10, 5));
    assert_eq!(s.new_tickets, 2, "{s:?}");
    let sent = t.sent();
    assert!(
        sent.iter()
            .all(|(to, _, _)| to == "support-team@example.co.jp"),
        "only staff get mail: {:?}",
        sent.iter().map(|(to, _, _)| to).collect::<Vec<_>>()
    );
    let texts: Vec<String> = notices(&t).into_iter().map(|(m, _)| m.text).collect();
    assert_eq!(texts.len(), 2);
    assert!(
        texts[0].contains("フォームにメールアドレスの記入がありません"),
        "{}",
        texts[0]
    );
    assert!(
        texts[1].contains("1件の有効なアドレスではありません"),
        "{}",
        texts[1]
    );
    assert_eq!(
        t.count("SELECT COUNT(*) FROM outbox WHERE auto_reply_to IS NOT NULL"),
        0
    );
}

/// Item 6: a huge subject is echoed cut to 200 characters, and no header line of any mail the
/// desk writes exceeds 998 octets.
#[test]
fn a_huge_subject_is_echoed_cut_and_headers_stay_within_998_octets() {
    let mut t = TestDesk::new();
    let subjects = [
        "あ".repeat(10_000),
        "x".repeat(10_000),
        "{{last_end}} ".repeat(2_000),
    ];
    for (i, subject) in subjects.iter().enumerate() {
        t.deliver(
            &simple_mail(
                "Yamada <yamada@alpha.example.co.jp>",
                subject,
                &format!("big{i}@alpha.example.co.jp"),
                "",
            ),
            jst(2026, 11, 25, 10, i as u32),
        );
    }
    let s = t.pass(jst(2026, 11, 25, 10, 30));
    assert_eq!(s.new_tickets, 3, "{s:?}");
    let sent = t.sent();
    assert_eq!(sent.len(), 6);
    for (to, mail, raw) in &sent {
        let head = raw.split("\r\n\r\n").next().unwrap_or_default();
        for line in head.split("\r\n") {
            assert!(
                line.len() <= 998,
                "{to}: a {}-octet header line",
                line.len()
            );
        }
        assert!(raw.len() < 40_000, "{to}: {} bytes", raw.len());
        let echoed = mail.subject.split_once([' ']).map_or("", |(_, rest)| rest);
        assert!(echoed.chars().count() <= 220, "{to}: {}", mail.subject);
        assert!(mail.subject.ends_with('…'), "{to}: {}", mail.subject);
    }
}

/// Item 7: Message-IDs carry 128 random bits, different every time.
#[test]
fn our_message_ids_carry_128_random_bits() {
    let mut t = TestDesk::new();
    for i in 0..3 {
        t.exchange(
            "yamada@alpha.example.co.jp",
            "質問",
            &format!("r{i}@alpha.example.co.jp"),
            jst(2026, 11, 25, 10, i),
            jst(2026, 11, 25, 10, 10),
        );
    }
    let tokens: Vec<String> = t
        .sent()
        .iter()
        .map(|(_, m, _)| {
            let id = m.message_id.clone().expect("Message-ID");
            id.split('@')
                .next()
                .unwrap_or_default()
                .rsplit('.')
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert_eq!(tokens.len(), 6);
    for token in &tokens {
        assert_eq!(token.len(), 32, "{token}");
        assert!(token.bytes().all(|b| b.is_ascii_hexdigit()), "{token}");
    }
    let mut unique = tokens.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), tokens.len());
}

/// Item 15: a reply carries the ticket tag once, and an incoming article is dated when it
/// arrived, not when the desk got round to it.
#[test]
fn replies_carry_one_tag_and_articles_their_arrival_time() {
    let mut t = TestDesk::new();
    t.exchange(
        "yamada@alpha.example.co.jp",
        "同期エラー",
        "q1@alpha.example.co.jp",
        jst(2026, 11, 25, 10, 0),
        jst(2026, 11, 25, 10, 1),
    );
    // Processed three hours after it arrived (the daemon was down).
    t.exchange(
        "yamada@alpha.example.co.jp",
        "Re: [NEO-DS#000001] 同期エラー",
        "q2@alpha.example.co.jp",
        jst(2026, 11, 25, 11, 0),
        jst(2026, 11, 25, 14, 0),
    );
    for (to, mail, _) in t.sent() {
        assert_eq!(
            mail.subject.matches("[NEO-DS#").count(),
            1,
            "{to}: {}",
            mail.subject
        );
    }
    let articles = t.desk.store().articles(1).expect("articles");
    let incoming: Vec<_> = articles.iter().filter(|a| a.direction == "in").collect();
    assert_eq!(incoming.len(), 2);
    assert_eq!(incoming[1].created_at, jst(2026, 11, 25, 11, 0));
}

// ---- Issue 9: staff work from their mail client ----

/// A desk whose staff mail is authenticated by `mx.example.co.jp`'s Authentication-Results.
pub(crate) const STAFF_AUTH: &str = "\n[staff]\nauthentication = \"authentication-results\"\ntrusted_authserv_ids = [\"mx.example.co.jp\"]\n";

fn staff_desk() -> TestDesk {
    TestDesk::with_desk_keys(
        "\n[staff]\nauthentication = \"authentication-results\"\ntrusted_authserv_ids = [\"mx.example.co.jp\"]\n",
    )
}

/// Staff mail answering `notice` (In-Reply-To its Message-ID), with `body` and `headers`.
pub(crate) fn staff_reply(
    notice: &madoguchi::core::inbound::InboundMail,
    body: &str,
    headers: &str,
) -> Vec<u8> {
    let id = notice
        .message_id
        .clone()
        .expect("the notification's Message-ID");
    format!(
        "From: Tanaka <tanaka@example.co.jp>\r\nTo: support@example.co.jp\r\nSubject: Re: {}\r\n\
         Message-ID: <s{}@example.co.jp>\r\nIn-Reply-To: <{id}>\r\nReferences: <{id}>\r\n{headers}\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n{body}",
        notice.subject,
        body.len()
    )
    .into_bytes()
}

/// An authenticated staff reply to `notice` arriving at 10:`minute` on 2026-11-25, and a pass a
/// minute later.
fn staff_says(
    t: &mut TestDesk,
    notice: &madoguchi::core::inbound::InboundMail,
    body: &str,
    minute: u32,
) {
    t.deliver(
        &staff_reply(notice, body, TRUSTED_PASS),
        jst(2026, 11, 25, 10, minute),
    );
    t.pass(jst(2026, 11, 25, 10, minute + 1));
}

pub(crate) const TRUSTED_PASS: &str =
    "Authentication-Results: mx.example.co.jp; dkim=pass header.d=example.co.jp\r\n";

/// The notification of ticket 1 after a customer wrote.
fn first_notice(t: &mut TestDesk) -> madoguchi::core::inbound::InboundMail {
    t.exchange(
        "Yamada <yamada@alpha.example.co.jp>",
        "同期エラー",
        "q1@alpha.example.co.jp",
        jst(2026, 11, 25, 10, 0),
        jst(2026, 11, 25, 10, 1),
    );
    notices(t).pop().expect("a notification").0
}

#[test]
fn an_authenticated_staff_reply_is_relayed_to_the_customer_and_the_ticket_waits_for_them() {
    let mut t = staff_desk();
    let notice = first_notice(&mut t);
    let quoted: String = notice.text.lines().map(|l| format!("> {l}\r\n")).collect();
    let body = format!(
        "山田様\r\n\r\n設定画面の同期間隔を見直してください。\r\n\r\n田中\r\n\r\n\
         2026年11月25日(水) 10:05 サポート窓口 <support@example.co.jp>:\r\n{quoted}"
    );
    let before = t.sent().len();
    t.deliver(
        &staff_reply(&notice, &body, TRUSTED_PASS),
        jst(2026, 11, 25, 10, 30),
    );
    let s = t.pass(jst(2026, 11, 25, 10, 31));
    assert_eq!(s.follow_ups, 1, "{s:?}");
    let sent = t.sent();
    assert_eq!(
        sent.len(),
        before + 1,
        "one relay, no confirmation for a plain reply"
    );
    let (to, relay, raw) = sent.last().expect("the relay");
    assert_eq!(to, "yamada@alpha.example.co.jp");
    assert!(!raw.contains("Auto-Submitted"), "a person wrote it: {raw}");
    assert_eq!(relay.subject, "Re: [NEO-DS#000001] 同期エラー");
    assert_eq!(
        relay.in_reply_to,
        vec!["q1@alpha.example.co.jp".to_string()]
    );
    assert!(
        relay.text.contains("同期間隔を見直してください"),
        "{}",
        relay.text
    );
    for secret in ["契約状況", "社内情報", "自動応答", "##-", "さんは", "> "] {
        assert!(
            !relay.text.contains(secret),
            "{secret} relayed: {}",
            relay.text
        );
    }
    assert_eq!(
        t.count("SELECT COUNT(*) FROM tickets WHERE number = 1 AND state = 'pending'"),
        1
    );
    // The ticket's history, as `tickets show --json` lists it.
    let kinds: Vec<String> = t
        .desk
        .store()
        .articles(1)
        .expect("articles")
        .into_iter()
        .map(|a| a.kind)
        .collect();
    assert_eq!(
        kinds,
        ["customer", "auto_reply", "notice", "staff", "staff_reply"],
        "{kinds:?}"
    );
    // Accepted 10:00, answered 10:30: the first response took 30 business minutes.
    let first =
        |t: &TestDesk| t.desk.store().tickets(None).expect("tickets")[0].first_response_minutes;
    assert_eq!(first(&t), Some(30));
    // The customer's answer opens it again.
    t.exchange(
        "yamada@alpha.example.co.jp",
        "Re: [NEO-DS#000001] 同期エラー",
        "q2@alpha.example.co.jp",
        jst(2026, 11, 25, 11, 0),
        jst(2026, 11, 25, 11, 1),
    );
    assert_eq!(
        t.count("SELECT COUNT(*) FROM tickets WHERE number = 1 AND state = 'open'"),
        1
    );
    // A second reply is sent, and the first response stays what it was.
    t.deliver(
        &staff_reply(&notice, "追加のご案内です。\r\n", TRUSTED_PASS),
        jst(2026, 11, 25, 14, 0),
    );
    t.pass(jst(2026, 11, 25, 14, 1));
    assert_eq!(
        t.sent().last().map(|(to, _, _)| to.clone()).as_deref(),
        Some("yamada@alpha.example.co.jp")
    );
    assert_eq!(first(&t), Some(30));
}

/// Issue 9 item 7: forged staff mail (no Authentication-Results, an untrusted authserv-id, a
/// forged pass below a genuine fail) relays nothing and changes nothing.
#[test]
fn forged_staff_mail_relays_nothing_and_changes_nothing() {
    let mut t = staff_desk();
    let notice = first_notice(&mut t);
    for (i, headers) in [
        String::new(),
        "Authentication-Results: mx.evil.example; dkim=pass header.d=example.co.jp\r\n".to_string(),
        "Authentication-Results: mx.example.co.jp; dkim=fail header.d=example.co.jp\r\n\
         Authentication-Results: mx.example.co.jp; dkim=pass header.d=example.co.jp\r\n"
            .to_string(),
    ]
    .iter()
    .enumerate()
    {
        let before = t.sent().len();
        let body = format!("#close\r\n返信{i}です。\r\n");
        t.deliver(
            &staff_reply(&notice, &body, headers),
            jst(2026, 11, 25, 10, 30 + i as u32),
        );
        t.pass(jst(2026, 11, 25, 10, 40 + i as u32));
        let sent = t.sent();
        let new: Vec<_> = sent[before..].iter().map(|(to, _, _)| to.clone()).collect();
        assert_eq!(
            new,
            ["support-team@example.co.jp"],
            "case {i}: only staff are told"
        );
        assert!(
            sent.last()
                .is_some_and(|(_, m, _)| m.text.contains("なりすまし"))
        );
        assert_eq!(
            t.count("SELECT COUNT(*) FROM tickets WHERE number = 1 AND state = 'open'"),
            1,
            "case {i}"
        );
    }
}

/// Commands are carried out and confirmed; an unknown one refuses the whole mail; a reply that
/// would carry the internal section is not relayed and goes back to its sender.
#[test]
fn staff_commands_are_confirmed_and_the_fail_safe_holds() {
    let mut t = staff_desk();
    let notice = first_notice(&mut t);
    let relays = |t: &TestDesk| {
        t.sent()
            .iter()
            .filter(|(to, _, _)| to == "yamada@alpha.example.co.jp")
            .count()
    };
    let acks = relays(&t);
    // An unknown command: nothing relayed, nothing changed, the sender told why.
    staff_says(&mut t, &notice, "#clsoe\r\nお待たせしました。\r\n", 30);
    assert_eq!(relays(&t), acks);
    let (to, confirmation, _) = t.sent().pop().expect("confirmation");
    assert_eq!(to, "tanaka@example.co.jp");
    assert!(
        confirmation.text.contains("#clsoe: 不明なコマンドです"),
        "{}",
        confirmation.text
    );
    // A note: copied to staff, never to the customer.
    staff_says(&mut t, &notice, "#note\r\n契約更新の相談中。\r\n", 32);
    assert_eq!(relays(&t), acks);
    assert!(
        notices(&t)
            .iter()
            .any(|(m, _)| m.subject.contains("社内メモ") && m.text.contains("契約更新の相談中"))
    );
    // Bottom-posting under an unquoted copy of the notification: the internal lines would go
    // out, so nothing does.
    let copy = notice.text.replace('\n', "\r\n");
    t.deliver(
        &staff_reply(
            &notice,
            &format!("{copy}\r\n\r\n回答です。\r\n"),
            TRUSTED_PASS,
        ),
        jst(2026, 11, 25, 10, 34),
    );
    t.pass(jst(2026, 11, 25, 10, 35));
    assert_eq!(relays(&t), acks, "the fail-safe relays nothing");
    let (to, refusal, _) = t.sent().pop().expect("refusal");
    assert_eq!(to, "tanaka@example.co.jp");
    assert!(
        refusal.text.contains("送信していません"),
        "{}",
        refusal.text
    );
    // #close: done and confirmed.
    staff_says(&mut t, &notice, "#close\r\n", 36);
    assert_eq!(
        t.count("SELECT COUNT(*) FROM tickets WHERE number = 1 AND state = 'closed'"),
        1
    );
    let (_, confirmation, _) = t.sent().pop().expect("confirmation");
    assert!(
        confirmation.text.contains("クローズしました"),
        "{}",
        confirmation.text
    );
    // #category with a code of `tickets list --json`; a wrong code lists the valid ones.
    staff_says(&mut t, &notice, "#category operation\r\n", 38);
    assert_eq!(
        t.count("SELECT COUNT(*) FROM tickets WHERE number = 1 AND category = 'operation'"),
        1
    );
    staff_says(&mut t, &notice, "#category bogus\r\n", 40);
    let (_, refusal, _) = t.sent().pop().expect("refusal");
    assert!(
        refusal.text.contains("#category bogus: 種別コードは"),
        "{}",
        refusal.text
    );
    assert!(refusal.text.contains("license_reissue"), "{}", refusal.text);
    // #contract takes a registered customer number only.
    staff_says(&mut t, &notice, "#contract X-9999\r\n", 46);
    let (_, refusal, _) = t.sent().pop().expect("refusal");
    assert!(
        refusal.text.contains("登録されていないお客様番号"),
        "{}",
        refusal.text
    );
    staff_says(&mut t, &notice, "#contract c-1002\r\n", 48);
    assert_eq!(
        t.count("SELECT COUNT(*) FROM tickets WHERE number = 1 AND contract_id = 'C-1002'"),
        1
    );
    // #assign takes one of desk.staff, nobody else.
    staff_says(&mut t, &notice, "#assign eve@evil.example\r\n", 42);
    assert_eq!(
        t.count("SELECT COUNT(*) FROM tickets WHERE assignee IS NOT NULL"),
        0
    );
    staff_says(&mut t, &notice, "#assign Tanaka@example.co.jp\r\n", 44);
    assert_eq!(
        t.desk.store().tickets(None).expect("tickets")[0]
            .assignee
            .as_deref(),
        Some("tanaka@example.co.jp")
    );
    assert_eq!(
        t.count("SELECT COUNT(*) FROM tickets WHERE number = 1 AND category = 'operation'"),
        1
    );
}

/// Issue 9 item 5: staff mail that already went to the customer (in To/Cc) is recorded, not
/// relayed a second time, and the sender is told.
#[test]
fn a_staff_reply_that_already_went_to_the_customer_is_not_relayed_again() {
    let mut t = staff_desk();
    let notice = first_notice(&mut t);
    let before = t.sent().len();
    let headers = format!("{TRUSTED_PASS}Cc: yamada@alpha.example.co.jp\r\n");
    t.deliver(
        &staff_reply(&notice, "山田様\r\n直接お送りします。\r\n", &headers),
        jst(2026, 11, 25, 10, 30),
    );
    t.pass(jst(2026, 11, 25, 10, 31));
    let sent = t.sent();
    let new: Vec<_> = sent[before..].iter().map(|(to, _, _)| to.clone()).collect();
    assert_eq!(new, ["tanaka@example.co.jp"], "only the sender hears of it");
    assert!(
        sent.last()
            .is_some_and(|(_, m, _)| m.text.contains("再送していません"))
    );
    assert_eq!(
        t.count("SELECT COUNT(*) FROM articles WHERE ticket = 1 AND direction = 'in'"),
        2,
        "recorded on the ticket"
    );
}

/// A relay goes in the configured charset like every reply (`reply_charset`).
#[test]
fn a_relayed_staff_reply_goes_in_iso_2022_jp_when_the_desk_is_set_so() {
    let mut t = TestDesk::with_desk_keys(
        "reply_charset = \"iso-2022-jp\"\n\n[staff]\nauthentication = \"authentication-results\"\n\
         trusted_authserv_ids = [\"mx.example.co.jp\"]\n",
    );
    let notice = first_notice(&mut t);
    t.deliver(
        &staff_reply(
            &notice,
            "山田様\r\n設定をご確認ください。\r\n",
            TRUSTED_PASS,
        ),
        jst(2026, 11, 25, 10, 30),
    );
    t.pass(jst(2026, 11, 25, 10, 31));
    let (to, relay, raw) = t.sent().pop().expect("the relay");
    assert_eq!(to, "yamada@alpha.example.co.jp");
    assert!(
        raw.to_ascii_lowercase().contains("charset=iso-2022-jp"),
        "{raw}"
    );
    assert!(raw.contains("Subject: =?ISO-2022-JP?"), "{raw}");
    assert!(
        relay.text.contains("設定をご確認ください。"),
        "{}",
        relay.text
    );
}

/// The staff member's attachments go to the customer with the relay.
#[test]
fn a_relayed_staff_reply_carries_its_attachments() {
    let mut t = staff_desk();
    let notice = first_notice(&mut t);
    let id = notice.message_id.clone().expect("Message-ID");
    let raw = format!(
        "{TRUSTED_PASS}From: Tanaka <tanaka@example.co.jp>\r\nTo: support@example.co.jp\r\n\
         Subject: Re: {}\r\nMessage-ID: <att@example.co.jp>\r\nIn-Reply-To: <{id}>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
         --b1\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n手順書を添付します。\r\n\
         --b1\r\nContent-Type: application/pdf; name=\"tejun.pdf\"\r\n\
         Content-Disposition: attachment; filename=\"tejun.pdf\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQKJcfsj6IK\r\n--b1--\r\n",
        notice.subject
    );
    t.deliver(raw.as_bytes(), jst(2026, 11, 25, 10, 30));
    t.pass(jst(2026, 11, 25, 10, 31));
    let (to, relay, text) = t.sent().pop().expect("the relay");
    assert_eq!(to, "yamada@alpha.example.co.jp");
    assert!(
        relay.text.contains("手順書を添付します。"),
        "{}",
        relay.text
    );
    let names: Vec<_> = relay.attachments.iter().map(|a| a.name.clone()).collect();
    assert_eq!(names, [Some("tejun.pdf".to_string())], "{text}");
    assert_eq!(relay.attachments[0].content_type, "application/pdf");
}

/// Issue 9 item 7: a stranger answering with a notification's subject (the tag, but not our
/// Message-ID) reaches no ticket of ours and nothing is relayed.
#[test]
fn a_stranger_using_a_notification_subject_gets_a_ticket_of_their_own() {
    let mut t = staff_desk();
    let notice = first_notice(&mut t);
    let before = t.sent().len();
    let s = t.exchange(
        "eve@evil.example",
        &format!("Re: {}", notice.subject),
        "eve1@evil.example",
        jst(2026, 11, 25, 10, 30),
        jst(2026, 11, 25, 10, 31),
    );
    assert_eq!((s.new_tickets, s.follow_ups), (1, 0), "{s:?}");
    assert!(
        t.sent()[before..]
            .iter()
            .all(|(to, _, _)| to != "yamada@alpha.example.co.jp"),
        "nothing reaches the first ticket's customer"
    );
}
