//! Raw bytes → `mail::read_message_with` → the desk's decision, through `Desk::explain` (the
//! code `mail inspect` and a pass share), against an in-memory store holding the demo's
//! contracts and the tickets its inbox opens, with a fixed config and a fixed clock.
//!
//! Beyond "no panic": the store never refuses the decision; exactly one `RecordMessage`
//! (invariant 3); no mail to the desk itself; no automatic reply to mail the guard calls a
//! machine's (RFC 3834, lists, bounces, loop marker); no `{{placeholder}}` in a mail unless
//! the message itself carried that text. `MADOGUCHI_FUZZ_SHOW=1` prints each outcome.

use std::cell::RefCell;
use std::collections::HashSet;
use std::path::Path;
use std::sync::Mutex;

use chrono::{DateTime, TimeZone, Utc};
use madoguchi::config::Config;
use madoguchi::core::decide::{Decision, Effect};
use madoguchi::core::guard::{Guard, assess};
use madoguchi::core::reply::echo_subject;
use madoguchi::desk::{Desk, PassSummary};
use madoguchi::import::check_import;
use madoguchi::intake::{Ack, Incoming, IntakeError, Source};
use madoguchi::mail::{PARSER_FAILED, ReadMessage};
use madoguchi::store::Store;

const DESK_ADDRESS: &str = "support@example.co.jp";

const CONFIG: &str = r#"
[desk]
address = "support@example.co.jp"
ticket_prefix = "NEO-DS"
staff = ["tanaka@example.co.jp"]
notify = ["support-team@example.co.jp"]
form_senders = ["form@example.co.jp", "license-form@example.co.jp"]

[staff]
authentication = "authentication-results"
trusted_authserv_ids = ["mx.example.co.jp"]

[hours]
company_holidays = ["2026-08-13..2026-08-16", "2026-12-29..2027-01-04"]

[license]
signing_key_file = "var/license.key"
"#;

const CONTRACTS: &str = include_str!("../../fixtures/demo/contracts.csv");
const ORDERS: &str = include_str!("../../fixtures/demo/orders.csv");

/// The demo inbox, recorded (committed) before fuzzing: tickets 1… exist for follow-ups and
/// staff replies to find.
const INBOX: &[&[u8]] = &[
    include_bytes!("../../fixtures/demo/inbox/01-fault-report-iso2022jp.eml"),
    include_bytes!("../../fixtures/demo/inbox/02-operation-question-sjis.eml"),
    include_bytes!("../../fixtures/demo/inbox/03-inquiry-form.eml"),
    include_bytes!("../../fixtures/demo/inbox/04-license-application-form.eml"),
    include_bytes!("../../fixtures/demo/inbox/05-question-expired-contract.eml"),
    include_bytes!("../../fixtures/demo/inbox/06-question-unknown-sender.eml"),
    include_bytes!("../../fixtures/demo/inbox/07-base-product-question.eml"),
    include_bytes!("../../fixtures/demo/inbox/08-vacation-auto-reply.eml"),
    include_bytes!("../../fixtures/demo/inbox/09-bounce-dsn.eml"),
];

/// Tuesday 2026-11-24 10:00 Japan time: the inbox arrives.
fn setup_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 1, 0, 0)
        .single()
        .unwrap_or_default()
}

/// Wednesday 2026-11-25 10:30 Japan time: the fuzzed message arrives and is decided.
fn fuzz_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 1, 30, 0)
        .single()
        .unwrap_or_default()
}

/// A source that hands out the demo inbox once.
struct Inbox(Vec<Incoming>);

impl Source for Inbox {
    fn name(&self) -> String {
        "fuzz:inbox".into()
    }
    async fn fetch(&mut self, _max: usize) -> Result<Vec<Incoming>, IntakeError> {
        Ok(std::mem::take(&mut self.0))
    }
    async fn ack(&mut self, _message: &Incoming, _ack: Ack) -> Result<(), IntakeError> {
        Ok(())
    }
    async fn wait_for_mail(&mut self, _at_most: std::time::Duration) -> Result<(), IntakeError> {
        Ok(())
    }
}

