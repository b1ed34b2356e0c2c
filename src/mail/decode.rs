//! Charset repairs on top of mail-parser, for Japanese mail as it really arrives:
//! labels mail-parser does not know (`cp932`, `iso-2022-jp-3`, `x-sjis-docomo` …), text parts
//! without a charset, raw ISO-2022-JP/Shift_JIS/EUC-JP bytes in header fields.

use mail_parser::decoders::charsets::DecoderFnc;
use mail_parser::decoders::charsets::map::charset_decoder;
use mail_parser::parsers::MessageStream;
use mail_parser::{Encoding, HeaderValue, Message, MessagePart, MimeHeaders, PartType};

/// How a charset label decodes.
#[derive(Clone, Copy)]
pub(crate) enum Charset {
    /// mail-parser keeps UTF-8 as is (it has no decoder entry for it).
    Utf8,
    Decoder(DecoderFnc),
}

fn clean_label(label: &str) -> String {
    label
        .trim()
        .trim_matches(|c| c == '"' || c == '\'')
        .trim()
        .to_ascii_lowercase()
}

fn is_utf8_label(l: &str) -> bool {
    l.contains("utf-8") || l.contains("utf8")
}

/// Is this a label mail-parser decodes by itself (so its text can be trusted)?
pub(crate) fn known_to_parser(label: &str) -> bool {
    let l = clean_label(label);
    is_utf8_label(&l) || charset_decoder(l.as_bytes()).is_some()
}

fn is_ascii_label(label: &str) -> bool {
    matches!(
        clean_label(label).as_str(),
        "us-ascii" | "ascii" | "ansi_x3.4-1968" | "iso646-us" | "us"
    )
}

/// A label mail-parser knows, for Japanese labels it does not.
pub(crate) fn alias(label: &str) -> Option<&'static str> {
    let l = clean_label(label);
    if l.contains("2022") && l.contains("jp") {
        Some("iso-2022-jp")
    } else if l.contains("sjis")
        || l.contains("shift")
        || l.contains("932")
        || l.contains("943")
        || l.contains("kanji")
    {
        Some("shift_jis")
    } else if l.contains("euc") && (l.contains("jp") || l.contains("jis")) {
        Some("euc-jp")
    } else if is_utf8_label(&l) {
        Some("utf-8")
    } else {
        None
    }
}

/// Resolve a label, through [`alias`] when mail-parser does not know it.
pub(crate) fn resolve(label: &str) -> Option<Charset> {
    let l = clean_label(label);
    if is_utf8_label(&l) {
        return Some(Charset::Utf8);
    }
    if let Some(d) = charset_decoder(l.as_bytes()) {
        return Some(Charset::Decoder(d));
    }
    match alias(&l)? {
        "utf-8" => Some(Charset::Utf8),
        a => charset_decoder(a.as_bytes()).map(Charset::Decoder),
    }
}

fn decode_with(label: &str, bytes: &[u8]) -> Option<String> {
    charset_decoder(label.as_bytes()).map(|d| d(bytes))
}

/// ESC `$` or ESC `(`: the designations ISO-2022-JP switches with.
pub(crate) fn has_iso2022_escape(bytes: &[u8]) -> bool {
    bytes
        .windows(2)
        .any(|w| w[0] == 0x1b && (w[1] == b'$' || w[1] == b'('))
}

fn is_japanese_char(c: char) -> bool {
    matches!(c, '\u{3040}'..='\u{30FF}' | '\u{4E00}'..='\u{9FFF}' | '\u{FF61}'..='\u{FF9F}')
}

/// Decode bytes of unknown charset, preferring Japanese: ISO-2022-JP escapes, valid UTF-8,
/// then Shift_JIS or EUC-JP when one decodes cleanly into Japanese text. `None` when nothing
/// fits (the caller keeps mail-parser's reading).
pub(crate) fn guess(bytes: &[u8]) -> Option<(String, &'static str)> {
    if has_iso2022_escape(bytes) {
        return decode_with("iso-2022-jp", bytes).map(|s| (s, "iso-2022-jp"));
    }
    if let Ok(s) = std::str::from_utf8(bytes) {
        return Some((s.to_owned(), "utf-8"));
    }
    // EUC-JP bytes also decode as Shift_JIS half-width katakana: prefer full-width text.
    let score = |s: &str| -> i64 {
        s.chars()
            .map(|c| match c {
                '\u{FF61}'..='\u{FF9F}' => -1,
                c if is_japanese_char(c) => 1,
                _ => 0,
            })
            .sum()
    };
    ["shift_jis", "euc-jp"]
        .into_iter()
        .filter_map(|label| decode_with(label, bytes).map(|s| (s, label)))
        .filter(|(s, _)| !s.contains('\u{FFFD}') && s.chars().any(is_japanese_char))
        .max_by_key(|(s, label)| (score(s), *label == "shift_jis"))
}

