//! License key applications through the desk (issue 10): Maildir in, SQLite, outbox files out,
//! with a fixed clock. The cutoff edges themselves are unit tests of `core::license`; here the
//! whole path: application → ticket and reply → key on its due date → the applicant only.

use chrono::{DateTime, Utc};

use crate::desk::TestDesk;
use crate::util::jst;

const SUZUKI: &str = "suzuki@beta.example.jp";
const STAFF: &str = "support-team@example.co.jp";

/// A license application form as the vendor's form robot sends it.
pub(crate) fn license_form(
    id: &str,
    email: &str,
    serial: &str,
    reason: &str,
    server: &str,
) -> Vec<u8> {
    format!(
        "From: license-form@example.co.jp\r\nTo: support@example.co.jp\r\n\
         Subject: =?UTF-8?B?44CQ44Op44Kk44K744Oz44K544Kt44O85YaN55m66KGM55Sz6KuL44CR?=\r\n\
         Message-ID: <{id}@www.example.co.jp>\r\nDate: Tue, 24 Nov 2026 17:05:33 +0900\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n\
         Content-Transfer-Encoding: 8bit\r\n\r\n\
         ライセンスキー再発行申請フォームより、以下の申請がありました。\r\n\r\n\
         【お客様番号】C-1002\r\n【ライセンス番号】{serial}\r\n【メールアドレス】{email}\r\n\
         【申請理由】{reason}\r\n【新サーバー識別子】{server}\r\n\r\n--\r\n申請日時：2026-11-24\r\n"
    )
    .into_bytes()
}

pub(crate) fn good_form(id: &str) -> Vec<u8> {
    license_form(
        id,
        SUZUKI,
        "DNDS-2026-01152",
        "サーバー変更",
        "HID-A27F-6C19",
    )
}

/// The mails in the outbox to `to`, as (subject, text).
fn mails_to(t: &TestDesk, to: &str) -> Vec<(String, String)> {
    t.sent()
        .into_iter()
        .filter(|(addr, _, _)| addr == to)
        .map(|(_, mail, _)| (mail.subject, mail.text))
        .collect()
}

fn state_of(t: &TestDesk, ticket: u64) -> String {
    let rows = t
        .desk
        .store()
        .select_text(
            "SELECT state FROM license_applications WHERE ticket = ?1",
            &[&ticket.to_string()],
        )
        .expect("query");
    rows.first()
        .and_then(|r| r.first().cloned().flatten())
        .unwrap_or_default()
}

fn pass_at(t: &mut TestDesk, now: DateTime<Utc>) {
    t.pass(now);
}

#[test]
fn an_application_after_the_cutoff_is_due_the_next_business_day_and_escalated_without_an_issuer() {
    let mut t = TestDesk::new();
    t.deliver(&good_form("a1"), jst(2026, 11, 24, 17, 5));
    pass_at(&mut t, jst(2026, 11, 24, 17, 10));
    let replies = mails_to(&t, SUZUKI);
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert!(
        replies[0].1.contains("2026年11月25日"),
        "the acknowledgement names the due date: {}",
        replies[0].1
    );
    assert_eq!(state_of(&t, 1), "waiting");
    let notice = &mails_to(&t, STAFF)[0].1;
    assert!(notice.contains("発行要件を満たしています"), "{notice}");
    assert!(
        notice.contains("担当者が発行"),
        "no issuer configured: {notice}"
    );
    // No issuer: no key, and at the cutoff of the due date staff are told it was missed, once.
    pass_at(&mut t, jst(2026, 11, 25, 16, 59));
    assert_eq!(mails_to(&t, STAFF).len(), 1);
    pass_at(&mut t, jst(2026, 11, 25, 17, 0));
    pass_at(&mut t, jst(2026, 11, 25, 17, 30));
    let notices = mails_to(&t, STAFF);
    assert_eq!(notices.len(), 2, "{notices:?}");
    assert!(notices[1].0.contains("期限超過"), "{}", notices[1].0);
    assert_eq!(mails_to(&t, SUZUKI).len(), 1, "no key without an issuer");
}

