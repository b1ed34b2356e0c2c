//! The soak of issue 12, item 2: mail streams into a real Dovecot while the daemon is killed
//! with SIGKILL at random moments, Dovecot is restarted and the SMTP sink stopped for a while.
//! Afterwards nothing is lost, nothing is ticketed twice, every acknowledgement arrived, at most
//! one duplicate per fault, and the daemon's memory did not grow.
//!
//! CI runs 2,000 messages with 3 kills, 1 Dovecot restart and 1 sink stop of up to 5 s.
//! `scripts/soak` runs the figures (20,000 messages, 10 kills, 3 restarts, 3 stops of up
//! to a minute) through the same test via `MADOGUCHI_SOAK_*` variables, and prints them.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::daemon::Daemon;
use crate::dovecot::Dovecot;
use crate::smtp_sink::SmtpSink;
use crate::util::Desk;
use crate::wait;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A small deterministic generator (xorshift64*), seeded and printed so a run can be repeated.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[derive(Debug, Clone, Copy)]
enum Fault {
    KillDaemon,
    RestartDovecot,
    StopSink(Duration),
}

fn customer_mail(i: u64) -> Vec<u8> {
    format!(
        "From: Customer {i} <soak{i}@example.jp>\r\nTo: support@example.co.jp\r\n\
         Subject: soak {i}\r\nMessage-ID: <soak{i}@example.jp>\r\nDate: Wed, 25 Nov 2026 10:00:00 +0900\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n同期の設定について質問です。{i}\r\n"
    )
    .into_bytes()
}

/// Delivers into the server's Maildir as an MDA does: it goes on while Dovecot restarts.
fn deliver(maildir: &Path, i: u64) {
    let name = format!("soak{i}.{}.madoguchi-soak", std::process::id());
    crate::dovecot::deliver_file(maildir, &name, &customer_mail(i));
}

/// Messages the sink took so far (without reading them).
fn sink_count(sink: &SmtpSink) -> usize {
    std::fs::read_dir(sink.mail_dir())
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().ends_with(".eml"))
                .count()
        })
        .unwrap_or(0)
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn count(db: &Path, sql: &str) -> u64 {
    let store = madoguchi::store::Store::open(db).expect("db");
    u64::try_from(store.count(sql).expect("count")).unwrap_or(0)
}

