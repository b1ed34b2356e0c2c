//! Tickets: numbers and tags, threading, entitlement, and the decision one incoming message
//! leads to. Pure: the shell looks up the candidate ticket and contract, passes them in with the
//! arrival time and `now`, and executes the returned decision in one transaction.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use super::address::Address;
use super::calendar::BusinessCalendar;
use super::classify::Category;
use super::contract::{
    ContractPeriods, CoverageStatus, RenewalKind, SupportPeriod, renewal, status_on,
};
use super::form::FormField;
use super::guard::{Guard, NoReplyReason};
use super::inbound::InboundMail;

/// The ticket tag every subject the desk sends carries: `[NEO-DS#000123]`.
pub fn tag(prefix: &str, number: u64) -> String {
    format!("[{prefix}#{number:06}]")
}

/// The ticket number of the first `[PREFIX#digits]` tag in a subject (prefix compared without
/// regard to case, as mail clients and people retype it).
pub fn find_tag(subject: &str, prefix: &str) -> Option<u64> {
    let lower = subject.to_ascii_lowercase();
    let needle = format!("[{}#", prefix.to_ascii_lowercase());
    let mut from = 0;
    while let Some(pos) = lower[from..].find(&needle) {
        let start = from + pos + needle.len();
        let digits: String = lower[start..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        if !digits.is_empty() && lower[start + digits.len()..].starts_with(']') {
            return digits.parse().ok();
        }
        from = start;
    }
    None
}

/// A Message-ID for mail the desk sends about a ticket. The random `token` (from the shell)
/// makes it unguessable, so knowing it proves the sender received our mail.
pub fn message_id(prefix: &str, number: u64, token: u128, domain: &str) -> String {
    format!(
        "{}.{number:06}.{token:032x}@{domain}",
        prefix.to_ascii_lowercase()
    )
}

/// The ticket number a desk-made Message-ID names, when it is one of ours.
pub fn ticket_in_message_id(id: &str, prefix: &str, domain: &str) -> Option<u64> {
    let (local, host) = id.rsplit_once('@')?;
    if !host.eq_ignore_ascii_case(domain) {
        return None;
    }
    let rest = local.strip_prefix(&format!("{}.", prefix.to_ascii_lowercase()))?;
    let (number, token) = rest.split_once('.')?;
    // 32 hex digits (128 random bits); 16 from versions before the token came from the OS.
    if !matches!(token.len(), 16 | 32) || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    number.parse().ok()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketState {
    /// Received outside reception hours; accepted at the next opening (R5).
    WaitingAcceptance,
    Open,
    Closed,
}

impl TicketState {
    pub fn code(self) -> &'static str {
        match self {
            TicketState::WaitingAcceptance => "waiting_acceptance",
            TicketState::Open => "open",
            TicketState::Closed => "closed",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        match code {
            "waiting_acceptance" => Some(TicketState::WaitingAcceptance),
            "open" => Some(TicketState::Open),
            "closed" => Some(TicketState::Closed),
            _ => None,
        }
    }

    /// The state as staff read it in notifications.
    pub fn label_ja(self) -> &'static str {
        match self {
            TicketState::WaitingAcceptance => "受付待ち（受付時間外）",
            TicketState::Open => "対応中",
            TicketState::Closed => "完了",
        }
    }

    /// The state a ticket accepted at `accepted_at` is in at `now`.
    pub fn on_acceptance(accepted_at: DateTime<Utc>, now: DateTime<Utc>) -> Self {
        if accepted_at > now {
            TicketState::WaitingAcceptance
        } else {
            TicketState::Open
        }
    }
}

/// What the desk needs to know about a ticket a message may belong to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketFacts {
    pub number: u64,
    pub state: TicketState,
    pub accepted_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    /// Addresses that may write to the ticket: the customer, the contract's registered
    /// contacts; staff are added by the caller.
    pub participants: Vec<String>,
}