#[test]
fn an_unregistered_applicant_gets_the_plain_acknowledgement_and_staff_hear_why() {
    let mut t = TestDesk::new();
    let stranger = "mallory@evil.example.com";
    t.deliver(
        &license_form(
            "a2",
            stranger,
            "DNDS-2026-01152",
            "サーバー変更",
            "HID-EVIL-0001",
        ),
        jst(2026, 11, 25, 10, 0),
    );
    pass_at(&mut t, jst(2026, 11, 25, 10, 5));
    let replies = mails_to(&t, stranger);
    assert_eq!(replies.len(), 1);
    let text = &replies[0].1;
    for secret in [
        "ベータ",
        "C-1002",
        "HID-91B4",
        "ライセンスキーは",
        "発行できません",
    ] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
    assert_eq!(state_of(&t, 1), "refused");
    let notice = &mails_to(&t, STAFF)[0].1;
    assert!(notice.contains("not_registered_contact"), "{notice}");
    // Nothing ever goes to the stranger again, however long the desk runs.
    pass_at(&mut t, jst(2026, 11, 27, 10, 0));
    assert_eq!(mails_to(&t, stranger).len(), 1);
}

#[test]
fn a_registered_applicant_is_told_what_is_missing() {
    let mut t = TestDesk::new();
    // The serial of C-1001 with the customer number of C-1002, and the registered server.
    t.deliver(
        &license_form(
            "a3",
            SUZUKI,
            "DNDS-2024-00318",
            "サーバー変更",
            "HID-91B4-22D8",
        ),
        jst(2026, 11, 25, 10, 0),
    );
    pass_at(&mut t, jst(2026, 11, 25, 10, 5));
    let replies = mails_to(&t, SUZUKI);
    assert_eq!(replies.len(), 1);
    let text = &replies[0].1;
    assert!(text.contains("ライセンスキーを発行できません"), "{text}");
    assert!(
        text.contains("お客様番号のご契約のものではありません"),
        "{text}"
    );
    assert_eq!(state_of(&t, 1), "refused");
}

#[test]
fn a_repeated_application_makes_no_second_application() {
    let mut t = TestDesk::new();
    t.deliver(&good_form("a4"), jst(2026, 11, 24, 17, 5));
    pass_at(&mut t, jst(2026, 11, 24, 17, 10));
    // The customer sends the form again the next morning (a different message).
    t.deliver(&good_form("a5"), jst(2026, 11, 25, 8, 0));
    pass_at(&mut t, jst(2026, 11, 25, 8, 5));
    let replies = mails_to(&t, SUZUKI);
    assert_eq!(replies.len(), 2, "{replies:?}");
    let text = &replies[1].1;
    assert!(text.contains("既に承っております"), "{text}");
    assert!(text.contains("NEO-DS#000001"), "{text}");
    assert!(text.contains("2026年11月25日"), "{text}");
    assert_eq!(
        (state_of(&t, 1).as_str(), state_of(&t, 2).as_str()),
        ("waiting", "refused")
    );
    assert_eq!(
        t.count("SELECT COUNT(*) FROM license_applications WHERE state <> 'refused'"),
        1
    );
}

// ───────────────────────── with an issuer ─────────────────────────

/// A desk with `[license]` (plus `extra` keys and tables), its signing key made by `keygen`,
/// and the issuer loaded as `run` loads it.
fn licensed(extra: &str) -> (TestDesk, madoguchi::license::PublicKeyInfo) {
    let mut t = TestDesk::with_desk_keys(&format!(
        "\n[license]\nsigning_key_file = \"license.key\"\n{extra}"
    ));
    let public = madoguchi::license::keygen(&t.root.join("license.key")).expect("keygen");
    let config = t.desk.config().license.clone().expect("[license]");
    t.desk
        .set_issuer(madoguchi::license::Issuer::from_config(&config).expect("issuer"));
    (t, public)
}

/// A desk whose keys come from `script` (a shell script) through `issuer = "command"`.
fn commanded(script: &str, timeout: &str) -> TestDesk {
    // A relative program resolves against the config's directory.
    let mut t = TestDesk::with_desk_keys(&format!(
        "\n[license]\nissuer = \"command\"\ncommand = [\"./keygen.sh\"]\n\
         command_timeout = \"{timeout}\"\n"
    ));
    write_script(&t, script);
    let config = t.desk.config().license.clone().expect("[license]");
    t.desk
        .set_issuer(madoguchi::license::Issuer::from_config(&config).expect("issuer"));
    t
}

