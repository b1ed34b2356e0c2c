//! The admin CLI (DESIGN.md, "CLI"): values are asserted on `--json` output (its keys are a
//! contract); human text only on a few key words, since its wording may change.

use chrono::NaiveDate;
use serde_json::{Value, json};

use crate::util::{
    DESK_ADDRESS, Desk, arg, assert_fields, corpus_dir, demo_fixture, madoguchi, str_at,
};

// ───────────────────────── support periods (R9–R11) ─────────────────────────

#[test]
fn period_follows_the_r9_examples() {
    let desk = Desk::new();
    let v = desk.json(&["contracts", "period", "--received", "2026-03-15"]);
    assert_fields(
        &v,
        &[
            ("start", "2026-04-01"),
            ("end", "2027-03-31"),
            ("covered_from", "2026-03-15"),
        ],
    );
    // Received on the 1st: the period starts that same day.
    let v = desk.json(&["contracts", "period", "--received", "2026-04-01"]);
    assert_fields(
        &v,
        &[
            ("start", "2026-04-01"),
            ("end", "2027-03-31"),
            ("covered_from", "2026-04-01"),
        ],
    );
    // Support is given from the first purchase date, before the base period starts.
    let v = desk.json(&[
        "contracts",
        "period",
        "--received",
        "2026-03-15",
        "--purchased",
        "2026-03-10",
    ]);
    assert_fields(
        &v,
        &[
            ("start", "2026-04-01"),
            ("end", "2027-03-31"),
            ("covered_from", "2026-03-10"),
        ],
    );
    let human = desk.run(&["contracts", "period", "--received", "2026-03-15"]);
    human
        .assert_success()
        .assert_stdout_has(&["2026-04-01", "2027-03-31"]);
}

#[test]
fn renewal_follows_the_r10_r11_examples() {
    let desk = Desk::new();
    let renewal = |received: &str| {
        desk.json(&[
            "contracts",
            "renewal",
            "--last-end",
            "2025-03-31",
            "--received",
            received,
        ])
    };
    // The last day a plain renewal is accepted: E + 1 day + 1 year − 1 day.
    assert_fields(
        &renewal("2026-03-31"),
        &[
            ("kind", "renewal"),
            ("start", "2026-04-01"),
            ("end", "2027-03-31"),
        ],
    );
    // From E + 1 day + 1 year on, re-continuation.
    assert_fields(
        &renewal("2026-04-01"),
        &[
            ("kind", "recontinuation_required"),
            ("start", "2026-04-01"),
            ("end", "2027-03-31"),
        ],
    );
    // Inside the current period: the next period follows seamlessly (R10).
    assert_fields(
        &renewal("2025-03-01"),
        &[
            ("kind", "renewal"),
            ("start", "2025-04-01"),
            ("end", "2026-03-31"),
        ],
    );
    // After the period ended: the 1st of the following month (R10).
    assert_fields(
        &renewal("2025-06-15"),
        &[
            ("kind", "renewal"),
            ("start", "2025-07-01"),
            ("end", "2026-06-30"),
        ],
    );
    desk.run(&[
        "contracts",
        "renewal",
        "--last-end",
        "2025-03-31",
        "--received",
        "2026-04-01",
    ])
    .assert_success()
    .assert_stdout_has(&["再継続"]);
}

// ───────────────────────── business calendar (R5, R8) ─────────────────────────

#[test]
fn closed_on_labour_thanksgiving_day() {
    let desk = Desk::new();
    // 2026-11-23 is a Monday and 勤労感謝の日.
    let v = desk.json(&["calendar", "status", "2026-11-23T10:00"]);
    assert_eq!(v["open"], json!(false), "{v:#}");
    assert_fields(
        &v,
        &[
            ("reason", "national_holiday"),
            ("next_open", "2026-11-24T09:00:00+09:00"),
        ],
    );
    desk.run(&["calendar", "status", "2026-11-23T10:00"])
        .assert_success()
        .assert_stdout_has(&["closed", "勤労感謝の日", "2026-11-24T09:00:00+09:00"]);
}

#[test]
fn open_inside_a_reception_window() {
    let desk = Desk::new();
    let v = desk.json(&["calendar", "status", "2026-11-25T10:00"]);
    assert_eq!(v["open"], json!(true), "{v:#}");
    assert_fields(
        &v,
        &[
            ("reason", "open"),
            ("next_open", "2026-11-25T10:00:00+09:00"),
        ],
    );
    // The same instant given in UTC: the desk's zone applies, not the offset's nor the host's.
    let v = desk.json(&["calendar", "status", "2026-11-25T01:00:00Z"]);
    assert_eq!(v["open"], json!(true), "{v:#}");
    // 17:30 is closing time: closed, next opening the following morning.
    let v = desk.json(&["calendar", "status", "2026-11-25T17:30"]);
    assert_eq!(v["open"], json!(false), "{v:#}");
    assert_fields(
        &v,
        &[
            ("reason", "after_hours"),
            ("next_open", "2026-11-26T09:00:00+09:00"),
        ],
    );
}

