//! What a staff member wrote in reply to a desk notification, as the desk reads it: the
//! commands on the first lines (`#note`, `#close`, …) and the staff member's own text, with the
//! quoted notification cut, so the desk can relay that text to the customer (issue 9, item 3).
//!
//! Pure: the input is the text body as `crate::mail` produces it (text/plain preferred, with
//! `format=flowed` already joined; an HTML-only mail arrives converted by `crate::mail`'s own
//! converter: block elements such as `<div>`, `<p>`, `<tr>` end their line, `<blockquote>`
//! lines are quoted with `>` like a text/plain reply, Outlook's `divRplyFwdMsg` header block
//! and Thunderbird's `moz-cite-prefix` attribution are lines of their own). Markup that lays a
//! reply header out inline can still run it on after the staff text, so the cut also looks
//! for a reply header that starts in the middle of a line, and reports where the kept text
//! ends inside it.
//!
//! Where the staff text ends, the first of:
//! - an attribution line, on one line or wrapped over up to three, that starts with `On ` or a
//!   date (`2026/11/30`, `2026年11月30日`, `2026-11-30`) and has a time of day (`10:05`):
//!   `On … wrote:` (Thunderbird, Gmail, Apple Mail and iOS, Becky!'s `On <date>` /
//!   `<name> wrote:`), `<date> に 名前 さんは書きました:` (Thunderbird ja),
//!   `2026年11月30日(月) 10:05 名前 <addr>:` (Gmail ja, with an address),
//!   `2026/11/30 10:05、名前 <addr>のメール:` (Apple Mail and iOS ja), `… のメッセージ:`, and
//!   `… wrote on <date>:`; without a date, `名前 さんは書きました:` (Becky!) always, and
//!   `名前 wrote:` / `… 書きました:` / `… のメール:` only when a `>` quote follows;
//! - a line `-----Original Message-----` (any run of two or more dashes around `Original Message`,
//!   `元のメッセージ`, `オリジナル メッセージ`);
//! - a line of 30 or more underscores (Outlook's `________________________________`);
//! - a client's header block above an unquoted copy: `From:`/`差出人:` followed within six lines by
//!   two more of `Sent:`/`Date:`/`To:`/`Cc:`/`Subject:`/`送信日時:`/`日付:`/`宛先:`/`件名:`, one of
//!   them a date (also bold `*From:*`, full-width colons, and `From:` run on at the end of the
//!   previous line);
//! - a line holding one of the caller's `boundaries` ([`staff_text_with`]).
//!
//! Everything from there on is dropped. Above it, lines quoted with `>` are dropped too (the
//! staff member may have quoted without an attribution line); blank lines at either end are
//! trimmed. A signature above the quote stays: it is the staff member's to send. Kept lines are
//! the input's own lines, unchanged, except that a line where a reply header starts mid-line
//! keeps only the text before it (end trimmed).
//!
//! [`leaked_line`] is the fail-safe the relay checks afterwards: whether any line of the
//! notification's internal section would go out with the reply.

#[cfg(test)]
mod tests;

/// What a staff member wrote in reply to a notification.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StaffText {
    /// Commands from the first non-blank lines that start with `#` (a full-width `＃`, as a
    /// Japanese IME types it, counts and is given back as `#`), in order, trimmed. Blank lines
    /// between commands are skipped; reading stops at the first other line. Whether a command
    /// is known is the caller's question: an unknown one should refuse the whole mail.
    pub commands: Vec<String>,
    /// The staff member's own text after the commands: see the module documentation for what
    /// is cut. Empty for a command-only mail.
    pub reply: String,
    /// The notification was quoted with `>` and unquoted, non-blank text follows inside or
    /// below that quote (an answer written between the quoted lines, or below them), other than
    /// a `-- ` signature. That text is not in `reply`; the desk should return the mail to its
    /// sender rather than relay what may be only the greeting.
    pub text_below_quote: bool,
}

/// The commands and the staff text of a reply's text body.
pub fn staff_text(text: &str) -> StaffText {
    staff_text_with(text, &[])
}

