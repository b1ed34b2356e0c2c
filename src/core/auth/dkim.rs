//! `[staff] authentication = "dkim"`: the desk verifies the DKIM signatures of staff mail
//! itself. The shell (`desk::dkim`) parses the message, looks each signing key up in DNS and
//! checks each signature (mail-auth); what it found comes here as data, a [`DkimReport`], and
//! this decides whether the mail is the staff member's. Pure: no DNS, no clock.
//!
//! ## Pass rule
//!
//! At least one signature verified (`dkim=pass`) whose `d=` domain is aligned with the From
//! domain (the relaxed alignment [`super::aligned`] that `authentication-results` uses too),
//! whose `h=` covers From (RFC 6376 §5.4: a signature that leaves From out says nothing about
//! it), and that is not `rsa-sha1` (RFC 8301: no longer secure). The message must have exactly
//! one From address, the one the desk read: a second From header the signature does not cover
//! cannot ride along.
//!
//! Everything else is [`StaffAuth::Unauthenticated`] with each signature's reason: no
//! signature, a signature that does not verify (a tampered body or header), a key that is not
//! published, a DNS error (`temperror` fails closed: the mail is held, not believed), a
//! signature by another domain.

use super::{StaffAuth, aligned, at_most_five, domain_name, shown};

/// What the desk's DKIM verifier found in one message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DkimReport {
    /// The addresses of the message's From header field(s), lowercased, as the verifier read
    /// them.
    pub from: Vec<String>,
    /// One per `DKIM-Signature` header field (unreadable ones included), in the verifier's
    /// order.
    pub signatures: Vec<DkimSignature>,
}

/// One signature and its result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DkimSignature {
    /// `d=` as written; empty when the signature could not be read.
    pub domain: String,
    /// `s=` as written; empty when the signature could not be read.
    pub selector: String,
    /// `a=` in its RFC spelling (`rsa-sha256`, `ed25519-sha256`, `rsa-sha1`).
    pub algorithm: String,
    /// Whether `h=` lists From.
    pub signs_from: bool,
    pub result: DkimResult,
}

/// A signature's result, as RFC 8601 names them, with the verifier's why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DkimResult {
    Pass,
    /// The signature does not verify against the published key.
    Fail(String),
    /// Not checked to the end: the body hash differs (the body was changed), the signature
    /// expired or cannot be read, it signs only part of the body (`l=`).
    Neutral(String),
    /// Cannot be checked for a lasting reason: no key published at the selector, an unusable
    /// or revoked key.
    PermError(String),
    /// Cannot be checked now: the DNS lookup failed (timeout, server failure).
    TempError(String),
}

impl DkimResult {
    /// The RFC 8601 result name and the why, if any.
    fn parts(&self) -> (&'static str, Option<&str>) {
        match self {
            DkimResult::Pass => ("pass", None),
            DkimResult::Fail(why) => ("fail", Some(why)),
            DkimResult::Neutral(why) => ("neutral", Some(why)),
            DkimResult::PermError(why) => ("permerror", Some(why)),
            DkimResult::TempError(why) => ("temperror", Some(why)),
        }
    }
}

/// Judges mail `From: from_address` (a staff address) by what the desk's verifier found;
/// `None` when it did not check the message.
pub fn judge(report: Option<&DkimReport>, from_address: &str) -> StaffAuth {
    let unauthenticated = |reason: String| StaffAuth::Unauthenticated { reason };
    let Some(report) = report else {
        return unauthenticated(
            "DKIM was not checked: the verifier did not read a staff address in From".to_owned(),
        );
    };
    let from_address = from_address.trim().to_lowercase();
    let Some(from) = from_address
        .rsplit_once('@')
        .and_then(|(_, domain)| domain_name(domain))
    else {
        return unauthenticated(format!(
            "the From address {:?} has no domain name",
            shown(&from_address)
        ));
    };
    match report.from.as_slice() {
        [one] if one.trim().to_lowercase() == from_address => {}
        [one] => {
            return unauthenticated(format!(
                "the From address DKIM would cover ({}) is not the one the desk read ({})",
                shown(one),
                shown(&from_address)
            ));
        }
        many => {
            return unauthenticated(format!(
                "the message has {} From addresses; DKIM can vouch for exactly one",
                many.len()
            ));
        }
    }
    if report.signatures.is_empty() {
        return unauthenticated("no DKIM signature".to_owned());
    }
    let mut reasons = Vec::new();
    for signature in &report.signatures {
        match verdict(signature, &from) {
            Ok(method) => return StaffAuth::Authenticated { method },
            Err(why) => reasons.push(why),
        }
    }
    unauthenticated(at_most_five(reasons).join("; "))
}

/// `Ok(method)` for a signature that authenticates mail from `from` (a normalized domain),
/// else why not.
fn verdict(signature: &DkimSignature, from: &str) -> Result<String, String> {
    let (result, why) = signature.result.parts();
    let domain = domain_name(&signature.domain);
    let signer = match (&domain, signature.domain.is_empty()) {
        (_, true) => "a signature that cannot be read".to_owned(),
        (Some(d), false) => format!("header.d={}", shown(d)),
        (None, false) => format!("header.d={}", shown(&signature.domain)),
    };
    if let Some(why) = why {
        return Err(format!("dkim={result} ({signer}: {})", shown(why)));
    }
    let Some(domain) = domain else {
        return Err(format!("dkim=pass for {signer}, not a domain name"));
    };
    let aligned = aligned(&domain, from);
    let domain = shown(&domain);
    if !aligned {
        return Err(format!("dkim=pass for {domain}, not aligned with {from}"));
    }
    if !signature.signs_from {
        return Err(format!(
            "dkim=pass for {domain}, but the signature does not cover From (h=)"
        ));
    }
    if signature.algorithm.eq_ignore_ascii_case("rsa-sha1") {
        return Err(format!(
            "dkim=pass for {domain} with rsa-sha1, which is not accepted (RFC 8301)"
        ));
    }
    Ok(format!(
        "dkim=pass header.d={domain} header.s={} (verified by the desk)",
        shown(&signature.selector)
    ))
}

#[cfg(test)]
mod tests;
