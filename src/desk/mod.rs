//! The desk: one pass of intake → decide → commit → acknowledge, the acceptance scheduler and
//! the outbox worker. This is the shell around `core::ticket::decide`: it gathers what the
//! decision needs from the store, runs it, and executes the result in one transaction per batch.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};
use tracing::Instrument;

use crate::config::Config;
use crate::core::auth::{DkimReport, StaffAuthentication};
use crate::core::calendar::{BusinessCalendar, CalendarError};
use crate::core::classify::ClassifyRules;
use crate::core::decide::{Decision, DeskRules};
use crate::core::matching::ContractBook;
use crate::intake::{Ack, Incoming, IntakeError, Source};
use crate::outbound::{ComposeError, SendError, Sender};
use crate::service::{Backlog, Progress};
use crate::stage;
use crate::store::{Store, StoreError};

pub mod dkim;
mod due;
mod health;
mod license;
mod release;
mod reminders;
mod shell;
use dkim::{DkimError, DkimVerifier};
pub use license::{LicenseSettings, license_settings};
pub use release::{ReleaseRefused, Released};
use shell::contract_book;

#[derive(Debug, thiserror::Error)]
pub enum DeskError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Intake(#[from] IntakeError),
    #[error(transparent)]
    Dkim(#[from] DkimError),
    #[error("cannot build the business calendar")]
    Calendar(#[from] CalendarError),
    #[error("cannot keep raw mail in {path}")]
    Files {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot load the license key issuer")]
    License(#[source] crate::license::LicenseError),
    #[error("the store worker failed: {0}")]
    Worker(String),
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
    pub keys_issued: usize,
    pub key_failures: usize,
    pub license_notices: usize,
    /// Renewal reminders, staff reminders and digests queued.
    pub reminders: usize,
}

impl PassSummary {
    /// Two passes' counts together.
    pub fn plus(self, other: &PassSummary) -> PassSummary {
        PassSummary {
            messages: self.messages + other.messages,
            new_tickets: self.new_tickets + other.new_tickets,
            follow_ups: self.follow_ups + other.follow_ups,
            recorded: self.recorded + other.recorded,
            quarantined: self.quarantined + other.quarantined,
            duplicates: self.duplicates + other.duplicates,
            already_seen: self.already_seen + other.already_seen,
            opened: self.opened + other.opened,
            sent: self.sent + other.sent,
            send_retries: self.send_retries + other.send_retries,
            send_failures: self.send_failures + other.send_failures,
            keys_issued: self.keys_issued + other.keys_issued,
            key_failures: self.key_failures + other.key_failures,
            license_notices: self.license_notices + other.license_notices,
            reminders: self.reminders + other.reminders,
        }
    }
}

/// The desk: the configured rules, the calendar and the store, shared with the blocking
/// threads the store work runs on (nothing blocks the async runtime: IDLE keep-alives,
/// signals and the watchdog are served while SQLite waits for a lock).
pub struct Desk {
    shell: Arc<Shell>,
    /// Makes license keys; `None` until `run` loads `[license]` (`Desk::set_issuer`).
    issuer: Option<Arc<crate::license::Issuer>>,
    /// With `[staff] authentication = "dkim"`: the verifier staff mail is checked with before
    /// its batch goes to the store thread.
    dkim: Option<Arc<DkimVerifier>>,
    /// Counts the steps of a pass as they finish, for the daemon's watchdog.
    progress: Progress,
}

/// What the store work needs, owned together so it can move to a blocking thread.
struct Shell {
    config: Config,
    calendar: BusinessCalendar,
    store: Mutex<Store>,
    rules: DeskRules,
    classify_rules: ClassifyRules,
    domain: String,
    /// The contract register as last loaded, with the database's `data_version` then: reloaded
    /// only when another connection (a `contracts import`) has committed since.
    book: Mutex<Option<(i64, Arc<ContractBook>)>>,
    license: LicenseSettings,
    /// When the reminders were last looked over and what falls due next (`desk/reminders.rs`).
    reminder_scan: Mutex<reminders::ReminderScan>,
}

/// A batch ready for its transaction ([`Desk::ready`]): the messages, in order, each with its
/// DKIM report and what [`Shell::prepare`] made of it.
#[derive(Default)]
struct Ready {
    messages: Vec<Incoming>,
    dkim: Vec<Option<DkimReport>>,
    prepared: Vec<shell::Prepared>,
}

/// Messages taken from the source in one transaction.
pub const BATCH: usize = 200;

/// Staff notifications about one ticket in an hour, at most: a ticket that mail keeps arriving
/// on (a loop, a flood) cannot flood the staff in turn; everything stays on the ticket.
pub const NOTIFY_LIMIT_PER_TICKET_HOUR: u32 = 6;

/// A lock whose holder panicked still guards consistent data: SQLite rolled the transaction
/// back, and the register cache is only a cache.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Desk {
    pub fn open(config: Config) -> Result<Self, DeskError> {
        let store = Store::open(&config.storage.database)?;
        Self::with_store(config, store)
    }

    /// A desk over a store already open (an in-memory one for dry runs and tests).
    pub fn with_store(config: Config, store: Store) -> Result<Self, DeskError> {
        let calendar = BusinessCalendar::new(config.calendar.clone())?;
        let desk_address = config.desk.address.to_ascii_lowercase();
        let domain = desk_address
            .rsplit_once('@')
            .map_or("madoguchi.invalid".to_string(), |(_, d)| d.to_string());
        let lower = |list: &[String]| list.iter().map(|s| s.to_ascii_lowercase()).collect();
        let rules = DeskRules {
            desk_addresses: vec![desk_address],
            desk_address: config.desk.address.clone(),
            ticket_prefix: config.desk.ticket_prefix.clone(),
            timezone: calendar.timezone(),
            staff: lower(&config.desk.staff),
            notify: lower(&config.desk.notify),
            reopen_days: i64::from(config.desk.reopen_days),
            auto_reply_limit_per_hour: config.desk.auto_reply_limit_per_hour,
            notify_limit_per_ticket_hour: NOTIFY_LIMIT_PER_TICKET_HOUR,
            flood_per_hour: config.desk.flood_per_hour,
            staff_policy: config.staff.authentication.clone(),
        };
        let classify_rules = config.classify.clone();
        let license = license_settings(&config);
        let dkim = match rules.staff_policy {
            StaffAuthentication::Dkim => Some(Arc::new(DkimVerifier::new(
                config.staff.dns_resolver,
                rules.staff.clone(),
            )?)),
            _ => None,
        };
        Ok(Self {
            dkim,
            issuer: None,
            progress: Progress::default(),
            shell: Arc::new(Shell {
                license,
                config,
                calendar,
                store: Mutex::new(store),
                rules,
                classify_rules,
                domain,
                book: Mutex::new(None),
                reminder_scan: Mutex::new(reminders::ReminderScan::default()),
            }),
        })
    }

    /// The store, for the CLI and tests (blocking: not for the daemon's async task).
    pub fn store(&self) -> MutexGuard<'_, Store> {
        lock(&self.shell.store)
    }

    /// Mutable access may change the contracts through this very connection, which
    /// `data_version` does not see: the cached register is dropped.
    pub fn store_mut(&mut self) -> MutexGuard<'_, Store> {
        *lock(&self.shell.book) = None;
        lock(&self.shell.store)
    }

    pub fn calendar(&self) -> &BusinessCalendar {
        &self.shell.calendar
    }

    pub fn config(&self) -> &Config {
        &self.shell.config
    }

    /// The steps of passes as they finish (the daemon's watchdog watches it move).
    pub fn progress(&self) -> Progress {
        self.progress.clone()
    }

    /// The open tickets and the unsent mail, for the daemon's status line (off the runtime).
    pub async fn backlog(&self) -> Result<Backlog, DeskError> {
        self.off_runtime(|shell| {
            let store = lock(&shell.store);
            let count = |sql: &str| store.count(sql).map(|n| u64::try_from(n).unwrap_or(0));
            Ok(Backlog {
                open_tickets: count("SELECT COUNT(*) FROM tickets WHERE state != 'closed'")?,
                awaiting_acceptance: count(
                    "SELECT COUNT(*) FROM tickets WHERE state = 'waiting_acceptance'",
                )?,
                outbox_pending: count("SELECT COUNT(*) FROM outbox WHERE state = 'pending'")?,
            })
        })
        .await
    }

    /// The contract register as the decision needs it, with each contract's periods.
    pub fn contract_book(&self) -> Result<ContractBook, DeskError> {
        contract_book(&self.store())
    }

    /// What the desk's DKIM verifier finds in `raw` (`[staff] authentication = "dkim"`, mail
    /// from a staff address; else `None`), for [`Desk::explain`]. Looks keys up in DNS.
    pub async fn check_dkim(
        &self,
        raw: Vec<u8>,
    ) -> Result<(Vec<u8>, Option<DkimReport>), DeskError> {
        let (mut raws, mut reports) = self.dkim_reports(vec![raw]).await?;
        Ok((raws.pop().unwrap_or_default(), reports.pop().flatten()))
    }

    /// What the desk's DKIM verifier finds in each message, in order (all `None` unless
    /// `[staff] authentication = "dkim"`). On a blocking thread: parsing hashes each body.
    async fn dkim_reports<T: AsRef<[u8]> + Send + 'static>(
        &self,
        batch: Vec<T>,
    ) -> Result<(Vec<T>, Vec<Option<DkimReport>>), DeskError> {
        let Some(verifier) = self.dkim.clone() else {
            let none = vec![None; batch.len()];
            return Ok((batch, none));
        };
        let handle = tokio::runtime::Handle::current();
        let checked = tokio::task::spawn_blocking(move || {
            let raws: Vec<&[u8]> = batch.iter().map(AsRef::as_ref).collect();
            let reports = dkim::reports_blocking(&verifier, &handle, &raws);
            drop(raws);
            (batch, reports)
        })
        .await
        .map_err(|e| DeskError::Worker(e.to_string()));
        self.progress.step();
        checked
    }

    /// What the desk would do with `raw` arriving at `received_at`, decided at `now` by the
    /// same code a pass runs, against the real store, in a transaction that is rolled back:
    /// `mail inspect` can never disagree with `run`. `dkim`: what [`Desk::check_dkim`] found.
    pub fn explain(
        &self,
        raw: Vec<u8>,
        dkim: Option<DkimReport>,
        received_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(crate::mail::ReadMessage, Decision), DeskError> {
        let shell = &self.shell;
        let store = lock(&shell.store);
        let book = shell.current_book(&store)?;
        let sha = hex::encode(Sha256::digest(&raw));
        let message = Incoming {
            key: format!("inspect:{sha}"),
            handle: String::new(),
            raw,
            received_at,
            too_big: None,
        };
        let prepared = shell.prepare(&message, sha);
        store.dry_run(|tx| shell.consider(tx, &message, prepared, dkim.as_ref(), &book, now))
    }

    /// The next moment scheduled work falls due after `now` (read off the runtime): a ticket's
    /// acceptance, a retry, a license key, an approval reminder, an R8 escalation, a renewal
    /// or staff reminder, or the morning digest.
    pub async fn next_due(&self, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, DeskError> {
        self.off_runtime(move |shell| {
            let stored = lock(&shell.store).next_due()?;
            let notice = shell.next_license_notice(now)?;
            let reminder = shell.next_reminder(now)?;
            Ok(stored.into_iter().chain(notice).chain(reminder).min())
        })
        .await
    }

    /// Runs store and file work on a blocking thread, off the async runtime. If the caller
    /// stops waiting (a stop's deadline), the work still finishes or rolls back on its own:
    /// nothing is acknowledged or marked sent before it committed.
    async fn off_runtime<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Shell) -> Result<T, DeskError> + Send + 'static,
    ) -> Result<T, DeskError> {
        let shell = self.shell.clone();
        let done = tokio::task::spawn_blocking(move || work(&shell))
            .await
            .map_err(|e| DeskError::Worker(e.to_string()))?;
        self.progress.step();
        done
    }

    /// Everything pending and due: all mail in the source, tickets whose acceptance time has
    /// come, and the outbox. The outbox starts sending as soon as the first batch committed,
    /// beside the intake of the rest (a burst's first reply does not wait for the whole
    /// burst). When the source fails (the mail server down or misbehaving), what is due is
    /// still done and sent, and the pass then fails with the source's error: a broken mailbox
    /// must not hold back the replies, keys and notices already owed.
    pub async fn pass<S: Source, T: Sender>(
        &mut self,
        source: &mut S,
        sender: &mut T,
        now: DateTime<Utc>,
    ) -> Result<PassSummary, DeskError> {
        let mut summary = PassSummary::default();
        let (intake, sent) = self.intake_sending(source, sender, now, &mut summary).await;
        if let Err(e) = &intake
            && !matches!(e, DeskError::Intake(_))
        {
            return intake.map(|()| summary);
        }
        summary = summary.plus(&sent?);
        if let Err(e) = intake {
            self.due_work(sender, now, &mut summary).await?;
            return Err(e);
        }
        self.due_work(sender, now, &mut summary).await?;
        Ok(summary)
    }

    /// The intake of every message in the source, and beside it the sending of what each
    /// committed batch queued. Returns the intake's outcome and what was sent.
    async fn intake_sending<S: Source, T: Sender>(
        &self,
        source: &mut S,
        sender: &mut T,
        now: DateTime<Utc>,
        summary: &mut PassSummary,
    ) -> (Result<(), DeskError>, Result<PassSummary, DeskError>) {
        let (committed, mut batches) = tokio::sync::watch::channel(0u64);
        let intake = async move {
            let taken = self.intake_all(source, now, summary, &committed).await;
            // Dropping the sender ends the sending below once it has seen the last batch.
            drop(committed);
            taken
        };
        let sending = async {
            let mut sent = PassSummary::default();
            while batches.changed().await.is_ok() {
                self.send_due(sender, now, &mut sent).await?;
            }
            Ok(sent)
        };
        futures::join!(intake, sending)
    }

    /// Acceptances that have come, license work, and the outbox.
    async fn due_work<T: Sender>(
        &mut self,
        sender: &mut T,
        now: DateTime<Utc>,
        summary: &mut PassSummary,
    ) -> Result<(), DeskError> {
        summary.opened = self
            .off_runtime(move |shell| Ok(lock(&shell.store).write(|tx| tx.open_accepted(now))?))
            .await?;
        self.license_work(now, summary).await?;
        // Mail taken in or tickets opened may start a wait for staff.
        let events = summary.messages > 0 || summary.opened > 0;
        summary.reminders += self
            .off_runtime(move |shell| shell.reminder_work(now, events))
            .await?;
        self.send_due(sender, now, summary).await
    }

    /// Every message in the source, batch by batch; `committed` counts the batches committed.
    /// When the source [fetches ahead](Source::fetches_ahead) it is a pipeline: while batch k
    /// is decided and committed on the store's blocking thread, the source acknowledges batch
    /// k − 1 (committed before) and fetches batch k + 1, leaving out batch k's messages (in
    /// flight), and batch k + 1 is made [ready](Desk::ready) (read and classified). Nothing is acknowledged before the transaction that recorded it committed
    /// (invariant 2); a failure drops what was fetched ahead, unacknowledged (read again).
    async fn intake_all<S: Source>(
        &self,
        source: &mut S,
        now: DateTime<Utc>,
        summary: &mut PassSummary,
        committed: &tokio::sync::watch::Sender<u64>,
    ) -> Result<(), DeskError> {
        let ahead = source.fetches_ahead();
        let name = source.name();
        let mut batch = self.fetch_batch(source, &HashSet::new()).await?;
        // A committed batch whose acknowledgement has not gone out yet.
        let mut unacked: Option<(Vec<Incoming>, Vec<Ack>)> = None;
        loop {
            while !batch.messages.is_empty() {
                let in_flight: HashSet<String> = if ahead {
                    batch.messages.iter().map(|m| m.key.clone()).collect()
                } else {
                    HashSet::new()
                };
                let recording = self.record_batch(name.clone(), batch, now);
                let (recorded, next) = if ahead {
                    let previous = unacked.take();
                    let source_work = async {
                        if let Some((done, acks)) = previous {
                            self.ack_batch(source, done, acks).await?;
                        }
                        self.fetch_batch(source, &in_flight).await
                    };
                    let (recorded, next) = futures::join!(recording, source_work);
                    (recorded, Some(next))
                } else {
                    (recording.await, None)
                };
                let (done, acks, counts) = recorded?;
                *summary = summary.plus(&counts);
                committed.send_modify(|n| *n += 1);
                // Until the source is empty, whatever batch size it hands out; but a batch of
                // only already-recorded messages (one the source could not move on) ends the
                // pass, so a stuck message cannot spin it.
                let progressed = counts.messages > 0;
                match next {
                    None => {
                        self.ack_batch(source, done, acks).await?;
                        if !progressed {
                            return Ok(());
                        }
                        batch = self.fetch_batch(source, &HashSet::new()).await?;
                    }
                    Some(Err(e)) => {
                        // This batch is committed: its acknowledgement is tried all the same
                        // (the source reconnects); if that fails too, the mail is read again
                        // and recognised.
                        if let Err(also) = self.ack_batch(source, done, acks).await {
                            tracing::debug!("{}", crate::report::chain(&also));
                        }
                        return Err(e);
                    }
                    Some(Ok(next)) => {
                        if !progressed {
                            return self.ack_batch(source, done, acks).await;
                        }
                        unacked = Some((done, acks));
                        batch = next;
                    }
                }
            }
            // The last batch's acknowledgement, then one more look: mail may have come during
            // the pass, and the pass ends, as without pipelining, on a fetch after the last
            // acknowledgement (IMAP: whatever the acknowledging announced, that search has seen).
            let Some((done, acks)) = unacked.take() else {
                return Ok(());
            };
            self.ack_batch(source, done, acks).await?;
            batch = self.fetch_batch(source, &HashSet::new()).await?;
        }
    }

    /// The next batch from the source, leaving out `in_flight`, made [ready](Desk::ready).
    async fn fetch_batch<S: Source>(
        &self,
        source: &mut S,
        in_flight: &HashSet<String>,
    ) -> Result<Ready, DeskError> {
        let batch = source
            .fetch_more(BATCH, in_flight)
            .instrument(stage!("fetch"))
            .await?;
        self.progress.step();
        self.ready(batch).await
    }

    /// A batch made ready for its transaction: DKIM checks of staff mail, then each message
    /// hashed, read and classified ([`Shell::prepare`]) on a blocking thread of its own, so
    /// that in the pipeline this runs beside the store thread's work on the batch before.
    async fn ready(&self, messages: Vec<Incoming>) -> Result<Ready, DeskError> {
        if messages.is_empty() {
            return Ok(Ready::default());
        }
        let (messages, dkim) = self.dkim_reports(messages).await?;
        self.off_runtime(move |shell| {
            let prepared = messages
                .iter()
                .map(|m| {
                    let sha = stage!("sha256").in_scope(|| hex::encode(Sha256::digest(&m.raw)));
                    shell.prepare(m, sha)
                })
                .collect();
            Ok(Ready {
                messages,
                dkim,
                prepared,
            })
        })
        .await
    }

    /// Acknowledges a committed batch to the source.
    async fn ack_batch<S: Source>(
        &self,
        source: &mut S,
        batch: Vec<Incoming>,
        acks: Vec<Ack>,
    ) -> Result<(), DeskError> {
        let acks: Vec<(&Incoming, Ack)> = batch.iter().zip(acks).collect();
        source.ack_batch(&acks).instrument(stage!("move")).await?;
        self.progress.step();
        Ok(())
    }

    /// Records a batch in one transaction, then acknowledges it to the source (the fuzz
    /// target's demo inbox).
    pub async fn intake_batch<S: Source>(
        &mut self,
        source: &mut S,
        batch: Vec<Incoming>,
        now: DateTime<Utc>,
        summary: &mut PassSummary,
    ) -> Result<(), DeskError> {
        let batch = self.ready(batch).await?;
        let (batch, acks, counts) = self.record_batch(source.name(), batch, now).await?;
        *summary = summary.plus(&counts);
        self.ack_batch(source, batch, acks).await
    }

    /// Records a ready batch in one transaction on the store's blocking thread: hands back
    /// the messages, how to acknowledge each, and the counts.
    async fn record_batch(
        &self,
        source_name: String,
        batch: Ready,
        now: DateTime<Utc>,
    ) -> Result<(Vec<Incoming>, Vec<Ack>, PassSummary), DeskError> {
        self.off_runtime(move |shell| {
            let _tx = stage!("tx").entered();
            let Ready {
                messages,
                dkim,
                prepared,
            } = batch;
            let mut counts = PassSummary::default();
            let store = lock(&shell.store);
            let book = shell.current_book(&store)?;
            let acks = store.write(|tx| {
                let mut acks = Vec::with_capacity(messages.len());
                for ((message, dkim), prepared) in messages.iter().zip(&dkim).zip(prepared) {
                    let ack = shell.record(
                        tx,
                        &source_name,
                        message,
                        prepared,
                        dkim.as_ref(),
                        &book,
                        now,
                        &mut counts,
                    )?;
                    acks.push(ack);
                }
                Ok::<_, DeskError>(acks)
            })?;
            Ok((messages, acks, counts))
        })
        .await
    }

    /// Sends what is due. A message is marked sent only after the sender accepted it.
    pub async fn send_due<T: Sender>(
        &self,
        sender: &mut T,
        now: DateTime<Utc>,
        summary: &mut PassSummary,
    ) -> Result<(), DeskError> {
        loop {
            let due = self
                .off_runtime(move |shell| Ok(lock(&shell.store).due_outbox(now, BATCH)?))
                .await?;
            if due.is_empty() {
                return Ok(());
            }
            let mut progressed = false;
            // In slices of the sender's parallelism, each recorded before the next goes out:
            // a crash mid-send resends at most one slice (invariant 4).
            let mut relay_down: Option<String> = None;
            for slice in due.chunks(sender.parallelism().max(1)) {
                let results: Vec<Result<(), SendError>> = match &relay_down {
                    // The relay refused a whole slice for temporary reasons: the rest wait for
                    // the next attempt too, instead of each paying for its own connect.
                    Some(why) => slice
                        .iter()
                        .map(|_| Err(SendError::Temporary(why.clone())))
                        .collect(),
                    None => {
                        let results = sender.send_all(slice).instrument(stage!("send")).await;
                        self.progress.step();
                        results
                    }
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
                let slice = slice.to_vec();
                let mut counts = *summary;
                let (moved, counts) = self
                    .off_runtime(move |shell| {
                        let _span = stage!("record_send").entered();
                        let moved = lock(&shell.store).write(|tx| {
                            let mut moved = false;
                            for (message, result) in slice.iter().zip(results) {
                                moved |=
                                    shell.record_send(tx, message, result, now, &mut counts)?;
                            }
                            Ok::<_, DeskError>(moved)
                        })?;
                        Ok((moved, counts))
                    })
                    .await?;
                *summary = counts;
                progressed |= moved;
            }
            if !progressed || due.len() < BATCH {
                return Ok(());
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
