//! `[metrics]` with the real binary: after a pass, `/metrics` (read with a plain HTTP/1.1 GET)
//! has the desk's counters and gauges with the right values, `/healthz` answers 200, other
//! paths 404; a second daemon that cannot listen on the port refuses to start.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::daemon::Daemon;
use crate::status::{deliver_now, fault_report, run_ending, status};
use crate::util::Desk;
use crate::wait;

/// `GET path` on 127.0.0.1:`port`: the status code and the body.
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    let code = head.split(' ').nth(1)?.parse().ok()?;
    Some((code, body.to_string()))
}

/// The value of the sample `series` (name and labels exactly as exposed) in `text`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

fn config(port: u16, database: &str) -> String {
    format!(
        "[desk]\naddress = \"support@example.co.jp\"\nnotify = [\"support-team@example.co.jp\"]\n\n\
         [storage]\ndatabase = \"{database}\"\n\n[metrics]\nlisten = \"127.0.0.1:{port}\"\n"
    )
}

#[test]
fn metrics_and_healthz_are_served_with_the_passes_counts() {
    let port = crate::dns::free_port();
    let desk = Desk::with_config(&config(port, "var/db.sqlite3"));
    desk.import_demo();
    deliver_now(&desk, "fault.eml", &fault_report());
    let daemon = Daemon::start(desk.config(), desk.dir().join("daemon.log"));
    let mut text = String::new();
    wait::until(
        Duration::from_secs(30),
        "the pass in /metrics",
        || match get(port, "/metrics") {
            Some((200, body)) => {
                text = body;
                sample(&text, "madoguchi_messages_total{verdict=\"article\"}") == Some(1.0)
            }
            _ => false,
        },
    );
    let (_, doc) = status(&desk, &[]);
    let sent = doc["outbox"]["sent"].as_f64().expect("sent");
    assert!(sent >= 1.0, "{doc:#}");
    for (series, want) in [
        ("madoguchi_messages_total{verdict=\"article\"}", 1.0),
        ("madoguchi_messages_total{verdict=\"quarantined\"}", 0.0),
        ("madoguchi_messages_total{verdict=\"recorded\"}", 0.0),
        ("madoguchi_tickets_opened_total", 1.0),
        ("madoguchi_mails_total{result=\"sent\"}", sent),
        ("madoguchi_mails_total{result=\"retried\"}", 0.0),
        ("madoguchi_mails_total{result=\"failed\"}", 0.0),
        ("madoguchi_license_keys_issued_total", 0.0),
        ("madoguchi_outbox_backlog", 0.0),
        ("madoguchi_outbox_oldest_unsent_age_seconds", 0.0),
        ("madoguchi_queue_size", 1.0),
        ("madoguchi_mailbox_up", 1.0),
        ("madoguchi_passes_total{result=\"failed\"}", 0.0),
    ] {
        assert_eq!(sample(&text, series), Some(want), "{series} in\n{text}");
    }
    assert!(sample(&text, "madoguchi_passes_total{result=\"ok\"}") >= Some(1.0));
    let last = sample(&text, "madoguchi_last_pass_timestamp_seconds").expect("last pass");
    let recorded = chrono::DateTime::parse_from_rfc3339(
        doc["last_pass"]["at"]
            .as_str()
            .expect("last pass in status"),
    )
    .expect("RFC 3339");
    assert!(
        (last - recorded.timestamp() as f64).abs() < 600.0,
        "{last} vs {recorded}"
    );
    // A histogram with buckets, not a summary.
    assert!(
        text.contains("# TYPE madoguchi_pass_duration_seconds histogram"),
        "{text}"
    );
    assert!(sample(&text, "madoguchi_pass_duration_seconds_count") >= Some(1.0));
    assert!(text.contains("madoguchi_pass_duration_seconds_bucket{le=\"+Inf\"}"));
    assert!(text.contains("# HELP madoguchi_messages_total"), "{text}");

    assert_eq!(get(port, "/healthz"), Some((200, "ok\n".into())));
    assert_eq!(get(port, "/nothing").map(|(code, _)| code), Some(404));

    // Another desk configured for the same port cannot serve it: it refuses to start.
    let other = Desk::with_config(&config(port, "var/other.sqlite3"));
    run_ending(&other, &["run"], Duration::from_secs(20))
        .assert_failure()
        .assert_stderr_has(&[&format!("cannot listen on 127.0.0.1:{port} for [metrics]")]);
    // The first is still serving.
    assert_eq!(get(port, "/healthz").map(|(code, _)| code), Some(200));
    drop(daemon);
}
