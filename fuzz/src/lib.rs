//! The fuzz targets' bodies, one module per target: each takes the raw input, runs one part
//! of madoguchi on it and asserts what must hold beyond "no panic". `fuzz_targets/*.rs` are
//! thin wrappers; the main crate's `tests/integration/fuzz_regressions.rs` includes this file
//! (`#[path]`) to replay `fixtures/fuzz-regressions/` and `fuzz/seeds/` through exactly the
//! same checks. Harness code: it panics (assert, expect) when an invariant breaks, by design.

pub mod config;
pub mod flowed;
pub mod form;
pub mod html;
pub mod import_csv;
pub mod mail_decide;
pub mod staff_reply;
pub mod timearg;

/// A target's body: runs on one input, panics on a finding.
pub type Target = fn(&[u8]);

/// The targets by name, as `cargo fuzz` and the regression folders name them.
pub const TARGETS: &[(&str, Target)] = &[
    ("mail_decide", mail_decide::run),
    ("form", form::run),
    ("staff_reply", staff_reply::run),
    ("import_csv", import_csv::run),
    ("config", config::run),
    ("timearg", timearg::run),
    ("html", html::run),
    ("flowed", flowed::run),
];

/// Runs the named target on `data`; `false` when there is no such target.
pub fn run(target: &str, data: &[u8]) -> bool {
    match TARGETS.iter().find(|(name, _)| *name == target) {
        Some((_, f)) => {
            f(data);
            true
        }
        None => false,
    }
}
