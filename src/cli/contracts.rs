//! `madoguchi contracts …`: support periods (R9–R12) and the contract register.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::{NaiveDate, TimeZone};
use clap::Subcommand;
use madoguchi::clock::system_now;
use madoguchi::core::calendar::CalendarSpec;
use madoguchi::core::contract::{
    ContractPeriods, CoverageStatus, first_year, periods_from_orders, renewal, status_on,
};
use madoguchi::import::check_import;
use madoguchi::store::reminders::SentReminder;
use madoguchi::store::{Store, StoredContract};
use madoguchi::timearg::parse_date;
use serde_json::json;

use super::{ConfigChoice, Output, load_config};

mod expiring;

#[derive(Debug, Subcommand)]
pub enum ContractsCommand {
    /// R9: the first-year period of an order received on D.
    Period {
        #[arg(long)]
        received: String,
        /// The first license purchase date (support is given from it).
        #[arg(long)]
        purchased: Option<String>,
    },
    /// R10/R11: renewal or re-continuation for an order received after a period ending on D.
    Renewal {
        #[arg(long)]
        last_end: String,
        #[arg(long)]
        received: String,
    },
    /// Load contracts (and orders) from CSV, all or nothing.
    Import {
        file: PathBuf,
        #[arg(long)]
        orders: Option<PathBuf>,
    },
    /// Contracts with their periods and status today.
    List {
        /// Status on this date instead of today (YYYY-MM-DD).
        #[arg(long)]
        on: Option<String>,
    },
    /// Contracts whose support period ends within a window, and lapsed ones whose last day
    /// for a plain renewal (R11) falls in it, with the next reminder each gets.
    Expiring {
        /// The window, in days: `60d`.
        #[arg(long, default_value = "60d")]
        within: String,
        /// From this date instead of today (YYYY-MM-DD).
        #[arg(long)]
        on: Option<String>,
    },
    /// One contract in full, with the reminders sent to it.
    Show {
        contract_id: String,
        /// Status on this date instead of today (YYYY-MM-DD).
        #[arg(long)]
        on: Option<String>,
    },
}

