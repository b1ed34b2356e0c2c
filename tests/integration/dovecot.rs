//! A private Dovecot for the integration tests: its own config, sockets, state, log and Maildir
//! in a temp dir, listening on a free loopback port, never the system's service.
//!
//! Notes that save hours (DESIGN.md): socket paths are limited to 108 bytes, so the temp dir is
//! a short `/tmp/dvXXXXXX`; mail is owned by uid/gid 65534 (Dovecot refuses root as a mail
//! user); the temp dir is `chmod 755` so the unprivileged processes can reach it; Dovecot runs in
//! the foreground (`-F`) in its own process group (`setsid`), which is killed on drop.
//!
//! The harness talks IMAP itself through [`ImapClient`], a blocking client just big enough for
//! LOGIN, APPEND (LITERAL+), STATUS and CREATE, so it can be used from any thread.

#![allow(dead_code)]

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

pub const DOVECOT: &str = "/usr/sbin/dovecot";
/// The mail user's uid and gid: nobody/nogroup.
const MAIL_ID: u32 = 65534;
pub const USER: &str = "tester";
/// Quotes, a backslash and a space: the client must quote the LOGIN properly.
pub const PASSWORD: &str = "s3cr\"et \\pw";

/// How long Dovecot may take to start or to stop.
const PATIENCE: Duration = Duration::from_secs(15);

pub struct Dovecot {
    dir: TempDir,
    port: u16,
    /// The implicit-TLS port, when started with [`Dovecot::start_tls`].
    imaps_port: Option<u16>,
    child: Option<Child>,
}

impl Dovecot {
    /// A running Dovecot with one user ([`USER`]/[`PASSWORD`]) and an empty INBOX.
    pub fn start() -> Dovecot {
        Dovecot::start_with("")
    }

    /// Like [`Dovecot::start`] with `extra` lines at the end of `dovecot.conf` (for example
    /// `imap_capability = IMAP4rev1 LITERAL+` to hide MOVE, UIDPLUS and IDLE from clients).
    pub fn start_with(extra: &str) -> Dovecot {
        Dovecot::start_full(extra, false)
    }

    /// A Dovecot with TLS: STARTTLS on [`Dovecot::port`], implicit TLS on
    /// [`Dovecot::imaps_port`], with a certificate for the IP address 127.0.0.1 issued by a
    /// private CA ([`Dovecot::ca_file`]; made with the `openssl` command).
    pub fn start_tls() -> Dovecot {
        Dovecot::start_full("", true)
    }

