//! Outgoing mail: `core::reply::OutgoingMail` → RFC 5322 bytes (lettre's builder), and the
//! senders the outbox worker hands them to (`file` now; `smtp` behind the same trait).

pub mod file;
pub mod smtp;

use std::time::SystemTime;

use chrono::{DateTime, Utc};
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

/// Our loop marker: mail carrying it that comes back to the desk is never answered.
pub const LOOP_HEADER: &str = "X-Madoguchi-Loop";

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

/// The charset of the mail the desk writes. UTF-8 by default; ISO-2022-JP for customers whose
/// old mail clients show anything else as garbage (DESIGN.md, "Mail formats").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ReplyCharset {
    #[default]
    Utf8,
    Iso2022Jp,
}

/// ISO-2022-JP forms of the subject (RFC 2047 encoded words) and body (CRLF lines), or `None`
/// when some character has no ISO-2022-JP form (emoji, rare kanji): such mail goes in UTF-8
/// rather than with characters lost.
fn iso_2022_jp(subject: &str, body: &str) -> Option<(String, Vec<u8>)> {
    use base64::Engine as _;
    let encode = |text: &str| {
        let (bytes, _, unmappable) = encoding_rs::ISO_2022_JP.encode(text);
        (!unmappable).then(|| bytes.into_owned())
    };
    // Each encoded word carries a short run of characters that starts and ends in ASCII mode,
    // keeping every word under RFC 2047's 75 characters.
    let chars: Vec<char> = subject.chars().collect();
    let mut words = Vec::new();
    for chunk in chars.chunks(10) {
        let bytes = encode(&chunk.iter().collect::<String>())?;
        words.push(format!(
            "=?ISO-2022-JP?B?{}?=",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        ));
    }
    let crlf = body.replace("\r\n", "\n").replace('\n', "\r\n");
    Some((words.join("\r\n "), encode(&crlf)?))
}

/// Builds the RFC 5322 message with the threading and RFC 3834 headers every mail from the desk
/// carries, in `charset` when every character of it has a form there, else in UTF-8.
pub fn compose(
    charset: ReplyCharset,
    mail: &OutgoingMail,
    desk_address: &str,
    desk_name: &str,
    message_id: &str,
    date: DateTime<Utc>,
) -> Result<Composed, ComposeError> {
    let jis = match charset {
        ReplyCharset::Iso2022Jp => iso_2022_jp(&mail.subject, &mail.body),
        ReplyCharset::Utf8 => None,
    };
    let mut builder = lettre::Message::builder()
        .from(mailbox(desk_address, Some(desk_name))?)
        .message_id(Some(angle(message_id)))
        .date(SystemTime::from(date))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Auto-Submitted"),
            mail.kind.auto_submitted().to_string(),
        ))
        // Exchange and others honour this and send no out-of-office replies back to us.
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("X-Auto-Response-Suppress"),
            "All".to_string(),
        ))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str(LOOP_HEADER),
            desk_address.to_string(),
        ));
    builder = match &jis {
        Some((subject, _)) => builder.raw_header(HeaderValue::dangerous_new_pre_encoded(
            HeaderName::new_from_ascii_str("Subject"),
            mail.subject.clone(),
            subject.clone(),
        )),
        None => builder.subject(mail.subject.clone()),
    };
    for to in &mail.to {
        builder = builder.to(mailbox(to, None)?);
    }
    if let Some(id) = &mail.in_reply_to {
        builder = builder.in_reply_to(angle(id));
    }
    if !mail.references.is_empty() {
        let refs: Vec<String> = mail.references.iter().map(|r| angle(r)).collect();
        builder = builder.references(refs.join(" "));
    }
    let part = match jis {
        Some((_, body)) => {
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
    let message = builder.singlepart(part).map_err(ComposeError::Build)?;
    Ok(Composed {
        message_id: message_id.to_string(),
        sender: desk_address.to_string(),
        recipients: mail.to.clone(),
        raw: message.formatted(),
    })
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
            subject: subject.into(),
            body: body.into(),
            in_reply_to: Some("q1@alpha.example.co.jp".into()),
            references: vec!["q1@alpha.example.co.jp".into()],
        }
    }

    fn composed(charset: ReplyCharset, mail: &OutgoingMail) -> Vec<u8> {
        let date = Utc
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
        )
        .unwrap()
        .raw
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
