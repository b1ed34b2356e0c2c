//! Sending through an SMTP relay with lettre's async client.
//!
//! - Every connection is our own `tokio::net::TcpStream` with `TCP_NODELAY` handed to lettre
//!   (`AsyncSmtpConnection::connect_with_transport`): lettre's own connector leaves Nagle on,
//!   which stalls each message ~40 ms on loopback (DESIGN.md, "Known performance trap").
//! - Implicit TLS is done here before the greeting ([`crate::tls::TlsClient`]); STARTTLS is
//!   lettre's upgrade of the same stream, trusting the same [`crate::tls::Roots`]. Plaintext
//!   only when the config allowed it.
//! - Connections stay open across messages and passes; `parallel` of them share a batch. A
//!   reused connection that turns out to be closed is replaced once, before anything of the
//!   message was accepted, so a server's idle timeout never costs a retry delay.
//! - The transaction is driven command by command (not `AsyncSmtpConnection::send`), so a
//!   refused message is answered with RSET and the connection kept, and the failing step is
//!   known.
//!
//! Classification for the outbox worker: network trouble, timeouts, TLS, and 4xx replies are
//! [`SendError::Temporary`]; a 5xx reply to the message's own commands is
//! [`SendError::Permanent`] with the server's text. Failures while opening a connection
//! (greeting, EHLO, STARTTLS, AUTH — even 5xx ones) are temporary: they say the relay or our
//! account is wrong, not the message, and every message would otherwise be failed for good.

use std::borrow::Cow;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::join_all;
use lettre::Address;
use lettre::address::AddressError;
use lettre::transport::smtp::Error as LettreError;
use lettre::transport::smtp::authentication::{
    Credentials as SmtpCredentials, Mechanism as AuthMechanism,
};
use lettre::transport::smtp::client::{
    AsyncSmtpConnection, AsyncTokioStream, Certificate, CertificateStore, TlsParameters,
};
use lettre::transport::smtp::commands::{Data, Mail, Quit, Rcpt, Rset};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::{Queued, SendError, Sender};
use crate::config::{Credentials, SecretError, SmtpConfig, Tls};
use crate::report::chain;
use crate::tls::{Roots, TlsClient, TlsError};

/// Mail submission to one relay over up to `parallel` kept-open connections.
pub struct SmtpSender {
    relay: Relay,
    /// One slot per parallel connection; `None` until needed or after it broke.
    slots: Vec<Option<AsyncSmtpConnection>>,
}

/// What every connection needs; read-only while a batch is being sent.
struct Relay {
    host: String,
    port: u16,
    tls: Tls,
    auth: Option<Credentials>,
    timeout: Duration,
    hello: ClientId,
    /// Built on first use (it reads the system's CA certificates) and kept.
    tls_setup: Option<TlsSetup>,
}

#[derive(Clone)]
enum TlsSetup {
    Implicit(TlsClient),
    StartTls(TlsParameters),
}

impl SmtpSender {
    /// A sender for `config`. Connects lazily: nothing touches the network (or the password)
    /// until the first message.
    pub fn new(config: &SmtpConfig) -> SmtpSender {
        let parallel = usize::try_from(config.parallel).unwrap_or(1).max(1);
        SmtpSender {
            relay: Relay {
                host: config.host.clone(),
                port: config.port,
                tls: config.tls,
                auth: config.auth.clone(),
                timeout: config.timeout,
                hello: hello_name(),
                tls_setup: None,
            },
            slots: (0..parallel).map(|_| None).collect(),
        }
    }

    /// How many connections are open right now (for tests and diagnostics).
    pub fn open_connections(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count()
    }

    /// Opens the first connection now (TLS, EHLO, AUTH) and keeps it for the first message: the
    /// daemon's start-up check that the relay can be reached. A failure is logged here and is
    /// temporary: sending retries as usual.
    pub async fn reach(&mut self) -> Result<(), SendError> {
        if self.open_connections() > 0 {
            return Ok(());
        }
        let opened = match self.relay.prepare_tls() {
            Ok(()) => self.relay.connect().await,
            Err(e) => Err(e),
        };
        match (opened, self.slots.first_mut()) {
            (Ok(conn), Some(slot)) => {
                *slot = Some(conn);
                Ok(())
            }
            (Ok(_), None) => Ok(()),
            (Err(e), _) => {
                let why = chain(&e);
                tracing::warn!(relay = %self.relay, error = %why, "Cannot open an SMTP connection.");
                Err(SendError::Temporary(why))
            }
        }
    }

