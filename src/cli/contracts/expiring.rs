//! `madoguchi contracts expiring --within 60d [--on D] [--json]`: contracts whose support
//! period ends within the window, and lapsed ones whose last day for a plain renewal (R11)
//! falls in it, soonest first, with the next reminder the desk will send each.

use chrono::{DateTime, Days, NaiveDate, Utc};
use madoguchi::config::Config;
use madoguchi::core::calendar::BusinessCalendar;
use madoguchi::core::contract::{periods_from_orders, renewal_deadline};
use madoguchi::core::reminders::{
    contract_schedule, next_contract_reminder_at, opening_on_or_after,
};
use madoguchi::store::Store;

/// One contract coming up.
#[derive(Debug, serde::Serialize)]
pub struct Expiring {
    pub contract_id: String,
    pub customer: String,
    /// `ends` (the period in force ends in the window) or `renewal_deadline` (it ended; the
    /// last day of a plain renewal is in the window).
    pub what: &'static str,
    pub period_start: NaiveDate,
    pub period_end: NaiveDate,
    pub renewal_deadline: NaiveDate,
    /// Days from the date asked about to the day that matters (`period_end` or the deadline).
    pub days_left: i64,
    pub reminders: bool,
    pub next_reminder: Option<NextReminder>,
}

#[derive(Debug, serde::Serialize)]
pub struct NextReminder {
    pub kind: &'static str,
    pub days: Option<u32>,
    pub at: DateTime<Utc>,
}

/// `60d` or `60`: a number of days.
pub fn parse_within(text: &str) -> anyhow::Result<u64> {
    let digits = text.trim().trim_end_matches(['d', 'D']);
    match digits.parse::<u64>() {
        Ok(n) if n <= 3660 => Ok(n),
        _ => anyhow::bail!("--within {text:?}: expected a number of days, e.g. 60d (at most 3660)"),
    }
}

pub fn expiring(
    store: &Store,
    config: &Config,
    today: NaiveDate,
    within: u64,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<Expiring>> {
    let calendar = BusinessCalendar::new(config.calendar.clone())?;
    let horizon = today
        .checked_add_days(Days::new(within))
        .unwrap_or(NaiveDate::MAX);
    let sent = store.contract_reminder_keys()?;
    let mut rows = Vec::new();
    for stored in store.contracts()? {
        let Ok(periods) = periods_from_orders(&stored.orders) else {
            continue;
        };
        let Some(period) = periods
            .periods
            .iter()
            .map(|p| p.period)
            .max_by_key(|p| p.end)
        else {
            continue;
        };
        let deadline = renewal_deadline(period.end);
        let (what, day) = if (today..=horizon).contains(&period.end) {
            ("ends", period.end)
        } else if period.end < today && (today..=horizon).contains(&deadline) {
            ("renewal_deadline", deadline)
        } else {
            continue;
        };
        let c = &stored.contract;
        let next_reminder = c
            .reminders
            .then(|| {
                let schedule = contract_schedule(&periods, &config.reminders);
                let at =
                    next_contract_reminder_at(&calendar, &schedule, &c.contract_id, &sent, now)?;
                let r = schedule
                    .iter()
                    .find(|r| opening_on_or_after(&calendar, r.nominal) == Some(at))?;
                Some(NextReminder {
                    kind: r.kind.code(),
                    days: r.kind.days(),
                    at,
                })
            })
            .flatten();
        rows.push(Expiring {
            contract_id: c.contract_id.clone(),
            customer: c.customer.clone(),
            what,
            period_start: period.start,
            period_end: period.end,
            renewal_deadline: deadline,
            days_left: (day - today).num_days(),
            reminders: c.reminders,
            next_reminder,
        });
    }
    rows.sort_by(|a, b| {
        a.days_left
            .cmp(&b.days_left)
            .then(a.contract_id.cmp(&b.contract_id))
    });
    Ok(rows)
}

/// The human listing.
pub fn text(rows: &[Expiring], today: NaiveDate, within: u64, tz: chrono_tz::Tz) -> String {
    if rows.is_empty() {
        return format!(
            "nothing ends or reaches its renewal deadline from {today} within {within} days\n"
        );
    }
    let mut t = String::new();
    for r in rows {
        let what = match r.what {
            "ends" => format!(
                "period {} to {} ends in {} days",
                r.period_start, r.period_end, r.days_left
            ),
            _ => format!(
                "ended {}; plain renewal until {} ({} days), then re-continuation",
                r.period_end, r.renewal_deadline, r.days_left
            ),
        };
        let next = match (&r.next_reminder, r.reminders) {
            (_, false) => "reminders off".to_string(),
            (None, true) => "no reminder left".to_string(),
            (Some(n), true) => {
                let kind = match (n.kind, n.days) {
                    ("renewal", Some(d)) => format!("renewal reminder ({d} days before)"),
                    ("lapsed", _) => "lapse notice".to_string(),
                    _ => format!(
                        "re-continuation warning ({} days before)",
                        n.days.unwrap_or(0)
                    ),
                };
                format!(
                    "next: {kind} at {}",
                    n.at.with_timezone(&tz).format("%Y-%m-%d %H:%M")
                )
            }
        };
        t.push_str(&format!(
            "{:<12} {:<30} {what}; {next}\n",
            r.contract_id, r.customer
        ));
    }
    t
}
