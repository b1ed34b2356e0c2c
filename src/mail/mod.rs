//! Raw message bytes → [`InboundMail`], the core's view of a message.
//!
//! Built on mail-parser (with `full_encoding`), plus repairs for Japanese mail it cannot read
//! alone (see `decode`); `format=flowed` text decoded (`flowed`) and HTML-only mail converted
//! to text by our own converter (`html`). No file or network I/O. Never fails and never panics: whatever the
//! bytes are, the result is an `InboundMail` whose `defects` say what was wrong (a panic inside
//! the parser is caught and becomes a defect too).

mod decode;
pub(crate) mod flowed;
pub(crate) mod html;
mod report;

#[cfg(test)]
mod corpus_tests;
#[cfg(test)]
mod tests;

use std::panic::{AssertUnwindSafe, catch_unwind};

use chrono::{DateTime, FixedOffset, NaiveDate, TimeZone};
use mail_parser::{
    Address, Header, HeaderName, HeaderValue, Message, MessageParser, MessagePart, MimeHeaders,
    PartType,
};
use sha2::{Digest, Sha256};

use crate::core::form::{FormLabels, parse_form};
use crate::core::inbound::{Attachment, AutoHeaders, InboundMail, Mailbox};
use decode::{Charset, FieldKind};

/// Longest text kept in `InboundMail::text` (the raw message is stored whole elsewhere).
pub const MAX_TEXT_BYTES: usize = 256 * 1024;

pub use crate::core::guard::LOOP_HEADER;

/// How the defect begins when the parser panicked on a message (the panic is caught and the
/// message kept as raw text). Tests look for it: a caught panic must not pass as a read.
pub const PARSER_FAILED: &str = "mail parser failed";

/// A read message and the decoded attachment bodies, parallel to `mail.attachments`, for the
/// shell to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadMessage {
    pub mail: InboundMail,
    pub attachment_bodies: Vec<Vec<u8>>,
}

/// What reading needs from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct ReadOptions<'a> {
    /// Addresses the web forms send from (compared case-insensitively).
    pub form_senders: &'a [String],
    pub form_labels: &'a FormLabels,
}

/// Read a message with the default form labels.
pub fn read_message(raw: &[u8], form_senders: &[String]) -> ReadMessage {
    let labels = FormLabels::default();
    read_message_with(
        raw,
        &ReadOptions {
            form_senders,
            form_labels: &labels,
        },
    )
}

pub fn read_message_with(raw: &[u8], options: &ReadOptions<'_>) -> ReadMessage {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return ReadMessage {
            mail: InboundMail {
                defects: vec!["empty message".into(), "no From address".into()],
                ..InboundMail::default()
            },
            attachment_bodies: Vec::new(),
        };
    }
    match catch_unwind(AssertUnwindSafe(|| read_parsed(raw, options))) {
        Ok(read) => read,
        Err(panic) => {
            let why = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown".into());
            ReadMessage {
                mail: InboundMail {
                    text: cap_text(normalize_newlines(&String::from_utf8_lossy(raw))).0,
                    defects: vec![
                        format!("{PARSER_FAILED} ({why}); kept as raw text"),
                        "no From address".into(),
                    ],
                    ..InboundMail::default()
                },
                attachment_bodies: Vec::new(),
            }
        }
    }
}

