//! License key applications through the desk (issue 10): Maildir in, SQLite, outbox files out,
//! with a fixed clock. The cutoff edges themselves are unit tests of `core::license`; here the
//! whole path: application → ticket and reply → key on its due date → the applicant only.

use chrono::{DateTime, Utc};

use crate::desk::TestDesk;
use crate::util::jst;

const SUZUKI: &str = "suzuki@beta.example.jp";
const STAFF: &str = "support-team@example.co.jp";

/// A license application form as the vendor's form robot sends it.
pub(crate) fn license_form(
    id: &str,
    email: &str,
    serial: &str,
    reason: &str,
    server: &str,
) -> Vec<u8> {
    format!(
        "From: license-form@example.co.jp\r\nTo: support@example.co.jp\r\n\
         Subject: =?UTF-8?B?44CQ44Op44Kk44K744Oz44K544Kt44O85YaN55m66KGM55Sz6KuL44CR?=\r\n\
         Message-ID: <{id}@www.example.co.jp>\r\nDate: Tue, 24 Nov 2026 17:05:33 +0900\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n\
         Content-Transfer-Encoding: 8bit\r\n\r\n\
         ライセンスキー再発行申請フォームより、以下の申請がありました。\r\n\r\n\
         【お客様番号】C-1002\r\n【ライセンス番号】{serial}\r\n【メールアドレス】{email}\r\n\
         【申請理由】{reason}\r\n【新サーバー識別子】{server}\r\n\r\n--\r\n申請日時：2026-11-24\r\n"
    )
    .into_bytes()
}

pub(crate) fn good_form(id: &str) -> Vec<u8> {
    license_form(
        id,
        SUZUKI,
        "DNDS-2026-01152",
        "サーバー変更",
        "HID-A27F-6C19",
    )
}

/// The mails in the outbox to `to`, as (subject, text).
fn mails_to(t: &TestDesk, to: &str) -> Vec<(String, String)> {
    t.sent()
        .into_iter()
        .filter(|(addr, _, _)| addr == to)
        .map(|(_, mail, _)| (mail.subject, mail.text))
        .collect()
}

fn state_of(t: &TestDesk, ticket: u64) -> String {
    let rows = t
        .desk
        .store()
        .select_text(
            "SELECT state FROM license_applications WHERE ticket = ?1",
            &[&ticket.to_string()],
        )
        .expect("query");
    rows.first()
        .and_then(|r| r.first().cloned().flatten())
        .unwrap_or_default()
}

fn pass_at(t: &mut TestDesk, now: DateTime<Utc>) {
    t.pass(now);
}

#[test]
fn an_application_after_the_cutoff_is_due_the_next_business_day_and_escalated_without_an_issuer() {
    let mut t = TestDesk::new();
    t.deliver(&good_form("a1"), jst(2026, 11, 24, 17, 5));
    pass_at(&mut t, jst(2026, 11, 24, 17, 10));
    let replies = mails_to(&t, SUZUKI);
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert!(
        replies[0].1.contains("2026年11月25日"),
        "the acknowledgement names the due date: {}",
        replies[0].1
    );
    assert_eq!(state_of(&t, 1), "waiting");
    let notice = &mails_to(&t, STAFF)[0].1;
    assert!(notice.contains("発行要件を満たしています"), "{notice}");
    assert!(
        notice.contains("担当者が発行"),
        "no issuer configured: {notice}"
    );
    // No issuer: no key, and at the cutoff of the due date staff are told it was missed, once.
    pass_at(&mut t, jst(2026, 11, 25, 16, 59));
    assert_eq!(mails_to(&t, STAFF).len(), 1);
    pass_at(&mut t, jst(2026, 11, 25, 17, 0));
    pass_at(&mut t, jst(2026, 11, 25, 17, 30));
    let notices = mails_to(&t, STAFF);
    assert_eq!(notices.len(), 2, "{notices:?}");
    assert!(notices[1].0.contains("期限超過"), "{}", notices[1].0);
    assert_eq!(mails_to(&t, SUZUKI).len(), 1, "no key without an issuer");
}

#[test]
fn an_unregistered_applicant_gets_the_plain_acknowledgement_and_staff_hear_why() {
    let mut t = TestDesk::new();
    let stranger = "mallory@evil.example.com";
    t.deliver(
        &license_form(
            "a2",
            stranger,
            "DNDS-2026-01152",
            "サーバー変更",
            "HID-EVIL-0001",
        ),
        jst(2026, 11, 25, 10, 0),
    );
    pass_at(&mut t, jst(2026, 11, 25, 10, 5));
    let replies = mails_to(&t, stranger);
    assert_eq!(replies.len(), 1);
    let text = &replies[0].1;
    for secret in [
        "ベータ",
        "C-1002",
        "HID-91B4",
        "ライセンスキーは",
        "発行できません",
    ] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
    assert_eq!(state_of(&t, 1), "refused");
    let notice = &mails_to(&t, STAFF)[0].1;
    assert!(notice.contains("not_registered_contact"), "{notice}");
    // Nothing ever goes to the stranger again, however long the desk runs.
    pass_at(&mut t, jst(2026, 11, 27, 10, 0));
    assert_eq!(mails_to(&t, stranger).len(), 1);
}

#[test]
fn a_registered_applicant_is_told_what_is_missing() {
    let mut t = TestDesk::new();
    // The serial of C-1001 with the customer number of C-1002, and the registered server.
    t.deliver(
        &license_form(
            "a3",
            SUZUKI,
            "DNDS-2024-00318",
            "サーバー変更",
            "HID-91B4-22D8",
        ),
        jst(2026, 11, 25, 10, 0),
    );
    pass_at(&mut t, jst(2026, 11, 25, 10, 5));
    let replies = mails_to(&t, SUZUKI);
    assert_eq!(replies.len(), 1);
    let text = &replies[0].1;
    assert!(text.contains("ライセンスキーを発行できません"), "{text}");
    assert!(
        text.contains("お客様番号のご契約のものではありません"),
        "{text}"
    );
    assert_eq!(state_of(&t, 1), "refused");
}

#[test]
fn a_repeated_application_makes_no_second_application() {
    let mut t = TestDesk::new();
    t.deliver(&good_form("a4"), jst(2026, 11, 24, 17, 5));
    pass_at(&mut t, jst(2026, 11, 24, 17, 10));
    // The customer sends the form again the next morning (a different message).
    t.deliver(&good_form("a5"), jst(2026, 11, 25, 8, 0));
    pass_at(&mut t, jst(2026, 11, 25, 8, 5));
    let replies = mails_to(&t, SUZUKI);
    assert_eq!(replies.len(), 2, "{replies:?}");
    let text = &replies[1].1;
    assert!(text.contains("既に承っております"), "{text}");
    assert!(text.contains("NEO-DS#000001"), "{text}");
    assert!(text.contains("2026年11月25日"), "{text}");
    assert_eq!(
        (state_of(&t, 1).as_str(), state_of(&t, 2).as_str()),
        ("waiting", "refused")
    );
    assert_eq!(
        t.count("SELECT COUNT(*) FROM license_applications WHERE state <> 'refused'"),
        1
    );
}
