//! The business calendar: national holidays (computed from the holiday law), company closures,
//! reception windows (R5) and the license-key cutoff (R8). Pure: every function takes the time
//! it reasons about as a parameter.
//!
//! All reasoning happens in the spec's timezone. A reception window of a business day is the
//! half-open span of instants `[instant(day, start), instant(day, end))`, where `instant` is
//! the earliest instant whose local time is at or after the given local time: the first
//! occurrence of a repeated (DST fold) time, the end of the gap for a skipped one. Windows are
//! therefore disjoint and ordered in real time even across DST changes, which keeps
//! `accepted_at` idempotent and `business_duration` additive in any zone.

mod deadline;
pub mod holidays;

use std::borrow::Cow;
use std::fmt;
use std::ops::ControlFlow;

use chrono::{
    DateTime, Datelike, Days, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeDelta,
    TimeZone, Timelike, Utc, Weekday,
};
use chrono_tz::Tz;

pub use holidays::{
    COMPANY_HOLIDAY_NAME, Holiday, HolidayKind, national_holiday, national_holidays,
};

/// One reception window within a business day, `start` inclusive, `end` exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Window {
    pub start: NaiveTime,
    pub end: NaiveTime,
}

impl Window {
    /// Whether the local time-of-day lies in the window.
    pub fn contains(&self, time: NaiveTime) -> bool {
        self.start <= time && time < self.end
    }
}

impl fmt::Display for Window {
    /// `09:00-12:00`, the config syntax (seconds only when present).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", HhMm(self.start), HhMm(self.end))
    }
}

struct HhMm(NaiveTime);

impl fmt::Display for HhMm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.0;
        if t.second() == 0 && t.nanosecond() == 0 {
            write!(f, "{:02}:{:02}", t.hour(), t.minute())
        } else {
            write!(f, "{:02}:{:02}:{:02}", t.hour(), t.minute(), t.second())
        }
    }
}

/// A company closure (summer holidays, year-end/new-year, single days), both ends inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CompanyClosure {
    pub first: NaiveDate,
    pub last: NaiveDate,
}

impl CompanyClosure {
    pub fn contains(&self, date: NaiveDate) -> bool {
        self.first <= date && date <= self.last
    }
}

/// Everything the calendar needs, as validated by `config`.
#[derive(Debug, Clone, PartialEq)]
pub struct CalendarSpec {
    pub timezone: Tz,
    pub windows: Vec<Window>,
    pub weekdays: Vec<Weekday>,
    pub national_holidays: bool,
    pub company_holidays: Vec<CompanyClosure>,
    pub license_cutoff: NaiveTime,
}

/// A time-of-day constant; an invalid one fails the build, not the daemon.
const fn hm(hour: u32, min: u32) -> NaiveTime {
    match NaiveTime::from_hms_opt(hour, min, 0) {
        Some(t) => t,
        None => panic!("invalid time constant"),
    }
}

/// R5's reception windows.
pub const DEFAULT_WINDOWS: [Window; 2] = [
    Window {
        start: hm(9, 0),
        end: hm(12, 0),
    },
    Window {
        start: hm(13, 0),
        end: hm(17, 30),
    },
];
/// R8's same-day cutoff.
pub const DEFAULT_LICENSE_CUTOFF: NaiveTime = hm(17, 0);

impl Default for CalendarSpec {
    /// The support terms: Asia/Tokyo, 09:00–12:00 and 13:00–17:30, Mon–Fri, national
    /// holidays closed, no company closures, license cutoff 17:00.
    fn default() -> Self {
        use Weekday::*;
        Self {
            timezone: chrono_tz::Asia::Tokyo,
            windows: DEFAULT_WINDOWS.to_vec(),
            weekdays: vec![Mon, Tue, Wed, Thu, Fri],
            national_holidays: true,
            company_holidays: Vec::new(),
            license_cutoff: DEFAULT_LICENSE_CUTOFF,
        }
    }
}

/// Why a spec cannot make a calendar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    #[error("no reception windows are configured")]
    NoWindows,
    #[error("reception window {0}: the end must be after the start")]
    EmptyWindow(Window),
    #[error("reception windows {0} and {1} overlap")]
    OverlappingWindows(Window, Window),
    #[error("no working weekdays are configured")]
    NoWeekdays,
    #[error("company closure {first}..{last}: the first day is after the last")]
    InvertedClosure { first: NaiveDate, last: NaiveDate },
}

/// Why a date is not a business day. A day that is several at once reports the first of:
/// national holiday, company holiday, not a workday.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClosedDay {
    NotAWorkday(Weekday),
    NationalHoliday(Cow<'static, str>),
    CompanyHoliday,
}

/// Why the desk is open or closed at an instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// Inside this reception window.
    Open(Window),
    NotAWorkday(Weekday),
    /// A national, substitute or citizens' holiday, with its name.
    NationalHoliday(Cow<'static, str>),
    CompanyHoliday,
    BeforeHours,
    /// Between two windows of a business day (the lunch break).
    BetweenWindows,
    AfterHours,
    /// The instant is within a day of chrono's representable range; nothing is open there.
    OutOfRange,
}

impl Reason {
    /// A stable snake_case identifier for JSON and logs.
    pub fn code(&self) -> &'static str {
        match self {
            Reason::Open(_) => "open",
            Reason::NotAWorkday(_) => "not_a_workday",
            Reason::NationalHoliday(_) => "national_holiday",
            Reason::CompanyHoliday => "company_holiday",
            Reason::BeforeHours => "before_hours",
            Reason::BetweenWindows => "between_windows",
            Reason::AfterHours => "after_hours",
            Reason::OutOfRange => "out_of_range",
        }
    }
}

