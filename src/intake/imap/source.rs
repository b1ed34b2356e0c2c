//! The IMAP mailbox as a [`Source`]: the session's life (connect, reconnect with backoff),
//! folders and SELECT with UIDVALIDITY, fetching, acknowledging by MOVE, and IDLE.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::time::Duration;

use async_imap::Session;
use async_imap::imap_proto::{Outcome, Response, ResponseCode, Status};
use async_imap::types::UnsolicitedResponse;
use tokio::time::{Instant, timeout};

use super::ack::PendingAck;
use super::codec::mailbox_arg;
use super::error::{Failure, ImapError, Refusal};
use super::fetch::Suspect;
use super::session::{self, Caps, Completion, step};
use super::wire::Conn;
use crate::config::ImapConfig;
use crate::intake::{Ack, Incoming, IntakeError, Source};
use crate::report::chain;
use crate::tls::TlsClient;

/// One IDLE lasts at most this long: well within the 30 minutes after which servers may log an
/// idle client out (RFC 2177).
pub const IDLE_MAX: Duration = Duration::from_secs(25 * 60);
/// The pause after the first failure; it doubles per failure up to [`BACKOFF_MAX`].
pub const BACKOFF_FIRST: Duration = Duration::from_secs(1);
pub const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// How long to wait before reconnect attempt number `failures` (1 = after the first failure):
/// `BACKOFF_FIRST` doubling per failure, capped at `BACKOFF_MAX`, of which a random half
/// ("equal jitter", from `jitter`) is taken off so that many clients do not retry in step.
pub fn backoff_delay(failures: u32, jitter: u64) -> Duration {
    if failures == 0 {
        return Duration::ZERO;
    }
    let first = BACKOFF_FIRST.as_millis() as u64;
    let max = BACKOFF_MAX.as_millis() as u64;
    // 2^6 × 1 s already passes the cap; a bigger shift would only risk overflow.
    let ceiling = (first << (failures - 1).min(6)).min(max);
    let half = ceiling / 2;
    Duration::from_millis(half + jitter % (ceiling - half + 1))
}

/// The configured IMAP mailbox as a [`Source`]. The state lives on the heap, so the source is
/// as small as the others in an enum of sources.
pub struct ImapSource(pub(super) Box<State>);

impl ImapSource {
    /// Connects, logs in, creates the processed and quarantine folders when absent and selects
    /// the mailbox. The password is read now (so rotating it needs no reload) and never logged.
    /// A failure here is returned, not logged: the caller reports it.
    pub async fn connect(config: &ImapConfig) -> Result<ImapSource, IntakeError> {
        Ok(ImapSource(Box::new(State::connect(config).await?)))
    }

    /// Messages larger than `bytes` (by RFC822.SIZE) are quarantined unread.
    /// The same bound limits what the server may send (`framing`): a literal over it and
    /// [`super::LITERAL_SLACK`] fails the connection when announced.
    pub fn with_max_message_size(mut self, bytes: u64) -> Self {
        self.0.max_message_size = bytes;
        if let Some(session) = self.0.session.as_mut() {
            session.get_mut().set_max_message_size(bytes);
        }
        self
    }

    /// The mailbox's UIDVALIDITY as last selected.
    pub fn uidvalidity(&self) -> Option<u32> {
        self.0.uidvalidity
    }

    /// Whether a session is open (false after a failure, until the next call reconnects).
    pub fn is_connected(&self) -> bool {
        self.0.session.is_some()
    }
}

impl Source for ImapSource {
    fn name(&self) -> String {
        self.0.name.clone()
    }

    async fn fetch(&mut self, max: usize) -> Result<Vec<Incoming>, IntakeError> {
        self.0.fetch(max, &HashSet::new()).await
    }

    fn fetches_ahead(&self) -> bool {
        true
    }

    async fn fetch_more(
        &mut self,
        max: usize,
        in_flight: &HashSet<String>,
    ) -> Result<Vec<Incoming>, IntakeError> {
        self.0.fetch(max, in_flight).await
    }

    async fn ack_batch(&mut self, acks: &[(&Incoming, Ack)]) -> Result<(), IntakeError> {
        self.0.ack_batch(acks).await
    }

