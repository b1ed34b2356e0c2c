//! Acknowledging: a message whose fate the desk has committed moves into the processed or
//! quarantine folder, one command per folder for the whole fetched batch.

use std::io;

use async_imap::Session;

use super::codec::{mailbox_arg, parse_key, uid_set};
use super::error::{Failure, ImapError};
use super::source::State;
use super::wire::Conn;
use crate::intake::{Ack, Incoming, IntakeError};

/// An acknowledgement waiting for the rest of its batch.
#[derive(Debug, Clone, Copy)]
pub(super) struct PendingAck {
    uidvalidity: u32,
    uid: u32,
    ack: Ack,
}

impl State {
    pub(super) async fn ack(&mut self, message: &Incoming, ack: Ack) -> Result<(), IntakeError> {
        self.hold_ack(message, ack)?;
        // The whole batch is in: one move per folder instead of one per message.
        if self.outstanding.is_empty() {
            self.flush_acks().await
        } else {
            Ok(())
        }
    }

    /// A committed batch at once: one move per folder.
    pub(super) async fn ack_batch(&mut self, acks: &[(&Incoming, Ack)]) -> Result<(), IntakeError> {
        for (message, ack) in acks {
            self.hold_ack(message, *ack)?;
        }
        self.flush_acks().await
    }

    /// Keeps the acknowledgement of `message` for the next flush.
    fn hold_ack(&mut self, message: &Incoming, ack: Ack) -> Result<(), IntakeError> {
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
        Ok(())
    }

    /// Applies the acknowledgements waiting on the server (one command per target folder).
    pub(super) async fn flush_acks(&mut self) -> Result<(), IntakeError> {
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

    pub(super) async fn move_uids(
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
            move |refusal| {
                Failure::new(
                    action,
                    ImapError::NotMoved {
                        uids: what.clone(),
                        folder: folder.to_owned(),
                        refusal,
                    },
                )
            }
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
}