impl From<ClosedDay> for Reason {
    fn from(day: ClosedDay) -> Self {
        match day {
            ClosedDay::NotAWorkday(wd) => Reason::NotAWorkday(wd),
            ClosedDay::NationalHoliday(name) => Reason::NationalHoliday(name),
            ClosedDay::CompanyHoliday => Reason::CompanyHoliday,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Open(w) => write!(f, "open: within reception window {w}"),
            Reason::NotAWorkday(wd) => {
                write!(f, "closed: {} is not a working day", weekday_name(*wd))
            }
            Reason::NationalHoliday(name) => write!(f, "closed: national holiday {name}"),
            Reason::CompanyHoliday => f.write_str("closed: company holiday"),
            Reason::BeforeHours => f.write_str("closed: before opening"),
            Reason::BetweenWindows => f.write_str("closed: between windows (lunch break)"),
            Reason::AfterHours => f.write_str("closed: after closing"),
            Reason::OutOfRange => f.write_str("closed: outside the supported date range"),
        }
    }
}

fn weekday_name(wd: Weekday) -> &'static str {
    match wd {
        Weekday::Mon => "Monday",
        Weekday::Tue => "Tuesday",
        Weekday::Wed => "Wednesday",
        Weekday::Thu => "Thursday",
        Weekday::Fri => "Friday",
        Weekday::Sat => "Saturday",
        Weekday::Sun => "Sunday",
    }
}

/// The desk at one instant.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    pub open: bool,
    pub reason: Reason,
    /// The instant itself when open, else the start of the next window.
    pub next_open: DateTime<Tz>,
}

/// R5 and R8 over a validated [`CalendarSpec`].
#[derive(Debug, Clone)]
pub struct BusinessCalendar {
    spec: CalendarSpec,
    /// Sorted by start, non-overlapping, non-empty.
    windows: Vec<Window>,
    /// Indexed by `Weekday::num_days_from_monday`.
    workdays: [bool; 7],
    /// Sorted, with overlapping and adjacent closures merged, so one jump clears a closure.
    closures: Vec<CompanyClosure>,
}

impl BusinessCalendar {
    pub fn new(spec: CalendarSpec) -> Result<Self, CalendarError> {
        if spec.windows.is_empty() {
            return Err(CalendarError::NoWindows);
        }
        if let Some(w) = spec.windows.iter().find(|w| w.end <= w.start) {
            return Err(CalendarError::EmptyWindow(*w));
        }
        let mut windows = spec.windows.clone();
        windows.sort_by_key(|w| (w.start, w.end));
        // Touching windows (12:00-13:00 after 09:00-12:00) are fine; overlapping ones are not.
        if let Some(pair) = windows.windows(2).find(|p| p[1].start < p[0].end) {
            return Err(CalendarError::OverlappingWindows(pair[0], pair[1]));
        }
        if spec.weekdays.is_empty() {
            return Err(CalendarError::NoWeekdays);
        }
        let mut workdays = [false; 7];
        for wd in &spec.weekdays {
            workdays[wd.num_days_from_monday() as usize] = true;
        }
        if let Some(c) = spec.company_holidays.iter().find(|c| c.first > c.last) {
            return Err(CalendarError::InvertedClosure {
                first: c.first,
                last: c.last,
            });
        }
        let mut sorted = spec.company_holidays.clone();
        sorted.sort_by_key(|c| c.first);
        let mut closures: Vec<CompanyClosure> = Vec::with_capacity(sorted.len());
        for c in sorted {
            match closures.last_mut() {
                Some(prev) if prev.last.succ_opt().is_none_or(|next| c.first <= next) => {
                    prev.last = prev.last.max(c.last);
                }
                _ => closures.push(c),
            }
        }
        Ok(Self {
            spec,
            windows,
            workdays,
            closures,
        })
    }

    pub fn spec(&self) -> &CalendarSpec {
        &self.spec
    }

    pub fn timezone(&self) -> Tz {
        self.spec.timezone
    }

    /// Why `date` is not a business day, or `None` when it is one.
    pub fn closed_day_reason(&self, date: NaiveDate) -> Option<ClosedDay> {
        if self.spec.national_holidays
            && let Some(h) = national_holiday(date)
        {
            return Some(ClosedDay::NationalHoliday(h.name));
        }
        if self.closure_containing(date).is_some() {
            return Some(ClosedDay::CompanyHoliday);
        }
        if !self.is_workday(date) {
            return Some(ClosedDay::NotAWorkday(date.weekday()));
        }
        None
    }

    pub fn is_business_day(&self, date: NaiveDate) -> bool {
        self.is_business_day_with(date, &mut YearHolidays::default())
    }

    /// Open or closed at `t`, why, and when it next opens.
    pub fn status(&self, t: DateTime<Utc>) -> Status {
        let next = self.next_interval(t);
        if let Some((window, start, _)) = next
            && start <= t
        {
            return Status {
                open: true,
                reason: Reason::Open(window),
                next_open: self.in_tz(t),
            };
        }
        Status {
            open: false,
            reason: self.closed_reason(t),
            next_open: self.in_tz(next.map_or(t, |(_, start, _)| start)),
        }
    }

    /// `t` when the desk is open, else the start of the next window. Falls back to `t` only
    /// when no window exists before chrono's maximum date (closures reaching that far).
    pub fn next_open(&self, t: DateTime<Utc>) -> DateTime<Tz> {
        let at = self
            .next_interval(t)
            .map_or(t, |(_, start, _)| start.max(t));
        self.in_tz(at)
    }

    /// R5: a request arriving at `t` is accepted at `t` inside a window, else at the start of
    /// the next window.
    pub fn accepted_at(&self, t: DateTime<Utc>) -> DateTime<Tz> {
        self.next_open(t)
    }

    /// R8: the business date by which a license key applied for at `t` is sent. Same day when
    /// `t`'s local date is a business day and its local time, to the second, is at or before
    /// the cutoff (so 17:00:00.9 counts as 17:00:00); otherwise the next business day.
    pub fn license_due(&self, t: DateTime<Utc>) -> NaiveDate {
        let Some(local) = self.local(t) else {
            return t.date_naive();
        };
        let date = local.date();
        let time = local.time().with_nanosecond(0).unwrap_or(local.time());
        if time <= self.spec.license_cutoff && self.is_business_day(date) {
            date
        } else {
            self.next_business_day_after(date).unwrap_or(date)
        }
    }

