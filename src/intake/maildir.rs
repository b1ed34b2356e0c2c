//! A Maildir inbox: `new/` and unseen `cur/` messages; acknowledged by moving to `cur/` with the
//! standard `S` (seen) flag, or into the Maildir++ folder `.Quarantine`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::{Ack, Incoming, IntakeError, Source};

pub struct Maildir {
    root: PathBuf,
    /// Messages found by the last scan and not yet handed out, oldest first. A scan lists and
    /// stats the whole folder, so a backlog is scanned once, not once per batch.
    pending: std::collections::VecDeque<(DateTime<Utc>, String, PathBuf)>,
    /// The folders' modification times when they were last scanned: waiting ends as soon as
    /// they change, and an idle desk does no pass at all.
    scanned: Stamp,
    /// Larger files are not read: handed out as [`Incoming::too_big`].
    max_message_size: u64,
}

/// Modification times of `new/` and `cur/`, and how many entries `new/` has. The count
/// catches a delivery within the filesystem's timestamp granularity of the scan (a few ms on
/// Linux), which the times alone could miss.
type Stamp = (
    Option<std::time::SystemTime>,
    Option<std::time::SystemTime>,
    Option<usize>,
);

fn stamp(root: &Path) -> Stamp {
    let at = |sub: &str| {
        std::fs::metadata(root.join(sub))
            .and_then(|m| m.modified())
            .ok()
    };
    let count = std::fs::read_dir(root.join("new")).ok().map(|d| d.count());
    (at("new"), at("cur"), count)
}

impl Maildir {
    /// Opens the Maildir, creating `new`, `cur` and `tmp` when absent (a fresh desk).
    pub fn open(root: &Path) -> Result<Self, IntakeError> {
        for sub in ["new", "cur", "tmp"] {
            let dir = root.join(sub);
            std::fs::create_dir_all(&dir).map_err(|source| IntakeError::List {
                path: dir.display().to_string(),
                source,
            })?;
        }
        Ok(Self {
            root: root.to_path_buf(),
            pending: std::collections::VecDeque::new(),
            scanned: (None, None, None),
            max_message_size: crate::intake::DEFAULT_MAX_MESSAGE_SIZE,
        })
    }

    /// Messages larger than `bytes` are quarantined unread.
    pub fn with_max_message_size(mut self, bytes: u64) -> Self {
        self.max_message_size = bytes;
        self
    }
}

/// The unique part of a Maildir file name and its flags (`unique:2,FLAGS`).
fn split_name(name: &str) -> (&str, &str) {
    match name.split_once(":2,") {
        Some((unique, flags)) => (unique, flags),
        None => (name.split_once(':').map_or(name, |(u, _)| u), ""),
    }
}

fn list_err(path: &Path) -> impl FnOnce(std::io::Error) -> IntakeError + '_ {
    move |source| IntakeError::List {
        path: path.display().to_string(),
        source,
    }
}

impl Maildir {
    /// Every message in `new/` and every unseen one in `cur/`, oldest delivery first.
    fn scan(&self) -> Result<Vec<(DateTime<Utc>, String, PathBuf)>, IntakeError> {
        let mut found: Vec<(DateTime<Utc>, String, PathBuf)> = Vec::new();
        for sub in ["new", "cur"] {
            let dir = self.root.join(sub);
            for entry in std::fs::read_dir(&dir).map_err(list_err(&dir))? {
                let entry = entry.map_err(list_err(&dir))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') {
                    continue;
                }
                let (unique, flags) = split_name(&name);
                if sub == "cur" && (flags.contains('S') || flags.contains('T')) {
                    continue;
                }
                let meta = entry.metadata().map_err(list_err(&dir))?;
                if !meta.is_file() {
                    continue;
                }
                // Delivery time: the file's modification time, as the MDA wrote it.
                let delivered = meta
                    .modified()
                    .map(DateTime::<Utc>::from)
                    .map_err(list_err(&dir))?;
                found.push((delivered, unique.to_string(), entry.path()));
            }
        }
        found.sort();
        Ok(found)
    }
}

