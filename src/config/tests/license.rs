//! `[license]`: off without the section, defaults, the two issuers, every problem at once.

use std::time::Duration;

use super::*;

fn with_license(section: &str) -> Result<Config, Diagnostics> {
    parse(&format!("{MINIMAL}[license]\n{section}\n"))
}

fn license(section: &str) -> LicenseConfig {
    match with_license(section) {
        Ok(c) => c.license.expect("a [license] section"),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn without_the_section_no_key_is_issued() {
    let c = parse(MINIMAL).unwrap();
    assert_eq!(c.license, None);
    assert!(
        c.summary()
            .contains("license keys: not issued (no [license] section)"),
        "{}",
        c.summary()
    );
}

#[test]
fn a_builtin_issuer_needs_only_its_key_file() {
    let l = license("signing_key_file = \"keys/license.key\"");
    assert_eq!(
        l,
        LicenseConfig {
            approval: Approval::Auto,
            early: false,
            remind_at: t("15:00"),
            product: "desknet's NEO 分散サーバー".into(),
            issuer: IssuerConfig::Builtin {
                signing_key_file: "/srv/desk/keys/license.key".into()
            },
        }
    );
    // A systemd credential stays a template until the key is read.
    let l = license("signing_key_file = \"${CREDENTIALS_DIRECTORY}/license.key\"");
    assert_eq!(
        l.issuer,
        IssuerConfig::Builtin {
            signing_key_file: "${CREDENTIALS_DIRECTORY}/license.key".into()
        }
    );
    // An absolute path is kept; a missing file is check-config's business, not the load's
    // (`license keygen FILE` runs on a config that already names FILE).
    let l = license(
        "approval = \"staff\"\nearly = true\nremind_at = \"14:30\"\nproduct = \"NEO DS\"\n\
         issuer = \"builtin\"\nsigning_key_file = \"/nonexistent/license.key\"",
    );
    assert_eq!(
        (l.approval, l.early, l.remind_at, l.product.as_str()),
        (Approval::Staff, true, t("14:30"), "NEO DS")
    );
    assert_eq!(
        l.describe(),
        "builtin PASETO v4.public, key /nonexistent/license.key; sent as soon as eligible; \
         staff #approve, reminder at 14:30"
    );
}

#[test]
fn a_command_issuer_is_an_argv_with_a_timeout() {
    let l = license("issuer = \"command\"\ncommand = [\"/usr/local/bin/vendor-keygen\", \"-q\"]");
    assert_eq!(
        l.issuer,
        IssuerConfig::Command {
            argv: vec!["/usr/local/bin/vendor-keygen".into(), "-q".into()],
            timeout: Duration::from_secs(30),
        }
    );
    assert_eq!(
        l.describe(),
        "command /usr/local/bin/vendor-keygen (timeout 30s); sent on the cutoff schedule (R8); \
         no approval"
    );
    let l = license("issuer = \"command\"\ncommand = [\"bin/keygen\"]\ncommand_timeout = \"2m\"");
    assert_eq!(
        l.issuer,
        IssuerConfig::Command {
            argv: vec!["/srv/desk/bin/keygen".into()],
            timeout: Duration::from_secs(120),
        }
    );
    // A bare name is looked up on PATH when it runs.
    let l = license("issuer = \"command\"\ncommand = [\"vendor-keygen\"]");
    assert!(matches!(l.issuer, IssuerConfig::Command { argv, .. } if argv == ["vendor-keygen"]));
}

#[test]
fn every_problem_of_the_section_is_reported() {
    let e = with_license(
        "approval = \"maybe\"\nremind_at = \"3pm\"\nproduct = \"\"\nsigning_key_file = \"\"\n\
         command_timeout = \"30s\"\nvendor = \"x\"",
    )
    .unwrap_err();
    assert_eq!(
        e.keys(),
        [
            "license.vendor",
            "license.approval",
            "license.remind_at",
            "license.product",
            "license.command_timeout",
            "license.signing_key_file",
        ],
        "{e}"
    );
    let text = e.to_string();
    assert!(
        text.contains("license.vendor: line 9, column 1: unknown field `vendor`"),
        "{text}"
    );
    assert!(text.contains("\"maybe\" is not an approval mode; use \"auto\" or \"staff\""));
    assert!(text.contains("license.remind_at: \"3pm\" is not a time of day (HH:MM)"));
    assert!(text.contains("license.command_timeout: only used with issuer = \"command\""));

    let one = |section: &str| {
        let e = with_license(section).unwrap_err();
        assert_eq!(e.problems.len(), 1, "{section}: {e}");
        e.problems[0].to_string()
    };
    assert_eq!(
        one(""),
        "license.signing_key_file: required with issuer = \"builtin\": the file holding the \
         signing key (make one with `madoguchi license keygen FILE`)"
    );
    assert_eq!(
        one("issuer = \"vendor\""),
        "license.issuer: \"vendor\" is not a key issuer; use \"builtin\" or \"command\""
    );
    assert!(one("issuer = \"command\"").starts_with("license.command: required with issuer"));
    assert_eq!(
        one("issuer = \"command\"\ncommand = []"),
        "license.command: must name a program: [\"/usr/local/bin/vendor-keygen\"]"
    );
    assert_eq!(
        one("issuer = \"command\"\ncommand = [\" \"]"),
        "license.command[0]: must name a program"
    );
    assert_eq!(
        one("issuer = \"command\"\ncommand = [\"k\"]\nsigning_key_file = \"/k\""),
        "license.signing_key_file: only used with issuer = \"builtin\""
    );
    for (timeout, why) in [
        ("30", "is not a duration"),
        ("0s", "must be between 1s and 600s"),
        ("11m", "must be between 1s and 600s"),
    ] {
        let p = one(&format!(
            "issuer = \"command\"\ncommand = [\"k\"]\ncommand_timeout = \"{timeout}\""
        ));
        assert!(
            p.starts_with("license.command_timeout: ") && p.contains(why),
            "{p}"
        );
    }
    assert!(one("signing_key_file = \"${CREDENTIALS_DIRECTORY/k\"").contains("unterminated"));
    // A mistyped issuer hides the section's other complaints: they would be guesses.
    assert_eq!(
        with_license("issuer = 5").unwrap_err().keys(),
        ["license.issuer"]
    );
    assert_eq!(
        with_license("early = \"yes\"\nsigning_key_file = \"/k\"")
            .unwrap_err()
            .keys(),
        ["license.early"]
    );
}

#[test]
fn staff_approval_that_cannot_work_is_warned_about() {
    let c = with_license("approval = \"staff\"\nremind_at = \"17:30\"\nsigning_key_file = \"/k\"")
        .unwrap();
    let warnings = c.warnings();
    let keys: Vec<&str> = warnings.iter().map(|w| w.key()).collect();
    let w: Vec<String> = warnings.iter().map(|w| w.to_string()).collect();
    assert_eq!(keys, ["license.approval", "license.remind_at"], "{w:?}");
    assert!(w[0].contains("desk.staff lists nobody"), "{w:?}");
    assert!(
        w[1].contains("17:30 is not before hours.license_cutoff (17:00)"),
        "{w:?}"
    );
}

#[test]
fn the_example_section_and_its_command_variant_validate() {
    let c = parse(EXAMPLE_TOML).unwrap();
    let l = c.license.expect("the example issues keys");
    assert_eq!(
        l.issuer,
        IssuerConfig::Builtin {
            signing_key_file: "/etc/madoguchi/license.key".into()
        }
    );
    assert_eq!(
        (l.approval, l.early, l.remind_at),
        (Approval::Auto, false, t("15:00"))
    );
    // Swap in the commented command issuer.
    let mut text = String::new();
    let mut in_license = false;
    for line in EXAMPLE_TOML.lines() {
        if line.starts_with('[') {
            in_license = line.starts_with("[license]");
        }
        if in_license && (line.starts_with("issuer =") || line.starts_with("signing_key_file")) {
            continue;
        }
        let commented_key = line
            .strip_prefix('#')
            .filter(|rest| rest.starts_with(|c: char| c.is_ascii_alphabetic()));
        match commented_key {
            Some(rest) if in_license => text.push_str(rest),
            _ => text.push_str(line),
        }
        text.push('\n');
    }
    let c = parse(&text).unwrap_or_else(|e| panic!("{e}\n---\n{text}"));
    assert_eq!(
        c.license.map(|l| l.issuer),
        Some(IssuerConfig::Command {
            argv: ["/usr/local/bin/vendor-keygen", "--format", "neo"]
                .map(String::from)
                .to_vec(),
            timeout: Duration::from_secs(30),
        })
    );
}