fn read_parsed(raw: &[u8], options: &ReadOptions<'_>) -> ReadMessage {
    let Some(msg) = MessageParser::default().parse(raw) else {
        let (text, truncated) = cap_text(normalize_newlines(&String::from_utf8_lossy(raw)));
        let mut defects = vec!["not a MIME message: no header fields".to_owned()];
        if let Some(d) = truncated {
            defects.push(d);
        }
        defects.push("no From address".into());
        return ReadMessage {
            mail: InboundMail {
                text,
                defects,
                ..InboundMail::default()
            },
            attachment_bodies: Vec::new(),
        };
    };
    let Some(root) = msg.parts.first() else {
        return ReadMessage {
            mail: InboundMail {
                defects: vec!["not a MIME message: no parts".into()],
                ..InboundMail::default()
            },
            attachment_bodies: Vec::new(),
        };
    };

    let mut defects = Vec::new();
    let headers = root.headers.as_slice();
    let hint = decode::charset_hint(root);
    let fields = Fields {
        raw: &msg.raw_message,
        headers,
        hint,
    };

    if !headers.iter().any(|h| {
        matches!(
            h.name,
            HeaderName::From
                | HeaderName::To
                | HeaderName::Subject
                | HeaderName::Date
                | HeaderName::MessageId
                | HeaderName::Received
                | HeaderName::MimeVersion
                | HeaderName::ReturnPath
                | HeaderName::ContentType
        )
    }) {
        defects.push("not a MIME message: no standard header fields".into());
    }

    let message_id = msg.message_id().and_then(report::clean_id);
    if message_id.is_none() {
        defects.push("no Message-ID".into());
    }

    let from_boxes = fields.mailboxes(HeaderName::From);
    let from = from_boxes.first().cloned();
    if from.is_none() {
        let present = headers.iter().any(|h| h.name == HeaderName::From);
        defects.push(if present {
            "From header without an address".into()
        } else {
            "no From address".into()
        });
    }
    let reply_to = fields.mailboxes(HeaderName::ReplyTo).into_iter().next();
    let to = fields.mailboxes(HeaderName::To);
    let cc = fields.mailboxes(HeaderName::Cc);
    let subject = fields.subject();
    let date = match msg.date() {
        Some(d) => {
            let converted = to_chrono(d);
            if converted.is_none() {
                defects.push("Date header out of range".into());
            }
            converted
        }
        None => {
            if headers.iter().any(|h| h.name == HeaderName::Date) {
                defects.push("unparseable Date header".into());
            }
            None
        }
    };

    let auto = auto_headers(&fields);
    let auth_results = fields.raw_values("Authentication-Results");
    let (text, original) = body_text(&msg, &mut defects);
    let (text, truncated) = cap_text_of(text, original);
    if let Some(d) = truncated {
        defects.push(d);
    }

    let (attachments, attachment_bodies) = attachments(&msg, hint, &mut defects);

    let damaged = msg.parts.iter().filter(|p| p.is_encoding_problem).count();
    if damaged > 0 {
        defects.push(format!("{damaged} damaged MIME part(s), kept as text"));
    }

    let from_raw = fields.raw_text("From");
    let report = report::extract(
        &msg,
        &report::Context {
            from: from.as_ref(),
            from_raw: from_raw.as_deref(),
            subject: &subject,
            text: &text,
            auto: &auto,
            own_id: message_id.as_deref(),
        },
    );

    let in_reply_to = ids(msg.in_reply_to());
    let references = ids(msg.references());

    let form = match &from {
        Some(f)
            if options
                .form_senders
                .iter()
                .any(|s| s.trim().eq_ignore_ascii_case(&f.address)) =>
        {
            let form = parse_form(&text, options.form_labels);
            if form.is_none() {
                defects.push("mail from a form sender without 【label】 fields".into());
            }
            form
        }
        _ => None,
    };

    ReadMessage {
        mail: InboundMail {
            message_id,
            in_reply_to,
            references,
            from,
            reply_to,
            to,
            cc,
            subject,
            date,
            text,
            auto,
            report,
            attachments,
            form,
            auth_results,
            defects,
        },
        attachment_bodies,
    }
}

/// Header access with the charset repairs of `decode`.
struct Fields<'m, 'x> {
    raw: &'m [u8],
    headers: &'m [Header<'x>],
    hint: Option<Charset>,
}

