//! Third-party mail from `MADOGUCHI_CORPUS` (the shared corpus, read in place, never copied).
//! Unset: the test says it skipped. Set: the corpus must be there and every check is
//! mandatory. Run with `--nocapture` to see the counts; `MADOGUCHI_CORPUS_VERBOSE=1` also
//! lists every file's verdict.

use std::collections::BTreeMap;
use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use super::{PARSER_FAILED, read_message};
use crate::core::guard::{Guard, NoReplyReason, assess};

const DESK: &str = "support@madoguchi.example.co.jp";

fn corpus_root() -> Option<PathBuf> {
    let root = PathBuf::from(std::env::var_os("MADOGUCHI_CORPUS")?);
    assert!(
        root.is_dir(),
        "MADOGUCHI_CORPUS={} is not a directory",
        root.display()
    );
    Some(root)
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// Mail, not licences, READMEs, expected-output JSON, holiday tables or images.
fn looks_like_mail(path: &Path) -> bool {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let skipped_dir = path.components().any(|c| {
        let c = c.as_os_str().to_string_lossy().to_ascii_lowercase();
        c == "holidays" || c.starts_with("licen")
    });
    !(skipped_dir
        || name.starts_with("license")
        || name.starts_with("licence")
        || name.starts_with("mit-license")
        || name.starts_with("readme")
        || name.starts_with('.')
        || matches!(
            ext.as_str(),
            "json" | "yml" | "yaml" | "csv" | "md" | "jpg" | "png" | "gif"
        ))
}

/// Undecoded JIS escapes, UTF-8 read as Latin-1, or more replacement characters than
/// Japanese ones. (Carrier emoji outside the JIS tables legitimately become U+FFFD.)
fn garbled(s: &str) -> bool {
    let chars: Vec<char> = s.chars().collect();
    let latin1_mojibake = chars
        .windows(2)
        .any(|w| ('\u{C0}'..='\u{FF}').contains(&w[0]) && ('\u{80}'..='\u{BF}').contains(&w[1]));
    let replacement = chars.iter().filter(|&&c| c == '\u{FFFD}').count();
    let japanese = chars
        .iter()
        .filter(|&&c| matches!(c, '\u{3040}'..='\u{30FF}' | '\u{4E00}'..='\u{9FFF}'))
        .count();
    s.contains('\u{1b}') || latin1_mojibake || replacement > japanese
}

fn verdict(g: &Guard) -> String {
    match g {
        Guard::Human => "human".into(),
        Guard::NoReply(r) => r.code().into(),
    }
}

fn read_guarded(path: &Path) -> Result<(Guard, super::ReadMessage), String> {
    let raw = fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    catch_unwind(AssertUnwindSafe(|| {
        let read = read_message(&raw, &[]);
        (assess(&read.mail, &[DESK.to_owned()]), read)
    }))
    .map_err(|_| format!("{}: PANIC", path.display()))
}

#[test]
fn corpus() {
    let Some(root) = corpus_root() else {
        println!("corpus test skipped: MADOGUCHI_CORPUS is not set");
        return;
    };
    let mut all = Vec::new();
    files_under(&root, &mut all);
    all.retain(|p| looks_like_mail(p));
    all.sort();
    assert!(
        all.len() > 1000,
        "only {} mail files under {}",
        all.len(),
        root.display()
    );

    let mut panics = Vec::new();
    let mut parser_failures = Vec::new();
    let mut verdicts: BTreeMap<String, usize> = BTreeMap::new();
    let mut bounce_reasons: BTreeMap<String, usize> = BTreeMap::new();
    let mut bounce_failures = Vec::new();
    let mut bounce_total = 0;
    let mut ham_total = 0;
    let mut ham_not_list = Vec::new();
    let mut garbled_japanese = Vec::new();

    for path in &all {
        let rel = path.strip_prefix(&root).unwrap_or(path);
        let rel_s = rel.to_string_lossy().into_owned();
        let (guard, read) = match read_guarded(path) {
            Ok(x) => x,
            Err(e) => {
                panics.push(e);
                continue;
            }
        };
        if read
            .mail
            .defects
            .iter()
            .any(|d| d.starts_with(PARSER_FAILED))
        {
            parser_failures.push(rel_s.clone());
        }
        *verdicts.entry(verdict(&guard)).or_default() += 1;
        if std::env::var_os("MADOGUCHI_CORPUS_VERBOSE").is_some()
            && !rel_s.starts_with("ham-")
            && !rel_s.starts_with("bounces-sisimai/maildir/")
        {
            println!(
                "  all {rel_s}: {} subject={:?}",
                guard.code(),
                read.mail.subject
            );
        }

        let parent = rel
            .parent()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        if ["bsd", "dos", "tmp"]
            .iter()
            .any(|d| parent == format!("bounces-sisimai/maildir/{d}"))
        {
            bounce_total += 1;
            *bounce_reasons.entry(verdict(&guard)).or_default() += 1;
            if std::env::var_os("MADOGUCHI_CORPUS_VERBOSE").is_some() && guard.code() != "bounce" {
                println!(
                    "  {rel_s}: {} from={:?} subject={:?}",
                    guard.code(),
                    read.mail.from,
                    read.mail.subject
                );
            }
            if guard.is_human() {
                bounce_failures.push(format!("{rel_s} (subject {:?})", read.mail.subject));
            }
        }
        if parent == "bounces-sisimai/maildir/not" {
            println!(
                "not-a-bounce {rel_s}: {guard} (subject {:?})",
                read.mail.subject
            );
        }
        if parent == "ham-ksummit-discuss/messages" {
            ham_total += 1;
            if !matches!(guard, Guard::NoReply(NoReplyReason::MailingList(Some(_)))) {
                let raw = fs::read(path).unwrap_or_default();
                let has_list_id = String::from_utf8_lossy(&raw)
                    .lines()
                    .take_while(|l| !l.is_empty())
                    .any(|l| l.to_ascii_lowercase().starts_with("list-id:"));
                ham_not_list.push(format!("{rel_s}: {guard} (List-Id header: {has_list_id})"));
            }
        }
        if rel_s.starts_with("japanese/") {
            for (what, s) in [("subject", &read.mail.subject), ("text", &read.mail.text)] {
                if garbled(s) {
                    garbled_japanese.push(format!("{rel_s}: {what} {s:?}"));
                }
            }
            if rel_s.ends_with("iphone-cp932.eml") && read.mail.text != "テストです。㈱" {
                garbled_japanese.push(format!("{rel_s}: cp932 text {:?}", read.mail.text));
            }
        }
    }

    println!("corpus: {} files read from {}", all.len(), root.display());
    println!("verdicts over the whole corpus:");
    for (v, n) in &verdicts {
        println!("  {v:24} {n}");
    }
    println!("sisimai bsd+dos+tmp: {bounce_total} files, reasons:");
    for (v, n) in &bounce_reasons {
        println!("  {v:24} {n}");
    }
    println!("ksummit list mail: {ham_total} files");

    let mut problems = Vec::new();
    if !panics.is_empty() {
        problems.push(format!("panics escaped read_message: {panics:#?}"));
    }
    // Caught inside read_message and turned into a defect: a panic all the same.
    if !parser_failures.is_empty() {
        problems.push(format!(
            "{} parser panics caught inside read_message: {parser_failures:#?}",
            parser_failures.len()
        ));
    }
    if bounce_total < 700 {
        problems.push(format!("only {bounce_total} sisimai bounce files found"));
    }
    if !bounce_failures.is_empty() {
        problems.push(format!(
            "{} bounces judged human: {bounce_failures:#?}",
            bounce_failures.len()
        ));
    }
    if ham_total == 0 || !ham_not_list.is_empty() {
        problems.push(format!(
            "{ham_total} list mails, not MailingList: {ham_not_list:#?}"
        ));
    }
    if !garbled_japanese.is_empty() {
        problems.push(format!("garbled Japanese subjects: {garbled_japanese:#?}"));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
