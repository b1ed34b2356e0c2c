use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Asia::Tokyo;

use super::*;

fn jst(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    Tokyo
        .with_ymd_and_hms(y, m, d, h, min, 0)
        .single()
        .expect("time")
        .with_timezone(&Utc)
}

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("date")
}

fn nov() -> Month {
    Month::parse("2026-11").expect("month")
}

fn ticket(number: u64, category: &str, contract: Option<&str>, at: DateTime<Utc>) -> TicketRow {
    TicketRow {
        number,
        category: category.into(),
        contract_id: contract.map(str::to_string),
        accepted_at: at,
        first_response_minutes: None,
    }
}

#[test]
fn months_parse_strictly_and_know_their_days() {
    let m = nov();
    assert_eq!(m.first_day(), day(2026, 11, 1));
    assert_eq!(m.last_day(), day(2026, 11, 30));
    assert_eq!(m.code(), "2026-11");
    assert_eq!(m.label_ja(), "2026年11月");
    let feb = Month::parse("2028-02").expect("leap february");
    assert_eq!(feb.last_day(), day(2028, 2, 29));
    assert_eq!(
        Month::parse("2026-12").expect("dec").last_day(),
        day(2026, 12, 31)
    );
    for bad in [
        "2026-13",
        "2026-00",
        "2026-1",
        "26-11",
        "2026-11-01",
        "",
        "2026/11",
        "２０２６-11",
    ] {
        assert!(Month::parse(bad).is_err(), "{bad:?}");
    }
    let (from, to) = m.window();
    assert!(from < jst(2026, 11, 1, 0, 0) && to > jst(2026, 11, 30, 23, 59));
}

#[test]
fn tickets_count_by_acceptance_in_the_desks_timezone() {
    let rows = Rows {
        tickets: vec![
            // 2026-10-31 23:30 JST: October, though UTC says the same day.
            ticket(1, "fault", Some("C-1001"), jst(2026, 10, 31, 23, 30)),
            // 2026-11-01 00:30 JST is 2026-10-31 15:30 UTC: November in Tokyo.
            ticket(2, "fault", Some("C-1001"), jst(2026, 11, 1, 0, 30)),
            ticket(3, "operation", Some("C-1002"), jst(2026, 11, 24, 13, 0)),
            ticket(
                4,
                "license_reissue",
                Some("C-1002"),
                jst(2026, 11, 25, 9, 0),
            ),
            ticket(5, "base_product", None, jst(2026, 11, 25, 9, 45)),
            ticket(6, "mystery", Some("C-1001"), jst(2026, 11, 30, 23, 59)),
            // 2026-12-01 00:00 JST: December.
            ticket(7, "fault", Some("C-1003"), jst(2026, 12, 1, 0, 0)),
        ],
        customers: [("C-1001".to_string(), "アルファ商事株式会社".to_string())].into(),
        ..Rows::default()
    };
    let r = compute(nov(), Tokyo, &rows);
    assert_eq!(r.tickets.total, 5);
    let counts: Vec<(&str, Option<&str>, u64)> = r
        .tickets
        .by_category
        .iter()
        .map(|c| (c.category, c.rule, c.count))
        .collect();
    assert_eq!(
        counts,
        [
            ("operation", Some("R1-1"), 1),
            ("fault", Some("R1-2"), 1),
            ("patch_upgrade", Some("R1-3"), 0),
            ("data_migration", Some("R1-4"), 0),
            ("license_reissue", Some("R2"), 1),
            ("base_product", Some("R3"), 1),
            ("other", None, 1),
        ]
    );
    let contracts: Vec<(Option<&str>, Option<&str>, u64)> = r
        .tickets
        .by_contract
        .iter()
        .map(|c| (c.contract_id.as_deref(), c.customer.as_deref(), c.count))
        .collect();
    assert_eq!(
        contracts,
        [
            (Some("C-1001"), Some("アルファ商事株式会社"), 2),
            (Some("C-1002"), None, 2),
            (None, None, 1),
        ]
    );
}

