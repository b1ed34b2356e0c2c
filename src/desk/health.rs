//! What the daemon loop records about itself after each pass, for `madoguchi status` (the
//! `daemon_status` row) and the metrics (`crate::metrics`). Times here are the wall clock's,
//! not the desk's business clock (which `run --now` may simulate): they say when the process
//! last worked. Recording never fails a pass: a problem is logged and the loop goes on.

use std::time::Duration;

use super::{Desk, DeskError, PassSummary, lock};
use crate::clock::system_now;
use crate::endpoints::EndpointError;
use crate::store::daemon_status::DaemonEvent;

impl Desk {
    /// The daemon loop started in this process.
    pub async fn record_started(&self) {
        let pid = std::process::id();
        let at = system_now();
        let done = self
            .off_runtime(move |shell| {
                Ok(lock(&shell.store).record_daemon(DaemonEvent::Started { pid, at })?)
            })
            .await;
        warn_unrecorded(done);
    }

    /// A pass ended after `took`: its outcome goes to the store and the metrics, and with
    /// metrics on, the queue's gauges are read from the store.
    pub async fn record_pass(&self, result: &Result<PassSummary, DeskError>, took: Duration) {
        let at = system_now();
        let metrics = crate::metrics::enabled();
        match result {
            Ok(summary) => {
                let text = serde_json::to_string(summary).unwrap_or_default();
                let millis = u64::try_from(took.as_millis()).unwrap_or(u64::MAX);
                let done = self
                    .off_runtime(move |shell| {
                        let store = lock(&shell.store);
                        store.record_daemon(DaemonEvent::Passed {
                            at,
                            millis,
                            summary: &text,
                        })?;
                        Ok(if metrics {
                            Some(store.queue_counts()?)
                        } else {
                            None
                        })
                    })
                    .await;
                // Counters and gauges together, after the store work: a scrape sees a pass
                // whole or not at all (it is served on this same thread).
                if metrics {
                    crate::metrics::record_pass(summary, took, at);
                }
                if let Ok(Some(counts)) = &done {
                    crate::metrics::record_queue(counts, at);
                }
                warn_unrecorded(done);
            }
            Err(err) => {
                let unreachable = matches!(err, DeskError::Intake(_));
                self.record_failure(crate::report::chain(err), unreachable, Some(took))
                    .await;
            }
        }
    }

    /// The mailbox could not be opened (the loop retries).
    pub async fn record_connect_failure(&self, err: &EndpointError) {
        let unreachable = matches!(err, EndpointError::Intake(_));
        self.record_failure(crate::report::chain(err), unreachable, None)
            .await;
    }

    async fn record_failure(
        &self,
        error: String,
        mailbox_unreachable: bool,
        took: Option<Duration>,
    ) {
        let at = system_now();
        if crate::metrics::enabled() {
            crate::metrics::record_failure(&error, mailbox_unreachable, took);
        }
        let done = self
            .off_runtime(move |shell| {
                Ok(lock(&shell.store).record_daemon(DaemonEvent::Failed {
                    at,
                    error: &error,
                    mailbox_unreachable,
                })?)
            })
            .await;
        warn_unrecorded(done);
    }
}

fn warn_unrecorded<T>(done: Result<T, DeskError>) {
    if let Err(e) = done {
        tracing::warn!(error = %crate::report::chain(&e), "Cannot record the daemon's status.");
    }
}
