//! Mail the desk writes, as data: the Japanese replies to customers and the notifications to
//! staff, filled from the templates in `templates/` (embedded at build time). The shell turns an
//! `OutgoingMail` into RFC 5322 bytes and sends it.

use chrono::{DateTime, Datelike, NaiveDate, Utc, Weekday};
use chrono_tz::Tz;
use serde::Serialize;

use super::classify::Category;
use super::contract::RenewalKind;
use super::license::LicenseVerdict;
use super::license::letters::{earlier_state_ja, shortfall_lines, verdict_line};
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
const NOTIFY_FLOOD: &str = include_str!("../../templates/notify_flood.txt");
const LICENSE_REFUSED: &str = include_str!("../../templates/license_refused.txt");
const LICENSE_REPEATED: &str = include_str!("../../templates/license_repeated.txt");

/// The first line of every staff notification: staff write their reply above it. The desk
/// cuts a staff reply at this line (and at quotes), so it is also the safest place to answer.
pub const REPLY_MARKER: &str = "##- この行より上に書いた内容が、お客様への返信として送信されます。1行目に #note と書くと社内メモになり、お客様には送信されません。 -##";
/// The lines that open and close a notification's internal section (contract status,
/// entitlement, what was sent automatically): nothing between them may ever reach a customer.
pub const INTERNAL_BEGIN: &str = "----- 社内情報（お客様には送信されません）-----";
pub const INTERNAL_END: &str = "----- 社内情報ここまで -----";

/// Why a mail is sent; also its `Auto-Submitted` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutgoingKind {
    /// An automatic reply to a customer (`Auto-Submitted: auto-replied`, RFC 3834).
    AutoReply(ReplyKind),
    /// A notification to staff (`Auto-Submitted: auto-generated`).
    StaffNotification,
    /// A staff member's reply relayed to the customer: a person wrote it, so no
    /// `Auto-Submitted` (the customer's own auto-responder may answer it, as it would a person).
    StaffReply,
    /// A license key (R7) to the registered applicant, on its due date.
    LicenseKey,
    /// A renewal reminder to a contract's registered contacts (R10/R11), about no ticket.
    Reminder,
}

impl OutgoingKind {
    pub fn code(self) -> &'static str {
        match self {
            OutgoingKind::AutoReply(kind) => kind.code(),
            OutgoingKind::StaffNotification => "staff_notification",
            OutgoingKind::StaffReply => "staff_reply",
            OutgoingKind::LicenseKey => "license_key",
            OutgoingKind::Reminder => "reminder",
        }
    }

    /// The `Auto-Submitted` value (RFC 3834); none for what a person wrote.
    pub fn auto_submitted(self) -> Option<&'static str> {
        match self {
            OutgoingKind::AutoReply(_) => Some("auto-replied"),
            OutgoingKind::StaffNotification => Some("auto-generated"),
            OutgoingKind::StaffReply => None,
            OutgoingKind::LicenseKey => Some("auto-replied"),
            OutgoingKind::Reminder => Some("auto-generated"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutgoingMail {
    pub kind: OutgoingKind,
    /// The ticket the mail is about, or [`NO_TICKET`] (a renewal reminder, the digest): then it
    /// is no article, threads nothing, and its outbox row names no ticket.
    pub ticket: u64,
    pub to: Vec<String>,
    /// Where answers should go (`Reply-To:`), when not to the sender.
    pub reply_to: Option<String>,
    /// Files kept from an incoming message that go along (a staff reply's attachments); the
    /// shell reads them from the store.
    pub attachments: Vec<crate::core::inbound::Attachment>,
    /// Files the desk made for this mail (a license key).
    pub files: Vec<GeneratedFile>,
    pub subject: String,
    pub body: String,
    /// The message this one answers (without angle brackets).
    pub in_reply_to: Option<String>,
    pub references: Vec<String>,
}

/// [`OutgoingMail::ticket`] of mail about no ticket (ticket numbers start at 1).
pub const NO_TICKET: u64 = 0;

/// A file the desk writes itself and sends along (a license key as `license-<serial>.key`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GeneratedFile {
    pub name: String,
    pub content_type: String,
    pub text: String,
}

/// The facts a reply or notification is written from.
#[derive(Debug, Clone)]
pub struct TicketLetter<'a> {
    pub prefix: &'a str,
    pub desk_address: &'a str,
    pub timezone: Tz,
    pub ticket: u64,
    /// Whom a customer reply greets (decided by the core, see `ticket::addressee`).
    pub addressee: &'a str,
    pub from: &'a str,
    pub subject: &'a str,
    pub text: &'a str,
    pub category: Category,
    pub state: TicketState,
    pub received_at: DateTime<Utc>,
    pub accepted_at: DateTime<Utc>,
    pub license_due: Option<NaiveDate>,
    /// For a license application: what became of it.
    pub license: Option<&'a LicenseVerdict>,
    pub contract_id: Option<&'a str>,
    pub entitlement: &'a Entitlement,
    /// The customer's Message-ID and References, to thread the reply.
    pub message_id: Option<&'a str>,
    pub references: &'a [String],
}

