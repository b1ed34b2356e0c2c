//! `quarantine release N`: a quarantined message goes through the desk again, after a config
//! fix for instance. It is decided by the same code as any arriving message (`Shell::record`:
//! `consider`, `decide`, `execute`), as a new intake from the raw bytes kept in the database
//! (source `release`, key `release:N`, its original arrival time), and in that same
//! transaction the old row is marked released and linked to the new one. A release that is
//! quarantined again is held again, with the new reason; releasing a message twice is
//! refused. The mailbox copy is the caller's to move afterwards (`endpoints::retire`): the
//! database is the truth, the mailbox follows it.

use chrono::{DateTime, Utc};

use super::{Desk, DeskError, PassSummary, lock};
use crate::intake::{Ack, Incoming};
use crate::store::StoreError;
use crate::store::quarantine::{MessageRecord, RELEASE_SOURCE};

/// Why a message cannot be released.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReleaseRefused {
    #[error("there is no message {0} (`quarantine list` shows the held ones)")]
    NoSuchMessage(i64),
    #[error(
        "message {id} is not quarantined (its verdict is {verdict}); only held mail is released"
    )]
    NotQuarantined { id: i64, verdict: String },
    #[error(
        "message {id} was already released, as message {to}; a message is released once \
         (`quarantine list --all` shows it)"
    )]
    AlreadyReleased { id: i64, to: i64 },
    #[error(
        "message {0} was never read (over max_message_size): its bytes are only in the \
         mailbox's quarantine folder; raise [intake] max_message_size and move it back to the \
         inbox to have it read"
    )]
    NeverRead(i64),
}

/// What a release did.
#[derive(Debug, Clone)]
pub struct Released {
    /// The message released.
    pub id: i64,
    /// The row its second decision made.
    pub record: MessageRecord,
    /// Processed now, or quarantined again (then `record.reason` says why).
    pub ack: Ack,
    /// The message as it first arrived: where its mailbox copy is.
    pub origin: MessageRecord,
    /// The counts of the decision, as a pass reports them.
    pub summary: PassSummary,
}

fn refusal(m: &MessageRecord) -> Option<ReleaseRefused> {
    if m.verdict != "quarantined" {
        return Some(ReleaseRefused::NotQuarantined {
            id: m.id,
            verdict: m.verdict.clone(),
        });
    }
    if m.released_at.is_some() {
        return Some(ReleaseRefused::AlreadyReleased {
            id: m.id,
            to: m.released_to.unwrap_or(0),
        });
    }
    None
}

impl Desk {
    /// Releases the quarantined message `id`: decided again at `now`, committed in one
    /// transaction with the mark on the old row. Any mail the decision queues is sent by the
    /// next pass.
    pub async fn release(
        &self,
        id: i64,
        now: DateTime<Utc>,
    ) -> Result<Result<Released, ReleaseRefused>, DeskError> {
        let found = self
            .off_runtime(move |shell| {
                let store = lock(&shell.store);
                let Some(m) = store.message_record(id)? else {
                    return Ok(Err(ReleaseRefused::NoSuchMessage(id)));
                };
                if let Some(refused) = refusal(&m) {
                    return Ok(Err(refused));
                }
                if m.sha256.is_empty() {
                    return Ok(Err(ReleaseRefused::NeverRead(id)));
                }
                let raw = store.raw_bytes(&m.sha256)?.ok_or_else(|| {
                    StoreError::Corrupt(format!("the raw bytes of message {id} are missing"))
                })?;
                Ok(Ok(raw))
            })
            .await?;
        let raw = match found {
            Ok(raw) => raw,
            Err(refused) => return Ok(Err(refused)),
        };
        // Staff mail is checked as it would be on arrival (`[staff] authentication = "dkim"`).
        let (mut raws, mut reports) = self.dkim_reports(vec![raw]).await?;
        let raw = raws.pop().unwrap_or_default();
        let dkim = reports.pop().flatten();
        self.off_runtime(move |shell| {
            let store = lock(&shell.store);
            let book = shell.current_book(&store)?;
            store.write(|tx| {
                // Again inside the transaction: another release may have come first.
                let Some(m) = tx.message_record(id)? else {
                    return Ok(Err(ReleaseRefused::NoSuchMessage(id)));
                };
                if let Some(refused) = refusal(&m) {
                    return Ok(Err(refused));
                }
                // First, so the second reading is not taken for a duplicate of the first.
                tx.mark_released(id, now)?;
                let message = Incoming {
                    key: format!("release:{id}"),
                    handle: String::new(),
                    raw,
                    // Business time runs from the arrival, not from the admin's fix.
                    received_at: m.received_at,
                    too_big: None,
                };
                let mut summary = PassSummary::default();
                let prepared = shell.prepare(&message, m.sha256.clone());
                let ack = shell.record(
                    tx,
                    RELEASE_SOURCE,
                    &message,
                    prepared,
                    dkim.as_ref(),
                    &book,
                    now,
                    &mut summary,
                )?;
                let record = tx
                    .message_by_key(RELEASE_SOURCE, &message.key)?
                    .ok_or_else(|| {
                        StoreError::Corrupt(format!("the release of message {id} left no row"))
                    })?;
                tx.link_release(id, record.id)?;
                let origin = tx.origin(id)?;
                Ok::<_, DeskError>(Ok(Released {
                    id,
                    record,
                    ack,
                    origin,
                    summary,
                }))
            })
        })
        .await
    }
}
