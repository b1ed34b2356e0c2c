//! `madoguchi run` as a service: the library's daemon loop (`madoguchi::daemon::run`) fed by
//! the process's signals (SIGTERM/SIGINT stop, SIGHUP reloads) and reporting to systemd
//! (sd_notify) and stderr.

use std::path::PathBuf;

use anyhow::Context;
use chrono::{DateTime, Utc};
use madoguchi::daemon::{Control, Event, Observer, Timing};
use madoguchi::desk::Desk;
use sd_notify::NotifyState;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc::UnboundedSender;

use super::desk::{config_for_desk, summary_text};

/// Turns the process's signals into control messages for the daemon loop.
fn forward_signals(controls: UnboundedSender<Control>) -> anyhow::Result<()> {
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    let mut hup = signal(SignalKind::hangup()).context("cannot watch SIGHUP")?;
    tokio::spawn(async move {
        loop {
            let control = tokio::select! {
                _ = term.recv() => Control::Stop,
                _ = int.recv() => Control::Stop,
                _ = hup.recv() => Control::Reload,
            };
            if controls.send(control).is_err() {
                return;
            }
        }
    });
    Ok(())
}

fn notify(state: &[NotifyState]) {
    // Not under systemd (no NOTIFY_SOCKET) this does nothing; a failure is only worth a line.
    if let Err(e) = sd_notify::notify(state) {
        tracing::debug!(error = %e, "Cannot notify systemd.");
    }
}

/// systemd and stderr, as an admin reads them.
struct Service;

impl Observer for Service {
    fn event(&mut self, event: Event<'_>) {
        match event {
            Event::Ready => {
                super::write_stderr(
                    "madoguchi: running (SIGTERM or Ctrl-C stops, SIGHUP re-reads the config)\n",
                );
                notify(&[NotifyState::Ready]);
            }
            Event::Pass(summary) => {
                if summary.messages > 0
                    || summary.sent > 0
                    || summary.opened > 0
                    || summary.send_retries > 0
                {
                    super::write_stderr(&format!("madoguchi: {}", summary_text(summary)));
                }
            }
            Event::Status { line, .. } => notify(&[NotifyState::Status(line)]),
            Event::Alive => notify(&[NotifyState::Watchdog]),
            Event::PassFailed(_)
            | Event::ConnectFailed(_)
            | Event::DrainTimedOut
            | Event::Waiting(_) => {}
            Event::Stopping => notify(&[NotifyState::Stopping]),
            // MONOTONIC_USEC lets systemd (Type=notify-reload, 253+) match this to its SIGHUP.
            Event::Reloading => match NotifyState::monotonic_usec_now() {
                Ok(now) => notify(&[NotifyState::Reloading, now]),
                Err(_) => notify(&[NotifyState::Reloading]),
            },
            Event::Reloaded | Event::ReloadFailed(_) => notify(&[NotifyState::Ready]),
            Event::Stopped => super::write_stderr("madoguchi: stopped\n"),
        }
    }
}

pub async fn daemon(
    desk: Desk,
    config_path: Option<PathBuf>,
    clock: impl Fn() -> DateTime<Utc>,
) -> anyhow::Result<()> {
    let (controls, received) = tokio::sync::mpsc::unbounded_channel();
    forward_signals(controls)?;
    let reload = || config_for_desk(config_path.as_deref()).map_err(|e| format!("{e:#}"));
    madoguchi::daemon::run(
        desk,
        clock,
        received,
        reload,
        &mut Service,
        Timing {
            // WATCHDOG_USEC (and WATCHDOG_PID, when set, naming this process).
            watchdog: sd_notify::watchdog_enabled(),
            ..Timing::default()
        },
    )
    .await;
    Ok(())
}
