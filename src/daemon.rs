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
use crate::outbound::SendError;
use crate::service::{Heartbeat, Phase, Progress, ServiceStatus};

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
    /// The loop is alive (systemd `WATCHDOG=1`): at the watchdog's ticks, while it waits within
    /// its bound or a pass makes progress (`crate::service`).
    Alive,
    /// The status line changed (systemd `STATUS=`).
    Status {
        status: &'a ServiceStatus,
        line: &'a str,
    },
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
    /// systemd's watchdog interval (`WATCHDOG_USEC`): [`Event::Alive`] comes at a quarter of
    /// it while the loop is alive. `None`: no watchdog.
    pub watchdog: Option<Duration>,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            drain_deadline: Duration::from_secs(20),
            max_wait: Duration::from_secs(300),
            retry_wait: Duration::from_secs(5),
            watchdog: None,
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

/// What the loop keeps besides the desk: its watchdog, the status it shows, and whether the
/// relay was reached since the last (re)start.
struct Shown {
    heart: Heartbeat,
    status: ServiceStatus,
    line: String,
    relay_checked: bool,
    /// The failure of the last pass or connection attempt, if it failed (logged once until it
    /// clears, or for a connection attempt until the step that fails changes).
    failing: Option<String>,
}

impl Shown {
    /// Tells the observer the status line when it changed.
    fn show(&mut self, now: DateTime<Utc>, observer: &mut impl Observer) {
        let line = self.status.line(now);
        if line != self.line {
            self.line = line;
            observer.event(Event::Status {
                status: &self.status,
                line: &self.line,
            });
        }
    }

    /// Awaits `work` or the next control message, pinging the watchdog at its ticks while the
    /// heartbeat says the loop is alive (`progress`: the desk's, during a pass).
    async fn beside<T>(
        &mut self,
        work: impl Future<Output = T>,
        controls: &mut UnboundedReceiver<Control>,
        progress: Option<&Progress>,
        observer: &mut impl Observer,
    ) -> Result<T, Control> {
        tokio::pin!(work);
        loop {
            tokio::select! {
                out = &mut work => return Ok(out),
                control = next_control(controls) => return Err(control),
                () = self.heart.tick() => {
                    if self.heart.alive(progress.map(Progress::count)) {
                        observer.event(Event::Alive);
                    }
                }
            }
        }
    }