    async fn ack(&mut self, message: &Incoming, ack: Ack) -> Result<(), IntakeError> {
        self.0.ack(message, ack).await
    }

    async fn wait_for_mail(&mut self, at_most: Duration) -> Result<(), IntakeError> {
        self.0.wait_for_mail(at_most).await
    }
}

/// Everything behind [`ImapSource`]; `fetch.rs` and `ack.rs` add its fetching and
/// acknowledging.
pub(super) struct State {
    pub(super) config: ImapConfig,
    pub(super) name: String,
    /// `None` while disconnected. Taken out for the duration of every exchange, so a
    /// cancelled call (the daemon's `select!`) leaves the source disconnected, never confused.
    pub(super) session: Option<Session<Conn>>,
    pub(super) caps: Option<Caps>,
    pub(super) uidvalidity: Option<u32>,
    /// Consecutive failed attempts; drives the pause before the next one.
    pub(super) failures: u32,
    pub(super) retry_at: Option<Instant>,
    pub(super) random: RandomState,
    pub(super) draws: u64,
    /// Made at the first TLS connection and kept.
    pub(super) tls: Option<TlsClient>,
    /// Acknowledged, not yet applied on the server.
    pub(super) pending: Vec<PendingAck>,
    /// Keys of the last fetched batch not yet acknowledged.
    pub(super) outstanding: HashSet<String>,
    /// The server announced mail (EXISTS) that the next fetch has not looked at yet.
    pub(super) mail_hint: bool,
    /// Messages already reported as coming without a body (one warning each).
    pub(super) bodiless: HashSet<(u32, u32)>,
    /// Messages that broke a fetch (see [`State::strike`]).
    pub(super) suspects: HashMap<(u32, u32), Suspect>,
    /// Larger messages (RFC822.SIZE) are not fetched: handed out as [`Incoming::too_big`].
    pub(super) max_message_size: u64,
}

impl State {
    async fn connect(config: &ImapConfig) -> Result<State, IntakeError> {
        let mut source = State {
            config: config.clone(),
            name: super::retire::source_name(config),
            session: None,
            caps: None,
            uidvalidity: None,
            failures: 0,
            retry_at: None,
            random: RandomState::new(),
            draws: 0,
            tls: None,
            pending: Vec::new(),
            outstanding: HashSet::new(),
            mail_hint: false,
            bodiless: HashSet::new(),
            suspects: HashMap::new(),
            max_message_size: crate::intake::DEFAULT_MAX_MESSAGE_SIZE,
        };
        // The caller reports a failure here; the source logs only the ones it retries itself.
        match source.open().await {
            Ok(session) => {
                source.session = Some(session);
                Ok(source)
            }
            Err(f) => Err(source.error(f)),
        }
    }

    pub(super) fn error(&self, f: Failure) -> IntakeError {
        IntakeError::Server {
            action: f.action,
            server: self.name.clone(),
            source: Box::new(f.error),
        }
    }

    /// Records a failure: the session is gone, the next attempt waits, one line is logged.
    pub(super) fn failed(&mut self, f: Failure) -> IntakeError {
        self.session = None;
        self.failures = self.failures.saturating_add(1);
        self.draws = self.draws.wrapping_add(1);
        let delay = backoff_delay(self.failures, self.random.hash_one(self.draws));
        self.retry_at = Some(Instant::now() + delay);
        let retry_in = format!("{:.1} s", delay.as_secs_f64());
        let why = chain(&f.error);
        if f.login_refused() {
            tracing::error!(server = %self.name, %retry_in, "Cannot log in to the IMAP server: {why}; check intake.user and the password.");
        } else {
            tracing::warn!(server = %self.name, %retry_in, "Cannot {} on the IMAP server: {why}; reconnecting.", f.action);
        }
        self.error(f)
    }

    /// The open session, or a new one after the pause the last failure asked for.
    pub(super) async fn take_session(&mut self) -> Result<Session<Conn>, IntakeError> {
        if let Some(session) = self.session.take() {
            return Ok(session);
        }
        if let Some(at) = self.retry_at {
            tokio::time::sleep_until(at).await;
        }
        match self.open().await {
            Ok(session) => {
                if self.failures > 0 {
                    tracing::info!(server = %self.name, failures = self.failures, "Reconnected to the IMAP server.");
                }
                self.failures = 0;
                self.retry_at = None;
                Ok(session)
            }
            Err(f) => Err(self.failed(f)),
        }
    }

