//! The daemon as systemd runs it. The unit passes `systemd-analyze verify` and rates at most
//! 2.0 in `systemd-analyze security --offline=true`. The real binary, with `NOTIFY_SOCKET` at a
//! socket of the test and `WATCHDOG_USEC` set, says READY=1 only once the mailbox and the relay
//! were reached or their failure logged, shows STATUS= lines, pings WATCHDOG=1 while it idles
//! and stops pinging while a pass hangs, answers SIGHUP with RELOADING=1 + MONOTONIC_USEC= and
//! READY=1, and SIGTERM with STOPPING=1.

use std::fs;
use std::io::ErrorKind;
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use madoguchi::store::{Store, StoreError};

use crate::daemon::Daemon;
use crate::dovecot::Dovecot;
use crate::smtp_sink::SmtpSink;
use crate::util::{Desk, MINIMAL_CONFIG, arg, repo_path};
use crate::wait;

/// `WATCHDOG_USEC` the daemons get: pings every 0.5 s while alive.
const WATCHDOG: Duration = Duration::from_secs(2);

/// The socket systemd would listen on: every datagram the daemon sends, with when it came.
pub(crate) struct NotifySocket {
    path: PathBuf,
    seen: Arc<Mutex<Vec<(Instant, String)>>>,
    stop: Arc<AtomicBool>,
    reader: Option<JoinHandle<()>>,
}

impl NotifySocket {
    pub(crate) fn bind(dir: &Path) -> NotifySocket {
        let path = dir.join("notify.sock");
        let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("read timeout");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let reader = {
            let (seen, stop) = (seen.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 65536];
                while !stop.load(Ordering::Relaxed) {
                    match socket.recv(&mut buf) {
                        Ok(n) => {
                            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                            seen.lock().expect("seen").push((Instant::now(), text));
                        }
                        Err(e)
                            if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                        Err(e) => panic!("notify socket: {e}"),
                    }
                }
            })
        };
        NotifySocket {
            path,
            seen,
            stop,
            reader: Some(reader),
        }
    }

    pub(crate) fn path(&self) -> &str {
        arg(&self.path)
    }

    /// Every datagram so far.
    pub(crate) fn all(&self) -> Vec<(Instant, String)> {
        self.seen.lock().expect("seen").clone()
    }

    /// Datagrams with a line `line` (`READY=1`, or a prefix like `STATUS=` when it ends in `=`).
    pub(crate) fn with(&self, line: &str) -> Vec<(Instant, String)> {
        self.all()
            .into_iter()
            .filter(|(_, d)| has_line(d, line))
            .collect()
    }

    /// Waits for the `n`th datagram with `line`; its index among all datagrams.
    pub(crate) fn wait_for(&self, line: &str, n: usize, limit: Duration) -> usize {
        let mut index = 0;
        let found = wait::within(limit, || {
            let all = self.all();
            let hits: Vec<usize> = (0..all.len())
                .filter(|&i| has_line(&all[i].1, line))
                .collect();
            hits.get(n - 1).map(|&i| index = i).is_some()
        });
        assert!(
            found,
            "no {line} #{n} within {limit:?}: {:#?}",
            self.texts()
        );
        index
    }

    /// The STATUS= texts so far.
    pub(crate) fn statuses(&self) -> Vec<String> {
        self.all()
            .iter()
            .flat_map(|(_, d)| d.lines().filter_map(|l| l.strip_prefix("STATUS=")))
            .map(str::to_string)
            .collect()
    }

    fn texts(&self) -> Vec<String> {
        self.all().into_iter().map(|(_, d)| d).collect()
    }
}

/// Waits for a STATUS= line that `want` accepts; fails with every status seen.
fn wait_status(notify: &NotifySocket, what: &str, want: impl Fn(&str) -> bool) {
    let found = wait::within(Duration::from_secs(30), || {
        notify.statuses().iter().any(|s| want(s))
    });
    assert!(
        found,
        "no status line with {what}: {:#?}",
        notify.statuses()
    );
}

fn has_line(datagram: &str, line: &str) -> bool {
    datagram.lines().any(|l| {
        if line.ends_with('=') {
            l.starts_with(line)
        } else {
            l == line
        }
    })
}

