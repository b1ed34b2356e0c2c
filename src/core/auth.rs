//! Is this staff mail authenticated? RFC 8601 `Authentication-Results` header fields, judged
//! for a staff From address. Pure: the header values, the trusted authserv-ids and the From
//! domain in, a [`StaffAuth`] out. (With `[staff] authentication = "dkim"` the desk verifies
//! the signatures itself: [`dkim`] judges what its verifier found.)
//!
//! ## Trust model
//!
//! Anyone can write an `Authentication-Results` header into the mail they send, with any
//! authserv-id and any result. What a sender cannot do is put a header *above* the one the
//! receiving border MTA adds when the mail arrives: every hop adds its header fields on top.
//! So only the **topmost** header whose authserv-id is trusted counts (RFC 8601 §5, §7.2);
//! a header with the same id further down is the sender's and is never read, and headers from
//! authserv-ids that are not trusted are ignored entirely, wherever they are.
//!
//! This relies on the trusted MTA adding its header to *every* message it accepts (or removing
//! the ones that claim its authserv-id, as RFC 8601 §5 asks): if it let a message through
//! without one, a forged header with its id would be the topmost. The desk cannot check that;
//! the admin who writes `trusted_authserv_ids` vouches for it.
//!
//! The counted header must say `dkim=pass` for a domain aligned with the From domain
//! (`header.d`, else the domain of `header.i`), or `dmarc=pass` (for the From domain, when the
//! header says `header.from`). Everything else is [`StaffAuth::Unauthenticated`] with a reason
//! in English for logs and staff notices.
//!
//! Fail closed: a header above the counted one whose authserv-id cannot be read at all means
//! no pass (it could be the trusted MTA's, damaged); a counted header that cannot be read
//! (unclosed comment or quoted string, junk after the authserv-id, a version other than 1)
//! does not pass, and neither does a result whose domain appears twice with different values.
//! No input panics.
//!
//! ## Parsing
//!
//! RFC 8601 §2.2 as a consumer needs it: comments in parentheses (nested, with quoted-pairs)
//! are whitespace; quoted strings are values (a `;`, `=` or `(` inside one is text); folding
//! whitespace is whitespace; `;` separates the authserv-id (with its optional version) from
//! each `resinfo`; a lone `none` means no results; method, result and property names compare
//! case-insensitively, and so do domains.

/// Whether a staff mail is authenticated, and how (or why not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StaffAuth {
    /// `method`: what passed, e.g. `dkim=pass header.d=example.co.jp` or `dmarc=pass`.
    Authenticated { method: String },
    /// `reason`: why not, in English, precise enough for a staff notice, e.g.
    /// `dkim=fail (header.d=example.co.jp) and no dmarc=pass`.
    Unauthenticated { reason: String },
}

impl StaffAuth {
    pub fn is_authenticated(&self) -> bool {
        matches!(self, StaffAuth::Authenticated { .. })
    }
}

/// Judges a staff mail by its `Authentication-Results` header values (raw, unfolded or not,
/// topmost first), the authserv-ids whose headers are believed, and the domain of its From
/// address.
pub fn evaluate(
    headers_top_first: &[String],
    trusted_authserv_ids: &[String],
    from_domain: &str,
) -> StaffAuth {
    let Some(from) = domain_name(from_domain) else {
        return unauthenticated(format!(
            "the From domain {:?} is not a domain name",
            shown(from_domain)
        ));
    };
    let trusted: Vec<String> = trusted_authserv_ids
        .iter()
        .map(|id| id.trim().to_ascii_lowercase())
        .filter(|id| !id.is_empty())
        .collect();
    let mut seen: Vec<String> = Vec::new();
    // The first header whose authserv-id cannot be read: if it is above the trusted one, it may
    // be the trusted MTA's own, damaged, and the one found below it may be the sender's.
    let mut unreadable: Option<&str> = None;
    for value in headers_top_first {
        let header = parse_header(value);
        let Some(id) = header.authserv_id.as_deref() else {
            unreadable.get_or_insert(value);
            continue;
        };
        let id = id.to_ascii_lowercase();
        if trusted.contains(&id) {
            if let Some(damaged) = unreadable {
                return unauthenticated(format!(
                    "an Authentication-Results header without a readable authserv-id ({:?}) is \
                     above the one from {}",
                    shown(damaged),
                    shown(&id)
                ));
            }
            return judge(&header, &id, &from);
        }
        if !seen.contains(&id) {
            seen.push(id);
        }
    }
    if unreadable.is_some() {
        seen.push("one without a readable authserv-id".to_owned());
    }
    let seen = if seen.is_empty() {
        "none".to_owned()
    } else {
        listed(&seen)
    };
    if trusted.is_empty() {
        unauthenticated(format!(
            "no Authentication-Results header from a trusted authserv-id (none is configured; \
             seen: {seen})"
        ))
    } else {
        unauthenticated(format!(
            "no Authentication-Results header from a trusted authserv-id (seen: {seen})"
        ))
    }
}

