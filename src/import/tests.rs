//! contracts.csv, orders.csv and the two checked together.

use std::fmt;
use std::io::Read;

use chrono::NaiveDate;

use super::contracts::read_contracts;
use super::*;
use crate::core::contract::{Order, OrderKind, SupportPeriod};

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("test date")
}

const CONTRACTS_HEADER: &str =
    "contract_id,customer,license_serial,contacts,domains,customized,neo_support,server_id\n";
const ORDERS_HEADER: &str = "contract_id,kind,received,purchased,start,end\n";

fn contracts(body: &str) -> Result<Vec<Contract>, Diagnostics> {
    parse_contracts(
        "contracts.csv",
        format!("{CONTRACTS_HEADER}{body}").as_bytes(),
    )
}

fn orders(body: &str) -> Result<Vec<OrderRecord>, Diagnostics> {
    parse_orders("orders.csv", format!("{ORDERS_HEADER}{body}").as_bytes())
}

/// Rows that are each fine, with their lines, for the checks across rows.
fn lined_orders(body: &str) -> Vec<Lined<OrderRecord>> {
    let read = read_orders("orders.csv", format!("{ORDERS_HEADER}{body}").as_bytes());
    assert!(read.problems.is_empty(), "{:?}", read.problems);
    read.records
}

fn errors<T: fmt::Debug>(r: Result<T, Diagnostics>) -> Vec<String> {
    match r {
        Err(e) => e.problems.iter().map(ToString::to_string).collect(),
        Ok(v) => panic!("expected errors, got {v:?}"),
    }
}

#[test]
fn good_contracts_file() {
    let got = contracts(
        "C-001, 株式会社サンプル ,NEO-1234,Taro@Example.co.jp; hanako@example.co.jp;,@Example.CO.JP;sample.jp,yes,no,srv-01\n\
         C-002,Other,NEO-9,a@b.example,,No,YES,\n",
    )
    .expect("valid");
    assert_eq!(
        got,
        vec![
            Contract {
                contract_id: "C-001".into(),
                customer: "株式会社サンプル".into(),
                license_serial: "NEO-1234".into(),
                contacts: vec!["taro@example.co.jp".into(), "hanako@example.co.jp".into()],
                domains: vec!["example.co.jp".into(), "sample.jp".into()],
                customized: true,
                neo_support: false,
                server_id: "srv-01".into(),
                reminders: true,
            },
            Contract {
                contract_id: "C-002".into(),
                customer: "Other".into(),
                license_serial: "NEO-9".into(),
                contacts: vec!["a@b.example".into()],
                domains: vec![],
                customized: false,
                neo_support: true,
                server_id: String::new(),
                reminders: true,
            },
        ]
    );
}

#[test]
fn bom_columns_in_any_order_and_blank_rows() {
    let text = "\u{feff}Customer,contract_id,contacts,license_serial,customized,neo_support\n\
                \n\
                X,C-1,x@example.jp,S,no,no\n\
                ,,,,,\n";
    let read = read_contracts("contracts.csv", text.as_bytes());
    assert_eq!(read.records.len(), 1);
    assert_eq!(read.records[0].line, 3);
    let got = read.finish().expect("valid");
    assert_eq!(got[0].contract_id, "C-1");
    assert_eq!(got[0].domains, Vec::<String>::new());
    assert_eq!(got[0].server_id, "");
}

