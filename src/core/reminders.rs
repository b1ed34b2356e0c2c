//! The desk acting ahead of time (issue 13), pure: which renewal reminders a contract is owed
//! (R10/R11), which tickets have waited too long for staff (`[sla]`, business time of R5), and
//! whether the morning digest is due. Each reminder has a `key` naming what it is for; the
//! shell records the key with the queued mail, so a reminder goes out once across passes and
//! restarts. Letters are in `reminders/letters.rs`.

pub mod letters;
#[cfg(test)]
mod tests;

use std::collections::HashSet;

use chrono::{DateTime, Days, NaiveDate, TimeZone, Utc};

use crate::core::calendar::BusinessCalendar;
use crate::core::contract::{ContractPeriods, SupportPeriod, renewal_deadline};
use crate::core::ticket::TicketState;

/// `[reminders]`: what the desk reminds customers of, and whether staff get the digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reminders {
    /// Days before a period's last day, largest first, no duplicates.
    pub renewal_days: Vec<u32>,
    pub lapsed: bool,
    /// 0: no re-continuation warning.
    pub recontinuation_days: u32,
    pub digest: bool,
}

impl Default for Reminders {
    fn default() -> Self {
        Reminders {
            renewal_days: DEFAULT_RENEWAL_DAYS.to_vec(),
            lapsed: true,
            recontinuation_days: DEFAULT_RECONTINUATION_DAYS,
            digest: true,
        }
    }
}

pub const DEFAULT_RENEWAL_DAYS: [u32; 3] = [60, 30, 7];
pub const DEFAULT_RECONTINUATION_DAYS: u32 = 30;

/// `[sla]`: how long a ticket may wait for staff, in business minutes; 0 turns that reminder
/// off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sla {
    pub first_response_minutes: i64,
    pub next_response_minutes: i64,
}

pub const DEFAULT_SLA_HOURS: u32 = 8;

impl Default for Sla {
    fn default() -> Self {
        Sla {
            first_response_minutes: i64::from(DEFAULT_SLA_HOURS) * 60,
            next_response_minutes: i64::from(DEFAULT_SLA_HOURS) * 60,
        }
    }
}

/// What a contract's reminder is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContractReminderKind {
    /// `days` before the period's last day: renew by then and support continues (R10).
    Renewal { days: u32 },
    /// The day after the period ended: support stopped; a plain renewal is still accepted
    /// until the deadline (R11).
    Lapsed,
    /// `days` before the last day a plain renewal is accepted: after it, re-continuation
    /// (再継続年間サポート, R11).
    Recontinuation { days: u32 },
}

impl ContractReminderKind {
    /// The `reminders.kind` column.
    pub fn code(self) -> &'static str {
        match self {
            ContractReminderKind::Renewal { .. } => "renewal",
            ContractReminderKind::Lapsed => "lapsed",
            ContractReminderKind::Recontinuation { .. } => "recontinuation",
        }
    }

    /// The `reminders.days` column.
    pub fn days(self) -> Option<u32> {
        match self {
            ContractReminderKind::Renewal { days }
            | ContractReminderKind::Recontinuation { days } => Some(days),
            ContractReminderKind::Lapsed => None,
        }
    }
}

/// One reminder of a contract's period in force: the period, when the rules say it is due
/// (`nominal`, a date in the desk's timezone) and the last day it still makes sense.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContractReminder {
    pub kind: ContractReminderKind,
    /// The contract's latest period: the one whose end the reminders are about.
    pub period: SupportPeriod,
    pub nominal: NaiveDate,
    /// After this day the reminder would say something no longer true.
    pub valid_until: NaiveDate,
    /// The last day a plain renewal is accepted (R11): `period.end` + 1 year.
    pub renewal_deadline: NaiveDate,
}

impl ContractReminder {
    /// What the reminder is for, the same across passes: `renewal:C-1001:2026-03-31:60`.
    pub fn key(&self, contract_id: &str) -> String {
        let end = self.period.end;
        match self.kind {
            ContractReminderKind::Renewal { days } => format!("renewal:{contract_id}:{end}:{days}"),
            ContractReminderKind::Lapsed => format!("lapsed:{contract_id}:{end}"),
            ContractReminderKind::Recontinuation { days } => {
                format!("recontinuation:{contract_id}:{end}:{days}")
            }
        }
    }
}

