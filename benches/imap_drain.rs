//! Backlog drain (issue 4): N messages waiting in a real Dovecot → all ticketed, answered into
//! the outbox and moved to Processed by `madoguchi run --once`, against the baseline of a plain
//! UID FETCH of the same mailbox in the same run; and the daemon's peak resident memory.
//!
//! Issue 14 adds the exactly-once floor: Python's imaplib fetching each batch of 256 and moving
//! it away (UID FETCH + UID MOVE), no desk work in between, the fastest any consumer that
//! acknowledges only what it has can go; and the ratios to it.
//!
//! `cargo bench --bench imap_drain` (MADOGUCHI_BENCH_MESSAGES, default 10,000;
//! MADOGUCHI_BENCH_PROFILE=1 also prints the daemon's stage profile of the full drain).

mod support;

// The harnesses find `crate::util`, as in the test binary.
#[allow(unused_imports)]
use support::util;

use std::time::Instant;

use futures::StreamExt;
use support::dovecot::{Dovecot, PASSWORD, USER};

async fn plain_uid_fetch(port: u16) -> (usize, usize) {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let mut client = async_imap::Client::new(tcp);
    let _greeting = client.read_response().await;
    let mut session = client.login(USER, PASSWORD).await.map_err(|e| e.0).unwrap();
    session.select("INBOX").await.unwrap();
    let mut count = 0;
    let mut bytes = 0;
    {
        let mut fetches = session
            .uid_fetch("1:*", "(UID INTERNALDATE RFC822.SIZE BODY.PEEK[])")
            .await
            .unwrap();
        while let Some(f) = fetches.next().await {
            let f = f.unwrap();
            count += 1;
            bytes += f.body().map_or(0, <[u8]>::len);
        }
    }
    let _ = session.logout().await;
    (count, bytes)
}

/// The exactly-once floor: imaplib, UID SEARCH once, then per batch of 256 a UID FETCH of the
/// whole messages and a UID MOVE of the same set. Returns (messages, seconds).
fn python_floor(port: u16, folder: &str) -> (usize, f64) {
    let script = "import imaplib,sys,time\n\
                  port,user,pw,folder=int(sys.argv[1]),sys.argv[2],sys.argv[3],sys.argv[4]\n\
                  m=imaplib.IMAP4('127.0.0.1',port)\n\
                  m.login(user,pw)\n\
                  m.create(folder)\n\
                  m.select('INBOX')\n\
                  t=time.perf_counter()\n\
                  typ,d=m.uid('SEARCH',None,'ALL')\n\
                  uids=d[0].split()\n\
                  n=0\n\
                  for i in range(0,len(uids),256):\n\
                  \x20s=b','.join(uids[i:i+256]).decode()\n\
                  \x20typ,d=m.uid('FETCH',s,'(UID INTERNALDATE RFC822.SIZE BODY.PEEK[])')\n\
                  \x20assert typ=='OK'\n\
                  \x20n+=sum(1 for x in d if isinstance(x,tuple))\n\
                  \x20typ,_=m.uid('MOVE',s,folder)\n\
                  \x20assert typ=='OK'\n\
                  print(n,time.perf_counter()-t)\n\
                  m.logout()\n";
    let out = std::process::Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(script)
        .arg(port.to_string())
        .arg(USER)
        .arg(PASSWORD)
        .arg(folder)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut fields = text.split_whitespace();
    let n = fields.next().and_then(|f| f.parse().ok()).unwrap();
    let secs = fields.next().and_then(|f| f.parse().ok()).unwrap();
    (n, secs)
}

