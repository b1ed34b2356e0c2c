//! Calendar dates as people write them everywhere the desk reads one (config, CSV files, the
//! command line): exactly `YYYY-MM-DD`. chrono's `%Y-%m-%d` alone also takes `2026-3-5` and
//! signed or longer years, which in a file is far more often a typo than a meaning.

use chrono::NaiveDate;

/// Why a text is not a date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DateError {
    /// Not of the shape `YYYY-MM-DD` (ten characters, digits and two dashes).
    #[error("expected a date YYYY-MM-DD")]
    Shape,
    /// The right shape, but no such day (`2026-02-30`, month 13).
    #[error("no such date")]
    NoSuchDate,
}

/// Parses exactly `YYYY-MM-DD`; no surrounding space (callers trim what they read).
pub fn parse_ymd(text: &str) -> Result<NaiveDate, DateError> {
    let b = text.as_bytes();
    let shape = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shape {
        return Err(DateError::Shape);
    }
    let num = |from: usize, to: usize| {
        b[from..to]
            .iter()
            .fold(0u32, |n, d| n * 10 + u32::from(d - b'0'))
    };
    let year = i32::try_from(num(0, 4)).map_err(|_| DateError::Shape)?;
    NaiveDate::from_ymd_opt(year, num(5, 7), num(8, 10)).ok_or(DateError::NoSuchDate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_yyyy_mm_dd() {
        assert_eq!(
            parse_ymd("2026-03-05"),
            Ok(NaiveDate::from_ymd_opt(2026, 3, 5).unwrap())
        );
        assert_eq!(
            parse_ymd("0001-01-01"),
            Ok(NaiveDate::from_ymd_opt(1, 1, 1).unwrap())
        );
        for bad in [
            "2026-3-5",
            "2026-03-5",
            "26-03-05",
            "+2026-03-05",
            "12026-03-05",
            "2026/03/05",
            " 2026-03-05",
            "2026-03-05 ",
            "２０２６-03-05",
            "",
        ] {
            assert_eq!(parse_ymd(bad), Err(DateError::Shape), "{bad:?}");
        }
        for missing in ["2026-02-30", "2026-13-01", "2026-00-10", "2026-01-00"] {
            assert_eq!(parse_ymd(missing), Err(DateError::NoSuchDate), "{missing}");
        }
    }
}
