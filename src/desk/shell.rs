//! The store side of the desk: gathers what a decision needs inside the batch's transaction,
//! calls `core::decide`, and carries out the effects it returns. Runs on a blocking thread.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use super::{DESK_NAME, DeskError, PassSummary, Shell, lock, retry_delay};
use crate::core::auth::{DkimReport, StaffAuth};
use crate::core::classify::{Category, classify};
use crate::core::decide::{
    CustomerThread, Decision, Effect, Intake, Outcome, SameMessage, StaffContext, decide,
    delivery_failed, reply_address, single_address,
};
use crate::core::decide::{LicenseIntake, SenderLoad};
use crate::core::guard::{Guard, NoReplyReason, assess};
use crate::core::inbound::InboundMail;
use crate::core::license::{Application, ApplicationState};
use crate::core::matching::ContractBook;
use crate::core::reply::{INTERNAL_BEGIN, INTERNAL_END, NO_TICKET, OutgoingKind, OutgoingMail};
use crate::core::ticket::{
    ArticleKind, ContractFacts, ThreadedBy, TicketFacts, Verdict, admits, desk_message_id,
    find_tag, message_id, ticket_in_message_id,
};
use crate::intake::{Ack, Incoming};
use crate::mail::{ReadMessage, ReadOptions, read_message_with};
use crate::outbound::{AttachedFile, Queued, SendError, compose};
use crate::store::tickets::{ArticleRow, CustomerRow, MessageRow, OutboxRow, TicketRow, Tx};
use crate::store::{Store, StoreError};

/// What a message gives without the store ([`Shell::prepare`]).
pub(super) struct Prepared {
    pub(super) sha: String,
    read: ReadMessage,
    category: Category,
    application: Option<Application>,
}

/// The contract register as the decision needs it, with each contract's periods.
pub(super) fn contract_book(store: &Store) -> Result<ContractBook, DeskError> {
    let contracts = store.contracts()?;
    Ok(ContractBook::new(
        contracts
            .into_iter()
            .map(|c| {
                let facts = ContractFacts::from_orders(c.contract, &c.orders);
                if let Err(problem) = &facts.periods {
                    // Entitlement says "unknown" and staff are told; the why goes to the log.
                    tracing::warn!(contract = %facts.contract_id, %problem, "A contract's orders give no support period.");
                }
                facts
            })
            .collect(),
    ))
}

impl Shell {
    fn read_options(&self) -> ReadOptions<'_> {
        ReadOptions {
            form_senders: &self.config.desk.form_senders,
            form_labels: &self.config.form_labels,
        }
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
    pub(super) fn current_book(&self, store: &Store) -> Result<Arc<ContractBook>, DeskError> {
        let version = store.data_version()?;
        let mut cache = lock(&self.book);
        if let Some((seen, book)) = &*cache
            && *seen == version
        {
            return Ok(book.clone());
        }
        let book = Arc::new(contract_book(store)?);
        *cache = Some((version, book.clone()));
        Ok(book)
    }

    /// An unguessable token for Message-IDs: 128 bits from the operating system's CSPRNG.
    pub(super) fn random_token(&self) -> Result<u128, DeskError> {
        let mut bytes = [0u8; 16];
        getrandom::getrandom(&mut bytes).map_err(DeskError::Random)?;
        Ok(u128::from_le_bytes(bytes))
    }

    /// What `message` gives without the store (its SHA-256 is `sha`): read, classified, a
    /// license application found. Pure CPU work, done for a batch on a thread of its own
    /// before the batch's transaction (the pipeline's second core, issue 14).
    pub(super) fn prepare(&self, message: &Incoming, sha: String) -> Prepared {
        let read = crate::stage!("parse")
            .in_scope(|| read_message_with(&message.raw, &self.read_options()));
        let (category, application) = crate::stage!("classify").in_scope(|| {
            let category = classify(&read.mail, &self.classify_rules);
            (category, Application::read(&read.mail, category))
        });
        Prepared {
            sha,
            read,
            category,
            application,
        }
    }