    /// Says QUIT on every open connection (a courtesy at shutdown; dropping also closes them).
    pub async fn close(&mut self) {
        let timeout = self.relay.timeout;
        for slot in &mut self.slots {
            if let Some(mut conn) = slot.take() {
                let _ = tokio::time::timeout(timeout, conn.command(Quit)).await;
            }
        }
    }
}

impl Sender for SmtpSender {
    async fn send(&mut self, message: &Queued) -> Result<(), SendError> {
        self.send_all(std::slice::from_ref(message))
            .await
            .pop()
            .unwrap_or_else(|| Err(SendError::Temporary("nothing was sent".to_string())))
    }

    fn parallelism(&self) -> usize {
        self.slots.len().max(1)
    }

    async fn send_all(&mut self, batch: &[Queued]) -> Vec<Result<(), SendError>> {
        if batch.is_empty() {
            return Vec::new();
        }
        if let Err(e) = self.relay.prepare_tls() {
            let why = chain(&e);
            tracing::warn!(relay = %self.relay, error = %why, "Cannot set up TLS for the SMTP relay.");
            return batch
                .iter()
                .map(|_| Err(SendError::Temporary(why.clone())))
                .collect();
        }
        let SmtpSender { relay, slots } = self;
        let relay = &*relay;
        // Work queue rather than fixed chunks: a connection that is slow or gone leaves its
        // share to the others.
        let next = AtomicUsize::new(0);
        let gave_up = OnceLock::new();
        let workers = slots
            .iter_mut()
            .take(batch.len())
            .map(|slot| worker(relay, slot, batch, &next, &gave_up));
        let mut results: Vec<Option<Result<(), SendError>>> = batch.iter().map(|_| None).collect();
        for (index, result) in join_all(workers).await.into_iter().flatten() {
            results[index] = Some(result);
        }
        // Whatever no connection got to: the relay could not be reached (already logged once).
        results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(SendError::Temporary(gave_up.get().cloned().unwrap_or_else(
                        || "not sent: no connection to the relay".to_string(),
                    )))
                })
            })
            .collect()
    }
}

/// One connection's share of a batch: takes messages until none are left, or until it cannot
/// (re)connect, when the others carry on without it.
async fn worker(
    relay: &Relay,
    slot: &mut Option<AsyncSmtpConnection>,
    batch: &[Queued],
    next: &AtomicUsize,
    gave_up: &OnceLock<String>,
) -> Vec<(usize, Result<(), SendError>)> {
    let mut done = Vec::new();
    loop {
        let index = next.fetch_add(1, Ordering::Relaxed);
        let Some(message) = batch.get(index) else {
            return done;
        };
        match deliver(relay, slot, message).await {
            Ok(()) => done.push((index, Ok(()))),
            Err(Failure::Message(e)) => done.push((index, Err(e))),
            Err(Failure::Unreachable(e)) => {
                let why = chain(&e);
                let _ = gave_up.set(why.clone());
                done.push((index, Err(SendError::Temporary(why))));
                return done;
            }
        }
    }
}

enum Failure {
    /// This message failed; the next one may be tried.
    Message(SendError),
    /// No connection could be opened; stop using this slot for the batch.
    Unreachable(SmtpError),
}

