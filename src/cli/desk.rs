//! `madoguchi run`, `tickets …`, `queue`, `mail inspect`: the desk itself and its views.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use clap::{Subcommand, ValueEnum};
use madoguchi::clock::system_now;
use madoguchi::config::Config;
use madoguchi::core::classify::classify;
use madoguchi::core::decide::Outcome;
use madoguchi::core::reply::time_ja;
use madoguchi::core::ticket::TicketState;
use madoguchi::desk::{Desk, PassSummary};
use madoguchi::endpoints::{MailSender, MailSource};
use madoguchi::store::Store;
use madoguchi::store::tickets::TicketListing;
use madoguchi::timearg::parse_instant;
use serde_json::json;

use super::{ConfigChoice, Output, load_config};

#[derive(Debug, Subcommand)]
pub enum TicketsCommand {
    /// Tickets in acceptance order.
    List {
        /// Only tickets in this state.
        #[arg(long, value_enum)]
        state: Option<StateArg>,
    },
    /// One ticket with its articles.
    Show { number: u64 },
    /// Close a ticket (a follow-up within the reopen window reopens it).
    Close { number: u64 },
}

/// A ticket state as `--state` takes it: the store's spelling ([`TicketState::code`]), so an
/// unknown value is a usage error listing the valid ones instead of an empty list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum StateArg {
    /// Received outside reception hours; accepted at the next opening.
    #[value(alias = "waiting-acceptance")]
    WaitingAcceptance,
    Open,
    /// Staff answered; waiting for the customer.
    Pending,
    Closed,
}

