//! What an inquiry is about: the four R1 kinds, R2 license reissue, R3 base product, other.
//!
//! Decision order (first that applies wins):
//! 1. A license application form (R7) → [`Category::LicenseReissue`].
//! 2. An inquiry form whose `製品` names desknet's NEO and not the distributed server →
//!    [`Category::BaseProduct`]; a `製品` naming the distributed server switches step 4 off.
//! 3. An inquiry form's `お問合せ種別`, matched against [`ClassifyRules::form_categories`]
//!    (rule list order). `その他` and unknown values fall through.
//! 4. Base-product rule over the text: a product name or a NEO feature is mentioned and no
//!    distributed-server marker is → [`Category::BaseProduct`].
//! 5. Keyword rules ([`ClassifyRules::keywords`]) over subject + text; the **first rule in list
//!    order** with any matching keyword wins, wherever the word sits in the text. Default
//!    priority: license reissue, data migration (both triggered by a server change, R2/R1-4),
//!    fault, patch/upgrade, operation — so "バージョンアップ後にエラー" is a fault and
//!    "サーバー変更に伴うライセンスキー" a reissue.
//! 6. [`Category::Other`].
//!
//! The text is the form's `お問合せ内容` for inquiry forms, otherwise the mail text without
//! quoted lines (`>`) and without what follows an "Original Message"/forward marker, so a
//! reply quoting our own answer is classified by what the customer wrote.
//!
//! Matching folds full-width ASCII and case. A keyword that starts/ends with an ASCII letter
//! or digit only matches at ASCII word boundaries (`OS` does not match "host", `500` not
//! "1500"); a trailing `*` makes it a prefix (`error*` matches "errors").

use std::fmt;

use serde::{Deserialize, Serialize};

use super::form::{FormField, fold_width};
use super::inbound::{FormKind, InboundMail};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// R1-1 操作方法・設定方法・動作環境
    Operation,
    /// R1-2 不具合確認・原因調査・問題切り分け
    Fault,
    /// R1-3 パッチ適用・バージョンアップ
    PatchUpgrade,
    /// R1-4 サーバー変更に伴うデータ移行
    DataMigration,
    /// R2 ライセンスキー再発行
    LicenseReissue,
    /// R3 desknet's NEO itself (needs the separate annual support)
    BaseProduct,
    Other,
}

impl Category {
    pub const ALL: [Category; 7] = [
        Category::Operation,
        Category::Fault,
        Category::PatchUpgrade,
        Category::DataMigration,
        Category::LicenseReissue,
        Category::BaseProduct,
        Category::Other,
    ];

    /// Stable snake_case code (the serde name; stored in the database).
    pub fn code(self) -> &'static str {
        match self {
            Category::Operation => "operation",
            Category::Fault => "fault",
            Category::PatchUpgrade => "patch_upgrade",
            Category::DataMigration => "data_migration",
            Category::LicenseReissue => "license_reissue",
            Category::BaseProduct => "base_product",
            Category::Other => "other",
        }
    }

    pub fn from_code(code: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.code() == code)
    }

    /// The Japanese name used in replies and listings.
    pub fn label_ja(self) -> &'static str {
        match self {
            Category::Operation => "操作方法・設定・動作環境",
            Category::Fault => "不具合・障害",
            Category::PatchUpgrade => "パッチ適用・バージョンアップ",
            Category::DataMigration => "データ移行",
            Category::LicenseReissue => "ライセンスキー再発行",
            Category::BaseProduct => "desknet's NEO 本体",
            Category::Other => "その他",
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label_ja())
    }
}

/// A keyword: one word, or a list that must all appear (in any order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Keyword {
    Word(String),
    AllOf(Vec<String>),
}

impl Keyword {
    fn matches(&self, folded_text: &str) -> bool {
        match self {
            Keyword::Word(w) => contains_word(folded_text, w),
            Keyword::AllOf(ws) => {
                !ws.is_empty() && ws.iter().all(|w| contains_word(folded_text, w))
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            Keyword::Word(w) => w.clone(),
            Keyword::AllOf(ws) => ws.join("+"),
        }
    }
}

/// Keywords for one category.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategoryRule {
    pub category: Category,
    pub words: Vec<Keyword>,
}

/// R3: how to tell a question about desknet's NEO itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BaseProductRule {
    /// Names of the base product.
    pub product_names: Vec<String>,
    /// Groupware features of the base product (specific phrases: bare "スケジュール" would
    /// also match "作業スケジュール").
    pub features: Vec<String>,
    /// Words that mean the distributed server; any of them rules BaseProduct out.
    pub distributed_markers: Vec<String>,
}

