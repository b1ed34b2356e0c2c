//! `[metrics]`: Prometheus metrics and a health check over HTTP, off by default. The daemon
//! records through the `metrics` facade (a no-op until [`serve`] installs the Prometheus
//! recorder); a small hyper server renders the recorder's text on `/metrics` and answers
//! `/healthz`. The exposition format is the exporter's, never written here.
//!
//! What is recorded, all from the daemon loop after each pass (`Desk::after_pass`):
//! counters from the pass's `PassSummary`, the pass duration, and gauges from cheap store counts.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Method, Request, Response, StatusCode};
use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::desk::PassSummary;
use crate::store::daemon_status::QueueCounts;

pub const MESSAGES: &str = "madoguchi_messages_total";
pub const TICKETS_OPENED: &str = "madoguchi_tickets_opened_total";
pub const TICKETS_ACCEPTED: &str = "madoguchi_tickets_accepted_total";
pub const MAILS: &str = "madoguchi_mails_total";
pub const LICENSE_KEYS: &str = "madoguchi_license_keys_issued_total";
pub const LICENSE_KEY_FAILURES: &str = "madoguchi_license_key_failures_total";
pub const PASSES: &str = "madoguchi_passes_total";
pub const PASS_DURATION: &str = "madoguchi_pass_duration_seconds";
pub const OUTBOX_BACKLOG: &str = "madoguchi_outbox_backlog";
pub const OUTBOX_OLDEST: &str = "madoguchi_outbox_oldest_unsent_age_seconds";
pub const QUEUE_SIZE: &str = "madoguchi_queue_size";
pub const TICKETS: &str = "madoguchi_tickets";
pub const LAST_PASS: &str = "madoguchi_last_pass_timestamp_seconds";
pub const MAILBOX_UP: &str = "madoguchi_mailbox_up";

/// `/healthz` fails after this long without a successful pass (the daemon passes at least
/// every five minutes; `status` uses the same default for "down").
pub const HEALTH_STALE: Duration = Duration::from_secs(30 * 60);

/// Connections served at once; more wait to be accepted (a scraper needs one).
const MAX_CONNECTIONS: usize = 16;

/// Pass durations, seconds: a quiet pass takes milliseconds, a large backlog minutes.
const PASS_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("cannot listen on {addr} for [metrics]")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot set up the Prometheus recorder")]
    Recorder(#[source] metrics_exporter_prometheus::BuildError),
    #[error("cannot install the Prometheus recorder (one per process)")]
    Install(#[source] metrics::SetRecorderError<metrics_exporter_prometheus::PrometheusRecorder>),
}

/// Whether the recorder is installed: the store counts behind the gauges are read only then.
static ENABLED: AtomicBool = AtomicBool::new(false);

/// What `/healthz` answers from: the last pass's outcome.
#[derive(Debug)]
struct Health {
    /// When the last successful pass ended (`None`: none yet since the start).
    last_success: Option<Instant>,
    started: Instant,
    /// Why the last pass failed, if it did.
    failure: Option<String>,
}

fn health() -> &'static Mutex<Health> {
    static HEALTH: OnceLock<Mutex<Health>> = OnceLock::new();
    HEALTH.get_or_init(|| {
        Mutex::new(Health {
            last_success: None,
            started: Instant::now(),
            failure: None,
        })
    })
}

pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Installs the Prometheus recorder and serves `/metrics` and `/healthz` on `listen` from a
/// task on the current tokio runtime, for the life of the process. Fails when the address
/// cannot be bound (in use, not local): the daemon does not start without the metrics it was
/// configured to serve.
pub async fn serve(listen: SocketAddr) -> Result<(), MetricsError> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| MetricsError::Listen {
            addr: listen,
            source,
        })?;
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(PASS_DURATION.into()), PASS_BUCKETS)
        .map_err(MetricsError::Recorder)?
        .install_recorder()
        .map_err(|e| match e {
            metrics_exporter_prometheus::BuildError::FailedToSetGlobalRecorder(e) => {
                MetricsError::Install(e)
            }
            other => MetricsError::Recorder(other),
        })?;
    describe();
    ENABLED.store(true, Ordering::Relaxed);
    let _ = health();
    let at = listener.local_addr().unwrap_or(listen);
    tracing::info!(%at, "Serving metrics on /metrics and a health check on /healthz.");
    tokio::spawn(accept(listener, handle));
    Ok(())
}

async fn accept(listener: tokio::net::TcpListener, handle: PrometheusHandle) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors and the like: say so, and do not spin.
                tracing::warn!(error = %e, "Cannot accept a metrics connection.");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let handle = handle.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let response = respond(&req, &handle);
                async move { Ok::<_, std::convert::Infallible>(response) }
            });
            let served = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
            if let Err(e) = served {
                tracing::debug!(error = %e, "A metrics connection ended with an error.");
            }
            drop(slot);
        });
    }
}

