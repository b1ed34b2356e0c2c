//! Backlog drain (issue 4): N messages waiting in a real Dovecot → all ticketed, answered into
//! the outbox and moved to Processed by `madoguchi run --once`, against the baseline of a plain
//! UID FETCH of the same mailbox in the same run; and the daemon's peak resident memory.
//!
//! `cargo bench --bench imap_drain` (MADOGUCHI_BENCH_MESSAGES, default 10,000).

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

    let bin = env!("CARGO_BIN_EXE_madoguchi");
    let drain_with = |outbound: &str| {
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
        let (rss_kib, secs, _log) =
            support::run_measured(&[bin, "--config", config.to_str().unwrap(), "run", "--once"]);
        let outbox = std::fs::read_dir(dir.path().join("var/outbox")).map_or(0, |d| d.count());
        (rss_kib, secs, outbox)
    };

    // 1. The whole job: ticketed, answered into the file outbox (written and made durable),
    //    moved to Processed.
    let (rss_kib, drain, outbox) = drain_with("kind = \"file\"\ndir = \"var/outbox\"");
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
    let (_, intake_only, _) = drain_with(&format!(
        "kind = \"smtp\"\nhost = \"127.0.0.1\"\nport = {closed_port}\ntls = \"none\"\nallow_plaintext = true"
    ));

    println!(
        "plain UID FETCH of {fetched} messages ({:.1} MiB): {baseline:.2} s, {:.0} msg/s",
        bytes as f64 / 1048576.0,
        n as f64 / baseline
    );
    println!(
        "madoguchi run --once: {drain:.2} s, {:.0} msg/s (ticketed, answered into the outbox, moved)",
        n as f64 / drain
    );
    println!(
        "ratio drain/UID FETCH: {:.3} (aim >= 0.3)",
        baseline / drain
    );
    println!(
        "intake alone (replies queued, not delivered): {intake_only:.2} s, {:.0} msg/s, ratio {:.3}",
        n as f64 / intake_only,
        baseline / intake_only
    );
    println!(
        "peak resident memory of the daemon: {:.1} MiB (aim < 64 MiB)",
        rss_kib as f64 / 1024.0
    );
    println!("left in INBOX: {left}; in Processed: {processed}; replies in the outbox: {outbox}");
}
