use proptest::prelude::*;

use super::*;

const MX: &str = "mx.example.co.jp";
const FROM: &str = "example.co.jp";

fn trusted() -> Vec<String> {
    vec![MX.to_owned()]
}

fn eval(headers: &[&str]) -> StaffAuth {
    eval_from(headers, FROM)
}

fn eval_from(headers: &[&str], from: &str) -> StaffAuth {
    let headers: Vec<String> = headers.iter().map(|h| (*h).to_owned()).collect();
    evaluate(&headers, &trusted(), from)
}

#[track_caller]
fn passes(result: StaffAuth, method: &str) {
    assert_eq!(
        result,
        StaffAuth::Authenticated {
            method: method.to_owned()
        }
    );
}

#[track_caller]
fn fails(result: StaffAuth, reason: &str) {
    assert_eq!(
        result,
        StaffAuth::Unauthenticated {
            reason: reason.to_owned()
        }
    );
}

#[track_caller]
fn reason(result: StaffAuth) -> String {
    match result {
        StaffAuth::Unauthenticated { reason } => reason,
        other => panic!("expected Unauthenticated, got {other:?}"),
    }
}

#[test]
fn no_header_is_unauthenticated() {
    fails(
        eval(&[]),
        "no Authentication-Results header from a trusted authserv-id (seen: none)",
    );
}

#[test]
fn headers_from_untrusted_authserv_ids_are_ignored() {
    fails(
        eval(&["mx.evil.example; dkim=pass header.d=example.co.jp; dmarc=pass"]),
        "no Authentication-Results header from a trusted authserv-id (seen: mx.evil.example)",
    );
    // Several, each named once, in order.
    fails(
        eval(&[
            "relay.example.net; spf=pass",
            "mx.evil.example; dkim=pass header.d=example.co.jp",
            "Relay.Example.NET; none",
        ]),
        "no Authentication-Results header from a trusted authserv-id \
         (seen: relay.example.net, mx.evil.example)",
    );
    // An untrusted header above the trusted one does not matter either way.
    passes(
        eval(&[
            "internal.example.co.jp; dkim=fail header.d=example.co.jp",
            "mx.example.co.jp; dkim=pass header.d=example.co.jp",
        ]),
        "dkim=pass header.d=example.co.jp",
    );
}

#[test]
fn nothing_is_trusted_without_trusted_ids() {
    let headers = vec!["mx.example.co.jp; dkim=pass header.d=example.co.jp".to_owned()];
    fails(
        evaluate(&headers, &[], FROM),
        "no Authentication-Results header from a trusted authserv-id \
         (none is configured; seen: mx.example.co.jp)",
    );
    fails(
        evaluate(&headers, &[" ".to_owned()], FROM),
        "no Authentication-Results header from a trusted authserv-id \
         (none is configured; seen: mx.example.co.jp)",
    );
}

/// The border MTA's genuine header is on top; the sender's forged one, with the same id, below.
#[test]
fn a_forged_pass_below_a_genuine_fail_is_not_believed() {
    fails(
        eval(&[
            "mx.example.co.jp; dkim=fail header.d=example.co.jp",
            "mx.example.co.jp; dkim=pass header.d=example.co.jp; dmarc=pass header.from=example.co.jp",
        ]),
        "dkim=fail (header.d=example.co.jp) and no dmarc=pass",
    );
    // Also when the genuine header has no results at all, or is unreadable.
    fails(
        eval(&[
            "mx.example.co.jp 1; none",
            "mx.example.co.jp; dkim=pass header.d=example.co.jp",
        ]),
        "the Authentication-Results header from mx.example.co.jp reports no results (none)",
    );
    fails(
        eval(&[
            "mx.example.co.jp; dkim=pass header.d=example.co.jp (unclosed",
            "mx.example.co.jp; dkim=pass header.d=example.co.jp",
        ]),
        "the Authentication-Results header from mx.example.co.jp cannot be read \
         (unclosed comment)",
    );
    // A header above the trusted one whose authserv-id cannot be read: it may be the trusted
    // MTA's own, damaged.
    fails(
        eval(&[
            "relay.example.net; none",
            "(mx.example.co.jp; dkim=fail",
            "mx.example.co.jp; dkim=pass header.d=example.co.jp",
        ]),
        "an Authentication-Results header without a readable authserv-id \
         (\"(mx.example.co.jp; dkim=fail\") is above the one from mx.example.co.jp",
    );
    // Below it, or with no trusted header at all, it is only mentioned.
    passes(
        eval(&[
            "mx.example.co.jp; dkim=pass header.d=example.co.jp",
            "; dkim=fail",
        ]),
        "dkim=pass header.d=example.co.jp",
    );
    fails(
        eval(&["", "mx.evil.example; dkim=pass"]),
        "no Authentication-Results header from a trusted authserv-id \
         (seen: mx.evil.example, one without a readable authserv-id)",
    );
}

