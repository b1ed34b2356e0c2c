use chrono::NaiveDate;

use super::*;
use crate::core::contract::RenewalKind;
use crate::core::test_support::{date, jst};
use crate::core::ticket::*;

/// The outcome alone: most tests are about what happens, not how it is carried out.
fn decide(i: &Intake<'_>, r: &DeskRules, c: &BusinessCalendar) -> Outcome {
    super::decide(i, r, c).outcome
}
use crate::core::calendar::CalendarSpec;
use crate::core::contract::{Order, OrderKind};
use crate::core::inbound::{AutoHeaders, InboundMail, Mailbox};

fn calendar() -> BusinessCalendar {
    BusinessCalendar::new(CalendarSpec::default()).unwrap()
}

fn rules() -> DeskRules {
    DeskRules {
        desk_addresses: vec!["support@example.co.jp".into()],
        desk_address: "support@example.co.jp".into(),
        ticket_prefix: "NEO-DS".into(),
        timezone: chrono_tz::Asia::Tokyo,
        staff: vec!["tanaka@example.co.jp".into()],
        notify: vec!["support-team@example.co.jp".into()],
        reopen_days: 14,
        auto_reply_limit_per_hour: 5,
        notify_limit_per_ticket_hour: 6,
        flood_per_hour: 10,
        staff_policy: crate::core::auth::StaffAuthentication::default(),
    }
}

fn mail(from: &str, subject: &str) -> InboundMail {
    InboundMail {
        message_id: Some("m1@customer.example.jp".into()),
        in_reply_to: vec![],
        references: vec![],
        from: Some(Mailbox {
            name: None,
            address: from.into(),
        }),
        reply_to: None,
        to: vec![],
        cc: vec![],
        subject: subject.into(),
        date: None,
        text: "本文".into(),
        auto: AutoHeaders::default(),
        report: None,
        attachments: vec![],
        form: None,
        auth_results: vec![],
        defects: vec![],
    }
}

fn contract(neo_support: bool, received: NaiveDate) -> ContractFacts {
    ContractFacts::from_orders(
        crate::core::contract::Contract {
            contract_id: "C-1001".into(),
            customer: "アルファ株式会社".into(),
            license_serial: "NEO-1".into(),
            contacts: vec!["yamada@alpha.example.co.jp".into()],
            domains: vec!["alpha.example.co.jp".into()],
            customized: false,
            neo_support,
            server_id: String::new(),
            reminders: true,
        },
        &[Order {
            kind: OrderKind::Initial,
            received,
            purchased: None,
            certificate: None,
        }],
    )
}

fn intake<'a>(mail: &'a InboundMail, guard: &'a Guard, received_at: DateTime<Utc>) -> Intake<'a> {
    Intake {
        mail,
        guard,
        category: Category::Fault,
        received_at,
        now: received_at,
        thread: None,
        contract: None,
        reply_to: reply_address(mail),
        recent_auto_replies: 0,
        recent_ticket_notices: 0,
        sender_load: SenderLoad::default(),
        same_as: None,
        bounced: None,
        next_ticket: 1,
        staff: None,
        license: None,
    }
}

/// Ticket 1 of Yamada's, accepted on 2026-11-02, in `state`.
fn ticket_in(state: TicketState) -> TicketFacts {
    TicketFacts {
        number: 1,
        state,
        accepted_at: jst(2026, 11, 2, 10, 0),
        closed_at: None,
        contract_id: None,
        customer_address: "yamada@alpha.example.co.jp".into(),
        first_response_at: None,
    }
}

fn new_ticket(d: Outcome) -> NewTicket {
    match d {
        Outcome::NewTicket(n) => n,
        other => panic!("expected a new ticket, got {other:?}"),
    }
}

#[test]
fn tags_and_message_ids_round_trip() {
    assert_eq!(tag("NEO-DS", 123), "[NEO-DS#000123]");
    assert_eq!(find_tag("Re: [NEO-DS#000123] 件名", "NEO-DS"), Some(123));
    assert_eq!(find_tag("Re: [neo-ds#42] x", "NEO-DS"), Some(42));
    assert_eq!(find_tag("[NEO-DS#] [NEO-DS#12a] [OTHER#5]", "NEO-DS"), None);
    let id = message_id("NEO-DS", 7, 0xdead_beef, "example.co.jp");
    assert_eq!(
        ticket_in_message_id(&id, "NEO-DS", "example.co.jp"),
        Some(7)
    );
    assert_eq!(ticket_in_message_id(&id, "NEO-DS", "evil.example"), None);
    assert_eq!(
        ticket_in_message_id("neo-ds.000007.1@example.co.jp", "NEO-DS", "example.co.jp"),
        None
    );
}