/// Why a message or a connection failed. The outbox gets it as text (this error and its
/// causes, [`chain`]) in a [`SendError`], temporary or permanent as decided in [`deliver`].
#[derive(Debug, thiserror::Error)]
enum SmtpError {
    #[error("cannot use {address:?} as an SMTP address")]
    Address {
        address: String,
        #[source]
        source: AddressError,
    },
    #[error("cannot send a message without recipients")]
    NoRecipients,
    #[error("cannot set up TLS for {relay}")]
    Tls {
        relay: String,
        #[source]
        source: TlsError,
    },
    #[error("cannot set up STARTTLS for {relay}")]
    StartTlsSetup {
        relay: String,
        #[source]
        source: LettreError,
    },
    #[error("cannot connect to {relay}")]
    Connect {
        relay: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot set TCP_NODELAY towards {relay}")]
    NoDelay {
        relay: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot complete the TLS handshake with {relay}")]
    Handshake {
        relay: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot open an SMTP session with {relay}")]
    Session {
        relay: String,
        #[source]
        source: StepError,
    },
    #[error("cannot send in clear: STARTTLS is not offered by {relay}")]
    NoStartTls { relay: String },
    #[error("cannot switch to TLS (STARTTLS) with {relay}")]
    StartTls {
        relay: String,
        #[source]
        source: StepError,
    },
    #[error("cannot read the SMTP password for {relay}")]
    Password {
        relay: String,
        #[source]
        source: SecretError,
    },
    #[error("cannot log in as {user} to {relay}")]
    Login {
        user: String,
        relay: String,
        #[source]
        source: StepError,
    },
    /// Nothing was sent, and retrying the same relay cannot help.
    #[error("cannot send through {relay}: the relay does not offer {extension}")]
    Unsupported {
        relay: String,
        extension: &'static str,
    },
    #[error("cannot send through {relay}: {step} was refused")]
    Refused {
        relay: String,
        step: Step,
        #[source]
        source: StepError,
    },
    #[error("cannot send through {relay}: the connection failed at {step}")]
    Broken {
        relay: String,
        step: Step,
        #[source]
        source: StepError,
    },
    #[error("cannot send through {relay}: the connection closed twice in a row")]
    ClosedTwice { relay: String },
}

/// Sends one message on the slot's connection, opening one when needed.
async fn deliver(
    relay: &Relay,
    slot: &mut Option<AsyncSmtpConnection>,
    message: &Queued,
) -> Result<(), Failure> {
    let envelope = Envelope::of(message).map_err(|e| {
        let why = chain(&e);
        tracing::warn!(outbox = message.outbox_id, error = %why, "Cannot send a message over SMTP.");
        Failure::Message(SendError::Permanent(why))
    })?;
    let body = wire_body(&message.raw);
    // At most two rounds: a kept-open connection the server has meanwhile closed is replaced
    // once. Only a failure at MAIL FROM allows that, so the message cannot have been accepted.
    for round in 0..2 {
        let reused = slot.is_some();
        let conn = match slot {
            Some(conn) => conn,
            None => match relay.connect().await {
                Ok(conn) => slot.insert(conn),
                Err(e) => {
                    tracing::warn!(relay = %relay, error = %chain(&e), "Cannot open an SMTP connection.");
                    return Err(Failure::Unreachable(e));
                }
            },
        };
        let parameters = match mail_parameters(conn, &envelope, &body) {
            Ok(parameters) => parameters,
            Err(extension) => {
                let why = chain(&SmtpError::Unsupported {
                    relay: relay.to_string(),
                    extension,
                });
                tracing::warn!(outbox = message.outbox_id, error = %why, "SMTP relay cannot take a message.");
                return Err(Failure::Message(SendError::Permanent(why)));
            }
        };
        let Err((step, error)) =
            transaction(conn, &envelope, parameters, &body, relay.timeout).await
        else {
            return Ok(());
        };
        match error.reply_code() {
            // A refusal inside a healthy session: reset the transaction, keep the connection.
            Some(code) if code != 421 => {
                if !reset(conn, relay.timeout).await {
                    *slot = None;
                }
                let why = chain(&SmtpError::Refused {
                    relay: relay.to_string(),
                    step,
                    source: error,
                });
                tracing::warn!(outbox = message.outbox_id, reply = code, error = %why, "SMTP relay did not accept a message.");
                return Err(Failure::Message(if code >= 500 {
                    SendError::Permanent(why)
                } else {
                    SendError::Temporary(why)
                }));
            }
            // 421 (closing), a dead stream, a timeout: this connection is done for.
            _ => {
                *slot = None;
                if reused && round == 0 && step == Step::Mail {
                    tracing::debug!(relay = %relay, error = %error, "Kept-open SMTP connection was closed; reconnecting.");
                    continue;
                }
                let why = chain(&SmtpError::Broken {
                    relay: relay.to_string(),
                    step,
                    source: error,
                });
                tracing::warn!(outbox = message.outbox_id, error = %why, "SMTP send failed.");
                return Err(Failure::Message(SendError::Temporary(why)));
            }
        }
    }
    Err(Failure::Message(SendError::Temporary(chain(
        &SmtpError::ClosedTwice {
            relay: relay.to_string(),
        },
    ))))
}

/// The message's envelope as SMTP addresses; a malformed address never gets better.
struct Envelope {
    from: Option<Address>,
    to: Vec<Address>,
}

impl Envelope {
    fn of(message: &Queued) -> Result<Envelope, SmtpError> {
        let parse = |a: &str| {
            a.parse::<Address>().map_err(|source| SmtpError::Address {
                address: a.to_owned(),
                source,
            })
        };
        // An empty sender is the null reverse-path (`MAIL FROM:<>`).
        let from = match message.sender.as_str() {
            "" => None,
            s => Some(parse(s)?),
        };
        let to = message
            .recipients
            .iter()
            .map(|r| parse(r))
            .collect::<Result<Vec<_>, _>>()?;
        if to.is_empty() {
            return Err(SmtpError::NoRecipients);
        }
        Ok(Envelope { from, to })
    }

    fn non_ascii(&self) -> bool {
        self.from
            .iter()
            .chain(&self.to)
            .any(|a| !AsRef::<str>::as_ref(a).is_ascii())
    }
}

/// The SMTP step that failed, for the error text and the reconnect rule.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Mail,
    /// With the recipient, so staff see which address was refused.
    Rcpt(Address),
    Data,
    Body,
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::Mail => f.write_str("MAIL FROM"),
            Step::Rcpt(to) => write!(f, "RCPT TO:<{to}>"),
            Step::Data => f.write_str("DATA"),
            Step::Body => f.write_str("the message data"),
        }
    }
}

