//! Web-form mail (R4 inquiries, R7 license applications): bodies of `【label】value` lines.
//!
//! A value starts after `】` (a leading `:`/`：` is dropped) and continues on the following
//! lines until one of:
//! - the next label line;
//! - a separator line (three or more of `-=━─＝－*＊_＿`) or a signature separator (`--` or
//!   `-- ` alone on a line), which forms put before their footer (`申請日時：…`, `送信元IP：…`);
//! - a blank line followed by a line that is not a label: the footer of a form without a
//!   separator. This rule does not apply to the free-text inquiry body (see
//!   [`FormField::is_free_text`]), whose paragraphs are kept.
//!
//! Text before the first label and after the end of a value is not part of any value. Values
//! are trimmed (ASCII and full-width spaces, leading and trailing blank lines).
//!
//! Labels map to semantic [`FormField`]s through [`FormLabels`] (configurable; several labels
//! may name one field). Labels compare after removing whitespace and folding full-width ASCII,
//! so `【 メールアドレス 】` and `【E-mail】`/`【Ｅ－ｍａｉｌ】` work. Unknown labels are kept.
//!
//! Kind rule: a form is a **license application** when it has a `新サーバー識別子`
//! (new server id, only that form asks for it), or when it has a license serial or an
//! application reason and no inquiry body (`お問合せ内容`). Everything else is an **inquiry**
//! (an inquiry form may well ask for the license number too).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use super::inbound::{FormKind, FormMail};

/// What a form label means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FormField {
    /// お客様番号: the contract id as the customer names it.
    CustomerNumber,
    /// 会社名
    Company,
    /// ご担当者名
    ContactName,
    /// メールアドレス: a claim, not an identity (keys go to registered contacts only).
    Email,
    /// 製品
    Product,
    /// バージョン
    Version,
    /// お問合せ種別
    Category,
    /// お問合せ内容
    Body,
    /// ライセンス番号
    LicenseSerial,
    /// 申請理由
    Reason,
    /// 新サーバー識別子
    NewServerId,
}

impl FormField {
    pub const ALL: [FormField; 11] = [
        FormField::CustomerNumber,
        FormField::Company,
        FormField::ContactName,
        FormField::Email,
        FormField::Product,
        FormField::Version,
        FormField::Category,
        FormField::Body,
        FormField::LicenseSerial,
        FormField::Reason,
        FormField::NewServerId,
    ];

    /// Stable snake_case code (the serde name).
    pub fn code(self) -> &'static str {
        match self {
            FormField::CustomerNumber => "customer_number",
            FormField::Company => "company",
            FormField::ContactName => "contact_name",
            FormField::Email => "email",
            FormField::Product => "product",
            FormField::Version => "version",
            FormField::Category => "category",
            FormField::Body => "body",
            FormField::LicenseSerial => "license_serial",
            FormField::Reason => "reason",
            FormField::NewServerId => "new_server_id",
        }
    }

    /// Free text a customer writes in paragraphs: only the inquiry body (お問合せ内容).
    ///
    /// Such a value keeps blank lines between its paragraphs and ends only at the next label, a
    /// separator line or a signature separator. Losing the second half of a question would hurt
    /// more than showing staff a footer line, and the forms we know put a separator (`--` or a
    /// rule) before their footer. Every other field (identifiers, names, a short reason, and
    /// unknown labels) ends at a blank line followed by text, so a footer after a blank line
    /// never becomes part of, say, a new server id.
    pub fn is_free_text(self) -> bool {
        self == FormField::Body
    }
}

impl fmt::Display for FormField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// One `【label】value` of a form body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormEntry {
    /// The label as written between 【】 (trimmed).
    pub label: String,
    /// Its meaning, when the label is in the mapping.
    pub field: Option<FormField>,
    pub value: String,
}

