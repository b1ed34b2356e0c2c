//! Web-form bodies (`【label】value`) → fields (`src/core/form.rs`).

use madoguchi::core::form::{FormLabels, parse_form};

/// A label line as the module documents it: `【label】…` after leading white space.
fn label_of(line: &str) -> Option<&str> {
    let inner = line.trim_start().strip_prefix('【')?;
    inner.split_once('】').map(|(label, _)| label.trim())
}

pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let labels = FormLabels::default();
    let expected: Vec<&str> = text.lines().filter_map(label_of).collect();
    match parse_form(text, &labels) {
        None => assert!(expected.is_empty(), "label lines {expected:?} but no form"),
        Some(form) => {
            let got: Vec<&str> = form.fields.iter().map(|e| e.label.as_str()).collect();
            assert_eq!(got, expected, "one entry per label line, in order");
            for entry in &form.fields {
                assert_eq!(entry.field, labels.field_for(&entry.label));
                assert_eq!(entry.value, entry.value.trim(), "values are trimmed");
            }
        }
    }
}
