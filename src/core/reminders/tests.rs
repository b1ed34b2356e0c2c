use std::collections::HashSet;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Asia::Tokyo;

use super::letters::{ContractLetter, contract_reminder_mail};
use super::*;
use crate::core::calendar::{CalendarSpec, CompanyClosure};
use crate::core::contract::{Order, OrderKind, OrderPeriod, periods_from_orders};

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

fn tokyo(y: i32, m: u32, day: u32, h: u32, min: u32) -> DateTime<Utc> {
    Tokyo
        .with_ymd_and_hms(y, m, day, h, min, 0)
        .single()
        .unwrap()
        .with_timezone(&Utc)
}

fn calendar() -> BusinessCalendar {
    BusinessCalendar::new(CalendarSpec::default()).unwrap()
}

/// A contract whose only period is `start..=end` (a certificate's, so any dates go).
fn one_period(start: NaiveDate, end: NaiveDate) -> ContractPeriods {
    ContractPeriods {
        covered_from: start,
        periods: vec![OrderPeriod {
            period: SupportPeriod { start, end },
            kind: OrderKind::Initial,
            received: start,
            from_certificate: true,
        }],
    }
}

fn order(kind: OrderKind, received: NaiveDate) -> Order {
    Order {
        kind,
        received,
        purchased: None,
        certificate: None,
    }
}

fn openings(schedule: &[ContractReminder]) -> Vec<(ContractReminderKind, DateTime<Utc>)> {
    schedule
        .iter()
        .map(|r| (r.kind, opening_on_or_after(&calendar(), r.nominal).unwrap()))
        .collect()
}

#[test]
fn a_period_ending_on_a_month_end_is_reminded_at_the_first_opening_on_or_after_each_date() {
    // 2025-04-01..2026-03-31 (R9 from an order received in March 2025).
    let periods = periods_from_orders(&[order(OrderKind::Initial, d(2025, 3, 10))]).unwrap();
    let schedule = contract_schedule(&periods, &Reminders::default());
    use ContractReminderKind::*;
    assert_eq!(
        openings(&schedule),
        vec![
            // 2026-01-30 is a Friday.
            (Renewal { days: 60 }, tokyo(2026, 1, 30, 9, 0)),
            // 2026-03-01 is a Sunday: Monday's opening.
            (Renewal { days: 30 }, tokyo(2026, 3, 2, 9, 0)),
            (Renewal { days: 7 }, tokyo(2026, 3, 24, 9, 0)),
            // E + 1 day.
            (Lapsed, tokyo(2026, 4, 1, 9, 0)),
            // R11: plain renewal until E + 1 year = 2027-03-31; 30 days before, Monday.
            (Recontinuation { days: 30 }, tokyo(2027, 3, 1, 9, 0)),
        ]
    );
    assert!(
        schedule
            .iter()
            .all(|r| r.renewal_deadline == d(2027, 3, 31))
    );
    assert_eq!(
        schedule[0].key("C-1001"),
        "renewal:C-1001:2026-03-31:60".to_string()
    );
}

#[test]
fn leap_years_february_ends_and_their_deadlines() {
    // A period from 2027-03-01 ends on 2028-02-29 (leap day); the lapse notice is on
    // 2028-03-01 and a plain renewal is accepted until 2029-02-28.
    let periods = one_period(d(2027, 3, 1), d(2028, 2, 29));
    let schedule = contract_schedule(&periods, &Reminders::default());
    use ContractReminderKind::*;
    let nominal: Vec<_> = schedule.iter().map(|r| (r.kind, r.nominal)).collect();
    assert_eq!(
        nominal,
        vec![
            (Renewal { days: 60 }, d(2027, 12, 31)),
            (Renewal { days: 30 }, d(2028, 1, 30)),
            (Renewal { days: 7 }, d(2028, 2, 22)),
            (Lapsed, d(2028, 3, 1)),
            (Recontinuation { days: 30 }, d(2029, 1, 29)),
        ]
    );
    assert_eq!(schedule[0].renewal_deadline, d(2029, 2, 28));
    // 2027-12-31 is a Friday but the year-end closure (12/29–1/3) keeps the desk shut:
    // the first opening after it is Tuesday 2028-01-04.
    let spec = CalendarSpec {
        company_holidays: vec![CompanyClosure {
            first: d(2027, 12, 29),
            last: d(2028, 1, 3),
        }],
        ..CalendarSpec::default()
    };
    let closed = BusinessCalendar::new(spec).unwrap();
    assert_eq!(
        opening_on_or_after(&closed, schedule[0].nominal),
        Some(tokyo(2028, 1, 4, 9, 0))
    );
    // 2028-01-30 is a Sunday: Monday the 31st.
    assert_eq!(
        opening_on_or_after(&closed, schedule[1].nominal),
        Some(tokyo(2028, 1, 31, 9, 0))
    );
}

