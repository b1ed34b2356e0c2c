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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    cli::init_logging();
    match cli::dispatch(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("madoguchi: error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::from(2)
        }
    }
}
