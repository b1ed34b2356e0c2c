//! The monthly report (`madoguchi report --month YYYY-MM`, issue 13 item 4): the figures of one
//! month in the desk's timezone, computed from rows the store read (`store/report.rs`). Pure: no
//! clock, no SQLite, no files. `html.rs` draws them as one self-contained page with SVG charts;
//! `text.rs` as the command's human text.
//!
//! What counts in a month (all in the desk's timezone, `[calendar]`, Asia/Tokyo by default):
//! - tickets and their first response: tickets **accepted** in the month (R5: mail that arrived
//!   on the last evening of the previous month and was accepted on the first business morning
//!   counts in this one); the first response as the desk recorded it in business minutes;
//! - R8: applications whose **due date** is in the month, refused ones aside (no key is owed);
//!   on time when the key was sent (the relay took it) on or before the due date, in the desk's
//!   timezone; a key not sent yet counts against the month until it is;
//! - withheld automatic replies: messages **received** in the month that were only recorded
//!   (verdict `recorded`), by the guard's stable reason code (`core::guard::NoReplyReason::code`,
//!   the text before the first `:` of the stored reason);
//! - reminders **queued** in the month, by kind; a contract reminded in the month "renewed"
//!   when a renewal or re-continuation order was received on or after the day of its first
//!   reminder of the month.

mod html;
#[cfg(test)]
mod tests;
mod text;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Datelike, Days, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use crate::core::classify::Category;

pub use html::render_html;
pub use text::render_text;

/// A calendar month as `--month` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Month {
    first: NaiveDate,
}

/// Why a `--month` argument is not a month.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a month: expected YYYY-MM, e.g. 2026-11")]
pub struct MonthError(pub String);

impl Month {
    /// Exactly `YYYY-MM` (month 01–12).
    pub fn parse(text: &str) -> Result<Month, MonthError> {
        let err = || MonthError(text.chars().take(40).collect());
        if text.len() != 7 {
            return Err(err());
        }
        crate::core::date::parse_ymd(&format!("{text}-01"))
            .map(|first| Month { first })
            .map_err(|_| err())
    }

    pub fn first_day(self) -> NaiveDate {
        self.first
    }

    pub fn last_day(self) -> NaiveDate {
        self.first
            .checked_add_months(chrono::Months::new(1))
            .and_then(|d| d.pred_opt())
            .unwrap_or(NaiveDate::MAX)
    }

    pub fn contains(self, date: NaiveDate) -> bool {
        date >= self.first && date <= self.last_day()
    }

    /// `2026-11`.
    pub fn code(self) -> String {
        format!("{:04}-{:02}", self.first.year(), self.first.month())
    }

    /// `2026年11月`.
    pub fn label_ja(self) -> String {
        format!("{}年{}月", self.first.year(), self.first.month())
    }

    /// UTC instants that surely enclose the month in any timezone (a day either side): the
    /// store reads rows within them and the exact month is decided here, in the desk's zone.
    pub fn window(self) -> (DateTime<Utc>, DateTime<Utc>) {
        let start = self
            .first
            .checked_sub_days(Days::new(1))
            .unwrap_or(self.first);
        let end = self
            .last_day()
            .checked_add_days(Days::new(2))
            .unwrap_or(self.last_day());
        let at = |d: NaiveDate| d.and_time(chrono::NaiveTime::MIN).and_utc();
        (at(start), at(end))
    }

    fn holds(self, t: DateTime<Utc>, tz: Tz) -> bool {
        self.contains(t.with_timezone(&tz).date_naive())
    }
}

/// A ticket as the report needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketRow {
    pub number: u64,
    /// The stored category code (`Category::code`).
    pub category: String,
    pub contract_id: Option<String>,
    pub accepted_at: DateTime<Utc>,
    pub first_response_minutes: Option<i64>,
}

/// A license key application (R8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplicationRow {
    pub ticket: u64,
    pub due: Option<NaiveDate>,
    pub sent_at: Option<DateTime<Utc>>,
    /// The stored state (`ApplicationState::code`).
    pub state: String,
}

/// A message that got no automatic reply because the guard said so (verdict `recorded`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WithheldRow {
    pub received_at: DateTime<Utc>,
    /// The stored reason, `code: description`.
    pub reason: Option<String>,
}

/// A reminder, staff reminder or digest the desk queued (migration 12).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReminderRow {
    pub kind: String,
    pub contract_id: Option<String>,
    pub queued_at: DateTime<Utc>,
    /// Its mail was taken by the relay.
    pub sent: bool,
}

