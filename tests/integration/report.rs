//! `madoguchi report --month` (issue 13 item 4): a desk built by the real binary from the demo
//! data on a Maildir with a fixed clock (`run --once --now T`), staff replies for first
//! responses, reminders inserted as the reminder code writes them; then the report as
//! text, `--json` and `--html`, the HTML rendered in headless Chromium
//! (`tests/support/render_report.py`): a screenshot, no console messages, no scripts, a hostile
//! customer name shown as text, and every chart's numbers equal to `--json`'s.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::smtp_sink::PYTHON;
use crate::util::{Desk, arg, demo_fixture, jst, repo_path};

const CHROMIUM: &str = "/usr/bin/chromium";
const HOSTILE: &str = "<script>alert(1)</script>";

const CONFIG: &str = r#"[desk]
address = "support@example.co.jp"
ticket_prefix = "NEO-DS"
staff = ["tanaka@example.co.jp"]
notify = ["support-team@example.co.jp"]
form_senders = ["form@example.co.jp", "license-form@example.co.jp"]

[staff]
authentication = "authentication-results"
trusted_authserv_ids = ["mx.example.co.jp"]

[storage]
database = "var/db.sqlite3"
files = "var/files"

[intake]
kind = "maildir"
maildir = "var/inbox"

[outbound]
kind = "file"
dir = "var/outbox"

[license]
signing_key_file = "var/license.key"

# The reminder rows are written by the test (below), so the figures are known exactly; the
# desk's own reminders are tests/integration/reminders.rs.
[reminders]
renewal_days = []
lapsed = false
recontinuation_days = 0
digest = false

[sla]
first_response = 0
next_response = 0
"#;

/// Delivers `raw` into the desk's Maildir as an MDA would at `at`.
fn deliver(desk: &Desk, name: &str, raw: &[u8], at: DateTime<Utc>) {
    let inbox = desk.dir().join("var/inbox");
    for sub in ["new", "cur", "tmp"] {
        fs::create_dir_all(inbox.join(sub)).expect("maildir");
    }
    let path = inbox.join("new").join(name);
    fs::write(&path, raw).expect("deliver");
    fs::File::options()
        .write(true)
        .open(&path)
        .and_then(|f| f.set_modified(at.into()))
        .expect("date the delivery");
}

fn pass(desk: &Desk, at: DateTime<Utc>) {
    let now = at.to_rfc3339();
    desk.run(&["run", "--once", "--now", &now]).assert_success();
}

/// The staff notifications in the outbox, in the order they were queued.
fn notices(desk: &Desk) -> Vec<madoguchi::core::inbound::InboundMail> {
    let dir = desk.dir().join("var/outbox");
    let mut files: Vec<_> = fs::read_dir(&dir)
        .expect("outbox")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    files
        .iter()
        .filter_map(|p| fs::read(p).ok())
        .filter(|raw| {
            String::from_utf8_lossy(raw)
                .lines()
                .any(|l| l == "X-Envelope-To: <support-team@example.co.jp>")
        })
        .map(|raw| madoguchi::mail::read_message(&raw, &[]).mail)
        .collect()
}

/// An authenticated staff reply to `notice`.
fn staff_reply(notice: &madoguchi::core::inbound::InboundMail, n: u32) -> Vec<u8> {
    let id = notice.message_id.clone().expect("Message-ID");
    format!(
        "From: Tanaka <tanaka@example.co.jp>\r\nTo: support@example.co.jp\r\nSubject: Re: {}\r\n\
         Message-ID: <report-staff-{n}@example.co.jp>\r\nIn-Reply-To: <{id}>\r\n\
         References: <{id}>\r\n\
         Authentication-Results: mx.example.co.jp; dkim=pass header.d=example.co.jp\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n\
         お問い合わせありがとうございます。確認いたしました。\r\n",
        notice.subject
    )
    .into_bytes()
}

