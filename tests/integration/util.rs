//! Shared helpers for the integration tests.
//!
//! - [`Desk`]: a temp directory with a config file, and [`Desk::run`] to run the real
//!   `madoguchi` binary against it;
//! - [`Run`]: one finished run (exit code, stdout, stderr) with assertions and JSON parsing;
//! - paths to the repo's fixtures and the shared corpus.
//!
//! Every run is checked for panics, so a test never passes on a crash that happened to give the
//! expected exit code.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use tempfile::TempDir;

/// The support mailbox every test config uses.
pub const DESK_ADDRESS: &str = "support@example.co.jp";

/// The smallest valid config: the desk address and a database path relative to the config.
pub const MINIMAL_CONFIG: &str = "[desk]\n\
                                  address = \"support@example.co.jp\"\n\
                                  \n\
                                  [storage]\n\
                                  database = \"var/db.sqlite3\"\n";

/// `[reminders]` and `[sla]` turned off, appended to the config of tests about other things
/// that count the mails a desk sends: renewal reminders, staff reminders and the digest depend
/// on the date and the hour the test runs at (tests/integration/reminders.rs covers them).
pub const NO_REMINDERS: &str = "\n[reminders]\nrenewal_days = []\nlapsed = false\nrecontinuation_days = 0\ndigest = false\n\n[sla]\nfirst_response = 0\nnext_response = 0\n";

/// The host time zone the binary runs under: far from Japan, so business-time code that read the
/// host's zone instead of the desk's (DESIGN.md invariant 5) would give wrong answers.
const HOST_TZ: &str = "Pacific/Honolulu";

/// A path inside the repository.
pub fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// A file of the demo data set, `fixtures/demo/NAME`.
pub fn demo_fixture(name: &str) -> PathBuf {
    repo_path("fixtures/demo").join(name)
}

/// A path as a command-line argument (test paths are UTF-8).
pub fn arg(path: &Path) -> &str {
    path.to_str().expect("test paths are UTF-8")
}

/// The shared third-party corpus (`$MADOGUCHI_CORPUS`, else `../shared/corpus`), if present.
pub fn corpus_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("MADOGUCHI_CORPUS") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => repo_path("../shared/corpus"),
    };
    dir.is_dir().then_some(dir)
}