#[test]
fn bad_boolean_is_reported_like_the_design_says() {
    let e = errors(contracts(
        "C-1,X,S,x@example.jp,,yes,no,\nC-2,Y,S,y@example.jp,,maybe,no,\n",
    ));
    assert_eq!(
        e,
        vec![r#"contracts.csv:3: column 'customized': expected yes or no, got "maybe""#]
    );
}

#[test]
fn every_problem_is_reported() {
    let e = errors(contracts(
        "C-1,,S,not-an-address,,1,true,\n\
         C 2,X,,,example,yes,no,\n\
         C-3,X,S,a@example.jp;b@@example.jp;c@localhost,exa_mple.jp,yes,no,\n",
    ));
    assert_eq!(
        e,
        vec![
            "contracts.csv:2: column 'customer': is empty",
            r#"contracts.csv:2: column 'contacts': expected e-mail addresses separated by ';', got "not-an-address""#,
            r#"contracts.csv:2: column 'customized': expected yes or no, got "1""#,
            r#"contracts.csv:2: column 'neo_support': expected yes or no, got "true""#,
            r#"contracts.csv:3: column 'contract_id': contract id "C 2" contains whitespace"#,
            "contracts.csv:3: column 'license_serial': is empty",
            "contracts.csv:3: column 'contacts': needs at least one entry",
            r#"contracts.csv:3: column 'domains': expected domains separated by ';', got "example" (needs a dot)"#,
            r#"contracts.csv:4: column 'contacts': expected e-mail addresses separated by ';', got "b@@example.jp""#,
            r#"contracts.csv:4: column 'contacts': expected e-mail addresses separated by ';', got "c@localhost""#,
            r#"contracts.csv:4: column 'domains': expected domains separated by ';', got "exa_mple.jp" (not a valid host name)"#,
        ]
    );
}

#[test]
fn duplicate_contract_ids() {
    let e = errors(contracts(
        "C-1,X,S,x@example.jp,,yes,no,\nC-2,X,S,x@example.jp,,yes,no,\nc-1,Y,S,y@example.jp,,yes,no,\n",
    ));
    assert_eq!(
        e,
        vec![
            r#"contracts.csv:4: column 'contract_id': duplicate contract_id "c-1" (already on line 2)"#
        ]
    );
}

#[test]
fn the_reminders_column_is_optional_yes_by_default_and_checked() {
    let read = |csv: &str| parse_contracts("contracts.csv", csv.as_bytes());
    let without = read("contract_id,customer,license_serial,contacts,customized,neo_support\nC-1,X,S,x@example.jp,no,no\n")
        .unwrap();
    assert!(without[0].reminders);
    let with = read(
        "contract_id,customer,license_serial,contacts,customized,neo_support,reminders\n\
         C-1,X,S,x@example.jp,no,no,no\nC-2,X,S2,y@example.jp,no,no,\nC-3,X,S3,z@example.jp,no,no,YES\n",
    )
    .unwrap();
    let flags: Vec<bool> = with.iter().map(|c| c.reminders).collect();
    assert_eq!(flags, [false, true, true]);
    let e = errors(read(
        "contract_id,customer,license_serial,contacts,customized,neo_support,reminders\nC-1,X,S,x@example.jp,no,no,maybe\n",
    ));
    assert_eq!(
        e,
        vec![r#"contracts.csv:2: column 'reminders': expected yes or no, got "maybe""#]
    );
}

#[test]
fn wrong_header() {
    let e = errors(parse_contracts(
        "contracts.csv",
        "id,customer,license_serial,contacts,domains,customized,neo_support,server_id,notes\n"
            .as_bytes(),
    ));
    assert_eq!(
        e,
        vec![
            "contracts.csv:1: column 'id': unknown column (expected columns: contract_id,customer,license_serial,contacts,domains,customized,neo_support,server_id,reminders)",
            "contracts.csv:1: column 'notes': unknown column (expected columns: contract_id,customer,license_serial,contacts,domains,customized,neo_support,server_id,reminders)",
            "contracts.csv:1: column 'contract_id': missing column",
        ]
    );
    let e = errors(parse_contracts(
        "contracts.csv",
        "contract_id,customer,customer\n".as_bytes(),
    ));
    assert!(
        e.contains(
            &"contracts.csv:1: column 'customer': column appears more than once".to_string()
        ),
        "{e:?}"
    );
    assert!(
        e.contains(&"contracts.csv:1: column 'contacts': missing column".to_string()),
        "{e:?}"
    );
    // The orders header given to the contracts parser.
    let e = errors(parse_contracts("contracts.csv", ORDERS_HEADER.as_bytes()));
    assert!(
        e.iter()
            .any(|m| m.contains("column 'kind': unknown column")),
        "{e:?}"
    );
}

#[test]
fn field_count_mismatch() {
    let e = errors(contracts(
        "C-1,X,S,x@example.jp,,yes,no,,extra\nC-2,X,S\nC-3,X,S,x@example.jp,,yes,no,\n",
    ));
    assert_eq!(
        e,
        vec![
            "contracts.csv:2: 9 fields, but the header has 8",
            "contracts.csv:3: 3 fields, but the header has 8",
        ]
    );
}

#[test]
fn empty_and_garbage_input_never_panics() {
    let e = errors(parse_contracts("contracts.csv", &b""[..]));
    assert_eq!(e.len(), 1);
    assert!(
        e[0].starts_with("contracts.csv:1: the file is empty"),
        "{e:?}"
    );
    let e = errors(parse_contracts("contracts.csv", &b"\xEF\xBB\xBF"[..]));
    assert!(e[0].contains("the file is empty"), "{e:?}");

    // Not UTF-8 (Shift_JIS 株式会社 on line 2).
    let mut sjis = CONTRACTS_HEADER.as_bytes().to_vec();
    sjis.extend_from_slice(b"C-1,\x8a\x94\x8e\xae\x89\xef\x8e\xd0,S,x@example.jp,,yes,no,\n");
    let e = errors(parse_contracts("contracts.csv", sjis.as_slice()));
    assert_eq!(e.len(), 1);
    assert!(
        e[0].starts_with("contracts.csv:2: not valid UTF-8"),
        "{e:?}"
    );

    // Binary noise: a clear header error, and nothing else.
    let noise: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let e = errors(parse_contracts("contracts.csv", noise.as_slice()));
    assert_eq!(e.len(), 1, "{e:?}");
    let ascii_noise = "\0\0\x01PK\x03\x04,,\"\"\"\n\0\0";
    let e = errors(parse_orders("orders.csv", ascii_noise.as_bytes()));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].contains("not the expected header"), "{e:?}");

    // Right header, garbage rows: each row reported, no panic.
    let mut text = ORDERS_HEADER.to_string();
    text.push_str("a\0b,c,d,e,f,g\n\"unterminated,x\n");
    let e = errors(parse_orders("orders.csv", text.as_bytes()));
    assert!(e.iter().any(|m| m.contains("control character")), "{e:?}");
}

