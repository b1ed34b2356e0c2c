//! Arrival to acknowledgement with IMAP IDLE (issue 4): the daemon runs against a real Dovecot
//! and a real SMTP server; messages are appended one at a time and the time until the
//! acknowledgement reaches the SMTP server is measured. The peers poll every 30–60 s, which
//! makes their expected latency at least 15 s; that is the baseline printed beside ours.
//!
//! Issue 14 adds a burst: a backlog of MADOGUCHI_BENCH_BURST messages (default 3,000) delivered
//! into the mailbox's Maildir at once while the daemon idles, and the arrival (file in new/)
//! → acknowledgement (the reply's file written by the SMTP sink) of each: the first reply of
//! a burst must not wait for the whole burst. Replies are paired with arrivals in order (the
//! desk takes mail oldest first; within a send slice the order may differ slightly).
//!
//! `cargo bench --bench idle_latency` (MADOGUCHI_BENCH_MESSAGES, default 200).

mod support;

// The harnesses find `crate::util`, as in the test binary.
#[allow(unused_imports)]
use support::util;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use support::dovecot::Dovecot;
use support::smtp_sink::SmtpSink;

fn mtime(path: &Path) -> SystemTime {
    std::fs::metadata(path).unwrap().modified().unwrap()
}

fn eml_count(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().ends_with(".eml"))
                .count()
        })
        .unwrap_or(0)
}

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
    // MADOGUCHI_BENCH_BIN: another build of the daemon (a baseline) measured by this bench.
    let bin = std::env::var("MADOGUCHI_BENCH_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_madoguchi").to_string());
    let mut daemon = Command::new(bin)
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

    // The burst: arrivals timed on the sink's clock (file times) through a marker file.
    let burst: usize = std::env::var("MADOGUCHI_BENCH_BURST")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3_000);
    let marker = sink.mail_dir().join("t0.mark");
    std::fs::write(&marker, b"").unwrap();
    let t0 = (Instant::now(), mtime(&marker));
    // Delivered straight into the mailbox's Maildir as an MDA does (tmp/, then new/): the
    // whole burst arrives within a fraction of a second; Dovecot's IDLE sees it (inotify).
    let maildir = dovecot.maildir("INBOX");
    let mut arrivals = Vec::with_capacity(burst);
    let appending = Instant::now();
    for i in n..n + burst {
        let name = format!("{}.M{i}P1.bench", 1_800_000_000 + i);
        let tmp = maildir.join("tmp").join(&name);
        std::fs::write(&tmp, support::customer_mail(i)).unwrap();
        std::fs::rename(&tmp, maildir.join("new").join(&name)).unwrap();
        arrivals.push(appending.elapsed());
    }
    let appended = appending.elapsed().as_secs_f64();
    let started = Instant::now();
    while eml_count(&sink.mail_dir()) < n + burst {
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "the burst was not acknowledged"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = daemon.kill();
    let _ = daemon.wait();
    // Reply times after `appending` began, in the order written.
    let offset = appending.duration_since(t0.0);
    let mut replies: Vec<Duration> = std::fs::read_dir(sink.mail_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".eml"))
        .map(|e| mtime(&e.path()))
        .filter_map(|at| at.duration_since(t0.1).ok())
        .map(|d| d.saturating_sub(offset))
        .collect();
    replies.sort();
    let replies = &replies[replies.len() - burst..];
    let mut burst_latencies: Vec<f64> = replies
        .iter()
        .zip(&arrivals)
        .map(|(reply, arrival)| reply.saturating_sub(*arrival).as_secs_f64())
        .collect();

    latencies.sort_by(f64::total_cmp);
    burst_latencies.sort_by(f64::total_cmp);
    let pct = |l: &[f64], p: f64| l[((l.len() as f64 * p).ceil() as usize).clamp(1, l.len()) - 1];
    println!("arrival → acknowledgement at the SMTP server, {n} messages one by one (IDLE):");
    println!(
        "  p50 {:.3} s, p99 {:.3} s, max {:.3} s (aim: p99 < 1 s)",
        pct(&latencies, 0.50),
        pct(&latencies, 0.99),
        pct(&latencies, 1.0)
    );
    println!(
        "burst of {burst} delivered in {appended:.2} s ({:.0} msg/s) while idle (IDLE):",
        burst as f64 / appended
    );
    println!(
        "  first reply {:.3} s after the burst began; last {:.3} s; drain {:.0} msg/s",
        replies[0].as_secs_f64(),
        replies[burst - 1].as_secs_f64(),
        burst as f64 / replies[burst - 1].as_secs_f64()
    );
    println!(
        "  arrival → acknowledgement p50 {:.3} s, p99 {:.3} s, max {:.3} s",
        pct(&burst_latencies, 0.50),
        pct(&burst_latencies, 0.99),
        pct(&burst_latencies, 1.0)
    );
    let pct = |p: f64| pct(&latencies, p);
    println!(
        "  baseline, a peer polling every 30 s: mean wait 15 s; p50 ratio 15 s / ours = {:.0}x",
        15.0 / pct(0.50)
    );
}