impl Drop for NotifySocket {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

/// `NOTIFY_SOCKET` and `WATCHDOG_USEC` as systemd sets them.
fn service_env(notify: &NotifySocket) -> Vec<(&str, String)> {
    vec![
        ("NOTIFY_SOCKET", notify.path().to_string()),
        ("WATCHDOG_USEC", WATCHDOG.as_micros().to_string()),
    ]
}

fn start(desk: &Desk, env: &[(&str, String)]) -> Daemon {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Daemon::start_env(desk.config(), desk.dir().join("daemon.log"), &[], &env)
}

/// `systemd-analyze` on the unit, with its binary path pointing at the built binary (verify
/// checks that every command exists and is executable).
fn analyze(args: &[&str]) -> (bool, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let unit = fs::read_to_string(repo_path("deploy/madoguchi.service")).expect("unit");
    // Wherever the unit installs the binary (/usr/local/bin, /usr/bin), the built one.
    let unit: String = unit
        .lines()
        .map(|line| match line.split_once('=') {
            Some((key @ ("ExecStart" | "ExecStartPre"), command)) => {
                let args = command.split_once(' ').map_or("", |(_, args)| args);
                format!("{key}={} {args}\n", env!("CARGO_BIN_EXE_madoguchi"))
            }
            _ => format!("{line}\n"),
        })
        .collect();
    let path = dir.path().join("madoguchi.service");
    fs::write(&path, unit).expect("write unit");
    let out = Command::new("systemd-analyze")
        .args(args)
        .arg(&path)
        .env("SYSTEMD_PAGER", "")
        .env("SYSTEMD_COLORS", "0")
        .output()
        .expect("systemd-analyze (scripts/test installs systemd)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn the_unit_passes_verify_and_rates_at_most_2_0_in_systemd_analyze_security() {
    let (ok, text) = analyze(&["verify"]);
    assert!(ok, "systemd-analyze verify failed:\n{text}");
    assert!(text.trim().is_empty(), "verify complains:\n{text}");

    let (ok, text) = analyze(&["security", "--offline=true", "--no-pager"]);
    assert!(ok, "systemd-analyze security failed:\n{text}");
    let exposure: f64 = text
        .lines()
        .find_map(|l| l.split_once("Overall exposure level for madoguchi.service:"))
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{text}"));
    println!("systemd-analyze security: exposure {exposure}");
    assert!(exposure <= 2.0, "exposure {exposure} > 2.0:\n{text}");

    let unit = fs::read_to_string(repo_path("deploy/madoguchi.service")).expect("unit");
    for line in [
        "Type=notify",
        "WatchdogSec=",
        "ExecReload=",
        "NotifyAccess=main",
    ] {
        assert!(unit.lines().any(|l| l.starts_with(line)), "no {line}");
    }
}

/// A TCP port that accepts and says nothing: a mailbox or relay that hangs.
fn silent_server() -> (TcpListener, u16) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("addr").port();
    (listener, port)
}

fn accepted(listener: &TcpListener, what: &str) -> TcpStream {
    let mut conn = None;
    wait::until(Duration::from_secs(20), what, || match listener.accept() {
        Ok((c, _)) => {
            conn = Some(c);
            true
        }
        Err(_) => false,
    });
    conn.expect("accepted")
}

#[test]
fn ready_comes_only_once_the_mailbox_and_the_relay_were_tried_and_their_failure_logged() {
    let (imap, imap_port) = silent_server();
    let (smtp, smtp_port) = silent_server();
    let desk = Desk::with_config(&format!(
        "{MINIMAL_CONFIG}\n[intake]\nkind = \"imap\"\nhost = \"127.0.0.1\"\nport = {imap_port}\n\
         tls = \"none\"\nallow_plaintext = true\nuser = \"desk\"\npassword_env = \"DESK_IMAP_PW\"\n\n\
         [outbound]\nkind = \"smtp\"\nhost = \"127.0.0.1\"\nport = {smtp_port}\ntls = \"none\"\n\
         allow_plaintext = true\nparallel = 1\n"
    ));
    let notify = NotifySocket::bind(desk.dir());
    let mut env = service_env(&notify);
    env.push(("DESK_IMAP_PW", "not-used".into()));
    let mut daemon = start(&desk, &env);

    // The mailbox accepts the connection and never greets: no READY while it hangs.
    let conn = accepted(&imap, "the daemon connecting to the mailbox");
    assert!(
        !wait::within(Duration::from_secs(1), || !notify
            .with("READY=1")
            .is_empty()),
        "READY=1 while the mailbox had not answered: {:?}",
        notify.texts()
    );
    drop(conn);
    // Then the relay, likewise.
    let conn = accepted(&smtp, "the daemon connecting to the relay");
    assert!(
        !wait::within(Duration::from_secs(1), || !notify
            .with("READY=1")
            .is_empty()),
        "READY=1 while the relay had not answered: {:?}",
        notify.texts()
    );
    drop(conn);
    notify.wait_for("READY=1", 1, Duration::from_secs(20));
    let log = daemon.log_text();
    assert!(
        log.contains("Cannot open the mailbox") && log.contains("Cannot open an SMTP connection"),
        "READY=1 before both failures were logged:\n{log}"
    );
    wait_status(&notify, "both troubles", |s| {
        s.starts_with("mailbox unreachable since ") && s.contains("relay unreachable since ")
    });
    println!("status: {:?}", notify.statuses().last());

    daemon.signal("-TERM");
    assert!(
        daemon.wait(Duration::from_secs(30)).success(),
        "{}",
        daemon.log_text()
    );
    notify.wait_for("STOPPING=1", 1, Duration::from_secs(5));
}

fn customer_mail() -> Vec<u8> {
    b"From: Customer <customer1@example.jp>\r\nTo: support@example.co.jp\r\n\
      Subject: question\r\nMessage-ID: <q1@example.jp>\r\nDate: Wed, 25 Nov 2026 10:00:00 +0900\r\n\
      MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\nhello\r\n"
        .to_vec()
}

/// `CLOCK_MONOTONIC` now, in microseconds (what `MONOTONIC_USEC=` is measured in).
fn monotonic_usec() -> i128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    assert_eq!(rc, 0);
    i128::from(ts.tv_sec) * 1_000_000 + i128::from(ts.tv_nsec) / 1_000
}