/// Label strings per field. Each field accepts one label or a list in config
/// (`email = "メールアドレス"` or `email = ["メールアドレス", "E-mail"]`); a field left out
/// keeps its defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FormLabels {
    #[serde(deserialize_with = "one_or_many")]
    pub customer_number: Vec<String>,
    #[serde(deserialize_with = "one_or_many")]
    pub company: Vec<String>,
    #[serde(deserialize_with = "one_or_many")]
    pub contact_name: Vec<String>,
    #[serde(deserialize_with = "one_or_many")]
    pub email: Vec<String>,
    #[serde(deserialize_with = "one_or_many")]
    pub product: Vec<String>,
    #[serde(deserialize_with = "one_or_many")]
    pub version: Vec<String>,
    #[serde(deserialize_with = "one_or_many")]
    pub category: Vec<String>,
    #[serde(deserialize_with = "one_or_many")]
    pub body: Vec<String>,
    #[serde(deserialize_with = "one_or_many")]
    pub license_serial: Vec<String>,
    #[serde(deserialize_with = "one_or_many")]
    pub reason: Vec<String>,
    #[serde(deserialize_with = "one_or_many")]
    pub new_server_id: Vec<String>,
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

impl Default for FormLabels {
    /// DESIGN.md's labels first, then the spelling variants Japanese forms commonly use.
    fn default() -> Self {
        FormLabels {
            customer_number: strings(&["お客様番号", "お客さま番号"]),
            company: strings(&["会社名", "貴社名"]),
            contact_name: strings(&["ご担当者名", "ご担当者", "担当者名"]),
            email: strings(&["メールアドレス", "E-mail", "Email", "Eメール"]),
            product: strings(&["製品", "製品名", "対象製品"]),
            version: strings(&["バージョン"]),
            category: strings(&["お問合せ種別", "お問い合わせ種別", "お問合わせ種別"]),
            body: strings(&["お問合せ内容", "お問い合わせ内容", "お問合わせ内容"]),
            license_serial: strings(&["ライセンス番号"]),
            reason: strings(&["申請理由"]),
            new_server_id: strings(&["新サーバー識別子", "新サーバ識別子"]),
        }
    }
}

impl FormLabels {
    /// The labels configured for one field.
    pub fn labels(&self, field: FormField) -> &[String] {
        match field {
            FormField::CustomerNumber => &self.customer_number,
            FormField::Company => &self.company,
            FormField::ContactName => &self.contact_name,
            FormField::Email => &self.email,
            FormField::Product => &self.product,
            FormField::Version => &self.version,
            FormField::Category => &self.category,
            FormField::Body => &self.body,
            FormField::LicenseSerial => &self.license_serial,
            FormField::Reason => &self.reason,
            FormField::NewServerId => &self.new_server_id,
        }
    }

    /// The field a label names, if any (first field in [`FormField::ALL`] order wins when a
    /// label was configured twice).
    pub fn field_for(&self, label: &str) -> Option<FormField> {
        let key = label_key(label);
        if key.is_empty() {
            return None;
        }
        FormField::ALL
            .into_iter()
            .find(|&f| self.labels(f).iter().any(|l| label_key(l) == key))
    }
}

fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

/// Full-width ASCII → ASCII, ideographic space → space; used wherever Japanese text is
/// compared with configured words.
pub(crate) fn fold_width(c: char) -> char {
    match c {
        '\u{3000}' => ' ',
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        _ => c,
    }
}