fn main() {
    let n: usize = std::env::var("MADOGUCHI_BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let dovecot = Dovecot::start();
    let started = Instant::now();
    dovecot.append_many("INBOX", (0..n).map(support::customer_mail));
    println!(
        "appended {n} messages in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
    let (fetched, bytes) = runtime.block_on(plain_uid_fetch(dovecot.port()));
    let baseline = started.elapsed().as_secs_f64();
    assert_eq!(fetched, n);

    // The exactly-once floor consumes the backlog (into its own folder); a new one of the same
    // size is appended for the desk.
    let (floored, floor) = python_floor(dovecot.port(), "Floor");
    assert_eq!(floored, n);
    assert_eq!(dovecot.count("INBOX"), 0);
    dovecot.append_many("INBOX", (0..n).map(support::customer_mail));
    let profile = std::env::var_os("MADOGUCHI_BENCH_PROFILE").is_some();

    // MADOGUCHI_BENCH_BIN: another build of the daemon (a baseline) measured by this bench.
    let bin_path = std::env::var("MADOGUCHI_BENCH_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_madoguchi").to_string());
    let bin = bin_path.as_str();
    let drain_with = |outbound: &str, profiled: bool| {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("madoguchi.toml");
        std::fs::write(
            &config,
            format!(
                "[desk]\naddress = \"support@example.co.jp\"\n\n{}\n[outbound]\n{outbound}\n",
                dovecot.config_toml("batch_size = 200")
            ),
        )
        .unwrap();
        let env = if profiled {
            "MADOGUCHI_PROFILE=1"
        } else {
            "MADOGUCHI_PROFILE=0"
        };
        let (rss_kib, secs, log) = support::run_measured(&[
            "/usr/bin/env",
            env,
            bin,
            "--config",
            config.to_str().unwrap(),
            "run",
            "--once",
        ]);
        if let Some(at) = log.find("stage profile") {
            print!("{}", &log[at..]);
        }
        let outbox = std::fs::read_dir(dir.path().join("var/outbox")).map_or(0, |d| d.count());
        (rss_kib, secs, outbox)
    };

    // 1. The whole job: ticketed, answered into the file outbox (written and made durable),
    //    moved to Processed.
    let (rss_kib, drain, outbox) = drain_with("kind = \"file\"\ndir = \"var/outbox\"", profile);
    let left = dovecot.count("INBOX");
    let processed = dovecot.count("Processed");

    // 2. Intake alone, on a second backlog of the same size: replies queued in the database
    //    outbox but not delivered (the relay refuses connections, so sends are deferred at once).
    dovecot.append_many("INBOX", (n..2 * n).map(support::customer_mail));
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (_, intake_only, _) = drain_with(
        &format!(
            "kind = \"smtp\"\nhost = \"127.0.0.1\"\nport = {closed_port}\ntls = \"none\"\nallow_plaintext = true"
        ),
        false,
    );

    println!(
        "plain UID FETCH of {fetched} messages ({:.1} MiB): {baseline:.2} s, {:.0} msg/s",
        bytes as f64 / 1048576.0,
        n as f64 / baseline
    );
    println!(
        "exactly-once floor (imaplib UID FETCH + UID MOVE per 256, no desk work): {floor:.2} s, {:.0} msg/s",
        n as f64 / floor
    );
    println!(
        "madoguchi run --once: {drain:.2} s, {:.0} msg/s (ticketed, answered into the outbox, moved)",
        n as f64 / drain
    );
    println!(
        "ratio drain/floor: {:.3} (aim >= 0.5); drain/UID FETCH: {:.3}; floor/UID FETCH: {:.3}",
        floor / drain,
        baseline / drain,
        baseline / floor
    );
    println!(
        "intake alone (replies queued, not delivered): {intake_only:.2} s, {:.0} msg/s, ratio to floor {:.3}, to UID FETCH {:.3}",
        n as f64 / intake_only,
        floor / intake_only,
        baseline / intake_only
    );
    println!(
        "peak resident memory of the daemon: {:.1} MiB (aim < 64 MiB)",
        rss_kib as f64 / 1024.0
    );
    println!("left in INBOX: {left}; in Processed: {processed}; replies in the outbox: {outbox}");
}
