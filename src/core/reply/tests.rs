//! Replies as data: one-pass templates (issue 7 item 1), echo limits (6), greetings (2, 14),
//! Japanese notifications (15).

use proptest::prelude::*;

use super::*;
use crate::core::contract::SupportPeriod;
use crate::core::test_support::{date, jst};

fn expired() -> Entitlement {
    Entitlement::Expired {
        last_end: date(2025, 3, 31),
        next: RenewalKind::Renewal,
        next_period: SupportPeriod {
            start: date(2026, 4, 1),
            end: date(2027, 3, 31),
        },
    }
}

fn letter<'a>(subject: &'a str, entitlement: &'a Entitlement) -> TicketLetter<'a> {
    TicketLetter {
        prefix: "NEO-DS",
        desk_address: "support@example.co.jp",
        timezone: chrono_tz::Asia::Tokyo,
        ticket: 1,
        addressee: "",
        from: "stranger@evil.example",
        subject,
        text: "本文",
        category: Category::Operation,
        state: TicketState::Open,
        received_at: jst(2026, 3, 10, 10, 0),
        accepted_at: jst(2026, 3, 10, 10, 0),
        license_due: None,
        license: None,
        contract_id: Some("C-1001"),
        entitlement,
        message_id: Some("m1@evil.example"),
        references: &[],
    }
}

/// The follow-up view of a letter: its ticket and the mail that arrived.
fn follow<'a>(l: &TicketLetter<'a>) -> FollowUpLetter<'a> {
    FollowUpLetter {
        prefix: l.prefix,
        desk_address: l.desk_address,
        timezone: l.timezone,
        ticket: l.ticket,
        state: l.state,
        received_at: l.received_at,
        from: l.from,
        subject: l.subject,
        text: l.text,
    }
}

const PLACEHOLDERS: &[&str] = &[
    "greeting",
    "tag",
    "ticket",
    "accepted_at",
    "subject",
    "category",
    "outside_hours",
    "license_due",
    "contract_id",
    "last_end",
    "renewal_text",
    "desk_address",
];

#[test]
fn a_subject_naming_placeholders_reveals_nothing_of_the_contract() {
    let e = expired();
    let subject: String = PLACEHOLDERS
        .iter()
        .map(|p| format!("{{{{{p}}}}}"))
        .collect();
    let l = letter(&subject, &e);
    let reply = customer_reply(ReplyKind::Acknowledgement, "stranger@evil.example", &l);
    // The subject is echoed literally, and nothing it names leaks.
    assert!(reply.body.contains(&subject), "{}", reply.body);
    assert!(reply.subject.ends_with(&subject), "{}", reply.subject);
    for secret in ["2025年3月31日", "2026年4月1日", "C-1001", "更新"] {
        assert!(
            !reply.body.contains(secret),
            "{secret} leaked:\n{}",
            reply.body
        );
    }
}

#[test]
fn fill_leaves_unknown_and_unclosed_placeholders_as_written() {
    assert_eq!(fill("{{a}} {{b}} {{", &[("a", "1")]), "1 {{b}} {{");
    assert_eq!(fill("{{{a}}}", &[("a", "1")]), "{{{a}}}");
    assert_eq!(fill("", &[("a", "1")]), "");
}

proptest! {
    /// For any value containing placeholder syntax, the output holds that value literally and
    /// nothing it names.
    #[test]
    fn fill_never_rescans_a_value(
        parts in proptest::collection::vec(
            prop_oneof![
                proptest::sample::select(PLACEHOLDERS).prop_map(|p| format!("{{{{{p}}}}}")),
                Just("{{".to_string()),
                Just("}}".to_string()),
                "[ -~あ-ん]{0,8}",
            ],
            0..12,
        )
    ) {
        let value: String = parts.concat();
        let template = "A{{subject}}B{{last_end}}C{{subject}}";
        let out = fill(template, &[("subject", &value), ("last_end", "SECRET")]);
        prop_assert_eq!(out, format!("A{value}BSECRETC{value}"));
    }
}

#[test]
fn echoed_subjects_are_cut_and_carry_one_tag() {
    let e = Entitlement::Unmatched;
    let long = "あ".repeat(10_000);
    let l = letter(&long, &e);
    let reply = customer_reply(ReplyKind::Acknowledgement, "x@example.jp", &l);
    let echoed = reply.subject.split('：').nth(1).unwrap();
    assert_eq!(echoed.chars().count(), SUBJECT_ECHO_CHARS);
    assert!(echoed.ends_with('…'));
    assert!(reply.body.len() < 4_000, "{} bytes", reply.body.len());
    // Line breaks in a subject never reach a header.
    assert_eq!(echo_subject("a\r\nBcc: x@evil", "NEO-DS"), "a Bcc: x@evil");

    let notice = follow_up_notification(
        &["team@example.co.jp".into()],
        &follow(&letter("Re: [NEO-DS#000001] 再発 [neo-ds#1]", &e)),
        FollowUpNote::Customer { reopened: false },
    );
    assert_eq!(notice.subject, "[NEO-DS#000001] 追加: Re: 再発");
    // Not ours: kept.
    assert_eq!(echo_subject("[NEO-DS#12a] x", "NEO-DS"), "[NEO-DS#12a] x");
}