/// The reminders of a contract's latest period, by nominal date. A renewal order moves the
/// latest period on, so the old period's reminders are simply no longer asked for.
pub fn contract_schedule(periods: &ContractPeriods, settings: &Reminders) -> Vec<ContractReminder> {
    let Some(period) = periods
        .periods
        .iter()
        .map(|p| p.period)
        .max_by_key(|p| p.end)
    else {
        return Vec::new();
    };
    let end = period.end;
    let deadline = renewal_deadline(end);
    let mut schedule = Vec::new();
    for &days in &settings.renewal_days {
        if let Some(nominal) = end.checked_sub_days(Days::new(days.into()))
            // A period shorter than the reminder (a certificate's) is not reminded before it
            // starts: the previous period was in force then.
            && nominal >= period.start
        {
            schedule.push(ContractReminder {
                kind: ContractReminderKind::Renewal { days },
                period,
                nominal,
                valid_until: end,
                renewal_deadline: deadline,
            });
        }
    }
    if settings.lapsed
        && let Some(nominal) = end.succ_opt()
    {
        schedule.push(ContractReminder {
            kind: ContractReminderKind::Lapsed,
            period,
            nominal,
            valid_until: deadline,
            renewal_deadline: deadline,
        });
    }
    let days = settings.recontinuation_days;
    if days > 0
        && let Some(nominal) = deadline.checked_sub_days(Days::new(days.into()))
    {
        schedule.push(ContractReminder {
            kind: ContractReminderKind::Recontinuation { days },
            period,
            // Never before the period ended: the lapse notice comes first.
            nominal: nominal.max(end.succ_opt().unwrap_or(end)),
            valid_until: deadline,
            renewal_deadline: deadline,
        });
    }
    schedule.sort_by_key(|r| r.nominal);
    schedule
}

/// The first opening of a business day on or after `date` (the desk's timezone): when a
/// reminder nominally due on `date` goes out.
pub fn opening_on_or_after(calendar: &BusinessCalendar, date: NaiveDate) -> Option<DateTime<Utc>> {
    let midnight = calendar
        .timezone()
        .from_local_datetime(&date.and_time(chrono::NaiveTime::MIN))
        .earliest()?;
    Some(
        calendar
            .next_open(midnight.with_timezone(&Utc))
            .with_timezone(&Utc),
    )
}

/// The reminder a contract is owed at `now`: of those whose opening has come and that are
/// still true today, the latest; none when it, or a later one, was already sent, and none
/// while the desk is closed (a reminder overdue from a time the desk was down goes out at the
/// next opening, never at night). A desk that was down (or a contract imported late) sends the
/// one reminder that fits the day, never a burst of stale ones.
pub fn contract_reminder_owed(
    calendar: &BusinessCalendar,
    schedule: &[ContractReminder],
    contract_id: &str,
    sent: &HashSet<String>,
    now: DateTime<Utc>,
) -> Option<ContractReminder> {
    if !calendar.status(now).open {
        return None;
    }
    let today = now.with_timezone(&calendar.timezone()).date_naive();
    let position = schedule.iter().rposition(|r| {
        today <= r.valid_until
            && opening_on_or_after(calendar, r.nominal).is_some_and(|at| at <= now)
    })?;
    if schedule[position..]
        .iter()
        .any(|r| sent.contains(&r.key(contract_id)))
    {
        return None;
    }
    Some(schedule[position])
}

/// When the next reminder of `schedule` falls due after `now`: the first after the last one
/// sent (those before it are superseded), at the desk's next opening when it is overdue, and
/// only while it is still true then.
pub fn next_contract_reminder_at(
    calendar: &BusinessCalendar,
    schedule: &[ContractReminder],
    contract_id: &str,
    sent: &HashSet<String>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let after_sent = schedule
        .iter()
        .rposition(|r| sent.contains(&r.key(contract_id)))
        .map_or(0, |i| i + 1);
    let resume = calendar.next_open(now).with_timezone(&Utc);
    let tz = calendar.timezone();
    schedule[after_sent..]
        .iter()
        .filter_map(|r| {
            let at = opening_on_or_after(calendar, r.nominal)?.max(resume);
            (at > now && at.with_timezone(&tz).date_naive() <= r.valid_until).then_some(at)
        })
        .min()
}

/// What a ticket waits on staff for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaffWait {
    /// No staff reply yet since the ticket was accepted.
    FirstResponse,
    /// The customer wrote again after the last staff reply.
    NextResponse,
}

impl StaffWait {
    pub fn code(self) -> &'static str {
        match self {
            StaffWait::FirstResponse => "first_response",
            StaffWait::NextResponse => "next_response",
        }
    }
}