fn write_script(t: &TestDesk, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    let path = t.root.join("keygen.sh");
    std::fs::write(&path, format!("#!/bin/sh\n{body}")).expect("script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// A key mail in the outbox: to, subject, text, attachments as (name, body).
type KeyMail = (String, String, String, Vec<(String, Vec<u8>)>);

/// The key mails in the outbox.
fn key_mails(t: &TestDesk) -> Vec<KeyMail> {
    let mut files: Vec<_> = std::fs::read_dir(t.outbox())
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.sort();
    files
        .iter()
        .filter_map(|p| {
            let raw = std::fs::read(p).expect("outbox file");
            let read = madoguchi::mail::read_message(&raw, &[]);
            let mail = read.mail;
            if !mail.subject.contains("ライセンスキー発行のお知らせ") {
                return None;
            }
            let to: Vec<String> = mail.to.iter().map(|m| m.address.clone()).collect();
            let files = mail
                .attachments
                .iter()
                .zip(read.attachment_bodies)
                .map(|(a, body)| (a.name.clone().unwrap_or_default(), body))
                .collect();
            Some((to.join(","), mail.subject, mail.text, files))
        })
        .collect()
}

fn one_value(t: &TestDesk, sql: &str) -> String {
    let rows = t.desk.store().select_text(sql, &[]).expect("query");
    rows.first()
        .and_then(|r| r.first().cloned().flatten())
        .unwrap_or_default()
}

#[test]
fn the_key_goes_out_on_its_due_date_to_the_applicant_only_and_verifies() {
    let (mut t, public) = licensed("");
    t.deliver(&good_form("k1"), jst(2026, 11, 24, 17, 5));
    t.pass(jst(2026, 11, 24, 17, 10));
    t.pass(jst(2026, 11, 25, 8, 59));
    assert!(
        key_mails(&t).is_empty(),
        "not before the opening of the due date"
    );
    assert_eq!(state_of(&t, 1), "waiting");
    let s = t.pass(jst(2026, 11, 25, 9, 0));
    assert_eq!(s.keys_issued, 1, "{s:?}");
    let keys = key_mails(&t);
    assert_eq!(keys.len(), 1);
    let (to, subject, text, files) = &keys[0];
    assert_eq!(to, SUZUKI);
    assert!(subject.starts_with("[NEO-DS#000001] "), "{subject}");
    let key = text
        .lines()
        .find(|l| l.starts_with("v4.public."))
        .expect("the key on a line of its own")
        .trim()
        .to_string();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0].0, "license-DNDS-2026-01152.key");
    assert_eq!(String::from_utf8_lossy(&files[0].1).trim(), key);
    let claims = madoguchi::license::verify(&key, &public).expect("a valid key");
    assert_eq!(
        (
            claims.sub.as_str(),
            claims.contract.as_str(),
            claims.server_id.as_str()
        ),
        ("DNDS-2026-01152", "C-1002", "HID-A27F-6C19")
    );
    assert_eq!(
        claims.jti,
        one_value(&t, "SELECT jti FROM license_applications WHERE ticket = 1")
    );
    assert_eq!(state_of(&t, 1), "sent");
    // The key goes nowhere else: not in staff mail, not in the ticket's articles.
    for (to, _, text) in t.sent() {
        if to != SUZUKI {
            assert!(!text.contains(&key), "the key reached {to}");
        }
    }
    assert_eq!(
        t.count(&format!(
            "SELECT COUNT(*) FROM articles WHERE text LIKE '%{}%'",
            &key[..40]
        )),
        0
    );
    // The contract now names the new server; later passes send nothing more.
    assert_eq!(
        one_value(
            &t,
            "SELECT server_id FROM contracts WHERE contract_id = 'C-1002'"
        ),
        "HID-A27F-6C19"
    );
    t.pass(jst(2026, 11, 26, 9, 0));
    assert_eq!(key_mails(&t).len(), 1);
    // A later move to another server: a new key at once, the first one superseded.
    t.deliver(
        &license_form(
            "k2",
            SUZUKI,
            "DNDS-2026-01152",
            "サーバー移行",
            "HID-B000-0002",
        ),
        jst(2026, 11, 26, 10, 0),
    );
    t.pass(jst(2026, 11, 26, 10, 1));
    assert_eq!(key_mails(&t).len(), 2);
    assert_eq!(
        one_value(
            &t,
            "SELECT superseded_by FROM license_applications WHERE ticket = 1"
        ),
        "2"
    );
    let steps = t
        .desk
        .store()
        .license_audit(1)
        .expect("audit")
        .into_iter()
        .map(|r| r.step)
        .collect::<Vec<_>>();
    assert_eq!(steps, ["waiting", "issued", "sent"]);
}