#[test]
fn the_daemon_tells_systemd_ready_status_watchdog_reloading_and_stopping() {
    let dovecot = Dovecot::shared();
    let sink = SmtpSink::start();
    let desk = Desk::with_config(&format!(
        "[desk]\naddress = \"support@example.co.jp\"\n\n\
         [storage]\ndatabase = \"var/db.sqlite3\"\nfiles = \"var/files\"\n\n{}\n\
         [outbound]\nkind = \"smtp\"\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n\
         allow_plaintext = true\nparallel = 1\n",
        dovecot.config_toml(""),
        sink.port()
    ));
    let notify = NotifySocket::bind(desk.dir());
    let mut daemon = start(&desk, &service_env(&notify));

    let ready = notify.wait_for("READY=1", 1, Duration::from_secs(30));
    // The mailbox was logged in to before READY.
    assert!(dovecot.log().contains("Login"), "{}", dovecot.log());
    let all = notify.all();
    let first_status = all[..ready]
        .iter()
        .filter_map(|(_, d)| d.strip_prefix("STATUS="))
        .next();
    assert_eq!(
        first_status.map(str::trim_end),
        Some("starting: opening the mailbox and the relay")
    );
    wait_status(&notify, "the mailbox idle and nothing waiting", |s| {
        s.starts_with("idle on INBOX at 127.0.0.1; ")
            && s.ends_with("queue 0 open; outbox 0 pending")
    });

    // While it idles the pings go on, one every WATCHDOG/4.
    dovecot.wait_for_idle(Duration::from_secs(30));
    let before = notify.with("WATCHDOG=1").len();
    notify.wait_for("WATCHDOG=1", before + 4, Duration::from_secs(10));

    dovecot.append("INBOX", &customer_mail());
    wait_status(&notify, "the last pass", |s| {
        s.contains("; last pass ")
            && s.contains(": 1 message, 1 new ticket, 1 sent; queue 1 open")
            && s.ends_with("; outbox 0 pending")
    });
    assert_eq!(sink.received().len(), 1);

    // SIGHUP: RELOADING=1 with MONOTONIC_USEC= of now, then READY=1 again.
    let asked = monotonic_usec();
    daemon.signal("-HUP");
    let reloading = notify.wait_for("RELOADING=1", 1, Duration::from_secs(10));
    let datagram = notify.all()[reloading].1.clone();
    let usec: i128 = datagram
        .lines()
        .find_map(|l| l.strip_prefix("MONOTONIC_USEC="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no MONOTONIC_USEC= with RELOADING=1: {datagram:?}"));
    assert!(
        usec >= asked && usec <= monotonic_usec(),
        "MONOTONIC_USEC={usec}, asked at {asked}"
    );
    let ready_again = notify.wait_for("READY=1", 2, Duration::from_secs(10));
    assert!(ready_again > reloading);

    daemon.signal("-TERM");
    assert!(
        daemon.wait(Duration::from_secs(30)).success(),
        "{}",
        daemon.log_text()
    );
    let stopping = notify.wait_for("STOPPING=1", 1, Duration::from_secs(5));
    assert!(stopping > ready_again);
}

/// Delivers a customer's mail into the desk's Maildir.
fn deliver(desk: &Desk) {
    let path = desk.dir().join("var/inbox/new/1.test");
    fs::write(path, customer_mail()).expect("deliver");
}

/// The longest time without a ping since `from`, up to now.
fn silence_since(notify: &NotifySocket, from: Instant) -> Duration {
    let mut last = from;
    let mut longest = Duration::ZERO;
    for (at, _) in notify.with("WATCHDOG=1") {
        if at > from {
            longest = longest.max(at - last);
            last = at;
        }
    }
    longest.max(last.elapsed())
}

#[test]
fn a_pass_stuck_on_the_store_stops_the_watchdog_pings_until_it_moves_again() {
    let desk = Desk::with_config(MINIMAL_CONFIG);
    let inbox = desk.dir().join("var/inbox");
    for sub in ["new", "cur", "tmp"] {
        fs::create_dir_all(inbox.join(sub)).expect("maildir");
    }
    let notify = NotifySocket::bind(desk.dir());
    let mut daemon = start(&desk, &service_env(&notify));
    notify.wait_for("READY=1", 1, Duration::from_secs(30));
    let idle_from = notify.with("WATCHDOG=1").len();
    notify.wait_for("WATCHDOG=1", idle_from + 3, Duration::from_secs(10));

    // Another process holds SQLite's write lock; mail arrives; the pass waits for the lock (up
    // to the store's 10 s busy timeout), and no step of it finishes.
    let database = desk.dir().join("var/db.sqlite3");
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let store = Store::open(&database).expect("store");
        store
            .write(|_| {
                let _ = locked_tx.send(());
                let _ = release_rx.recv();
                Ok::<_, StoreError>(())
            })
            .expect("hold the lock");
    });
    locked_rx.recv().expect("the lock is held");
    let held = Instant::now();
    deliver(&desk);
    wait::until(
        Duration::from_secs(8),
        "the pings to stop for longer than the watchdog interval",
        || silence_since(&notify, held) > WATCHDOG + Duration::from_millis(500),
    );
    assert!(
        fs::read_dir(desk.dir().join("var/outbox")).map_or(true, |d| d.count() == 0),
        "the pass was not stuck"
    );
    release_tx.send(()).expect("release");
    holder.join().expect("holder");
    let released = Instant::now();
    wait::until(Duration::from_secs(10), "the pings to resume", || {
        notify
            .with("WATCHDOG=1")
            .iter()
            .any(|(at, _)| *at > released)
    });
    wait::until(Duration::from_secs(10), "the reply written", || {
        fs::read_dir(desk.dir().join("var/outbox")).is_ok_and(|d| d.count() > 0)
    });
    println!(
        "pings stopped for {:?} while the pass was stuck",
        silence_since(&notify, held)
    );

    daemon.signal("-TERM");
    assert!(
        daemon.wait(Duration::from_secs(30)).success(),
        "{}",
        daemon.log_text()
    );
}