fn unauthenticated(reason: String) -> StaffAuth {
    StaffAuth::Unauthenticated { reason }
}

/// The counted header's verdict.
fn judge(header: &Header, id: &str, from: &str) -> StaffAuth {
    let id = shown(id);
    if let Some(defect) = &header.defect {
        return unauthenticated(format!(
            "the Authentication-Results header from {id} cannot be read ({defect})"
        ));
    }
    if header.none {
        return unauthenticated(format!(
            "the Authentication-Results header from {id} reports no results (none)"
        ));
    }

    let mut dkim = Vec::new();
    let mut dkim_passed = false;
    for r in header.results.iter().filter(|r| r.method == "dkim") {
        match dkim_verdict(r, from) {
            Ok(method) => return StaffAuth::Authenticated { method },
            Err(why) => {
                dkim_passed |= r.result == "pass";
                dkim.push(why);
            }
        }
    }
    let mut dmarc = Vec::new();
    for r in header.results.iter().filter(|r| r.method == "dmarc") {
        match dmarc_verdict(r, from) {
            Ok(method) => return StaffAuth::Authenticated { method },
            Err(why) => dmarc.push(why),
        }
    }

    if dkim.is_empty() && dmarc.is_empty() {
        let others: Vec<String> = header
            .results
            .iter()
            .filter(|r| !r.method.is_empty())
            .map(|r| format!("{}={}", r.method, r.result))
            .collect();
        return unauthenticated(if others.is_empty() {
            format!("the Authentication-Results header from {id} has no dkim or dmarc result")
        } else {
            format!(
                "the Authentication-Results header from {id} has no dkim or dmarc result \
                 (only {})",
                listed(&others)
            )
        });
    }
    let mut reason = if dkim.is_empty() {
        "no dkim result".to_owned()
    } else {
        at_most_five(dkim).join("; ")
    };
    if dmarc.is_empty() {
        if !dkim_passed {
            reason.push_str(" and no dmarc=pass");
        }
    } else {
        reason.push_str("; ");
        reason.push_str(&at_most_five(dmarc).join("; "));
    }
    unauthenticated(reason)
}

/// `Ok(method)` for a `dkim=pass` aligned with the From domain, else what it said instead.
fn dkim_verdict(r: &ResInfo, from: &str) -> Result<String, String> {
    let result = shown(&r.result);
    if let Some(defect) = &r.defect {
        return Err(if r.result.is_empty() {
            format!("dkim result that cannot be read ({defect})")
        } else {
            format!("dkim={result} that cannot be read ({defect})")
        });
    }
    // The signing domain: header.d; without it, the domain of the agent (header.i), which a
    // verifier only reports when it is d= or below it.
    let (prop, value) = match (r.prop("header.d"), r.prop("header.i")) {
        (Prop::Conflict, _) => return Err(format!("dkim={result} with conflicting header.d")),
        (Prop::One(d), _) => ("header.d", d),
        (Prop::Absent, Prop::Conflict) => {
            return Err(format!("dkim={result} with conflicting header.i"));
        }
        (Prop::Absent, Prop::One(i)) => ("header.i", i),
        (Prop::Absent, Prop::Absent) if r.result == "pass" => {
            return Err("dkim=pass without header.d or header.i".to_owned());
        }
        (Prop::Absent, Prop::Absent) => return Err(format!("dkim={result}")),
    };
    if r.result != "pass" {
        return Err(format!("dkim={result} ({prop}={})", shown(value)));
    }
    let domain = if prop == "header.i" {
        value.rsplit('@').next().unwrap_or(value)
    } else {
        value
    };
    match domain_name(domain) {
        Some(d) if aligned(&d, from) => Ok(format!("dkim=pass {prop}={}", shown(value))),
        Some(d) => Err(format!(
            "dkim=pass for {}, not aligned with {from}",
            shown(&d)
        )),
        None => Err(format!(
            "dkim=pass for {} ({prop}), not a domain name",
            shown(value)
        )),
    }
}