/// Comparison key of a label: width-folded, whitespace removed, ASCII lowercased.
fn label_key(label: &str) -> String {
    label
        .chars()
        .map(fold_width)
        .filter(|c| !c.is_whitespace())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn is_separator(line: &str) -> bool {
    let t = line.trim_matches(|c: char| c.is_whitespace());
    t.chars().count() >= 3 && t.chars().all(|c| "-=━─＝－*＊_＿".contains(c))
}

/// `--` or `-- ` alone on a line (the usual signature separator, trailing space optional).
fn is_signature_separator(line: &str) -> bool {
    line.trim_end_matches(|c: char| c.is_whitespace()) == "--"
}

fn is_blank(line: &str) -> bool {
    line.chars().all(char::is_whitespace)
}

/// `(label, rest)` when the line is a label line.
fn label_line(line: &str) -> Option<(&str, &str)> {
    let t = line.trim_start_matches(|c: char| c.is_whitespace());
    let inner = t.strip_prefix('【')?;
    let (label, rest) = inner.split_once('】')?;
    let rest = rest.trim_start_matches(|c: char| c.is_whitespace());
    let rest = rest
        .strip_prefix(':')
        .or_else(|| rest.strip_prefix('：'))
        .unwrap_or(rest);
    Some((label.trim_matches(|c: char| c.is_whitespace()), rest))
}

fn finish_value(lines: &[&str]) -> String {
    let joined = lines
        .iter()
        .map(|l| l.trim_end_matches(|c: char| c.is_whitespace()))
        .collect::<Vec<_>>()
        .join("\n");
    joined.trim_matches(|c: char| c.is_whitespace()).to_owned()
}

/// The value being filled.
struct Open<'a> {
    label: String,
    field: Option<FormField>,
    lines: Vec<&'a str>,
    /// A blank line was seen since the last text line.
    after_blank: bool,
}

/// Parse a form body. `None` when the text has no label line at all.
pub fn parse_form(text: &str, labels: &FormLabels) -> Option<FormMail> {
    let mut fields: Vec<FormEntry> = Vec::new();
    // The value being filled; `None` once it has ended and before the next label.
    let mut current: Option<Open<'_>> = None;

    let flush = |current: &mut Option<Open<'_>>, fields: &mut Vec<FormEntry>| {
        if let Some(open) = current.take() {
            fields.push(FormEntry {
                field: open.field,
                value: finish_value(&open.lines),
                label: open.label,
            });
        }
    };

    for line in text.lines() {
        if let Some((label, rest)) = label_line(line) {
            flush(&mut current, &mut fields);
            current = Some(Open {
                label: label.to_owned(),
                field: labels.field_for(label),
                lines: vec![rest],
                after_blank: false,
            });
        } else if is_separator(line) || is_signature_separator(line) {
            flush(&mut current, &mut fields);
        } else if let Some(open) = current.as_mut() {
            if is_blank(line) {
                open.after_blank = true;
                open.lines.push(line);
            } else if open.after_blank && !open.field.is_some_and(FormField::is_free_text) {
                flush(&mut current, &mut fields);
            } else {
                open.after_blank = false;
                open.lines.push(line);
            }
        }
    }
    flush(&mut current, &mut fields);

    if fields.is_empty() {
        return None;
    }
    let has = |f: FormField| {
        fields
            .iter()
            .any(|e| e.field == Some(f) && !e.value.is_empty())
    };
    let kind = if has(FormField::NewServerId)
        || ((has(FormField::LicenseSerial) || has(FormField::Reason)) && !has(FormField::Body))
    {
        FormKind::LicenseApplication
    } else {
        FormKind::Inquiry
    };
    Some(FormMail { kind, fields })
}

#[cfg(test)]
mod tests {
    use super::*;

    const INQUIRY: &str = "Webサイトからお問合せがありました。\n\n\
        【お客様番号】C-1001\n\
        【会社名】株式会社テスト\n\
        【ご担当者名】山田 太郎\n\
        【メールアドレス】taro@example.co.jp\n\
        【製品】desknet's NEO 分散サーバー\n\
        【バージョン】V8.0\n\
        【お問合せ種別】不具合確認・原因調査・問題切り分け\n\
        【お問合せ内容】\n\
        分散サーバーでエラーが出ます。\n\
        \n\
        ログを添付します。\n\
        \n\
        ----------------------------------------\n\
        このメールは自動送信されています。\n";

    #[test]
    fn parses_inquiry_with_multiline_body_and_footer() {
        let form = parse_form(INQUIRY, &FormLabels::default()).expect("form");
        assert_eq!(form.kind, FormKind::Inquiry);
        assert_eq!(form.get(FormField::CustomerNumber), Some("C-1001"));
        assert_eq!(form.get(FormField::Company), Some("株式会社テスト"));
        assert_eq!(form.get(FormField::ContactName), Some("山田 太郎"));
        assert_eq!(form.get(FormField::Email), Some("taro@example.co.jp"));
        assert_eq!(form.get(FormField::Version), Some("V8.0"));
        assert_eq!(
            form.get(FormField::Body),
            Some("分散サーバーでエラーが出ます。\n\nログを添付します。")
        );
        assert_eq!(form.get(FormField::LicenseSerial), None);
        assert_eq!(form.fields.len(), 8);
    }

