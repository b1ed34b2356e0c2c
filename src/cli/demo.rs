//! `madoguchi demo`: a whole desk on the embedded default (Maildir inbox, SQLite, outbox
//! directory) built in a folder, fed the demo contracts and mails from `fixtures/demo`, run
//! once, and shown.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::{Duration, TimeZone, Utc};
use chrono_tz::Asia::Tokyo;
use madoguchi::config::Config;
use madoguchi::desk::{Desk, PassSummary};
use madoguchi::import::check_import;
use madoguchi::mail::read_message;

use super::Output;
use super::desk::{run_pass, summary_text};

const DEMO_CONFIG: &str = r#"# madoguchi demo desk: the embedded default (Maildir + SQLite + outbox directory).
[desk]
address = "support@example.co.jp"
ticket_prefix = "NEO-DS"
staff = ["tanaka@example.co.jp"]
notify = ["support-team@example.co.jp"]
form_senders = ["form@example.co.jp", "license-form@example.co.jp"]

[staff]
# Staff mail counts only when the border MTA's Authentication-Results header vouches for it.
authentication = "authentication-results"
trusted_authserv_ids = ["mx.example.co.jp"]

[hours]
company_holidays = ["2026-08-13..2026-08-16", "2026-12-29..2027-01-04"]

[storage]
database = "var/madoguchi.sqlite3"
files = "var/files"

[intake]
kind = "maildir"
maildir = "var/inbox"

[outbound]
kind = "file"
dir = "var/outbox"

[license]
# License keys (R7/R8) signed with the demo's own key, made by the demo as
# `madoguchi license keygen var/license.key` would.
signing_key_file = "var/license.key"
"#;

/// The demo's passes, in Japan time: the evening of Tuesday 2026-11-24 (the license
/// application came at 17:05, after the cutoff: its key is due the next business day),
/// Wednesday 2026-11-25 12:30, when the key goes out on its due date, and Thursday 09:00, the
/// first opening of the next day: the morning digest, staff reminders on tickets waiting more
/// than 8 business hours, and C-1003's lapse notice (its support ended 2026-09-30; overdue
/// since the desk never ran then, it goes at the first opening) (fixtures/demo/README.md).
const PASSES: [(u32, u32, u32); 3] = [(24, 20, 0), (25, 12, 30), (26, 9, 0)];

// The demo data is compiled in, so an installed binary can give the tour without the sources.
const CONTRACTS_CSV: &str = include_str!("../../fixtures/demo/contracts.csv");
const ORDERS_CSV: &str = include_str!("../../fixtures/demo/orders.csv");
const MAILS: &[(&str, &[u8])] = &[
    (
        "01-fault-report-iso2022jp.eml",
        include_bytes!("../../fixtures/demo/inbox/01-fault-report-iso2022jp.eml"),
    ),
    (
        "02-operation-question-sjis.eml",
        include_bytes!("../../fixtures/demo/inbox/02-operation-question-sjis.eml"),
    ),
    (
        "03-inquiry-form.eml",
        include_bytes!("../../fixtures/demo/inbox/03-inquiry-form.eml"),
    ),
    (
        "04-license-application-form.eml",
        include_bytes!("../../fixtures/demo/inbox/04-license-application-form.eml"),
    ),
    (
        "05-question-expired-contract.eml",
        include_bytes!("../../fixtures/demo/inbox/05-question-expired-contract.eml"),
    ),
    (
        "06-question-unknown-sender.eml",
        include_bytes!("../../fixtures/demo/inbox/06-question-unknown-sender.eml"),
    ),
    (
        "07-base-product-question.eml",
        include_bytes!("../../fixtures/demo/inbox/07-base-product-question.eml"),
    ),
    (
        "08-vacation-auto-reply.eml",
        include_bytes!("../../fixtures/demo/inbox/08-vacation-auto-reply.eml"),
    ),
    (
        "09-bounce-dsn.eml",
        include_bytes!("../../fixtures/demo/inbox/09-bounce-dsn.eml"),
    ),
];