    fn start_full(extra: &str, tls: bool) -> Dovecot {
        assert!(
            Path::new(DOVECOT).exists(),
            "{DOVECOT} is missing: install dovecot-imapd (scripts/test does)"
        );
        let dir = tempfile::Builder::new()
            .prefix("dv")
            .tempdir_in("/tmp")
            .expect("temp dir");
        let root = dir.path();
        fs::set_permissions(root, fs::Permissions::from_mode(0o755)).expect("chmod 755");
        for sub in ["run", "state"] {
            fs::create_dir(root.join(sub)).expect("dovecot dirs");
        }
        let home = root.join("mail").join(USER);
        fs::create_dir_all(&home).expect("mail home");
        for d in [root.join("mail"), home.clone()] {
            std::os::unix::fs::chown(&d, Some(MAIL_ID), Some(MAIL_ID)).expect("chown mail dir");
        }
        let passwd = root.join("passwd");
        fs::write(
            &passwd,
            format!(
                "{USER}:{{PLAIN}}{PASSWORD}:{MAIL_ID}:{MAIL_ID}::{}::\n",
                home.display()
            ),
        )
        .expect("passwd");
        fs::set_permissions(&passwd, fs::Permissions::from_mode(0o644)).expect("chmod passwd");
        fs::write(root.join("password"), format!("{PASSWORD}\n")).expect("password file");

        let port = free_port();
        let imaps_port = tls.then(free_port);
        let ssl = if tls {
            make_certificates(root);
            format!(
                "ssl = yes\nssl_cert = <{0}/server.pem\nssl_key = <{0}/server.key\n",
                root.display()
            )
        } else {
            "ssl = no\n".to_owned()
        };
        let imaps = imaps_port.unwrap_or(0);
        let r = root.display();
        let conf = format!(
            "protocols = imap\n\
             listen = 127.0.0.1\n\
             base_dir = {r}/run\n\
             state_dir = {r}/state\n\
             log_path = {r}/dovecot.log\n\
             {ssl}\
             disable_plaintext_auth = no\n\
             auth_mechanisms = plain login\n\
             auth_failure_delay = 0\n\
             mail_location = maildir:~/Maildir\n\
             mail_fsync = never\n\
             first_valid_uid = 1\n\
             passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%u {r}/passwd\n}}\n\
             userdb {{\n  driver = passwd-file\n  args = username_format=%u {r}/passwd\n}}\n\
             namespace inbox {{\n  inbox = yes\n  separator = /\n}}\n\
             service imap-login {{\n  inet_listener imap {{\n    address = 127.0.0.1\n    port = {port}\n  }}\n  inet_listener imaps {{\n    address = 127.0.0.1\n    port = {imaps}\n  }}\n}}\n\
             {extra}\n"
        );
        fs::write(root.join("dovecot.conf"), conf).expect("dovecot.conf");
        let mut dovecot = Dovecot {
            dir,
            port,
            imaps_port,
            child: None,
        };
        dovecot.run();
        dovecot
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn user(&self) -> &str {
        USER
    }

    /// The implicit-TLS port; only after [`Dovecot::start_tls`].
    pub fn imaps_port(&self) -> u16 {
        self.imaps_port.expect("started without TLS")
    }

    /// The private CA that issued the server certificate (after [`Dovecot::start_tls`]).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    pub fn password(&self) -> &str {
        PASSWORD
    }

    /// A file holding the password (with a trailing newline), for `password_file`.
    pub fn password_file(&self) -> PathBuf {
        self.dir.path().join("password")
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Dovecot's log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default()
    }

    /// The Maildir folder of `mailbox` (`INBOX` is the Maildir itself; others are `.Name`).
    pub fn maildir(&self, mailbox: &str) -> PathBuf {
        let base = self.dir.path().join("mail").join(USER).join("Maildir");
        if mailbox.eq_ignore_ascii_case("INBOX") {
            base
        } else {
            base.join(format!(".{}", mailbox.replace('/', ".")))
        }
    }

    /// The `[intake]` section for madoguchi, followed by `extra` lines of the same section.
    pub fn config_toml(&self, extra: &str) -> String {
        format!(
            "[intake]\n\
             kind = \"imap\"\n\
             host = \"127.0.0.1\"\n\
             port = {}\n\
             tls = \"none\"\n\
             allow_plaintext = true\n\
             user = \"{USER}\"\n\
             password_file = \"{}\"\n\
             idle = true\n\
             {extra}\n",
            self.port,
            self.password_file().display()
        )
    }

    /// A new logged-in client.
    pub fn client(&self) -> ImapClient {
        ImapClient::login(self.port, USER, PASSWORD)
    }

    pub fn append(&self, mailbox: &str, raw: &[u8]) {
        self.client().append(mailbox, raw, None);
    }

    /// APPEND with an INTERNALDATE such as `24-Nov-2026 10:00:00 +0900`.
    pub fn append_at(&self, mailbox: &str, raw: &[u8], internal_date: &str) {
        self.client().append(mailbox, raw, Some(internal_date));
    }

    /// Appends every message over one connection.
    pub fn append_many<I: IntoIterator<Item = Vec<u8>>>(&self, mailbox: &str, raws: I) -> usize {
        let mut client = self.client();
        let mut n = 0;
        for raw in raws {
            client.append(mailbox, &raw, None);
            n += 1;
        }
        n
    }

    /// Messages in `mailbox` (0 when it does not exist).
    pub fn count(&self, mailbox: &str) -> u32 {
        self.client().status(mailbox, "MESSAGES").unwrap_or(0)
    }

