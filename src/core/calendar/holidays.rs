//! Japanese national holidays, computed from the holiday law (国民の祝日に関する法律) and the
//! special laws for one-off days. Pure: no tables to load, no clock, no caching.
//!
//! Names follow the reference table `corpus/holidays/jp_holidays.csv` exactly: substitute
//! holidays are `<holiday> 振替休日`, citizens' holidays `休日`, the 2019 enthronement days
//! `休日（祝日扱い）` and 2019's October holiday `体育の日（スポーツの日）`.
//!
//! Years: the rules are exact for 1973–2099 (verified against the reference table for
//! 1973–2050). For other years the functions return what the law's rules give:
//! - before 1948 nothing (the law took effect on 1948-07-20; 1948 starts with 秋分の日);
//! - 1948–1972 the rules of the time (no substitute holidays before 1973-04-12);
//! - after 2099 today's rules with the 2100–2150 equinox formula, extrapolated past 2150.
//!   Equinox days are officially fixed only a year ahead, so these are estimates.

use std::borrow::Cow;

use chrono::{Datelike, NaiveDate, Weekday};
use serde::Serialize;

/// What kind of day off a [`Holiday`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HolidayKind {
    /// 国民の祝日, and the one-off days declared by special laws.
    National,
    /// 振替休日: a holiday that fell on a Sunday moves to a later day.
    Substitute,
    /// 国民の休日: an ordinary day between two national holidays.
    Citizens,
    /// A company closure day (never produced by this module; the calendar adds them).
    Company,
}

/// One day off.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Holiday {
    pub date: NaiveDate,
    pub name: Cow<'static, str>,
    pub kind: HolidayKind,
}

/// The name the calendar gives to company closure days.
pub const COMPANY_HOLIDAY_NAME: &str = "当社休業日";

const CITIZENS_NAME: &str = "休日";
const SUBSTITUTE_SUFFIX: &str = " 振替休日";

/// The holiday law took effect on this day; nothing before it is a holiday here.
const LAW_START: (i32, u32, u32) = (1948, 7, 20);
/// Substitute holidays (振替休日) apply to holidays from this day (1973 amendment).
const SUBSTITUTE_START: (i32, u32, u32) = (1973, 4, 12);
/// Citizens' holidays (国民の休日) exist from this day (1985 amendment).
const CITIZENS_START: (i32, u32, u32) = (1985, 12, 27);
/// The 2005 amendment (in force 2007) changed both the substitute and the citizens' rules.
const RULES_2007: i32 = 2007;

/// All holidays of `year` (national, substitute and citizens'), sorted by date.
pub fn national_holidays(year: i32) -> Vec<Holiday> {
    let mut base = proper_holidays(year);
    // Stable sort, then drop clashes: only extrapolated equinoxes (far future) can collide.
    base.sort_by_key(|&(date, _)| date);
    base.dedup_by_key(|&mut (date, _)| date);
    let is_base = |d: NaiveDate| base.binary_search_by_key(&d, |&(date, _)| date).is_ok();

    let mut out: Vec<Holiday> = base
        .iter()
        .map(|&(date, name)| Holiday {
            date,
            name: Cow::Borrowed(name),
            kind: HolidayKind::National,
        })
        .collect();

    // 振替休日. Before 2007: the Monday after a Sunday holiday. From 2007: the first following
    // day that is not itself a national holiday (so 5/3 on a Sunday moves to 5/6).
    // Naming follows the reference table: after the holiday just before the substitute day
    // (こどもの日 for every 5/6), except 2020, which it lists under the Sunday holiday.
    let substitute_start = ymd(SUBSTITUTE_START);
    let mut substitutes: Vec<NaiveDate> = Vec::new();
    for (i, &(date, sunday_name)) in base.iter().enumerate() {
        if date.weekday() != Weekday::Sun || substitute_start.is_none_or(|s| date < s) {
            continue;
        }
        let mut day = date.succ_opt();
        let mut name = sunday_name;
        if year >= RULES_2007 {
            // `base` is sorted and unique, so consecutive holidays are consecutive entries.
            for &(next, next_name) in &base[i + 1..] {
                if Some(next) != day {
                    break;
                }
                name = next_name;
                day = next.succ_opt();
            }
        }
        if year == 2020 {
            name = sunday_name;
        }
        if let Some(d) = day.filter(|&d| !is_base(d) && d.year() == year) {
            substitutes.push(d);
            out.push(Holiday {
                date: d,
                name: Cow::Owned(format!("{name}{SUBSTITUTE_SUFFIX}")),
                kind: HolidayKind::Substitute,
            });
        }
    }

    // 国民の休日: a day whose neighbours are both national holidays. Before 2007 Sundays and
    // substitute days were excluded; from 2007 any day that is not a holiday already.
    let citizens_start = ymd(CITIZENS_START);
    for pair in base.windows(2) {
        let (prev, next) = (pair[0].0, pair[1].0);
        let Some(mid) = prev.succ_opt() else { continue };
        if mid.succ_opt() != Some(next) || citizens_start.is_none_or(|s| mid < s) {
            continue;
        }
        let taken = substitutes.contains(&mid);
        let excluded = year < RULES_2007 && mid.weekday() == Weekday::Sun;
        if !taken && !excluded {
            out.push(Holiday {
                date: mid,
                name: Cow::Borrowed(CITIZENS_NAME),
                kind: HolidayKind::Citizens,
            });
        }
    }

    out.sort_by_key(|h| h.date);
    out
}