/// Written into a directory the demo built; only such a directory is rebuilt without `--force`.
pub const MARKER: &str = ".madoguchi-demo";

/// Makes `dir` the demo's: creates it when missing, takes it when empty or marked by an earlier
/// demo, and refuses anything else (an admin's desk directory with its config and database)
/// unless `force`. Marks it before anything in it is touched.
fn claim_dir(dir: &Path, force: bool) -> anyhow::Result<()> {
    match std::fs::read_dir(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        Err(e) => {
            return Err(e).with_context(|| format!("cannot use {} for the demo", dir.display()));
        }
        Ok(mut entries) => {
            let empty = entries.next().is_none();
            let ours = dir.join(MARKER).is_file();
            if !empty && !ours && !force {
                anyhow::bail!(
                    "{} was not built by `madoguchi demo` (it is not empty and has no {MARKER}); \
                     the demo would overwrite its madoguchi.toml and delete its var/ (the \
                     database included). Choose another --dir, or pass --force to use it anyway",
                    dir.display()
                );
            }
        }
    }
    std::fs::write(
        dir.join(MARKER),
        "This directory was built by `madoguchi demo`, which may delete and rebuild it.\n",
    )
    .with_context(|| format!("cannot mark {} as a demo directory", dir.display()))
}

pub fn demo(dir: Option<&Path>, force: bool, out: &Output) -> anyhow::Result<()> {
    let dir = dir.map_or_else(|| PathBuf::from("demo"), Path::to_path_buf);
    claim_dir(&dir, force)?;
    if dir.join("var").exists() {
        std::fs::remove_dir_all(dir.join("var"))
            .with_context(|| format!("cannot clear {}", dir.display()))?;
    }
    let config_path = dir.join("madoguchi.toml");
    std::fs::write(&config_path, DEMO_CONFIG).context("cannot write the demo config")?;
    let config = Config::load(&config_path)?;
    let inbox = match &config.intake {
        madoguchi::config::Intake::Maildir { dir } => dir.clone(),
        madoguchi::config::Intake::Imap(_) => anyhow::bail!("the demo config must use a Maildir"),
    };
    let outbox = match &config.outbound {
        madoguchi::config::Outbound::File { dir } => dir.clone(),
        madoguchi::config::Outbound::Smtp(_) => {
            anyhow::bail!("the demo config must use an outbox directory")
        }
    };
    std::fs::create_dir_all(dir.join("var")).context("cannot create the demo's var/")?;
    madoguchi::license::keygen(&dir.join("var/license.key"))
        .context("cannot make the demo's license signing key")?;
    let mut desk = Desk::open_issuing(config)?;

    // Contracts and orders, all or nothing, as `contracts import` does.
    let known = desk.store().known_contract_ids()?;
    let checked = check_import(
        "contracts.csv",
        CONTRACTS_CSV.as_bytes(),
        Some(("orders.csv", &mut ORDERS_CSV.as_bytes())),
        &known,
    )?;
    let contracts = checked.contracts;
    desk.store_mut()
        .import_contracts(&contracts, checked.orders.as_deref())?;

    // The demo mails land in the inbox as an MDA would deliver them, when they were sent (their
    // Date header), so the tour shows mail that came in on a holiday, at lunch or after the
    // license cutoff being accepted as the terms say. The clock is simulated: each pass takes
    // the mail sent before it.
    std::fs::create_dir_all(inbox.join("new"))?;
    let mails = MAILS;
    let mut summaries = Vec::new();
    let mut delivered = vec![false; mails.len()];
    for (day, hour, minute) in PASSES {
        let now = Tokyo
            .with_ymd_and_hms(2026, 11, day, hour, minute, 0)
            .single()
            .context("a demo pass time")?
            .with_timezone(&Utc);
        for (i, (name, bytes)) in mails.iter().enumerate() {
            let sent = read_message(bytes, &[])
                .mail
                .date
                .map(|d| d.with_timezone(&Utc))
                .unwrap_or(now - Duration::minutes(60 - i as i64));
            if delivered[i] || sent > now {
                continue;
            }
            delivered[i] = true;
            let target = inbox
                .join("new")
                .join(format!("{}.{i}.demo", name.trim_end_matches(".eml")));
            std::fs::write(&target, bytes).with_context(|| format!("cannot deliver {name}"))?;
            File::options()
                .write(true)
                .open(&target)
                .and_then(|f| f.set_modified(sent.into()))
                .with_context(|| format!("cannot date {name}"))?;
        }
        let summary = super::desk::runtime()?.block_on(run_pass(&mut desk, now))?;
        summaries.push((now, summary));
    }
    let summary = summaries
        .iter()
        .fold(PassSummary::default(), |a, (_, s)| a.plus(s));
    let tickets = desk.store().tickets(None)?;
    let verdicts = desk.store().verdict_counts()?;
    let mut written: Vec<PathBuf> = std::fs::read_dir(&outbox)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    written.sort();
    let licenses = desk.store().applications(None)?;
    let doc = serde_json::json!({
        "dir": dir.display().to_string(),
        "passes": summaries.iter().map(|(at, s)| serde_json::json!({"at": at, "summary": s})).collect::<Vec<_>>(),
        "summary": summary,
        "licenses": licenses,
        "verdicts": verdicts,
        "tickets": tickets,
        "outbox": written.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
    });
    out.emit(&doc, || {
        let tz = desk.calendar().timezone();
        let mut t = format!(
            "madoguchi demo desk in {}\n\n{} contract(s) loaded; {} mail(s) delivered to {}\n",
            dir.display(),
            contracts.len(),
            mails.len(),
            inbox.display(),
        );
        for (at, s) in &summaries {
            t.push_str(&format!(
                "pass at {} (simulated clock): {}",
                madoguchi::core::reply::time_ja(*at, tz),
                summary_text(s)
            ));
        }
        t.push_str("\nLicense applications:\n");
        for a in &licenses {
            t.push_str(&format!(
                "  #{:06} {} {} → {}: due {}, {}{}\n",
                a.ticket,
                a.contract_id,
                a.license_serial,
                a.server_id,
                a.due.map_or_else(|| "-".into(), |d| d.to_string()),
                a.state.code(),
                a.sent_at
                    .map(|at| format!(" at {}", madoguchi::core::reply::time_ja(at, tz)))
                    .unwrap_or_default()
            ));
        }
        t.push_str("\nTickets:\n");
        for tk in &tickets {
            t.push_str(&format!(
                "  #{:06} {:<18} {:<16} {:<7} 受付 {}  {}\n",
                tk.number,
                tk.state,
                tk.category,
                tk.contract_id.as_deref().unwrap_or("-"),
                madoguchi::core::reply::time_ja(tk.accepted_at, tz),
                tk.subject
            ));
        }
        t.push_str(&format!("\nMail written to {} ({} file(s)):\n", outbox.display(), written.len()));
        for p in &written {
            let raw = std::fs::read(p).unwrap_or_default();
            let mail = read_message(&raw, &[]).mail;
            let to = mail.to.iter().map(|m| m.address.as_str()).collect::<Vec<_>>().join(", ");
            t.push_str(&format!("  {}  → {to}\n      {}\n", p.display(), mail.subject));
        }
        if let Some(first) = written.first() {
            let raw = std::fs::read(first).unwrap_or_default();
            let mail = read_message(&raw, &[]).mail;
            t.push_str(&format!("\nThe first reply, as the customer reads it:\n\n{}\n", mail.text.trim_end()));
        }
        t.push_str(&format!(
            "\nKeep the desk running and drop more mail into {}/new:\n  cargo run --release -- --config {} run\n\
             Look around:\n  cargo run --release -- --config {} tickets list\n  cargo run --release -- --config {} queue\n",
            inbox.display(),
            config_path.display(),
            config_path.display(),
            config_path.display()
        ));
        t
    })
}
