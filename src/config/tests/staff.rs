//! `[staff]`: how staff mail is authenticated, and what check-config warns about.

use super::*;

const STAFFED: &str = "[desk]\naddress = \"support@example.co.jp\"\n\
                       staff = [\"tanaka@example.co.jp\", \"sato@example.co.jp\"]\n";

fn with_staff(section: &str) -> Result<Config, Diagnostics> {
    parse(&format!("{STAFFED}[staff]\n{section}\n"))
}

fn one_problem(section: &str) -> String {
    let e = with_staff(section).expect_err("a problem");
    assert_eq!(e.problems.len(), 1, "{e}");
    e.problems[0].to_string()
}

#[test]
fn without_the_section_no_staff_mail_is_authenticated_and_check_config_warns() {
    let c = parse(STAFFED).unwrap();
    assert_eq!(c.staff, Staff::default());
    assert_eq!(
        c.staff.authentication,
        StaffAuthentication::AuthenticationResults {
            trusted_authserv_ids: vec![]
        }
    );
    let w = c.warnings();
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!(w[0].key(), "staff.trusted_authserv_ids");
    assert!(
        w[0].message
            .contains("the 2 address(es) in desk.staff is never authenticated"),
        "{}",
        w[0]
    );
    assert!(
        c.summary()
            .contains("staff mail: authentication-results with no trusted authserv-id"),
        "{}",
        c.summary()
    );
    // Nobody is staff: nothing to warn about.
    assert!(parse(MINIMAL).unwrap().warnings().is_empty());
}

#[test]
fn authentication_results_needs_a_trusted_authserv_id() {
    let needed = "staff.trusted_authserv_ids: required with authentication = \
                  \"authentication-results\": with no trusted authserv-id no staff mail could \
                  ever pass; name the authserv-id your border MTA writes in its \
                  Authentication-Results header (e.g. \"mx.example.co.jp\")";
    assert_eq!(
        one_problem("authentication = \"authentication-results\""),
        needed
    );
    assert_eq!(one_problem("trusted_authserv_ids = []"), needed);
    assert_eq!(
        one_problem("authentication = \"authentication-results\"\ntrusted_authserv_ids = []"),
        needed
    );
    // Also with nobody in desk.staff: the section says what it means to do.
    let e = parse(&format!(
        "{MINIMAL}[staff]\nauthentication = \"authentication-results\"\n"
    ))
    .unwrap_err();
    assert_eq!(e.keys(), ["staff.trusted_authserv_ids"], "{e}");
}

#[test]
fn trusted_authserv_ids_are_kept_lowercased_and_checked_each() {
    let c = with_staff(
        "authentication = \"authentication-results\"\n\
         trusted_authserv_ids = [\" MX.Example.CO.JP \", \"mx2.example.co.jp\"]",
    )
    .unwrap();
    assert_eq!(
        c.staff.authentication,
        StaffAuthentication::AuthenticationResults {
            trusted_authserv_ids: vec!["mx.example.co.jp".into(), "mx2.example.co.jp".into()]
        }
    );
    assert!(c.warnings().is_empty(), "{:?}", c.warnings());
    assert!(
        c.summary().contains(
            "staff mail: authentication-results: the topmost Authentication-Results header \
             from mx.example.co.jp, mx2.example.co.jp must show dkim=pass aligned with the From \
             domain, or dmarc=pass"
        ),
        "{}",
        c.summary()
    );
    // Every bad id at its index, beside the other problems of the file.
    let e = parse(
        "[desk]\naddress = \"support example\"\n[staff]\n\
         trusted_authserv_ids = [\"\", \"mx example\", \"a;b\", \"mx.example.co.jp\", \
         \"MX.EXAMPLE.CO.JP\", \"(x)\"]\n",
    )
    .unwrap_err();
    assert_eq!(
        e.keys(),
        [
            "desk.address",
            "staff.trusted_authserv_ids[0]",
            "staff.trusted_authserv_ids[1]",
            "staff.trusted_authserv_ids[2]",
            "staff.trusted_authserv_ids[4]",
            "staff.trusted_authserv_ids[5]",
        ],
        "{e}"
    );
    let text = e.to_string();
    assert!(
        text.contains(
            "staff.trusted_authserv_ids[1]: \"mx example\" is not an authserv-id (the first \
             word of an Authentication-Results header, usually the border MTA's host name)"
        ),
        "{text}"
    );
    assert!(
        text.contains("staff.trusted_authserv_ids[4]: \"MX.EXAMPLE.CO.JP\" is listed twice"),
        "{text}"
    );
    // Only bad ids: they are the problems, not "required" on top of them.
    assert_eq!(
        with_staff("trusted_authserv_ids = [\"a b\"]")
            .unwrap_err()
            .keys(),
        ["staff.trusted_authserv_ids[0]"]
    );
}