    pub fn uidvalidity(&self, mailbox: &str) -> u32 {
        self.client()
            .status(mailbox, "UIDVALIDITY")
            .unwrap_or_else(|| panic!("no UIDVALIDITY for {mailbox}"))
    }

    /// Stops Dovecot (SIGTERM to its process group, SIGKILL if it lingers) and waits until the
    /// port is free again.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let group = child.id();
        signal_group(group, "TERM");
        let deadline = Instant::now() + PATIENCE;
        while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        signal_group(group, "KILL");
        let _ = child.wait();
        // The master's helpers (log, auth, imap …) exit on their own signal; wait for them.
        let deadline = Instant::now() + PATIENCE;
        while group_alive(group) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let deadline = Instant::now() + PATIENCE;
        while TcpListener::bind(("127.0.0.1", self.port)).is_err() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts Dovecot again after [`Dovecot::stop`], on the same port with the same mail.
    pub fn resume(&mut self) {
        assert!(self.child.is_none(), "Dovecot is running");
        self.run();
    }

    /// Stop and start on the same port: every client connection is cut.
    pub fn restart(&mut self) {
        self.stop();
        self.resume();
    }

    /// Makes Dovecot forget the UIDs of `mailbox` (its uidlist and indexes are deleted while it
    /// is stopped), so the mailbox comes back with a new UIDVALIDITY and renumbered messages.
    pub fn reset_uidvalidity(&mut self, mailbox: &str) {
        let before = self.uidvalidity(mailbox);
        self.stop();
        let folder = self.maildir(mailbox);
        let root = self.maildir("INBOX");
        for dir in [&folder, &root] {
            for entry in fs::read_dir(dir).expect("maildir").flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let list_index = name.starts_with("dovecot.list.index");
                let own = dir == &folder
                    && (name == "dovecot-uidlist" || name.starts_with("dovecot.index"));
                if list_index || own {
                    fs::remove_file(entry.path()).expect("remove index");
                }
            }
        }
        self.resume();
        let after = self.uidvalidity(mailbox);
        assert_ne!(before, after, "UIDVALIDITY of {mailbox} did not change");
    }

    fn run(&mut self) {
        let root = self.dir.path();
        let stderr = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(root.join("stderr.log"))
            .expect("stderr log");
        // `setsid` execs Dovecot in place (its child is no group leader), so the child's pid is
        // the process group to signal.
        let mut child = Command::new("setsid")
            .arg(DOVECOT)
            .arg("-F")
            .arg("-c")
            .arg(root.join("dovecot.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start dovecot under setsid");
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "dovecot exited with {status}:\n{}\n{}",
                    fs::read_to_string(root.join("stderr.log")).unwrap_or_default(),
                    self.log()
                );
            }
            if greets(self.port) {
                break;
            }
            if Instant::now() > deadline {
                signal_group(child.id(), "KILL");
                let _ = child.wait();
                panic!(
                    "dovecot did not answer on port {}:\n{}",
                    self.port,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        self.child = Some(child);
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        // No graceful shutdown needed at the end: the whole group goes at once.
        if let Some(mut child) = self.child.take() {
            let group = child.id();
            signal_group(group, "KILL");
            let _ = child.wait();
            let deadline = Instant::now() + Duration::from_secs(5);
            while group_alive(group) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// A private CA (`ca.pem`) and a server certificate for 127.0.0.1 (`server.pem`, `server.key`)
/// in `dir` (P-256 keys: quick to make). The SMTP TLS test uses them too.
pub fn make_certificates(dir: &Path) {
    fs::write(
        dir.join("server.ext"),
        "subjectAltName = IP:127.0.0.1\n\
         basicConstraints = critical, CA:FALSE\n\
         keyUsage = critical, digitalSignature\n\
         extendedKeyUsage = serverAuth\n",
    )
    .expect("extensions file");
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("run openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=madoguchi test CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req"][..],
            &ec,
            &[
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=127.0.0.1",
            ],
        ]
        .concat(),
    );
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ]);
}

/// A port nobody listens on now (the kernel's pick; released again for Dovecot to take).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn signal_group(group: u32, signal: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg("--")
        .arg(format!("-{group}"))
        .stderr(Stdio::null())
        .status();
}