#[test]
fn aligned_dkim_pass_authenticates() {
    passes(
        eval(&["mx.example.co.jp; dkim=pass header.d=example.co.jp header.s=sel header.b=AbCd"]),
        "dkim=pass header.d=example.co.jp",
    );
    // A subdomain either way.
    passes(
        eval_from(
            &["mx.example.co.jp; dkim=pass header.d=example.co.jp"],
            "mail.example.co.jp",
        ),
        "dkim=pass header.d=example.co.jp",
    );
    passes(
        eval(&["mx.example.co.jp; dkim=pass header.d=mail.example.co.jp"]),
        "dkim=pass header.d=mail.example.co.jp",
    );
    // header.i's domain when there is no header.d.
    passes(
        eval(&["mx.example.co.jp; dkim=pass header.i=@example.co.jp"]),
        "dkim=pass header.i=@example.co.jp",
    );
    passes(
        eval(&["mx.example.co.jp; dkim=pass header.i=tanaka@mail.example.co.jp"]),
        "dkim=pass header.i=tanaka@mail.example.co.jp",
    );
    // One failing signature and one aligned passing one.
    passes(
        eval(&[
            "mx.example.co.jp; dkim=fail header.d=example.co.jp; dkim=pass header.d=example.co.jp",
        ]),
        "dkim=pass header.d=example.co.jp",
    );
}

#[test]
fn unaligned_dkim_pass_does_not() {
    fails(
        eval(&["mx.example.co.jp; dkim=pass header.d=other.example"]),
        "dkim=pass for other.example, not aligned with example.co.jp",
    );
    // Siblings under one organizational domain: not aligned here (no public suffix list).
    fails(
        eval_from(
            &["mx.example.co.jp; dkim=pass header.d=a.example.co.jp"],
            "b.example.co.jp",
        ),
        "dkim=pass for a.example.co.jp, not aligned with b.example.co.jp",
    );
    // A look-alike suffix is not a subdomain.
    fails(
        eval(&["mx.example.co.jp; dkim=pass header.d=badexample.co.jp"]),
        "dkim=pass for badexample.co.jp, not aligned with example.co.jp",
    );
    // A top-level domain aligns with nothing.
    fails(
        eval(&["mx.example.co.jp; dkim=pass header.d=jp"]),
        "dkim=pass for jp, not aligned with example.co.jp",
    );
    fails(
        eval(&["mx.example.co.jp; dkim=pass"]),
        "dkim=pass without header.d or header.i",
    );
    fails(
        eval(&["mx.example.co.jp; dkim=pass header.d=example.co.jp header.d=evil.example"]),
        "dkim=pass with conflicting header.d",
    );
    fails(
        eval(&["mx.example.co.jp; dkim=pass header.d=exa..mple.co.jp"]),
        "dkim=pass for exa..mple.co.jp (header.d), not a domain name",
    );
    // Both reasons when there are two signatures.
    fails(
        eval(&[
            "mx.example.co.jp; dkim=fail header.d=example.co.jp; dkim=pass header.d=esp.example",
        ]),
        "dkim=fail (header.d=example.co.jp); dkim=pass for esp.example, not aligned with \
         example.co.jp",
    );
}