impl<'x> Fields<'_, 'x> {
    fn raw_value(&self, h: &Header<'x>) -> Option<&[u8]> {
        self.raw.get(h.offset_start as usize..h.offset_end as usize)
    }

    /// The value of the first header with this name (parsed by mail-parser, or repaired).
    fn value(&self, name: HeaderName<'_>, kind: FieldKind) -> Option<HeaderValue<'static>> {
        let h = self.headers.iter().find(|h| h.name == name)?;
        self.raw_value(h)
            .and_then(|raw| decode::repaired_field(raw, self.hint, kind))
            .or_else(|| Some(h.value.clone().into_owned()))
    }

    /// All mailboxes of every header with this name, addresses lowercased.
    fn mailboxes(&self, name: HeaderName<'_>) -> Vec<Mailbox> {
        let mut out = Vec::new();
        for h in self.headers.iter().filter(|h| h.name == name) {
            let value = self
                .raw_value(h)
                .and_then(|raw| decode::repaired_field(raw, self.hint, FieldKind::Address))
                .unwrap_or_else(|| h.value.clone().into_owned());
            if let HeaderValue::Address(addr) = value {
                push_mailboxes(&addr, &mut out);
            }
        }
        out
    }

    fn subject(&self) -> String {
        let text = match self.value(HeaderName::Subject, FieldKind::Text) {
            Some(HeaderValue::Text(t)) => t.into_owned(),
            Some(HeaderValue::TextList(l)) => l.join(" "),
            _ => String::new(),
        };
        clean_line(&text)
    }

    /// Raw header text (unfolded, trimmed) of the first header with this name,
    /// compared case-insensitively.
    fn raw_text(&self, name: &str) -> Option<String> {
        let h = self
            .headers
            .iter()
            .find(|h| h.name.as_str().eq_ignore_ascii_case(name))?;
        let raw = self.raw_value(h)?;
        Some(clean_line(&String::from_utf8_lossy(raw)))
    }

    /// The value of every header with this name (compared case-insensitively), in message
    /// order (topmost first): unfolded (line breaks removed, the whitespace after them kept),
    /// trimmed, bytes that are not UTF-8 replaced; nothing else changed.
    fn raw_values(&self, name: &str) -> Vec<String> {
        self.headers
            .iter()
            .filter(|h| h.name.as_str().eq_ignore_ascii_case(name))
            .filter_map(|h| self.raw_value(h))
            .map(|raw| {
                String::from_utf8_lossy(raw)
                    .chars()
                    .filter(|&c| c != '\r' && c != '\n')
                    .collect::<String>()
                    .trim()
                    .to_owned()
            })
            .collect()
    }

    fn has(&self, name: &str) -> bool {
        self.headers
            .iter()
            .any(|h| h.name.as_str().eq_ignore_ascii_case(name))
    }
}

fn push_mailboxes(addr: &Address<'_>, out: &mut Vec<Mailbox>) {
    for a in addr.iter() {
        let Some(address) = a
            .address
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        else {
            continue;
        };
        let name = a.name.as_deref().map(clean_line).filter(|n| !n.is_empty());
        out.push(Mailbox {
            name,
            address: address.to_lowercase(),
        });
    }
}

/// One line of header text: folds, tabs and control characters become single spaces.
fn clean_line(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut space = false;
    for c in s.chars() {
        if c.is_control() || c == ' ' {
            space = true;
        } else {
            if space && !out.is_empty() {
                out.push(' ');
            }
            space = false;
            out.push(c);
        }
    }
    out
}

fn ids(value: &HeaderValue<'_>) -> Vec<String> {
    match value {
        HeaderValue::Text(t) => report::clean_id(t).into_iter().collect(),
        HeaderValue::TextList(l) => l.iter().filter_map(|t| report::clean_id(t)).collect(),
        _ => Vec::new(),
    }
}

fn to_chrono(d: &mail_parser::DateTime) -> Option<DateTime<FixedOffset>> {
    let secs = i32::from(d.tz_hour) * 3600 + i32::from(d.tz_minute) * 60;
    let offset = FixedOffset::east_opt(if d.tz_before_gmt { -secs } else { secs })?;
    let naive = NaiveDate::from_ymd_opt(i32::from(d.year), u32::from(d.month), u32::from(d.day))?
        .and_hms_opt(u32::from(d.hour), u32::from(d.minute), u32::from(d.second))?;
    offset.from_local_datetime(&naive).single()
}

