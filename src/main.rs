//! The `madoguchi` command: the daemon and the admin's tools in one binary. This is the only
//! place that uses `anyhow`; everything below returns typed errors.

mod cli;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// madoguchi (窓口): the e-mail support desk for desknet's NEO 分散サーバー.
#[derive(Debug, Parser)]
#[command(name = "madoguchi", version, about)]
pub struct Cli {
    /// Config file (TOML). Default: $MADOGUCHI_CONFIG, else /etc/madoguchi/madoguchi.toml.
    #[arg(long, global = true, env = "MADOGUCHI_CONFIG")]
    pub config: Option<PathBuf>,
    /// Print one JSON document instead of human text.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate the config file and report every problem at once.
    CheckConfig,
    /// The business calendar: reception hours (R5) and the license-key cutoff (R8).
    Calendar {
        #[command(subcommand)]
        command: cli::calendar::CalendarCommand,
    },
    /// Support contracts and their periods (R9–R12).
    Contracts {
        #[command(subcommand)]
        command: cli::contracts::ContractsCommand,
    },
    /// The desk: read the mailbox, ticket, reply. Without --once, the daemon.
    Run {
        /// Handle everything pending and due, then exit.
        #[arg(long)]
        once: bool,
        /// Simulate the clock from this time on (dry runs, tests).
        #[arg(long)]
        now: Option<String>,
    },
    /// A self-contained tour on the embedded default (Maildir + SQLite + outbox directory).
    Demo {
        /// Where to build the demo desk (default ./demo). Must be missing, empty, or a
        /// directory an earlier demo built.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Use DIR even though the demo did not build it: its madoguchi.toml is overwritten and
        /// its var/ (the database included) deleted.
        #[arg(long)]
        force: bool,
    },
    /// Tickets and their articles.
    Tickets {
        #[command(subcommand)]
        command: cli::desk::TicketsCommand,
    },
    /// Open tickets in acceptance order, with their age in business time.
    Queue,
    /// License key applications (R7/R8).
    Licenses {
        #[command(subcommand)]
        command: cli::licenses::LicensesCommand,
    },
    /// How the daemon reads mail.
    Mail {
        #[command(subcommand)]
        command: cli::desk::MailCommand,
    },
    /// License keys (R7, R8): the builtin issuer's signing key, checking a key.
    License {
        #[command(subcommand)]
        command: cli::license::LicenseCommand,
    },
    /// The desk's health for scripts and monitoring: exit 0 healthy, 1 degraded, 2 down.
    Status(cli::status::StatusArgs),
    /// The database: online backup, integrity check.
    Db {
        #[command(subcommand)]
        command: cli::db::DbCommand,
    },
    /// Mail held in quarantine: list, show, release after a fix.
    Quarantine {
        #[command(subcommand)]
        command: cli::quarantine::QuarantineCommand,
    },
    /// The monthly report: tickets, first response, R8, withheld replies, reminders.
    Report(cli::report::ReportArgs),
}

/// glibc gives each thread that allocates its own malloc arena (up to 8 per core) and keeps
/// freed memory in each: with the pipelined intake's threads (prepare, store, the blocking
/// pool's comings and goings) the daemon's resident memory grew 25–43 % over the 20,000-message
/// soak; with two arenas it grew 10 % (issue 12's bound is 20 %). An admin's
/// `MALLOC_ARENA_MAX` in the environment still wins.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_malloc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets an allocator parameter; called before any thread starts.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}

fn main() -> ExitCode {
    limit_malloc_arenas();
    let cli = Cli::parse();
    cli::init_logging();
    match cli::dispatch(cli) {
        Ok(code) => code,
        Err(err) if err.is::<cli::ClosedOutput>() => cli::end_as_sigpipe(),
        Err(err) => {
            let mut text = format!("madoguchi: error: {err}\n");
            for cause in err.chain().skip(1) {
                text.push_str(&format!("  caused by: {cause}\n"));
            }
            cli::write_stderr(&text);
            ExitCode::from(2)
        }
    }
}
