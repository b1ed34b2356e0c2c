//! HTML → text, for HTML-only mail (and an HTML body beside an empty text/plain part).
//!
//! Our own converter rather than a crate: it reads the markup in one pass, in time linear in the
//! input whatever the nesting (an HTML5 tree builder spends time quadratic in the nesting depth,
//! and this reads mail from anyone), and it writes what a reader of the mail saw, which the
//! staff-reply cut (`core::staff_reply`) and the relay to the customer rely on:
//! - block elements end the line: `<div>`, `<li>`, `<tr>`, `<table>`, `<blockquote>`, `<pre>`,
//!   `<hr>` … one line break, `<br>` one line break of its own; `<p>` and headings a blank line
//!   before and after, except a paragraph without vertical margins (Outlook's `MsoNormal` and
//!   other `Mso…` classes, `margin: 0` in its `style`, or a `<style>` rule such as Outlook on the
//!   web's `P {margin-top:0;margin-bottom:0;}`), which is one line;
//! - `<blockquote>` lines are quoted with `>` (one mark a level, `>> ` below two), like a
//!   text/plain reply, so a quoted copy is recognised as quoted;
//! - `<li>` starts its own line with `- ` (or `1. ` in an `<ol>`), nested lists indented;
//!   table cells of one row are separated by a space;
//! - `<pre>` keeps its spaces and line breaks; elsewhere a run of white space is one space, none
//!   at the start or end of a line, and none where a line break in the source falls between two
//!   East Asian wide characters (CSS Text 3: Japanese text wrapped in the source stays whole);
//!   a no-break space is a space that is not collapsed;
//! - character references are decoded (all HTML named references, numeric ones with the
//!   windows-1252 repairs browsers make);
//! - `<head>`, `<style>`, `<script>`, `<title>`, `<template>`, comments, and elements hidden
//!   with `display: none` or `hidden` are dropped;
//! - at most one blank line in a row, none at either end; no line is wrapped.

use mail_parser::decoders::html::add_html_token;

#[cfg(test)]
mod tests;

/// `>` marks written at most, however deep blockquotes nest (the depth is still counted).
const MAX_QUOTE_MARKS: usize = 10;
/// Lists are indented at most this many levels.
const MAX_LIST_INDENT: usize = 8;
/// Open lists remembered (for numbering); deeper ones are only counted.
const MAX_LISTS: usize = 64;
/// Classes a `<style>` rule gave paragraph margins, remembered at most.
const MAX_CSS_CLASSES: usize = 64;

/// The text a reader of `html` sees (see the module documentation). Never fails.
pub(crate) fn to_text(html: &str) -> String {
    let mut c = Converter::default();
    let mut pos = 0;
    while pos < html.len() {
        let rest = html.get(pos..).unwrap_or_default();
        let lt = rest.find('<').unwrap_or(rest.len());
        c.text(rest.get(..lt).unwrap_or_default());
        pos += lt;
        if pos < html.len() {
            pos = c.markup(html, pos).max(pos + 1);
        }
    }
    c.finish()
}

/// White space waiting to be written before the next character.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Space {
    /// Spaces and tabs only.
    Plain,
    /// The run held a line break (dropped between two East Asian wide characters).
    Segment,
}

/// Whether a paragraph's top and bottom margins are zero, where known.
type Margins = (Option<bool>, Option<bool>);

/// What a start tag says that the conversion needs.
#[derive(Debug, Default)]
struct Tag {
    /// Lowercased.
    name: String,
    /// Lowercased.
    class: String,
    /// Lowercased.
    style: String,
    hidden: bool,
    /// `<ol start=N>`.
    start: Option<i64>,
}

#[derive(Debug, Default)]
struct Converter {
    out: String,
    /// Something has been written.
    started: bool,
    /// Line breaks owed before the next character (at most 2: one blank line).
    breaks: usize,
    space: Option<Space>,
    /// A list marker was just written: drop the white space before the next character, and
    /// break no line for a block that starts there.
    no_space: bool,
    last: char,
    /// Blockquote depth now, and of the line last written.
    quote: usize,
    line_quote: usize,
    pre: usize,
    /// Skip a line break right after `<pre>`.
    pre_newline: bool,
    in_head: bool,
    /// A hidden element's name and how many of that name are open inside it.
    hidden: Option<(String, usize)>,
    /// The open paragraph's break after it (1 or 2).
    open_p: Option<usize>,
    /// Open lists: `None` unordered, `Some(next number)` ordered.
    lists: Vec<Option<i64>>,
    lists_overflow: usize,
    /// From `<style>`: whether a plain `<p>` has no top and bottom margin, and the same for
    /// `p.CLASS` rules.
    css_p: Margins,
    css_classes: Vec<(String, Margins)>,
}

