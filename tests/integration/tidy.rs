//! Tidy: rules about the source tree that the compiler does not check (after rust-analyzer's
//! `tidy.rs`). Each failure names the file and line.
//!
//! - `src/core` is pure (ARCHITECTURE.md, invariant 1): its code names no async runtime, no
//!   database, no files, network, environment, processes or threads, no OS randomness and no
//!   clock. `#[cfg(test)]` items and test-only module files are exempt (a test may read a
//!   reference table).
//! - `rusqlite` is named only under `src/store/`, tests included.
//! - No `.rs` file under `src/` grows past [`MAX_LINES`], except the few named in
//!   [`LARGE_FILES`], each held to its own ceiling.
//!
//! Only code counts: comments and the insides of string and character literals are blanked
//! first, so prose may mention `tokio`. `use` trees are expanded, so `use std::{fs, io};`
//! counts as `std::fs`. A rename (`use chrono::Utc as U; U::now()`) would get through: the
//! rules catch mistakes, not intent.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use crate::util::repo_path;

/// What the core's code may not name, and why.
const CORE_FORBIDDEN: &[(Rule, &str)] = &[
    (
        Rule::Name("tokio"),
        "async runtime: the shell runs the core",
    ),
    (Rule::Name("rusqlite"), "the store is the shell's"),
    (Rule::Path("std::fs"), "files are the shell's"),
    (Rule::Path("std::net"), "the network is the shell's"),
    (
        Rule::Name("mail_auth"),
        "DKIM verification looks keys up in DNS: the shell's (`desk::dkim`)",
    ),
    (
        Rule::Path("std::env"),
        "the environment is the shell's (config)",
    ),
    (Rule::Path("std::process"), "processes are the shell's"),
    (Rule::Path("std::thread"), "threads are the shell's"),
    (
        Rule::Name("getrandom"),
        "randomness comes in from the shell",
    ),
    (Rule::Name("SystemTime"), "a clock: time is a parameter"),
    (Rule::Call("Instant::now"), "a clock: time is a parameter"),
    (Rule::Call("Utc::now"), "a clock: time is a parameter"),
    (Rule::Call("Local::now"), "a clock: time is a parameter"),
];

/// Lines any `.rs` file under `src/` may have. When this was written the largest files were
/// `src/core/calendar/mod.rs` (1,280 lines, 600 of them tests) and `src/core/contract.rs`
/// (1,219), both in [`LARGE_FILES`]; then `src/store/tickets.rs` (865 here, 923 on main by
/// then) and `src/desk.rs` (835), near this limit; every other file had at most 766.
const MAX_LINES: usize = 950;