#[test]
fn a_covered_contact_in_hours_gets_an_open_ticket_and_an_acknowledgement() {
    let m = mail("yamada@alpha.example.co.jp", "エラーが出ます");
    let c = contract(false, date(2026, 3, 15));
    let guard = Guard::Human;
    let t = jst(2026, 11, 25, 10, 0);
    let mut i = intake(&m, &guard, t);
    i.contract = Some((&c, MatchedBy::Contact));
    let n = new_ticket(decide(&i, &rules(), &calendar()));
    assert_eq!(n.state, TicketState::Open);
    assert_eq!(n.accepted_at, t);
    assert_eq!(n.contract_id.as_deref(), Some("C-1001"));
    assert!(matches!(n.entitlement, Entitlement::Covered { .. }));
    assert_eq!(
        n.reply,
        Some((
            ReplyKind::Acknowledgement,
            "yamada@alpha.example.co.jp".into()
        ))
    );
}

#[test]
fn outside_hours_waits_for_the_next_opening() {
    let m = mail("yamada@alpha.example.co.jp", "質問");
    let guard = Guard::Human;
    // Friday 18:00 → Monday 09:00 (R5).
    let mut i = intake(&m, &guard, jst(2026, 11, 27, 18, 0));
    i.now = jst(2026, 11, 27, 18, 5);
    let n = new_ticket(decide(&i, &rules(), &calendar()));
    assert_eq!(n.state, TicketState::WaitingAcceptance);
    assert_eq!(n.accepted_at, jst(2026, 11, 30, 9, 0));
    // Processed late (the daemon was down): still accepted as of arrival, and already open.
    i.now = jst(2026, 12, 1, 10, 0);
    let n = new_ticket(decide(&i, &rules(), &calendar()));
    assert_eq!(n.accepted_at, jst(2026, 11, 30, 9, 0));
    assert_eq!(n.state, TicketState::Open);
}

#[test]
fn expired_details_go_only_to_a_registered_contact() {
    let c = contract(false, date(2024, 3, 15)); // period 2024-04-01..2025-03-31
    let guard = Guard::Human;
    let m = mail("yamada@alpha.example.co.jp", "質問");
    let mut i = intake(&m, &guard, jst(2026, 3, 10, 10, 0));
    i.contract = Some((&c, MatchedBy::Contact));
    let n = new_ticket(decide(&i, &rules(), &calendar()));
    assert!(matches!(
        n.entitlement,
        Entitlement::Expired {
            next: RenewalKind::Renewal,
            ..
        }
    ));
    assert_eq!(n.reply.map(|r| r.0), Some(ReplyKind::Expired));
    // Same contract found by domain, from an unregistered address: no contract details.
    let m = mail("someone@alpha.example.co.jp", "質問");
    let mut i = intake(&m, &guard, jst(2026, 4, 10, 10, 0));
    i.contract = Some((&c, MatchedBy::Domain));
    let n = new_ticket(decide(&i, &rules(), &calendar()));
    assert!(matches!(
        n.entitlement,
        Entitlement::Expired {
            next: RenewalKind::RecontinuationRequired,
            ..
        }
    ));
    assert_eq!(n.reply.map(|r| r.0), Some(ReplyKind::Acknowledgement));
}

#[test]
fn unmatched_and_out_of_scope() {
    let guard = Guard::Human;
    let m = mail("nobody@unknown.example", "質問");
    let n = new_ticket(decide(
        &intake(&m, &guard, jst(2026, 11, 25, 10, 0)),
        &rules(),
        &calendar(),
    ));
    assert_eq!(n.entitlement, Entitlement::Unmatched);
    assert_eq!(n.reply.map(|r| r.0), Some(ReplyKind::Unmatched));

    let c = contract(false, date(2026, 3, 15));
    let m = mail("yamada@alpha.example.co.jp", "スケジュールの使い方");
    let mut i = intake(&m, &guard, jst(2026, 11, 25, 10, 0));
    i.category = Category::BaseProduct;
    i.contract = Some((&c, MatchedBy::Contact));
    let n = new_ticket(decide(&i, &rules(), &calendar()));
    assert_eq!(n.entitlement, Entitlement::OutOfScope);
    assert_eq!(n.reply.map(|r| r.0), Some(ReplyKind::OutOfScope));
    // With desknet's NEO support the same question is covered (R3).
    let c = contract(true, date(2026, 3, 15));
    i.contract = Some((&c, MatchedBy::Contact));
    let n = new_ticket(decide(&i, &rules(), &calendar()));
    assert!(matches!(n.entitlement, Entitlement::Covered { .. }));
}

