//! May an automatic reply ever go to this mail? Loop and bounce protection.
//!
//! Checks, in order (the first that applies is the reason):
//! 1. `LoopMarker` — our own `X-Madoguchi-Loop` header came back.
//! 2. `FromDesk` — From is one of the desk's addresses.
//! 3. `Bounce` / `FeedbackReport` / `DispositionNotification` — a report (structural
//!    `multipart/report` or a part of that type, or the heuristic bounce recognised by
//!    `crate::mail`). Other report types count as `Bounce`.
//! 4. `NoFrom` — no usable From address.
//! 5. `MailerDaemon` — From is a system address (MAILER-DAEMON, postmaster, …).
//! 6. `NullSender` — `Return-Path: <>`.
//! 7. `AutoSubmitted` — `Auto-Submitted` other than `no` (RFC 3834).
//! 8. `MailingList` — `List-Id` or other list headers (before Precedence: lists also say
//!    `Precedence: list`, and the list id is the more useful reason).
//! 9. `Precedence` — bulk, junk, list, auto_reply.
//! 10. `AutoResponseSuppress` — Exchange's `X-Auto-Response-Suppress` asking for no
//!     auto-replies (`All` or `AutoReply`; the other values concern receipts and OOF).
//! 11. `VendorAutoReply` — vendor headers (`X-Autoreply`, Apple's vacation marker, …) or an
//!     auto-reply subject prefix ("Automatic reply:", "自動返信:", …).
//! 12. `NoReplyAddress` — From is a no-reply address (no-reply@, noreply@, donotreply@ …).
//!
//! Form mail (From is a configured form sender and the body parsed as a form) skips 6, 7,
//! 9–12: those headers describe the form software, and the reply goes to the address the
//! customer typed into the form. Checks 1–5 and 8 still apply.
//!
//! The per-sender hourly limit is stateful and lives in the ticket logic, not here.

use std::fmt;

use serde::Serialize;
use serde::ser::SerializeStruct;

use super::inbound::InboundMail;

/// Our loop marker: every mail the desk writes carries this header, and mail that comes back
/// with it is never answered (check 1). The one definition, for the writer and the reader.
pub const LOOP_HEADER: &str = "X-Madoguchi-Loop";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoReplyReason {
    LoopMarker,
    FromDesk,
    Bounce,
    FeedbackReport,
    DispositionNotification,
    NoFrom,
    MailerDaemon,
    NullSender,
    /// The `Auto-Submitted` value (lowercased).
    AutoSubmitted(String),
    /// The list id, when the list said it.
    MailingList(Option<String>),
    /// The `Precedence` value (lowercased).
    Precedence(String),
    /// The `X-Auto-Response-Suppress` value.
    AutoResponseSuppress(String),
    VendorAutoReply,
    NoReplyAddress,
    /// From an address staff notifications go to: an answer to one, never a customer's mail.
    FromNotifyAddress,
}

impl NoReplyReason {
    /// Stable snake_case code (stored, and printed by `mail inspect --json`).
    pub fn code(&self) -> &'static str {
        match self {
            NoReplyReason::LoopMarker => "loop_marker",
            NoReplyReason::FromDesk => "from_desk",
            NoReplyReason::Bounce => "bounce",
            NoReplyReason::FeedbackReport => "feedback_report",
            NoReplyReason::DispositionNotification => "disposition_notification",
            NoReplyReason::NoFrom => "no_from",
            NoReplyReason::MailerDaemon => "mailer_daemon",
            NoReplyReason::NullSender => "null_sender",
            NoReplyReason::AutoSubmitted(_) => "auto_submitted",
            NoReplyReason::MailingList(_) => "mailing_list",
            NoReplyReason::Precedence(_) => "precedence",
            NoReplyReason::AutoResponseSuppress(_) => "auto_response_suppress",
            NoReplyReason::VendorAutoReply => "vendor_auto_reply",
            NoReplyReason::NoReplyAddress => "no_reply_address",
            NoReplyReason::FromNotifyAddress => "from_notify_address",
        }
    }

    /// The header value behind the reason, if any.
    pub fn detail(&self) -> Option<&str> {
        match self {
            NoReplyReason::AutoSubmitted(v)
            | NoReplyReason::Precedence(v)
            | NoReplyReason::AutoResponseSuppress(v) => Some(v),
            NoReplyReason::MailingList(id) => id.as_deref(),
            _ => None,
        }
    }
}