impl Converter {
    /// Text between tags: character references decoded, white space collapsed (not in `<pre>`).
    fn text(&mut self, s: &str) {
        if s.is_empty() || self.hidden.is_some() || self.in_head {
            return;
        }
        let mut rest = s;
        while let Some(c) = rest.chars().next() {
            let (decoded, len) = if c == '&' {
                entity(rest).unwrap_or(('&', 1))
            } else {
                (c, c.len_utf8())
            };
            rest = rest.get(len..).unwrap_or_default();
            self.char(decoded);
        }
    }

    fn char(&mut self, c: char) {
        if self.pre > 0 {
            let first = std::mem::take(&mut self.pre_newline);
            match c {
                '\r' => {}
                '\n' if first => {}
                '\n' => self.line_break(),
                '\u{a0}' => self.put(' '),
                c if c.is_control() && c != '\t' => {}
                c => self.put(c),
            }
            return;
        }
        match c {
            ' ' | '\t' | '\x0c' => self.space = self.space.max(Some(Space::Plain)),
            '\n' | '\r' => self.space = Some(Space::Segment),
            '\u{a0}' => self.put(' '),
            c if c.is_control() => {}
            c => self.put(c),
        }
    }

    /// Write one character, with the line breaks, quote marks and space owed before it.
    fn put(&mut self, c: char) {
        let new_line = !self.started || self.breaks > 0;
        if self.started && self.breaks > 0 {
            let blank_marks = self.line_quote.min(self.quote).min(MAX_QUOTE_MARKS);
            for k in 0..self.breaks {
                self.out.push('\n');
                if k + 1 < self.breaks {
                    self.out.extend(std::iter::repeat_n('>', blank_marks));
                }
            }
            self.breaks = 0;
        }
        let space = self.space.take();
        if new_line {
            let marks = self.quote.min(MAX_QUOTE_MARKS);
            if marks > 0 {
                self.out.extend(std::iter::repeat_n('>', marks));
                self.out.push(' ');
            }
            self.line_quote = self.quote;
        } else if let Some(kind) = space
            && !self.no_space
            && !(kind == Space::Segment && is_wide(self.last) && is_wide(c))
        {
            self.out.push(' ');
        }
        self.no_space = false;
        self.out.push(c);
        self.last = c;
        self.started = true;
    }

    /// A block boundary: the next text starts a new line (`n` = 1) or a paragraph (`n` = 2).
    fn block(&mut self, n: usize) {
        if self.started {
            self.breaks = self.breaks.max(n);
        }
        self.space = None;
    }

    /// A block element starts: [`Self::block`], except right after a list marker (`<li><div>`
    /// keeps the marker on the div's first line).
    fn begin(&mut self, n: usize) {
        if self.no_space {
            self.space = None;
        } else {
            self.block(n);
        }
    }

    /// `<br>` (or a line break in `<pre>`): one more line break.
    fn line_break(&mut self) {
        if self.started {
            self.breaks = (self.breaks + 1).min(2);
        }
        self.space = None;
    }

    fn close_p(&mut self) {
        if let Some(n) = self.open_p.take() {
            self.block(n);
        }
    }

    /// The markup starting with the `<` at `pos`; returns where reading goes on.
    fn markup(&mut self, html: &str, pos: usize) -> usize {
        let bytes = html.as_bytes();
        let after = html.get(pos + 1..).unwrap_or_default();
        match bytes.get(pos + 1) {
            Some(b'!') if after.starts_with("!--") => {
                let body = after.get(3..).unwrap_or_default();
                if body.starts_with('>') {
                    pos + 5
                } else if body.starts_with("->") {
                    pos + 6
                } else {
                    body.find("-->").map_or(html.len(), |i| pos + 4 + i + 3)
                }
            }
            Some(b'!' | b'?') => skip_past_gt(html, pos),
            Some(b'/') => match bytes.get(pos + 2) {
                Some(c) if c.is_ascii_alphabetic() => {
                    let (name, _) = tag_name(html, pos + 2);
                    let end = skip_past_gt(html, pos);
                    self.end_tag(&name);
                    end
                }
                _ => skip_past_gt(html, pos),
            },
            Some(c) if c.is_ascii_alphabetic() => match parse_tag(html, pos) {
                Some((tag, end)) => self.start_tag(&tag, html, end),
                // A tag cut off by the end of the input is dropped, as browsers do.
                None => html.len(),
            },
            _ => {
                self.text("<");
                pos + 1
            }
        }
    }