#[test]
fn long_values_are_shortened_in_messages() {
    let long = "x".repeat(500);
    let e = errors(contracts(&format!("C-1,X,S,x@example.jp,,{long},no,\n")));
    assert!(e[0].len() < 200, "{}", e[0]);
    assert!(e[0].ends_with("\"…"), "{}", e[0]);
}

#[test]
fn io_error_is_reported() {
    struct Broken;
    impl Read for Broken {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("disk on fire"))
        }
    }
    let e = errors(parse_orders("orders.csv", Broken));
    assert_eq!(e, vec!["orders.csv: cannot read the file: disk on fire"]);
}

#[test]
fn good_orders_file() {
    let got = orders(
        "C-1,initial,2026-03-15,2026-03-01,,\n\
         C-1,Renewal,2027-02-01,,2027-04-01,2028-03-31\n\
         C-2,recontinuation,2026-04-01,,,\n",
    )
    .expect("valid");
    assert_eq!(got.len(), 3);
    assert_eq!(
        got[0],
        OrderRecord {
            contract_id: "C-1".into(),
            order: Order {
                kind: OrderKind::Initial,
                received: d("2026-03-15"),
                purchased: Some(d("2026-03-01")),
                certificate: None,
            },
        }
    );
    assert_eq!(
        got[1].order.certificate,
        Some(SupportPeriod {
            start: d("2027-04-01"),
            end: d("2028-03-31")
        })
    );
    assert_eq!(got[2].order.kind, OrderKind::Recontinuation);
    assert_eq!(lined_orders("C-1,initial,2026-03-15,,,\n")[0].line, 2);
}

#[test]
fn orders_without_optional_columns() {
    let got = parse_orders(
        "orders.csv",
        "kind,contract_id,received\ninitial,C-1,2026-03-15\n".as_bytes(),
    )
    .expect("valid");
    assert_eq!(got[0].order.purchased, None);
    assert_eq!(got[0].order.certificate, None);
}

#[test]
fn bad_order_fields() {
    let e = errors(orders(
        "C-1,first,2026-03-15,,,\n\
         C-1,initial,2026/03/15,,,\n\
         C-1,initial,2026-02-30,2026-3-1,,\n\
         C-1,renewal,2026-03-15,2026-03-01,,\n\
         C-1,renewal,2026-03-15,,2026-04-01,\n\
         C-1,renewal,2026-03-15,,,2027-03-31\n\
         C-1,renewal,2026-03-15,,2027-04-01,2027-03-31\n\
         ,renewal,,,,\n",
    ));
    assert_eq!(
        e,
        vec![
            r#"orders.csv:2: column 'kind': expected initial, renewal or recontinuation, got "first""#,
            r#"orders.csv:3: column 'received': expected a date YYYY-MM-DD, got "2026/03/15""#,
            r#"orders.csv:4: column 'received': no such date "2026-02-30""#,
            r#"orders.csv:4: column 'purchased': expected a date YYYY-MM-DD, got "2026-3-1""#,
            "orders.csv:5: column 'purchased': a purchase date belongs on the initial order only, not on a renewal order",
            "orders.csv:6: column 'end': is empty but start is set; a certificate period needs both",
            "orders.csv:7: column 'start': is empty but end is set; a certificate period needs both",
            "orders.csv:8: column 'end': certificate period ends on 2027-03-31, before it starts on 2027-04-01",
            "orders.csv:9: column 'contract_id': is empty",
            "orders.csv:9: column 'received': is empty; expected a date YYYY-MM-DD",
        ]
    );
}