/// The staff notification addressed to the support team whose subject contains `needle`.
fn staff_mail_with(t: &TestDesk, needle: &str) -> Option<madoguchi::core::inbound::InboundMail> {
    t.sent()
        .into_iter()
        .find(|(to, mail, _)| to == STAFF && mail.subject.contains(needle))
        .map(|(_, mail, _)| mail)
}

#[test]
fn with_staff_approval_the_key_waits_for_approve_and_staff_are_reminded_then_escalated() {
    let staff = "\n[staff]\nauthentication = \"authentication-results\"\n\
                 trusted_authserv_ids = [\"mx.example.co.jp\"]\n";
    let (mut t, _) = licensed(&format!("approval = \"staff\"\n{staff}"));
    t.deliver(&good_form("s1"), jst(2026, 11, 25, 10, 0));
    t.pass(jst(2026, 11, 25, 10, 5));
    assert_eq!(state_of(&t, 1), "waiting_approval");
    t.pass(jst(2026, 11, 25, 14, 59));
    assert!(staff_mail_with(&t, "承認待ち").is_none());
    t.pass(jst(2026, 11, 25, 15, 0));
    t.pass(jst(2026, 11, 25, 15, 5));
    let reminders: Vec<_> = t
        .sent()
        .into_iter()
        .filter(|(to, m, _)| to == STAFF && m.subject.contains("承認待ち"))
        .collect();
    assert_eq!(reminders.len(), 1, "one reminder");
    assert!(key_mails(&t).is_empty());
    // Staff answer the reminder with #approve from their own client.
    let reminder = &reminders[0].1;
    let reply = format!(
        "Authentication-Results: mx.example.co.jp; dmarc=pass header.from=example.co.jp\r\n\
         From: tanaka@example.co.jp\r\nTo: support@example.co.jp\r\n\
         Subject: Re: {}\r\nMessage-ID: <approve1@example.co.jp>\r\nIn-Reply-To: <{}>\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n#approve\r\n",
        reminder.subject,
        reminder.message_id.as_deref().unwrap_or_default()
    );
    t.deliver(reply.as_bytes(), jst(2026, 11, 25, 15, 10));
    t.pass(jst(2026, 11, 25, 15, 11));
    assert_eq!(key_mails(&t).len(), 1, "approved: the key goes out at once");
    assert_eq!(state_of(&t, 1), "sent");
    assert_eq!(
        one_value(
            &t,
            "SELECT approved_by FROM license_applications WHERE ticket = 1"
        ),
        "tanaka@example.co.jp"
    );
    let confirmation = t
        .sent()
        .into_iter()
        .find(|(to, _, _)| to == "tanaka@example.co.jp")
        .expect("the approval is confirmed to its sender");
    assert!(
        confirmation.1.text.contains("承認しました"),
        "{}",
        confirmation.1.text
    );
    // A second application nobody approves is escalated at the cutoff, once.
    t.deliver(
        &license_form(
            "s2",
            SUZUKI,
            "DNDS-2026-01152",
            "サーバー変更",
            "HID-C000-0003",
        ),
        jst(2026, 11, 26, 10, 0),
    );
    t.pass(jst(2026, 11, 26, 10, 1));
    t.pass(jst(2026, 11, 26, 17, 0));
    t.pass(jst(2026, 11, 27, 9, 0));
    let escalations = t
        .sent()
        .into_iter()
        .filter(|(to, m, _)| to == STAFF && m.subject.contains("期限超過"))
        .count();
    assert_eq!(escalations, 1);
    assert_eq!(key_mails(&t).len(), 1);
}