#[test]
fn holidays_and_year_end_closures_move_a_reminder_to_the_next_opening() {
    // E = 2026-06-02: the 30-day reminder falls on 2026-05-03 (憲法記念日, a Sunday); 5/4 and
    // 5/5 are holidays and 5/6 their substitute: Thursday 2026-05-07.
    let periods = one_period(d(2025, 6, 3), d(2026, 6, 2));
    let schedule = contract_schedule(&periods, &Reminders::default());
    assert_eq!(schedule[1].nominal, d(2026, 5, 3));
    assert_eq!(
        opening_on_or_after(&calendar(), schedule[1].nominal),
        Some(tokyo(2026, 5, 7, 9, 0))
    );
    // E = 2026-12-31: the lapse notice nominally on New Year's Day opens with the desk after a
    // 12/29–1/3 closure, on Monday 2027-01-04.
    let spec = CalendarSpec {
        company_holidays: vec![CompanyClosure {
            first: d(2026, 12, 29),
            last: d(2027, 1, 3),
        }],
        ..CalendarSpec::default()
    };
    let closed = BusinessCalendar::new(spec).unwrap();
    let periods = one_period(d(2026, 1, 1), d(2026, 12, 31));
    let lapsed = contract_schedule(&periods, &Reminders::default())
        .into_iter()
        .find(|r| r.kind == ContractReminderKind::Lapsed)
        .unwrap();
    assert_eq!(lapsed.nominal, d(2027, 1, 1));
    assert_eq!(
        opening_on_or_after(&closed, lapsed.nominal),
        Some(tokyo(2027, 1, 4, 9, 0))
    );
    // Owed from that opening on, not before it.
    let none = HashSet::new();
    let at = |t| contract_reminder_owed(&closed, &[lapsed], "C-1", &none, t);
    assert_eq!(at(tokyo(2027, 1, 4, 8, 59)), None);
    assert_eq!(at(tokyo(2027, 1, 4, 9, 0)), Some(lapsed));
}

#[test]
fn each_reminder_is_owed_once_and_a_late_desk_sends_only_the_one_that_fits_the_day() {
    let cal = calendar();
    let periods = one_period(d(2025, 4, 1), d(2026, 3, 31));
    let schedule = contract_schedule(&periods, &Reminders::default());
    let owed = |sent: &HashSet<String>, t| {
        contract_reminder_owed(&cal, &schedule, "C-1", sent, t).map(|r| r.kind)
    };
    let mut sent = HashSet::new();
    use ContractReminderKind::*;
    assert_eq!(owed(&sent, tokyo(2026, 1, 29, 12, 0)), None);
    assert_eq!(
        owed(&sent, tokyo(2026, 1, 30, 9, 0)),
        Some(Renewal { days: 60 })
    );
    sent.insert("renewal:C-1:2026-03-31:60".to_string());
    assert_eq!(owed(&sent, tokyo(2026, 1, 30, 9, 0)), None);
    assert_eq!(owed(&sent, tokyo(2026, 2, 27, 9, 0)), None);
    // A desk down from February to 10 March: the 30-day reminder, not both.
    let fresh = HashSet::new();
    assert_eq!(
        owed(&fresh, tokyo(2026, 3, 10, 9, 0)),
        Some(Renewal { days: 30 })
    );
    sent.insert("renewal:C-1:2026-03-31:30".to_string());
    assert_eq!(
        owed(&sent, tokyo(2026, 3, 24, 9, 0)),
        Some(Renewal { days: 7 })
    );
    // After the 7-day one was sent, an earlier one is never owed again.
    let later: HashSet<String> = ["renewal:C-1:2026-03-31:7".to_string()].into();
    assert_eq!(owed(&later, tokyo(2026, 3, 30, 9, 0)), None);
    // The next one due after the 7-day one: the lapse notice.
    assert_eq!(
        next_contract_reminder_at(&cal, &schedule, "C-1", &later, tokyo(2026, 3, 30, 9, 0)),
        Some(tokyo(2026, 4, 1, 9, 0))
    );
    // A lapse notice owed until the renewal deadline, then the re-continuation warning;
    // after the deadline nothing.
    assert_eq!(owed(&later, tokyo(2026, 6, 1, 9, 0)), Some(Lapsed));
    assert_eq!(
        owed(&later, tokyo(2027, 3, 1, 9, 0)),
        Some(Recontinuation { days: 30 })
    );
    assert_eq!(owed(&later, tokyo(2027, 4, 1, 9, 0)), None);
    // Overdue while the desk is closed: not at night; the next opening is when it goes.
    assert_eq!(owed(&later, tokyo(2026, 6, 1, 20, 0)), None);
    assert_eq!(
        next_contract_reminder_at(&cal, &schedule, "C-1", &later, tokyo(2026, 6, 1, 20, 0)),
        Some(tokyo(2026, 6, 2, 9, 0))
    );
    // Long past its renewal deadline, a contract wakes nobody.
    assert_eq!(
        next_contract_reminder_at(
            &cal,
            &schedule,
            "C-1",
            &HashSet::new(),
            tokyo(2028, 6, 1, 20, 0)
        ),
        None
    );
}

