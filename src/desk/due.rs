//! What is due when the mailbox cannot be opened at all (the daemon's first connection failed,
//! or every reconnection since): acceptances, license keys, reminders and the outbox still go
//! out through the relay. Replies already queued must not wait for the mail server.

use chrono::{DateTime, Utc};

use super::{Desk, DeskError, PassSummary};
use crate::outbound::Sender;

impl Desk {
    /// The due work of a pass without an intake.
    pub async fn due_only<T: Sender>(
        &mut self,
        sender: &mut T,
        now: DateTime<Utc>,
    ) -> Result<PassSummary, DeskError> {
        let mut summary = PassSummary::default();
        self.due_work(sender, now, &mut summary).await?;
        Ok(summary)
    }
}
