//! The desk acting ahead of time (issue 13): renewal reminders through the real binary with
//! `run --once --now T` (each run a new process: exactly once across restarts), and staff
//! reminders and the morning digest through the library with a fixed clock. The dates of each
//! reminder on month ends, leap years, holidays and closures are unit tests of
//! `core::reminders`; here the whole path.

use std::fs;
use std::path::PathBuf;

use serde_json::Value;

use crate::desk::{STAFF_AUTH, TRUSTED_PASS, TestDesk, simple_mail, staff_reply};
use crate::util::{Desk, arg, jst};

const CONFIG: &str = r#"[desk]
address = "support@example.co.jp"
notify = ["support-team@example.co.jp"]

[storage]
database = "var/db.sqlite3"

[intake]
kind = "maildir"
maildir = "var/inbox"

[outbound]
kind = "file"
dir = "var/outbox"
"#;

/// C-2001 and C-2003: periods 2025-04-01..2026-03-31; C-2002 the same but opted out.
const CONTRACTS: &str = "contract_id,customer,license_serial,contacts,domains,customized,neo_support,server_id,reminders\n\
C-2001,株式会社テスト,DNDS-2025-00001,a@t.example.jp;b@t.example.jp,,no,no,,yes\n\
C-2002,オプトアウト株式会社,DNDS-2025-00002,c@o.example.jp,,no,no,,no\n\
C-2003,株式会社ラプス,DNDS-2025-00003,d@l.example.jp,,no,no,,\n";
const ORDERS: &str = "contract_id,kind,received,purchased,start,end\n\
C-2001,initial,2025-03-10,,,\n\
C-2002,initial,2025-03-10,,,\n\
C-2003,initial,2025-03-10,,,\n";

fn desk() -> Desk {
    let desk = Desk::with_config(CONFIG);
    let contracts = desk.write("contracts.csv", CONTRACTS);
    let orders = desk.write("orders.csv", ORDERS);
    desk.json(&[
        "contracts",
        "import",
        arg(&contracts),
        "--orders",
        arg(&orders),
    ]);
    desk
}

/// `run --once --now T` (Japan time `T` as `YYYY-MM-DDTHH:MM`).
fn run_at(desk: &Desk, at: &str) -> Value {
    desk.json(&["run", "--once", "--now", &format!("{at}:00+09:00")])
}

/// The outbox, as (recipients, subject), in queue order.
fn outbox(desk: &Desk) -> Vec<(String, String)> {
    let dir = desk.dir().join("var/outbox");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.sort();
    files
        .iter()
        .map(|p| {
            let raw = fs::read(p).expect("outbox file");
            let mail = madoguchi::mail::read_message(&raw, &[]).mail;
            let to: Vec<String> = mail.to.iter().map(|m| m.address.clone()).collect();
            (to.join(","), mail.subject)
        })
        .collect()
}

fn reminders_to(desk: &Desk, who: &str) -> Vec<String> {
    outbox(desk)
        .into_iter()
        .filter(|(to, s)| to.contains(who) && s.contains("年間サポート"))
        .map(|(_, s)| s)
        .collect()
}

