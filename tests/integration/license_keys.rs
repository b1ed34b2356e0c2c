//! License keys end to end at the edges the admin and the product see: `license keygen`,
//! `license public-key`, `license verify`, check-config on the signing key file, and a key the
//! desk issues checked by an independent implementation (`tests/support/verify_paseto.py`:
//! Python's `cryptography`, PAE written from the PASETO specification).

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;

use chrono::TimeZone;
use madoguchi::config::Config;
use madoguchi::license::{Issuer, KeyRequest};
use serde_json::{Value, json};

use crate::smtp_sink::PYTHON;
use crate::util::{Desk, MINIMAL_CONFIG, arg, block_on, repo_path, str_at};

/// A desk whose config names `license.key` beside it, which does not exist yet.
fn licensed_desk() -> Desk {
    Desk::with_config(&format!(
        "{MINIMAL_CONFIG}\n[license]\nsigning_key_file = \"license.key\"\n"
    ))
}

fn key_path(desk: &Desk) -> PathBuf {
    desk.dir().join("license.key")
}

/// `madoguchi license keygen` on the desk's key file: `{file, public_key, key_id}`.
fn keygen(desk: &Desk) -> Value {
    desk.json(&["license", "keygen", arg(&key_path(desk))])
}

/// A key issued by the desk's configured issuer, through the library as the desk does.
fn issue(desk: &Desk) -> String {
    let config = Config::load(desk.config()).unwrap_or_else(|e| panic!("{e}"));
    let license = config.license.expect("[license]");
    let issuer = Issuer::from_config(&license).unwrap_or_else(|e| panic!("{e}"));
    let request = KeyRequest {
        jti: "app-000007-9f2c4e1a".into(),
        product: license.product.clone(),
        license_serial: "DNS-2024-0001".into(),
        contract_id: "C-1001".into(),
        server_id: "SRV-NEW-7F3A".into(),
        issued_at: chrono::Utc.with_ymd_and_hms(2026, 3, 2, 8, 0, 0).unwrap(),
        ticket: 7,
    };
    block_on(issuer.issue(&request))
        .unwrap_or_else(|e| panic!("{e}"))
        .key
}

/// `verify_paseto.py PUBLIC TOKEN`: its exit code and stdout parsed (when 0).
fn python_verify(public: &str, token: &str) -> (Option<i32>, Option<Value>, String) {
    let output = Command::new(PYTHON)
        .arg(repo_path("tests/support/verify_paseto.py"))
        .args([public, token])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {PYTHON}: {e}"));
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        !stderr.contains("ModuleNotFoundError"),
        "the independent verifier needs Python's cryptography (Debian python3-cryptography; \
         scripts/test installs it): {stderr}"
    );
    let doc = output
        .status
        .success()
        .then(|| serde_json::from_slice(&output.stdout).expect("one JSON document"));
    (output.status.code(), doc, stderr)
}

/// `--json ARGS` whatever the exit code.
fn json_any(desk: &Desk, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    desk.run(&all).json()
}

fn tamper(token: &str) -> String {
    let at = "v4.public.".len() + 30;
    let mut bytes = token.as_bytes().to_vec();
    bytes[at] = if bytes[at] == b'x' { b'y' } else { b'x' };
    String::from_utf8(bytes).expect("ASCII")
}

#[test]
fn keygen_works_before_the_named_file_exists_and_never_overwrites_it() {
    let desk = licensed_desk();
    let path = key_path(&desk);
    let made = keygen(&desk);
    assert_eq!(str_at(&made, "file"), arg(&path));
    assert!(
        str_at(&made, "public_key").starts_with("k4.public."),
        "{made:#}"
    );
    assert!(str_at(&made, "key_id").starts_with("k4.pid."), "{made:#}");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let secret = std::fs::read_to_string(&path).unwrap();
    assert!(secret.starts_with("k4.secret."));

    // The public key of the configured file is the one keygen printed.
    let shown = desk.json(&["license", "public-key"]);
    assert_eq!(
        shown,
        json!({"public_key": made["public_key"], "key_id": made["key_id"]})
    );
    desk.run(&["license", "public-key"])
        .assert_success()
        .assert_stdout_has(&[str_at(&made, "public_key"), str_at(&made, "key_id")]);

    // Never over an existing key, and the secret is printed nowhere.
    let again = desk.run(&["license", "keygen", arg(&path)]);
    again
        .assert_code(2)
        .assert_stderr_has(&["already exists", "never overwrites"]);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), secret);
    let body = &secret.trim()["k4.secret.".len()..];
    for run in [
        desk.run(&["license", "keygen", arg(&desk.dir().join("k2"))]),
        again,
    ] {
        assert!(!run.all_output().contains(&body[..24]), "{run}");
    }
}

#[test]
fn check_config_checks_the_signing_key_file() {
    let desk = licensed_desk();
    let path = key_path(&desk);
    let missing = json_any(&desk, &["check-config"]);
    assert_eq!(missing["ok"], json!(false), "{missing:#}");
    let problem = missing["problems"][0].as_str().unwrap_or_default();
    assert!(
        problem.starts_with("license.signing_key_file: cannot read signing key file")
            && problem.contains("madoguchi license keygen"),
        "{missing:#}"
    );
    let made = keygen(&desk);
    let ok = desk.json(&["check-config"]);
    assert_eq!(ok["license_issuer"], json!("builtin"), "{ok:#}");
    assert_eq!(ok["license_key_id"], made["key_id"], "{ok:#}");

    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    desk.run(&["check-config"])
        .assert_code(1)
        .assert_stdout_has(&["mode 0644", &format!("chmod 600 {}", path.display())]);
    // Issuing refuses the open file too.
    desk.run(&["license", "public-key"])
        .assert_code(2)
        .assert_stderr_has(&["mode 0644"]);
}