    #[test]
    fn license_application_kind() {
        let text = "【お客様番号】C-2002\n【ライセンス番号】NEO-DS-1234-5678\n\
                    【メールアドレス】it@example.jp\n【申請理由】サーバー故障のため\n\
                    【新サーバー識別子】ABCD-EF01\n";
        let form = parse_form(text, &FormLabels::default()).expect("form");
        assert_eq!(form.kind, FormKind::LicenseApplication);
        assert_eq!(form.get(FormField::NewServerId), Some("ABCD-EF01"));
        assert_eq!(form.get(FormField::Reason), Some("サーバー故障のため"));
    }

    #[test]
    fn inquiry_that_asks_for_license_number_stays_inquiry() {
        let text = "【ライセンス番号】X-1\n【お問合せ内容】設定方法を教えてください\n";
        let form = parse_form(text, &FormLabels::default()).expect("form");
        assert_eq!(form.kind, FormKind::Inquiry);
        let text = "【ライセンス番号】X-1\n【申請理由】移設\n";
        let form = parse_form(text, &FormLabels::default()).expect("form");
        assert_eq!(form.kind, FormKind::LicenseApplication);
    }

    #[test]
    fn labels_compare_without_spaces_and_width() {
        let text = "【 メール アドレス 】 a@b.jp\n";
        let form = parse_form(text, &FormLabels::default()).expect("form");
        assert_eq!(form.get(FormField::Email), Some("a@b.jp"));
        assert_eq!(form.fields[0].label, "メール アドレス");
    }

    #[test]
    fn colon_after_label_and_unknown_label() {
        let text = "【備考】：特になし\n【Ｅ－ｍａｉｌ】c@d.jp\n";
        let form = parse_form(text, &FormLabels::default()).expect("form");
        assert_eq!(form.get_label("備考"), Some("特になし"));
        assert_eq!(form.unknown().count(), 1);
        assert_eq!(form.get(FormField::Email), Some("c@d.jp"));
    }

    #[test]
    fn no_labels_is_no_form() {
        assert_eq!(
            parse_form("こんにちは\n本文です\n", &FormLabels::default()),
            None
        );
        assert_eq!(parse_form("", &FormLabels::default()), None);
    }