/// The holiday on `date`, if any. Computes that year's holidays (a few dozen dates).
pub fn national_holiday(date: NaiveDate) -> Option<Holiday> {
    national_holidays(date.year())
        .into_iter()
        .find(|h| h.date == date)
}

/// The 国民の祝日 of a year plus the one-off days, which count as 祝日 for the substitute and
/// citizens' rules (the 2019 law says so explicitly; for the others it never mattered).
fn proper_holidays(year: i32) -> Vec<(NaiveDate, &'static str)> {
    let Some(law_start) = ymd(LAW_START) else {
        return Vec::new();
    };
    if year < law_start.year() {
        return Vec::new();
    }
    let on = |m: u32, d: u32| NaiveDate::from_ymd_opt(year, m, d);
    let monday = |m: u32, n: u8| NaiveDate::from_weekday_of_month_opt(year, m, Weekday::Mon, n);
    let mut days: Vec<(Option<NaiveDate>, &'static str)> = vec![
        (on(1, 1), "元日"),
        (
            if year >= 2000 {
                monday(1, 2)
            } else {
                on(1, 15)
            },
            "成人の日",
        ),
        (on(3, vernal_equinox_day(year)), "春分の日"),
        (on(5, 3), "憲法記念日"),
        (on(5, 5), "こどもの日"),
        (on(9, autumnal_equinox_day(year)), "秋分の日"),
        (on(11, 3), "文化の日"),
        (on(11, 23), "勤労感謝の日"),
    ];
    if year >= 1967 {
        days.push((on(2, 11), "建国記念の日"));
    }
    match year {
        ..=1988 => days.push((on(4, 29), "天皇誕生日")),
        1989..=2018 => days.push((on(12, 23), "天皇誕生日")),
        2019 => {}
        2020.. => days.push((on(2, 23), "天皇誕生日")),
    }
    match year {
        1989..=2006 => days.push((on(4, 29), "みどりの日")),
        2007.. => {
            days.push((on(4, 29), "昭和の日"));
            days.push((on(5, 4), "みどりの日"));
        }
        _ => {}
    }
    // 海の日, 山の日 and スポーツの日 moved for the Tokyo Olympics in 2020 and 2021.
    match year {
        1996..=2002 => days.push((on(7, 20), "海の日")),
        2020 => days.push((on(7, 23), "海の日")),
        2021 => days.push((on(7, 22), "海の日")),
        2003.. => days.push((monday(7, 3), "海の日")),
        _ => {}
    }
    match year {
        2020 => days.push((on(8, 10), "山の日")),
        2021 => days.push((on(8, 8), "山の日")),
        2016.. => days.push((on(8, 11), "山の日")),
        _ => {}
    }
    match year {
        1966..=2002 => days.push((on(9, 15), "敬老の日")),
        2003.. => days.push((monday(9, 3), "敬老の日")),
        _ => {}
    }
    match year {
        1966..=1999 => days.push((on(10, 10), "体育の日")),
        2000..=2018 => days.push((monday(10, 2), "体育の日")),
        2019 => days.push((monday(10, 2), "体育の日（スポーツの日）")),
        2020 => days.push((on(7, 24), "スポーツの日")),
        2021 => days.push((on(7, 23), "スポーツの日")),
        2022.. => days.push((monday(10, 2), "スポーツの日")),
        _ => {}
    }
    // One-off days declared by special laws.
    match year {
        1959 => days.push((on(4, 10), "結婚の儀")),
        1989 => days.push((on(2, 24), "大喪の礼")),
        1990 => days.push((on(11, 12), "即位礼正殿の儀")),
        1993 => days.push((on(6, 9), "結婚の儀")),
        2019 => {
            days.push((on(5, 1), "休日（祝日扱い）"));
            days.push((on(10, 22), "休日（祝日扱い）"));
        }
        _ => {}
    }
    days.into_iter()
        .filter_map(|(d, name)| d.map(|d| (d, name)))
        .filter(|&(d, _)| d >= law_start)
        .collect()
}