    /// Awaits `work`, a step that should end within half the watchdog interval, pinging
    /// meanwhile.
    async fn beating<T>(
        &mut self,
        work: impl Future<Output = T>,
        observer: &mut impl Observer,
    ) -> T {
        self.heart.begin();
        tokio::pin!(work);
        loop {
            tokio::select! {
                out = &mut work => return out,
                () = self.heart.tick() => {
                    if self.heart.alive(None) {
                        observer.event(Event::Alive);
                    }
                }
            }
        }
    }
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
    let mut shown = Shown {
        heart: Heartbeat::new(timing.watchdog),
        status: ServiceStatus::new(desk.config()),
        line: String::new(),
        relay_checked: false,
        failing: None,
    };
    let mut ready = false;
    tracing::info!(address = %desk.config().desk.address, "madoguchi started.");
    shown.show(clock(), observer);
    loop {
        // Connect lazily and again after a failure; the sources reconnect with backoff too.
        if endpoints.is_none() {
            endpoints = open_endpoints(&desk, &clock, &mut shown, observer).await;
        }
        if !ready {
            // The store is open and the mailbox and relay were reached, or their failure logged.
            ready = true;
            shown.status.phase = Phase::Running;
            observer.event(Event::Ready);
            desk.record_started().await;
            show_backlog(&desk, &clock, &mut shown, observer).await;
        }
        let mut wait = timing.max_wait;
        if let Some(ep) = endpoints.as_mut() {
            let began = std::time::Instant::now();
            let progress = desk.progress();
            shown.heart.step(progress.count());
            let end = {
                let pass = desk.pass(&mut ep.source, &mut ep.sender, clock());
                tokio::pin!(pass);
                let mut reload_after = false;
                loop {
                    let next = shown
                        .beside(&mut pass, &mut controls, Some(&progress), observer)
                        .await;
                    match next {
                        Ok(result) if reload_after => break PassEnd::ReloadAfter(result),
                        Ok(result) => break PassEnd::Done(result),
                        // A reload waits for the pass; the pass itself is not interrupted.
                        Err(Control::Reload) => {
                            if !reload_after {
                                reload_after = true;
                                reloading(&mut shown, clock(), observer);
                            }
                        }
                        Err(Control::Stop) => {
                            tracing::info!("Stopping: finishing the batch in hand.");
                            stopping(&mut shown, clock(), observer);
                            match tokio::time::timeout(timing.drain_deadline, &mut pass).await {
                                Ok(result) => {
                                    report(result, &clock, &mut shown, observer);
                                }
                                Err(_) => {
                                    tracing::warn!(
                                        "The batch in hand did not finish in time; it is picked up again at the next start."
                                    );
                                    observer.event(Event::DrainTimedOut);
                                }
                            }
                            break PassEnd::Stop;
                        }
                    }
                }
            };
            match end {
                // A failed pass keeps the endpoints: the sources reconnect by themselves, with
                // their own backoff, which a fresh connection would forget.
                PassEnd::Done(result) => {
                    desk.record_pass(&result, began.elapsed()).await;
                    if !report(result, &clock, &mut shown, observer) {
                        wait = timing.retry_wait;
                    }
                }
                PassEnd::Stop => return stopped(&mut endpoints, observer).await,
                PassEnd::ReloadAfter(result) => {
                    desk.record_pass(&result, began.elapsed()).await;
                    report(result, &clock, &mut shown, observer);
                    reload_desk(
                        &mut desk,
                        &reload,
                        &mut endpoints,
                        &mut shown,
                        &clock,
                        observer,
                    );
                    // Straight to a pass with the new config (and endpoints), not to a wait
                    // without any: that waited `max_wait` before reading mail again.
                    continue;
                }
            }
            show_backlog(&desk, &clock, &mut shown, observer).await;
        } else {
            wait = timing.retry_wait;
            due_without_mailbox(&mut desk, &clock, &mut shown, observer).await;
        }
        if wait == timing.max_wait
            && let Ok(Some(due)) = shown.beating(desk.next_due(clock()), observer).await
        {
            let until = (due - clock()).to_std().unwrap_or(Duration::ZERO);
            wait = wait.min(until.max(Duration::from_millis(200)));
        }
        observer.event(Event::Waiting(wait));
        shown.heart.waiting(wait);
        let control = match endpoints.as_mut() {
            Some(ep) => {
                let waited = shown
                    .beside(ep.source.wait_for_mail(wait), &mut controls, None, observer)
                    .await;
                match waited {
                    Ok(Ok(())) => None,
                    Ok(Err(err)) => {
                        // The source has already logged the failure once; this is detail.
                        tracing::debug!(error = %err, "Waiting for mail failed; the source reconnects.");
                        shown.heart.waiting(timing.retry_wait);
                        let sleep = tokio::time::sleep(timing.retry_wait);
                        shown
                            .beside(sleep, &mut controls, None, observer)
                            .await
                            .err()
                    }
                    Err(control) => Some(control),
                }
            }
            None => {
                let sleep = tokio::time::sleep(wait);
                shown
                    .beside(sleep, &mut controls, None, observer)
                    .await
                    .err()
            }
        };
        match control {
            None => {}
            Some(Control::Stop) => {
                tracing::info!("Stopping.");
                stopping(&mut shown, clock(), observer);
                return stopped(&mut endpoints, observer).await;
            }
            Some(Control::Reload) => {
                reloading(&mut shown, clock(), observer);
                reload_desk(
                    &mut desk,
                    &reload,
                    &mut endpoints,
                    &mut shown,
                    &clock,
                    observer,
                );
            }
        }
    }
}

/// Opens the mailbox and the relay; the relay is reached once per (re)start, the mailbox
/// until it opens. Each failure is logged and shown.
async fn open_endpoints(
    desk: &Desk,
    clock: &impl Fn() -> DateTime<Utc>,
    shown: &mut Shown,
    observer: &mut impl Observer,
) -> Option<Endpoints> {
    let mut endpoints = match shown.beating(connect(desk.config()), observer).await {
        Ok(e) => {
            shown.status.mailbox_down = None;
            Some(e)
        }
        // With its causes (why the server could not be used), once until what failed
        // changes: the same step on the same server may fail with another OS error each time
        // (reset, broken pipe, closed).
        Err(err) => {
            let what = err.to_string();
            let text = error_chain(&err);
            if shown.failing.as_deref() == Some(what.as_str()) {
                tracing::debug!(error = %text, "Cannot open the mailbox or the relay again; will retry.");
            } else {
                tracing::warn!(error = %text, "Cannot open the mailbox or the relay; will retry (logged once until it changes).");
            }
            shown.failing = Some(what);
            desk.record_connect_failure(&err).await;
            ServiceStatus::down(&mut shown.status.mailbox_down, clock(), error_chain(&err));
            observer.event(Event::ConnectFailed(&err));
            None
        }
    };
    if !shown.relay_checked {
        shown.relay_checked = true;
        let reached = match endpoints.as_mut() {
            Some(ep) => shown.beating(ep.sender.reach(), observer).await,
            // The mailbox is down: the relay is still checked, once, with a sender of its own.
            None => match MailSender::open(desk.config()) {
                Ok(mut sender) => {
                    let reached = shown.beating(sender.reach(), observer).await;
                    sender.close().await;
                    reached
                }
                Err(err) => Err(SendError::Temporary(error_chain(&err))),
            },
        };
        match reached {
            Ok(()) => shown.status.relay_down = None,
            Err(SendError::Temporary(why) | SendError::Permanent(why)) => {
                ServiceStatus::down(&mut shown.status.relay_down, clock(), why);
            }
        }
    }
    shown.show(clock(), observer);
    endpoints
}