    fn start_tag(&mut self, tag: &Tag, html: &str, end: usize) -> usize {
        let name = tag.name.as_str();
        if matches!(
            name,
            "style" | "script" | "title" | "template" | "noembed" | "noframes"
        ) {
            let (content, after) = raw_text(html, end, name);
            if name == "style" {
                self.read_css(content);
            }
            return after;
        }
        if let Some((hidden, open)) = &mut self.hidden {
            if hidden == name && !is_void(name) {
                *open += 1;
            }
            return end;
        }
        if (tag.hidden || hides(&tag.style)) && !is_void(name) && !implied_end(name) {
            self.hidden = Some((name.to_owned(), 1));
            return end;
        }
        match name {
            "head" => self.in_head = true,
            "body" => self.in_head = false,
            "meta" | "link" | "base" | "noscript" => {}
            _ => self.in_head = false,
        }
        match name {
            "br" => self.line_break(),
            "p" => {
                self.close_p();
                let (top, bottom) = self.paragraph_breaks(tag);
                self.begin(top);
                self.open_p = Some(bottom);
            }
            "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => {
                self.close_p();
                self.begin(2);
            }
            "blockquote" => {
                self.close_p();
                self.begin(1);
                self.quote = self.quote.saturating_add(1);
            }
            "pre" | "listing" | "xmp" | "plaintext" => {
                self.close_p();
                self.begin(1);
                self.pre = self.pre.saturating_add(1);
                self.pre_newline = true;
            }
            "ul" | "ol" | "menu" | "dir" => {
                self.close_p();
                self.begin(1);
                if self.lists.len() < MAX_LISTS {
                    self.lists
                        .push((name == "ol").then_some(tag.start.unwrap_or(1)));
                } else {
                    self.lists_overflow += 1;
                }
            }
            "li" => self.list_item(),
            // Cells of one row: a space between them.
            "td" | "th" if self.started && self.breaks == 0 => {
                self.space = Some(Space::Plain);
            }
            n if is_line_block(n) => {
                self.close_p();
                self.begin(1);
            }
            _ => {}
        }
        end
    }

    fn end_tag(&mut self, name: &str) {
        if let Some((hidden, open)) = &mut self.hidden {
            if hidden == name {
                *open -= 1;
                if *open == 0 {
                    self.hidden = None;
                }
            }
            return;
        }
        match name {
            "head" => self.in_head = false,
            "p" => {
                // A stray `</p>` is an empty paragraph.
                let n =
                    self.open_p
                        .take()
                        .unwrap_or(if self.css_p.1 == Some(true) { 1 } else { 2 });
                self.block(n);
            }
            "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => {
                self.close_p();
                self.block(2);
            }
            "blockquote" => {
                self.close_p();
                self.block(1);
                self.quote = self.quote.saturating_sub(1);
            }
            "pre" | "listing" | "xmp" => {
                self.block(1);
                self.pre = self.pre.saturating_sub(1);
            }
            "ul" | "ol" | "menu" | "dir" => {
                self.close_p();
                self.block(1);
                if self.lists_overflow > 0 {
                    self.lists_overflow -= 1;
                } else {
                    self.lists.pop();
                }
            }
            n if n == "li" || is_line_block(n) => {
                self.close_p();
                self.block(1);
            }
            _ => {}
        }
    }

    fn list_item(&mut self) {
        self.close_p();
        self.block(1);
        let depth = self.lists.len() + self.lists_overflow;
        for _ in 0..depth.saturating_sub(1).min(MAX_LIST_INDENT) {
            self.put(' ');
            self.put(' ');
        }
        let marker = match self.lists.last_mut() {
            Some(Some(n)) => {
                let m = format!("{n}. ");
                *n = n.saturating_add(1);
                m
            }
            _ => "- ".to_owned(),
        };
        marker.chars().for_each(|c| self.put(c));
        self.no_space = true;
    }

    /// The breaks before and after a `<p>`: 1 (a line) where its margin is zero, else 2 (a
    /// paragraph). Inline `style` over `p.CLASS` rules over Word's `Mso…` classes (no margins)
    /// over a `p` rule.
    fn paragraph_breaks(&self, tag: &Tag) -> (usize, usize) {
        let mut zero = self.css_p;
        let classes = || tag.class.split_ascii_whitespace();
        if classes().any(|c| c.starts_with("mso")) {
            zero = (Some(true), Some(true));
        }
        for class in classes() {
            if let Some((_, m)) = self.css_classes.iter().find(|(c, _)| c == class) {
                zero = merge(zero, *m);
            }
        }
        zero = merge(zero, margins_zero(&tag.style));
        let breaks = |z: Option<bool>| if z == Some(true) { 1 } else { 2 };
        (breaks(zero.0), breaks(zero.1))
    }

    /// Rules for `p` and `p.CLASS` that set both vertical margins (to zero or not).
    fn read_css(&mut self, css: &str) {
        let css = strip_css_comments(css);
        for chunk in css.split('}') {
            let Some((selectors, decls)) = chunk.rsplit_once('{') else {
                continue;
            };
            let zero = margins_zero(&decls.to_ascii_lowercase());
            if zero == (None, None) {
                continue;
            }
            let selectors = selectors.rsplit('{').next().unwrap_or_default();
            for selector in selectors.split(',') {
                let selector = selector.trim().to_ascii_lowercase();
                if selector == "p" {
                    self.css_p = merge(self.css_p, zero);
                } else if let Some(class) = selector.strip_prefix("p.")
                    && !class.is_empty()
                    && class
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                {
                    let room = self.css_classes.len() < MAX_CSS_CLASSES;
                    match self.css_classes.iter_mut().find(|(c, _)| c == class) {
                        Some(entry) => entry.1 = merge(entry.1, zero),
                        None if room => self.css_classes.push((class.to_owned(), zero)),
                        None => {}
                    }
                }
            }
        }
    }

    /// The text, each line's end trimmed, at most one blank line in a row, none at the ends.
    fn finish(self) -> String {
        let mut out = String::with_capacity(self.out.len() + 1);
        let mut blank_pending: Option<&str> = None;
        for line in self.out.lines() {
            let line = line.trim_end();
            if line.chars().all(|c| c == '>') {
                if !out.is_empty() {
                    blank_pending = Some(
                        blank_pending
                            .map_or(line, |b| if b.len() <= line.len() { b } else { line }),
                    );
                }
                continue;
            }
            if let Some(blank) = blank_pending.take() {
                out.push_str(blank);
                out.push('\n');
            }
            out.push_str(line);
            out.push('\n');
        }
        out
    }
}