#[test]
fn friday_evening_is_accepted_on_monday_morning() {
    let desk = Desk::new();
    let v = desk.json(&["calendar", "accepted-at", "2026-11-27T18:00"]);
    assert_fields(&v, &[("accepted_at", "2026-11-30T09:00:00+09:00")]);
    desk.run(&["calendar", "accepted-at", "2026-11-27T18:00"])
        .assert_success()
        .assert_stdout_has(&["2026-11-30T09:00:00+09:00"]);
}

#[test]
fn lunch_break_is_accepted_at_one() {
    let desk = Desk::new();
    let v = desk.json(&["calendar", "accepted-at", "2026-11-25T12:30"]);
    assert_fields(&v, &[("accepted_at", "2026-11-25T13:00:00+09:00")]);
    // RFC 3339 with another offset: 03:30Z is 12:30 in Japan.
    let v = desk.json(&["calendar", "accepted-at", "2026-11-25T03:30:00Z"]);
    assert_fields(&v, &[("accepted_at", "2026-11-25T13:00:00+09:00")]);
    // Inside a window: accepted at once.
    let v = desk.json(&["calendar", "accepted-at", "2026-11-25T10:15:30"]);
    assert_fields(&v, &[("accepted_at", "2026-11-25T10:15:30+09:00")]);
}

#[test]
fn license_cutoff_is_seventeen_hundred() {
    let desk = Desk::new();
    let due = |t: &str| {
        let v = desk.json(&["calendar", "license-due", t]);
        str_at(&v, "due").to_string()
    };
    assert_eq!(due("2026-11-25T17:00:00"), "2026-11-25");
    assert_eq!(due("2026-11-25T17:00:01"), "2026-11-26");
    // After the cutoff on a Friday: the next business day is Monday.
    assert_eq!(due("2026-11-27T17:30"), "2026-11-30");
    // On a national holiday: the next business day.
    assert_eq!(due("2026-11-23T10:00"), "2026-11-24");
    // Before opening on a business day: that same day.
    assert_eq!(due("2026-11-25T07:00"), "2026-11-25");
}

#[test]
fn company_holidays_come_from_the_config() {
    let desk = Desk::with_config(
        "[desk]\n\
         address = \"support@example.co.jp\"\n\
         [hours]\n\
         company_holidays = [\"2026-12-29..2027-01-04\"]\n\
         [storage]\n\
         database = \"var/db.sqlite3\"\n",
    );
    let v = desk.json(&["calendar", "accepted-at", "2026-12-28T18:00"]);
    assert_fields(&v, &[("accepted_at", "2027-01-05T09:00:00+09:00")]);
    let v = desk.json(&["calendar", "status", "2026-12-30T10:00"]);
    assert_eq!(v["open"], json!(false), "{v:#}");
    assert_fields(
        &v,
        &[
            ("reason", "company_holiday"),
            ("next_open", "2027-01-05T09:00:00+09:00"),
        ],
    );
    let v = desk.json(&["calendar", "license-due", "2026-12-28T17:00:01"]);
    assert_fields(&v, &[("due", "2027-01-05")]);

    // Without the closure the next morning is an ordinary business day.
    let plain = Desk::new();
    let v = plain.json(&["calendar", "accepted-at", "2026-12-28T18:00"]);
    assert_fields(&v, &[("accepted_at", "2026-12-29T09:00:00+09:00")]);

    // `calendar holidays` lists the company's closed days of the year too.
    let v = desk.json(&["calendar", "holidays", "2026"]);
    let dates = holiday_dates(&v);
    assert_eq!(dates.len(), NATIONAL_HOLIDAYS_2026.len() + 3, "{dates:?}");
    for day in ["2026-12-29", "2026-12-30", "2026-12-31"] {
        assert!(dates.contains(&day.to_string()), "{day} missing: {dates:?}");
    }
}

/// The national holidays of 2026, from the reference table
/// (`corpus/holidays/jp_holidays.csv`): 18 days, among them the substitute holiday of 5/6
/// and the citizens' holiday 9/22 (named 休日).
const NATIONAL_HOLIDAYS_2026: &[(&str, &str)] = &[
    ("2026-01-01", "元日"),
    ("2026-01-12", "成人の日"),
    ("2026-02-11", "建国記念の日"),
    ("2026-02-23", "天皇誕生日"),
    ("2026-03-20", "春分の日"),
    ("2026-04-29", "昭和の日"),
    ("2026-05-03", "憲法記念日"),
    ("2026-05-04", "みどりの日"),
    ("2026-05-05", "こどもの日"),
    ("2026-05-06", "こどもの日 振替休日"),
    ("2026-07-20", "海の日"),
    ("2026-08-11", "山の日"),
    ("2026-09-21", "敬老の日"),
    ("2026-09-22", "休日"),
    ("2026-09-23", "秋分の日"),
    ("2026-10-12", "スポーツの日"),
    ("2026-11-03", "文化の日"),
    ("2026-11-23", "勤労感謝の日"),
];

