//! The support mailbox on an IMAP server (async-imap on tokio; rustls with the system's roots).
//!
//! - One session, SELECTed on the configured mailbox. A message's key is `UIDVALIDITY:UID`, so a
//!   mailbox whose UIDVALIDITY changed yields new keys; the desk then recognises the messages by
//!   Message-ID and content hash instead of ticketing them twice.
//! - Acknowledging moves the message into the processed or quarantine folder: UID MOVE, else
//!   UID COPY + `\Deleted` + UID EXPUNGE (plain EXPUNGE only without UIDPLUS). Nothing is flagged
//!   deleted before its copy succeeded. The moves of one fetched batch go out as one command per
//!   folder once the desk has acknowledged the whole batch (always after its commit).
//! - Any I/O or protocol error drops the session; the next call reconnects after a capped,
//!   jittered exponential pause, with one log line per failure and one when it is back.
//! - Every network wait has a deadline ([`IO_TIMEOUT`]), so a silent server cannot hang the desk.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet};
use std::error::Error as StdError;
use std::hash::BuildHasher;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use async_imap::imap_proto::{
    AttributeValue, MailboxDatum, Outcome, Response, ResponseCode, Status,
};
use async_imap::types::{Capability, UnsolicitedResponse};
use async_imap::{Client, Session};
use chrono::{DateTime, Utc};
use futures::TryFutureExt;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls;

use super::{Ack, Incoming, IntakeError, Source};
use crate::config::{ImapConfig, Tls};

/// The longest any single network step may take (connect, one response, a handshake).
pub const IO_TIMEOUT: Duration = Duration::from_secs(60);
/// One IDLE lasts at most this long: well within the 30 minutes after which servers may log an
/// idle client out (RFC 2177).
pub const IDLE_MAX: Duration = Duration::from_secs(25 * 60);
/// The pause after the first failure; it doubles per failure up to [`BACKOFF_MAX`].
pub const BACKOFF_FIRST: Duration = Duration::from_secs(1);
pub const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// The longest a message that breaks the connection when fetched is left alone.
pub const SUSPECT_PAUSE_MAX: Duration = Duration::from_secs(3600);

type BoxError = Box<dyn StdError + Send + Sync>;

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

/// A sorted, de-duplicated UID list as an IMAP sequence set: `1:3,5,8:9`.
fn uid_set(uids: &[u32]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < uids.len() {
        let start = uids[i];
        let mut end = start;
        while i + 1 < uids.len() && uids[i + 1] == end.wrapping_add(1) {
            i += 1;
            end = uids[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

/// A mailbox name as IMAP wants it on the wire: modified UTF-7 (RFC 3501 §5.1.3), so folder
/// names such as `処理済み` work, in a quoted string.
fn mailbox_arg(name: &str) -> String {
    fn flush(units: &mut Vec<u16>, out: &mut String) {
        if units.is_empty() {
            return;
        }
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";
        let bytes: Vec<u8> = units.iter().flat_map(|u| u.to_be_bytes()).collect();
        out.push('&');
        for chunk in bytes.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
            // 1 byte → 2 characters, 2 → 3, 3 → 4; no padding in modified base64.
            for k in 0..=chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * k)) & 63) as usize]));
            }
        }
        out.push('-');
        units.clear();
    }
    let mut encoded = String::new();
    let mut units = Vec::new();
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut units, &mut encoded);
            if c == '&' {
                encoded.push_str("&-");
            } else {
                encoded.push(c);
            }
        } else {
            let mut buf = [0u16; 2];
            units.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush(&mut units, &mut encoded);
    quoted(&encoded)
}

/// An IMAP quoted string.
fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    out.push_str(&escaped(text));
    out.push('"');
    out
}

/// The inside of an IMAP quoted string.
fn escaped(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

/// INTERNALDATE (`25-Nov-2026 10:00:00 +0900`; the day may be space-padded: ` 5-Nov-…`).
fn parse_internal_date(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_str(text.trim(), "%d-%b-%Y %H:%M:%S %z")
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

/// `UIDVALIDITY:UID` back into its numbers.
fn parse_key(key: &str) -> Option<(u32, u32)> {
    let (validity, uid) = key.split_once(':')?;
    Some((validity.parse().ok()?, uid.parse().ok()?))
}

/// The server's own words from async-imap's NO/BAD text (`code: …, info: Some("…")`).
fn server_text(text: &str) -> String {
    text.split_once("info: Some(\"")
        .and_then(|(_, rest)| rest.rsplit_once("\")"))
        .map(|(info, _)| info.replace("\\\"", "\""))
        .unwrap_or_else(|| text.to_owned())
}

/// async-imap's error with the server's NO or BAD said plainly.
fn tidy(e: async_imap::error::Error) -> BoxError {
    match e {
        async_imap::error::Error::No(text) => {
            format!("the server said NO: {}", server_text(&text)).into()
        }
        async_imap::error::Error::Bad(text) => {
            format!("the server said BAD: {}", server_text(&text)).into()
        }
        other => Box::new(other),
    }
}

fn timed_out() -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!("no answer within {} s", IO_TIMEOUT.as_secs()),
    )
}