#[test]
fn automatic_mail_is_recorded_never_answered() {
    let m = mail("mailer-daemon@mx.example.jp", "Undelivered Mail");
    let guard = Guard::NoReply(NoReplyReason::Bounce);
    match decide(
        &intake(&m, &guard, jst(2026, 11, 25, 10, 0)),
        &rules(),
        &calendar(),
    ) {
        Outcome::Recorded { reason, ticket } => {
            assert_eq!(reason, NoReplyReason::Bounce);
            assert_eq!(ticket, None);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_per_sender_limit_and_the_desk_itself_withhold_replies() {
    let guard = Guard::Human;
    let m = mail("flood@unknown.example", "質問");
    let mut i = intake(&m, &guard, jst(2026, 11, 25, 10, 0));
    i.recent_auto_replies = 5;
    let n = new_ticket(decide(&i, &rules(), &calendar()));
    assert_eq!(n.reply, None);
    assert!(n.reply_withheld.unwrap().contains("上限 5通"));
    i.recent_auto_replies = 0;
    i.reply_to = Ok("support@example.co.jp".into());
    let n = new_ticket(decide(&i, &rules(), &calendar()));
    assert_eq!(n.reply, None);
}

#[test]
fn follow_ups_reopen_within_the_window_and_continue_after_it() {
    let guard = Guard::Human;
    let m = mail("yamada@alpha.example.co.jp", "Re: [NEO-DS#000001] 質問");
    let closed = TicketFacts {
        closed_at: Some(jst(2026, 11, 10, 10, 0)),
        contract_id: Some("C-1001".into()),
        ..ticket_in(TicketState::Closed)
    };
    let mut i = intake(&m, &guard, jst(2026, 11, 24, 10, 0));
    i.thread = Some((&closed, ThreadedBy::SubjectTag));
    match decide(&i, &rules(), &calendar()) {
        Outcome::FollowUp {
            ticket,
            reopen_as,
            notify_staff,
            ..
        } => {
            assert_eq!(ticket, 1);
            assert_eq!(reopen_as, Some(TicketState::Open));
            assert!(notify_staff);
        }
        other => panic!("{other:?}"),
    }
    // 15 days after closing: a new ticket that refers to the old one.
    i.received_at = jst(2026, 11, 25, 10, 1);
    i.now = i.received_at;
    let n = new_ticket(decide(&i, &rules(), &calendar()));
    assert_eq!(n.continues, Some(1));
    // An open ticket simply gets the article.
    let open = TicketFacts {
        state: TicketState::Open,
        closed_at: None,
        ..closed.clone()
    };
    i.thread = Some((&open, ThreadedBy::OurMessageId));
    assert!(matches!(
        decide(&i, &rules(), &calendar()),
        Outcome::FollowUp {
            ticket: 1,
            reopen_as: None,
            ..
        }
    ));
}

fn license_book() -> crate::core::matching::ContractBook {
    crate::core::matching::ContractBook::new(vec![contract(false, date(2026, 3, 15))])
}

fn license_intake<'a>(
    application: &'a crate::core::license::Application,
    book: &'a crate::core::matching::ContractBook,
) -> LicenseIntake<'a> {
    LicenseIntake {
        application,
        book,
        earlier: None,
        policy: crate::core::license::LicensePolicy {
            approval_by_staff: false,
            early: false,
            issuer: true,
        },
    }
}

fn yamada_applies(reason: &str, who: &str) -> crate::core::license::Application {
    crate::core::license::Application {
        customer_number: Some("C-1001".into()),
        license_serial: Some("NEO-1".into()),
        reason: Some(reason.into()),
        new_server_id: Some("HID-NEW".into()),
        applicant: Some(who.into()),
    }
}

#[test]
fn license_applications_carry_the_due_date() {
    let guard = Guard::Human;
    let m = mail("yamada@alpha.example.co.jp", "ライセンスキー再発行");
    let (app, book) = (
        yamada_applies("サーバー変更", "yamada@alpha.example.co.jp"),
        license_book(),
    );
    let mut i = intake(&m, &guard, jst(2026, 11, 27, 17, 0));
    i.category = Category::LicenseReissue;
    i.license = Some(license_intake(&app, &book));
    let decision = super::decide(&i, &rules(), &calendar());
    let Outcome::NewTicket(n) = &decision.outcome else {
        panic!("{:?}", decision.outcome)
    };
    assert_eq!(n.license_due, Some(date(2026, 11, 27)));
    assert!(decision.effects.iter().any(|e| matches!(
        e,
        Effect::RecordApplication {
            ticket: 1,
            verdict: crate::core::license::LicenseVerdict::Eligible { .. },
            ..
        }
    )));
    let ack = queued(&decision.effects, "yamada@alpha.example.co.jp");
    assert!(ack.body.contains("2026年11月27日"), "{}", ack.body);
    i.received_at = jst(2026, 11, 27, 17, 1);
    let n = new_ticket(decide(&i, &rules(), &calendar()));
    assert_eq!(n.license_due, Some(date(2026, 11, 30)));
}

/// The mail queued to `to` among `effects`.
fn queued<'e>(effects: &'e [Effect], to: &str) -> &'e crate::core::reply::OutgoingMail {
    effects
        .iter()
        .find_map(|e| match e {
            Effect::QueueMail { mail, .. } if mail.to.iter().any(|t| t == to) => Some(mail),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no mail to {to} in {effects:?}"))
}

#[test]
fn a_refused_application_tells_a_registered_applicant_what_is_missing_and_a_stranger_nothing() {
    let guard = Guard::Human;
    let book = license_book();
    let m = mail("yamada@alpha.example.co.jp", "ライセンスキー再発行");
    let app = yamada_applies("紛失", "yamada@alpha.example.co.jp");
    let mut i = intake(&m, &guard, jst(2026, 11, 25, 10, 0));
    i.category = Category::LicenseReissue;
    i.license = Some(license_intake(&app, &book));
    let decision = super::decide(&i, &rules(), &calendar());
    let reply = queued(&decision.effects, "yamada@alpha.example.co.jp");
    assert_eq!(
        reply.kind,
        crate::core::reply::OutgoingKind::AutoReply(ReplyKind::LicenseRefused)
    );
    assert!(
        reply.body.contains("サーバー変更の場合に承っております"),
        "{}",
        reply.body
    );
    let notice = queued(&decision.effects, "support-team@example.co.jp");
    assert!(notice.body.contains("not_server_change"), "{}", notice.body);
    // A stranger naming Yamada's contract gets the plain acknowledgement, with no due date
    // and nothing of the contract.
    let m = mail("mallory@evil.example", "ライセンスキー再発行");
    let app = yamada_applies("サーバー変更", "mallory@evil.example");
    let mut i = intake(&m, &guard, jst(2026, 11, 25, 10, 0));
    i.category = Category::LicenseReissue;
    i.license = Some(license_intake(&app, &book));
    let decision = super::decide(&i, &rules(), &calendar());
    let reply = queued(&decision.effects, "mallory@evil.example");
    assert_eq!(
        reply.kind,
        crate::core::reply::OutgoingKind::AutoReply(ReplyKind::Acknowledgement)
    );
    assert!(!reply.body.contains("ライセンスキーは"), "{}", reply.body);
    assert!(!reply.body.contains("C-1001"), "{}", reply.body);
    assert!(!reply.body.contains("アルファ"), "{}", reply.body);
}

#[test]
fn staff_mail_without_a_ticket_is_quarantined_and_mail_without_from_too() {
    let guard = Guard::Human;
    let m = mail("tanaka@example.co.jp", "hello");
    assert!(matches!(
        decide(
            &intake(&m, &guard, jst(2026, 11, 25, 10, 0)),
            &rules(),
            &calendar()
        ),
        Outcome::Quarantine { .. }
    ));
    let mut m = mail("x@y.example", "no from");
    m.from = None;
    assert!(matches!(
        decide(
            &intake(&m, &guard, jst(2026, 11, 25, 10, 0)),
            &rules(),
            &calendar()
        ),
        Outcome::Quarantine { .. }
    ));
}

fn form_mail(fields: &[(&str, &str)]) -> InboundMail {
    let body: String = fields
        .iter()
        .map(|(l, v)| format!("【{l}】{v}\n"))
        .collect();
    let mut m = mail("form@example.co.jp", "お問合せフォーム");
    m.form = crate::core::form::parse_form(&body, &crate::core::form::FormLabels::default());
    assert!(m.form.is_some(), "not a form: {body}");
    m.text = body;
    m
}

/// Issue 7 item 2: the registered company name greets only a registered contact.
#[test]
fn the_greeting_names_the_registered_company_only_to_a_registered_contact() {
    let c = contract(false, date(2026, 3, 15));
    let mut m = mail("yamada@alpha.example.co.jp", "質問");
    m.from = Some(Mailbox {
        name: Some("山田".into()),
        address: "yamada@alpha.example.co.jp".into(),
    });
    assert_eq!(
        addressee(&m, Some(&c), "yamada@alpha.example.co.jp"),
        "アルファ株式会社 山田"
    );
    // Forged From with Reply-To elsewhere: the reply goes to the stranger, without the name.
    m.reply_to = Some(Mailbox {
        name: Some("Eve".into()),
        address: "eve@evil.example".into(),
    });
    assert_eq!(reply_address(&m), Ok("eve@evil.example".into()));
    assert_eq!(addressee(&m, Some(&c), "eve@evil.example"), "Eve");
    // A stranger naming the customer number in the body.
    let s = mail("someone@evil.example", "C-1001 の件");
    assert_eq!(addressee(&s, Some(&c), "someone@evil.example"), "");
    // Through decide: matched by customer number, the stranger is greeted without the company.
    let guard = Guard::Human;
    let mut i = intake(&s, &guard, jst(2026, 11, 25, 10, 0));
    i.contract = Some((&c, MatchedBy::CustomerNumber));
    let n = new_ticket(decide(&i, &rules(), &calendar()));
    assert_eq!(n.addressee, "");
    assert_eq!(n.reply.map(|r| r.0), Some(ReplyKind::Acknowledgement));
    // A form: its own 会社名 + ご担当者名, once, whoever the contract is.
    let f = form_mail(&[
        ("お客様番号", "C-1001"),
        ("会社名", "ベータ商事"),
        ("ご担当者名", "佐藤"),
        ("メールアドレス", "sato@beta.example.jp"),
        ("お問合せ内容", "質問です"),
    ]);
    assert_eq!(
        addressee(&f, Some(&c), "sato@beta.example.jp"),
        "ベータ商事 佐藤"
    );
    let i = Intake {
        contract: Some((&c, MatchedBy::CustomerNumber)),
        ..intake(&f, &guard, jst(2026, 11, 25, 10, 0))
    };
    let n = new_ticket(decide(&i, &rules(), &calendar()));
    assert_eq!(n.addressee, "ベータ商事 佐藤");
}

/// Issue 7 item 3: a staff From (unauthenticated) never changes a ticket.
#[test]
fn mail_from_a_staff_address_is_recorded_but_changes_nothing() {
    let guard = Guard::Human;
    let m = mail("tanaka@example.co.jp", "Re: [NEO-DS#000001] 質問");
    let closed = TicketFacts {
        closed_at: Some(jst(2026, 11, 10, 10, 0)),
        contract_id: Some("C-1001".into()),
        ..ticket_in(TicketState::Closed)
    };
    for received in [jst(2026, 11, 11, 10, 0), jst(2026, 12, 24, 10, 0)] {
        let mut i = intake(&m, &guard, received);
        i.thread = Some((&closed, ThreadedBy::SubjectTag));
        match decide(&i, &rules(), &calendar()) {
            Outcome::FollowUp {
                ticket: 1,
                from_staff: true,
                reopen_as: None,
                notify_staff: true,
                ..
            } => {}
            other => panic!("{other:?}"),
        }
    }
}

/// Issue 9 item 2: staff mail that fails authentication is held with the reason: kept with the
/// message and told to staff; nothing relayed, the ticket as it was.
#[test]
fn unauthenticated_staff_mail_is_held_with_its_reason() {
    let guard = Guard::Human;
    let m = mail("tanaka@example.co.jp", "Re: [NEO-DS#000001] 質問");
    let open = ticket_in(TicketState::Open);
    let auth = crate::core::auth::StaffAuth::Unauthenticated {
        reason: "dkim=pass for example.com, not aligned with example.co.jp".into(),
    };
    let book = crate::core::matching::ContractBook::new(vec![]);
    let mut i = intake(&m, &guard, jst(2026, 11, 25, 10, 0));
    i.thread = Some((&open, ThreadedBy::OurMessageId));
    i.staff = Some(staff_on_ticket(&auth, &book));
    let decision = super::decide(&i, &rules(), &calendar());
    assert!(
        matches!(
            decision.outcome,
            Outcome::FollowUp {
                from_staff: true,
                reopen_as: None,
                ..
            }
        ),
        "{:?}",
        decision.outcome
    );
    let why = "not aligned with example.co.jp";
    let recorded = decision.effects.iter().find_map(|e| match e {
        Effect::RecordMessage { reason, .. } => reason.clone(),
        _ => None,
    });
    assert_eq!(
        recorded.as_deref(),
        Some(
            "staff mail not authenticated: dkim=pass for example.com, not aligned with \
             example.co.jp"
        )
    );
    let mails: Vec<_> = decision
        .effects
        .iter()
        .filter_map(|e| match e {
            Effect::QueueMail { mail, .. } => Some(mail),
            _ => None,
        })
        .collect();
    assert_eq!(mails.len(), 1, "only the notice to staff: {mails:?}");
    assert_eq!(mails[0].to, ["support-team@example.co.jp"]);
    assert!(mails[0].body.contains(why), "{}", mails[0].body);
    assert!(
        !decision
            .effects
            .iter()
            .any(|e| matches!(e, Effect::SetState { .. })),
        "{:?}",
        decision.effects
    );
}

/// Issue 7 item 4: the notification address is never a customer; notices per ticket are capped.
#[test]
fn the_notify_address_is_never_a_customer_and_notices_are_capped() {
    let guard = Guard::Human;
    let m = mail(
        "Support-Team@example.co.jp",
        "自動応答: [NEO-DS#000001] 追加",
    );
    let open = ticket_in(TicketState::Open);
    let mut i = intake(&m, &guard, jst(2026, 11, 25, 10, 0));
    i.thread = Some((&open, ThreadedBy::OurMessageId));
    assert_eq!(
        decide(&i, &rules(), &calendar()),
        Outcome::Recorded {
            reason: NoReplyReason::FromNotifyAddress,
            ticket: Some(1)
        }
    );
    i.thread = None;
    assert!(matches!(
        decide(&i, &rules(), &calendar()),
        Outcome::Recorded {
            reason: NoReplyReason::FromNotifyAddress,
            ticket: None
        }
    ));
    // A customer's follow-ups: notified up to the hourly limit per ticket, then recorded only.
    let m = mail("yamada@alpha.example.co.jp", "Re: [NEO-DS#000001] 追加");
    let mut i = intake(&m, &guard, jst(2026, 11, 25, 10, 0));
    i.thread = Some((&open, ThreadedBy::OurMessageId));
    for (recent, notify) in [(0, true), (5, true), (6, false), (60, false)] {
        i.recent_ticket_notices = recent;
        match decide(&i, &rules(), &calendar()) {
            Outcome::FollowUp { notify_staff, .. } => assert_eq!(notify_staff, notify),
            other => panic!("{other:?}"),
        }
    }
}

/// Issue 7 item 5: a form's reply goes to the one address in the form, or nowhere.
#[test]
fn a_form_without_one_usable_address_gets_no_reply() {
    let guard = Guard::Human;
    for (email, why) in [
        (None, NoReplyAddress::FormWithoutAddress),
        (
            Some("a@alpha.example.co.jp, b@beta.example.jp"),
            NoReplyAddress::FormAddressUnusable("a@alpha.example.co.jp, b@beta.example.jp".into()),
        ),
        (
            Some("a@alpha.example.co.jp;b@beta.example.jp"),
            NoReplyAddress::FormAddressUnusable("a@alpha.example.co.jp;b@beta.example.jp".into()),
        ),
        (
            Some("a@alpha.example.co.jp,b@beta.example.jp"),
            NoReplyAddress::FormAddressUnusable("a@alpha.example.co.jp,b@beta.example.jp".into()),
        ),
        (
            Some("山田 <a@alpha.example.co.jp>"),
            NoReplyAddress::FormAddressUnusable("山田 <a@alpha.example.co.jp>".into()),
        ),
    ] {
        let mut fields = vec![("会社名", "アルファ"), ("お問合せ内容", "質問")];
        fields.extend(email.map(|e| ("メールアドレス", e)));
        let f = form_mail(&fields);
        assert_eq!(reply_address(&f), Err(why.clone()));
        let n = new_ticket(decide(
            &intake(&f, &guard, jst(2026, 11, 25, 10, 0)),
            &rules(),
            &calendar(),
        ));
        assert_eq!(n.reply, None, "{email:?}");
        assert_eq!(n.reply_withheld, Some(why.label_ja()));
    }
    let f = form_mail(&[("メールアドレス", " Yamada@Alpha.example.co.jp ")]);
    assert_eq!(reply_address(&f), Ok("yamada@alpha.example.co.jp".into()));
}

/// Issue 7 item 7: Message-ID tokens carry 128 bits; both token sizes are recognised.
#[test]
fn message_ids_carry_a_128_bit_token() {
    let id = message_id("NEO-DS", 7, u128::MAX - 1, "example.co.jp");
    let token = id.split('.').nth(2).unwrap().split('@').next().unwrap();
    assert_eq!(token.len(), 32, "{id}");
    assert_eq!(
        ticket_in_message_id(&id, "NEO-DS", "example.co.jp"),
        Some(7)
    );
    assert_eq!(
        ticket_in_message_id(
            "neo-ds.000007.00000000deadbeef@example.co.jp",
            "NEO-DS",
            "example.co.jp"
        ),
        Some(7)
    );
}

/// Issue 9 item 6: a customer's answer to a ticket waiting for them opens it again.
#[test]
fn a_customer_answer_opens_a_pending_ticket() {
    let guard = Guard::Human;
    let m = mail(
        "yamada@alpha.example.co.jp",
        "Re: [NEO-DS#000001] 回答ありがとうございます",
    );
    let pending = ticket_in(TicketState::Pending);
    let mut i = intake(&m, &guard, jst(2026, 11, 25, 10, 0));
    i.thread = Some((&pending, ThreadedBy::OurMessageId));
    let decision = super::decide(&i, &rules(), &calendar());
    assert!(matches!(
        decision.outcome,
        Outcome::FollowUp {
            reopen_as: Some(TicketState::Open),
            ..
        }
    ));
    assert!(decision.effects.contains(&Effect::SetState {
        ticket: 1,
        state: TicketState::Open
    }));
    // The notice does not call it a reopened closed ticket.
    let notice = decision.effects.iter().find_map(|e| match e {
        Effect::QueueMail { mail, .. } => Some(mail.body.clone()),
        _ => None,
    });
    assert!(!notice.unwrap_or_default().contains("再オープン"));
}

fn authenticated() -> (
    crate::core::auth::StaffAuth,
    crate::core::matching::ContractBook,
) {
    (
        crate::core::auth::StaffAuth::Authenticated {
            method: "dmarc=pass".into(),
        },
        crate::core::matching::ContractBook::new(vec![]),
    )
}

/// Authenticated staff mail on a ticket whose customer is Yamada.
fn staff_on_ticket<'a>(
    auth: &'a crate::core::auth::StaffAuth,
    book: &'a crate::core::matching::ContractBook,
) -> StaffContext<'a> {
    StaffContext {
        auth,
        internal: None,
        customer: Some(CustomerThread {
            address: "yamada@alpha.example.co.jp",
            subject: "質問",
            message_id: Some("q1@alpha.example.co.jp"),
            references: &[],
        }),
        book,
        application: None,
    }
}