/// A renewal or re-continuation order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRow {
    pub contract_id: String,
    pub kind: String,
    pub received: NaiveDate,
}

/// Everything the store read for one month (rows of its `window`, and a little around).
#[derive(Debug, Clone, Default)]
pub struct Rows {
    pub tickets: Vec<TicketRow>,
    pub applications: Vec<ApplicationRow>,
    pub withheld: Vec<WithheldRow>,
    pub reminders: Vec<ReminderRow>,
    pub orders: Vec<OrderRow>,
    /// contract id → registered customer name.
    pub customers: BTreeMap<String, String>,
}

/// The report: stable field names (`--json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// `2026-11`.
    pub month: String,
    pub timezone: String,
    pub first_day: NaiveDate,
    pub last_day: NaiveDate,
    pub tickets: Tickets,
    pub first_response: FirstResponse,
    pub license_keys: LicenseKeys,
    pub withheld: Withheld,
    pub reminders: Reminders,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tickets {
    pub total: u64,
    /// Every category, in the terms' order (R1 four kinds, R2, R3, other), zeros included.
    pub by_category: Vec<CategoryCount>,
    /// Contracts with tickets, most first; `contract_id` null for tickets tied to none.
    pub by_contract: Vec<ContractCount>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CategoryCount {
    pub category: &'static str,
    /// `R1-1` … `R1-4`, `R2`, `R3`, or null for other.
    pub rule: Option<&'static str>,
    pub label: &'static str,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContractCount {
    pub contract_id: Option<String>,
    pub customer: Option<String>,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FirstResponse {
    /// Tickets of the month with a first response.
    pub answered: u64,
    /// Tickets of the month still without one.
    pub unanswered: u64,
    /// Business minutes, nearest rank (an observed value).
    pub median_minutes: Option<i64>,
    pub p90_minutes: Option<i64>,
    pub distribution: Vec<Bucket>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bucket {
    /// `le_60` … `gt_2400`: the bucket's stable name.
    pub bucket: String,
    pub label: String,
    /// Upper bound in business minutes (inclusive); null for the last bucket.
    pub up_to_minutes: Option<i64>,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LicenseKeys {
    /// Applications due in the month (refused ones aside).
    pub due: u64,
    /// Key sent on or before the due date.
    pub on_time: u64,
    /// Key sent after the due date.
    pub late: u64,
    /// Key not sent (yet).
    pub unsent: u64,
    /// Refused applications with a due date in the month (not counted in `due`).
    pub refused: u64,
    /// `on_time / due` in percent, one decimal; null when nothing was due.
    pub on_time_percent: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Withheld {
    pub total: u64,
    /// Most first, then by code.
    pub by_reason: Vec<ReasonCount>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReasonCount {
    /// The guard's reason code (`auto_submitted`, `bounce`, …), `unknown` when none was stored.
    pub reason: String,
    pub label: String,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reminders {
    /// Every kind, zeros included: queued in the month, and of those sent.
    pub by_kind: Vec<KindCount>,
    /// Contracts with a renewal, lapsed or re-continuation reminder queued in the month.
    pub contracts_reminded: u64,
    /// Of those, contracts with a renewal or re-continuation order received since.
    pub renewed: u64,
    pub contracts: Vec<RemindedContract>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KindCount {
    pub kind: &'static str,
    pub label: &'static str,
    pub queued: u64,
    pub sent: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RemindedContract {
    pub contract_id: String,
    pub customer: Option<String>,
    /// Kinds of the month's reminders to it, in order of queueing.
    pub kinds: Vec<String>,
    /// The day of its first reminder of the month.
    pub first_reminded: NaiveDate,
    /// The first renewal or re-continuation order received on or after that day.
    pub renewed_on: Option<NaiveDate>,
}

/// The rule of the terms a category falls under.
pub fn category_rule(category: Category) -> Option<&'static str> {
    match category {
        Category::Operation => Some("R1-1"),
        Category::Fault => Some("R1-2"),
        Category::PatchUpgrade => Some("R1-3"),
        Category::DataMigration => Some("R1-4"),
        Category::LicenseReissue => Some("R2"),
        Category::BaseProduct => Some("R3"),
        Category::Other => None,
    }
}

/// The reminder kinds of migration 12, in the order the report lists them, with their names.
pub const REMINDER_KINDS: [(&str, &str); 6] = [
    ("renewal", "更新のご案内"),
    ("lapsed", "サポート終了のお知らせ"),
    ("recontinuation", "再継続のご案内"),
    ("first_response", "初回応答の督促"),
    ("next_response", "次回応答の督促"),
    ("digest", "朝のダイジェスト"),
];

/// Contract reminders: the ones a renewal may follow.
const CONTRACT_KINDS: [&str; 3] = ["renewal", "lapsed", "recontinuation"];

/// The guard's reasons (`NoReplyReason::code`) in Japanese; an unknown code shows as itself.
pub fn reason_label(code: &str) -> String {
    let label = match code {
        "loop_marker" => "窓口のループ防止ヘッダー付き",
        "from_desk" => "窓口自身のアドレスから",
        "bounce" => "配信エラー通知",
        "feedback_report" => "苦情・フィードバック報告",
        "disposition_notification" => "開封確認",
        "no_from" => "差出人なし",
        "mailer_daemon" => "メールシステムのアカウントから",
        "null_sender" => "エンベロープ送信者が空",
        "auto_submitted" => "自動送信 (Auto-Submitted)",
        "mailing_list" => "メーリングリスト",
        "precedence" => "一括配信 (Precedence)",
        "auto_response_suppress" => "自動応答抑止 (X-Auto-Response-Suppress)",
        "vendor_auto_reply" => "自動返信",
        "no_reply_address" => "返信不可アドレス (no-reply)",
        "from_notify_address" => "スタッフ通知アドレスから",
        "unknown" => "理由の記録なし",
        other => return other.to_string(),
    };
    label.to_string()
}

/// The stable code of a stored reason: `code: description` → `code`. Anything that is not a
/// plain code (older rows, hand edits) is `other` rather than free text.
pub fn reason_code(reason: Option<&str>) -> String {
    let Some(reason) = reason else {
        return "unknown".into();
    };
    let code = reason.split(':').next().unwrap_or("").trim();
    let plain = !code.is_empty()
        && code.len() <= 40
        && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
    if plain { code.into() } else { "other".into() }
}

/// First-response buckets: upper bounds in business minutes (inclusive), with names and labels.
const BUCKETS: [(i64, &str, &str); 5] = [
    (60, "le_60", "1時間以内"),
    (240, "le_240", "1〜4時間"),
    (480, "le_480", "4〜8時間"),
    (960, "le_960", "8〜16時間"),
    (2400, "le_2400", "16〜40時間"),
];

/// The nearest-rank percentile `p` (0 < p ≤ 100) of sorted `values`.
fn percentile(sorted: &[i64], p: u64) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let n = sorted.len() as u64;
    let rank = (p * n).div_ceil(100).clamp(1, n);
    sorted.get(rank as usize - 1).copied()
}

/// The figures of `month` in `tz` from `rows`.
pub fn compute(month: Month, tz: Tz, rows: &Rows) -> Report {
    let tickets: Vec<&TicketRow> = rows
        .tickets
        .iter()
        .filter(|t| month.holds(t.accepted_at, tz))
        .collect();
    Report {
        month: month.code(),
        timezone: tz.name().to_string(),
        first_day: month.first_day(),
        last_day: month.last_day(),
        tickets: ticket_figures(&tickets, rows),
        first_response: first_response(&tickets),
        license_keys: license_keys(month, tz, &rows.applications),
        withheld: withheld(month, tz, &rows.withheld),
        reminders: reminders(month, tz, rows),
    }
}

fn ticket_figures(tickets: &[&TicketRow], rows: &Rows) -> Tickets {
    let by_category = Category::ALL
        .into_iter()
        .map(|c| CategoryCount {
            category: c.code(),
            rule: category_rule(c),
            label: c.label_ja(),
            count: tickets
                .iter()
                .filter(|t| Category::from_code(&t.category).unwrap_or(Category::Other) == c)
                .count() as u64,
        })
        .collect();
    let mut per_contract: BTreeMap<Option<&str>, u64> = BTreeMap::new();
    for t in tickets {
        *per_contract.entry(t.contract_id.as_deref()).or_default() += 1;
    }
    let mut by_contract: Vec<ContractCount> = per_contract
        .into_iter()
        .map(|(id, count)| ContractCount {
            contract_id: id.map(str::to_string),
            customer: id.and_then(|id| rows.customers.get(id).cloned()),
            count,
        })
        .collect();
    // Most first; ties by id, tickets tied to no contract last.
    by_contract.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| a.contract_id.is_none().cmp(&b.contract_id.is_none()))
            .then_with(|| a.contract_id.cmp(&b.contract_id))
    });
    Tickets {
        total: tickets.len() as u64,
        by_category,
        by_contract,
    }
}

fn first_response(tickets: &[&TicketRow]) -> FirstResponse {
    let mut minutes: Vec<i64> = tickets
        .iter()
        .filter_map(|t| t.first_response_minutes)
        .map(|m| m.max(0))
        .collect();
    minutes.sort_unstable();
    let mut distribution: Vec<Bucket> = Vec::new();
    let mut lower = -1;
    for (upper, name, label) in BUCKETS {
        distribution.push(Bucket {
            bucket: name.into(),
            label: label.into(),
            up_to_minutes: Some(upper),
            count: minutes
                .iter()
                .filter(|m| **m > lower && **m <= upper)
                .count() as u64,
        });
        lower = upper;
    }
    distribution.push(Bucket {
        bucket: format!("gt_{lower}"),
        label: "40時間超".into(),
        up_to_minutes: None,
        count: minutes.iter().filter(|m| **m > lower).count() as u64,
    });
    FirstResponse {
        answered: minutes.len() as u64,
        unanswered: (tickets.len() - minutes.len()) as u64,
        median_minutes: percentile(&minutes, 50),
        p90_minutes: percentile(&minutes, 90),
        distribution,
    }
}

fn license_keys(month: Month, tz: Tz, applications: &[ApplicationRow]) -> LicenseKeys {
    let mut k = LicenseKeys {
        due: 0,
        on_time: 0,
        late: 0,
        unsent: 0,
        refused: 0,
        on_time_percent: None,
    };
    for a in applications {
        let Some(due) = a.due.filter(|d| month.contains(*d)) else {
            continue;
        };
        if a.state == "refused" {
            k.refused += 1;
            continue;
        }
        k.due += 1;
        match a.sent_at.map(|s| s.with_timezone(&tz).date_naive()) {
            Some(day) if day <= due => k.on_time += 1,
            Some(_) => k.late += 1,
            None => k.unsent += 1,
        }
    }
    if k.due > 0 {
        let percent = k.on_time as f64 * 100.0 / k.due as f64;
        k.on_time_percent = Some((percent * 10.0).round() / 10.0);
    }
    k
}

fn withheld(month: Month, tz: Tz, rows: &[WithheldRow]) -> Withheld {
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut total = 0;
    for row in rows.iter().filter(|r| month.holds(r.received_at, tz)) {
        *counts
            .entry(reason_code(row.reason.as_deref()))
            .or_default() += 1;
        total += 1;
    }
    let mut by_reason: Vec<ReasonCount> = counts
        .into_iter()
        .map(|(reason, count)| ReasonCount {
            label: reason_label(&reason),
            reason,
            count,
        })
        .collect();
    by_reason.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.reason.cmp(&b.reason)));
    Withheld { total, by_reason }
}

fn reminders(month: Month, tz: Tz, rows: &Rows) -> Reminders {
    let mut of_month: Vec<&ReminderRow> = rows
        .reminders
        .iter()
        .filter(|r| month.holds(r.queued_at, tz))
        .collect();
    of_month.sort_by_key(|r| r.queued_at);
    let by_kind = REMINDER_KINDS
        .iter()
        .map(|(kind, label)| {
            let of_kind = of_month.iter().filter(|r| r.kind == *kind);
            KindCount {
                kind,
                label,
                queued: of_kind.clone().count() as u64,
                sent: of_kind.filter(|r| r.sent).count() as u64,
            }
        })
        .collect();
    let mut contracts: BTreeMap<&str, RemindedContract> = BTreeMap::new();
    for r in &of_month {
        let Some(id) = r
            .contract_id
            .as_deref()
            .filter(|_| CONTRACT_KINDS.contains(&r.kind.as_str()))
        else {
            continue;
        };
        let day = r.queued_at.with_timezone(&tz).date_naive();
        let entry = contracts.entry(id).or_insert_with(|| RemindedContract {
            contract_id: id.to_string(),
            customer: rows.customers.get(id).cloned(),
            kinds: Vec::new(),
            first_reminded: day,
            renewed_on: None,
        });
        entry.kinds.push(r.kind.clone());
    }
    let renewal_kinds: BTreeSet<&str> = ["renewal", "recontinuation"].into();
    for c in contracts.values_mut() {
        c.renewed_on = rows
            .orders
            .iter()
            .filter(|o| o.contract_id == c.contract_id && renewal_kinds.contains(o.kind.as_str()))
            .map(|o| o.received)
            .filter(|d| *d >= c.first_reminded)
            .min();
    }
    let contracts: Vec<RemindedContract> = contracts.into_values().collect();
    Reminders {
        by_kind,
        contracts_reminded: contracts.len() as u64,
        renewed: contracts.iter().filter(|c| c.renewed_on.is_some()).count() as u64,
        contracts,
    }
}