fn ymd(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

pub fn run(
    command: ContractsCommand,
    config_path: Option<&Path>,
    out: &Output,
) -> anyhow::Result<()> {
    match command {
        ContractsCommand::Period {
            received,
            purchased,
        } => {
            let received = parse_date(&received)?;
            let purchased = purchased.as_deref().map(parse_date).transpose()?;
            let first = first_year(received, purchased);
            out.emit(
                &json!({
                    "start": ymd(first.period.start),
                    "end": ymd(first.period.end),
                    "covered_from": ymd(first.covered_from),
                }),
                || {
                    format!(
                        "base period {} to {}; supported from {}\n",
                        ymd(first.period.start),
                        ymd(first.period.end),
                        ymd(first.covered_from)
                    )
                },
            )
        }
        ContractsCommand::Renewal { last_end, received } => {
            let r = renewal(parse_date(&last_end)?, parse_date(&received)?);
            let kind = serde_json::to_value(r.kind)?;
            out.emit(
                &json!({ "kind": kind, "start": ymd(r.period.start), "end": ymd(r.period.end) }),
                || {
                    let what = match kind.as_str() {
                        Some("renewal") => "plain renewal (年間サポート)",
                        _ => "re-continuation required (再継続年間サポート)",
                    };
                    format!("{what}: {} to {}\n", ymd(r.period.start), ymd(r.period.end))
                },
            )
        }
        ContractsCommand::Import { file, orders } => {
            let (mut store, _) = open_store(config_path)?;
            import(&mut store, &file, orders.as_deref(), out)
        }
        ContractsCommand::List { on } => {
            let (store, spec) = open_store(config_path)?;
            let today = status_date(on.as_deref(), &spec)?;
            let rows = store
                .contracts()?
                .iter()
                .map(|c| describe(c, today))
                .collect::<Vec<_>>();
            out.emit(&rows, || {
                if rows.is_empty() {
                    return "no contracts; load them with `madoguchi contracts import FILE`\n"
                        .into();
                }
                rows.iter().map(|r| format!("{}\n", r.one_line())).collect()
            })
        }
        ContractsCommand::Expiring { within, on } => {
            let within = expiring::parse_within(&within)?;
            let config = load_config(config_path, ConfigChoice::Required)?
                .context("a config file is needed to find the database")?;
            let store = Store::open(&config.storage.database)?;
            let today = status_date(on.as_deref(), &config.calendar)?;
            // `--on D` looks from the start of D (the desk's timezone), not from today.
            let now = match on {
                None => system_now(),
                Some(_) => config
                    .calendar
                    .timezone
                    .from_local_datetime(&today.and_time(chrono::NaiveTime::MIN))
                    .earliest()
                    .map_or_else(system_now, |t| t.with_timezone(&chrono::Utc)),
            };
            let rows = expiring::expiring(&store, &config, today, within, now)?;
            out.emit(&rows, || {
                expiring::text(&rows, today, within, config.calendar.timezone)
            })
        }
        ContractsCommand::Show { contract_id, on } => {
            let (store, spec) = open_store(config_path)?;
            let today = status_date(on.as_deref(), &spec)?;
            let contract = store
                .contract(&contract_id)?
                .with_context(|| format!("no contract {contract_id:?}"))?;
            let mut view = describe(&contract, today);
            view.sent_reminders = store.reminders_of(Some(&contract.contract.contract_id), None)?;
            out.emit(&view, || view.full_text())
        }
    }
}

/// The date a status is given for: `--on`, else today in the desk's timezone.
fn status_date(on: Option<&str>, spec: &CalendarSpec) -> anyhow::Result<NaiveDate> {
    match on {
        Some(d) => Ok(parse_date(d)?),
        None => Ok(system_now().with_timezone(&spec.timezone).date_naive()),
    }
}

fn open_store(config_path: Option<&Path>) -> anyhow::Result<(Store, CalendarSpec)> {
    let config = load_config(config_path, ConfigChoice::Required)?
        .context("a config file is needed to find the database")?;
    let store = Store::open(&config.storage.database)?;
    Ok((store, config.calendar))
}

fn import(
    store: &mut Store,
    file: &Path,
    orders: Option<&Path>,
    out: &Output,
) -> anyhow::Result<()> {
    let open = |p: &Path| File::open(p).with_context(|| format!("cannot open {}", p.display()));
    let name = |p: &Path| p.display().to_string();
    let contracts_in = open(file)?;
    let mut orders_in = match orders {
        Some(p) => Some((name(p), open(p)?)),
        None => None,
    };
    // Every problem of both files at once; the store's ids count as known to the orders.
    let checked = check_import(
        &name(file),
        contracts_in,
        orders_in
            .as_mut()
            .map(|(n, f)| (n.as_str(), f as &mut dyn std::io::Read)),
        &store.known_contract_ids()?,
    )?;
    let (contracts, orders) = (checked.contracts, checked.orders);
    let summary = store.import_contracts(&contracts, orders.as_deref())?;
    out.emit(
        &json!({
            "contracts_added": summary.contracts_added,
            "contracts_updated": summary.contracts_updated,
            "contracts_unchanged": summary.contracts_unchanged,
            "orders": summary.orders,
            "contracts_with_orders": summary.orders_replaced_for,
        }),
        || {
            format!(
                "imported {} contract(s): {} added, {} updated, {} unchanged; {} order(s) for {} contract(s)\n",
                contracts.len(),
                summary.contracts_added,
                summary.contracts_updated,
                summary.contracts_unchanged,
                summary.orders,
                summary.orders_replaced_for
            )
        },
    )
}

/// A contract with its computed periods and today's coverage, as printed.
#[derive(serde::Serialize)]
struct ContractView {
    contract_id: String,
    customer: String,
    license_serial: String,
    contacts: Vec<String>,
    domains: Vec<String>,
    customized: bool,
    neo_support: bool,
    server_id: String,
    today: String,
    periods: Option<ContractPeriods>,
    status: Option<CoverageStatus>,
    problem: Option<String>,
    /// Whether its contacts get renewal reminders.
    reminders: bool,
    /// The reminders queued for it (`contracts show`).
    sent_reminders: Vec<SentReminder>,
}

fn describe(stored: &StoredContract, today: NaiveDate) -> ContractView {
    let c = &stored.contract;
    let (periods, problem) = if stored.orders.is_empty() {
        (None, Some("no orders recorded".to_string()))
    } else {
        match periods_from_orders(&stored.orders) {
            Ok(p) => (Some(p), None),
            Err(e) => (None, Some(e.to_string())),
        }
    };
    let status = periods.as_ref().map(|p| status_on(p, today));
    ContractView {
        contract_id: c.contract_id.clone(),
        customer: c.customer.clone(),
        license_serial: c.license_serial.clone(),
        contacts: c.contacts.clone(),
        domains: c.domains.clone(),
        customized: c.customized,
        neo_support: c.neo_support,
        server_id: c.server_id.clone(),
        today: ymd(today),
        periods,
        status,
        problem,
        reminders: c.reminders,
        sent_reminders: Vec::new(),
    }
}

impl ContractView {
    fn status_text(&self) -> String {
        match (&self.status, &self.problem) {
            (Some(s), _) => s.to_string(),
            (None, Some(p)) => p.clone(),
            (None, None) => "unknown".into(),
        }
    }

    fn one_line(&self) -> String {
        format!(
            "{:<12} {:<30} {}",
            self.contract_id,
            self.customer,
            self.status_text()
        )
    }

    fn full_text(&self) -> String {
        let yn = |b: bool| if b { "yes" } else { "no" };
        let mut t = format!(
            "contract {}\n  customer:        {}\n  license serial:  {}\n  server id:       {}\n  contacts:        {}\n  domains:         {}\n  customized:      {}\n  NEO support:     {}\n",
            self.contract_id,
            self.customer,
            self.license_serial,
            self.server_id,
            self.contacts.join(", "),
            self.domains.join(", "),
            yn(self.customized),
            yn(self.neo_support),
        );
        if let Some(p) = &self.periods {
            t.push_str(&format!(
                "  supported from:  {}\n  periods:\n",
                ymd(p.covered_from)
            ));
            for period in &p.periods {
                t.push_str(&format!("    {period}\n"));
            }
        }
        t.push_str(&format!(
            "  status on {}: {}\n  reminders:       {}\n",
            self.today,
            self.status_text(),
            yn(self.reminders)
        ));
        for r in &self.sent_reminders {
            let what = match (r.kind.as_str(), r.days) {
                ("renewal", Some(d)) => format!("renewal reminder, {d} days before"),
                ("lapsed", _) => "lapse notice".to_string(),
                (_, d) => format!("re-continuation warning, {} days before", d.unwrap_or(0)),
            };
            t.push_str(&format!(
                "    {} {what} (period ending {}), mail {}: {}\n",
                r.queued_at.format("%Y-%m-%d %H:%M UTC"),
                r.period_end.as_deref().unwrap_or("?"),
                r.outbox.map_or("-".to_string(), |o| o.to_string()),
                r.mail_state.as_deref().unwrap_or("-")
            ));
        }
        t
    }
}
