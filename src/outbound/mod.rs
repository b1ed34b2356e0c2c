//! Outgoing mail: `core::reply::OutgoingMail` → RFC 5322 bytes (lettre's builder), and the
//! senders the outbox worker hands them to (`file` now; `smtp` behind the same trait).

pub mod file;
pub mod smtp;

use chrono::DateTime;
use lettre::message::Body;
use lettre::message::header::{ContentTransferEncoding, ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, SinglePart};

use crate::core::reply::OutgoingMail;

#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("cannot use {address:?} as a mail address")]
    Address {
        address: String,
        #[source]
        source: lettre::address::AddressError,
    },
    #[error("cannot build the message")]
    Build(#[source] lettre::error::Error),
    #[error("cannot encode the message body in ISO-2022-JP")]
    Charset,
}

/// A message ready to send: the bytes and the envelope they travel in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Composed {
    pub message_id: String,
    pub sender: String,
    pub recipients: Vec<String>,
    pub raw: Vec<u8>,
}

pub use crate::core::guard::LOOP_HEADER;

fn mailbox(address: &str, name: Option<&str>) -> Result<Mailbox, ComposeError> {
    let addr = address.parse().map_err(|source| ComposeError::Address {
        address: address.to_string(),
        source,
    })?;
    Ok(Mailbox::new(name.map(str::to_string), addr))
}

fn angle(id: &str) -> String {
    format!("<{id}>")
}

/// Chosen in the config (`desk.reply_charset`); defined there so the config needs nothing from
/// here.
pub use crate::config::ReplyCharset;