#[test]
fn first_response_median_and_p90_are_nearest_rank() {
    let minutes = [30, 10, 500, 90, 45, 240, 61, 1000, 3000, 20];
    let mut tickets: Vec<TicketRow> = minutes
        .iter()
        .enumerate()
        .map(|(i, m)| TicketRow {
            first_response_minutes: Some(*m),
            ..ticket(i as u64 + 1, "fault", None, jst(2026, 11, 10, 10, 0))
        })
        .collect();
    tickets.push(ticket(99, "fault", None, jst(2026, 11, 10, 10, 0)));
    let rows = Rows {
        tickets,
        ..Rows::default()
    };
    let f = compute(nov(), Tokyo, &rows).first_response;
    assert_eq!((f.answered, f.unanswered), (10, 1));
    // Sorted: 10 20 30 45 61 90 240 500 1000 3000: rank 5 and rank 9.
    assert_eq!(f.median_minutes, Some(61));
    assert_eq!(f.p90_minutes, Some(1000));
    let buckets: Vec<(&str, u64)> = f
        .distribution
        .iter()
        .map(|b| (b.bucket.as_str(), b.count))
        .collect();
    assert_eq!(
        buckets,
        [
            ("le_60", 4),
            ("le_240", 3),
            ("le_480", 0),
            ("le_960", 1),
            ("le_2400", 1),
            ("gt_2400", 1),
        ]
    );
    assert_eq!(percentile(&[7], 50), Some(7));
    assert_eq!(percentile(&[7], 90), Some(7));
    assert_eq!(percentile(&[1, 2], 50), Some(1));
    assert_eq!(percentile(&[], 50), None);
    let empty = compute(nov(), Tokyo, &Rows::default()).first_response;
    assert_eq!((empty.median_minutes, empty.p90_minutes), (None, None));
}

#[test]
fn r8_compares_the_send_day_in_tokyo_with_the_due_date() {
    let app = |ticket, due: NaiveDate, sent: Option<DateTime<Utc>>, state: &str| ApplicationRow {
        ticket,
        due: Some(due),
        sent_at: sent,
        state: state.into(),
    };
    let rows = Rows {
        applications: vec![
            // Sent 2026-11-25 23:50 JST (14:50 UTC): on the due date in Tokyo.
            app(
                1,
                day(2026, 11, 25),
                Some(jst(2026, 11, 25, 23, 50)),
                "sent",
            ),
            // Sent 2026-11-26 00:10 JST, still the 25th in UTC: late.
            app(2, day(2026, 11, 25), Some(jst(2026, 11, 26, 0, 10)), "sent"),
            app(3, day(2026, 11, 30), None, "waiting"),
            app(4, day(2026, 11, 30), None, "refused"),
            // Due in October or December: not this month.
            app(5, day(2026, 10, 30), None, "waiting"),
            app(6, day(2026, 12, 1), None, "waiting"),
            ApplicationRow {
                ticket: 7,
                due: None,
                sent_at: None,
                state: "refused".into(),
            },
        ],
        ..Rows::default()
    };
    let k = compute(nov(), Tokyo, &rows).license_keys;
    assert_eq!(
        (k.due, k.on_time, k.late, k.unsent, k.refused),
        (3, 1, 1, 1, 1)
    );
    assert_eq!(k.on_time_percent, Some(33.3));
    let none = compute(nov(), Tokyo, &Rows::default()).license_keys;
    assert_eq!(none.on_time_percent, None);
}

