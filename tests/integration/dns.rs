//! A real DNS server for the tests: Debian's dnsmasq on a free loopback port, answering with
//! the TXT records it is given and nothing else (`--no-resolv`, `--no-hosts`: no upstream, no
//! host files). It speaks for the parent of each record (`--local`): another name there, such
//! as a selector nothing is published at, is NXDOMAIN; a name anywhere else is REFUSED.
//!
//! Ready means answering: [`Dns::serve`] returns once a query for its first record gets the
//! record back over UDP. Nothing outlives the test process: as with Dovecot
//! (`dovecot.rs`), a watcher `sh` reads from a pipe only this process writes to and kills
//! dnsmasq when the pipe closes, however this process ends.

use std::io::Read;
use std::net::{TcpListener, UdpSocket};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use crate::wait;

/// Debian's `dnsmasq-base` (scripts/test installs it).
pub const DNSMASQ: &str = "/usr/sbin/dnsmasq";

/// How long dnsmasq may take to answer its first query.
const STARTUP: Duration = Duration::from_secs(20);

/// Kills dnsmasq (`$1`) once the pipe on stdin closes.
const WATCHER: &str = "read -r _\nkill -KILL \"$1\" 2>/dev/null\n";

pub struct Dns {
    port: u16,
    dnsmasq: Child,
    watcher: Child,
    _pipe: ChildStdin,
}

impl Dns {
    /// Serves `records`, `(name, text)` TXT records, on a free loopback port (UDP and TCP).
    /// Text longer than a DNS character-string (255 bytes, e.g. an RSA key) is split into
    /// several strings of the one record, as DKIM publishers do.
    pub fn serve(records: &[(String, String)]) -> Dns {
        let mut last = String::new();
        for _ in 0..5 {
            match Dns::launch(records, free_port()) {
                Ok(dns) => return dns,
                // Another process took the port between our look and dnsmasq's bind.
                Err(why) if why.contains("Address already in use") => last = why,
                Err(why) => panic!("dnsmasq did not start: {why}"),
            }
        }
        panic!("dnsmasq found no free port: {last}");
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    fn launch(records: &[(String, String)], port: u16) -> Result<Dns, String> {
        let mut command = Command::new(DNSMASQ);
        command.args([
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--no-poll",
            "--listen-address=127.0.0.1",
            "--bind-interfaces",
            "--pid-file=",
            "--log-facility=-",
            &format!("--port={port}"),
        ]);
        for (name, text) in records {
            let strings: Vec<String> = text
                .as_bytes()
                .chunks(200)
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect();
            command.arg(format!("--txt-record={name},{}", strings.join(",")));
            if let Some((_, parent)) = name.split_once('.') {
                command.arg(format!("--local=/{parent}/"));
            }
        }
        let mut dnsmasq = command
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {DNSMASQ} (apt-get install dnsmasq-base): {e}"));
        let mut watcher = Command::new("sh")
            .arg("-c")
            .arg(WATCHER)
            .arg("sh")
            .arg(dnsmasq.id().to_string())
            .process_group(0)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                let _ = dnsmasq.kill();
                panic!("cannot start the watcher of dnsmasq: {e}")
            });
        let pipe = watcher.stdin.take().expect("watcher stdin");
        let probe = records
            .first()
            .map_or("ready.invalid", |(name, _)| name.as_str());
        let mut exited = None;
        let ready = wait::within(STARTUP, || {
            exited = dnsmasq.try_wait().ok().flatten();
            exited.is_some() || answers(port, probe, !records.is_empty())
        });
        let mut dns = Dns {
            port,
            dnsmasq,
            watcher,
            _pipe: pipe,
        };
        if exited.is_some() {
            let mut stderr = String::new();
            if let Some(mut e) = dns.dnsmasq.stderr.take() {
                let _ = e.read_to_string(&mut stderr);
            }
            return Err(stderr);
        }
        if !ready {
            return Err(format!("no answer on port {port}"));
        }
        Ok(dns)
    }
}

impl Drop for Dns {
    fn drop(&mut self) {
        let _ = self.watcher.kill();
        let _ = self.watcher.wait();
        let _ = self.dnsmasq.kill();
        let _ = self.dnsmasq.wait();
    }
}

/// A loopback port free for both UDP and TCP just now.
pub fn free_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("a UDP port");
        let port = udp.local_addr().expect("local address").port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Whether the server on `port` answers a TXT query for `name` (with an answer, when
/// `answer`; with any reply at all otherwise).
fn answers(port: u16, name: &str, answer: bool) -> bool {
    let Ok(socket) = UdpSocket::bind("127.0.0.1:0") else {
        return false;
    };
    if socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .is_err()
    {
        return false;
    }
    let id: u16 = 0x6d61;
    // Header: id, RD, one question; then the name, type TXT (16), class IN (1).
    let mut query = vec![0x6d, 0x61, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.trim_end_matches('.').split('.') {
        query.push(u8::try_from(label.len()).expect("a short label"));
        query.extend_from_slice(label.as_bytes());
    }
    query.extend_from_slice(&[0, 0, 16, 0, 1]);
    if socket.send_to(&query, ("127.0.0.1", port)).is_err() {
        return false;
    }
    let mut reply = [0u8; 4096];
    match socket.recv(&mut reply) {
        Ok(n) if n >= 12 && u16::from_be_bytes([reply[0], reply[1]]) == id => {
            let rcode = reply[3] & 0x0f;
            let count = u16::from_be_bytes([reply[6], reply[7]]);
            !answer || (rcode == 0 && count > 0)
        }
        _ => false,
    }
}