#[test]
fn periods_by_contract_computes_each_contract() {
    let records = lined_orders(
        "C-1,initial,2026-03-15,,,\n\
         C-2,initial,2026-04-01,,,\n\
         C-1,renewal,2026-12-01,,,\n",
    );
    let periods = periods_by_contract(&records, "orders.csv").expect("consistent");
    assert_eq!(periods.len(), 2);
    let c1: Vec<_> = periods["C-1"].periods.iter().map(|p| p.period).collect();
    assert_eq!(
        c1,
        vec![
            SupportPeriod {
                start: d("2026-04-01"),
                end: d("2027-03-31")
            },
            SupportPeriod {
                start: d("2027-04-01"),
                end: d("2028-03-31")
            },
        ]
    );
}

#[test]
fn r11_contradiction_names_the_line() {
    let records = lined_orders(
        "C-1,initial,2024-03-15,,,\n\
         C-2,initial,2026-04-01,,,\n\
         C-1,renewal,2026-04-01,,,\n\
         C-2,recontinuation,2026-05-01,,,\n\
         C-3,renewal,2026-05-01,,,\n",
    );
    let e = errors(periods_by_contract(&records, "orders.csv"));
    assert_eq!(e.len(), 3, "{e:?}");
    assert!(
        e[0].starts_with(
            "orders.csv:4: column 'kind': contract \"C-1\": renewal received on 2026-04-01 is a year or more after the support period ended on 2025-03-31"
        ),
        "{e:?}"
    );
    assert!(e[0].contains("再継続年間サポート"), "{e:?}");
    assert!(
        e[1].starts_with(
            "orders.csv:5: column 'kind': contract \"C-2\": recontinuation received on 2026-05-01"
        ),
        "{e:?}"
    );
    assert!(
        e[2].starts_with("orders.csv:6: column 'kind': contract \"C-3\": the first order of a contract (by received date) must be an initial order, not renewal"),
        "{e:?}"
    );
}

#[test]
fn certificate_through_csv_chains() {
    let records = lined_orders(
        "C-1,initial,2026-03-15,,2026-03-20,2027-03-19\n\
         C-1,renewal,2027-03-01,,,\n",
    );
    let periods = periods_by_contract(&records, "orders.csv").expect("ok");
    let c1 = &periods["C-1"].periods;
    assert!(c1[0].from_certificate);
    assert_eq!(c1[1].period.start, d("2027-03-20"));
}

#[test]
fn unknown_contracts_in_orders() {
    let records = lined_orders(
        "C-1,initial,2026-03-15,,,\nc-2,initial,2026-03-15,,,\nC-9,initial,2026-03-15,,,\n",
    );
    let known = vec!["C-1".to_string(), "C-2".to_string()];
    let e = errors(check_contracts_known(&records, &known, "orders.csv"));
    assert_eq!(
        e,
        vec![
            r#"orders.csv:3: column 'contract_id': no contract "c-2" is known (did you mean "C-2"?)"#,
            r#"orders.csv:4: column 'contract_id': no contract "C-9" is known"#,
        ]
    );
}

fn import(
    contracts_body: &str,
    orders_body: &str,
    known: &[&str],
) -> Result<ImportFiles, Diagnostics> {
    let contracts = format!("{CONTRACTS_HEADER}{contracts_body}");
    let orders = format!("{ORDERS_HEADER}{orders_body}");
    let known: Vec<String> = known.iter().map(|k| k.to_string()).collect();
    check_import(
        "contracts.csv",
        contracts.as_bytes(),
        Some(("orders.csv", &mut orders.as_bytes())),
        &known,
    )
}