/// Runs `sql` on the desk's database with Python's sqlite3 (the tests never name the store's
/// SQLite library): how rows the reminder code will write are put there.
fn sql(desk: &Desk, sql: &str) {
    let out = Command::new(PYTHON)
        .args([
            "-c",
            "import sqlite3, sys\n\
             c = sqlite3.connect(sys.argv[1])\nc.executescript(sys.argv[2])\nc.commit()",
        ])
        .arg(desk.dir().join("var/db.sqlite3"))
        .arg(sql)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The demo desk, one extra contract whose customer name is markup, a month of mail.
fn november_desk() -> Desk {
    let desk = Desk::with_config(CONFIG);
    fs::create_dir_all(desk.dir().join("var")).expect("var");
    desk.run(&[
        "license",
        "keygen",
        arg(&desk.dir().join("var/license.key")),
    ])
    .assert_success();
    let contracts = format!(
        "{}C-9001,{HOSTILE},DNDS-2025-09001,kato@omega.example.jp,omega.example.jp,no,no,HID-9001\n",
        fs::read_to_string(demo_fixture("contracts.csv")).expect("contracts")
    );
    let orders = format!(
        "{}C-9001,initial,2025-11-10,,,\nC-9001,renewal,2026-11-20,,,\n",
        fs::read_to_string(demo_fixture("orders.csv")).expect("orders")
    );
    let contracts = desk.write("contracts.csv", &contracts);
    let orders = desk.write("orders.csv", &orders);
    desk.json(&[
        "contracts",
        "import",
        arg(&contracts),
        "--orders",
        arg(&orders),
    ]);

    // The demo's mail, delivered when it was sent (its Date header), like `madoguchi demo`.
    let mut names: Vec<_> = fs::read_dir(demo_fixture("inbox"))
        .expect("demo inbox")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    names.sort();
    let first_pass = jst(2026, 11, 24, 20, 0);
    let mut later = Vec::new();
    for (i, path) in names.iter().enumerate() {
        let raw = fs::read(path).expect("demo mail");
        let sent = madoguchi::mail::read_message(&raw, &[])
            .mail
            .date
            .map_or(first_pass, |d| d.with_timezone(&Utc));
        if sent <= first_pass {
            deliver(&desk, &format!("{i}.demo"), &raw, sent);
        } else {
            later.push((i, raw, sent));
        }
    }
    pass(&desk, first_pass);
    for (i, raw, sent) in later {
        deliver(&desk, &format!("{i}.demo"), &raw, sent);
    }
    let kato = "From: Kato <kato@omega.example.jp>\r\nTo: support@example.co.jp\r\n\
                Subject: =?UTF-8?B?5ZCM5pyf44Ko44Op44O8?=\r\nMessage-ID: <k1@omega.example.jp>\r\n\
                Date: Wed, 25 Nov 2026 09:20:00 +0900\r\nMIME-Version: 1.0\r\n\
                Content-Type: text/plain; charset=UTF-8\r\n\r\n同期が止まります。\r\n";
    deliver(&desk, "kato.eml", kato.as_bytes(), jst(2026, 11, 25, 9, 20));
    pass(&desk, jst(2026, 11, 25, 9, 30));

    // Staff answer the first two notifications, at 10:00 and 11:00.
    let notices = notices(&desk);
    assert!(notices.len() >= 2, "notifications: {}", notices.len());
    for (n, hour) in [(0u32, 10u32), (1, 11)] {
        let at = jst(2026, 11, 25, hour, 0);
        deliver(
            &desk,
            &format!("staff{n}.eml"),
            &staff_reply(&notices[n as usize], n),
            at,
        );
        pass(&desk, jst(2026, 11, 25, hour, 1));
    }

    // Reminders as the reminder code records them (migration 12). C-9001 renewed after its
    // reminder; C-1003 did not. 2026-10-31T15:30Z is 1 November in Tokyo; 2026-09-30T15:00Z
    // is 1 October there.
    sql(
        &desk,
        "INSERT INTO reminders (key, kind, contract_id, period_end, days, nominal, queued_at,
             outbox) VALUES
           ('renewal:C-9001:2026-11-30:30', 'renewal', 'C-9001', '2026-11-30', 30,
            '2026-10-31', '2026-11-02T00:00:00.000000Z',
            (SELECT MIN(id) FROM outbox WHERE state = 'sent')),
           ('renewal:C-1003:2026-12-31:60', 'renewal', 'C-1003', '2026-12-31', 60,
            '2026-11-01', '2026-11-16T00:00:00.000000Z', NULL);
         INSERT INTO reminders (key, kind, contract_id, period_end, nominal, queued_at)
           VALUES ('lapsed:C-1003:2026-09-30', 'lapsed', 'C-1003', '2026-09-30', '2026-10-01',
                   '2026-09-30T15:00:00.000000Z');
         INSERT INTO reminders (key, kind, day, nominal, queued_at)
           VALUES ('digest:2026-11-01', 'digest', '2026-11-01', '2026-11-01',
                   '2026-10-31T15:30:00.000000Z');",
    );
    desk
}