    /// Minutes of reception-window time in `[from, to)`; 0 when `to <= from`. Counts the whole
    /// minutes (UTC minute starts) that fall inside a window, which makes it exactly additive:
    /// `d(a, c) == d(a, b) + d(b, c)` for `a <= b <= c`. Costs one step per day of the range.
    pub fn business_duration(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
        if to <= from {
            return 0;
        }
        let Some(local) = self.local(from) else {
            return 0;
        };
        let mut minutes = 0;
        self.scan(scan_start(local.date()), |_, start, end| {
            if start >= to {
                return ControlFlow::Break(());
            }
            let (lo, hi) = (start.max(from), end.min(to));
            if lo < hi {
                minutes += minute_ceil(hi) - minute_ceil(lo);
            }
            ControlFlow::Continue(())
        });
        minutes
    }

    /// National holidays (when the spec observes them) and company closure days of `year`,
    /// sorted by date, one entry per day; a day that is both keeps its national name.
    pub fn holidays(&self, year: i32) -> Vec<Holiday> {
        let mut out = if self.spec.national_holidays {
            national_holidays(year)
        } else {
            Vec::new()
        };
        let (Some(jan1), Some(dec31)) = (
            NaiveDate::from_ymd_opt(year, 1, 1),
            NaiveDate::from_ymd_opt(year, 12, 31),
        ) else {
            return out;
        };
        let mut company = Vec::new();
        for c in &self.closures {
            let (first, last) = (c.first.max(jan1), c.last.min(dec31));
            for date in first.iter_days().take_while(|&d| d <= last) {
                if out.binary_search_by_key(&date, |h| h.date).is_err() {
                    company.push(Holiday {
                        date,
                        name: Cow::Borrowed(COMPANY_HOLIDAY_NAME),
                        kind: HolidayKind::Company,
                    });
                }
            }
        }
        out.extend(company);
        out.sort_by_key(|h| h.date);
        out
    }

    fn is_workday(&self, date: NaiveDate) -> bool {
        self.workdays[date.weekday().num_days_from_monday() as usize]
    }

    fn closure_containing(&self, date: NaiveDate) -> Option<&CompanyClosure> {
        let i = self.closures.partition_point(|c| c.last < date);
        self.closures.get(i).filter(|c| c.first <= date)
    }

    /// Cheapest checks first; holidays are looked up through a per-call year memo.
    fn is_business_day_with(&self, date: NaiveDate, memo: &mut YearHolidays) -> bool {
        self.is_workday(date)
            && self.closure_containing(date).is_none()
            && !(self.spec.national_holidays && memo.contains(date))
    }

    fn next_business_day_after(&self, date: NaiveDate) -> Option<NaiveDate> {
        let mut memo = YearHolidays::default();
        let mut day = date.succ_opt()?;
        loop {
            if let Some(c) = self.closure_containing(day) {
                day = c.last.succ_opt()?;
            } else if self.is_business_day_with(day, &mut memo) {
                return Some(day);
            } else {
                day = day.succ_opt()?;
            }
        }
    }

    fn closed_reason(&self, t: DateTime<Utc>) -> Reason {
        let Some(local) = self.local(t) else {
            return Reason::OutOfRange;
        };
        let date = local.date();
        if let Some(closed) = self.closed_day_reason(date) {
            return closed.into();
        }
        let spans: Vec<_> = self
            .windows
            .iter()
            .filter_map(|&w| self.interval(date, w))
            .collect();
        match (spans.first(), spans.last()) {
            (Some(&(first, _)), Some(&(_, last))) => {
                if t < first {
                    Reason::BeforeHours
                } else if t >= last {
                    Reason::AfterHours
                } else {
                    Reason::BetweenWindows
                }
            }
            // Every window of the day falls in a DST gap: judge by the wall clock.
            _ if self.windows.first().is_some_and(|w| local.time() < w.start) => {
                Reason::BeforeHours
            }
            _ => Reason::AfterHours,
        }
    }

    /// The first window span (window, start, end) that ends after `t`.
    fn next_interval(&self, t: DateTime<Utc>) -> Option<(Window, DateTime<Utc>, DateTime<Utc>)> {
        let local = self.local(t)?;
        self.scan(scan_start(local.date()), |w, start, end| {
            if end > t {
                ControlFlow::Break((w, start, end))
            } else {
                ControlFlow::Continue(())
            }
        })
    }

    /// Visits the window spans of business days from `day` on, in time order, until `visit`
    /// breaks. Ends (None) at chrono's maximum date, so it always terminates; company closures
    /// are skipped in one step each.
    fn scan<T>(
        &self,
        mut day: NaiveDate,
        mut visit: impl FnMut(Window, DateTime<Utc>, DateTime<Utc>) -> ControlFlow<T>,
    ) -> Option<T> {
        let mut memo = YearHolidays::default();
        loop {
            if let Some(c) = self.closure_containing(day) {
                day = c.last.succ_opt()?;
                continue;
            }
            if self.is_business_day_with(day, &mut memo) {
                for &w in &self.windows {
                    if let Some((start, end)) = self.interval(day, w)
                        && let ControlFlow::Break(found) = visit(w, start, end)
                    {
                        return Some(found);
                    }
                }
            }
            day = day.succ_opt()?;
        }
    }