/// How a message was tied to an existing ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ThreadedBy {
    /// In-Reply-To/References name a Message-ID the desk sent for the ticket.
    OurMessageId,
    /// In-Reply-To/References name an earlier message of the ticket, and the sender is a
    /// participant.
    KnownMessageId,
    /// The subject tag, and the sender is a participant.
    SubjectTag,
}

/// A contract as the decision needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContractFacts {
    pub contract_id: String,
    pub customer: String,
    pub license_serial: String,
    pub contacts: Vec<String>,
    pub domains: Vec<String>,
    pub neo_support: bool,
    pub periods: Option<ContractPeriods>,
}

impl ContractFacts {
    /// Whether `address` is one of the contract's registered contacts.
    pub fn is_contact(&self, address: &str) -> bool {
        self.contacts
            .iter()
            .any(|c| c.eq_ignore_ascii_case(address.trim()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchedBy {
    /// The sender (or the form's address) is a registered contact.
    Contact,
    CustomerNumber,
    LicenseSerial,
    Domain,
}

/// Whether the request is entitled to support on its arrival date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Entitlement {
    Covered {
        period: SupportPeriod,
    },
    /// No period covers the date; `next` says what must be ordered now (R10/R11).
    Expired {
        last_end: NaiveDate,
        next: RenewalKind,
        next_period: SupportPeriod,
    },
    /// Support has not started yet (or resumes later).
    NotYetCovered {
        starts: NaiveDate,
    },
    /// No contract could be found; staff must identify it.
    Unmatched,
    /// A desknet's NEO (base product) question from a contract without NEO support (R3).
    OutOfScope,
    /// The contract has no usable order history; staff must check it.
    Unknown {
        problem: ContractProblem,
    },
}

/// Why a matched contract's entitlement cannot be told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ContractProblem {
    /// The orders contradict the rules (R9–R11) and no period could be computed.
    NoValidOrders,
    /// The contract has no orders at all.
    NoPeriods,
}

impl ContractProblem {
    pub fn label_ja(self) -> &'static str {
        match self {
            ContractProblem::NoValidOrders => "契約の注文履歴から期間を計算できません",
            ContractProblem::NoPeriods => "契約にサポート期間がありません",
        }
    }
}

impl Entitlement {
    pub fn code(&self) -> &'static str {
        match self {
            Entitlement::Covered { .. } => "covered",
            Entitlement::Expired { .. } => "expired",
            Entitlement::NotYetCovered { .. } => "not_yet_covered",
            Entitlement::Unmatched => "unmatched",
            Entitlement::OutOfScope => "out_of_scope",
            Entitlement::Unknown { .. } => "unknown",
        }
    }
}

/// R1–R3, R9–R11: what a request about `category` from `contract` arriving on `date` is owed.
pub fn entitlement(
    contract: Option<&ContractFacts>,
    category: Category,
    date: NaiveDate,
) -> Entitlement {
    let Some(contract) = contract else {
        return Entitlement::Unmatched;
    };
    if category == Category::BaseProduct && !contract.neo_support {
        return Entitlement::OutOfScope;
    }
    let Some(periods) = &contract.periods else {
        return Entitlement::Unknown {
            problem: ContractProblem::NoValidOrders,
        };
    };
    match status_on(periods, date) {
        CoverageStatus::Covered { period } => Entitlement::Covered { period },
        CoverageStatus::NotYetCovered { starts } => Entitlement::NotYetCovered { starts },
        CoverageStatus::Lapsed { resumes, .. } => Entitlement::NotYetCovered { starts: resumes },
        CoverageStatus::Expired { last_end, .. } => {
            let next = renewal(last_end, date);
            Entitlement::Expired {
                last_end,
                next: next.kind,
                next_period: next.period,
            }
        }
        CoverageStatus::NoPeriods => Entitlement::Unknown {
            problem: ContractProblem::NoPeriods,
        },
    }
}

/// The automatic reply a new ticket gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplyKind {
    Acknowledgement,
    Expired,
    Unmatched,
    OutOfScope,
}