/// `Ok(method)` for a `dmarc=pass` for the From domain, else what it said instead.
fn dmarc_verdict(r: &ResInfo, from: &str) -> Result<String, String> {
    let result = shown(&r.result);
    if let Some(defect) = &r.defect {
        return Err(if r.result.is_empty() {
            format!("dmarc result that cannot be read ({defect})")
        } else {
            format!("dmarc={result} that cannot be read ({defect})")
        });
    }
    let header_from = match r.prop("header.from") {
        Prop::Conflict => return Err(format!("dmarc={result} with conflicting header.from")),
        Prop::One(v) => Some(v),
        Prop::Absent => None,
    };
    match (r.result == "pass", header_from) {
        (true, None) => Ok("dmarc=pass".to_owned()),
        (true, Some(v)) if domain_name(v).as_deref() == Some(from) => Ok("dmarc=pass".to_owned()),
        (true, Some(v)) => Err(format!("dmarc=pass for {}, not {from}", shown(v))),
        (false, None) => Err(format!("dmarc={result}")),
        (false, Some(v)) => Err(format!("dmarc={result} (header.from={})", shown(v))),
    }
}

/// Relaxed alignment: the same domain, or one a subdomain of the other.
///
/// DMARC's relaxed alignment compares organizational domains, which takes the public suffix
/// list; without it this is a conservative approximation. It never aligns siblings
/// (`a.example.co.jp` with `b.example.co.jp`, which DMARC would), and the shorter domain must
/// have at least one dot, so a signature by a top-level domain (`jp`) aligns with nothing. What
/// it cannot rule out is a signature by a multi-label public suffix such as `co.jp` aligning
/// with `example.co.jp`: only the registry could publish that key.
fn aligned(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    let (short, long) = if a.len() < b.len() { (a, b) } else { (b, a) };
    short.contains('.')
        && long
            .strip_suffix(short)
            .is_some_and(|head| head.ends_with('.'))
}

/// A domain name in normal form (trimmed, lowercase, no final dot), if it is one: dot-separated
/// non-empty labels of letters, digits, `-` and `_` (any script, for internationalized names).
fn domain_name(s: &str) -> Option<String> {
    let s = s.trim().to_lowercase();
    let s = s.strip_suffix('.').unwrap_or(&s);
    let ok = !s.is_empty()
        && s.split('.').all(|label| {
            !label.is_empty()
                && label
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
        });
    ok.then(|| s.to_owned())
}

/// Text from a header in a reason: control characters as `?`, at most 64 characters. (The
/// sender may have written it; a reason is one line of reasonable length.)
fn shown(s: &str) -> String {
    const MAX: usize = 64;
    let mut out: String = s
        .chars()
        .take(MAX)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if s.chars().nth(MAX).is_some() {
        out.push('…');
    }
    out
}

/// At most five items, each [`shown`], comma-separated.
fn listed(items: &[String]) -> String {
    at_most_five(items.iter().map(|s| shown(s)).collect()).join(", ")
}

/// The first five items, and `and N more` for the rest.
fn at_most_five(mut items: Vec<String>) -> Vec<String> {
    const MAX: usize = 5;
    if items.len() > MAX {
        let more = items.len() - MAX;
        items.truncate(MAX);
        items.push(format!("and {more} more"));
    }
    items
}

// ───────────────────────── parsing ─────────────────────────

/// One `Authentication-Results` header value as read.
#[derive(Debug, Default)]
struct Header {
    /// The first value of the header, ASCII-lowercased; `None` when there is none to read.
    authserv_id: Option<String>,
    /// Why the header as a whole cannot be believed, if it cannot.
    defect: Option<String>,
    /// The `none` result: nothing was checked.
    none: bool,
    results: Vec<ResInfo>,
}

/// One `resinfo`: `method=result` and its properties.
#[derive(Debug, Default)]
struct ResInfo {
    /// Lowercased, without a `/version`.
    method: String,
    /// Lowercased.
    result: String,
    /// `ptype.property` (lowercased) → value, in order; `reason` is left out.
    props: Vec<(String, String)>,
    /// Why this result cannot be believed, if it cannot.
    defect: Option<String>,
}

enum Prop<'a> {
    Absent,
    One(&'a str),
    /// Given more than once with different values.
    Conflict,
}

impl ResInfo {
    fn prop(&self, name: &str) -> Prop<'_> {
        let mut found: Option<&str> = None;
        for (k, v) in &self.props {
            if k == name {
                match found {
                    Some(prev) if !prev.eq_ignore_ascii_case(v) => return Prop::Conflict,
                    _ => found = Some(v),
                }
            }
        }
        found.map_or(Prop::Absent, Prop::One)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// A run of text: atoms and quoted strings written together (`"a;b"@example.jp` is one).
    Word(String),
    Semi,
    Equals,
}