#[test]
fn a_renewal_order_cancels_the_old_periods_reminders() {
    let cal = calendar();
    let before = periods_from_orders(&[order(OrderKind::Initial, d(2025, 3, 10))]).unwrap();
    let after = periods_from_orders(&[
        order(OrderKind::Initial, d(2025, 3, 10)),
        order(OrderKind::Renewal, d(2026, 3, 5)),
    ])
    .unwrap();
    let none = HashSet::new();
    let at = tokyo(2026, 3, 24, 9, 0);
    let old = contract_schedule(&before, &Reminders::default());
    assert!(contract_reminder_owed(&cal, &old, "C-1", &none, at).is_some());
    let new = contract_schedule(&after, &Reminders::default());
    assert_eq!(new[0].period.end, d(2027, 3, 31));
    assert_eq!(contract_reminder_owed(&cal, &new, "C-1", &none, at), None);
    assert_eq!(
        next_contract_reminder_at(&cal, &new, "C-1", &none, at),
        // 2027-01-30 is a Saturday.
        Some(tokyo(2027, 2, 1, 9, 0))
    );
}

#[test]
fn settings_turn_reminders_off() {
    let periods = one_period(d(2025, 4, 1), d(2026, 3, 31));
    let off = Reminders {
        renewal_days: vec![],
        lapsed: false,
        recontinuation_days: 0,
        digest: false,
    };
    assert!(contract_schedule(&periods, &off).is_empty());
    // A period shorter than a reminder is not reminded before it starts.
    let short = one_period(d(2026, 3, 1), d(2026, 3, 31));
    let kinds: Vec<_> = contract_schedule(&short, &Reminders::default())
        .iter()
        .map(|r| r.kind)
        .collect();
    assert!(!kinds.contains(&ContractReminderKind::Renewal { days: 60 }));
    assert!(kinds.contains(&ContractReminderKind::Renewal { days: 7 }));
}

#[test]
fn the_letters_say_the_period_the_last_day_and_what_an_order_by_then_buys() {
    let periods = one_period(d(2025, 4, 1), d(2026, 3, 31));
    let schedule = contract_schedule(&periods, &Reminders::default());
    let contacts = vec!["a@example.jp".to_string(), "b@example.jp".to_string()];
    let letter = ContractLetter {
        contract_id: "C-1001",
        customer: "アルファ商事株式会社{{desk_address}}",
        contacts: &contacts,
        desk_address: "support@example.com",
    };
    let renewal = contract_reminder_mail(&schedule[1], &letter, d(2026, 3, 2));
    assert_eq!(renewal.to, contacts);
    assert_eq!(renewal.ticket, crate::core::reply::NO_TICKET);
    assert!(renewal.subject.contains("C-1001"), "{}", renewal.subject);
    for text in [
        "2025年4月1日(火) ～ 2026年3月31日(火)",
        "あと 29 日",
        "2026年4月1日(水) ～ 2027年3月31日(水)",
    ] {
        assert!(renewal.body.contains(text), "{text} in\n{}", renewal.body);
    }
    // Contract data is data: a placeholder in the customer's name stays text.
    assert!(
        renewal
            .body
            .contains("アルファ商事株式会社{{desk_address}} ご担当者様")
    );
    let lapsed = contract_reminder_mail(&schedule[3], &letter, d(2026, 4, 1));
    for text in [
        "2026年3月31日(火) をもって終了",
        "2027年3月31日(水) まで",
        "2027年4月1日(木) 以降",
    ] {
        assert!(lapsed.body.contains(text), "{text} in\n{}", lapsed.body);
    }
    let warning = contract_reminder_mail(&schedule[4], &letter, d(2027, 3, 1));
    for text in ["あと 30 日", "再継続年間サポート", "2027年4月1日(木) 以降"] {
        assert!(warning.body.contains(text), "{text} in\n{}", warning.body);
    }
}

