//! How much of the server's answer the desk is willing to hold, judged on the raw bytes before
//! async-imap sees them. async-imap buffers one whole response before parsing it, and sizes its
//! buffer to a literal's announced length at once (zero-filled, up to 512 MiB); a line without
//! an end it keeps buffering (and re-parsing) as it grows. So the stream is followed here, byte
//! for byte and in constant memory: lines end with CRLF, a line ending in `{N}` announces a
//! literal of N bytes that follows, and a response ends with a line that announces none.
//!
//! One response may carry at most [`LITERAL_SLACK`] more literal bytes than `max_message_size`
//! (the desk never fetches larger mail: RFC822.SIZE is asked first, so only a server that lies
//! gets there), and at most [`MAX_TEXT`] bytes outside literals: [`MAX_SEARCH_TEXT`] for a
//! `* SEARCH` answer (about 900,000 UIDs). Beyond either, the read fails with a
//! [`FramingError`] and the connection is dropped, before anything was allocated for it. The
//! text limits also bound the CPU async-imap spends: it parses an unfinished response again
//! from its start at every 4 KiB read, so a line of N bytes costs it N²/8 KiB byte steps.

/// What a literal may exceed `max_message_size` by: a server's RFC822.SIZE and the bytes it
/// sends may differ a little (line ends), never by this much.
pub const LITERAL_SLACK: u64 = 1024 * 1024;

/// The most bytes outside literals one response may have: nothing the desk asks for is
/// answered with more than a short line around each literal.
pub const MAX_TEXT: u64 = 64 * 1024;

/// The same for a `* SEARCH` response, the list of every UID in the mailbox.
pub const MAX_SEARCH_TEXT: u64 = 8 * 1024 * 1024;

/// How a SEARCH response starts.
const SEARCH: &[u8] = b"* SEARCH";

/// Room for the end of a line: `{`, 20 digits (`u64::MAX`), `}`, CR.
const TAIL: usize = 23;

/// Why the server's answer was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum FramingError {
    #[error(
        "the server announced a literal of {announced} bytes, over the limit of {limit} \
         (max_message_size + 1 MiB)"
    )]
    LiteralTooLarge { announced: u64, limit: u64 },
    #[error("the server sent a response of over {limit} bytes outside literals")]
    TextTooLong { limit: u64 },
}

/// The position in the server's byte stream; see the module documentation.
#[derive(Debug, Clone)]
pub(super) struct Framing {
    literal_limit: u64,
    /// Bytes of the literal being received still to come.
    in_literal: u64,
    /// Literal bytes announced in the current response.
    literal_bytes: u64,
    /// Bytes outside literals in the current response.
    text_bytes: u64,
    /// The current response's first bytes, as far as they tell a SEARCH response.
    head: [u8; SEARCH.len()],
    /// The last bytes of the current line.
    tail: [u8; TAIL],
    tail_len: usize,
    /// Once refused, every later read is refused too.
    failed: Option<FramingError>,
}

impl Framing {
    pub(super) fn new(max_message_size: u64) -> Self {
        Framing {
            literal_limit: max_message_size.saturating_add(LITERAL_SLACK),
            in_literal: 0,
            literal_bytes: 0,
            text_bytes: 0,
            head: [0; SEARCH.len()],
            tail: [0; TAIL],
            tail_len: 0,
            failed: None,
        }
    }

    pub(super) fn set_max_message_size(&mut self, bytes: u64) {
        self.literal_limit = bytes.saturating_add(LITERAL_SLACK);
    }

