//! Dovecot for the integration tests: its own config, sockets, state, log and Maildirs in a
//! temp dir, listening on a free loopback port, never the system's service.
//!
//! - [`Dovecot::shared`]: a user of its own (own home, own empty Maildir) on the one Dovecot
//!   the whole test process shares, started on first use, so tests stay independent without
//!   paying for a server each. Every name is a user: the passdb and userdb are `static`, with
//!   one password and the home `mail/NAME`. (With a passwd-file rewritten for each new user,
//!   Dovecot sometimes refused a user added a moment before: it does not look at the file
//!   again on every login.)
//! - [`Dovecot::start`] (`start_with`, `start_tls`): a private server with the one user
//!   [`USER`], for tests that stop, restart or reconfigure the server.
//!
//! Nothing outlives the test process. Beside every server runs a watcher, `sh` waiting to read
//! from a pipe that only this process writes to. However this process ends (exit, failed test,
//! abort, SIGKILL), the kernel closes that pipe; the watcher's `read` returns and it kills
//! Dovecot's process group, then removes the server's directory. The watcher has a process
//! group of its own, so a Ctrl-C or a CI timeout that signals the test's group does not take it
//! along before it has done its work. (A value in a static is never dropped; `atexit` does not
//! run on a signal; `PR_SET_PDEATHSIG` fires when the spawning *thread* ends, and a test's
//! thread ends with the test.) A private server is also stopped on drop, as before; the
//! harness kills a watcher before it stops its server on purpose.
//!
//! Notes that save hours (DESIGN.md): socket paths are limited to 108 bytes, so the temp dir is
//! a short `/tmp/dvXXXXXX`; mail is owned by uid/gid 65534 (Dovecot refuses root as a mail
//! user); the temp dir is `chmod 755` so the unprivileged processes can reach it; Dovecot runs in
//! the foreground (`-F`) in its own process group, whose id is its pid.
//!
//! The harness talks IMAP itself through [`ImapClient`], a blocking client just big enough for
//! LOGIN, APPEND (LITERAL+), STATUS and CREATE, so it can be used from any thread.

#![allow(dead_code)]

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tempfile::TempDir;

use super::wait;

pub const DOVECOT: &str = "/usr/sbin/dovecot";
/// The mail user's uid and gid: nobody/nogroup.
pub(crate) const MAIL_ID: u32 = 65534;
/// The user of a private server.
pub const USER: &str = "tester";
/// Every user's password. Quotes, a backslash and a space: the client must quote the LOGIN
/// properly.
pub const PASSWORD: &str = "s3cr\"et \\pw";

/// How long Dovecot may take to start or to stop.
const PATIENCE: Duration = Duration::from_secs(15);

/// The server the test process shares; see [`Dovecot::shared`].
static SHARED: OnceLock<Server> = OnceLock::new();
/// Numbers the shared server's users.
static NEXT_USER: AtomicUsize = AtomicUsize::new(1);

/// One user's view of a Dovecot: what the tests hold.
pub struct Dovecot {
    server: Host,
    user: String,
}

enum Host {
    Own(Box<Server>),
    Shared(&'static Server),
}

impl Dovecot {
    /// A new user with an empty INBOX on the Dovecot this test process shares (started on
    /// first use). Its mail is its own; the server's log and port are shared, so a test that
    /// stops, restarts or reconfigures the server takes a private one ([`Dovecot::start`]).
    pub fn shared() -> Dovecot {
        let server = SHARED.get_or_init(|| {
            let mut server = Server::new("", false);
            server.launch();
            server
        });
        let user = format!("u{}", NEXT_USER.fetch_add(1, Ordering::Relaxed));
        server.add_user(&user);
        Dovecot {
            server: Host::Shared(server),
            user,
        }
    }

    /// A private running Dovecot with one user ([`USER`]/[`PASSWORD`]) and an empty INBOX.
    pub fn start() -> Dovecot {
        Dovecot::start_with("")
    }

    /// Like [`Dovecot::start`] with `extra` lines at the end of `dovecot.conf` (for example
    /// `imap_capability = IMAP4rev1 LITERAL+` to hide MOVE, UIDPLUS and IDLE from clients).
    pub fn start_with(extra: &str) -> Dovecot {
        Dovecot::private(extra, false)
    }

    /// A private Dovecot with TLS: STARTTLS on [`Dovecot::port`], implicit TLS on
    /// [`Dovecot::imaps_port`], with a certificate for the IP address 127.0.0.1 issued by a
    /// private CA ([`Dovecot::ca_file`]; made with the `openssl` command).
    pub fn start_tls() -> Dovecot {
        Dovecot::private("", true)
    }