/// `text` in strict ISO-2022-JP (RFC 1468 as mail clients read it), or `None` when some
/// character has no such form.
///
/// encoding_rs implements the WHATWG encoder, which also writes the NEC special characters of
/// row 13 (`①`, `㈱`, `Ⅰ`) and the NEC-selected IBM extensions of rows 89-92 (`ⅰ`, `纊`,
/// `髙`) as if they were JIS X 0208 (CP50220-style), switches to JIS-Roman for `¥` and `‾`,
/// and silently turns half-width katakana into full-width. Strict decoders reject or garble
/// those, so the output is checked: only ASCII and JIS X 0208 (`ESC ( B`, `ESC $ B`), every
/// two-byte character in the assigned rows 1-8 and 16-84, and decoding gives `text` back
/// exactly (so U+2212 MINUS SIGN, which comes back as U+FF0D, does not count as fitting).
fn strict_iso_2022_jp(text: &str) -> Option<Vec<u8>> {
    let (bytes, _, unmappable) = encoding_rs::ISO_2022_JP.encode(text);
    if unmappable {
        return None;
    }
    let mut jis = false;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == 0x1b {
            jis = match bytes.get(i + 1..i + 3)? {
                b"$B" => true,
                b"(B" => false,
                _ => return None,
            };
            i += 3;
        } else if jis {
            // The encoder returns to ASCII before a line break, so this is a character.
            let row = bytes[i].checked_sub(0x20)?;
            let cell = bytes.get(i + 1)?.checked_sub(0x20)?;
            if !matches!(row, 1..=8 | 16..=84) || !(1..=94).contains(&cell) {
                return None;
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    let (back, malformed) = encoding_rs::ISO_2022_JP.decode_without_bom_handling(&bytes);
    (!malformed && back == text).then(|| bytes.into_owned())
}

/// Raw bytes per RFC 2047 encoded word: 48 base64 characters, so a word is at most 66
/// characters (`=?ISO-2022-JP?B?…?=`) and `Subject: ` plus one word stays within 78.
const WORD_BYTES: usize = 36;

/// `text` as RFC 2047 `B` encoded words in `charset`, each of whole characters (and, in
/// ISO-2022-JP, starting and ending in ASCII mode) so that every word decodes on its own.
/// ISO-2022-JP only for text [`strict_iso_2022_jp`] accepts.
fn encoded_words(text: &str, charset: ReplyCharset) -> Vec<String> {
    use base64::Engine as _;
    let (label, encode): (&str, fn(&str) -> Vec<u8>) = match charset {
        ReplyCharset::Utf8 => ("UTF-8", |t| t.as_bytes().to_vec()),
        ReplyCharset::Iso2022Jp => ("ISO-2022-JP", |t| {
            encoding_rs::ISO_2022_JP.encode(t).0.into_owned()
        }),
    };
    let word = |bytes: &[u8]| {
        format!(
            "=?{label}?B?{}?=",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        )
    };
    let mut words = Vec::new();
    let mut chunk = String::new();
    let mut chunk_bytes = Vec::new();
    for c in text.chars() {
        let mut candidate = chunk.clone();
        candidate.push(c);
        let bytes = encode(&candidate);
        if bytes.len() > WORD_BYTES && !chunk.is_empty() {
            words.push(word(&chunk_bytes));
            chunk = c.to_string();
            chunk_bytes = encode(&chunk);
        } else {
            chunk = candidate;
            chunk_bytes = bytes;
        }
    }
    if !chunk.is_empty() || words.is_empty() {
        words.push(word(&chunk_bytes));
    }
    words
}

/// An unstructured header (Subject). Printable ASCII whose words are short stays readable
/// text that lettre folds at spaces; anything else becomes encoded words in `charset`, one per
/// line, so no line exceeds 78 octets however long the text (RFC 5322 allows 998 at most, and
/// a long run without spaces cannot be folded otherwise).
fn unstructured(name: &'static str, text: &str, charset: ReplyCharset) -> HeaderValue {
    let name = HeaderName::new_from_ascii_str(name);
    let plain = text.bytes().all(|b| (0x20..0x7f).contains(&b))
        && !text.contains("=?")
        && text.split(' ').all(|word| word.len() <= 60);
    if plain {
        HeaderValue::new(name, text.to_string())
    } else {
        let folded = encoded_words(text, charset).join("\r\n ");
        HeaderValue::dangerous_new_pre_encoded(name, text.to_string(), folded)
    }
}

/// A `From` header whose display name is encoded words in `charset`, folded like a subject,
/// with the address on the last line or a line of its own.
fn from_header(mailbox: &Mailbox, name: &str, charset: ReplyCharset) -> HeaderValue {
    let address = format!("<{}>", mailbox.email);
    let mut lines = encoded_words(name, charset);
    // The last line starts with `From: ` when it is the first, else with one space.
    let indent = if lines.len() == 1 { "From: ".len() } else { 1 };
    match lines.last_mut() {
        Some(last) if indent + last.len() + 1 + address.len() <= 78 => {
            last.push(' ');
            last.push_str(&address);
        }
        _ => lines.push(address),
    }
    HeaderValue::dangerous_new_pre_encoded(
        HeaderName::new_from_ascii_str("From"),
        // What lettre parses back (`Name <address>`) to check the message has a sender.
        mailbox.to_string(),
        lines.join("\r\n "),
    )
}

/// A file that goes with a mail: its name, MIME type and bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachedFile {
    pub name: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// Builds the RFC 5322 message with the threading and RFC 3834 headers every mail from the desk
/// carries.
///
/// With [`ReplyCharset::Iso2022Jp`], the charset is decided per message: when the subject, the
/// desk name and the body all fit strict ISO-2022-JP ([`strict_iso_2022_jp`]), every header
/// (From display name, Subject) and the body are in ISO-2022-JP; otherwise the whole message
/// is UTF-8, rather than with characters lost or written in a vendor extension. (Recipients
/// carry no display names.)
///
/// `files` are attached (`multipart/mixed`: the text first, then each file) when there are any.
pub fn compose(
    charset: ReplyCharset,
    mail: &OutgoingMail,
    desk_address: &str,
    desk_name: &str,
    message_id: &str,
    date: DateTime<impl chrono::TimeZone>,
    files: &[AttachedFile],
) -> Result<Composed, ComposeError> {
    let desk_name = desk_name.trim();
    let crlf_body = mail.body.replace("\r\n", "\n").replace('\n', "\r\n");
    let jis_body = match charset {
        ReplyCharset::Iso2022Jp => strict_iso_2022_jp(&crlf_body).filter(|_| {
            strict_iso_2022_jp(&mail.subject).is_some() && strict_iso_2022_jp(desk_name).is_some()
        }),
        ReplyCharset::Utf8 => None,
    };
    let charset = match jis_body {
        Some(_) => ReplyCharset::Iso2022Jp,
        None => ReplyCharset::Utf8,
    };
    let from = mailbox(desk_address, (!desk_name.is_empty()).then_some(desk_name))?;
    let mut builder = lettre::Message::builder()
        .from(from.clone())
        .message_id(Some(angle(message_id)))
        .date(std::time::SystemTime::from(
            date.with_timezone(&chrono::Utc),
        ))
        // Exchange and others honour this and send no out-of-office replies back to us.
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("X-Auto-Response-Suppress"),
            "All".to_string(),
        ))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str(LOOP_HEADER),
            desk_address.to_string(),
        ))
        .raw_header(unstructured("Subject", &mail.subject, charset));
    if charset == ReplyCharset::Iso2022Jp && !desk_name.is_ascii() {
        // lettre would write the name as UTF-8 encoded words; this replaces its From.
        builder = builder.raw_header(from_header(&from, desk_name, charset));
    }
    if let Some(value) = mail.kind.auto_submitted() {
        builder = builder.raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Auto-Submitted"),
            value.to_string(),
        ));
    }
    for to in &mail.to {
        builder = builder.to(mailbox(to, None)?);
    }
    if let Some(reply_to) = &mail.reply_to {
        builder = builder.reply_to(mailbox(reply_to, None)?);
    }
    if let Some(id) = &mail.in_reply_to {
        builder = builder.in_reply_to(angle(id));
    }
    if !mail.references.is_empty() {
        let refs: Vec<String> = mail.references.iter().map(|r| angle(r)).collect();
        builder = builder.references(refs.join(" "));
    }
    let part = match jis_body {
        Some(body) => {
            // ISO-2022-JP is a 7-bit charset; base64 only if lettre will not pass it as 7bit.
            let body = Body::new_with_encoding(body, ContentTransferEncoding::SevenBit)
                .or_else(|raw| Body::new_with_encoding(raw, ContentTransferEncoding::Base64))
                .map_err(|_| ComposeError::Charset)?;
            let content_type = ContentType::parse("text/plain; charset=ISO-2022-JP")
                .map_err(|_| ComposeError::Charset)?;
            SinglePart::builder().header(content_type).body(body)
        }
        None => SinglePart::builder()
            .header(ContentType::TEXT_PLAIN)
            .body(mail.body.clone()),
    };
    let message = if files.is_empty() {
        builder.singlepart(part).map_err(ComposeError::Build)?
    } else {
        let mut mixed = lettre::message::MultiPart::mixed().singlepart(part);
        for file in files {
            // The type as the staff member's client wrote it; anything unreadable as bytes.
            let content_type = ContentType::parse(&file.content_type)
                .or_else(|_| ContentType::parse("application/octet-stream"))
                .unwrap_or(ContentType::TEXT_PLAIN);
            mixed = mixed.singlepart(
                lettre::message::Attachment::new(file.name.clone())
                    .body(file.bytes.clone(), content_type),
            );
        }
        builder.multipart(mixed).map_err(ComposeError::Build)?
    };
    Ok(Composed {
        message_id: message_id.to_string(),
        sender: desk_address.to_string(),
        recipients: mail.to.clone(),
        // `Date:` in the offset the caller gives (the desk's timezone: +0900); lettre writes
        // only GMT.
        raw: with_date(message.formatted(), &date.to_rfc2822()),
    })
}

