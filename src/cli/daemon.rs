//! The long-running daemon. One task: a pass over the mailbox, then wait for new mail (IMAP
//! IDLE, or the Maildir poll), for scheduled work to fall due, or for a signal. Signals map to
//! an enum (SIGTERM/SIGINT stop, SIGHUP reload); shutdown is a value passed around, never a
//! global. A stop during a pass lets the batch in hand finish, up to a deadline: every await in
//! a pass is a safe cancellation point (nothing is acknowledged before its commit, nothing is
//! marked sent before the server took it), so running out of time loses nothing.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use madoguchi::desk::Desk;
use madoguchi::endpoints::{MailSender, MailSource};
use madoguchi::intake::Source;
use sd_notify::NotifyState;
use tokio::signal::unix::{Signal, SignalKind, signal};

use super::desk::{config_for_desk, summary_text};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Stop,
    Reload,
}

/// How long a stop waits for the pass in hand.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(20);
/// The longest the daemon waits without a pass, even with nothing due (catches clock jumps and
/// mail a source failed to announce).
const MAX_WAIT: Duration = Duration::from_secs(300);
/// After a failed pass (server down, disk full), wait this long before the next.
const RETRY_WAIT: Duration = Duration::from_secs(5);

struct Signals {
    term: Signal,
    int: Signal,
    hup: Signal,
}

impl Signals {
    fn new() -> anyhow::Result<Self> {
        Ok(Self {
            term: signal(SignalKind::terminate()).context("cannot watch SIGTERM")?,
            int: signal(SignalKind::interrupt()).context("cannot watch SIGINT")?,
            hup: signal(SignalKind::hangup()).context("cannot watch SIGHUP")?,
        })
    }

    async fn next(&mut self) -> Control {
        tokio::select! {
            _ = self.term.recv() => Control::Stop,
            _ = self.int.recv() => Control::Stop,
            _ = self.hup.recv() => Control::Reload,
        }
    }
}

fn notify(state: &[NotifyState]) {
    // Not under systemd (no NOTIFY_SOCKET) this does nothing; a failure is only worth a line.
    if let Err(e) = sd_notify::notify(state) {
        tracing::debug!(error = %e, "Cannot notify systemd.");
    }
}

enum PassEnd {
    Done(Result<madoguchi::desk::PassSummary, madoguchi::desk::DeskError>),
    Stop,
    ReloadAfter(Result<madoguchi::desk::PassSummary, madoguchi::desk::DeskError>),
}

struct Endpoints {
    source: MailSource,
    sender: MailSender,
}

async fn connect(desk: &Desk) -> anyhow::Result<Endpoints> {
    Ok(Endpoints {
        source: MailSource::open(desk.config()).await?,
        sender: MailSender::open(desk.config())?,
    })
}

