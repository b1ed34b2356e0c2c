//! Mail the desk writes, as data: the Japanese replies to customers and the notifications to
//! staff, filled from the templates in `templates/` (embedded at build time). The shell turns an
//! `OutgoingMail` into RFC 5322 bytes and sends it.

use chrono::{DateTime, Datelike, NaiveDate, Utc, Weekday};
use chrono_tz::Tz;
use serde::Serialize;

use super::classify::Category;
use super::contract::RenewalKind;
use super::ticket::{Entitlement, ReplyKind, TicketState, tag};

const ACK: &str = include_str!("../../templates/ack.txt");
const OUTSIDE_HOURS: &str = include_str!("../../templates/outside_hours.txt");
const LICENSE_DUE: &str = include_str!("../../templates/license_due.txt");
const EXPIRED: &str = include_str!("../../templates/expired.txt");
const RENEWAL: &str = include_str!("../../templates/renewal.txt");
const RECONTINUATION: &str = include_str!("../../templates/recontinuation.txt");
const UNMATCHED: &str = include_str!("../../templates/unmatched.txt");
const OUT_OF_SCOPE: &str = include_str!("../../templates/out_of_scope.txt");
const NOTIFY_NEW: &str = include_str!("../../templates/notify_new.txt");
const NOTIFY_FOLLOWUP: &str = include_str!("../../templates/notify_followup.txt");
const NOTIFY_FAILED: &str = include_str!("../../templates/notify_failed.txt");

/// Why a mail is sent; also its `Auto-Submitted` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutgoingKind {
    /// An automatic reply to a customer (`Auto-Submitted: auto-replied`, RFC 3834).
    AutoReply(ReplyKind),
    /// A notification to staff (`Auto-Submitted: auto-generated`).
    StaffNotification,
}

impl OutgoingKind {
    pub fn code(self) -> &'static str {
        match self {
            OutgoingKind::AutoReply(kind) => kind.code(),
            OutgoingKind::StaffNotification => "staff_notification",
        }
    }

    pub fn auto_submitted(self) -> &'static str {
        match self {
            OutgoingKind::AutoReply(_) => "auto-replied",
            OutgoingKind::StaffNotification => "auto-generated",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutgoingMail {
    pub kind: OutgoingKind,
    pub ticket: u64,
    pub to: Vec<String>,
    pub subject: String,
    pub body: String,
    /// The message this one answers (without angle brackets).
    pub in_reply_to: Option<String>,
    pub references: Vec<String>,
}

/// The facts a reply or notification is written from.
#[derive(Debug, Clone)]
pub struct TicketLetter<'a> {
    pub prefix: &'a str,
    pub desk_address: &'a str,
    pub timezone: Tz,
    pub ticket: u64,
    pub customer_name: &'a str,
    pub from: &'a str,
    pub subject: &'a str,
    pub text: &'a str,
    pub category: Category,
    pub state: TicketState,
    pub received_at: DateTime<Utc>,
    pub accepted_at: DateTime<Utc>,
    pub license_due: Option<NaiveDate>,
    pub contract_id: Option<&'a str>,
    pub entitlement: &'a Entitlement,
    /// The customer's Message-ID and References, to thread the reply.
    pub message_id: Option<&'a str>,
    pub references: &'a [String],
}

fn weekday_ja(w: Weekday) -> &'static str {
    match w {
        Weekday::Mon => "月",
        Weekday::Tue => "火",
        Weekday::Wed => "水",
        Weekday::Thu => "木",
        Weekday::Fri => "金",
        Weekday::Sat => "土",
        Weekday::Sun => "日",
    }
}

/// `2026年11月25日(水)`.
pub fn date_ja(d: NaiveDate) -> String {
    format!(
        "{}年{}月{}日({})",
        d.year(),
        d.month(),
        d.day(),
        weekday_ja(d.weekday())
    )
}

/// `2026年11月25日(水) 09:00`, in the desk's timezone.
pub fn time_ja(t: DateTime<Utc>, tz: Tz) -> String {
    let local = t.with_timezone(&tz);
    format!("{} {}", date_ja(local.date_naive()), local.format("%H:%M"))
}

/// Replaces every `{{name}}` with its value; unknown placeholders stay visible rather than vanish.
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = template.to_string();
    for (name, value) in values {
        out = out.replace(&format!("{{{{{name}}}}}"), value);
    }
    out
}

fn references_with(letter: &TicketLetter<'_>) -> Vec<String> {
    let mut refs = letter.references.to_vec();
    if let Some(id) = letter.message_id
        && !refs.iter().any(|r| r == id)
    {
        refs.push(id.to_string());
    }
    refs
}

