//! Command implementations: read arguments, call the library, print human text or JSON.

pub mod calendar;
pub mod contracts;
pub mod daemon;
pub mod db;
pub mod demo;
pub mod desk;
pub mod license;
pub mod licenses;
mod logging;
pub mod quarantine;
pub mod report;
pub mod status;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use madoguchi::config::{Config, ConfigError};

use crate::{Cli, Command};

const DEFAULT_CONFIG: &str = "/etc/madoguchi/madoguchi.toml";

/// Where the CLI's output goes and in which form.
pub struct Output {
    pub json: bool,
}

impl Output {
    /// Prints `value` as JSON, or the human text `human` builds.
    pub fn emit<T: serde::Serialize>(
        &self,
        value: &T,
        human: impl FnOnce() -> String,
    ) -> anyhow::Result<()> {
        let text = if self.json {
            let mut doc = serde_json::to_string_pretty(value)?;
            doc.push('\n');
            doc
        } else {
            human()
        };
        write_stdout(&text)
    }
}

/// Standard output was closed by its reader (`madoguchi … | head`). Not a failure to report:
/// `main` ends the process the way a command killed by SIGPIPE ends.
#[derive(Debug, thiserror::Error)]
#[error("standard output is closed")]
pub struct ClosedOutput;

/// Writes `text` to stdout. Rust ignores SIGPIPE, so a closed pipe shows up here as
/// `BrokenPipe`; it becomes [`ClosedOutput`] (never `println!`'s panic). Every stdout write of
/// the CLI goes through here.
pub fn write_stdout(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(ClosedOutput.into()),
        Err(e) => Err(anyhow::Error::new(e).context("cannot write to standard output")),
    }
}

/// Writes `text` to stderr, ignoring failure: when stderr itself is gone there is no one left
/// to tell, and `eprintln!` would panic.
pub fn write_stderr(text: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_all(text.as_bytes());
}

/// Ends the process as if killed by SIGPIPE (shell status 141), the conventional end of a
/// command whose reader went away: quiet, and `set -o pipefail` scripts see the usual status.
/// Only called once all output is abandoned; the daemon keeps SIGPIPE ignored throughout, since
/// its TLS connections write with `writev`, which would raise it.
pub fn end_as_sigpipe() -> ExitCode {
    // SAFETY: resetting a signal disposition to its default and raising the signal in this
    // thread; no handler runs, and nothing else depends on SIGPIPE being ignored from here on.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        libc::raise(libc::SIGPIPE);
    }
    // Not reached when the signal is delivered; the same status otherwise.
    ExitCode::from(141)
}

/// The config the command runs with: the named file, or the default path. `optional` commands
/// (pure calculations) fall back to the built-in defaults when no file exists at the default path.
pub enum ConfigChoice {
    Required,
    Optional,
}

pub fn load_config(
    explicit: Option<&Path>,
    choice: ConfigChoice,
) -> anyhow::Result<Option<Config>> {
    let (path, explicit) = match explicit {
        Some(p) => (p.to_path_buf(), true),
        None => (PathBuf::from(DEFAULT_CONFIG), false),
    };
    if !explicit && !path.exists() {
        return match choice {
            ConfigChoice::Optional => Ok(None),
            ConfigChoice::Required => anyhow::bail!(
                "no config file at {DEFAULT_CONFIG}; pass --config FILE or set MADOGUCHI_CONFIG"
            ),
        };
    }
    let config =
        Config::load(&path).with_context(|| format!("cannot load config {}", path.display()))?;
    Ok(Some(config))
}

/// Plain lines on stderr, or structured entries to journald under systemd (`logging.rs`).
pub fn init_logging() {
    logging::init();
}