    /// A new session: connect, TLS, greeting, LOGIN, CAPABILITY, folders, SELECT.
    async fn open(&mut self) -> Result<Session<Conn>, Failure> {
        for name in [
            &self.config.mailbox,
            &self.config.processed,
            &self.config.quarantine,
        ] {
            if name.chars().any(char::is_control) {
                return Err(Failure::new(
                    "select the mailbox",
                    ImapError::FolderName(name.clone()),
                ));
            }
        }
        self.draws = self.draws.wrapping_add(1);
        let placeholder = format!("madoguchi-login-{:016x}", self.random.hash_one(self.draws));
        let (mut session, caps) = session::login(
            &self.config,
            &mut self.tls,
            &placeholder,
            self.max_message_size,
        )
        .await?;
        if self.caps.is_none() {
            tracing::debug!(server = %self.name, ?caps, "IMAP server capabilities.");
        }
        self.caps = Some(caps);

        for folder in [
            self.config.processed.clone(),
            self.config.quarantine.clone(),
        ] {
            let created = self
                .command(
                    &mut session,
                    "create a folder",
                    &format!("CREATE {}", mailbox_arg(&folder)),
                    |_| {},
                )
                .await?;
            match created {
                Ok(_) => {
                    tracing::info!(server = %self.name, %folder, "Created the IMAP folder.");
                    // So that staff see it in their mail clients; not needed by the desk.
                    let _ = self
                        .command(
                            &mut session,
                            "subscribe to a folder",
                            &format!("SUBSCRIBE {}", mailbox_arg(&folder)),
                            |_| {},
                        )
                        .await?;
                }
                Err(refusal) if refusal.already_exists() => {}
                // Not fatal here: a move into it fails later with the server's reason.
                Err(refusal) => {
                    tracing::warn!(server = %self.name, %folder, "Cannot create the IMAP folder: {refusal}.")
                }
            }
        }

        let mut uidvalidity = None;
        let selected = self
            .command(
                &mut session,
                "select the mailbox",
                &format!("SELECT {}", mailbox_arg(&self.config.mailbox)),
                |r| {
                    if let Response::Data {
                        status: Status::Ok,
                        outcome:
                            Outcome {
                                code: Some(ResponseCode::UidValidity(v)),
                                ..
                            },
                    } = r
                    {
                        uidvalidity = Some(*v);
                    }
                },
            )
            .await?;
        match selected {
            Err(refusal) => return Err(Failure::new("select the mailbox", refusal)),
            // Moving mail out needs write access; better said now than at every move.
            Ok(Completion { read_only: true }) => {
                return Err(Failure::new("select the mailbox", ImapError::ReadOnly));
            }
            Ok(_) => {}
        }
        let Some(uidvalidity) = uidvalidity else {
            return Err(Failure::new("select the mailbox", ImapError::NoUidValidity));
        };
        if let Some(old) = self.uidvalidity
            && old != uidvalidity
        {
            tracing::warn!(
                server = %self.name,
                old,
                new = uidvalidity,
                "The mailbox's UIDVALIDITY changed: its messages get new keys; those already recorded are recognised by Message-ID and content."
            );
        }
        self.uidvalidity = Some(uidvalidity);
        // Mail may have arrived while there was no session to announce it.
        self.mail_hint = true;
        Ok(session)
    }

