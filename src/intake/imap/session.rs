//! One logged-in IMAP session: TCP, TLS (implicit or STARTTLS), the greeting, LOGIN with the
//! password kept out of traces, CAPABILITY; and [`command`], the exchange the source drives
//! the session with. Every network wait has a deadline: one step (connect, a handshake, one
//! response) at most `[intake] timeout`, a whole command at most [`COMMAND_TIMEOUTS`] times that.

use std::time::Duration;

use async_imap::imap_proto::{Capability, MailboxDatum, Response, ResponseCode, Status};
use async_imap::{Client, Session};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout, timeout_at};

use super::codec::escaped;
use super::error::{Failure, ImapError, Refusal, cut};
use super::wire::{Conn, Wire};
use crate::config::{ImapConfig, Tls};
use crate::tls::{Roots, TlsClient};

/// A whole command's exchange, from sending it to its tagged answer, takes at most this many
/// times `[intake] timeout` (10 minutes by default), however steadily the server keeps talking.
/// The longest honest answer is a body fetch of a full batch (`BATCH_BYTES`, 64 MiB): at the
/// slowest rate the per-response timeout lets a `max_message_size` message (25 MiB) arrive
/// at, it takes under three timeouts; many small messages add a round of latency each.
pub const COMMAND_TIMEOUTS: u32 = 10;

/// Awaits one network step with the per-step `limit`.
pub(super) async fn step<T, E: Into<ImapError>>(
    limit: Duration,
    action: &'static str,
    work: impl Future<Output = Result<T, E>>,
) -> Result<T, Failure> {
    match timeout(limit, work).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(Failure::new(action, e)),
        Err(_) => Err(Failure::new(action, ImapError::TimedOut(limit))),
    }
}

/// [`step`] that must also be done by `deadline`, the end of the whole command.
async fn step_by<T, E: Into<ImapError>>(
    limit: Duration,
    deadline: Instant,
    action: &'static str,
    work: impl Future<Output = Result<T, E>>,
) -> Result<T, Failure> {
    let by_step = Instant::now() + limit;
    match timeout_at(by_step.min(deadline), work).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(Failure::new(action, e)),
        Err(_) if by_step <= deadline => Err(Failure::new(action, ImapError::TimedOut(limit))),
        Err(_) => Err(Failure::new(
            action,
            ImapError::Unending(limit * COMMAND_TIMEOUTS),
        )),
    }
}

/// Reads the server's greeting: `* OK` goes on; `* BYE` (busy, refused) is an error.
async fn greeted(mut client: Client<Conn>, limit: Duration) -> Result<Client<Conn>, Failure> {
    let action = "read the greeting";
    let Some(greeting) = step(limit, action, client.read_response()).await? else {
        return Err(Failure::new(action, ImapError::Closed));
    };
    match greeting.parsed() {
        Response::Data {
            status: Status::Ok, ..
        } => Ok(client),
        other => Err(Failure::new(
            action,
            ImapError::Greeting(cut(format!("{other:?}"))),
        )),
    }
}

/// What the server can do, from CAPABILITY after login.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Caps {
    pub(super) idle: bool,
    pub(super) r#move: bool,
    pub(super) uidplus: bool,
}

/// A command's tagged OK, as far as the source cares.
#[derive(Debug, Clone, Copy)]
pub(super) struct Completion {
    /// `[READ-ONLY]` (after SELECT).
    pub(super) read_only: bool,
}

/// The TLS handshake; the client (roots, configuration) is made on first use and kept in `tls`.
async fn handshake(
    host: &str,
    tls: &mut Option<TlsClient>,
    tcp: TcpStream,
    limit: Duration,
) -> Result<Wire, Failure> {
    let client = match tls.take() {
        Some(client) => client,
        None => Roots::system()
            .and_then(|roots| TlsClient::new(host, &roots))
            .map_err(|e| Failure::new("start TLS", e))?,
    };
    let stream = step(limit, "start TLS", client.connect(tcp)).await;
    *tls = Some(client);
    Ok(Wire::Tls(Box::new(stream?)))
}

