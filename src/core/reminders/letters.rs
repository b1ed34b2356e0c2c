//! The mails of the reminders: renewal reminders to a contract's registered contacts (from the
//! Japanese `templates/reminder_*.txt`), staff reminders and the morning digest to
//! `desk.notify`. Filled in one pass ([`fill`]); text that came from mail (a ticket's subject,
//! a sender) is cut before it is echoed.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;

use super::{ContractReminder, ContractReminderKind, StaffReminder, StaffWait};
use crate::core::contract::SupportPeriod;
use crate::core::reply::{
    INTERNAL_BEGIN, INTERNAL_END, NAME_ECHO_CHARS, NO_TICKET, OutgoingKind, OutgoingMail,
    REPLY_MARKER, SUBJECT_ECHO_CHARS, cut, date_ja, fill, time_ja, to_staff,
};
use crate::core::ticket::{TicketState, tag};

const RENEWAL: &str = include_str!("../../../templates/reminder_renewal.txt");
const LAPSED: &str = include_str!("../../../templates/reminder_lapsed.txt");
const RECONTINUATION: &str = include_str!("../../../templates/reminder_recontinuation.txt");
const NOTIFY_SLA: &str = include_str!("../../../templates/notify_sla.txt");
const DIGEST: &str = include_str!("../../../templates/digest.txt");

/// Open tickets the digest lists one by one; the rest are counted (a desk with thousands
/// open gets a readable mail, not megabytes).
pub const DIGEST_TICKETS: usize = 100;

/// Whom a contract's reminder goes to: the contract as registered (contracts.csv).
#[derive(Debug, Clone)]
pub struct ContractLetter<'a> {
    pub contract_id: &'a str,
    pub customer: &'a str,
    /// The registered contacts, every one of them.
    pub contacts: &'a [String],
    pub desk_address: &'a str,
}

/// A renewal reminder, lapse notice or re-continuation warning, as of `today`.
pub fn contract_reminder_mail(
    reminder: &ContractReminder,
    letter: &ContractLetter<'_>,
    today: NaiveDate,
) -> OutgoingMail {
    let period = reminder.period;
    let next = period.end.succ_opt().map(SupportPeriod::one_year_from);
    let after_deadline = reminder.renewal_deadline.succ_opt();
    let days_left = |last: NaiveDate| (last - today).num_days().max(0).to_string();
    let (template, about, days_left) = match reminder.kind {
        ContractReminderKind::Renewal { .. } => (
            RENEWAL,
            "年間サポート期間満了のご案内",
            days_left(period.end),
        ),
        ContractReminderKind::Lapsed => (LAPSED, "年間サポート期間終了のお知らせ", String::new()),
        ContractReminderKind::Recontinuation { .. } => (
            RECONTINUATION,
            "年間サポート更新期限のご案内",
            days_left(reminder.renewal_deadline),
        ),
    };
    let contract_id = cut(letter.contract_id, NAME_ECHO_CHARS, true);
    let body = fill(
        template,
        &[
            ("customer", &cut(letter.customer, NAME_ECHO_CHARS, true)),
            ("contract_id", &contract_id),
            ("start", &date_ja(period.start)),
            ("end", &date_ja(period.end)),
            ("days_left", &days_left),
            (
                "next_start",
                &next.map(|n| date_ja(n.start)).unwrap_or_default(),
            ),
            (
                "next_end",
                &next.map(|n| date_ja(n.end)).unwrap_or_default(),
            ),
            ("deadline", &date_ja(reminder.renewal_deadline)),
            (
                "after_deadline",
                &after_deadline.map(date_ja).unwrap_or_default(),
            ),
            ("desk_address", letter.desk_address),
        ],
    );
    OutgoingMail {
        kind: OutgoingKind::Reminder,
        ticket: NO_TICKET,
        to: letter.contacts.to_vec(),
        reply_to: None,
        attachments: Vec::new(),
        files: Vec::new(),
        subject: format!("【desknet's NEO 分散サーバー】{about}（お客様番号 {contract_id}）"),
        body,
        in_reply_to: None,
        references: Vec::new(),
    }
}