/// One SMTP exchange that did not get its positive reply in time.
#[derive(Debug, thiserror::Error)]
enum StepError {
    #[error(transparent)]
    Smtp(LettreError),
    #[error("timed out waiting for the server")]
    Timeout,
}

impl StepError {
    /// The server's reply code, when it gave a negative one.
    fn reply_code(&self) -> Option<u16> {
        match self {
            StepError::Smtp(e) => e.status().map(u16::from),
            StepError::Timeout => None,
        }
    }
}

async fn timed<T>(
    timeout: Duration,
    future: impl Future<Output = Result<T, LettreError>>,
) -> Result<T, StepError> {
    match tokio::time::timeout(timeout, future).await {
        Ok(result) => result.map_err(StepError::Smtp),
        Err(_) => Err(StepError::Timeout),
    }
}

/// The MAIL FROM parameters the message needs, or the extension the relay lacks for it.
fn mail_parameters(
    conn: &AsyncSmtpConnection,
    envelope: &Envelope,
    body: &[u8],
) -> Result<Vec<MailParameter>, &'static str> {
    let mut parameters = Vec::new();
    let info = conn.server_info();
    if envelope.non_ascii() {
        if !info.supports_feature(Extension::SmtpUtfEight) {
            return Err("SMTPUTF8 (non-ASCII addresses)");
        }
        parameters.push(MailParameter::SmtpUtfEight);
    }
    if !body.is_ascii() {
        if !info.supports_feature(Extension::EightBitMime) {
            return Err("8BITMIME (8-bit message data)");
        }
        parameters.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    Ok(parameters)
}

/// MAIL, RCPT…, DATA, body: `Ok` only on the 250 after the final dot.
async fn transaction(
    conn: &mut AsyncSmtpConnection,
    envelope: &Envelope,
    parameters: Vec<MailParameter>,
    body: &[u8],
    timeout: Duration,
) -> Result<(), (Step, StepError)> {
    timed(
        timeout,
        conn.command(Mail::new(envelope.from.clone(), parameters)),
    )
    .await
    .map_err(|e| (Step::Mail, e))?;
    for to in &envelope.to {
        timed(timeout, conn.command(Rcpt::new(to.clone(), Vec::new())))
            .await
            .map_err(|e| (Step::Rcpt(to.clone()), e))?;
    }
    timed(timeout, conn.command(Data))
        .await
        .map_err(|e| (Step::Data, e))?;
    timed(timeout, conn.message(body))
        .await
        .map_err(|e| (Step::Body, e))?;
    Ok(())
}

/// Ends a refused transaction so the connection can carry the next message.
async fn reset(conn: &mut AsyncSmtpConnection, timeout: Duration) -> bool {
    timed(timeout, conn.command(Rset)).await.is_ok()
}

