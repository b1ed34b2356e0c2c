//! The desk: one pass of intake → decide → commit → acknowledge, the acceptance scheduler and
//! the outbox worker. This is the shell around `core::ticket::decide`: it gathers what the
//! decision needs from the store, runs it, and executes the result in one transaction per batch.

use std::path::PathBuf;

use chrono::{DateTime, Duration, Utc};
use rusqlite::Connection;
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::core::calendar::{BusinessCalendar, CalendarError};
use crate::core::classify::{Category, ClassifyRules, classify};
use crate::core::contract::periods_from_orders;
use crate::core::form::FormField;
use crate::core::guard::{NoReplyReason, assess};
use crate::core::inbound::InboundMail;
use crate::core::matching::ContractBook;
use crate::core::reply::{
    FollowUpNote, OutgoingKind, OutgoingMail, ReplyNote, TicketLetter, customer_reply,
    delivery_failure_notice, follow_up_notification, staff_notification,
};
use crate::core::ticket::{
    ContractFacts, Decision, DeskRules, Intake, NewTicket, ThreadedBy, TicketFacts, decide,
    find_tag, message_id, reply_address, single_address, ticket_in_message_id,
};
use crate::intake::{Ack, Incoming, IntakeError, Source};
use crate::mail::{ReadOptions, read_message_with};
use crate::outbound::{ComposeError, Queued, SendError, Sender, compose};
use crate::store::tickets::{self as db, ArticleRow, MessageRow, OutboxRow, TicketRow, Verdict};
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum DeskError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Intake(#[from] IntakeError),
    #[error("cannot build the business calendar")]
    Calendar(#[from] CalendarError),
    #[error("cannot keep raw mail in {path}")]
    Files {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read random bytes from the operating system")]
    Random(#[source] getrandom::Error),
    #[error("cannot compose a reply for ticket {ticket}")]
    Compose {
        ticket: u64,
        #[source]
        source: ComposeError,
    },
}

/// What one pass did, for logs, `run --once` and the demo.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PassSummary {
    pub messages: usize,
    pub new_tickets: usize,
    pub follow_ups: usize,
    pub recorded: usize,
    pub quarantined: usize,
    pub duplicates: usize,
    pub already_seen: usize,
    pub opened: usize,
    pub sent: usize,
    pub send_retries: usize,
    pub send_failures: usize,
}

pub struct Desk {
    config: Config,
    calendar: BusinessCalendar,
    store: Store,
    rules: DeskRules,
    classify_rules: ClassifyRules,
    domain: String,
    /// The contract register as last loaded, with the database's `data_version` then: reloaded
    /// only when another connection (a `contracts import`) has committed since.
    book: Option<(i64, std::sync::Arc<ContractBook>)>,
}

/// Messages taken from the source in one transaction.
pub const BATCH: usize = 200;

/// Staff notifications about one ticket in an hour, at most: a ticket that mail keeps arriving
/// on (a loop, a flood) cannot flood the staff in turn; everything stays on the ticket.
pub const NOTIFY_LIMIT_PER_TICKET_HOUR: u32 = 6;

impl Desk {
    pub fn open(config: Config) -> Result<Self, DeskError> {
        let calendar = BusinessCalendar::new(config.calendar.clone())?;
        let store = Store::open(&config.storage.database)?;
        let desk_address = config.desk.address.to_ascii_lowercase();
        let domain = desk_address
            .rsplit_once('@')
            .map_or("madoguchi.invalid".to_string(), |(_, d)| d.to_string());
        let rules = DeskRules {
            desk_addresses: vec![desk_address],
            staff: config
                .desk
                .staff
                .iter()
                .map(|s| s.to_ascii_lowercase())
                .collect(),
            notify: config
                .desk
                .notify
                .iter()
                .map(|s| s.to_ascii_lowercase())
                .collect(),
            reopen_days: i64::from(config.desk.reopen_days),
            auto_reply_limit_per_hour: config.desk.auto_reply_limit_per_hour,
            notify_limit_per_ticket_hour: NOTIFY_LIMIT_PER_TICKET_HOUR,
        };
        let classify_rules = config.classify.clone();
        Ok(Self {
            config,
            calendar,
            store,
            rules,
            classify_rules,
            domain,
            book: None,
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Mutable access may change the contracts through this very connection, which
    /// `data_version` does not see: the cached register is dropped.
    pub fn store_mut(&mut self) -> &mut Store {
        self.book = None;
        &mut self.store
    }

    pub fn calendar(&self) -> &BusinessCalendar {
        &self.calendar
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Everything pending and due: all mail in the source, tickets whose acceptance time has
    /// come, and the outbox.
    pub async fn pass<S: Source, T: Sender>(
        &mut self,
        source: &mut S,
        sender: &mut T,
        now: DateTime<Utc>,
    ) -> Result<PassSummary, DeskError> {
        let mut summary = PassSummary::default();
        loop {
            let batch = source.fetch(BATCH).await?;
            if batch.is_empty() {
                break;
            }
            // Until the source is empty, whatever batch size it hands out; but a batch of only
            // already-recorded messages (one the source could not move on) ends the pass, so a
            // stuck message cannot spin it.
            let before = summary.messages;
            self.intake_batch(source, batch, now, &mut summary).await?;
            if summary.messages == before {
                break;
            }
        }
        summary.opened = self
            .store
            .in_transaction(|conn| db::open_accepted(conn, now))?;
        self.send_due(sender, now, &mut summary).await?;
        Ok(summary)
    }

    /// Records a batch in one transaction, then acknowledges each message to the source.
    pub async fn intake_batch<S: Source>(
        &mut self,
        source: &mut S,
        batch: Vec<Incoming>,
        now: DateTime<Utc>,
        summary: &mut PassSummary,
    ) -> Result<(), DeskError> {
        let source_name = source.name();
        let shas: Vec<String> = batch
            .iter()
            .map(|m| hex::encode(Sha256::digest(&m.raw)))
            .collect();
        let book = self.current_book()?;
        let acks = {
            let desk = &*self;
            desk.store.in_transaction(|conn| {
                let mut acks = Vec::with_capacity(batch.len());
                for (message, sha) in batch.iter().zip(&shas) {
                    let ack = desk.record(conn, &source_name, message, sha, &book, now, summary)?;
                    acks.push(ack);
                }
                Ok::<_, DeskError>(acks)
            })?
        };
        for (message, ack) in batch.iter().zip(acks) {
            source.ack(message, ack).await?;
        }
        Ok(())
    }

    fn keep_file(&self, relative: &str, bytes: &[u8]) -> Result<(), DeskError> {
        let path = self.config.storage.files.join(relative);
        if path.exists() {
            return Ok(());
        }
        let files_err = |source| DeskError::Files {
            path: path.clone(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(files_err)?;
        }
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, bytes).map_err(files_err)?;
        std::fs::rename(&tmp, &path).map_err(files_err)?;
        Ok(())
    }

    /// The contract register, from the cache unless the database changed under it.
    fn current_book(&mut self) -> Result<std::sync::Arc<ContractBook>, DeskError> {
        let version = self.store.data_version()?;
        if let Some((seen, book)) = &self.book
            && *seen == version
        {
            return Ok(book.clone());
        }
        let book = std::sync::Arc::new(self.contract_book()?);
        self.book = Some((version, book.clone()));
        Ok(book)
    }

    /// The contract register as the decision needs it, with each contract's periods.
    pub fn contract_book(&self) -> Result<ContractBook, DeskError> {
        let contracts = self.store.contracts()?;
        Ok(ContractBook::new(
            contracts
                .into_iter()
                .map(|c| ContractFacts {
                    periods: periods_from_orders(&c.orders).ok(),
                    contract_id: c.contract_id,
                    customer: c.customer,
                    license_serial: c.license_serial,
                    contacts: c.contacts,
                    domains: c.domains,
                    neo_support: c.neo_support,
                })
                .collect(),
        ))
    }

    /// An unguessable token for Message-IDs: 128 bits from the operating system's CSPRNG.
    fn random_token(&self) -> Result<u128, DeskError> {
        let mut bytes = [0u8; 16];
        getrandom::getrandom(&mut bytes).map_err(DeskError::Random)?;
        Ok(u128::from_le_bytes(bytes))
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        conn: &Connection,
        source: &str,
        message: &Incoming,
        sha: &str,
        book: &ContractBook,
        now: DateTime<Utc>,
        summary: &mut PassSummary,
    ) -> Result<Ack, DeskError> {
        if let Some(verdict) = db::seen_verdict(conn, source, &message.key)? {
            // Recorded before a crash that came before the acknowledgement: acknowledge only.
            summary.already_seen += 1;
            return Ok(if verdict == Verdict::Quarantined {
                Ack::Quarantined
            } else {
                Ack::Processed
            });
        }
        summary.messages += 1;
        // The raw bytes, in the same transaction as the verdict (invariant 3).
        let raw_path = db::keep_raw(conn, sha, &message.raw)?;
        let raw_path = raw_path.as_str();
        let read = read_message_with(
            &message.raw,
            &ReadOptions {
                form_senders: &self.config.desk.form_senders,
                form_labels: &self.config.form_labels,
            },
        );
        let mail = &read.mail;
        let base = MessageRow {
            source,
            source_key: &message.key,
            message_id: mail.message_id.as_deref(),
            content_sha256: sha,
            raw_path,
            size: message.raw.len(),
            received_at: message.received_at,
            processed_at: now,
            from_address: mail.from.as_ref().map(|m| m.address.as_str()),
            subject: &mail.subject,
            verdict: Verdict::Article,
            reason: None,
            ticket: None,
        };
        let row = |verdict, reason, ticket| MessageRow {
            verdict,
            reason,
            ticket,
            ..base
        };
        if let Some(id) = &mail.message_id
            && let Some((first, ticket)) = db::same_message(conn, id, sha)?
        {
            let reason = format!("same Message-ID and content as message {first}");
            db::insert_message(conn, &row(Verdict::Duplicate, Some(&reason), ticket))?;
            summary.duplicates += 1;
            return Ok(Ack::Processed);
        }
        let guard = assess(mail, &self.rules.desk_addresses);
        let category = classify(mail, &self.classify_rules);
        let from = mail.from.as_ref().map(|m| m.address.clone());
        let reply_to = reply_address(mail);
        let form_address = mail
            .form
            .as_ref()
            .and_then(|f| f.get(FormField::Email))
            .and_then(single_address);
        let mut addresses: Vec<&str> = Vec::new();
        addresses.extend(form_address.as_deref());
        if mail.form.is_none() {
            addresses.extend(from.as_deref());
        }
        let numbers: Vec<&str> = mail
            .form
            .iter()
            .flat_map(|f| {
                [
                    f.get(FormField::CustomerNumber),
                    f.get(FormField::LicenseSerial),
                ]
            })
            .flatten()
            .collect();
        let contract = book.find(
            &addresses,
            &numbers,
            &format!("{}\n{}", mail.subject, mail.text),
        );
        let thread = self.thread_of(conn, mail, from.as_deref(), book)?;
        let recent = match &reply_to {
            Ok(to) => db::auto_replies_since(conn, to, now - Duration::hours(1))?,
            Err(_) => 0,
        };
        let recent_notices = match &thread {
            Some((t, _)) => db::staff_notices_since(conn, t.number, now - Duration::hours(1))?,
            None => 0,
        };
        let intake = Intake {
            mail,
            guard: &guard,
            category,
            received_at: message.received_at,
            now,
            thread: thread.as_ref().map(|(t, by)| (t, *by)),
            contract,
            reply_to,
            recent_auto_replies: recent,
            recent_ticket_notices: recent_notices,
        };
        let decision = decide(&intake, &self.rules, &self.calendar);
        match decision {
            Decision::Quarantine { reason } => {
                db::insert_message(conn, &row(Verdict::Quarantined, Some(&reason), None))?;
                summary.quarantined += 1;
                tracing::warn!(key = %message.key, %reason, "Quarantined message.");
                Ok(Ack::Quarantined)
            }
            Decision::Recorded { reason, ticket } => {
                let mut ticket = ticket;
                if let (NoReplyReason::Bounce, Some(report)) = (&reason, &mail.report)
                    && let Some(original) = &report.original_message_id
                {
                    let detail = format!(
                        "{} {}",
                        report.status.as_deref().unwrap_or("failed"),
                        report.failed_recipients.join(", ")
                    );
                    if let Some(failed) = db::mark_bounced(conn, original, detail.trim())? {
                        tracing::warn!(ticket = failed.ticket, message_id = %original, "Delivery failed (bounce).");
                        ticket = Some(failed.ticket);
                        self.tell_staff_delivery_failed(conn, &failed, detail.trim(), now)?;
                    }
                }
                let text = format!("{}: {reason}", reason.code());
                db::insert_message(conn, &row(Verdict::Recorded, Some(&text), ticket))?;
                summary.recorded += 1;
                Ok(Ack::Processed)
            }
            Decision::NewTicket(new) => {
                let message_row = db::insert_message(conn, &row(Verdict::Article, None, None))?;
                let number = self.open_ticket(conn, mail, &new, message.received_at, now)?;
                db::set_message_ticket(conn, message_row, number)?;
                self.add_inbound(conn, &read, message_row, number, message.received_at)?;
                self.queue_new_ticket_mail(conn, mail, &new, number, message.received_at, now)?;
                summary.new_tickets += 1;
                tracing::info!(
                    ticket = number,
                    category = new.category.code(),
                    entitlement = new.entitlement.code(),
                    "Accepted request."
                );
                Ok(Ack::Processed)
            }
            Decision::FollowUp {
                ticket,
                reopen_as,
                notify_staff,
                from_staff,
                ..
            } => {
                let message_row =
                    db::insert_message(conn, &row(Verdict::Article, None, Some(ticket)))?;
                self.add_inbound(conn, &read, message_row, ticket, message.received_at)?;
                match reopen_as {
                    Some(state) => db::set_ticket_state(conn, ticket, state, now)?,
                    None => db::touch_ticket(conn, ticket, now)?,
                }
                if notify_staff {
                    let note = if from_staff {
                        tracing::warn!(
                            ticket,
                            "Mail from a staff address recorded without acting on it (not authenticated)."
                        );
                        FollowUpNote::UnauthenticatedStaff
                    } else {
                        FollowUpNote::Customer {
                            reopened: reopen_as.is_some(),
                        }
                    };
                    self.queue_follow_up_notice(
                        conn,
                        mail,
                        ticket,
                        note,
                        message.received_at,
                        now,
                    )?;
                } else {
                    tracing::warn!(
                        ticket,
                        limit = NOTIFY_LIMIT_PER_TICKET_HOUR,
                        "Staff not notified: the ticket's hourly notification limit is reached."
                    );
                }
                summary.follow_ups += 1;
                tracing::info!(
                    ticket,
                    from_staff,
                    reopened = reopen_as.is_some(),
                    "Added follow-up."
                );
                Ok(Ack::Processed)
            }
        }
    }

    /// The ticket a message refers to: by a Message-ID of ours; by an earlier Message-ID of the
    /// ticket or by the subject tag, but only from a participant (a tag alone from a stranger
    /// must not hijack a ticket).
    fn thread_of(
        &self,
        conn: &Connection,
        mail: &InboundMail,
        from: Option<&str>,
        book: &ContractBook,
    ) -> Result<Option<(TicketFacts, ThreadedBy)>, DeskError> {
        let prefix = &self.config.desk.ticket_prefix;
        let mut ids: Vec<String> = mail.in_reply_to.clone();
        ids.extend(mail.references.iter().rev().cloned());
        let candidate = match db::find_thread(conn, &ids)? {
            Some((n, true)) => Some((n, ThreadedBy::OurMessageId)),
            Some((n, false)) => Some((n, ThreadedBy::KnownMessageId)),
            None => {
                // Our ids survive even when the thread table does not know them (e.g. mail
                // sent before a database restore): recognise the pattern, then require the
                // sender to be a participant as with a tag.
                let by_pattern = ids
                    .iter()
                    .find_map(|id| ticket_in_message_id(id, prefix, &self.domain))
                    .map(|n| (n, ThreadedBy::KnownMessageId));
                by_pattern.or_else(|| {
                    find_tag(&mail.subject, prefix).map(|n| (n, ThreadedBy::SubjectTag))
                })
            }
        };
        let Some((number, by)) = candidate else {
            return Ok(None);
        };
        let Some(head) = db::ticket_head(conn, number)? else {
            return Ok(None);
        };
        let mut participants = vec![head.customer_address.to_ascii_lowercase()];
        if let Some(c) = head.contract_id.as_deref().and_then(|id| book.get(id)) {
            participants.extend(c.contacts.iter().map(|a| a.to_ascii_lowercase()));
        }
        participants.extend(self.rules.staff.iter().cloned());
        let is_participant = from.is_some_and(|f| participants.iter().any(|p| p == f));
        if by != ThreadedBy::OurMessageId && !is_participant {
            tracing::info!(
                ticket = number,
                "Ignored a ticket reference from a non-participant."
            );
            return Ok(None);
        }
        Ok(Some((
            TicketFacts {
                number,
                state: head.state,
                accepted_at: head.accepted_at,
                closed_at: head.closed_at,
                participants,
            },
            by,
        )))
    }

    fn open_ticket(
        &self,
        conn: &Connection,
        mail: &InboundMail,
        new: &NewTicket,
        received_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<u64, DeskError> {
        let entitlement = serde_json::to_string(&new.entitlement)
            .map_err(|e| StoreError::Corrupt(format!("cannot encode entitlement: {e}")))?;
        let customer = customer_of(mail);
        let matched_by = new.matched_by.map(|m| {
            serde_json::to_value(m)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
        });
        let category = new.category.code();
        Ok(db::insert_ticket(
            conn,
            &TicketRow {
                state: new.state,
                category,
                contract_id: new.contract_id.as_deref(),
                matched_by: matched_by.as_deref(),
                entitlement_json: &entitlement,
                customer_address: &customer.0,
                customer_name: &customer.1,
                subject: &mail.subject,
                received_at,
                accepted_at: new.accepted_at,
                license_due: new.license_due,
                continues: new.continues,
                now,
            },
        )?)
    }

    fn add_inbound(
        &self,
        conn: &Connection,
        read: &crate::mail::ReadMessage,
        message_row: i64,
        ticket: u64,
        received_at: DateTime<Utc>,
    ) -> Result<(), DeskError> {
        let mail = &read.mail;
        for (seq, (attachment, body)) in mail
            .attachments
            .iter()
            .zip(&read.attachment_bodies)
            .enumerate()
        {
            self.keep_file(
                &format!(
                    "attachments/{}/{}",
                    &attachment.sha256[..2.min(attachment.sha256.len())],
                    attachment.sha256
                ),
                body,
            )?;
            db::insert_attachment(conn, message_row, seq, attachment)?;
        }
        let author = mail.from.as_ref().map_or("", |m| m.address.as_str());
        db::insert_article(
            conn,
            &ArticleRow {
                ticket,
                inbound: true,
                message: Some(message_row),
                outbox: None,
                author,
                // An incoming article is dated when it arrived, not when it was processed.
                created_at: received_at,
                subject: &mail.subject,
                text: &mail.text,
            },
        )?;
        if let Some(id) = &mail.message_id {
            db::insert_thread_id(conn, id, ticket, false)?;
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn queue_new_ticket_mail(
        &self,
        conn: &Connection,
        mail: &InboundMail,
        new: &NewTicket,
        ticket: u64,
        received_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), DeskError> {
        let from = mail
            .from
            .as_ref()
            .map_or(String::new(), |m| m.address.clone());
        let letter = TicketLetter {
            prefix: &self.config.desk.ticket_prefix,
            desk_address: &self.config.desk.address,
            timezone: self.calendar.timezone(),
            ticket,
            addressee: &new.addressee,
            from: &from,
            subject: &mail.subject,
            text: &mail.text,
            category: new.category,
            state: new.state,
            received_at,
            accepted_at: new.accepted_at,
            license_due: new.license_due,
            contract_id: new.contract_id.as_deref(),
            entitlement: &new.entitlement,
            message_id: mail.message_id.as_deref(),
            references: &mail.references,
        };
        let reply_note = match (&new.reply, &new.reply_withheld) {
            (Some((kind, to)), _) => {
                let outgoing = customer_reply(*kind, to, &letter);
                self.queue(conn, &outgoing, Some(to), now)?;
                ReplyNote::Sent {
                    kind: *kind,
                    to: to.clone(),
                }
            }
            (None, why) => ReplyNote::Withheld(why.clone().unwrap_or_default()),
        };
        if !self.config.desk.notify.is_empty() {
            let notice = staff_notification(&self.config.desk.notify, &letter, &reply_note);
            self.queue(conn, &notice, None, now)?;
        }
        Ok(())
    }

    fn queue_follow_up_notice(
        &self,
        conn: &Connection,
        mail: &InboundMail,
        ticket: u64,
        note: FollowUpNote,
        received_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), DeskError> {
        if self.config.desk.notify.is_empty() {
            return Ok(());
        }
        let Some(head) = db::ticket_head(conn, ticket)? else {
            return Ok(());
        };
        let from = mail
            .from
            .as_ref()
            .map_or(String::new(), |m| m.address.clone());
        let entitlement = crate::core::ticket::Entitlement::Unmatched;
        let letter = TicketLetter {
            prefix: &self.config.desk.ticket_prefix,
            desk_address: &self.config.desk.address,
            timezone: self.calendar.timezone(),
            ticket,
            addressee: "",
            from: &from,
            subject: &mail.subject,
            text: &mail.text,
            category: Category::Other,
            state: head.state,
            received_at,
            accepted_at: head.accepted_at,
            license_due: None,
            contract_id: head.contract_id.as_deref(),
            entitlement: &entitlement,
            message_id: mail.message_id.as_deref(),
            references: &mail.references,
        };
        let notice = follow_up_notification(&self.config.desk.notify, &letter, note);
        self.queue(conn, &notice, None, now)?;
        Ok(())
    }

    /// Composes and queues one mail in the current transaction (invariant 4), and records it
    /// on the ticket: an article for customer replies, a thread id either way.
    fn queue(
        &self,
        conn: &Connection,
        outgoing: &OutgoingMail,
        auto_reply_to: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<i64, DeskError> {
        let id = message_id(
            &self.config.desk.ticket_prefix,
            outgoing.ticket,
            self.random_token()?,
            &self.domain,
        );
        let composed = compose(
            self.config.desk.reply_charset,
            outgoing,
            &self.config.desk.address,
            DESK_NAME,
            &id,
            now,
        )
        .map_err(|source| DeskError::Compose {
            ticket: outgoing.ticket,
            source,
        })?;
        let outbox = db::insert_outbox(
            conn,
            &OutboxRow {
                ticket: outgoing.ticket,
                kind: outgoing.kind.code(),
                auto_reply_to,
                message_id: &id,
                sender: &composed.sender,
                recipients: &composed.recipients,
                subject: &outgoing.subject,
                raw: &composed.raw,
                now,
            },
        )?;
        db::insert_thread_id(conn, &id, outgoing.ticket, true)?;
        if auto_reply_to.is_some() {
            db::insert_article(
                conn,
                &ArticleRow {
                    ticket: outgoing.ticket,
                    inbound: false,
                    message: None,
                    outbox: Some(outbox),
                    author: &self.config.desk.address,
                    created_at: now,
                    subject: &outgoing.subject,
                    text: &outgoing.body,
                },
            )?;
        }
        Ok(outbox)
    }

    /// Queues a note to staff that a delivery failed for good. Never for a failed staff
    /// notification itself: that would only fail the same way, again and again.
    fn tell_staff_delivery_failed(
        &self,
        conn: &Connection,
        failed: &db::FailedDelivery,
        detail: &str,
        now: DateTime<Utc>,
    ) -> Result<(), DeskError> {
        if self.config.desk.notify.is_empty()
            || failed.kind == OutgoingKind::StaffNotification.code()
        {
            return Ok(());
        }
        let notice = delivery_failure_notice(
            &self.config.desk.notify,
            &self.config.desk.ticket_prefix,
            failed.ticket,
            &failed.kind,
            &failed.recipients,
            detail,
        );
        self.queue(conn, &notice, None, now)?;
        Ok(())
    }

    /// Sends what is due. A message is marked sent only after the sender accepted it.
    pub async fn send_due<T: Sender>(
        &mut self,
        sender: &mut T,
        now: DateTime<Utc>,
        summary: &mut PassSummary,
    ) -> Result<(), DeskError> {
        loop {
            let due = self.store.due_outbox(now, BATCH)?;
            if due.is_empty() {
                return Ok(());
            }
            let mut progressed = false;
            // In slices of the sender's parallelism, each recorded before the next goes out:
            // a crash mid-send resends at most one slice (invariant 4).
            let mut relay_down: Option<String> = None;
            for slice in due.chunks(sender.parallelism().max(1)) {
                let results = match &relay_down {
                    // The relay refused a whole slice for temporary reasons: the rest wait for
                    // the next attempt too, instead of each paying for its own connect.
                    Some(why) => slice
                        .iter()
                        .map(|_| Err(SendError::Temporary(why.clone())))
                        .collect(),
                    None => sender.send_all(slice).await,
                };
                if relay_down.is_none()
                    && let Some(Err(SendError::Temporary(why))) = results.first()
                    && results
                        .iter()
                        .all(|r| matches!(r, Err(SendError::Temporary(_))))
                {
                    relay_down = Some(why.clone());
                }
                // One transaction per slice: the outcomes land together, fast.
                let desk = &*self;
                progressed |= desk.store.in_transaction(|conn| {
                    let mut moved = false;
                    for (message, result) in slice.iter().zip(results) {
                        moved |= desk.record_send(conn, message, result, now, summary)?;
                    }
                    Ok::<_, DeskError>(moved)
                })?;
            }
            if !progressed || due.len() < BATCH {
                return Ok(());
            }
        }
    }

    /// Records one send's outcome; true when the outbox moved on (sent, or failed for good).
    fn record_send(
        &self,
        conn: &Connection,
        message: &Queued,
        result: Result<(), SendError>,
        now: DateTime<Utc>,
        summary: &mut PassSummary,
    ) -> Result<bool, DeskError> {
        match result {
            Ok(()) => {
                self.store.mark_sent(message.outbox_id, now)?;
                summary.sent += 1;
                Ok(true)
            }
            Err(SendError::Temporary(why)) => {
                let attempts = self.store.attempts(message.outbox_id)?;
                let next = now + retry_delay(attempts);
                self.store.mark_retry(message.outbox_id, &why, next)?;
                summary.send_retries += 1;
                tracing::warn!(outbox = message.outbox_id, error = %why, next = %next, "Send failed; will retry.");
                Ok(false)
            }
            Err(SendError::Permanent(why)) => {
                let failed = self.store.mark_failed(message.outbox_id, &why)?;
                summary.send_failures += 1;
                tracing::error!(outbox = message.outbox_id, error = %why, "Send refused for good.");
                if let Some(failed) = failed {
                    self.tell_staff_delivery_failed(conn, &failed, &why, now)?;
                }
                Ok(true)
            }
        }
    }
}

/// The name on the desk's From line.
pub const DESK_NAME: &str = "desknet's NEO 分散サーバー サポート窓口";

/// Capped exponential backoff for temporary send failures: 30 s, 1 min, 2 min … 1 h.
pub fn retry_delay(attempts: u32) -> Duration {
    Duration::seconds((30i64 << attempts.min(7)).min(3600))
}

/// The customer's address and name as a ticket records them: the form's claims when the mail
/// came through a form, otherwise the sender.
fn customer_of(mail: &InboundMail) -> (String, String) {
    if let Some(form) = &mail.form {
        let address = form
            .get(FormField::Email)
            .and_then(single_address)
            .unwrap_or_default();
        let name = [
            form.get(FormField::Company),
            form.get(FormField::ContactName),
        ]
        .into_iter()
        .flatten()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
        return (address, name);
    }
    let from = mail.from.as_ref();
    (
        from.map(|m| m.address.clone()).unwrap_or_default(),
        from.and_then(|m| m.name.clone()).unwrap_or_default(),
    )
}