/// The part's body with only the transfer encoding undone (the sender's charset intact).
pub(crate) fn transfer_decoded(msg: &Message<'_>, part: &MessagePart<'_>) -> Option<Vec<u8>> {
    let start = part.offset_body as usize;
    let end = part.offset_end as usize;
    let raw = msg.raw_message.get(start..end.max(start))?;
    let (status, bytes) = match part.encoding {
        Encoding::Base64 => MessageStream::new(raw).decode_base64_mime(b""),
        Encoding::QuotedPrintable => MessageStream::new(raw).decode_quoted_printable_mime(b""),
        Encoding::None => return Some(raw.to_vec()),
    };
    (status != usize::MAX).then(|| bytes.into_owned())
}

/// The decoded text of a text/* part (HTML not converted), repairing what mail-parser could
/// not decode. A defect is pushed when the charset had to be guessed.
/// A part's text is read up to this many bytes. The desk keeps [`super::MAX_TEXT_BYTES`] of a
/// body, and HTML shrinks when converted: reading more of a 50 MB part would only copy
/// megabytes to drop them (issue 12: memory under 4× a message's size).
pub(crate) const PART_TEXT_LIMIT: usize = 4 * super::MAX_TEXT_BYTES;

/// The first `max` bytes of `s`, cut at a character boundary.
pub(crate) fn head(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut cut = max;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    &s[..cut]
}

/// The length of a part's text as the parser gave it (before [`part_text`] cuts it).
pub(crate) fn part_text_len(part: &MessagePart<'_>) -> usize {
    match &part.body {
        PartType::Text(s) | PartType::Html(s) => s.len(),
        _ => 0,
    }
}

pub(crate) fn part_text(
    msg: &Message<'_>,
    part: &MessagePart<'_>,
    defects: &mut Vec<String>,
) -> Option<String> {
    let parsed = match &part.body {
        PartType::Text(s) | PartType::Html(s) => head(s.as_ref(), PART_TEXT_LIMIT),
        _ => return None,
    };
    let label = part
        .content_type()
        .and_then(|ct| ct.attribute("charset"))
        .map(str::to_owned);
    match label.as_deref() {
        Some(l) if known_to_parser(l) && !is_ascii_label(l) => return Some(parsed.to_owned()),
        Some(l) if is_ascii_label(l) => {
            // mail-parser read US-ASCII as cp1252; only JIS escapes or UTF-8 mean otherwise.
            if parsed.is_ascii() && !parsed.contains('\u{1b}') {
                return Some(parsed.to_owned());
            }
            let Some(mut raw) = transfer_decoded(msg, part) else {
                return Some(parsed.to_owned());
            };
            raw.truncate(PART_TEXT_LIMIT);
            if has_iso2022_escape(&raw) {
                return decode_with("iso-2022-jp", &raw).or_else(|| Some(parsed.to_owned()));
            }
            return Some(match String::from_utf8(raw) {
                Ok(s) => s,
                Err(_) => parsed.to_owned(),
            });
        }
        None if !parsed.contains('\u{FFFD}') && !parsed.contains('\u{1b}') => {
            return Some(parsed.to_owned());
        }
        _ => {}
    }
    // No label with undecodable bytes, or a label mail-parser does not know.
    let Some(mut raw) = transfer_decoded(msg, part) else {
        return Some(parsed.to_owned());
    };
    raw.truncate(PART_TEXT_LIMIT);
    if let Some(l) = label.as_deref()
        && let Some(cs) = resolve(l)
    {
        return Some(match cs {
            Charset::Utf8 => String::from_utf8_lossy(&raw).into_owned(),
            Charset::Decoder(d) => d(&raw),
        });
    }
    match guess(&raw) {
        Some((s, used)) => {
            if let Some(l) = label.as_deref() {
                defects.push(format!("unknown charset {l:?}, decoded as {used}"));
            } else if used != "utf-8" {
                defects.push(format!("text part without charset, decoded as {used}"));
            }
            Some(s)
        }
        None => {
            if let Some(l) = label.as_deref() {
                defects.push(format!("unknown charset {l:?}, text may be garbled"));
            }
            Some(parsed.to_owned())
        }
    }
}

/// The root part's charset, as a hint for raw 8-bit header bytes.
pub(crate) fn charset_hint(part: &MessagePart<'_>) -> Option<Charset> {
    part.content_type()
        .and_then(|ct| ct.attribute("charset"))
        .and_then(resolve)
}