/// `raw` with its `Date:` header's value replaced by `date`.
fn with_date(raw: Vec<u8>, date: &str) -> Vec<u8> {
    let head_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(raw.len());
    let line_start = if raw.starts_with(b"Date: ") {
        Some(0)
    } else {
        raw[..head_end]
            .windows(8)
            .position(|w| w == b"\r\nDate: ")
            .map(|p| p + 2)
    };
    let Some(start) = line_start else {
        return raw;
    };
    let value = start + "Date: ".len();
    let end = raw[value..]
        .windows(2)
        .position(|w| w == b"\r\n")
        .map_or(raw.len(), |p| value + p);
    let mut out = Vec::with_capacity(raw.len() + 8);
    out.extend_from_slice(&raw[..value]);
    out.extend_from_slice(date.as_bytes());
    out.extend_from_slice(&raw[end..]);
    out
}

/// Why a send did not succeed, as the outbox worker needs to know it.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Worth retrying later (connection trouble, 4xx, a full disk).
    #[error("temporary failure: {0}")]
    Temporary(String),
    /// The server refused for good (5xx); the delivery is marked failed and staff are told.
    #[error("permanent failure: {0}")]
    Permanent(String),
}

/// One queued message as a sender sees it.
#[derive(Debug, Clone)]
pub struct Queued {
    pub outbox_id: i64,
    pub message_id: String,
    pub sender: String,
    pub recipients: Vec<String>,
    pub raw: Vec<u8>,
}