fn respond(
    req: &Request<hyper::body::Incoming>,
    handle: &PrometheusHandle,
) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "GET only\n".into());
    }
    match req.uri().path() {
        "/metrics" => {
            handle.run_upkeep();
            let mut response = text(StatusCode::OK, handle.render());
            response.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            response
        }
        "/healthz" => match health_problem(Instant::now()) {
            None => text(StatusCode::OK, "ok\n".into()),
            Some(problem) => text(StatusCode::SERVICE_UNAVAILABLE, format!("{problem}\n")),
        },
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: try /metrics or /healthz\n".into(),
        ),
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// Why `/healthz` fails now, if it does: the last pass failed, or none succeeded for
/// [`HEALTH_STALE`].
fn health_problem(now: Instant) -> Option<String> {
    let h = health().lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(failure) = &h.failure {
        return Some(format!("last pass failed: {failure}"));
    }
    let since = h.last_success.unwrap_or(h.started);
    let idle = now.saturating_duration_since(since);
    (idle > HEALTH_STALE).then(|| format!("no successful pass for {} min", idle.as_secs() / 60))
}

/// Help texts, and every counter at zero so its series exists from the start.
fn describe() {
    describe_counter!(MESSAGES, "Messages read from the mailbox, by verdict.");
    describe_counter!(TICKETS_OPENED, "Tickets opened by new mail.");
    describe_counter!(
        TICKETS_ACCEPTED,
        "Tickets received outside reception hours whose acceptance time came (R5)."
    );
    describe_counter!(MAILS, "Send attempts, by result (sent, retried, failed).");
    describe_counter!(LICENSE_KEYS, "License keys issued (R7/R8).");
    describe_counter!(
        LICENSE_KEY_FAILURES,
        "License key issuer failures (retried)."
    );
    describe_counter!(PASSES, "Daemon passes, by result (ok, failed).");
    describe_histogram!(
        PASS_DURATION,
        metrics::Unit::Seconds,
        "How long a pass took."
    );
    describe_gauge!(OUTBOX_BACKLOG, "Outgoing mail not yet sent.");
    describe_gauge!(
        OUTBOX_OLDEST,
        "Age of the oldest unsent mail (0 when none)."
    );
    describe_gauge!(QUEUE_SIZE, "Tickets not closed.");
    describe_gauge!(TICKETS, "Tickets not closed, by state.");
    describe_gauge!(
        LAST_PASS,
        "When the last successful pass ended (Unix time)."
    );
    describe_gauge!(
        MAILBOX_UP,
        "1 when the last pass read the mailbox, 0 when it could not."
    );
    for verdict in ["article", "recorded", "quarantined", "duplicate"] {
        counter!(MESSAGES, "verdict" => verdict).absolute(0);
    }
    for result in ["sent", "retried", "failed"] {
        counter!(MAILS, "result" => result).absolute(0);
    }
    for result in ["ok", "failed"] {
        counter!(PASSES, "result" => result).absolute(0);
    }
    for name in [
        TICKETS_OPENED,
        TICKETS_ACCEPTED,
        LICENSE_KEYS,
        LICENSE_KEY_FAILURES,
    ] {
        counter!(name).absolute(0);
    }
}

/// A successful pass: its counts and duration, and `/healthz` healthy again.
pub fn record_pass(summary: &PassSummary, took: Duration, ended: DateTime<Utc>) {
    let add = |name: &'static str, n: usize| counter!(name).increment(n as u64);
    let articles = summary.new_tickets + summary.follow_ups;
    for (verdict, n) in [
        ("article", articles),
        ("recorded", summary.recorded),
        ("quarantined", summary.quarantined),
        ("duplicate", summary.duplicates),
    ] {
        counter!(MESSAGES, "verdict" => verdict).increment(n as u64);
    }
    for (result, n) in [
        ("sent", summary.sent),
        ("retried", summary.send_retries),
        ("failed", summary.send_failures),
    ] {
        counter!(MAILS, "result" => result).increment(n as u64);
    }
    add(TICKETS_OPENED, summary.new_tickets);
    add(TICKETS_ACCEPTED, summary.opened);
    add(LICENSE_KEYS, summary.keys_issued);
    add(LICENSE_KEY_FAILURES, summary.key_failures);
    counter!(PASSES, "result" => "ok").increment(1);
    histogram!(PASS_DURATION).record(took.as_secs_f64());
    gauge!(LAST_PASS).set(ended.timestamp_millis() as f64 / 1000.0);
    gauge!(MAILBOX_UP).set(1.0);
    let mut h = health().lock().unwrap_or_else(PoisonError::into_inner);
    h.last_success = Some(Instant::now());
    h.failure = None;
}

/// A failed pass (or a mailbox that could not be opened): `/healthz` fails with `why`.
pub fn record_failure(why: &str, mailbox_unreachable: bool, took: Option<Duration>) {
    counter!(PASSES, "result" => "failed").increment(1);
    if let Some(took) = took {
        histogram!(PASS_DURATION).record(took.as_secs_f64());
    }
    if mailbox_unreachable {
        gauge!(MAILBOX_UP).set(0.0);
    }
    health()
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .failure = Some(why.to_owned());
}

/// The queue's gauges from the store's counts at `now`.
pub fn record_queue(counts: &QueueCounts, now: DateTime<Utc>) {
    let oldest = counts
        .oldest_unsent_at
        .map_or(0.0, |t| (now - t).num_milliseconds().max(0) as f64 / 1000.0);
    gauge!(OUTBOX_BACKLOG).set(counts.unsent as f64);
    gauge!(OUTBOX_OLDEST).set(oldest);
    gauge!(QUEUE_SIZE).set((counts.waiting_acceptance + counts.open + counts.pending) as f64);
    for (state, n) in [
        ("waiting_acceptance", counts.waiting_acceptance),
        ("open", counts.open),
        ("pending", counts.pending),
    ] {
        gauge!(TICKETS, "state" => state).set(n as f64);
    }
}