impl fmt::Display for NoReplyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NoReplyReason::LoopMarker => f.write_str("carries our own loop marker"),
            NoReplyReason::FromDesk => f.write_str("sent from the desk's own address"),
            NoReplyReason::Bounce => f.write_str("delivery failure report (bounce)"),
            NoReplyReason::FeedbackReport => f.write_str("abuse/feedback report"),
            NoReplyReason::DispositionNotification => f.write_str("read receipt (MDN)"),
            NoReplyReason::NoFrom => f.write_str("no From address"),
            NoReplyReason::MailerDaemon => f.write_str("sent by a mail system account"),
            NoReplyReason::NullSender => f.write_str("null envelope sender (Return-Path: <>)"),
            NoReplyReason::AutoSubmitted(v) => write!(f, "Auto-Submitted: {v}"),
            NoReplyReason::MailingList(Some(id)) => write!(f, "mailing list <{id}>"),
            NoReplyReason::MailingList(None) => f.write_str("mailing list"),
            NoReplyReason::Precedence(v) => write!(f, "Precedence: {v}"),
            NoReplyReason::AutoResponseSuppress(v) => write!(f, "X-Auto-Response-Suppress: {v}"),
            NoReplyReason::VendorAutoReply => f.write_str("automatic reply (vendor marker)"),
            NoReplyReason::NoReplyAddress => f.write_str("sent from a no-reply address"),
            NoReplyReason::FromNotifyAddress => {
                f.write_str("sent from the staff notification address")
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Guard {
    /// A person wrote it: an automatic reply is allowed (subject to rate limits).
    Human,
    NoReply(NoReplyReason),
}

impl Guard {
    pub fn is_human(&self) -> bool {
        matches!(self, Guard::Human)
    }

    pub fn reason(&self) -> Option<&NoReplyReason> {
        match self {
            Guard::Human => None,
            Guard::NoReply(r) => Some(r),
        }
    }

    /// `human` or the reason code.
    pub fn code(&self) -> &'static str {
        match self {
            Guard::Human => "human",
            Guard::NoReply(r) => r.code(),
        }
    }
}

impl fmt::Display for Guard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Guard::Human => f.write_str("human"),
            Guard::NoReply(r) => write!(f, "no reply: {r}"),
        }
    }
}

/// `{"verdict": "human"}` or `{"verdict": "no_reply", "reason": CODE, "detail": …}`.
impl Serialize for Guard {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Guard::Human => {
                let mut st = s.serialize_struct("Guard", 1)?;
                st.serialize_field("verdict", "human")?;
                st.end()
            }
            Guard::NoReply(r) => {
                let mut st = s.serialize_struct("Guard", 3)?;
                st.serialize_field("verdict", "no_reply")?;
                st.serialize_field("reason", r.code())?;
                st.serialize_field("detail", &r.detail())?;
                st.end()
            }
        }
    }
}

/// The local part of an address, lowercased (the whole address when it has no `@`).
fn local_part(address: &str) -> String {
    let local = match address.rsplit_once('@') {
        Some((l, _)) => l,
        None => address,
    };
    local.trim().to_ascii_lowercase()
}

/// MAILER-DAEMON, postmaster and friends: accounts only mail systems write from.
pub fn is_system_address(address: &str) -> bool {
    let local = local_part(address);
    let squashed: String = local
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    matches!(
        squashed.as_str(),
        "mailerdaemon" | "maildaemon" | "postmaster" | "mailerdeamon"
    ) || squashed.starts_with("mailerdaemon")
}