#[test]
fn an_issued_key_verifies_here_and_in_an_independent_implementation() {
    let desk = licensed_desk();
    let made = keygen(&desk);
    let public = str_at(&made, "public_key");
    let key_id = str_at(&made, "key_id");
    let token = issue(&desk);

    // Our own verification, against the configured key and against the public key given.
    let claims = desk.json(&["license", "verify", &token]);
    let expected = json!({
        "valid": true,
        "product": "desknet's NEO 分散サーバー",
        "sub": "DNS-2024-0001",
        "contract": "C-1001",
        "server_id": "SRV-NEW-7F3A",
        "iat": "2026-03-02T08:00:00Z",
        "jti": "app-000007-9f2c4e1a",
        "kid": key_id,
    });
    assert_eq!(claims, expected);
    let elsewhere = Desk::new();
    assert_eq!(
        elsewhere.json(&["license", "verify", &token, "--public-key", public]),
        expected
    );
    // As the customer receives it: the attachment `license-<serial>.key`.
    let file = desk.write("license-DNS-2024-0001.key", &format!("{token}\n"));
    desk.run(&["license", "verify", arg(&file)])
        .assert_success()
        .assert_stdout_has(&["valid license key", "SRV-NEW-7F3A", "DNS-2024-0001"]);

    // Python, from the specification: the same claims, footer kid = its own k4.pid.
    let (code, doc, stderr) = python_verify(public, &token);
    assert_eq!(code, Some(0), "{stderr}");
    let doc = doc.expect("a document");
    let mut ours = expected.clone();
    for key in ["valid", "kid"] {
        ours.as_object_mut().unwrap().remove(key);
    }
    assert_eq!(doc["payload"], ours, "{doc:#}");
    assert_eq!(doc["footer"], json!({ "kid": key_id }), "{doc:#}");
    assert_eq!(doc["pid"], json!(key_id), "{doc:#}");

    // A changed key fails in both.
    let tampered = tamper(&token);
    let (code, _, stderr) = python_verify(public, &tampered);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("invalid"), "{stderr}");
    let run = desk.run(&["license", "verify", &tampered]);
    run.assert_code(1)
        .assert_stdout_has(&["invalid license key", "signature does not verify"]);
    let v = json_any(&desk, &["license", "verify", &tampered]);
    assert_eq!(v["valid"], json!(false), "{v:#}");

    // Another desk's key is not ours, in both.
    let other = Desk::new();
    let other_key = other.json(&["license", "keygen", arg(&other.dir().join("k"))]);
    let other_public = str_at(&other_key, "public_key");
    let (code, _, _) = python_verify(other_public, &token);
    assert_eq!(code, Some(1));
    other
        .run(&["license", "verify", &token, "--public-key", other_public])
        .assert_code(1)
        .assert_stdout_has(&["signed with another key"]);
}

#[test]
fn the_independent_verifier_agrees_with_the_official_vectors() {
    // 4-S-2 of github.com/paseto-standard/test-vectors (v4.json): the verifier itself must be
    // right for its agreement to mean anything; 4-S-3 needs an implicit assertion it lacks.
    let public = "k4.public.Hrnbu7wEfAP9cGBOAHHwmH4Wsot1ciXBHwBBXQ4gsaI";
    let s2 = "v4.public.eyJkYXRhIjoidGhpcyBpcyBhIHNpZ25lZCBtZXNzYWdlIiwiZXhwIjoiMjAyMi0wMS0wMVQwMDowMDowMCswMDowMCJ9v3Jt8mx_TdM2ceTGoqwrh4yDFn0XsHvvV_D0DtwQxVrJEBMl0F2caAdgnpKlt4p7xBnx1HcO-SPo8FPp214HDw.eyJraWQiOiJ6VmhNaVBCUDlmUmYyc25FY1Q3Z0ZUaW9lQTlDT2NOeTlEZmdMMVc2MGhhTiJ9";
    let s3 = "v4.public.eyJkYXRhIjoidGhpcyBpcyBhIHNpZ25lZCBtZXNzYWdlIiwiZXhwIjoiMjAyMi0wMS0wMVQwMDowMDowMCswMDowMCJ9NPWciuD3d0o5eXJXG5pJy-DiVEoyPYWs1YSTwWHNJq6DZD3je5gf-0M4JR9ipdUSJbIovzmBECeaWmaqcaP0DQ.eyJraWQiOiJ6VmhNaVBCUDlmUmYyc25FY1Q3Z0ZUaW9lQTlDT2NOeTlEZmdMMVc2MGhhTiJ9";
    let (code, doc, stderr) = python_verify(public, s2);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        doc.expect("a document")["payload"],
        json!({"data": "this is a signed message", "exp": "2022-01-01T00:00:00+00:00"})
    );
    assert_eq!(python_verify(public, s3).0, Some(1));
}

#[test]
fn public_key_and_verify_need_a_builtin_issuer() {
    let none = Desk::new();
    none.run(&["license", "public-key"])
        .assert_code(2)
        .assert_stderr_has(&["no [license] section"]);
    let command = Desk::with_config(&format!(
        "{MINIMAL_CONFIG}\n[license]\nissuer = \"command\"\ncommand = [\"/bin/true\"]\n"
    ));
    command
        .run(&["license", "public-key"])
        .assert_code(2)
        .assert_stderr_has(&["issuer is \"command\""]);
    none.run(&[
        "license",
        "verify",
        "v4.public.x",
        "--public-key",
        "k4.public.nope",
    ])
    .assert_code(2)
    .assert_stderr_has(&["cannot read the public key"]);
}