    /// Records one message: gathers what the decision needs, decides (pure), executes the
    /// effects in the batch's transaction, and says how to acknowledge it. `prepared`: what
    /// [`Shell::prepare`] made of it; `dkim`: what the desk's DKIM verifier found, when it
    /// checked the message.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn record(
        &self,
        tx: &Tx<'_>,
        source: &str,
        message: &Incoming,
        prepared: Prepared,
        dkim: Option<&DkimReport>,
        book: &ContractBook,
        now: DateTime<Utc>,
        summary: &mut PassSummary,
    ) -> Result<Ack, DeskError> {
        if let Some(verdict) = tx.seen_verdict(source, &message.key)? {
            // Recorded before a crash that came before the acknowledgement: acknowledge only.
            summary.already_seen += 1;
            return Ok(if verdict == Verdict::Quarantined {
                Ack::Quarantined
            } else {
                Ack::Processed
            });
        }
        summary.messages += 1;
        // What is logged about this message carries its key and Message-ID (the journal's
        // MAIL_KEY= and MAIL_MESSAGE_ID= fields). At ERROR level so that the span exists
        // whenever any event inside it is logged.
        let span = tracing::error_span!(
            "mail",
            mail_key = %message.key,
            mail_message_id = tracing::field::Empty
        );
        let _in_span = span.enter();
        if let Some(size) = message.too_big {
            // Never read: its bytes stay in the mailbox's quarantine folder (invariant 3's one
            // exception), and the verdict says why.
            let reason = format!(
                "message of {size} bytes is over max_message_size ({} bytes); not read",
                self.config.max_message_size
            );
            tx.insert_message(&MessageRow {
                source,
                source_key: &message.key,
                message_id: None,
                content_sha256: "",
                raw_path: "not kept: left unread in the quarantine folder",
                size: usize::try_from(size).unwrap_or(usize::MAX),
                received_at: message.received_at,
                processed_at: now,
                from_address: None,
                subject: "",
                verdict: Verdict::Quarantined,
                reason: Some(&reason),
                ticket: None,
            })?;
            summary.quarantined += 1;
            tracing::warn!(key = %message.key, size, "Quarantined a message over max_message_size, unread.");
            return Ok(Ack::Quarantined);
        }
        // The raw bytes, in the same transaction as the verdict (invariant 3).
        let sha = prepared.sha.clone();
        let sha = sha.as_str();
        let raw_path = crate::stage!("keep_raw").in_scope(|| tx.keep_raw(sha, &message.raw))?;
        let (read, decision) = self.consider(tx, message, prepared, dkim, book, now)?;
        if let Some(id) = &read.mail.message_id {
            span.record("mail_message_id", id.as_str());
        }
        let message_in = MessageIn {
            source,
            message,
            read: &read,
            sha,
            raw_path: &raw_path,
        };
        self.execute(tx, &decision.effects, Some(&message_in), now)?;
        let opened = decision.effects.iter().find_map(|e| match e {
            Effect::OpenTicket { number, .. } => Some(*number),
            _ => None,
        });
        Ok(account(&decision.outcome, opened, &message.key, summary))
    }

    /// Reads a message, gathers what the decision needs and decides: everything but carrying
    /// it out. `mail inspect` runs exactly this (in a transaction it rolls back).
    pub(super) fn consider(
        &self,
        tx: &Tx<'_>,
        message: &Incoming,
        prepared: Prepared,
        dkim: Option<&DkimReport>,
        book: &ContractBook,
        now: DateTime<Utc>,
    ) -> Result<(crate::mail::ReadMessage, Decision), DeskError> {
        let Prepared {
            sha,
            read,
            category,
            application,
        } = prepared;
        let sha = sha.as_str();
        let mail = &read.mail;
        let same_as = match &mail.message_id {
            Some(id) => tx
                .same_message(id, sha)?
                .map(|(first, ticket)| SameMessage { first, ticket }),
            None => None,
        };
        let guard = assess(mail, &self.rules.desk_addresses);
        let bounced = match (&guard, &mail.report) {
            (Guard::NoReply(NoReplyReason::Bounce), Some(report)) => {
                match &report.original_message_id {
                    Some(id) => tx.delivery_by_message_id(id)?,
                    None => None,
                }
            }
            _ => None,
        };
        let from = mail.from.as_ref().map(|m| m.address.as_str());
        let contract = crate::stage!("match").in_scope(|| book.for_mail(mail));
        let thread = self.thread_of(tx, mail, from, book)?;
        let reply_to = reply_address(mail);
        let recent_auto_replies = match &reply_to {
            Ok(to) => tx.auto_replies_since(to, now - Duration::hours(1))?,
            Err(_) => 0,
        };
        let recent_ticket_notices = match &thread {
            Some((t, _)) => tx.staff_notices_since(t.number, now - Duration::hours(1))?,
            None => 0,
        };
        let staff_facts = match (&thread, from) {
            (Some((t, _)), Some(from)) if self.rules.staff.iter().any(|s| s == from) => {
                Some(self.staff_facts(tx, mail, dkim, t.number, from)?)
            }
            _ => None,
        };
        // The flood rule counts what the sender asked before: only for mail that would open a
        // ticket (a form's customer is the form's address, never the form robot).
        let sender = if mail.form.is_some() {
            mail.form_address()
        } else {
            from.map(str::to_string)
        };
        let sender_load = match (&thread, sender) {
            (None, Some(sender)) => {
                tx.sender_load(&sender, message.received_at - Duration::hours(1))?
            }
            _ => SenderLoad::default(),
        };
        let earlier = match &application {
            Some(app) => self.earlier_application(tx, app, book)?,
            None => None,
        };
        let intake = Intake {
            mail,
            guard: &guard,
            category,
            received_at: message.received_at,
            now,
            same_as,
            thread: thread.as_ref().map(|(t, by)| (t, *by)),
            contract,
            bounced: bounced.as_ref(),
            reply_to,
            recent_auto_replies,
            recent_ticket_notices,
            sender_load,
            next_ticket: tx.next_ticket_number()?,
            staff: staff_facts.as_ref().map(|f| StaffContext {
                auth: &f.auth,
                internal: f.internal.as_deref(),
                customer: f.customer.as_ref().map(|c| CustomerThread {
                    address: &c.address,
                    subject: &c.subject,
                    message_id: c.message_id.as_deref(),
                    references: &[],
                }),
                book,
                application: f.application,
            }),
            license: application.as_ref().map(|application| LicenseIntake {
                application,
                book,
                earlier: earlier.as_ref(),
                policy: self.license.policy,
            }),
        };
        let decision =
            crate::stage!("decide").in_scope(|| decide(&intake, &self.rules, &self.calendar));
        Ok((read, decision))
    }

    /// Carries out effects in order, in the caller's transaction. `message` is the incoming
    /// message the effects are about, when there is one.
    fn execute(
        &self,
        tx: &Tx<'_>,
        effects: &[Effect],
        message: Option<&MessageIn<'_>>,
        now: DateTime<Utc>,
    ) -> Result<(), DeskError> {
        let mut message_row = None;
        for effect in effects {
            match effect {
                Effect::OpenTicket {
                    number,
                    ticket,
                    customer_address,
                    customer_name,
                    subject,
                } => {
                    let entitlement = serde_json::to_string(&ticket.entitlement).map_err(|e| {
                        StoreError::Corrupt(format!("cannot encode entitlement: {e}"))
                    })?;
                    tx.insert_ticket(&TicketRow {
                        number: *number,
                        state: ticket.state,
                        category: ticket.category.code(),
                        contract_id: ticket.contract_id.as_deref(),
                        matched_by: ticket.matched_by.map(|m| m.code()),
                        entitlement_json: &entitlement,
                        customer_address,
                        customer_name,
                        subject,
                        received_at: message.map_or(now, |m| m.message.received_at),
                        accepted_at: ticket.accepted_at,
                        license_due: ticket.license_due,
                        continues: ticket.continues,
                        now,
                    })?;
                }
                Effect::RecordMessage {
                    verdict,
                    reason,
                    ticket,
                } => {
                    let Some(m) = message else {
                        return Err(StoreError::Corrupt(
                            "a message effect without a message".into(),
                        )
                        .into());
                    };
                    let mail = &m.read.mail;
                    message_row = Some(tx.insert_message(&MessageRow {
                        source: m.source,
                        source_key: &m.message.key,
                        message_id: mail.message_id.as_deref(),
                        content_sha256: m.sha,
                        raw_path: m.raw_path,
                        size: m.message.raw.len(),
                        received_at: m.message.received_at,
                        processed_at: now,
                        from_address: mail.from.as_ref().map(|f| f.address.as_str()),
                        subject: &mail.subject,
                        verdict: *verdict,
                        reason: reason.as_deref(),
                        ticket: *ticket,
                    })?);
                }
                Effect::AddArticle { ticket, kind } => {
                    let (Some(m), Some(row)) = (message, message_row) else {
                        return Err(
                            StoreError::Corrupt("an article before its message".into()).into()
                        );
                    };
                    self.add_inbound(tx, m.read, row, *ticket, *kind, m.message.received_at)?;
                }
                Effect::SetState { ticket, state } => {
                    tx.set_ticket_state(*ticket, *state, now)?;
                }
                Effect::Touch { ticket } => tx.touch_ticket(*ticket, now)?,
                Effect::QueueMail {
                    mail,
                    auto_reply_to,
                } => {
                    self.queue(tx, mail, auto_reply_to.as_deref(), now)?;
                }
                Effect::SetContract {
                    ticket,
                    contract_id,
                } => {
                    tx.set_ticket_contract(*ticket, contract_id, now)?;
                }
                Effect::Assign { ticket, assignee } => {
                    tx.set_ticket_assignee(*ticket, assignee, now)?;
                }
                Effect::SetCategory { ticket, category } => {
                    tx.set_ticket_category(*ticket, category.code(), now)?;
                }
                Effect::FirstResponse {
                    ticket,
                    business_minutes,
                } => {
                    let at = message.map_or(now, |m| m.message.received_at);
                    tx.set_first_response(*ticket, at, *business_minutes)?;
                }
                Effect::RecordApplication {
                    ticket,
                    application,
                    verdict,
                } => {
                    let message_id = message.and_then(|m| m.read.mail.message_id.as_deref());
                    let applied_at = message.map_or(now, |m| m.message.received_at);
                    self.record_application(
                        tx,
                        *ticket,
                        application,
                        verdict,
                        message_id,
                        applied_at,
                        now,
                    )?;
                }
                Effect::ApproveLicense { ticket, by } => {
                    let at = message.map_or(now, |m| m.message.received_at);
                    tx.approve_application(*ticket, by, at)?;
                }
                Effect::MarkBounced { outbox_id, detail } => {
                    tx.mark_bounced(*outbox_id, detail)?;
                    tracing::warn!(outbox = outbox_id, %detail, "Delivery failed (bounce).");
                }
            }
        }
        Ok(())
    }

    /// What the decision needs about mail from a staff address on `ticket`: its
    /// authentication (by the trusted Authentication-Results header, or by what the desk's
    /// DKIM verifier found), the internal section of the ticket's latest notification (the
    /// fail-safe), and the customer a reply would go to.
    fn staff_facts(
        &self,
        tx: &Tx<'_>,
        mail: &InboundMail,
        dkim: Option<&DkimReport>,
        ticket: u64,
        from: &str,
    ) -> Result<StaffFacts, DeskError> {
        let auth = self
            .rules
            .staff_policy
            .judge(&mail.auth_results, dkim, from);
        let internal = tx.recent_notifications(ticket, 20)?.iter().find_map(|raw| {
            internal_section(&read_message_with(raw, &self.read_options()).mail.text)
        });
        let customer = tx
            .customer_of_ticket(ticket)?
            .filter(|c| single_address(&c.address).is_some());
        Ok(StaffFacts {
            auth,
            internal,
            customer,
            application: tx.application_state(ticket)?,
        })
    }

    /// The ticket a message names (our Message-ID, an earlier Message-ID of the ticket, the
    /// subject tag), when `core::ticket::admits` lets the sender in.
    fn thread_of(
        &self,
        tx: &Tx<'_>,
        mail: &InboundMail,
        from: Option<&str>,
        book: &ContractBook,
    ) -> Result<Option<(TicketFacts, ThreadedBy)>, DeskError> {
        let prefix = &self.config.desk.ticket_prefix;
        let mut ids: Vec<String> = mail.in_reply_to.clone();
        ids.extend(mail.references.iter().rev().cloned());
        let candidate = match tx.find_thread(&ids)? {
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
        let Some(facts) = tx.ticket_facts(number)? else {
            return Ok(None);
        };
        let contract = facts.contract_id.as_deref().and_then(|id| book.get(id));
        if !admits(&facts, by, from, contract, &self.rules.staff) {
            tracing::info!(
                ticket = number,
                "Ignored a ticket reference from a non-participant."
            );
            return Ok(None);
        }
        Ok(Some((facts, by)))
    }

    /// The bytes of the files a mail carries along, from where `add_inbound` kept them.
    fn attached_files(&self, outgoing: &OutgoingMail) -> Result<Vec<AttachedFile>, DeskError> {
        let made = outgoing.files.iter().map(|f| {
            Ok(AttachedFile {
                name: f.name.clone(),
                content_type: f.content_type.clone(),
                bytes: f.text.clone().into_bytes(),
            })
        });
        outgoing
            .attachments
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let path = self.config.storage.files.join(attachment_path(&a.sha256));
                let bytes = std::fs::read(&path).map_err(|source| DeskError::Files {
                    path: path.clone(),
                    source,
                })?;
                Ok(AttachedFile {
                    name: a
                        .name
                        .clone()
                        .filter(|n| !n.trim().is_empty())
                        .unwrap_or_else(|| format!("attachment-{}", i + 1)),
                    content_type: a.content_type.clone(),
                    bytes,
                })
            })
            .chain(made)
            .collect()
    }

    fn add_inbound(
        &self,
        tx: &Tx<'_>,
        read: &crate::mail::ReadMessage,
        message_row: i64,
        ticket: u64,
        kind: ArticleKind,
        received_at: DateTime<Utc>,
    ) -> Result<(), DeskError> {
        let mail = &read.mail;
        for (seq, (attachment, body)) in mail
            .attachments
            .iter()
            .zip(&read.attachment_bodies)
            .enumerate()
        {
            self.keep_file(&attachment_path(&attachment.sha256), body)?;
            tx.insert_attachment(message_row, seq, attachment)?;
        }
        let author = mail.from.as_ref().map_or("", |m| m.address.as_str());
        tx.insert_article(&ArticleRow {
            ticket,
            kind,
            inbound: true,
            message: Some(message_row),
            outbox: None,
            author,
            // An incoming article is dated when it arrived, not when it was processed.
            created_at: received_at,
            subject: &mail.subject,
            text: &mail.text,
        })?;
        if let Some(id) = &mail.message_id {
            tx.insert_thread_id(id, ticket, false)?;
        }
        Ok(())
    }

    /// Composes and queues one mail in the current transaction (invariant 4), and records it
    /// on the ticket: an article for customer replies, a thread id either way.
    pub(super) fn queue(
        &self,
        tx: &Tx<'_>,
        outgoing: &OutgoingMail,
        auto_reply_to: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<i64, DeskError> {
        self.queue_as(tx, outgoing, auto_reply_to, &outgoing.body, now)
    }

    /// [`Shell::queue`], with the ticket's article saying `article_text` (a key mail's article
    /// names the key's id, not the key).
    pub(super) fn queue_as(
        &self,
        tx: &Tx<'_>,
        outgoing: &OutgoingMail,
        auto_reply_to: Option<&str>,
        article_text: &str,
        now: DateTime<Utc>,
    ) -> Result<i64, DeskError> {
        let ticket = (outgoing.ticket != NO_TICKET).then_some(outgoing.ticket);
        let id = match ticket {
            Some(number) => message_id(
                &self.config.desk.ticket_prefix,
                number,
                self.random_token()?,
                &self.domain,
            ),
            None => desk_message_id(
                &self.config.desk.ticket_prefix,
                self.random_token()?,
                &self.domain,
            ),
        };
        let files = self.attached_files(outgoing)?;
        let _compose = crate::stage!("compose").entered();
        let composed = compose(
            self.config.desk.reply_charset,
            outgoing,
            &self.config.desk.address,
            DESK_NAME,
            &id,
            now.with_timezone(&self.calendar.timezone()),
            &files,
        )
        .map_err(|source| DeskError::Compose {
            ticket: outgoing.ticket,
            source,
        })?;
        let outbox = tx.insert_outbox(&OutboxRow {
            ticket,
            kind: outgoing.kind.code(),
            auto_reply_to,
            message_id: &id,
            sender: &composed.sender,
            recipients: &composed.recipients,
            subject: &outgoing.subject,
            raw: &composed.raw,
            now,
        })?;
        let Some(ticket) = ticket else {
            // About no ticket (a renewal reminder, the digest): no article, nothing to thread.
            return Ok(outbox);
        };
        tx.insert_thread_id(&id, ticket, true)?;
        // Every mail the desk sends is on the ticket: what the customer got and what staff
        // were told.
        let kind = match outgoing.kind {
            OutgoingKind::AutoReply(_) | OutgoingKind::LicenseKey | OutgoingKind::Reminder => {
                ArticleKind::AutoReply
            }
            OutgoingKind::StaffReply => ArticleKind::StaffReply,
            OutgoingKind::StaffNotification => ArticleKind::Notice,
        };
        tx.insert_article(&ArticleRow {
            ticket,
            kind,
            inbound: false,
            message: None,
            outbox: Some(outbox),
            author: &self.config.desk.address,
            created_at: now,
            subject: &outgoing.subject,
            text: article_text,
        })?;
        Ok(outbox)
    }

    /// Records one send's outcome; true when the outbox moved on (sent, or failed for good).
    pub(super) fn record_send(
        &self,
        tx: &Tx<'_>,
        message: &Queued,
        result: Result<(), SendError>,
        now: DateTime<Utc>,
        summary: &mut PassSummary,
    ) -> Result<bool, DeskError> {
        match result {
            Ok(()) => {
                tx.mark_sent(message.outbox_id, now)?;
                tx.mark_key_sent(message.outbox_id, now)?;
                summary.sent += 1;
                Ok(true)
            }
            Err(SendError::Temporary(why)) => {
                let attempts = tx.attempts(message.outbox_id)?;
                let next = now + retry_delay(attempts);
                tx.mark_retry(message.outbox_id, &why, next)?;
                summary.send_retries += 1;
                tracing::warn!(outbox = message.outbox_id, error = %why, next = %next, "Send failed; will retry.");
                Ok(false)
            }
            Err(SendError::Permanent(why)) => {
                let failed = tx.mark_failed(message.outbox_id, &why)?;
                summary.send_failures += 1;
                tracing::error!(outbox = message.outbox_id, error = %why, "Send refused for good.");
                if let Some(failed) = failed {
                    self.execute(tx, &delivery_failed(&failed, &why, &self.rules), None, now)?;
                }
                Ok(true)
            }
        }
    }
}

