//! The builtin issuer: sign → verify, what makes a key invalid, the key file (modes, keygen,
//! `${CREDENTIALS_DIRECTORY}`), check-config's preflight. The PASETO/PASERK test vectors are in
//! `vectors`, the command issuer in `command`.

mod command;
mod vectors;

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeZone, Timelike, Utc};

use super::*;
use crate::config::{Approval, IssuerConfig, LicenseConfig};

pub(super) fn request() -> KeyRequest {
    KeyRequest {
        jti: "app-000042-5f3a9c".into(),
        product: "desknet's NEO 分散サーバー".into(),
        license_serial: "DNS-2024-0001".into(),
        contract_id: "C-1001".into(),
        server_id: "SRV-NEW-7F3A".into(),
        issued_at: Utc
            .with_ymd_and_hms(2026, 3, 2, 8, 0, 0)
            .unwrap()
            .with_nanosecond(123_456_789)
            .unwrap(),
        ticket: 42,
    }
}

pub(super) fn config(issuer: IssuerConfig) -> LicenseConfig {
    LicenseConfig {
        approval: Approval::Auto,
        early: false,
        remind_at: crate::config::DEFAULT_LICENSE_REMIND_AT,
        product: "desknet's NEO 分散サーバー".into(),
        issuer,
    }
}

fn builtin(path: &Path) -> LicenseConfig {
    config(IssuerConfig::Builtin {
        signing_key_file: path.to_path_buf(),
    })
}

fn no_env(_: &str) -> Option<String> {
    None
}

/// A fresh signing key in `dir/name`, and its issuer.
fn key_in(dir: &Path, name: &str) -> (PathBuf, PublicKeyInfo, Issuer) {
    let path = dir.join(name);
    let public = keygen(&path).unwrap();
    let issuer = Issuer::from_config_with(&builtin(&path), &no_env).unwrap();
    (path, public, issuer)
}

fn signing_key(issuer: &Issuer) -> &SigningKey {
    match issuer {
        Issuer::Builtin(key) => key,
        Issuer::Command(_) => panic!("not builtin"),
    }
}

fn invalid(result: Result<Claims, LicenseError>) -> InvalidKey {
    match result {
        Err(LicenseError::Invalid(why)) => why,
        other => panic!("expected an invalid key, got {other:?}"),
    }
}

#[tokio::test]
async fn a_key_verifies_and_reads_back_its_claims() {
    let dir = tempfile::tempdir().unwrap();
    let (_, public, issuer) = key_in(dir.path(), "license.key");
    assert_eq!(issuer.public_key(), Some(&public));
    assert!(public.paserk.starts_with("k4.public."), "{public:?}");
    assert!(public.pid.starts_with("k4.pid.") && public.pid.len() == 7 + 44);
    let issued = issuer.issue(&request()).await.unwrap();
    assert_eq!(issued.key_id, public.pid);
    assert!(issued.key.starts_with("v4.public."));
    assert!(!issued.key.contains(['\n', ' ']));
    let claims = verify(&issued.key, &public).unwrap();
    let iat: DateTime<Utc> = "2026-03-02T08:00:00Z".parse().unwrap();
    assert_eq!(
        claims,
        Claims {
            product: "desknet's NEO 分散サーバー".into(),
            sub: "DNS-2024-0001".into(),
            contract: "C-1001".into(),
            server_id: "SRV-NEW-7F3A".into(),
            iat,
            jti: "app-000042-5f3a9c".into(),
            kid: public.pid.clone(),
        }
    );
    // Pasted from a mail with its line end: still the key.
    assert_eq!(
        verify(&format!("  {}\r\n", issued.key), &public).unwrap(),
        claims
    );
    // The JSON `license verify --json` prints.
    let json = serde_json::to_value(&claims).unwrap();
    assert_eq!(json["iat"], "2026-03-02T08:00:00Z");
    assert_eq!(json["sub"], "DNS-2024-0001");
    assert_eq!(json["kid"], public.pid.as_str());
    // Ed25519 is deterministic: the same application gives the same key.
    assert_eq!(issuer.issue(&request()).await.unwrap(), issued);
}