impl ReplyKind {
    pub fn code(self) -> &'static str {
        match self {
            ReplyKind::Acknowledgement => "acknowledgement",
            ReplyKind::Expired => "expired",
            ReplyKind::Unmatched => "unmatched",
            ReplyKind::OutOfScope => "out_of_scope",
        }
    }

    /// The reply as staff read it in notifications.
    pub fn label_ja(self) -> &'static str {
        match self {
            ReplyKind::Acknowledgement => "受付のお知らせ",
            ReplyKind::Expired => "サポート期間終了のご案内",
            ReplyKind::Unmatched => "お客様番号確認のお願い",
            ReplyKind::OutOfScope => "サポート対象外のご案内",
        }
    }
}

/// Desk settings the decision depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeskRules {
    pub desk_addresses: Vec<String>,
    pub staff: Vec<String>,
    /// Where staff notifications go (lowercased): mail from these is never a customer's.
    pub notify: Vec<String>,
    pub reopen_days: i64,
    pub auto_reply_limit_per_hour: u32,
    /// Staff notifications about one ticket in an hour, at most.
    pub notify_limit_per_ticket_hour: u32,
}

/// Everything the decision needs about one message; the shell gathers it.
#[derive(Debug, Clone)]
pub struct Intake<'a> {
    pub mail: &'a InboundMail,
    pub guard: &'a Guard,
    pub category: Category,
    /// Delivery time (Maildir file time, IMAP INTERNALDATE): business time starts here.
    pub received_at: DateTime<Utc>,
    pub now: DateTime<Utc>,
    /// The ticket the message refers to, with how; `None` when it refers to none.
    pub thread: Option<(&'a TicketFacts, ThreadedBy)>,
    pub contract: Option<(&'a ContractFacts, MatchedBy)>,
    /// Where a reply would go, or why there is nowhere (see [`reply_address`]).
    pub reply_to: Result<String, NoReplyAddress>,
    /// Automatic replies sent to `reply_to` in the hour before `now`.
    pub recent_auto_replies: u32,
    /// Staff notifications queued for the threaded ticket in the hour before `now`.
    pub recent_ticket_notices: u32,
}

/// Why a new ticket's customer cannot be answered automatically.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NoReplyAddress {
    /// A web form without an e-mail address field (the form robot is not the customer).
    FormWithoutAddress,
    /// A web form whose e-mail field is not exactly one address.
    FormAddressUnusable(String),
    /// No From, Reply-To or form address that mail can be sent to.
    Unusable,
}

impl NoReplyAddress {
    pub fn label_ja(&self) -> String {
        match self {
            NoReplyAddress::FormWithoutAddress => {
                "フォームにメールアドレスの記入がありません".to_string()
            }
            NoReplyAddress::FormAddressUnusable(v) => format!(
                "フォームのメールアドレス欄が1件の有効なアドレスではありません: {}",
                super::reply::cut(v, 100, true)
            ),
            NoReplyAddress::Unusable => "返信できるメールアドレスがありません".to_string(),
        }
    }
}

/// Where an automatic reply to `mail` goes. A form's mail goes only to the address written in
/// the form, and only when it is exactly one address: never to the form robot that sent it.
/// Other mail goes to Reply-To, else From.
pub fn reply_address(mail: &InboundMail) -> Result<String, NoReplyAddress> {
    if let Some(form) = &mail.form {
        let Some(value) = form
            .get(FormField::Email)
            .map(str::trim)
            .filter(|v| !v.is_empty())
        else {
            return Err(NoReplyAddress::FormWithoutAddress);
        };
        return single_address(value)
            .ok_or_else(|| NoReplyAddress::FormAddressUnusable(value.to_string()));
    }
    mail.reply_to
        .as_ref()
        .and_then(|m| single_address(&m.address))
        .or_else(|| mail.from.as_ref().and_then(|m| single_address(&m.address)))
        .ok_or(NoReplyAddress::Unusable)
}

/// `value` as one plain `local@domain` address, lowercased; `None` for anything else (two
/// addresses, a display name, spaces, a domain without a dot).
pub fn single_address(value: &str) -> Option<String> {
    Address::parse(value).ok().map(Address::into_string)
}

