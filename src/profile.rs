//! Where a pass spends its time, by stage (issue 14): the desk wraps each stage in a span of
//! target [`TARGET`] named after the stage (`fetch`, `parse`, `decide`, `sqlite`, `compose`,
//! `move`, `send` …). Nothing is recorded unless a [`StageTimes`] layer is installed
//! (`MADOGUCHI_PROFILE=1` with `run --once`): the CLI then prints the totals at the end.
//!
//! For each stage name: how many spans closed, their time *busy* (entered: for a span on a
//! blocking thread its whole run; for an async stage only while it was polled, i.e. our own
//! CPU time) and their *wall* time (created → closed: for an async stage this includes waiting
//! for the server). Spans nest (`parse` inside `tx`): a parent's times include its children's.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tracing::span::{Attributes, Id};
use tracing::{Metadata, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// The target of the stage spans.
pub const TARGET: &str = "madoguchi::profile";

/// One stage's totals.
#[derive(Debug, Clone, Copy, Default)]
pub struct Totals {
    pub spans: u64,
    pub busy: Duration,
    pub wall: Duration,
    /// The busy time of those spans that ran inside a `tx` span.
    pub in_tx: Duration,
}

/// The layer that adds up stage spans; clones share the totals.
#[derive(Debug, Clone, Default)]
pub struct StageTimes {
    totals: Arc<Mutex<BTreeMap<&'static str, Totals>>>,
}

/// Kept in a span's extensions while it lives.
struct Timing {
    created: Instant,
    entered: Option<Instant>,
    busy: Duration,
}

impl StageTimes {
    /// Whether `metadata` is a stage span (the layer's filter).
    pub fn wants(metadata: &Metadata<'_>) -> bool {
        metadata.target() == TARGET
    }

    /// The totals so far, by stage name.
    pub fn totals(&self) -> BTreeMap<&'static str, Totals> {
        self.totals
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// A table: per stage, spans, busy and wall time in total and per message (`messages`).
    pub fn table(&self, messages: usize) -> String {
        let per = |d: Duration| d.as_secs_f64() * 1e6 / messages.max(1) as f64;
        let mut out = format!(
            "stage profile ({messages} messages; µs per message; busy = on CPU in the span, wall = span's life)\n{:<14} {:>8} {:>12} {:>12} {:>10} {:>10}\n",
            "stage", "spans", "busy ms", "wall ms", "busy µs/m", "wall µs/m"
        );
        for (name, t) in self.totals() {
            out.push_str(&format!(
                "{name:<14} {:>8} {:>12.1} {:>12.1} {:>10.1} {:>10.1}\n",
                t.spans,
                t.busy.as_secs_f64() * 1e3,
                t.wall.as_secs_f64() * 1e3,
                per(t.busy),
                per(t.wall),
            ));
        }
        // The store's own share of the batch transactions: `tx` less what ran inside it and is
        // not SQLite (hashing, parsing, classifying, matching, deciding, composing).
        let totals = self.totals();
        if let Some(tx) = totals.get("tx") {
            let inner: Duration = ["sha256", "parse", "decide", "compose", "classify", "match"]
                .iter()
                .filter_map(|n| totals.get(n))
                .map(|t| t.in_tx)
                .sum();
            let sqlite = tx.busy.saturating_sub(inner);
            out.push_str(&format!(
                "{:<14} {:>8} {:>12.1} {:>12} {:>10.1} {:>10}\n",
                "=sqlite",
                "",
                sqlite.as_secs_f64() * 1e3,
                "",
                per(sqlite),
                ""
            ));
        }
        out
    }
}

impl<S> Layer<S> for StageTimes
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, _attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(Timing {
                created: Instant::now(),
                entered: None,
                busy: Duration::ZERO,
            });
        }
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id)
            && let Some(t) = span.extensions_mut().get_mut::<Timing>()
        {
            t.entered = Some(Instant::now());
        }
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id)
            && let Some(t) = span.extensions_mut().get_mut::<Timing>()
            && let Some(at) = t.entered.take()
        {
            t.busy += at.elapsed();
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else {
            return;
        };
        let Some(t) = span.extensions_mut().remove::<Timing>() else {
            return;
        };
        let mut totals = self.totals.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = totals.entry(span.name()).or_default();
        entry.spans += 1;
        entry.busy += t.busy;
        entry.wall += t.created.elapsed();
        if span.scope().skip(1).any(|parent| parent.name() == "tx") {
            entry.in_tx += t.busy;
        }
    }
}

/// A stage span: `stage!("parse")`. Disabled (nearly free) unless the layer is installed.
#[macro_export]
macro_rules! stage {
    ($name:literal) => {
        tracing::trace_span!(target: "madoguchi::profile", $name)
    };
}
