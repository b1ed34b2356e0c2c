//! The command issuer against small shell scripts: the key it prints, the JSON it is given,
//! and each way it can fail (non-zero exit, no key, bad output, timeout, cannot start).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::*;

/// An executable `#!/bin/sh` script `name` in `dir` with `body`.
fn script(dir: &Path, name: &str, body: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.to_str().unwrap().to_owned()
}

/// The desk's environment as the tests pretend it: a PATH, a locale, and a secret.
fn desk_env(name: &str) -> Option<String> {
    match name {
        "PATH" => Some(std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into())),
        "LANG" => Some("C.UTF-8".into()),
        "MADOGUCHI_SMTP_PASSWORD" => Some("hunter2".into()),
        _ => None,
    }
}

fn issuer(argv: &[&str], timeout: Duration) -> Issuer {
    let cfg = config(IssuerConfig::Command {
        argv: argv.iter().map(|s| s.to_string()).collect(),
        timeout,
    });
    Issuer::from_config_with(&cfg, &desk_env).unwrap()
}

async fn run(dir: &Path, body: &str) -> Result<IssuedKey, LicenseError> {
    let program = script(dir, "keygen", body);
    issuer(&[&program], Duration::from_secs(10))
        .issue(&request())
        .await
}

#[tokio::test]
async fn the_key_is_what_the_command_prints_for_the_json_it_reads() {
    let dir = tempfile::tempdir().unwrap();
    let got = dir.path().join("stdin.json");
    let program = script(
        dir.path(),
        "keygen",
        &format!(
            "cat > '{}'\necho \"args: $*\" >&2\nprintf '  VENDOR-KEY-0042-ABCD  \\n'",
            got.display()
        ),
    );
    let issued = issuer(&[&program, "--product", "neo"], Duration::from_secs(10))
        .issue(&request())
        .await
        .unwrap();
    assert_eq!(issued.key, "VENDOR-KEY-0042-ABCD");
    assert_eq!(
        issued.key_id,
        super::super::command::default_key_id("VENDOR-KEY-0042-ABCD")
    );
    assert!(issued.key_id.starts_with("sha256:") && issued.key_id.len() == 7 + 16);
    let stdin: Value = serde_json::from_str(&std::fs::read_to_string(&got).unwrap()).unwrap();
    assert_eq!(
        stdin,
        json!({
            "jti": "app-000042-5f3a9c",
            "product": "desknet's NEO 分散サーバー",
            "license_serial": "DNS-2024-0001",
            "contract_id": "C-1001",
            "server_id": "SRV-NEW-7F3A",
            "issued_at": "2026-03-02T08:00:00Z",
            "ticket": 42
        })
    );
}

#[tokio::test]
async fn the_command_gets_only_the_harmless_part_of_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let seen = dir.path().join("env");
    run(dir.path(), &format!("env > '{}'\necho K", seen.display()))
        .await
        .unwrap();
    let env = std::fs::read_to_string(&seen).unwrap();
    assert!(env.lines().any(|l| l == "LANG=C.UTF-8"), "{env}");
    assert!(env.lines().any(|l| l.starts_with("PATH=")), "{env}");
    assert!(
        !env.contains("hunter2") && !env.contains("MADOGUCHI"),
        "{env}"
    );
}