/// After the `>` that ends the markup starting at `pos` (the end of the input if none).
fn skip_past_gt(html: &str, pos: usize) -> usize {
    html.get(pos..)
        .and_then(|s| s.find('>'))
        .map_or(html.len(), |i| pos + i + 1)
}

fn is_tag_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0c')
}

/// The lowercased tag name starting at `pos`, and where it ends.
fn tag_name(html: &str, pos: usize) -> (String, usize) {
    let bytes = html.as_bytes();
    let mut i = pos;
    while bytes
        .get(i)
        .is_some_and(|&b| !is_tag_space(b) && b != b'/' && b != b'>')
    {
        i += 1;
    }
    (html.get(pos..i).unwrap_or_default().to_ascii_lowercase(), i)
}

/// The start tag at `pos` (a `<` followed by a letter) and the position after its `>`; `None`
/// when the input ends inside it.
fn parse_tag(html: &str, pos: usize) -> Option<(Tag, usize)> {
    let bytes = html.as_bytes();
    let (name, mut i) = tag_name(html, pos + 1);
    let mut tag = Tag {
        name,
        ..Tag::default()
    };
    loop {
        while bytes.get(i).is_some_and(|&b| is_tag_space(b) || b == b'/') {
            i += 1;
        }
        if *bytes.get(i)? == b'>' {
            return Some((tag, i + 1));
        }
        let name_start = i;
        i += 1;
        while bytes
            .get(i)
            .is_some_and(|&b| !is_tag_space(b) && !matches!(b, b'/' | b'>' | b'='))
        {
            i += 1;
        }
        let attr = html.get(name_start..i).unwrap_or_default();
        while bytes.get(i).is_some_and(|&b| is_tag_space(b)) {
            i += 1;
        }
        let mut value = "";
        if bytes.get(i) == Some(&b'=') {
            i += 1;
            while bytes.get(i).is_some_and(|&b| is_tag_space(b)) {
                i += 1;
            }
            match bytes.get(i) {
                Some(&q) if q == b'"' || q == b'\'' => {
                    let start = i + 1;
                    let len = html.get(start..)?.find(char::from(q))?;
                    value = html.get(start..start + len).unwrap_or_default();
                    i = start + len + 1;
                }
                _ => {
                    let start = i;
                    while bytes.get(i).is_some_and(|&b| !is_tag_space(b) && b != b'>') {
                        i += 1;
                    }
                    value = html.get(start..i).unwrap_or_default();
                }
            }
        }
        if attr.eq_ignore_ascii_case("class") {
            tag.class = value.to_ascii_lowercase();
        } else if attr.eq_ignore_ascii_case("style") {
            tag.style = value.to_ascii_lowercase();
        } else if attr.eq_ignore_ascii_case("hidden") {
            tag.hidden = true;
        } else if attr.eq_ignore_ascii_case("start") {
            tag.start = value.trim().parse().ok();
        }
    }
}

