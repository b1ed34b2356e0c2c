//! Intake pipeline throughput (issue 3): the ham corpus replicated to N messages in a Maildir,
//! run through the whole desk (parse, decide, commit, outbox written to files), against the
//! baseline of reading and parsing the same files alone, in the same run.
//!
//! `cargo bench --bench pipeline` (MADOGUCHI_CORPUS points at ../shared/corpus;
//! MADOGUCHI_BENCH_MESSAGES overrides the default 10,000).

use std::path::{Path, PathBuf};
use std::time::Instant;

use madoguchi::config::Config;
use madoguchi::desk::Desk;
use madoguchi::intake::Source;
use madoguchi::intake::maildir::Maildir;
use madoguchi::mail::read_message;
use madoguchi::outbound::file::FileSender;

fn corpus() -> Option<PathBuf> {
    let dir = std::env::var_os("MADOGUCHI_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("../shared/corpus"));
    let ham = dir.join("ham-ksummit-discuss/messages");
    ham.is_dir().then_some(ham)
}

fn fill_maildir(root: &Path, ham: &[Vec<u8>], count: usize) {
    for sub in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(root.join(sub)).unwrap();
    }
    for i in 0..count {
        let original = &ham[i % ham.len()];
        // Each copy gets its own Message-ID, so none is a duplicate of another.
        let mut raw = format!("Message-ID: <bench-{i}@madoguchi.bench>\r\n").into_bytes();
        raw.extend(strip_message_id(original));
        std::fs::write(root.join("new").join(format!("{i:06}.bench")), raw).unwrap();
    }
}

fn strip_message_id(raw: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(raw);
    let mut out = String::with_capacity(text.len());
    let mut skipping = false;
    let mut in_headers = true;
    for line in text.split_inclusive('\n') {
        if in_headers && (line == "\n" || line == "\r\n") {
            in_headers = false;
        }
        if in_headers {
            if line.to_ascii_lowercase().starts_with("message-id:") {
                skipping = true;
                continue;
            }
            if skipping && (line.starts_with(' ') || line.starts_with('\t')) {
                continue;
            }
            skipping = false;
        }
        out.push_str(line);
    }
    out.into_bytes()
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn main() {
    let Some(ham_dir) = corpus() else {
        println!("pipeline bench: no ham corpus (set MADOGUCHI_CORPUS); skipped");
        return;
    };
    let count: usize = std::env::var("MADOGUCHI_BENCH_MESSAGES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    let mut ham: Vec<Vec<u8>> = std::fs::read_dir(&ham_dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| std::fs::read(e.path()).unwrap())
        .collect();
    ham.sort();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    std::fs::write(
        root.join("madoguchi.toml"),
        "[desk]\naddress = \"support@example.co.jp\"\nnotify = [\"team@example.co.jp\"]\n",
    )
    .unwrap();

    // Baseline: read + parse the same files.
    fill_maildir(&root.join("baseline"), &ham, count);
    let started = Instant::now();
    let mut parsed = 0usize;
    let mut source = Maildir::open(&root.join("baseline")).unwrap();
    for m in block_on(source.fetch(usize::MAX)).unwrap() {
        let read = read_message(&m.raw, &[]);
        parsed += usize::from(!read.mail.subject.is_empty());
    }
    let baseline = started.elapsed().as_secs_f64();

    // MADOGUCHI_BENCH_PROFILE=1: the desk's stage spans are added up and printed.
    let stages = std::env::var_os("MADOGUCHI_BENCH_PROFILE").map(|_| {
        use tracing_subscriber::Layer;
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::util::SubscriberInitExt;
        let stages = madoguchi::profile::StageTimes::default();
        tracing_subscriber::registry()
            .with(
                stages
                    .clone()
                    .with_filter(tracing_subscriber::filter::filter_fn(
                        madoguchi::profile::StageTimes::wants,
                    )),
            )
            .init();
        stages
    });

    // The desk: parse, decide, commit, outbox.
    let config = Config::load(root.join("madoguchi.toml")).unwrap();
    let inbox = root.join("var/inbox");
    fill_maildir(&inbox, &ham, count);
    let mut desk = Desk::open(config.clone()).unwrap();
    let mut source = Maildir::open(&inbox).unwrap();
    let mut sender = FileSender::new(root.join("var/outbox"));
    let started = Instant::now();
    let summary =
        block_on(desk.pass(&mut source, &mut sender, madoguchi::clock::system_now())).unwrap();
    let pipeline = started.elapsed().as_secs_f64();

    let base_rate = count as f64 / baseline;
    let rate = count as f64 / pipeline;
    println!(
        "messages: {count} (ham corpus of {} replicated); parsed with a subject: {parsed}",
        ham.len()
    );
    println!("read + parse alone:   {baseline:.2} s, {base_rate:.0} msg/s");
    println!("whole pipeline:       {pipeline:.2} s, {rate:.0} msg/s");
    println!("ratio pipeline/baseline: {:.3}", rate / base_rate);
    println!("verdicts: {:?}", desk.store().verdict_counts().unwrap());
    println!("summary: {summary:?}");
    if let Some(stages) = stages {
        print!("{}", stages.table(count));
    }
}
