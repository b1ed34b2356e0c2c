//! Config parsing (`src/config`): TOML text → validated `Config`, every problem at once.
//! A refused file names at least one problem, each with a message and a line inside the file;
//! an accepted one builds the business calendar `Desk` builds at start-up and can be
//! summarised.

use std::path::Path;

use madoguchi::config::{Config, render_errors};
use madoguchi::core::calendar::BusinessCalendar;

pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::from_toml_str(text, Path::new("/etc/madoguchi")) {
        Err(errors) => {
            assert!(!errors.problems.is_empty(), "refused without a problem");
            let lines = text.lines().count().max(1);
            for p in &errors.problems {
                assert!(!p.message.trim().is_empty(), "{p:?}");
                if let Some(line) = p.line {
                    assert!(
                        (1..=lines + 1).contains(&line),
                        "line {line} of {lines}: {p:?}"
                    );
                }
            }
            let _ = render_errors(&errors);
        }
        Ok(config) => {
            let _ = config.summary();
            let _ = config.warnings();
            if let Err(e) = BusinessCalendar::new(config.calendar.clone()) {
                panic!("a valid config whose calendar cannot be built: {e}");
            }
        }
    }
}