/// The content of a raw-text element (`<style>` …) starting at `pos`, and the position after
/// its end tag (the end of the input if it has none).
fn raw_text<'h>(html: &'h str, pos: usize, name: &str) -> (&'h str, usize) {
    let rest = html.get(pos..).unwrap_or_default();
    for (at, _) in rest.match_indices("</") {
        let after = rest.get(at + 2..).unwrap_or_default();
        let closes = after
            .get(..name.len())
            .is_some_and(|n| n.eq_ignore_ascii_case(name))
            && after
                .as_bytes()
                .get(name.len())
                .is_none_or(|&b| is_tag_space(b) || b == b'/' || b == b'>');
        if closes {
            return (
                rest.get(..at).unwrap_or_default(),
                skip_past_gt(html, pos + at),
            );
        }
    }
    (rest, html.len())
}

fn is_void(name: &str) -> bool {
    matches!(
        name,
        "area"
            | "base"
            | "br"
            | "col"
            | "embed"
            | "hr"
            | "img"
            | "input"
            | "link"
            | "meta"
            | "param"
            | "source"
            | "track"
            | "wbr"
            | "keygen"
    )
}

/// Elements whose end tag is often left out: not trusted to end a hidden region.
fn implied_end(name: &str) -> bool {
    matches!(
        name,
        "p" | "li" | "dt" | "dd" | "tr" | "td" | "th" | "option" | "html" | "head" | "body"
    )
}

/// Elements that start and end a line (besides `<p>`, headings, quotes, `<pre>` and lists).
fn is_line_block(name: &str) -> bool {
    matches!(
        name,
        "div"
            | "address"
            | "article"
            | "aside"
            | "center"
            | "details"
            | "dialog"
            | "dl"
            | "dt"
            | "dd"
            | "fieldset"
            | "figcaption"
            | "figure"
            | "footer"
            | "form"
            | "header"
            | "hgroup"
            | "hr"
            | "legend"
            | "main"
            | "nav"
            | "section"
            | "summary"
            | "table"
            | "caption"
            | "thead"
            | "tbody"
            | "tfoot"
            | "tr"
    )
}

/// `display: none` in a (lowercased) `style` attribute.
fn hides(style: &str) -> bool {
    declarations(style).any(|(prop, value)| prop == "display" && value.starts_with("none"))
}

/// `prop: value` pairs of (lowercased) CSS declarations, trimmed, `!important` dropped.
fn declarations(decls: &str) -> impl Iterator<Item = (&str, &str)> {
    decls.split(';').filter_map(|d| {
        let (prop, value) = d.split_once(':')?;
        let value = value.trim();
        let value = value.strip_suffix("!important").unwrap_or(value).trim();
        Some((prop.trim(), value))
    })
}

/// What later `margins` say, over what `base` said.
fn merge(base: Margins, margins: Margins) -> Margins {
    (margins.0.or(base.0), margins.1.or(base.1))
}

/// Whether these (lowercased) declarations set the top and the bottom margin to zero.
fn margins_zero(decls: &str) -> Margins {
    let (mut top, mut bottom) = (None, None);
    for (prop, value) in declarations(decls) {
        match prop {
            "margin" => {
                let values: Vec<&str> = value.split_ascii_whitespace().collect();
                let t = values.first().copied().unwrap_or_default();
                top = Some(is_zero_length(t));
                bottom = Some(is_zero_length(values.get(2).copied().unwrap_or(t)));
            }
            "margin-top" | "margin-block-start" => top = Some(is_zero_length(value)),
            "margin-bottom" | "margin-block-end" => bottom = Some(is_zero_length(value)),
            _ => {}
        }
    }
    (top, bottom)
}