/// A mail of commands signed by its sender sends the customer nothing, and a lone signature is
/// refused rather than relayed.
#[test]
fn a_signature_alone_is_never_relayed() {
    let (auth, book) = authenticated();
    let staff = staff_on_ticket(&auth, &book);
    let staff_list = ["tanaka@example.co.jp".to_string()];
    for (body, relayed, refused) in [
        ("#close\n\n-- \n田中\n", false, false),
        ("-- \n田中\n", false, true),
        ("ご確認ください。\n-- \n田中\n", true, false),
    ] {
        let mut m = mail("tanaka@example.co.jp", "Re: 質問");
        m.text = body.into();
        let d = staff::staff_mail(&m, 1, TicketState::Open, &staff, &staff_list);
        assert_eq!(d.relayed.is_some(), relayed, "{body:?}: {d:?}");
        assert_eq!(!d.refused.is_empty(), refused, "{body:?}: {d:?}");
    }
}

/// A command written below the text (bottom-posting) is neither relayed nor carried out.
#[test]
fn a_command_below_the_text_stops_the_relay() {
    let (auth, book) = authenticated();
    let staff = staff_on_ticket(&auth, &book);
    let mut m = mail("tanaka@example.co.jp", "Re: 質問");
    m.text = "ご確認ください。\n\n#close\n".into();
    let d = staff::staff_mail(&m, 1, TicketState::Open, &staff, &[]);
    assert_eq!(d.relayed, None, "{d:?}");
    assert_eq!(d.state, None, "{d:?}");
    assert!(d.refused.iter().any(|r| r.contains("#close")), "{d:?}");
}