fn holiday_dates(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected an array: {v:#}"))
        .iter()
        .map(|h| str_at(h, "date").to_string())
        .collect()
}

#[test]
fn holidays_2026_match_the_reference_table() {
    let desk = Desk::new();
    let v = desk.json(&["calendar", "holidays", "2026"]);
    let got: Vec<(String, String)> = v
        .as_array()
        .unwrap_or_else(|| panic!("expected an array: {v:#}"))
        .iter()
        .map(|h| (str_at(h, "date").to_string(), str_at(h, "name").to_string()))
        .collect();
    let want: Vec<(String, String)> = NATIONAL_HOLIDAYS_2026
        .iter()
        .map(|(d, n)| (d.to_string(), n.to_string()))
        .collect();
    assert_eq!(got.len(), 18, "{got:#?}");
    assert_eq!(got, want);

    // The same list as the reference table itself, when the corpus is present.
    if let Some(corpus) = corpus_dir() {
        let table = std::fs::read_to_string(corpus.join("holidays/jp_holidays.csv"))
            .expect("reference holiday table");
        let reference: Vec<(String, String)> = table
            .lines()
            .filter(|l| l.starts_with("2026-"))
            .map(|l| {
                let (d, n) = l.split_once(',').expect("date,name");
                (d.to_string(), n.trim().to_string())
            })
            .collect();
        assert_eq!(got, reference);
    }

    desk.run(&["calendar", "holidays", "2026"])
        .assert_success()
        .assert_stdout_has(&["2026-09-22", "休日", "勤労感謝の日"]);
}

// ───────────────────────── contracts register ─────────────────────────

const DEMO_IDS: [&str; 5] = ["C-1001", "C-1002", "C-1003", "C-1004", "C-1005"];

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
}

/// The status of a contract whose last period is `start..=end`, on `today` (after `start`),
/// worked out by hand from R10/R11: covered to the end, then a plain renewal for a year, then
/// re-continuation.
fn status_after(start: &str, end: &str, today: NaiveDate) -> Value {
    let renewal_deadline = d(end)
        .checked_add_months(chrono::Months::new(12))
        .expect("date");
    if today <= d(end) {
        json!({"status": "covered", "period": {"start": start, "end": end}})
    } else if today <= renewal_deadline {
        json!({"status": "expired", "last_end": end, "next": "renewal"})
    } else {
        json!({"status": "expired", "last_end": end, "next": "recontinuation_required"})
    }
}

/// The demo contracts' status on `today` (fixtures/demo/README.md; today ≥ 2026-11-25).
fn demo_status(contract_id: &str, today: NaiveDate) -> Value {
    match contract_id {
        // Renewal chain 2024-04-01 → 2027-03-31.
        "C-1001" => status_after("2026-04-01", "2027-03-31", today),
        // Received on 2026-06-01: that day starts the period.
        "C-1002" => status_after("2026-06-01", "2027-05-31", today),
        // Ended 2026-09-30, less than a year before 2026-11-25.
        "C-1003" => status_after("2025-10-01", "2026-09-30", today),
        // Ended 2024-06-30, more than a year ago.
        "C-1004" => status_after("2023-07-01", "2024-06-30", today),
        // The certificate's period, not the computed 2026-04-01 → 2027-03-31.
        "C-1005" => status_after("2026-04-15", "2027-04-14", today),
        other => panic!("not a demo contract: {other}"),
    }
}

/// A JSON array of strings, sorted (the order of contacts is not part of the contract).
fn sorted_strings(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .unwrap_or_else(|| panic!("expected an array: {v:#}"))
        .iter()
        .map(|s| s.as_str().expect("string").to_string())
        .collect();
    out.sort();
    out
}

/// The `today` the binary reported (its clock, in the desk's zone).
fn today_of(contract: &Value) -> NaiveDate {
    d(str_at(contract, "today"))
}

#[test]
fn demo_contracts_import_and_list_with_status() {
    let desk = Desk::new();
    let summary = desk.import_demo();
    assert_eq!(summary["contracts_added"], json!(5), "{summary:#}");
    assert_eq!(summary["orders"], json!(8), "{summary:#}");
    // The database path is relative to the config file, not to the working directory.
    assert!(desk.dir().join("var/db.sqlite3").is_file());

    let list = desk.json(&["contracts", "list"]);
    let rows = list.as_array().expect("array");
    let ids: Vec<&str> = rows.iter().map(|c| str_at(c, "contract_id")).collect();
    assert_eq!(ids, DEMO_IDS);
    for row in rows {
        let id = str_at(row, "contract_id");
        let today = today_of(row);
        assert!(
            today >= d("2026-11-25"),
            "the clock is before the demo date"
        );
        assert_eq!(row["status"], demo_status(id, today), "{id} in {row:#}");
    }
    assert_fields(
        &rows[0],
        &[
            ("contract_id", "C-1001"),
            ("customer", "アルファ商事株式会社"),
        ],
    );
    assert_eq!(
        sorted_strings(&rows[0]["contacts"]),
        ["sato@alpha.example.co.jp", "yamada@alpha.example.co.jp"]
    );

    // The human list names every contract and says covered/expired.
    let human = desk.run(&["contracts", "list"]);
    human.assert_success().assert_stdout_has(&DEMO_IDS);
    human.assert_stdout_has(&["アルファ商事株式会社", "expired"]);
}