/// What went wrong, before it becomes an [`IntakeError`] (and a log line) in
/// [`State::failed`].
struct Failure {
    action: &'static str,
    source: BoxError,
    /// The server said no to the user and password: worth an error line, not just a warning.
    login_refused: bool,
}

impl Failure {
    fn new(action: &'static str, source: impl Into<BoxError>) -> Self {
        Failure {
            action,
            source: source.into(),
            login_refused: false,
        }
    }
}

/// Awaits one network step with [`IO_TIMEOUT`].
async fn step<T, E: Into<BoxError>>(
    action: &'static str,
    work: impl Future<Output = Result<T, E>>,
) -> Result<T, Failure> {
    match timeout(IO_TIMEOUT, work).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(Failure::new(action, e)),
        Err(_) => Err(Failure::new(action, timed_out())),
    }
}

/// Reads the server's greeting: `* OK` goes on; `* BYE` (busy, refused) is an error.
async fn greeted(mut client: Client<Conn>) -> Result<Client<Conn>, Failure> {
    let action = "read the greeting";
    let Some(greeting) = step(action, client.read_response()).await? else {
        return Err(Failure::new(action, "the server closed the connection"));
    };
    match greeting.parsed() {
        Response::Data {
            status: Status::Ok, ..
        } => Ok(client),
        other => Err(Failure::new(
            action,
            format!("the server did not greet with OK: {other:?}"),
        )),
    }
}

// ───────────────────────────── the wire ─────────────────────────────

#[derive(Debug)]
enum Wire {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// The byte stream under the IMAP client. Besides choosing plain or TLS it keeps the password
/// out of async-imap's trace log, which records every command it sends: the LOGIN command is
/// built with a random placeholder, and the placeholder is swapped for the password only here,
/// on its way into the socket.
struct Conn {
    wire: Wire,
    login: Option<(Vec<u8>, Vec<u8>)>,
    /// Bytes accepted from the client but not yet taken by the socket (the substituted LOGIN).
    queued: Vec<u8>,
    sent: usize,
}

// Hand-written: the derived one would print the password while a login is pending.
impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("tls", &matches!(self.wire, Wire::Tls(_)))
            .finish_non_exhaustive()
    }
}

impl Conn {
    fn new(wire: Wire) -> Self {
        Conn {
            wire,
            login: None,
            queued: Vec::new(),
            sent: 0,
        }
    }

    /// The next write containing `placeholder` carries `secret` instead.
    fn arm(&mut self, placeholder: &str, secret: &str) {
        self.login = Some((placeholder.as_bytes().to_vec(), secret.as_bytes().to_vec()));
    }

    fn disarm(&mut self) {
        if let Some((_, mut secret)) = self.login.take() {
            secret.fill(0);
        }
    }

    fn wire(&mut self) -> Pin<&mut (dyn AsyncWriteRead + Unpin)> {
        match &mut self.wire {
            Wire::Plain(s) => Pin::new(s),
            Wire::Tls(s) => Pin::new(s.as_mut()),
        }
    }

    /// Writes out what `poll_write` queued.
    fn poll_queued(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.queued.len() {
            let Conn {
                wire, queued, sent, ..
            } = self;
            let n = match wire {
                Wire::Plain(s) => ready!(Pin::new(s).poll_write(cx, &queued[*sent..]))?,
                Wire::Tls(s) => ready!(Pin::new(s.as_mut()).poll_write(cx, &queued[*sent..]))?,
            };
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        if !self.queued.is_empty() {
            self.queued.fill(0);
            self.queued.clear();
            self.sent = 0;
        }
        Poll::Ready(Ok(()))
    }
}

trait AsyncWriteRead: AsyncRead + AsyncWrite {}
impl<T: AsyncRead + AsyncWrite> AsyncWriteRead for T {}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.get_mut().wire().poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_queued(cx))?;
        let at = match &this.login {
            Some((placeholder, _)) => find(buf, placeholder),
            None => None,
        };
        if let Some(at) = at
            && let Some((placeholder, secret)) = this.login.take()
        {
            let mut out = Vec::with_capacity(buf.len() + secret.len());
            out.extend_from_slice(&buf[..at]);
            out.extend_from_slice(&secret);
            out.extend_from_slice(&buf[at + placeholder.len()..]);
            this.queued = out;
            this.sent = 0;
            let mut secret = secret;
            secret.fill(0);
            // Taken whole: what the socket does not accept now goes before any later byte.
            if let Poll::Ready(Err(e)) = this.poll_queued(cx) {
                return Poll::Ready(Err(e));
            }
            return Poll::Ready(Ok(buf.len()));
        }
        this.wire().poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_queued(cx))?;
        this.wire().poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_queued(cx))?;
        this.wire().poll_shutdown(cx)
    }
}

