//! The desk acting ahead of time, in a pass (on the blocking thread): renewal reminders to
//! contracts' contacts, staff reminders on tickets waiting too long, and the morning digest.
//! What is owed is decided by `core::reminders` from the store's facts and `now`; each is
//! queued in one transaction with its `reminders` row, checked again inside it, so it goes out
//! once across passes, crashes and restarts (invariant 4: a crash before the commit leaves
//! nothing, after it the outbox sends it).

use chrono::{DateTime, Duration, Utc};

use super::{DeskError, Shell, lock};
use crate::core::reminders::letters::{
    ContractLetter, Digest, DigestTicket, WaitingLetter, contract_reminder_mail, digest_mail,
    staff_reminder_mail,
};
use crate::core::reminders::{
    ContractReminder, StaffReminder, contract_reminder_owed, contract_schedule, day_key,
    digest_day, next_contract_reminder_at, next_digest_at, next_staff_reminder_at,
    staff_reminder_owed, staff_schedule,
};
use crate::store::reminders::{OpenTicket, ReminderRow};

/// How long a new wait (a ticket opened, a follow-up, a contract imported) may go unseen by
/// the reminders: they look everything over when something falls due, and otherwise at most
/// this often after such events. A wait for staff lasts hours, so a minute changes nothing;
/// looking over thousands of open tickets on every pass of a busy desk would.
const RESCAN_AFTER_EVENTS: Duration = Duration::seconds(60);

/// The last look over the reminders.
#[derive(Debug, Default)]
pub(super) struct ReminderScan {
    at: Option<DateTime<Utc>>,
    next_due: Option<DateTime<Utc>>,
    /// Something happened since that may start a wait.
    dirty: bool,
    /// The store's `data_version` then: another process (the CLI) wrote since when it moved.
    data_version: Option<i64>,
}

impl ReminderScan {
    /// Whether the reminders must be looked over at `now`.
    fn due(&self, now: DateTime<Utc>) -> bool {
        match self.at {
            None => true,
            Some(at) => {
                now < at
                    || self.next_due.is_some_and(|d| d <= now)
                    || (self.dirty && now >= at + RESCAN_AFTER_EVENTS)
            }
        }
    }
}

/// A contract's reminder owed now, with whom it goes to.
struct OwedContract {
    contract_id: String,
    customer: String,
    contacts: Vec<String>,
    reminder: ContractReminder,
}

impl Shell {
    /// Everything owed at `now`, queued; the number of mails queued. `events`: this pass took
    /// mail in or opened tickets. The store is looked over only when something falls due, on
    /// the first pass, or a while after events (see [`RESCAN_AFTER_EVENTS`]).
    pub(super) fn reminder_work(
        &self,
        now: DateTime<Utc>,
        events: bool,
    ) -> Result<usize, DeskError> {
        let version = lock(&self.store).data_version()?;
        {
            let mut scan = lock(&self.reminder_scan);
            scan.dirty |= events || scan.data_version.is_some_and(|v| v != version);
            if !scan.due(now) {
                return Ok(0);
            }
        }
        let queued =
            self.contract_reminders(now)? + self.staff_reminders(now)? + self.digest(now)?;
        let next_due = self.next_reminder_scan(now)?;
        *lock(&self.reminder_scan) = ReminderScan {
            at: Some(now),
            next_due,
            dirty: false,
            data_version: Some(version),
        };
        Ok(queued)
    }