#[test]
fn dmarc_pass_authenticates_for_the_from_domain() {
    passes(
        eval(&[
            "mx.example.co.jp; dkim=pass header.d=esp.example; dmarc=pass header.from=example.co.jp",
        ]),
        "dmarc=pass",
    );
    passes(eval(&["mx.example.co.jp; dmarc=pass"]), "dmarc=pass");
    passes(
        eval(&["mx.example.co.jp; dmarc=pass (p=reject dis=none) header.from=Example.CO.JP"]),
        "dmarc=pass",
    );
    // Aligned dkim is named first when both pass.
    passes(
        eval(&[
            "mx.example.co.jp; dmarc=pass header.from=example.co.jp; dkim=pass header.d=example.co.jp",
        ]),
        "dkim=pass header.d=example.co.jp",
    );
    fails(
        eval(&["mx.example.co.jp; dmarc=pass header.from=other.example"]),
        "no dkim result; dmarc=pass for other.example, not example.co.jp",
    );
    fails(
        eval(&[
            "mx.example.co.jp; dkim=fail header.d=example.co.jp; dmarc=fail header.from=example.co.jp",
        ]),
        "dkim=fail (header.d=example.co.jp); dmarc=fail (header.from=example.co.jp)",
    );
    // Subdomains do not count for dmarc's header.from: it names the domain that was checked.
    fails(
        eval_from(
            &["mx.example.co.jp; dmarc=pass header.from=example.co.jp"],
            "mail.example.co.jp",
        ),
        "no dkim result; dmarc=pass for example.co.jp, not mail.example.co.jp",
    );
}

#[test]
fn other_methods_and_none_do_not_authenticate() {
    fails(
        eval(&["mx.example.co.jp; spf=pass smtp.mailfrom=example.co.jp; arc=pass"]),
        "the Authentication-Results header from mx.example.co.jp has no dkim or dmarc result \
         (only spf=pass, arc=pass)",
    );
    fails(
        eval(&["mx.example.co.jp; none"]),
        "the Authentication-Results header from mx.example.co.jp reports no results (none)",
    );
    fails(
        eval(&["mx.example.co.jp"]),
        "the Authentication-Results header from mx.example.co.jp reports no results (none)",
    );
    fails(
        eval(&["mx.example.co.jp; dkim=none"]),
        "dkim=none and no dmarc=pass",
    );
}

#[test]
fn names_results_and_domains_ignore_case() {
    passes(
        eval(&["MX.Example.CO.JP; DKIM=Pass Header.D=EXAMPLE.co.jp"]),
        "dkim=pass header.d=EXAMPLE.co.jp",
    );
    passes(
        eval_from(
            &["mx.example.co.jp; dkim=pass header.d=example.co.jp"],
            "Example.CO.JP",
        ),
        "dkim=pass header.d=example.co.jp",
    );
    passes(
        eval(&["mx.example.co.jp; DMARC=PASS HEADER.FROM=EXAMPLE.CO.JP."]),
        "dmarc=pass",
    );
    // Trusted ids as configured in any case.
    let headers = vec!["mx.example.co.jp; dkim=pass header.d=example.co.jp".to_owned()];
    assert!(evaluate(&headers, &["MX.EXAMPLE.CO.JP".to_owned()], FROM).is_authenticated());
}