/// Display names mail systems use for bounces.
pub fn is_system_display_name(name: &str) -> bool {
    let n = name.trim().trim_matches('"').to_ascii_lowercase();
    [
        "mail delivery subsystem",
        "mail delivery system",
        "mail delivery service",
        "mailer-daemon",
        "mailer daemon",
        "postmaster",
    ]
    .iter()
    .any(|s| n == *s || n.starts_with(&format!("{s} ")))
}

/// no-reply@, noreply@, do-not-reply@, donotreply@ … (separators and case ignored).
pub fn is_noreply_address(address: &str) -> bool {
    let local = local_part(address);
    let squashed: String = local
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    squashed.starts_with("noreply")
        || squashed.starts_with("donotreply")
        || squashed.starts_with("dontreply")
        || squashed.ends_with("noreply")
}

/// A structural or heuristic delivery failure report.
pub fn is_bounce(mail: &InboundMail) -> bool {
    matches!(report_reason(mail), Some(NoReplyReason::Bounce))
}

fn report_reason(mail: &InboundMail) -> Option<NoReplyReason> {
    let report = mail.report.as_ref()?;
    Some(match report.kind.as_str() {
        "feedback-report" => NoReplyReason::FeedbackReport,
        "disposition-notification" => NoReplyReason::DispositionNotification,
        _ => NoReplyReason::Bounce,
    })
}

/// Subject prefixes auto-responders put before the original subject. A delimiter is part of
/// each, so "自動返信メールが届かない" (a customer asking about our acknowledgement) is human.
const AUTOREPLY_SUBJECT_PREFIXES: &[&str] = &[
    "auto:",
    "auto reply:",
    "auto-reply:",
    "autoreply:",
    "auto response:",
    "auto-response:",
    "automatic reply:",
    "automatische antwort:",
    "out of office:",
    "out of office reply:",
    "out of the office:",
    "réponse automatique:",
    "abwesenheitsnotiz:",
    "自動返信:",
    "自動返信：",
    "自動応答:",
    "自動応答：",
    "【自動返信】",
    "[自動返信]",
    "［自動返信］",
    "【自動応答】",
    "[自動応答]",
    "不在通知:",
    "不在通知：",
    "【不在通知】",
];

pub fn has_autoreply_subject(subject: &str) -> bool {
    let s = subject.trim_start().to_lowercase();
    AUTOREPLY_SUBJECT_PREFIXES.iter().any(|p| s.starts_with(p))
}

fn precedence_is_automatic(value: &str) -> bool {
    matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "bulk" | "junk" | "list" | "auto_reply" | "auto-reply"
    )
}

fn suppress_asks_no_autoreply(value: &str) -> bool {
    value.split([',', ' ', ';']).any(|v| {
        let v = v.trim();
        v.eq_ignore_ascii_case("all") || v.eq_ignore_ascii_case("autoreply")
    })
}

/// Decide whether an automatic reply may go to this mail.
pub fn assess(mail: &InboundMail, desk_addresses: &[String]) -> Guard {
    match first_reason(mail, desk_addresses) {
        Some(r) => Guard::NoReply(r),
        None => Guard::Human,
    }
}

