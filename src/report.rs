//! An error as one line of text, for the places in the shell that log an error or store it
//! (the outbox's `last_error`) rather than hand it up: the error and its causes separated by
//! `: `, as anyhow's `{:#}` prints them at the CLI edge.

use std::error::Error;

/// `error: cause: cause of the cause`. A cause whose text the line already ends with is left
/// out: some libraries (lettre, async-imap) print their source inside their own message too.
pub fn chain(error: &(dyn Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(cause) = next {
        let more = cause.to_string();
        if !text.ends_with(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        next = cause.source();
    }
    text
}

/// The innermost cause's text: what "the same failure again" means when the step that hit it
/// differs (a full disk fails whichever insert comes first).
pub fn root_cause(error: &(dyn Error + 'static)) -> String {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    enum Outer {
        #[error("cannot connect to {0}")]
        Connect(&'static str, #[source] std::io::Error),
        #[error("transient error (451): {0}")]
        Echoes(#[source] Inner),
    }

    #[derive(Debug, thiserror::Error)]
    #[error("try again later")]
    struct Inner;

    #[test]
    fn causes_follow_the_error_once_each() {
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert_eq!(
            chain(&Outer::Connect("relay:25", refused)),
            "cannot connect to relay:25: refused"
        );
        assert_eq!(
            chain(&Outer::Echoes(Inner)),
            "transient error (451): try again later"
        );
    }

    #[test]
    fn the_root_cause_is_the_innermost_text() {
        let full = || std::io::Error::other("database is full");
        assert_eq!(root_cause(&Outer::Connect("a", full())), "database is full");
        assert_eq!(root_cause(&Outer::Connect("b", full())), "database is full");
        assert_eq!(root_cause(&Inner), "try again later");
    }
}