    /// The span of window `w` on `date`, or None when it is empty (inside a DST gap) or out
    /// of chrono's range.
    fn interval(&self, date: NaiveDate, w: Window) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let start = self.instant(date.and_time(w.start))?;
        let end = self.instant(date.and_time(w.end))?;
        (start < end).then_some((start, end))
    }

    /// The earliest instant whose local time is at or after `local`.
    fn instant(&self, local: NaiveDateTime) -> Option<DateTime<Utc>> {
        match self.spec.timezone.from_local_datetime(&local) {
            LocalResult::Single(t) => return Some(t.with_timezone(&Utc)),
            LocalResult::Ambiguous(a, b) => return Some(a.min(b).with_timezone(&Utc)),
            LocalResult::None => {}
        }
        // A DST gap: bisect for the transition. Offsets lie within ±26 h, so local time is
        // below `local` at guess − 30 h and above it at guess + 30 h.
        const SPAN: i64 = 30 * 3600;
        let guess = local.and_utc().timestamp();
        let (mut lo, mut hi) = (guess.checked_sub(SPAN)?, guess.checked_add(SPAN)?);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if self.local(DateTime::from_timestamp(mid, 0)?)? >= local {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        DateTime::from_timestamp(hi, 0)
    }

    /// `t`'s wall-clock time in the spec's zone; None within a day of chrono's range limits
    /// (where chrono's own conversion would panic).
    fn local(&self, t: DateTime<Utc>) -> Option<NaiveDateTime> {
        let offset = self
            .spec
            .timezone
            .offset_from_utc_datetime(&t.naive_utc())
            .fix();
        t.naive_utc()
            .checked_add_signed(TimeDelta::seconds(offset.local_minus_utc().into()))
    }

    fn in_tz(&self, t: DateTime<Utc>) -> DateTime<Tz> {
        t.with_timezone(&self.spec.timezone)
    }
}

/// A day's spans can end on a later local date (DST gaps, date-line moves), so scans for
/// an instant start two days before its local date.
fn scan_start(date: NaiveDate) -> NaiveDate {
    date.checked_sub_days(Days::new(2)).unwrap_or(date)
}

/// The index of the first UTC minute start at or after `t`.
fn minute_ceil(t: DateTime<Utc>) -> i64 {
    let secs = t.timestamp();
    let exact = secs.rem_euclid(60) == 0 && t.timestamp_subsec_nanos() == 0;
    secs.div_euclid(60) + i64::from(!exact)
}

/// One year's national holidays, recomputed only when a lookup changes year.
#[derive(Default)]
struct YearHolidays {
    year: Option<i32>,
    list: Vec<Holiday>,
}