/// What a follow-up notification is written from: the ticket and the mail that arrived on it
/// (nothing about the contract: the new-ticket notification told that).
#[derive(Debug, Clone)]
pub struct FollowUpLetter<'a> {
    pub prefix: &'a str,
    pub desk_address: &'a str,
    pub timezone: Tz,
    pub ticket: u64,
    /// The ticket's state after this mail.
    pub state: TicketState,
    pub received_at: DateTime<Utc>,
    pub from: &'a str,
    pub subject: &'a str,
    pub text: &'a str,
}

/// The customer's mail as every staff notification echoes it, cut, with the reply marker and
/// the internal section's fences.
struct EchoedMail {
    from: String,
    subject: String,
    text: String,
}

impl EchoedMail {
    fn new(from: &str, subject: &str, text: &str, prefix: &str) -> Self {
        Self {
            from: cut(from, NAME_ECHO_CHARS * 3, true),
            subject: echo_subject(subject, prefix),
            text: cut(text, TEXT_ECHO_CHARS, false),
        }
    }

    /// These values, then `more`.
    fn values<'v>(&'v self, more: &[(&'static str, &'v str)]) -> Vec<(&'static str, &'v str)> {
        let mut values = vec![
            ("from", self.from.as_str()),
            ("subject", self.subject.as_str()),
            ("text", self.text.as_str()),
            ("reply_marker", REPLY_MARKER),
            ("internal_begin", INTERNAL_BEGIN),
            ("internal_end", INTERNAL_END),
        ];
        values.extend_from_slice(more);
        values
    }
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