/// Tokens of a header value, and the first lexical defect (unclosed comment or quoted string,
/// a `)` that closes nothing).
fn tokenize(value: &str) -> (Vec<Token>, Option<String>) {
    let mut tokens = Vec::new();
    let mut defect: Option<String> = None;
    let mut word: Option<String> = None;
    let mut chars = value.chars();
    let flush = |word: &mut Option<String>, tokens: &mut Vec<Token>| {
        if let Some(w) = word.take() {
            tokens.push(Token::Word(w));
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '(' => {
                flush(&mut word, &mut tokens);
                let mut depth = 1usize;
                while depth > 0 {
                    match chars.next() {
                        None => {
                            defect.get_or_insert_with(|| "unclosed comment".to_owned());
                            break;
                        }
                        Some('\\') => {
                            chars.next();
                        }
                        Some('(') => depth += 1,
                        Some(')') => depth -= 1,
                        Some(_) => {}
                    }
                }
            }
            ')' => {
                flush(&mut word, &mut tokens);
                defect.get_or_insert_with(|| "a ')' that closes no comment".to_owned());
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        None => {
                            defect.get_or_insert_with(|| "unclosed quoted string".to_owned());
                            break;
                        }
                        Some('\\') => {
                            if let Some(escaped) = chars.next() {
                                w.push(escaped);
                            }
                        }
                        Some('"') => break,
                        Some(other) => w.push(other),
                    }
                }
            }
            ';' => {
                flush(&mut word, &mut tokens);
                tokens.push(Token::Semi);
            }
            '=' => {
                flush(&mut word, &mut tokens);
                tokens.push(Token::Equals);
            }
            c if c.is_whitespace() || c.is_control() => flush(&mut word, &mut tokens),
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    flush(&mut word, &mut tokens);
    (tokens, defect)
}

fn parse_header(value: &str) -> Header {
    let (tokens, lexical) = tokenize(value);
    let mut segments = tokens.split(|t| *t == Token::Semi);
    let first = segments.next().unwrap_or_default();
    let mut header = Header {
        defect: lexical,
        ..Header::default()
    };
    match first {
        [Token::Word(id), rest @ ..] => {
            header.authserv_id = Some(id.to_ascii_lowercase());
            match rest {
                [] => {}
                [Token::Word(v)] if v == "1" => {}
                [Token::Word(v)] if !v.is_empty() && v.chars().all(|c| c.is_ascii_digit()) => {
                    header
                        .defect
                        .get_or_insert_with(|| format!("version {} is not understood", shown(v)));
                }
                _ => {
                    header
                        .defect
                        .get_or_insert_with(|| "unexpected text after the authserv-id".to_owned());
                }
            }
        }
        _ => return header,
    }
    let resinfos: Vec<&[Token]> = segments.filter(|s| !s.is_empty()).collect();
    match resinfos.as_slice() {
        [] => header.none = true,
        [[Token::Word(w)]] if w.eq_ignore_ascii_case("none") => header.none = true,
        _ => header.results = resinfos.into_iter().map(parse_resinfo).collect(),
    }
    header
}

/// `method[/version]=result [reason=value] [ptype.property=value …]`, read as `key=value`
/// pairs. A key may be written in pieces around `.` or `/` (`header . d`); `=` after a value
/// belongs to it (base64 padding in `header.b`).
fn parse_resinfo(tokens: &[Token]) -> ResInfo {
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut key: Vec<&str> = Vec::new();
    let mut defect: Option<String> = None;
    let mut i = 0;
    while let Some(token) = tokens.get(i) {
        match token {
            Token::Word(w) => key.push(w),
            Token::Equals if key.is_empty() => match pairs.last_mut() {
                Some((_, value)) => value.push('='),
                None => {
                    defect.get_or_insert_with(|| "'=' without a name".to_owned());
                }
            },
            Token::Equals => {
                let (name, junk) = joined_key(&key);
                key.clear();
                if junk {
                    defect.get_or_insert_with(|| format!("stray text before {}", shown(&name)));
                }
                match tokens.get(i + 1) {
                    Some(Token::Word(value)) => {
                        pairs.push((name.to_ascii_lowercase(), value.clone()));
                        i += 1;
                    }
                    _ => {
                        defect.get_or_insert_with(|| format!("{} without a value", shown(&name)));
                        pairs.push((name.to_ascii_lowercase(), String::new()));
                    }
                }
            }
            Token::Semi => {}
        }
        i += 1;
    }
    if !key.is_empty() {
        defect.get_or_insert_with(|| format!("stray text {}", shown(&key.join(" "))));
    }
    let mut pairs = pairs.into_iter();
    let Some((method, result)) = pairs.next() else {
        return ResInfo {
            defect: defect.or_else(|| Some("no method=result".to_owned())),
            ..ResInfo::default()
        };
    };
    let method = method
        .split('/')
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned();
    ResInfo {
        method,
        result: result.to_ascii_lowercase(),
        props: pairs.filter(|(k, _)| k != "reason").collect(),
        defect,
    }
}