fn waiting(accepted: DateTime<Utc>) -> TicketWait {
    TicketWait {
        number: 7,
        state: TicketState::Open,
        accepted_at: accepted,
        first_response_at: None,
        follow_up_at: None,
    }
}

#[test]
fn staff_are_reminded_at_the_sla_and_at_twice_it_in_business_time() {
    let cal = calendar();
    let sla = Sla::default();
    // Accepted Monday 2026-11-30 10:00: 8 business hours is Tuesday 10:30, 16 Wednesday 11:00.
    let t = waiting(tokyo(2026, 11, 30, 10, 0));
    let schedule = staff_schedule(&cal, &sla, &t);
    let due: Vec<_> = schedule.iter().map(|r| (r.level, r.due_at)).collect();
    assert_eq!(
        due,
        vec![
            (1, tokyo(2026, 12, 1, 10, 30)),
            (2, tokyo(2026, 12, 2, 11, 0))
        ]
    );
    let mut sent = HashSet::new();
    let owed =
        |sent: &HashSet<String>, at| staff_reminder_owed(&schedule, 7, sent, at).map(|r| r.level);
    assert_eq!(owed(&sent, tokyo(2026, 12, 1, 10, 29)), None);
    assert_eq!(owed(&sent, tokyo(2026, 12, 1, 10, 30)), Some(1));
    sent.insert(schedule[0].key(7));
    assert_eq!(owed(&sent, tokyo(2026, 12, 1, 17, 0)), None);
    assert_eq!(owed(&sent, tokyo(2026, 12, 2, 11, 0)), Some(2));
    sent.insert(schedule[1].key(7));
    assert_eq!(owed(&sent, tokyo(2026, 12, 9, 11, 0)), None);
    assert_eq!(
        next_staff_reminder_at(&schedule, 7, &sent, tokyo(2026, 12, 2, 11, 0)),
        None
    );
    // Over a weekend and a holiday: Friday 2026-11-20 16:00 → Tuesday 24th 16:30 (23rd is
    // 勤労感謝の日).
    let friday = staff_schedule(&cal, &sla, &waiting(tokyo(2026, 11, 20, 16, 0)));
    assert_eq!(friday[0].due_at, tokyo(2026, 11, 24, 16, 30));
}

#[test]
fn a_follow_up_after_a_staff_reply_starts_the_next_response_wait() {
    let cal = calendar();
    let sla = Sla {
        first_response_minutes: 480,
        next_response_minutes: 120,
    };
    let mut t = waiting(tokyo(2026, 11, 30, 10, 0));
    t.first_response_at = Some(tokyo(2026, 11, 30, 11, 0));
    // Answered and no follow-up: nothing to remind.
    assert!(staff_schedule(&cal, &sla, &t).is_empty());
    t.follow_up_at = Some(tokyo(2026, 11, 30, 16, 0));
    let schedule = staff_schedule(&cal, &sla, &t);
    assert_eq!(schedule[0].wait, StaffWait::NextResponse);
    // 16:00 + 2 business hours: 1.5 h Monday, 30 min Tuesday → 09:30.
    assert_eq!(schedule[0].due_at, tokyo(2026, 12, 1, 9, 30));
    assert!(
        schedule[0]
            .key(7)
            .starts_with("next_response:7:2026-11-30T07:00:00Z:")
    );
    // Waiting for the customer (pending) or closed: no reminders.
    t.state = TicketState::Pending;
    assert!(staff_schedule(&cal, &sla, &t).is_empty());
}

#[test]
fn the_digest_is_due_at_the_first_opening_of_business_days_only() {
    let cal = calendar();
    // Monday 2026-11-30.
    assert_eq!(digest_day(&cal, tokyo(2026, 11, 30, 8, 59)), None);
    assert_eq!(
        digest_day(&cal, tokyo(2026, 11, 30, 9, 0)),
        Some(d(2026, 11, 30))
    );
    assert_eq!(
        digest_day(&cal, tokyo(2026, 11, 30, 15, 0)),
        Some(d(2026, 11, 30))
    );
    // Saturday, and 勤労感謝の日 (Monday 2026-11-23).
    assert_eq!(digest_day(&cal, tokyo(2026, 11, 28, 10, 0)), None);
    assert_eq!(digest_day(&cal, tokyo(2026, 11, 23, 10, 0)), None);
    // From Friday evening the next digest is Tuesday the 24th, after the holiday.
    assert_eq!(
        next_digest_at(&cal, tokyo(2026, 11, 20, 18, 0)),
        Some(tokyo(2026, 11, 24, 9, 0))
    );
    assert_eq!(
        next_digest_at(&cal, tokyo(2026, 11, 30, 9, 0)),
        Some(tokyo(2026, 12, 1, 9, 0))
    );
}
