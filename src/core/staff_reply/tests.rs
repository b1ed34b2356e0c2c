//! Unit tests of `staff_text` and `leaked_line`, and golden files:
//! `fixtures/staff_replies/NAME.eml` (a staff reply as its client sends it) →
//! `NAME.expected.txt` (the commands, one a line, then a blank line if there are any, then the
//! reply). `MADOGUCHI_BLESS=1` rewrites the expected files; read every change before committing.

use std::fs;
use std::path::{Path, PathBuf};

use proptest::prelude::*;

use super::*;
use crate::mail::read_message;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/staff_replies")
}

fn cases() -> Vec<PathBuf> {
    let mut names: Vec<PathBuf> = fs::read_dir(fixtures())
        .expect("fixtures/staff_replies exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    names.sort();
    names
}

fn name_of(eml: &Path) -> String {
    eml.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn read_case(eml: &Path) -> StaffText {
    let raw = fs::read(eml).unwrap_or_else(|e| panic!("{}: {e}", eml.display()));
    let read = read_message(&raw, &[]);
    staff_text(&read.mail.text)
}

fn internal() -> String {
    fs::read_to_string(fixtures().join("internal.txt")).expect("internal.txt")
}

/// The golden file's text: commands, a blank line when there are commands and a reply, the reply.
fn render(st: &StaffText) -> String {
    let mut out = String::new();
    for c in &st.commands {
        out.push_str(c);
        out.push('\n');
    }
    if !st.commands.is_empty() && !st.reply.is_empty() {
        out.push('\n');
    }
    if !st.reply.is_empty() {
        out.push_str(&st.reply);
        out.push('\n');
    }
    out
}

#[test]
fn golden_folder_is_not_empty() {
    let n = cases().len();
    assert!(n >= 10, "fixtures/staff_replies has only {n} .eml files");
}

#[test]
fn golden() {
    let bless = std::env::var("MADOGUCHI_BLESS").is_ok_and(|v| v == "1");
    let mut failures = Vec::new();
    for eml in cases() {
        let actual = render(&read_case(&eml));
        let expected_path = eml.with_extension("expected.txt");
        if bless {
            fs::write(&expected_path, &actual).expect("write expected");
            continue;
        }
        match fs::read_to_string(&expected_path) {
            Ok(expected) if expected == actual => {}
            Ok(expected) => failures.push(format!(
                "{}: differs\n--- expected\n{expected}--- actual\n{actual}",
                eml.display()
            )),
            Err(_) => failures.push(format!("{}: no expected .expected.txt", eml.display())),
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n(MADOGUCHI_BLESS=1 rewrites the expected files)",
        failures.join("\n")
    );
}

/// Every fixture decodes cleanly, leaks only when it is meant to, and only the interleaved
/// one says text was left below the quote.
#[test]
fn golden_leaks_and_flags() {
    let internal = internal();
    let leaks = [
        (
            "leak-interleaved",
            "----- 以下は社内情報です（お客様には送信されません）-----",
        ),
        (
            "leak-bottom-post",
            "----- 以下は社内情報です（お客様には送信されません）-----",
        ),
        (
            "leak-retyped",
            "契約状況　：サポート期間内（2026年4月1日(水)～2027年3月31日(水)）",
        ),
    ];
    let below_quote = ["interleaved-quote"];
    let mut wrong = Vec::new();
    let mut seen_leaks = 0;
    for eml in cases() {
        let name = name_of(&eml);
        let raw = fs::read(&eml).expect("read fixture");
        let mail = read_message(&raw, &[]).mail;
        if !mail.defects.is_empty() {
            wrong.push(format!("{name}: defects {:?}", mail.defects));
        }
        let st = staff_text(&mail.text);
        let leak = leaked_line(&st.reply, &internal);
        let want = leaks.iter().find(|(n, _)| *n == name).map(|(_, l)| *l);
        seen_leaks += usize::from(want.is_some());
        if leak.as_deref() != want {
            wrong.push(format!("{name}: leaked_line {leak:?}, want {want:?}"));
        }
        if st.text_below_quote != below_quote.contains(&name.as_str()) {
            wrong.push(format!("{name}: text_below_quote {}", st.text_below_quote));
        }
        if !name.starts_with("leak-") && !st.reply.is_empty() {
            // The notification's own text never survives in a clean reply.
            for quoted in [
                "この行より上に",
                "新しいお問合せを受け付けました",
                "受付番号",
            ] {
                if st.reply.contains(quoted) {
                    wrong.push(format!("{name}: reply keeps {quoted:?}"));
                }
            }
        }
    }
    assert_eq!(seen_leaks, leaks.len(), "a leak fixture is missing");
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

// ---- staff_text ----

fn reply(text: &str) -> String {
    staff_text(text).reply
}

#[test]
fn plain_text_is_kept_and_trimmed() {
    let st = staff_text("\n\n佐藤様\n\n回答です。\n\n\n");
    assert_eq!(st.reply, "佐藤様\n\n回答です。");
    assert!(st.commands.is_empty());
    assert!(!st.text_below_quote);
    assert_eq!(staff_text(""), StaffText::default());
    assert_eq!(staff_text("\u{feff}本文"), staff_text("本文"));
}

#[test]
fn commands_first_lines_then_reply() {
    let st = staff_text("#note\n社内メモです。\n#close\n");
    assert_eq!(st.commands, ["#note"]);
    assert_eq!(st.reply, "社内メモです。\n#close");

    let st = staff_text("\n  #close  \n\n＃category fault\n\n本文\n");
    assert_eq!(st.commands, ["#close", "#category fault"]);
    assert_eq!(st.reply, "本文");

    let st = staff_text("#close\n\nOn Mon, Nov 30, 2026 at 10:05 AM Desk <d@x.jp> wrote:\n> q\n");
    assert_eq!(st.commands, ["#close"]);
    assert_eq!(st.reply, "");
}

#[test]
fn quoted_lines_are_dropped_without_attribution() {
    assert_eq!(
        reply("> 質問1\n回答1\n > 質問2\n回答2\n>\n"),
        "回答1\n回答2"
    );
}

#[test]
fn english_attributions() {
    for attribution in [
        "On 11/30/26 10:05 AM, サポート窓口 wrote:",
        "On Mon, Nov 30, 2026 at 10:05 AM Desk <\nsupport@madoguchi.example.co.jp> wrote:",
        "On 30 Nov 2026, at 10:05, Desk <support@madoguchi.example.co.jp> wrote:",
        "On Mon, 30 Nov 2026 10:05:00 +0900\nDesk <support@madoguchi.example.co.jp> wrote:",
        "On Monday, November 30, 2026 10:05,\nMadoguchi Support Desk\n<support@madoguchi.example.co.jp> wrote:",
        "サポート窓口 wrote on 2026/11/30 10:05:",
    ] {
        let text = format!("回答です。\n\n{attribution}\n引用でない写し\n");
        assert_eq!(reply(&text), "回答です。", "{attribution}");
    }
    // A bare "… wrote:" only above a quote.
    assert_eq!(reply("回答\nサポート窓口 wrote:\n\n> 引用\n"), "回答");
    assert_eq!(
        reply("As you wrote:\nthe server stops."),
        "As you wrote:\nthe server stops."
    );
}

#[test]
fn japanese_attributions() {
    for attribution in [
        "2026/11/30 10:05 に サポート窓口 さんは書きました:",
        "サポート窓口 さんは書きました：",
        "2006-11-08 (水) の 11:31 +0100 に Desk さんは書きました:",
        "2026年11月30日(月) 10:05 サポート窓口 <support@madoguchi.example.co.jp>:",
        "2026年11月30日(月) 10:05 株式会社マドグチ サポート窓口 <\nsupport@madoguchi.example.co.jp>:",
        "2026/11/30 10:05、サポート窓口 <support@madoguchi.example.co.jp>のメール:",
        "2026/05/11 21:28 <support@madoguchi.example.co.jp> のメッセージ:",
    ] {
        let text = format!("回答です。\n{attribution}\n写し\n");
        assert_eq!(reply(&text), "回答です。", "{attribution}");
    }
    // Lines that only look like the end of one (no time of day, no address, no quote below).
    for own in [
        "以下のように書きました:\n手順1",
        "2026年11月に手順書を書きました:\n手順1",
        "2026/12/01 10:00 <メンテナンス>:\n予定",
        "2026/12/01 10:00 から作業します。結果は次のメール:\n予定",
    ] {
        assert_eq!(reply(own), own);
    }
}

#[test]
fn wrapped_attribution_keeps_the_line_above() {
    // The line above a wrapped attribution is the staff member's, even with a date in it.
    let text = "2026年12月1日に伺います。\n2026年11月30日(月) 10:05 サポート窓口 <\nsupport@madoguchi.example.co.jp>:\n> q";
    assert_eq!(reply(text), "2026年12月1日に伺います。");
}

#[test]
fn attribution_run_on_after_html_text() {
    // An HTML conversion that runs a signature's last line and Thunderbird's moz-cite-prefix
    // together on one line (as mail-parser's did; inline markup still can).
    let text = "本文\n-- \n山田 花子 <support@madoguchi.example.co.jp> 2026/11/30 10:05 に サポート窓口 さんは書きました:\n▲▲ 引用";
    assert_eq!(
        reply(text),
        "本文\n-- \n山田 花子 <support@madoguchi.example.co.jp>"
    );
    let text = "よろしく。 On 11/30/26 10:05 AM, Desk wrote:\n引用";
    assert_eq!(reply(text), "よろしく。");
}

#[test]
fn outlook_headers_and_separators() {
    let block = "From: Desk <support@madoguchi.example.co.jp>\nSent: Monday, November 30, 2026 10:05 AM\nTo: Hanako\nSubject: [NEO-DS#000123] x\n\n写し";
    assert_eq!(reply(&format!("回答\n\n{block}")), "回答");
    assert_eq!(
        reply(&format!("回答\n-----Original Message-----\n{block}")),
        "回答"
    );
    assert_eq!(
        reply(&format!("回答\n----- Original Message -----\n{block}")),
        "回答"
    );
    assert_eq!(
        reply(&format!("回答\n________________________________\n{block}")),
        "回答"
    );
    let ja = "差出人： 窓口 <support@madoguchi.example.co.jp>\n送信日時： 2026年11月30日 10:05\n宛先： 山田\n件名： x\n写し";
    assert_eq!(reply(&format!("回答\n{ja}")), "回答");
    let bold =
        "*From:* Desk <support@madoguchi.example.co.jp>\n*Date:* Mon\n*Subject:* x\n*To:* y\n写し";
    assert_eq!(reply(&format!("回答\n\n{bold}")), "回答");
    // From: run on at the end of the staff text (Outlook HTML, divRplyFwdMsg).
    let text = "よろしくお願いいたします。 差出人: 窓口 <support@madoguchi.example.co.jp>\n送信日時: 2026年11月30日 10:05\n宛先: 山田\n件名: x\n写し";
    assert_eq!(reply(text), "よろしくお願いいたします。");
    // One header-looking line, rules in a signature, or fields explained without a date are
    // the staff member's.
    let own = "To: 佐藤様\n本文\n----------\n山田\n__________\nFrom: 山田\n以上";
    assert_eq!(reply(own), own);
    let own = "設定例:\nFrom: taro@example.jp\nTo: support@example.jp\nSubject: テスト\n以上です。";
    assert_eq!(reply(own), own);
}

#[test]
fn boundary_cuts_an_unknown_copy() {
    let text =
        "回答\n\nSome client's header\n▲▲ この行より上に書いた文章がお客様に返信されます。\n写し";
    assert_eq!(
        staff_text_with(text, &["▲▲ この行より上に", ""]).reply,
        "回答\n\nSome client's header"
    );
    assert_eq!(staff_text_with(text, &["  "]).reply, text);
}

#[test]
fn interleaved_and_bottom_answers_are_flagged() {
    let st = staff_text("佐藤様\n\nOn 11/30/26 10:05 AM, Desk wrote:\n> 質問\n回答\n> 続き\n");
    assert_eq!(st.reply, "佐藤様");
    assert!(st.text_below_quote);
    let st = staff_text("On 11/30/26 10:05 AM, Desk wrote:\n> 質問\n\n回答\n");
    assert_eq!(st.reply, "");
    assert!(st.text_below_quote);
    // A signature below the quote, or an unquoted (HTML) copy, is not an answer.
    assert!(
        !staff_text("回答\nOn 11/30/26 10:05 AM, Desk wrote:\n> 質問\n-- \n山田\n")
            .text_below_quote
    );
    assert!(
        !staff_text("回答\nOn 11/30/26 10:05 AM, Desk wrote:\n質問\n> 引用\n本文\n")
            .text_below_quote
    );
    // Below a header block too, when the copy is quoted; an unquoted copy never sets it.
    let st =
        staff_text("回答\n-----Original Message-----\nFrom: a\nSent: b\nTo: c\n\n> 質問\n回答2\n");
    assert_eq!(st.reply, "回答");
    assert!(st.text_below_quote);
    assert!(
        !staff_text("回答\n-----Original Message-----\nFrom: a\nSent: b\n質問\n> 引用\n本文\n")
            .text_below_quote
    );
}

// ---- leaked_line ----

const INTERNAL: &str = "----- 以下は社内情報です（お客様には送信されません）-----\nお客様番号：C-1001\n\n契約状況　：サポート期間内（2026年4月1日(水)～2027年3月31日(水)）\nC-1\n--------------------\n";

#[test]
fn leaked_line_finds_copied_internal_lines() {
    assert_eq!(leaked_line("佐藤様\n\n回答です。", INTERNAL), None);
    assert_eq!(leaked_line("", INTERNAL), None);
    assert_eq!(
        leaked_line("回答\nお客様番号：C-1001\n", INTERNAL).as_deref(),
        Some("お客様番号：C-1001")
    );
    // The first line of `internal` that appears, not the first line of the reply.
    assert_eq!(
        leaked_line(
            "契約状況　：サポート期間内（2026年4月1日(水)～2027年3月31日(水)）\nお客様番号：C-1001",
            INTERNAL
        )
        .as_deref(),
        Some("お客様番号：C-1001")
    );
}

#[test]
fn leaked_line_ignores_spacing_quotes_width_and_wrapping() {
    for copy in [
        "> > お客様番号：C-1001",
        "　お客様番号　：　C-1001　",
        "お客様番号: c-1001",
        "お客様番号：Ｃ－１００１",
        "前文 お客様番号：C-1001 後文",
        "契約状況 :サポート期間内（2026年4月1日(水)～\n2027年3月31日(水)）",
        "契約状況\u{a0}：サポート期間内(2026年4月1日(水)~2027年3月31日(水))",
    ] {
        assert!(leaked_line(copy, INTERNAL).is_some(), "{copy}");
    }
}

#[test]
fn leaked_line_skips_short_and_rule_lines() {
    assert_eq!(leaked_line("C-1\n--------------------\n\n", INTERNAL), None);
    assert_eq!(leaked_line("anything", "\n  \n>\nabc\n"), None);
}

// ---- properties ----

const FRAGMENTS: &[&str] = &[
    "",
    " ",
    "> 引用",
    ">",
    "#note",
    "＃close",
    "-- ",
    "On 11/30/26 10:05 AM, サポート窓口 wrote:",
    "On Mon, Nov 30, 2026 at 10:05 AM Desk <",
    "support@madoguchi.example.co.jp> wrote:",
    "wrote:",
    "2026/11/30 10:05 に サポート窓口 さんは書きました:",
    "さんは書きました：",
    "2026年11月30日(月) 10:05 窓口 <",
    "a@b>:",
    "2026/11/30 10:05、窓口 <a@b>のメール:",
    "-----Original Message-----",
    "-- original message --",
    "________________________________",
    "From: a",
    "差出人： a",
    "*From:* a",
    "Sent: b",
    "送信日時：b",
    "To: c",
    "件名: d",
    "お客様番号：C-1001",
    "é",
    "\u{3000}",
    "\r",
];

fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(FRAGMENTS).prop_map(str::to_owned),
        "[ >#＃:：a-zA-Z0-9年月日/<>@、の_*\u{3000}-]{0,30}",
        any::<String>(),
    ]
}

fn text() -> impl Strategy<Value = String> {
    proptest::collection::vec((line(), line(), 0u8..4), 0..30).prop_map(|parts| {
        parts
            .into_iter()
            .map(|(a, b, glue)| match glue {
                0 => format!("{a} {b}"),
                1 => format!("{a}{b}"),
                _ => a,
            })
            .collect::<Vec<_>>()
            .join("\n")
    })
}

/// Every line of `reply` is part of an input line, in the input's order.
fn from_input_lines(reply: &str, input: &str) -> bool {
    let input: Vec<&str> = input.lines().collect();
    let mut at = 0;
    for r in reply.lines() {
        match input
            .get(at..)
            .and_then(|rest| rest.iter().position(|l| l.contains(r)))
        {
            Some(p) => at += p + 1,
            None => return false,
        }
    }
    true
}

fn check(input: &str) -> Result<(), TestCaseError> {
    let st = staff_text(input);
    prop_assert!(
        from_input_lines(&st.reply, input),
        "{:?} -> {:?}",
        input,
        st.reply
    );
    prop_assert!(!st.reply.lines().any(is_quoted));
    prop_assert!(st.reply.lines().next().is_none_or(|l| !is_blank(l)));
    prop_assert!(st.reply.lines().last().is_none_or(|l| !is_blank(l)));
    prop_assert!(st.commands.iter().all(|c| c.starts_with('#')));
    let with = staff_text_with(input, &["窓口", "é"]);
    prop_assert!(from_input_lines(&with.reply, input));
    let _ = leaked_line(input, &st.reply);
    let _ = leaked_line(&st.reply, input);
    Ok(())
}

proptest! {
    #[test]
    fn staff_text_keeps_only_input_text(input in text()) {
        check(&input)?;
    }

    #[test]
    fn staff_text_never_panics_on_any_string(input in any::<String>()) {
        check(&input)?;
    }
}

/// A body at the reader's size limit, made of lines that each nearly start a reply header,
/// is read in one pass (no line is re-joined once per word).
#[test]
fn large_pathological_input() {
    let line = "On 10:05 ".repeat(2_000) + "wrote:";
    let mut text = String::new();
    while text.len() < crate::mail::MAX_TEXT_BYTES {
        text.push_str(&line);
        text.push_str("\nFrom: a\n2026/11/30 10:05 ");
    }
    let st = staff_text(&text);
    assert!(from_input_lines(&st.reply, &text));
    assert!(leaked_line(&st.reply, &text).is_none_or(|l| text.contains(&l)));
}