/// One finished run of the binary.
#[derive(Debug)]
pub struct Run {
    /// What was run, for failure messages.
    pub command: String,
    /// `None` when killed by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// stdout and stderr together (for "this must appear nowhere" checks).
    pub fn all_output(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    #[track_caller]
    pub fn assert_success(&self) -> &Self {
        assert!(self.success(), "expected success from {self}");
        self
    }

    /// A clean failure: a non-zero exit code, not a crash.
    #[track_caller]
    pub fn assert_failure(&self) -> &Self {
        assert!(
            matches!(self.code, Some(c) if c != 0),
            "expected a non-zero exit from {self}"
        );
        self
    }

    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, Some(code), "unexpected exit code from {self}");
        self
    }

    /// Asserts stderr contains every one of `needles`.
    #[track_caller]
    pub fn assert_stderr_has(&self, needles: &[&str]) -> &Self {
        for needle in needles {
            assert!(
                self.stderr.contains(needle),
                "stderr lacks {needle:?} in {self}"
            );
        }
        self
    }

    /// Asserts stdout contains every one of `needles`.
    #[track_caller]
    pub fn assert_stdout_has(&self, needles: &[&str]) -> &Self {
        for needle in needles {
            assert!(
                self.stdout.contains(needle),
                "stdout lacks {needle:?} in {self}"
            );
        }
        self
    }

    /// stdout parsed as one JSON document.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}) in {self}"))
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` (exit {:?})\n--- stdout ---\n{}--- stderr ---\n{}--------------",
            self.command, self.code, self.stdout, self.stderr
        )
    }
}

/// Runs the binary with `args` in `cwd`, with a clean environment for the things it reads
/// (`MADOGUCHI_CONFIG`, `MADOGUCHI_LOG`, `TZ`). Asserts it did not panic.
#[track_caller]
pub fn madoguchi<I, S>(cwd: &Path, args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let command = std::iter::once("madoguchi".to_string())
        .chain(args.iter().map(|a| a.to_string_lossy().into_owned()))
        .collect::<Vec<_>>()
        .join(" ");
    let output = Command::new(env!("CARGO_BIN_EXE_madoguchi"))
        .args(&args)
        .current_dir(cwd)
        .env_remove("MADOGUCHI_CONFIG")
        .env_remove("MADOGUCHI_LOG")
        .env("TZ", HOST_TZ)
        .output()
        .unwrap_or_else(|e| panic!("cannot start {command}: {e}"));
    let run = Run {
        command,
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    assert!(
        !run.stderr.contains("panicked") && run.code != Some(101),
        "the binary panicked: {run}"
    );
    assert!(
        run.code.is_some(),
        "the binary was killed by a signal: {run}"
    );
    run
}

/// A desk in a temp directory: `DIR/madoguchi.toml` plus whatever the tests write there. The
/// binary runs with `DIR/cwd` as its working directory, so relative paths in the config only
/// work when they are resolved against the config's directory, as DESIGN.md requires.
pub struct Desk {
    dir: TempDir,
    config: PathBuf,
    cwd: PathBuf,
}

impl Desk {
    /// A desk with [`MINIMAL_CONFIG`].
    pub fn new() -> Desk {
        Desk::with_config(MINIMAL_CONFIG)
    }

    /// A desk whose config file holds `toml` verbatim.
    pub fn with_config(toml: &str) -> Desk {
        let dir = tempfile::Builder::new()
            .prefix("madoguchi-it-")
            .tempdir()
            .expect("temp dir");
        let config = dir.path().join("madoguchi.toml");
        fs::write(&config, toml).expect("write config");
        let cwd = dir.path().join("cwd");
        fs::create_dir(&cwd).expect("create cwd");
        Desk { dir, config, cwd }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn config(&self) -> &Path {
        &self.config
    }

    /// Writes `DIR/name` and returns its path.
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("create parent dir");
        }
        fs::write(&path, contents).expect("write file");
        path
    }

    /// `madoguchi --config CONFIG ARGS...`.
    #[track_caller]
    pub fn run<S: AsRef<OsStr>>(&self, args: &[S]) -> Run {
        let mut all: Vec<&OsStr> = vec![OsStr::new("--config"), self.config.as_os_str()];
        all.extend(args.iter().map(AsRef::as_ref));
        madoguchi(&self.cwd, all)
    }

    /// `madoguchi --config CONFIG --json ARGS...`; asserts success and returns the document.
    #[track_caller]
    pub fn json<S: AsRef<OsStr>>(&self, args: &[S]) -> Value {
        let mut all: Vec<&OsStr> = vec![OsStr::new("--json")];
        all.extend(args.iter().map(AsRef::as_ref));
        self.run(&all).assert_success().json()
    }

    /// Imports the demo contracts and orders; asserts success.
    #[track_caller]
    pub fn import_demo(&self) -> Value {
        let contracts = demo_fixture("contracts.csv");
        let orders = demo_fixture("orders.csv");
        self.json(&[
            "contracts",
            "import",
            arg(&contracts),
            "--orders",
            arg(&orders),
        ])
    }
}

/// `value[key]` as a string; fails the test with the whole document when it is not one.
#[track_caller]
pub fn str_at<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("no string {key:?} in {value:#}"))
}

/// Asserts `value` is an object with these string values (other keys may exist).
#[track_caller]
pub fn assert_fields(value: &Value, expected: &[(&str, &str)]) {
    for (key, want) in expected {
        assert_eq!(
            value.get(key).and_then(Value::as_str),
            Some(*want),
            "key {key:?} in {value:#}"
        );
    }
}

/// A Japan-time instant, for the tests' fixed clocks.
pub fn jst(y: i32, m: u32, d: u32, h: u32, min: u32) -> chrono::DateTime<chrono::Utc> {
    use chrono::TimeZone;
    chrono_tz::Asia::Tokyo
        .with_ymd_and_hms(y, m, d, h, min, 0)
        .single()
        .expect("valid time")
        .with_timezone(&chrono::Utc)
}

/// Runs a future to completion on a fresh current-thread runtime (the desk's own kind).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

/// A `SELECT COUNT(*) …` over the desk's store.
pub fn count(store: &madoguchi::store::Store, sql: &str) -> i64 {
    store.count(sql).expect("count")
}

/// Runs the test `name` of this binary again in a child process whose only trusted CA
/// certificates are those in `ca_file` (`SSL_CERT_FILE`, no `SSL_CERT_DIR`), with `var` set to
/// `value` so the test knows it is the child, and asserts that it passed. For TLS tests: the
/// system roots come from the process environment, which must not change under other tests.
pub fn run_trusting(name: &str, ca_file: &Path, var: &str, value: &str) {
    let out = Command::new(std::env::current_exe().expect("test binary"))
        .args([name, "--exact", "--nocapture"])
        .env(var, value)
        .env("SSL_CERT_FILE", ca_file)
        .env_remove("SSL_CERT_DIR")
        .output()
        .expect("run the child test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `command` to its end, its stdout discarded and its stderr to `stderr`; its exit status
/// and peak resident set in bytes. Measured by `tests/support/peak_rss.py` in between: a direct
/// child's `ru_maxrss` would start at this test process's own peak (Linux keeps the
/// high-water mark across exec).
pub fn peak_rss(command: Command, stderr: std::process::Stdio) -> (std::process::ExitStatus, u64) {
    let out = tempfile::NamedTempFile::new().expect("temp file");
    let mut wrapped = Command::new(crate::smtp_sink::PYTHON);
    wrapped
        .arg(repo_path("tests/support/peak_rss.py"))
        .arg(out.path())
        .arg(command.get_program())
        .args(command.get_args());
    if let Some(dir) = command.get_current_dir() {
        wrapped.current_dir(dir);
    }
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => wrapped.env(key, value),
            None => wrapped.env_remove(key),
        };
    }
    let status = wrapped
        .stdout(std::process::Stdio::null())
        .stderr(stderr)
        .status()
        .expect("run under peak_rss.py");
    let kib: u64 = fs::read_to_string(out.path())
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak RSS for {command:?}"));
    (status, kib * 1024)
}
