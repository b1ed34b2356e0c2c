//! License key applications (R2, R7, R8), decided: what an application asks for, whether it is
//! eligible for a key, when the key goes out, and what the desk says about it. Pure: the
//! register, the calendar and the times are inputs. Issuing (signing) and sending are the
//! shell's (`src/license/`, `desk::license`).
//!
//! An application is eligible when all of these hold (issue 10):
//! - the customer number and the license serial name the **same** contract;
//! - the applicant (the form's メールアドレス, else the sender) is a registered contact of it;
//! - the contract is covered on the arrival date (R9–R12);
//! - the reason is a change of server (R2);
//! - a new server identifier is given and differs from the registered one.
//!
//! The key goes out at `max(accepted_at, first opening of the due date)` (R8): at once for an
//! application accepted on a business day by 17:00:00, at the opening of the next business day
//! otherwise; `early` sends it as soon as it is eligible.

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use serde::Serialize;

use super::calendar::BusinessCalendar;
use super::classify::Category;
use super::form::{FormField, fold_width};
use super::inbound::{FormKind, InboundMail};
use super::matching::{ContractBook, normalize_token};
use super::ticket::{ContractFacts, Entitlement, entitlement};

pub mod letters;

/// An earlier application for the same contract, serial and new server within this many days
/// is the same application: the applicant is told about it, no second key is made.
pub const SAME_APPLICATION_DAYS: i64 = 30;

/// What an application asks for, as written (nothing checked yet).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Application {
    pub customer_number: Option<String>,
    pub license_serial: Option<String>,
    pub reason: Option<String>,
    pub new_server_id: Option<String>,
    /// Whom the key would go to: the form's address, else the sender (lowercased).
    pub applicant: Option<String>,
}

impl Application {
    /// The application a message makes: a license application form (R7), or a mail
    /// classified as a license reissue (R2) with `label: value` lines. `None` for anything
    /// else.
    pub fn read(mail: &InboundMail, category: Category) -> Option<Application> {
        if let Some(form) = &mail.form {
            if form.kind != FormKind::LicenseApplication && category != Category::LicenseReissue {
                return None;
            }
            let get = |field| {
                form.get(field)
                    .map(|v| v.trim().to_string())
                    .filter(|v| !v.is_empty())
            };
            return Some(Application {
                customer_number: get(FormField::CustomerNumber),
                license_serial: get(FormField::LicenseSerial),
                reason: get(FormField::Reason),
                new_server_id: get(FormField::NewServerId),
                applicant: mail.form_address(),
            });
        }
        if category != Category::LicenseReissue {
            return None;
        }
        let mut app = Application {
            applicant: mail.from.as_ref().map(|m| m.address.to_ascii_lowercase()),
            ..Application::default()
        };
        for line in mail
            .text
            .lines()
            .filter(|l| !l.trim_start().starts_with('>'))
        {
            let Some((field, value)) = labelled(line) else {
                continue;
            };
            let slot = match field {
                FormField::CustomerNumber => &mut app.customer_number,
                FormField::LicenseSerial => &mut app.license_serial,
                FormField::Reason => &mut app.reason,
                FormField::NewServerId => &mut app.new_server_id,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(value);
            }
        }
        if app.reason.is_none() && mentions_server_change(&mail.text) {
            // A plain mail says why in its own words.
            app.reason = Some(first_line_with_server(&mail.text));
        }
        Some(app)
    }
}

/// `ライセンス番号：X`, `【新サーバー識別子】Y`, `お客様番号: Z` in a plain mail.
fn labelled(line: &str) -> Option<(FormField, String)> {
    let folded: String = line
        .trim()
        .chars()
        .map(fold_width)
        .filter(|c| !c.is_whitespace())
        .collect();
    let folded = folded.trim_start_matches(['【', '[', '■', '・', '*', '-']);
    const LABELS: [(&str, FormField); 12] = [
        ("お客様番号", FormField::CustomerNumber),
        ("顧客番号", FormField::CustomerNumber),
        ("ライセンス番号", FormField::LicenseSerial),
        ("ライセンスシリアル", FormField::LicenseSerial),
        ("シリアル番号", FormField::LicenseSerial),
        ("シリアル", FormField::LicenseSerial),
        ("新サーバー識別子", FormField::NewServerId),
        ("新サーバ識別子", FormField::NewServerId),
        ("新サーバーID", FormField::NewServerId),
        ("新サーバID", FormField::NewServerId),
        ("申請理由", FormField::Reason),
        ("理由", FormField::Reason),
    ];
    for (label, field) in LABELS {
        let Some(rest) = folded.strip_prefix(label) else {
            continue;
        };
        let Some(value) = rest
            .strip_prefix(['】', ']', ':', '：'])
            .or_else(|| rest.strip_prefix("】:"))
        else {
            continue;
        };
        let value = value.trim_start_matches([':', '：']).trim();
        if value.is_empty() {
            return None;
        }
        return Some((field, value.chars().take(200).collect()));
    }
    None
}