#[test]
fn comments_are_not_results() {
    fails(
        eval(&[
            "mx.example.co.jp; dkim=fail (dkim=pass header.d=example.co.jp) header.d=example.co.jp",
        ]),
        "dkim=fail (header.d=example.co.jp) and no dmarc=pass",
    );
    // Nested, with a quoted-pair, in front of the authserv-id and inside a resinfo.
    passes(
        eval(&[
            "(mx (nested \\) dkim=pass) x) mx.example.co.jp (comment; dmarc=pass) 1; \
             dkim (m) = (r) pass (good (signature)) header (p) .d (q)= example.co.jp",
        ]),
        "dkim=pass header.d=example.co.jp",
    );
    // A comment hides the authserv-id's neighbour, not the header.
    fails(
        eval(&["mx.example.co.jp; spf=pass (sender dkim=pass header.d=example.co.jp; dmarc=pass)"]),
        "the Authentication-Results header from mx.example.co.jp has no dkim or dmarc result \
         (only spf=pass)",
    );
}

#[test]
fn quoted_strings_are_values() {
    // A `;` inside a quoted reason does not start a new result.
    fails(
        eval(&[
            "mx.example.co.jp; dkim=fail reason=\"bad; dkim=pass header.d=example.co.jp\" header.d=example.co.jp",
        ]),
        "dkim=fail (header.d=example.co.jp) and no dmarc=pass",
    );
    // A quoted local part in smtp.mailfrom, as a sender can choose it.
    fails(
        eval(&[
            "mx.example.co.jp; spf=pass smtp.mailfrom=\"x;dkim=pass header.d=example.co.jp\"@evil.example",
        ]),
        "the Authentication-Results header from mx.example.co.jp has no dkim or dmarc result \
         (only spf=pass)",
    );
    passes(
        eval(&["\"mx.example.co.jp\"; dkim=pass header.d=\"example.co.jp\""]),
        "dkim=pass header.d=example.co.jp",
    );
    fails(
        eval(&["mx.example.co.jp; dkim=pass header.d=example.co.jp reason=\"unclosed"]),
        "the Authentication-Results header from mx.example.co.jp cannot be read \
         (unclosed quoted string)",
    );
}

#[test]
fn folded_whitespace_version_and_method_version() {
    passes(
        eval(&[
            "mx.example.co.jp 1;\r\n\tspf=pass smtp.mailfrom=tanaka@example.co.jp;\r\n \
             dkim/1=pass\r\n\theader.d=example.co.jp header.s=sel header.b=\"AbCd+/==\"",
        ]),
        "dkim=pass header.d=example.co.jp",
    );
    // base64 padding written without quotes stays with its value.
    passes(
        eval(&["mx.example.co.jp; dkim=pass header.b=AbCd== header.d=example.co.jp"]),
        "dkim=pass header.d=example.co.jp",
    );
    // Trailing `;` and empty resinfos are harmless.
    passes(
        eval(&["mx.example.co.jp;; dkim=pass header.d=example.co.jp;"]),
        "dkim=pass header.d=example.co.jp",
    );
    fails(
        eval(&["mx.example.co.jp 2; dkim=pass header.d=example.co.jp"]),
        "the Authentication-Results header from mx.example.co.jp cannot be read \
         (version 2 is not understood)",
    );
    fails(
        eval(&["mx.example.co.jp trust-me; dkim=pass header.d=example.co.jp"]),
        "the Authentication-Results header from mx.example.co.jp cannot be read \
         (unexpected text after the authserv-id)",
    );
}

#[test]
fn malformed_results_do_not_pass() {
    fails(
        eval(&["mx.example.co.jp; dkim=pass junk words header.d=example.co.jp extra"]),
        "dkim=pass that cannot be read (stray text before header.d)",
    );
    fails(
        eval(&["mx.example.co.jp; dkim="]),
        "dkim result that cannot be read (dkim without a value) and no dmarc=pass",
    );
    fails(
        eval(&["mx.example.co.jp; =pass; ===; spf=pass"]),
        "the Authentication-Results header from mx.example.co.jp has no dkim or dmarc result \
         (only spf=pass)",
    );
    // A stray `)` anywhere in the counted header.
    fails(
        eval(&["mx.example.co.jp; dkim=pass header.d=example.co.jp)"]),
        "the Authentication-Results header from mx.example.co.jp cannot be read \
         (a ')' that closes no comment)",
    );
}

