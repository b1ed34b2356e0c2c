//! License keys in the desk (R7/R8): applications recorded with their ticket, keys made by the
//! issuer when due and stored before their mail is queued (one transaction: a crash resends
//! the same key, never mints a second one), the approval reminder and the R8 escalation.

use std::sync::Arc;

use chrono::{DateTime, NaiveTime, Utc};

use super::{Desk, DeskError, PassSummary, Shell, lock, retry_delay};
use crate::config::{Approval, Config, DEFAULT_LICENSE_PRODUCT, DEFAULT_LICENSE_REMIND_AT};
use crate::core::license::letters::{
    ApplicationRecord, KeyLetter, LicenseNotice, key_mail, license_notice, redact_key,
};
use crate::core::license::{
    Application, EarlierApplication, LicensePolicy, LicenseVerdict, NoticeDue, named_contract,
    next_notice_at, notice_due, same_server,
};
use crate::core::matching::ContractBook;
use crate::license::{IssuedKey, Issuer, KeyRequest};
use crate::store::licenses::{DueKey, NewApplication};
use crate::store::tickets::Tx;

/// How this desk issues keys (`[license]`).
#[derive(Debug, Clone)]
pub struct LicenseSettings {
    pub policy: LicensePolicy,
    pub remind_at: NaiveTime,
    pub product: String,
}

/// What the decision and the scheduler need of `[license]`. Without the section applications
/// are still judged and ticketed, but no key is made: staff are told to issue it by hand.
pub fn license_settings(config: &Config) -> LicenseSettings {
    match &config.license {
        Some(l) => LicenseSettings {
            policy: LicensePolicy {
                approval_by_staff: l.approval == Approval::Staff,
                early: l.early,
                issuer: true,
            },
            remind_at: l.remind_at,
            product: l.product.clone(),
        },
        None => LicenseSettings {
            policy: LicensePolicy {
                approval_by_staff: false,
                early: false,
                issuer: false,
            },
            remind_at: DEFAULT_LICENSE_REMIND_AT,
            product: DEFAULT_LICENSE_PRODUCT.to_string(),
        },
    }
}

