//! One daemon per database: `run` (the daemon and `--once`) holds an exclusive lock on
//! `<database>.lock` for the life of the process, with its pid written in the file, so a
//! mistaken second instance refuses to start instead of processing the mailbox twice. The
//! kernel drops the lock when the process ends, however it ends (a SIGKILL, a crash): no stale
//! lock file ever needs removing by hand.
//!
//! The lock is an open-file-description record lock (`F_OFD_SETLK`, Linux ≥ 3.15), not
//! `flock(2)`: `status` asks who holds it with `F_OFD_GETLK`, which looks without taking it.
//! With `flock` the only probe is to try taking the lock, and a `status` run by a monitoring
//! agent at the moment the daemon starts would make that start fail. Like `flock`, the lock
//! belongs to the open file, so no other file handle in the process can release it by
//! accident (classic POSIX record locks are dropped by any `close` of the file).

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

#[cfg(target_os = "linux")]
const SET_LOCK: libc::c_int = libc::F_OFD_SETLK;
#[cfg(target_os = "linux")]
const GET_LOCK: libc::c_int = libc::F_OFD_GETLK;
#[cfg(target_os = "linux")]
const SET_LOCK_WAIT: libc::c_int = libc::F_OFD_SETLKW;
// Elsewhere, classic POSIX record locks: the same calls, owned by the process.
#[cfg(not(target_os = "linux"))]
const SET_LOCK: libc::c_int = libc::F_SETLK;
#[cfg(not(target_os = "linux"))]
const SET_LOCK_WAIT: libc::c_int = libc::F_SETLKW;
#[cfg(not(target_os = "linux"))]
const GET_LOCK: libc::c_int = libc::F_GETLK;

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another madoguchi{} is already running on {}: it holds the lock {}; stop it first \
         (systemctl stop madoguchi), or give this one its own [storage] database",
        pid.map(|p| format!(" (pid {p})")).unwrap_or_default(),
        database.display(),
        lock.display()
    )]
    Held {
        database: PathBuf,
        lock: PathBuf,
        pid: Option<u32>,
    },
    #[error("cannot create the database directory {path}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open the lock file {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot lock {path}")]
    Lock {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write the pid into the lock file {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The lock of a running instance; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct InstanceLock {
    /// Held open: the lock belongs to this open file.
    _file: File,
    path: PathBuf,
}

impl InstanceLock {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Who holds a database's lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// The pid its holder wrote; `None` in the moment between taking the lock and writing it.
    pub pid: Option<u32>,
}

/// The lock file of `database`: `<database>.lock`, beside it.
pub fn lock_path(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Takes the instance lock of `database` without waiting: [`LockError::Held`] (with the
/// holder's pid) when another process has it. Creates the database's directory if needed.
pub fn acquire(database: &Path) -> Result<InstanceLock, LockError> {
    let path = lock_path(database);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| LockError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .open(&path)
        .map_err(|source| LockError::Open {
            path: path.clone(),
            source,
        })?;
    let mut request = whole_file(libc::F_WRLCK);
    // SAFETY: `file` is an open descriptor and `request` a valid, initialised `struct flock`
    // that lives across the call.
    let rc = unsafe { libc::fcntl(file.as_raw_fd(), SET_LOCK, &mut request) };
    if rc == -1 {
        let err = std::io::Error::last_os_error();
        return match err.raw_os_error() {
            Some(libc::EAGAIN | libc::EACCES) => Err(LockError::Held {
                database: database.to_path_buf(),
                pid: read_pid(&path),
                lock: path,
            }),
            _ => Err(LockError::Lock { path, source: err }),
        };
    }
    let write_err = |source| LockError::Write {
        path: path.clone(),
        source,
    };
    file.set_len(0).map_err(write_err)?;
    file.write_all_at(format!("{}\n", std::process::id()).as_bytes(), 0)
        .map_err(write_err)?;
    Ok(InstanceLock { _file: file, path })
}

/// Waits for, then takes, an exclusive lock on `path` (created when missing), held until the
/// returned file is dropped: a short critical section between processes, such as a schema
/// migration that the daemon starting and a `status` probe could otherwise both begin.
pub fn lock_waiting(path: &Path) -> Result<File, LockError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .open(path)
        .map_err(|source| LockError::Open {
            path: path.to_path_buf(),
            source,
        })?;
    loop {
        let mut request = whole_file(libc::F_WRLCK);
        // SAFETY: `file` is an open descriptor and `request` a valid, initialised
        // `struct flock` that lives across the call.
        let rc = unsafe { libc::fcntl(file.as_raw_fd(), SET_LOCK_WAIT, &mut request) };
        if rc != -1 {
            return Ok(file);
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != ErrorKind::Interrupted {
            return Err(LockError::Lock {
                path: path.to_path_buf(),
                source: err,
            });
        }
    }
}

/// Whether a process holds the instance lock of `database`, found without taking it (a probe
/// never stops a daemon from starting). `None` when no lock file exists or nobody holds it.
pub fn holder(database: &Path) -> Result<Option<Holder>, LockError> {
    let path = lock_path(database);
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(LockError::Open { path, source }),
    };
    let mut probe = whole_file(libc::F_WRLCK);
    // SAFETY: as in `acquire`; F_*GETLK writes the conflicting lock (if any) into `probe`.
    let rc = unsafe { libc::fcntl(file.as_raw_fd(), GET_LOCK, &mut probe) };
    if rc == -1 {
        return Err(LockError::Lock {
            path,
            source: std::io::Error::last_os_error(),
        });
    }
    if probe.l_type == libc::F_UNLCK as libc::c_short {
        return Ok(None);
    }
    Ok(Some(Holder {
        pid: read_pid(&path),
    }))
}

/// A write lock (or the probe for one) over the whole file.
fn whole_file(kind: libc::c_int) -> libc::flock {
    // SAFETY: `struct flock` is plain data; all-zero is a valid value (and `l_pid` must be 0
    // for open-file-description locks).
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = kind as libc::c_short;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    lock.l_start = 0;
    lock.l_len = 0;
    lock
}

/// The pid written in a lock file, if it holds one.
fn read_pid(path: &Path) -> Option<u32> {
    let mut text = String::new();
    File::open(path).ok()?.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_database_is_refused_with_the_holders_pid() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("var/db.sqlite3");
        assert_eq!(holder(&db).unwrap(), None, "no lock file yet");
        let first = acquire(&db).unwrap();
        assert_eq!(first.path(), dir.path().join("var/db.sqlite3.lock"));
        // A second open of the file, even in this process, conflicts (open-file-description
        // locks), and the probe does not take or break the first lock.
        let pid = std::process::id();
        assert_eq!(holder(&db).unwrap(), Some(Holder { pid: Some(pid) }));
        match acquire(&db) {
            Err(LockError::Held { pid: p, lock, .. }) => {
                assert_eq!(p, Some(pid));
                assert_eq!(lock, first.path());
            }
            other => panic!("expected Held, got {other:?}"),
        }
        let text = acquire(&db).unwrap_err().to_string();
        assert!(text.contains(&format!("(pid {pid})")), "{text}");
        assert!(text.contains("db.sqlite3.lock"), "{text}");
        // Still held after the refused attempts and probes.
        assert!(holder(&db).unwrap().is_some());
        drop(first);
        assert_eq!(holder(&db).unwrap(), None);
        let again = acquire(&db).unwrap();
        drop(again);
    }

    #[test]
    fn another_database_has_its_own_lock() {
        let dir = tempfile::tempdir().unwrap();
        let _a = acquire(&dir.path().join("a.sqlite3")).unwrap();
        let _b = acquire(&dir.path().join("b.sqlite3")).unwrap();
    }
}