#[test]
fn a_failing_command_issuer_is_retried_with_backoff_and_staff_told_once() {
    let mut t = commanded("echo 'generator offline' >&2\nexit 3\n", "5s");
    t.deliver(&good_form("c1"), jst(2026, 11, 25, 10, 0));
    let s = t.pass(jst(2026, 11, 25, 10, 1));
    assert_eq!((s.keys_issued, s.key_failures), (0, 1), "{s:?}");
    let notice = staff_mail_with(&t, "キー発行失敗").expect("staff told");
    assert!(notice.text.contains("generator offline"), "{}", notice.text);
    assert_eq!(state_of(&t, 1), "waiting");
    // Within the backoff nothing is tried; after it, tried again, staff not told again.
    let s = t.pass(jst(2026, 11, 25, 10, 1) + chrono::Duration::seconds(10));
    assert_eq!(s.key_failures, 0, "{s:?}");
    let s = t.pass(jst(2026, 11, 25, 10, 3));
    assert_eq!(s.key_failures, 1, "{s:?}");
    let told = t
        .sent()
        .into_iter()
        .filter(|(_, m, _)| m.subject.contains("キー発行失敗"))
        .count();
    assert_eq!(told, 1);
    // The generator comes back: the key it prints is the key sent.
    let request = t.root.join("request.json");
    write_script(
        &t,
        &format!("cat > '{}'\necho 'VENDOR-KEY-0001'\n", request.display()),
    );
    t.pass(jst(2026, 11, 25, 11, 0));
    let keys = key_mails(&t);
    assert_eq!(keys.len(), 1);
    assert!(
        keys[0].2.lines().any(|l| l.trim() == "VENDOR-KEY-0001"),
        "{}",
        keys[0].2
    );
    let request: serde_json::Value = serde_json::from_slice(
        &std::fs::read(t.root.join("request.json")).expect("the command got the application"),
    )
    .expect("JSON");
    assert_eq!(request["server_id"], "HID-A27F-6C19");
    assert_eq!(request["license_serial"], "DNDS-2026-01152");
}

#[test]
fn a_command_issuer_that_hangs_is_cut_off_by_its_timeout() {
    let mut t = commanded("sleep 5\necho late\n", "1s");
    t.deliver(&good_form("c2"), jst(2026, 11, 25, 10, 0));
    let started = std::time::Instant::now();
    let s = t.pass(jst(2026, 11, 25, 10, 1));
    assert!(started.elapsed() < std::time::Duration::from_secs(4));
    assert_eq!(s.key_failures, 1, "{s:?}");
    let detail = one_value(
        &t,
        "SELECT detail FROM license_applications WHERE ticket = 1",
    );
    assert!(detail.contains("1s") || detail.contains("time"), "{detail}");
    assert!(key_mails(&t).is_empty());
}

/// The demo's license application (Tuesday 17:05, after the cutoff) gets its key on Wednesday,
/// its due date, and the key verifies against the demo's public key.
#[test]
fn the_demo_issues_its_license_key_on_the_due_date() {
    let desk = crate::util::Desk::new();
    let dir = desk.dir().join("tour");
    let run = crate::util::madoguchi(
        desk.dir(),
        ["--json", "demo", "--dir", crate::util::arg(&dir)],
    );
    run.assert_success();
    let doc = run.json();
    let licenses = doc["licenses"].as_array().expect("licenses");
    assert_eq!(licenses.len(), 1, "{doc:#}");
    let app = &licenses[0];
    assert_eq!(app["state"], "sent", "{app:#}");
    assert_eq!(app["due"], "2026-11-25", "{app:#}");
    assert!(
        app["sent_at"]
            .as_str()
            .is_some_and(|t| t.starts_with("2026-11-25T")),
        "{app:#}"
    );
    let config = dir.join("madoguchi.toml");
    let public = crate::util::madoguchi(
        desk.dir(),
        [
            "--json",
            "--config",
            crate::util::arg(&config),
            "license",
            "public-key",
        ],
    );
    public.assert_success();
    let key_file = std::fs::read_dir(dir.join("var/outbox"))
        .expect("outbox")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find_map(|p| {
            let raw = std::fs::read(&p).ok()?;
            let read = madoguchi::mail::read_message(&raw, &[]);
            let i = read
                .mail
                .attachments
                .iter()
                .position(|a| a.name.as_deref() == Some("license-DNDS-2026-01152.key"))?;
            read.attachment_bodies.get(i).cloned()
        })
        .expect("the key mail with its attachment");
    let key_path = desk.dir().join("license-DNDS-2026-01152.key");
    std::fs::write(&key_path, key_file).expect("write key");
    let verified = crate::util::madoguchi(
        desk.dir(),
        [
            "--json",
            "--config",
            crate::util::arg(&config),
            "license",
            "verify",
            crate::util::arg(&key_path),
        ],
    );
    verified.assert_success();
    let claims = verified.json();
    assert_eq!(claims["server_id"], "HID-A27F-6C19", "{claims:#}");
    assert_eq!(claims["contract"], "C-1002", "{claims:#}");
}