pub fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    let out = Output { json: cli.json };
    let config_path = cli.config.as_deref();
    match cli.command {
        Command::CheckConfig => check_config(config_path, &out),
        Command::Calendar { command } => {
            let config = load_config(config_path, ConfigChoice::Optional)?;
            calendar::run(command, config.as_ref(), &out)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Contracts { command } => {
            contracts::run(command, config_path, &out)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Run { once, now } => {
            desk::run(config_path, once, now.as_deref(), &out)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo { dir, force } => {
            demo::demo(dir.as_deref(), force, &out)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Tickets { command } => {
            desk::tickets(config_path, command, &out)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Queue => {
            desk::queue(config_path, &out)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Licenses {
            command: licenses::LicensesCommand::List { state },
        } => {
            licenses::list(config_path, state, &out)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Mail {
            command: desk::MailCommand::Inspect { file },
        } => {
            desk::inspect(config_path, &file, &out)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::License { command } => license::run(command, config_path, &out),
        Command::Status(args) => status::status(config_path, &args, &out),
        Command::Db { command } => db::run(command, config_path, &out),
        Command::Quarantine { command } => quarantine::run(command, config_path, &out),
        Command::Report(args) => report::report(config_path, &args, &out),
    }
}

fn check_config(path: Option<&Path>, out: &Output) -> anyhow::Result<ExitCode> {
    let path = path
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG));
    match Config::load(&path) {
        Ok(config) => {
            // Allowed but probably not meant: shown, and the config is still OK (exit 0).
            let mut warnings: Vec<String> = config
                .warnings()
                .iter()
                .map(|w| w.without_file().to_string())
                .collect();
            // What the file alone cannot show: is the signing key there, private, a key?
            let license = config.license.as_ref().map(madoguchi::license::preflight);
            if let Some(pre) = &license {
                let problems: Vec<String> = pre
                    .problems
                    .iter()
                    .map(|p| p.without_file().to_string())
                    .collect();
                if !problems.is_empty() {
                    return report_problems(&path, &problems, out);
                }
                warnings.extend(pre.warnings.iter().map(|w| w.without_file().to_string()));
            }
            let license_line = match &config.license {
                None => "not issued (no [license] section)".to_owned(),
                Some(l) => l.describe(),
            };
            let key_id = license
                .as_ref()
                .and_then(|pre| pre.public_key.as_ref())
                .map(|k| k.pid.clone());
            let summary = serde_json::json!({
                "ok": true,
                "config": path.display().to_string(),
                "address": config.desk.address,
                "staff_authentication": config.staff.authentication.as_str(),
                "license_issuer": config.license.as_ref().map(|l| l.issuer.as_str()),
                "license_key_id": key_id,
                "problems": [],
                "warnings": warnings,
            });
            out.emit(&summary, || {
                let mut text = format!(
                    "config OK: {}\n  desk address: {}\n  database: {}\n  staff mail: {}\n  \
                     license keys: {}\n",
                    path.display(),
                    config.desk.address,
                    config.storage.database.display(),
                    config.staff.authentication.describe(),
                    license_line
                );
                if let Some(id) = &key_id {
                    text.push_str(&format!("  license key id: {id}\n"));
                }
                for w in &warnings {
                    text.push_str(&format!("  WARNING: {w}\n"));
                }
                text
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => {
            let problems: Vec<String> = match &err {
                // The heading names the file; each problem says where in it.
                ConfigError::Invalid(errors) => errors
                    .problems
                    .iter()
                    .map(|p| p.without_file().to_string())
                    .collect(),
                other => vec![other.to_string()],
            };
            report_problems(&path, &problems, out)
        }
    }
}

/// `check-config`'s answer for a config the desk cannot run on (exit 1).
fn report_problems(path: &Path, problems: &[String], out: &Output) -> anyhow::Result<ExitCode> {
    let summary = serde_json::json!({
        "ok": false,
        "config": path.display().to_string(),
        "problems": problems,
    });
    out.emit(&summary, || {
        let mut text = format!(
            "config {} has {} problem(s):\n",
            path.display(),
            problems.len()
        );
        for p in problems {
            text.push_str(&format!("  - {p}\n"));
        }
        text
    })?;
    Ok(ExitCode::from(1))
}
