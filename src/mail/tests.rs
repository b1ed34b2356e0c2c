//! Unit tests of `read_message`, and golden files: `fixtures/mail/*.eml` → `*.json` with the
//! fields that matter downstream (set `MADOGUCHI_BLESS=1` to rewrite the expected files).

use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::*;
use crate::core::classify::{ClassifyRules, classify_explained};
use crate::core::form::FormField;
use crate::core::guard::{Guard, NoReplyReason, assess};
use crate::core::inbound::{DeliveryReport, FormKind, FormMail};

const DESK: &str = "support@madoguchi.example.co.jp";
const FORM: &str = "form@madoguchi.example.co.jp";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/mail")
}

fn senders() -> Vec<String> {
    vec![FORM.to_owned()]
}

fn read_fixture(name: &str) -> ReadMessage {
    let raw = fs::read(fixtures().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    let read = read_message(&raw, &senders());
    assert_eq!(parser_failures(&read), Vec::<&String>::new(), "{name}");
    read
}

/// The defects that say the parser panicked. `read_message` catches such a panic and returns
/// a message anyway, so a test that only checks it returned would pass on one.
fn parser_failures(read: &ReadMessage) -> Vec<&String> {
    read.mail
        .defects
        .iter()
        .filter(|d| d.starts_with(PARSER_FAILED))
        .collect()
}

fn guard(mail: &InboundMail) -> Guard {
    assess(mail, &[DESK.to_owned()])
}

#[test]
fn iso_2022_jp_subject_body_and_name() {
    let m = read_fixture("charset-iso2022jp.eml").mail;
    assert_eq!(m.subject, "分散サーバーの設定方法について");
    assert!(
        m.text
            .starts_with("お世話になっております。\n分散サーバーの動作環境")
    );
    let from = m.from.expect("from");
    assert_eq!(from.name.as_deref(), Some("山田 太郎"));
    assert_eq!(from.address, "yamada@customer.example.jp");
    assert!(m.defects.is_empty(), "{:?}", m.defects);
}

#[test]
fn shift_jis_with_cp932_characters() {
    let m = read_fixture("charset-shiftjis.eml").mail;
    assert_eq!(m.subject, "①分散サーバーでエラーが発生します");
    assert!(
        m.text.starts_with("㈱サンプル商事の鈴木です。"),
        "{}",
        m.text
    );
    assert!(m.text.contains("障害が発生しています～"));
    assert_eq!(m.from.and_then(|f| f.name).as_deref(), Some("鈴木 一郎"));
}

#[test]
fn cp932_label_mail_parser_does_not_know() {
    let m = read_fixture("charset-cp932-label.eml").mail;
    assert_eq!(m.subject, "㈱テスト：分散サーバーの不具合①");
    assert_eq!(
        m.text,
        "㈱テストの佐藤です。\n分散サーバーで不具合があります①②③\n"
    );
    assert!(m.defects.is_empty(), "{:?}", m.defects);
}

#[test]
fn euc_jp() {
    let m = read_fixture("charset-eucjp.eml").mail;
    assert_eq!(m.subject, "分散サーバーのパッチ適用について");
    assert!(m.text.contains("バージョンアップの注意点"));
}

#[test]
fn utf8_base64_and_quoted_printable() {
    let m = read_fixture("charset-utf8-base64.eml").mail;
    assert_eq!(m.subject, "サーバー変更に伴うデータ移行の相談");
    assert!(m.text.contains("データ移行の手順"));
    let m = read_fixture("charset-utf8-qp.eml").mail;
    assert_eq!(m.subject, "ライセンスキーの再発行をお願いします");
    assert_eq!(
        m.text,
        "サーバーを入れ替えたので、分散サーバーのライセンスキーを再発行してください。\n"
    );
}

#[test]
fn raw_jis_bytes_in_headers() {
    let m = read_fixture("charset-raw-jis-header.eml").mail;
    assert_eq!(m.subject, "分散サーバーの操作方法");
    assert_eq!(m.from.and_then(|f| f.name).as_deref(), Some("中村 花子"));
}

#[test]
fn raw_shift_jis_bytes_in_subject_use_body_charset() {
    let mut raw = b"From: a@b.jp\nSubject: ".to_vec();
    raw.extend_from_slice(&[0x83, 0x65, 0x83, 0x58, 0x83, 0x67]); // テスト
    raw.extend_from_slice(b"\nContent-Type: text/plain; charset=Shift_JIS\n\nx\n");
    assert_eq!(read_message(&raw, &[]).mail.subject, "テスト");
}

#[test]
fn text_without_charset_is_guessed() {
    let mut raw = b"From: a@b.jp\nSubject: s\n\n".to_vec();
    raw.extend_from_slice(&[0xa5, 0xc6, 0xa5, 0xb9, 0xa5, 0xc8, b'\n']); // テスト in EUC-JP
    let m = read_message(&raw, &[]).mail;
    assert_eq!(m.text, "テスト\n");
    assert!(
        m.defects.iter().any(|d| d.contains("euc-jp")),
        "{:?}",
        m.defects
    );
    let raw = b"From: a@b.jp\nSubject: s\n\n\x1b$B%F%9%H\x1b(B\n";
    assert_eq!(read_message(raw, &[]).mail.text, "テスト\n");
}

#[test]
fn html_only_becomes_text() {
    let m = read_fixture("html-only.eml").mail;
    assert!(
        m.text
            .contains("分散サーバーのインストール方法を教えてください。"),
        "{}",
        m.text
    );
    assert!(m.text.contains("Windows Server 2022 & PostgreSQL"));
    assert!(!m.text.contains('<'));
    assert!(!m.text.contains("color:red"));
}

#[test]
fn outlook_word_html_keeps_its_lines() {
    let m = read_fixture("html-outlook-word.eml").mail;
    assert!(m.defects.is_empty(), "{:?}", m.defects);
    assert!(
        m.text.starts_with(
            "サポートご担当者様\n\n分散サーバーのバックアップ方法を教えてください。\n以下の2点を確認したいです。\n"
        ),
        "{}",
        m.text
    );
    assert!(!m.text.contains("MsoNormal") && !m.text.contains("VML"));
}

#[test]
fn format_flowed_is_joined() {
    let m = read_fixture("flowed-delsp.eml").mail;
    assert!(m.text.contains(
        "\n昨日パッチを適用してから、分散サーバーが起動しなくなりました。エラーログを添付しますので、ご確認をお願いします。\nFrom the log: service stopped\n\n-- \n鈴木 一郎\n"
    ), "{}", m.text);
}

#[test]
fn attachments_with_bodies() {
    let read = read_fixture("attachment.eml");
    let m = &read.mail;
    assert_eq!(m.text, "分散サーバーのエラーログを添付します。\n");
    assert_eq!(m.attachments.len(), 2);
    assert_eq!(read.attachment_bodies.len(), 2);
    let pdf = &m.attachments[0];
    assert_eq!(pdf.name.as_deref(), Some("エラーログ.pdf"));
    assert_eq!(pdf.content_type, "application/pdf");
    assert!(read.attachment_bodies[0].starts_with(b"%PDF-1.4"));
    assert_eq!(pdf.size, read.attachment_bodies[0].len());
    assert_eq!(pdf.sha256.len(), 64);
    let csv = &m.attachments[1];
    assert_eq!(csv.name.as_deref(), Some("ログ一覧.csv"));
    assert_eq!(csv.content_type, "text/csv; charset=shift_jis");
    // Stored as the customer sent it: Shift_JIS bytes, not our UTF-8 reading.
    assert!(read.attachment_bodies[1].starts_with(&[0x93, 0xfa, 0x95, 0x74]));
}

#[test]
fn form_mail_fields() {
    let m = read_fixture("form-inquiry-fault.eml").mail;
    let form = m.form.as_ref().expect("form");
    assert_eq!(form.kind, FormKind::Inquiry);
    assert_eq!(form.get(FormField::CustomerNumber), Some("C-1002"));
    assert_eq!(
        form.get(FormField::Body),
        Some("昨日から分散サーバーが応答しません。\nログには「connection refused」と出ています。")
    );
    let m = read_fixture("form-license-application.eml").mail;
    let form = m.form.as_ref().expect("form");
    assert_eq!(form.kind, FormKind::LicenseApplication);
    assert_eq!(
        form.get(FormField::Reason),
        Some("サーバーのハードウェア故障により\n新サーバーへ移行したため")
    );
    // The same body from a sender that is not a form is just text.
    let raw = fs::read(fixtures().join("form-license-application.eml")).expect("read");
    assert!(read_message(&raw, &[]).mail.form.is_none());
}

#[test]
fn dsn_points_at_our_message() {
    let m = read_fixture("bounce-dsn.eml").mail;
    let report = m.report.as_ref().expect("report");
    assert_eq!(report.kind, "delivery-status");
    assert_eq!(
        report.original_message_id.as_deref(),
        Some("t000001.abc@madoguchi.example.co.jp")
    );
    assert_eq!(report.failed_recipients, vec!["gone@customer.example.jp"]);
    assert_eq!(report.status.as_deref(), Some("5.1.1"));
    assert_eq!(guard(&m), Guard::NoReply(NoReplyReason::Bounce));
}

#[test]
fn heuristic_bounces() {
    let m = read_fixture("bounce-heuristic-qmail.eml").mail;
    let report = m.report.as_ref().expect("report");
    assert_eq!(report.kind, "heuristic");
    assert_eq!(
        report.original_message_id.as_deref(),
        Some("t000003.def@madoguchi.example.co.jp")
    );
    let m = read_fixture("bounce-heuristic-japanese.eml").mail;
    assert_eq!(
        m.report.as_ref().map(|r| r.kind.as_str()),
        Some("heuristic")
    );
    let m = read_fixture("human-error-subject.eml").mail;
    assert_eq!(m.report, None);
    assert_eq!(guard(&m), Guard::Human);
}

#[test]
fn threading_headers_and_addresses() {
    let m = read_fixture("followup-in-reply-to.eml").mail;
    assert_eq!(m.in_reply_to, vec!["t000001.abc@madoguchi.example.co.jp"]);
    assert_eq!(
        m.references,
        vec![
            "first@customer.example.jp",
            "t000001.abc@madoguchi.example.co.jp"
        ]
    );
    assert_eq!(
        m.from.as_ref().map(|f| f.address.as_str()),
        Some("taro.yamada@customer.example.jp")
    );
    assert_eq!(m.cc.len(), 2);
    assert_eq!(
        m.subject,
        "Re: [NEO-DS#000001] 分散サーバーの設定方法について"
    );
    assert_eq!(
        m.date.map(|d| d.to_rfc3339()).as_deref(),
        Some("2026-04-13T10:15:00+09:00")
    );
}

#[test]
fn garbage_and_empty_never_fail() {
    let empty = read_message(b"", &[]).mail;
    assert_eq!(empty.defects, vec!["empty message", "no From address"]);
    let garbage = read_message(&[0xff, 0x00, 0x13, 0x37], &[]);
    assert_eq!(parser_failures(&garbage), Vec::<&String>::new());
    let garbage = garbage.mail;
    assert!(garbage.from.is_none());
    assert!(!garbage.defects.is_empty());
    assert!(!guard(&garbage).is_human());
    let m = read_fixture("no-from.eml").mail;
    assert!(m.defects.iter().any(|d| d == "no From address"));
    assert_eq!(guard(&m), Guard::NoReply(NoReplyReason::NoFrom));
}

#[test]
fn text_is_capped() {
    let mut raw =
        b"From: a@b.jp\nSubject: big\nContent-Type: text/plain; charset=utf-8\n\n".to_vec();
    raw.extend(std::iter::repeat_n("あ".as_bytes(), 100_000).flatten());
    let m = read_message(&raw, &[]).mail;
    assert!(m.text.len() <= MAX_TEXT_BYTES);
    assert!(m.text.len() > MAX_TEXT_BYTES - 4);
    assert!(m.defects.iter().any(|d| d.starts_with("text truncated")));
}

#[test]
fn auto_headers_read() {
    let raw = b"From: a@b.jp\nAuto-Submitted: Auto-Replied\nPrecedence: Bulk\n\
        X-Auto-Response-Suppress: All\nList-Id: \"L\" <L.Example.ORG>\nReturn-Path: < >\n\
        X-Madoguchi-Loop: x\nX-Autoreply: yes\nSubject: s\n\nbody\n";
    let a = read_message(raw, &[]).mail.auto;
    assert_eq!(a.auto_submitted.as_deref(), Some("auto-replied"));
    assert_eq!(a.precedence.as_deref(), Some("bulk"));
    assert_eq!(a.auto_response_suppress.as_deref(), Some("All"));
    assert_eq!(a.list_id.as_deref(), Some("l.example.org"));
    assert!(a.null_return_path && a.loop_marker && a.vendor_autoreply);
}

/// Every `Authentication-Results` value, topmost first, unfolded and otherwise as written;
/// `ARC-Authentication-Results` is another header.
#[test]
fn authentication_results_in_header_order() {
    let m = read_fixture("staff-auth-results.eml").mail;
    assert_eq!(
        m.auth_results,
        [
            "store.example.co.jp; none",
            "mx.example.co.jp 1;\tspf=pass smtp.mailfrom=tanaka@example.co.jp;\tdkim=pass \
             (2048-bit key) header.d=example.co.jp header.s=sel1\theader.b=\"AbCd+/==\"; \
             dmarc=pass (p=reject) header.from=example.co.jp",
            "mx.example.co.jp; dkim=pass header.d=forged.example",
        ]
    );
    // What the core makes of it: the border MTA's header (below the internal hop's) counts.
    let trusted = ["mx.example.co.jp".to_owned()];
    assert_eq!(
        crate::core::auth::evaluate(&m.auth_results, &trusted, "example.co.jp"),
        crate::core::auth::StaffAuth::Authenticated {
            method: "dkim=pass header.d=example.co.jp".into()
        }
    );
    // CRLF folding, lowercase names, and mail without the header.
    let raw =
        b"From: a@b.jp\r\nauthentication-results: mx.b.jp;\r\n dkim=pass\r\n\t header.d=b.jp\r\n\
        Subject: s\r\n\r\nbody\r\n";
    assert_eq!(
        read_message(raw, &[]).mail.auth_results,
        ["mx.b.jp; dkim=pass\t header.d=b.jp"]
    );
    assert!(read_fixture("attachment.eml").mail.auth_results.is_empty());
    // Left out of the mail's JSON when empty, read back as empty.
    let json = serde_json::to_value(read_fixture("attachment.eml").mail).unwrap_or_default();
    assert!(json.get("auth_results").is_none(), "{json}");
    let back: InboundMail = serde_json::from_value(json).expect("InboundMail from JSON");
    assert!(back.auth_results.is_empty());
}

proptest::proptest! {
    #[test]
    fn never_panics_on_arbitrary_bytes(raw in proptest::collection::vec(proptest::num::u8::ANY, 0..2048)) {
        let read = read_message(&raw, &senders());
        proptest::prop_assert_eq!(read.mail.attachments.len(), read.attachment_bodies.len());
        proptest::prop_assert!(parser_failures(&read).is_empty(), "{:?}", read.mail.defects);
    }

    #[test]
    fn never_panics_on_header_like_text(
        lines in proptest::collection::vec("[A-Za-z-]{1,12}: [ -~\u{3042}-\u{3093}=?<>@;]{0,40}", 0..12),
        body in "[ -~\n]{0,200}",
    ) {
        let raw = format!("{}\n\n{}", lines.join("\n"), body);
        let read = read_message(raw.as_bytes(), &senders());
        proptest::prop_assert!(parser_failures(&read).is_empty(), "{:?}", read.mail.defects);
    }
}

/// What a golden file pins down.
#[derive(Serialize)]
struct Golden<'a> {
    message_id: &'a Option<String>,
    in_reply_to: &'a [String],
    references: &'a [String],
    from: &'a Option<Mailbox>,
    reply_to: &'a Option<Mailbox>,
    to: &'a [Mailbox],
    cc: &'a [Mailbox],
    subject: &'a str,
    date: Option<String>,
    text_excerpt: String,
    text_chars: usize,
    auto: &'a AutoHeaders,
    report: &'a Option<DeliveryReport>,
    attachments: &'a [Attachment],
    form: &'a Option<FormMail>,
    /// Only where there are any, so the files from before the field stay as they were.
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    auth_results: &'a [String],
    defects: &'a [String],
    category: &'static str,
    classified_by: String,
    guard: Guard,
}