impl StateArg {
    pub fn state(self) -> TicketState {
        match self {
            StateArg::WaitingAcceptance => TicketState::WaitingAcceptance,
            StateArg::Open => TicketState::Open,
            StateArg::Pending => TicketState::Pending,
            StateArg::Closed => TicketState::Closed,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum MailCommand {
    /// How the daemon reads one message file.
    Inspect { file: PathBuf },
}

pub fn config_for_desk(path: Option<&Path>) -> anyhow::Result<Config> {
    load_config(path, ConfigChoice::Required)?.context("a config file is needed")
}

/// A current-thread runtime: the desk is one task; SQLite work is short and runs inline.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// One pass over the configured mailbox with the configured sender.
pub async fn run_pass(desk: &mut Desk, now: DateTime<Utc>) -> anyhow::Result<PassSummary> {
    let mut source = MailSource::open(desk.config()).await?;
    let mut sender = MailSender::open(desk.config())?;
    Ok(desk.pass(&mut source, &mut sender, now).await?)
}

pub fn summary_text(s: &PassSummary) -> String {
    format!(
        "{} message(s): {} new ticket(s), {} follow-up(s), {} recorded (automatic/bounce), {} quarantined, {} duplicate(s); {} ticket(s) opened; {} license key(s) issued; {} reminder(s) and digest(s) queued; {} mail(s) sent, {} to retry, {} failed\n",
        s.messages,
        s.new_tickets,
        s.follow_ups,
        s.recorded,
        s.quarantined,
        s.duplicates,
        s.opened,
        s.keys_issued,
        s.reminders,
        s.sent,
        s.send_retries,
        s.send_failures
    )
}

/// `run`: `--once` handles everything pending and due, then exits; otherwise the daemon loop
/// until SIGTERM/SIGINT, re-reading the config on SIGHUP.
pub fn run(
    config_path: Option<&Path>,
    once: bool,
    now: Option<&str>,
    out: &Output,
) -> anyhow::Result<()> {
    let config = config_for_desk(config_path)?;
    // What check-config warns about goes to the log too (the journal, under systemd).
    for warning in config.warnings() {
        tracing::warn!("config: {warning}");
    }
    let tz = config.calendar.timezone;
    let simulated = now
        .map(|t| parse_instant(t, tz, system_now()))
        .transpose()?;
    let started = system_now();
    // `--now` shifts the clock: simulated time runs on from the given instant.
    let clock = move || simulated.map_or_else(system_now, |t| t + (system_now() - started));
    // One daemon per database, `--once` included; held until the process ends.
    let _instance = madoguchi::instance::acquire(&config.storage.database)?;
    let mut desk = Desk::open_issuing(config)?;
    if once {
        let summary = runtime()?.block_on(run_pass(&mut desk, clock()))?;
        if let Some(stages) = super::logging::profile() {
            super::write_stderr(&stages.table(summary.messages + summary.already_seen));
        }
        return out.emit(&summary, || summary_text(&summary));
    }
    let metrics = desk.config().metrics;
    runtime()?.block_on(async move {
        // `[metrics]`: served for the life of the process (a reload does not move it).
        if let Some(m) = metrics {
            madoguchi::metrics::serve(m.listen).await?;
        }
        crate::cli::daemon::daemon(desk, config_path.map(Path::to_path_buf), clock).await
    })
}

pub fn tickets(
    config_path: Option<&Path>,
    command: TicketsCommand,
    out: &Output,
) -> anyhow::Result<()> {
    let config = config_for_desk(config_path)?;
    let tz = config.calendar.timezone;
    let mut desk = Desk::open(config)?;
    match command {
        TicketsCommand::List { state } => {
            let list = desk.store().tickets(state.map(|s| s.state().code()))?;
            out.emit(&list, || listing_text(&list, tz))
        }
        TicketsCommand::Show { number } => {
            let ticket = desk
                .store()
                .ticket(number)?
                .with_context(|| format!("no ticket {number}"))?;
            let articles = desk.store().articles(number)?;
            let mut doc_flat = serde_json::to_value(&ticket)?;
            if let Some(map) = doc_flat.as_object_mut() {
                map.insert("articles".into(), serde_json::to_value(&articles)?);
            }
            out.emit(&doc_flat, || {
                let mut t = listing_text(std::slice::from_ref(&ticket), tz);
                for a in &articles {
                    let arrow = if a.direction == "in" { "←" } else { "→" };
                    t.push_str(&format!(
                        "\n{arrow} {} [{}] {} {}{}\n  {}\n",
                        time_ja(a.created_at, tz),
                        a.kind,
                        a.author,
                        a.subject,
                        a.delivery
                            .as_deref()
                            .map(|d| format!(" [{d}]"))
                            .unwrap_or_default(),
                        a.text.trim_end().replace('\n', "\n  ")
                    ));
                }
                t
            })
        }
        TicketsCommand::Close { number } => {
            let now = system_now();
            if !desk.store_mut().close_ticket(number, now)? {
                bail!("no ticket {number}");
            }
            out.emit(&json!({ "number": number, "state": "closed" }), || {
                format!("ticket {number} closed\n")
            })
        }
    }
}

fn listing_text(list: &[TicketListing], tz: chrono_tz::Tz) -> String {
    if list.is_empty() {
        return "no tickets\n".into();
    }
    list.iter()
        .map(|t| {
            format!(
                "#{:06} {:<18} {:<16} {:<8} 受付 {}  {} <{}>  {}\n",
                t.number,
                t.state,
                t.category,
                t.contract_id.as_deref().unwrap_or("-"),
                time_ja(t.accepted_at, tz),
                t.customer_name,
                t.customer,
                t.subject
            )
        })
        .collect()
}

pub fn queue(config_path: Option<&Path>, out: &Output) -> anyhow::Result<()> {
    let config = config_for_desk(config_path)?;
    let tz = config.calendar.timezone;
    let desk = Desk::open(config)?;
    let now = system_now();
    let applications: std::collections::HashMap<u64, _> = desk
        .store()
        .open_applications()?
        .into_iter()
        .map(|a| (a.record.ticket, a.record))
        .collect();
    let rows: Vec<_> = desk
        .store()
        .queue()?
        .into_iter()
        .map(|t| {
            let age = desk.calendar().business_duration(t.accepted_at, now);
            // Pending: staff answered, the customer's turn. Anything else open: staff's turn.
            let waits_for = if t.state == TicketState::Pending.code() {
                "customer"
            } else {
                "staff"
            };
            let license = applications.get(&t.number);
            let risk = license.is_some_and(|a| super::licenses::at_risk(a, &desk, now));
            (t, age, waits_for, license, risk)
        })
        .collect();
    let doc: Vec<_> = rows
        .iter()
        .map(|(t, age, waits_for, license, risk)| {
            let mut v = serde_json::to_value(t).unwrap_or_default();
            if let Some(map) = v.as_object_mut() {
                map.insert("business_minutes".into(), json!(age));
                map.insert("waits_for".into(), json!(waits_for));
                if let Some(a) = license {
                    map.insert(
                        "license".into(),
                        json!({ "state": a.state.code(), "due": a.due, "at_risk": risk }),
                    );
                }
            }
            v
        })
        .collect();
    out.emit(&doc, || {
        if rows.is_empty() {
            return "the queue is empty\n".into();
        }
        rows.iter()
            .map(|(t, age, waits_for, license, risk)| {
                let key = match license {
                    Some(a) if *risk => format!("  key {} R8 AT RISK", a.state.code()),
                    Some(a) => format!("  key {}", a.state.code()),
                    None => String::new(),
                };
                format!(
                    "#{:06} {:<18} waits for {:<8} {:>4}h{:02}m (business time)  受付 {}  {}{key}\n",
                    t.number,
                    t.state,
                    waits_for,
                    age / 60,
                    age % 60,
                    time_ja(t.accepted_at, tz),
                    t.subject
                )
            })
            .collect()
    })
}

pub fn inspect(config_path: Option<&Path>, file: &Path, out: &Output) -> anyhow::Result<()> {
    let config = load_config(config_path, ConfigChoice::Optional)?;
    let raw = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    // The same decision `run` makes: with the real config and register when there is one (its
    // database only read, in a transaction rolled back), else the defaults on an empty store.
    let desk = match config {
        Some(config) if config.storage.database.exists() => Desk::open(config)?,
        Some(config) => Desk::with_store(config, Store::open_in_memory()?)?,
        None => {
            let config = Config::default_for(Path::new("."), "support@madoguchi.invalid")
                .map_err(|e| anyhow::anyhow!(madoguchi::config::render_errors(&e)))?;
            Desk::with_store(config, Store::open_in_memory()?)?
        }
    };
    let now = system_now();
    // Staff mail under `[staff] authentication = "dkim"` is checked as `run` checks it.
    let (raw, dkim) = runtime()?.block_on(desk.check_dkim(raw))?;
    let (read, decision) = desk.explain(raw, dkim, now, now)?;
    let mail = &read.mail;
    let (category, auto_generated, verdict) = match &decision.outcome {
        Outcome::NewTicket(new) => (
            new.category,
            false,
            match (&new.reply, &new.reply_withheld) {
                (Some((kind, to)), _) => format!("ticket; reply {} to {to}", kind.code()),
                (None, why) => format!("ticket; no reply ({})", why.clone().unwrap_or_default()),
            },
        ),
        Outcome::FollowUp {
            ticket, from_staff, ..
        } => (
            classify(mail, &desk.config().classify),
            false,
            if *from_staff {
                format!("follow-up on ticket {ticket} (staff address, not acted on)")
            } else {
                format!("follow-up on ticket {ticket}")
            },
        ),
        Outcome::StaffMail(staff) => (
            classify(mail, &desk.config().classify),
            false,
            format!(
                "staff mail on ticket {}: {}",
                staff.ticket,
                match (&staff.relayed, &staff.note) {
                    (Some(_), _) => "relayed to the customer",
                    (None, Some(_)) => "internal note",
                    (None, None) => "not relayed",
                }
            ),
        ),
        Outcome::Flood { ticket, count, .. } => (
            classify(mail, &desk.config().classify),
            false,
            format!(
                "flood: onto ticket {ticket} without reply or notice ({count} requests in an hour)"
            ),
        ),
        Outcome::Recorded { reason, .. } => (
            classify(mail, &desk.config().classify),
            true,
            format!("recorded: {}", reason.code()),
        ),
        Outcome::Duplicate { of } => (
            classify(mail, &desk.config().classify),
            true,
            format!("duplicate of message {of}"),
        ),
        Outcome::Quarantine { reason } => (
            classify(mail, &desk.config().classify),
            false,
            format!("quarantine: {reason}"),
        ),
    };
    let doc = json!({
        "from": mail.from,
        "subject": mail.subject,
        "text": mail.text,
        "form": mail.form,
        "category": category,
        "auto_generated": auto_generated,
        "verdict": verdict,
        "message_id": mail.message_id,
        "in_reply_to": mail.in_reply_to,
        "references": mail.references,
        "attachments": mail.attachments,
        "report": mail.report,
        "defects": mail.defects,
    });
    out.emit(&doc, || {
        format!(
            "from:      {}\nsubject:   {}\ncategory:  {category}\nverdict:   {verdict}\nform:      {}\nattachments: {}\ndefects:   {}\n\n{}\n",
            mail.from.as_ref().map_or("(none)".into(), |m| m.address.clone()),
            mail.subject,
            mail.form.as_ref().map_or("no".into(), |f| format!("{:?}", f.kind)),
            mail.attachments.len(),
            if mail.defects.is_empty() { "none".into() } else { mail.defects.join("; ") },
            mail.text.trim_end()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_values_are_spelled_as_the_store_spells_them() {
        for arg in StateArg::value_variants() {
            let value = arg.to_possible_value().expect("not skipped");
            assert_eq!(value.get_name(), arg.state().code());
            assert_eq!(StateArg::from_str(arg.state().code(), false), Ok(*arg));
        }
    }
}
