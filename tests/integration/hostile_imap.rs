//! A hostile IMAP server for the tests: `tests/support/hostile_imap.py` on a free loopback port
//! in a temp dir, its misbehaviour chosen by a `mode` file. Like the SMTP sink it runs in its
//! own process group, killed on drop, and exits by itself when this process dies.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use tempfile::TempDir;

use crate::smtp_sink::PYTHON;
use crate::util::repo_path;

/// How long the server may take to start listening.
const STARTUP: Duration = Duration::from_secs(20);

pub struct HostileImap {
    dir: TempDir,
    port: u16,
    child: Child,
    /// Held open so the server lives; closing it (we died) makes it exit.
    _stdin: ChildStdin,
}

impl HostileImap {
    /// Starts the server with `messages` in INBOX (UIDs 1, 2, …), mode `normal`.
    pub fn start(messages: &[Vec<u8>]) -> HostileImap {
        let dir = tempfile::Builder::new()
            .prefix("madoguchi-hostile-imap-")
            .tempdir()
            .expect("temp dir");
        let inbox = dir.path().join("inbox");
        fs::create_dir_all(&inbox).expect("inbox");
        for (i, raw) in messages.iter().enumerate() {
            fs::write(inbox.join(format!("{:04}.eml", i + 1)), raw).expect("message");
        }
        let script = repo_path("tests/support/hostile_imap.py");
        let stderr = fs::File::create(dir.path().join("server.log")).expect("server log");
        let mut child = Command::new("setsid")
            .arg(PYTHON)
            .arg(&script)
            .args(["--port", "0", "--exit-on-stdin-eof", "--dir"])
            .arg(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {PYTHON} {}: {e}", script.display()));
        let stdin = child.stdin.take().expect("stdin pipe");
        let stdout = child.stdout.take().expect("stdout pipe");
        let (tx, rx) = mpsc::channel();
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
        let mut server = HostileImap {
            dir,
            port: 0,
            child,
            _stdin: stdin,
        };
        match rx.recv_timeout(STARTUP) {
            Ok(Some(port)) => server.port = port,
            other => panic!(
                "the hostile IMAP server did not start ({other:?}); log:\n{}",
                fs::read_to_string(server.dir.path().join("server.log")).unwrap_or_default()
            ),
        }
        server
    }

    /// See the script's documentation; read by the server at every command.
    pub fn set_mode(&self, mode: &str) {
        let tmp = self.dir.path().join("mode.tmp");
        fs::write(&tmp, mode).expect("write mode");
        fs::rename(&tmp, self.dir.path().join("mode")).expect("set mode");
    }

    /// Puts another message into INBOX (picked up at the next SELECT, SEARCH or while idling).
    pub fn deliver(&self, name: &str, raw: &[u8]) {
        let inbox = self.dir.path().join("inbox");
        let tmp = self.dir.path().join(format!("{name}.tmp"));
        fs::write(&tmp, raw).expect("write message");
        fs::rename(&tmp, inbox.join(format!("{name}.eml"))).expect("deliver");
    }

    /// The messages in `folder` (`INBOX`, `Processed`, `Quarantine`) by UID.
    pub fn uids(&self, folder: &str) -> Vec<u32> {
        fs::read_to_string(self.dir.path().join("state"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let mut words = l.split(' ');
                let uid = words.next()?.parse().ok()?;
                (words.next()? == folder).then_some(uid)
            })
            .collect()
    }

    /// Connections made so far.
    pub fn connections(&self) -> usize {
        self.log()
            .lines()
            .filter(|l| l.ends_with(" connect"))
            .count()
    }

    /// Every command received, after `C<n> ` (the connection) and the tag.
    pub fn commands(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter(|l| !l.ends_with(" connect"))
            .filter_map(|l| l.splitn(3, ' ').nth(2).map(str::to_owned))
            .collect()
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    /// The `[intake]` table of a desk reading this server.
    pub fn config_toml(&self, extra: &str) -> String {
        format!(
            "[intake]\nkind = \"imap\"\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n\
             allow_plaintext = true\nuser = \"desk\"\npassword_file = \"{}\"\nidle = true\n{extra}\n",
            self.port,
            self.password_file().display()
        )
    }

    fn password_file(&self) -> PathBuf {
        let path = self.dir.path().join("password");
        if !path.exists() {
            fs::write(&path, "secret\n").expect("password file");
        }
        path
    }
}

impl Drop for HostileImap {
    fn drop(&mut self) {
        let pid = self.child.id();
        // `setsid` made the server a process-group leader: its pid is the group id.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pid}")])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