/// [`staff_text`], also cutting at the first unquoted line that contains one of `boundaries`
/// (for instance the notification's instruction line, should a client copy the notification
/// without any header this module knows). Empty boundaries are ignored.
pub fn staff_text_with(text: &str, boundaries: &[&str]) -> StaffText {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text.lines().collect();

    let mut commands = Vec::new();
    let mut start = 0;
    while let Some(line) = lines.get(start) {
        let t = line.trim();
        if t.is_empty() {
            start += 1;
            continue;
        }
        match t.strip_prefix('#').or_else(|| t.strip_prefix('＃')) {
            Some(rest) => {
                commands.push(format!("#{rest}"));
                start += 1;
            }
            None => break,
        }
    }
    let body = lines.get(start..).unwrap_or_default();

    let boundaries: Vec<&str> = boundaries
        .iter()
        .map(|b| b.trim())
        .filter(|b| !b.is_empty())
        .collect();
    let cut = find_cut(body, &boundaries);

    let (kept_lines, tail) = match &cut {
        Some(c) => (
            body.get(..c.line).unwrap_or_default(),
            body.get(c.line)
                .and_then(|l| l.get(..c.col))
                .map(str::trim_end)
                .filter(|t| !t.trim().is_empty()),
        ),
        None => (body, None),
    };
    let mut kept: Vec<&str> = kept_lines
        .iter()
        .copied()
        .chain(tail)
        .filter(|l| !is_quoted(l))
        .collect();
    while kept.last().is_some_and(|l| is_blank(l)) {
        kept.pop();
    }
    let first = kept.iter().position(|l| !is_blank(l)).unwrap_or(kept.len());

    let text_below_quote = cut.as_ref().is_some_and(|c| {
        let after = match c.kind {
            CutKind::Attribution { last } => last + 1,
            CutKind::Header | CutKind::Separator => c.line + 1,
            CutKind::Boundary => return false,
        };
        answer_below_quote(body.get(after..).unwrap_or_default())
    });

    StaffText {
        commands,
        reply: kept.get(first..).unwrap_or_default().join("\n"),
        text_below_quote,
    }
}

/// Lines shorter than this (after folding, without spaces) are not compared by
/// [`leaked_line`]: too short to be a leak and too likely to appear by chance.
pub const MIN_LEAK_CHARS: usize = 6;

/// Fail-safe: the first line of `internal` (the notification's internal section: contract
/// status, entitlement, what was sent automatically) that appears in `reply`, trimmed, if any.
/// When this returns `Some`, the desk relays nothing.
///
/// Compared loosely, so that a re-wrapped, re-spaced or retyped copy still counts: quote marks
/// (`>`) at the start of a line and every white space (full-width `U+3000` and no-break spaces
/// included, line breaks too, so a line the client wrapped still matches) are ignored, full-width
/// ASCII forms (`：`, `（`, `Ｃ`) count as their ASCII twins, ASCII case is ignored, and a line of
/// `internal` matches anywhere inside the reply, not only as a whole line. Lines of `internal`
/// shorter than [`MIN_LEAK_CHARS`] that way, or without a letter or digit (rules such as
/// `--------`), are not compared.
pub fn leaked_line(reply: &str, internal: &str) -> Option<String> {
    let haystack: String = reply.lines().map(|l| fold(unquote(l))).collect();
    internal.lines().find_map(|line| {
        let needle = fold(unquote(line));
        let long_enough =
            needle.chars().count() >= MIN_LEAK_CHARS && needle.chars().any(char::is_alphanumeric);
        (long_enough && haystack.contains(&needle)).then(|| line.trim().to_owned())
    })
}

/// The line without leading white space and `>` marks.
fn unquote(line: &str) -> &str {
    line.trim_start_matches(|c: char| c == '>' || c.is_whitespace())
}

/// White space removed, full-width ASCII forms folded to ASCII, ASCII lowercased.
fn fold(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| match c {
            '\u{ff01}'..='\u{ff5e}' => char::from_u32(u32::from(c) - 0xfee0).unwrap_or(c),
            _ => c,
        })
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn is_blank(line: &str) -> bool {
    line.trim().is_empty()
}