// ───────────────────────── the real binary ─────────────────────────

/// A desk directory for the real binary: Maildir in, the SMTP sink out, `[license]` with a key
/// made by `license keygen`, the demo contracts.
fn service_desk(sink: &crate::smtp_sink::SmtpSink) -> crate::util::Desk {
    let desk = crate::util::Desk::with_config(&format!(
        "[desk]\naddress = \"support@example.co.jp\"\nnotify = [\"{STAFF}\"]\n\
         form_senders = [\"license-form@example.co.jp\"]\n\n\
         [storage]\ndatabase = \"var/db.sqlite3\"\nfiles = \"var/files\"\n\n\
         [intake]\nkind = \"maildir\"\nmaildir = \"var/inbox\"\n\n\
         [outbound]\nkind = \"smtp\"\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n\
         allow_plaintext = true\nparallel = 1\n\n\
         [license]\nsigning_key_file = \"license.key\"\n{}",
        sink.port(),
        crate::util::NO_REMINDERS
    ));
    desk.run(&[
        "license",
        "keygen",
        crate::util::arg(&desk.dir().join("license.key")),
    ])
    .assert_success();
    desk.import_demo();
    desk
}

/// Delivers `raw` into the desk's Maildir as arriving at `at`.
fn deliver_to(desk: &crate::util::Desk, name: &str, raw: &[u8], at: DateTime<Utc>) {
    let new = desk.dir().join("var/inbox/new");
    std::fs::create_dir_all(&new).expect("maildir");
    for sub in ["cur", "tmp"] {
        std::fs::create_dir_all(desk.dir().join("var/inbox").join(sub)).expect("maildir");
    }
    let path = new.join(name);
    std::fs::write(&path, raw).expect("deliver");
    std::fs::File::options()
        .write(true)
        .open(&path)
        .and_then(|f| f.set_modified(at.into()))
        .expect("date the delivery");
}

/// The stored key of ticket `n` (read-only look into the database).
fn stored_key(desk: &crate::util::Desk, n: u64) -> Option<String> {
    let store = madoguchi::store::Store::open(&desk.dir().join("var/db.sqlite3")).expect("db");
    store
        .select_text(
            "SELECT key FROM license_applications WHERE ticket = ?1",
            &[&n.to_string()],
        )
        .expect("query")
        .first()
        .and_then(|r| r.first().cloned().flatten())
}

/// The key lines in the mails the sink took for `to`.
fn keys_received(sink: &crate::smtp_sink::SmtpSink, to: &str) -> Vec<String> {
    sink.received()
        .into_iter()
        .filter(|m| m.rcpt_to.iter().any(|r| r == to))
        .filter_map(|m| {
            let mail = madoguchi::mail::read_message(&m.data, &[]).mail;
            mail.text
                .lines()
                .find(|l| l.starts_with("v4.public."))
                .map(|l| l.trim().to_string())
        })
        .collect()
}