/// What the charts must show, from `--json`: chart → key → number as text.
fn expected_charts(report: &Value) -> BTreeMap<String, BTreeMap<String, String>> {
    let list = |v: &Value| v.as_array().cloned().unwrap_or_default();
    let text = |v: &Value| match v {
        Value::Null => String::new(),
        Value::Number(n) if n.is_f64() => format!("{:.1}", n.as_f64().unwrap_or(0.0)),
        other => other.to_string(),
    };
    let pairs = |items: Vec<Value>, key: &str, value: &str| -> BTreeMap<String, String> {
        items
            .iter()
            .map(|i| (i[key].as_str().unwrap_or("").to_string(), text(&i[value])))
            .collect()
    };
    let fields = |v: &Value, keys: &[&str]| -> BTreeMap<String, String> {
        keys.iter().map(|k| (k.to_string(), text(&v[k]))).collect()
    };
    let mut charts = BTreeMap::new();
    let f = &report["first_response"];
    charts.insert(
        "summary".to_string(),
        [
            ("tickets", text(&report["tickets"]["total"])),
            ("median_minutes", text(&f["median_minutes"])),
            ("p90_minutes", text(&f["p90_minutes"])),
            (
                "on_time_percent",
                text(&report["license_keys"]["on_time_percent"]),
            ),
            ("withheld", text(&report["withheld"]["total"])),
            ("renewed", text(&report["reminders"]["renewed"])),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect(),
    );
    let t = &report["tickets"];
    charts.insert(
        "categories".into(),
        pairs(list(&t["by_category"]), "category", "count"),
    );
    // Fewer contracts than the chart's top 15: one bar each (no `_others`).
    charts.insert(
        "contracts".into(),
        pairs(list(&t["by_contract"]), "contract_id", "count"),
    );
    charts.insert(
        "first_response".into(),
        pairs(list(&f["distribution"]), "bucket", "count"),
    );
    charts.insert(
        "license_keys".into(),
        fields(
            &report["license_keys"],
            &["on_time", "late", "unsent", "refused"],
        ),
    );
    charts.insert(
        "withheld".into(),
        pairs(list(&report["withheld"]["by_reason"]), "reason", "count"),
    );
    let r = &report["reminders"];
    charts.insert(
        "reminders".into(),
        pairs(list(&r["by_kind"]), "kind", "queued"),
    );
    charts.insert(
        "reminders_sent".into(),
        pairs(list(&r["by_kind"]), "kind", "sent"),
    );
    charts.insert(
        "renewals".into(),
        fields(r, &["contracts_reminded", "renewed"]),
    );
    charts
}

fn render(html: &Path, out_dir: &Path) -> Value {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: scripts/test installs Debian's chromium package"
    );
    let out = Command::new(PYTHON)
        .arg(repo_path("tests/support/render_report.py"))
        .args([Path::new(CHROMIUM), html, out_dir])
        .output()
        .expect("render_report.py");
    assert!(
        out.status.success(),
        "render_report.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("render_report.py prints JSON")
}

fn count_of(items: &Value, key: &str, name: &str) -> u64 {
    items
        .as_array()
        .and_then(|a| a.iter().find(|i| i[key] == name))
        .and_then(|i| i["count"].as_u64())
        .unwrap_or_else(|| panic!("no {name} in {items:#}"))
}

#[test]
fn the_monthly_report_in_text_json_and_html_rendered_by_chromium() {
    let desk = november_desk();
    let report = desk.json(&["report", "--month", "2026-11"]);

    // Tickets: the demo's seven and C-9001's, by category and contract.
    let t = &report["tickets"];
    assert_eq!(t["total"], 8, "{report:#}");
    assert_eq!(count_of(&t["by_category"], "category", "fault"), 3);
    assert_eq!(
        count_of(&t["by_category"], "category", "license_reissue"),
        1
    );
    assert_eq!(count_of(&t["by_category"], "category", "base_product"), 1);
    let hostile = t["by_contract"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["contract_id"] == "C-9001"))
        .expect("C-9001");
    assert_eq!(hostile["customer"], HOSTILE);
    assert_eq!(hostile["count"], 1);

    // First response: the two tickets staff answered.
    let f = &report["first_response"];
    assert_eq!(
        (f["answered"].as_u64(), f["unanswered"].as_u64()),
        (Some(2), Some(6))
    );
    // #1 accepted Tue 09:00, answered Wed 10:00: 450 + 60 business minutes; #2 accepted Tue
    // 13:00 (lunch), answered Wed 11:00: 270 + 120. Nearest rank: the median is the lower.
    assert_eq!(f["median_minutes"], 390, "{f:#}");
    assert_eq!(f["p90_minutes"], 510, "{f:#}");
    let bucketed: u64 = f["distribution"]
        .as_array()
        .expect("distribution")
        .iter()
        .filter_map(|b| b["count"].as_u64())
        .sum();
    assert_eq!(bucketed, 2);

    // R8: the demo's application, due and sent on 2026-11-25.
    let k = &report["license_keys"];
    assert_eq!(
        (k["due"].as_u64(), k["on_time"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(k["on_time_percent"], 100.0);

    // The vacation notice and the bounce got no reply.
    let w = &report["withheld"];
    assert_eq!(w["total"], 2);
    assert_eq!(count_of(&w["by_reason"], "reason", "auto_submitted"), 1);
    assert_eq!(count_of(&w["by_reason"], "reason", "bounce"), 1);

    // Reminders: two renewal notices and a digest in November (Tokyo); one contract renewed.
    let r = &report["reminders"];
    let kind = |name: &str| {
        r["by_kind"]
            .as_array()
            .and_then(|a| a.iter().find(|k| k["kind"] == name))
            .map(|k| (k["queued"].as_u64(), k["sent"].as_u64()))
            .expect("kind")
    };
    assert_eq!(kind("renewal"), (Some(2), Some(1)));
    assert_eq!(kind("digest"), (Some(1), Some(0)));
    assert_eq!(kind("lapsed"), (Some(0), Some(0)));
    assert_eq!(
        (r["contracts_reminded"].as_u64(), r["renewed"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(r["contracts"][1]["contract_id"], "C-9001");
    assert_eq!(r["contracts"][1]["renewed_on"], "2026-11-20");
    let october = desk.json(&["report", "--month", "2026-10"]);
    assert_eq!(october["tickets"]["total"], 0);
    assert_eq!(
        october["reminders"]["by_kind"][1]["queued"], 1,
        "{october:#}"
    );

    // Human text.
    desk.run(&["report", "--month", "2026-11"])
        .assert_success()
        .assert_stdout_has(&[
            "monthly report 2026-11 (2026-11-01 to 2026-11-30, Asia/Tokyo)",
            "tickets accepted: 8",
            &format!("C-9001 {HOSTILE}"),
            "license keys (R8): 1 of 1 sent by the due date (100.0%)",
            "renewals that followed: 1 of 2 contract(s) reminded",
        ]);

    // The HTML, with --json on stdout the same document.
    let html = desk.dir().join("report-2026-11.html");
    let with_html = desk.json(&["report", "--month", "2026-11", "--html", arg(&html)]);
    assert_eq!(with_html, report);
    let page = fs::read_to_string(&html).expect("the HTML file");
    assert!(!page.contains(HOSTILE), "the customer name is escaped");
    assert!(!page.contains("<script"), "no scripts");

    let out_dir = tempfile::tempdir().expect("temp dir");
    let seen = render(&html, out_dir.path());
    let shot = &seen["screenshot"];
    assert_eq!(shot["png"], true, "{seen:#}");
    assert_eq!(
        (shot["width"].as_u64(), shot["height"].as_u64()),
        (Some(1200), Some(2000))
    );
    assert!(shot["bytes"].as_u64().unwrap_or(0) > 10_000, "{shot:#}");
    assert_eq!(seen["console"], serde_json::json!([]), "console messages");
    assert_eq!(
        seen["scripts"], 0,
        "the hostile name made no script element"
    );
    let text = seen["text"].as_str().expect("text");
    assert!(text.contains(HOSTILE), "the name is shown as text: {text}");
    assert!(
        text.contains("サポート窓口 月次レポート 2026年11月"),
        "{text}"
    );

    let charts: BTreeMap<String, BTreeMap<String, String>> =
        serde_json::from_value(seen["charts"].clone()).expect("charts");
    assert_eq!(charts, expected_charts(&report));
}

#[test]
fn a_bad_month_or_a_desk_that_never_ran_is_a_clean_error() {
    let desk = Desk::new();
    desk.run(&["report", "--month", "2026-13"])
        .assert_failure()
        .assert_stderr_has(&["not a month: expected YYYY-MM"]);
    desk.run(&["report", "--month", "2026-11"])
        .assert_failure()
        .assert_stderr_has(&["no database at"]);
    assert!(!desk.dir().join("var/db.sqlite3").exists(), "not created");
}