// ───────────────────────────── the source ─────────────────────────────

/// What the server can do, from CAPABILITY after login.
#[derive(Debug, Clone, Copy, Default)]
struct Caps {
    idle: bool,
    r#move: bool,
    uidplus: bool,
}

/// An acknowledgement waiting for the rest of its batch.
#[derive(Debug, Clone, Copy)]
struct PendingAck {
    uidvalidity: u32,
    uid: u32,
    ack: Ack,
}

/// A command's tagged OK, as far as the source cares.
#[derive(Debug, Clone, Copy)]
struct Completion {
    /// `[READ-ONLY]` (after SELECT).
    read_only: bool,
}

/// One message as UID FETCH returned it.
#[derive(Default)]
struct Fetched {
    internal_date: Option<String>,
    size: Option<u32>,
    body: Option<Vec<u8>>,
}

/// The configured IMAP mailbox as a [`Source`]. The state lives on the heap, so the source is
/// as small as the others in an enum of sources.
pub struct ImapSource(Box<State>);

impl ImapSource {
    /// Connects, logs in, creates the processed and quarantine folders when absent and selects
    /// the mailbox. The password is read now (so rotating it needs no reload) and never logged.
    /// A failure here is returned, not logged: the caller reports it.
    pub async fn connect(config: &ImapConfig) -> Result<ImapSource, IntakeError> {
        Ok(ImapSource(Box::new(State::connect(config).await?)))
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
        self.0.fetch(max).await
    }

    async fn ack(&mut self, message: &Incoming, ack: Ack) -> Result<(), IntakeError> {
        self.0.ack(message, ack).await
    }

    async fn wait_for_mail(&mut self, at_most: Duration) -> Result<(), IntakeError> {
        self.0.wait_for_mail(at_most).await
    }
}

struct State {
    config: ImapConfig,
    name: String,
    /// `None` while disconnected. Taken out for the duration of every exchange, so a
    /// cancelled call (the daemon's `select!`) leaves the source disconnected, never confused.
    session: Option<Session<Conn>>,
    caps: Option<Caps>,
    uidvalidity: Option<u32>,
    /// Consecutive failed attempts; drives the pause before the next one.
    failures: u32,
    retry_at: Option<Instant>,
    random: RandomState,
    draws: u64,
    tls: Option<Arc<rustls::ClientConfig>>,
    /// Acknowledged, not yet applied on the server.
    pending: Vec<PendingAck>,
    /// Keys of the last fetched batch not yet acknowledged.
    outstanding: HashSet<String>,
    /// The server announced mail (EXISTS) that the next fetch has not looked at yet.
    mail_hint: bool,
    /// Messages already reported as coming without a body (one warning each).
    bodiless: HashSet<(u32, u32)>,
    /// Messages that broke a fetch (see [`State::strike`]).
    suspects: HashMap<(u32, u32), Suspect>,
}

/// A message that broke the connection while it was being fetched.
#[derive(Debug, Clone, Copy)]
struct Suspect {
    strikes: u32,
    retry_at: Instant,
}

