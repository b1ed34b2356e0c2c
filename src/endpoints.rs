//! The configured mailbox and relay behind the `Source` and `Sender` traits: `[intake] kind` and
//! `[outbound] kind` choose them, and nothing above this module knows which it got.

use crate::config::{Config, Intake, Outbound};
use crate::intake::maildir::Maildir;
use crate::intake::{Ack, Incoming, IntakeError, Source};
use crate::outbound::file::FileSender;
use crate::outbound::{Queued, SendError, Sender};

#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error(transparent)]
    Intake(#[from] IntakeError),
    #[error("{0} is not available in this build")]
    Unsupported(&'static str),
}

/// The mailbox the desk reads.
pub enum MailSource {
    Maildir(Maildir),
    Imap(crate::intake::imap::ImapSource),
}

/// Where the desk's mail leaves.
pub enum MailSender {
    File(FileSender),
    Smtp(crate::outbound::smtp::SmtpSender),
}

impl MailSource {
    pub async fn open(config: &Config) -> Result<Self, EndpointError> {
        match &config.intake {
            Intake::Maildir { dir } => Ok(MailSource::Maildir(
                Maildir::open(dir)?.with_max_message_size(config.max_message_size),
            )),
            Intake::Imap(imap) => Ok(MailSource::Imap(
                crate::intake::imap::ImapSource::connect(imap)
                    .await?
                    .with_max_message_size(config.max_message_size),
            )),
        }
    }
}

/// What became of a released message's copy in the mailbox's quarantine folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retired {
    /// Moved to where processed mail goes (this many copies).
    Moved(usize),
    /// No copy there (moved or deleted by hand).
    NotFound,
    /// The message came from another mailbox than the configured one (`source`): untouched.
    Elsewhere(String),
}

/// Moves the quarantined copy of a released message to where processed mail goes. `source`
/// and `key` are those the message was recorded with when it arrived; `message_id` and
/// `sha256` find it in an IMAP folder, where its UID changed on the way in.
pub async fn retire_quarantined(
    config: &Config,
    source: &str,
    key: &str,
    message_id: Option<&str>,
    sha256: &str,
) -> Result<Retired, EndpointError> {
    let found = |n: usize| {
        if n == 0 {
            Retired::NotFound
        } else {
            Retired::Moved(n)
        }
    };
    match &config.intake {
        Intake::Maildir { dir } if crate::intake::maildir::source_name(dir) == source => {
            let (dir, key) = (dir.clone(), key.to_owned());
            let moved = tokio::task::spawn_blocking(move || {
                crate::intake::maildir::retire_quarantined(&dir, &key)
            })
            .await
            .map_err(|e| IntakeError::Ack {
                path: source.to_owned(),
                source: std::io::Error::other(e.to_string()),
            })??;
            Ok(found(usize::from(moved)))
        }
        Intake::Imap(imap) if crate::intake::imap::source_name(imap) == source => {
            let mut mailbox = crate::intake::imap::ImapSource::connect(imap).await?;
            Ok(found(mailbox.retire_quarantined(message_id, sha256).await?))
        }
        _ => Ok(Retired::Elsewhere(source.to_owned())),
    }
}

impl MailSender {
    pub fn open(config: &Config) -> Result<Self, EndpointError> {
        match &config.outbound {
            Outbound::File { dir } => Ok(MailSender::File(FileSender::new(dir.clone()))),
            Outbound::Smtp(smtp) => Ok(MailSender::Smtp(crate::outbound::smtp::SmtpSender::new(
                smtp,
            ))),
        }
    }
}

impl Source for MailSource {
    fn name(&self) -> String {
        match self {
            MailSource::Maildir(m) => m.name(),
            MailSource::Imap(i) => i.name(),
        }
    }

    async fn fetch(&mut self, max: usize) -> Result<Vec<Incoming>, IntakeError> {
        match self {
            MailSource::Maildir(m) => m.fetch(max).await,
            MailSource::Imap(i) => i.fetch(max).await,
        }
    }

    async fn ack(&mut self, message: &Incoming, ack: Ack) -> Result<(), IntakeError> {
        match self {
            MailSource::Maildir(m) => m.ack(message, ack).await,
            MailSource::Imap(i) => i.ack(message, ack).await,
        }
    }

    async fn wait_for_mail(&mut self, at_most: std::time::Duration) -> Result<(), IntakeError> {
        match self {
            MailSource::Maildir(m) => m.wait_for_mail(at_most).await,
            MailSource::Imap(i) => i.wait_for_mail(at_most).await,
        }
    }

    fn fetches_ahead(&self) -> bool {
        match self {
            MailSource::Maildir(m) => m.fetches_ahead(),
            MailSource::Imap(i) => i.fetches_ahead(),
        }
    }

    async fn fetch_more(
        &mut self,
        max: usize,
        in_flight: &std::collections::HashSet<String>,
    ) -> Result<Vec<Incoming>, IntakeError> {
        match self {
            MailSource::Maildir(m) => m.fetch_more(max, in_flight).await,
            MailSource::Imap(i) => i.fetch_more(max, in_flight).await,
        }
    }

    async fn ack_batch(&mut self, acks: &[(&Incoming, Ack)]) -> Result<(), IntakeError> {
        match self {
            MailSource::Maildir(m) => m.ack_batch(acks).await,
            MailSource::Imap(i) => i.ack_batch(acks).await,
        }
    }
}

impl MailSender {
    /// Reaches the relay once (SMTP: connect, TLS, EHLO, AUTH; the connection is kept for the
    /// first message). A failure is already logged.
    pub async fn reach(&mut self) -> Result<(), SendError> {
        match self {
            MailSender::File(_) => Ok(()),
            MailSender::Smtp(s) => s.reach().await,
        }
    }

    /// Ends open relay sessions politely (QUIT) at shutdown.
    pub async fn close(&mut self) {
        match self {
            MailSender::File(_) => {}
            MailSender::Smtp(s) => s.close().await,
        }
    }
}

impl Sender for MailSender {
    async fn send(&mut self, message: &Queued) -> Result<(), SendError> {
        match self {
            MailSender::File(f) => f.send(message).await,
            MailSender::Smtp(s) => s.send(message).await,
        }
    }

    fn parallelism(&self) -> usize {
        match self {
            MailSender::File(f) => f.parallelism(),
            MailSender::Smtp(s) => s.parallelism(),
        }
    }

    async fn send_all(&mut self, batch: &[Queued]) -> Vec<Result<(), SendError>> {
        match self {
            MailSender::File(f) => f.send_all(batch).await,
            MailSender::Smtp(s) => s.send_all(batch).await,
        }
    }
}