#[test]
fn withheld_replies_group_by_the_stable_reason_code() {
    let w = |at, reason: Option<&str>| WithheldRow {
        received_at: at,
        reason: reason.map(str::to_string),
    };
    let rows = Rows {
        withheld: vec![
            w(
                jst(2026, 11, 2, 10, 0),
                Some("auto_submitted: Auto-Submitted: auto-replied"),
            ),
            w(
                jst(2026, 11, 3, 10, 0),
                Some("auto_submitted: Auto-Submitted: auto-generated"),
            ),
            w(
                jst(2026, 11, 3, 11, 0),
                Some("bounce: delivery failure report (bounce)"),
            ),
            w(
                jst(2026, 11, 4, 11, 0),
                Some("mailing_list: mailing list <x.example>"),
            ),
            w(jst(2026, 11, 4, 12, 0), None),
            w(
                jst(2026, 11, 4, 13, 0),
                Some("<script>alert(1)</script>: hostile"),
            ),
            w(jst(2026, 10, 31, 23, 0), Some("bounce: October")),
        ],
        ..Rows::default()
    };
    let r = compute(nov(), Tokyo, &rows).withheld;
    assert_eq!(r.total, 6);
    let got: Vec<(&str, u64)> = r
        .by_reason
        .iter()
        .map(|c| (c.reason.as_str(), c.count))
        .collect();
    assert_eq!(
        got,
        [
            ("auto_submitted", 2),
            ("bounce", 1),
            ("mailing_list", 1),
            ("other", 1),
            ("unknown", 1)
        ]
    );
    assert_eq!(r.by_reason[0].label, "自動送信 (Auto-Submitted)");
}

fn reminder(kind: &str, contract: Option<&str>, at: DateTime<Utc>, sent: bool) -> ReminderRow {
    ReminderRow {
        kind: kind.into(),
        contract_id: contract.map(str::to_string),
        queued_at: at,
        sent,
    }
}

fn order(contract: &str, kind: &str, received: NaiveDate) -> OrderRow {
    OrderRow {
        contract_id: contract.into(),
        kind: kind.into(),
        received,
    }
}