/// The DATA payload: CRLF line ends (RFC 5321 forbids bare CR and LF, and some relays refuse
/// them), without the final CRLF — lettre appends `\r\n.\r\n`, which must not add a blank line,
/// so the relay receives exactly the stored bytes.
fn wire_body(raw: &[u8]) -> Cow<'_, [u8]> {
    let bare = raw.iter().enumerate().any(|(i, &b)| match b {
        b'\r' => raw.get(i + 1) != Some(&b'\n'),
        b'\n' => i == 0 || raw[i - 1] != b'\r',
        _ => false,
    });
    let mut body: Cow<'_, [u8]> = if bare {
        let mut fixed = Vec::with_capacity(raw.len() + raw.len() / 32);
        let mut i = 0;
        while i < raw.len() {
            match raw[i] {
                b'\r' if raw.get(i + 1) == Some(&b'\n') => {
                    fixed.extend_from_slice(b"\r\n");
                    i += 1;
                }
                b'\r' | b'\n' => fixed.extend_from_slice(b"\r\n"),
                b => fixed.push(b),
            }
            i += 1;
        }
        Cow::Owned(fixed)
    } else {
        Cow::Borrowed(raw)
    };
    if body.ends_with(b"\r\n") {
        let keep = body.len() - 2;
        match &mut body {
            Cow::Borrowed(b) => *b = &b[..keep],
            Cow::Owned(v) => v.truncate(keep),
        }
    }
    body
}

impl Relay {
    /// Builds the TLS client once (it reads the system's CA certificates, `crate::tls`); a
    /// failure is retried on the next batch.
    fn prepare_tls(&mut self) -> Result<(), SmtpError> {
        if self.tls_setup.is_some() || self.tls == Tls::None {
            return Ok(());
        }
        let tls_error = |source| SmtpError::Tls {
            relay: self.to_string(),
            source,
        };
        let roots = Roots::system().map_err(tls_error)?;
        let setup = match self.tls {
            Tls::Implicit => {
                TlsSetup::Implicit(TlsClient::new(&self.host, &roots).map_err(tls_error)?)
            }
            // lettre upgrades the stream itself, with a configuration it builds from the same
            // roots.
            Tls::StartTls => {
                TlsSetup::StartTls(starttls_parameters(&self.host, &roots).map_err(|source| {
                    SmtpError::StartTlsSetup {
                        relay: self.to_string(),
                        source,
                    }
                })?)
            }
            Tls::None => return Ok(()),
        };
        self.tls_setup = Some(setup);
        Ok(())
    }

    /// Opens a session ready for MAIL: TCP (no Nagle), TLS, greeting, EHLO, STARTTLS, AUTH.
    async fn connect(&self) -> Result<AsyncSmtpConnection, SmtpError> {
        let t = self.timeout;
        let relay = || self.to_string();
        let no_answer = || {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no answer within {} s", t.as_secs()),
            )
        };
        let tcp = tokio::time::timeout(t, TcpStream::connect((self.host.as_str(), self.port)))
            .await
            .unwrap_or_else(|_| Err(no_answer()))
            .map_err(|source| SmtpError::Connect {
                relay: relay(),
                source,
            })?;
        tcp.set_nodelay(true).map_err(|source| SmtpError::NoDelay {
            relay: relay(),
            source,
        })?;
        let stream: Box<dyn AsyncTokioStream> = match &self.tls_setup {
            Some(TlsSetup::Implicit(client)) => Box::new(Capped::new(TlsTcp(
                tokio::time::timeout(t, client.connect(tcp))
                    .await
                    .unwrap_or_else(|_| Err(no_answer()))
                    .map_err(|source| SmtpError::Handshake {
                        relay: relay(),
                        source,
                    })?,
            ))),
            _ => Box::new(Capped::new(tcp)),
        };
        let mut conn = timed(
            t,
            AsyncSmtpConnection::connect_with_transport(stream, &self.hello),
        )
        .await
        .map_err(|source| SmtpError::Session {
            relay: relay(),
            source,
        })?;
        if let Some(TlsSetup::StartTls(parameters)) = &self.tls_setup {
            // Never fall back to plaintext when the relay does not offer STARTTLS.
            if !conn.can_starttls() {
                return Err(SmtpError::NoStartTls { relay: relay() });
            }
            timed(t, conn.starttls(parameters.clone(), &self.hello))
                .await
                .map_err(|source| SmtpError::StartTls {
                    relay: relay(),
                    source,
                })?;
        }
        if let Some(auth) = &self.auth {
            // Read at each connect, so a rotated password file is picked up without a restart.
            let password = auth
                .password
                .resolve()
                .map_err(|source| SmtpError::Password {
                    relay: relay(),
                    source,
                })?;
            let credentials = SmtpCredentials::new(auth.user.clone(), password);
            timed(
                t,
                conn.auth(&[AuthMechanism::Plain, AuthMechanism::Login], &credentials),
            )
            .await
            .map_err(|source| SmtpError::Login {
                user: auth.user.clone(),
                relay: relay(),
                source,
            })?;
        }
        Ok(conn)
    }
}