#[test]
fn renewal_reminders_go_at_the_opening_once_across_restarts_to_every_contact_unless_opted_out() {
    let desk = desk();
    // 60 days before 2026-03-31 is Friday 2026-01-30: not before the desk opens.
    run_at(&desk, "2026-01-30T08:59");
    assert!(outbox(&desk).is_empty(), "{:?}", outbox(&desk));
    run_at(&desk, "2026-01-30T09:00");
    let mails = outbox(&desk);
    let to_2001: Vec<_> = mails
        .iter()
        .filter(|(to, _)| to.contains("a@t.example.jp"))
        .collect();
    assert_eq!(to_2001.len(), 1, "{mails:?}");
    assert_eq!(
        to_2001[0].0, "a@t.example.jp,b@t.example.jp",
        "every registered contact"
    );
    assert!(
        to_2001[0]
            .1
            .contains("年間サポート期間満了のご案内（お客様番号 C-2001）")
    );
    assert!(
        reminders_to(&desk, "c@o.example.jp").is_empty(),
        "opted out"
    );
    assert_eq!(reminders_to(&desk, "d@l.example.jp").len(), 1);
    // A restart at the same moment, and a later run the same day: nothing again.
    run_at(&desk, "2026-01-30T09:00");
    run_at(&desk, "2026-01-30T15:00");
    assert_eq!(reminders_to(&desk, "a@t.example.jp").len(), 1);

    // What is coming, and the reminder on the contract.
    let coming = desk.json(&[
        "contracts",
        "expiring",
        "--within",
        "60d",
        "--on",
        "2026-02-01",
    ]);
    let rows = coming.as_array().expect("a list");
    let ids: Vec<&str> = rows
        .iter()
        .filter_map(|r| r["contract_id"].as_str())
        .collect();
    assert_eq!(ids, ["C-2001", "C-2002", "C-2003"], "{coming}");
    assert_eq!(rows[0]["days_left"], 58);
    assert_eq!(rows[0]["period_end"], "2026-03-31");
    assert_eq!(rows[0]["next_reminder"]["kind"], "renewal");
    assert_eq!(rows[0]["next_reminder"]["days"], 30);
    assert_eq!(rows[1]["reminders"], false);
    assert!(rows[1]["next_reminder"].is_null());
    let shown = desk.json(&["contracts", "show", "C-2001"]);
    let sent = shown["sent_reminders"].as_array().expect("reminders");
    assert_eq!(sent.len(), 1, "{shown}");
    assert_eq!(sent[0]["kind"], "renewal");
    assert_eq!(sent[0]["days"], 60);
    assert_eq!(sent[0]["mail_state"], "sent");
    let text = desk.run(&["contracts", "show", "C-2001"]);
    text.assert_success()
        .assert_stdout_has(&["reminders:       yes", "renewal reminder, 60 days before"]);

    // A renewal order imported before the next reminder cancels the old period's reminders.
    let orders = desk.write(
        "orders2.csv",
        &format!("{ORDERS}C-2001,renewal,2026-03-05,,,\n"),
    );
    let contracts = desk.write("contracts.csv", CONTRACTS);
    desk.json(&[
        "contracts",
        "import",
        arg(&contracts),
        "--orders",
        arg(&orders),
    ]);
    run_at(&desk, "2026-03-24T09:00");
    assert_eq!(
        reminders_to(&desk, "a@t.example.jp").len(),
        1,
        "{:?}",
        outbox(&desk)
    );
    // C-2003 was not renewed: the desk was down on 2 March, so on the 24th only the 7-day
    // reminder goes (never the stale 30-day one as well).
    let lapsing = reminders_to(&desk, "d@l.example.jp");
    assert_eq!(lapsing.len(), 2, "{lapsing:?}");

    // Its lapse notice the day after (a Wednesday), and the re-continuation warning 30 days
    // before the last day of a plain renewal (2027-03-31): Monday 2027-03-01.
    run_at(&desk, "2026-04-01T09:00");
    let lapsing = reminders_to(&desk, "d@l.example.jp");
    assert!(
        lapsing[2].contains("年間サポート期間終了のお知らせ"),
        "{lapsing:?}"
    );
    run_at(&desk, "2027-02-26T17:00");
    assert_eq!(reminders_to(&desk, "d@l.example.jp").len(), 3);
    run_at(&desk, "2027-03-01T09:00");
    let lapsing = reminders_to(&desk, "d@l.example.jp");
    assert_eq!(lapsing.len(), 4, "{lapsing:?}");
    assert!(lapsing[3].contains("年間サポート更新期限のご案内"));
    run_at(&desk, "2027-03-02T09:00");
    assert_eq!(reminders_to(&desk, "d@l.example.jp").len(), 4);
    assert!(
        reminders_to(&desk, "c@o.example.jp").is_empty(),
        "opted out throughout"
    );
}