fn is_quoted(line: &str) -> bool {
    line.trim_start().starts_with('>')
}

/// Where the staff text ends: before byte `col` of body line `line`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cut {
    line: usize,
    col: usize,
    kind: CutKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CutKind {
    /// An attribution line whose last line is `last`.
    Attribution {
        last: usize,
    },
    Header,
    Separator,
    Boundary,
}

/// The earliest reply header in `body`, if any.
fn find_cut(body: &[&str], boundaries: &[&str]) -> Option<Cut> {
    let mut best: Option<Cut> = None;
    for (j, line) in body.iter().enumerate() {
        if is_quoted(line) || is_blank(line) {
            continue;
        }
        // Nothing found later can start before an earlier line's cut (a cut looks back at
        // most two lines, so stop once those are past it).
        if best.is_some_and(|b| b.line + 2 < j) {
            break;
        }
        let found = [
            boundary_cut(line, boundaries).map(|col| (j, col, CutKind::Boundary)),
            separator_col(line).map(|col| (j, col, CutKind::Separator)),
            header_cut(body, j).map(|(l, col)| (l, col, CutKind::Header)),
            attribution_cut(body, j).map(|(l, col)| (l, col, CutKind::Attribution { last: j })),
        ];
        for (l, col, kind) in found.into_iter().flatten() {
            let cut = Cut { line: l, col, kind };
            if best.is_none_or(|b| (cut.line, cut.col) < (b.line, b.col)) {
                best = Some(cut);
            }
        }
    }
    best
}

fn boundary_cut(line: &str, boundaries: &[&str]) -> Option<usize> {
    boundaries.iter().filter_map(|b| line.find(b)).min()
}

/// `-----Original Message-----` (anywhere in the line: an HTML conversion may run it on) or a
/// line of Outlook's underscores.
fn separator_col(line: &str) -> Option<usize> {
    let t = line.trim();
    if t.chars().count() >= 30 && t.chars().all(|c| c == '_') {
        return Some(0);
    }
    const TITLES: &[&str] = &[
        "original message",
        "元のメッセージ",
        "オリジナル メッセージ",
        "オリジナルメッセージ",
    ];
    // ASCII lowercasing keeps byte offsets.
    let lower = line.to_ascii_lowercase();
    TITLES
        .iter()
        .flat_map(|title| {
            let lower = &lower;
            lower.match_indices(title).filter_map(move |(at, _)| {
                let before = lower.get(..at)?.trim_end_matches(' ');
                let dashes = before.len() - before.trim_end_matches('-').len();
                let after = lower.get(at + title.len()..)?.trim_start_matches(' ');
                (dashes >= 2 && after.starts_with("--")).then(|| before.len() - dashes)
            })
        })
        .min()
}

const FROM_NAMES: &[&str] = &["from", "差出人"];
const DATE_NAMES: &[&str] = &["sent", "date", "送信日時", "送信日", "日付"];
const OTHER_NAMES: &[&str] = &[
    "sent",
    "date",
    "to",
    "cc",
    "subject",
    "reply-to",
    "送信日時",
    "送信日",
    "日付",
    "宛先",
    "件名",
    "返信先",
];
/// How many lines below `From:` the rest of a header block may reach.
const HEADER_WINDOW: usize = 6;

/// The name of the header field a line starts with (`Name:` / `*Name:*` / `名前：`),
/// ASCII-lowercased.
fn header_name(line: &str) -> Option<String> {
    let s = line.trim_start().trim_start_matches('*');
    let colon = s.find([':', '：'])?;
    let name = s.get(..colon)?.trim().trim_end_matches('*').trim_end();
    (!name.is_empty() && name.chars().count() <= 12).then(|| name.to_ascii_lowercase())
}

fn is_header_line(line: &str) -> bool {
    header_name(line)
        .is_some_and(|n| FROM_NAMES.contains(&n.as_str()) || OTHER_NAMES.contains(&n.as_str()))
}