/// Whether `text` gives a change of server as the reason (R2).
pub fn mentions_server_change(text: &str) -> bool {
    let folded: String = text
        .chars()
        .map(fold_width)
        .collect::<String>()
        .to_lowercase();
    let server = ["サーバー", "サーバ", "server", "機器", "ハードウェア", "hw"];
    let change = [
        "変更",
        "移行",
        "入替",
        "入れ替",
        "交換",
        "リプレース",
        "移設",
        "更改",
        "故障",
        "新しい",
        "新サーバ",
        "change",
        "migrat",
        "replac",
        "move",
        "new",
    ];
    server.iter().any(|s| folded.contains(s)) && change.iter().any(|c| folded.contains(c))
}

fn first_line_with_server(text: &str) -> String {
    text.lines()
        .find(|l| mentions_server_change(l))
        .unwrap_or("")
        .trim()
        .chars()
        .take(200)
        .collect()
}

/// Why an application gets no key. The labels are what the applicant is told (polite
/// Japanese) and what staff see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "code")]
pub enum Shortfall {
    NoCustomerNumber,
    UnknownCustomerNumber,
    NoLicenseSerial,
    UnknownLicenseSerial,
    /// The serial belongs to another contract than the customer number.
    SerialOfAnotherContract,
    /// The applicant's address is not a registered contact of the contract.
    NotRegisteredContact,
    /// The contract is not covered on the arrival date.
    NotCovered,
    /// No reason given, or not a change of server (R2).
    NotServerChange,
    NoNewServerId,
    /// The new server id is not one: longer than [`SERVER_ID_MAX`] characters, or with spaces
    /// or control characters.
    BadNewServerId,
    /// The new server id is the one already registered.
    SameServer,
}

/// The longest server identifier a key is made for (it becomes a claim and a line of mail).
pub const SERVER_ID_MAX: usize = 64;

/// Whether `id` can be a server identifier: 1 to [`SERVER_ID_MAX`] characters, no spaces, no
/// control characters.
pub fn plausible_server_id(id: &str) -> bool {
    let id = id.trim();
    let n = id.chars().count();
    (1..=SERVER_ID_MAX).contains(&n) && !id.chars().any(|c| c.is_whitespace() || c.is_control())
}

impl Shortfall {
    pub fn code(&self) -> &'static str {
        match self {
            Shortfall::NoCustomerNumber => "no_customer_number",
            Shortfall::UnknownCustomerNumber => "unknown_customer_number",
            Shortfall::NoLicenseSerial => "no_license_serial",
            Shortfall::UnknownLicenseSerial => "unknown_license_serial",
            Shortfall::SerialOfAnotherContract => "serial_of_another_contract",
            Shortfall::NotRegisteredContact => "not_registered_contact",
            Shortfall::NotCovered => "not_covered",
            Shortfall::NotServerChange => "not_server_change",
            Shortfall::NoNewServerId => "no_new_server_id",
            Shortfall::BadNewServerId => "bad_new_server_id",
            Shortfall::SameServer => "same_server",
        }
    }

    /// What the applicant is told is missing.
    pub fn label_ja(&self) -> &'static str {
        match self {
            Shortfall::NoCustomerNumber => "お客様番号のご記入がありません。",
            Shortfall::UnknownCustomerNumber => "ご記入のお客様番号が確認できませんでした。",
            Shortfall::NoLicenseSerial => "ライセンス番号のご記入がありません。",
            Shortfall::UnknownLicenseSerial => "ご記入のライセンス番号が確認できませんでした。",
            Shortfall::SerialOfAnotherContract => {
                "ご記入のライセンス番号が、お客様番号のご契約のものではありません。"
            }
            Shortfall::NotRegisteredContact => {
                "お申込みのメールアドレスが、ご契約のご登録担当者様のアドレスではありません。"
            }
            Shortfall::NotCovered => "お申込み日に年間サポートの期間外です。",
            Shortfall::NotServerChange => {
                "ライセンスキーの再発行は、サーバー変更の場合に承っております。申請理由をご確認ください。"
            }
            Shortfall::NoNewServerId => "新サーバー識別子のご記入がありません。",
            Shortfall::BadNewServerId => {
                "ご記入の新サーバー識別子の形式が正しくありません（空白を含まない64文字以内）。"
            }
            Shortfall::SameServer => {
                "ご記入の新サーバー識別子が、現在ご登録のサーバー識別子と同じです。"
            }
        }
    }
}