    /// Follows `data`, the next bytes from the server.
    pub(super) fn feed(&mut self, mut data: &[u8]) -> Result<(), FramingError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        while !data.is_empty() {
            if self.in_literal > 0 {
                let n = usize::try_from(self.in_literal).map_or(data.len(), |n| n.min(data.len()));
                self.in_literal -= n as u64;
                data = &data[n..];
                continue;
            }
            let (line, ended) = match data.iter().position(|&b| b == b'\n') {
                Some(i) => (&data[..=i], true),
                None => (data, false),
            };
            data = &data[line.len()..];
            if let Err(e) = self.text(line, ended) {
                self.failed = Some(e.clone());
                return Err(e);
            }
        }
        Ok(())
    }

    /// A piece of a line; `ended` when it ends with LF.
    fn text(&mut self, piece: &[u8], ended: bool) -> Result<(), FramingError> {
        let start = usize::try_from(self.text_bytes).unwrap_or(usize::MAX);
        if let Some(room) = self.head.get_mut(start..) {
            let n = room.len().min(piece.len());
            room[..n].copy_from_slice(&piece[..n]);
        }
        self.text_bytes = self.text_bytes.saturating_add(piece.len() as u64);
        let limit =
            if self.text_bytes >= SEARCH.len() as u64 && self.head.eq_ignore_ascii_case(SEARCH) {
                MAX_SEARCH_TEXT
            } else {
                MAX_TEXT
            };
        if self.text_bytes > limit {
            return Err(FramingError::TextTooLong { limit });
        }
        let body = if ended {
            &piece[..piece.len() - 1]
        } else {
            piece
        };
        self.remember(body);
        if !ended {
            return Ok(());
        }
        let announced = self.announced();
        let crlf = self.ends_with_cr();
        self.tail_len = 0;
        match announced {
            Some(n) => {
                self.literal_bytes = self.literal_bytes.saturating_add(n);
                if self.literal_bytes > self.literal_limit {
                    return Err(FramingError::LiteralTooLarge {
                        announced: n,
                        limit: self.literal_limit,
                    });
                }
                self.in_literal = n;
            }
            // Only a CRLF that announces nothing ends the response.
            None if crlf => {
                self.literal_bytes = 0;
                self.text_bytes = 0;
            }
            None => {}
        }
        Ok(())
    }

    /// Keeps the last [`TAIL`] bytes of the line.
    fn remember(&mut self, bytes: &[u8]) {
        if bytes.len() >= TAIL {
            self.tail.copy_from_slice(&bytes[bytes.len() - TAIL..]);
            self.tail_len = TAIL;
            return;
        }
        let keep = (TAIL - bytes.len()).min(self.tail_len);
        self.tail
            .copy_within(self.tail_len - keep..self.tail_len, 0);
        self.tail[keep..keep + bytes.len()].copy_from_slice(bytes);
        self.tail_len = keep + bytes.len();
    }

    fn ends_with_cr(&self) -> bool {
        self.tail_len > 0 && self.tail[self.tail_len - 1] == b'\r'
    }

    /// The length a line ending `{N}` CR announces (`u64::MAX` for more digits than fit).
    fn announced(&self) -> Option<u64> {
        let line = &self.tail[..self.tail_len];
        let line = line.strip_suffix(b"\r")?.strip_suffix(b"}")?;
        let digits = line.iter().rev().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        match line.len().checked_sub(digits + 1) {
            Some(at) if line[at] == b'{' => Some(
                std::str::from_utf8(&line[at + 1..])
                    .ok()
                    .and_then(|d| d.parse().ok())
                    .unwrap_or(u64::MAX),
            ),
            Some(_) => None,
            // Digits fill the whole tail: longer than any real length.
            None => (self.tail_len == TAIL).then_some(u64::MAX),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1024 * 1024;

    fn feed_all(f: &mut Framing, chunks: &[&[u8]]) -> Result<(), FramingError> {
        chunks.iter().try_for_each(|c| f.feed(c))
    }

    #[test]
    fn literals_within_the_limit_pass_and_their_content_is_not_read_as_lines() {
        let mut f = Framing::new(MB);
        // A literal whose content looks like an announcement of a huge one.
        let body = b"x {99999999999}\r\nmore\r\n";
        let mut stream = format!("* 1 FETCH (UID 1 BODY[] {{{}}}\r\n", body.len()).into_bytes();
        stream.extend_from_slice(body);
        stream.extend_from_slice(b")\r\nA1 OK done\r\n");
        // Byte by byte and all at once alike.
        for size in [1, 3, stream.len()] {
            let mut f2 = f.clone();
            for chunk in stream.chunks(size) {
                assert_eq!(f2.feed(chunk), Ok(()), "chunks of {size}");
            }
        }
        assert_eq!(f.feed(&stream), Ok(()));
        assert_eq!((f.literal_bytes, f.text_bytes, f.in_literal), (0, 0, 0));
    }

    #[test]
    fn a_literal_over_the_limit_is_refused_when_announced() {
        let mut f = Framing::new(25 * MB);
        let e = feed_all(
            &mut f,
            &[b"* 1 FETCH (UID 1 BODY[] {2147", b"483648}\r", b"\n"],
        );
        assert_eq!(
            e,
            Err(FramingError::LiteralTooLarge {
                announced: 2_147_483_648,
                limit: 26 * MB
            })
        );
        // And stays refused.
        assert!(f.feed(b"* OK\r\n").is_err());
        // max_message_size + 1 MiB is the most; one byte more is too much.
        let mut f = Framing::new(MB);
        assert_eq!(
            f.feed(format!("* 1 FETCH (BODY[] {{{}}}\r\n", 2 * MB).as_bytes()),
            Ok(())
        );
        let mut f = Framing::new(MB);
        assert!(
            f.feed(format!("* 1 FETCH (BODY[] {{{}}}\r\n", 2 * MB + 1).as_bytes())
                .is_err()
        );
        // More digits than a u64 holds.
        let mut f = Framing::new(MB);
        assert!(
            f.feed(b"* 1 FETCH (BODY[] {999999999999999999999999999}\r\n")
                .is_err()
        );
    }

    #[test]
    fn the_literals_of_one_response_count_together() {
        let mut f = Framing::new(MB);
        let half = format!("BODY[{{}}] {{{}}}\r\n", MB);
        assert_eq!(f.feed(format!("* 1 FETCH ({half}").as_bytes()), Ok(()));
        assert_eq!(f.feed(&vec![b'a'; MB as usize]), Ok(()));
        assert_eq!(f.feed(format!(" {half}").as_bytes()), Ok(()));
        assert_eq!(f.feed(&vec![b'a'; MB as usize]), Ok(()));
        assert!(f.feed(format!(" {half}").as_bytes()).is_err());
        // Each response starts afresh.
        let mut f = Framing::new(MB);
        for _ in 0..3 {
            let mut r = format!("* 1 FETCH (BODY[] {{{}}}\r\n", MB).into_bytes();
            r.extend(std::iter::repeat_n(b'a', MB as usize));
            r.extend_from_slice(b")\r\n");
            assert_eq!(f.feed(&r), Ok(()));
        }
    }

    /// Feeds `start` and then chunks of `fill` until refused; the error and the bytes fed.
    fn until_refused(start: &[u8], fill: u8) -> (FramingError, u64) {
        let mut f = Framing::new(MB);
        let chunk = vec![fill; 4096];
        assert_eq!(f.feed(start), Ok(()));
        let mut fed = start.len() as u64;
        loop {
            fed += chunk.len() as u64;
            if let Err(e) = f.feed(&chunk) {
                return (e, fed);
            }
        }
    }

    #[test]
    fn text_without_an_end_is_refused_past_the_limit() {
        let (e, fed) = until_refused(b"* OK ", b'a');
        assert_eq!(e, FramingError::TextTooLong { limit: MAX_TEXT });
        assert!(fed > MAX_TEXT && fed <= MAX_TEXT + 4096);
        // A SEARCH answer may be long.
        let (e, fed) = until_refused(b"* search 1", b'1');
        assert_eq!(
            e,
            FramingError::TextTooLong {
                limit: MAX_SEARCH_TEXT
            }
        );
        assert!(fed > MAX_SEARCH_TEXT && fed <= MAX_SEARCH_TEXT + 4096);
        // Even when its start comes byte by byte.
        let mut f = Framing::new(MB);
        for b in b"* SEARCH" {
            assert_eq!(f.feed(&[*b]), Ok(()));
        }
        assert_eq!(f.feed(&vec![b' '; 2 * MAX_TEXT as usize]), Ok(()));
        assert_eq!(f.feed(b"\r\n"), Ok(()));
        // And the next response is judged afresh.
        assert!(f.feed(&vec![b' '; 2 * MAX_TEXT as usize]).is_err());
        // Many short lines are many responses: no limit.
        let mut f = Framing::new(MB);
        for _ in 0..200_000 {
            assert_eq!(f.feed(b"* 1 EXISTS\r\n* OK still here\r\n"), Ok(()));
        }
        // Bare LFs do not end a response.
        let mut f = Framing::new(MB);
        let lf_lines = vec![b'\n'; (MAX_TEXT + 1) as usize];
        assert!(f.feed(&lf_lines).is_err());
    }

    #[test]
    fn braces_that_announce_nothing_are_text() {
        let mut f = Framing::new(MB);
        for line in [
            &b"* OK {not a number}\r\n"[..],
            b"* OK }\r\n",
            b"* OK {}\r\n",
            b"* OK 123}\r\n",
            b"}\r\n",
        ] {
            assert_eq!(f.feed(line), Ok(()), "{}", String::from_utf8_lossy(line));
            assert_eq!((f.in_literal, f.text_bytes), (0, 0));
        }
        // A bare LF after `{N}` is not an announcement either (async-imap wants CRLF).
        assert_eq!(f.feed(b"* OK {5}\n"), Ok(()));
        assert_eq!(f.in_literal, 0);
    }
}