#[test]
fn a_reminder_that_bounces_tells_staff_without_a_ticket() {
    let mut t = TestDesk::with_reminders();
    // C-1003 of the demo ended 2026-09-30: its lapse notice goes at the first opening.
    t.pass(jst(2026, 11, 30, 9, 0));
    let sent = t.sent();
    let notice = sent
        .iter()
        .find(|(to, m, _)| to == "takahashi@gamma.example.co.jp" && m.subject.contains("C-1003"))
        .expect("the lapse notice");
    let id = notice.1.message_id.clone().expect("a Message-ID");
    assert!(!id.contains(".000000."), "names no ticket: {id}");
    let dsn = format!(
        "Return-Path: <>\r\nFrom: MAILER-DAEMON@mx.gamma.example.co.jp\r\n\
         To: support@example.co.jp\r\nSubject: Undelivered Mail Returned to Sender\r\n\
         Message-ID: <dsn1@mx.gamma.example.co.jp>\r\nAuto-Submitted: auto-replied\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status;\r\n\
         \tboundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nfailed\r\n\
         --b1\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n\
         Final-Recipient: rfc822; takahashi@gamma.example.co.jp\r\nAction: failed\r\n\
         Status: 5.1.1\r\n\r\n--b1\r\nContent-Type: text/rfc822-headers\r\n\r\n\
         From: support@example.co.jp\r\nTo: takahashi@gamma.example.co.jp\r\n\
         Message-ID: <{id}>\r\nSubject: notice\r\n\r\n--b1--\r\n"
    );
    t.deliver(dsn.as_bytes(), jst(2026, 11, 30, 9, 5));
    let summary = t.pass(jst(2026, 11, 30, 9, 10));
    assert_eq!(summary.recorded, 1, "{summary:?}");
    assert_eq!(
        t.count("SELECT COUNT(*) FROM tickets"),
        0,
        "no ticket for a bounce"
    );
    assert_eq!(
        t.count("SELECT COUNT(*) FROM outbox WHERE kind = 'reminder' AND bounced IS NOT NULL"),
        1
    );
    let staff: Vec<_> = t
        .sent()
        .into_iter()
        .filter(|(to, m, _)| to == "support-team@example.co.jp" && m.subject.contains("送信失敗"))
        .collect();
    assert_eq!(staff.len(), 1);
    assert!(
        staff[0].1.text.contains("受付番号のないお知らせ"),
        "{}",
        staff[0].1.text
    );
}

fn staff_mails(t: &TestDesk) -> Vec<(String, String)> {
    t.sent()
        .into_iter()
        .filter(|(to, _, _)| to == "support-team@example.co.jp")
        .map(|(_, m, _)| (m.subject, m.text))
        .collect()
}

#[test]
fn staff_are_reminded_in_business_time_once_per_level_and_the_digest_comes_each_morning() {
    let mut t = TestDesk::with_reminders();
    // Monday 2026-11-30 10:00: a fault report from a covered contract.
    t.deliver(
        &simple_mail(
            "yamada@alpha.example.co.jp",
            "同期が止まる",
            "f1@alpha.example.co.jp",
            "",
        ),
        jst(2026, 11, 30, 10, 0),
    );
    t.pass(jst(2026, 11, 30, 10, 0));
    let reminders = |t: &TestDesk| {
        staff_mails(t)
            .into_iter()
            .filter(|(s, _)| s.contains("返信待ち"))
            .collect::<Vec<_>>()
    };
    let digests = |t: &TestDesk| {
        staff_mails(t)
            .into_iter()
            .filter(|(s, _)| s.starts_with("【サポート窓口】"))
            .collect::<Vec<_>>()
    };
    // A desk started mid-morning sends that day's digest at its first pass in hours.
    assert_eq!(digests(&t).len(), 1);
    // The SLA is 8 business hours: Tuesday 10:30 (6.5 h Monday after 10:00, 1.5 h Tuesday).
    t.pass(jst(2026, 12, 1, 10, 29));
    assert!(reminders(&t).is_empty(), "{:?}", reminders(&t));
    // Tuesday's digest came at its first pass in hours, once.
    let d = digests(&t);
    assert_eq!(d.len(), 2, "{d:?}");
    assert!(d[1].0.contains("2026年12月1日(火)"), "{}", d[1].0);
    assert!(
        d[1].1
            .contains("[NEO-DS#000001] スタッフ対応待ち（経過 7時間59分）"),
        "{}",
        d[1].1
    );
    t.pass(jst(2026, 12, 1, 10, 30));
    t.pass(jst(2026, 12, 1, 10, 31));
    let r = reminders(&t);
    assert_eq!(r.len(), 1, "{r:?}");
    assert!(
        r[0].0.starts_with("[NEO-DS#000001] 返信待ち 8時間00分"),
        "{}",
        r[0].0
    );
    // Twice the SLA: Wednesday 11:00, urgent; then nothing more.
    t.pass(jst(2026, 12, 2, 10, 59));
    assert_eq!(reminders(&t).len(), 1);
    t.pass(jst(2026, 12, 2, 11, 0));
    t.pass(jst(2026, 12, 3, 11, 0));
    let r = reminders(&t);
    assert_eq!(r.len(), 2, "{r:?}");
    assert!(r[1].0.contains("【至急】"), "{}", r[1].0);
    // One digest per business day: Monday to Thursday.
    assert_eq!(digests(&t).len(), 4);
    // The reminders are on the ticket.
    assert_eq!(
        t.count(
            "SELECT COUNT(*) FROM articles a JOIN outbox o ON o.id = a.outbox
             WHERE a.ticket = 1 AND o.subject LIKE '%返信待ち%'"
        ),
        2
    );
    assert_eq!(
        t.count("SELECT COUNT(*) FROM reminders WHERE ticket = 1 AND outbox IS NOT NULL"),
        2
    );
}