/// Item 8: a SIGKILL after the key was stored and before its mail went out. The restarted desk
/// sends the very key it stored; no second key is ever made.
#[test]
fn a_sigkill_between_issuing_and_sending_resends_the_same_key() {
    let mut sink = crate::smtp_sink::SmtpSink::start();
    let desk = service_desk(&sink);
    deliver_to(
        &desk,
        "app.eml",
        &good_form("crash1"),
        jst(2026, 11, 24, 17, 5),
    );
    sink.stop(); // the relay is down: the key is made and stored, its mail cannot leave
    let mut daemon = crate::daemon::Daemon::start_with(
        desk.config(),
        desk.dir().join("daemon.log"),
        &["--now", "2026-11-25T09:00:00+09:00"],
    );
    crate::wait::until(std::time::Duration::from_secs(30), "the key stored", || {
        stored_key(&desk, 1).is_some()
    });
    daemon.signal("-KILL");
    assert!(!daemon.wait(std::time::Duration::from_secs(10)).success());
    let stored = stored_key(&desk, 1).expect("stored");
    sink.start_again();
    desk.run(&["run", "--once", "--now", "2026-11-25T09:10:00+09:00"])
        .assert_success();
    assert_eq!(keys_received(&sink, SUZUKI), std::slice::from_ref(&stored));
    // Later passes send nothing more, and the audit shows one key made.
    desk.run(&["run", "--once", "--now", "2026-11-25T10:00:00+09:00"])
        .assert_success();
    assert_eq!(keys_received(&sink, SUZUKI).len(), 1);
    let shown = desk.json(&["license", "show", "1"]);
    let issued = shown["audit"]
        .as_array()
        .expect("audit")
        .iter()
        .filter(|r| r["step"] == "issued")
        .count();
    assert_eq!(issued, 1, "{shown:#}");
    assert_eq!(shown["state"], "sent", "{shown:#}");
    let text = desk.run(&["license", "show", "1"]).all_output();
    assert!(
        !text.contains(&stored),
        "`license show` never prints the key"
    );
}

/// The daemon wakes for a key that falls due while it idles: an application at lunch is
/// accepted at 13:00 and its key goes out then, with no new mail to wake it.
#[test]
fn the_daemon_wakes_for_a_key_that_falls_due() {
    let sink = crate::smtp_sink::SmtpSink::start();
    let desk = service_desk(&sink);
    deliver_to(
        &desk,
        "app.eml",
        &good_form("wake1"),
        jst(2026, 11, 25, 12, 59),
    );
    let mut daemon = crate::daemon::Daemon::start_with(
        desk.config(),
        desk.dir().join("daemon.log"),
        &["--now", "2026-11-25T12:59:45+09:00"],
    );
    crate::wait::until(
        std::time::Duration::from_secs(20),
        "the acknowledgement",
        || {
            sink.received()
                .iter()
                .any(|m| m.rcpt_to.iter().any(|r| r == SUZUKI))
        },
    );
    assert!(keys_received(&sink, SUZUKI).is_empty(), "not before 13:00");
    crate::wait::until(
        std::time::Duration::from_secs(30),
        "the key at 13:00",
        || keys_received(&sink, SUZUKI).len() == 1,
    );
    daemon.signal("-TERM");
    assert!(daemon.wait(std::time::Duration::from_secs(30)).success());
}