impl Default for BaseProductRule {
    fn default() -> Self {
        BaseProductRule {
            product_names: strings(&[
                "desknet's neo",
                "desknets neo",
                "desknet’s neo",
                "デスクネッツ",
            ]),
            features: strings(&[
                "スケジュール機能",
                "スケジュール画面",
                "スケジュールの登録",
                "ワークフロー",
                "回覧板",
                "回覧・レポート",
                "設備予約",
                "施設予約",
                "Webメール",
                "ウェブメール",
                "電子会議室",
                "文書管理",
                "安否確認",
                "タイムカード",
                "掲示板",
                "インフォメーション",
                "アドレス帳",
                "伝言・所在",
            ]),
            distributed_markers: strings(&["分散", "distributed"]),
        }
    }
}

/// Configurable classification (serde: every key optional, defaults below).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClassifyRules {
    /// Matched against an inquiry form's `お問合せ種別` value.
    pub form_categories: Vec<CategoryRule>,
    pub base_product: BaseProductRule,
    /// Matched against subject + text; earlier rules have priority.
    pub keywords: Vec<CategoryRule>,
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

fn rule(category: Category, words: &[&str]) -> CategoryRule {
    CategoryRule {
        category,
        words: words
            .iter()
            .map(|w| Keyword::Word((*w).to_owned()))
            .collect(),
    }
}

impl Default for ClassifyRules {
    fn default() -> Self {
        ClassifyRules {
            form_categories: vec![
                rule(Category::LicenseReissue, &["ライセンス"]),
                rule(Category::DataMigration, &["データ移行", "移行"]),
                rule(Category::Fault, &["不具合", "障害", "原因調査", "切り分け"]),
                rule(Category::PatchUpgrade, &["パッチ", "バージョンアップ"]),
                rule(Category::Operation, &["操作", "設定", "動作環境"]),
                rule(Category::BaseProduct, &["本体"]),
            ],
            base_product: BaseProductRule::default(),
            keywords: vec![
                rule(
                    Category::LicenseReissue,
                    &["再発行", "ライセンスキー", "license key", "reissu*"],
                ),
                rule(
                    Category::DataMigration,
                    &[
                        "データ移行",
                        "移行",
                        "サーバー変更",
                        "サーバ変更",
                        "サーバーの変更",
                        "引っ越し",
                        "引越し",
                        "リプレース",
                        "migrat*",
                    ],
                ),
                rule(
                    Category::Fault,
                    &[
                        "エラー",
                        "不具合",
                        "障害",
                        "落ちる",
                        "落ちた",
                        "動かない",
                        "動作しない",
                        "起動しない",
                        "起動しません",
                        "起動できない",
                        "起動できません",
                        "動きません",
                        "動作しません",
                        "表示されない",
                        "表示されません",
                        "フリーズ",
                        "タイムアウト",
                        "error*",
                        "crash*",
                        "bug*",
                        "fail*",
                        "exception*",
                        "500",
                        "503",
                    ],
                ),
                rule(
                    Category::PatchUpgrade,
                    &[
                        "パッチ",
                        "バージョンアップ",
                        "アップデート",
                        "アップグレード",
                        "patch*",
                        "upgrad*",
                        "update*",
                    ],
                ),
                rule(
                    Category::Operation,
                    &[
                        "設定",
                        "操作",
                        "方法",
                        "環境",
                        "手順",
                        "使い方",
                        "インストール",
                        "OS",
                        "how to",
                        "setting*",
                        "install*",
                        "configur*",
                    ],
                ),
            ],
        }
    }
}

/// A category and the rule that chose it (for `mail inspect` and the ticket log).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Classification {
    pub category: Category,
    /// e.g. `form:license_application`, `form_category:不具合`, `keyword:エラー`.
    pub rule: String,
}

pub fn classify(mail: &InboundMail, rules: &ClassifyRules) -> Category {
    classify_explained(mail, rules).category
}

