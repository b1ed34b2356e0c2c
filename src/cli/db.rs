//! `db backup FILE` and `db check [FILE]`: the database as an admin looks after it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use madoguchi::store::backup::{CheckReport, backup_database, check_database};
use serde_json::json;

use super::Output;
use super::desk::config_for_desk;

#[derive(Debug, clap::Subcommand)]
pub enum DbCommand {
    /// Copy the database to FILE, consistent while the daemon runs (SQLite's online backup),
    /// then check the copy. Never overwrites FILE.
    Backup { file: PathBuf },
    /// SQLite's integrity and foreign-key checks, with a few figures. Exit 1 when there is a
    /// problem, listing them.
    Check {
        /// A database file to check instead of the configured one (a backup, before restoring it).
        file: Option<PathBuf>,
    },
}

pub fn run(
    command: DbCommand,
    config_path: Option<&Path>,
    out: &Output,
) -> anyhow::Result<ExitCode> {
    match command {
        DbCommand::Backup { file } => {
            let database = config_for_desk(config_path)?.storage.database;
            let report = backup_database(&database, &file)?;
            let doc = json!({
                "database": database,
                "file": report.path,
                "bytes": report.bytes,
                "schema_version": report.schema_version,
                "pages": report.pages,
                "page_size": report.page_size,
                "integrity": "ok",
            });
            out.emit(&doc, || {
                format!(
                    "backed up {} to {}: {} ({} bytes), schema version {}; the copy passed \
                     SQLite's integrity check\n",
                    database.display(),
                    report.path.display(),
                    human_bytes(report.bytes),
                    report.bytes,
                    report.schema_version
                )
            })?;
            Ok(ExitCode::SUCCESS)
        }
        DbCommand::Check { file } => {
            let path = match file {
                Some(file) => file,
                None => config_for_desk(config_path)?.storage.database,
            };
            let report = check_database(&path)?;
            out.emit(&report, || check_text(&report))?;
            Ok(if report.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}

fn check_text(r: &CheckReport) -> String {
    let mut text = if r.ok {
        format!("database {}: OK\n", r.path.display())
    } else {
        let mut text = format!(
            "database {}: {} problem(s)\n",
            r.path.display(),
            r.problems.len()
        );
        for p in &r.problems {
            text.push_str(&format!("  - {p}\n"));
        }
        text
    };
    let or_unknown = |v: Option<i64>| v.map_or_else(|| "?".to_owned(), |v| v.to_string());
    text.push_str(&format!(
        "  schema version {} (this madoguchi: {}), {}, {} pages of {} bytes, {} free, journal {}\n",
        or_unknown(r.schema_version),
        r.supported_version,
        human_bytes(r.bytes),
        or_unknown(r.pages),
        or_unknown(r.page_size),
        or_unknown(r.free_pages),
        r.journal_mode.as_deref().unwrap_or("?"),
    ));
    if !r.counts.is_empty() {
        let counts: Vec<String> = r
            .counts
            .iter()
            .map(|(k, v)| format!("{} {v}", k.replace('_', " ")))
            .collect();
        text.push_str(&format!("  {}\n", counts.join(", ")));
    }
    text
}

/// `12.3 MiB`, `512 B`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}