/// The automatic reply of `kind` to the customer at `to`.
pub fn customer_reply(kind: ReplyKind, to: &str, letter: &TicketLetter<'_>) -> OutgoingMail {
    let tz = letter.timezone;
    let tag = tag(letter.prefix, letter.ticket);
    let ticket = format!("{}#{:06}", letter.prefix, letter.ticket);
    let accepted = time_ja(letter.accepted_at, tz);
    let customer = if letter.customer_name.is_empty() {
        "お客様"
    } else {
        letter.customer_name
    };
    let outside_hours = if letter.accepted_at > letter.received_at {
        fill(OUTSIDE_HOURS, &[("accepted_at", &accepted)])
    } else {
        String::new()
    };
    let license_due = letter
        .license_due
        .map(|d| fill(LICENSE_DUE, &[("license_due", &date_ja(d))]))
        .unwrap_or_default();
    let renewal_text = match letter.entitlement {
        Entitlement::Expired {
            next, next_period, ..
        } => {
            let template = match next {
                RenewalKind::Renewal => RENEWAL,
                RenewalKind::RecontinuationRequired => RECONTINUATION,
            };
            fill(
                template,
                &[
                    ("next_start", &date_ja(next_period.start)),
                    ("next_end", &date_ja(next_period.end)),
                ],
            )
        }
        _ => String::new(),
    };
    let last_end = match letter.entitlement {
        Entitlement::Expired { last_end, .. } => date_ja(*last_end),
        _ => String::new(),
    };
    let (template, title) = match kind {
        ReplyKind::Acknowledgement => (ACK, "お問合せ受付のお知らせ"),
        ReplyKind::Expired => (EXPIRED, "サポート期間についてのご案内"),
        ReplyKind::Unmatched => (UNMATCHED, "お客様番号のご確認のお願い"),
        ReplyKind::OutOfScope => (OUT_OF_SCOPE, "サポート対象についてのご案内"),
    };
    let category = letter.category.to_string();
    let body = fill(
        template,
        &[
            ("customer", customer),
            ("tag", &tag),
            ("ticket", &ticket),
            ("accepted_at", &accepted),
            ("subject", letter.subject),
            ("category", &category),
            ("outside_hours", &outside_hours),
            ("license_due", &license_due),
            ("contract_id", letter.contract_id.unwrap_or("")),
            ("last_end", &last_end),
            ("renewal_text", &renewal_text),
            ("desk_address", letter.desk_address),
        ],
    );
    OutgoingMail {
        kind: OutgoingKind::AutoReply(kind),
        ticket: letter.ticket,
        to: vec![to.to_string()],
        subject: format!("{tag} {title}：{}", letter.subject),
        body,
        in_reply_to: letter.message_id.map(str::to_string),
        references: references_with(letter),
    }
}

/// The notification staff get for a new ticket or a customer's follow-up.
pub fn staff_notification(
    notify: &[String],
    letter: &TicketLetter<'_>,
    reply: &str,
    follow_up: Option<bool>,
) -> OutgoingMail {
    let tz = letter.timezone;
    let tag = tag(letter.prefix, letter.ticket);
    let ticket = format!("{}#{:06}", letter.prefix, letter.ticket);
    let entitlement = describe_entitlement(letter.entitlement);
    let category = letter.category.to_string();
    let (template, title) = match follow_up {
        None => (NOTIFY_NEW, "新規"),
        Some(_) => (NOTIFY_FOLLOWUP, "追加"),
    };
    let reopened = if follow_up == Some(true) {
        "（クローズ済みのため再オープンしました）"
    } else {
        ""
    };
    let body = fill(
        template,
        &[
            ("ticket", &ticket),
            ("received_at", &time_ja(letter.received_at, tz)),
            ("accepted_at", &time_ja(letter.accepted_at, tz)),
            ("state", letter.state.code()),
            ("category", &category),
            ("from", letter.from),
            ("contract_id", letter.contract_id.unwrap_or("（未特定）")),
            ("entitlement", &entitlement),
            ("reply", reply),
            ("subject", letter.subject),
            ("text", letter.text),
            ("reopened", reopened),
        ],
    );
    OutgoingMail {
        kind: OutgoingKind::StaffNotification,
        ticket: letter.ticket,
        to: notify.to_vec(),
        subject: format!("{tag} {title}: {}", letter.subject),
        body,
        in_reply_to: None,
        references: Vec::new(),
    }
}

/// Tells staff that mail the desk sent for a ticket was refused for good (a 5xx from the relay,
/// or a bounce that came back), so a person can reach the customer another way.
pub fn delivery_failure_notice(
    notify: &[String],
    prefix: &str,
    ticket: u64,
    failed_kind: &str,
    recipients: &str,
    detail: &str,
) -> OutgoingMail {
    let number = format!("{prefix}#{ticket:06}");
    let body = fill(
        NOTIFY_FAILED,
        &[
            ("ticket", &number),
            ("recipients", recipients),
            ("kind", failed_kind),
            ("detail", detail),
        ],
    );
    OutgoingMail {
        kind: OutgoingKind::StaffNotification,
        ticket,
        to: notify.to_vec(),
        subject: format!("{} 送信失敗: {recipients}", tag(prefix, ticket)),
        body,
        in_reply_to: None,
        references: Vec::new(),
    }
}

fn describe_entitlement(e: &Entitlement) -> String {
    match e {
        Entitlement::Covered { period } => format!("サポート期間内 ({period})"),
        Entitlement::Expired {
            last_end,
            next: RenewalKind::Renewal,
            ..
        } => {
            format!("期限切れ ({last_end} 終了、更新が必要)")
        }
        Entitlement::Expired {
            last_end,
            next: RenewalKind::RecontinuationRequired,
            ..
        } => {
            format!("期限切れ ({last_end} 終了、再継続年間サポートが必要)")
        }
        Entitlement::NotYetCovered { starts } => format!("サポート開始前 ({starts} から)"),
        Entitlement::Unmatched => "契約未特定（お客様番号を確認してください）".into(),
        Entitlement::OutOfScope => "対象外（desknet's NEO 本体、NEO 年間サポートなし）".into(),
        Entitlement::Unknown { problem } => format!("要確認: {problem}"),
    }
}
