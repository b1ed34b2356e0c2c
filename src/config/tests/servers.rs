//! `[intake]` and `[outbound]`: kinds, connections, credentials and durations.

use std::path::Path;
use std::time::Duration;

use super::super::validate::parse_duration;
use super::*;

#[test]
fn server_fixture_validates_with_defaults() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/config/servers.toml");
    let c = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let Intake::Imap(i) = &c.intake else { panic!() };
    assert_eq!(i.host, "imap.example.co.jp");
    assert_eq!((i.port, i.tls), (993, Tls::Implicit));
    assert_eq!(i.user, "support");
    assert_eq!(
        i.password.source(),
        &SecretSource::File(path.parent().unwrap().join("secrets/imap.password"))
    );
    assert_eq!(
        (
            i.mailbox.as_str(),
            i.processed.as_str(),
            i.quarantine.as_str()
        ),
        ("INBOX", "Processed", "Quarantine")
    );
    assert!(i.idle);
    assert_eq!(i.poll_interval, Duration::from_secs(60));
    assert_eq!(i.batch_size, 100);
    assert_eq!(i.timeout, Duration::from_secs(60));
    let Outbound::Smtp(s) = &c.outbound else {
        panic!()
    };
    assert_eq!((s.port, s.tls), (465, Tls::Implicit));
    assert_eq!(s.parallel, 4);
    assert_eq!(s.timeout, Duration::from_secs(60));
    let auth = s.auth.as_ref().unwrap();
    assert_eq!(
        auth.password.source(),
        &SecretSource::Env("SMTP_PASSWORD".into())
    );
}

#[test]
fn inline_password_is_rejected_specifically() {
    let e = errors(&format!(
        "{MINIMAL}[intake]\nkind = \"imap\"\nhost = \"h\"\nuser = \"u\"\npassword = \"s3cret\"\n\
         [outbound]\nkind = \"smtp\"\nhost = \"h\"\npassword = \"s3cret\"\n"
    ));
    assert_eq!(e.keys(), ["intake.password", "outbound.password"], "{e}");
    for p in &e.problems {
        assert_eq!(
            p.message,
            "inline passwords are not allowed; use password_file or password_env"
        );
    }
    assert!(!format!("{e:?}").contains("s3cret"));
    // Even in a maildir section it is called out as what it is.
    let e = errors(&format!("{MINIMAL}[intake]\npassword = \"x\"\n"));
    assert_eq!(e.keys(), ["intake.password"]);
}

#[test]
fn both_password_sources_is_an_error() {
    let e = errors(&format!(
        "{MINIMAL}[outbound]\nkind = \"smtp\"\nhost = \"h\"\nuser = \"u\"\n\
         password_file = \"/p\"\npassword_env = \"P\"\n"
    ));
    assert_eq!(e.keys(), ["outbound.password_env"]);
    assert!(e.problems[0].message.contains("both set"));
}

#[test]
fn credentials_must_come_in_pairs() {
    let e = errors(&format!(
        "{MINIMAL}[intake]\nkind = \"imap\"\nhost = \"h\"\nuser = \"u\"\n\
         [outbound]\nkind = \"smtp\"\nhost = \"h\"\npassword_env = \"P\"\n"
    ));
    assert_eq!(e.keys(), ["intake.user", "outbound.user"], "{e}");
    assert!(
        e.problems[0]
            .message
            .contains("neither password_file nor password_env")
    );
    assert!(e.problems[1].message.starts_with("required when"));
    // IMAP cannot run without a login; SMTP can.
    let e = errors(&format!(
        "{MINIMAL}[intake]\nkind = \"imap\"\nhost = \"h\"\n"
    ));
    assert_eq!(e.keys(), ["intake.user"]);
    let c = parse(&format!(
        "{MINIMAL}[outbound]\nkind = \"smtp\"\nhost = \"localhost\"\ntls = \"none\"\n\
         allow_plaintext = true\n"
    ))
    .unwrap();
    let Outbound::Smtp(s) = c.outbound else {
        panic!()
    };
    assert_eq!((s.port, s.tls, s.auth), (25, Tls::None, None));
}

#[test]
fn ports_default_by_tls_and_plaintext_needs_consent() {
    let imap = |tls: &str, extra: &str| {
        parse(&format!(
            "{MINIMAL}[intake]\nkind = \"imap\"\nhost = \"h\"\nuser = \"u\"\n\
             password_env = \"P\"\ntls = \"{tls}\"\n{extra}"
        ))
    };
    let port = |c: Config| match c.intake {
        Intake::Imap(i) => i.port,
        other => panic!("{other:?}"),
    };
    assert_eq!(port(imap("implicit", "").unwrap()), 993);
    assert_eq!(port(imap("starttls", "").unwrap()), 143);
    assert_eq!(port(imap("none", "allow_plaintext = true").unwrap()), 143);
    assert_eq!(port(imap("starttls", "port = 1143").unwrap()), 1143);
    assert_eq!(imap("none", "").unwrap_err().keys(), ["intake.tls"]);
    assert_eq!(
        imap("none", "allow_plaintext = false").unwrap_err().keys(),
        ["intake.tls"]
    );
    assert_eq!(imap("ssl", "").unwrap_err().keys(), ["intake.tls"]);
    assert_eq!(
        imap("implicit", "port = 0").unwrap_err().keys(),
        ["intake.port"]
    );
}