/// `<list.example.org>` or `Name <list.example.org>` → `list.example.org`.
fn list_id(value: &str) -> Option<String> {
    let v = match (value.rfind('<'), value.rfind('>')) {
        (Some(a), Some(b)) if b > a => &value[a + 1..b],
        _ => value,
    };
    let v = v.trim();
    (!v.is_empty()).then(|| v.to_ascii_lowercase())
}

const LIST_HEADERS: &[&str] = &[
    "List-Unsubscribe",
    "List-Post",
    "List-Help",
    "List-Subscribe",
    "List-Owner",
    "List-Archive",
    "Mailing-List",
    "X-Mailing-List",
    "X-MLServer",
    "X-ML-Name",
];

const VENDOR_AUTOREPLY_HEADERS: &[&str] = &[
    "X-Autoreply",
    "X-Autorespond",
    "X-Autoresponse",
    "X-Auto-Reply",
    "X-Auto-Reply-From",
    "X-Autoreply-From",
    "X-Mail-Autoreply",
    "X-Autogenerated",
];

fn auto_headers(f: &Fields<'_, '_>) -> AutoHeaders {
    let lower = |s: String| s.to_ascii_lowercase();
    let return_path = f.raw_text("Return-Path");
    AutoHeaders {
        auto_submitted: f.raw_text("Auto-Submitted").map(lower),
        precedence: f.raw_text("Precedence").map(lower),
        auto_response_suppress: f.raw_text("X-Auto-Response-Suppress"),
        list_id: f.raw_text("List-Id").and_then(|v| list_id(&v)),
        list_headers: LIST_HEADERS.iter().any(|h| f.has(h)),
        loop_marker: f.has(LOOP_HEADER),
        vendor_autoreply: VENDOR_AUTOREPLY_HEADERS.iter().any(|h| f.has(h))
            || f.raw_text("X-Apple-Action")
                .is_some_and(|v| v.to_ascii_lowercase().contains("vacation")),
        null_return_path: return_path.is_some_and(|rp| {
            rp.chars()
                .filter(|c| !c.is_whitespace())
                .collect::<String>()
                == "<>"
        }),
    }
}

fn normalize_newlines(s: &str) -> String {
    s.replace("\r\n", "\n").replace('\r', "\n")
}

/// Cut at a character boundary at most [`MAX_TEXT_BYTES`] long; the defect says so.
fn cap_text(text: String) -> (String, Option<String>) {
    let original = text.len();
    cap_text_of(text, original)
}

/// [`cap_text`] for a text read from parts of `original` bytes in all (each part was read only
/// up to [`decode::PART_TEXT_LIMIT`]).
fn cap_text_of(mut text: String, original: usize) -> (String, Option<String>) {
    if text.len() <= MAX_TEXT_BYTES && original <= text.len().max(decode::PART_TEXT_LIMIT) {
        return (text, None);
    }
    let mut cut = MAX_TEXT_BYTES.min(text.len());
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text.truncate(cut);
    (
        text,
        Some(format!("text truncated to {cut} of {original} bytes")),
    )
}

