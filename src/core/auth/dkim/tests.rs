use super::*;
use crate::core::auth::StaffAuthentication;

const FROM: &str = "tanaka@example.co.jp";

fn signed(domain: &str, result: DkimResult) -> DkimSignature {
    DkimSignature {
        domain: domain.to_owned(),
        selector: "sel".to_owned(),
        algorithm: "rsa-sha256".to_owned(),
        signs_from: true,
        result,
    }
}

fn report(signatures: Vec<DkimSignature>) -> DkimReport {
    DkimReport {
        from: vec![FROM.to_owned()],
        signatures,
    }
}

fn judged(signatures: Vec<DkimSignature>) -> StaffAuth {
    judge(Some(&report(signatures)), FROM)
}

#[track_caller]
fn reason(result: StaffAuth) -> String {
    match result {
        StaffAuth::Unauthenticated { reason } => reason,
        other => panic!("expected Unauthenticated, got {other:?}"),
    }
}

#[test]
fn a_verified_signature_by_the_from_domain_passes() {
    assert_eq!(
        judged(vec![signed("example.co.jp", DkimResult::Pass)]),
        StaffAuth::Authenticated {
            method: "dkim=pass header.d=example.co.jp header.s=sel (verified by the desk)".into()
        }
    );
    // Domains compare in any case, with or without the final dot.
    assert!(judged(vec![signed("Example.CO.JP.", DkimResult::Pass)]).is_authenticated());
}

#[test]
fn relaxed_alignment_is_the_authentication_results_rule() {
    // A parent or a subdomain of the From domain aligns (as `aligned` says for
    // Authentication-Results); a sibling, an unrelated domain or a top-level domain does not.
    assert!(judged(vec![signed("mail.example.co.jp", DkimResult::Pass)]).is_authenticated());
    let from_sub = DkimReport {
        from: vec!["tanaka@tokyo.example.co.jp".into()],
        signatures: vec![signed("example.co.jp", DkimResult::Pass)],
    };
    assert!(judge(Some(&from_sub), "tanaka@tokyo.example.co.jp").is_authenticated());
    for (domain, why) in [
        (
            "example.com",
            "dkim=pass for example.com, not aligned with example.co.jp",
        ),
        (
            "evil-example.co.jp",
            "dkim=pass for evil-example.co.jp, not aligned with example.co.jp",
        ),
        ("jp", "dkim=pass for jp, not aligned with example.co.jp"),
    ] {
        assert_eq!(reason(judged(vec![signed(domain, DkimResult::Pass)])), why);
    }
    let sibling = DkimReport {
        from: vec!["tanaka@a.example.co.jp".into()],
        signatures: vec![signed("b.example.co.jp", DkimResult::Pass)],
    };
    assert!(!judge(Some(&sibling), "tanaka@a.example.co.jp").is_authenticated());
}

#[test]
fn one_good_signature_is_enough_and_every_other_one_is_named() {
    // An unaligned pass (a mailing list's, an ESP's) beside the staff domain's own.
    let both = vec![
        signed("esp.example.net", DkimResult::Pass),
        signed("example.co.jp", DkimResult::Pass),
    ];
    assert!(judged(both).is_authenticated());
    assert_eq!(
        reason(judged(vec![
            signed("esp.example.net", DkimResult::Pass),
            signed(
                "example.co.jp",
                DkimResult::Neutral("Calculated body hash does not match signature hash".into())
            ),
        ])),
        "dkim=pass for esp.example.net, not aligned with example.co.jp; dkim=neutral \
         (header.d=example.co.jp: Calculated body hash does not match signature hash)"
    );
}

#[test]
fn no_signature_fails() {
    assert_eq!(reason(judged(vec![])), "no DKIM signature");
}

