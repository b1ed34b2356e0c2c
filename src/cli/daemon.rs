//! The long-running daemon: a pass over the mailbox, then wait for the next poll or a signal.
//! Signals map to an enum (SIGTERM/SIGINT stop, SIGHUP reload); shutdown is passed in as a
//! value, never global. A pass is never interrupted mid-batch: the store transaction and the
//! acknowledgements it guards always finish together.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use madoguchi::desk::Desk;
use tokio::signal::unix::{SignalKind, signal};

use super::desk::{config_for_desk, run_pass, summary_text};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Control {
    Stop,
    Reload,
}

/// How often the Maildir is looked at. IMAP will wake on IDLE instead.
const POLL: Duration = Duration::from_secs(2);

pub async fn daemon(
    mut desk: Desk,
    config_path: Option<PathBuf>,
    clock: impl Fn() -> DateTime<Utc>,
) -> anyhow::Result<()> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    tracing::info!(address = %desk.config().desk.address, "madoguchi started.");
    eprintln!(
        "madoguchi: running; watching the inbox every {}s (Ctrl-C to stop)",
        POLL.as_secs()
    );
    loop {
        match run_pass(&mut desk, clock()).await {
            Ok(summary) if summary.messages > 0 || summary.sent > 0 || summary.opened > 0 => {
                tracing::info!(?summary, "Pass done.");
                eprint!("madoguchi: {}", summary_text(&summary));
            }
            Ok(_) => {}
            // A failed pass leaves the mail where it was; the next pass retries it.
            Err(err) => tracing::error!(error = %format!("{err:#}"), "Pass failed; will retry."),
        }
        let control = tokio::select! {
            _ = tokio::time::sleep(POLL) => None,
            _ = term.recv() => Some(Control::Stop),
            _ = int.recv() => Some(Control::Stop),
            _ = hup.recv() => Some(Control::Reload),
        };
        match control {
            None => {}
            Some(Control::Stop) => {
                tracing::info!("Stopping on signal.");
                eprintln!("madoguchi: stopped");
                return Ok(());
            }
            Some(Control::Reload) => {
                match config_for_desk(config_path.as_deref()).and_then(|c| Ok(Desk::open(c)?)) {
                    Ok(reloaded) => {
                        desk = reloaded;
                        tracing::info!("Reloaded the config.");
                    }
                    Err(err) => {
                        tracing::error!(error = %format!("{err:#}"), "Reload failed; keeping the running config.")
                    }
                }
            }
        }
    }
}