/// How to re-parse a repaired header field.
#[derive(Clone, Copy)]
pub(crate) enum FieldKind {
    Text,
    Address,
    ContentType,
}

/// Encoded words whose charset mail-parser does not know get a label it does.
fn relabel_encoded_words(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut changed = false;
    while let Some(at) = rest.find("=?") {
        let (head, tail) = rest.split_at(at + 2);
        out.push_str(head);
        rest = tail;
        let Some(q) = rest.find('?').filter(|&q| q <= 64) else {
            continue;
        };
        let label = &rest[..q];
        let bare = label.split('*').next().unwrap_or(label);
        if !known_to_parser(bare)
            && let Some(a) = alias(bare)
        {
            out.push_str(a);
            rest = &rest[q..];
            changed = true;
        }
    }
    out.push_str(rest);
    changed.then_some(out)
}

/// Re-parse a header field whose raw bytes mail-parser would misread (raw ISO-2022-JP, raw
/// 8-bit Shift_JIS/EUC-JP, encoded words in a charset it does not know). `None` when the
/// field needs no repair.
pub(crate) fn repaired_field(
    raw: &[u8],
    hint: Option<Charset>,
    kind: FieldKind,
) -> Option<HeaderValue<'static>> {
    let escapes = has_iso2022_escape(raw);
    let utf8 = std::str::from_utf8(raw).ok();
    let mut text = if escapes {
        decode_with("iso-2022-jp", raw)?
    } else if let Some(s) = utf8 {
        if !s.contains("=?") {
            return None;
        }
        s.to_owned()
    } else {
        match hint {
            Some(Charset::Decoder(d)) => {
                let s = d(raw);
                if s.contains('\u{FFFD}') {
                    guess(raw).map_or(s, |(g, _)| g)
                } else {
                    s
                }
            }
            _ => guess(raw).map_or_else(|| String::from_utf8_lossy(raw).into_owned(), |(g, _)| g),
        }
    };
    match relabel_encoded_words(&text) {
        Some(relabelled) => text = relabelled,
        None if utf8.is_some() && !escapes => return None,
        None => {}
    }
    if !text.ends_with('\n') {
        text.push('\n');
    }
    let bytes = text.into_bytes();
    let mut stream = MessageStream::new(&bytes);
    let value = match kind {
        FieldKind::Text => stream.parse_unstructured(),
        FieldKind::Address => stream.parse_address(),
        FieldKind::ContentType => stream.parse_content_type(),
    };
    Some(value.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases() {
        assert!(matches!(resolve("cp932"), Some(Charset::Decoder(_))));
        assert!(matches!(resolve("\"CP932\""), Some(Charset::Decoder(_))));
        assert!(matches!(
            resolve("x-sjis-docomo"),
            Some(Charset::Decoder(_))
        ));
        assert!(matches!(
            resolve("ISO-2022-JP-3"),
            Some(Charset::Decoder(_))
        ));
        assert!(matches!(resolve("UTF-8"), Some(Charset::Utf8)));
        assert!(resolve("x-unknown-thing").is_none());
        assert!(!known_to_parser("cp932"));
        assert!(known_to_parser("Shift_JIS"));
    }

    #[test]
    fn guesses_japanese() {
        // "テスト" in Shift_JIS and EUC-JP.
        let sjis = [0x83, 0x65, 0x83, 0x58, 0x83, 0x67];
        let euc = [0xa5, 0xc6, 0xa5, 0xb9, 0xa5, 0xc8];
        assert_eq!(guess(&sjis).map(|g| g.0), Some("テスト".to_owned()));
        assert_eq!(guess(&euc).map(|g| g.0), Some("テスト".to_owned()));
        let jis = b"\x1b$B%F%9%H\x1b(B";
        assert_eq!(guess(jis).map(|g| g.0), Some("テスト".to_owned()));
    }

    #[test]
    fn repairs_raw_header_bytes() {
        let raw = b" \x1b$B%F%9%H\x1b(B mail\n";
        let v = repaired_field(raw, None, FieldKind::Text).expect("repaired");
        assert_eq!(v.as_text(), Some("テスト mail"));
        let raw = b" =?cp932?B?g2WDWINn?=\n";
        let v = repaired_field(raw, None, FieldKind::Text).expect("repaired");
        assert_eq!(v.as_text(), Some("テスト"));
        assert!(repaired_field(b" plain subject\n", None, FieldKind::Text).is_none());
        assert!(repaired_field(b" =?utf-8?B?44OG44K544OI?=\n", None, FieldKind::Text).is_none());
    }
}