/// Day of March of 春分の日, by the usual formula (exact arithmetic in millionths of a day).
fn vernal_equinox_day(year: i32) -> u32 {
    let c = match year {
        ..=1979 => 20_835_700,
        1980..=2099 => 20_843_100,
        2100.. => 21_851_000,
    };
    equinox_day(year, c)
}

/// Day of September of 秋分の日, by the usual formula.
fn autumnal_equinox_day(year: i32) -> u32 {
    let c = match year {
        ..=1979 => 23_258_800,
        1980..=2099 => 23_248_800,
        2100.. => 24_248_800,
    };
    equinox_day(year, c)
}

/// int(C + 0.242194 (y − 1980) − int((y − L) / 4)), L = 1983 before 1980, else 1980. The
/// inner `int` truncates toward zero as in the published formula (it matters for 1973–1978).
fn equinox_day(year: i32, c_micro: i64) -> u32 {
    let y = i64::from(year);
    let leap_base = if year <= 1979 { 1983 } else { 1980 };
    let micro = c_micro + 242_194 * (y - 1980) - 1_000_000 * ((y - leap_base) / 4);
    // An out-of-range result only happens for absurd years; from_ymd_opt then rejects it.
    u32::try_from(micro.div_euclid(1_000_000)).unwrap_or(0)
}

