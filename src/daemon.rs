//! The long-running daemon: a pass over the mailbox, then wait for new mail (IMAP IDLE, or the
//! Maildir poll), for scheduled work to fall due, or for a control message. Shutdown and reload
//! are passed in as a channel (the CLI feeds it from SIGTERM/SIGINT/SIGHUP; tests feed it
//! directly), and what happens is reported to an [`Observer`] (the CLI tells systemd and
//! stderr; tests watch it). A stop during a pass lets the batch in hand finish, up to a
//! deadline: every await in a pass is a safe cancellation point (nothing is acknowledged
//! before its commit, nothing is marked sent before the server took it, store work runs on
//! its own thread and commits or rolls back by itself), so running out of time loses nothing.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::config::Config;
use crate::desk::{Desk, DeskError, PassSummary};
use crate::endpoints::{EndpointError, MailSender, MailSource};
use crate::intake::Source;

/// What the daemon is told to do from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Finish the batch in hand and stop (SIGTERM, SIGINT).
    Stop,
    /// Re-read the config after the pass in hand (SIGHUP).
    Reload,
}

/// What the daemon reports as it runs.
#[derive(Debug)]
pub enum Event<'a> {
    /// Running and serving (systemd READY=1).
    Ready,
    /// A pass finished.
    Pass(&'a PassSummary),
    /// A pass failed; the next one retries.
    PassFailed(&'a DeskError),
    /// The mailbox or the relay could not be opened; retried.
    ConnectFailed(&'a EndpointError),
    /// A stop was asked for: the batch in hand is being finished.
    Stopping,
    /// The batch in hand did not finish before the deadline (picked up at the next start).
    DrainTimedOut,
    Reloading,
    Reloaded,
    ReloadFailed(&'a str),
    /// Waiting for mail or due work, at most this long.
    Waiting(Duration),
    Stopped,
}

pub trait Observer {
    fn event(&mut self, event: Event<'_>);
}

/// Timings of the loop; the defaults are the production ones.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// How long a stop waits for the pass in hand.
    pub drain_deadline: Duration,
    /// The longest wait without a pass, even with nothing due (catches clock jumps and mail a
    /// source failed to announce).
    pub max_wait: Duration,
    /// After a failed pass (server down, disk full), wait this long before the next.
    pub retry_wait: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            drain_deadline: Duration::from_secs(20),
            max_wait: Duration::from_secs(300),
            retry_wait: Duration::from_secs(5),
        }
    }
}

struct Endpoints {
    source: MailSource,
    sender: MailSender,
}

async fn connect(config: &Config) -> Result<Endpoints, EndpointError> {
    Ok(Endpoints {
        source: MailSource::open(config).await?,
        sender: MailSender::open(config)?,
    })
}

enum PassEnd {
    Done(Result<PassSummary, DeskError>),
    Stop,
    ReloadAfter(Result<PassSummary, DeskError>),
}

/// Where the next control message comes from; a closed channel means stop.
async fn next_control(controls: &mut UnboundedReceiver<Control>) -> Control {
    controls.recv().await.unwrap_or(Control::Stop)
}

/// Runs the desk until told to stop. `clock` gives business time (the shell's clock, or a
/// simulated one); `reload` re-reads the config on [`Control::Reload`].
pub async fn run<E: std::fmt::Display>(
    mut desk: Desk,
    clock: impl Fn() -> DateTime<Utc>,
    mut controls: UnboundedReceiver<Control>,
    reload: impl Fn() -> Result<Config, E>,
    observer: &mut impl Observer,
    timing: Timing,
) {
    let mut endpoints: Option<Endpoints> = None;
    tracing::info!(address = %desk.config().desk.address, "madoguchi started.");
    observer.event(Event::Ready);
    desk.record_started().await;
    loop {
        // Connect lazily and again after a failure; the sources reconnect with backoff too.
        if endpoints.is_none() {
            match connect(desk.config()).await {
                Ok(e) => endpoints = Some(e),
                Err(err) => {
                    tracing::warn!(error = %err, "Cannot open the mailbox or the relay; will retry.");
                    observer.event(Event::ConnectFailed(&err));
                    desk.record_connect_failure(&err).await;
                }
            }
        }
        let mut wait = timing.max_wait;
        if let Some(ep) = endpoints.as_mut() {
            let began = std::time::Instant::now();
            let end = {
                let pass = desk.pass(&mut ep.source, &mut ep.sender, clock());
                tokio::pin!(pass);
                tokio::select! {
                    result = &mut pass => PassEnd::Done(result),
                    control = next_control(&mut controls) => match control {
                        Control::Stop => {
                            tracing::info!("Stopping: finishing the batch in hand.");
                            observer.event(Event::Stopping);
                            match tokio::time::timeout(timing.drain_deadline, &mut pass).await {
                                Ok(result) => {
                                    report(result, observer);
                                }
                                Err(_) => {
                                    tracing::warn!(
                                        "The batch in hand did not finish in time; it is picked up again at the next start."
                                    );
                                    observer.event(Event::DrainTimedOut);
                                }
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
                    desk.record_pass(&result, began.elapsed()).await;
                    if !report(result, observer) {
                        wait = timing.retry_wait;
                    }
                }
                PassEnd::Stop => return stopped(&mut endpoints, observer).await,
                PassEnd::ReloadAfter(result) => {
                    desk.record_pass(&result, began.elapsed()).await;
                    report(result, observer);
                    reload_desk(&mut desk, &reload, &mut endpoints, observer);
                    // Straight to a pass with the new config (and endpoints), not to a wait
                    // without any: that waited `max_wait` before reading mail again.
                    continue;
                }
            }
        } else {
            wait = timing.retry_wait;
        }
        if wait == timing.max_wait
            && let Ok(Some(due)) = desk.next_due(clock()).await
        {
            let until = (due - clock()).to_std().unwrap_or(Duration::ZERO);
            wait = wait.min(until.max(Duration::from_millis(200)));
        }
        observer.event(Event::Waiting(wait));
        let control = match endpoints.as_mut() {
            Some(ep) => tokio::select! {
                result = ep.source.wait_for_mail(wait) => match result {
                    Ok(()) => None,
                    Err(err) => {
                        // The source has already logged the failure once; this is detail.
                        tracing::debug!(error = %err, "Waiting for mail failed; the source reconnects.");
                        tokio::select! {
                            _ = tokio::time::sleep(timing.retry_wait) => None,
                            control = next_control(&mut controls) => Some(control),
                        }
                    }
                },
                control = next_control(&mut controls) => Some(control),
            },
            None => tokio::select! {
                _ = tokio::time::sleep(wait) => None,
                control = next_control(&mut controls) => Some(control),
            },
        };
        match control {
            None => {}
            Some(Control::Stop) => {
                tracing::info!("Stopping.");
                observer.event(Event::Stopping);
                return stopped(&mut endpoints, observer).await;
            }
            Some(Control::Reload) => reload_desk(&mut desk, &reload, &mut endpoints, observer),
        }
    }
}

/// Logs a pass; false when it failed.
fn report(result: Result<PassSummary, DeskError>, observer: &mut impl Observer) -> bool {
    match result {
        Ok(summary) => {
            if summary.messages > 0
                || summary.sent > 0
                || summary.opened > 0
                || summary.send_retries > 0
            {
                tracing::info!(?summary, "Pass done.");
            }
            observer.event(Event::Pass(&summary));
            true
        }
        // A failed pass leaves the mail where it was; the next pass retries it.
        Err(err) => {
            tracing::error!(error = %error_chain(&err), "Pass failed; will retry.");
            observer.event(Event::PassFailed(&err));
            false
        }
    }
}

/// An error with its causes, `a: b: c`.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn reload_desk<E: std::fmt::Display>(
    desk: &mut Desk,
    reload: &impl Fn() -> Result<Config, E>,
    endpoints: &mut Option<Endpoints>,
    observer: &mut impl Observer,
) {
    observer.event(Event::Reloading);
    let running = desk.config().storage.database.clone();
    let reloaded = reload()
        .map_err(|e| e.to_string())
        // The instance lock (`crate::instance`) is on the database the process started with.
        .and_then(|c| match c.storage.database == running {
            true => Ok(c),
            false => Err(format!(
                "[storage] database cannot change on reload ({} → {}); restart madoguchi to \
                 switch databases",
                running.display(),
                c.storage.database.display()
            )),
        })
        .and_then(|c| Desk::open_issuing(c).map_err(|e| error_chain(&e)));
    match reloaded {
        Ok(reloaded) => {
            *desk = reloaded;
            *endpoints = None;
            tracing::info!("Reloaded the config.");
            observer.event(Event::Reloaded);
        }
        Err(err) => {
            tracing::error!(error = %err, "Reload failed; keeping the running config.");
            observer.event(Event::ReloadFailed(&err));
        }
    }
}

async fn stopped(endpoints: &mut Option<Endpoints>, observer: &mut impl Observer) {
    if let Some(ep) = endpoints.as_mut() {
        ep.sender.close().await;
    }
    tracing::info!("Stopped.");
    observer.event(Event::Stopped);
}