/// `0`, `0mm`, `.0001pt`, `auto` … (Word writes `margin-bottom:.0001pt` for no margin).
fn is_zero_length(value: &str) -> bool {
    if value == "auto" {
        return true;
    }
    let number_len = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+'))
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(number_len);
    match number.parse::<f64>() {
        Ok(n) => n.abs() < 0.01 || (matches!(unit, "px" | "pt") && n.abs() <= 1.0),
        Err(_) => false,
    }
}

/// CSS with `/* comments */` and the `<!--` `-->` around Word's style sheets blanked.
fn strip_css_comments(css: &str) -> String {
    let mut out = String::with_capacity(css.len());
    let mut rest = css;
    while let Some(start) = rest.find("/*") {
        out.push_str(rest.get(..start).unwrap_or_default());
        out.push(' ');
        let after = rest.get(start + 2..).unwrap_or_default();
        rest = after
            .find("*/")
            .and_then(|end| after.get(end + 2..))
            .unwrap_or_default();
    }
    out.push_str(rest);
    out.replace("<!--", " ").replace("-->", " ")
}

/// The character reference at the start of `s` (which starts with `&`) and its length in bytes;
/// `None` when `&` starts no reference.
fn entity(s: &str) -> Option<(char, usize)> {
    let rest = s.get(1..)?;
    if let Some(num) = rest.strip_prefix('#') {
        let (digits_at, radix) = match num.strip_prefix(['x', 'X']) {
            Some(_) => (1, 16),
            None => (0, 10),
        };
        let digits = num.get(digits_at..)?;
        let len = digits
            .find(|c: char| !c.is_digit(radix))
            .unwrap_or(digits.len());
        if len == 0 {
            return None;
        }
        let value = u32::from_str_radix(digits.get(..len)?, radix).ok();
        let semicolon = usize::from(digits.get(len..)?.starts_with(';'));
        return Some((numeric_char(value), 2 + digits_at + len + semicolon));
    }
    let len = rest
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(rest.len());
    if len == 0 || len > 32 {
        return None;
    }
    let name = rest.get(..len)?;
    if rest.get(len..)?.starts_with(';') {
        let token = format!("&{name};");
        let mut decoded = String::new();
        add_html_token(&mut decoded, token.as_bytes(), false);
        let mut chars = decoded.chars();
        return match (chars.next(), chars.next()) {
            (Some(c), None) => Some((c, len + 2)),
            _ => None,
        };
    }
    // The few references that browsers also read without a semicolon, as mail writes them.
    let c = match name {
        "amp" | "AMP" => '&',
        "lt" | "LT" => '<',
        "gt" | "GT" => '>',
        "quot" | "QUOT" => '"',
        "nbsp" => '\u{a0}',
        "copy" | "COPY" => '©',
        "reg" | "REG" => '®',
        _ => return None,
    };
    Some((c, len + 1))
}

/// A numeric character reference's character, as browsers read it.
fn numeric_char(value: Option<u32>) -> char {
    const WINDOWS_1252: [u32; 32] = [
        0x20AC, 0x81, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
        0x2039, 0x0152, 0x8D, 0x017D, 0x8F, 0x90, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013,
        0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x9D, 0x017E, 0x0178,
    ];
    let value = match value {
        Some(v @ 0x80..=0x9f) => WINDOWS_1252.get((v - 0x80) as usize).copied().unwrap_or(v),
        Some(0) | None => 0xfffd,
        Some(v) => v,
    };
    char::from_u32(value).unwrap_or('\u{fffd}')
}

/// East Asian wide, full-width or half-width (not Hangul): a line break in the source between
/// two of these is no space (CSS Text 3, segment break transformation).
fn is_wide(c: char) -> bool {
    matches!(c,
        '\u{2E80}'..='\u{303E}'
        | '\u{3041}'..='\u{33FF}'
        | '\u{3400}'..='\u{4DBF}'
        | '\u{4E00}'..='\u{9FFF}'
        | '\u{F900}'..='\u{FAFF}'
        | '\u{FE30}'..='\u{FE4F}'
        | '\u{FF01}'..='\u{FF60}'
        | '\u{FF61}'..='\u{FFDC}'
        | '\u{FFE0}'..='\u{FFE6}'
        | '\u{20000}'..='\u{3FFFD}')
}