impl YearHolidays {
    fn contains(&mut self, date: NaiveDate) -> bool {
        if self.year != Some(date.year()) {
            self.year = Some(date.year());
            self.list = national_holidays(date.year());
        }
        self.list.binary_search_by_key(&date, |h| h.date).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::America::New_York;
    use chrono_tz::Asia::Tokyo;
    use proptest::prelude::*;

    fn cal() -> BusinessCalendar {
        BusinessCalendar::new(CalendarSpec::default()).unwrap()
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn time(h: u32, m: u32, s: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, s).unwrap()
    }

    fn in_zone(tz: Tz, y: i32, m: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        tz.with_ymd_and_hms(y, m, d, h, mi, s)
            .single()
            .unwrap()
            .with_timezone(&Utc)
    }

    /// A Japan-time instant.
    fn jst(y: i32, m: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        in_zone(Tokyo, y, m, d, h, mi, s)
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    /// `next_open` as local `YYYY-MM-DD HH:MM:SS`.
    fn local_str(t: DateTime<Tz>) -> String {
        t.format("%Y-%m-%d %H:%M:%S").to_string()
    }

    fn closure(first: NaiveDate, last: NaiveDate) -> CompanyClosure {
        CompanyClosure { first, last }
    }

    fn with_year_end() -> BusinessCalendar {
        BusinessCalendar::new(CalendarSpec {
            company_holidays: vec![closure(date(2026, 12, 29), date(2027, 1, 4))],
            ..CalendarSpec::default()
        })
        .unwrap()
    }

    #[test]
    fn default_spec_is_the_support_terms() {
        let spec = CalendarSpec::default();
        assert_eq!(spec.timezone, Tokyo);
        let windows: Vec<String> = spec.windows.iter().map(Window::to_string).collect();
        assert_eq!(windows, ["09:00-12:00", "13:00-17:30"]);
        assert_eq!(spec.weekdays.len(), 5);
        assert!(!spec.weekdays.contains(&Weekday::Sat) && !spec.weekdays.contains(&Weekday::Sun));
        assert!(spec.national_holidays);
        assert!(spec.company_holidays.is_empty());
        assert_eq!(spec.license_cutoff, time(17, 0, 0));
    }

    #[test]
    fn rejects_bad_specs() {
        let base = CalendarSpec::default;
        let w = |a: NaiveTime, b: NaiveTime| Window { start: a, end: b };
        let err = |spec| BusinessCalendar::new(spec).unwrap_err();
        assert_eq!(
            err(CalendarSpec {
                windows: vec![],
                ..base()
            }),
            CalendarError::NoWindows
        );
        let empty = w(time(9, 0, 0), time(9, 0, 0));
        assert_eq!(
            err(CalendarSpec {
                windows: vec![empty],
                ..base()
            }),
            CalendarError::EmptyWindow(empty)
        );
        let inverted = w(time(17, 0, 0), time(9, 0, 0));
        assert_eq!(
            err(CalendarSpec {
                windows: vec![inverted],
                ..base()
            }),
            CalendarError::EmptyWindow(inverted)
        );
        let (a, b) = (
            w(time(9, 0, 0), time(12, 0, 0)),
            w(time(11, 0, 0), time(13, 0, 0)),
        );
        let e = err(CalendarSpec {
            windows: vec![b, a],
            ..base()
        });
        assert_eq!(e, CalendarError::OverlappingWindows(a, b));
        assert_eq!(
            e.to_string(),
            "reception windows 09:00-12:00 and 11:00-13:00 overlap"
        );
        assert_eq!(
            err(CalendarSpec {
                weekdays: vec![],
                ..base()
            }),
            CalendarError::NoWeekdays
        );
        let backwards = closure(date(2026, 8, 16), date(2026, 8, 13));
        assert_eq!(
            err(CalendarSpec {
                company_holidays: vec![backwards],
                ..base()
            }),
            CalendarError::InvertedClosure {
                first: date(2026, 8, 16),
                last: date(2026, 8, 13)
            }
        );
    }

    #[test]
    fn accepts_touching_and_unsorted_windows() {
        let spec = CalendarSpec {
            windows: vec![
                Window {
                    start: time(12, 0, 0),
                    end: time(13, 0, 0),
                },
                Window {
                    start: time(9, 0, 0),
                    end: time(12, 0, 0),
                },
            ],
            weekdays: vec![Weekday::Mon, Weekday::Mon],
            ..CalendarSpec::default()
        };
        let cal = BusinessCalendar::new(spec).unwrap();
        let s = cal.status(jst(2026, 6, 15, 12, 0, 0));
        assert!(s.open);
        assert_eq!(
            s.reason.to_string(),
            "open: within reception window 12:00-13:00"
        );
        assert_eq!(
            cal.business_duration(jst(2026, 6, 15, 0, 0, 0), jst(2026, 6, 16, 0, 0, 0)),
            240
        );
    }

    #[test]
    fn opening_and_closing_boundaries() {
        let cal = cal();
        // Wednesday 2026-06-10.
        let before = cal.status(jst(2026, 6, 10, 8, 59, 59));
        assert!(!before.open);
        assert_eq!(before.reason, Reason::BeforeHours);
        assert_eq!(local_str(before.next_open), "2026-06-10 09:00:00");

        let t = jst(2026, 6, 10, 9, 0, 0);
        let open = cal.status(t);
        assert!(open.open);
        assert_eq!(open.reason, Reason::Open(DEFAULT_WINDOWS[0]));
        assert_eq!(open.next_open, t.with_timezone(&Tokyo));

        assert!(cal.status(jst(2026, 6, 10, 11, 59, 59)).open);
        let lunch = cal.status(jst(2026, 6, 10, 12, 0, 0));
        assert!(!lunch.open);
        assert_eq!(lunch.reason, Reason::BetweenWindows);
        assert_eq!(local_str(lunch.next_open), "2026-06-10 13:00:00");
        assert_eq!(
            cal.status(jst(2026, 6, 10, 13, 0, 0)).reason,
            Reason::Open(DEFAULT_WINDOWS[1])
        );

        assert!(cal.status(jst(2026, 6, 10, 17, 29, 59)).open);
        let after = cal.status(jst(2026, 6, 10, 17, 30, 0));
        assert!(!after.open);
        assert_eq!(after.reason, Reason::AfterHours);
        assert_eq!(local_str(after.next_open), "2026-06-11 09:00:00");
    }

    #[test]
    fn accepted_at_follows_r5() {
        let cal = cal();
        let inside = jst(2026, 6, 10, 10, 15, 42);
        assert_eq!(cal.accepted_at(inside), inside.with_timezone(&Tokyo));
        assert_eq!(
            local_str(cal.accepted_at(jst(2026, 6, 10, 12, 30, 0))),
            "2026-06-10 13:00:00"
        );
        assert_eq!(
            local_str(cal.accepted_at(jst(2026, 6, 10, 3, 0, 0))),
            "2026-06-10 09:00:00"
        );
        // The result is in the spec's zone, whatever zone the input came from.
        assert_eq!(cal.accepted_at(inside).timezone(), Tokyo);
    }

    #[test]
    fn friday_evening_goes_to_monday() {
        let cal = cal();
        let s = cal.status(jst(2026, 6, 12, 18, 0, 0));
        assert_eq!(s.reason, Reason::AfterHours);
        assert_eq!(local_str(s.next_open), "2026-06-15 09:00:00");
        let sat = cal.status(jst(2026, 6, 13, 10, 0, 0));
        assert_eq!(sat.reason, Reason::NotAWorkday(Weekday::Sat));
        assert_eq!(
            sat.reason.to_string(),
            "closed: Saturday is not a working day"
        );
        assert_eq!(local_str(sat.next_open), "2026-06-15 09:00:00");
        assert_eq!(
            cal.license_due(jst(2026, 6, 12, 17, 0, 1)),
            date(2026, 6, 15)
        );
        assert_eq!(
            cal.license_due(jst(2026, 6, 14, 23, 59, 59)),
            date(2026, 6, 15)
        );
    }

    #[test]
    fn license_cutoff_r8() {
        let cal = cal();
        let wed = date(2026, 6, 10);
        assert_eq!(cal.license_due(jst(2026, 6, 10, 17, 0, 0)), wed);
        assert_eq!(
            cal.license_due(jst(2026, 6, 10, 17, 0, 1)),
            date(2026, 6, 11)
        );
        // Within the second of the cutoff still counts as 17:00:00.
        let just_after = jst(2026, 6, 10, 17, 0, 0) + TimeDelta::milliseconds(999);
        assert_eq!(cal.license_due(just_after), wed);
        // Before opening and during lunch are before the cutoff: same day.
        assert_eq!(cal.license_due(jst(2026, 6, 10, 0, 0, 0)), wed);
        assert_eq!(cal.license_due(jst(2026, 6, 10, 8, 0, 0)), wed);
        assert_eq!(cal.license_due(jst(2026, 6, 10, 12, 30, 0)), wed);
        // Between the cutoff and closing: next business day.
        assert_eq!(
            cal.license_due(jst(2026, 6, 10, 17, 15, 0)),
            date(2026, 6, 11)
        );
        assert_eq!(
            cal.license_due(jst(2026, 6, 10, 23, 59, 59)),
            date(2026, 6, 11)
        );
    }

    #[test]
    fn golden_week_2026() {
        let cal = cal();
        // 4/29 Wed 昭和の日, 5/3 Sun 憲法記念日, 5/4 みどりの日, 5/5 こどもの日, 5/6 振替休日.
        let s = cal.status(jst(2026, 5, 4, 10, 0, 0));
        assert_eq!(s.reason, Reason::NationalHoliday("みどりの日".into()));
        assert_eq!(s.reason.to_string(), "closed: national holiday みどりの日");
        assert_eq!(s.reason.code(), "national_holiday");
        assert_eq!(local_str(s.next_open), "2026-05-07 09:00:00");
        assert_eq!(
            cal.closed_day_reason(date(2026, 5, 6)),
            Some(ClosedDay::NationalHoliday("こどもの日 振替休日".into()))
        );
        assert_eq!(
            local_str(cal.accepted_at(jst(2026, 5, 1, 17, 45, 0))),
            "2026-05-07 09:00:00"
        );
        assert_eq!(cal.license_due(jst(2026, 5, 1, 17, 0, 1)), date(2026, 5, 7));
        assert_eq!(
            cal.license_due(jst(2026, 4, 29, 9, 30, 0)),
            date(2026, 4, 30)
        );
        let gw: Vec<bool> = (29..=30)
            .map(|d| date(2026, 4, d))
            .chain((1..=7).map(|d| date(2026, 5, d)))
            .map(|d| cal.is_business_day(d))
            .collect();
        assert_eq!(
            gw,
            [false, true, true, false, false, false, false, false, true]
        );
    }

    #[test]
    fn holiday_on_a_monday() {
        let cal = cal();
        // 2026-11-23 Mon 勤労感謝の日.
        let s = cal.status(jst(2026, 11, 23, 10, 0, 0));
        assert_eq!(
            s.reason.to_string(),
            "closed: national holiday 勤労感謝の日"
        );
        assert_eq!(local_str(s.next_open), "2026-11-24 09:00:00");
        assert_eq!(
            local_str(cal.next_open(jst(2026, 11, 20, 17, 30, 0))),
            "2026-11-24 09:00:00"
        );
        // Silver week: 9/21 Mon 敬老の日, 9/22 休日, 9/23 秋分の日.
        assert_eq!(
            local_str(cal.next_open(jst(2026, 9, 18, 18, 0, 0))),
            "2026-09-24 09:00:00"
        );
        assert_eq!(
            cal.closed_day_reason(date(2026, 9, 22)),
            Some(ClosedDay::NationalHoliday("休日".into()))
        );
    }

    #[test]
    fn company_closure_range() {
        let cal = with_year_end();
        // Monday 2026-12-28 is the last day before the closure.
        assert_eq!(
            local_str(cal.next_open(jst(2026, 12, 28, 17, 45, 0))),
            "2027-01-05 09:00:00"
        );
        assert_eq!(
            cal.license_due(jst(2026, 12, 28, 17, 0, 1)),
            date(2027, 1, 5)
        );
        assert_eq!(
            cal.license_due(jst(2026, 12, 28, 16, 0, 0)),
            date(2026, 12, 28)
        );
        let s = cal.status(jst(2026, 12, 30, 10, 0, 0));
        assert_eq!(
            (s.reason.code(), s.reason.to_string()),
            ("company_holiday", "closed: company holiday".into())
        );
        // National wins over company, company over the weekend.
        assert_eq!(
            cal.closed_day_reason(date(2027, 1, 1)),
            Some(ClosedDay::NationalHoliday("元日".into()))
        );
        assert_eq!(
            cal.closed_day_reason(date(2027, 1, 2)),
            Some(ClosedDay::CompanyHoliday)
        );
        assert_eq!(cal.closed_day_reason(date(2027, 1, 5)), None);
        assert_eq!(
            cal.business_duration(jst(2026, 12, 28, 17, 0, 0), jst(2027, 1, 5, 9, 10, 0)),
            40
        );
    }

    #[test]
    fn holidays_listing() {
        let cal = with_year_end();
        let list = |year| -> Vec<(String, String)> {
            cal.holidays(year)
                .into_iter()
                .map(|h| (h.date.to_string(), h.name.into_owned()))
                .collect()
        };
        let y2026 = list(2026);
        assert_eq!(
            &y2026[..2],
            [
                ("2026-01-01".into(), "元日".into()),
                ("2026-01-12".into(), "成人の日".into())
            ]
        );
        let tail: Vec<_> = y2026.iter().rev().take(3).rev().cloned().collect();
        assert_eq!(
            tail,
            [
                ("2026-12-29".into(), "当社休業日".into()),
                ("2026-12-30".into(), "当社休業日".into()),
                ("2026-12-31".into(), "当社休業日".into()),
            ]
        );
        let y2027 = list(2027);
        assert_eq!(
            &y2027[..5],
            [
                ("2027-01-01".into(), "元日".into()),
                ("2027-01-02".into(), "当社休業日".into()),
                ("2027-01-03".into(), "当社休業日".into()),
                ("2027-01-04".into(), "当社休業日".into()),
                ("2027-01-11".into(), "成人の日".into()),
            ]
        );
        assert_eq!(cal.holidays(2027)[1].kind, HolidayKind::Company);
        assert!(y2027.windows(2).all(|w| w[0].0 < w[1].0));

        let company_only = BusinessCalendar::new(CalendarSpec {
            national_holidays: false,
            company_holidays: vec![closure(date(2026, 8, 13), date(2026, 8, 16))],
            ..CalendarSpec::default()
        })
        .unwrap();
        let days: Vec<_> = company_only
            .holidays(2026)
            .into_iter()
            .map(|h| h.date.day())
            .collect();
        assert_eq!(days, [13, 14, 15, 16]);
        assert!(company_only.is_business_day(date(2026, 11, 23)));
    }

    #[test]
    fn utc_input_crosses_the_japanese_date() {
        let cal = cal();
        // Thursday 23:30 UTC is Friday 08:30 in Tokyo.
        let s = cal.status(utc("2026-06-11T23:30:00Z"));
        assert_eq!(s.reason, Reason::BeforeHours);
        assert_eq!(s.next_open.to_rfc3339(), "2026-06-12T09:00:00+09:00");
        assert_eq!(s.next_open.with_timezone(&Utc), utc("2026-06-12T00:00:00Z"));
        // Friday 15:30 UTC would be office hours in UTC, but it is Saturday 00:30 in Tokyo.
        let sat = cal.status(utc("2026-06-12T15:30:00Z"));
        assert_eq!(sat.reason, Reason::NotAWorkday(Weekday::Sat));
        assert_eq!(sat.next_open.to_rfc3339(), "2026-06-15T09:00:00+09:00");
        assert_eq!(
            cal.license_due(utc("2026-06-12T07:59:59Z")),
            date(2026, 6, 12)
        );
        assert_eq!(
            cal.license_due(utc("2026-06-12T08:00:01Z")),
            date(2026, 6, 15)
        );
        // 2026-11-22 20:00 UTC is the holiday 11-23 in Tokyo.
        assert_eq!(
            cal.status(utc("2026-11-22T20:00:00Z")).reason.code(),
            "national_holiday"
        );
    }

    #[test]
    fn reason_codes_and_text() {
        let all = [
            (
                Reason::Open(DEFAULT_WINDOWS[1]),
                "open",
                "open: within reception window 13:00-17:30",
            ),
            (
                Reason::NotAWorkday(Weekday::Sun),
                "not_a_workday",
                "closed: Sunday is not a working day",
            ),
            (
                Reason::NationalHoliday("勤労感謝の日".into()),
                "national_holiday",
                "closed: national holiday 勤労感謝の日",
            ),
            (
                Reason::CompanyHoliday,
                "company_holiday",
                "closed: company holiday",
            ),
            (
                Reason::BeforeHours,
                "before_hours",
                "closed: before opening",
            ),
            (
                Reason::BetweenWindows,
                "between_windows",
                "closed: between windows (lunch break)",
            ),
            (Reason::AfterHours, "after_hours", "closed: after closing"),
            (
                Reason::OutOfRange,
                "out_of_range",
                "closed: outside the supported date range",
            ),
        ];
        for (reason, code, text) in all {
            assert_eq!((reason.code(), reason.to_string()), (code, text.to_owned()));
        }
    }

    #[test]
    fn business_duration_counts_window_minutes() {
        let cal = cal();
        let d = |a, b| cal.business_duration(a, b);
        assert_eq!(
            d(jst(2026, 6, 10, 9, 0, 0), jst(2026, 6, 10, 12, 0, 0)),
            180
        );
        assert_eq!(d(jst(2026, 6, 10, 0, 0, 0), jst(2026, 6, 11, 0, 0, 0)), 450);
        assert_eq!(
            d(jst(2026, 6, 12, 17, 0, 0), jst(2026, 6, 15, 10, 0, 0)),
            90
        );
        assert_eq!(d(jst(2026, 6, 10, 12, 0, 0), jst(2026, 6, 10, 13, 0, 0)), 0);
        assert_eq!(d(jst(2026, 6, 11, 0, 0, 0), jst(2026, 6, 10, 0, 0, 0)), 0);
        assert_eq!(d(jst(2026, 6, 10, 9, 0, 30), jst(2026, 6, 10, 9, 1, 30)), 1);
        assert_eq!(d(jst(2026, 6, 10, 9, 0, 30), jst(2026, 6, 10, 9, 1, 0)), 0);
        let year = d(jst(2026, 1, 1, 0, 0, 0), jst(2027, 1, 1, 0, 0, 0));
        let days = date(2026, 1, 1)
            .iter_days()
            .take(365)
            .filter(|&x| cal.is_business_day(x))
            .count();
        assert_eq!(days, 244);
        assert_eq!(year, 244 * 450);
    }

    #[test]
    fn another_timezone() {
        let spec = CalendarSpec {
            timezone: New_York,
            windows: vec![Window {
                start: time(9, 0, 0),
                end: time(17, 0, 0),
            }],
            national_holidays: false,
            ..CalendarSpec::default()
        };
        let cal = BusinessCalendar::new(spec).unwrap();
        // Winter (EST, -05:00) and summer (EDT, -04:00): 09:00 local is a different UTC hour.
        assert!(cal.status(utc("2026-01-05T14:00:00Z")).open);
        assert!(!cal.status(utc("2026-01-05T13:59:59Z")).open);
        assert!(cal.status(utc("2026-07-06T13:00:00Z")).open);
        let early = cal.status(utc("2026-07-06T12:59:00Z"));
        assert_eq!(early.reason, Reason::BeforeHours);
        assert_eq!(early.next_open.to_rfc3339(), "2026-07-06T09:00:00-04:00");
        // Japanese holidays are off, and 2026-01-01 (Thursday) is an ordinary day here.
        assert!(cal.is_business_day(date(2026, 1, 1)));
        // Friday 21:00 UTC is still Friday 16:00 in New York, Saturday 06:00 in Tokyo.
        assert!(cal.status(utc("2026-06-12T20:00:00Z")).open);
        assert_eq!(
            cal.license_due(utc("2026-06-12T20:00:00Z")),
            date(2026, 6, 12)
        );
        // Across the spring change (2026-03-08): Friday 16:00 EST to Monday 10:00 EDT.
        assert_eq!(
            cal.business_duration(utc("2026-03-06T21:00:00Z"), utc("2026-03-09T14:00:00Z")),
            120
        );
    }

    /// Windows that touch the DST changes themselves, open every day.
    fn dst_edges() -> BusinessCalendar {
        use Weekday::*;
        BusinessCalendar::new(CalendarSpec {
            timezone: New_York,
            windows: vec![
                Window {
                    start: time(1, 30, 0),
                    end: time(2, 30, 0),
                },
                Window {
                    start: time(2, 40, 0),
                    end: time(2, 50, 0),
                },
            ],
            weekdays: vec![Mon, Tue, Wed, Thu, Fri, Sat, Sun],
            national_holidays: false,
            ..CalendarSpec::default()
        })
        .unwrap()
    }

    #[test]
    fn dst_gap_and_fold() {
        let cal = dst_edges();
        // 2026-03-08: 02:00 EST jumps to 03:00 EDT (07:00 UTC). 01:30-02:30 runs 01:30 EST to
        // the jump; 02:40-02:50 does not exist that day.
        let spring =
            cal.business_duration(utc("2026-03-08T00:00:00Z"), utc("2026-03-09T00:00:00Z"));
        assert_eq!(spring, 30);
        let after_gap = cal.status(utc("2026-03-08T07:00:00Z"));
        assert!(!after_gap.open);
        assert_eq!(after_gap.reason, Reason::AfterHours);
        assert_eq!(
            after_gap.next_open.to_rfc3339(),
            "2026-03-09T01:30:00-04:00"
        );
        // 2026-11-01: 02:00 EDT falls back to 01:00 EST. 01:30 EDT to 02:30 EST is two hours,
        // and the repeated 01:00-01:30 EST belongs to the window.
        let autumn =
            cal.business_duration(utc("2026-11-01T04:00:00Z"), utc("2026-11-02T04:00:00Z"));
        assert_eq!(autumn, 120 + 10);
        let repeated = cal.status(utc("2026-11-01T06:15:00Z"));
        assert!(repeated.open, "{repeated:?}");
        assert_eq!(
            local_str(cal.accepted_at(utc("2026-11-01T05:00:00Z"))),
            "2026-11-01 01:30:00"
        );
    }

    #[test]
    fn never_panics_or_loops_at_the_edges() {
        let cal = cal();
        for t in [DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC] {
            let s = cal.status(t);
            assert!(!s.open);
            let _ = (cal.next_open(t), cal.license_due(t));
            assert_eq!(cal.business_duration(t, t), 0);
        }
        let _ = cal.holidays(i32::MAX);
        // A closure that never ends: nothing opens, and the answer comes back at once.
        let shut = BusinessCalendar::new(CalendarSpec {
            company_holidays: vec![
                closure(date(2026, 1, 1), NaiveDate::MAX),
                closure(date(2026, 6, 1), date(2026, 6, 30)),
            ],
            ..CalendarSpec::default()
        })
        .unwrap();
        let t = jst(2026, 6, 10, 10, 0, 0);
        let s = shut.status(t);
        assert_eq!(
            (s.open, s.reason, s.next_open),
            (false, Reason::CompanyHoliday, t.with_timezone(&Tokyo))
        );
        assert_eq!(shut.license_due(t), date(2026, 6, 10));
        assert_eq!(shut.business_duration(t, t + TimeDelta::days(10_000)), 0);
        assert_eq!(shut.holidays(2027).len(), 365);
    }

    /// Instants 1975..2095 at one-second resolution.
    fn instant() -> impl Strategy<Value = DateTime<Utc>> {
        (157_766_400i64..3_944_678_400).prop_map(|s| DateTime::from_timestamp(s, 0).unwrap())
    }

    /// An instant and two later ones, each at most ~60 days after the previous.
    fn ordered_triple() -> impl Strategy<Value = (DateTime<Utc>, DateTime<Utc>, DateTime<Utc>)> {
        (instant(), 0i64..5_200_000, 0i64..5_200_000).prop_map(|(a, x, y)| {
            let b = a + TimeDelta::seconds(x);
            (a, b, b + TimeDelta::seconds(y))
        })
    }

    proptest! {
        #[test]
        fn accepted_at_is_a_fixed_point_inside_a_window(t in instant()) {
            let cal = with_year_end();
            let a = cal.accepted_at(t);
            prop_assert!(a.with_timezone(&Utc) >= t);
            prop_assert!(cal.is_business_day(a.date_naive()));
            prop_assert!(cal.spec().windows.iter().any(|w| w.contains(a.time())));
            prop_assert_eq!(cal.accepted_at(a.with_timezone(&Utc)), a);
            let s = cal.status(t);
            prop_assert_eq!(s.next_open, a);
            prop_assert_eq!(s.open, a.with_timezone(&Utc) == t);
        }

        #[test]
        fn next_open_is_open(t in instant()) {
            let cal = with_year_end();
            let n = cal.next_open(t).with_timezone(&Utc);
            let s = cal.status(n);
            prop_assert!(s.open, "{} -> {} is {}", t, n, s.reason);
            prop_assert_eq!(s.reason.code(), "open");
        }

        #[test]
        fn license_due_is_a_business_day_not_before_the_local_date(t in instant()) {
            let cal = with_year_end();
            let due = cal.license_due(t);
            prop_assert!(cal.is_business_day(due));
            prop_assert!(due >= t.with_timezone(&Tokyo).date_naive());
        }

        #[test]
        fn business_duration_is_additive((a, b, c) in ordered_triple()) {
            let cal = with_year_end();
            let d = |x, y| cal.business_duration(x, y);
            prop_assert_eq!(d(a, c), d(a, b) + d(b, c));
            prop_assert_eq!(d(c, a), 0);
            prop_assert!(d(a, c) <= (c - a).num_minutes() + 1);
        }

        #[test]
        fn dst_zone_keeps_the_properties((a, b, c) in ordered_triple()) {
            let cal = dst_edges();
            let acc = cal.accepted_at(a);
            prop_assert!(acc.with_timezone(&Utc) >= a);
            prop_assert!(cal.status(acc.with_timezone(&Utc)).open);
            prop_assert_eq!(cal.accepted_at(acc.with_timezone(&Utc)), acc);
            let d = |x, y| cal.business_duration(x, y);
            prop_assert_eq!(d(a, c), d(a, b) + d(b, c));
        }
    }
}