    fn private(extra: &str, tls: bool) -> Dovecot {
        let mut server = Server::new(extra, tls);
        server.add_user(USER);
        server.launch();
        Dovecot {
            server: Host::Own(Box::new(server)),
            user: USER.to_owned(),
        }
    }

    fn server(&self) -> &Server {
        match &self.server {
            Host::Own(server) => server,
            Host::Shared(server) => server,
        }
    }

    fn own(&mut self, what: &str) -> &mut Server {
        match &mut self.server {
            Host::Own(server) => server,
            Host::Shared(_) => {
                panic!("{what}: the shared Dovecot is not yours; use Dovecot::start")
            }
        }
    }

    pub fn port(&self) -> u16 {
        self.server().port
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    /// The implicit-TLS port; only after [`Dovecot::start_tls`].
    pub fn imaps_port(&self) -> u16 {
        self.server().imaps_port.expect("started without TLS")
    }

    /// The private CA that issued the server certificate (after [`Dovecot::start_tls`]).
    pub fn ca_file(&self) -> PathBuf {
        self.server().dir.join("ca.pem")
    }

    pub fn password(&self) -> &str {
        PASSWORD
    }

    /// A file holding the password (with a trailing newline), for `password_file`.
    pub fn password_file(&self) -> PathBuf {
        self.server().dir.join("password")
    }

    /// The server's directory (shared with other tests on the shared server).
    pub fn dir(&self) -> &Path {
        &self.server().dir
    }

    /// The lines of Dovecot's log so far that concern this user (`user=<NAME>`, `imap(NAME)`).
    pub fn log(&self) -> String {
        let mentions = [format!("user=<{}>", self.user), format!("({})", self.user)];
        self.server()
            .log()
            .lines()
            .filter(|l| mentions.iter().any(|m| l.contains(m.as_str())))
            .map(|l| format!("{l}\n"))
            .collect()
    }

    /// The Maildir folder of `mailbox` (`INBOX` is the Maildir itself; others are `.Name`).
    pub fn maildir(&self, mailbox: &str) -> PathBuf {
        let base = self.server().home(&self.user).join("Maildir");
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
             user = \"{}\"\n\
             password_file = \"{}\"\n\
             idle = true\n\
             {extra}\n",
            self.port(),
            self.user,
            self.password_file().display()
        )
    }

    /// A new logged-in client.
    pub fn client(&self) -> ImapClient {
        ImapClient::login(self.port(), &self.user, PASSWORD)
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

    /// Whether a session of this user is in IDLE now, as Dovecot itself says in the title of
    /// the session's process (`verbose_proctitle`): `dovecot/imap [USER 127.0.0.1 IDLE]`.
    pub fn idling(&self) -> bool {
        idling(&self.user)
    }

    /// Waits until a session of this user is in IDLE; panics after `limit`.
    #[track_caller]
    pub fn wait_for_idle(&self, limit: Duration) {
        wait::until(
            limit,
            &format!("an IMAP session of {} in IDLE", self.user),
            || self.idling(),
        );
    }

    /// Stops the private Dovecot (SIGTERM to its process group, SIGKILL if it lingers) and
    /// waits until the port is free again.
    pub fn stop(&mut self) {
        self.own("stop").stop();
    }

    /// Starts the private Dovecot again after [`Dovecot::stop`], on the same port with the
    /// same mail.
    pub fn resume(&mut self) {
        let server = self.own("resume");
        assert!(server.running.is_none(), "Dovecot is running");
        server.launch();
    }

    /// Stop and start on the same port: every client connection is cut.
    pub fn restart(&mut self) {
        self.stop();
        self.resume();
    }

    /// Makes the private Dovecot forget the UIDs of `mailbox` (its uidlist and indexes are
    /// deleted while it is stopped), so the mailbox comes back with a new UIDVALIDITY and
    /// renumbered messages.
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
}

/// Delivers `raw` into a Maildir folder of the server as an MDA does: written to `tmp/`, renamed
/// into `new/`, owned by the mail user. Works while the server restarts.
pub fn deliver_file(maildir: &Path, name: &str, raw: &[u8]) {
    for sub in ["", "tmp", "new", "cur"] {
        let dir = maildir.join(sub);
        if !dir.exists() {
            fs::create_dir_all(&dir).expect("a Maildir folder");
            std::os::unix::fs::chown(&dir, Some(MAIL_ID), Some(MAIL_ID)).expect("chown folder");
        }
    }
    let tmp = maildir.join("tmp").join(name);
    fs::write(&tmp, raw).expect("deliver");
    std::os::unix::fs::chown(&tmp, Some(MAIL_ID), Some(MAIL_ID)).expect("chown message");
    fs::rename(&tmp, maildir.join("new").join(name)).expect("deliver");
}

/// Whether a Dovecot session of `user` is in IDLE now (see [`Dovecot::idling`]); a free function
/// for threads that hold no [`Dovecot`].
pub fn idling(user: &str) -> bool {
    let title = format!("[{user} 127.0.0.1 IDLE]");
    let Ok(entries) = fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|entry| {
        fs::read(entry.path().join("cmdline"))
            .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&title))
    })
}