pub fn classify_explained(mail: &InboundMail, rules: &ClassifyRules) -> Classification {
    let found = |category: Category, rule: String| Classification { category, rule };
    let base = &rules.base_product;
    let mut product_is_distributed = false;
    let mut body: Option<&str> = None;

    if let Some(form) = &mail.form {
        if form.kind == FormKind::LicenseApplication {
            return found(Category::LicenseReissue, "form:license_application".into());
        }
        if let Some(product) = form.get(FormField::Product) {
            let p = fold(product);
            if any_word(&p, &base.distributed_markers).is_some() {
                product_is_distributed = true;
            } else if let Some(w) = any_word(&p, &base.product_names) {
                return found(Category::BaseProduct, format!("form_product:{w}"));
            }
        }
        if let Some(kind) = form.get(FormField::Category) {
            let k = fold(kind);
            for r in &rules.form_categories {
                if let Some(w) = r.words.iter().find(|w| w.matches(&k)) {
                    return found(r.category, format!("form_category:{}", w.describe()));
                }
            }
        }
        body = form.get(FormField::Body);
    }

    let text = match body {
        Some(b) => format!("{}\n{}", mail.subject, b),
        None => format!("{}\n{}", mail.subject, own_text(&mail.text)),
    };
    let text = fold(&text);

    if !product_is_distributed && any_word(&text, &base.distributed_markers).is_none() {
        if let Some(w) = any_word(&text, &base.product_names) {
            return found(Category::BaseProduct, format!("product:{w}"));
        }
        if let Some(w) = any_word(&text, &base.features) {
            return found(Category::BaseProduct, format!("feature:{w}"));
        }
    }

    for r in &rules.keywords {
        if let Some(w) = r.words.iter().find(|w| w.matches(&text)) {
            return found(r.category, format!("keyword:{}", w.describe()));
        }
    }
    found(Category::Other, "default".into())
}

/// The customer's own words: no quoted lines, nothing after a quoted-original marker.
fn own_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(64 * 1024));
    for line in text.lines() {
        let t = line.trim_start();
        let lower = t.to_ascii_lowercase();
        if lower.starts_with("-----original message")
            || lower.starts_with("----- original message")
            || lower.starts_with("-------- forwarded message")
            || lower.starts_with("---------- forwarded message")
            || lower.starts_with("begin forwarded message")
        {
            break;
        }
        if t.starts_with('>') || t.starts_with('＞') || t.starts_with('|') {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn fold(s: &str) -> String {
    s.chars()
        .map(fold_width)
        .map(|c| if c == '’' { '\'' } else { c })
        .flat_map(char::to_lowercase)
        .collect()
}

fn any_word<'a>(folded_text: &str, words: &'a [String]) -> Option<&'a str> {
    words
        .iter()
        .find(|w| contains_word(folded_text, w))
        .map(String::as_str)
}

