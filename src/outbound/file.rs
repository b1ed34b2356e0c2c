//! The embedded default's sender: each message becomes an `.eml` file in the outbox directory.
//! Unlike lettre's file transport (random UUID names) the name comes from the outbox row, so a
//! crash between writing and marking the row sent rewrites the same file instead of leaving a
//! duplicate; the write goes through a temporary file and a rename, so a reader never sees half
//! a message.

use std::io::Write;
use std::path::PathBuf;

use super::{Queued, SendError, Sender};

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
}

impl Sender for FileSender {
    async fn send(&mut self, message: &Queued) -> Result<(), SendError> {
        let temporary = |what: &str, e: std::io::Error| {
            SendError::Temporary(format!("cannot {what} in {}: {e}", self.dir.display()))
        };
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| temporary("create the outbox directory", e))?;
        let path = self.path_for(message.outbox_id);
        let tmp = path.with_extension("eml.tmp");
        let mut file = std::fs::File::create(&tmp).map_err(|e| temporary("create a file", e))?;
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
            .and_then(|()| file.sync_all())
            .map_err(|e| temporary("write a message", e))?;
        std::fs::rename(&tmp, &path).map_err(|e| temporary("rename a message", e))?;
        Ok(())
    }
}
