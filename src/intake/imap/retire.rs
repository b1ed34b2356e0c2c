//! After `quarantine release`: the released message's copy in the quarantine folder moves to
//! the processed folder, like any processed mail. Its UID there is not known (the move into
//! the folder gave it a new one), so it is found by Message-ID and recognised by the SHA-256
//! of its content; a message without a usable Message-ID is looked for among all of them.

use async_imap::Session;
use async_imap::imap_proto::{AttributeValue, MailboxDatum, Response};
use sha2::{Digest, Sha256};

use super::ImapSource;
use super::codec::{mailbox_arg, quoted, uid_set};
use super::error::{Failure, ImapError};
use super::session::{Completion, step};
use super::source::State;
use super::wire::Conn;
use crate::config::ImapConfig;
use crate::intake::IntakeError;

/// Messages fetched per command while looking for the copy.
const CHUNK: usize = 50;

/// The name an IMAP source stores with its messages (`messages.source`).
pub fn source_name(config: &ImapConfig) -> String {
    format!(
        "imap://{}@{}:{}/{}",
        config.user, config.host, config.port, config.mailbox
    )
}

impl ImapSource {
    /// Moves the copies of a released message (`message_id`, content `sha256`) from the
    /// quarantine folder to the processed folder; how many there were (0: none found). The
    /// session is closed afterwards: the next use selects the mailbox anew.
    pub async fn retire_quarantined(
        &mut self,
        message_id: Option<&str>,
        sha256: &str,
    ) -> Result<usize, IntakeError> {
        let state = &mut self.0;
        state.flush_acks().await?;
        let mut session = state.take_session().await?;
        let result = state.retire_with(&mut session, message_id, sha256).await;
        if result.is_ok() {
            let _ = step(state.config.timeout, "log out", session.logout()).await;
        }
        result.map_err(|f| state.failed(f))
    }
}

/// A Message-ID IMAP can search for as a quoted string (ASCII, no control characters).
fn searchable(id: &str) -> bool {
    !id.is_empty() && id.chars().all(|c| (' '..='~').contains(&c))
}

impl State {
    async fn retire_with(
        &mut self,
        session: &mut Session<Conn>,
        message_id: Option<&str>,
        sha256: &str,
    ) -> Result<usize, Failure> {
        let folder = self.config.quarantine.clone();
        let action = "select the quarantine folder";
        match self
            .command(
                session,
                action,
                &format!("SELECT {}", mailbox_arg(&folder)),
                |_| {},
            )
            .await?
        {
            Err(refusal) => return Err(Failure::new(action, refusal)),
            Ok(Completion { read_only: true }) => {
                return Err(Failure::new(action, ImapError::ReadOnly));
            }
            Ok(_) => {}
        }
        // The selected mailbox is no longer the one the source fetches from.
        self.uidvalidity = None;
        let search = match message_id.filter(|id| searchable(id)) {
            Some(id) => format!("UID SEARCH UNDELETED HEADER Message-ID {}", quoted(id)),
            None => "UID SEARCH UNDELETED".to_owned(),
        };
        let action = "search the quarantine folder";
        let mut uids: Vec<u32> = Vec::new();
        self.command(session, action, &search, |r| {
            if let Response::MailboxData(MailboxDatum::Search(found)) = r {
                uids.extend(found);
            }
        })
        .await?
        .map_err(|refusal| Failure::new(action, refusal))?;
        uids.sort_unstable();
        uids.dedup();
        let mut matching = Vec::new();
        let action = "fetch mail from the quarantine folder";
        for chunk in uids.chunks(CHUNK) {
            let mut got: Vec<(u32, Vec<u8>)> = Vec::new();
            self.command(
                session,
                action,
                &format!("UID FETCH {} (UID BODY.PEEK[])", uid_set(chunk)),
                |r| {
                    let Response::Fetch(_, attrs) = r else {
                        return;
                    };
                    let mut uid = None;
                    let mut body = None;
                    for attr in attrs {
                        match attr {
                            AttributeValue::Uid(u) => uid = Some(*u),
                            AttributeValue::BodySection {
                                section: None,
                                index: None,
                                data: Some(data),
                            } => body = Some(data.to_vec()),
                            _ => {}
                        }
                    }
                    if let (Some(uid), Some(body)) = (uid, body) {
                        got.push((uid, body));
                    }
                },
            )
            .await?
            .map_err(|refusal| Failure::new(action, refusal))?;
            matching.extend(
                got.into_iter()
                    .filter(|(_, body)| hex::encode(Sha256::digest(body)) == sha256)
                    .map(|(uid, _)| uid),
            );
        }
        if matching.is_empty() {
            return Ok(0);
        }
        matching.sort_unstable();
        matching.dedup();
        let processed = self.config.processed.clone();
        self.move_uids(session, &matching, &processed).await?;
        Ok(matching.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_ascii_message_ids_are_searched_for() {
        assert!(searchable("q1@example.jp"));
        assert!(searchable("a \"b\"@x"));
        assert!(!searchable(""));
        assert!(!searchable("日本@example.jp"));
        assert!(!searchable("a\r\nb@x"));
    }
}
