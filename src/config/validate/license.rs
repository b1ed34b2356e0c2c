//! `[license]`: issuing license keys by mail. Selected by `issuer` like `[intake]` by `kind`: a
//! key that belongs to the other issuer is an error rather than silently ignored. Whether the
//! signing key file exists and is private is not checked here but by `check-config`
//! (`license::preflight`): `license keygen FILE` must work on a config that already names FILE.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::super::model::*;
use super::super::raw::RawLicense;
use super::super::secrets::expand_vars;
use super::{Problems, duration_field, parse_hhmm};

/// The longest `command_timeout`: a generator that takes longer is broken, not slow.
const MAX_COMMAND_TIMEOUT: Duration = Duration::from_secs(600);

/// `None` without the section (license keys are off) or after a reported problem.
pub(super) fn validate_license(
    raw: Option<&RawLicense>,
    base: &Path,
    p: &mut Problems,
) -> Option<LicenseConfig> {
    let raw = raw?;
    let approval = match raw.approval.as_deref() {
        None => Some(Approval::default()),
        Some(text) => text.parse().ok().or_else(|| {
            p.push(
                "license.approval",
                format!("{text:?} is not an approval mode; use \"auto\" or \"staff\""),
            );
            None
        }),
    };
    let remind_at = match raw.remind_at.as_deref() {
        None => Some(DEFAULT_LICENSE_REMIND_AT),
        Some(text) => parse_hhmm(text)
            .map_err(|msg| p.push("license.remind_at", format!("{text:?} {msg}")))
            .ok(),
    };
    let product = raw
        .product
        .clone()
        .unwrap_or_else(|| DEFAULT_LICENSE_PRODUCT.to_owned());
    if product.trim().is_empty() || product.chars().any(char::is_control) {
        p.push(
            "license.product",
            format!("{product:?} must be a product name on one line"),
        );
    }
    let issuer = validate_issuer(raw, base, p);
    Some(LicenseConfig {
        approval: approval?,
        early: raw.early.unwrap_or(false),
        remind_at: remind_at?,
        product,
        issuer: issuer?,
    })
}

fn validate_issuer(raw: &RawLicense, base: &Path, p: &mut Problems) -> Option<IssuerConfig> {
    let only_for = |p: &mut Problems, keys: &[(&str, bool)], issuer: &str| {
        for (name, set) in keys {
            if *set {
                p.push(
                    format!("license.{name}"),
                    format!("only used with issuer = \"{issuer}\""),
                );
            }
        }
    };
    match raw.issuer.as_deref().unwrap_or("builtin") {
        "builtin" => {
            only_for(
                p,
                &[
                    ("command", raw.command.is_some()),
                    ("command_timeout", raw.command_timeout.is_some()),
                ],
                "command",
            );
            let Some(template) = raw.signing_key_file.as_deref() else {
                p.push(
                    "license.signing_key_file",
                    "required with issuer = \"builtin\": the file holding the signing key \
                     (make one with `madoguchi license keygen FILE`)",
                );
                return None;
            };
            let signing_key_file = key_file(p, template, base)?;
            Some(IssuerConfig::Builtin { signing_key_file })
        }
        "command" => {
            only_for(
                p,
                &[("signing_key_file", raw.signing_key_file.is_some())],
                "builtin",
            );
            let timeout = duration_field(
                p,
                "license.command_timeout",
                raw.command_timeout.as_deref(),
                DEFAULT_LICENSE_COMMAND_TIMEOUT,
                MAX_COMMAND_TIMEOUT,
            );
            let argv = command(p, raw.command.as_deref(), base)?;
            Some(IssuerConfig::Command { argv, timeout })
        }
        other => {
            p.push(
                "license.issuer",
                format!("{other:?} is not a key issuer; use \"builtin\" or \"command\""),
            );
            None
        }
    }
}

/// Like a `password_file`: relative to the config directory, except a path starting with
/// `${NAME}`, which must expand to an absolute path when the key is read.
fn key_file(p: &mut Problems, template: &str, base: &Path) -> Option<PathBuf> {
    const KEY: &str = "license.signing_key_file";
    if template.trim().is_empty() {
        p.push(KEY, "must not be empty");
        return None;
    }
    // Syntax only: every variable "exists" now; real values come when the key is read.
    if let Err(msg) = expand_vars(template, &|_| Some(String::new())) {
        p.push(KEY, format!("{template:?}: {msg}"));
        return None;
    }
    Some(if template.starts_with("${") {
        PathBuf::from(template)
    } else {
        base.join(template)
    })
}

/// `command = ["/usr/local/bin/vendor-keygen", "--json"]`: a program and its arguments, run
/// without a shell. A program named with a `/` but not absolute resolves against the config
/// directory; a bare name is looked up on `PATH` when it runs.
fn command(p: &mut Problems, argv: Option<&[String]>, base: &Path) -> Option<Vec<String>> {
    const KEY: &str = "license.command";
    let Some(argv) = argv else {
        p.push(
            KEY,
            "required with issuer = \"command\": the key generator and its arguments, e.g. \
             [\"/usr/local/bin/vendor-keygen\"]",
        );
        return None;
    };
    let Some(program) = argv.first() else {
        p.push(
            KEY,
            "must name a program: [\"/usr/local/bin/vendor-keygen\"]",
        );
        return None;
    };
    let mut ok = true;
    if program.trim().is_empty() {
        p.push(format!("{KEY}[0]"), "must name a program");
        ok = false;
    }
    for (i, arg) in argv.iter().enumerate() {
        if arg.contains('\0') {
            p.push(format!("{KEY}[{i}]"), "must not contain a NUL character");
            ok = false;
        }
    }
    if !ok {
        return None;
    }
    let mut argv = argv.to_vec();
    if program.contains('/') && Path::new(program).is_relative() {
        argv[0] = base.join(program).to_string_lossy().into_owned();
    }
    Some(argv)
}