fn first_reason(mail: &InboundMail, desk_addresses: &[String]) -> Option<NoReplyReason> {
    let auto = &mail.auto;
    let is_form = mail.form.is_some();
    let from = mail
        .from
        .as_ref()
        .map(|m| m.address.trim())
        .filter(|a| !a.is_empty() && *a != "<>");

    if auto.loop_marker {
        return Some(NoReplyReason::LoopMarker);
    }
    if let Some(a) = from
        && desk_addresses
            .iter()
            .any(|d| d.trim().eq_ignore_ascii_case(a))
    {
        return Some(NoReplyReason::FromDesk);
    }
    if let Some(r) = report_reason(mail) {
        return Some(r);
    }
    let Some(from) = from else {
        return Some(NoReplyReason::NoFrom);
    };
    let from_name = mail.from.as_ref().and_then(|m| m.name.as_deref());
    if is_system_address(from) || from_name.is_some_and(is_system_display_name) {
        return Some(NoReplyReason::MailerDaemon);
    }
    if !is_form {
        if auto.null_return_path {
            return Some(NoReplyReason::NullSender);
        }
        if let Some(v) = &auto.auto_submitted {
            let first = v.split(';').next().unwrap_or("").trim();
            if !first.is_empty() && !first.eq_ignore_ascii_case("no") {
                return Some(NoReplyReason::AutoSubmitted(v.clone()));
            }
        }
    }
    if auto.list_id.is_some() || auto.list_headers {
        return Some(NoReplyReason::MailingList(auto.list_id.clone()));
    }
    if is_form {
        return None;
    }
    if let Some(p) = &auto.precedence
        && precedence_is_automatic(p)
    {
        return Some(NoReplyReason::Precedence(p.clone()));
    }
    if let Some(v) = &auto.auto_response_suppress
        && suppress_asks_no_autoreply(v)
    {
        return Some(NoReplyReason::AutoResponseSuppress(v.clone()));
    }
    if auto.vendor_autoreply || has_autoreply_subject(&mail.subject) {
        return Some(NoReplyReason::VendorAutoReply);
    }
    if is_noreply_address(from) {
        return Some(NoReplyReason::NoReplyAddress);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::form::{FormLabels, parse_form};
    use crate::core::inbound::{AutoHeaders, DeliveryReport, Mailbox};

    fn desk() -> Vec<String> {
        vec!["support@example.co.jp".into()]
    }

    fn from(addr: &str) -> InboundMail {
        InboundMail {
            from: Some(Mailbox {
                name: None,
                address: addr.into(),
            }),
            subject: "質問".into(),
            ..InboundMail::default()
        }
    }

    fn with_auto(auto: AutoHeaders) -> InboundMail {
        InboundMail {
            auto,
            ..from("user@customer.jp")
        }
    }

    fn code(mail: &InboundMail) -> &'static str {
        assess(mail, &desk()).code()
    }

    #[test]
    fn plain_mail_is_human() {
        assert_eq!(assess(&from("user@customer.jp"), &desk()), Guard::Human);
    }

    #[test]
    fn auto_submitted_no_is_human() {
        let m = with_auto(AutoHeaders {
            auto_submitted: Some("no".into()),
            ..AutoHeaders::default()
        });
        assert!(assess(&m, &desk()).is_human());
        let m = with_auto(AutoHeaders {
            auto_submitted: Some("auto-replied; owner-email=x@y".into()),
            ..AutoHeaders::default()
        });
        assert_eq!(
            assess(&m, &desk()),
            Guard::NoReply(NoReplyReason::AutoSubmitted(
                "auto-replied; owner-email=x@y".into()
            ))
        );
    }

    #[test]
    fn each_reason() {
        let mut m = from("Support@Example.co.jp");
        assert_eq!(code(&m), "from_desk");
        m = from("MAILER-DAEMON@mx.example.net");
        assert_eq!(code(&m), "mailer_daemon");
        m = from("MAILER-DAEMON");
        assert_eq!(code(&m), "mailer_daemon");
        m = from("post_master@vtext.example.com");
        assert_eq!(code(&m), "mailer_daemon");
        m = InboundMail::default();
        assert_eq!(code(&m), "no_from");
        m = from("no-reply@sns.amazonaws.com");
        assert_eq!(code(&m), "no_reply_address");
        m = with_auto(AutoHeaders {
            loop_marker: true,
            ..AutoHeaders::default()
        });
        assert_eq!(code(&m), "loop_marker");
        m = with_auto(AutoHeaders {
            null_return_path: true,
            ..AutoHeaders::default()
        });
        assert_eq!(code(&m), "null_sender");
        m = with_auto(AutoHeaders {
            precedence: Some("bulk".into()),
            ..AutoHeaders::default()
        });
        assert_eq!(code(&m), "precedence");
        m = with_auto(AutoHeaders {
            precedence: Some("first-class".into()),
            ..AutoHeaders::default()
        });
        assert_eq!(code(&m), "human");
        m = with_auto(AutoHeaders {
            auto_response_suppress: Some("OOF, AutoReply".into()),
            ..AutoHeaders::default()
        });
        assert_eq!(code(&m), "auto_response_suppress");
        m = with_auto(AutoHeaders {
            auto_response_suppress: Some("RN, NRN".into()),
            ..AutoHeaders::default()
        });
        assert_eq!(code(&m), "human");
        m = with_auto(AutoHeaders {
            vendor_autoreply: true,
            ..AutoHeaders::default()
        });
        assert_eq!(code(&m), "vendor_auto_reply");
    }

    #[test]
    fn list_beats_precedence() {
        let m = with_auto(AutoHeaders {
            list_id: Some("ksummit-discuss.lists.linuxfoundation.org".into()),
            precedence: Some("list".into()),
            ..AutoHeaders::default()
        });
        let g = assess(&m, &desk());
        assert_eq!(
            g,
            Guard::NoReply(NoReplyReason::MailingList(Some(
                "ksummit-discuss.lists.linuxfoundation.org".into()
            )))
        );
        assert_eq!(
            g.to_string(),
            "no reply: mailing list <ksummit-discuss.lists.linuxfoundation.org>"
        );
    }

    #[test]
    fn reports() {
        let mut m = from("user@customer.jp");
        m.report = Some(DeliveryReport {
            kind: "delivery-status".into(),
            ..DeliveryReport::default()
        });
        assert_eq!(code(&m), "bounce");
        assert!(is_bounce(&m));
        m.report = Some(DeliveryReport {
            kind: "feedback-report".into(),
            ..DeliveryReport::default()
        });
        assert_eq!(code(&m), "feedback_report");
        m.report = Some(DeliveryReport {
            kind: "disposition-notification".into(),
            ..DeliveryReport::default()
        });
        assert_eq!(code(&m), "disposition_notification");
    }

    #[test]
    fn autoreply_subjects() {
        for s in [
            "Automatic reply: 質問",
            "自動返信：お問い合わせ",
            "【自動返信】受付",
        ] {
            let mut m = from("a@b.jp");
            m.subject = s.into();
            assert_eq!(code(&m), "vendor_auto_reply", "{s}");
        }
        for s in ["自動返信メールが届きません", "Re: auto reply settings"] {
            let mut m = from("a@b.jp");
            m.subject = s.into();
            assert_eq!(code(&m), "human", "{s}");
        }
    }

    #[test]
    fn form_mail_ignores_form_software_headers() {
        let mut m = from("no-reply@forms.example.co.jp");
        m.auto = AutoHeaders {
            auto_submitted: Some("auto-generated".into()),
            precedence: Some("bulk".into()),
            null_return_path: true,
            ..AutoHeaders::default()
        };
        m.form = parse_form("【お問合せ内容】教えてください\n", &FormLabels::default());
        assert!(assess(&m, &desk()).is_human());
        m.auto.loop_marker = true;
        assert_eq!(code(&m), "loop_marker");
    }

    #[test]
    fn serializes_verdict() {
        let g = Guard::NoReply(NoReplyReason::Precedence("bulk".into()));
        assert_eq!(
            serde_json::to_string(&g).expect("json"),
            r#"{"verdict":"no_reply","reason":"precedence","detail":"bulk"}"#
        );
        assert_eq!(
            serde_json::to_string(&Guard::Human).expect("json"),
            r#"{"verdict":"human"}"#
        );
    }
}