/// A new session: connect, TLS, greeting, LOGIN, CAPABILITY. The password is read now (so
/// rotating it needs no reload) and reaches the socket only in place of `placeholder`.
/// `tls` keeps the TLS client between connections; literals over `max_message_size` (and the
/// slack) fail the connection.
pub(super) async fn login(
    config: &ImapConfig,
    tls: &mut Option<TlsClient>,
    placeholder: &str,
    max_message_size: u64,
) -> Result<(Session<Conn>, Caps), Failure> {
    let limit = config.timeout;
    let conn = |wire| Conn::new(wire, max_message_size);
    let password = config
        .password
        .resolve()
        .map_err(|e| Failure::new("read the IMAP password", e))?;
    if password.contains(['\r', '\n', '\0']) {
        return Err(Failure::new(
            "read the IMAP password",
            ImapError::PasswordUnusable,
        ));
    }
    let tcp = step(
        limit,
        "connect",
        TcpStream::connect((config.host.as_str(), config.port)),
    )
    .await?;
    // Commands are small and answered one at a time: Nagle would only add delay.
    let _ = tcp.set_nodelay(true);
    let mut client = match config.tls {
        Tls::None => greeted(Client::new(conn(Wire::Plain(tcp))), limit).await?,
        Tls::Implicit => {
            let wire = handshake(&config.host, tls, tcp, limit).await?;
            greeted(Client::new(conn(wire)), limit).await?
        }
        Tls::StartTls => {
            let mut plain = greeted(Client::new(conn(Wire::Plain(tcp))), limit).await?;
            step(
                limit,
                "start TLS",
                plain.run_command_and_check_ok("STARTTLS", None),
            )
            .await?;
            // Whatever the server sent after its OK is dropped with the plaintext buffer, so
            // nothing injected before the handshake can pass for a response.
            let Wire::Plain(tcp) = plain.into_inner().into_wire() else {
                return Err(Failure::new("start TLS", ImapError::TlsAlreadyOn));
            };
            Client::new(conn(handshake(&config.host, tls, tcp, limit).await?))
        }
    };

    client.get_mut().arm(placeholder, &escaped(&password));
    drop(password);
    let mut session = match timeout(limit, client.login(&config.user, placeholder)).await {
        Ok(Ok(session)) => session,
        Ok(Err((async_imap::error::Error::No(detail), _))) => {
            return Err(Failure::new(
                "log in",
                ImapError::LoginRefused {
                    user: config.user.clone(),
                    detail: cut(detail),
                },
            ));
        }
        Ok(Err((e, _))) => return Err(Failure::new("log in", e)),
        Err(_) => return Err(Failure::new("log in", ImapError::TimedOut(limit))),
    };
    session.get_mut().disarm();

    let action = "read the capabilities";
    let mut atoms: Vec<String> = Vec::new();
    // Nothing is selected yet: no mail to hear about.
    let mut no_mailbox = false;
    command(
        &mut session,
        limit,
        action,
        "CAPABILITY",
        &mut no_mailbox,
        |r| {
            if let Response::Capabilities(found) = r {
                atoms.extend(found.iter().filter_map(|c| match c {
                    Capability::Atom(a) => Some(a.to_string()),
                    _ => None,
                }));
            }
        },
    )
    .await?
    .map_err(|refusal| Failure::new(action, refusal))?;
    let has = |name: &str| atoms.iter().any(|a| a.eq_ignore_ascii_case(name));
    let caps = Caps {
        idle: has("IDLE"),
        r#move: has("MOVE"),
        uidplus: has("UIDPLUS"),
    };
    Ok((session, caps))
}

/// Sends one command and reads up to its tagged completion, passing every untagged response
/// to `each`; EXISTS and RECENT set `mail_hint` instead. `Err` is a broken exchange (I/O,
/// timeout, BYE); `Ok(Err(refusal))` is the server's NO or BAD on a healthy connection. Each
/// step takes at most `limit`, the whole exchange [`COMMAND_TIMEOUTS`] times that.
pub(super) async fn command(
    session: &mut Session<Conn>,
    limit: Duration,
    action: &'static str,
    line: &str,
    mail_hint: &mut bool,
    mut each: impl FnMut(&Response<'_>),
) -> Result<Result<Completion, Refusal>, Failure> {
    let deadline = Instant::now() + limit * COMMAND_TIMEOUTS;
    let tag = step_by(limit, deadline, action, session.run_command(line)).await?;
    loop {
        let Some(response) = step_by(limit, deadline, action, session.read_response()).await?
        else {
            return Err(Failure::new(action, ImapError::Closed));
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
                    other => Err(Refusal {
                        bad: *other == Status::Bad,
                        code: outcome.code.as_ref().map(|c| cut(format!("{c:?}"))),
                        text: outcome.information.as_ref().map(|i| cut(i.to_string())),
                    }),
                });
            }
            Response::Data {
                status: Status::Bye,
                outcome,
            } => {
                return Err(Failure::new(
                    action,
                    ImapError::Bye(cut(outcome
                        .information
                        .as_deref()
                        .unwrap_or("BYE")
                        .to_owned())),
                ));
            }
            Response::MailboxData(MailboxDatum::Exists(_) | MailboxDatum::Recent(_)) => {
                *mail_hint = true;
            }
            other => each(other),
        }
    }
}
