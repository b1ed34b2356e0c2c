//! What the desk writes about license applications: the key mail to the applicant, the lines a
//! new ticket's reply and notification carry, and the notices staff get (approval reminder,
//! R8 escalation, an issuer that fails). Filled in one pass like every template
//! (`reply::fill`); values from a message are cut.

use chrono::{NaiveDate, Utc};
use chrono_tz::Tz;

use super::{ApplicationState, LicenseVerdict, Shortfall};
use crate::core::reply::{
    GeneratedFile, OutgoingKind, OutgoingMail, REPLY_MARKER, cut, date_ja, fill, greeting, time_ja,
};
use crate::core::ticket::tag;

const LICENSE_KEY: &str = include_str!("../../../templates/license_key.txt");
const NOTIFY_LICENSE: &str = include_str!("../../../templates/notify_license.txt");

/// One application as the store keeps it (`licenses list`, notices).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ApplicationRecord {
    pub ticket: u64,
    pub contract_id: String,
    pub license_serial: String,
    pub server_id: String,
    pub applicant: String,
    pub applied_at: chrono::DateTime<Utc>,
    pub due: Option<NaiveDate>,
    pub send_at: Option<chrono::DateTime<Utc>>,
    pub state: ApplicationState,
    pub key_id: Option<String>,
    pub issued_at: Option<chrono::DateTime<Utc>>,
    pub sent_at: Option<chrono::DateTime<Utc>>,
    pub approved_by: Option<String>,
    /// Why no key (refused), or the issuer's last error.
    pub detail: Option<String>,
}

/// The shortfalls as the applicant reads them, one per line.
pub fn shortfall_lines(shortfalls: &[Shortfall]) -> String {
    shortfalls
        .iter()
        .map(|s| format!("  ・{}\n", s.label_ja()))
        .collect()
}

/// What the earlier application's key came to, for the applicant told of a repeat.
pub fn earlier_state_ja(sent_at: Option<chrono::DateTime<Utc>>, due: NaiveDate, tz: Tz) -> String {
    match sent_at {
        Some(at) => format!(
            "ライセンスキーは {} にご登録のメールアドレス宛てにお送りしております。\n",
            time_ja(at, tz)
        ),
        None => format!(
            "ライセンスキーは {} までに、ご登録のメールアドレス宛てにお送りいたします。\n",
            date_ja(due)
        ),
    }
}

/// The line a new ticket's staff notification carries in its internal section.
pub fn verdict_line(verdict: &LicenseVerdict, prefix: &str, tz: Tz) -> String {
    match verdict {
        LicenseVerdict::Eligible {
            eligible,
            schedule,
            approval_by_staff,
            issuer,
        } => {
            let approval = match (*issuer, *approval_by_staff) {
                (false, _) => {
                    "。キーの発行方法（[license]）が未設定のため、担当者が発行・送付してください"
                }
                (true, true) => "。送付には承認が必要です（このメールに #approve と書いて返信）",
                (true, false) => "",
            };
            format!(
                "発行要件を満たしています（{} → 新サーバー {}）。送付予定 {}、期限 {}{approval}",
                cut(&eligible.license_serial, 60, true),
                cut(&eligible.server_id, 60, true),
                time_ja(schedule.send_at, tz),
                date_ja(schedule.due),
            )
        }
        LicenseVerdict::Refused { shortfalls, .. } => {
            let why: Vec<&str> = shortfalls.iter().map(Shortfall::code).collect();
            format!("発行しません（{}）", why.join(", "))
        }
        LicenseVerdict::Repeated { earlier, .. } => format!(
            "発行しません（{} と同じ申請、30日以内の再申請）",
            tag(prefix, earlier.ticket)
        ),
    }
}

/// The key mail's facts.
#[derive(Debug, Clone)]
pub struct KeyLetter<'a> {
    pub prefix: &'a str,
    pub desk_address: &'a str,
    pub ticket: u64,
    /// The registered applicant: the only recipient.
    pub to: &'a str,
    pub addressee: &'a str,
    pub license_serial: &'a str,
    pub server_id: &'a str,
    pub key: &'a str,
    pub key_id: &'a str,
    /// The application's Message-ID, to thread the key mail under it.
    pub in_reply_to: Option<&'a str>,
}

/// The attachment's file name: `license-<serial>.key`, with anything but `[A-Za-z0-9-_.]`
/// replaced.
pub fn key_file_name(serial: &str) -> String {
    let safe: String = serial
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("license-{safe}.key")
}