/// The key before an `=`, from the words since the last value: pieces that touch a `.` or `/`
/// join up (`header . d` → `header.d`); any word before those is stray (`true` returned).
fn joined_key(words: &[&str]) -> (String, bool) {
    let mut start = words.len().saturating_sub(1);
    while start > 0 {
        let (before, after) = (words[start - 1], words[start]);
        let joins = before.ends_with(['.', '/']) || after.starts_with(['.', '/']);
        if !joins {
            break;
        }
        start -= 1;
    }
    (words[start..].concat(), start > 0)
}

#[cfg(test)]
mod tests;

pub mod dkim;
pub use dkim::{DkimReport, DkimResult, DkimSignature};

/// How staff mail is authenticated (`staff.authentication`). Mail that fails is held, never
/// acted on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StaffAuthentication {
    /// The topmost `Authentication-Results` header from one of these authserv-ids
    /// (lowercased) must show an aligned `dkim=pass` or a `dmarc=pass` (`core::auth`). Empty
    /// only when `[staff]` was not written: then no staff mail is authenticated.
    AuthenticationResults { trusted_authserv_ids: Vec<String> },
    /// The desk verifies the DKIM signatures itself (`core::auth::dkim`): one that verifies,
    /// by a domain aligned with the From domain, covering From.
    Dkim,
    /// No authentication: a From that names a staff address is believed. `check-config`
    /// warns.
    None,
}

impl Default for StaffAuthentication {
    fn default() -> Self {
        StaffAuthentication::AuthenticationResults {
            trusted_authserv_ids: Vec::new(),
        }
    }
}

impl StaffAuthentication {
    /// The spelling in the config (`staff.authentication`).
    pub fn as_str(&self) -> &'static str {
        match self {
            StaffAuthentication::AuthenticationResults { .. } => "authentication-results",
            StaffAuthentication::Dkim => "dkim",
            StaffAuthentication::None => "none",
        }
    }

    /// One line for `check-config` and the summary: what the desk believes.
    pub fn describe(&self) -> String {
        match self {
            StaffAuthentication::AuthenticationResults {
                trusted_authserv_ids,
            } if trusted_authserv_ids.is_empty() => "authentication-results with no trusted \
                 authserv-id: no staff mail is authenticated"
                .to_owned(),
            StaffAuthentication::AuthenticationResults {
                trusted_authserv_ids,
            } => format!(
                "authentication-results: the topmost Authentication-Results header from {} \
                 must show dkim=pass aligned with the From domain, or dmarc=pass",
                trusted_authserv_ids.join(", ")
            ),
            StaffAuthentication::Dkim => "dkim: the desk verifies the DKIM signatures of staff \
                 mail itself; one must verify, by a domain aligned with the From domain, and \
                 cover From"
                .to_owned(),
            StaffAuthentication::None => {
                "none: staff mail is NOT authenticated; a forged From is believed".to_owned()
            }
        }
    }
}

impl StaffAuthentication {
    /// The verdict on mail `From: from_address`, a staff address: by its
    /// `Authentication-Results` header values (topmost first), or by what the desk's own DKIM
    /// verifier found (`None`: not checked).
    pub fn judge(
        &self,
        headers_top_first: &[String],
        dkim: Option<&DkimReport>,
        from_address: &str,
    ) -> StaffAuth {
        match self {
            StaffAuthentication::AuthenticationResults {
                trusted_authserv_ids,
            } => {
                let from_domain = from_address.rsplit_once('@').map_or("", |(_, d)| d);
                evaluate(headers_top_first, trusted_authserv_ids, from_domain)
            }
            StaffAuthentication::Dkim => dkim::judge(dkim, from_address),
            StaffAuthentication::None => StaffAuth::Authenticated {
                method: "none (staff.authentication = \"none\")".into(),
            },
        }
    }
}
