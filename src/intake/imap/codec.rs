//! What goes on the IMAP wire as text, and back: mailbox names in modified UTF-7, quoted
//! strings, UID sets, INTERNALDATE, and the `UIDVALIDITY:UID` keys the desk stores. Pure
//! functions, no I/O.

use chrono::{DateTime, Utc};

/// A sorted, de-duplicated UID list as an IMAP sequence set: `1:3,5,8:9`.
pub(super) fn uid_set(uids: &[u32]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < uids.len() {
        let start = uids[i];
        let mut end = start;
        while i + 1 < uids.len() && uids[i + 1] == end.wrapping_add(1) {
            i += 1;
            end = uids[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

/// A mailbox name as IMAP wants it on the wire: modified UTF-7 (RFC 3501 §5.1.3), so folder
/// names such as `処理済み` work, in a quoted string.
pub(super) fn mailbox_arg(name: &str) -> String {
    fn flush(units: &mut Vec<u16>, out: &mut String) {
        if units.is_empty() {
            return;
        }
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";
        let bytes: Vec<u8> = units.iter().flat_map(|u| u.to_be_bytes()).collect();
        out.push('&');
        for chunk in bytes.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
            // 1 byte → 2 characters, 2 → 3, 3 → 4; no padding in modified base64.
            for k in 0..=chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * k)) & 63) as usize]));
            }
        }
        out.push('-');
        units.clear();
    }
    let mut encoded = String::new();
    let mut units = Vec::new();
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut units, &mut encoded);
            if c == '&' {
                encoded.push_str("&-");
            } else {
                encoded.push(c);
            }
        } else {
            let mut buf = [0u16; 2];
            units.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush(&mut units, &mut encoded);
    quoted(&encoded)
}

/// An IMAP quoted string.
pub(super) fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    out.push_str(&escaped(text));
    out.push('"');
    out
}

/// The inside of an IMAP quoted string.
pub(super) fn escaped(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

/// INTERNALDATE (`25-Nov-2026 10:00:00 +0900`; the day may be space-padded: ` 5-Nov-…`).
pub(super) fn parse_internal_date(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_str(text.trim(), "%d-%b-%Y %H:%M:%S %z")
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

/// A message's key for the desk: `UIDVALIDITY:UID`, so a mailbox whose UIDVALIDITY changed
/// yields new keys.
pub(super) fn message_key(uidvalidity: u32, uid: u32) -> String {
    format!("{uidvalidity}:{uid}")
}

/// [`message_key`] back into its numbers.
pub(super) fn parse_key(key: &str) -> Option<(u32, u32)> {
    let (validity, uid) = key.split_once(':')?;
    Some((validity.parse().ok()?, uid.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_sets_compress_runs() {
        assert_eq!(uid_set(&[]), "");
        assert_eq!(uid_set(&[7]), "7");
        assert_eq!(uid_set(&[1, 2, 3, 5, 8, 9]), "1:3,5,8:9");
        assert_eq!(uid_set(&[4, 6, 8]), "4,6,8");
        assert_eq!(
            uid_set(&[u32::MAX - 1, u32::MAX]),
            format!("{}:{}", u32::MAX - 1, u32::MAX)
        );
    }

    #[test]
    fn mailbox_names_are_modified_utf7_in_quotes() {
        assert_eq!(mailbox_arg("INBOX"), "\"INBOX\"");
        assert_eq!(mailbox_arg("Tom & Jerry"), "\"Tom &- Jerry\"");
        // RFC 3501 §5.1.3's example.
        assert_eq!(
            mailbox_arg("~peter/mail/台北/日本語"),
            "\"~peter/mail/&U,BTFw-/&ZeVnLIqe-\""
        );
        assert_eq!(mailbox_arg("処理済み"), "\"&UeZ0Bm4IMH8-\"");
        assert_eq!(mailbox_arg("a\"b\\c"), "\"a\\\"b\\\\c\"");
    }

    #[test]
    fn internal_dates_parse_with_and_without_day_padding() {
        let at = parse_internal_date("25-Nov-2026 10:00:00 +0900").expect("date");
        assert_eq!(at.to_rfc3339(), "2026-11-25T01:00:00+00:00");
        let at = parse_internal_date(" 5-Jan-2027 09:30:15 -0500").expect("date");
        assert_eq!(at.to_rfc3339(), "2027-01-05T14:30:15+00:00");
        assert!(parse_internal_date("yesterday").is_none());
    }

    #[test]
    fn keys_round_trip() {
        assert_eq!(parse_key("1795606377:42"), Some((1795606377, 42)));
        assert_eq!(
            parse_key(&message_key(1795606377, 42)),
            Some((1795606377, 42))
        );
        assert_eq!(parse_key("42"), None);
        assert_eq!(parse_key("a:1"), None);
    }
}
