//! A staff member's reply → commands and their own text; the leak fail-safe
//! (`src/core/staff_reply.rs`). Input: `text \0 internal \0 boundary`.

use madoguchi::core::staff_reply::{MIN_LEAK_CHARS, leaked_line, staff_text_with};

pub fn run(data: &[u8]) {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = input.splitn(3, '\0');
    let text = parts.next().unwrap_or_default();
    let internal = parts.next().unwrap_or_default();
    let boundary = parts.next().unwrap_or_default();
    let boundaries: &[&str] = if boundary.is_empty() {
        &[]
    } else {
        &[boundary]
    };

    let out = staff_text_with(text, boundaries);
    for c in &out.commands {
        assert!(c.starts_with('#'), "command {c:?}");
    }
    // Kept lines are the input's own lines, at most cut short at the end; never quoted ones.
    let body = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = body.lines().collect();
    for kept in out.reply.lines() {
        assert!(
            lines.iter().any(|l| l.starts_with(kept)),
            "kept line {kept:?} is not (the start of) an input line"
        );
        assert!(
            !kept.trim_start().starts_with('>'),
            "quoted line kept: {kept:?}"
        );
    }
    assert_eq!(
        out.reply.trim_matches('\n'),
        out.reply,
        "blank lines trimmed at the ends"
    );

    // The fail-safe: a line of the internal section that goes out verbatim is always caught.
    let leak = leaked_line(&out.reply, internal);
    if let Some(line) = &leak {
        assert!(
            internal.lines().any(|l| l.trim() == line),
            "{line:?} not from internal"
        );
    }
    if leak.is_none() {
        for line in internal.lines() {
            let t = line
                .trim_start_matches(|c: char| c == '>' || c.is_whitespace())
                .trim();
            let chars = t.chars().filter(|c| !c.is_whitespace()).count();
            if chars >= MIN_LEAK_CHARS
                && t.chars().any(char::is_alphanumeric)
                && out.reply.contains(t)
            {
                panic!("internal line {line:?} relayed in {:?}", out.reply);
            }
        }
    }
}