fn desk() -> Desk {
    let config = Config::from_toml_str(CONFIG, Path::new("/nonexistent/madoguchi-fuzz"))
        .expect("the fuzz config is valid");
    let store = Store::open_in_memory().expect("an in-memory store");
    let mut desk = Desk::with_store(config, store).expect("a desk");
    let mut orders = ORDERS.as_bytes();
    let files = check_import(
        "contracts.csv",
        CONTRACTS.as_bytes(),
        Some(("orders.csv", &mut orders)),
        &[],
    )
    .expect("the demo contracts import");
    desk.store_mut()
        .import_contracts(&files.contracts, files.orders.as_deref())
        .expect("the demo contracts import");
    let batch = INBOX
        .iter()
        .enumerate()
        .map(|(i, raw)| Incoming {
            key: format!("demo-{i}"),
            handle: String::new(),
            raw: raw.to_vec(),
            received_at: setup_time(),
            too_big: None,
        })
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let mut summary = PassSummary::default();
    let mut source = Inbox(Vec::new());
    runtime
        .block_on(desk.intake_batch(&mut source, batch, setup_time(), &mut summary))
        .expect("the demo inbox is recorded");
    desk
}

/// mail-parser panics are caught by `mail::read_message_with` (the message is kept as raw
/// text with a defect): not a crash of the desk. Reported once per place, not aborted on;
/// any other panic aborts as libFuzzer expects.
pub fn install_panic_hook() {
    static SEEN: Mutex<Option<HashSet<String>>> = Mutex::new(None);
    std::panic::set_hook(Box::new(|info| {
        let place = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        if place.contains("mail-parser-") {
            let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
            if seen.get_or_insert_with(HashSet::new).insert(place.clone()) {
                eprintln!("mail_decide: caught mail-parser panic at {place}: {info}");
            }
            return;
        }
        eprintln!("{info}");
        eprintln!("{}", std::backtrace::Backtrace::force_capture());
        std::process::abort();
    }));
}

thread_local! {
    static THE_DESK: RefCell<Option<Desk>> = const { RefCell::new(None) };
}

/// With `MADOGUCHI_FUZZ_PARSER_PANICS=DIR`, inputs on which mail-parser panicked (caught; the
/// message read as raw text) are written to DIR, to report upstream.
fn save_parser_panic(data: &[u8], read: &ReadMessage) {
    let Some(dir) = std::env::var_os("MADOGUCHI_FUZZ_PARSER_PANICS") else {
        return;
    };
    if read
        .mail
        .defects
        .iter()
        .any(|d| d.starts_with(PARSER_FAILED))
    {
        let name = format!("parser-panic-{}-{:016x}", data.len(), fnv(data));
        let _ = std::fs::write(Path::new(&dir).join(name), data);
    }
}

fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn placeholders(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        let after = &rest[open + 2..];
        if let Some(close) = after.find("}}") {
            let name = &after[..close];
            if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                out.push(&rest[open..open + 2 + close + 2]);
            }
        }
        rest = after;
    }
    out
}

fn check(raw: &[u8], read: &ReadMessage, decision: &Decision) {
    let records = decision
        .effects
        .iter()
        .filter(|e| matches!(e, Effect::RecordMessage { .. }))
        .count();
    assert_eq!(records, 1, "RecordMessage effects: {:#?}", decision.effects);

    let machine = matches!(
        assess(&read.mail, &[DESK_ADDRESS.to_string()]),
        Guard::NoReply(_)
    );
    // What the message carried, as the desk may echo it: a subject loses our ticket tags
    // (`echo_subject`), which can join text into a `{{…}}` (found by fuzzing:
    // `{{last_T[NEO-DS#000001]end}}`); that is the customer's text, not an unfilled template.
    let input = format!(
        "{}\n{:?}\n{}",
        String::from_utf8_lossy(raw),
        read.mail,
        echo_subject(&read.mail.subject, "NEO-DS")
    );
    for effect in &decision.effects {
        let Effect::QueueMail {
            mail,
            auto_reply_to,
        } = effect
        else {
            continue;
        };
        assert!(
            !mail.to.iter().any(|t| t.eq_ignore_ascii_case(DESK_ADDRESS)),
            "mail to the desk itself: {mail:#?}"
        );
        if let Some(to) = auto_reply_to {
            assert!(
                !machine,
                "automatic reply to {to} for machine mail: {mail:#?}"
            );
        }
        for p in placeholders(&mail.subject)
            .into_iter()
            .chain(placeholders(&mail.body))
        {
            assert!(
                input.contains(p),
                "unfilled {p} in {:?} / {}",
                mail.subject,
                mail.body
            );
        }
    }
}

pub fn run(data: &[u8]) {
    THE_DESK.with(|cell| {
        let mut cell = cell.borrow_mut();
        let desk = cell.get_or_insert_with(desk);
        let (read, decision) = desk
            .explain(data.to_vec(), None, fuzz_time(), fuzz_time())
            .expect("the decision never fails on mail");
        check(data, &read, &decision);
        save_parser_panic(data, &read);
        if std::env::var_os("MADOGUCHI_FUZZ_SHOW").is_some() {
            eprintln!("outcome: {:?}", decision.outcome);
        }
    });
}
