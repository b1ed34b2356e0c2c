//! The embedded default's sender: each message becomes an `.eml` file in the outbox directory.
//! Unlike lettre's file transport (random UUID names) the name comes from the outbox row, so a
//! crash between writing and marking the row sent rewrites the same file instead of leaving a
//! duplicate; each write goes through a temporary file and a rename, so a reader never sees half
//! a message; and a batch is made durable with one `syncfs` instead of an fsync per file, which
//! cost more than the rest of the desk together.

use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::PathBuf;

use super::{Queued, SendError, Sender};

/// Messages written per durability barrier.
const BATCH: usize = 64;

pub struct FileSender {
    dir: PathBuf,
}

impl FileSender {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// The file a queued message is written to.
    pub fn path_for(&self, outbox_id: i64) -> PathBuf {
        self.dir.join(format!("{outbox_id:08}.eml"))
    }

    fn temporary(&self, what: &str, e: std::io::Error) -> SendError {
        SendError::Temporary(format!("cannot {what} in {}: {e}", self.dir.display()))
    }

    /// Writes one message (not yet durable).
    fn write(&self, message: &Queued) -> Result<(), SendError> {
        let path = self.path_for(message.outbox_id);
        let tmp = path.with_extension("eml.tmp");
        let mut file =
            std::fs::File::create(&tmp).map_err(|e| self.temporary("create a file", e))?;
        // The envelope travels with the file, as lettre's `with_envelope` does, in headers a
        // mail client ignores.
        let envelope = format!(
            "X-Envelope-From: <{}>\r\nX-Envelope-To: {}\r\n",
            message.sender,
            message
                .recipients
                .iter()
                .map(|r| format!("<{r}>"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        file.write_all(envelope.as_bytes())
            .and_then(|()| file.write_all(&message.raw))
            .map_err(|e| self.temporary("write a message", e))?;
        std::fs::rename(&tmp, &path).map_err(|e| self.temporary("rename a message", e))?;
        Ok(())
    }

    /// Flushes everything written to the outbox's filesystem, data and names alike.
    fn make_durable(&self) -> Result<(), SendError> {
        let dir = std::fs::File::open(&self.dir)
            .map_err(|e| self.temporary("open the outbox directory", e))?;
        // SAFETY: syncfs takes a file descriptor that `dir` keeps open for the whole call.
        let rc = unsafe { libc::syncfs(dir.as_raw_fd()) };
        if rc != 0 {
            return Err(self.temporary("flush the outbox", std::io::Error::last_os_error()));
        }
        Ok(())
    }
}

impl Sender for FileSender {
    async fn send(&mut self, message: &Queued) -> Result<(), SendError> {
        self.send_all(std::slice::from_ref(message))
            .await
            .pop()
            .unwrap_or_else(|| Err(SendError::Temporary("nothing was written".into())))
    }

    fn parallelism(&self) -> usize {
        BATCH
    }

    async fn send_all(&mut self, batch: &[Queued]) -> Vec<Result<(), SendError>> {
        // File work runs on a blocking thread, never on the async runtime.
        let sender = FileSender::new(self.dir.clone());
        let owned = batch.to_vec();
        let n = batch.len();
        match tokio::task::spawn_blocking(move || sender.write_all(&owned)).await {
            Ok(results) => results,
            Err(e) => (0..n)
                .map(|_| Err(SendError::Temporary(format!("the file writer failed: {e}"))))
                .collect(),
        }
    }
}

impl FileSender {
    fn write_all(&self, batch: &[Queued]) -> Vec<Result<(), SendError>> {
        if let Err(e) = std::fs::create_dir_all(&self.dir) {
            let e = self.temporary("create the outbox directory", e);
            return batch
                .iter()
                .map(|_| Err(SendError::Temporary(e.to_string())))
                .collect();
        }
        let mut results: Vec<Result<(), SendError>> = batch.iter().map(|m| self.write(m)).collect();
        // Only what is on disk counts as accepted.
        if let Err(e) = self.make_durable() {
            for r in results.iter_mut().filter(|r| r.is_ok()) {
                *r = Err(SendError::Temporary(e.to_string()));
            }
        }
        results
    }
}
