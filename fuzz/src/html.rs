//! HTML → text for HTML-only mail (`src/mail/html.rs`): never fails, and its output stays
//! linear in the input (the converter is documented as linear-time; libFuzzer's -timeout and
//! slow-unit report catch super-linear time).

use madoguchi::fuzzing::html_to_text;

pub fn run(data: &[u8]) {
    let html = String::from_utf8_lossy(data);
    let text = html_to_text(&html);
    assert!(
        text.len() <= 32 * html.len() + 1024,
        "{} bytes of text from {} bytes of HTML",
        text.len(),
        html.len()
    );
}