/// `#approve` approves a license application waiting for it, and nothing else: a ticket
/// without an application, a refused one, or one that needs no approval is refused with the
/// reason, and the whole mail does nothing.
#[test]
fn approve_acts_only_on_an_application_waiting_for_approval() {
    use crate::core::license::ApplicationState;
    let (auth, book) = authenticated();
    let mut m = mail("tanaka@example.co.jp", "Re: [NEO-DS#000001] 承認待ち");
    m.text = "#approve\n".into();
    let mut staff = staff_on_ticket(&auth, &book);
    staff.application = Some(ApplicationState::WaitingApproval);
    let d = staff::staff_mail(&m, 1, TicketState::Open, &staff, &[]);
    assert!(d.approved && d.refused.is_empty(), "{d:?}");
    assert_eq!(d.relayed, None, "a command-only mail relays nothing");
    let effects = staff::staff_effects(&d, &m, &staff, &rules());
    assert!(effects.iter().any(|e| matches!(
        e,
        Effect::ApproveLicense { ticket: 1, by } if by == "tanaka@example.co.jp"
    )));
    for application in [
        None,
        Some(ApplicationState::Refused),
        Some(ApplicationState::Waiting),
        Some(ApplicationState::Sent),
    ] {
        staff.application = application;
        m.text = "#approve\n#close\n".into();
        let d = staff::staff_mail(&m, 1, TicketState::Open, &staff, &[]);
        assert!(!d.approved && d.state.is_none(), "{application:?}: {d:?}");
        assert!(!d.refused.is_empty(), "{application:?}: {d:?}");
        let effects = staff::staff_effects(&d, &m, &staff, &rules());
        assert!(
            !effects
                .iter()
                .any(|e| matches!(e, Effect::ApproveLicense { .. })),
            "{application:?}"
        );
    }
}

