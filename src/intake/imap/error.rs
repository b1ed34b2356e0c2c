//! What goes wrong talking to the IMAP server. The source reports a [`Failure`] as
//! [`crate::intake::IntakeError::Server`] ("cannot ACTION on SERVER"), with the
//! [`ImapError`] as its cause.

use std::io;
use std::time::Duration;

use super::framing::FramingError;
use crate::config::SecretError;
use crate::tls::TlsError;

/// Why an exchange with the IMAP server failed.
#[derive(Debug, thiserror::Error)]
pub(super) enum ImapError {
    /// Its text cut to [`CUT`] characters (async-imap puts the unparsable input in it).
    #[error(transparent)]
    Io(io::Error),
    #[error("no answer within {} s", .0.as_secs())]
    TimedOut(Duration),
    /// The server kept talking without ever completing the command.
    #[error("no end to the answer within {} s", .0.as_secs())]
    Unending(Duration),
    #[error(transparent)]
    Framing(FramingError),
    #[error("the server closed the connection")]
    Closed,
    #[error("the server closed the connection: {0}")]
    Bye(String),
    #[error("the server did not greet with OK: {0}")]
    Greeting(String),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("TLS is already on")]
    TlsAlreadyOn,
    #[error(transparent)]
    Password(#[from] SecretError),
    #[error("the password contains a line break or NUL")]
    PasswordUnusable,
    #[error("the folder name {0:?} contains a control character")]
    FolderName(String),
    /// NO to LOGIN: the user or the password is wrong. async-imap hands over only its own
    /// rendering of the server's response code and text, shown as it is.
    #[error("the server refused the login for user {user:?} ({detail})")]
    LoginRefused { user: String, detail: String },
    /// NO or BAD to one of our own commands (see [`super::session::command`]).
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error("{uids} to {folder:?}")]
    NotMoved {
        uids: String,
        folder: String,
        #[source]
        refusal: Refusal,
    },
    #[error("the server opened it read-only")]
    ReadOnly,
    #[error("the server reports no UIDVALIDITY")]
    NoUidValidity,
    #[error("no mailbox is selected")]
    NotSelected,
    /// NO or BAD to a command async-imap ran (STARTTLS, IDLE), in async-imap's rendering.
    #[error("the server said NO ({0})")]
    No(String),
    #[error("the server said BAD ({0})")]
    Bad(String),
    /// A response async-imap could not parse, or input it would not send: its text, cut.
    #[error("{0}")]
    Protocol(String),
}

/// The most characters of server-provided text an error keeps: a hostile server must not fill
/// the log.
pub(super) const CUT: usize = 300;

/// `text` cut to [`CUT`] characters.
pub(super) fn cut(text: String) -> String {
    match text.char_indices().nth(CUT) {
        Some((at, _)) => format!("{}… ({} bytes)", &text[..at], text.len()),
        None => text,
    }
}

impl From<io::Error> for ImapError {
    fn from(e: io::Error) -> Self {
        if let Some(framing) = e.get_ref().and_then(|i| i.downcast_ref::<FramingError>()) {
            return ImapError::Framing(framing.clone());
        }
        let text = e.to_string();
        if text.chars().nth(CUT).is_some() {
            return ImapError::Io(io::Error::new(e.kind(), cut(text)));
        }
        ImapError::Io(e)
    }
}

impl From<async_imap::error::Error> for ImapError {
    fn from(e: async_imap::error::Error) -> Self {
        use async_imap::error::Error;
        match e {
            Error::Io(e) => ImapError::from(e),
            Error::ConnectionLost => ImapError::Closed,
            Error::No(detail) => ImapError::No(cut(detail)),
            Error::Bad(detail) => ImapError::Bad(cut(detail)),
            other => ImapError::Protocol(cut(other.to_string())),
        }
    }
}

/// The server's NO or BAD to a command, on a connection that is still usable.
#[derive(Debug, thiserror::Error)]
#[error(
    "the server said {}{}{}",
    if *.bad { "BAD" } else { "NO" },
    .code.as_ref().map(|c| format!(" [{c}]")).unwrap_or_default(),
    .text.as_ref().map(|t| format!(": {t}")).unwrap_or_default()
)]
pub(super) struct Refusal {
    /// BAD (the server did not understand the command) rather than NO.
    pub(super) bad: bool,
    /// The response code as imap-proto names it (`TryCreate`), for the message only: it has no
    /// text form of its own, and codes it does not know stay in `text`.
    pub(super) code: Option<String>,
    pub(super) text: Option<String>,
}

impl Refusal {
    /// CREATE of a folder that is there. RFC 5530's `[ALREADYEXISTS]` is not a code imap-proto
    /// knows, so it stays in the text, as does the wording of servers without such codes.
    pub(super) fn already_exists(&self) -> bool {
        self.text
            .as_ref()
            .is_some_and(|t| t.to_ascii_lowercase().contains("exists"))
    }
}

/// A failed step: what the source was doing, and why it failed.
#[derive(Debug)]
pub(super) struct Failure {
    pub(super) action: &'static str,
    pub(super) error: ImapError,
}

impl Failure {
    pub(super) fn new(action: &'static str, error: impl Into<ImapError>) -> Self {
        Failure {
            action,
            error: error.into(),
        }
    }

    /// The server said no to the user and password: worth an error line, not just a warning.
    pub(super) fn login_refused(&self) -> bool {
        matches!(self.error, ImapError::LoginRefused { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_say_the_status_code_and_text() {
        let refusal = |bad, code: Option<&str>, text: Option<&str>| Refusal {
            bad,
            code: code.map(str::to_owned),
            text: text.map(str::to_owned),
        };
        assert_eq!(
            refusal(false, Some("TryCreate"), Some("no such folder")).to_string(),
            "the server said NO [TryCreate]: no such folder"
        );
        assert_eq!(refusal(true, None, None).to_string(), "the server said BAD");
        assert!(
            refusal(false, None, Some("[ALREADYEXISTS] Mailbox already exists")).already_exists()
        );
        assert!(!refusal(false, None, Some("[NOPERM] Permission denied")).already_exists());
    }

    #[test]
    fn server_text_in_errors_is_cut_and_framing_errors_keep_their_type() {
        let long = "é".repeat(1000);
        let cut_text = cut(long.clone());
        assert!(cut_text.starts_with(&"é".repeat(CUT)));
        assert!(cut_text.ends_with("… (2000 bytes)"), "{cut_text}");
        assert_eq!(cut("short".into()), "short");
        // async-imap puts the unparsable bytes into an io::Error's text.
        let e = ImapError::from(async_imap::error::Error::Io(io::Error::other(long)));
        assert!(e.to_string().chars().count() < CUT + 20, "{e}");
        let framing = FramingError::TextTooLong { limit: 7 };
        let e = ImapError::from(io::Error::new(io::ErrorKind::InvalidData, framing.clone()));
        assert!(matches!(e, ImapError::Framing(f) if f == framing));
    }

    #[test]
    fn async_imap_errors_are_told_apart_by_variant() {
        use async_imap::error::Error;
        assert!(matches!(
            ImapError::from(Error::ConnectionLost),
            ImapError::Closed
        ));
        assert!(matches!(
            ImapError::from(Error::No("code: None, info: None".into())),
            ImapError::No(_)
        ));
        assert!(matches!(
            ImapError::from(Error::Io(io::ErrorKind::BrokenPipe.into())),
            ImapError::Io(_)
        ));
    }
}
