//! Problems in what an administrator wrote (the config file, contracts.csv, orders.csv): each
//! says where it is and what is wrong, and all of them are reported at once, so a file is fixed
//! in one round instead of one error per attempt.
//!
//! One line per problem, the parts that are known joined by `: `:
//! - `madoguchi.toml: hours.windows[1]: "13:00-12:00" ends before it starts` (a config key);
//! - `contracts.csv:3: column 'customized': expected yes or no, got "maybe"` (a CSV field);
//! - `orders.csv: cannot read the file: …` (the whole file).

use std::fmt;

/// What inside a file a problem concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// A config key as a dotted path: `hours.windows[1]`.
    Key(String),
    /// A CSV column, by its header name.
    Column(String),
}

/// One problem: where it is and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file as the administrator named it; `None` for text that did not come from a file.
    pub file: Option<String>,
    /// 1-based line in the file (CSV: the header is line 1), when the problem is on one line.
    pub line: Option<usize>,
    /// The key or column, when the problem is in one.
    pub place: Option<Place>,
    /// What is wrong.
    pub message: String,
}

impl Diagnostic {
    /// A problem at a config key (`""`: the file as a whole).
    pub fn at_key(key: impl Into<String>, message: impl Into<String>) -> Self {
        let key = key.into();
        Diagnostic {
            file: None,
            line: None,
            place: (!key.is_empty()).then_some(Place::Key(key)),
            message: message.into(),
        }
    }

    /// A problem in a file, on `line` (0: not on one line), in `column` when given.
    pub fn in_file(
        file: impl Into<String>,
        line: usize,
        column: Option<&str>,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            file: Some(file.into()),
            line: (line > 0).then_some(line),
            place: column.map(|c| Place::Column(c.to_string())),
            message: message.into(),
        }
    }

    /// The config key path, or `""` when the problem is not at a key.
    pub fn key(&self) -> &str {
        match &self.place {
            Some(Place::Key(key)) => key,
            _ => "",
        }
    }

    /// Everything but the file name: for a list under a heading that already names the file.
    pub fn without_file(&self) -> impl fmt::Display + '_ {
        Shown {
            d: self,
            file: false,
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Shown {
            d: self,
            file: true,
        }
        .fmt(f)
    }
}

struct Shown<'a> {
    d: &'a Diagnostic,
    file: bool,
}

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.d;
        let file = d.file.as_deref().filter(|_| self.file);
        match (file, d.line) {
            (Some(file), Some(line)) => write!(f, "{file}:{line}: ")?,
            (Some(file), None) => write!(f, "{file}: ")?,
            (None, Some(line)) => write!(f, "line {line}: ")?,
            (None, None) => {}
        }
        match &d.place {
            Some(Place::Key(key)) => write!(f, "{key}: ")?,
            Some(Place::Column(column)) => write!(f, "column '{column}': ")?,
            None => {}
        }
        f.write_str(&d.message)
    }
}

/// Every problem found, in the order they are best read (file, then line or section). Never
/// empty when returned as an error.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diagnostics {
    pub problems: Vec<Diagnostic>,
}

impl Diagnostics {
    /// The config keys of all problems, in order (`""` where there is none).
    pub fn keys(&self) -> Vec<&str> {
        self.problems.iter().map(Diagnostic::key).collect()
    }

    /// `value` when nothing was found, else the problems.
    pub fn or_ok<T>(self, value: T) -> Result<T, Diagnostics> {
        if self.problems.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }
}

impl From<Vec<Diagnostic>> for Diagnostics {
    fn from(problems: Vec<Diagnostic>) -> Self {
        Diagnostics { problems }
    }
}

impl From<Diagnostic> for Diagnostics {
    fn from(problem: Diagnostic) -> Self {
        Diagnostics {
            problems: vec![problem],
        }
    }
}

/// One problem per line.
impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_part_is_shown_when_known() {
        let key = Diagnostic::at_key("desk.address", "required");
        assert_eq!(key.to_string(), "desk.address: required");
        let whole = Diagnostic::at_key("", "line 2, column 9: invalid string");
        assert_eq!(whole.to_string(), "line 2, column 9: invalid string");
        let in_config = Diagnostic {
            file: Some("/etc/madoguchi.toml".into()),
            ..key.clone()
        };
        assert_eq!(
            in_config.to_string(),
            "/etc/madoguchi.toml: desk.address: required"
        );
        assert_eq!(
            in_config.without_file().to_string(),
            "desk.address: required"
        );
        let field = Diagnostic::in_file("c.csv", 3, Some("customized"), "expected yes or no");
        assert_eq!(
            field.to_string(),
            "c.csv:3: column 'customized': expected yes or no"
        );
        assert_eq!(
            field.without_file().to_string(),
            "line 3: column 'customized': expected yes or no"
        );
        assert_eq!(
            Diagnostic::in_file("o.csv", 0, None, "cannot read the file").to_string(),
            "o.csv: cannot read the file"
        );
        let all = Diagnostics::from(vec![key, field]);
        assert_eq!(all.keys(), ["desk.address", ""]);
        assert_eq!(
            all.to_string(),
            "desk.address: required\nc.csv:3: column 'customized': expected yes or no"
        );
        assert_eq!(Diagnostics::default().or_ok(1), Ok(1));
        assert!(all.or_ok(()).is_err());
    }
}
