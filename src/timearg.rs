//! Time and date arguments as admins type them: RFC 3339, a local `YYYY-MM-DDTHH:MM[:SS]` read in
//! the desk's timezone (Japan time by default), or `now`.

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

use crate::core::date::parse_ymd;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TimeArgError {
    #[error(
        "cannot read time {0:?}: expected RFC 3339 (2026-11-25T10:00:00+09:00), a local time YYYY-MM-DDTHH:MM[:SS], or now"
    )]
    Unreadable(String),
    #[error("cannot read time {0:?}: that local time does not exist in {1}")]
    NonexistentLocal(String, Tz),
    #[error("cannot read date {0:?}: expected YYYY-MM-DD")]
    BadDate(String),
    #[error("cannot use time {0:?}: it lies outside the years 0000-9999 (UTC)")]
    OutOfRange(String),
    #[error(
        "cannot use time {0:?}: second 60 (a leap second) is not a time the desk's clock shows"
    )]
    LeapSecond(String),
}

/// Whether `t` can be written in RFC 3339 (a four-digit year in UTC), as the desk prints the
/// times it is given: one that cannot would not read back (found by fuzzing, `fuzz/`).
fn writable(t: DateTime<Utc>) -> bool {
    (0..=9999).contains(&t.year())
}

/// Parses an instant; `now` is the shell's current time, passed in.
pub fn parse_instant(
    text: &str,
    tz: Tz,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, TimeArgError> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("now") {
        return Ok(now);
    }
    let in_range = |t: DateTime<Utc>| {
        if !writable(t) {
            Err(TimeArgError::OutOfRange(text.to_string()))
        } else if t.nanosecond() >= 1_000_000_000 {
            // chrono keeps `:60` as a leap second, which does not always print back as what
            // was read (found by fuzzing: with an offset of whole seconds, as Tokyo's before
            // 1888, `10:00:60` printed as an ordinary `:01`).
            Err(TimeArgError::LeapSecond(text.to_string()))
        } else {
            Ok(t)
        }
    };
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return in_range(t.with_timezone(&Utc));
    }
    let local = [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
    .ok_or_else(|| TimeArgError::Unreadable(text.to_string()))?;
    tz.from_local_datetime(&local)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| TimeArgError::NonexistentLocal(text.to_string(), tz))
        .and_then(in_range)
}

/// Parses a calendar date, exactly `YYYY-MM-DD` (surrounding spaces ignored), with the same
/// parser as the config and the CSV files.
pub fn parse_date(text: &str) -> Result<NaiveDate, TimeArgError> {
    parse_ymd(text.trim()).map_err(|_| TimeArgError::BadDate(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, 1, 0, 0)
            .single()
            .unwrap()
    }

    #[test]
    fn local_time_is_read_in_the_desk_timezone() {
        let t = parse_instant("2026-11-25T09:00", chrono_tz::Asia::Tokyo, now()).unwrap();
        assert_eq!(
            t,
            Utc.with_ymd_and_hms(2026, 11, 25, 0, 0, 0)
                .single()
                .unwrap()
        );
        let t = parse_instant("2026-11-25T09:00:30", chrono_tz::Asia::Tokyo, now()).unwrap();
        assert_eq!(
            t,
            Utc.with_ymd_and_hms(2026, 11, 25, 0, 0, 30)
                .single()
                .unwrap()
        );
    }

    #[test]
    fn rfc3339_keeps_its_offset_and_now_is_passed_in() {
        let t = parse_instant("2026-11-25T09:00:00Z", chrono_tz::Asia::Tokyo, now()).unwrap();
        assert_eq!(
            t,
            Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0)
                .single()
                .unwrap()
        );
        assert_eq!(
            parse_instant("now", chrono_tz::Asia::Tokyo, now()).unwrap(),
            now()
        );
    }

    /// Fuzzing found these (fixtures/fuzz-regressions/timearg/): each parsed, but its instant
    /// in UTC falls outside the four-digit years, so the RFC 3339 the desk prints of it
    /// (`-0001-12-31T15:00:00Z`) could not be read back.
    #[test]
    fn instants_outside_four_digit_years_are_refused() {
        for text in [
            "0000-01-01T00:00:00+09:00",
            "0000-01-01T08:59",
            "9999-12-31T23:59:59-01:00",
        ] {
            assert_eq!(
                parse_instant(text, chrono_tz::Asia::Tokyo, now()),
                Err(TimeArgError::OutOfRange(text.into())),
                "{text}"
            );
        }
        for text in [
            "0000-01-01T00:00:00Z",
            "0000-01-02T00:00",
            "9999-12-31T23:59:59Z",
        ] {
            assert!(
                parse_instant(text, chrono_tz::Asia::Tokyo, now()).is_ok(),
                "{text}"
            );
        }
    }

    #[test]
    fn leap_seconds_are_refused() {
        for text in [
            "0226-11-25 10:00:60",
            "2026-11-25T08:59:60",
            "2016-12-31T23:59:60Z",
        ] {
            assert_eq!(
                parse_instant(text, chrono_tz::Asia::Tokyo, now()),
                Err(TimeArgError::LeapSecond(text.into())),
                "{text}"
            );
        }
    }

    #[test]
    fn garbage_is_a_clear_error() {
        assert!(matches!(
            parse_instant("tomorrow", chrono_tz::Asia::Tokyo, now()),
            Err(TimeArgError::Unreadable(_))
        ));
        assert!(matches!(
            parse_instant("2026-03-08T02:30", chrono_tz::America::New_York, now()),
            Err(TimeArgError::NonexistentLocal(..))
        ));
        assert_eq!(
            parse_date("2026-02-30"),
            Err(TimeArgError::BadDate("2026-02-30".into()))
        );
        // Strict, like the config and the CSV files: chrono alone would take this.
        assert_eq!(
            parse_date("2026-2-28"),
            Err(TimeArgError::BadDate("2026-2-28".into()))
        );
        assert_eq!(
            parse_date(" 2026-02-28 ").unwrap(),
            NaiveDate::from_ymd_opt(2026, 2, 28).unwrap()
        );
    }
}
