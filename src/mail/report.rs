//! Delivery reports: RFC 3464 DSNs, ARF feedback reports, MDNs, and bounces that follow no
//! RFC (recognised by sender and subject, kind `heuristic`).
//!
//! Heuristic rule: a bounce when From is a mail-system account (MAILER-DAEMON, postmaster,
//! "Mail Delivery Subsystem" …), or when the subject carries a bounce phrase **and** something
//! else agrees: a null Return-Path, Auto-Submitted, a no-reply sender, an attached original
//! (message/rfc822, text/rfc822-headers) or DSN wording in the body. The second signal keeps a
//! customer's "配信エラーについて" (a question about errors) a human mail. Hotmail's JMRP
//! complaints ("complaint about message from …" with the original attached) are
//! `feedback-report`.

use mail_parser::{Message, MessageParser, MimeHeaders, PartType};

use crate::core::guard::{is_noreply_address, is_system_address, is_system_display_name};
use crate::core::inbound::{AutoHeaders, DeliveryReport, Mailbox};

/// Lowercased English and Japanese phrases bounce subjects use.
const BOUNCE_SUBJECTS: &[&str] = &[
    "undeliverable",
    "undelivered mail",
    "undelivered message",
    "delivery status notification",
    "returned mail",
    "failure notice",
    "mail delivery failed",
    "delivery failure",
    "delivery failed",
    "delivery has failed",
    "non-delivery",
    "nondeliverable",
    "non deliverable",
    "not delivered",
    "could not be delivered",
    "message delivery failure",
    "mail system error",
    "warning: could not send",
    "returned to sender",
    "delivery notification",
    "delivery status",
    "配信不能",
    "配送不能",
    "配信エラー",
    "配送エラー",
    "配信失敗",
    "配送失敗",
    "送信エラー",
    "メールエラー",
    "エラー通知",
    "不達",
    "宛先不明",
    "届きませんでした",
];

/// Lowercased phrases in a bounce's text that corroborate a bounce subject.
const BOUNCE_BODY: &[&str] = &[
    "final-recipient:",
    "diagnostic-code:",
    "status: 5.",
    "status: 4.",
    "could not be delivered",
    "couldn't be delivered",
    "was not delivered",
    "delivery has failed",
    "delivery to the following",
    "user unknown",
    "unknown user",
    "no such user",
    "mailbox unavailable",
    "mailbox full",
    "mailbox is full",
    "permanent fatal error",
    "permanent error",
    "returned to sender",
    "550 5.",
    "550-5.",
    "配信できません",
    "配信できませんでした",
    "送信できませんでした",
    "届けることができません",
    "宛先不明",
    "存在しません",
];

fn part_type<'x>(part: &impl MimeHeaders<'x>) -> String {
    match part.content_type() {
        Some(ct) => format!(
            "{}/{}",
            ct.ctype().to_ascii_lowercase(),
            ct.subtype().unwrap_or("").to_ascii_lowercase()
        ),
        None => String::new(),
    }
}

/// Report kind of a part's own content type.
fn part_report_kind(ctype: &str) -> Option<&'static str> {
    match ctype {
        "message/delivery-status" | "message/global-delivery-status" => Some("delivery-status"),
        "message/feedback-report" => Some("feedback-report"),
        "message/disposition-notification" | "message/global-disposition-notification" => {
            Some("disposition-notification")
        }
        _ => None,
    }
}

/// `Name: value` lines with folded continuations joined.
fn field_lines(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in text.lines() {
        if line.starts_with([' ', '\t'])
            && let Some(last) = out.last_mut()
            && !last.is_empty()
        {
            last.push(' ');
            last.push_str(line.trim());
            continue;
        }
        out.push(line.trim_end().to_owned());
    }
    out
}

fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let (n, v) = line.split_once(':')?;
    n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
}

/// `rfc822; User@Example.com` → `user@example.com`.
fn recipient(value: &str) -> Option<String> {
    let v = value.split_once(';').map_or(value, |(_, a)| a);
    let v = v
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim();
    (v.contains('@')).then(|| v.to_ascii_lowercase())
}

/// `<id@host> (comment)` → `id@host`.
pub(crate) fn clean_id(value: &str) -> Option<String> {
    let v = value.trim();
    let id = match (v.find('<'), v.find('>')) {
        (Some(a), Some(b)) if b > a => &v[a + 1..b],
        _ => v.split_whitespace().next().unwrap_or(""),
    };
    let id = id.trim().trim_matches(|c| c == '<' || c == '>');
    (!id.is_empty()).then(|| id.to_owned())
}

