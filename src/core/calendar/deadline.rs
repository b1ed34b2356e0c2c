//! Business-time deadlines: when a given amount of reception-window time has passed (the
//! staff reminders of `[sla]`). The inverse of [`BusinessCalendar::business_duration`].

use std::ops::ControlFlow;

use chrono::{DateTime, Utc};

use super::{BusinessCalendar, minute_ceil, scan_start};

impl BusinessCalendar {
    /// The instant at which `minutes` of reception-window time have passed since `from`: the
    /// end of the `minutes`-th business minute, so `business_duration(from, t) == minutes`
    /// there and one less a minute earlier. `from` itself when `minutes <= 0`; `None` only when
    /// no such time exists before chrono's maximum date.
    pub fn after_business_minutes(
        &self,
        from: DateTime<Utc>,
        minutes: i64,
    ) -> Option<DateTime<Utc>> {
        if minutes <= 0 {
            return Some(from);
        }
        let local = self.local(from)?;
        let mut left = minutes;
        self.scan(scan_start(local.date()), |_, start, end| {
            let lo = start.max(from);
            if lo >= end {
                return ControlFlow::Continue(());
            }
            let (first, past) = (minute_ceil(lo), minute_ceil(end));
            let here = past - first;
            if left <= here {
                return ControlFlow::Break(DateTime::from_timestamp((first + left) * 60, 0));
            }
            left -= here;
            ControlFlow::Continue(())
        })
        .flatten()
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use chrono_tz::Asia::Tokyo;

    use super::*;
    use crate::core::calendar::CalendarSpec;

    fn tokyo(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Tokyo
            .with_ymd_and_hms(y, m, d, h, min, 0)
            .single()
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn eight_business_hours_skip_lunch_nights_weekends_and_holidays() {
        let cal = BusinessCalendar::new(CalendarSpec::default()).unwrap();
        // Mon 2026-11-30 10:00: 2 h to noon, 4.5 h in the afternoon, 1.5 h on Tuesday.
        let from = tokyo(2026, 11, 30, 10, 0);
        assert_eq!(
            cal.after_business_minutes(from, 480),
            Some(tokyo(2026, 12, 1, 10, 30))
        );
        // Fri 2026-11-20 16:00: 1.5 h Friday, then Monday the 23rd is 勤労感謝の日, Tuesday on.
        let from = tokyo(2026, 11, 20, 16, 0);
        assert_eq!(
            cal.after_business_minutes(from, 480),
            Some(tokyo(2026, 11, 24, 16, 30))
        );
        // N minutes by business_duration, and a minute earlier one less.
        for (from, n) in [
            (tokyo(2026, 11, 30, 8, 59), 1),
            (tokyo(2026, 12, 25, 17, 29), 960),
        ] {
            let t = cal.after_business_minutes(from, n).unwrap();
            assert_eq!(cal.business_duration(from, t), n);
            assert_eq!(
                cal.business_duration(from, t - chrono::Duration::minutes(1)),
                n - 1
            );
        }
        assert_eq!(cal.after_business_minutes(from, 0), Some(from));
    }

    #[test]
    fn a_from_inside_a_minute_counts_from_the_next_whole_minute() {
        let cal = BusinessCalendar::new(CalendarSpec::default()).unwrap();
        let from = tokyo(2026, 11, 30, 10, 0) + chrono::Duration::seconds(30);
        let t = cal.after_business_minutes(from, 60).unwrap();
        assert_eq!(t, tokyo(2026, 11, 30, 11, 1));
        assert_eq!(cal.business_duration(from, t), 60);
    }
}