/// Where an attachment is kept below `[storage] files`, by its SHA-256.
fn attachment_path(sha256: &str) -> String {
    let prefix = sha256.get(..2).unwrap_or(sha256);
    format!("attachments/{prefix}/{sha256}")
}

/// What `Shell::staff_facts` gathered, owned.
struct StaffFacts {
    auth: StaffAuth,
    internal: Option<String>,
    customer: Option<CustomerRow>,
    application: Option<ApplicationState>,
}

/// The lines between a notification's internal-section fences.
fn internal_section(text: &str) -> Option<String> {
    let (_, rest) = text.split_once(INTERNAL_BEGIN)?;
    let (inside, _) = rest.split_once(INTERNAL_END)?;
    Some(inside.trim().to_string())
}

/// The incoming message effects are about.
struct MessageIn<'a> {
    source: &'a str,
    message: &'a Incoming,
    read: &'a crate::mail::ReadMessage,
    sha: &'a str,
    raw_path: &'a str,
}

/// Counts the outcome, logs it, and says how the source acknowledges the message.
fn account(outcome: &Outcome, opened: Option<u64>, key: &str, summary: &mut PassSummary) -> Ack {
    match outcome {
        Outcome::Quarantine { reason } => {
            summary.quarantined += 1;
            tracing::warn!(%key, %reason, "Quarantined message.");
            return Ack::Quarantined;
        }
        Outcome::Duplicate { .. } => summary.duplicates += 1,
        Outcome::Flood {
            ticket,
            notify,
            count,
        } => {
            summary.follow_ups += 1;
            if *notify {
                tracing::warn!(
                    ticket,
                    count,
                    "A sender is flooding the desk: their mail goes onto one ticket, without replies or notices."
                );
            }
        }
        Outcome::StaffMail(staff) => {
            summary.follow_ups += 1;
            tracing::info!(
                ticket = staff.ticket,
                relayed = staff.relayed.is_some(),
                note = staff.note.is_some(),
                refused = staff.refused.len(),
                "Staff mail."
            );
        }
        Outcome::Recorded { .. } => summary.recorded += 1,
        Outcome::NewTicket(new) => {
            summary.new_tickets += 1;
            tracing::info!(
                ticket = opened,
                category = new.category.code(),
                entitlement = new.entitlement.code(),
                "Accepted request."
            );
        }
        Outcome::FollowUp {
            ticket,
            from_staff,
            reopen_as,
            notify_staff,
            ..
        } => {
            summary.follow_ups += 1;
            if *from_staff {
                tracing::warn!(
                    ticket,
                    "Mail from a staff address recorded without acting on it (not authenticated)."
                );
            }
            if !notify_staff {
                tracing::warn!(
                    ticket,
                    "Staff not notified: the ticket's hourly notification limit is reached."
                );
            }
            tracing::info!(ticket, reopened = reopen_as.is_some(), "Added follow-up.");
        }
    }
    Ack::Processed
}
