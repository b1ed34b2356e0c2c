//! Where mail comes from. A `Source` hands out messages with their arrival time and is told,
//! only after the transaction that recorded them has committed, what became of each
//! (ARCHITECTURE.md, invariant 2). Nothing above this module knows which source it is.

pub mod imap;
pub mod maildir;

use std::collections::HashSet;

use chrono::{DateTime, Utc};

/// A batch stops growing once the messages in it hold this many bytes (at least one message
/// is always taken): a backlog of large mail cannot fill memory.
pub const BATCH_BYTES: u64 = 64 * 1024 * 1024;

/// Larger mail is never read unless the config says otherwise (`[intake] max_message_size`).
pub const DEFAULT_MAX_MESSAGE_SIZE: u64 = 25 * 1024 * 1024;

/// One message as delivered to the mailbox.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// Stable identity within the source (Maildir unique name; later UIDVALIDITY:UID).
    pub key: String,
    /// Where the source finds it again to acknowledge it.
    pub handle: String,
    pub raw: Vec<u8>,
    /// Delivery time: business time starts here, not when the desk got round to it.
    pub received_at: DateTime<Utc>,
    /// Set, with the size the source gave, when the message is over `max_message_size`: it
    /// was not read (`raw` is empty) and is quarantined unread.
    pub too_big: Option<u64>,
}

impl AsRef<[u8]> for Incoming {
    fn as_ref(&self) -> &[u8] {
        &self.raw
    }
}

/// What the source does with a message once its fate is committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ack {
    /// Recorded (article, automatic mail, duplicate): mark it seen / move it to processed.
    Processed,
    /// Kept aside for a person.
    Quarantined,
}

#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error("cannot read the mailbox {path}")]
    List {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read message {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot acknowledge message {path}")]
    Ack {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The mail server failed or went away; the caller reconnects with backoff.
    #[error("cannot {action} on {server}")]
    Server {
        action: &'static str,
        server: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Used with concrete types on the daemon's own task, so the futures need not be `Send`.
#[allow(async_fn_in_trait)]
pub trait Source {
    /// A stable name for the mailbox, stored with each message (`maildir:/var/lib/…/inbox`).
    fn name(&self) -> String;
    /// Up to `max` messages not yet acknowledged, oldest delivery first.
    async fn fetch(&mut self, max: usize) -> Result<Vec<Incoming>, IntakeError>;
    /// Called after commit.
    async fn ack(&mut self, message: &Incoming, ack: Ack) -> Result<(), IntakeError>;
    /// Returns when new mail may have arrived, or after `at_most` (IMAP IDLE; a Maildir polls).
    async fn wait_for_mail(&mut self, at_most: std::time::Duration) -> Result<(), IntakeError>;

    /// Whether [`Source::fetch_more`] may be called while an earlier batch is still in flight
    /// (handed out, not yet acknowledged): the desk then fetches the next batch while the last
    /// one is decided and committed. A source that says no is given one batch at a time.
    fn fetches_ahead(&self) -> bool {
        false
    }

    /// Like [`Source::fetch`], leaving out the messages whose keys are `in_flight` (handed out
    /// by an earlier call and not acknowledged yet). With an empty `in_flight` it is `fetch`;
    /// only a source that [`fetches_ahead`](Source::fetches_ahead) is given a non-empty one.
    async fn fetch_more(
        &mut self,
        max: usize,
        in_flight: &HashSet<String>,
    ) -> Result<Vec<Incoming>, IntakeError> {
        let _ = in_flight;
        self.fetch(max).await
    }

    /// Acknowledges a committed batch: [`Source::ack`] for each message, in order (a source
    /// may apply them in one go: IMAP one MOVE per folder, a Maildir one blocking task).
    async fn ack_batch(&mut self, acks: &[(&Incoming, Ack)]) -> Result<(), IntakeError> {
        for (message, ack) in acks {
            self.ack(message, *ack).await?;
        }
        Ok(())
    }
}