impl State {
    async fn connect(config: &ImapConfig) -> Result<State, IntakeError> {
        let mut source = State {
            config: config.clone(),
            name: format!(
                "imap://{}@{}:{}/{}",
                config.user, config.host, config.port, config.mailbox
            ),
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

    fn error(&self, f: Failure) -> IntakeError {
        IntakeError::Server {
            action: f.action,
            server: self.name.clone(),
            source: f.source,
        }
    }

    /// Records a failure: the session is gone, the next attempt waits, one line is logged.
    fn failed(&mut self, f: Failure) -> IntakeError {
        self.session = None;
        self.failures = self.failures.saturating_add(1);
        self.draws = self.draws.wrapping_add(1);
        let delay = backoff_delay(self.failures, self.random.hash_one(self.draws));
        self.retry_at = Some(Instant::now() + delay);
        let retry_in = format!("{:.1} s", delay.as_secs_f64());
        if f.login_refused {
            tracing::error!(server = %self.name, %retry_in, "Cannot log in to the IMAP server: {}; check intake.user and the password.", f.source);
        } else {
            tracing::warn!(server = %self.name, %retry_in, "Cannot {} on the IMAP server: {}; reconnecting.", f.action, f.source);
        }
        self.error(f)
    }

    /// The open session, or a new one after the pause the last failure asked for.
    async fn take_session(&mut self) -> Result<Session<Conn>, IntakeError> {
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

    fn tls_config(&mut self) -> Result<Arc<rustls::ClientConfig>, Failure> {
        if let Some(config) = &self.tls {
            return Ok(config.clone());
        }
        let found = rustls_native_certs::load_native_certs();
        let mut roots = rustls::RootCertStore::empty();
        for cert in found.certs {
            // One unusable certificate in the system store does not stop the others.
            let _ = roots.add(cert);
        }
        if roots.is_empty() {
            return Err(Failure::new(
                "load the trusted root certificates",
                format!(
                    "no usable root certificate in the system store ({} errors)",
                    found.errors.len()
                ),
            ));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Failure::new("set up TLS", e))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let config = Arc::new(config);
        self.tls = Some(config.clone());
        Ok(config)
    }

    async fn handshake(&mut self, tcp: TcpStream) -> Result<Wire, Failure> {
        let config = self.tls_config()?;
        let server_name = rustls::pki_types::ServerName::try_from(self.config.host.clone())
            .map_err(|e| Failure::new("start TLS", e))?;
        let tls = step(
            "start TLS",
            tokio_rustls::TlsConnector::from(config).connect(server_name, tcp),
        )
        .await?;
        Ok(Wire::Tls(Box::new(tls)))
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
                    format!("the folder name {name:?} contains a control character"),
                ));
            }
        }
        let password = self
            .config
            .password
            .resolve()
            .map_err(|e| Failure::new("read the IMAP password", e))?;
        if password.contains(['\r', '\n', '\0']) {
            return Err(Failure::new(
                "read the IMAP password",
                "the password contains a line break or NUL",
            ));
        }
        let tcp = step(
            "connect",
            TcpStream::connect((self.config.host.as_str(), self.config.port)),
        )
        .await?;
        // Commands are small and answered one at a time: Nagle would only add delay.
        let _ = tcp.set_nodelay(true);
        let mut client = match self.config.tls {
            Tls::None => greeted(Client::new(Conn::new(Wire::Plain(tcp)))).await?,
            Tls::Implicit => greeted(Client::new(Conn::new(self.handshake(tcp).await?))).await?,
            Tls::StartTls => {
                let mut plain = greeted(Client::new(Conn::new(Wire::Plain(tcp)))).await?;
                step(
                    "start TLS",
                    plain
                        .run_command_and_check_ok("STARTTLS", None)
                        .map_err(tidy),
                )
                .await?;
                // Whatever the server sent after its OK is dropped with the plaintext buffer, so
                // nothing injected before the handshake can pass for a response.
                let Wire::Plain(tcp) = plain.into_inner().wire else {
                    return Err(Failure::new("start TLS", "TLS is already on"));
                };
                Client::new(Conn::new(self.handshake(tcp).await?))
            }
        };

        self.draws = self.draws.wrapping_add(1);
        let placeholder = format!("madoguchi-login-{:016x}", self.random.hash_one(self.draws));
        client.get_mut().arm(&placeholder, &escaped(&password));
        drop(password);
        let mut session =
            match timeout(IO_TIMEOUT, client.login(&self.config.user, &placeholder)).await {
                Ok(Ok(session)) => session,
                Ok(Err((async_imap::error::Error::No(text), _))) => {
                    return Err(Failure {
                        action: "log in",
                        source: format!(
                            "the server refused the login for user {:?}: {}",
                            self.config.user,
                            server_text(&text)
                        )
                        .into(),
                        login_refused: true,
                    });
                }
                Ok(Err((e, _))) => return Err(Failure::new("log in", tidy(e))),
                Err(_) => return Err(Failure::new("log in", timed_out())),
            };
        session.get_mut().disarm();