#[test]
fn show_gives_periods_from_orders_and_certificates() {
    let desk = Desk::new();
    desk.import_demo();

    // The renewal chain: three consecutive years.
    let c = desk.json(&["contracts", "show", "C-1001"]);
    assert_fields(
        &c,
        &[
            ("contract_id", "C-1001"),
            ("customer", "アルファ商事株式会社"),
        ],
    );
    assert_eq!(
        sorted_strings(&c["contacts"]),
        ["sato@alpha.example.co.jp", "yamada@alpha.example.co.jp"]
    );
    assert_eq!(c["periods"]["covered_from"], json!("2024-03-08"), "{c:#}");
    let periods: Vec<(&str, &str, &str)> = c["periods"]["periods"]
        .as_array()
        .expect("periods")
        .iter()
        .map(|p| (str_at(p, "start"), str_at(p, "end"), str_at(p, "kind")))
        .collect();
    assert_eq!(
        periods,
        [
            ("2024-04-01", "2025-03-31", "initial"),
            ("2025-04-01", "2026-03-31", "renewal"),
            ("2026-04-01", "2027-03-31", "renewal"),
        ]
    );
    assert_eq!(c["status"], demo_status("C-1001", today_of(&c)));

    // R12: the certificate's period governs.
    let c = desk.json(&["contracts", "show", "C-1005"]);
    let first = &c["periods"]["periods"][0];
    assert_fields(first, &[("start", "2026-04-15"), ("end", "2027-04-14")]);
    assert_eq!(first["from_certificate"], json!(true), "{c:#}");
    assert_eq!(c["customized"], json!(true));
    assert_eq!(c["status"], demo_status("C-1005", today_of(&c)));

    // Expired more than a year ago: re-continuation.
    let c = desk.json(&["contracts", "show", "C-1004"]);
    assert_eq!(
        c["status"],
        json!({"status": "expired", "last_end": "2024-06-30", "next": "recontinuation_required"})
    );
    desk.run(&["contracts", "show", "C-1004"])
        .assert_success()
        .assert_stdout_has(&["C-1004", "デルタ建設株式会社", "再継続"]);

    // An unknown id is a clear error.
    desk.run(&["contracts", "show", "C-9999"])
        .assert_failure()
        .assert_stderr_has(&["C-9999"]);
}

#[test]
fn reimport_is_idempotent() {
    let desk = Desk::new();
    desk.import_demo();
    let list_json = desk.run(&["--json", "contracts", "list"]);
    let list_text = desk.run(&["contracts", "list"]);
    let show = desk.run(&["--json", "contracts", "show", "C-1001"]);

    let again = desk.import_demo();
    assert_eq!(again["contracts_added"], json!(0), "{again:#}");
    assert_eq!(again["contracts_updated"], json!(0), "{again:#}");
    assert_eq!(again["contracts_unchanged"], json!(5), "{again:#}");

    assert_eq!(
        desk.run(&["--json", "contracts", "list"]).stdout,
        list_json.stdout
    );
    assert_eq!(desk.run(&["contracts", "list"]).stdout, list_text.stdout);
    assert_eq!(
        desk.run(&["--json", "contracts", "show", "C-1001"]).stdout,
        show.stdout
    );
}

const CONTRACTS_HEADER: &str =
    "contract_id,customer,license_serial,contacts,domains,customized,neo_support,server_id\n";

/// Line 2 is fine; 3 has a bad boolean, 4 no contact, 5 repeats line 2's id.
fn bad_contracts() -> String {
    format!(
        "{CONTRACTS_HEADER}\
         C-2001,良品株式会社,DNDS-2026-09001,a@good.example.jp,good.example.jp,no,no,\n\
         C-2002,株式会社ワルイ,DNDS-2026-09002,b@bad.example.jp,,maybe,no,\n\
         C-2003,連絡先なし株式会社,DNDS-2026-09003,,,no,no,\n\
         C-2001,重複商事株式会社,DNDS-2026-09004,c@dup.example.jp,,no,yes,\n"
    )
}

#[test]
fn bad_contracts_file_is_rejected_whole() {
    let desk = Desk::new();
    let file = desk.write("bad-contracts.csv", &bad_contracts());
    let run = desk.run(&["contracts", "import", arg(&file)]);
    run.assert_failure();
    // Every problem, each with file:line and column.
    run.assert_stderr_has(&[
        "bad-contracts.csv:3",
        "customized",
        "maybe",
        "bad-contracts.csv:4",
        "contacts",
        "bad-contracts.csv:5",
        "contract_id",
        "C-2001",
    ]);
    assert!(
        !run.stderr.contains("bad-contracts.csv:2"),
        "line 2 is fine: {run}"
    );
    // Nothing imported, not even the good line.
    assert_eq!(desk.json(&["contracts", "list"]), json!([]));
    desk.run(&["contracts", "show", "C-2001"]).assert_failure();
}

#[test]
fn bad_contracts_file_leaves_the_register_unchanged() {
    let desk = Desk::new();
    desk.import_demo();
    let before = desk.run(&["--json", "contracts", "list"]).stdout;
    // A good update of a demo contract plus the bad lines: none of it may land.
    let mut text = bad_contracts();
    text.push_str(
        "C-1001,アルファ商事株式会社（新社名）,DNDS-2024-00318,new@alpha.example.co.jp,,no,yes,\n",
    );
    let file = desk.write("bad-contracts.csv", &text);
    desk.run(&["contracts", "import", arg(&file)])
        .assert_failure()
        .assert_stderr_has(&[
            "bad-contracts.csv:3",
            "bad-contracts.csv:4",
            "bad-contracts.csv:5",
        ]);
    assert_eq!(desk.run(&["--json", "contracts", "list"]).stdout, before);
}