#[test]
fn dkim_uses_the_system_resolvers_unless_one_is_named() {
    let c = with_staff("authentication = \"dkim\"").unwrap();
    assert_eq!(c.staff.authentication, StaffAuthentication::Dkim);
    assert_eq!(c.staff.dns_resolver, None);
    assert!(c.warnings().is_empty(), "{:?}", c.warnings());
    let summary = c.summary();
    assert!(
        summary.contains("staff mail: dkim: the desk verifies the DKIM signatures of staff mail")
            && summary.contains("DKIM keys: looked up with the system's resolvers"),
        "{summary}"
    );
    for (written, meant) in [
        ("127.0.0.1:5353", "127.0.0.1:5353"),
        (" 192.0.2.53 ", "192.0.2.53:53"),
        ("[::1]:5300", "[::1]:5300"),
        ("::1", "[::1]:53"),
    ] {
        let c = with_staff(&format!(
            "authentication = \"dkim\"\ndns_resolver = \"{written}\""
        ))
        .unwrap();
        assert_eq!(
            c.staff.dns_resolver.map(|a| a.to_string()).as_deref(),
            Some(meant)
        );
        assert!(
            c.summary()
                .contains(&format!("DKIM keys: looked up at {meant}")),
            "{}",
            c.summary()
        );
    }
}

#[test]
fn dns_resolver_is_an_address_and_only_for_dkim() {
    for bad in [
        "localhost:53",
        "127.0.0.1:0",
        "127.0.0.1:99999",
        "",
        "udp://127.0.0.1",
    ] {
        assert_eq!(
            one_problem(&format!(
                "authentication = \"dkim\"\ndns_resolver = \"{bad}\""
            )),
            format!(
                "staff.dns_resolver: {bad:?} is not a DNS server's address; write an IP \
                 address, with a port if it is not 53 (e.g. \"127.0.0.1:5353\", \"[::1]:53\")"
            )
        );
    }
    assert_eq!(
        one_problem("authentication = \"none\"\ndns_resolver = \"127.0.0.1\""),
        "staff.dns_resolver: only used with authentication = \"dkim\" (not \"none\")"
    );
    // With the default mode, reported beside the other problems of the section and file.
    let e = parse(&format!(
        "{STAFFED}[staff]\ndns_resolver = \"127.0.0.1\"\ntrusted_authserv_ids = [\"a b\"]\n\
         dns_resolvers = \"x\"\n[storage]\ndatabase = 5\n"
    ))
    .unwrap_err();
    assert_eq!(
        e.keys(),
        [
            "staff.dns_resolvers",
            "storage.database",
            "staff.trusted_authserv_ids[0]",
            "staff.dns_resolver",
        ],
        "{e}"
    );
    assert!(
        e.to_string().contains(
            "staff.dns_resolver: only used with authentication = \"dkim\" (not \
             \"authentication-results\")"
        ),
        "{e}"
    );
}

#[test]
fn none_is_allowed_with_a_warning() {
    let c = with_staff("authentication = \"none\"").unwrap();
    assert_eq!(c.staff.authentication, StaffAuthentication::None);
    let w = c.warnings();
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!(
        w[0].to_string(),
        "staff.authentication: \"none\": mail whose From is a staff address is believed \
         without any check, and anyone can write that From; use \"authentication-results\""
    );
    assert!(
        c.summary()
            .contains("staff mail: none: staff mail is NOT authenticated"),
        "{}",
        c.summary()
    );
    // Warned about even with nobody in desk.staff yet: the next admin may add someone.
    let c = parse(&format!("{MINIMAL}[staff]\nauthentication = \"none\"\n")).unwrap();
    assert_eq!(c.warnings().len(), 1);
    assert_eq!(
        one_problem("authentication = \"none\"\ntrusted_authserv_ids = []"),
        "staff.trusted_authserv_ids: only used with authentication = \
         \"authentication-results\" (not \"none\")"
    );
}

#[test]
fn unknown_modes_and_keys_are_errors() {
    assert_eq!(
        one_problem("authentication = \"spf\""),
        "staff.authentication: \"spf\" is not a way to authenticate staff mail; use \
         \"authentication-results\", \"dkim\" or \"none\""
    );
    // Spelled as written, no case folding (like `kind`).
    assert_eq!(
        with_staff("authentication = \"DKIM\"").unwrap_err().keys(),
        ["staff.authentication"]
    );
    let e = with_staff(
        "authentication = \"authentication-results\"\ntrusted_authserv_id = [\"mx.example.co.jp\"]\n\
         trusted_authserv_ids = \"mx.example.co.jp\"",
    )
    .unwrap_err();
    // Both keys that do not fit the schema; the mistyped list is not also reported as
    // missing.
    assert_eq!(
        e.keys(),
        ["staff.trusted_authserv_id", "staff.trusted_authserv_ids",],
        "{e}"
    );
    assert!(
        e.problems[0]
            .message
            .contains("unknown field `trusted_authserv_id`"),
        "{e}"
    );
    assert!(e.problems[1].message.contains("invalid type"), "{e}");
}

#[test]
fn the_example_file_trusts_its_border_mta() {
    let c = parse(EXAMPLE_TOML).unwrap();
    assert_eq!(
        c.staff.authentication,
        StaffAuthentication::AuthenticationResults {
            trusted_authserv_ids: vec!["mx.example.co.jp".into()]
        }
    );
    assert!(c.warnings().is_empty(), "{:?}", c.warnings());
}