#[test]
fn the_token_carries_exactly_our_claims_and_footer() {
    let dir = tempfile::tempdir().unwrap();
    let (_, public, issuer) = key_in(dir.path(), "k");
    let token = signing_key(&issuer).issue(&request()).unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 4, "{token}");
    let body = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    let (payload, signature) = body.split_at(body.len() - 64);
    assert_eq!(signature.len(), 64);
    assert_eq!(
        std::str::from_utf8(payload).unwrap(),
        "{\"product\":\"desknet's NEO 分散サーバー\",\"sub\":\"DNS-2024-0001\",\
         \"contract\":\"C-1001\",\"server_id\":\"SRV-NEW-7F3A\",\
         \"iat\":\"2026-03-02T08:00:00Z\",\"jti\":\"app-000042-5f3a9c\"}"
    );
    let footer = URL_SAFE_NO_PAD.decode(parts[3]).unwrap();
    assert_eq!(
        String::from_utf8(footer).unwrap(),
        format!("{{\"kid\":\"{}\"}}", public.pid)
    );
}

#[test]
fn a_changed_token_or_another_key_is_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let (_, public, issuer) = key_in(dir.path(), "a");
    let (_, other_public, other) = key_in(dir.path(), "b");
    let key = signing_key(&issuer);
    let token = key.issue(&request()).unwrap();

    // One character of the signed body changed.
    let at = "v4.public.".len() + 20;
    let mut chars: Vec<char> = token.chars().collect();
    chars[at] = if chars[at] == 'A' { 'B' } else { 'A' };
    let tampered: String = chars.into_iter().collect();
    assert_eq!(invalid(verify(&tampered, &public)), InvalidKey::Signature);

    // Checked against another public key: the footer names ours.
    assert!(matches!(
        invalid(verify(&token, &other_public)),
        InvalidKey::OtherKey { kid, expected } if kid == public.pid && expected == other_public.pid
    ));

    // Signed by the other key, its footer claiming ours: the signature says no.
    let footer = format!("{{\"kid\":\"{}\"}}", public.pid);
    let payload = URL_SAFE_NO_PAD
        .decode(token.split('.').nth(2).unwrap())
        .unwrap();
    let payload = &payload[..payload.len() - 64];
    let forged = signing_key(&other)
        .sign_raw(payload, footer.as_bytes())
        .unwrap();
    assert_eq!(invalid(verify(&forged, &public)), InvalidKey::Signature);

    // Our footer swapped onto another key's token (and the reverse).
    let theirs = signing_key(&other).issue(&request()).unwrap();
    let (body, _) = theirs.rsplit_once('.').unwrap();
    let (_, our_footer) = token.rsplit_once('.').unwrap();
    assert_eq!(
        invalid(verify(&format!("{body}.{our_footer}"), &public)),
        InvalidKey::Signature
    );

    // No footer, a footer that is not ours, a token of another kind, garbage.
    let bare = key.sign_raw(payload, b"").unwrap();
    assert_eq!(invalid(verify(&bare, &public)), InvalidKey::NoFooter);
    let odd = key.sign_raw(payload, b"not json").unwrap();
    assert_eq!(invalid(verify(&odd, &public)), InvalidKey::BadFooter);
    let local = "v4.local.AAAA.e30";
    assert_eq!(invalid(verify(local, &public)), InvalidKey::NotV4Public);
    assert!(matches!(
        invalid(verify("v4.public.%%%.e30", &public)),
        InvalidKey::BadFooter | InvalidKey::OtherKey { .. } | InvalidKey::Malformed(_)
    ));
    assert!(matches!(
        invalid(verify(&format!("{token}.x"), &public)),
        InvalidKey::Malformed(_)
    ));
    let huge = format!("v4.public.{}", "A".repeat(20_000));
    assert!(matches!(
        invalid(verify(&huge, &public)),
        InvalidKey::Malformed(_)
    ));

    // Signed by us, but not a license key's claims.
    let not_claims = key
        .sign_raw(br#"{"data":"this is a signed message"}"#, footer.as_bytes())
        .unwrap();
    assert!(matches!(
        invalid(verify(&not_claims, &public)),
        InvalidKey::Claims(_)
    ));
    let bad_iat = key
        .sign_raw(
            br#"{"product":"p","sub":"s","contract":"c","server_id":"x","iat":"yesterday","jti":"j"}"#,
            footer.as_bytes(),
        )
        .unwrap();
    let why = invalid(verify(&bad_iat, &public));
    assert!(why.to_string().contains("\"yesterday\""), "{why}");
}

#[test]
fn public_keys_are_read_as_paserk_only() {
    let dir = tempfile::tempdir().unwrap();
    let (_, public, _) = key_in(dir.path(), "k");
    assert_eq!(
        PublicKeyInfo::parse(&format!(" {}\n", public.paserk)).unwrap(),
        public
    );
    for bad in [
        "",
        "k4.pid.abc",
        "k2.public.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "k4.public.AAAA",
        "k4.public.***",
    ] {
        let e = PublicKeyInfo::parse(bad).unwrap_err();
        assert!(
            e.to_string().starts_with("cannot read the public key: "),
            "{bad}: {e}"
        );
    }
}

