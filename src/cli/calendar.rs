//! `madoguchi calendar …`: reception hours (R5), license-key due dates (R8), holidays.

use clap::Subcommand;
use madoguchi::clock::system_now;
use madoguchi::config::Config;
use madoguchi::core::calendar::BusinessCalendar;
use madoguchi::timearg::parse_instant;
use serde_json::json;

use super::Output;

#[derive(Debug, Subcommand)]
pub enum CalendarCommand {
    /// Open or closed at T, why, and the next opening.
    Status { time: String },
    /// R5: when a request arriving at T is accepted.
    AcceptedAt { time: String },
    /// R8: the business date a license key applied for at T must be sent.
    LicenseDue { time: String },
    /// National and company holidays of YEAR.
    Holidays { year: i32 },
}

pub fn run(command: CalendarCommand, config: Option<&Config>, out: &Output) -> anyhow::Result<()> {
    let spec = config.map(|c| c.calendar.clone()).unwrap_or_default();
    let tz = spec.timezone;
    let calendar = BusinessCalendar::new(spec)?;
    let instant = |text: &str| parse_instant(text, tz, system_now());
    match command {
        CalendarCommand::Status { time } => {
            let t = instant(&time)?;
            let status = calendar.status(t);
            let local = t.with_timezone(&tz);
            out.emit(
                &json!({
                    "at": local.to_rfc3339(),
                    "open": status.open,
                    "reason": status.reason.code(),
                    "reason_text": status.reason.to_string(),
                    "next_open": status.next_open.to_rfc3339(),
                }),
                || {
                    let verdict = if status.open { "open" } else { "closed" };
                    format!(
                        "{}: {verdict} ({})\nnext opening: {}\n",
                        local.to_rfc3339(),
                        status.reason,
                        status.next_open.to_rfc3339()
                    )
                },
            )
        }
        CalendarCommand::AcceptedAt { time } => {
            let t = instant(&time)?;
            let accepted = calendar.accepted_at(t);
            out.emit(
                &json!({
                    "received_at": t.with_timezone(&tz).to_rfc3339(),
                    "accepted_at": accepted.to_rfc3339(),
                }),
                || format!("accepted at {}\n", accepted.to_rfc3339()),
            )
        }
        CalendarCommand::LicenseDue { time } => {
            let t = instant(&time)?;
            let due = calendar.license_due(t);
            out.emit(
                &json!({
                    "applied_at": t.with_timezone(&tz).to_rfc3339(),
                    "due": due.format("%Y-%m-%d").to_string(),
                }),
                || format!("license key due on {}\n", due.format("%Y-%m-%d (%a)")),
            )
        }
        CalendarCommand::Holidays { year } => {
            let days = calendar.holidays(year);
            let rows: Vec<_> = days
                .iter()
                .map(|h| {
                    json!({
                        "date": h.date.format("%Y-%m-%d").to_string(),
                        "name": h.name,
                        "kind": h.kind,
                    })
                })
                .collect();
            out.emit(&rows, || {
                days.iter()
                    .map(|h| format!("{}  {}\n", h.date.format("%Y-%m-%d %a"), h.name))
                    .collect()
            })
        }
    }
}