/// The name a reply greets: the form's own 会社名 and ご担当者名 when the mail came through a
/// form; otherwise the registered company (only when the reply goes to a registered contact of
/// the matched contract, invariant 6) and the display name of the mailbox answered.
pub fn addressee(mail: &InboundMail, contract: Option<&ContractFacts>, to: &str) -> String {
    if let Some(form) = &mail.form {
        return [
            form.get(FormField::Company),
            form.get(FormField::ContactName),
        ]
        .into_iter()
        .flatten()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    }
    let display = [mail.reply_to.as_ref(), mail.from.as_ref()]
        .into_iter()
        .flatten()
        .find(|m| m.address.eq_ignore_ascii_case(to))
        .and_then(|m| m.name.as_deref())
        .map(str::trim)
        .unwrap_or("");
    let company = contract
        .filter(|c| c.is_contact(to))
        .map(|c| c.customer.trim())
        .unwrap_or("");
    [company, display]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewTicket {
    pub state: TicketState,
    pub category: Category,
    pub accepted_at: DateTime<Utc>,
    pub contract_id: Option<String>,
    pub matched_by: Option<MatchedBy>,
    pub entitlement: Entitlement,
    /// The automatic reply, and to whom; `None` with `reply_withheld` saying why.
    pub reply: Option<(ReplyKind, String)>,
    pub reply_withheld: Option<String>,
    /// Whom the reply greets (empty: 「お客様」).
    pub addressee: String,
    /// The closed ticket this one continues (a follow-up after the reopen window).
    pub continues: Option<u64>,
    /// License applications (R7/R8): the business date the key is due.
    pub license_due: Option<NaiveDate>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// A new ticket; staff are notified.
    NewTicket(NewTicket),
    /// An article on an existing ticket.
    FollowUp {
        ticket: u64,
        threaded_by: ThreadedBy,
        /// From a staff address. Staff mail is not authenticated yet, so it never changes the
        /// ticket: it is recorded and staff are told (a forged From proves nothing).
        from_staff: bool,
        /// The ticket was closed and is reopened into this state.
        reopen_as: Option<TicketState>,
        /// Staff are told, unless the ticket's notifications hit the hourly limit.
        notify_staff: bool,
    },
    /// Auto-generated mail or a bounce: recorded, never answered, never a ticket.
    Recorded {
        reason: NoReplyReason,
        ticket: Option<u64>,
    },
    /// Kept aside for a person, with the reason.
    Quarantine { reason: String },
}

/// The decision for one message. Never fails: every message ends as a ticket article, a
/// recorded automatic message, or a quarantined one (ARCHITECTURE.md, invariant 3).
pub fn decide(intake: &Intake<'_>, rules: &DeskRules, calendar: &BusinessCalendar) -> Decision {
    let mail = intake.mail;
    if let Guard::NoReply(NoReplyReason::NoFrom) = intake.guard {
        // Nobody to answer and nobody to attribute it to: a person looks at it.
        return Decision::Quarantine {
            reason: "no usable From address".into(),
        };
    }
    if let Guard::NoReply(reason) = intake.guard {
        // Our own mail coming back is a loop, not a customer; everything else automatic is
        // recorded (bounces are linked to the delivery they report on by the shell).
        return Decision::Recorded {
            reason: reason.clone(),
            ticket: intake.thread.map(|(t, _)| t.number),
        };
    }
    let Some(from) = &mail.from else {
        return Decision::Quarantine {
            reason: "no usable From address".into(),
        };
    };
    let is_in = |list: &[String]| list.iter().any(|a| a.eq_ignore_ascii_case(&from.address));
    let from_staff = is_in(&rules.staff);
    if !from_staff && is_in(&rules.notify) {
        // The notification address answering (an out-of-office, a list, a person) is never a
        // customer follow-up: that is how notification loops start.
        return Decision::Recorded {
            reason: NoReplyReason::FromNotifyAddress,
            ticket: intake.thread.map(|(t, _)| t.number),
        };
    }
    let notify_staff = intake.recent_ticket_notices < rules.notify_limit_per_ticket_hour;
    if let Some((ticket, threaded_by)) = intake.thread {
        if from_staff {
            return Decision::FollowUp {
                ticket: ticket.number,
                threaded_by,
                from_staff,
                reopen_as: None,
                notify_staff,
            };
        }
        if ticket.state != TicketState::Closed {
            return Decision::FollowUp {
                ticket: ticket.number,
                threaded_by,
                from_staff,
                reopen_as: None,
                notify_staff,
            };
        }
        let within = ticket.closed_at.is_some_and(|closed| {
            intake.received_at - closed <= chrono::Duration::days(rules.reopen_days)
        });
        if within {
            let accepted = calendar.accepted_at(intake.received_at).with_timezone(&Utc);
            return Decision::FollowUp {
                ticket: ticket.number,
                threaded_by,
                from_staff,
                reopen_as: Some(TicketState::on_acceptance(accepted, intake.now)),
                notify_staff,
            };
        }
        return Decision::NewTicket(new_ticket(intake, rules, calendar, Some(ticket.number)));
    }
    if from_staff {
        // Staff mail that names no ticket is not a customer request; a person decides.
        return Decision::Quarantine {
            reason: "mail from staff that refers to no ticket".into(),
        };
    }
    Decision::NewTicket(new_ticket(intake, rules, calendar, None))
}

fn new_ticket(
    intake: &Intake<'_>,
    rules: &DeskRules,
    calendar: &BusinessCalendar,
    continues: Option<u64>,
) -> NewTicket {
    let accepted_at = calendar.accepted_at(intake.received_at).with_timezone(&Utc);
    let local_date = intake
        .received_at
        .with_timezone(&calendar.timezone())
        .date_naive();
    let contract = intake.contract.map(|(c, _)| c);
    let entitlement = entitlement(contract, intake.category, local_date);
    let license_due = (intake.category == Category::LicenseReissue)
        .then(|| calendar.license_due(intake.received_at));
    let (reply, reply_withheld) = choose_reply(intake, rules, &entitlement);
    let addressee = reply
        .as_ref()
        .map(|(_, to)| addressee(intake.mail, contract, to))
        .unwrap_or_default();
    NewTicket {
        state: TicketState::on_acceptance(accepted_at, intake.now),
        category: intake.category,
        accepted_at,
        contract_id: contract.map(|c| c.contract_id.clone()),
        matched_by: intake.contract.map(|(_, how)| how),
        entitlement,
        reply,
        reply_withheld,
        addressee,
        continues,
        license_due,
    }
}

fn choose_reply(
    intake: &Intake<'_>,
    rules: &DeskRules,
    entitlement: &Entitlement,
) -> (Option<(ReplyKind, String)>, Option<String>) {
    let to = match &intake.reply_to {
        Ok(to) => to.clone(),
        Err(why) => return (None, Some(why.label_ja())),
    };
    if rules
        .desk_addresses
        .iter()
        .any(|d| d.eq_ignore_ascii_case(&to))
    {
        return (None, Some("返信先が窓口自身のアドレスです".into()));
    }
    if intake.recent_auto_replies >= rules.auto_reply_limit_per_hour {
        return (
            None,
            Some(format!(
                "{to} には直近1時間に自動応答を{}通送信済みです（上限 {}通）",
                intake.recent_auto_replies, rules.auto_reply_limit_per_hour
            )),
        );
    }
    // Contract details (expiry, scope) go only to a registered contact of that contract; anyone
    // else gets the plain acknowledgement and staff confirm the contract.
    let registered = intake.contract.is_some_and(|(c, _)| c.is_contact(&to));
    let kind = match entitlement {
        Entitlement::Unmatched => ReplyKind::Unmatched,
        Entitlement::Expired { .. } if registered => ReplyKind::Expired,
        Entitlement::OutOfScope if registered => ReplyKind::OutOfScope,
        _ => ReplyKind::Acknowledgement,
    };
    (Some((kind, to)), None)
}

#[cfg(test)]
mod tests;