/// Does the (already folded) text contain the keyword, with the boundary rules above?
fn contains_word(folded_text: &str, keyword: &str) -> bool {
    let (word, prefix) = match keyword.strip_suffix('*') {
        Some(w) => (w, true),
        None => (keyword, false),
    };
    let needle = fold(word);
    if needle.is_empty() {
        return false;
    }
    let ascii_start = needle
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    let ascii_end = needle
        .chars()
        .last()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    let is_word = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    folded_text.match_indices(&needle).any(|(at, m)| {
        let before = folded_text[..at].chars().next_back();
        let after = folded_text[at + m.len()..].chars().next();
        (!ascii_start || !is_word(before)) && (prefix || !ascii_end || !is_word(after))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::form::{FormLabels, parse_form};

    fn mail(subject: &str, text: &str) -> InboundMail {
        InboundMail {
            subject: subject.into(),
            text: text.into(),
            ..InboundMail::default()
        }
    }

    fn form_mail(body: &str) -> InboundMail {
        InboundMail {
            subject: "お問合せフォーム".into(),
            form: parse_form(body, &FormLabels::default()),
            text: body.into(),
            ..InboundMail::default()
        }
    }

    fn cat(subject: &str, text: &str) -> Category {
        classify(&mail(subject, text), &ClassifyRules::default())
    }

    #[test]
    fn codes_and_labels_are_stable() {
        let codes: Vec<_> = Category::ALL.iter().map(|c| c.code()).collect();
        assert_eq!(
            codes,
            [
                "operation",
                "fault",
                "patch_upgrade",
                "data_migration",
                "license_reissue",
                "base_product",
                "other"
            ]
        );
        for c in Category::ALL {
            assert_eq!(Category::from_code(c.code()), Some(c));
            assert_eq!(
                serde_json::to_string(&c).expect("json"),
                format!("\"{}\"", c.code())
            );
        }
        assert_eq!(Category::Fault.to_string(), "不具合・障害");
        assert_eq!(Category::BaseProduct.to_string(), "desknet's NEO 本体");
    }

    #[test]
    fn keywords_by_priority_not_position() {
        assert_eq!(
            cat("設定について", "分散サーバーでエラーが出ます"),
            Category::Fault
        );
        assert_eq!(cat("バージョンアップ後にエラー", ""), Category::Fault);
        assert_eq!(
            cat("パッチの適用方法", "分散サーバー"),
            Category::PatchUpgrade
        );
        assert_eq!(
            cat("サーバー変更に伴うライセンスキーの件", ""),
            Category::LicenseReissue
        );
        assert_eq!(cat("分散サーバーの移行手順", ""), Category::DataMigration);
        assert_eq!(
            cat("動作環境の確認", "対応OSを教えてください"),
            Category::Operation
        );
        assert_eq!(cat("Hello", "just saying hi"), Category::Other);
    }

    #[test]
    fn ascii_keywords_respect_word_boundaries() {
        assert_eq!(cat("host name", "closed"), Category::Other);
        assert_eq!(cat("Which OS?", ""), Category::Operation);
        assert_eq!(cat("HTTP 500 on login", ""), Category::Fault);
        assert_eq!(cat("costs 1500 yen", ""), Category::Other);
        assert_eq!(cat("Errors everywhere", ""), Category::Fault);
        assert_eq!(cat("ＥＲＲＯＲ", ""), Category::Fault);
        assert_eq!(cat("Data migration", ""), Category::DataMigration);
    }

    #[test]
    fn base_product_rule() {
        assert_eq!(
            cat("desknet's NEOのワークフロー設定", "承認経路の設定方法"),
            Category::BaseProduct
        );
        assert_eq!(cat("回覧板が表示されない", ""), Category::BaseProduct);
        assert_eq!(
            cat("desknet’s NEO 分散サーバーのエラー", ""),
            Category::Fault,
            "mentions the distributed server"
        );
        assert_eq!(
            cat("バージョンアップのスケジュール", ""),
            Category::PatchUpgrade
        );
    }

    #[test]
    fn quoted_text_does_not_count() {
        let text = "ありがとうございました。\n\n> desknet's NEO のワークフローは\n> 別契約です\n";
        assert_eq!(cat("Re: [NEO-DS#000001] 設定", text), Category::Operation);
    }

    #[test]
    fn forms() {
        let license = form_mail("【ライセンス番号】L-1\n【新サーバー識別子】S-2\n");
        assert_eq!(
            classify(&license, &ClassifyRules::default()),
            Category::LicenseReissue
        );
        let by_kind = form_mail(
            "【製品】desknet's NEO 分散サーバー\n【お問合せ種別】パッチ適用・バージョンアップ\n\
             【お問合せ内容】エラーが出ます\n",
        );
        assert_eq!(
            classify_explained(&by_kind, &ClassifyRules::default()).rule,
            "form_category:パッチ"
        );
        let base = form_mail("【製品】desknet's NEO\n【お問合せ種別】不具合\n【お問合せ内容】x\n");
        assert_eq!(
            classify(&base, &ClassifyRules::default()),
            Category::BaseProduct
        );
        let other_kind = form_mail(
            "【製品】分散サーバー\n【お問合せ種別】その他\n【お問合せ内容】ワークフローでエラー\n",
        );
        assert_eq!(
            classify(&other_kind, &ClassifyRules::default()),
            Category::Fault,
            "製品 names the distributed server, so the feature word does not make it R3"
        );
    }

    #[test]
    fn rules_deserialize_with_all_of_keywords() {
        let rules: ClassifyRules = serde_json::from_str(
            r#"{"keywords": [{"category": "license_reissue", "words": [["ライセンス", "サーバー"]]}]}"#,
        )
        .expect("rules");
        assert_eq!(
            rules.form_categories,
            ClassifyRules::default().form_categories
        );
        let r = |s: &str| classify(&mail(s, ""), &rules);
        assert_eq!(r("サーバーのライセンス"), Category::LicenseReissue);
        assert_eq!(r("ライセンスのみ"), Category::Other);
    }

    #[test]
    fn polite_japanese_fault_reports_are_faults() {
        let rules = ClassifyRules::default();
        for text in [
            "サーバーが起動しません。",
            "同期が動きません",
            "画面が表示されません",
        ] {
            let mail = InboundMail {
                subject: "ご相談".into(),
                text: text.into(),
                ..InboundMail::default()
            };
            assert_eq!(classify(&mail, &rules), Category::Fault, "{text}");
        }
    }
}
