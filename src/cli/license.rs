//! `madoguchi license …`: the builtin issuer's signing key and checking a key. (`license show N`
//! and `license resend N`, about applications, join these.)

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use madoguchi::config::{Config, LicenseConfig};
use madoguchi::license::{self, Claims, LicenseError, PublicKeyInfo};

use super::{ConfigChoice, Output, load_config};

#[derive(Debug, Subcommand)]
pub enum LicenseCommand {
    /// Make a new signing key for the builtin issuer and write it to FILE (mode 0600; an
    /// existing file is never overwritten). Prints the public key to give the product.
    Keygen {
        /// Where to write the key, e.g. /etc/madoguchi/license.key.
        file: PathBuf,
    },
    /// The public key (PASERK k4.public.…) of the configured signing key, and its key id.
    PublicKey,
    /// Check a license key and print its claims; exit 1 when it is not valid.
    Verify {
        /// The key (v4.public.…), a file holding it (license-<serial>.key), or - for stdin.
        key: String,
        /// Check against this public key instead of the configured signing key's.
        #[arg(long, value_name = "k4.public.…")]
        public_key: Option<String>,
    },
    /// One application: its state, due date, key id and audit trail (never the key).
    Show {
        /// The application's ticket number.
        ticket: u64,
    },
    /// Queue the same key again, to the registered applicant only.
    Resend {
        /// The application's ticket number.
        ticket: u64,
    },
}

pub fn run(
    command: LicenseCommand,
    config_path: Option<&Path>,
    out: &Output,
) -> anyhow::Result<ExitCode> {
    match command {
        LicenseCommand::Keygen { file } => keygen(&file, out),
        LicenseCommand::Show { ticket } => {
            super::licenses::show(config_path, ticket, out)?;
            Ok(ExitCode::SUCCESS)
        }
        LicenseCommand::Resend { ticket } => {
            super::licenses::resend(config_path, ticket, out)?;
            Ok(ExitCode::SUCCESS)
        }
        LicenseCommand::PublicKey => {
            let config = required(config_path)?;
            let public = license::public_key(section(&config)?)?;
            out.emit(&public, || {
                format!("{}\nkey id: {}\n", public.paserk, public.pid)
            })?;
            Ok(ExitCode::SUCCESS)
        }
        LicenseCommand::Verify { key, public_key } => {
            let public = match public_key {
                Some(text) => PublicKeyInfo::parse(&text)?,
                None => license::public_key(section(&required(config_path)?)?)?,
            };
            let token = read_key(&key)?;
            verify(&token, &public, out)
        }
    }
}

fn required(config_path: Option<&Path>) -> anyhow::Result<Config> {
    load_config(config_path, ConfigChoice::Required)?
        .context("a config file is required for this command")
}

fn section(config: &Config) -> anyhow::Result<&LicenseConfig> {
    config.license.as_ref().context(
        "the config has no [license] section, so there is no signing key; see \
         deploy/madoguchi.example.toml",
    )
}

fn keygen(file: &Path, out: &Output) -> anyhow::Result<ExitCode> {
    let public = license::keygen(file)?;
    let doc = serde_json::json!({
        "file": file.display().to_string(),
        "public_key": public.paserk,
        "key_id": public.pid,
    });
    out.emit(&doc, || {
        format!(
            "wrote a new signing key to {} (mode 0600)\n\
             public key: {}\n\
             key id:     {}\n\
             Give the public key to the product so it can check the keys this desk issues. \
             Keep {} secret: owned by the madoguchi user, mode 0600.\n",
            file.display(),
            public.paserk,
            public.pid,
            file.display()
        )
    })?;
    Ok(ExitCode::SUCCESS)
}

/// The key as given: the token itself, `-` for stdin, or a file holding it.
fn read_key(arg: &str) -> anyhow::Result<String> {
    if arg == "-" {
        let mut text = String::new();
        std::io::stdin()
            .take(64 * 1024)
            .read_to_string(&mut text)
            .context("cannot read the key from standard input")?;
        return Ok(text);
    }
    if arg.starts_with("v4.") || arg.starts_with("v3.") || arg.starts_with("v2.") {
        return Ok(arg.to_owned());
    }
    let path = Path::new(arg);
    if path.is_file() {
        let bytes = std::fs::read(path).with_context(|| format!("cannot read {arg}"))?;
        return Ok(String::from_utf8_lossy(&bytes).into_owned());
    }
    // Not a file: let verification say what is wrong with it.
    Ok(arg.to_owned())
}

fn verify(token: &str, public: &PublicKeyInfo, out: &Output) -> anyhow::Result<ExitCode> {
    match license::verify(token, public) {
        Ok(claims) => {
            let mut doc = serde_json::to_value(&claims)?;
            doc["valid"] = true.into();
            out.emit(&doc, || human(&claims))?;
            Ok(ExitCode::SUCCESS)
        }
        Err(LicenseError::Invalid(why)) => {
            let doc = serde_json::json!({ "valid": false, "reason": why.to_string() });
            out.emit(&doc, || format!("invalid license key: {why}\n"))?;
            Ok(ExitCode::from(1))
        }
        Err(other) => Err(other.into()),
    }
}

fn human(c: &Claims) -> String {
    format!(
        "valid license key\n\
         \x20 product:   {}\n\
         \x20 serial:    {}\n\
         \x20 contract:  {}\n\
         \x20 server_id: {}\n\
         \x20 issued at: {}\n\
         \x20 jti:       {}\n\
         \x20 key id:    {}\n",
        c.product,
        c.sub,
        c.contract,
        c.server_id,
        c.iat.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        c.jti,
        c.kid
    )
}
