//! Where the log goes. Under systemd, when stderr is the journal's stream (`JOURNAL_STREAM`
//! names its device and inode), entries go to journald directly, structured: `MESSAGE=`, a
//! `PRIORITY=` from the level, and each field of the event and of its spans as a field of its
//! own (`TICKET=`, `MAIL_KEY=`, `MAIL_MESSAGE_ID=`, `OUTBOX=`, `ERROR=`, `SERVER=` …), so
//! `journalctl -u madoguchi TICKET=42` finds a ticket's lines. Anywhere else (a terminal, a
//! file, a pipe, another supervisor): plain lines on stderr, as before.
//!
//! The filter is `MADOGUCHI_LOG` (default `warn`) either way.

use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;

use madoguchi::profile::StageTimes;
use tracing_journald::{Priority, PriorityMappings};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

fn filter() -> EnvFilter {
    EnvFilter::try_from_env("MADOGUCHI_LOG").unwrap_or_else(|_| EnvFilter::new("warn"))
}

pub fn init() {
    if stderr_is_the_journal() {
        match journald() {
            Ok(layer) => {
                if tracing_subscriber::registry()
                    .with(filter())
                    .with(layer)
                    .try_init()
                    .is_ok()
                {
                    return;
                }
            }
            // The stream is the journal's but its socket is not there (a copied environment,
            // a container): say so once, on the stream, and log plain lines to it.
            Err(e) => super::write_stderr(&format!(
                "madoguchi: cannot write to journald ({e}); logging plain lines to stderr\n"
            )),
        }
    }
    // Logs go to stderr so stdout stays clean for --json.
    let lines = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        // Log files and pipes get plain text; colours only on a terminal.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        // A log line that cannot be written (stderr closed) is dropped; reporting that on the
        // same stderr would panic instead.
        .log_internal_errors(false)
        .with_filter(filter());
    // `MADOGUCHI_PROFILE=1`: the stage spans are added up (`madoguchi::profile`), whatever
    // the log's filter; `run --once` prints them at the end.
    let stages = std::env::var_os("MADOGUCHI_PROFILE")
        .is_some_and(|v| !v.is_empty() && v != "0")
        .then(|| PROFILE.get_or_init(StageTimes::default).clone())
        .map(|layer| layer.with_filter(filter_fn(StageTimes::wants)));
    let _ = tracing_subscriber::registry()
        .with(lines)
        .with(stages)
        .try_init();
}

static PROFILE: std::sync::OnceLock<StageTimes> = std::sync::OnceLock::new();

/// The stage times, when `MADOGUCHI_PROFILE` asked for them.
pub fn profile() -> Option<&'static StageTimes> {
    PROFILE.get()
}

/// The journald layer: fields under their own names (no `F_` prefix; none of ours is a
/// journal field's name: the mail's Message-ID is `MAIL_MESSAGE_ID`, since `MESSAGE_ID` is the
/// journal's catalog id), and the levels on syslog's scale as `journalctl -p` reads it.
fn journald() -> std::io::Result<tracing_journald::Layer> {
    let priorities = PriorityMappings {
        error: Priority::Error,
        warn: Priority::Warning,
        info: Priority::Informational,
        debug: Priority::Debug,
        trace: Priority::Debug,
    };
    Ok(tracing_journald::layer()?
        .with_field_prefix(None)
        .with_priority_mappings(priorities)
        .with_syslog_identifier("madoguchi".to_string()))
}

/// Is stderr the stream systemd connected to the journal? Only then does `JOURNAL_STREAM`
/// apply: a child whose stderr was redirected inherits the variable but not the stream.
fn stderr_is_the_journal() -> bool {
    let Some(value) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some(value) = value.to_str() else {
        return false;
    };
    let Ok(stderr) = std::io::stderr().as_fd().try_clone_to_owned() else {
        return false;
    };
    match std::fs::File::from(stderr).metadata() {
        Ok(meta) => names_stream(value, meta.dev(), meta.ino()),
        Err(_) => false,
    }
}

/// Does `JOURNAL_STREAM` (`DEVICE:INODE`, both decimal) name this device and inode?
fn names_stream(value: &str, dev: u64, ino: u64) -> bool {
    let Some((d, i)) = value.trim().split_once(':') else {
        return false;
    };
    d.parse::<u64>() == Ok(dev) && i.parse::<u64>() == Ok(ino)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_stream_names_a_device_and_an_inode() {
        assert!(names_stream("8:123456", 8, 123_456));
        assert!(!names_stream("8:123456", 8, 123_457));
        assert!(!names_stream("9:123456", 8, 123_456));
        assert!(!names_stream("8123456", 8, 123_456));
        assert!(!names_stream("", 0, 0));
        assert!(!names_stream("x:y", 0, 0));
    }
}
