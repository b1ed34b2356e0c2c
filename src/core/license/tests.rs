use chrono::{DateTime, NaiveDate, NaiveTime, TimeZone, Utc};

use super::*;
use crate::core::calendar::{CalendarSpec, CompanyClosure};
use crate::core::contract::{Contract, Order, OrderKind};
use crate::core::inbound::{AutoHeaders, FormMail, InboundMail, Mailbox};
use crate::core::test_support::date;

/// A Japan-time instant to the second.
fn at(y: i32, m: u32, d: u32, h: u32, min: u32, s: u32) -> DateTime<Utc> {
    chrono_tz::Asia::Tokyo
        .with_ymd_and_hms(y, m, d, h, min, s)
        .single()
        .expect("a valid Japan time")
        .with_timezone(&Utc)
}

fn calendar() -> BusinessCalendar {
    BusinessCalendar::new(CalendarSpec {
        company_holidays: vec![CompanyClosure {
            first: date(2026, 12, 29),
            last: date(2027, 1, 3),
        }],
        ..CalendarSpec::default()
    })
    .unwrap()
}

fn contract(
    id: &str,
    serial: &str,
    contact: &str,
    server: &str,
    received: NaiveDate,
) -> ContractFacts {
    ContractFacts::from_orders(
        Contract {
            contract_id: id.into(),
            customer: format!("{id} 株式会社"),
            license_serial: serial.into(),
            contacts: vec![contact.into()],
            domains: vec![],
            customized: false,
            neo_support: false,
            server_id: server.into(),
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

fn book() -> ContractBook {
    ContractBook::new(vec![
        contract(
            "C-1002",
            "DNDS-2026-01152",
            "suzuki@beta.example.jp",
            "HID-91B4-22D8",
            date(2026, 6, 1),
        ),
        contract(
            "C-1001",
            "DNDS-2024-00318",
            "yamada@alpha.example.co.jp",
            "HID-3A7C-0E51",
            date(2026, 3, 15),
        ),
        // Ended 2025-03-31.
        contract(
            "C-1004",
            "DNDS-2023-00409",
            "kobayashi@delta.example.jp",
            "",
            date(2024, 3, 15),
        ),
    ])
}

fn application(number: &str, serial: &str, reason: &str, server: &str, who: &str) -> Application {
    let some = |v: &str| (!v.is_empty()).then(|| v.to_string());
    Application {
        customer_number: some(number),
        license_serial: some(serial),
        reason: some(reason),
        new_server_id: some(server),
        applicant: some(who),
    }
}

fn good() -> Application {
    application(
        "C-1002",
        "DNDS-2026-01152",
        "サーバー変更",
        "HID-A27F-6C19",
        "suzuki@beta.example.jp",
    )
}

fn shortfalls(app: &Application) -> Vec<Shortfall> {
    eligibility(app, &book(), date(2026, 11, 25)).unwrap_err()
}

#[test]
fn an_application_that_meets_every_condition_is_eligible() {
    let eligible = eligibility(&good(), &book(), date(2026, 11, 25)).unwrap();
    assert_eq!(eligible.contract_id, "C-1002");
    assert_eq!(eligible.license_serial, "DNDS-2026-01152");
    assert_eq!(eligible.server_id, "HID-A27F-6C19");
    assert_eq!(eligible.previous_server_id, "HID-91B4-22D8");
    assert_eq!(eligible.applicant, "suzuki@beta.example.jp");
    // Full-width and lower-case spellings name the same contract.
    let typed = application(
        "ｃ－１００２",
        "dnds-2026-01152",
        "サーバ移行のため",
        "HID-A27F-6C19",
        "Suzuki@Beta.example.jp",
    );
    assert!(eligibility(&typed, &book(), date(2026, 11, 25)).is_ok());
}

#[test]
fn an_unregistered_applicant_gets_no_key() {
    let mut app = good();
    app.applicant = Some("mallory@evil.example.com".into());
    assert_eq!(shortfalls(&app), vec![Shortfall::NotRegisteredContact]);
    // A contact of another contract is not a contact of this one.
    app.applicant = Some("yamada@alpha.example.co.jp".into());
    assert_eq!(shortfalls(&app), vec![Shortfall::NotRegisteredContact]);
    app.applicant = None;
    assert_eq!(shortfalls(&app), vec![Shortfall::NotRegisteredContact]);
}

#[test]
fn a_serial_of_another_contract_gets_no_key() {
    let mut app = good();
    app.license_serial = Some("DNDS-2024-00318".into());
    assert_eq!(shortfalls(&app), vec![Shortfall::SerialOfAnotherContract]);
}

#[test]
fn missing_or_unknown_numbers_are_named() {
    let app = application("", "", "サーバー変更", "HID-1", "suzuki@beta.example.jp");
    assert_eq!(
        shortfalls(&app),
        vec![Shortfall::NoCustomerNumber, Shortfall::NoLicenseSerial]
    );
    let app = application(
        "C-9999",
        "DNDS-2026-01152",
        "サーバー変更",
        "HID-1",
        "suzuki@beta.example.jp",
    );
    assert_eq!(shortfalls(&app), vec![Shortfall::UnknownCustomerNumber]);
}

#[test]
fn an_expired_contract_gets_no_key() {
    let app = application(
        "C-1004",
        "DNDS-2023-00409",
        "サーバー変更",
        "HID-NEW",
        "kobayashi@delta.example.jp",
    );
    assert_eq!(shortfalls(&app), vec![Shortfall::NotCovered]);
}

#[test]
fn the_reason_must_be_a_change_of_server() {
    let mut app = good();
    app.reason = Some("紛失したため".into());
    assert_eq!(shortfalls(&app), vec![Shortfall::NotServerChange]);
    app.reason = None;
    assert_eq!(shortfalls(&app), vec![Shortfall::NotServerChange]);
    for ok in [
        "サーバー入替",
        "Server replacement",
        "ハードウェア故障による機器交換",
    ] {
        app.reason = Some(ok.into());
        assert!(
            eligibility(&app, &book(), date(2026, 11, 25)).is_ok(),
            "{ok}"
        );
    }
}

#[test]
fn the_new_server_must_be_given_and_differ_from_the_registered_one() {
    let mut app = good();
    app.new_server_id = None;
    assert_eq!(shortfalls(&app), vec![Shortfall::NoNewServerId]);
    app.new_server_id = Some("hid-91b4-22d8".into());
    assert_eq!(shortfalls(&app), vec![Shortfall::SameServer]);
}

/// (arrival, due date, send time) for the cutoff edges of R8.
#[test]
fn keys_go_out_by_the_same_day_cutoff() {
    let cal = calendar();
    let cases = [
        // Wednesday 2026-11-25, a business day.
        (
            at(2026, 11, 25, 16, 59, 59),
            date(2026, 11, 25),
            at(2026, 11, 25, 16, 59, 59),
        ),
        (
            at(2026, 11, 25, 17, 0, 0),
            date(2026, 11, 25),
            at(2026, 11, 25, 17, 0, 0),
        ),
        (
            at(2026, 11, 25, 17, 0, 1),
            date(2026, 11, 26),
            at(2026, 11, 26, 9, 0, 0),
        ),
        // Inside reception (until 17:30) but after the cutoff.
        (
            at(2026, 11, 25, 17, 20, 0),
            date(2026, 11, 26),
            at(2026, 11, 26, 9, 0, 0),
        ),
        // Lunch: accepted at 13:00, due the same day.
        (
            at(2026, 11, 25, 12, 30, 0),
            date(2026, 11, 25),
            at(2026, 11, 25, 13, 0, 0),
        ),
        // Before the opening.
        (
            at(2026, 11, 25, 8, 0, 0),
            date(2026, 11, 25),
            at(2026, 11, 25, 9, 0, 0),
        ),
        // Friday evening → Monday.
        (
            at(2026, 11, 27, 17, 0, 1),
            date(2026, 11, 30),
            at(2026, 11, 30, 9, 0, 0),
        ),
        // Saturday.
        (
            at(2026, 11, 28, 10, 0, 0),
            date(2026, 11, 30),
            at(2026, 11, 30, 9, 0, 0),
        ),
        // 勤労感謝の日 (Monday 2026-11-23) → Tuesday.
        (
            at(2026, 11, 23, 10, 0, 0),
            date(2026, 11, 24),
            at(2026, 11, 24, 9, 0, 0),
        ),
        // The year-end closure 12-29 … 01-03 → Monday 2027-01-04.
        (
            at(2026, 12, 28, 17, 0, 1),
            date(2027, 1, 4),
            at(2027, 1, 4, 9, 0, 0),
        ),
        (
            at(2026, 12, 30, 11, 0, 0),
            date(2027, 1, 4),
            at(2027, 1, 4, 9, 0, 0),
        ),
    ];
    for (arrival, due, send_at) in cases {
        let s = schedule(&cal, arrival, false);
        assert_eq!((s.due, s.send_at), (due, send_at), "arrival {arrival}");
    }
    // `early` sends as soon as the application is eligible.
    let friday_night = at(2026, 11, 27, 21, 0, 0);
    let s = schedule(&cal, friday_night, true);
    assert_eq!((s.due, s.send_at), (date(2026, 11, 30), friday_night));
}

fn policy() -> LicensePolicy {
    LicensePolicy {
        approval_by_staff: false,
        early: false,
        issuer: true,
    }
}

#[test]
fn an_application_within_30_days_of_the_same_one_is_a_repeat() {
    let cal = calendar();
    let earlier = EarlierApplication {
        ticket: 4,
        applied_at: at(2026, 11, 24, 17, 5, 0),
        due: date(2026, 11, 25),
        sent_at: None,
    };
    let arrival = at(2026, 11, 25, 10, 0, 0);
    let verdict = judge(&good(), &book(), &cal, arrival, Some(&earlier), policy());
    assert!(matches!(
        &verdict,
        LicenseVerdict::Repeated { earlier: e, applicant_registered: true, contract_id }
            if e.ticket == 4 && contract_id == "C-1002"
    ));
    assert_eq!(verdict.due(), Some(date(2026, 11, 25)));
    assert_eq!(verdict.initial_state(), ApplicationState::Refused);
    // After 30 days it is a new application.
    let later = at(2026, 12, 25, 10, 0, 0);
    let verdict = judge(&good(), &book(), &cal, later, Some(&earlier), policy());
    assert!(matches!(verdict, LicenseVerdict::Eligible { .. }));
}

#[test]
fn approval_by_staff_starts_waiting_for_it() {
    let cal = calendar();
    let staff = LicensePolicy {
        approval_by_staff: true,
        ..policy()
    };
    let verdict = judge(
        &good(),
        &book(),
        &cal,
        at(2026, 11, 25, 10, 0, 0),
        None,
        staff,
    );
    assert_eq!(verdict.initial_state(), ApplicationState::WaitingApproval);
    let verdict = judge(
        &good(),
        &book(),
        &cal,
        at(2026, 11, 25, 10, 0, 0),
        None,
        policy(),
    );
    assert_eq!(verdict.initial_state(), ApplicationState::Waiting);
}

#[test]
fn a_refusal_says_whether_the_applicant_may_be_told() {
    let cal = calendar();
    let mut app = good();
    app.reason = Some("なんとなく".into());
    let verdict = judge(
        &app,
        &book(),
        &cal,
        at(2026, 11, 25, 10, 0, 0),
        None,
        policy(),
    );
    assert!(matches!(
        verdict,
        LicenseVerdict::Refused {
            applicant_registered: true,
            ..
        }
    ));
    app.applicant = Some("stranger@example.com".into());
    let verdict = judge(
        &app,
        &book(),
        &cal,
        at(2026, 11, 25, 10, 0, 0),
        None,
        policy(),
    );
    assert!(matches!(
        verdict,
        LicenseVerdict::Refused {
            applicant_registered: false,
            ..
        }
    ));
    assert_eq!(verdict.due(), None);
}

#[test]
fn reminders_come_at_remind_at_and_escalations_at_the_cutoff_once_each() {
    let cal = calendar();
    let due = date(2026, 11, 25);
    let remind_at = NaiveTime::from_hms_opt(15, 0, 0).unwrap();
    let waiting = ApplicationState::WaitingApproval;
    let owed = |state, notes, now| notice_due(&cal, state, due, notes, remind_at, now);
    assert_eq!(
        owed(waiting, (false, false), at(2026, 11, 25, 14, 59, 59)),
        None
    );
    assert_eq!(
        owed(waiting, (false, false), at(2026, 11, 25, 15, 0, 0)),
        Some(NoticeDue::ApprovalReminder)
    );
    assert_eq!(
        owed(waiting, (true, false), at(2026, 11, 25, 16, 0, 0)),
        None
    );
    assert_eq!(
        owed(waiting, (true, false), at(2026, 11, 25, 17, 0, 0)),
        Some(NoticeDue::Missed)
    );
    // After the cutoff only the escalation, even when no reminder went out.
    assert_eq!(
        owed(waiting, (false, false), at(2026, 11, 26, 9, 0, 0)),
        Some(NoticeDue::Missed)
    );
    assert_eq!(
        owed(waiting, (false, true), at(2026, 11, 26, 9, 0, 0)),
        None
    );
    // An automatic application is not reminded, but a key not sent by the cutoff escalates.
    let auto = ApplicationState::Waiting;
    assert_eq!(
        owed(auto, (false, false), at(2026, 11, 25, 15, 30, 0)),
        None
    );
    assert_eq!(
        owed(auto, (false, false), at(2026, 11, 25, 17, 0, 0)),
        Some(NoticeDue::Missed)
    );
    assert_eq!(
        owed(
            ApplicationState::Sent,
            (false, false),
            at(2026, 11, 26, 9, 0, 0)
        ),
        None
    );
    let next = |state, notes, now| next_notice_at(&cal, state, due, notes, remind_at, now);
    assert_eq!(
        next(waiting, (false, false), at(2026, 11, 25, 10, 0, 0)),
        Some(at(2026, 11, 25, 15, 0, 0))
    );
    assert_eq!(
        next(waiting, (true, false), at(2026, 11, 25, 15, 0, 0)),
        Some(at(2026, 11, 25, 17, 0, 0))
    );
    assert_eq!(
        next(waiting, (true, true), at(2026, 11, 25, 15, 0, 0)),
        None
    );
}

fn plain_mail(from: &str, text: &str) -> InboundMail {
    InboundMail {
        message_id: Some("a1@beta.example.jp".into()),
        in_reply_to: vec![],
        references: vec![],
        from: Some(Mailbox {
            name: None,
            address: from.into(),
        }),
        reply_to: None,
        to: vec![],
        cc: vec![],
        subject: "ライセンスキー再発行".into(),
        date: None,
        text: text.into(),
        auto: AutoHeaders::default(),
        report: None,
        attachments: vec![],
        form: None,
        auth_results: vec![],
        defects: vec![],
    }
}

#[test]
fn a_plain_mail_names_its_serial_and_server_in_label_lines() {
    let mail = plain_mail(
        "suzuki@beta.example.jp",
        "お世話になっております。\nサーバーを入れ替えるため、ライセンスキーの再発行をお願いします。\n\n\
         お客様番号：C-1002\nライセンス番号: DNDS-2026-01152\n新サーバー識別子　：　HID-A27F-6C19\n\
         > ライセンス番号: DNDS-0000-00000\n",
    );
    let app = Application::read(&mail, Category::LicenseReissue).unwrap();
    assert_eq!(app.customer_number.as_deref(), Some("C-1002"));
    assert_eq!(app.license_serial.as_deref(), Some("DNDS-2026-01152"));
    assert_eq!(app.new_server_id.as_deref(), Some("HID-A27F-6C19"));
    assert_eq!(app.applicant.as_deref(), Some("suzuki@beta.example.jp"));
    assert!(eligibility(&app, &book(), date(2026, 11, 25)).is_ok());
    // Other categories make no application.
    assert_eq!(Application::read(&mail, Category::Fault), None);
}

#[test]
fn a_form_application_uses_the_form_address_not_the_robot() {
    use crate::core::form::FormEntry;
    let entry = |field, value: &str| FormEntry {
        label: String::new(),
        field: Some(field),
        value: value.into(),
    };
    let mut mail = plain_mail("license-form@example.co.jp", "");
    mail.form = Some(FormMail {
        kind: FormKind::LicenseApplication,
        fields: vec![
            entry(FormField::CustomerNumber, "C-1002"),
            entry(FormField::Email, "suzuki@beta.example.jp"),
            entry(FormField::LicenseSerial, "DNDS-2026-01152"),
            entry(FormField::Reason, "サーバー変更"),
            entry(FormField::NewServerId, "HID-A27F-6C19"),
        ],
    });
    let app = Application::read(&mail, Category::Operation).unwrap();
    assert_eq!(app, good());
}

#[test]
fn a_server_id_that_is_not_one_gets_no_key() {
    let mut app = good();
    for bad in [
        "x".repeat(65),
        "HID A27F".to_string(),
        "HID-\u{7}".to_string(),
        "HID\n-- \nEvil".to_string(),
    ] {
        app.new_server_id = Some(bad.clone());
        assert_eq!(shortfalls(&app), vec![Shortfall::BadNewServerId], "{bad:?}");
    }
    app.new_server_id = Some("x".repeat(64));
    assert!(eligibility(&app, &book(), date(2026, 11, 25)).is_ok());
}