/// One Dovecot instance: directory, ports, users, process.
struct Server {
    dir: PathBuf,
    /// Removed on drop. The shared server, in a static, is never dropped: its watcher removes
    /// the directory when the test process has ended (as it would a private one's, were the
    /// process killed before the drop).
    _temp: TempDir,
    port: u16,
    imaps_port: Option<u16>,
    running: Option<Running>,
}

/// A started Dovecot and its watcher.
struct Running {
    /// Dovecot's master process, leader of its own process group.
    dovecot: Child,
    /// `sh` waiting for [`Running::pipe`] to close, to kill Dovecot's group.
    watcher: Child,
    /// The write end of the watcher's stdin; closed by the kernel when this process ends.
    pipe: ChildStdin,
}

impl Server {
    fn new(extra: &str, tls: bool) -> Server {
        assert!(
            Path::new(DOVECOT).exists(),
            "{DOVECOT} is missing: install dovecot-imapd (scripts/test does)"
        );
        let temp = tempfile::Builder::new()
            .prefix("dv")
            .tempdir_in("/tmp")
            .expect("temp dir");
        let root = temp.path().to_path_buf();
        fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).expect("chmod 755");
        for sub in ["run", "state", "mail"] {
            fs::create_dir(root.join(sub)).expect("dovecot dirs");
        }
        std::os::unix::fs::chown(root.join("mail"), Some(MAIL_ID), Some(MAIL_ID))
            .expect("chown mail dir");
        fs::write(root.join("password"), format!("{PASSWORD}\n")).expect("password file");