/// The key mail: to the applicant only, the key on a line of its own and attached.
pub fn key_mail(letter: &KeyLetter<'_>) -> OutgoingMail {
    let file_name = key_file_name(letter.license_serial);
    let number = format!("{}#{:06}", letter.prefix, letter.ticket);
    let body = fill(
        LICENSE_KEY,
        &[
            ("greeting", &greeting(letter.addressee)),
            ("ticket", &number),
            ("license_serial", &cut(letter.license_serial, 100, true)),
            ("server_id", &cut(letter.server_id, 100, true)),
            ("key_id", letter.key_id),
            ("key", letter.key),
            ("file_name", &file_name),
            ("desk_address", letter.desk_address),
        ],
    );
    OutgoingMail {
        kind: OutgoingKind::LicenseKey,
        ticket: letter.ticket,
        to: vec![letter.to.to_string()],
        reply_to: None,
        attachments: Vec::new(),
        files: vec![GeneratedFile {
            name: file_name,
            content_type: "application/octet-stream".into(),
            text: format!("{}\n", letter.key),
        }],
        subject: format!(
            "{} ライセンスキー発行のお知らせ",
            tag(letter.prefix, letter.ticket)
        ),
        body,
        in_reply_to: letter.in_reply_to.map(str::to_string),
        references: letter.in_reply_to.map(str::to_string).into_iter().collect(),
    }
}

/// The key mail's text as the ticket keeps it: the key itself replaced by its id (staff see
/// the key id, never the key, in anything but the mail to the applicant).
pub fn redact_key(body: &str, key: &str, key_id: &str) -> String {
    if key.is_empty() {
        return body.to_string();
    }
    body.replace(key, &format!("（キー本文は省略: {key_id}）"))
}

/// What a license notice to staff is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LicenseNotice<'a> {
    /// Due today and not approved yet (`[license] remind_at`).
    ApprovalReminder,
    /// Not sent by the cutoff of its due date (R8 missed).
    Missed,
    /// The issuer failed; the desk retries.
    IssueFailed {
        error: &'a str,
        next_attempt: Option<chrono::DateTime<Utc>>,
    },
    /// Eligible, but no issuer is configured: a person issues the key.
    NoIssuer,
    /// The key mail was refused for good, or the applicant is no longer registered.
    NotSent { why: &'a str },
}

/// A notice to staff about one application, on its ticket (they can answer it: `#approve`).
pub fn license_notice(
    notify: &[String],
    desk_address: &str,
    prefix: &str,
    tz: Tz,
    app: &ApplicationRecord,
    notice: LicenseNotice<'_>,
) -> OutgoingMail {
    let due = app.due.map(date_ja).unwrap_or_else(|| "—".into());
    let (title, headline, detail) = match notice {
        LicenseNotice::ApprovalReminder => (
            "承認待ち",
            format!(
                "本日 {due} 17:00 が送付期限（R8）のライセンス申請が、承認待ちです。\n\
                 1行目に #approve と書いてこのメールに返信すると承認され、キーが送付されます。"
            ),
            String::new(),
        ),
        LicenseNotice::Missed => (
            "期限超過",
            format!(
                "送付期限 {due} 17:00（R8）までに、ライセンスキーを送付できませんでした。\n\
                 至急ご確認ください。"
            ),
            match (app.state, &app.detail) {
                (ApplicationState::WaitingApproval, _) => "理由　　　　　　：未承認\n".into(),
                (_, Some(e)) => format!("理由　　　　　　：{}\n", cut(e, 500, true)),
                _ => String::new(),
            },
        ),
        LicenseNotice::IssueFailed {
            error,
            next_attempt,
        } => (
            "キー発行失敗",
            "ライセンスキーを発行できませんでした。自動で再試行します。".to_string(),
            format!(
                "エラー　　　　　：{}\n次の試行　　　　：{}\n",
                cut(error, 500, true),
                next_attempt.map_or_else(|| "—".into(), |t| time_ja(t, tz))
            ),
        ),
        LicenseNotice::NoIssuer => (
            "手動発行",
            "発行要件を満たすライセンス申請ですが、キーの発行方法（[license]）が設定されて\n\
             いません。担当者がキーを発行し、お客様にお送りください。"
                .to_string(),
            String::new(),
        ),
        LicenseNotice::NotSent { why } => (
            "キー未送付",
            "ライセンスキーを送付しませんでした。".to_string(),
            format!("理由　　　　　　：{}\n", cut(why, 500, true)),
        ),
    };
    let number = format!("{prefix}#{:06}", app.ticket);
    let body = fill(
        NOTIFY_LICENSE,
        &[
            ("reply_marker", REPLY_MARKER),
            ("headline", &headline),
            ("ticket", &number),
            ("contract_id", &cut(&app.contract_id, 60, true)),
            ("license_serial", &cut(&app.license_serial, 60, true)),
            ("server_id", &cut(&app.server_id, 60, true)),
            ("applicant", &cut(&app.applicant, 100, true)),
            ("due", &due),
            ("state", app.state.label_ja()),
            ("detail", &detail),
        ],
    );
    OutgoingMail {
        kind: OutgoingKind::StaffNotification,
        ticket: app.ticket,
        to: notify.to_vec(),
        reply_to: Some(desk_address.to_string()),
        attachments: Vec::new(),
        files: Vec::new(),
        subject: format!(
            "{} {title}: ライセンスキー {}",
            tag(prefix, app.ticket),
            cut(&app.license_serial, 60, true)
        ),
        body,
        in_reply_to: None,
        references: Vec::new(),
    }
}