/// An eligible application: what the key is made for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Eligible {
    pub contract_id: String,
    pub license_serial: String,
    pub server_id: String,
    /// The server registered until now (may be empty: not known).
    pub previous_server_id: String,
    pub applicant: String,
}

/// The contract an application is about, as far as it can be told: the customer number's,
/// else the serial's.
pub fn named_contract<'b>(app: &Application, book: &'b ContractBook) -> Option<&'b ContractFacts> {
    app.customer_number
        .as_deref()
        .and_then(|n| book.get(n))
        .or_else(|| {
            app.license_serial
                .as_deref()
                .and_then(|s| book.by_serial(s))
        })
}

/// Whether `app`, arriving on `date` (the desk's calendar date), gets a key.
pub fn eligibility(
    app: &Application,
    book: &ContractBook,
    date: NaiveDate,
) -> Result<Eligible, Vec<Shortfall>> {
    let mut short = Vec::new();
    let by_number = app.customer_number.as_deref().and_then(|n| book.get(n));
    let by_serial = app
        .license_serial
        .as_deref()
        .and_then(|s| book.by_serial(s));
    match (&app.customer_number, by_number) {
        (None, _) => short.push(Shortfall::NoCustomerNumber),
        (Some(_), None) => short.push(Shortfall::UnknownCustomerNumber),
        _ => {}
    }
    match (&app.license_serial, by_serial) {
        (None, _) => short.push(Shortfall::NoLicenseSerial),
        (Some(_), None) => short.push(Shortfall::UnknownLicenseSerial),
        _ => {}
    }
    let contract = match (by_number, by_serial) {
        (Some(a), Some(b)) if a.contract_id != b.contract_id => {
            short.push(Shortfall::SerialOfAnotherContract);
            None
        }
        (a, b) => a.or(b),
    };
    if let Some(contract) = contract {
        let registered = app
            .applicant
            .as_deref()
            .is_some_and(|a| contract.is_contact(a));
        if !registered {
            short.push(Shortfall::NotRegisteredContact);
        }
        if !matches!(
            entitlement(Some(contract), Category::LicenseReissue, date),
            Entitlement::Covered { .. }
        ) {
            short.push(Shortfall::NotCovered);
        }
    }
    if !app.reason.as_deref().is_some_and(mentions_server_change) {
        short.push(Shortfall::NotServerChange);
    }
    match (&app.new_server_id, contract) {
        (None, _) => short.push(Shortfall::NoNewServerId),
        (Some(new), _) if !plausible_server_id(new) => short.push(Shortfall::BadNewServerId),
        (Some(new), Some(c)) if same_server(new, &c.server_id) => {
            short.push(Shortfall::SameServer);
        }
        _ => {}
    }
    match (
        contract,
        &app.license_serial,
        &app.new_server_id,
        &app.applicant,
    ) {
        (Some(c), Some(_), Some(new), Some(applicant)) if short.is_empty() => Ok(Eligible {
            contract_id: c.contract_id.clone(),
            license_serial: c.license_serial.clone(),
            server_id: new.trim().to_string(),
            previous_server_id: c.server_id.clone(),
            applicant: applicant.clone(),
        }),
        _ => Err(short),
    }
}

/// Server ids compare as the customer types them: full-width folded, case and spaces ignored.
pub fn same_server(a: &str, b: &str) -> bool {
    !b.trim().is_empty() && normalize_token(a) == normalize_token(b)
}

