//! Tickets: numbers and tags, Message-IDs, states, who may write to a ticket, entitlement.
//! The decision one message leads to is `core::decide`.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use super::classify::Category;
use super::contract::{
    Contract, ContractPeriods, CoverageStatus, Order, OrderError, RenewalKind, SupportPeriod,
    periods_from_orders, renewal, status_on,
};

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

/// The Message-ID of a desk mail about no ticket (a renewal reminder, the digest):
/// `neo-ds.mail.<token>@domain`, which names no ticket.
pub fn desk_message_id(prefix: &str, token: u128, domain: &str) -> String {
    format!("{}.mail.{token:032x}@{domain}", prefix.to_ascii_lowercase())
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
    /// Staff answered; waiting for the customer. A customer's follow-up opens it again.
    Pending,
    Closed,
}

impl TicketState {
    pub fn code(self) -> &'static str {
        match self {
            TicketState::WaitingAcceptance => "waiting_acceptance",
            TicketState::Open => "open",
            TicketState::Pending => "pending",
            TicketState::Closed => "closed",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        match code {
            "waiting_acceptance" => Some(TicketState::WaitingAcceptance),
            "open" => Some(TicketState::Open),
            "pending" => Some(TicketState::Pending),
            "closed" => Some(TicketState::Closed),
            _ => None,
        }
    }

    /// The state as staff read it in notifications.
    pub fn label_ja(self) -> &'static str {
        match self {
            TicketState::WaitingAcceptance => "受付待ち（受付時間外）",
            TicketState::Open => "対応中",
            TicketState::Pending => "お客様の返答待ち",
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
    pub contract_id: Option<String>,
    /// The address the ticket's customer wrote from (or the form's address).
    pub customer_address: String,
    /// When staff first answered the customer, if they have.
    pub first_response_at: Option<DateTime<Utc>>,
}

/// Whether mail from `from` that names `ticket` (found `by` some reference) is admitted to it.
/// A Message-ID of ours proves the sender received our mail; any weaker reference (an earlier
/// Message-ID of the thread, the subject tag) counts only from a participant: the ticket's
/// customer, a registered contact of its contract, or staff. A tag alone from anyone else
/// must not hijack a ticket (invariant 6).
pub fn admits(
    ticket: &TicketFacts,
    by: ThreadedBy,
    from: Option<&str>,
    contract: Option<&ContractFacts>,
    staff: &[String],
) -> bool {
    if by == ThreadedBy::OurMessageId {
        return true;
    }
    let Some(from) = from.map(str::trim).filter(|f| !f.is_empty()) else {
        return false;
    };
    ticket.customer_address.eq_ignore_ascii_case(from)
        || contract.is_some_and(|c| {
            c.contract_id.as_str() == ticket.contract_id.as_deref().unwrap_or("")
                && c.is_contact(from)
        })
        || staff.iter().any(|s| s.eq_ignore_ascii_case(from))
}

/// What an article on a ticket is, as `tickets show` lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ArticleKind {
    /// Mail from the customer (or anyone writing to the ticket who is not staff).
    Customer,
    /// Mail from a staff address that was not a relayed reply or a note (commands only,
    /// refused, or not authenticated).
    Staff,
    /// A staff member's reply as the customer received it.
    StaffReply,
    /// An internal note (`#note`): never sent to the customer.
    Note,
    /// The desk's automatic reply to the customer.
    AutoReply,
    /// A notification to staff.
    Notice,
}

impl ArticleKind {
    pub fn code(self) -> &'static str {
        match self {
            ArticleKind::Customer => "customer",
            ArticleKind::Staff => "staff",
            ArticleKind::StaffReply => "staff_reply",
            ArticleKind::Note => "note",
            ArticleKind::AutoReply => "auto_reply",
            ArticleKind::Notice => "notice",
        }
    }
}

/// What became of a message (invariant 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Article,
    Recorded,
    Quarantined,
    Duplicate,
}

impl Verdict {
    pub fn code(self) -> &'static str {
        match self {
            Verdict::Article => "article",
            Verdict::Recorded => "recorded",
            Verdict::Quarantined => "quarantined",
            Verdict::Duplicate => "duplicate",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        match code {
            "article" => Some(Verdict::Article),
            "recorded" => Some(Verdict::Recorded),
            "quarantined" => Some(Verdict::Quarantined),
            "duplicate" => Some(Verdict::Duplicate),
            _ => None,
        }
    }
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

/// A contract as the decision needs it: the registered record, and its support periods as
/// computed from its orders (invariant 7), or why they cannot be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContractFacts {
    pub contract: Contract,
    pub periods: Result<ContractPeriods, OrderError>,
}

/// The record's fields read through (`facts.contract_id`): the facts are the contract.
impl std::ops::Deref for ContractFacts {
    type Target = Contract;
    fn deref(&self) -> &Contract {
        &self.contract
    }
}

impl ContractFacts {
    /// The contract with the periods its orders give (R9–R12).
    pub fn from_orders(contract: Contract, orders: &[Order]) -> Self {
        Self {
            periods: periods_from_orders(orders),
            contract,
        }
    }

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

impl MatchedBy {
    pub fn code(self) -> &'static str {
        match self {
            MatchedBy::Contact => "contact",
            MatchedBy::CustomerNumber => "customer_number",
            MatchedBy::LicenseSerial => "license_serial",
            MatchedBy::Domain => "domain",
        }
    }
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
    let Ok(periods) = &contract.periods else {
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
    /// A license application without a key: what is missing (registered contacts only).
    LicenseRefused,
    /// A license application made before: no second key.
    LicenseRepeated,
}

impl ReplyKind {
    pub fn code(self) -> &'static str {
        match self {
            ReplyKind::Acknowledgement => "acknowledgement",
            ReplyKind::Expired => "expired",
            ReplyKind::Unmatched => "unmatched",
            ReplyKind::OutOfScope => "out_of_scope",
            ReplyKind::LicenseRefused => "license_refused",
            ReplyKind::LicenseRepeated => "license_repeated",
        }
    }

    /// The reply as staff read it in notifications.
    pub fn label_ja(self) -> &'static str {
        match self {
            ReplyKind::Acknowledgement => "受付のお知らせ",
            ReplyKind::Expired => "サポート期間終了のご案内",
            ReplyKind::Unmatched => "お客様番号確認のお願い",
            ReplyKind::OutOfScope => "サポート対象外のご案内",
            ReplyKind::LicenseRefused => "ライセンスキーを発行できない旨のご案内",
            ReplyKind::LicenseRepeated => "申請受付済みのご案内",
        }
    }
}