#[test]
fn keys_of_the_other_kind_are_errors() {
    let e = errors(&format!(
        "{MINIMAL}[intake]\nmaildir = \"in\"\nhost = \"h\"\nidle = false\ntimeout = \"5s\"\n\
         [outbound]\nkind = \"smtp\"\nhost = \"h\"\ndir = \"out\"\n"
    ));
    assert_eq!(
        e.keys(),
        [
            "intake.host",
            "intake.idle",
            "intake.timeout",
            "outbound.dir"
        ],
        "{e}"
    );
    assert_eq!(e.problems[0].message, "only used with kind = \"imap\"");
    assert_eq!(e.problems[3].message, "only used with kind = \"file\"");
}

#[test]
fn durations_need_a_unit_and_a_sane_range() {
    assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
    assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
    assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
    for bad in ["60", "s", "1.5m", "-1s", "10 min", ""] {
        assert!(parse_duration(bad).is_err(), "{bad}");
    }
    let imap = |extra: &str| {
        parse(&format!(
            "{MINIMAL}[intake]\nkind = \"imap\"\nhost = \"h\"\nuser = \"u\"\n\
             password_env = \"P\"\n{extra}"
        ))
    };
    let Intake::Imap(i) = imap("poll_interval = \"5m\"\nidle = false\n")
        .unwrap()
        .intake
    else {
        panic!()
    };
    assert_eq!((i.poll_interval, i.idle), (Duration::from_secs(300), false));
    assert_eq!(
        imap("poll_interval = \"0s\"").unwrap_err().keys(),
        ["intake.poll_interval"]
    );
    let Intake::Imap(i) = imap("timeout = \"5s\"").unwrap().intake else {
        panic!()
    };
    assert_eq!(i.timeout, Duration::from_secs(5));
    for bad in ["0s", "11m", "5"] {
        assert_eq!(
            imap(&format!("timeout = \"{bad}\"")).unwrap_err().keys(),
            ["intake.timeout"]
        );
    }
    assert_eq!(
        imap("poll_interval = \"60\"").unwrap_err().keys(),
        ["intake.poll_interval"]
    );
    assert_eq!(
        imap("processed = \"INBOX\"\nbatch_size = 0")
            .unwrap_err()
            .keys(),
        ["intake.processed", "intake.batch_size"]
    );
}

#[test]
fn password_file_expands_credentials_directory_at_resolve_time() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("imap"), "cred\n").unwrap();
    let creds = dir.path().to_str().unwrap().to_owned();
    // Loading works without the variable (check-config runs outside the service)...
    let c = parse(&format!(
        "{MINIMAL}[intake]\nkind = \"imap\"\nhost = \"h\"\nuser = \"u\"\n\
         password_file = \"${{CREDENTIALS_DIRECTORY}}/imap\"\n"
    ))
    .unwrap();
    let Intake::Imap(i) = c.intake else { panic!() };
    // ...and reading expands it.
    let with = |n: &str| (n == "CREDENTIALS_DIRECTORY").then(|| creds.clone());
    assert_eq!(i.password.resolve_with(with).unwrap(), "cred");
    let err = i.password.resolve_with(|_| None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot expand password_file \"${CREDENTIALS_DIRECTORY}/imap\": \
         environment variable CREDENTIALS_DIRECTORY is not set"
    );
    let rel = i
        .password
        .resolve_with(|_| Some("relative".into()))
        .unwrap_err();
    assert!(rel.to_string().contains("not an absolute path"), "{rel}");
    // Malformed references are caught at load.
    for bad in ["${CREDENTIALS_DIRECTORY/imap", "${}/imap", "${1X}/imap"] {
        let e = errors(&format!(
            "{MINIMAL}[intake]\nkind = \"imap\"\nhost = \"h\"\nuser = \"u\"\n\
             password_file = \"{bad}\"\n"
        ));
        assert_eq!(e.keys(), ["intake.password_file"], "{bad}: {e}");
    }
    let e = errors(&format!(
        "{MINIMAL}[intake]\nkind = \"imap\"\nhost = \"h\"\nuser = \"u\"\npassword_env = \"A-B\"\n"
    ));
    assert_eq!(e.keys(), ["intake.password_env"]);
}