/// `licenses list --json`, `license resend` (the same key, to the registered applicant only)
/// and `queue` flagging a key that is due and not sent.
#[test]
fn licenses_list_resend_and_the_queue_flag_from_the_command_line() {
    let sink = crate::smtp_sink::SmtpSink::start();
    let desk = service_desk(&sink);
    deliver_to(&desk, "a.eml", &good_form("cli1"), jst(2026, 11, 24, 17, 5));
    desk.run(&["run", "--once", "--now", "2026-11-25T09:00:00+09:00"])
        .assert_success();
    let list = desk.json(&["licenses", "list"]);
    let row = &list[0];
    for key in [
        "ticket",
        "contract_id",
        "license_serial",
        "server_id",
        "applied_at",
        "due",
        "send_at",
        "state",
        "key_id",
        "issued_at",
        "sent_at",
    ] {
        assert!(row.get(key).is_some(), "{key} missing in {row:#}");
    }
    assert_eq!(row["state"], "sent");
    assert_eq!(row["due"], "2026-11-25");
    assert!(str_key_id(row).starts_with("k4.pid."), "{row:#}");
    assert_eq!(
        desk.json(&["licenses", "list", "--state", "refused"]),
        serde_json::json!([])
    );
    desk.run(&["licenses", "list", "--state", "lost"])
        .assert_failure();

    // Resent: the same key, again to Suzuki only.
    desk.run(&["license", "resend", "1"]).assert_success();
    // Queued at the real clock's now, so sent by a pass on the real clock.
    desk.run(&["run", "--once"]).assert_success();
    let keys = keys_received(&sink, SUZUKI);
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0], keys[1]);
    let key_mails_to_others = sink
        .received()
        .into_iter()
        .filter(|m| !m.rcpt_to.iter().any(|r| r == SUZUKI))
        .filter(|m| String::from_utf8_lossy(&m.data).contains(&keys[0][..40]))
        .count();
    assert_eq!(key_mails_to_others, 0);
    // Suzuki leaves the contract: no resend, with the reason.
    let contracts = std::fs::read_to_string(crate::util::demo_fixture("contracts.csv"))
        .expect("contracts")
        .replace("suzuki@beta.example.jp;", "");
    let csv = desk.write("contracts.csv", &contracts);
    desk.run(&["contracts", "import", crate::util::arg(&csv)])
        .assert_success();
    desk.run(&["license", "resend", "1"])
        .assert_failure()
        .assert_stderr_has(&["suzuki@beta.example.jp", "registered"]);
    desk.run(&["license", "resend", "99"])
        .assert_failure()
        .assert_stderr_has(&["no license application"]);

    // An application of it-admin's due on 2026-11-26 that is still waiting (the desk has not
    // run since): the queue flags it, since today is past its due date.
    deliver_to(
        &desk,
        "b.eml",
        &license_form(
            "cli2",
            "it-admin@beta.example.jp",
            "DNDS-2026-01152",
            "サーバー変更",
            "HID-D000-0004",
        ),
        jst(2026, 11, 25, 17, 30),
    );
    sink.set_mode("tempfail");
    desk.run(&["run", "--once", "--now", "2026-11-25T17:31:00+09:00"])
        .assert_success();
    let queue = desk.json(&["queue"]);
    let flagged = queue
        .as_array()
        .expect("queue")
        .iter()
        .find(|t| t["number"] == 2)
        .unwrap_or_else(|| panic!("ticket 2 in {queue:#}"));
    assert_eq!(flagged["license"]["state"], "waiting", "{flagged:#}");
    assert_eq!(flagged["license"]["at_risk"], true, "{flagged:#}");
    desk.run(&["queue"]).assert_stdout_has(&["R8 AT RISK"]);
}

fn str_key_id(row: &serde_json::Value) -> &str {
    row["key_id"].as_str().unwrap_or_default()
}

/// A stranger's tricks on the application form: template syntax as the new server id is
/// written literally and makes no second key line; a huge or multi-line server id gets no key
/// and is stored cut.
#[test]
fn hostile_server_ids_are_data() {
    let (mut t, _) = licensed("");
    t.deliver(
        &license_form(
            "h1",
            SUZUKI,
            "DNDS-2026-01152",
            "サーバー変更",
            "{{key}}{{greeting}}",
        ),
        jst(2026, 11, 25, 10, 0),
    );
    t.pass(jst(2026, 11, 25, 10, 1));
    let keys = key_mails(&t);
    assert_eq!(keys.len(), 1);
    let text = &keys[0].2;
    assert!(
        text.contains("新サーバー識別子：{{key}}{{greeting}}"),
        "{text}"
    );
    assert_eq!(
        text.lines().filter(|l| l.starts_with("v4.public.")).count(),
        1
    );
    let huge = "H".repeat(100_000);
    t.deliver(
        &license_form("h2", SUZUKI, "DNDS-2026-01152", "サーバー変更", &huge),
        jst(2026, 11, 25, 10, 5),
    );
    t.pass(jst(2026, 11, 25, 10, 6));
    assert_eq!(state_of(&t, 2), "refused");
    assert_eq!(key_mails(&t).len(), 1);
    let stored = one_value(
        &t,
        "SELECT length(server_id) FROM license_applications WHERE ticket = 2",
    );
    assert_eq!(stored, "200");
    let reply = mails_to(&t, SUZUKI)
        .into_iter()
        .find(|(s, _)| s.contains("[NEO-DS#000002]"))
        .expect("a reply to the second application");
    assert!(reply.1.contains("形式が正しくありません"), "{}", reply.1);
    assert!(reply.1.len() < 5_000, "the reply echoes nothing huge");
}