        let capabilities = step(
            "read the capabilities",
            session.capabilities().map_err(tidy),
        )
        .await?;
        let has = |name: &str| {
            capabilities
                .iter()
                .any(|c| matches!(c, Capability::Atom(a) if a.eq_ignore_ascii_case(name)))
        };
        let caps = Caps {
            idle: has("IDLE"),
            r#move: has("MOVE"),
            uidplus: has("UIDPLUS"),
        };
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
                Err(text) if text.to_ascii_lowercase().contains("exists") => {}
                // Not fatal here: a move into it fails later with the server's reason.
                Err(text) => {
                    tracing::warn!(server = %self.name, %folder, "Cannot create the IMAP folder: {text}.")
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
            Err(text) => return Err(Failure::new("select the mailbox", text)),
            // Moving mail out needs write access; better said now than at every move.
            Ok(Completion { read_only: true }) => {
                return Err(Failure::new(
                    "select the mailbox",
                    "the server opened it read-only",
                ));
            }
            Ok(_) => {}
        }
        let Some(uidvalidity) = uidvalidity else {
            return Err(Failure::new(
                "select the mailbox",
                "the server reports no UIDVALIDITY",
            ));
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

    /// Sends one command and reads up to its tagged completion, passing every untagged response
    /// to `each`. `Err` is a broken exchange (I/O, timeout, BYE); `Ok(Err(text))` is the
    /// server's NO or BAD on a healthy connection.
    async fn command(
        &mut self,
        session: &mut Session<Conn>,
        action: &'static str,
        line: &str,
        mut each: impl FnMut(&Response<'_>),
    ) -> Result<Result<Completion, String>, Failure> {
        let tag = step(action, session.run_command(line)).await?;
        loop {
            let Some(response) = step(action, session.read_response()).await? else {
                return Err(Failure::new(action, "the server closed the connection"));
            };
            match response.parsed() {
                Response::Done {
                    tag: done,
                    status,
                    outcome,
                } if *done == tag => {
                    return Ok(match status {
                        Status::Ok => Ok(Completion {
                            read_only: matches!(outcome.code, Some(ResponseCode::ReadOnly)),
                        }),
                        other => Err(format!(
                            "{other:?}{}{}",
                            outcome
                                .code
                                .as_ref()
                                .map(|c| format!(" [{c:?}]"))
                                .unwrap_or_default(),
                            outcome
                                .information
                                .as_ref()
                                .map(|i| format!(" {i}"))
                                .unwrap_or_default()
                        )),
                    });
                }
                Response::Data {
                    status: Status::Bye,
                    outcome,
                } => {
                    return Err(Failure::new(
                        action,
                        format!(
                            "the server closed the connection: {}",
                            outcome.information.as_deref().unwrap_or("BYE")
                        ),
                    ));
                }
                Response::MailboxData(MailboxDatum::Exists(_) | MailboxDatum::Recent(_)) => {
                    self.mail_hint = true;
                }
                other => each(other),
            }
        }
    }

    /// Up to `max` messages, oldest first. The second value is set when the connection broke
    /// part-way (what arrived before the break is good and returned all the same), with whether
    /// a message was blamed for it.
    async fn fetch_with(
        &mut self,
        session: &mut Session<Conn>,
        max: usize,
    ) -> Result<(Vec<Incoming>, Option<(Failure, bool)>), Failure> {
        let Some(uidvalidity) = self.uidvalidity else {
            return Err(Failure::new("fetch mail", "no mailbox is selected"));
        };
        // Whatever EXISTS announced so far, this search sees.
        self.mail_hint = false;
        let mut uids: Vec<u32> = Vec::new();
        self.command(session, "search the mailbox", "UID SEARCH UNDELETED", |r| {
            if let Response::MailboxData(MailboxDatum::Search(found)) = r {
                uids.extend(found);
            }
        })
        .await?
        .map_err(|text| Failure::new("search the mailbox", text))?;
        // UIDs grow with delivery, so the lowest are the oldest mail.
        uids.sort_unstable();
        uids.dedup();
        let present = |&(v, uid): &(u32, u32)| v == uidvalidity && uids.binary_search(&uid).is_ok();
        self.suspects.retain(|k, _| present(k));
        self.bodiless.retain(present);

        // A message that broke a fetch before is read on its own, after the others, so that it
        // cannot hold them up; one that broke the connection even alone waits a while.
        let now = Instant::now();
        let (suspects, normal): (Vec<u32>, Vec<u32>) = uids
            .iter()
            .partition(|&&uid| self.suspects.contains_key(&(uidvalidity, uid)));
        let suspects: Vec<u32> = suspects
            .into_iter()
            .filter(|&uid| {
                self.suspects
                    .get(&(uidvalidity, uid))
                    .is_some_and(|s| s.retry_at <= now)
            })
            .collect();

        let batch_size = (self.config.batch_size as usize).max(1);
        let mut out: Vec<(DateTime<Utc>, u32, Incoming)> = Vec::new();
        let mut broken = None;
        let (mut next, mut next_suspect) = (0, 0);
        while out.len() < max && broken.is_none() {
            let want: Vec<u32> = if next < normal.len() {
                let take = (max - out.len()).min(batch_size).min(normal.len() - next);
                next += take;
                normal[next - take..next].to_vec()
            } else if next_suspect < suspects.len() {
                next_suspect += 1;
                vec![suspects[next_suspect - 1]]
            } else {
                break;
            };
            let mut got: HashMap<u32, Fetched> = HashMap::with_capacity(want.len());
            let set = uid_set(&want);
            let status = self
                .command(
                    session,
                    "fetch mail",
                    &format!("UID FETCH {set} (UID INTERNALDATE RFC822.SIZE BODY.PEEK[])"),
                    |r| {
                        let Response::Fetch(_, attrs) = r else {
                            return;
                        };
                        let mut fetched = Fetched::default();
                        let mut uid = None;
                        for attr in attrs {
                            match attr {
                                AttributeValue::Uid(u) => uid = Some(*u),
                                AttributeValue::InternalDate(d) => {
                                    fetched.internal_date = Some(d.to_string())
                                }
                                AttributeValue::Rfc822Size(s) => fetched.size = Some(*s),
                                AttributeValue::BodySection {
                                    section: None,
                                    index: None,
                                    data: Some(data),
                                } => fetched.body = Some(data.to_vec()),
                                _ => {}
                            }
                        }
                        // Unsolicited FETCH responses (flag changes) carry no body: ignored.
                        if let Some(uid) = uid
                            && fetched.body.is_some()
                        {
                            got.insert(uid, fetched);
                        }
                    },
                )
                .await;
            match status {
                Ok(Ok(_)) => {}
                Ok(Err(text)) => {
                    tracing::warn!(server = %self.name, uids = %set, "The IMAP server did not return every message: {text}; they are tried again next pass.");
                }
                Err(f) => {
                    // Servers answer in UID order: the first one missing is the likely culprit
                    // (Dovecot says BYE when it cannot read a message file).
                    let culprit = want.iter().find(|uid| !got.contains_key(uid)).copied();
                    if let Some(uid) = culprit {
                        self.strike(uidvalidity, uid);
                    }
                    broken = Some((f, culprit.is_some()));
                }
            }
            for &uid in &want {
                let Some(fetched) = got.remove(&uid) else {
                    if broken.is_none() && self.bodiless.insert((uidvalidity, uid)) {
                        tracing::warn!(server = %self.name, uid, "The IMAP server returned message {uid} without its content; it is tried again next pass.");
                    }
                    continue;
                };
                self.suspects.remove(&(uidvalidity, uid));
                let raw = fetched.body.unwrap_or_default();
                if let Some(size) = fetched.size
                    && size as usize != raw.len()
                {
                    tracing::debug!(
                        uid,
                        size,
                        got = raw.len(),
                        "RFC822.SIZE differs from the content fetched."
                    );
                }
                let received_at = match fetched
                    .internal_date
                    .as_deref()
                    .and_then(parse_internal_date)
                {
                    Some(at) => at,
                    None => {
                        // Rare (a server bug); the time we saw it is the next best arrival time.
                        tracing::warn!(server = %self.name, uid, date = ?fetched.internal_date, "No usable INTERNALDATE; using the current time.");
                        crate::clock::system_now()
                    }
                };
                out.push((
                    received_at,
                    uid,
                    Incoming {
                        key: format!("{uidvalidity}:{uid}"),
                        handle: uid.to_string(),
                        raw,
                        received_at,
                    },
                ));
            }
        }
        // Delivery order within the batch, as the desk threads follow-ups after originals.
        out.sort_by_key(|(at, uid, _)| (*at, *uid));
        Ok((out.into_iter().map(|(_, _, m)| m).collect(), broken))
    }

    /// Marks `uid` as having broken a fetch. The second time (it was fetched alone) it is left
    /// alone for `poll_interval`, doubling per strike up to an hour: it stays in the mailbox
    /// for a person, and the rest of the mail flows meanwhile.
    fn strike(&mut self, uidvalidity: u32, uid: u32) {
        let suspect = self.suspects.entry((uidvalidity, uid)).or_insert(Suspect {
            strikes: 0,
            retry_at: Instant::now(),
        });
        suspect.strikes = suspect.strikes.saturating_add(1);
        if suspect.strikes >= 2 {
            let pause = self
                .config
                .poll_interval
                .max(Duration::from_secs(1))
                .saturating_mul(1 << (suspect.strikes - 2).min(12))
                .min(SUSPECT_PAUSE_MAX);
            suspect.retry_at = Instant::now() + pause;
            tracing::warn!(server = %self.name, uid, "Message {uid} cuts the IMAP connection whenever it is fetched; it stays in the mailbox and is tried again in {} s.", pause.as_secs());
        }
    }

    /// Applies the acknowledgements waiting on the server (one command per target folder).
    async fn flush_acks(&mut self) -> Result<(), IntakeError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        // On failure they are dropped: the messages stay in the mailbox, are fetched again,
        // recognised by the desk as already recorded and acknowledged anew.
        let pending = std::mem::take(&mut self.pending);
        let mut session = self.take_session().await?;
        let mut processed = Vec::new();
        let mut quarantine = Vec::new();
        let mut stale = 0usize;
        for p in pending {
            if Some(p.uidvalidity) != self.uidvalidity {
                // The UID now names another message (or none): never move by it.
                stale += 1;
                continue;
            }
            match p.ack {
                Ack::Processed => processed.push(p.uid),
                Ack::Quarantined => quarantine.push(p.uid),
            }
        }
        if stale > 0 {
            tracing::info!(server = %self.name, stale, "Acknowledgements skipped after a UIDVALIDITY change; the messages are read again and recognised.");
        }
        for (mut uids, folder) in [
            (processed, self.config.processed.clone()),
            (quarantine, self.config.quarantine.clone()),
        ] {
            if uids.is_empty() {
                continue;
            }
            uids.sort_unstable();
            uids.dedup();
            if let Err(f) = self.move_uids(&mut session, &uids, &folder).await {
                return Err(self.failed(f));
            }
        }
        self.session = Some(session);
        Ok(())
    }

    async fn move_uids(
        &mut self,
        session: &mut Session<Conn>,
        uids: &[u32],
        folder: &str,
    ) -> Result<(), Failure> {
        let caps = self.caps.unwrap_or_default();
        let set = uid_set(uids);
        let target = mailbox_arg(folder);
        let what = &set;
        let refused = move |action: &'static str| {
            move |text: String| Failure::new(action, format!("{what} to {folder:?}: {text}"))
        };
        if caps.r#move {
            self.command(
                session,
                "move mail",
                &format!("UID MOVE {set} {target}"),
                |_| {},
            )
            .await?
            .map_err(refused("move mail"))?;
            return Ok(());
        }
        // Without MOVE: copy first, so that nothing is flagged deleted before its copy exists.
        self.command(
            session,
            "copy mail",
            &format!("UID COPY {set} {target}"),
            |_| {},
        )
        .await?
        .map_err(refused("copy mail"))?;
        self.command(
            session,
            "flag mail deleted",
            &format!("UID STORE {set} +FLAGS.SILENT (\\Deleted)"),
            |_| {},
        )
        .await?
        .map_err(refused("flag mail deleted"))?;
        // UID EXPUNGE removes only these; plain EXPUNGE (no UIDPLUS) also removes whatever else
        // someone flagged \Deleted in the mailbox, which they meant to go anyway.
        let expunge = if caps.uidplus {
            format!("UID EXPUNGE {set}")
        } else {
            "EXPUNGE".to_owned()
        };
        self.command(session, "expunge mail", &expunge, |_| {})
            .await?
            .map_err(refused("expunge mail"))?;
        Ok(())
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
        if let Err(f) = step("wait for mail (IDLE)", handle.init()).await {
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
        match step("end IDLE", handle.done()).await {
            Ok(session) => {
                self.session = Some(session);
                Ok(())
            }
            Err(f) => Err(self.failed(f)),
        }
    }
}

