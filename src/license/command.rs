//! The command issuer: the vendor's own key generator as a child process. The application goes
//! to its stdin as one JSON document ([`KeyRequest`]); the key comes back on stdout, one line
//! of printable ASCII (or one JSON object `{"key": "…", "key_id": "…"}` when the generator
//! names its keys). It runs without a shell, in a process group of its own, and is killed
//! with that group when it overruns its timeout. Its environment is only [`PASSED_ENV`] from
//! the desk's: a `password_env` secret never reaches the vendor's program.

use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

use super::{Env, IssuedKey, KeyRequest, LicenseError};

/// The most a key may be.
pub const MAX_KEY_LEN: usize = 16 * 1024;
/// How much of stderr is read (the rest is drained and dropped) and how much an error quotes.
const MAX_STDERR_READ: usize = 64 * 1024;
const MAX_STDERR_SHOWN: usize = 500;
/// A `key_id` the command gives is shown to staff and stored; longer is not an id.
const MAX_KEY_ID_LEN: usize = 200;

/// The environment variables the command gets from the desk's environment (when set).
pub const PASSED_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "CREDENTIALS_DIRECTORY",
];

/// `[license] issuer = "command"`.
#[derive(Debug, Clone)]
pub struct CommandIssuer {
    argv: Vec<String>,
    timeout: Duration,
    /// [`PASSED_ENV`] as the desk's environment had them.
    env: Vec<(String, String)>,
}

impl CommandIssuer {
    /// `argv` (the program first) killed after `timeout`, with [`PASSED_ENV`] read from `env`.
    pub fn new(argv: Vec<String>, timeout: Duration, env: Env<'_>) -> CommandIssuer {
        let env = PASSED_ENV
            .iter()
            .filter_map(|name| env(name).map(|value| (name.to_string(), value)))
            .collect();
        CommandIssuer { argv, timeout, env }
    }

    fn program(&self) -> String {
        self.argv.first().cloned().unwrap_or_default()
    }

    /// Runs the command once for `req`. No retry here: the caller retries with backoff.
    pub async fn issue(&self, req: &KeyRequest) -> Result<IssuedKey, LicenseError> {
        let program = self.program();
        let mut input = serde_json::to_vec(req).map_err(|e| LicenseError::Request {
            reason: format!("cannot write it as JSON: {e}"),
        })?;
        input.push(b'\n');
        let mut child = Command::new(&program)
            .args(self.argv.iter().skip(1))
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .process_group(0)
            .spawn()
            .map_err(|source| LicenseError::CommandStart {
                program: program.clone(),
                source,
            })?;
        let pid = child.id();
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let run = async {
            let write = async {
                let Some(mut stdin) = stdin else {
                    return Ok(());
                };
                // Closing stdin (the drop) tells the command the document is complete.
                match stdin.write_all(&input).await {
                    // A generator may not read its input at all; that is its business.
                    Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                    other => other,
                }
            };
            let (written, out, err) = tokio::join!(
                write,
                read_capped(stdout, MAX_KEY_LEN),
                read_capped(stderr, MAX_STDERR_READ)
            );
            let status = child.wait().await;
            (written, out, err, status)
        };
        let (written, out, err, status) = match tokio::time::timeout(self.timeout, run).await {
            Ok(done) => done,
            Err(_) => {
                kill_group(pid);
                let _ = child.start_kill();
                return Err(LicenseError::CommandTimeout {
                    program,
                    timeout: self.timeout,
                });
            }
        };
        let io = |source| LicenseError::CommandIo {
            program: program.clone(),
            source,
        };
        let status = status.map_err(io)?;
        let (stderr, _) = err.map_err(io)?;
        let stderr = excerpt(&stderr);
        if !status.success() {
            return Err(LicenseError::CommandFailed {
                program,
                status: describe(status),
                stderr,
            });
        }
        written.map_err(io)?;
        let (stdout, overflow) = out.map_err(io)?;
        if overflow {
            return Err(LicenseError::CommandOutput {
                program,
                reason: "more than 16 KiB on standard output",
            });
        }
        read_output(&stdout).map_err(|problem| match problem {
            Problem::Empty => LicenseError::CommandEmpty { program, stderr },
            Problem::Bad(reason) => LicenseError::CommandOutput { program, reason },
        })
    }
}