#[test]
fn orders_contradicting_r11_are_rejected_naming_the_line() {
    let desk = Desk::new();
    // Line 3: a renewal received more than a year after the period ended 2024-06-30 (needs
    // re-continuation). Line 6: a re-continuation received while a plain renewal still applies.
    let orders = desk.write(
        "orders.csv",
        "contract_id,kind,received,purchased,start,end\n\
         C-1004,initial,2023-06-15,2023-06-15,,\n\
         C-1004,renewal,2026-11-20,,,\n\
         C-1003,initial,2024-09-20,,,\n\
         C-1003,renewal,2025-09-12,,,\n\
         C-1003,recontinuation,2026-11-20,,,\n",
    );
    let contracts = demo_fixture("contracts.csv");
    let run = desk.run(&[
        "contracts",
        "import",
        arg(&contracts),
        "--orders",
        arg(&orders),
    ]);
    run.assert_failure()
        .assert_stderr_has(&["orders.csv:3", "C-1004", "orders.csv:6", "C-1003"]);
    assert!(
        run.stderr.contains("再継続") || run.stderr.contains("re-continuation"),
        "{run}"
    );
    // All or nothing: the (valid) contracts file was not imported either.
    assert_eq!(desk.json(&["contracts", "list"]), json!([]));
}

#[test]
fn orders_for_unknown_contracts_are_rejected() {
    let desk = Desk::new();
    desk.import_demo();
    let before = desk.run(&["--json", "contracts", "list"]).stdout;
    let orders = desk.write(
        "orders.csv",
        "contract_id,kind,received,purchased,start,end\n\
         C-1001,initial,2024-03-15,2024-03-08,,\n\
         C-9999,initial,2026-03-15,,,\n",
    );
    let contracts = demo_fixture("contracts.csv");
    desk.run(&[
        "contracts",
        "import",
        arg(&contracts),
        "--orders",
        arg(&orders),
    ])
    .assert_failure()
    .assert_stderr_has(&["orders.csv:3", "C-9999"]);
    assert_eq!(desk.run(&["--json", "contracts", "list"]).stdout, before);
}

#[test]
fn import_reports_every_problem_of_both_files_in_one_run_in_file_and_line_order() {
    let desk = Desk::new();
    // contracts.csv line 3: a field error (C-3002 stays a known id for its orders).
    let contracts = desk.write(
        "contracts.csv",
        &format!(
            "{CONTRACTS_HEADER}\
             C-3001,良品株式会社,DNDS-2026-09101,a@good.example.jp,,no,no,\n\
             C-3002,株式会社ワルイ,DNDS-2026-09102,b@bad.example.jp,,maybe,no,\n"
        ),
    );
    // orders.csv line 3: R11 (a renewal more than a year after the period ended 2025-03-31);
    // line 4: an unknown contract; line 5: a field error.
    let orders = desk.write(
        "orders.csv",
        "contract_id,kind,received,purchased,start,end\n\
         C-3001,initial,2024-03-15,,,\n\
         C-3001,renewal,2026-04-01,,,\n\
         C-9999,initial,2026-03-15,,,\n\
         C-3002,bogus,2026-03-15,,,\n",
    );
    let run = desk.run(&[
        "contracts",
        "import",
        arg(&contracts),
        "--orders",
        arg(&orders),
    ]);
    run.assert_failure();
    let expected = [
        ("contracts.csv:3", "maybe"),
        ("orders.csv:3", "C-3001"),
        ("orders.csv:4", "C-9999"),
        ("orders.csv:5", "bogus"),
    ];
    let lines: Vec<&str> = run.stderr.lines().filter(|l| l.contains(".csv:")).collect();
    assert_eq!(lines.len(), expected.len(), "{run}");
    for (line, (place, what)) in lines.iter().zip(expected) {
        assert!(
            line.contains(&format!("/{place}:")) && line.contains(what),
            "expected {place} about {what}, got {line:?} in {run}"
        );
    }
    // All or nothing.
    assert_eq!(desk.json(&["contracts", "list"]), json!([]));
}

// ───────────────────────── config ─────────────────────────

#[test]
fn check_config_accepts_a_valid_config() {
    let desk = Desk::new();
    desk.run(&["check-config"])
        .assert_code(0)
        .assert_stdout_has(&["config OK", arg(desk.config()), DESK_ADDRESS]);
    let v = desk.json(&["check-config"]);
    assert_eq!(v["ok"], json!(true), "{v:#}");
    assert_eq!(v["problems"], json!([]), "{v:#}");
}