/// Whether lines `from..from + HEADER_WINDOW` hold at least `min` header lines other than
/// `From:`, one of them a date (`Sent:`, `Date:`, `送信日時:`, `日付:`): a client's header block
/// always has one, a staff member explaining a mail's fields seldom does.
fn header_block(body: &[&str], from: usize, min: usize) -> bool {
    let names: Vec<String> = body
        .iter()
        .skip(from)
        .take(HEADER_WINDOW)
        .filter(|l| !is_quoted(l))
        .filter_map(|l| header_name(l))
        .filter(|n| OTHER_NAMES.contains(&n.as_str()))
        .collect();
    names.len() >= min && names.iter().any(|n| DATE_NAMES.contains(&n.as_str()))
}

/// A client's header block starting at line `j`, or `From:` run on at the end of line `j - 1`
/// with the block's other fields from line `j` on: the cut's line and column.
fn header_cut(body: &[&str], j: usize) -> Option<(usize, usize)> {
    let line = body.get(j)?;
    let name = header_name(line)?;
    if FROM_NAMES.contains(&name.as_str()) {
        return header_block(body, j + 1, 2).then_some((j, 0));
    }
    if !OTHER_NAMES.contains(&name.as_str()) || !header_block(body, j, 2) {
        return None;
    }
    let prev = body.get(j.checked_sub(1)?)?;
    if is_quoted(prev) {
        return None;
    }
    run_on_from(prev).map(|col| (j - 1, col))
}

/// Where a `From:` field starts after white space inside `line`.
fn run_on_from(line: &str) -> Option<usize> {
    let lower = line.to_ascii_lowercase();
    FROM_NAMES
        .iter()
        .flat_map(|name| {
            let lower = &lower;
            lower.match_indices(name).filter_map(move |(at, _)| {
                let mut start = at;
                let before = lower.get(..at)?;
                let before = match before.strip_suffix('*') {
                    Some(b) => {
                        start -= 1;
                        b
                    }
                    None => before,
                };
                let after_space = before.chars().next_back().is_some_and(char::is_whitespace);
                let rest = lower.get(at + name.len()..)?.trim_start_matches(['*', ' ']);
                (after_space && (rest.starts_with(':') || rest.starts_with('：'))).then_some(start)
            })
        })
        .min()
}

/// What an attribution line ends with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// `… wrote:`
    Wrote,
    /// `… wrote on <date>:`
    WroteOn,
    /// `… さんは書きました:`
    SanWrote,
    /// `… 書きました:`
    Kakimashita,
    /// `… のメール:` / `… のメッセージ:`
    NoMail,
    /// `… <addr>:` (Gmail ja)
    Address,
}

fn ending(line: &str) -> Option<Ending> {
    let t = line.trim_end();
    let head = t
        .strip_suffix(':')
        .or_else(|| t.strip_suffix('：'))?
        .trim_end();
    let lower = head.to_ascii_lowercase();
    Some(if lower.ends_with("wrote") {
        Ending::Wrote
    } else if lower.contains(" wrote on ") {
        Ending::WroteOn
    } else if head.ends_with("さんは書きました") {
        Ending::SanWrote
    } else if head.ends_with("書きました") {
        Ending::Kakimashita
    } else if head.ends_with("のメール") || head.ends_with("のメッセージ") {
        Ending::NoMail
    } else if head.ends_with('>') {
        Ending::Address
    } else {
        return None;
    })
}

/// The longest an attribution may be, in characters, wrapped lines joined.
const MAX_ATTRIBUTION_CHARS: usize = 300;
/// How many lines an attribution may be wrapped over.
const MAX_ATTRIBUTION_LINES: usize = 3;