/// The mailbox cannot be opened: what is due (queued replies, keys, reminders) still goes
/// out through a sender of its own. Its failures are logged at debug level: the pass proper
/// reports them once the mailbox is back, and the sends log their own retries.
async fn due_without_mailbox(
    desk: &mut Desk,
    clock: &impl Fn() -> DateTime<Utc>,
    shown: &mut Shown,
    observer: &mut impl Observer,
) {
    let mut sender = match MailSender::open(desk.config()) {
        Ok(sender) => sender,
        Err(err) => {
            tracing::debug!(error = %error_chain(&err), "Cannot open the relay for due work.");
            return;
        }
    };
    match shown
        .beating(desk.due_only(&mut sender, clock()), observer)
        .await
    {
        Ok(summary) if summary.sent > 0 => {
            tracing::info!(
                sent = summary.sent,
                "Sent what was due while the mailbox is unreachable."
            );
        }
        Ok(_) => {}
        Err(err) => {
            tracing::debug!(error = %error_chain(&err), "Due work without the mailbox failed.");
        }
    }
    sender.close().await;
}

/// Reads the backlog for the status line; a failure only keeps the old figures.
async fn show_backlog(
    desk: &Desk,
    clock: &impl Fn() -> DateTime<Utc>,
    shown: &mut Shown,
    observer: &mut impl Observer,
) {
    match shown.beating(desk.backlog(), observer).await {
        Ok(backlog) => shown.status.backlog = Some(backlog),
        Err(err) => tracing::debug!(error = %error_chain(&err), "Cannot count the backlog."),
    }
    shown.show(clock(), observer);
}

fn reloading(shown: &mut Shown, now: DateTime<Utc>, observer: &mut impl Observer) {
    shown.status.phase = Phase::Reloading;
    observer.event(Event::Reloading);
    shown.show(now, observer);
}

fn stopping(shown: &mut Shown, now: DateTime<Utc>, observer: &mut impl Observer) {
    shown.status.phase = Phase::Stopping;
    observer.event(Event::Stopping);
    shown.show(now, observer);
}

/// Logs a pass and keeps it for the status line; false when it failed.
fn report(
    result: Result<PassSummary, DeskError>,
    clock: &impl Fn() -> DateTime<Utc>,
    shown: &mut Shown,
    observer: &mut impl Observer,
) -> bool {
    // Shown with the backlog, read next.
    let status = &mut shown.status;
    match result {
        Ok(summary) => {
            if let Some(was) = shown.failing.take() {
                tracing::info!(error = %was, "Pass succeeded again; the failure has cleared.");
            }
            if summary.messages > 0
                || summary.sent > 0
                || summary.opened > 0
                || summary.send_retries > 0
            {
                tracing::info!(?summary, "Pass done.");
            }
            observer.event(Event::Pass(&summary));
            status.mailbox_down = None;
            status.pass_failed = None;
            if summary.sent > 0 {
                status.relay_down = None;
            }
            status.last_pass = Some((clock(), summary));
            true
        }
        // A failed pass leaves the mail where it was; the next pass retries it.
        Err(err) => {
            let why = error_chain(&err);
            // The same failure again (a full disk fails every retry until space returns, in
            // whichever step writes first) is logged once until it clears.
            let root = crate::report::root_cause(&err);
            if shown.failing.as_deref() == Some(root.as_str()) {
                tracing::debug!(error = %why, "Pass failed again; will retry.");
            } else {
                tracing::error!(error = %why, "Pass failed; will retry (logged once until it clears).");
            }
            shown.failing = Some(root);
            observer.event(Event::PassFailed(&err));
            if matches!(err, DeskError::Intake(_)) {
                ServiceStatus::down(&mut status.mailbox_down, clock(), why.clone());
            }
            status.pass_failed = Some((clock(), why));
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
    shown: &mut Shown,
    clock: &impl Fn() -> DateTime<Utc>,
    observer: &mut impl Observer,
) {
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
    shown.status.phase = Phase::Running;
    match reloaded {
        Ok(reloaded) => {
            *desk = reloaded;
            *endpoints = None;
            shown.status.reconfigure(desk.config());
            // The new config's relay is reached again before the next pass.
            shown.relay_checked = false;
            tracing::info!("Reloaded the config.");
            observer.event(Event::Reloaded);
        }
        Err(err) => {
            tracing::error!(error = %err, "Reload failed; keeping the running config.");
            observer.event(Event::ReloadFailed(&err));
        }
    }
    shown.show(clock(), observer);
}

async fn stopped(endpoints: &mut Option<Endpoints>, observer: &mut impl Observer) {
    if let Some(ep) = endpoints.as_mut() {
        ep.sender.close().await;
    }
    tracing::info!("Stopped.");
    observer.event(Event::Stopped);
}
