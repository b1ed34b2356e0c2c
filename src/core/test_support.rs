//! Helpers the core's unit tests share: fixed Japan-time clocks and dates.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};

/// A Japan-time instant.
pub fn jst(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    chrono_tz::Asia::Tokyo
        .with_ymd_and_hms(y, m, d, h, min, 0)
        .single()
        .expect("a valid Japan time")
        .with_timezone(&Utc)
}

pub fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("a valid date")
}