fn first_status(value: &str) -> Option<String> {
    let code = value.split_whitespace().next()?;
    let ok = code.split('.').count() == 3 && code.chars().all(|c| c.is_ascii_digit() || c == '.');
    ok.then(|| code.to_owned())
}

/// Fill a report from the fields of a delivery-status / MDN / ARF part.
fn read_report_fields(text: &str, report: &mut DeliveryReport) {
    // Per-recipient blocks are separated by blank lines.
    let lines = field_lines(text);
    for block in lines.split(|l| l.trim().is_empty()) {
        let mut final_rcpt = None;
        let mut original_rcpt = None;
        let mut action = String::new();
        for line in block {
            if let Some(v) = field(line, "Final-Recipient") {
                final_rcpt = final_rcpt.or_else(|| recipient(v));
            } else if let Some(v) = field(line, "Original-Recipient") {
                original_rcpt = original_rcpt.or_else(|| recipient(v));
            } else if let Some(v) = field(line, "Action") {
                action = v.to_ascii_lowercase();
            } else if let Some(v) = field(line, "Status") {
                if report.status.is_none() {
                    report.status = first_status(v);
                }
            } else if let Some(v) =
                field(line, "Original-Message-ID").or_else(|| field(line, "X-Original-Message-ID"))
                && report.original_message_id.is_none()
            {
                report.original_message_id = clean_id(v);
            }
        }
        let failed = action.is_empty() || action.starts_with("failed");
        if failed && let Some(r) = final_rcpt.or(original_rcpt) {
            push_unique(&mut report.failed_recipients, r);
        }
    }
}

fn push_unique(list: &mut Vec<String>, value: String) {
    if !list.contains(&value) {
        list.push(value);
    }
}

/// Message-ID of the reported original: an attached message, or attached headers.
fn attached_original_id(msg: &Message<'_>) -> Option<String> {
    for part in msg.parts.iter().skip(1) {
        if let PartType::Message(inner) = &part.body
            && let Some(id) = inner.message_id().and_then(clean_id)
        {
            return Some(id);
        }
        let ctype = part_type(part);
        let headers_only = matches!(
            ctype.as_str(),
            "text/rfc822-headers" | "message/rfc822-headers" | "message/rfc822" | "message/global"
        ) || ctype == "message/global-headers";
        if headers_only && !matches!(part.body, PartType::Message(_)) {
            let bytes = part.contents();
            if let Some(h) = MessageParser::default().parse_headers(bytes)
                && let Some(id) = h.message_id().and_then(clean_id)
            {
                return Some(id);
            }
        }
    }
    None
}

fn has_attached_original(msg: &Message<'_>) -> bool {
    msg.parts.iter().skip(1).any(|p| {
        matches!(p.body, PartType::Message(_))
            || matches!(
                part_type(p).as_str(),
                "text/rfc822-headers" | "message/rfc822-headers" | "message/rfc822"
            )
    })
}

/// The last `Message-ID:` line in the text (original headers pasted into a bounce come after
/// the notice, also when a person forwards a bounce inline), skipping the bounce's own id.
fn text_original_id(text: &str, own_id: Option<&str>) -> Option<String> {
    field_lines(text).iter().rev().find_map(|line| {
        let l = line.trim_start_matches(|c: char| c == '>' || c.is_whitespace());
        let id = field(l, "Message-ID").and_then(clean_id)?;
        (Some(id.as_str()) != own_id).then_some(id)
    })
}

/// Recipients and status a non-RFC bounce states in its text.
fn read_text_hints(text: &str, report: &mut DeliveryReport) {
    for line in field_lines(text) {
        let l = line.trim_start_matches(|c: char| c == '>' || c.is_whitespace());
        if let Some(v) = field(l, "Final-Recipient") {
            if let Some(r) = recipient(v) {
                push_unique(&mut report.failed_recipients, r);
            }
        } else if let Some(v) = field(l, "Status") {
            if report.status.is_none() {
                report.status = first_status(v);
            }
        } else if let Some(rest) = l.strip_prefix('<')
            && let Some((addr, _)) = rest.split_once(">:")
            && addr.contains('@')
            && !addr.contains(char::is_whitespace)
        {
            // Postfix/qmail: "<user@example.com>: host … said: 550 …"
            push_unique(&mut report.failed_recipients, addr.to_ascii_lowercase());
        }
    }
}

fn subject_says_bounce(subject: &str) -> bool {
    let s = subject.to_lowercase();
    BOUNCE_SUBJECTS.iter().any(|p| s.contains(p))
}

fn body_says_bounce(text: &str) -> bool {
    let t = text.to_lowercase();
    BOUNCE_BODY.iter().any(|p| t.contains(p))
}

