//! `assess`: which facts make the desk degraded or down.

use chrono::TimeZone;

use super::*;
use madoguchi::store::daemon_status::QueueCounts;

fn at(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, h, m, 0).unwrap()
}

fn args() -> StatusArgs {
    StatusArgs {
        outbox_age: Duration::from_secs(15 * 60),
        stale: Duration::from_secs(30 * 60),
    }
}

/// A daemon (pid 7) started at 01:00 whose last pass at 01:10 succeeded.
fn healthy() -> Facts {
    Facts {
        database_exists: true,
        holder: Some(Some(7)),
        record: Some(DaemonRecord {
            pid: Some(7),
            started_at: Some(at(1, 0)),
            last_pass_at: Some(at(1, 10)),
            mailbox_state: Some("reachable".into()),
            mailbox_checked_at: Some(at(1, 10)),
            ..DaemonRecord::default()
        }),
        ..Facts::default()
    }
}

fn checks(facts: &Facts, now: DateTime<Utc>) -> Vec<(&'static str, Level)> {
    assess(facts, &args(), now)
        .into_iter()
        .map(|r| (r.check, r.level))
        .collect()
}

#[test]
fn a_recent_successful_pass_is_healthy() {
    assert_eq!(checks(&healthy(), at(1, 12)), vec![]);
}

#[test]
fn no_lock_holder_is_down_and_so_is_a_missing_database() {
    let mut f = healthy();
    f.holder = None;
    assert_eq!(checks(&f, at(1, 12)), vec![("daemon", Level::Down)]);
    let f = Facts::default();
    assert_eq!(
        checks(&f, at(1, 12)),
        vec![("database", Level::Down), ("daemon", Level::Down)]
    );
}

#[test]
fn no_successful_pass_for_the_stale_limit_is_down() {
    let f = healthy();
    assert_eq!(checks(&f, at(1, 40)), vec![]);
    let reasons = assess(&f, &args(), at(1, 41));
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert_eq!((reasons[0].check, reasons[0].level), ("pass", Level::Down));
    assert_eq!(
        reasons[0].message,
        "no successful pass for 31 min (limit 30 min)"
    );
    // Started and never passed: counted from the start.
    let mut f = healthy();
    f.record.as_mut().unwrap().last_pass_at = Some(at(0, 50)); // the previous run's
    let reasons = assess(&f, &args(), at(1, 31));
    assert_eq!(
        reasons[0].message,
        "no successful pass since the start 31 min (limit 30 min)"
    );
}

#[test]
fn a_failed_last_pass_and_an_unreachable_mailbox_are_degraded() {
    let mut f = healthy();
    let r = f.record.as_mut().unwrap();
    r.last_error_at = Some(at(1, 11));
    r.last_error = Some("cannot connect to imap.example.co.jp:993".into());
    r.mailbox_state = Some("unreachable".into());
    let reasons = assess(&f, &args(), at(1, 12));
    assert_eq!(
        reasons
            .iter()
            .map(|r| (r.check, r.level))
            .collect::<Vec<_>>(),
        vec![("pass", Level::Degraded), ("mailbox", Level::Degraded)]
    );
    assert!(
        reasons[0].message.contains("imap.example.co.jp"),
        "{reasons:?}"
    );
    // An error before the last successful pass, or from before this start, is history.
    let r = f.record.as_mut().unwrap();
    r.last_error_at = Some(at(1, 5));
    r.mailbox_state = Some("reachable".into());
    assert_eq!(checks(&f, at(1, 12)), vec![]);
}

#[test]
fn a_record_left_by_another_process_is_not_judged() {
    // pid 8 holds the lock; the row is pid 7's, from before: 8 has just started.
    let mut f = healthy();
    f.holder = Some(Some(8));
    assert_eq!(checks(&f, at(5, 0)), vec![]);
}

#[test]
fn an_old_unsent_mail_and_a_license_at_risk_are_degraded() {
    let mut f = healthy();
    f.counts.queue = QueueCounts {
        unsent: 3,
        oldest_unsent_at: Some(at(0, 56)),
        ..QueueCounts::default()
    };
    assert_eq!(checks(&f, at(1, 11)), vec![]);
    let reasons = assess(&f, &args(), at(1, 12));
    assert_eq!(
        reasons[0].message,
        "3 mail(s) unsent, the oldest for 16 min (limit 15 min)"
    );
    f.counts.queue = QueueCounts::default();
    f.at_risk = vec![4, 9];
    let reasons = assess(&f, &args(), at(1, 12));
    assert_eq!(
        (reasons[0].check, reasons[0].level),
        ("license", Level::Degraded)
    );
    assert!(reasons[0].message.contains("ticket #4, #9"), "{reasons:?}");
}

#[test]
fn down_sorts_before_degraded() {
    let mut f = healthy();
    f.holder = None;
    f.at_risk = vec![1];
    assert_eq!(
        checks(&f, at(1, 12)),
        vec![("daemon", Level::Down), ("license", Level::Degraded)]
    );
}