/// An attribution whose last line is `j`: the line and column where it starts.
fn attribution_cut(body: &[&str], j: usize) -> Option<(usize, usize)> {
    let end = ending(body.get(j)?)?;
    for k in (j.saturating_sub(MAX_ATTRIBUTION_LINES - 1)..=j).rev() {
        let span = body.get(k..=j)?;
        if span.iter().any(|l| is_blank(l) || is_quoted(l)) {
            break;
        }
        let Some(first) = span.first() else { break };
        let starts = match end {
            Ending::Wrote => on_starts(first),
            Ending::SanWrote | Ending::Kakimashita | Ending::NoMail | Ending::Address => {
                date_starts(first)
            }
            Ending::WroteOn => vec![0],
        };
        let below = span.get(1..).unwrap_or_default();
        let below_chars: usize = below.iter().map(|l| l.chars().count() + 1).sum();
        // From the last start back: each earlier one is longer, so stop at the first too long
        // (this also keeps a huge line with many starts linear).
        for col in starts.into_iter().rev() {
            let Some(rest) = first.get(col..) else { break };
            if rest.chars().take(MAX_ATTRIBUTION_CHARS + 1).count() + below_chars
                > MAX_ATTRIBUTION_CHARS
            {
                break;
            }
            let joined = std::iter::once(rest)
                .chain(below.iter().copied())
                .collect::<Vec<_>>()
                .join(" ");
            if plausible(end, &joined) {
                return Some((k, col));
            }
        }
    }
    // Attributions without a date: the whole last line.
    let line = body.get(j)?;
    let short = line.trim().chars().count() <= MAX_ATTRIBUTION_CHARS;
    let quote_follows = body
        .iter()
        .skip(j + 1)
        .find(|l| !is_blank(l))
        .is_some_and(|l| is_quoted(l));
    let alone = match end {
        Ending::SanWrote => true,
        Ending::Wrote | Ending::Kakimashita | Ending::NoMail => quote_follows,
        Ending::WroteOn | Ending::Address => false,
    };
    (short && alone).then_some((j, 0))
}

/// Whether an attribution that starts with `On …` or a date and ends with `end` looks like one:
/// it has a time of day (every client writes one), and an address where the client puts one.
fn plausible(end: Ending, joined: &str) -> bool {
    has_time(joined)
        && match end {
            Ending::Wrote | Ending::WroteOn | Ending::SanWrote => true,
            Ending::Kakimashita => joined.contains("さんは") || joined.contains('@'),
            Ending::NoMail => joined.contains('@'),
            Ending::Address => joined.contains('@') && joined.contains('<'),
        }
}

/// `h:mm` somewhere in `s`.
fn has_time(s: &str) -> bool {
    s.as_bytes().windows(4).any(|w| {
        matches!(w, [h, b':', m1, m2] if h.is_ascii_digit() && m1.is_ascii_digit() && m2.is_ascii_digit())
    })
}

/// Byte offsets in `line` where a word starts (the line's start, or after white space).
fn word_starts(line: &str) -> impl Iterator<Item = usize> + '_ {
    let mut prev_space = true;
    line.char_indices().filter_map(move |(i, c)| {
        let start = prev_space && !c.is_whitespace();
        prev_space = c.is_whitespace();
        start.then_some(i)
    })
}

/// Where `On ` starts a word in `line`.
fn on_starts(line: &str) -> Vec<usize> {
    word_starts(line)
        .filter(|&i| line.get(i..).is_some_and(|s| s.starts_with("On ")))
        .collect()
}

/// Where a date (`2026/11/30`, `2026年11月30日`, `2026-11-30`, `2026.11.30`) starts a word in
/// `line`.
fn date_starts(line: &str) -> Vec<usize> {
    word_starts(line)
        .filter(|&i| {
            let mut chars = line.get(i..).unwrap_or_default().chars();
            (0..4).all(|_| chars.next().is_some_and(|c| c.is_ascii_digit()))
                && matches!(chars.next(), Some('/' | '年' | '-' | '.'))
                && chars.next().is_some_and(|c| c.is_ascii_digit())
        })
        .collect()
}

/// Below a reply header: the copy is `>`-quoted, and unquoted text other than a `-- `
/// signature follows inside or after it.
fn answer_below_quote(rest: &[&str]) -> bool {
    let mut lines = rest
        .iter()
        .filter(|l| !is_blank(l))
        .skip_while(|l| is_header_line(l));
    if !lines.next().is_some_and(|l| is_quoted(l)) {
        return false;
    }
    for line in lines {
        if is_quoted(line) {
            continue;
        }
        return !matches!(line.trim_end(), "--" | "-- ");
    }
    false
}