pub(crate) struct Context<'a> {
    pub from: Option<&'a Mailbox>,
    /// The From field as written: `MAILER-DAEMON <>` has no address but still says who.
    pub from_raw: Option<&'a str>,
    pub subject: &'a str,
    pub text: &'a str,
    pub auto: &'a AutoHeaders,
    pub own_id: Option<&'a str>,
}

/// The report this message is, if it is one.
pub(crate) fn extract(msg: &Message<'_>, cx: &Context<'_>) -> Option<DeliveryReport> {
    let root_type = msg.parts.first().map(part_type).unwrap_or_default();
    let declared = if root_type == "multipart/report" {
        msg.parts.first().and_then(|p| {
            p.content_type()
                .and_then(|ct| ct.attribute("report-type"))
                .map(|k| k.trim().to_ascii_lowercase())
        })
    } else {
        None
    };
    let parts_kind = msg
        .parts
        .iter()
        .skip(1)
        .find_map(|p| part_report_kind(&part_type(p)));

    let mut report = DeliveryReport::default();
    if declared.is_some() || parts_kind.is_some() || root_type == "multipart/report" {
        report.kind = declared
            .filter(|k| !k.is_empty())
            .or(parts_kind.map(str::to_owned))
            .unwrap_or_else(|| "delivery-status".to_owned());
        for part in msg.parts.iter().skip(1) {
            if part_report_kind(&part_type(part)).is_some() {
                read_report_fields(&String::from_utf8_lossy(part.contents()), &mut report);
            }
        }
        if report.original_message_id.is_none() {
            report.original_message_id = attached_original_id(msg);
        }
        return Some(report);
    }

    let subject_lower = cx.subject.trim().to_lowercase();
    let has_original = has_attached_original(msg);
    if subject_lower.starts_with("complaint about message from") && has_original {
        report.kind = "feedback-report".to_owned();
        report.original_message_id = attached_original_id(msg);
        return Some(report);
    }

    let from_system = cx.from.is_some_and(|m| {
        is_system_address(&m.address) || m.name.as_deref().is_some_and(is_system_display_name)
    }) || cx.from_raw.is_some_and(|raw| {
        let r = raw.to_ascii_lowercase();
        [
            "mailer-daemon",
            "mailer_daemon",
            "postmaster",
            "mail delivery sub",
            "mail delivery sys",
        ]
        .iter()
        .any(|s| r.contains(s))
    });
    let corroborated = || {
        cx.auto.null_return_path
            || cx
                .auto
                .auto_submitted
                .as_deref()
                .is_some_and(|v| !v.trim().to_ascii_lowercase().starts_with("no"))
            || cx.from.is_some_and(|m| is_noreply_address(&m.address))
            || has_original
            || body_says_bounce(cx.text)
    };
    if from_system || (subject_says_bounce(cx.subject) && corroborated()) {
        report.kind = "heuristic".to_owned();
        report.original_message_id =
            attached_original_id(msg).or_else(|| text_original_id(cx.text, cx.own_id));
        read_text_hints(cx.text, &mut report);
        return Some(report);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_fields() {
        let text = "Reporting-MTA: dns; mx.example.jp\n\nFinal-Recipient: rfc822; A@Example.COM\n\
                    Action: failed\nStatus: 5.1.1 (user unknown)\n\n\
                    Final-Recipient: rfc822; b@example.com\nAction: delayed\nStatus: 4.4.1\n";
        let mut r = DeliveryReport::default();
        read_report_fields(text, &mut r);
        assert_eq!(r.failed_recipients, vec!["a@example.com".to_owned()]);
        assert_eq!(r.status.as_deref(), Some("5.1.1"));
    }

    #[test]
    fn ids_and_hints() {
        assert_eq!(clean_id(" <a.b@c> (x)"), Some("a.b@c".to_owned()));
        assert_eq!(clean_id("a@b"), Some("a@b".to_owned()));
        assert_eq!(clean_id(" <> "), None);
        let text = "<kijitora@example.com>: host mx said: 550 no\n> Message-ID: <bounce@x>\n\
                    Message-Id: <t000001.abc@madoguchi.example.co.jp>\n> Message-ID: <own@x>\n";
        assert_eq!(
            text_original_id(text, Some("own@x")).as_deref(),
            Some("t000001.abc@madoguchi.example.co.jp")
        );
        let mut r = DeliveryReport::default();
        read_text_hints(text, &mut r);
        assert_eq!(r.failed_recipients, vec!["kijitora@example.com".to_owned()]);
    }

    #[test]
    fn part_types_are_lowercased() {
        let msg = MessageParser::default()
            .parse(b"Content-Type: Text/Plain\n\nx")
            .expect("parse");
        assert_eq!(part_type(&msg), "text/plain");
    }
}
