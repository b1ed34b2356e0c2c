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

/// A contract's reminder owed now, with whom it goes to.
struct OwedContract {
    contract_id: String,
    customer: String,
    contacts: Vec<String>,
    reminder: ContractReminder,
}

impl Shell {
    /// Everything owed at `now`, queued; the number of mails queued.
    pub(super) fn reminder_work(&self, now: DateTime<Utc>) -> Result<usize, DeskError> {
        Ok(self.contract_reminders(now)? + self.staff_reminders(now)? + self.digest(now)?)
    }

    /// The next moment a reminder or the digest falls due after `now`.
    pub(super) fn next_reminder(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, DeskError> {
        let store = lock(&self.store);
        let book = self.current_book(&store)?;
        let sent = store.contract_reminder_keys()?;
        let contracts = book.iter().filter(|c| c.reminders).filter_map(|c| {
            let periods = c.periods.as_ref().ok()?;
            let schedule = contract_schedule(periods, &self.config.reminders);
            next_contract_reminder_at(&self.calendar, &schedule, &c.contract_id, &sent, now)
        });
        let staff_sent = store.staff_reminder_keys()?;
        let open = store.open_tickets()?;
        let staff = open.iter().filter_map(|t| {
            let schedule = staff_schedule(&self.calendar, &self.config.sla, &t.wait);
            next_staff_reminder_at(&schedule, t.wait.number, &staff_sent, now)
        });
        let digest = self
            .config
            .reminders
            .digest
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

    fn staff_reminders(&self, now: DateTime<Utc>) -> Result<usize, DeskError> {
        if self.config.desk.notify.is_empty() {
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