/// `[staff] authentication = "none"` is allowed: check-config says so and warns, and succeeds.
#[test]
fn check_config_warns_about_unauthenticated_staff_mail_and_still_succeeds() {
    let desk = Desk::with_config(
        "[desk]\n\
         address = \"support@example.co.jp\"\n\
         staff = [\"tanaka@example.co.jp\"]\n\
         [staff]\n\
         authentication = \"none\"\n",
    );
    desk.run(&["check-config"])
        .assert_code(0)
        .assert_stdout_has(&[
            "config OK",
            "staff mail: none: staff mail is NOT authenticated",
            "WARNING: staff.authentication: \"none\"",
        ]);
    let v = desk.json(&["check-config"]);
    assert_eq!(v["ok"], json!(true), "{v:#}");
    assert_eq!(v["staff_authentication"], json!("none"), "{v:#}");
    assert_eq!(v["warnings"].as_array().map(Vec::len), Some(1), "{v:#}");
    // A valid config with nothing to warn about has an empty list.
    assert_eq!(Desk::new().json(&["check-config"])["warnings"], json!([]));
}

#[test]
fn check_config_reports_every_problem() {
    let desk = Desk::with_config(
        "[hours]\n\
         timezone = \"Mars/Olympus\"\n\
         windows = [\"09:00-12:00\", \"11:00-17:30\"]\n\
         weekdays = [\"Mon\", \"Funday\"]\n\
         company_holidays = [\"2026-12-29..2026-12-01\"]\n\
         license_cutoff = \"25:00\"\n\
         \n\
         [storage]\n\
         datbase = \"var/db.sqlite3\"\n\
         \n\
         [intake]\n\
         kind = \"pop3\"\n",
    );
    let run = desk.run(&["--json", "check-config"]);
    run.assert_code(1);
    let v = run.json();
    assert_eq!(v["ok"], json!(false), "{v:#}");
    let problems: Vec<&str> = v["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .map(|p| p.as_str().expect("string"))
        .collect();
    // One problem each (missing address, bad zone, overlap, weekday, closure, cutoff, typo, kind).
    let expect = [
        "desk.address",
        "Mars/Olympus",
        "11:00-17:30",
        "Funday",
        "2026-12-29..2026-12-01",
        "25:00",
        "datbase",
        "pop3",
    ];
    for needle in expect {
        assert!(
            problems.iter().any(|p| p.contains(needle)),
            "no problem mentions {needle:?}: {problems:#?}"
        );
    }
    assert_eq!(problems.len(), expect.len(), "{problems:#?}");

    let human = desk.run(&["check-config"]);
    human.assert_code(1);
    for needle in expect {
        assert!(human.all_output().contains(needle), "{needle:?} in {human}");
    }
    // A command that needs the config refuses to run on it.
    desk.run(&["contracts", "list"]).assert_failure();
}

#[test]
fn inline_password_is_rejected_without_echoing_it() {
    const SECRET: &str = "Hunter2-TopSecret-42";
    let desk = Desk::with_config(&format!(
        "[desk]\n\
         address = \"support@example.co.jp\"\n\
         [intake]\n\
         kind = \"imap\"\n\
         host = \"imap.example.co.jp\"\n\
         user = \"support\"\n\
         password = \"{SECRET}\"\n\
         [outbound]\n\
         kind = \"smtp\"\n\
         host = \"smtp.example.co.jp\"\n\
         user = \"support\"\n\
         password = \"{SECRET}\"\n"
    ));
    let json_run = desk.run(&["--json", "check-config"]);
    json_run.assert_code(1);
    let v = json_run.json();
    assert_eq!(v["ok"], json!(false), "{v:#}");
    let problems = v["problems"].to_string();
    assert!(problems.contains("intake.password"), "{v:#}");
    assert!(problems.contains("outbound.password"), "{v:#}");
    assert!(problems.contains("password_file"), "{v:#}");

    let human = desk.run(&["check-config"]);
    human.assert_code(1).assert_stdout_has(&["password"]);
    let list = desk.run(&["contracts", "list"]);
    list.assert_failure();
    for run in [&json_run, &human, &list] {
        assert!(!run.all_output().contains(SECRET), "secret leaked: {run}");
        assert!(
            !run.all_output().contains("TopSecret"),
            "secret leaked: {run}"
        );
    }
}

#[test]
fn missing_config_file_is_a_clear_error() {
    let desk = Desk::new();
    let missing = desk.dir().join("nope.toml");
    let run = madoguchi(desk.dir(), ["--config", arg(&missing), "check-config"]);
    run.assert_failure();
    assert!(run.all_output().contains("nope.toml"), "{run}");
}

// ───────────────────────── bad arguments ─────────────────────────

#[test]
fn garbage_times_and_dates_are_clear_errors() {
    let desk = Desk::new();
    for args in [
        &["calendar", "status", "garbage"][..],
        &["calendar", "accepted-at", "2026-13-45T10:00"],
        &["calendar", "license-due", "yesterday at noon"],
        &["calendar", "status", ""],
        &["calendar", "accepted-at", "2026-11-25T25:61"],
    ] {
        let run = desk.run(args);
        run.assert_failure();
        let bad = args[2];
        assert!(
            run.stderr.contains(&format!("{bad:?}")) || run.stderr.contains("cannot read time"),
            "the error should quote the argument: {run}"
        );
        assert!(run.stdout.is_empty(), "no output on error: {run}");
    }
    for args in [
        &["contracts", "period", "--received", "2026-02-30"][..],
        &["contracts", "period", "--received", "15/03/2026"],
        &[
            "contracts",
            "renewal",
            "--last-end",
            "2025-03-31",
            "--received",
            "soon",
        ],
    ] {
        let run = desk.run(args);
        run.assert_failure();
        assert!(run.stderr.contains("YYYY-MM-DD"), "{run}");
    }
    // A year out of range for the holiday table is an error or a list, never a crash.
    desk.run(&["calendar", "holidays", "99999999999"]);
    desk.run(&["calendar", "holidays", "-5"]);
    desk.run(&["calendar", "holidays", "300000"]);
    desk.run(&["calendar", "holidays", "0"]);
    // `now` is accepted.
    let v = desk.json(&["calendar", "status", "now"]);
    assert!(v["open"].is_boolean(), "{v:#}");
}

#[test]
fn status_can_be_asked_for_any_date() {
    let desk = Desk::new();
    desk.import_demo();
    let on = |date: &str| desk.json(&["contracts", "show", "C-1003", "--on", date]);
    let last_day = on("2026-09-30");
    assert_eq!(last_day["today"], "2026-09-30");
    assert_eq!(last_day["status"]["status"], "covered");
    let after = on("2026-10-01");
    assert_eq!(after["status"]["status"], "expired");
    assert_eq!(after["status"]["next"], "renewal");
    // R11: a year and a day after the end, only a re-continuation will do.
    let lapsed = on("2027-10-01");
    assert_eq!(lapsed["status"]["next"], "recontinuation_required");
    let list = desk.json(&["contracts", "list", "--on", "2026-10-01"]);
    let c1003 = list
        .as_array()
        .and_then(|a| a.iter().find(|c| c["contract_id"] == "C-1003"))
        .expect("C-1003 listed");
    assert_eq!(c1003["status"]["status"], "expired");
    desk.run(&["contracts", "list", "--on", "2026-13-01"])
        .assert_failure()
        .assert_stderr_has(&["YYYY-MM-DD"]);
}

// ───────────────────────── enum-like arguments ─────────────────────────

#[test]
fn unknown_ticket_state_is_a_usage_error_listing_the_valid_ones() {
    let desk = Desk::new();
    let run = desk.run(&["tickets", "list", "--state", "bogus"]);
    // clap's usage-error status, before any config or database is touched.
    run.assert_code(2)
        .assert_stderr_has(&["bogus", "waiting_acceptance", "open", "closed"]);
    assert!(run.stdout.is_empty(), "{run}");
    assert!(
        !desk.dir().join("var/db.sqlite3").exists(),
        "a usage error must not open the database"
    );
    // The valid values are accepted as the store spells them.
    for state in ["waiting_acceptance", "open", "closed"] {
        assert_eq!(
            desk.json(&["tickets", "list", "--state", state]),
            json!([]),
            "{state}"
        );
    }
}

// ───────────────────────── output to a closed pipe ─────────────────────────

/// `madoguchi --json contracts list | head`: the reader goes away while the binary still has
/// output (far more than a pipe buffer holds). The binary must end quietly, as a command killed
/// by SIGPIPE does (shell status 141), not panic with exit 101.
#[test]
fn closed_stdout_ends_quietly_as_sigpipe() {
    use std::io::Read;
    use std::os::unix::process::ExitStatusExt;
    use std::process::{Command, Stdio};

    let desk = Desk::new();
    let mut csv = String::from(CONTRACTS_HEADER);
    for i in 0..1500 {
        csv.push_str(&format!(
            "C-{i:05},パイプ商事株式会社 第{i}営業所,DNDS-2026-{i:05},user{i}@pipe.example.co.jp,pipe{i}.example.co.jp,no,yes,SRV-{i:05}\n"
        ));
    }
    let file = desk.write("many-contracts.csv", &csv);
    let summary = desk.json(&["contracts", "import", arg(&file)]);
    assert_eq!(summary["contracts_added"], json!(1500), "{summary:#}");
    // The whole document is well over 64 KiB, so the writer meets the closed pipe for sure.
    let full = desk.run(&["--json", "contracts", "list"]);
    full.assert_success();
    assert!(
        full.stdout.len() > 256 * 1024,
        "{} bytes",
        full.stdout.len()
    );

    for args in [&["--json", "contracts", "list"][..], &["contracts", "list"]] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_madoguchi"))
            .arg("--config")
            .arg(desk.config())
            .args(args)
            .env_remove("MADOGUCHI_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start madoguchi");
        // Read nothing: close the read end at once.
        drop(child.stdout.take());
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .expect("stderr")
            .read_to_string(&mut stderr)
            .expect("read stderr");
        let status = child.wait().expect("wait");
        assert!(
            !stderr.contains("panicked") && status.code() != Some(101),
            "{args:?} panicked ({status:?}): {stderr}"
        );
        assert!(
            status.signal() == Some(libc_sigpipe()) || status.code() == Some(141),
            "{args:?}: expected death by SIGPIPE (status 141), got {status:?}; stderr: {stderr}"
        );
        assert!(stderr.trim().is_empty(), "{args:?}: not quiet: {stderr}");
    }
}

