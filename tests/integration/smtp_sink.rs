//! A real SMTP server for the tests: `tests/support/smtp_sink.py` (aiosmtpd) on a free loopback
//! port in a temp dir. It runs in its own process group (`setsid`), killed as a group on
//! [`SmtpSink::stop`] and on drop; it also exits by itself when this process dies (its stdin, a
//! pipe from us, closes), so a crashed test run leaves no server behind.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use tempfile::TempDir;

use crate::util::repo_path;

/// The Debian interpreter with `python3-aiosmtpd`, not whatever `python3` is first on PATH.
pub const PYTHON: &str = "/usr/bin/python3";

/// How long the sink may take to start listening.
const STARTUP: Duration = Duration::from_secs(20);

/// The SMTP sink script in the repository.
pub fn script() -> PathBuf {
    repo_path("tests/support/smtp_sink.py")
}

pub struct SmtpSink {
    dir: TempDir,
    port: u16,
    /// `USER:PASSWORD` the sink requires, if any.
    auth: Option<String>,
    /// `CERT:KEY` for STARTTLS, and whether TLS starts at once instead (SMTPS).
    tls: Option<(String, bool)>,
    running: Option<Running>,
}

struct Running {
    child: Child,
    /// Held open so the sink lives; closing it (we died) makes the sink exit.
    _stdin: ChildStdin,
}

/// One accepted message: the envelope and the bytes exactly as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    pub data: Vec<u8>,
}

impl SmtpSink {
    /// Starts a sink on a free loopback port, mode `accept`.
    pub fn start() -> SmtpSink {
        SmtpSink::launch_new(None, None)
    }

    /// Starts a sink that requires AUTH with this user and password.
    pub fn start_with_auth(user: &str, password: &str) -> SmtpSink {
        SmtpSink::launch_new(Some(format!("{user}:{password}")), None)
    }

    /// Starts a sink with TLS: STARTTLS, or with `implicit` TLS from the first byte, using this
    /// certificate chain and key (see [`crate::dovecot::make_certificates`]).
    pub fn start_tls(cert: &Path, key: &Path, implicit: bool) -> SmtpSink {
        let files = format!("{}:{}", cert.display(), key.display());
        SmtpSink::launch_new(None, Some((files, implicit)))
    }

    fn launch_new(auth: Option<String>, tls: Option<(String, bool)>) -> SmtpSink {
        let dir = tempfile::Builder::new()
            .prefix("madoguchi-smtp-")
            .tempdir()
            .expect("temp dir");
        let mut sink = SmtpSink {
            dir,
            port: 0,
            auth,
            tls,
            running: None,
        };
        sink.launch(0);
        sink
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Every accepted message's data, in arrival order.
    pub fn messages(&self) -> Vec<Vec<u8>> {
        self.received().into_iter().map(|r| r.data).collect()
    }

    /// Every accepted message with its envelope, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        let mail = self.mail_dir();
        let mut stems: Vec<String> = fs::read_dir(&mail)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter_map(|e| {
                        e.file_name()
                            .to_str()
                            .and_then(|n| n.strip_suffix(".eml"))
                            .map(str::to_string)
                    })
                    .collect()
            })
            .unwrap_or_default();
        // Six-digit counters: name order is arrival order.
        stems.sort();
        stems
            .into_iter()
            .map(|stem| {
                let envelope = fs::read_to_string(mail.join(format!("{stem}.envelope")))
                    .expect("envelope beside the message");
                let mut lines = envelope.lines().map(str::to_string);
                Received {
                    mail_from: lines.next().unwrap_or_default(),
                    rcpt_to: lines.collect(),
                    data: fs::read(mail.join(format!("{stem}.eml"))).expect("message"),
                }
            })
            .collect()
    }

    /// `accept`, `tempfail`, `permfail` (at RCPT), `tempfail-data`, `permfail-data`,
    /// `greylist`, `552-data`, `drop-after-data`, optionally followed by the one recipient it
    /// applies to (see the script); read by the sink at its next RCPT or DATA.
    pub fn set_mode(&self, mode: &str) {
        let tmp = self.mail_dir().join("mode.tmp");
        fs::write(&tmp, mode).expect("write mode");
        fs::rename(&tmp, self.mail_dir().join("mode")).expect("set mode");
    }

    /// Every refusal so far: the mode and the recipients, one line each.
    pub fn refused(&self) -> Vec<String> {
        fs::read_to_string(self.mail_dir().join("refused"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Kills the sink (the whole process group) and waits for it: the port refuses connections.
    pub fn stop(&mut self) {
        if let Some(mut running) = self.running.take() {
            let pid = running.child.id();
            // `setsid` made the sink a process-group leader: its pid is the group id.
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .status();
            let _ = running.child.kill();
            let _ = running.child.wait();
        }
    }

    /// Starts the sink again on the same port and directory (the messages so far are kept).
    pub fn start_again(&mut self) {
        self.stop();
        self.launch(self.port);
    }

    /// Where the messages (and the `mode` file) live.
    pub fn mail_dir(&self) -> PathBuf {
        self.dir.path().join("mail")
    }

    fn launch(&mut self, port: u16) {
        let stderr = fs::File::options()
            .create(true)
            .append(true)
            .open(self.dir.path().join("sink.log"))
            .expect("sink log");
        let mut command = Command::new("setsid");
        command
            .arg(PYTHON)
            .arg(script())
            .arg("--port")
            .arg(port.to_string())
            .arg("--dir")
            .arg(self.mail_dir())
            .arg("--exit-on-stdin-eof");
        if let Some(auth) = &self.auth {
            command.arg("--auth").arg(auth);
        }
        if let Some((files, implicit)) = &self.tls {
            command.arg("--tls").arg(files);
            if *implicit {
                command.arg("--implicit-tls");
            }
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {PYTHON} {}: {e}", script().display()));
        let stdin = child.stdin.take().expect("stdin pipe");
        let stdout = child.stdout.take().expect("stdout pipe");
        let (tx, rx) = mpsc::channel();
        // Reads until READY; the thread then keeps the pipe drained until the sink exits.
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            for line in lines.by_ref() {
                let Ok(line) = line else { break };
                if let Some(port) = line.strip_prefix("READY ") {
                    let _ = tx.send(port.trim().parse::<u16>().ok());
                    break;
                }
            }
            for _ in lines {}
        });
        self.running = Some(Running {
            child,
            _stdin: stdin,
        });
        match rx.recv_timeout(STARTUP) {
            Ok(Some(actual)) => self.port = actual,
            other => {
                self.stop();
                panic!(
                    "the SMTP sink did not start ({other:?}); is python3-aiosmtpd installed for \
                     {PYTHON}? log:\n{}",
                    fs::read_to_string(self.dir.path().join("sink.log")).unwrap_or_default()
                );
            }
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop();
    }
}
