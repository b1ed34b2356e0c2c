//! Outgoing mail: `core::reply::OutgoingMail` → RFC 5322 bytes (lettre's builder), and the
//! senders the outbox worker hands them to (`file` now; `smtp` behind the same trait).

pub mod file;
pub mod smtp;

use std::time::SystemTime;

use chrono::{DateTime, Utc};
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, SinglePart};

use crate::core::reply::OutgoingMail;

#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("cannot use {address:?} as a mail address")]
    Address {
        address: String,
        #[source]
        source: lettre::address::AddressError,
    },
    #[error("cannot build the message")]
    Build(#[source] lettre::error::Error),
}

/// A message ready to send: the bytes and the envelope they travel in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Composed {
    pub message_id: String,
    pub sender: String,
    pub recipients: Vec<String>,
    pub raw: Vec<u8>,
}

/// Our loop marker: mail carrying it that comes back to the desk is never answered.
pub const LOOP_HEADER: &str = "X-Madoguchi-Loop";

fn mailbox(address: &str, name: Option<&str>) -> Result<Mailbox, ComposeError> {
    let addr = address.parse().map_err(|source| ComposeError::Address {
        address: address.to_string(),
        source,
    })?;
    Ok(Mailbox::new(name.map(str::to_string), addr))
}

fn angle(id: &str) -> String {
    format!("<{id}>")
}

/// Builds the RFC 5322 message (UTF-8, base64/QP as lettre chooses) with the threading and
/// RFC 3834 headers every mail from the desk carries.
pub fn compose(
    mail: &OutgoingMail,
    desk_address: &str,
    desk_name: &str,
    message_id: &str,
    date: DateTime<Utc>,
) -> Result<Composed, ComposeError> {
    let mut builder = lettre::Message::builder()
        .from(mailbox(desk_address, Some(desk_name))?)
        .subject(mail.subject.clone())
        .message_id(Some(angle(message_id)))
        .date(SystemTime::from(date))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Auto-Submitted"),
            mail.kind.auto_submitted().to_string(),
        ))
        // Exchange and others honour this and send no out-of-office replies back to us.
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("X-Auto-Response-Suppress"),
            "All".to_string(),
        ))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str(LOOP_HEADER),
            desk_address.to_string(),
        ));
    for to in &mail.to {
        builder = builder.to(mailbox(to, None)?);
    }
    if let Some(id) = &mail.in_reply_to {
        builder = builder.in_reply_to(angle(id));
    }
    if !mail.references.is_empty() {
        let refs: Vec<String> = mail.references.iter().map(|r| angle(r)).collect();
        builder = builder.references(refs.join(" "));
    }
    let message = builder
        .singlepart(
            SinglePart::builder()
                .header(ContentType::TEXT_PLAIN)
                .body(mail.body.clone()),
        )
        .map_err(ComposeError::Build)?;
    Ok(Composed {
        message_id: message_id.to_string(),
        sender: desk_address.to_string(),
        recipients: mail.to.clone(),
        raw: message.formatted(),
    })
}

/// Why a send did not succeed, as the outbox worker needs to know it.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Worth retrying later (connection trouble, 4xx, a full disk).
    #[error("temporary failure: {0}")]
    Temporary(String),
    /// The server refused for good (5xx); the delivery is marked failed and staff are told.
    #[error("permanent failure: {0}")]
    Permanent(String),
}

/// One queued message as a sender sees it.
#[derive(Debug, Clone)]
pub struct Queued {
    pub outbox_id: i64,
    pub message_id: String,
    pub sender: String,
    pub recipients: Vec<String>,
    pub raw: Vec<u8>,
}

/// Where queued mail goes. A send returns only once the destination has accepted the message.
/// Used with concrete types on the daemon's own task, so the futures need not be `Send`.
#[allow(async_fn_in_trait)]
pub trait Sender {
    async fn send(&mut self, message: &Queued) -> Result<(), SendError>;

    /// How many messages are in flight at once. The desk hands out batches of this size and
    /// records each batch's outcome before the next, so a crash can resend at most this many.
    fn parallelism(&self) -> usize {
        1
    }

    /// Sends a batch, results in batch order; an implementation may send in parallel.
    async fn send_all(&mut self, batch: &[Queued]) -> Vec<Result<(), SendError>> {
        let mut results = Vec::with_capacity(batch.len());
        for message in batch {
            results.push(self.send(message).await);
        }
        results
    }
}