#[tokio::test]
async fn a_command_may_name_its_key_or_ignore_its_input() {
    let dir = tempfile::tempdir().unwrap();
    let named = run(
        dir.path(),
        r#"cat >/dev/null; echo '{"key": "K-1", "key_id": "vendor-77"}'"#,
    )
    .await
    .unwrap();
    assert_eq!(
        named,
        IssuedKey {
            key: "K-1".into(),
            key_id: "vendor-77".into()
        }
    );
    let unnamed = run(dir.path(), r#"echo '{"key": "K-2"}'"#).await.unwrap();
    assert_eq!(unnamed.key_id, super::super::command::default_key_id("K-2"));
    // Never reads stdin: fine.
    assert_eq!(run(dir.path(), "echo K-3").await.unwrap().key, "K-3");
}

#[tokio::test]
async fn a_failing_command_gives_its_exit_code_and_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let e = run(
        dir.path(),
        "cat >/dev/null\necho 'license server unreachable' >&2\necho 'try later' >&2\nexit 3",
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&e, LicenseError::CommandFailed { status, stderr, .. }
            if status == "exited with code 3"
            && stderr == "license server unreachable / try later"),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .ends_with("exited with code 3; its stderr: license server unreachable / try later"),
        "{e}"
    );
    // A long stderr is cut.
    let e = run(dir.path(), "yes 'x' | head -c 20000 >&2; exit 1")
        .await
        .unwrap_err();
    let LicenseError::CommandFailed { stderr, .. } = &e else {
        panic!("{e:?}")
    };
    assert!(
        stderr.chars().count() <= 501 && stderr.ends_with('…'),
        "{stderr}"
    );
    // Killed by a signal.
    let e = run(dir.path(), "kill -9 $$").await.unwrap_err();
    assert!(e.to_string().contains("was killed by signal 9"), "{e}");
}

#[tokio::test]
async fn output_that_is_not_one_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let e = run(dir.path(), "cat >/dev/null; echo 'no key today' >&2")
        .await
        .unwrap_err();
    assert!(matches!(e, LicenseError::CommandEmpty { .. }), "{e:?}");
    assert!(
        e.to_string()
            .ends_with("printed no key; its stderr: no key today"),
        "{e}"
    );
    assert!(matches!(
        run(dir.path(), "printf '\\n  \\n'").await,
        Err(LicenseError::CommandEmpty { .. })
    ));
    for (body, why) in [
        ("printf 'KEY-1\\nKEY-2\\n'", "more than one line"),
        ("printf 'KEY\\t1'", "not printable ASCII"),
        ("printf 'KEY-\\303\\251'", "not printable ASCII"),
        ("printf 'KEY-\\377'", "not UTF-8"),
        ("head -c 20000 /dev/zero | tr '\\0' A", "more than 16 KiB"),
        ("echo '{\"id\": 1}'", "JSON that is not"),
        ("echo '{\"key\": \"K\", \"key_id\": \"\"}'", "key_id"),
    ] {
        let e = run(dir.path(), body).await.unwrap_err();
        assert!(
            matches!(e, LicenseError::CommandOutput { .. }) && e.to_string().contains(why),
            "{body}: {e:?}"
        );
    }
    // Exactly 16 KiB is still a key.
    let max = run(dir.path(), "head -c 16384 /dev/zero | tr '\\0' A")
        .await
        .unwrap();
    assert_eq!(max.key.len(), MAX_KEY_LEN);
}

#[tokio::test]
async fn a_command_that_overruns_is_killed_with_what_it_started() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("sleep.pid");
    let program = script(
        dir.path(),
        "slow",
        &format!("sleep 5 &\necho $! > '{}'\nwait", pid_file.display()),
    );
    let started = Instant::now();
    let e = issuer(&[&program], Duration::from_secs(1))
        .issue(&request())
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert!(
        matches!(e, LicenseError::CommandTimeout { timeout, .. } if timeout == Duration::from_secs(1)),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .ends_with("did not finish within 1s and was killed")
    );
    assert!(took < Duration::from_millis(1900), "took {took:?}");
    // The sleep it started went with it (gone, or a zombie awaiting its reaper).
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    let stat = Path::new("/proc").join(pid.trim()).join("stat");
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        match std::fs::read_to_string(&stat) {
            Err(_) => break,
            Ok(s)
                if s.rsplit(')')
                    .next()
                    .is_some_and(|r| r.trim_start().starts_with('Z')) =>
            {
                break;
            }
            Ok(s) if Instant::now() > deadline => panic!("still running: {s}"),
            Ok(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

#[tokio::test]
async fn a_command_that_cannot_start_says_so() {
    let e = issuer(&["/nonexistent/vendor-keygen"], Duration::from_secs(5))
        .issue(&request())
        .await
        .unwrap_err();
    assert!(matches!(e, LicenseError::CommandStart { .. }), "{e:?}");
    assert_eq!(
        crate::report::chain(&e),
        "cannot start the key command /nonexistent/vendor-keygen: No such file or directory \
         (os error 2)"
    );
}