/// SIGPIPE's number on every Unix this runs on.
fn libc_sigpipe() -> i32 {
    13
}

// ───────────────────────── demo ─────────────────────────

#[test]
fn demo_refuses_a_directory_it_did_not_create() {
    let desk = Desk::new();
    let db = desk.write("var/db.sqlite3", "the production database");
    let config_before = std::fs::read_to_string(desk.config()).expect("config");

    // An admin's desk directory: refused, nothing touched.
    let run = madoguchi(desk.dir(), ["demo", "--dir", arg(desk.dir())]);
    run.assert_failure()
        .assert_stderr_has(&[arg(desk.dir()), "--force"]);
    assert_eq!(
        std::fs::read_to_string(desk.config()).expect("config"),
        config_before
    );
    assert_eq!(
        std::fs::read_to_string(&db).expect("database kept"),
        "the production database"
    );

    // A directory that does not exist yet: built, marked, and can be rebuilt.
    let fresh = desk.dir().join("tour");
    madoguchi(desk.dir(), ["--json", "demo", "--dir", arg(&fresh)]).assert_success();
    assert!(fresh.join(".madoguchi-demo").is_file());
    assert!(fresh.join("madoguchi.toml").is_file());
    madoguchi(desk.dir(), ["--json", "demo", "--dir", arg(&fresh)]).assert_success();

    // An existing empty directory is taken.
    let empty = desk.dir().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    madoguchi(desk.dir(), ["--json", "demo", "--dir", arg(&empty)]).assert_success();
    assert!(empty.join(".madoguchi-demo").is_file());

    // A non-empty directory without the marker, even without a config, is refused.
    let other = desk.dir().join("other");
    std::fs::create_dir(&other).expect("mkdir");
    std::fs::write(other.join("notes.txt"), "mine").expect("write");
    madoguchi(desk.dir(), ["demo", "--dir", arg(&other)])
        .assert_failure()
        .assert_stderr_has(&[arg(&other), "--force"]);
    assert!(!other.join("madoguchi.toml").exists());

    // --force takes it anyway.
    madoguchi(
        desk.dir(),
        ["--json", "demo", "--dir", arg(desk.dir()), "--force"],
    )
    .assert_success();
    assert!(desk.dir().join(".madoguchi-demo").is_file());
}