#[test]
fn soak_with_kills_restarts_and_relay_outages() {
    let n = env_or("MADOGUCHI_SOAK_MESSAGES", 2_000);
    let kills = env_or("MADOGUCHI_SOAK_KILLS", 3);
    let restarts = env_or("MADOGUCHI_SOAK_DOVECOT_RESTARTS", 1);
    let stops = env_or("MADOGUCHI_SOAK_SINK_STOPS", 1);
    let max_down = env_or("MADOGUCHI_SOAK_MAX_DOWN_SECS", 5);
    let rate = env_or("MADOGUCHI_SOAK_RATE", 50).max(1);
    let seed = env_or(
        "MADOGUCHI_SOAK_SEED",
        madoguchi::clock::system_now()
            .timestamp_nanos_opt()
            .map_or(1, |n| n as u64)
            | 1,
    );
    eprintln!(
        "soak: {n} messages at {rate}/s, {kills} kills, {restarts} Dovecot restarts, \
         {stops} sink stops up to {max_down} s, seed {seed}"
    );
    let mut rng = Rng(seed);
    let mut dovecot = Dovecot::start();
    let mut sink = SmtpSink::start();
    let desk = Desk::with_config(&format!(
        "[desk]\naddress = \"support@example.co.jp\"\nauto_reply_limit_per_hour = 5\n\n\
         [storage]\ndatabase = \"var/db.sqlite3\"\nfiles = \"var/files\"\n\n{}\n\
         [outbound]\nkind = \"smtp\"\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n\
         allow_plaintext = true\nparallel = 4\n",
        dovecot.config_toml(""),
        sink.port()
    ));
    let db = desk.dir().join("var/db.sqlite3");
    let log = desk.dir().join("daemon.log");
    let mut daemon = Daemon::start(desk.config(), log.clone());

    // The faults, at random moments of the feeding time.
    let feeding = Duration::from_millis(n * 1000 / rate);
    let mut faults: Vec<(Duration, Fault)> = Vec::new();
    let at = |rng: &mut Rng| Duration::from_millis(rng.below(feeding.as_millis() as u64));
    for _ in 0..kills {
        faults.push((at(&mut rng), Fault::KillDaemon));
    }
    for _ in 0..restarts {
        faults.push((at(&mut rng), Fault::RestartDovecot));
    }
    for _ in 0..stops {
        let down = Duration::from_millis(1000 + rng.below(max_down.max(1) * 1000));
        faults.push((at(&mut rng), Fault::StopSink(down)));
    }
    faults.sort_by_key(|(t, _)| *t);

    let inbox: PathBuf = dovecot.maildir("INBOX");
    let started = Instant::now();
    let feeder = std::thread::spawn(move || {
        for i in 0..n {
            let due = Duration::from_millis(i * 1000 / rate);
            if let Some(left) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(left);
            }
            deliver(&inbox, i);
        }
    });
    let (mut early_rss, mut peak_rss) = (None, 0u64);
    let mut sink_down_until: Option<Instant> = None;
    let mut next_fault = 0;
    loop {
        if let Some(until) = sink_down_until
            && Instant::now() >= until
        {
            sink.start_again();
            sink_down_until = None;
        }
        if let Some(&(t, fault)) = faults.get(next_fault)
            && started.elapsed() >= t
        {
            next_fault += 1;
            eprintln!(
                "soak: {:?} at {:.1}s",
                fault,
                started.elapsed().as_secs_f64()
            );
            match fault {
                Fault::KillDaemon => {
                    daemon.signal("-KILL");
                    daemon.wait(Duration::from_secs(10));
                    daemon = Daemon::start(desk.config(), log.clone());
                }
                Fault::RestartDovecot => dovecot.restart(),
                Fault::StopSink(down) => {
                    sink.stop();
                    sink_down_until = Some(Instant::now() + down);
                }
            }
        }
        if let Some(kib) = rss_kib(daemon.pid()) {
            peak_rss = peak_rss.max(kib);
            if early_rss.is_none() && sink_count(&sink) as u64 >= n / 10 {
                early_rss = Some(kib);
            }
        }
        let done_feeding = feeder.is_finished() && next_fault >= faults.len();
        if done_feeding && sink_down_until.is_none() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    feeder.join().expect("feeder");
    let drained = wait::within(Duration::from_secs(300), || {
        count(&db, "SELECT COUNT(DISTINCT message_id) FROM messages") >= n
            && dovecot.count("INBOX") == 0
            && sink_count(&sink) as u64 >= n
    });
    let end_rss = rss_kib(daemon.pid()).unwrap_or(0);
    daemon.signal("-TERM");
    let stopped = daemon.wait(Duration::from_secs(30)).success();
    let took = started.elapsed();

    let distinct = count(&db, "SELECT COUNT(DISTINCT message_id) FROM messages");
    let tickets = count(&db, "SELECT COUNT(*) FROM tickets");
    let received = sink.received();
    let mut recipients: Vec<String> = received.iter().flat_map(|m| m.rcpt_to.clone()).collect();
    let acks = recipients.len() as u64;
    recipients.sort();
    recipients.dedup();
    let answered = recipients.len() as u64;
    let duplicates = acks - answered;
    eprintln!(
        "soak: {took:.1?}; {distinct} of {n} messages recorded, {tickets} tickets, \
         {answered} customers answered with {acks} acknowledgements ({duplicates} duplicates \
         for {} faults); daemon RSS {} KiB after the first {} acknowledgements, {end_rss} KiB \
         at the end, peak {peak_rss} KiB",
        kills + stops,
        early_rss.unwrap_or(0),
        n / 10
    );
    assert!(
        drained,
        "not drained in time\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    assert!(stopped, "the daemon did not stop cleanly");
    assert_eq!(distinct, n, "messages lost");
    assert_eq!(tickets, n, "tickets lost or doubled");
    assert_eq!(answered, n, "customers without an acknowledgement");
    assert!(
        duplicates <= kills + stops,
        "{duplicates} duplicate acknowledgements"
    );
    assert_eq!(dovecot.count("Processed") as u64, n);
    if let Some(early) = early_rss {
        assert!(
            end_rss * 100 <= early * 120,
            "memory grew: {early} KiB → {end_rss} KiB"
        );
    }
}