#[test]
fn keygen_writes_a_private_file_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("license.key");
    let public = keygen(&path).unwrap();
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("k4.secret.") && text.ends_with('\n'));
    assert_eq!(text.lines().count(), 1);
    assert_eq!(public_key(&builtin(&path)).unwrap(), public);

    let again = keygen(&path).unwrap_err();
    assert!(matches!(again, LicenseError::KeyExists { .. }), "{again:?}");
    assert!(again.to_string().contains("never overwrites"), "{again}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);

    let nowhere = keygen(&dir.path().join("missing/dir/key")).unwrap_err();
    assert!(
        matches!(nowhere, LicenseError::CreateKey { .. }),
        "{nowhere}"
    );
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn the_key_file_must_be_private() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("license.key");
    keygen(&path).unwrap();
    let load = || Issuer::from_config_with(&builtin(&path), &no_env);
    for ok in [0o600, 0o640, 0o400, 0o440] {
        chmod(&path, ok);
        load().unwrap_or_else(|e| panic!("{ok:o}: {e}"));
    }
    for refused in [0o644, 0o660, 0o604, 0o666, 0o620] {
        chmod(&path, refused);
        let e = load().unwrap_err();
        assert!(
            matches!(e, LicenseError::KeyMode { mode, .. } if mode == refused),
            "{refused:o}: {e:?}"
        );
        let text = e.to_string();
        assert!(text.contains(&format!("{refused:04o}")), "{text}");
        assert!(
            text.contains(&format!("chmod 600 {}", path.display())),
            "{text}"
        );
    }
    chmod(&path, 0o644);
    assert_eq!(
        load().unwrap_err().to_string(),
        format!(
            "cannot use signing key file {p}: its mode 0644 lets any user on the host use it; \
             run `chmod 600 {p}` (or 640 to let its group read it)",
            p = path.display()
        )
    );
}

#[test]
fn a_key_file_that_is_not_a_key_says_why_without_quoting_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("license.key");
    let missing = Issuer::from_config_with(&builtin(&path), &no_env).unwrap_err();
    assert_eq!(
        missing.to_string(),
        format!(
            "cannot read signing key file {p}: it does not exist; make it with \
             `madoguchi license keygen {p}`",
            p = path.display()
        )
    );
    let zero_seed = format!("k4.secret.{}", URL_SAFE_NO_PAD.encode([0u8; 64]));
    let public_only = keygen(&dir.path().join("other")).unwrap().paserk;
    let good = std::fs::read_to_string(dir.path().join("other")).unwrap();
    let mut mismatched = URL_SAFE_NO_PAD
        .decode(good.trim().trim_start_matches("k4.secret."))
        .unwrap();
    mismatched[40] ^= 1;
    let mismatched = format!("k4.secret.{}", URL_SAFE_NO_PAD.encode(&mismatched));
    let truncated = good.trim()[..10 + 44].to_owned(); // 33 bytes
    for (content, why) in [
        ("", "it is empty"),
        ("hello secret world\n", "does not start with \"k4.secret.\""),
        (public_only.as_str(), "it holds a public key"),
        (zero_seed.as_str(), "its seed is all zeros"),
        (
            mismatched.as_str(),
            "its public half does not belong to its seed",
        ),
        (truncated.as_str(), "it does not hold 64 bytes"),
        ("k4.secret.!!!!", "it is not base64url"),
    ] {
        std::fs::write(&path, content).unwrap();
        chmod(&path, 0o600);
        let e = Issuer::from_config_with(&builtin(&path), &no_env).unwrap_err();
        let text = e.to_string();
        assert!(
            matches!(e, LicenseError::NotASecretKey { .. }) && text.contains(why),
            "{content:?}: {text}"
        );
        if content.len() > 20 {
            let secret_part = &content[10..30];
            assert!(!text.contains(secret_part), "{text}");
        }
    }
    // A directory is not a key file either.
    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    chmod(&sub, 0o700);
    assert!(Issuer::from_config_with(&builtin(&sub), &no_env).is_err());
}

#[test]
fn the_secret_is_never_in_debug_output() {
    let dir = tempfile::tempdir().unwrap();
    let (path, public, issuer) = key_in(dir.path(), "k");
    let secret = std::fs::read_to_string(path).unwrap();
    let body = &secret.trim()["k4.secret.".len()..];
    let shown = format!("{issuer:?}");
    assert!(shown.contains(&public.pid), "{shown}");
    assert!(!shown.contains(&body[..20]), "{shown}");
}