pub async fn daemon(
    mut desk: Desk,
    config_path: Option<PathBuf>,
    clock: impl Fn() -> DateTime<Utc>,
) -> anyhow::Result<()> {
    let mut signals = Signals::new()?;
    let mut endpoints: Option<Endpoints> = None;
    tracing::info!(address = %desk.config().desk.address, "madoguchi started.");
    super::write_stderr(
        "madoguchi: running (SIGTERM or Ctrl-C stops, SIGHUP re-reads the config)\n",
    );
    notify(&[NotifyState::Ready, NotifyState::Status("running")]);
    loop {
        // Connect lazily and again after a failure; the sources reconnect with backoff too.
        if endpoints.is_none() {
            match connect(&desk).await {
                Ok(e) => endpoints = Some(e),
                Err(err) => {
                    tracing::warn!(error = %format!("{err:#}"), "Cannot open the mailbox or the relay; will retry.")
                }
            }
        }
        let mut wait = MAX_WAIT;
        if let Some(ep) = endpoints.as_mut() {
            let end = {
                let pass = desk.pass(&mut ep.source, &mut ep.sender, clock());
                tokio::pin!(pass);
                tokio::select! {
                    result = &mut pass => PassEnd::Done(result),
                    control = signals.next() => match control {
                        Control::Stop => {
                            tracing::info!("Stopping: finishing the batch in hand.");
                            notify(&[NotifyState::Stopping]);
                            match tokio::time::timeout(DRAIN_DEADLINE, &mut pass).await {
                                Ok(result) => {
                                    report(result);
                                }
                                Err(_) => tracing::warn!(
                                    "The batch in hand did not finish in time; it is picked up again at the next start."
                                ),
                            }
                            PassEnd::Stop
                        }
                        // A reload waits for the pass; the pass itself is not interrupted.
                        Control::Reload => PassEnd::ReloadAfter(pass.await),
                    },
                }
            };
            match end {
                // A failed pass keeps the endpoints: the sources reconnect by themselves, with
                // their own backoff, which a fresh connection would forget.
                PassEnd::Done(result) => {
                    if !report(result) {
                        wait = RETRY_WAIT;
                    }
                }
                PassEnd::Stop => return stopped(&mut endpoints).await,
                PassEnd::ReloadAfter(result) => {
                    report(result);
                    reload(&mut desk, config_path.as_deref(), &mut endpoints);
                }
            }
        } else {
            wait = RETRY_WAIT;
        }
        if wait == MAX_WAIT
            && let Ok(Some(due)) = desk.store().next_due()
        {
            let until = (due - clock()).to_std().unwrap_or(Duration::ZERO);
            wait = wait.min(until.max(Duration::from_millis(200)));
        }
        let control = match endpoints.as_mut() {
            Some(ep) => tokio::select! {
                result = ep.source.wait_for_mail(wait) => match result {
                    Ok(()) => None,
                    Err(err) => {
                        // The source has already logged the failure once; this is detail.
                        tracing::debug!(error = %err, "Waiting for mail failed; the source reconnects.");
                        tokio::select! {
                            _ = tokio::time::sleep(RETRY_WAIT) => None,
                            control = signals.next() => Some(control),
                        }
                    }
                },
                control = signals.next() => Some(control),
            },
            None => tokio::select! {
                _ = tokio::time::sleep(wait) => None,
                control = signals.next() => Some(control),
            },
        };
        match control {
            None => {}
            Some(Control::Stop) => {
                notify(&[NotifyState::Stopping]);
                return stopped(&mut endpoints).await;
            }
            Some(Control::Reload) => reload(&mut desk, config_path.as_deref(), &mut endpoints),
        }
    }
}

/// Logs a pass; false when it failed.
fn report(result: Result<madoguchi::desk::PassSummary, madoguchi::desk::DeskError>) -> bool {
    match result {
        Ok(summary) => {
            if summary.messages > 0
                || summary.sent > 0
                || summary.opened > 0
                || summary.send_retries > 0
            {
                tracing::info!(?summary, "Pass done.");
                super::write_stderr(&format!("madoguchi: {}", summary_text(&summary)));
            }
            true
        }
        // A failed pass leaves the mail where it was; the next pass retries it.
        Err(err) => {
            tracing::error!(error = %format!("{:#}", anyhow::Error::new(err)), "Pass failed; will retry.");
            false
        }
    }
}

fn reload(
    desk: &mut Desk,
    config_path: Option<&std::path::Path>,
    endpoints: &mut Option<Endpoints>,
) {
    notify(&[NotifyState::Reloading]);
    match config_for_desk(config_path).and_then(|c| Ok(Desk::open(c)?)) {
        Ok(reloaded) => {
            *desk = reloaded;
            *endpoints = None;
            tracing::info!("Reloaded the config.");
        }
        Err(err) => {
            tracing::error!(error = %format!("{err:#}"), "Reload failed; keeping the running config.")
        }
    }
    notify(&[NotifyState::Ready]);
}

async fn stopped(endpoints: &mut Option<Endpoints>) -> anyhow::Result<()> {
    if let Some(ep) = endpoints.as_mut() {
        ep.sender.close().await;
    }
    tracing::info!("Stopped.");
    super::write_stderr("madoguchi: stopped\n");
    Ok(())
}
