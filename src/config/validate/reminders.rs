//! `[reminders]` and `[sla]`: how far ahead the desk reminds customers of their support's end
//! (R10/R11), whether staff get the morning digest, and how long a ticket may wait for staff.

use super::super::model::{
    DEFAULT_RECONTINUATION_DAYS, DEFAULT_RENEWAL_DAYS, DEFAULT_SLA_HOURS, Reminders, Sla,
};
use super::super::raw::{RawReminders, RawSla};
use super::{Problems, int_field};

/// A reminder more than a year ahead would name a period not yet known.
const MAX_DAYS: u32 = 365;
/// A week of business hours at most: beyond it a reminder helps no one.
const MAX_SLA_HOURS: u32 = 24 * 7;

pub(super) fn validate_reminders(raw: &RawReminders, p: &mut Problems) -> Reminders {
    let mut renewal_days = match &raw.renewal_days {
        None => DEFAULT_RENEWAL_DAYS.to_vec(),
        Some(list) => {
            let mut days = Vec::with_capacity(list.len());
            for &n in list {
                match u32::try_from(n) {
                    Ok(d) if (1..=MAX_DAYS).contains(&d) => days.push(d),
                    _ => p.push(
                        "reminders.renewal_days",
                        format!(
                            "{n} must be between 1 and {MAX_DAYS} (days before the period's \
                             last day)"
                        ),
                    ),
                }
            }
            days
        }
    };
    renewal_days.sort_unstable_by(|a, b| b.cmp(a));
    renewal_days.dedup();
    Reminders {
        renewal_days,
        lapsed: raw.lapsed.unwrap_or(true),
        recontinuation_days: int_field(
            p,
            "reminders.recontinuation_days",
            raw.recontinuation_days,
            DEFAULT_RECONTINUATION_DAYS,
            0,
            MAX_DAYS,
        ),
        digest: raw.digest.unwrap_or(true),
    }
}

pub(super) fn validate_sla(raw: &RawSla, p: &mut Problems) -> Sla {
    let hours = |key: &str, value: Option<i64>, p: &mut Problems| {
        i64::from(int_field(
            p,
            key,
            value,
            DEFAULT_SLA_HOURS,
            0,
            MAX_SLA_HOURS,
        )) * 60
    };
    Sla {
        first_response_minutes: hours("sla.first_response", raw.first_response, p),
        next_response_minutes: hours("sla.next_response", raw.next_response, p),
    }
}