/// The ticket a staff reminder is about, as the store has it.
#[derive(Debug, Clone)]
pub struct WaitingLetter<'a> {
    pub prefix: &'a str,
    pub ticket: u64,
    pub subject: &'a str,
    pub customer: &'a str,
    pub notify: &'a [String],
    pub desk_address: &'a str,
    pub timezone: Tz,
}

/// `2時間05分`.
pub fn hours_minutes(minutes: i64) -> String {
    let minutes = minutes.max(0);
    format!("{}時間{:02}分", minutes / 60, minutes % 60)
}

/// A staff reminder: the ticket has waited `waited` business minutes. Replying to it answers
/// the customer, like a reply to the ticket's notification.
pub fn staff_reminder_mail(
    r: &StaffReminder,
    letter: &WaitingLetter<'_>,
    waited: i64,
) -> OutgoingMail {
    let number = format!("{}#{:06}", letter.prefix, letter.ticket);
    let (wait, level_text) = match (r.wait, r.level) {
        (StaffWait::FirstResponse, 1) => ("最初の返信待ち", ""),
        (StaffWait::NextResponse, 1) => ("お客様の追加メールへの返信待ち", ""),
        (StaffWait::FirstResponse, _) => (
            "最初の返信待ち",
            "目安の2倍を過ぎました。至急ご対応ください。\n",
        ),
        (StaffWait::NextResponse, _) => (
            "お客様の追加メールへの返信待ち",
            "目安の2倍を過ぎました。至急ご対応ください。\n",
        ),
    };
    let subject = cut(letter.subject, SUBJECT_ECHO_CHARS, true);
    let body = fill(
        NOTIFY_SLA,
        &[
            ("reply_marker", REPLY_MARKER),
            ("ticket", &number),
            ("waited", &hours_minutes(waited)),
            ("limit", &hours_minutes(r.limit_minutes)),
            ("level_text", level_text),
            ("subject", &subject),
            ("customer", &cut(letter.customer, NAME_ECHO_CHARS, true)),
            ("since", &time_ja(r.since, letter.timezone)),
            ("internal_begin", INTERNAL_BEGIN),
            ("wait", wait),
            ("level", &r.level.to_string()),
            ("internal_end", INTERNAL_END),
        ],
    );
    let urgency = if r.level > 1 { "【至急】" } else { "" };
    to_staff(
        letter.notify,
        letter.desk_address,
        letter.ticket,
        format!(
            "{} {urgency}返信待ち {}: {subject}",
            tag(letter.prefix, letter.ticket),
            hours_minutes(waited)
        ),
        body,
    )
}

/// An open ticket in the digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestTicket {
    pub number: u64,
    pub state: TicketState,
    pub subject: String,
    pub customer: String,
    pub accepted_at: DateTime<Utc>,
    /// Business minutes since acceptance.
    pub age_minutes: i64,
    /// Answered (a staff reply, or the license key sent) and not followed up since.
    pub answered: bool,
}

/// A license application in the digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestLicense {
    pub ticket: u64,
    pub contract_id: String,
    pub due: Option<NaiveDate>,
    pub state: String,
}

/// A mail that failed for good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestFailed {
    pub outbox_id: i64,
    pub ticket: Option<u64>,
    pub recipients: String,
    pub error: String,
}

/// A quarantined message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestQuarantined {
    pub id: i64,
    pub from: String,
    pub subject: String,
    pub reason: String,
}

/// What the morning digest says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Digest {
    pub tickets: Vec<DigestTicket>,
    pub licenses_due: Vec<DigestLicense>,
    pub approvals: Vec<DigestLicense>,
    pub failed: Vec<DigestFailed>,
    pub quarantined: Vec<DigestQuarantined>,
}

impl Digest {
    /// Nothing to say: no digest is sent.
    pub fn is_empty(&self) -> bool {
        self.tickets.is_empty()
            && self.licenses_due.is_empty()
            && self.approvals.is_empty()
            && self.failed.is_empty()
            && self.quarantined.is_empty()
    }
}