/// The [`Source`] operations behind [`ImapSource`].
impl State {
    async fn fetch(&mut self, max: usize) -> Result<Vec<Incoming>, IntakeError> {
        self.flush_acks().await?;
        if max == 0 {
            return Ok(Vec::new());
        }
        let mut session = self.take_session().await?;
        match self.fetch_with(&mut session, max).await {
            Ok((batch, None)) => {
                self.session = Some(session);
                self.outstanding = batch.iter().map(|m| m.key.clone()).collect();
                Ok(batch)
            }
            // The connection broke part-way: what came before is handed out all the same (it
            // is acknowledged over a new connection), so one bad message cannot block the rest.
            // When a message was blamed, that is no reason to fail the desk's pass either (it
            // would hold up the outbox); otherwise the outage is reported.
            Ok((batch, Some((f, blamed)))) => {
                drop(session);
                let error = self.failed(f);
                if batch.is_empty() && !blamed {
                    return Err(error);
                }
                self.outstanding = batch.iter().map(|m| m.key.clone()).collect();
                Ok(batch)
            }
            Err(f) => Err(self.failed(f)),
        }
    }

    async fn ack(&mut self, message: &Incoming, ack: Ack) -> Result<(), IntakeError> {
        let Some((uidvalidity, uid)) = parse_key(&message.key) else {
            return Err(IntakeError::Ack {
                path: message.key.clone(),
                source: io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("not a message of {}", self.name),
                ),
            });
        };
        self.pending.push(PendingAck {
            uidvalidity,
            uid,
            ack,
        });
        self.outstanding.remove(&message.key);
        // The whole batch is in: one move per folder instead of one per message.
        if self.outstanding.is_empty() {
            self.flush_acks().await
        } else {
            Ok(())
        }
    }

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

    #[test]
    fn uid_sets_compress_runs() {
        assert_eq!(uid_set(&[]), "");
        assert_eq!(uid_set(&[7]), "7");
        assert_eq!(uid_set(&[1, 2, 3, 5, 8, 9]), "1:3,5,8:9");
        assert_eq!(uid_set(&[4, 6, 8]), "4,6,8");
        assert_eq!(
            uid_set(&[u32::MAX - 1, u32::MAX]),
            format!("{}:{}", u32::MAX - 1, u32::MAX)
        );
    }

    #[test]
    fn mailbox_names_are_modified_utf7_in_quotes() {
        assert_eq!(mailbox_arg("INBOX"), "\"INBOX\"");
        assert_eq!(mailbox_arg("Tom & Jerry"), "\"Tom &- Jerry\"");
        // RFC 3501 §5.1.3's example.
        assert_eq!(
            mailbox_arg("~peter/mail/台北/日本語"),
            "\"~peter/mail/&U,BTFw-/&ZeVnLIqe-\""
        );
        assert_eq!(mailbox_arg("処理済み"), "\"&UeZ0Bm4IMH8-\"");
        assert_eq!(mailbox_arg("a\"b\\c"), "\"a\\\"b\\\\c\"");
    }

    #[test]
    fn internal_dates_parse_with_and_without_day_padding() {
        let at = parse_internal_date("25-Nov-2026 10:00:00 +0900").expect("date");
        assert_eq!(at.to_rfc3339(), "2026-11-25T01:00:00+00:00");
        let at = parse_internal_date(" 5-Jan-2027 09:30:15 -0500").expect("date");
        assert_eq!(at.to_rfc3339(), "2027-01-05T14:30:15+00:00");
        assert!(parse_internal_date("yesterday").is_none());
    }

    #[test]
    fn server_words_are_taken_out_of_async_imaps_text() {
        assert_eq!(
            server_text(
                r#"code: None, info: Some("[AUTHENTICATIONFAILED] Authentication failed.")"#
            ),
            "[AUTHENTICATIONFAILED] Authentication failed."
        );
        assert_eq!(
            server_text(r#"code: None, info: Some("say \"hi\"")"#),
            "say \"hi\""
        );
        assert_eq!(server_text("odd"), "odd");
    }

    #[test]
    fn keys_round_trip() {
        assert_eq!(parse_key("1795606377:42"), Some((1795606377, 42)));
        assert_eq!(parse_key("42"), None);
        assert_eq!(parse_key("a:1"), None);
    }

    /// The LOGIN line leaves with the password in place of the placeholder, and only once.
    #[tokio::test]
    async fn the_password_is_substituted_on_the_wire_only() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (client, server) = tokio::join!(TcpStream::connect(addr), listener.accept());
        let mut conn = Conn::new(Wire::Plain(client.expect("connect")));
        let (mut server, _) = server.expect("accept");
        conn.arm("PLACEHOLDER-1", &escaped("p\"w\\1"));
        assert!(!format!("{conn:?}").contains("p\"w"));
        // async-imap writes the tag, a space, the command and CRLF separately.
        for piece in [
            &b"A1"[..],
            b" ",
            b"LOGIN \"user\" \"PLACEHOLDER-1\"",
            b"\r\n",
        ] {
            conn.write_all(piece).await.expect("write");
        }
        conn.write_all(b"A2 NOOP PLACEHOLDER-1\r\n")
            .await
            .expect("write");
        conn.flush().await.expect("flush");
        drop(conn);
        let mut seen = String::new();
        server.read_to_string(&mut seen).await.expect("read");
        assert_eq!(
            seen,
            "A1 LOGIN \"user\" \"p\\\"w\\\\1\"\r\nA2 NOOP PLACEHOLDER-1\r\n"
        );
    }
}