#[test]
fn no_digest_on_closed_days_or_with_nothing_to_say() {
    let mut t = TestDesk::with_reminders();
    // Saturday: nothing (C-1003's lapse notice waits for an opening too).
    t.pass(jst(2026, 11, 28, 10, 0));
    assert!(t.sent().is_empty(), "{:?}", t.sent().len());
    // Monday's opening: no tickets, no failures, nothing quarantined: no digest, but the day
    // is marked so a later pass does not reconsider it.
    t.pass(jst(2026, 11, 30, 9, 0));
    assert!(staff_mails(&t).is_empty(), "{:?}", staff_mails(&t));
    assert_eq!(
        t.count("SELECT COUNT(*) FROM reminders WHERE kind = 'digest' AND outbox IS NULL"),
        1
    );
}

#[test]
fn a_reply_to_a_staff_reminder_answers_the_customer_with_nothing_of_the_reminder() {
    let mut t = TestDesk::with_reminders_and(STAFF_AUTH);
    t.deliver(
        &simple_mail(
            "Yamada <yamada@alpha.example.co.jp>",
            "同期エラー",
            "q1@alpha.example.co.jp",
            "",
        ),
        jst(2026, 11, 30, 10, 0),
    );
    t.pass(jst(2026, 11, 30, 10, 0));
    t.pass(jst(2026, 12, 1, 10, 30));
    let reminder = t
        .sent()
        .into_iter()
        .map(|(_, m, _)| m)
        .find(|m| m.subject.contains("返信待ち"))
        .expect("the staff reminder");
    let quoted: String = reminder
        .text
        .lines()
        .map(|l| format!("> {l}\r\n"))
        .collect();
    let body =
        format!("山田様\r\n\r\n同期間隔の設定をご確認ください。\r\n\r\n田中\r\n\r\n{quoted}");
    t.deliver(
        &staff_reply(&reminder, &body, TRUSTED_PASS),
        jst(2026, 12, 1, 10, 40),
    );
    let s = t.pass(jst(2026, 12, 1, 10, 41));
    assert_eq!(s.follow_ups, 1, "{s:?}");
    let (to, relay, _) = t.sent().pop().expect("the relay");
    assert_eq!(to, "yamada@alpha.example.co.jp");
    assert!(
        relay.text.contains("同期間隔の設定をご確認ください"),
        "{}",
        relay.text
    );
    for secret in [
        "返信待ち",
        "社内情報",
        "リマインド",
        "##-",
        "support-team",
        "> ",
    ] {
        assert!(
            !relay.text.contains(secret),
            "{secret} relayed: {}",
            relay.text
        );
    }
    // Answered: no second reminder at twice the SLA.
    t.pass(jst(2026, 12, 2, 11, 0));
    let reminders = t
        .sent()
        .into_iter()
        .filter(|(_, m, _)| m.subject.contains("返信待ち"))
        .count();
    assert_eq!(reminders, 1);
}