/// Where queued mail goes. A send returns only once the destination has accepted the message.
/// Used with concrete types on the daemon's own task, so the futures need not be `Send`.
#[allow(async_fn_in_trait)]
pub trait Sender {
    async fn send(&mut self, message: &Queued) -> Result<(), SendError>;

    /// How many messages are in flight at once. The desk hands out batches of this size and
    /// records each batch's outcome before the next, so a crash can resend at most this many.
    fn parallelism(&self) -> usize {
        1
    }

    /// Sends a batch, results in batch order; an implementation may send in parallel.
    async fn send_all(&mut self, batch: &[Queued]) -> Vec<Result<(), SendError>> {
        let mut results = Vec::with_capacity(batch.len());
        for message in batch {
            results.push(self.send(message).await);
        }
        results
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::core::reply::OutgoingKind;
    use crate::core::ticket::ReplyKind;
    use crate::mail::read_message;

    fn reply(subject: &str, body: &str) -> OutgoingMail {
        OutgoingMail {
            kind: OutgoingKind::AutoReply(ReplyKind::Acknowledgement),
            ticket: 7,
            to: vec!["yamada@alpha.example.co.jp".into()],
            reply_to: None,
            attachments: Vec::new(),
            files: Vec::new(),
            subject: subject.into(),
            body: body.into(),
            in_reply_to: Some("q1@alpha.example.co.jp".into()),
            references: vec!["q1@alpha.example.co.jp".into()],
        }
    }

    fn composed(charset: ReplyCharset, mail: &OutgoingMail) -> Vec<u8> {
        let date = chrono::Utc
            .with_ymd_and_hms(2026, 11, 25, 1, 0, 0)
            .single()
            .unwrap();
        compose(
            charset,
            mail,
            "support@example.co.jp",
            "サポート窓口",
            "neo-ds.000007.1@example.co.jp",
            date,
            &[],
        )
        .unwrap()
        .raw
    }

    /// Issue 7 item 15: `Date:` in the desk's timezone, once.
    #[test]
    fn the_date_header_is_in_the_given_timezone() {
        let date = chrono_tz::Asia::Tokyo
            .with_ymd_and_hms(2026, 11, 25, 10, 0, 0)
            .single()
            .unwrap();
        let raw = compose(
            ReplyCharset::Utf8,
            &reply("件名", "本文"),
            "support@example.co.jp",
            "サポート窓口",
            "neo-ds.000007.1@example.co.jp",
            date,
            &[],
        )
        .unwrap()
        .raw;
        let text = String::from_utf8_lossy(&raw);
        let dates: Vec<&str> = text.lines().filter(|l| l.starts_with("Date:")).collect();
        assert_eq!(dates, ["Date: Wed, 25 Nov 2026 10:00:00 +0900"], "{text}");
    }

    #[test]
    fn iso_2022_jp_replies_are_7bit_and_read_back_exactly() {
        let subject =
            "[NEO-DS#000007] お問合せ受付のお知らせ：分散サーバーの同期エラーについて（至急）";
        let body = "アルファ商事株式会社 山田 太郎 様\n\n受付番号：NEO-DS#000007\n受付日時：2026年11月25日(水) 10:00\n";
        let raw = composed(ReplyCharset::Iso2022Jp, &reply(subject, body));
        assert!(raw.iter().all(u8::is_ascii), "ISO-2022-JP mail is 7-bit");
        let text = String::from_utf8_lossy(&raw);
        assert!(
            text.to_ascii_lowercase().contains("charset=iso-2022-jp"),
            "{text}"
        );
        assert!(text.contains("Content-Transfer-Encoding: 7bit"), "{text}");
        assert!(text.contains("=?ISO-2022-JP?B?"), "{text}");
        assert!(text.contains("Auto-Submitted: auto-replied"));
        assert!(text.lines().all(|l| l.len() <= 998));
        let back = read_message(&raw, &[]).mail;
        assert_eq!(back.subject, subject);
        assert_eq!(back.text.trim_end(), body.trim_end());
        assert_eq!(back.in_reply_to, vec!["q1@alpha.example.co.jp".to_string()]);
    }

    #[test]
    fn a_character_iso_2022_jp_lacks_sends_the_message_in_utf8() {
        let raw = composed(ReplyCharset::Iso2022Jp, &reply("受付 😀", "本文 😀\n"));
        let text = String::from_utf8_lossy(&raw);
        assert!(!text.contains("ISO-2022-JP"), "{text}");
        let back = read_message(&raw, &[]).mail;
        assert_eq!(back.subject, "受付 😀");
        assert_eq!(back.text.trim_end(), "本文 😀");
    }

    const DESK_NAME: &str = "desknet's NEO 分散サーバー サポート窓口";

    fn composed_as(charset: ReplyCharset, desk_name: &str, mail: &OutgoingMail) -> Vec<u8> {
        let date = chrono::Utc
            .with_ymd_and_hms(2026, 11, 25, 1, 0, 0)
            .single()
            .unwrap();
        compose(
            charset,
            mail,
            "support@example.co.jp",
            desk_name,
            "neo-ds.000007.1@example.co.jp",
            date,
            &[],
        )
        .unwrap()
        .raw
    }

    /// The header section of a raw message, as lines without their CRLF.
    fn header_lines(raw: &[u8]) -> Vec<&[u8]> {
        let end = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a header section");
        raw[..end]
            .split(|&b| b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .collect()
    }

    /// One header field, unfolded.
    fn header_field(raw: &[u8], name: &str) -> String {
        let mut out = String::new();
        let mut inside = false;
        for line in header_lines(raw) {
            let line = String::from_utf8_lossy(line);
            if line.starts_with([' ', '\t']) {
                if inside {
                    out.push_str(&line);
                }
            } else if inside {
                break;
            } else if let Some(rest) = line.strip_prefix(&format!("{name}: ")) {
                inside = true;
                out.push_str(rest);
            }
        }
        out
    }

    /// Every JIS X 0208 character in ISO-2022-JP bytes lies in rows 1-8 or 16-84 (no NEC
    /// row 13, no IBM extensions), and only ASCII and JIS X 0208 are switched to.
    fn assert_strict_jis(bytes: &[u8]) {
        let mut two_byte = false;
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == 0x1b {
                let esc = &bytes[i..(i + 3).min(bytes.len())];
                two_byte = match esc {
                    b"\x1b$B" => true,
                    b"\x1b(B" => false,
                    other => panic!("escape sequence {other:?} is not strict ISO-2022-JP"),
                };
                i += 3;
            } else if two_byte && !matches!(bytes[i], b'\r' | b'\n') {
                let row = bytes[i] - 0x20;
                assert!(
                    matches!(row, 1..=8 | 16..=84),
                    "JIS row {row} is not plain JIS X 0208"
                );
                i += 2;
            } else {
                i += 1;
            }
        }
    }

    /// The ISO-2022-JP payloads of the encoded words of one header field.
    fn jis_words(field: &str) -> Vec<Vec<u8>> {
        use base64::Engine as _;
        field
            .split("=?ISO-2022-JP?B?")
            .skip(1)
            .map(|w| {
                let b64 = w.split("?=").next().expect("closed word");
                base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .expect("base64")
            })
            .collect()
    }

    #[test]
    fn iso_2022_jp_mail_has_the_desk_name_and_subject_in_iso_2022_jp_too() {
        let subject = "[NEO-DS#000007] お問合せ受付のお知らせ：同期エラー（至急）～";
        let body = "山田 太郎 様\n\n受付時間：9:00～17:30\n";
        let raw = composed_as(ReplyCharset::Iso2022Jp, DESK_NAME, &reply(subject, body));
        let text = String::from_utf8_lossy(&raw);
        assert!(raw.iter().all(u8::is_ascii), "{text}");
        assert!(!text.to_ascii_lowercase().contains("utf-8"), "{text}");
        let from = header_field(&raw, "From");
        assert!(from.starts_with("=?ISO-2022-JP?B?"), "{from}");
        assert!(from.ends_with(" <support@example.co.jp>"), "{from}");
        let subject_field = header_field(&raw, "Subject");
        assert!(
            subject_field.starts_with("=?ISO-2022-JP?B?"),
            "{subject_field}"
        );
        for word in jis_words(&from).iter().chain(&jis_words(&subject_field)) {
            assert_strict_jis(word);
        }
        let body_start = text.find("\r\n\r\n").expect("body") + 4;
        assert_strict_jis(&raw[body_start..]);

        let parsed = mail_parser::MessageParser::default()
            .parse(&raw[..])
            .expect("mail-parser reads it");
        let sender = parsed.from().and_then(|a| a.first()).expect("From");
        assert_eq!(sender.name(), Some(DESK_NAME));
        assert_eq!(sender.address(), Some("support@example.co.jp"));
        assert_eq!(parsed.subject(), Some(subject));
        assert_eq!(
            parsed
                .body_text(0)
                .map(|t| t.replace("\r\n", "\n").trim_end().to_string()),
            Some(body.trim_end().to_string())
        );
        let back = read_message(&raw, &[]).mail;
        assert_eq!(back.from.and_then(|m| m.name).as_deref(), Some(DESK_NAME));
        assert_eq!(back.subject, subject);
    }

    #[test]
    fn characters_outside_plain_jis_x_0208_send_the_whole_message_in_utf8() {
        // NEC row 13 (①, ㈱, Ⅰ), NEC-selected IBM and IBM extensions (ⅰ, 纊, 髙), half-width
        // katakana and JIS-Roman (¥) have no strict ISO-2022-JP form, wherever they appear.
        for odd in ["①", "㈱", "Ⅰ", "ⅰ", "纊", "髙", "ｱ", "¥"] {
            let cases = [
                (
                    DESK_NAME.to_string(),
                    format!("受付{odd}"),
                    "本文\n".to_string(),
                ),
                (
                    DESK_NAME.to_string(),
                    "受付".to_string(),
                    format!("本文{odd}\n"),
                ),
                (
                    format!("{odd}サポート窓口"),
                    "受付".to_string(),
                    "本文\n".to_string(),
                ),
            ];
            for (desk_name, subject, body) in cases {
                let raw = composed_as(ReplyCharset::Iso2022Jp, &desk_name, &reply(&subject, &body));
                let text = String::from_utf8_lossy(&raw);
                assert!(!text.contains("ISO-2022-JP"), "{odd}: {text}");
                assert!(
                    text.to_ascii_lowercase().contains("charset=utf-8"),
                    "{odd}: {text}"
                );
                let parsed = mail_parser::MessageParser::default()
                    .parse(&raw[..])
                    .expect("mail-parser reads it");
                let sender = parsed.from().and_then(|a| a.first()).expect("From");
                assert_eq!(sender.name(), Some(desk_name.as_str()), "{text}");
                assert_eq!(parsed.subject(), Some(subject.as_str()));
                assert_eq!(
                    parsed
                        .body_text(0)
                        .map(|t| t.replace("\r\n", "\n").trim_end().to_string()),
                    Some(body.trim_end().to_string())
                );
            }
        }
    }

    #[test]
    fn no_header_line_exceeds_rfc_5322_limits_whatever_the_subject() {
        let japanese: String = "分散サーバーの同期エラー、"
            .chars()
            .cycle()
            .take(5000)
            .collect();
        let ascii: String = "abcdefghij0123456789".chars().cycle().take(5000).collect();
        let mixed: String = format!("{} {} ①", &ascii[..1000], japanese);
        // Plain words lettre folds at the spaces.
        let words: String = "Re: server sync error "
            .chars()
            .cycle()
            .take(4999)
            .collect();
        for charset in [ReplyCharset::Utf8, ReplyCharset::Iso2022Jp] {
            for subject in [&japanese, &ascii, &mixed, &words] {
                let raw = composed_as(charset, DESK_NAME, &reply(subject, "本文\n"));
                for line in header_lines(&raw) {
                    assert!(
                        line.len() <= 78,
                        "{charset:?}: {} octets: {}",
                        line.len(),
                        String::from_utf8_lossy(line)
                    );
                }
                let parsed = mail_parser::MessageParser::default()
                    .parse(&raw[..])
                    .expect("mail-parser reads it");
                assert_eq!(parsed.subject(), Some(subject.as_str()), "{charset:?}");
                assert_eq!(read_message(&raw, &[]).mail.subject, *subject);
            }
        }
    }

    #[test]
    fn utf8_is_the_default() {
        let raw = composed(ReplyCharset::default(), &reply("受付", "本文\n"));
        let text = String::from_utf8_lossy(&raw);
        assert!(
            text.to_ascii_lowercase().contains("charset=utf-8"),
            "{text}"
        );
        assert_eq!(read_message(&raw, &[]).mail.subject, "受付");
    }
}
