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
//! - Every network wait has a deadline (`[intake] timeout` a step, [`COMMAND_TIMEOUTS`] times
//!   that a command), so a silent or endlessly talking server cannot hang the desk; and what the
//!   server sends is held only up to `max_message_size` and a little more (`framing`), so a
//!   server announcing a 2 GB literal cannot make the desk allocate it.
//!
//! The parts: `codec` (mailbox names, UID sets, dates, keys as text), `wire` (the byte stream
//! that keeps the password out of traces), `framing` (how much of an answer is held),
//! `session` (connect, TLS, login, capabilities, one command's exchange), `source`
//! ([`ImapSource`]: reconnects with backoff, folders, SELECT and UIDVALIDITY, IDLE), `fetch` (batches, messages that break the connection), `ack` (MOVE or
//! COPY + EXPUNGE after commit), `retire` (a released message's copy out of the quarantine
//! folder), `error` (what went wrong, typed: the cause inside
//! [`crate::intake::IntakeError::Server`]).

mod ack;
mod codec;
mod error;
mod fetch;
mod framing;
mod retire;
mod session;
mod source;
mod wire;

pub use fetch::SUSPECT_PAUSE_MAX;
pub use framing::{LITERAL_SLACK, MAX_SEARCH_TEXT, MAX_TEXT};
pub use retire::source_name;
pub use session::COMMAND_TIMEOUTS;
pub use source::{BACKOFF_FIRST, BACKOFF_MAX, IDLE_MAX, ImapSource, backoff_delay};
