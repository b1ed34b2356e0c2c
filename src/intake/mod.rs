//! Where mail comes from. A `Source` hands out messages with their arrival time and is told,
//! only after the transaction that recorded them has committed, what became of each
//! (ARCHITECTURE.md, invariant 2). Nothing above this module knows which source it is.

pub mod maildir;

use chrono::{DateTime, Utc};

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
}

pub trait Source {
    /// A stable name for the mailbox, stored with each message (`maildir:/var/lib/…/inbox`).
    fn name(&self) -> String;
    /// Up to `max` messages not yet acknowledged, oldest delivery first.
    fn fetch(&mut self, max: usize) -> Result<Vec<Incoming>, IntakeError>;
    /// Called after commit.
    fn ack(&mut self, message: &Incoming, ack: Ack) -> Result<(), IntakeError>;
}
