//! Time arguments as admins type them (`src/timearg.rs`): what parses round-trips, and the
//! business calendar (`calendar status` / `accepted-at`, `run --now`) takes it: a request is
//! never accepted before it arrived.

use std::cell::OnceCell;

use chrono::{SecondsFormat, TimeZone, Utc};
use chrono_tz::Asia::Tokyo;
use madoguchi::core::calendar::{BusinessCalendar, CalendarSpec};
use madoguchi::timearg::{parse_date, parse_instant};

thread_local! {
    static CALENDAR: OnceCell<BusinessCalendar> = const { OnceCell::new() };
}

pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Some(now) = Utc.with_ymd_and_hms(2026, 11, 25, 1, 0, 0).single() else {
        return;
    };
    if let Ok(t) = parse_instant(text, Tokyo, now) {
        CALENDAR.with(|cell| {
            let calendar = cell.get_or_init(|| {
                BusinessCalendar::new(CalendarSpec::default()).expect("the default calendar")
            });
            let status = calendar.status(t);
            let accepted = calendar.accepted_at(t);
            assert!(
                accepted >= t,
                "{text:?}: accepted at {accepted}, before {t}"
            );
            assert!(
                status.next_open >= t,
                "{text:?}: next opening {}",
                status.next_open
            );
            let _ = calendar.license_due(t);
        });
        let rfc = t.to_rfc3339_opts(SecondsFormat::AutoSi, true);
        assert_eq!(parse_instant(&rfc, Tokyo, now), Ok(t), "{text:?} → {rfc}");
        // A local time without an offset reads back from its own local form.
        let local = t
            .with_timezone(&Tokyo)
            .format("%Y-%m-%dT%H:%M:%S%.f")
            .to_string();
        let trimmed = text.trim();
        if !trimmed.eq_ignore_ascii_case("now")
            && chrono::DateTime::parse_from_rfc3339(trimmed).is_err()
            && t.timestamp_subsec_nanos() == 0
        {
            let local = local.trim_end_matches('.').to_string();
            assert_eq!(
                parse_instant(&local, Tokyo, now),
                Ok(t),
                "{text:?} → {local}"
            );
        }
    }
    if let Ok(d) = parse_date(text) {
        let s = d.format("%Y-%m-%d").to_string();
        assert_eq!(parse_date(&s), Ok(d), "{text:?} → {s}");
    }
}