/// The name a Maildir at `root` stores with its messages (`messages.source`).
pub fn source_name(root: &Path) -> String {
    format!("maildir:{}", root.display())
}

/// A released message's copy, still in `.Quarantine` (by its unique name `key`), moves to
/// `cur/` with the seen flag, where processed mail is. False when there is no such copy
/// (moved or deleted by hand). Blocking: call it off the async runtime.
pub fn retire_quarantined(root: &Path, key: &str) -> Result<bool, IntakeError> {
    let quarantine = root.join(".Quarantine");
    for sub in ["cur", "new"] {
        let dir = quarantine.join(sub);
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => return Err(list_err(&dir)(source)),
        };
        for entry in entries {
            let entry = entry.map_err(list_err(&dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if split_name(&name).0 == key {
                ack_now(root, &entry.path().display().to_string(), Ack::Processed)?;
                return Ok(true);
            }
        }
    }
    Ok(false)
}

impl Source for Maildir {
    fn name(&self) -> String {
        source_name(&self.root)
    }

    async fn fetch(&mut self, max: usize) -> Result<Vec<Incoming>, IntakeError> {
        self.fetch_more(max, &HashSet::new()).await
    }

    fn fetches_ahead(&self) -> bool {
        true
    }

    async fn fetch_more(
        &mut self,
        max: usize,
        in_flight: &HashSet<String>,
    ) -> Result<Vec<Incoming>, IntakeError> {
        // File work runs on a blocking thread, never on the async runtime.
        let in_flight = in_flight.clone();
        let mut this = Maildir {
            root: self.root.clone(),
            pending: std::mem::take(&mut self.pending),
            scanned: self.scanned,
            max_message_size: self.max_message_size,
        };
        let (result, pending, scanned) = tokio::task::spawn_blocking(move || {
            let result = this.fetch_now(max, &in_flight);
            (result, this.pending, this.scanned)
        })
        .await
        .map_err(|e| IntakeError::List {
            path: self.root.display().to_string(),
            source: std::io::Error::other(e.to_string()),
        })?;
        self.pending = pending;
        self.scanned = scanned;
        result
    }

    async fn ack(&mut self, message: &Incoming, ack: Ack) -> Result<(), IntakeError> {
        let root = self.root.clone();
        let handle = message.handle.clone();
        tokio::task::spawn_blocking(move || ack_now(&root, &handle, ack))
            .await
            .map_err(|e| IntakeError::Ack {
                path: message.handle.clone(),
                source: std::io::Error::other(e.to_string()),
            })?
    }

    /// A committed batch, moved on one blocking thread; stops at the first failure.
    async fn ack_batch(&mut self, acks: &[(&Incoming, Ack)]) -> Result<(), IntakeError> {
        let root = self.root.clone();
        let moves: Vec<(String, Ack)> = acks
            .iter()
            .map(|(message, ack)| (message.handle.clone(), *ack))
            .collect();
        tokio::task::spawn_blocking(move || {
            moves
                .iter()
                .try_for_each(|(handle, ack)| ack_now(&root, handle, *ack))
        })
        .await
        .map_err(|e| IntakeError::Ack {
            path: self.root.display().to_string(),
            source: std::io::Error::other(e.to_string()),
        })?
    }

    /// Returns once `new/` or `cur/` changed since the last scan (a delivery, or our own
    /// acknowledgements), checking every [`POLL`], or after `at_most`.
    async fn wait_for_mail(&mut self, at_most: std::time::Duration) -> Result<(), IntakeError> {
        let deadline = tokio::time::Instant::now() + at_most;
        loop {
            let root = self.root.clone();
            let now = tokio::task::spawn_blocking(move || stamp(&root))
                .await
                .unwrap_or((None, None, None));
            if now != self.scanned || now.2.is_none() {
                return Ok(());
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            tokio::time::sleep(left.min(POLL)).await;
        }
    }
}

impl Maildir {
    fn fetch_now(
        &mut self,
        max: usize,
        in_flight: &HashSet<String>,
    ) -> Result<Vec<Incoming>, IntakeError> {
        if self.pending.is_empty() {
            // Stamped before the scan: anything delivered during it changes the stamp again.
            self.scanned = stamp(&self.root);
            // What the desk holds (fetched ahead, not yet acknowledged) is still in `new/`.
            self.pending = self
                .scan()?
                .into_iter()
                .filter(|(_, key, _)| !in_flight.contains(key))
                .collect();
        }
        let mut out = Vec::with_capacity(max.min(self.pending.len()));
        let mut bytes = 0u64;
        while out.len() < max && bytes < crate::intake::BATCH_BYTES {
            let Some((received_at, key, path)) = self.pending.pop_front() else {
                break;
            };
            let size = match std::fs::metadata(&path) {
                Ok(m) => m.len(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(source) => {
                    return Err(IntakeError::Read {
                        path: path.display().to_string(),
                        source,
                    });
                }
            };
            if size > self.max_message_size {
                out.push(Incoming {
                    key,
                    handle: path.display().to_string(),
                    raw: Vec::new(),
                    received_at,
                    too_big: Some(size),
                });
                continue;
            }
            let raw = match std::fs::read(&path) {
                Ok(raw) => raw,
                // Moved away since the scan (by another reader, or by hand): not ours to take.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(source) => {
                    return Err(IntakeError::Read {
                        path: path.display().to_string(),
                        source,
                    });
                }
            };
            bytes += raw.len() as u64;
            out.push(Incoming {
                key,
                handle: path.display().to_string(),
                raw,
                received_at,
                too_big: None,
            });
        }
        Ok(out)
    }
}

fn ack_now(root: &Path, handle: &str, ack: Ack) -> Result<(), IntakeError> {
    let from = PathBuf::from(handle);
    let ack_err = |source| IntakeError::Ack {
        path: handle.to_string(),
        source,
    };
    let name = from
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (unique, flags) = split_name(&name);
    let mut flags: Vec<char> = flags.chars().chain(['S']).collect();
    flags.sort_unstable();
    flags.dedup();
    let flags: String = flags.into_iter().collect();
    let folder = match ack {
        Ack::Processed => root.to_path_buf(),
        Ack::Quarantined => {
            let q = root.join(".Quarantine");
            for sub in ["new", "cur", "tmp"] {
                std::fs::create_dir_all(q.join(sub)).map_err(ack_err)?;
            }
            q
        }
    };
    let to = folder.join("cur").join(format!("{unique}:2,{flags}"));
    match std::fs::rename(&from, &to) {
        Ok(()) => Ok(()),
        // Already moved by an earlier pass that crashed before it could forget the message.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && to.exists() => Ok(()),
        Err(e) => Err(ack_err(e)),
    }
}

/// How often a Maildir is looked at while idle.
pub const POLL: std::time::Duration = std::time::Duration::from_secs(2);

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn new_and_unseen_mail_is_fetched_and_acknowledged_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut md = Maildir::open(dir.path()).unwrap();
        std::fs::write(dir.path().join("new/1.host"), b"Subject: a\r\n\r\nx").unwrap();
        std::fs::write(dir.path().join("cur/2.host:2,"), b"Subject: b\r\n\r\nx").unwrap();
        std::fs::write(dir.path().join("cur/3.host:2,S"), b"Subject: c\r\n\r\nx").unwrap();
        let got = md.fetch(10).await.unwrap();
        let keys: Vec<_> = got.iter().map(|m| m.key.as_str()).collect();
        assert_eq!(keys.len(), 2);
        assert!(keys.contains(&"1.host") && keys.contains(&"2.host"));
        for m in &got {
            let ack = if m.key == "2.host" {
                Ack::Quarantined
            } else {
                Ack::Processed
            };
            md.ack(m, ack).await.unwrap();
        }
        assert!(md.fetch(10).await.unwrap().is_empty());
        assert!(dir.path().join("cur/1.host:2,S").exists());
        assert!(dir.path().join(".Quarantine/cur/2.host:2,S").exists());
        // A second acknowledgement of a message already moved is harmless.
        let first = got.iter().find(|m| m.key == "1.host").unwrap();
        md.ack(first, Ack::Processed).await.unwrap();
    }
}