/// Files that were already larger than [`MAX_LINES`], each with a ceiling a little above its
/// size then. An entry goes once its file is split (the test says so).
const LARGE_FILES: &[(&str, usize)] = &[
    ("src/core/calendar/mod.rs", 1300),
    ("src/core/contract.rs", 1250),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Rule {
    /// An identifier anywhere in the code (a crate, a type).
    Name(&'static str),
    /// A module path, written out or imported in a `use` tree.
    Path(&'static str),
    /// `Type::function` as written at a call.
    Call(&'static str),
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rule::Name(s) | Rule::Path(s) | Rule::Call(s) => f.write_str(s),
        }
    }
}

/// One `.rs` file under `src/`.
struct SourceFile {
    /// Relative to the repository, with `/`: `src/core/date.rs`.
    path: String,
    text: String,
    /// Code only: comments and literal contents blanked, lines kept.
    code: String,
    /// [`SourceFile::code`] with `#[cfg(test)]` items blanked too.
    non_test: String,
    /// Whether the whole file is a `#[cfg(test)] mod NAME;` module.
    test_only: bool,
}

fn source_files() -> Vec<SourceFile> {
    let root = repo_path("");
    let mut paths = Vec::new();
    rs_files(&root.join("src"), &mut paths);
    paths.sort();
    let mut files: Vec<SourceFile> = paths
        .iter()
        .map(|p| {
            let text = fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            let code = code_only(&text);
            let (non_test, _) = without_test_items(&code);
            SourceFile {
                path: p
                    .strip_prefix(&root)
                    .expect("under the repository")
                    .to_string_lossy()
                    .replace('\\', "/"),
                text,
                code,
                non_test,
                test_only: false,
            }
        })
        .collect();
    // Files declared by `#[cfg(test)] mod NAME;` are test code as a whole.
    let mut test_modules = BTreeSet::new();
    for file in &files {
        let (_, names) = without_test_items(&file.code);
        let dir = module_dir(&file.path);
        for name in names {
            test_modules.insert(format!("{dir}/{name}.rs"));
            test_modules.insert(format!("{dir}/{name}/mod.rs"));
        }
    }
    for file in &mut files {
        file.test_only = test_modules.contains(&file.path);
    }
    // A wrong root must not pass for want of files.
    let core = files
        .iter()
        .filter(|f| f.path.starts_with("src/core/"))
        .count();
    assert!(
        files.len() >= 50 && core >= 10,
        "found only {} files ({core} in src/core) under {}",
        files.len(),
        root.display()
    );
    files
}

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rs_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Where the files of `path`'s child modules live: `src/core` for `src/core/mod.rs` and for
/// `src/lib.rs`'s `src`; `src/core/decide` for `src/core/decide.rs`.
fn module_dir(path: &str) -> String {
    let (dir, file) = path.rsplit_once('/').unwrap_or(("", path));
    match file {
        "mod.rs" | "lib.rs" | "main.rs" => dir.to_owned(),
        _ => format!("{dir}/{}", file.trim_end_matches(".rs")),
    }
}

/// The offences against `rules` in `code`: `(line, rule)`, 1-based lines.
fn offences(code: &str, rules: &[Rule]) -> BTreeSet<(usize, Rule)> {
    let mut found = BTreeSet::new();
    for (n, line) in code.lines().enumerate() {
        for &rule in rules {
            let hit = match rule {
                Rule::Name(name) => contains_token(line, name),
                Rule::Path(path) | Rule::Call(path) => contains_token(line, path),
            };
            if hit {
                found.insert((n + 1, rule));
            }
        }
    }
    for (line, path) in use_paths(code) {
        for &rule in rules {
            let hit = match rule {
                Rule::Name(name) => path.iter().any(|s| s == name),
                Rule::Path(prefix) => {
                    let prefix: Vec<&str> = prefix.split("::").collect();
                    path.len() >= prefix.len() && path.iter().zip(&prefix).all(|(a, b)| a == b)
                }
                // An import is no call; the call itself is found above.
                Rule::Call(_) => false,
            };
            if hit {
                found.insert((line, rule));
            }
        }
    }
    found
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Whether `needle` occurs in `line` with no identifier character right before or after it.
fn contains_token(line: &str, needle: &str) -> bool {
    let bytes = line.as_bytes();
    line.match_indices(needle).any(|(at, _)| {
        let before = at.checked_sub(1).map(|i| bytes[i]);
        let after = bytes.get(at + needle.len()).copied();
        !before.is_some_and(is_ident) && !after.is_some_and(is_ident)
    })
}

/// Every path the `use` declarations of `code` import, with the line of their `use`:
/// `use std::{fs, time::{Instant as I}};` gives `std::fs` and `std::time::Instant`.
fn use_paths(code: &str) -> Vec<(usize, Vec<String>)> {
    let bytes = code.as_bytes();
    let mut out = Vec::new();
    for (at, _) in code.match_indices("use") {
        let before = at.checked_sub(1).map(|i| bytes[i]);
        let after = bytes.get(at + 3).copied();
        if before.is_some_and(is_ident) || !after.is_some_and(|b| b.is_ascii_whitespace()) {
            continue;
        }
        let Some(end) = code[at..].find(';') else {
            continue;
        };
        let line = code[..at].matches('\n').count() + 1;
        let tokens = use_tokens(&code[at + 3..at + end]);
        let mut pos = 0;
        for path in use_tree(&tokens, &mut pos, &[]) {
            out.push((line, path));
        }
    }
    out
}

fn use_tokens(tree: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut chars = tree.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ':' if chars.peek() == Some(&':') => {
                chars.next();
                tokens.push("::".to_owned());
            }
            '{' | '}' | ',' | '*' => tokens.push(c.to_string()),
            c if c.is_alphanumeric() || c == '_' => {
                let mut ident = c.to_string();
                while let Some(&d) = chars.peek().filter(|d| d.is_alphanumeric() || **d == '_') {
                    ident.push(d);
                    chars.next();
                }
                tokens.push(ident);
            }
            _ => {}
        }
    }
    tokens
}

/// One use tree from `tokens[*pos..]` under `prefix`: the paths it names.
fn use_tree(tokens: &[String], pos: &mut usize, prefix: &[String]) -> Vec<Vec<String>> {
    let mut path = prefix.to_vec();
    while let Some(token) = tokens.get(*pos) {
        *pos += 1;
        match token.as_str() {
            "::" => {}
            "{" => {
                let mut paths = Vec::new();
                while let Some(next) = tokens.get(*pos) {
                    match next.as_str() {
                        "}" => {
                            *pos += 1;
                            break;
                        }
                        "," => *pos += 1,
                        _ => paths.extend(use_tree(tokens, pos, &path)),
                    }
                }
                return paths;
            }
            "*" => {
                path.push("*".to_owned());
                return vec![path];
            }
            "," | "}" => {
                *pos -= 1;
                return vec![path];
            }
            ident => {
                path.push(ident.to_owned());
                match tokens.get(*pos).map(String::as_str) {
                    Some("::") => {}
                    Some("as") => {
                        *pos += 2;
                        return vec![path];
                    }
                    _ => return vec![path],
                }
            }
        }
    }
    vec![path]
}

/// `source` with comments and the insides of string and character literals replaced by
/// spaces; newlines stay, so line numbers do.
fn code_only(source: &str) -> String {
    let b = source.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let blank = |c: u8| if c == b'\n' { b'\n' } else { b' ' };
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        let after_ident = i > 0 && is_ident(b[i - 1]);
        if c == b'/' && next == Some(b'/') {
            while i < b.len() && b[i] != b'\n' {
                out.push(b' ');
                i += 1;
            }
        } else if c == b'/' && next == Some(b'*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                    depth += 1;
                    out.extend_from_slice(b"  ");
                    i += 2;
                } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                    depth -= 1;
                    out.extend_from_slice(b"  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(b[i]));
                    i += 1;
                }
            }
        } else if let Some((open, hashes)) = raw_string_start(b, i).filter(|_| !after_ident) {
            out.extend_from_slice(&b[i..open]);
            i = open;
            while i < b.len() {
                if b[i] == b'"' && (1..=hashes).all(|h| b.get(i + h) == Some(&b'#')) {
                    out.extend_from_slice(&b[i..i + 1 + hashes]);
                    i += 1 + hashes;
                    break;
                }
                out.push(blank(b[i]));
                i += 1;
            }
        } else if c == b'"' {
            out.push(b'"');
            i += 1;
            while i < b.len() {
                if b[i] == b'\\' {
                    out.push(b' ');
                    if let Some(&e) = b.get(i + 1) {
                        out.push(blank(e));
                    }
                    i += 2;
                } else if b[i] == b'"' {
                    out.push(b'"');
                    i += 1;
                    break;
                } else {
                    out.push(blank(b[i]));
                    i += 1;
                }
            }
        } else if c == b'\'' {
            // A character literal ('x', '\n', '\u{3042}', 'あ'), else a lifetime or a label.
            let width = match next {
                Some(b'\\') => b[i + 1..]
                    .iter()
                    .skip(2)
                    .position(|&x| x == b'\'')
                    .map(|p| p + 2),
                Some(lead) => {
                    let w = utf8_width(lead);
                    (b.get(i + 1 + w) == Some(&b'\'')).then_some(w)
                }
                None => None,
            };
            match width {
                Some(w) => {
                    out.push(b'\'');
                    out.extend(std::iter::repeat_n(b' ', w));
                    out.push(b'\'');
                    i += w + 2;
                }
                None => {
                    out.push(c);
                    i += 1;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// At a raw string (`r"`, `r#"`, `br##"` …): the index of its opening quote and its `#`s.
fn raw_string_start(b: &[u8], i: usize) -> Option<(usize, usize)> {
    let mut j = i;
    if b.get(j) == Some(&b'b') {
        j += 1;
    }
    if b.get(j) != Some(&b'r') {
        return None;
    }
    j += 1;
    let hashes = b[j..].iter().take_while(|&&x| x == b'#').count();
    (b.get(j + hashes) == Some(&b'"')).then_some((j + hashes, hashes))
}

fn utf8_width(lead: u8) -> usize {
    match lead {
        0xF0.. => 4,
        0xE0.. => 3,
        0xC0.. => 2,
        _ => 1,
    }
}

/// `code` (already [`code_only`]) with every `#[cfg(test)]` item blanked, lines kept; and the
/// names of the `#[cfg(test)] mod NAME;` declarations, whose files are test code.
fn without_test_items(code: &str) -> (String, Vec<String>) {
    const ATTR: &str = "#[cfg(test)]";
    let mut out = code.as_bytes().to_vec();
    let b = code.as_bytes();
    let mut names = Vec::new();
    let mut from = 0;
    while let Some(found) = code[from..].find(ATTR) {
        let start = from + found;
        let mut i = start + ATTR.len();
        // The item ends at its first `;` or at the brace closing its first `{`, outside
        // parentheses and brackets (`[u8; 4]` is no end).
        let mut depth = 0i32;
        let end = loop {
            match b.get(i) {
                None => break b.len(),
                Some(b'(' | b'[') => depth += 1,
                Some(b')' | b']') => depth -= 1,
                Some(b';') if depth == 0 => break i + 1,
                Some(b'{') if depth == 0 => {
                    let mut braces = 0;
                    let close = (i..b.len()).find(|&k| {
                        match b[k] {
                            b'{' => braces += 1,
                            b'}' => braces -= 1,
                            _ => {}
                        }
                        braces == 0
                    });
                    break close.map_or(b.len(), |k| k + 1);
                }
                _ => {}
            }
            i += 1;
        };
        let item = &code[start + ATTR.len()..end];
        let words: Vec<&str> = item
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .filter(|w| !w.is_empty())
            .collect();
        if item.trim_end().ends_with(';')
            && matches!(words.as_slice(), ["mod", _] | ["pub", "mod", _])
        {
            names.push(words[words.len() - 1].to_owned());
        }
        for byte in &mut out[start..end] {
            if *byte != b'\n' {
                *byte = b' ';
            }
        }
        from = end;
    }
    (String::from_utf8_lossy(&out).into_owned(), names)
}

fn report(offences: &[String]) -> String {
    format!(
        "{} offence(s):\n  {}",
        offences.len(),
        offences.join("\n  ")
    )
}

#[test]
fn the_core_uses_no_runtime_database_files_network_or_clock() {
    let rules: Vec<Rule> = CORE_FORBIDDEN.iter().map(|(r, _)| *r).collect();
    let mut found = Vec::new();
    for file in source_files() {
        if !file.path.starts_with("src/core/") || file.test_only {
            continue;
        }
        for (line, rule) in offences(&file.non_test, &rules) {
            let why = CORE_FORBIDDEN
                .iter()
                .find(|(r, _)| *r == rule)
                .map_or("", |(_, why)| why);
            let text = file.text.lines().nth(line - 1).unwrap_or("").trim();
            found.push(format!(
                "{}:{line}: `{rule}` in the pure core ({why}): {text}",
                file.path
            ));
        }
    }
    assert!(found.is_empty(), "{}", report(&found));
}

#[test]
fn rusqlite_is_named_only_in_the_store() {
    let mut found = Vec::new();
    for file in source_files() {
        if file.path.starts_with("src/store/") {
            continue;
        }
        for (line, _) in offences(&file.code, &[Rule::Name("rusqlite")]) {
            let text = file.text.lines().nth(line - 1).unwrap_or("").trim();
            found.push(format!(
                "{}:{line}: `rusqlite` outside src/store/: {text}",
                file.path
            ));
        }
    }
    assert!(found.is_empty(), "{}", report(&found));
}

#[test]
fn no_source_file_grows_past_its_line_limit() {
    let files = source_files();
    let mut sizes: Vec<(usize, &str)> = files
        .iter()
        .map(|f| (f.text.lines().count(), f.path.as_str()))
        .collect();
    sizes.sort_by(|a, b| b.cmp(a));
    println!("largest files under src/ (limit {MAX_LINES} lines):");
    for (lines, path) in sizes.iter().take(6) {
        println!("  {lines:5} {path}");
    }
    let mut found = Vec::new();
    for &(lines, path) in &sizes {
        let limit = LARGE_FILES
            .iter()
            .find(|(p, _)| *p == path)
            .map_or(MAX_LINES, |(_, l)| *l);
        if lines > limit {
            found.push(format!(
                "{path}:{lines}: {lines} lines, over the limit of {limit}; split it"
            ));
        }
    }
    for (path, _) in LARGE_FILES {
        match sizes.iter().find(|(_, p)| p == path) {
            None => found.push(format!("{path}: in LARGE_FILES but gone; remove the entry")),
            Some((lines, _)) if *lines <= MAX_LINES => found.push(format!(
                "{path}: {lines} lines, within {MAX_LINES} now; remove its LARGE_FILES entry"
            )),
            Some(_) => {}
        }
    }
    assert!(found.is_empty(), "{}", report(&found));
}

/// The checks themselves, on made-up code: they find what they must and nothing else.
#[test]
fn tidy_finds_offences_in_code_and_not_in_prose_or_tests() {
    let rules: Vec<Rule> = CORE_FORBIDDEN.iter().map(|(r, _)| *r).collect();
    let source = r####"//! Never tokio here; std::fs neither.
use std::{collections::BTreeMap, fs as files};
use chrono::{DateTime, Utc};
/* block: rusqlite */ const X: &str = "std::net::TcpStream and Utc::now()";
const C: char = '"'; const Q: &str = r#"tokio "quoted" "#;
fn stamp<'a>(x: &'a str) -> DateTime<Utc> { let _ = x; Utc::now() }
fn not_a_clock() -> u8 { let my_tokio_thing = 1; let _ = MyInstant::now_ish(); my_tokio_thing }
fn spawned() { std::thread::spawn(|| ()); }
#[cfg(test)]
mod tests {
    use std::fs;
    fn t() { let _ = std::time::SystemTime::now(); }
}
#[cfg(test)]
mod more_tests;
fn after_tests() { let _: [u8; 2] = [0; 2]; let _ = std::time::Instant::now(); }
"####;
    let code = code_only(source);
    assert_eq!(code.lines().count(), source.lines().count());
    let (non_test, test_modules) = without_test_items(&code);
    assert_eq!(test_modules, ["more_tests"]);
    let found: Vec<(usize, String)> = offences(&non_test, &rules)
        .into_iter()
        .map(|(line, rule)| (line, rule.to_string()))
        .collect();
    let want: Vec<(usize, String)> = [
        (2, "std::fs"),
        (6, "Utc::now"),
        (8, "std::thread"),
        (16, "Instant::now"),
    ]
    .into_iter()
    .map(|(l, r)| (l, r.to_owned()))
    .collect();
    assert_eq!(found, want, "{non_test}");
    // The test module is exempt from the core's rules, not from being read.
    let all = offences(&code, &rules);
    assert!(all.contains(&(12, Rule::Name("SystemTime"))), "{all:?}");
    assert_eq!(module_dir("src/core/decide.rs"), "src/core/decide");
    assert_eq!(module_dir("src/core/mod.rs"), "src/core");
}