fn golden_json(mail: &InboundMail) -> String {
    let class = classify_explained(mail, &ClassifyRules::default());
    let view = Golden {
        message_id: &mail.message_id,
        in_reply_to: &mail.in_reply_to,
        references: &mail.references,
        from: &mail.from,
        reply_to: &mail.reply_to,
        to: &mail.to,
        cc: &mail.cc,
        subject: &mail.subject,
        date: mail.date.map(|d| d.to_rfc3339()),
        text_excerpt: mail.text.chars().take(300).collect(),
        text_chars: mail.text.chars().count(),
        auto: &mail.auto,
        report: &mail.report,
        attachments: &mail.attachments,
        form: &mail.form,
        auth_results: &mail.auth_results,
        defects: &mail.defects,
        category: class.category.code(),
        classified_by: class.rule,
        guard: guard(mail),
    };
    let mut json = serde_json::to_string_pretty(&view).unwrap_or_default();
    json.push('\n');
    json
}

#[test]
fn golden() {
    let bless = std::env::var("MADOGUCHI_BLESS").is_ok_and(|v| v == "1");
    let mut names: Vec<PathBuf> = fs::read_dir(fixtures())
        .expect("fixtures/mail exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    names.sort();
    assert!(
        names.len() >= 20,
        "fixtures/mail has only {} .eml files",
        names.len()
    );
    let mut failures = Vec::new();
    for eml in &names {
        let raw = fs::read(eml).expect("read fixture");
        let actual = golden_json(&read_message(&raw, &senders()).mail);
        let expected_path = eml.with_extension("json");
        if bless {
            fs::write(&expected_path, &actual).expect("write expected");
            continue;
        }
        match fs::read_to_string(&expected_path) {
            Ok(expected) if expected == actual => {}
            Ok(expected) => failures.push(format!(
                "{}: differs\n--- expected\n{expected}\n--- actual\n{actual}",
                eml.display()
            )),
            Err(_) => failures.push(format!("{}: no expected .json", eml.display())),
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n(MADOGUCHI_BLESS=1 rewrites the expected files)",
        failures.join("\n")
    );
}

/// The verdicts the fixtures exist for (independent of the golden files' other fields).
#[test]
fn fixture_verdicts_and_categories() {
    let expect = [
        ("charset-iso2022jp.eml", "human", "operation"),
        ("charset-shiftjis.eml", "human", "fault"),
        ("charset-cp932-label.eml", "human", "fault"),
        ("charset-eucjp.eml", "human", "patch_upgrade"),
        ("charset-utf8-base64.eml", "human", "data_migration"),
        ("charset-utf8-qp.eml", "human", "license_reissue"),
        ("charset-raw-jis-header.eml", "human", "operation"),
        ("html-only.eml", "human", "operation"),
        ("html-outlook-word.eml", "human", "operation"),
        ("flowed-delsp.eml", "human", "fault"),
        ("attachment.eml", "human", "fault"),
        ("form-inquiry-operation.eml", "human", "operation"),
        ("form-inquiry-fault.eml", "human", "fault"),
        ("form-inquiry-patch.eml", "human", "patch_upgrade"),
        ("form-inquiry-migration.eml", "human", "data_migration"),
        ("form-inquiry-license.eml", "human", "license_reissue"),
        ("form-inquiry-base.eml", "human", "base_product"),
        ("form-inquiry-other.eml", "human", "other"),
        ("form-license-application.eml", "human", "license_reissue"),
        ("base-product.eml", "human", "base_product"),
        ("followup-in-reply-to.eml", "human", "operation"),
        ("human-error-subject.eml", "human", "fault"),
        ("autoreply-rfc3834.eml", "auto_submitted", "other"),
        ("autoreply-exchange.eml", "auto_response_suppress", "other"),
        ("list-bulk.eml", "mailing_list", "operation"),
        ("bounce-dsn.eml", "bounce", "other"),
        ("bounce-heuristic-qmail.eml", "bounce", "fault"),
        ("bounce-heuristic-japanese.eml", "bounce", "fault"),
        ("mdn-read-receipt.eml", "disposition_notification", "other"),
        ("loop-marker.eml", "loop_marker", "other"),
        ("no-from.eml", "no_from", "other"),
        ("garbage.eml", "no_from", "other"),
    ];
    let mut wrong = Vec::new();
    for (name, verdict, category) in expect {
        let m = read_fixture(name).mail;
        let got = (guard(&m).code(), classify(&m));
        if got != (verdict, category) {
            wrong.push(format!("{name}: got {got:?}, want ({verdict}, {category})"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

fn classify(m: &InboundMail) -> &'static str {
    crate::core::classify::classify(m, &ClassifyRules::default()).code()
}
