//! `quarantine list`, `quarantine show N`, `quarantine release N`: mail the desk held for a
//! person, why, and running it through the desk again once the cause is fixed.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use base64::Engine;
use madoguchi::clock::system_now;
use madoguchi::core::reply::time_ja;
use madoguchi::desk::{Desk, Released};
use madoguchi::endpoints::{Retired, retire_quarantined};
use madoguchi::intake::Ack;
use madoguchi::store::Store;
use madoguchi::store::quarantine::MessageRecord;
use serde_json::json;

use super::desk::{config_for_desk, runtime};
use super::{ClosedOutput, Output};

#[derive(Debug, clap::Subcommand)]
pub enum QuarantineCommand {
    /// Messages held in quarantine, oldest first, with the reason.
    List {
        /// Released messages too.
        #[arg(long)]
        all: bool,
    },
    /// The raw message as it arrived, on standard output (`--json`: its record, and the
    /// message in base64).
    Show { id: i64 },
    /// Run a held message through the desk again (after a config fix): ticketed, recorded, or
    /// held again with the new reason. Its mailbox copy leaves the quarantine folder unless it
    /// is held again.
    Release { id: i64 },
}

pub fn run(
    command: QuarantineCommand,
    config_path: Option<&Path>,
    out: &Output,
) -> anyhow::Result<ExitCode> {
    let config = config_for_desk(config_path)?;
    match command {
        QuarantineCommand::List { all } => {
            let store = Store::open(&config.storage.database)?;
            let held = store.quarantined(all)?;
            let tz = config.calendar.timezone;
            out.emit(&held, || {
                if held.is_empty() {
                    return "nothing in quarantine\n".into();
                }
                held.iter().map(|m| line(m, tz)).collect()
            })?;
        }
        QuarantineCommand::Show { id } => {
            let store = Store::open(&config.storage.database)?;
            let record = quarantined(&store, id)?;
            let raw = store
                .raw_bytes(&record.sha256)?
                .with_context(|| format!("the raw bytes of message {id} are missing"))?;
            if out.json {
                let mut doc = serde_json::to_value(&record)?;
                if let Some(map) = doc.as_object_mut() {
                    let raw = base64::engine::general_purpose::STANDARD.encode(&raw);
                    map.insert("raw_base64".into(), json!(raw));
                }
                out.emit(&doc, String::new)?;
            } else {
                write_bytes(&raw)?;
            }
        }
        QuarantineCommand::Release { id } => {
            let desk = Desk::open(config)?;
            return runtime()?.block_on(release(&desk, id, out));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A quarantined message (held or released), or why `id` is none.
fn quarantined(store: &Store, id: i64) -> anyhow::Result<MessageRecord> {
    match store.message_record(id)? {
        Some(m) if m.verdict == "quarantined" => Ok(m),
        Some(m) => bail!(
            "message {id} is not quarantined (its verdict is {}{})",
            m.verdict,
            m.ticket
                .map(|t| format!(", ticket {t}; see `tickets show {t}`"))
                .unwrap_or_default()
        ),
        None => bail!("there is no message {id} (`quarantine list` shows the held ones)"),
    }
}

fn line(m: &MessageRecord, tz: chrono_tz::Tz) -> String {
    let released = match (m.released_at, m.released_to) {
        (Some(_), Some(to)) => format!("  [released as message {to}]"),
        (Some(_), None) => "  [released]".into(),
        _ => String::new(),
    };
    format!(
        "{:>6}  {}  {:<32} {}  ({}, {})\n        reason: {}{released}\n",
        m.id,
        time_ja(m.received_at, tz),
        m.from.as_deref().unwrap_or("(no From)"),
        m.subject,
        super::db::human_bytes(m.size),
        m.source,
        m.reason.as_deref().unwrap_or("—"),
    )
}

/// Writes bytes to stdout as they are (a message may not be UTF-8).
fn write_bytes(bytes: &[u8]) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(ClosedOutput.into()),
        Err(e) => Err(anyhow::Error::new(e).context("cannot write to standard output")),
    }
}

async fn release(desk: &Desk, id: i64, out: &Output) -> anyhow::Result<ExitCode> {
    let released = match desk.release(id, system_now()).await? {
        Ok(released) => released,
        Err(refused) => bail!(refused),
    };
    let origin = &released.origin;
    // The database is the truth: the release stands whatever the mailbox says.
    let (mailbox, detail) = match released.ack {
        Ack::Quarantined => (
            "kept",
            "held again: its copy stays in the quarantine folder".to_owned(),
        ),
        Ack::Processed => match retire_quarantined(
            desk.config(),
            &origin.source,
            &origin.source_key,
            origin.message_id.as_deref(),
            &origin.sha256,
        )
        .await
        {
            Ok(Retired::Moved(_)) => (
                "moved",
                format!(
                    "its copy in {} moved from quarantine to processed",
                    origin.source
                ),
            ),
            Ok(Retired::NotFound) => (
                "not_found",
                format!(
                    "no copy of it was left in the quarantine folder of {}",
                    origin.source
                ),
            ),
            Ok(Retired::Elsewhere(source)) => (
                "elsewhere",
                format!(
                    "WARNING: it came from {source}, not the configured mailbox; remove its \
                     copy from that quarantine folder by hand"
                ),
            ),
            Err(err) => (
                "unreachable",
                format!(
                    "WARNING: cannot move its copy out of the quarantine folder of {} ({}); \
                     the release stands, move the copy by hand",
                    origin.source,
                    madoguchi::report::chain(&err)
                ),
            ),
        },
    };
    let r = &released.record;
    let doc = json!({
        "id": released.id,
        "released_to": r.id,
        "verdict": r.verdict,
        "reason": r.reason,
        "ticket": r.ticket,
        "new_ticket": released.summary.new_tickets > 0,
        "mailbox": mailbox,
        "mailbox_detail": detail,
    });
    out.emit(&doc, || release_text(desk, &released, &detail))?;
    Ok(ExitCode::SUCCESS)
}

fn release_text(desk: &Desk, released: &Released, mailbox: &str) -> String {
    let r = &released.record;
    let tag = |t: u64| format!("[{}#{t:06}]", desk.config().desk.ticket_prefix);
    let outcome = match (r.verdict.as_str(), r.ticket) {
        ("article", Some(t)) if released.summary.new_tickets > 0 => {
            format!("new ticket {}", tag(t))
        }
        ("article", Some(t)) => format!("added to ticket {}", tag(t)),
        ("quarantined", _) => format!(
            "quarantined again: {}",
            r.reason.as_deref().unwrap_or("no reason given")
        ),
        (verdict, ticket) => format!(
            "{verdict}{}{}",
            r.reason
                .as_deref()
                .map(|why| format!(": {why}"))
                .unwrap_or_default(),
            ticket
                .map(|t| format!(" (ticket {})", tag(t)))
                .unwrap_or_default()
        ),
    };
    format!(
        "released message {} as message {}: {outcome}\n  {mailbox}\n  mail it queued goes out \
         with the daemon's next pass (`run --once` sends it at once)\n",
        released.id, r.id
    )
}