/// `MemoryDenyWriteExecute=yes` holds for the binary: a whole pass over IMAP with implicit TLS
/// (rustls and ring) runs with the kernel refusing writable-and-executable memory
/// (`PR_SET_MDWE`, the same rule systemd's seccomp filter enforces; Linux 6.3 and later).
#[test]
fn the_binary_runs_a_tls_pass_without_writable_executable_memory() {
    const PR_SET_MDWE: libc::c_int = 65;
    const PR_MDWE_REFUSE_EXEC_GAIN: libc::c_ulong = 1;
    let dovecot = Dovecot::start_tls();
    dovecot.append("INBOX", &customer_mail());
    let desk = Desk::with_config(&format!(
        "{MINIMAL_CONFIG}\n[intake]\nkind = \"imap\"\nhost = \"127.0.0.1\"\nport = {}\n\
         tls = \"implicit\"\nuser = \"{}\"\npassword_file = \"{}\"\n",
        dovecot.imaps_port(),
        dovecot.user(),
        dovecot.password_file().display()
    ));
    let mut command = Command::new(env!("CARGO_BIN_EXE_madoguchi"));
    command
        .args(["--config", arg(desk.config()), "run", "--once"])
        .env("SSL_CERT_FILE", dovecot.ca_file());
    // SAFETY: prctl is async-signal-safe and touches only the child's own state.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut command, || {
            if libc::prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = match command.output() {
        Ok(out) => out,
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            println!("skipped: this kernel has no PR_SET_MDWE ({e})");
            return;
        }
        Err(e) => panic!("cannot run madoguchi under PR_SET_MDWE: {e}"),
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.starts_with("1 message(s): 1 new ticket(s)"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(dovecot.count("Processed"), 1);
}