#[test]
fn a_reply_without_a_name_greets_okyakusama_alone() {
    let e = Entitlement::Unmatched;
    let l = letter("質問", &e);
    let reply = customer_reply(ReplyKind::Unmatched, "x@example.jp", &l);
    assert!(reply.body.starts_with("お客様\n"), "{}", reply.body);
    assert!(!reply.body.contains("お客様 様"));
    let l = TicketLetter {
        addressee: "アルファ株式会社 山田",
        ..letter("質問", &e)
    };
    let reply = customer_reply(ReplyKind::Acknowledgement, "x@example.jp", &l);
    assert!(reply.body.starts_with("アルファ株式会社 山田 様\n"));
}

#[test]
fn the_license_acknowledgement_says_the_key_is_sent_and_where_the_cutoff_falls() {
    let e = Entitlement::Unmatched;
    let l = TicketLetter {
        license_due: Some(date(2026, 11, 30)),
        ..letter("ライセンスキー再発行", &e)
    };
    let body = customer_reply(ReplyKind::Acknowledgement, "x@example.jp", &l).body;
    assert!(
        body.contains("ライセンスキーは、2026年11月30日(月) までに"),
        "{body}"
    );
    assert!(
        body.contains("17:00までの受付分は当日、17:00を過ぎた受付分"),
        "{body}"
    );
    assert!(!body.contains("お申込みは、"), "{body}");
    assert!(!body.contains("17:00以降"), "{body}");
}

/// Staff read Japanese: no English state names, periods or arrows in a notification.
#[test]
fn staff_notifications_are_japanese_throughout() {
    let covered = Entitlement::Covered {
        period: SupportPeriod {
            start: date(2026, 4, 1),
            end: date(2027, 3, 31),
        },
    };
    for (entitlement, state) in [
        (covered, TicketState::Open),
        (expired(), TicketState::WaitingAcceptance),
        (
            Entitlement::Unknown {
                problem: crate::core::ticket::ContractProblem::NoValidOrders,
            },
            TicketState::Closed,
        ),
    ] {
        let l = TicketLetter {
            state,
            ..letter("質問", &entitlement)
        };
        let sent = ReplyNote::Sent {
            kind: ReplyKind::Acknowledgement,
            to: "x@example.jp".into(),
        };
        let body = staff_notification(&["team@example.co.jp".into()], &l, &sent).body;
        for english in [
            " to ",
            "open",
            "waiting_acceptance",
            "closed",
            "acknowledgement",
            "→",
            "contract",
            "2026-04-01",
        ] {
            assert!(!body.contains(english), "{english:?} in:\n{body}");
        }
        assert!(
            body.contains("受付のお知らせを送信（宛先: x@example.jp）"),
            "{body}"
        );
    }
    let l = letter("質問", &Entitlement::Unmatched);
    let body = follow_up_notification(
        &["team@example.co.jp".into()],
        &follow(&l),
        FollowUpNote::UnauthenticatedStaff {
            reason: "no DKIM signature",
        },
    )
    .body;
    assert!(body.contains("なりすまし"), "{body}");
    assert!(
        body.contains("認証できない理由: no DKIM signature\n"),
        "{body}"
    );
    assert!(body.contains("状態　　：対応中"), "{body}");
}

#[test]
fn a_huge_customer_text_is_cut_in_the_notification() {
    let e = Entitlement::Unmatched;
    let text = "x".repeat(1_000_000);
    let l = TicketLetter {
        text: &text,
        ..letter("質問", &e)
    };
    let note = ReplyNote::Withheld("理由".into());
    let body = staff_notification(&["t@example.co.jp".into()], &l, &note).body;
    assert!(body.len() < TEXT_ECHO_CHARS + 2_000, "{}", body.len());
    assert!(body.contains('…'));
}

/// Issue 9 item 1: a notification staff can answer: the first line says where to write, the
/// internal section is delimited, the customer's text is outside it, replies go to the desk.
#[test]
fn notifications_tell_staff_where_to_write_and_fence_the_internal_section() {
    let covered = Entitlement::Covered {
        period: SupportPeriod {
            start: date(2026, 4, 1),
            end: date(2027, 3, 31),
        },
    };
    let l = TicketLetter {
        text: "同期がエラーになります。",
        ..letter("同期エラー", &covered)
    };
    let sent = ReplyNote::Sent {
        kind: ReplyKind::Acknowledgement,
        to: "x@example.jp".into(),
    };
    let team = ["team@example.co.jp".to_string()];
    for notice in [
        staff_notification(&team, &l, &sent),
        follow_up_notification(
            &team,
            &follow(&l),
            FollowUpNote::Customer { reopened: false },
        ),
    ] {
        assert_eq!(
            notice.body.lines().next(),
            Some(REPLY_MARKER),
            "{}",
            notice.body
        );
        assert!(REPLY_MARKER.contains("#note"));
        assert_eq!(notice.reply_to.as_deref(), Some("support@example.co.jp"));
        let (before, internal) = notice
            .body
            .split_once(INTERNAL_BEGIN)
            .expect("an internal section");
        let (internal, after) = internal.split_once(INTERNAL_END).expect("its end");
        assert!(
            before.contains("同期がエラーになります。"),
            "{}",
            notice.body
        );
        assert!(internal.contains("状態"), "{internal}");
        assert!(
            after.trim().is_empty(),
            "nothing after the section: {after:?}"
        );
    }
    let body = staff_notification(&team, &l, &sent).body;
    let internal = body
        .split_once(INTERNAL_BEGIN)
        .map(|(_, i)| i)
        .unwrap_or("");
    for secret in ["契約状況", "2026年4月1日", "自動応答"] {
        assert!(internal.contains(secret), "{secret} belongs inside: {body}");
        assert_eq!(
            body.matches(secret).count(),
            1,
            "{secret} only inside: {body}"
        );
    }
}