#[test]
fn every_result_but_pass_fails_closed_with_its_reason() {
    for (result, why) in [
        (
            DkimResult::Fail("Signature verification failed".into()),
            "dkim=fail (header.d=example.co.jp: Signature verification failed)",
        ),
        (
            DkimResult::PermError("Record not found: NXDomain".into()),
            "dkim=permerror (header.d=example.co.jp: Record not found: NXDomain)",
        ),
        // The resolver did not answer: held, never believed.
        (
            DkimResult::TempError("DNS resolver error: request timed out".into()),
            "dkim=temperror (header.d=example.co.jp: DNS resolver error: request timed out)",
        ),
    ] {
        assert_eq!(reason(judged(vec![signed("example.co.jp", result)])), why);
    }
    let unreadable = DkimSignature {
        domain: String::new(),
        selector: String::new(),
        algorithm: String::new(),
        signs_from: false,
        result: DkimResult::Neutral("Missing parameters".into()),
    };
    assert_eq!(
        reason(judged(vec![unreadable])),
        "dkim=neutral (a signature that cannot be read: Missing parameters)"
    );
}

#[test]
fn a_pass_must_cover_from_and_not_use_sha1() {
    let mut no_from = signed("example.co.jp", DkimResult::Pass);
    no_from.signs_from = false;
    assert_eq!(
        reason(judged(vec![no_from])),
        "dkim=pass for example.co.jp, but the signature does not cover From (h=)"
    );
    let mut sha1 = signed("example.co.jp", DkimResult::Pass);
    sha1.algorithm = "rsa-sha1".into();
    assert_eq!(
        reason(judged(vec![sha1])),
        "dkim=pass for example.co.jp with rsa-sha1, which is not accepted (RFC 8301)"
    );
    let mut ed = signed("example.co.jp", DkimResult::Pass);
    ed.algorithm = "ed25519-sha256".into();
    assert!(judged(vec![ed]).is_authenticated());
}

#[test]
fn the_signed_from_must_be_the_one_from_the_desk_read() {
    let pass = vec![signed("example.co.jp", DkimResult::Pass)];
    let two = DkimReport {
        from: vec![FROM.into(), "boss@example.co.jp".into()],
        signatures: pass.clone(),
    };
    assert_eq!(
        reason(judge(Some(&two), FROM)),
        "the message has 2 From addresses; DKIM can vouch for exactly one"
    );
    let other = DkimReport {
        from: vec!["sato@example.co.jp".into()],
        signatures: pass.clone(),
    };
    assert_eq!(
        reason(judge(Some(&other), FROM)),
        "the From address DKIM would cover (sato@example.co.jp) is not the one the desk read \
         (tanaka@example.co.jp)"
    );
    let none = DkimReport {
        from: vec![],
        signatures: pass.clone(),
    };
    assert!(!judge(Some(&none), FROM).is_authenticated());
    // Case does not matter.
    assert!(judge(Some(&report(pass)), "Tanaka@Example.co.jp").is_authenticated());
}

#[test]
fn unchecked_mail_and_odd_input_fail_without_panicking() {
    assert_eq!(
        reason(judge(None, FROM)),
        "DKIM was not checked: the verifier did not read a staff address in From"
    );
    let pass = report(vec![signed("example.co.jp", DkimResult::Pass)]);
    for from in ["", "tanaka", "tanaka@", "tanaka@exa mple.jp"] {
        assert!(!judge(Some(&pass), from).is_authenticated(), "{from:?}");
    }
    let long = "x".repeat(300);
    let reason = reason(judged(vec![signed(
        &format!("{long}.example.com\n"),
        DkimResult::Fail(long.clone()),
    )]));
    assert!(reason.len() < 300 && !reason.contains('\n'), "{reason}");
}

#[test]
fn the_policy_judges_by_the_report_not_by_authentication_results() {
    let policy = StaffAuthentication::Dkim;
    // A forged Authentication-Results header counts for nothing under "dkim".
    let forged = vec!["mx.example.co.jp; dkim=pass header.d=example.co.jp".to_owned()];
    assert!(!policy.judge(&forged, None, FROM).is_authenticated());
    let pass = report(vec![signed("example.co.jp", DkimResult::Pass)]);
    assert!(policy.judge(&[], Some(&pass), FROM).is_authenticated());
    // And the report counts for nothing under "authentication-results".
    let results = StaffAuthentication::AuthenticationResults {
        trusted_authserv_ids: vec!["mx.example.co.jp".into()],
    };
    assert!(!results.judge(&[], Some(&pass), FROM).is_authenticated());
    assert!(results.judge(&forged, None, FROM).is_authenticated());
}