/// A ticket as the staff reminders see it (the shell reads it from the store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketWait {
    pub number: u64,
    pub state: TicketState,
    pub accepted_at: DateTime<Utc>,
    pub first_response_at: Option<DateTime<Utc>>,
    /// The first customer article after the last staff reply, when the customer wrote again.
    pub follow_up_at: Option<DateTime<Utc>>,
}

/// A staff reminder due: which wait, since when, level 1 (at the SLA) or 2 (at twice it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaffReminder {
    pub wait: StaffWait,
    pub since: DateTime<Utc>,
    pub level: u8,
    /// When it fell due (business time from `since`).
    pub due_at: DateTime<Utc>,
    /// The SLA in business minutes.
    pub limit_minutes: i64,
}

impl StaffReminder {
    /// `first_response:42:1`, `next_response:42:2026-11-30T01:00:00Z:2`.
    pub fn key(&self, ticket: u64) -> String {
        match self.wait {
            StaffWait::FirstResponse => format!("first_response:{ticket}:{}", self.level),
            StaffWait::NextResponse => format!(
                "next_response:{ticket}:{}:{}",
                self.since
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                self.level
            ),
        }
    }
}

/// Both levels of the wait a ticket is in, if it waits for staff at all.
pub fn staff_schedule(
    calendar: &BusinessCalendar,
    sla: &Sla,
    t: &TicketWait,
) -> Vec<StaffReminder> {
    if t.state != TicketState::Open {
        return Vec::new();
    }
    let (wait, since, limit) = match (t.first_response_at, t.follow_up_at) {
        (None, _) => (
            StaffWait::FirstResponse,
            t.accepted_at,
            sla.first_response_minutes,
        ),
        (Some(_), Some(follow_up)) => (
            StaffWait::NextResponse,
            follow_up,
            sla.next_response_minutes,
        ),
        (Some(_), None) => return Vec::new(),
    };
    // `[sla] … = 0`: no reminders for this wait.
    if limit <= 0 {
        return Vec::new();
    }
    [1u8, 2]
        .into_iter()
        .filter_map(|level| {
            let due_at = calendar.after_business_minutes(since, limit * i64::from(level))?;
            Some(StaffReminder {
                wait,
                since,
                level,
                due_at,
                limit_minutes: limit,
            })
        })
        .collect()
}

/// The staff reminder a ticket is owed at `now`: the highest level due, unless it (or a
/// higher one) was sent.
pub fn staff_reminder_owed(
    schedule: &[StaffReminder],
    ticket: u64,
    sent: &HashSet<String>,
    now: DateTime<Utc>,
) -> Option<StaffReminder> {
    let position = schedule.iter().rposition(|r| r.due_at <= now)?;
    if schedule[position..]
        .iter()
        .any(|r| sent.contains(&r.key(ticket)))
    {
        return None;
    }
    Some(schedule[position])
}

/// When the next staff reminder of `schedule` not yet sent falls due after `now`.
pub fn next_staff_reminder_at(
    schedule: &[StaffReminder],
    ticket: u64,
    sent: &HashSet<String>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    schedule
        .iter()
        .filter(|r| r.due_at > now && !sent.contains(&r.key(ticket)))
        .map(|r| r.due_at)
        .min()
}

/// The business day whose digest is due at `now`: today, when it is a business day, its
/// first opening has come and the desk is open (a desk started in the evening sends none that
/// day). Whether it was already sent is the shell's `digest:<day>` key.
pub fn digest_day(calendar: &BusinessCalendar, now: DateTime<Utc>) -> Option<NaiveDate> {
    let today = now.with_timezone(&calendar.timezone()).date_naive();
    if !calendar.is_business_day(today) || !calendar.status(now).open {
        return None;
    }
    let opening = opening_on_or_after(calendar, today)?;
    let opened_today = opening.with_timezone(&calendar.timezone()).date_naive() == today;
    (opened_today && opening <= now).then_some(today)
}

/// When the next digest falls due after `now`: the first opening of the next business day
/// (today's, when it is still ahead).
pub fn next_digest_at(calendar: &BusinessCalendar, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let mut day = now.with_timezone(&calendar.timezone()).date_naive();
    for _ in 0..400 {
        if let Some(at) = opening_on_or_after(calendar, day)
            && at > now
        {
            return Some(at);
        }
        day = day.succ_opt()?;
    }
    None
}

/// `d` as `YYYY-MM-DD`.
pub fn day_key(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}