        let port = free_port();
        let imaps_port = tls.then(free_port);
        let ssl = if tls {
            make_certificates(&root);
            format!(
                "ssl = yes\nssl_cert = <{0}/server.pem\nssl_key = <{0}/server.key\n",
                root.display()
            )
        } else {
            "ssl = no\n".to_owned()
        };
        let imaps = imaps_port.unwrap_or(0);
        let r = root.display();
        // The static passdb's arguments are split at spaces, so the password goes in hashed.
        let hash = {
            use base64::Engine as _;
            use sha2::Digest as _;
            base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(PASSWORD))
        };
        // `verbose_proctitle` shows each session's user and command in its process title:
        // how a test sees that a client is in IDLE.
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
             verbose_proctitle = yes\n\
             mail_location = maildir:~/Maildir\n\
             mail_fsync = never\n\
             first_valid_uid = 1\n\
             passdb {{\n  driver = static\n  args = password={{SHA256}}{hash}\n}}\n\
             userdb {{\n  driver = static\n  args = uid={MAIL_ID} gid={MAIL_ID} home={r}/mail/%u\n}}\n\
             namespace inbox {{\n  inbox = yes\n  separator = /\n}}\n\
             service imap-login {{\n  inet_listener imap {{\n    address = 127.0.0.1\n    port = {port}\n  }}\n  inet_listener imaps {{\n    address = 127.0.0.1\n    port = {imaps}\n  }}\n}}\n\
             {extra}\n"
        );
        fs::write(root.join("dovecot.conf"), conf).expect("dovecot.conf");
        Server {
            dir: root,
            _temp: temp,
            port,
            imaps_port,
            running: None,
        }
    }

    fn home(&self, user: &str) -> PathBuf {
        self.dir.join("mail").join(user)
    }

    /// Makes the empty home of `user` (any name logs in with [`PASSWORD`]; a fresh name is a
    /// fresh mailbox). Fails if the name was taken.
    fn add_user(&self, user: &str) {
        let home = self.home(user);
        fs::create_dir(&home).expect("a new user's mail home");
        std::os::unix::fs::chown(&home, Some(MAIL_ID), Some(MAIL_ID)).expect("chown mail home");
    }

    /// Dovecot's whole log so far.
    fn log(&self) -> String {
        fs::read_to_string(self.dir.join("dovecot.log")).unwrap_or_default()
    }

    /// Starts Dovecot and its watcher; returns once Dovecot greets on its port.
    fn launch(&mut self) {
        let stderr = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("stderr.log"))
            .expect("stderr log");
        let dovecot = Command::new(DOVECOT)
            .arg("-F")
            .arg("-c")
            .arg(self.dir.join("dovecot.conf"))
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start dovecot");
        let group = dovecot.id();
        let mut watcher = Command::new("sh")
            .arg("-c")
            .arg(WATCHER)
            .arg("sh")
            .arg(group.to_string())
            .arg(&self.dir)
            .process_group(0)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                kill_group(group);
                panic!("cannot start the watcher of dovecot: {e}")
            });
        let pipe = watcher.stdin.take().expect("watcher stdin");
        self.running = Some(Running {
            dovecot,
            watcher,
            pipe,
        });
        let port = self.port;
        let mut exited = None;
        let greeted = wait::within(PATIENCE, || {
            let running = self.running.as_mut().expect("running");
            exited = running.dovecot.try_wait().ok().flatten();
            exited.is_some() || greets(port)
        });
        if let Some(status) = exited {
            self.kill();
            panic!(
                "dovecot exited with {status}:\n{}\n{}",
                fs::read_to_string(self.dir.join("stderr.log")).unwrap_or_default(),
                self.log()
            );
        }
        if !greeted {
            self.kill();
            panic!("dovecot did not answer on port {port}:\n{}", self.log());
        }
    }

    /// Stops Dovecot (SIGTERM to its process group, SIGKILL if it lingers) and waits until the
    /// port is free again.
    fn stop(&mut self) {
        let Some(mut running) = self.running.take() else {
            return;
        };
        // The watcher first: it must not fire at a process group that is gone.
        let _ = running.watcher.kill();
        let _ = running.watcher.wait();
        let group = running.dovecot.id();
        signal_group(group, libc::SIGTERM);
        wait::within(PATIENCE, || {
            running.dovecot.try_wait().ok().flatten().is_some()
        });
        signal_group(group, libc::SIGKILL);
        let _ = running.dovecot.wait();
        // The master's helpers (log, auth, imap …) exit on their own signal; wait for them.
        wait::within(PATIENCE, || !group_running(group));
        wait::within(PATIENCE, || {
            TcpListener::bind(("127.0.0.1", self.port)).is_ok()
        });
    }

    /// Kills Dovecot's process group at once and waits until none of it runs.
    fn kill(&mut self) {
        if let Some(mut running) = self.running.take() {
            let _ = running.watcher.kill();
            let _ = running.watcher.wait();
            let group = running.dovecot.id();
            signal_group(group, libc::SIGKILL);
            let _ = running.dovecot.wait();
            wait::within(Duration::from_secs(5), || !group_running(group));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // No graceful shutdown needed at the end: the whole group goes at once. (The shared
        // server lives in a static and is never dropped: its watcher ends it.)
        self.kill();
    }
}

/// The watcher beside each Dovecot (`sh -c WATCHER sh GROUP DIR`): its stdin reaches end of
/// file when the test process has ended, however it ended; it then kills Dovecot's process
/// group and removes DIR once the group is gone (zombies included, at most 5 s). The harness
/// kills the watcher itself before it stops or drops a server on purpose, so the watcher
/// never acts while the test process lives.
const WATCHER: &str = r#"read -r _
kill -KILL -"$1" 2>/dev/null
n=0
while kill -0 -"$1" 2>/dev/null && [ "$n" -lt 100 ]; do sleep 0.05; n=$((n + 1)); done
rm -rf -- "$2"
"#;

fn kill_group(group: u32) {
    signal_group(group, libc::SIGKILL);
}

fn signal_group(group: u32, signal: libc::c_int) {
    let group = libc::pid_t::try_from(group).expect("process group id");
    // SAFETY: kill(2) with a negative pid signals a process group; no memory is involved.
    unsafe {
        libc::kill(-group, signal);
    }
}

/// Whether a process of `group` is still running (not a zombie that only waits to be reaped:
/// those hold no files, no ports).
fn group_running(group: u32) -> bool {
    let Ok(entries) = fs::read_dir("/proc") else {
        return false;
    };
    let group = group.to_string();
    entries.flatten().any(|entry| {
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            return false;
        };
        // `pid (comm) state ppid pgrp …`; comm may hold spaces and parentheses.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            return false;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next().unwrap_or("");
        let pgrp = fields.nth(1).unwrap_or("");
        pgrp == group && !matches!(state, "Z" | "X")
    })
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