/// When an eligible application's key goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Schedule {
    /// The business day the key is due (R8).
    pub due: NaiveDate,
    /// When the desk sends it (before any staff approval).
    pub send_at: DateTime<Utc>,
}

/// R8: due date `license_due(arrival)`; sent at `max(accepted_at, first opening of the due
/// date)`, or at arrival with `early`.
pub fn schedule(calendar: &BusinessCalendar, arrival: DateTime<Utc>, early: bool) -> Schedule {
    let due = calendar.license_due(arrival);
    let send_at = if early {
        arrival
    } else {
        let accepted = calendar.accepted_at(arrival).with_timezone(&Utc);
        accepted.max(opening(calendar, due))
    };
    Schedule { due, send_at }
}

/// The first opening of reception on or after the start of `date` (its 09:00 on a business
/// day).
pub fn opening(calendar: &BusinessCalendar, date: NaiveDate) -> DateTime<Utc> {
    let tz = calendar.timezone();
    let midnight = date
        .and_time(NaiveTime::MIN)
        .and_local_timezone(tz)
        .earliest()
        .map_or_else(
            || date.and_time(NaiveTime::MIN).and_utc(),
            |t| t.with_timezone(&Utc),
        );
    calendar.accepted_at(midnight).with_timezone(&Utc)
}

/// A moment on `date` in the desk's timezone (reminder and cutoff times).
pub fn at_on(calendar: &BusinessCalendar, date: NaiveDate, time: NaiveTime) -> DateTime<Utc> {
    let tz = calendar.timezone();
    date.and_time(time)
        .and_local_timezone(tz)
        .earliest()
        .map_or_else(|| date.and_time(time).and_utc(), |t| t.with_timezone(&Utc))
}

/// The application seen before for the same contract, serial and new server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EarlierApplication {
    pub ticket: u64,
    pub applied_at: DateTime<Utc>,
    pub due: NaiveDate,
    pub sent_at: Option<DateTime<Utc>>,
}

impl EarlierApplication {
    /// Whether an application arriving at `arrival` repeats this one.
    pub fn repeated_by(&self, arrival: DateTime<Utc>) -> bool {
        arrival - self.applied_at <= Duration::days(SAME_APPLICATION_DAYS)
    }
}

/// How the desk issues keys, as the decision needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LicensePolicy {
    /// Keys wait for a staff `#approve`.
    pub approval_by_staff: bool,
    pub early: bool,
    /// An issuer is configured (`[license]`); without one, staff issue keys by hand.
    pub issuer: bool,
}

/// What becomes of an application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "verdict")]
pub enum LicenseVerdict {
    Eligible {
        eligible: Eligible,
        schedule: Schedule,
        approval_by_staff: bool,
        /// An issuer is configured; without one a person issues the key.
        issuer: bool,
    },
    Refused {
        shortfalls: Vec<Shortfall>,
        /// The contract named, when one is (staff see it; the applicant only when registered).
        contract_id: Option<String>,
        /// Whether the applicant is a registered contact of that contract: only then are they
        /// told what is missing (invariant 6).
        applicant_registered: bool,
    },
    /// The same application was made before: no second key.
    Repeated {
        earlier: EarlierApplication,
        contract_id: String,
        applicant_registered: bool,
    },
}

impl LicenseVerdict {
    /// The due date the applicant may be told.
    pub fn due(&self) -> Option<NaiveDate> {
        match self {
            LicenseVerdict::Eligible { schedule, .. } => Some(schedule.due),
            LicenseVerdict::Repeated {
                earlier,
                applicant_registered: true,
                ..
            } if earlier.sent_at.is_none() => Some(earlier.due),
            _ => None,
        }
    }

    /// The state an application row starts in.
    pub fn initial_state(&self) -> ApplicationState {
        match self {
            LicenseVerdict::Eligible {
                approval_by_staff: true,
                ..
            } => ApplicationState::WaitingApproval,
            LicenseVerdict::Eligible { .. } => ApplicationState::Waiting,
            LicenseVerdict::Refused { .. } | LicenseVerdict::Repeated { .. } => {
                ApplicationState::Refused
            }
        }
    }
}

