//! Arrival to acknowledgement with IMAP IDLE (issue 4): the daemon runs against a real Dovecot
//! and a real SMTP server; messages are appended one at a time and the time until the
//! acknowledgement reaches the SMTP server is measured. The peers poll every 30–60 s, which
//! makes their expected latency at least 15 s; that is the baseline printed beside ours.
//!
//! `cargo bench --bench idle_latency` (MADOGUCHI_BENCH_MESSAGES, default 200).

mod support;

// The harnesses find `crate::util`, as in the test binary.
#[allow(unused_imports)]
use support::util;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::dovecot::Dovecot;
use support::smtp_sink::SmtpSink;

fn main() {
    let n: usize = std::env::var("MADOGUCHI_BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let dovecot = Dovecot::start();
    let sink = SmtpSink::start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("madoguchi.toml");
    std::fs::write(
        &config,
        format!(
            "[desk]\naddress = \"support@example.co.jp\"\n\n{}\n[outbound]\nkind = \"smtp\"\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nallow_plaintext = true\n",
            dovecot.config_toml(""),
            sink.port()
        ),
    )
    .unwrap();
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_madoguchi"))
        .args(["--config", config.to_str().unwrap(), "run"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let mut client = dovecot.client();
    let mut latencies = Vec::with_capacity(n);
    for i in 0..n {
        let started = Instant::now();
        client.append("INBOX", &support::customer_mail(i), None);
        while sink.received().len() <= i {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "no acknowledgement for message {i}"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        latencies.push(started.elapsed().as_secs_f64());
    }
    let _ = daemon.kill();
    let _ = daemon.wait();
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        latencies[((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1]
    };
    println!("arrival → acknowledgement at the SMTP server, {n} messages one by one (IDLE):");
    println!(
        "  p50 {:.3} s, p99 {:.3} s, max {:.3} s (aim: p99 < 2 s)",
        pct(0.50),
        pct(0.99),
        pct(1.0)
    );
    println!(
        "  baseline, a peer polling every 30 s: mean wait 15 s; p50 ratio 15 s / ours = {:.0}x",
        15.0 / pct(0.50)
    );
}