fn group_alive(group: u32) -> bool {
    Command::new("kill")
        .arg("-0")
        .arg("--")
        .arg(format!("-{group}"))
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether something on `port` greets like an IMAP server.
fn greets(port: u16) -> bool {
    let Ok(stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).is_ok() && line.starts_with("* OK")
}

fn quote(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A blocking IMAP client for setting up and inspecting the test mailbox.
pub struct ImapClient {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    tag: u32,
}

impl ImapClient {
    pub fn login(port: u16, user: &str, password: &str) -> ImapClient {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to dovecot");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let _ = stream.set_nodelay(true);
        let mut client = ImapClient {
            reader: BufReader::new(stream.try_clone().expect("clone stream")),
            writer: stream,
            tag: 0,
        };
        let greeting = client.line();
        assert!(greeting.starts_with("* OK"), "greeting: {greeting}");
        client.command(&format!("LOGIN {} {}", quote(user), quote(password)));
        client
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        let n = self.reader.read_line(&mut line).expect("read from dovecot");
        assert!(n > 0, "dovecot closed the connection");
        line.trim_end().to_owned()
    }

    fn next_tag(&mut self) -> String {
        self.tag += 1;
        format!("h{}", self.tag)
    }

    /// The untagged lines up to the tagged completion, which must be OK.
    fn finish(&mut self, tag: &str, what: &str) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let line = self.line();
            if let Some(rest) = line.strip_prefix(&format!("{tag} ")) {
                assert!(rest.starts_with("OK"), "{what}: {line}");
                return lines;
            }
            lines.push(line);
        }
    }

    /// Runs `command`; panics unless it ends OK.
    pub fn command(&mut self, command: &str) -> Vec<String> {
        self.try_command(command)
            .unwrap_or_else(|line| panic!("{}: {line}", command.split(' ').next().unwrap_or("")))
    }

    /// Runs `command`; `Err(completion)` when the server did not say OK.
    pub fn try_command(&mut self, command: &str) -> Result<Vec<String>, String> {
        let tag = self.next_tag();
        self.writer
            .write_all(format!("{tag} {command}\r\n").as_bytes())
            .expect("write to dovecot");
        let mut lines = Vec::new();
        loop {
            let line = self.line();
            if let Some(rest) = line.strip_prefix(&format!("{tag} ")) {
                return if rest.starts_with("OK") {
                    Ok(lines)
                } else {
                    Err(line)
                };
            }
            lines.push(line);
        }
    }

    /// APPEND with a non-synchronising literal (LITERAL+): one round trip per message.
    pub fn append(&mut self, mailbox: &str, raw: &[u8], internal_date: Option<&str>) {
        let tag = self.next_tag();
        let date = internal_date
            .map(|d| format!(" {}", quote(d)))
            .unwrap_or_default();
        let mut out = format!(
            "{tag} APPEND {}{date} {{{}+}}\r\n",
            quote(mailbox),
            raw.len()
        )
        .into_bytes();
        out.extend_from_slice(raw);
        out.extend_from_slice(b"\r\n");
        self.writer.write_all(&out).expect("write to dovecot");
        self.finish(&tag, "APPEND");
    }

    /// STATUS `item` of `mailbox`; `None` when the mailbox does not exist.
    pub fn status(&mut self, mailbox: &str, item: &str) -> Option<u32> {
        let lines = self
            .try_command(&format!("STATUS {} ({item})", quote(mailbox)))
            .ok()?;
        let line = lines.iter().find(|l| l.starts_with("* STATUS"))?;
        let after = line.split(&format!("{item} ")).nth(1)?;
        after
            .trim_end_matches(')')
            .split([' ', ')'])
            .next()?
            .parse()
            .ok()
    }

    pub fn create(&mut self, mailbox: &str) {
        let _ = self.try_command(&format!("CREATE {}", quote(mailbox)));
    }

    /// Reads whatever is left (for tests that check the server closed the connection).
    pub fn drain(&mut self) -> Vec<u8> {
        let mut rest = Vec::new();
        let _ = self.reader.read_to_end(&mut rest);
        rest
    }
}
