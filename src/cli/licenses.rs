//! `licenses list`, `license show N`, `license resend N`: license key applications as the desk
//! keeps them (R7/R8).

use std::path::Path;

use anyhow::bail;
use chrono::{DateTime, Utc};
use clap::ValueEnum;
use madoguchi::clock::system_now;
use madoguchi::core::license::ApplicationState;
use madoguchi::core::license::letters::ApplicationRecord;
use madoguchi::core::reply::time_ja;
use madoguchi::desk::Desk;
use serde_json::json;

use super::Output;
use super::desk::config_for_desk;

#[derive(Debug, clap::Subcommand)]
pub enum LicensesCommand {
    /// Applications, oldest first, with their due date (R8) and state.
    List {
        /// Only applications in this state.
        #[arg(long, value_enum)]
        state: Option<ApplicationStateArg>,
    },
}

/// An application state as `--state` takes it (the store's spelling).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum ApplicationStateArg {
    Waiting,
    #[value(alias = "waiting-approval")]
    WaitingApproval,
    Issued,
    Sent,
    Refused,
}

impl ApplicationStateArg {
    pub fn state(self) -> ApplicationState {
        match self {
            ApplicationStateArg::Waiting => ApplicationState::Waiting,
            ApplicationStateArg::WaitingApproval => ApplicationState::WaitingApproval,
            ApplicationStateArg::Issued => ApplicationState::Issued,
            ApplicationStateArg::Sent => ApplicationState::Sent,
            ApplicationStateArg::Refused => ApplicationState::Refused,
        }
    }
}

/// Whether an application's key is not out and its due date has come (R8 at risk, or missed).
pub fn at_risk(record: &ApplicationRecord, desk: &Desk, now: DateTime<Utc>) -> bool {
    let open = matches!(
        record.state,
        ApplicationState::Waiting | ApplicationState::WaitingApproval | ApplicationState::Issued
    );
    let today = now.with_timezone(&desk.calendar().timezone()).date_naive();
    open && record.due.is_some_and(|d| d <= today)
}

fn doc(record: &ApplicationRecord, desk: &Desk, now: DateTime<Utc>) -> serde_json::Value {
    json!({
        "ticket": record.ticket,
        "contract_id": record.contract_id,
        "license_serial": record.license_serial,
        "server_id": record.server_id,
        "applicant": record.applicant,
        "applied_at": record.applied_at,
        "due": record.due,
        "send_at": record.send_at,
        "state": record.state.code(),
        "key_id": record.key_id,
        "issued_at": record.issued_at,
        "sent_at": record.sent_at,
        "approved_by": record.approved_by,
        "detail": record.detail,
        "at_risk": at_risk(record, desk, now),
    })
}

fn line(record: &ApplicationRecord, desk: &Desk, now: DateTime<Utc>) -> String {
    let tz = desk.calendar().timezone();
    let due = record
        .due
        .map_or_else(|| "—".to_string(), |d| d.format("%Y-%m-%d").to_string());
    let risk = if at_risk(record, desk, now) {
        "  R8 AT RISK"
    } else {
        ""
    };
    format!(
        "#{:06} {:<16} {:<8} {:<18} → {:<16} due {due}  受付 {}  {}{risk}\n",
        record.ticket,
        record.state.code(),
        record.contract_id,
        record.license_serial,
        record.server_id,
        time_ja(record.applied_at, tz),
        record.key_id.as_deref().unwrap_or(""),
    )
}

pub fn list(
    config_path: Option<&Path>,
    state: Option<ApplicationStateArg>,
    out: &Output,
) -> anyhow::Result<()> {
    let desk = Desk::open(config_for_desk(config_path)?)?;
    let now = system_now();
    let records = desk
        .store()
        .applications(state.map(ApplicationStateArg::state))?;
    let docs: Vec<_> = records.iter().map(|r| doc(r, &desk, now)).collect();
    out.emit(&docs, || {
        if records.is_empty() {
            return "no license applications\n".into();
        }
        records.iter().map(|r| line(r, &desk, now)).collect()
    })
}

pub fn show(config_path: Option<&Path>, ticket: u64, out: &Output) -> anyhow::Result<()> {
    let desk = Desk::open(config_for_desk(config_path)?)?;
    let now = system_now();
    let store = desk.store();
    let Some(record) = store.application(ticket)? else {
        bail!("ticket {ticket} has no license application");
    };
    let audit = store.license_audit(ticket)?;
    drop(store);
    let mut value = doc(&record, &desk, now);
    if let Some(map) = value.as_object_mut() {
        map.insert("audit".into(), json!(audit));
    }
    let tz = desk.calendar().timezone();
    out.emit(&value, || {
        let mut text = line(&record, &desk, now);
        text.push_str(&format!("  applicant: {}\n", record.applicant));
        if let Some(detail) = &record.detail {
            text.push_str(&format!("  detail: {detail}\n"));
        }
        for row in &audit {
            text.push_str(&format!(
                "  {}  {}{}\n",
                time_ja(row.at, tz),
                row.step,
                row.detail
                    .as_deref()
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default()
            ));
        }
        text
    })
}

pub fn resend(config_path: Option<&Path>, ticket: u64, out: &Output) -> anyhow::Result<()> {
    let desk = Desk::open(config_for_desk(config_path)?)?;
    match desk.resend_key(ticket, system_now())? {
        Ok(outbox) => out.emit(&json!({ "ticket": ticket, "outbox": outbox }), || {
            format!(
                "queued the key of ticket {ticket} again (outbox {outbox}); the daemon sends it \
                 on its next pass, `run --once` at once\n"
            )
        }),
        Err(refused) => bail!(refused),
    }
}
