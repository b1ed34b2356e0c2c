//! `madoguchi report --month YYYY-MM [--json] [--html FILE]`: the monthly report (issue 13).
//! Reads the store (never writes it; a missing database is an error, not created) and the
//! configured calendar's timezone; the figures are `madoguchi::monthly`'s.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use madoguchi::core::calendar::BusinessCalendar;
use madoguchi::monthly::{self, Month};
use madoguchi::store::Store;

use super::Output;
use super::desk::config_for_desk;

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// The month, in the desk's timezone: YYYY-MM.
    #[arg(long, value_parser = month_arg)]
    pub month: Month,
    /// Also write the report as one self-contained HTML page with charts to FILE.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

fn month_arg(text: &str) -> Result<Month, String> {
    Month::parse(text).map_err(|e| e.to_string())
}

pub fn report(
    config_path: Option<&Path>,
    args: &ReportArgs,
    out: &Output,
) -> anyhow::Result<ExitCode> {
    let config = config_for_desk(config_path)?;
    let database = &config.storage.database;
    if !database.exists() {
        bail!(
            "no database at {}: the desk has never run on this config",
            database.display()
        );
    }
    let calendar = BusinessCalendar::new(config.calendar.clone())
        .context("the [calendar] of the config is not usable")?;
    let store = Store::open(database)?;
    let rows = store.monthly_rows(args.month)?;
    drop(store);
    let report = monthly::compute(args.month, calendar.timezone(), &rows);
    if let Some(file) = &args.html {
        write_file(file, monthly::render_html(&report).as_bytes())
            .with_context(|| format!("cannot write the HTML report to {}", file.display()))?;
    }
    out.emit(&report, || {
        let mut text = monthly::render_text(&report);
        if let Some(file) = &args.html {
            text.push_str(&format!("\nHTML report written to {}\n", file.display()));
        }
        text
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Writes `FILE` whole or not at all: `FILE.tmp` beside it, renamed over it.
fn write_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let written = std::fs::File::create(&tmp).and_then(|mut f| {
        f.write_all(bytes)?;
        f.sync_all()
    });
    match written.and_then(|()| std::fs::rename(&tmp, path)) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}