fn ymd((y, m, d): (i32, u32, u32)) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::path::{Path, PathBuf};

    const FIRST_YEAR: i32 = 1973;
    const LAST_YEAR: i32 = 2050;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn names(year: i32) -> Vec<(NaiveDate, String, HolidayKind)> {
        national_holidays(year)
            .into_iter()
            .map(|h| (h.date, h.name.into_owned(), h.kind))
            .collect()
    }

    fn name_on(date: NaiveDate) -> Option<String> {
        national_holiday(date).map(|h| h.name.into_owned())
    }

    /// Reads a `date,name` table, keeping FIRST_YEAR..=LAST_YEAR.
    fn read_table(path: &Path) -> BTreeMap<NaiveDate, String> {
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some("date,name"),
            "header of {}",
            path.display()
        );
        let mut table = BTreeMap::new();
        for (i, line) in lines.enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let (date, name) = line
                .split_once(',')
                .unwrap_or_else(|| panic!("{}:{}: no comma", path.display(), i + 2));
            let date = NaiveDate::parse_from_str(date, "%Y-%m-%d")
                .unwrap_or_else(|e| panic!("{}:{}: {e}", path.display(), i + 2));
            if (FIRST_YEAR..=LAST_YEAR).contains(&date.year()) {
                let dup = table.insert(date, name.to_owned());
                assert!(dup.is_none(), "{}: {date} listed twice", path.display());
            }
        }
        table
    }

    /// Asserts that the computed holidays equal the table on every date; returns the count.
    fn assert_matches(table: &BTreeMap<NaiveDate, String>) -> usize {
        let computed: BTreeMap<NaiveDate, String> = (FIRST_YEAR..=LAST_YEAR)
            .flat_map(national_holidays)
            .map(|h| (h.date, h.name.into_owned()))
            .collect();
        let mut diffs = Vec::new();
        for date in table.keys().chain(computed.keys()) {
            let (want, got) = (table.get(date), computed.get(date));
            if want != got && !diffs.iter().any(|(d, _, _)| d == date) {
                diffs.push((*date, want.cloned(), got.cloned()));
            }
        }
        assert!(
            diffs.is_empty(),
            "{} differences (date, reference, computed): {diffs:?}",
            diffs.len()
        );
        table.len()
    }

    #[test]
    fn matches_repo_fixture_1973_2050() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/holidays/jp_holidays.csv");
        let table = read_table(&path);
        // Guard against an empty or truncated fixture: every year has at least 12 holidays.
        assert!(table.len() > 12 * (LAST_YEAR - FIRST_YEAR + 1) as usize);
        let n = assert_matches(&table);
        println!("compared {n} holiday dates {FIRST_YEAR}-{LAST_YEAR} (repo fixture)");
    }

    #[test]
    fn matches_reference_corpus_when_present() {
        let Some(dir) = std::env::var_os("MADOGUCHI_CORPUS") else {
            println!("skipped: MADOGUCHI_CORPUS is not set");
            return;
        };
        let dir = PathBuf::from(dir);
        // A relative corpus path is relative to the crate, not to wherever the test runs.
        let dir = if dir.is_relative() {
            Path::new(env!("CARGO_MANIFEST_DIR")).join(dir)
        } else {
            dir
        };
        let path = dir.join("holidays/jp_holidays.csv");
        assert!(
            path.is_file(),
            "MADOGUCHI_CORPUS is set but {} is missing",
            path.display()
        );
        let n = assert_matches(&read_table(&path));
        println!(
            "compared {n} holiday dates {FIRST_YEAR}-{LAST_YEAR} (corpus {})",
            path.display()
        );
    }

    #[test]
    fn sorted_and_unique_for_many_years() {
        for year in 1940..=2200 {
            let hs = national_holidays(year);
            assert!(hs.windows(2).all(|w| w[0].date < w[1].date), "{year}");
            assert!(hs.iter().all(|h| h.date.year() == year), "{year}");
        }
    }

    #[test]
    fn emperors_birthday_moves() {
        assert_eq!(name_on(d(1988, 4, 29)).as_deref(), Some("天皇誕生日"));
        assert_eq!(name_on(d(1989, 4, 29)).as_deref(), Some("みどりの日"));
        assert_eq!(name_on(d(2018, 12, 23)).as_deref(), Some("天皇誕生日"));
        assert_eq!(name_on(d(2019, 12, 23)), None);
        assert!(!names(2019).iter().any(|(_, n, _)| n == "天皇誕生日"));
        assert_eq!(name_on(d(2020, 2, 23)).as_deref(), Some("天皇誕生日"));
    }

    #[test]
    fn greenery_and_showa_day() {
        assert_eq!(name_on(d(2006, 4, 29)).as_deref(), Some("みどりの日"));
        assert_eq!(name_on(d(2006, 5, 4)).as_deref(), Some("休日"));
        assert_eq!(name_on(d(2007, 4, 29)).as_deref(), Some("昭和の日"));
        assert_eq!(name_on(d(2007, 5, 4)).as_deref(), Some("みどりの日"));
    }

    #[test]
    fn happy_mondays() {
        assert_eq!(name_on(d(1999, 1, 15)).as_deref(), Some("成人の日"));
        assert_eq!(name_on(d(2000, 1, 10)).as_deref(), Some("成人の日"));
        assert_eq!(
            name_on(d(1999, 10, 11)).as_deref(),
            Some("体育の日 振替休日")
        );
        assert_eq!(name_on(d(2000, 10, 9)).as_deref(), Some("体育の日"));
        assert_eq!(name_on(d(1995, 7, 20)), None);
        assert_eq!(name_on(d(1996, 7, 20)).as_deref(), Some("海の日"));
        assert_eq!(name_on(d(2003, 7, 21)).as_deref(), Some("海の日"));
        assert_eq!(name_on(d(2002, 9, 15)).as_deref(), Some("敬老の日"));
        assert_eq!(name_on(d(2003, 9, 15)).as_deref(), Some("敬老の日"));
        assert_eq!(name_on(d(2004, 9, 20)).as_deref(), Some("敬老の日"));
        assert_eq!(name_on(d(2015, 8, 11)), None);
        assert_eq!(name_on(d(2016, 8, 11)).as_deref(), Some("山の日"));
        assert_eq!(
            name_on(d(2019, 10, 14)).as_deref(),
            Some("体育の日（スポーツの日）")
        );
        assert_eq!(name_on(d(2022, 10, 10)).as_deref(), Some("スポーツの日"));
    }

    #[test]
    fn equinoxes() {
        assert_eq!(name_on(d(2026, 3, 20)).as_deref(), Some("春分の日"));
        assert_eq!(name_on(d(2026, 9, 23)).as_deref(), Some("秋分の日"));
        assert_eq!(name_on(d(2012, 9, 22)).as_deref(), Some("秋分の日"));
        assert_eq!(name_on(d(1979, 3, 21)).as_deref(), Some("春分の日"));
        assert_eq!(vernal_equinox_day(2099), 20);
        assert_eq!(autumnal_equinox_day(2099), 23);
    }

    #[test]
    fn substitute_rules_before_and_after_2007() {
        // First substitute ever: 1973-04-29 (Sunday) → Monday; 1973-02-11 was before the law.
        assert_eq!(
            name_on(d(1973, 4, 30)).as_deref(),
            Some("天皇誕生日 振替休日")
        );
        assert_eq!(name_on(d(1973, 2, 12)), None);
        // From 2007, 5/3 on a Sunday moves past 5/4 and 5/5 to 5/6.
        let h = national_holiday(d(2020, 5, 6)).unwrap();
        assert_eq!(h.name, "憲法記念日 振替休日");
        assert_eq!(h.kind, HolidayKind::Substitute);
        // The reference names a 5/6 substitute after こどもの日, 2020 excepted.
        assert_eq!(
            name_on(d(2008, 5, 6)).as_deref(),
            Some("こどもの日 振替休日")
        );
        assert_eq!(
            name_on(d(2026, 5, 6)).as_deref(),
            Some("こどもの日 振替休日")
        );
        // 1992-05-03 Sunday → the Monday is a substitute, not a citizens' holiday.
        assert_eq!(
            name_on(d(1992, 5, 4)).as_deref(),
            Some("憲法記念日 振替休日")
        );
    }

    #[test]
    fn citizens_holidays() {
        // Before 2007 a Sunday between two holidays stays a plain Sunday.
        assert_eq!(name_on(d(1986, 5, 4)), None);
        assert_eq!(name_on(d(1988, 5, 4)).as_deref(), Some("休日"));
        // Saturdays did count.
        assert_eq!(name_on(d(1996, 5, 4)).as_deref(), Some("休日"));
        // Silver week: 敬老の日 Monday, 秋分の日 Wednesday.
        let h = national_holiday(d(2026, 9, 22)).unwrap();
        assert_eq!((h.name.as_ref(), h.kind), ("休日", HolidayKind::Citizens));
    }

    #[test]
    fn one_off_days() {
        assert_eq!(name_on(d(1959, 4, 10)).as_deref(), Some("結婚の儀"));
        assert_eq!(name_on(d(1989, 2, 24)).as_deref(), Some("大喪の礼"));
        assert_eq!(name_on(d(1990, 11, 12)).as_deref(), Some("即位礼正殿の儀"));
        assert_eq!(name_on(d(1993, 6, 9)).as_deref(), Some("結婚の儀"));
        let golden_2019: Vec<_> = (27..=30)
            .map(|day| d(2019, 4, day))
            .chain((1..=6).map(|day| d(2019, 5, day)))
            .map(|date| name_on(date).unwrap_or_default())
            .collect();
        assert_eq!(
            golden_2019,
            [
                "", // Saturday
                "", // Sunday
                "昭和の日",
                "休日",
                "休日（祝日扱い）",
                "休日",
                "憲法記念日",
                "みどりの日",
                "こどもの日",
                "こどもの日 振替休日",
            ]
        );
        assert_eq!(
            name_on(d(2019, 10, 22)).as_deref(),
            Some("休日（祝日扱い）")
        );
    }

    #[test]
    fn olympic_moves() {
        let summer = |y| {
            names(y)
                .into_iter()
                .filter(|(date, _, _)| (7..=10).contains(&date.month()))
                .map(|(date, name, _)| (date, name))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            summer(2020),
            [
                (d(2020, 7, 23), "海の日".to_owned()),
                (d(2020, 7, 24), "スポーツの日".to_owned()),
                (d(2020, 8, 10), "山の日".to_owned()),
                (d(2020, 9, 21), "敬老の日".to_owned()),
                (d(2020, 9, 22), "秋分の日".to_owned()),
            ]
        );
        assert_eq!(name_on(d(2021, 7, 22)).as_deref(), Some("海の日"));
        assert_eq!(name_on(d(2021, 7, 23)).as_deref(), Some("スポーツの日"));
        assert_eq!(name_on(d(2021, 8, 9)).as_deref(), Some("山の日 振替休日"));
        assert_eq!(name_on(d(2021, 10, 11)), None);
    }

    #[test]
    fn outside_the_verified_range() {
        assert!(national_holidays(1947).is_empty());
        let y1948: Vec<_> = names(1948).into_iter().map(|(_, n, _)| n).collect();
        assert_eq!(y1948, ["秋分の日", "文化の日", "勤労感謝の日"]);
        // Past 2099 the 2100–2150 formula: 2100-03-20 and 2100-09-23.
        assert_eq!(name_on(d(2100, 3, 20)).as_deref(), Some("春分の日"));
        assert_eq!(name_on(d(2100, 9, 23)).as_deref(), Some("秋分の日"));
        // Absurd years must not panic.
        for year in [i32::MIN, -1, 0, 262_143, i32::MAX] {
            let _ = national_holidays(year);
        }
        assert_eq!(name_on(NaiveDate::MAX), None);
        assert_eq!(name_on(NaiveDate::MIN), None);
    }
}