impl std::fmt::Display for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{} (tls {})", self.host, self.port, self.tls)
    }
}

/// lettre's STARTTLS parameters for `host`, trusting exactly `roots` (lettre's provider is ring
/// too, its protocol versions TLS 1.2 and 1.3: the same setup as [`TlsClient`]).
fn starttls_parameters(host: &str, roots: &Roots) -> Result<TlsParameters, LettreError> {
    roots
        .certificates()
        .iter()
        .try_fold(
            TlsParameters::builder(host.to_owned()).certificate_store(CertificateStore::None),
            |builder, der| Ok(builder.add_root_certificate(Certificate::from_der(der.to_vec())?)),
        )?
        .build_rustls()
}

/// The EHLO name: the host's name when it is a fully qualified one, else lettre's default (an
/// address literal), as RFC 5321 4.1.4 asks.
fn hello_name() -> ClientId {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| {
            h.contains('.')
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        })
        .map(ClientId::Domain)
        .unwrap_or_default()
}

/// The most a relay may send without waiting for us: SMTP is a dialogue, and no reply is
/// longer than lettre's 100,000 bytes (nor a TLS handshake's server flight near this).
pub const MAX_UNPROMPTED: u64 = 1024 * 1024;

/// The relay's stream, refusing to read more than [`MAX_UNPROMPTED`] bytes between two of our
/// writes. lettre reads a reply line whole before it checks its length, so a relay sending a
/// line without end would otherwise fill memory until the step's timeout. Under STARTTLS it
/// counts the TLS bytes, which works the same.
struct Capped<S> {
    inner: S,
    unprompted: u64,
}

impl<S> Capped<S> {
    fn new(inner: S) -> Self {
        Capped {
            inner,
            unprompted: 0,
        }
    }
}

impl<S> std::fmt::Debug for Capped<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Capped")
            .field("unprompted", &self.unprompted)
            .finish_non_exhaustive()
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Capped<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        std::task::ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        this.unprompted += (buf.filled().len() - before) as u64;
        if this.unprompted > MAX_UNPROMPTED {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the relay sent over {MAX_UNPROMPTED} bytes without waiting for us"),
            )));
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Capped<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = std::task::ready!(Pin::new(&mut this.inner).poll_write(cx, buf))?;
        if written > 0 {
            this.unprompted = 0;
        }
        Poll::Ready(Ok(written))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

impl<S: AsyncTokioStream> AsyncTokioStream for Capped<S> {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer_addr()
    }
}

/// Implicit TLS on our own no-delay TCP stream, as lettre's stream trait wants it.
#[derive(Debug)]
struct TlsTcp(tokio_rustls::client::TlsStream<TcpStream>);

impl AsyncRead for TlsTcp {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsTcp {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

impl AsyncTokioStream for TlsTcp {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wire_body_is_the_stored_bytes_without_the_last_line_end() {
        assert_eq!(&*wire_body(b"A: b\r\n\r\nbody\r\n"), b"A: b\r\n\r\nbody");
        assert_eq!(&*wire_body(b"A: b\r\n\r\nbody"), b"A: b\r\n\r\nbody");
        assert_eq!(&*wire_body(b"A: b\n\nx\ry\r\n"), b"A: b\r\n\r\nx\r\ny");
        assert_eq!(&*wire_body(b"\n"), b"");
        assert_eq!(&*wire_body(b""), b"");
    }

    #[test]
    fn envelopes_refuse_bad_addresses_and_allow_the_null_sender() {
        let queued = |sender: &str, to: &[&str]| Queued {
            outbox_id: 1,
            message_id: "m@x".into(),
            sender: sender.into(),
            recipients: to.iter().map(|s| s.to_string()).collect(),
            raw: Vec::new(),
        };
        assert!(Envelope::of(&queued("a@example.jp", &["b@example.jp"])).is_ok());
        assert!(Envelope::of(&queued("", &["b@example.jp"])).is_ok_and(|e| e.from.is_none()));
        assert!(Envelope::of(&queued("a@example.jp", &[])).is_err());
        assert!(Envelope::of(&queued("a@example.jp", &["not an address"])).is_err());
    }
}