    #[test]
    fn labels_deserialize_one_or_many_and_keep_defaults() {
        let labels: FormLabels =
            serde_json::from_str(r#"{"email": "連絡先メール", "body": ["内容", "ご質問"]}"#)
                .expect("labels");
        assert_eq!(labels.email, vec!["連絡先メール".to_owned()]);
        assert_eq!(labels.field_for("ご質問"), Some(FormField::Body));
        assert_eq!(labels.field_for("会社名"), Some(FormField::Company));
        assert!(serde_json::from_str::<FormLabels>(r#"{"nope": "x"}"#).is_err());
    }

    /// A license-application form as the web form sends it: the footer follows a blank line
    /// and a `--` signature separator.
    const LICENSE_WITH_FOOTER: &str = "ライセンスキー再発行申請フォームより、以下の申請がありました。\n\n\
        【お客様番号】C-1002\n\
        【ライセンス番号】DNDS-2026-01152\n\
        【メールアドレス】suzuki@beta.example.jp\n\
        【申請理由】サーバー変更\n\
        【新サーバー識別子】HID-A27F-6C19\n\
        \n\
        --\n\
        申請日時：2026-11-24 17:05:33\n\
        送信元IP：198.51.100.77\n";

    #[test]
    fn license_form_footer_is_not_part_of_the_last_field() {
        let form = parse_form(LICENSE_WITH_FOOTER, &FormLabels::default()).expect("form");
        assert_eq!(form.kind, FormKind::LicenseApplication);
        assert_eq!(form.get(FormField::NewServerId), Some("HID-A27F-6C19"));
        assert_eq!(form.get(FormField::Reason), Some("サーバー変更"));
        assert_eq!(form.fields.len(), 5);
    }

    #[test]
    fn signature_separator_ends_a_field_with_or_without_blank_line() {
        for sep in ["--", "-- ", "--\t"] {
            let text = format!(
                "【新サーバー識別子】HID-1\n{sep}\n申請日時：2026-11-24 17:05:33\n\
                 送信元IP：198.51.100.77\n"
            );
            let form = parse_form(&text, &FormLabels::default()).expect("form");
            assert_eq!(form.get(FormField::NewServerId), Some("HID-1"), "{sep:?}");
            let text = format!("【お問合せ内容】質問です。\n\n{sep}\n送信日時：2026-11-24\n");
            let form = parse_form(&text, &FormLabels::default()).expect("form");
            assert_eq!(form.get(FormField::Body), Some("質問です。"), "{sep:?}");
        }
    }

    #[test]
    fn blank_line_then_text_ends_a_field() {
        // No separator at all: the footer only stands apart by a blank line.
        let text = "【お客様番号】C-1002\n【新サーバー識別子】HID-A27F-6C19\n\n\
                    申請日時：2026-11-24 17:05:33\n送信元IP：198.51.100.77\n";
        let form = parse_form(text, &FormLabels::default()).expect("form");
        assert_eq!(form.get(FormField::NewServerId), Some("HID-A27F-6C19"));
        // A value still continues on the next lines, and a blank line before the next label
        // only ends it.
        let text = "【申請理由】サーバーの故障により\n新サーバーへ移行\n\n\n\
                    【新サーバー識別子】HID-2\n\n\n";
        let form = parse_form(text, &FormLabels::default()).expect("form");
        assert_eq!(
            form.get(FormField::Reason),
            Some("サーバーの故障により\n新サーバーへ移行")
        );
        assert_eq!(form.get(FormField::NewServerId), Some("HID-2"));
    }

    #[test]
    fn inquiry_body_keeps_its_paragraphs_until_the_signature() {
        let text = "desknet's NEO 分散サーバー お問い合わせフォームより、以下の内容で送信がありました。\n\n\
            【お客様番号】C-1005\n\
            【会社名】株式会社イプシロン\n\
            【お問合せ種別】不具合\n\
            【お問合せ内容】子機から申請した稟議が親機の承認待ち一覧に表示されません。\n\
            11月24日 10時頃に申請した3件が該当します。\n\
            \n\
            親機から申請したものは正常に表示されます。\n\
            原因の調査をお願いいたします。\n\
            \n\
            --\n\
            送信日時：2026-11-24 15:42:18\n\
            送信元IP：198.51.100.77\n";
        let form = parse_form(text, &FormLabels::default()).expect("form");
        assert_eq!(
            form.get(FormField::Body),
            Some(
                "子機から申請した稟議が親機の承認待ち一覧に表示されません。\n\
                 11月24日 10時頃に申請した3件が該当します。\n\n\
                 親機から申請したものは正常に表示されます。\n\
                 原因の調査をお願いいたします。"
            )
        );
        assert_eq!(form.get(FormField::Category), Some("不具合"));
        // The body may also come first, with further labels after it.
        let text = "【お問合せ内容】\n一段落目。\n\n二段落目。\n\n【会社名】A社\n\n--\nfooter\n";
        let form = parse_form(text, &FormLabels::default()).expect("form");
        assert_eq!(form.get(FormField::Body), Some("一段落目。\n\n二段落目。"));
        assert_eq!(form.get(FormField::Company), Some("A社"));
    }

    #[test]
    fn value_continues_until_next_label() {
        let text = "【お問合せ内容】一行目\n  二行目  \n【会社名】A社\n";
        let form = parse_form(text, &FormLabels::default()).expect("form");
        assert_eq!(form.get(FormField::Body), Some("一行目\n  二行目"));
    }
}