    /// [`session::command`], with EXISTS and RECENT noted for the next fetch.
    pub(super) async fn command(
        &mut self,
        session: &mut Session<Conn>,
        action: &'static str,
        line: &str,
        each: impl FnMut(&Response<'_>),
    ) -> Result<Result<Completion, Refusal>, Failure> {
        session::command(
            session,
            self.config.timeout,
            action,
            line,
            &mut self.mail_hint,
            each,
        )
        .await
    }

    async fn idle(&mut self, deadline: Instant) -> Result<(), IntakeError> {
        let session = self.take_session().await?;
        // async-imap sets aside what arrives outside a command's own answer (around IDLE's start
        // and DONE): new mail among it means there is nothing to wait for.
        let unsolicited = session.unsolicited_responses.clone();
        let news = || {
            std::iter::from_fn(|| unsolicited.try_recv().ok())
                .filter(|r| {
                    matches!(
                        r,
                        UnsolicitedResponse::Exists(_) | UnsolicitedResponse::Recent(_)
                    )
                })
                .count()
                > 0
        };
        let mut announced = news();
        let mut handle = session.idle();
        if let Err(f) = step(self.config.timeout, "wait for mail (IDLE)", handle.init()).await {
            return Err(self.failed(f));
        }
        announced |= news();
        let outcome: Result<(), async_imap::error::Error> = if announced {
            Ok(())
        } else {
            let span = deadline
                .saturating_duration_since(Instant::now())
                .min(IDLE_MAX);
            let (wait, stop) = handle.wait_with_timeout(span);
            // The outer deadline too: keep-alive lines ("* OK Still here") restart the inner one.
            let result = match timeout(span, wait).await {
                Ok(Ok(response)) => {
                    tracing::trace!(?response, "IDLE ended.");
                    Ok(())
                }
                Ok(Err(e)) => Err(e),
                Err(_) => Ok(()),
            };
            drop(stop);
            result
        };
        if let Err(e) = outcome {
            return Err(self.failed(Failure::new("wait for mail (IDLE)", e)));
        }
        match step(self.config.timeout, "end IDLE", handle.done()).await {
            Ok(session) => {
                self.session = Some(session);
                Ok(())
            }
            Err(f) => Err(self.failed(f)),
        }
    }
}

/// Waiting for mail, the [`Source`] operation not in `fetch.rs` or `ack.rs`.
impl State {
    async fn wait_for_mail(&mut self, at_most: Duration) -> Result<(), IntakeError> {
        let deadline = Instant::now() + at_most;
        self.flush_acks().await?;
        if self.mail_hint {
            self.mail_hint = false;
            return Ok(());
        }
        let poll = at_most.min(self.config.poll_interval);
        if !self.config.idle {
            tokio::time::sleep(poll).await;
            return Ok(());
        }
        if self.session.is_none() {
            // Not before the pause the last failure asked for, and not past the caller's limit.
            if self.retry_at.is_some_and(|at| at > deadline) {
                tokio::time::sleep_until(deadline).await;
                return Ok(());
            }
            let session = self.take_session().await?;
            self.session = Some(session);
            // A new session: mail may have come while there was none.
            self.mail_hint = false;
            return Ok(());
        }
        if !self.caps.unwrap_or_default().idle {
            tokio::time::sleep(poll).await;
            return Ok(());
        }
        if deadline.saturating_duration_since(Instant::now()) < Duration::from_millis(10) {
            return Ok(());
        }
        self.idle(deadline).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_one_second_to_a_minute_with_equal_jitter() {
        assert_eq!(backoff_delay(0, 12345), Duration::ZERO);
        for jitter in [0, 1, 499, 500, 501, 7_777_777, u64::MAX] {
            let d1 = backoff_delay(1, jitter);
            assert!(
                (Duration::from_millis(500)..=Duration::from_secs(1)).contains(&d1),
                "{d1:?}"
            );
            let d3 = backoff_delay(3, jitter);
            assert!(
                (Duration::from_secs(2)..=Duration::from_secs(4)).contains(&d3),
                "{d3:?}"
            );
            for failures in [7, 8, 40, u32::MAX] {
                let d = backoff_delay(failures, jitter);
                assert!(
                    (Duration::from_secs(30)..=BACKOFF_MAX).contains(&d),
                    "{failures}: {d:?}"
                );
            }
        }
        // The ceiling never shrinks as failures grow.
        let ceilings: Vec<_> = (1..12).map(|n| backoff_delay(n, u64::MAX)).collect();
        assert!(ceilings.windows(2).all(|w| w[0] <= w[1]), "{ceilings:?}");
        // The jitter actually spreads the delays.
        let spread: HashSet<_> = (0..50u64).map(|j| backoff_delay(4, j * 97)).collect();
        assert!(spread.len() > 10);
    }
}