#[test]
fn credentials_directory_is_expanded_when_the_key_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let (_, public, _) = key_in(dir.path(), "license.key");
    let cfg = builtin(Path::new("${CREDENTIALS_DIRECTORY}/license.key"));
    let creds = dir.path().to_str().unwrap().to_owned();
    let env: HashMap<&str, String> = [("CREDENTIALS_DIRECTORY", creds)].into();
    let lookup = |n: &str| env.get(n).cloned();
    let issuer = Issuer::from_config_with(&cfg, &lookup).unwrap();
    assert_eq!(issuer.public_key(), Some(&public));
    assert_eq!(
        Issuer::from_config_with(&cfg, &no_env)
            .unwrap_err()
            .to_string(),
        "cannot expand signing_key_file \"${CREDENTIALS_DIRECTORY}/license.key\": \
         environment variable CREDENTIALS_DIRECTORY is not set"
    );
    let relative = |_: &str| Some("relative".to_owned());
    let e = Issuer::from_config_with(&cfg, &relative).unwrap_err();
    assert!(e.to_string().contains("not an absolute path"), "{e}");

    // check-config: outside the service the variable is unset, which is a warning, not a
    // problem; inside it the file is checked.
    let outside = preflight_with(&cfg, &no_env);
    assert!(outside.problems.is_empty(), "{:?}", outside.problems);
    assert_eq!(outside.warnings.len(), 1);
    assert!(
        outside.warnings[0]
            .message
            .contains("$CREDENTIALS_DIRECTORY is not set"),
        "{:?}",
        outside.warnings
    );
    let inside = preflight_with(&cfg, &lookup);
    assert!(inside.problems.is_empty() && inside.warnings.is_empty());
    assert_eq!(inside.public_key, Some(public));
}

#[test]
fn preflight_reports_a_missing_or_open_key_and_a_missing_command() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("license.key");
    let missing = preflight_with(&builtin(&path), &no_env);
    assert_eq!(missing.problems.len(), 1);
    assert_eq!(missing.problems[0].key(), "license.signing_key_file");
    assert!(missing.problems[0].message.contains("does not exist"));
    keygen(&path).unwrap();
    chmod(&path, 0o644);
    let open = preflight_with(&builtin(&path), &no_env);
    assert!(open.problems[0].message.contains("chmod 600"), "{open:?}");

    let command = |argv: &[&str]| {
        config(IssuerConfig::Command {
            argv: argv.iter().map(|s| s.to_string()).collect(),
            timeout: Duration::from_secs(30),
        })
    };
    let path_env = |n: &str| (n == "PATH").then(|| "/usr/bin:/bin".to_owned());
    let absent = preflight_with(&command(&["/nonexistent/vendor-keygen"]), &path_env);
    assert_eq!(absent.problems.len(), 1, "{absent:?}");
    assert!(absent.problems[0].message.contains("does not exist"));
    let not_exec = preflight_with(&command(&[path.to_str().unwrap()]), &path_env);
    assert!(not_exec.problems[0].message.contains("not executable"));
    let on_path = preflight_with(&command(&["sh", "-c", "echo"]), &path_env);
    assert!(on_path.problems.is_empty() && on_path.warnings.is_empty());
    let elsewhere = preflight_with(&command(&["vendor-keygen-surely-absent"]), &path_env);
    assert!(elsewhere.problems.is_empty());
    assert_eq!(elsewhere.warnings.len(), 1);
    // No public key for a command issuer.
    assert!(matches!(
        public_key(&command(&["/bin/true"])),
        Err(LicenseError::NotBuiltin)
    ));
}

#[tokio::test]
async fn an_application_without_its_facts_gets_no_key() {
    let dir = tempfile::tempdir().unwrap();
    let (_, _, issuer) = key_in(dir.path(), "k");
    let mut req = request();
    req.server_id = " ".into();
    let e = issuer.issue(&req).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "cannot issue a key for this application: its server_id is empty"
    );
}

#[test]
fn an_issuer_can_be_shared_and_issue_on_any_task() {
    fn shared<T: Send + Sync>() {}
    fn sendable<T: Send>(_: T) {}
    shared::<Issuer>();
    let dir = tempfile::tempdir().unwrap();
    let (_, _, issuer) = key_in(dir.path(), "k");
    let req = request();
    // The futures are only built, never run: the desk may hand them to `tokio::spawn`.
    sendable(issuer.issue(&req));
    let command = Issuer::from_config_with(
        &config(IssuerConfig::Command {
            argv: vec!["/bin/true".into()],
            timeout: Duration::from_secs(1),
        }),
        &no_env,
    )
    .unwrap();
    sendable(command.issue(&req));
}