/// text/plain preferred (`format=flowed` decoded); HTML-only mail converted to text. With the
/// text, the length of the parts it was read from.
fn body_text(msg: &Message<'_>, defects: &mut Vec<String>) -> (String, usize) {
    let length = |ids: &[u32]| -> usize {
        ids.iter()
            .filter_map(|&id| msg.parts.get(id as usize))
            .map(decode::part_text_len)
            .sum()
    };
    let render = |ids: &[u32], defects: &mut Vec<String>| -> Vec<String> {
        ids.iter()
            .filter_map(|&id| msg.parts.get(id as usize))
            .filter_map(|part| {
                let text = decode::part_text(msg, part, defects)?;
                Some(match &part.body {
                    PartType::Html(_) => html::to_text(&text),
                    _ => match flowed_delsp(part) {
                        Some(delsp) => flowed::decode(&normalize_newlines(&text), delsp),
                        None => text,
                    },
                })
            })
            .collect()
    };
    let mut pieces = render(&msg.text_body, defects);
    let mut original = length(&msg.text_body);
    if pieces.iter().all(|p| p.trim().is_empty()) && !msg.html_body.is_empty() {
        // An empty text/plain beside a real HTML body: the HTML is what was written.
        let html = render(&msg.html_body, &mut Vec::new());
        if html.iter().any(|p| !p.trim().is_empty()) {
            pieces = html;
            original = length(&msg.html_body);
        }
    }
    (normalize_newlines(&pieces.join("\n")), original)
}

/// `Some(DelSp)` for a `format=flowed` text part (RFC 3676), `None` for any other.
fn flowed_delsp(part: &MessagePart<'_>) -> Option<bool> {
    let ct = part.content_type()?;
    let is = |attr: &str, value: &str| {
        ct.attribute(attr)
            .is_some_and(|v| v.trim().trim_matches('"').eq_ignore_ascii_case(value))
    };
    is("format", "flowed").then(|| is("delsp", "yes"))
}

fn mime_type(part: &MessagePart<'_>) -> String {
    match part.content_type() {
        Some(ct) => {
            let base = format!(
                "{}/{}",
                ct.ctype().to_ascii_lowercase(),
                ct.subtype().unwrap_or("octet-stream").to_ascii_lowercase()
            );
            match ct.attribute("charset") {
                Some(cs) if base.starts_with("text/") => {
                    format!("{base}; charset={}", cs.trim().to_ascii_lowercase())
                }
                _ => base,
            }
        }
        None if matches!(part.body, PartType::Message(_)) => "message/rfc822".into(),
        None => "text/plain".into(),
    }
}

/// The attachment's file name, repairing raw 8-bit or JIS bytes in its headers.
fn attachment_name(raw: &[u8], part: &MessagePart<'_>, hint: Option<Charset>) -> Option<String> {
    let fields = Fields {
        raw,
        headers: &part.headers,
        hint,
    };
    let from = |name: HeaderName<'_>, attr: &str| match fields.value(name, FieldKind::ContentType) {
        Some(HeaderValue::ContentType(ct)) => ct.attribute(attr).map(str::to_owned),
        _ => None,
    };
    from(HeaderName::ContentDisposition, "filename")
        .or_else(|| from(HeaderName::ContentType, "name"))
        .map(|n| clean_line(&n))
        .filter(|n| !n.is_empty())
}

fn attachments(
    msg: &Message<'_>,
    hint: Option<Charset>,
    defects: &mut Vec<String>,
) -> (Vec<Attachment>, Vec<Vec<u8>>) {
    let mut list = Vec::new();
    let mut bodies = Vec::new();
    let mut missing = 0;
    for &id in &msg.attachments {
        let Some(part) = msg.parts.get(id as usize) else {
            missing += 1;
            continue;
        };
        let body: Vec<u8> = match &part.body {
            PartType::Binary(b) | PartType::InlineBinary(b) => b.to_vec(),
            PartType::Message(inner) => inner.raw_message().to_vec(),
            // The sender's bytes (charset intact), not our UTF-8 reading of them.
            PartType::Text(t) | PartType::Html(t) => {
                decode::transfer_decoded(msg, part).unwrap_or_else(|| t.as_bytes().to_vec())
            }
            PartType::Multipart(_) => continue,
        };
        let part_hint = decode::charset_hint(part).or(hint);
        list.push(Attachment {
            name: attachment_name(&msg.raw_message, part, part_hint),
            content_type: mime_type(part),
            size: body.len(),
            sha256: hex::encode(Sha256::digest(&body)),
        });
        bodies.push(body);
    }
    if missing > 0 {
        defects.push("attachment list refers to missing MIME parts".into());
    }
    (list, bodies)
}