impl Shell {
    /// The latest application for the same contract, serial and server as `app`.
    pub(super) fn earlier_application(
        &self,
        tx: &Tx<'_>,
        app: &Application,
        book: &ContractBook,
    ) -> Result<Option<EarlierApplication>, DeskError> {
        let (Some(contract), Some(server)) = (named_contract(app, book), &app.new_server_id) else {
            return Ok(None);
        };
        Ok(tx
            .earlier_applications(&contract.contract_id, &contract.license_serial)?
            .into_iter()
            .find(|(s, _)| same_server(s, server))
            .map(|(_, e)| e))
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn record_application(
        &self,
        tx: &Tx<'_>,
        ticket: u64,
        app: &Application,
        verdict: &LicenseVerdict,
        message_id: Option<&str>,
        applied_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), DeskError> {
        let jti = format!(
            "{}-{ticket:06}-{:032x}",
            self.config.desk.ticket_prefix,
            self.random_token()?
        );
        // What the application gave, as stored on a refusal: cut, a form field may be huge.
        let given = |v: &Option<String>| {
            v.as_deref()
                .unwrap_or("")
                .trim()
                .chars()
                .take(200)
                .collect::<String>()
        };
        let applicant = app.applicant.clone().unwrap_or_default();
        let (serial, server) = (given(&app.license_serial), given(&app.new_server_id));
        let row = match verdict {
            LicenseVerdict::Eligible {
                eligible, schedule, ..
            } => NewApplication {
                ticket,
                jti: &jti,
                contract_id: &eligible.contract_id,
                license_serial: &eligible.license_serial,
                server_id: &eligible.server_id,
                previous_server_id: Some(&eligible.previous_server_id),
                applicant: &eligible.applicant,
                message_id,
                applied_at,
                due: Some(schedule.due),
                send_at: Some(schedule.send_at),
                state: verdict.initial_state(),
                detail: None,
            },
            LicenseVerdict::Refused {
                shortfalls,
                contract_id,
                ..
            } => {
                let why: Vec<&str> = shortfalls.iter().map(|s| s.code()).collect();
                return Ok(tx.insert_application(
                    &NewApplication {
                        ticket,
                        jti: &jti,
                        contract_id: contract_id.as_deref().unwrap_or(""),
                        license_serial: &serial,
                        server_id: &server,
                        previous_server_id: None,
                        applicant: &applicant,
                        message_id,
                        applied_at,
                        due: None,
                        send_at: None,
                        state: verdict.initial_state(),
                        detail: Some(&why.join(", ")),
                    },
                    now,
                )?);
            }
            LicenseVerdict::Repeated {
                earlier,
                contract_id,
                ..
            } => {
                let detail = format!("repeats the application of ticket {}", earlier.ticket);
                return Ok(tx.insert_application(
                    &NewApplication {
                        ticket,
                        jti: &jti,
                        contract_id,
                        license_serial: &serial,
                        server_id: &server,
                        previous_server_id: None,
                        applicant: &applicant,
                        message_id,
                        applied_at,
                        due: None,
                        send_at: None,
                        state: verdict.initial_state(),
                        detail: Some(&detail),
                    },
                    now,
                )?);
            }
        };
        Ok(tx.insert_application(&row, now)?)
    }

    /// Stores a made key and queues its mail, in one transaction. The applicant must still be
    /// a registered contact of the contract; otherwise nothing is sent and staff are told.
    fn deliver_key(
        &self,
        tx: &Tx<'_>,
        due: &DueKey,
        issued: &IssuedKey,
        book: &ContractBook,
        now: DateTime<Utc>,
    ) -> Result<bool, DeskError> {
        let contract = book
            .get(&due.contract_id)
            .filter(|c| c.is_contact(&due.applicant));
        let Some(contract) = contract else {
            let why = "申請者がご契約の登録担当者ではなくなったため";
            tx.refuse_application(due.ticket, why, now)?;
            self.license_notice(tx, due.ticket, LicenseNotice::NotSent { why }, now)?;
            return Ok(false);
        };
        let mail = key_mail(&KeyLetter {
            prefix: &self.config.desk.ticket_prefix,
            desk_address: &self.config.desk.address,
            ticket: due.ticket,
            to: &due.applicant,
            addressee: &contract.customer,
            license_serial: &due.license_serial,
            server_id: &due.server_id,
            key: &issued.key,
            key_id: &issued.key_id,
            in_reply_to: due.message_id.as_deref(),
        });
        let article = redact_key(&mail.body, &issued.key, &issued.key_id);
        let outbox = self.queue_as(tx, &mail, None, &article, now)?;
        tx.record_key(due.ticket, &issued.key, &issued.key_id, outbox, now)?;
        Ok(true)
    }

    /// Queues a notice about one application to `desk.notify`.
    fn license_notice(
        &self,
        tx: &Tx<'_>,
        ticket: u64,
        notice: LicenseNotice<'_>,
        now: DateTime<Utc>,
    ) -> Result<(), DeskError> {
        if self.rules.notify.is_empty() {
            return Ok(());
        }
        let Some(record) = tx.application(ticket)? else {
            return Ok(());
        };
        let mail = self.notice_mail(&record, notice);
        self.queue(tx, &mail, None, now)?;
        Ok(())
    }

    fn notice_mail(
        &self,
        record: &ApplicationRecord,
        notice: LicenseNotice<'_>,
    ) -> crate::core::reply::OutgoingMail {
        license_notice(
            &self.rules.notify,
            &self.config.desk.address,
            &self.config.desk.ticket_prefix,
            self.calendar.timezone(),
            record,
            notice,
        )
    }

    /// Approval reminders and R8 escalations owed at `now`, each queued once.
    fn license_notices(&self, now: DateTime<Utc>) -> Result<usize, DeskError> {
        let store = lock(&self.store);
        let open = store.open_applications()?;
        let owed: Vec<(u64, NoticeDue)> = open
            .iter()
            .filter_map(|a| {
                let due = a.record.due?;
                notice_due(
                    &self.calendar,
                    a.record.state,
                    due,
                    (a.reminded, a.escalated),
                    self.license.remind_at,
                    now,
                )
                .map(|n| (a.record.ticket, n))
            })
            .collect();
        if owed.is_empty() {
            return Ok(0);
        }
        store.write(|tx| {
            for (ticket, notice) in &owed {
                let escalation = *notice == NoticeDue::Missed;
                let kind = if escalation {
                    LicenseNotice::Missed
                } else {
                    LicenseNotice::ApprovalReminder
                };
                self.license_notice(tx, *ticket, kind, now)?;
                tx.mark_license_notice(*ticket, escalation, now)?;
            }
            Ok::<_, DeskError>(())
        })?;
        Ok(owed.len())
    }

    /// The next moment a reminder or escalation falls due.
    pub(super) fn next_license_notice(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, DeskError> {
        let open = lock(&self.store).open_applications()?;
        Ok(open
            .iter()
            .filter_map(|a| {
                next_notice_at(
                    &self.calendar,
                    a.record.state,
                    a.record.due?,
                    (a.reminded, a.escalated),
                    self.license.remind_at,
                    now,
                )
            })
            .min())
    }
}

impl Desk {
    /// A desk that issues license keys: [`Desk::open`], then the issuer `[license]` names (its
    /// signing key read and checked now, so a service with a bad key refuses to start).
    pub fn open_issuing(config: Config) -> Result<Desk, DeskError> {
        let issuer = config
            .license
            .as_ref()
            .map(Issuer::from_config)
            .transpose()
            .map_err(DeskError::License)?;
        let mut desk = Desk::open(config)?;
        if let Some(issuer) = issuer {
            desk.set_issuer(issuer);
        }
        Ok(desk)
    }

    /// The issuer keys are made with (`run` loads it from `[license]`; without one, eligible
    /// applications wait for a person and are escalated at their cutoff).
    pub fn set_issuer(&mut self, issuer: Issuer) {
        self.issuer = Some(Arc::new(issuer));
    }

    /// Makes and queues the keys that are due, then the notices staff are owed.
    pub async fn license_work(
        &mut self,
        now: DateTime<Utc>,
        summary: &mut PassSummary,
    ) -> Result<(), DeskError> {
        if let Some(issuer) = self.issuer.clone() {
            let due = self
                .off_runtime(move |shell| Ok(lock(&shell.store).due_keys(now)?))
                .await?;
            for key in due {
                self.issue_one(&issuer, key, now, summary).await?;
            }
        }
        summary.license_notices += self
            .off_runtime(move |shell| shell.license_notices(now))
            .await?;
        Ok(())
    }

    async fn issue_one(
        &mut self,
        issuer: &Issuer,
        due: DueKey,
        now: DateTime<Utc>,
        summary: &mut PassSummary,
    ) -> Result<(), DeskError> {
        let request = KeyRequest {
            jti: due.jti.clone(),
            product: self.shell.license.product.clone(),
            license_serial: due.license_serial.clone(),
            contract_id: due.contract_id.clone(),
            server_id: due.server_id.clone(),
            issued_at: now,
            ticket: due.ticket,
        };
        let result = issuer.issue(&request).await;
        let issued = self
            .off_runtime(move |shell| {
                let store = lock(&shell.store);
                let book = shell.current_book(&store)?;
                store.write(|tx| match &result {
                    Ok(key) => shell.deliver_key(tx, &due, key, &book, now),
                    Err(error) => {
                        let error = crate::report::chain(error);
                        let next = now + retry_delay(due.attempts);
                        tracing::error!(ticket = due.ticket, %error, %next, "Cannot issue a license key; will retry.");
                        tx.record_issue_failure(due.ticket, &error, next, now)?;
                        if due.attempts == 0 {
                            let notice = LicenseNotice::IssueFailed {
                                error: &error,
                                next_attempt: Some(next),
                            };
                            shell.license_notice(tx, due.ticket, notice, now)?;
                        }
                        Ok(false)
                    }
                })
            })
            .await?;
        if issued {
            summary.keys_issued += 1;
            tracing::info!(ticket = request.ticket, "Issued a license key.");
        } else {
            summary.key_failures += 1;
        }
        Ok(())
    }
}

/// Why `license resend` sent nothing.
#[derive(Debug, thiserror::Error)]
pub enum ResendRefused {
    #[error("ticket {0} has no license application")]
    NoApplication(u64),
    #[error("no key has been issued for ticket {ticket} yet (state: {state})")]
    NoKey { ticket: u64, state: &'static str },
    #[error(
        "{applicant} is no longer a registered contact of contract {contract}: the key goes to registered contacts only"
    )]
    NotRegistered { applicant: String, contract: String },
}

impl Desk {
    /// `license resend N`: the same key again, to the registered applicant only. Queued; the
    /// daemon (or `run --once`) sends it. Returns the outbox row.
    pub fn resend_key(
        &self,
        ticket: u64,
        now: DateTime<Utc>,
    ) -> Result<Result<i64, ResendRefused>, DeskError> {
        let shell = &self.shell;
        let store = lock(&shell.store);
        let book = shell.current_book(&store)?;
        store.write(|tx| {
            let Some(record) = tx.application(ticket)? else {
                return Ok(Err(ResendRefused::NoApplication(ticket)));
            };
            let Some(stored) = tx.stored_key(ticket)? else {
                return Ok(Err(ResendRefused::NoKey {
                    ticket,
                    state: record.state.code(),
                }));
            };
            let Some(contract) = book
                .get(&record.contract_id)
                .filter(|c| c.is_contact(&record.applicant))
            else {
                return Ok(Err(ResendRefused::NotRegistered {
                    applicant: record.applicant,
                    contract: record.contract_id,
                }));
            };
            let mail = key_mail(&KeyLetter {
                prefix: &shell.config.desk.ticket_prefix,
                desk_address: &shell.config.desk.address,
                ticket,
                to: &record.applicant,
                addressee: &contract.customer,
                license_serial: &record.license_serial,
                server_id: &record.server_id,
                key: &stored.key,
                key_id: &stored.key_id,
                in_reply_to: stored.message_id.as_deref(),
            });
            let article = redact_key(&mail.body, &stored.key, &stored.key_id);
            let outbox = shell.queue_as(tx, &mail, None, &article, now)?;
            tx.record_resend(ticket, outbox, now)?;
            Ok::<_, DeskError>(Ok(outbox))
        })
    }
}