/// The decision on an application arriving at `arrival`.
pub fn judge(
    app: &Application,
    book: &ContractBook,
    calendar: &BusinessCalendar,
    arrival: DateTime<Utc>,
    earlier: Option<&EarlierApplication>,
    policy: LicensePolicy,
) -> LicenseVerdict {
    let date = arrival.with_timezone(&calendar.timezone()).date_naive();
    let named = named_contract(app, book);
    let applicant_registered = named
        .zip(app.applicant.as_deref())
        .is_some_and(|(c, a)| c.is_contact(a));
    if let Some(earlier) = earlier.filter(|e| e.repeated_by(arrival)) {
        return LicenseVerdict::Repeated {
            earlier: earlier.clone(),
            contract_id: named.map(|c| c.contract_id.clone()).unwrap_or_default(),
            applicant_registered,
        };
    }
    match eligibility(app, book, date) {
        Ok(eligible) => LicenseVerdict::Eligible {
            eligible,
            schedule: schedule(calendar, arrival, policy.early),
            approval_by_staff: policy.approval_by_staff,
            issuer: policy.issuer,
        },
        Err(shortfalls) => LicenseVerdict::Refused {
            shortfalls,
            contract_id: named.map(|c| c.contract_id.clone()),
            applicant_registered,
        },
    }
}

/// The states of an application (`licenses list --state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ApplicationState {
    /// Eligible; the key goes out at `send_at`.
    Waiting,
    /// Eligible; the key waits for a staff `#approve`.
    WaitingApproval,
    /// The key is made and its mail is in the outbox.
    Issued,
    /// The key mail went out.
    Sent,
    /// No key: the application fell short or repeated an earlier one.
    Refused,
}

impl ApplicationState {
    pub const ALL: [ApplicationState; 5] = [
        ApplicationState::Waiting,
        ApplicationState::WaitingApproval,
        ApplicationState::Issued,
        ApplicationState::Sent,
        ApplicationState::Refused,
    ];

    pub fn code(self) -> &'static str {
        match self {
            ApplicationState::Waiting => "waiting",
            ApplicationState::WaitingApproval => "waiting_approval",
            ApplicationState::Issued => "issued",
            ApplicationState::Sent => "sent",
            ApplicationState::Refused => "refused",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.code() == code)
    }

    pub fn label_ja(self) -> &'static str {
        match self {
            ApplicationState::Waiting => "発行待ち",
            ApplicationState::WaitingApproval => "承認待ち",
            ApplicationState::Issued => "発行済み（送信待ち）",
            ApplicationState::Sent => "送付済み",
            ApplicationState::Refused => "発行しない",
        }
    }
}

/// A notice staff are owed about an open application.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeDue {
    /// Due today, not approved, `remind_at` has come.
    ApprovalReminder,
    /// The cutoff of its due date passed without the key sent (R8 missed).
    Missed,
}

/// Which notice, if any, an open application (`state`, due `due`, notices so far) is owed
/// at `now`. Each is owed once; a reminder is not sent after the cutoff (the escalation is).
pub fn notice_due(
    calendar: &BusinessCalendar,
    state: ApplicationState,
    due: NaiveDate,
    (reminded, escalated): (bool, bool),
    remind_at: NaiveTime,
    now: DateTime<Utc>,
) -> Option<NoticeDue> {
    let cutoff_at = at_on(calendar, due, calendar.spec().license_cutoff);
    let open = matches!(
        state,
        ApplicationState::Waiting | ApplicationState::WaitingApproval | ApplicationState::Issued
    );
    if open && !escalated && now >= cutoff_at {
        return Some(NoticeDue::Missed);
    }
    let remind = at_on(calendar, due, remind_at);
    (state == ApplicationState::WaitingApproval && !reminded && now >= remind && now < cutoff_at)
        .then_some(NoticeDue::ApprovalReminder)
}

/// The next moment after `now` a notice falls due for this application (the daemon wakes
/// for it).
pub fn next_notice_at(
    calendar: &BusinessCalendar,
    state: ApplicationState,
    due: NaiveDate,
    (reminded, escalated): (bool, bool),
    remind_at: NaiveTime,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let cutoff_at = at_on(calendar, due, calendar.spec().license_cutoff);
    let remind = at_on(calendar, due, remind_at);
    let mut moments = Vec::new();
    if state == ApplicationState::WaitingApproval && !reminded {
        moments.push(remind);
    }
    if !escalated {
        moments.push(cutoff_at);
    }
    moments.into_iter().filter(|t| *t > now).min()
}

#[cfg(test)]
mod tests;