/// Issue 8 item 5: `mail inspect` runs the daemon's own decision with the real config, so it
/// cannot disagree with `run`: custom form labels are read, the notify address is recorded,
/// and the reply address and contract details are what the desk would use.
#[test]
fn mail_inspect_decides_as_the_daemon_does() {
    let desk = Desk::with_config(
        "[desk]\naddress = \"support@example.co.jp\"\nnotify = [\"team@example.co.jp\"]\n\
         form_senders = [\"form@example.co.jp\"]\n[forms]\nemail = \"E-mail\"\n",
    );
    desk.import_demo();
    let form = desk.write(
        "form.eml",
        "From: form@example.co.jp\r\nTo: support@example.co.jp\r\nSubject: お問合せ\r\n\
         Message-ID: <f1@example.co.jp>\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n\
         【会社名】アルファ商事\r\n【E-mail】yamada@alpha.example.co.jp\r\n【お問合せ内容】設定方法\r\n",
    );
    let doc = desk.json(&["mail", "inspect", arg(&form)]);
    let fields = doc["form"]["fields"].as_array().expect("fields");
    assert!(
        fields
            .iter()
            .any(|f| f["field"] == "email" && f["value"] == "yamada@alpha.example.co.jp"),
        "{doc}"
    );
    assert_eq!(
        str_at(&doc, "verdict"),
        "ticket; reply acknowledgement to yamada@alpha.example.co.jp"
    );
    let notify = desk.write(
        "notify.eml",
        "From: team@example.co.jp\r\nTo: support@example.co.jp\r\nSubject: Re: [NEO-DS#000001] x\r\n\
         Message-ID: <n1@example.co.jp>\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n不在です\r\n",
    );
    let doc = desk.json(&["mail", "inspect", arg(&notify)]);
    assert_eq!(str_at(&doc, "verdict"), "recorded: from_notify_address");
    assert_eq!(doc["auto_generated"], true);
    // Inspecting changes nothing: no ticket was opened by either.
    let tickets = desk.json(&["tickets", "list"]);
    assert_eq!(tickets.as_array().map(Vec::len), Some(0), "{tickets}");
}

/// Issue 9 item 6: `queue` says whose turn each ticket is.
#[test]
fn queue_says_who_each_ticket_waits_for() {
    let desk = Desk::new();
    desk.write(
        "var/inbox/new/1.test",
        "From: yamada@alpha.example.co.jp\r\nTo: support@example.co.jp\r\nSubject: q\r\n\
         Message-ID: <q1@alpha.example.co.jp>\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\nx\r\n",
    );
    desk.run(&["run", "--once", "--now", "2026-11-25T10:00"])
        .assert_success();
    let queue = desk.json(&["queue"]);
    let first = &queue[0];
    assert_eq!(first["waits_for"], "staff", "{queue}");
    assert!(first["business_minutes"].is_number(), "{queue}");
}