/// Who a ticket waits for, as the digest says it.
fn waits_for(state: TicketState, answered: bool) -> &'static str {
    match state {
        TicketState::WaitingAcceptance => "受付待ち",
        TicketState::Open if answered => "回答済み",
        TicketState::Open => "スタッフ対応待ち",
        TicketState::Pending => "お客様の返信待ち",
        TicketState::Closed => "完了",
    }
}

/// Lines of a digest section, or `（なし）`.
fn section(lines: Vec<String>) -> String {
    if lines.is_empty() {
        return "  （なし）\n".to_string();
    }
    lines.into_iter().map(|l| format!("  {l}\n")).collect()
}

/// The morning digest of `day` to `desk.notify`; `None` when there is nothing to say.
pub fn digest_mail(
    digest: &Digest,
    day: NaiveDate,
    prefix: &str,
    notify: &[String],
    desk_address: &str,
    timezone: Tz,
    now: DateTime<Utc>,
) -> Option<OutgoingMail> {
    if digest.is_empty() || notify.is_empty() {
        return None;
    }
    let mut tickets: Vec<String> = digest
        .tickets
        .iter()
        .take(DIGEST_TICKETS)
        .map(|t| {
            format!(
                "{} {}（経過 {}）{} ／ {} ／ 受付 {}",
                tag(prefix, t.number),
                waits_for(t.state, t.answered),
                hours_minutes(t.age_minutes),
                cut(&t.subject, 60, true),
                cut(&t.customer, 60, true),
                time_ja(t.accepted_at, timezone),
            )
        })
        .collect();
    if digest.tickets.len() > DIGEST_TICKETS {
        tickets.push(format!(
            "ほか {} 件（madoguchi queue で一覧できます）",
            digest.tickets.len() - DIGEST_TICKETS
        ));
    }
    let license = |l: &DigestLicense| {
        format!(
            "{} お客様番号 {} ／ 期限 {} ／ {}",
            tag(prefix, l.ticket),
            cut(&l.contract_id, 40, true),
            l.due.map(date_ja).unwrap_or_else(|| "未定".into()),
            l.state
        )
    };
    let failed = digest
        .failed
        .iter()
        .map(|f| {
            let on = f
                .ticket
                .map(|t| tag(prefix, t))
                .unwrap_or_else(|| "（受付番号なし）".into());
            format!(
                "{on} 宛先 {} ／ {}",
                cut(&f.recipients, 200, true),
                cut(&f.error, 200, true)
            )
        })
        .collect();
    let quarantined = digest
        .quarantined
        .iter()
        .map(|q| {
            format!(
                "#{} {} ／ {} ／ {}",
                q.id,
                cut(&q.from, 100, true),
                cut(&q.subject, 60, true),
                cut(&q.reason, 120, true)
            )
        })
        .collect();
    let body = fill(
        DIGEST,
        &[
            ("date", &date_ja(day)),
            ("now", &time_ja(now, timezone)),
            ("ticket_count", &digest.tickets.len().to_string()),
            ("tickets", &section(tickets)),
            ("license_count", &digest.licenses_due.len().to_string()),
            (
                "licenses",
                &section(digest.licenses_due.iter().map(license).collect()),
            ),
            ("approval_count", &digest.approvals.len().to_string()),
            (
                "approvals",
                &section(digest.approvals.iter().map(license).collect()),
            ),
            ("failed_count", &digest.failed.len().to_string()),
            ("failed", &section(failed)),
            ("quarantine_count", &digest.quarantined.len().to_string()),
            ("quarantined", &section(quarantined)),
        ],
    );
    Some(to_staff(
        notify,
        desk_address,
        NO_TICKET,
        format!(
            "【サポート窓口】{} の状況: 対応中 {} 件、ライセンス期限 {} 件、承認待ち {} 件",
            date_ja(day),
            digest.tickets.len(),
            digest.licenses_due.len(),
            digest.approvals.len()
        ),
        body,
    ))
}