#[test]
fn renewals_follow_a_reminder_when_ordered_on_or_after_its_day() {
    let rows = Rows {
        reminders: vec![
            reminder("renewal", Some("C-1"), jst(2026, 11, 2, 9, 0), true),
            reminder("renewal", Some("C-1"), jst(2026, 11, 24, 9, 0), true),
            reminder("renewal", Some("C-2"), jst(2026, 11, 10, 9, 0), true),
            reminder("lapsed", Some("C-3"), jst(2026, 11, 2, 9, 0), false),
            reminder("recontinuation", Some("C-4"), jst(2026, 11, 16, 9, 0), true),
            reminder("first_response", None, jst(2026, 11, 5, 9, 0), true),
            reminder("digest", None, jst(2026, 11, 5, 9, 0), true),
            reminder("digest", None, jst(2026, 11, 6, 9, 0), false),
            // October (JST): not this month.
            reminder("renewal", Some("C-5"), jst(2026, 10, 31, 9, 0), true),
        ],
        orders: vec![
            // C-1 ordered on the day of its first reminder: followed.
            order("C-1", "renewal", day(2026, 11, 2)),
            // C-2 ordered before its reminder (an old order), not after.
            order("C-2", "renewal", day(2026, 11, 9)),
            order("C-2", "initial", day(2026, 11, 20)),
            // C-4 re-continued in December: followed (the report run later sees it).
            order("C-4", "recontinuation", day(2026, 12, 3)),
            order("C-5", "renewal", day(2026, 11, 3)),
        ],
        customers: [("C-1".to_string(), "<b>一</b>".to_string())].into(),
        ..Rows::default()
    };
    let m = compute(nov(), Tokyo, &rows).reminders;
    let kinds: Vec<(&str, u64, u64)> = m
        .by_kind
        .iter()
        .map(|k| (k.kind, k.queued, k.sent))
        .collect();
    assert_eq!(
        kinds,
        [
            ("renewal", 3, 3),
            ("lapsed", 1, 0),
            ("recontinuation", 1, 1),
            ("first_response", 1, 1),
            ("next_response", 0, 0),
            ("digest", 2, 1),
        ]
    );
    assert_eq!((m.contracts_reminded, m.renewed), (4, 2));
    let got: Vec<(&str, NaiveDate, Option<NaiveDate>, usize)> = m
        .contracts
        .iter()
        .map(|c| {
            (
                c.contract_id.as_str(),
                c.first_reminded,
                c.renewed_on,
                c.kinds.len(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("C-1", day(2026, 11, 2), Some(day(2026, 11, 2)), 2),
            ("C-2", day(2026, 11, 10), None, 1),
            ("C-3", day(2026, 11, 2), None, 1),
            ("C-4", day(2026, 11, 16), Some(day(2026, 12, 3)), 1),
        ]
    );
    assert_eq!(m.contracts[0].customer.as_deref(), Some("<b>一</b>"));
}

#[test]
fn the_html_is_self_contained_escapes_data_and_carries_every_number() {
    let rows = Rows {
        tickets: vec![
            ticket(1, "fault", Some("C-<1>"), jst(2026, 11, 2, 10, 0)),
            ticket(2, "fault", Some("C-<1>"), jst(2026, 11, 2, 11, 0)),
        ],
        withheld: vec![WithheldRow {
            received_at: jst(2026, 11, 2, 10, 0),
            reason: Some("bounce: x".into()),
        }],
        reminders: vec![reminder(
            "renewal",
            Some("C-<1>"),
            jst(2026, 11, 2, 9, 0),
            true,
        )],
        customers: [(
            "C-<1>".to_string(),
            "<script>alert(1)</script>\"'&".to_string(),
        )]
        .into(),
        ..Rows::default()
    };
    let report = compute(nov(), Tokyo, &rows);
    let html = render_html(&report);
    assert!(html.starts_with("<!DOCTYPE html>\n<html lang=\"ja\">"));
    for absent in ["<script", "http:", "https:", "src=", "@import", "url("] {
        assert!(!html.contains(absent), "{absent} in the page");
    }
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;"));
    assert!(html.contains("data-key=\"C-&lt;1&gt;\" data-value=\"2\""));
    assert!(html.contains("data-chart=\"categories\""));
    assert!(html.contains("<g class=\"bar\" data-key=\"fault\" data-value=\"2\">"));
    assert!(html.contains("data-key=\"bounce\" data-value=\"1\""));
    assert!(html.contains("data-key=\"renewal\" data-value=\"1\""));
    assert!(html.contains("Noto Sans CJK JP"));
    assert!(html.contains("default-src 'none'"));
    // Empty charts say so instead of drawing nothing.
    let empty = render_html(&compute(nov(), Tokyo, &Rows::default()));
    assert!(empty.contains("該当なし"));
    assert!(empty.contains("data-key=\"median_minutes\" data-value=\"\""));
}

#[test]
fn escaping_covers_markup_and_control_characters() {
    assert_eq!(
        html::esc("a<b>&\"'\u{0}c"),
        "a&lt;b&gt;&amp;&quot;&#39;\u{FFFD}c"
    );
    assert_eq!(html::esc("日本語\n"), "日本語\n");
}

#[test]
fn the_text_names_every_section() {
    let text = render_text(&compute(nov(), Tokyo, &Rows::default()));
    for needle in [
        "monthly report 2026-11 (2026-11-01 to 2026-11-30, Asia/Tokyo)",
        "tickets accepted: 0",
        "first response (business time): 0 answered",
        "license keys (R8): 0 of 0 sent by the due date (nothing due)",
        "automatic replies withheld by the guard: 0",
        "renewals that followed: 0 of 0 contract(s) reminded",
    ] {
        assert!(text.contains(needle), "{needle:?} in\n{text}");
    }
}

#[test]
fn many_contracts_share_one_bar_past_the_top_and_are_all_listed() {
    let tickets: Vec<TicketRow> = (0..20u64)
        .map(|i| {
            let id = format!("C-{i:02}");
            ticket(i, "fault", Some(&id), jst(2026, 11, 2, 10, 0))
        })
        .collect();
    let html = render_html(&compute(
        nov(),
        Tokyo,
        &Rows {
            tickets,
            ..Rows::default()
        },
    ));
    assert_eq!(html.matches("data-key=\"C-").count(), html::TOP_CONTRACTS);
    assert!(html.contains("data-key=\"_others\" data-value=\"5\""));
    assert!(html.contains("ほか 5 契約"));
    assert!(html.contains("<tr><td>C-19</td><td class=\"n\">1</td></tr>"));
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    const CATEGORIES: [&str; 8] = [
        "operation",
        "fault",
        "patch_upgrade",
        "data_migration",
        "license_reissue",
        "base_product",
        "other",
        "bogus",
    ];

    fn at(offset_minutes: i64) -> DateTime<Utc> {
        // Around November 2026 in Tokyo: from mid-October to mid-December.
        jst(2026, 10, 15, 0, 0) + chrono::Duration::minutes(offset_minutes)
    }

    proptest! {
        #[test]
        fn the_figures_add_up_and_the_page_holds_no_markup_from_data(
            tickets in proptest::collection::vec(
                (0usize..8, proptest::option::of("\\PC{0,12}"), 0i64..86_400,
                 proptest::option::of(0i64..5_000)),
                0..40),
            apps in proptest::collection::vec(
                (0u64..60, proptest::option::of(0i64..86_400), 0usize..5), 0..20),
            names in proptest::collection::vec("\\PC{0,20}", 0..5),
        ) {
            let states = ["waiting", "waiting_approval", "issued", "sent", "refused"];
            let mut customers = BTreeMap::new();
            for (i, name) in names.iter().enumerate() {
                customers.insert(format!("<c{i}>"), format!("<script>{name}"));
            }
            let rows = Rows {
                tickets: tickets
                    .iter()
                    .enumerate()
                    .map(|(i, (c, contract, t, m))| TicketRow {
                        number: i as u64,
                        category: CATEGORIES[*c].into(),
                        contract_id: contract.clone().map(|id| format!("<c{}>{id}", id.len() % 5)),
                        accepted_at: at(*t),
                        first_response_minutes: *m,
                    })
                    .collect(),
                applications: apps
                    .iter()
                    .enumerate()
                    .map(|(i, (due, sent, s))| ApplicationRow {
                        ticket: i as u64,
                        due: day(2026, 10, 15).checked_add_days(chrono::Days::new(*due)),
                        sent_at: sent.map(at),
                        state: states[*s].into(),
                    })
                    .collect(),
                customers,
                ..Rows::default()
            };
            let r = compute(nov(), Tokyo, &rows);
            let total = r.tickets.total;
            prop_assert_eq!(r.tickets.by_category.iter().map(|c| c.count).sum::<u64>(), total);
            prop_assert_eq!(r.tickets.by_contract.iter().map(|c| c.count).sum::<u64>(), total);
            let f = &r.first_response;
            prop_assert_eq!(f.answered + f.unanswered, total);
            prop_assert_eq!(f.distribution.iter().map(|b| b.count).sum::<u64>(), f.answered);
            prop_assert_eq!(f.median_minutes.is_some(), f.answered > 0);
            if let (Some(m), Some(p)) = (f.median_minutes, f.p90_minutes) {
                prop_assert!(m <= p);
            }
            let k = &r.license_keys;
            prop_assert_eq!(k.on_time + k.late + k.unsent, k.due);
            if let Some(p) = k.on_time_percent {
                prop_assert!((0.0..=100.0).contains(&p));
            }
            let html = render_html(&r);
            prop_assert!(!html.contains("<script"));
            prop_assert!(!html.contains("<c"));
        }
    }
}