#[test]
fn the_from_domain_must_be_a_domain() {
    fails(
        eval_from(&["mx.example.co.jp; dmarc=pass"], ""),
        "the From domain \"\" is not a domain name",
    );
    let r = reason(eval_from(&["mx.example.co.jp; dmarc=pass"], "a\nb"));
    assert!(r.contains("\"a?b\""), "{r}");
}

#[test]
fn reasons_stay_one_short_line() {
    let long = format!("mx.{}.example\r\n; dkim=pass", "x".repeat(500));
    let headers: Vec<&str> = std::iter::repeat_n(long.as_str(), 1)
        .chain([
            "a.example; none",
            "b.example",
            "c.example",
            "d.example",
            "e.example",
        ])
        .collect();
    let r = reason(eval(&headers));
    assert!(!r.contains(['\r', '\n']), "{r}");
    assert!(r.chars().count() < 400, "{r}");
    assert!(r.ends_with("and 1 more)"), "{r}");
    let many = format!(
        "mx.example.co.jp;{}",
        " dkim=fail header.d=example.co.jp;".repeat(50)
    );
    let r = reason(eval(&[&many]));
    assert!(r.ends_with("; and 45 more and no dmarc=pass"), "{r}");
}

#[test]
fn alignment_rule() {
    assert!(aligned("example.co.jp", "example.co.jp"));
    assert!(aligned("example.co.jp", "a.b.example.co.jp"));
    assert!(aligned("a.b.example.co.jp", "example.co.jp"));
    assert!(!aligned("example.co.jp", "xexample.co.jp"));
    assert!(!aligned("jp", "example.jp"));
    assert!(!aligned("a.example.jp", "b.example.jp"));
    assert!(aligned("localhost", "localhost"));
}

proptest! {
    #[test]
    fn never_panics_on_arbitrary_text(
        headers in proptest::collection::vec("\\PC{0,80}", 0..4),
        ids in proptest::collection::vec("\\PC{0,20}", 0..3),
        from in "\\PC{0,30}",
    ) {
        let _ = evaluate(&headers, &ids, &from);
    }

    #[test]
    fn never_panics_on_header_like_text(
        headers in proptest::collection::vec(
            "[a-z .;=()\"\\\\/@1\r\n\t]{0,60}", 0..4),
        from in "[a-z.]{0,12}",
    ) {
        let ids = vec!["mx".to_owned(), "a.b".to_owned()];
        let _ = evaluate(&headers, &ids, &from);
    }

    /// And a genuine passing one: nothing below it can take the pass away either.
    #[test]
    fn a_genuine_pass_on_top_stands_whatever_is_below(
        below in proptest::collection::vec("\\PC{0,80}", 0..4),
    ) {
        let mut headers = vec!["mx.example.co.jp; dkim=pass header.d=example.co.jp".to_owned()];
        headers.extend(below);
        prop_assert!(evaluate(&headers, &trusted(), FROM).is_authenticated());
    }

    /// Whatever the sender wrote below it, a genuine failing header on top decides.
    #[test]
    fn nothing_below_the_topmost_trusted_header_counts(
        below in proptest::collection::vec(
            prop_oneof![
                "\\PC{0,80}",
                "(mx\\.example\\.co\\.jp|mx\\.evil\\.example);( (dkim|dmarc)=(pass|fail)( header\\.(d|i|from)=@?example\\.co\\.jp)?){1,3}",
            ],
            0..4),
        genuine in prop_oneof![
            Just("mx.example.co.jp; dkim=fail header.d=example.co.jp"),
            Just("mx.example.co.jp 1; none"),
            Just("mx.example.co.jp; spf=pass smtp.mailfrom=example.co.jp"),
            Just("mx.example.co.jp; dkim=pass header.d=evil.example; dmarc=fail"),
        ],
    ) {
        let mut headers = vec![genuine.to_owned()];
        headers.extend(below);
        prop_assert!(!evaluate(&headers, &trusted(), FROM).is_authenticated());
    }
}