#[test]
fn import_reports_every_kind_of_problem_in_file_and_line_order() {
    let e = errors(import(
        "C-1,良品株式会社,S-1,a@good.example.jp,,no,no,\n\
         C-2,株式会社ワルイ,S-2,b@bad.example.jp,,maybe,no,\n",
        // Line 3: R11; line 4: unknown contract; line 5: a field error.
        "C-1,initial,2024-03-15,,,\n\
         C-1,renewal,2026-04-01,,,\n\
         C-9,initial,2026-03-15,,,\n\
         C-2,bogus,2026-03-15,,,\n",
        &[],
    ));
    let places: Vec<&str> = e
        .iter()
        .map(|l| l.split(": ").next().unwrap_or(""))
        .collect();
    assert_eq!(
        places,
        [
            "contracts.csv:3",
            "orders.csv:3",
            "orders.csv:4",
            "orders.csv:5"
        ],
        "{e:#?}"
    );
    assert!(e[1].contains("contract \"C-1\": renewal"), "{e:#?}");
    assert!(e[2].contains("no contract \"C-9\" is known"), "{e:#?}");
}

#[test]
fn import_does_not_guess_past_a_rejected_row() {
    // C-2's contract row is rejected but still names C-2; C-3's 2025 renewal is rejected, so
    // its 2026 renewal (fine after it) is not judged without it; C-4's renewal row has a
    // field too many, and its id still counts.
    let e = errors(import(
        "C-1,良品株式会社,S-1,a@good.example.jp,,no,no,\n\
         C-2,株式会社ワルイ,S-2,b@bad.example.jp,,maybe,no,\n",
        "C-2,initial,2024-03-15,,,\n\
         C-3,initial,2024-03-15,,,\n\
         C-3,renewal,2025-02-30,,,\n\
         C-3,renewal,2026-04-05,,,\n\
         C-4,initial,2024-03-15,,,\n\
         C-4,renewal,2025-03-01,,,,\n\
         C-4,renewal,2026-04-05,,,\n",
        &["C-3", "C-4"],
    ));
    let places: Vec<&str> = e
        .iter()
        .map(|l| l.split(": ").next().unwrap_or(""))
        .collect();
    assert_eq!(
        places,
        ["contracts.csv:3", "orders.csv:4", "orders.csv:7"],
        "{e:#?}"
    );
}

#[test]
fn import_with_an_unreadable_contracts_file_does_not_call_every_order_unknown() {
    let e = errors(check_import(
        "contracts.csv",
        "id,name\nC-1,x\n".as_bytes(),
        Some((
            "orders.csv",
            &mut format!("{ORDERS_HEADER}C-1,initial,2024-03-15,,,\n").as_bytes(),
        )),
        &[],
    ));
    assert!(e.iter().all(|l| l.starts_with("contracts.csv:1")), "{e:#?}");
}

#[test]
fn import_of_good_files_gives_both() {
    let got = import(
        "C-1,良品株式会社,S-1,a@good.example.jp,,no,no,\n",
        "C-1,initial,2024-03-15,,,\nC-7,initial,2024-03-15,,,\n",
        &["C-7"],
    )
    .expect("valid");
    assert_eq!(got.contracts.len(), 1);
    assert_eq!(got.orders.map(|o| o.len()), Some(2));
    let alone = check_import(
        "contracts.csv",
        format!("{CONTRACTS_HEADER}C-1,良品株式会社,S-1,a@good.example.jp,,no,no,\n").as_bytes(),
        None,
        &[],
    )
    .expect("valid");
    assert_eq!(alone.orders, None);
}

#[test]
fn crlf_and_blank_lines_keep_line_numbers() {
    let text = "\r\ncontract_id,kind,received\r\n\r\n\r\nC-1,initial,2026-03-15\r\nC-1,oops,2026-03-15\r\n";
    let e = errors(parse_orders("orders.csv", text.as_bytes()));
    assert_eq!(
        e,
        vec![
            r#"orders.csv:6: column 'kind': expected initial, renewal or recontinuation, got "oops""#
        ]
    );
}

#[test]
fn quoted_fields_and_line_numbers() {
    // A quoted field spanning two lines is rejected (control character), and the next
    // record's line number still counts physical lines.
    let e = errors(contracts(
        "\"C-1\",\"X, Inc.\",S,x@example.jp,,yes,no,\n\"C-2\",\"two\nlines\",S,x@example.jp,,yes,no,\nC-3,X,S,bad,,yes,no,\n",
    ));
    assert_eq!(
        e,
        vec![
            "contracts.csv:3: column 'customer': contains a control character",
            r#"contracts.csv:5: column 'contacts': expected e-mail addresses separated by ';', got "bad""#,
        ]
    );
    let ok = contracts("\"C-1\",\"X, Inc.\",S,x@example.jp,,yes,no,\n").expect("ok");
    assert_eq!(ok[0].customer, "X, Inc.");
}
