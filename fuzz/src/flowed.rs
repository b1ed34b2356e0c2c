//! RFC 3676 `format=flowed` decoding (`src/mail/flowed.rs`): joining lines and rewriting
//! quote marks only moves spaces, `>` and line breaks; every other character stays, in order.

use madoguchi::fuzzing::flowed_decode;

fn skeleton(s: &str) -> String {
    s.chars()
        .filter(|c| !matches!(c, ' ' | '>' | '\n' | '\r'))
        .collect()
}

pub fn run(data: &[u8]) {
    let Some((&flag, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let out = flowed_decode(text, flag & 1 == 1);
    // `str::lines` also ends a line at a lone `\r`-less `\n` and drops a final `\r`: compare
    // only what is not line structure.
    assert_eq!(skeleton(&out), skeleton(text));
}