/// Past `flood_per_hour` new requests from one sender in an hour, mail goes onto their latest
/// open ticket: no reply, no notice but one flood notice to staff. Nothing is dropped.
#[test]
fn a_flood_goes_onto_the_senders_open_ticket_with_one_notice() {
    let guard = Guard::Human;
    let m = mail("bot@flood.example", "help");
    let mut i = intake(&m, &guard, jst(2026, 11, 25, 10, 0));
    i.sender_load = SenderLoad {
        tickets: 9,
        open_ticket: Some(3),
        flooded: false,
    };
    assert!(matches!(
        decide(&i, &rules(), &calendar()),
        Outcome::NewTicket(_)
    ));
    i.sender_load.tickets = 10;
    let d = super::decide(&i, &rules(), &calendar());
    assert_eq!(
        d.outcome,
        Outcome::Flood {
            ticket: 3,
            notify: true,
            count: 11
        }
    );
    let mails: Vec<_> = d
        .effects
        .iter()
        .filter_map(|e| match e {
            Effect::QueueMail { mail, .. } => Some(mail),
            _ => None,
        })
        .collect();
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert_eq!(mails[0].to, ["support-team@example.co.jp"]);
    assert!(
        mails[0].subject.contains("大量受信"),
        "{}",
        mails[0].subject
    );
    assert!(d.effects.iter().any(|e| matches!(
        e,
        Effect::AddArticle {
            ticket: 3,
            kind: ArticleKind::Customer
        }
    )));
    // Once told, staff hear nothing more of this flood.
    i.sender_load.flooded = true;
    let d = super::decide(&i, &rules(), &calendar());
    assert!(
        !d.effects
            .iter()
            .any(|e| matches!(e, Effect::QueueMail { .. }))
    );
    // With no open ticket to put it on, the mail opens one (that then takes the rest).
    i.sender_load.open_ticket = None;
    assert!(matches!(
        decide(&i, &rules(), &calendar()),
        Outcome::NewTicket(_)
    ));
}
