//! The shell's clock: the one place that reads the wall clock (clippy.toml forbids it elsewhere).

use chrono::{DateTime, Utc};

/// The current instant. Everything below the shell takes time as a parameter instead.
#[allow(clippy::disallowed_methods)]
pub fn system_now() -> DateTime<Utc> {
    Utc::now()
}