    /// The next moment the reminders must be looked over after `now`: what falls due next, or
    /// a while after events not yet looked at.
    pub(super) fn next_reminder(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, DeskError> {
        let scan = lock(&self.reminder_scan);
        let Some(at) = scan.at else {
            drop(scan);
            return self.next_reminder_scan(now);
        };
        let rescan = scan.dirty.then_some(at + RESCAN_AFTER_EVENTS);
        Ok(scan.next_due.into_iter().chain(rescan).min())
    }

    /// The next moment a reminder or the digest falls due after `now`, from the store.
    fn next_reminder_scan(&self, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, DeskError> {
        let store = lock(&self.store);
        let book = self.current_book(&store)?;
        let sent = store.contract_reminder_keys()?;
        let contracts = book.iter().filter(|c| c.reminders).filter_map(|c| {
            let periods = c.periods.as_ref().ok()?;
            let schedule = contract_schedule(periods, &self.config.reminders);
            next_contract_reminder_at(&self.calendar, &schedule, &c.contract_id, &sent, now)
        });
        // Without anyone to remind, the open tickets are not read at all.
        let (staff_sent, open) = if self.staff_reminders_on() {
            (store.staff_reminder_keys()?, store.open_tickets()?)
        } else {
            Default::default()
        };
        let staff = open.iter().filter_map(|t| {
            let schedule = staff_schedule(&self.calendar, &self.config.sla, &t.wait);
            next_staff_reminder_at(&schedule, t.wait.number, &staff_sent, now)
        });
        let digest = (self.config.reminders.digest && !self.config.desk.notify.is_empty())
            .then(|| next_digest_at(&self.calendar, now))
            .flatten();
        Ok(contracts.chain(staff).chain(digest).min())
    }

    fn contract_reminders(&self, now: DateTime<Utc>) -> Result<usize, DeskError> {
        let store = lock(&self.store);
        let book = self.current_book(&store)?;
        let sent = store.contract_reminder_keys()?;
        let owed: Vec<OwedContract> = book
            .iter()
            .filter(|c| c.reminders)
            .filter_map(|c| {
                let periods = c.periods.as_ref().ok()?;
                let schedule = contract_schedule(periods, &self.config.reminders);
                let reminder =
                    contract_reminder_owed(&self.calendar, &schedule, &c.contract_id, &sent, now)?;
                Some(OwedContract {
                    contract_id: c.contract_id.clone(),
                    customer: c.customer.clone(),
                    contacts: c.contacts.clone(),
                    reminder,
                })
            })
            .collect();
        if owed.is_empty() {
            return Ok(0);
        }
        let today = now.with_timezone(&self.calendar.timezone()).date_naive();
        store.write(|tx| {
            let mut queued = 0;
            for o in &owed {
                let key = o.reminder.key(&o.contract_id);
                if tx.reminder_queued(&key)? {
                    continue;
                }
                let letter = ContractLetter {
                    contract_id: &o.contract_id,
                    customer: &o.customer,
                    contacts: &o.contacts,
                    desk_address: &self.config.desk.address,
                };
                let mail = contract_reminder_mail(&o.reminder, &letter, today);
                let outbox = self.queue(tx, &mail, None, now)?;
                tx.record_reminder(
                    &ReminderRow {
                        key: &key,
                        kind: o.reminder.kind.code(),
                        contract_id: Some(&o.contract_id),
                        period_end: Some(o.reminder.period.end),
                        days: o.reminder.kind.days(),
                        nominal: day_key(o.reminder.nominal),
                        outbox: Some(outbox),
                        ..ReminderRow::default()
                    },
                    now,
                )?;
                tracing::info!(
                    contract = %o.contract_id,
                    reminder = %key,
                    "Queued a renewal reminder."
                );
                queued += 1;
            }
            Ok::<_, DeskError>(queued)
        })
    }

    /// Staff reminders are sent at all: someone to send them to, and an SLA that is not off.
    fn staff_reminders_on(&self) -> bool {
        let sla = &self.config.sla;
        !self.config.desk.notify.is_empty()
            && (sla.first_response_minutes > 0 || sla.next_response_minutes > 0)
    }

    fn staff_reminders(&self, now: DateTime<Utc>) -> Result<usize, DeskError> {
        if !self.staff_reminders_on() {
            return Ok(0);
        }
        let store = lock(&self.store);
        let sent = store.staff_reminder_keys()?;
        let owed: Vec<(OpenTicket, StaffReminder)> = store
            .open_tickets()?
            .into_iter()
            .filter_map(|t| {
                let schedule = staff_schedule(&self.calendar, &self.config.sla, &t.wait);
                let r = staff_reminder_owed(&schedule, t.wait.number, &sent, now)?;
                Some((t, r))
            })
            .collect();
        if owed.is_empty() {
            return Ok(0);
        }
        store.write(|tx| {
            let mut queued = 0;
            for (t, r) in &owed {
                let key = r.key(t.wait.number);
                if tx.reminder_queued(&key)? {
                    continue;
                }
                let letter = WaitingLetter {
                    prefix: &self.config.desk.ticket_prefix,
                    ticket: t.wait.number,
                    subject: &t.subject,
                    customer: &t.customer,
                    notify: &self.config.desk.notify,
                    desk_address: &self.config.desk.address,
                    timezone: self.calendar.timezone(),
                };
                let waited = self.calendar.business_duration(r.since, now);
                let mail = staff_reminder_mail(r, &letter, waited);
                let outbox = self.queue(tx, &mail, None, now)?;
                tx.record_reminder(
                    &ReminderRow {
                        key: &key,
                        kind: r.wait.code(),
                        ticket: Some(t.wait.number),
                        level: Some(r.level),
                        waiting_since: Some(r.since),
                        nominal: crate::store::tickets::time_text(r.due_at),
                        outbox: Some(outbox),
                        ..ReminderRow::default()
                    },
                    now,
                )?;
                tracing::info!(ticket = t.wait.number, reminder = %key, "Queued a staff reminder.");
                queued += 1;
            }
            Ok::<_, DeskError>(queued)
        })
    }

    fn digest(&self, now: DateTime<Utc>) -> Result<usize, DeskError> {
        if !self.config.reminders.digest || self.config.desk.notify.is_empty() {
            return Ok(0);
        }
        let Some(day) = digest_day(&self.calendar, now) else {
            return Ok(0);
        };
        let key = format!("digest:{}", day_key(day));
        let store = lock(&self.store);
        if store.write(|tx| tx.reminder_queued(&key))? {
            return Ok(0);
        }
        // What happened since the last digest (a day, when there was none).
        let since = store
            .last_digest_at()?
            .unwrap_or(now - Duration::days(1))
            .min(now - Duration::hours(1));
        let (licenses_due, approvals) = store.digest_licenses(day)?;
        let digest = Digest {
            tickets: store
                .open_tickets()?
                .into_iter()
                .map(|t| DigestTicket {
                    number: t.wait.number,
                    state: t.wait.state,
                    age_minutes: self.calendar.business_duration(t.wait.accepted_at, now),
                    accepted_at: t.wait.accepted_at,
                    answered: t.wait.first_response_at.is_some() && t.wait.follow_up_at.is_none(),
                    subject: t.subject,
                    customer: t.customer,
                })
                .collect(),
            licenses_due,
            approvals,
            failed: store.failed_since(since)?,
            quarantined: store.quarantined_since(since)?,
        };
        let mail = digest_mail(
            &digest,
            day,
            &self.config.desk.ticket_prefix,
            &self.config.desk.notify,
            &self.config.desk.address,
            self.calendar.timezone(),
            now,
        );
        store.write(|tx| {
            if tx.reminder_queued(&key)? {
                return Ok(0);
            }
            let outbox = mail
                .as_ref()
                .map(|m| self.queue(tx, m, None, now))
                .transpose()?;
            tx.record_reminder(
                &ReminderRow {
                    key: &key,
                    kind: "digest",
                    day: Some(day),
                    nominal: day_key(day),
                    outbox,
                    ..ReminderRow::default()
                },
                now,
            )?;
            if outbox.is_some() {
                tracing::info!(day = %day, "Queued the morning digest.");
            }
            Ok::<_, DeskError>(usize::from(outbox.is_some()))
        })
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, h, m, s).unwrap()
    }

    #[test]
    fn the_store_is_looked_over_when_something_is_due_or_a_minute_after_events() {
        assert!(ReminderScan::default().due(at(1, 0, 0)), "first pass");
        let mut scan = ReminderScan {
            at: Some(at(1, 0, 0)),
            next_due: Some(at(2, 0, 0)),
            dirty: false,
            data_version: Some(1),
        };
        assert!(!scan.due(at(1, 30, 0)), "nothing due, nothing happened");
        assert!(scan.due(at(2, 0, 0)), "a reminder falls due");
        scan.dirty = true;
        assert!(!scan.due(at(1, 0, 59)), "events: not on every pass");
        assert!(scan.due(at(1, 1, 0)), "events: a minute later");
        assert!(scan.due(at(0, 59, 0)), "a clock set back");
        scan.next_due = None;
        scan.dirty = false;
        assert!(!scan.due(at(9, 0, 0)), "nothing ever due");
    }
}