/// Kills the command's process group (it leads one of its own), so nothing it started lives
/// on after a timeout.
fn kill_group(pid: Option<u32>) {
    let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()).filter(|p| *p > 1) else {
        return;
    };
    // SAFETY: kill(2) with a negative pid signals that process group; the group is the child's
    // own (process_group(0)), and the child is not yet reaped, so its id is not reused.
    unsafe {
        libc::kill(-pid, libc::SIGKILL);
    }
}

/// Everything `reader` gives up to `cap` bytes, and whether there was more (drained, so the
/// command is never stuck writing to a full pipe).
async fn read_capped(
    reader: Option<impl AsyncRead + Unpin>,
    cap: usize,
) -> std::io::Result<(Vec<u8>, bool)> {
    let mut kept = Vec::new();
    let mut overflow = false;
    let Some(mut reader) = reader else {
        return Ok((kept, overflow));
    };
    let mut buf = [0u8; 8192];
    loop {
        let n = reader.read(&mut buf).await?;
        if n == 0 {
            return Ok((kept, overflow));
        }
        let room = cap.saturating_sub(kept.len());
        kept.extend_from_slice(&buf[..n.min(room)]);
        overflow |= n > room;
    }
}

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with code {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        (None, None) => format!("ended with {status}"),
    }
}

/// stderr for an error message: one line, at most [`MAX_STDERR_SHOWN`] characters.
fn excerpt(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let one_line = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" / ");
    let clean: String = one_line
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    match clean.char_indices().nth(MAX_STDERR_SHOWN) {
        Some((cut, _)) => format!("{}…", &clean[..cut]),
        None => clean,
    }
}

enum Problem {
    Empty,
    Bad(&'static str),
}

/// What the command printed: a key on one line, or `{"key": …, "key_id": …}`.
fn read_output(stdout: &[u8]) -> Result<IssuedKey, Problem> {
    let text = std::str::from_utf8(stdout).map_err(|_| Problem::Bad("output that is not UTF-8"))?;
    let text = text.trim();
    if !text.starts_with('{') {
        let key = check_key(text)?;
        return Ok(IssuedKey {
            key_id: default_key_id(&key),
            key,
        });
    }
    #[derive(Deserialize)]
    struct Named {
        key: String,
        key_id: Option<String>,
    }
    let named: Named = serde_json::from_str(text)
        .map_err(|_| Problem::Bad("JSON that is not {\"key\": \"…\", \"key_id\": \"…\"}"))?;
    let key = check_key(named.key.trim())?;
    let key_id = match named.key_id {
        None => default_key_id(&key),
        Some(id) => {
            let id = id.trim();
            if id.is_empty() || id.len() > MAX_KEY_ID_LEN || !printable(id) {
                return Err(Problem::Bad(
                    "a key_id that is not one line of printable ASCII (at most 200)",
                ));
            }
            id.to_owned()
        }
    };
    Ok(IssuedKey { key, key_id })
}

fn check_key(key: &str) -> Result<String, Problem> {
    if key.is_empty() {
        return Err(Problem::Empty);
    }
    if key.contains(['\n', '\r']) {
        return Err(Problem::Bad("more than one line"));
    }
    if !printable(key) {
        return Err(Problem::Bad("a character that is not printable ASCII"));
    }
    Ok(key.to_owned())
}

fn printable(s: &str) -> bool {
    s.bytes().all(|b| (0x20..=0x7e).contains(&b))
}

/// `sha256:` and the first 16 hex digits of the key's SHA-256: an id staff can compare
/// without seeing the key.
pub(super) fn default_key_id(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    format!("sha256:{}", &hex::encode(digest)[..16])
}
