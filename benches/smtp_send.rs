//! Sending 1,000 replies over SMTP (issue 4, item 7): `SmtpSender` at parallel 1 and 4 against
//! the baseline of one Python `smtplib` connection sending the same messages to the same
//! server, in the same run. The server is the aiosmtpd sink of the integration tests
//! (`tests/support/smtp_sink.py`); its disk writes bound both sides alike.
//!
//! `cargo bench --bench smtp_send` (MADOGUCHI_BENCH_MESSAGES overrides the default 1,000;
//! MADOGUCHI_BENCH_ROUNDS the default 3 rounds, of which the median is reported).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use madoguchi::config::{SmtpConfig, Tls};
use madoguchi::core::reply::{OutgoingKind, OutgoingMail};
use madoguchi::desk::BATCH;
use madoguchi::outbound::smtp::SmtpSender;
use madoguchi::outbound::{Queued, ReplyCharset, Sender, compose};

const PYTHON: &str = "/usr/bin/python3";

/// The baseline: the same messages (read into memory before the clock starts) over one
/// smtplib connection, timed inside Python; prints messages per second.
const SMTPLIB: &str = r#"
import os, smtplib, sys, time
directory, port = sys.argv[1], int(sys.argv[2])
names = sorted(n[:-4] for n in os.listdir(directory) if n.endswith(".eml"))
messages = []
for n in names:
    with open(os.path.join(directory, n + ".eml"), "rb") as f:
        raw = f.read()
    with open(os.path.join(directory, n + ".env")) as f:
        sender, *recipients = f.read().split("\n")
    messages.append((sender, [r for r in recipients if r], raw))
start = time.perf_counter()
s = smtplib.SMTP("127.0.0.1", port)
s.ehlo()
for sender, recipients, raw in messages:
    s.sendmail(sender, recipients, raw)
s.quit()
elapsed = time.perf_counter() - start
print(len(messages) / elapsed)
"#;

struct Sink {
    child: Child,
    _stdin: ChildStdin,
    port: u16,
    dir: PathBuf,
}

impl Sink {
    fn start(dir: &Path) -> Sink {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtp_sink.py");
        let mut child = Command::new("setsid")
            .arg(PYTHON)
            .arg(&script)
            .args(["--port", "0", "--dir"])
            .arg(dir)
            .arg("--exit-on-stdin-eof")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the SMTP sink");
        let stdin = child.stdin.take().expect("stdin");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("sink output");
        let port = line
            .strip_prefix("READY ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("the sink did not start: {line:?}"));
        Sink {
            child,
            _stdin: stdin,
            port,
            dir: dir.to_path_buf(),
        }
    }

    fn received(&self) -> usize {
        std::fs::read_dir(&self.dir)
            .expect("sink dir")
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".eml"))
            })
            .count()
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Realistic replies: the desk's composer, Japanese text, threading headers.
fn replies(count: usize) -> Vec<Queued> {
    let date = Utc
        .with_ymd_and_hms(2026, 11, 25, 1, 0, 0)
        .single()
        .expect("time");
    (0..count)
        .map(|i| {
            let mail = OutgoingMail {
                kind: OutgoingKind::StaffNotification,
                ticket: i as u64 + 1,
                to: vec![format!("customer{}@alpha.example.co.jp", i % 50)],
                reply_to: None,
                attachments: Vec::new(),
                files: Vec::new(),
                subject: format!("[NEO-DS#{:06}] お問い合わせを受け付けました", i + 1),
                body: "お問い合わせありがとうございます。\n\
                       受付番号：NEO-DS#000001\n\
                       受付日時：2026年11月25日(水) 10:00\n\n\
                       担当者より順次ご連絡いたします。\n"
                    .repeat(4),
                in_reply_to: Some(format!("q{i}@alpha.example.co.jp")),
                references: vec![format!("q{i}@alpha.example.co.jp")],
            };
            let id = format!("bench-{i}@desk.example.co.jp");
            let c = compose(
                ReplyCharset::Utf8,
                &mail,
                "support@example.co.jp",
                "サポート窓口",
                &id,
                date,
                &[],
            )
            .expect("compose");
            Queued {
                outbox_id: i as i64 + 1,
                message_id: c.message_id,
                sender: c.sender,
                recipients: c.recipients,
                raw: c.raw,
            }
        })
        .collect()
}

/// Ours: a fresh sender (connections included in the time), the batch in the desk's chunks.
fn ours(port: u16, parallel: u32, messages: &[Queued]) -> f64 {
    let config = SmtpConfig {
        host: "127.0.0.1".to_string(),
        port,
        tls: Tls::None,
        auth: None,
        parallel,
        timeout: Duration::from_secs(30),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut sender = SmtpSender::new(&config);
        let start = Instant::now();
        for chunk in messages.chunks(BATCH) {
            let results = sender.send_all(chunk).await;
            assert!(results.iter().all(Result::is_ok), "a send failed");
        }
        let rate = messages.len() as f64 / start.elapsed().as_secs_f64();
        sender.close().await;
        rate
    })
}

fn smtplib(port: u16, dir: &Path) -> f64 {
    let out = Command::new(PYTHON)
        .args(["-c", SMTPLIB])
        .arg(dir)
        .arg(port.to_string())
        .output()
        .expect("run smtplib");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("smtplib rate")
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let count = env_number("MADOGUCHI_BENCH_MESSAGES", 1000);
    let rounds = env_number("MADOGUCHI_BENCH_ROUNDS", 3).max(1);
    let tmp = tempfile::tempdir().expect("temp dir");
    let messages = replies(count);
    // The same bytes and envelopes for the baseline.
    let corpus = tmp.path().join("messages");
    std::fs::create_dir_all(&corpus).expect("dir");
    for (i, m) in messages.iter().enumerate() {
        std::fs::write(corpus.join(format!("{i:06}.eml")), &m.raw).expect("write");
        let env = std::iter::once(m.sender.as_str())
            .chain(m.recipients.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(corpus.join(format!("{i:06}.env")), env).expect("write");
    }
    let sink = Sink::start(&tmp.path().join("sink"));
    let size = messages.iter().map(|m| m.raw.len()).sum::<usize>() / count.max(1);
    println!(
        "smtp_send: {count} replies (~{size} bytes each) to aiosmtpd on 127.0.0.1:{}, median of {rounds} rounds",
        sink.port
    );

    // Warm-up: page cache, the sink's code paths, our first connections.
    ours(sink.port, 1, &messages[..count.min(50)]);

    let (mut base, mut p1, mut p4) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let before = sink.received();
        base.push(smtplib(sink.port, &corpus));
        p1.push(ours(sink.port, 1, &messages));
        p4.push(ours(sink.port, 4, &messages));
        assert_eq!(sink.received() - before, 3 * count, "every message arrived");
    }
    let (base, p1, p4) = (median(base), median(p1), median(p4));
    println!("  smtplib, one connection (baseline)  {base:8.0} msg/s");
    println!(
        "  SmtpSender parallel = 1              {p1:8.0} msg/s   ratio {:.2}",
        p1 / base
    );
    println!(
        "  SmtpSender parallel = 4              {p4:8.0} msg/s   ratio {:.2}",
        p4 / base
    );
    println!("  aim: ratio >= 0.5");
}
