//! `check-config` on `[license]`: what the config file alone cannot show. Is the signing key
//! file there, private and a key (or is its `${CREDENTIALS_DIRECTORY}` only set inside the
//! service)? Is the vendor's command there and executable?

use std::path::{Path, PathBuf};

use super::{Env, PublicKeyInfo, keyfile};
use crate::config::{Diagnostic, IssuerConfig, LicenseConfig};

/// What `check-config` says about `[license]` beyond the file itself: whether the signing key
/// file is there, private and a key; whether the command exists.
#[derive(Debug, Default)]
pub struct Preflight {
    /// The desk cannot issue keys like this.
    pub problems: Vec<Diagnostic>,
    /// Could not be checked here, or may be fine elsewhere.
    pub warnings: Vec<Diagnostic>,
    /// The builtin issuer's public key, when its file was read.
    pub public_key: Option<PublicKeyInfo>,
}

/// [`Preflight`] in the process environment.
pub fn preflight(cfg: &LicenseConfig) -> Preflight {
    preflight_with(cfg, &|name| std::env::var(name).ok())
}

pub fn preflight_with(cfg: &LicenseConfig, env: Env<'_>) -> Preflight {
    let mut out = Preflight::default();
    match &cfg.issuer {
        IssuerConfig::Builtin { signing_key_file } => {
            const KEY: &str = "license.signing_key_file";
            if let Some(name) = keyfile::unset_variable(signing_key_file, env) {
                out.warnings.push(Diagnostic::at_key(
                    KEY,
                    format!(
                        "cannot check {} here: ${name} is not set (systemd sets \
                         $CREDENTIALS_DIRECTORY only inside the service, where the unit's \
                         ExecStartPre check-config checks the file)",
                        signing_key_file.display()
                    ),
                ));
                return out;
            }
            match keyfile::read_signing_key(signing_key_file, env) {
                Ok(key) => out.public_key = Some(key.public().clone()),
                Err(e) => out
                    .problems
                    .push(Diagnostic::at_key(KEY, crate::report::chain(&e))),
            }
        }
        IssuerConfig::Command { argv, .. } => {
            let program = argv.first().map_or("", String::as_str);
            match find_program(program, env) {
                Ok(_) => {}
                Err(ProgramProblem::NotOnPath) => out.warnings.push(Diagnostic::at_key(
                    "license.command",
                    format!(
                        "{program:?} is not on PATH here; name it by its absolute path, or \
                         make sure the service's PATH has it"
                    ),
                )),
                Err(ProgramProblem::Unusable(why)) => out.problems.push(Diagnostic::at_key(
                    "license.command",
                    format!("cannot run {program}: {why}"),
                )),
            }
        }
    }
    out
}

enum ProgramProblem {
    NotOnPath,
    Unusable(&'static str),
}

/// Where `program` is: a path as given, a bare name on `PATH`.
fn find_program(program: &str, env: Env<'_>) -> Result<PathBuf, ProgramProblem> {
    use std::os::unix::fs::PermissionsExt;
    let usable = |path: &Path| match std::fs::metadata(path) {
        Err(_) => Err("it does not exist"),
        Ok(m) if !m.is_file() => Err("it is not a file"),
        Ok(m) if m.permissions().mode() & 0o111 == 0 => Err("it is not executable"),
        Ok(_) => Ok(()),
    };
    if program.contains('/') {
        return usable(Path::new(program))
            .map(|()| PathBuf::from(program))
            .map_err(ProgramProblem::Unusable);
    }
    env("PATH")
        .unwrap_or_default()
        .split(':')
        .filter(|dir| !dir.is_empty())
        .map(|dir| Path::new(dir).join(program))
        .find(|path| usable(path).is_ok())
        .ok_or(ProgramProblem::NotOnPath)
}
