//! Waiting for a condition with a deadline instead of sleeping and hoping: a test goes on as
//! soon as what it needs is there, and fails with what it was waiting for when it never comes.

use std::time::{Duration, Instant};

/// How often a condition is checked again.
pub const POLL: Duration = Duration::from_millis(50);

/// Checks `done` until it holds; panics with `what` once `limit` has passed.
#[track_caller]
pub fn until(limit: Duration, what: &str, done: impl FnMut() -> bool) {
    assert!(
        within(limit, done),
        "timed out after {limit:?} waiting for: {what}"
    );
}

/// Checks `done` until it holds or `limit` has passed; whether it held.
pub fn within(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(POLL);
    }
}