/// Fills `{{name}}` placeholders in **one pass over the template**: each value is inserted
/// verbatim and never scanned again, so text a customer wrote (a subject of `{{last_end}}`)
/// can never name another value. Unknown placeholders stay visible rather than vanish.
pub fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let value = after.find("}}").and_then(|close| {
            let name = &after[..close];
            values
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v, close))
        });
        match value {
            Some((v, close)) => {
                out.push_str(v);
                rest = &after[close + 2..];
            }
            None => {
                out.push_str("{{");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Customer text echoed in a subject line is cut to this many characters.
pub const SUBJECT_ECHO_CHARS: usize = 200;
/// A name echoed in a greeting or a header is cut to this many characters.
pub const NAME_ECHO_CHARS: usize = 100;
/// The customer's text quoted in a staff notification is cut to this many characters (the
/// whole message stays on the ticket and in the raw mail).
pub const TEXT_ECHO_CHARS: usize = 20_000;

/// `text` cut to at most `max` characters, ending in `…` when it was cut; line breaks and other
/// control characters become spaces when `one_line`.
pub fn cut(text: &str, max: usize, one_line: bool) -> String {
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        if i + 1 > max {
            out.pop();
            out.push('…');
            break;
        }
        out.push(if one_line && c.is_control() { ' ' } else { c });
    }
    out
}

/// The customer's subject as a reply echoes it: our ticket tags removed (the reply carries
/// its own), on one line, at most [`SUBJECT_ECHO_CHARS`] characters.
pub fn echo_subject(subject: &str, prefix: &str) -> String {
    let lower = subject.to_ascii_lowercase();
    let needle = format!("[{}#", prefix.to_ascii_lowercase());
    let mut kept = String::with_capacity(subject.len());
    let mut from = 0;
    while let Some(pos) = lower[from..].find(&needle) {
        let start = from + pos;
        let digits_at = start + needle.len();
        let digits = lower[digits_at..]
            .bytes()
            .take_while(u8::is_ascii_digit)
            .count();
        if digits > 0 && lower[digits_at + digits..].starts_with(']') {
            // A tag of ours: drop it (ASCII only, so byte offsets agree with `subject`).
            kept.push_str(&subject[from..start]);
            from = digits_at + digits + 1;
        } else {
            kept.push_str(&subject[from..digits_at]);
            from = digits_at;
        }
    }
    kept.push_str(&subject[from..]);
    let squeezed = kept.split_whitespace().collect::<Vec<_>>().join(" ");
    cut(&squeezed, SUBJECT_ECHO_CHARS, true)
}

/// The greeting line: `name 様`, or `お客様` when no name is known.
pub fn greeting(name: &str) -> String {
    let name = cut(name.trim(), NAME_ECHO_CHARS, true);
    if name.is_empty() {
        "お客様".to_string()
    } else {
        format!("{name} 様")
    }
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

/// A support period in Japanese: `2026年4月1日(水)～2027年3月31日(水)`.
pub fn period_ja(start: NaiveDate, end: NaiveDate) -> String {
    format!("{}～{}", date_ja(start), date_ja(end))
}

/// The automatic reply of `kind` to the customer at `to`.
pub fn customer_reply(kind: ReplyKind, to: &str, letter: &TicketLetter<'_>) -> OutgoingMail {
    let tz = letter.timezone;
    let tag = tag(letter.prefix, letter.ticket);
    let ticket = format!("{}#{:06}", letter.prefix, letter.ticket);
    let accepted = time_ja(letter.accepted_at, tz);
    let subject = echo_subject(letter.subject, letter.prefix);
    let outside_hours = if letter.accepted_at > letter.received_at {
        fill(OUTSIDE_HOURS, &[("accepted_at", &accepted)])
    } else {
        String::new()
    };
    let license_due = letter
        .license_due
        .map(|d| fill(LICENSE_DUE, &[("license_due", &date_ja(d))]))
        .unwrap_or_default();
    // Contract details only ever reach the templates of the replies that may carry them (the
    // decision sends those only to a registered contact, invariant 6).
    let (renewal_text, last_end) = match (kind, letter.entitlement) {
        (
            ReplyKind::Expired,
            Entitlement::Expired {
                next,
                next_period,
                last_end,
            },
        ) => {
            let template = match next {
                RenewalKind::Renewal => RENEWAL,
                RenewalKind::RecontinuationRequired => RECONTINUATION,
            };
            let text = fill(
                template,
                &[
                    ("next_start", &date_ja(next_period.start)),
                    ("next_end", &date_ja(next_period.end)),
                ],
            );
            (text, date_ja(*last_end))
        }
        _ => (String::new(), String::new()),
    };
    let contract_id = match kind {
        ReplyKind::Expired => letter.contract_id.unwrap_or(""),
        _ => "",
    };
    let (template, title) = match kind {
        ReplyKind::Acknowledgement => (ACK, "お問合せ受付のお知らせ"),
        ReplyKind::Expired => (EXPIRED, "サポート期間についてのご案内"),
        ReplyKind::Unmatched => (UNMATCHED, "お客様番号のご確認のお願い"),
        ReplyKind::OutOfScope => (OUT_OF_SCOPE, "サポート対象についてのご案内"),
        ReplyKind::LicenseRefused => (LICENSE_REFUSED, "ライセンスキー再発行のお申込みについて"),
        ReplyKind::LicenseRepeated => (LICENSE_REPEATED, "ライセンスキー再発行のお申込みについて"),
    };
    // What an application came to, for the applicant (the decision sends these two replies
    // only to a registered contact).
    let (shortfalls, earlier, earlier_state) = match (kind, letter.license) {
        (ReplyKind::LicenseRefused, Some(LicenseVerdict::Refused { shortfalls, .. })) => {
            (shortfall_lines(shortfalls), String::new(), String::new())
        }
        (ReplyKind::LicenseRepeated, Some(LicenseVerdict::Repeated { earlier, .. })) => (
            String::new(),
            format!("{}#{:06}", letter.prefix, earlier.ticket),
            earlier_state_ja(earlier.sent_at, earlier.due, tz),
        ),
        _ => (String::new(), String::new(), String::new()),
    };
    let category = letter.category.to_string();
    let body = fill(
        template,
        &[
            ("greeting", &greeting(letter.addressee)),
            ("tag", &tag),
            ("ticket", &ticket),
            ("accepted_at", &accepted),
            ("subject", &subject),
            ("category", &category),
            ("outside_hours", &outside_hours),
            ("license_due", &license_due),
            ("contract_id", contract_id),
            ("last_end", &last_end),
            ("renewal_text", &renewal_text),
            ("shortfalls", &shortfalls),
            ("earlier", &earlier),
            ("earlier_state", &earlier_state),
            ("desk_address", letter.desk_address),
        ],
    );
    OutgoingMail {
        kind: OutgoingKind::AutoReply(kind),
        ticket: letter.ticket,
        to: vec![to.to_string()],
        reply_to: None,
        attachments: Vec::new(),
        files: Vec::new(),
        subject: format!("{tag} {title}：{subject}"),
        body,
        in_reply_to: letter.message_id.map(str::to_string),
        references: references_with(letter),
    }
}

/// A notification to staff (`Auto-Submitted: auto-generated`), not threaded to anything.
/// Staff answer it: `Reply-To:` the desk, so a reply comes back as staff mail on the ticket.
pub(crate) fn to_staff(
    notify: &[String],
    desk_address: &str,
    ticket: u64,
    subject: String,
    body: String,
) -> OutgoingMail {
    OutgoingMail {
        kind: OutgoingKind::StaffNotification,
        ticket,
        to: notify.to_vec(),
        reply_to: Some(desk_address.to_string()),
        attachments: Vec::new(),
        files: Vec::new(),
        subject,
        body,
        in_reply_to: None,
        references: Vec::new(),
    }
}

/// What a new ticket's notification says was sent to the customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyNote {
    Sent { kind: ReplyKind, to: String },
    Withheld(String),
}

impl ReplyNote {
    fn text_ja(&self) -> String {
        match self {
            ReplyNote::Sent { kind, to } => format!("{}を送信（宛先: {to}）", kind.label_ja()),
            ReplyNote::Withheld(why) => format!("送信していません（{why}）"),
        }
    }
}

/// Why staff are told about an article on an existing ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowUpNote<'a> {
    /// A customer's follow-up; `reopened` when the ticket was closed and is open again.
    Customer { reopened: bool },
    /// Mail from a staff address that could not be authenticated (`reason`, from
    /// `core::auth`): recorded on the ticket, the ticket left as it was.
    UnauthenticatedStaff { reason: &'a str },
}

/// The notification staff get for a new ticket.
pub fn staff_notification(
    notify: &[String],
    letter: &TicketLetter<'_>,
    reply: &ReplyNote,
) -> OutgoingMail {
    let tz = letter.timezone;
    let tag = tag(letter.prefix, letter.ticket);
    let ticket = format!("{}#{:06}", letter.prefix, letter.ticket);
    let mail = EchoedMail::new(letter.from, letter.subject, letter.text, letter.prefix);
    let (received_at, accepted_at) = (
        time_ja(letter.received_at, tz),
        time_ja(letter.accepted_at, tz),
    );
    let (category, entitlement, reply) = (
        letter.category.to_string(),
        describe_entitlement(letter.entitlement),
        reply.text_ja(),
    );
    let license = letter
        .license
        .map(|v| format!("ライセンス：{}\n", verdict_line(v, letter.prefix, tz)))
        .unwrap_or_default();
    let body = fill(
        NOTIFY_NEW,
        &mail.values(&[
            ("ticket", &ticket),
            ("received_at", &received_at),
            ("accepted_at", &accepted_at),
            ("state", letter.state.label_ja()),
            ("category", &category),
            ("contract_id", letter.contract_id.unwrap_or("（未特定）")),
            ("entitlement", &entitlement),
            ("reply", &reply),
            ("license", &license),
        ]),
    );
    let subject = format!("{tag} 新規: {}", mail.subject);
    to_staff(notify, letter.desk_address, letter.ticket, subject, body)
}

/// The notification staff get for a new article on an existing ticket.
pub fn follow_up_notification(
    notify: &[String],
    letter: &FollowUpLetter<'_>,
    note: FollowUpNote,
) -> OutgoingMail {
    let tag = tag(letter.prefix, letter.ticket);
    let ticket = format!("{}#{:06}", letter.prefix, letter.ticket);
    let mail = EchoedMail::new(letter.from, letter.subject, letter.text, letter.prefix);
    let (title, note) = match note {
        FollowUpNote::Customer { reopened: false } => ("追加", String::new()),
        FollowUpNote::Customer { reopened: true } => (
            "追加",
            "クローズ済みの受付番号のため、再オープンしました。\n".to_owned(),
        ),
        // The reason is one line (`core::auth` keeps it so).
        FollowUpNote::UnauthenticatedStaff { reason } => (
            "要確認",
            format!(
                "スタッフのアドレスからのメールですが、送信者を認証できないため、受付番号の状態は\n\
                 変更していません（なりすましの可能性があります）。お客様へは何も送信していません。\n\
                 認証できない理由: {reason}\n"
            ),
        ),
    };
    let received_at = time_ja(letter.received_at, letter.timezone);
    let body = fill(
        NOTIFY_FOLLOWUP,
        &mail.values(&[
            ("ticket", &ticket),
            ("note", &note),
            ("state", letter.state.label_ja()),
            ("received_at", &received_at),
        ]),
    );
    let subject = format!("{tag} {title}: {}", mail.subject);
    to_staff(notify, letter.desk_address, letter.ticket, subject, body)
}

/// Tells staff that mail the desk sent for a ticket was refused for good (a 5xx from the relay,
/// or a bounce that came back), so a person can reach the customer another way.
pub fn delivery_failure_notice(
    notify: &[String],
    desk_address: &str,
    prefix: &str,
    ticket: Option<u64>,
    failed_kind: &str,
    recipients: &str,
    detail: &str,
) -> OutgoingMail {
    let number = match ticket {
        Some(t) => format!("{prefix}#{t:06}"),
        None => "（なし：受付番号のないお知らせ）".to_string(),
    };
    let body = fill(
        NOTIFY_FAILED,
        &[
            ("ticket", &number),
            ("recipients", recipients),
            ("kind", failed_kind),
            ("detail", detail),
        ],
    );
    let subject = match ticket {
        Some(t) => format!("{} 送信失敗: {recipients}", tag(prefix, t)),
        None => format!("送信失敗: {recipients}"),
    };
    to_staff(
        notify,
        desk_address,
        ticket.unwrap_or(NO_TICKET),
        subject,
        body,
    )
}

/// Tells staff that one sender is flooding the desk: the rest of the hour's mail from them
/// goes onto `ticket` without replies or notices. Sent once per flood.
pub fn flood_notice(
    notify: &[String],
    desk_address: &str,
    prefix: &str,
    ticket: u64,
    sender: &str,
    per_hour: u32,
) -> OutgoingMail {
    let sender = cut(sender, NAME_ECHO_CHARS, true);
    let body = fill(
        NOTIFY_FLOOD,
        &[
            ("ticket", &format!("{prefix}#{ticket:06}")),
            ("sender", &sender),
            ("per_hour", &per_hour.to_string()),
        ],
    );
    let subject = format!("{} 大量受信: {sender}", tag(prefix, ticket));
    to_staff(notify, desk_address, ticket, subject, body)
}

fn describe_entitlement(e: &Entitlement) -> String {
    match e {
        Entitlement::Covered { period } => {
            format!("サポート期間内（{}）", period_ja(period.start, period.end))
        }
        Entitlement::Expired {
            last_end,
            next: RenewalKind::Renewal,
            ..
        } => format!("期限切れ（{} 終了、更新が必要）", date_ja(*last_end)),
        Entitlement::Expired {
            last_end,
            next: RenewalKind::RecontinuationRequired,
            ..
        } => format!(
            "期限切れ（{} 終了、再継続年間サポートが必要）",
            date_ja(*last_end)
        ),
        Entitlement::NotYetCovered { starts } => {
            format!("サポート開始前（{} から）", date_ja(*starts))
        }
        Entitlement::Unmatched => "契約未特定（お客様番号を確認してください）".into(),
        Entitlement::OutOfScope => "対象外（desknet's NEO 本体、NEO 年間サポートなし）".into(),
        Entitlement::Unknown { problem } => format!("要確認（{}）", problem.label_ja()),
    }
}

#[cfg(test)]
mod tests;

/// A staff member's reply, relayed to the customer: their text only, threaded to the
/// customer's latest message, with the ticket tag once.
pub fn staff_relay(
    rules: &crate::core::decide::DeskRules,
    ticket: u64,
    customer: &crate::core::decide::CustomerThread<'_>,
    text: &str,
    attachments: &[crate::core::inbound::Attachment],
) -> OutgoingMail {
    let subject = echo_subject(customer.subject, &rules.ticket_prefix);
    let mut references = customer.references.to_vec();
    if let Some(id) = customer.message_id
        && !references.iter().any(|r| r == id)
    {
        references.push(id.to_string());
    }
    OutgoingMail {
        kind: OutgoingKind::StaffReply,
        ticket,
        to: vec![customer.address.to_string()],
        reply_to: None,
        attachments: attachments.to_vec(),
        files: Vec::new(),
        subject: format!("Re: {} {subject}", tag(&rules.ticket_prefix, ticket)),
        body: format!("{}\n", text.trim_end()),
        in_reply_to: customer.message_id.map(str::to_string),
        references,
    }
}

/// An internal note, copied to the notification address (never to the customer).
pub fn staff_note(
    rules: &crate::core::decide::DeskRules,
    ticket: u64,
    mail: &crate::core::inbound::InboundMail,
    text: &str,
) -> OutgoingMail {
    let from = mail.from.as_ref().map_or("", |m| m.address.as_str());
    let subject = echo_subject(&mail.subject, &rules.ticket_prefix);
    let body = format!(
        "{}\n\n{from} が受付番号 {}#{ticket:06} に社内メモを記録しました（お客様には送信していません）。\n\n{}\n",
        REPLY_MARKER,
        rules.ticket_prefix,
        cut(text, TEXT_ECHO_CHARS, false).trim_end()
    );
    let subject = format!("{} 社内メモ: {subject}", tag(&rules.ticket_prefix, ticket));
    to_staff(&rules.notify, &rules.desk_address, ticket, subject, body)
}

/// What the desk did with a staff member's mail, to that staff member.
pub fn staff_confirmation(
    rules: &crate::core::decide::DeskRules,
    ticket: u64,
    to: &str,
    subject: &str,
    done: &[String],
    refused: &[String],
) -> OutgoingMail {
    let list = |items: &[String]| {
        if items.is_empty() {
            "  （なし）".to_string()
        } else {
            items
                .iter()
                .map(|i| format!("  ・{i}"))
                .collect::<Vec<_>>()
                .join("\n")
        }
    };
    let body = format!(
        "受付番号 {}#{ticket:06} へのメールを処理しました。\n\n実行したこと：\n{}\n\n実行しなかったこと：\n{}\n",
        rules.ticket_prefix,
        list(done),
        list(refused)
    );
    let subject = format!(
        "{} 処理結果: {}",
        tag(&rules.ticket_prefix, ticket),
        echo_subject(subject, &rules.ticket_prefix)
    );
    to_staff(
        &[to.to_string()],
        &rules.desk_address,
        ticket,
        subject,
        body,
    )
}
