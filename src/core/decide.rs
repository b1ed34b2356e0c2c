//! The decision one incoming message leads to, as data. The shell gathers what the decision
//! needs (the message as read, the ticket it names, the contract it matches, recent counts),
//! calls [`decide`], and executes the returned [`Effect`]s in order inside one transaction.
//! Nothing here reads the clock, the store or the network: `now` and every fact are inputs.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::Serialize;

mod staff;

pub use staff::{Command, CustomerThread, StaffContext, StaffMail};

use super::address::Address;
use super::auth::StaffAuth;
use super::calendar::BusinessCalendar;
use super::classify::Category;
use super::form::FormField;
use super::guard::{Guard, NoReplyReason};
use super::inbound::InboundMail;
use super::license::{Application, EarlierApplication, LicensePolicy, LicenseVerdict, judge};
use super::matching::ContractBook;
use super::reply::{
    FollowUpLetter, FollowUpNote, OutgoingKind, OutgoingMail, ReplyNote, TicketLetter,
    customer_reply, delivery_failure_notice, flood_notice, follow_up_notification,
    staff_notification,
};
use super::ticket::{
    ArticleKind, ContractFacts, Entitlement, MatchedBy, ReplyKind, ThreadedBy, TicketFacts,
    TicketState, Verdict, entitlement,
};

/// Desk settings the decision depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeskRules {
    /// The desk's own addresses (lowercased): mail from them is a loop.
    pub desk_addresses: Vec<String>,
    /// The address replies come from.
    pub desk_address: String,
    pub ticket_prefix: String,
    pub timezone: Tz,
    pub staff: Vec<String>,
    /// Where staff notifications go (lowercased): mail from these is never a customer's.
    pub notify: Vec<String>,
    pub reopen_days: i64,
    pub auto_reply_limit_per_hour: u32,
    /// Staff notifications about one ticket in an hour, at most.
    pub notify_limit_per_ticket_hour: u32,
    /// New requests from one sender in an hour before the rest is a flood.
    pub flood_per_hour: u32,
    /// How mail from a staff address is authenticated.
    pub staff_policy: super::auth::StaffAuthentication,
}

/// An earlier message with the same Message-ID and the same bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SameMessage {
    /// Its row.
    pub first: i64,
    pub ticket: Option<u64>,
}

/// What the flood rule needs about one sender (a flood).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SenderLoad {
    /// Tickets opened for the sender's requests since the hour began.
    pub tickets: u32,
    /// Their latest ticket that is not closed.
    pub open_ticket: Option<u64>,
    /// Mail already taken as a flood on that ticket in the hour (staff were told).
    pub flooded: bool,
}

/// A delivery of ours that a bounce or the relay reports as failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub outbox_id: i64,
    /// `None` for mail about no ticket (a renewal reminder).
    pub ticket: Option<u64>,
    /// The outbox kind (`acknowledgement`, `staff_notification`, …).
    pub kind: String,
    /// The recipients, comma-separated.
    pub recipients: String,
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
    /// The same message recorded before (a redelivery).
    pub same_as: Option<SameMessage>,
    /// The ticket the message names and how, when [`super::ticket::admits`] let it in.
    pub thread: Option<(&'a TicketFacts, ThreadedBy)>,
    pub contract: Option<(&'a ContractFacts, MatchedBy)>,
    /// For a bounce: the delivery of ours it reports on, when that is known.
    pub bounced: Option<&'a Delivery>,
    /// Where a reply would go, or why there is nowhere (see [`reply_address`]).
    pub reply_to: Result<String, NoReplyAddress>,
    /// Automatic replies sent to `reply_to` in the hour before `now`.
    pub recent_auto_replies: u32,
    /// Staff notifications queued for the threaded ticket in the hour before `now`.
    pub recent_ticket_notices: u32,
    /// For mail that names no ticket: what its sender (the form's address for a form) asked
    /// of the desk in the hour before it arrived.
    pub sender_load: SenderLoad,
    /// The number a new ticket gets.
    pub next_ticket: u64,
    /// For mail from a staff address that names a ticket: its authentication, the internal
    /// section it must not leak, and the customer it may answer.
    pub staff: Option<StaffContext<'a>>,
    /// For a license application (R7): what it asks for and what the decision needs to judge
    /// it.
    pub license: Option<LicenseIntake<'a>>,
}

/// A license application and the facts it is judged by (`core::license::judge`).
#[derive(Debug, Clone, Copy)]
pub struct LicenseIntake<'a> {
    pub application: &'a Application,
    pub book: &'a ContractBook,
    /// The latest application for the same contract, serial and new server, if any.
    pub earlier: Option<&'a EarlierApplication>,
    pub policy: LicensePolicy,
}

/// One thing the shell does, in order, in the message's transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Open a ticket with this number.
    OpenTicket {
        number: u64,
        ticket: NewTicket,
        customer_address: String,
        customer_name: String,
        subject: String,
    },
    /// Record the message and its verdict: exactly once per message (invariant 3).
    RecordMessage {
        verdict: Verdict,
        reason: Option<String>,
        ticket: Option<u64>,
    },
    /// The message becomes an incoming article of the ticket (dated at arrival), with its
    /// attachments and its Message-ID for threading.
    AddArticle {
        ticket: u64,
        kind: ArticleKind,
    },
    SetState {
        ticket: u64,
        state: TicketState,
    },
    /// The ticket saw activity.
    Touch {
        ticket: u64,
    },
    /// Compose and queue a mail (invariant 4); a customer reply also becomes an outgoing
    /// article and counts towards the recipient's hourly limit.
    QueueMail {
        mail: OutgoingMail,
        auto_reply_to: Option<String>,
    },
    /// Our delivery came back: mark it.
    MarkBounced {
        outbox_id: i64,
        detail: String,
    },
    /// Staff tied the ticket to a registered contract.
    SetContract {
        ticket: u64,
        contract_id: String,
    },
    /// Staff assigned the ticket to one of them.
    Assign {
        ticket: u64,
        assignee: String,
    },
    /// Staff set the ticket's category.
    SetCategory {
        ticket: u64,
        category: Category,
    },
    /// Staff answered the customer for the first time (at the message's arrival).
    FirstResponse {
        ticket: u64,
        business_minutes: i64,
    },
    /// Record the ticket's license application and what became of it.
    RecordApplication {
        ticket: u64,
        application: Application,
        verdict: LicenseVerdict,
    },
    /// Staff approved the ticket's license application (`#approve`).
    ApproveLicense {
        ticket: u64,
        by: String,
    },
}

/// What became of the message, in short (for counts, logs and the acknowledgement).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A new ticket; staff are notified.
    NewTicket(NewTicket),
    /// An article on an existing ticket.
    FollowUp {
        ticket: u64,
        threaded_by: ThreadedBy,
        /// From a staff address but not authenticated (authenticated staff mail is
        /// `StaffMail`): it never changes the ticket; it is recorded and staff are told (a
        /// forged From proves nothing).
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
    /// Authenticated staff mail on a ticket: relayed, noted, commands carried out.
    StaffMail(StaffMail),
    /// One sender past `flood_per_hour` new requests in an hour: the mail goes onto their
    /// latest open ticket, with no reply and no notice but the first (`notify`).
    Flood {
        ticket: u64,
        notify: bool,
        /// The sender's requests in the hour, as counted.
        count: u32,
    },
    /// Seen before (same Message-ID and bytes): recorded as a duplicate.
    Duplicate { of: i64 },
    /// Kept aside for a person, with the reason.
    Quarantine { reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub outcome: Outcome,
    pub effects: Vec<Effect>,
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
    /// License applications (R7/R8): the business date the key is due (eligible ones).
    pub license_due: Option<NaiveDate>,
    /// A license application: what became of it.
    pub license: Option<LicenseVerdict>,
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
    if mail.form.is_some() {
        return form_name(mail);
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

/// The decision for one message. Never fails: every message ends as a ticket article, a
/// recorded automatic message, or a quarantined one (ARCHITECTURE.md, invariant 3).
pub fn decide(intake: &Intake<'_>, rules: &DeskRules, calendar: &BusinessCalendar) -> Decision {
    let outcome = outcome(intake, rules, calendar);
    let effects = effects(&outcome, intake, rules);
    Decision { outcome, effects }
}

fn outcome(intake: &Intake<'_>, rules: &DeskRules, calendar: &BusinessCalendar) -> Outcome {
    let mail = intake.mail;
    if let Some(same) = intake.same_as {
        return Outcome::Duplicate { of: same.first };
    }
    if let Guard::NoReply(NoReplyReason::NoFrom) = intake.guard {
        // Nobody to answer and nobody to attribute it to: a person looks at it.
        return Outcome::Quarantine {
            reason: "no usable From address".into(),
        };
    }
    if let Guard::NoReply(reason) = intake.guard {
        // Our own mail coming back is a loop, not a customer; everything else automatic is
        // recorded (a bounce on the ticket of the delivery it reports on).
        let ticket = intake
            .bounced
            .and_then(|d| d.ticket)
            .or(intake.thread.map(|(t, _)| t.number));
        return Outcome::Recorded {
            reason: reason.clone(),
            ticket,
        };
    }
    let Some(from) = &mail.from else {
        return Outcome::Quarantine {
            reason: "no usable From address".into(),
        };
    };
    let is_in = |list: &[String]| list.iter().any(|a| a.eq_ignore_ascii_case(&from.address));
    let from_staff = is_in(&rules.staff);
    if !from_staff && is_in(&rules.notify) {
        // The notification address answering (an out-of-office, a list, a person) is never a
        // customer follow-up: that is how notification loops start.
        return Outcome::Recorded {
            reason: NoReplyReason::FromNotifyAddress,
            ticket: intake.thread.map(|(t, _)| t.number),
        };
    }
    let notify_staff = intake.recent_ticket_notices < rules.notify_limit_per_ticket_hour;
    if let Some((ticket, threaded_by)) = intake.thread {
        let follow_up = |reopen_as| Outcome::FollowUp {
            ticket: ticket.number,
            threaded_by,
            from_staff,
            reopen_as,
            notify_staff,
        };
        if from_staff {
            if let Some(staff) = &intake.staff
                && matches!(staff.auth, StaffAuth::Authenticated { .. })
            {
                let mut decided =
                    staff::staff_mail(mail, ticket.number, ticket.state, staff, &rules.staff);
                if decided.relayed.is_some() && ticket.first_response_at.is_none() {
                    decided.first_response_minutes =
                        Some(calendar.business_duration(ticket.accepted_at, intake.received_at));
                }
                return Outcome::StaffMail(decided);
            }
            // Not authenticated: held. Recorded on the ticket, staff told, nothing acted on.
            return follow_up(None);
        }
        match ticket.state {
            // The customer answered: the ticket waits for staff again.
            TicketState::Pending => return follow_up(Some(TicketState::Open)),
            TicketState::WaitingAcceptance | TicketState::Open => return follow_up(None),
            TicketState::Closed => {}
        }
        let within = ticket.closed_at.is_some_and(|closed| {
            intake.received_at - closed <= chrono::Duration::days(rules.reopen_days)
        });
        if within {
            let accepted = calendar.accepted_at(intake.received_at).with_timezone(&Utc);
            return follow_up(Some(TicketState::on_acceptance(accepted, intake.now)));
        }
        return Outcome::NewTicket(new_ticket(intake, rules, calendar, Some(ticket.number)));
    }
    if from_staff {
        // Staff mail that names no ticket is not a customer request; a person decides.
        return Outcome::Quarantine {
            reason: "mail from staff that refers to no ticket".into(),
        };
    }
    let load = intake.sender_load;
    if load.tickets >= rules.flood_per_hour
        && let Some(ticket) = load.open_ticket
    {
        return Outcome::Flood {
            ticket,
            notify: !load.flooded,
            count: load.tickets + 1,
        };
    }
    Outcome::NewTicket(new_ticket(intake, rules, calendar, None))
}

/// The effects that carry out `outcome`, mails composed.
fn effects(outcome: &Outcome, intake: &Intake<'_>, rules: &DeskRules) -> Vec<Effect> {
    let mail = intake.mail;
    let from = mail.from.as_ref().map_or("", |m| m.address.as_str());
    match outcome {
        Outcome::StaffMail(decided) => match &intake.staff {
            Some(staff) => staff::staff_effects(decided, mail, staff, rules),
            None => vec![Effect::RecordMessage {
                verdict: Verdict::Quarantined,
                reason: Some("staff mail without its context".into()),
                ticket: None,
            }],
        },
        Outcome::Flood {
            ticket,
            notify,
            count,
        } => {
            let mut effects = vec![
                Effect::RecordMessage {
                    verdict: Verdict::Article,
                    reason: Some(format!(
                        "flood: {count} requests from this sender within an hour (over {})",
                        rules.flood_per_hour
                    )),
                    ticket: Some(*ticket),
                },
                Effect::AddArticle {
                    ticket: *ticket,
                    kind: ArticleKind::Customer,
                },
                Effect::Touch { ticket: *ticket },
            ];
            if *notify && !rules.notify.is_empty() {
                let (sender, _) = customer_of(mail);
                effects.push(Effect::QueueMail {
                    mail: flood_notice(
                        &rules.notify,
                        &rules.desk_address,
                        &rules.ticket_prefix,
                        *ticket,
                        &sender,
                        rules.flood_per_hour,
                    ),
                    auto_reply_to: None,
                });
            }
            effects
        }
        Outcome::Duplicate { of } => vec![Effect::RecordMessage {
            verdict: Verdict::Duplicate,
            reason: Some(format!("same Message-ID and content as message {of}")),
            ticket: intake.same_as.and_then(|s| s.ticket),
        }],
        Outcome::Quarantine { reason } => vec![Effect::RecordMessage {
            verdict: Verdict::Quarantined,
            reason: Some(reason.clone()),
            ticket: None,
        }],
        Outcome::Recorded { reason, ticket } => {
            let mut effects = Vec::new();
            if let (NoReplyReason::Bounce, Some(delivery), Some(report)) =
                (reason, intake.bounced, &mail.report)
            {
                let detail = format!(
                    "{} {}",
                    report.status.as_deref().unwrap_or("failed"),
                    report.failed_recipients.join(", ")
                )
                .trim()
                .to_string();
                effects.push(Effect::MarkBounced {
                    outbox_id: delivery.outbox_id,
                    detail: detail.clone(),
                });
                effects.extend(delivery_failed(delivery, &detail, rules));
            }
            effects.insert(
                0,
                Effect::RecordMessage {
                    verdict: Verdict::Recorded,
                    reason: Some(format!("{}: {reason}", reason.code())),
                    ticket: *ticket,
                },
            );
            effects
        }
        Outcome::NewTicket(new) => {
            let number = intake.next_ticket;
            let (customer_address, customer_name) = customer_of(mail);
            let mut effects = vec![
                Effect::OpenTicket {
                    number,
                    ticket: new.clone(),
                    customer_address,
                    customer_name,
                    subject: mail.subject.clone(),
                },
                Effect::RecordMessage {
                    verdict: Verdict::Article,
                    reason: None,
                    ticket: Some(number),
                },
                Effect::AddArticle {
                    ticket: number,
                    kind: ArticleKind::Customer,
                },
            ];
            if let (Some(verdict), Some(license)) = (&new.license, &intake.license) {
                effects.push(Effect::RecordApplication {
                    ticket: number,
                    application: license.application.clone(),
                    verdict: verdict.clone(),
                });
            }
            let letter = TicketLetter {
                prefix: &rules.ticket_prefix,
                desk_address: &rules.desk_address,
                timezone: rules.timezone,
                ticket: number,
                addressee: &new.addressee,
                from,
                subject: &mail.subject,
                text: &mail.text,
                category: new.category,
                state: new.state,
                received_at: intake.received_at,
                accepted_at: new.accepted_at,
                license_due: new.license.as_ref().and_then(LicenseVerdict::due),
                license: new.license.as_ref(),
                contract_id: new.contract_id.as_deref(),
                entitlement: &new.entitlement,
                message_id: mail.message_id.as_deref(),
                references: &mail.references,
            };
            let note = match &new.reply {
                Some((kind, to)) => {
                    effects.push(Effect::QueueMail {
                        mail: customer_reply(*kind, to, &letter),
                        auto_reply_to: Some(to.clone()),
                    });
                    ReplyNote::Sent {
                        kind: *kind,
                        to: to.clone(),
                    }
                }
                None => ReplyNote::Withheld(new.reply_withheld.clone().unwrap_or_default()),
            };
            if !rules.notify.is_empty() {
                effects.push(Effect::QueueMail {
                    mail: staff_notification(&rules.notify, &letter, &note),
                    auto_reply_to: None,
                });
            }
            effects
        }
        Outcome::FollowUp {
            ticket,
            from_staff,
            reopen_as,
            notify_staff,
            ..
        } => {
            // Staff mail here was not authenticated (authenticated staff mail is a StaffMail):
            // why is kept with the message and told to staff.
            let unauthenticated = match intake.staff.as_ref().map(|s| s.auth) {
                Some(StaffAuth::Unauthenticated { reason }) if *from_staff => Some(reason.as_str()),
                _ if *from_staff => Some("not checked"),
                _ => None,
            };
            let mut effects = vec![
                Effect::RecordMessage {
                    verdict: Verdict::Article,
                    reason: unauthenticated
                        .map(|why| format!("staff mail not authenticated: {why}")),
                    ticket: Some(*ticket),
                },
                Effect::AddArticle {
                    ticket: *ticket,
                    kind: if *from_staff {
                        ArticleKind::Staff
                    } else {
                        ArticleKind::Customer
                    },
                },
                match reopen_as {
                    Some(state) => Effect::SetState {
                        ticket: *ticket,
                        state: *state,
                    },
                    None => Effect::Touch { ticket: *ticket },
                },
            ];
            let facts = intake.thread.map(|(t, _)| t);
            if *notify_staff && !rules.notify.is_empty() {
                let note = if let Some(reason) = unauthenticated {
                    FollowUpNote::UnauthenticatedStaff { reason }
                } else {
                    FollowUpNote::Customer {
                        reopened: facts.is_some_and(|t| t.state == TicketState::Closed),
                    }
                };
                let letter = FollowUpLetter {
                    prefix: &rules.ticket_prefix,
                    desk_address: &rules.desk_address,
                    timezone: rules.timezone,
                    ticket: *ticket,
                    state: reopen_as
                        .or(facts.map(|t| t.state))
                        .unwrap_or(TicketState::Open),
                    received_at: intake.received_at,
                    from,
                    subject: &mail.subject,
                    text: &mail.text,
                };
                effects.push(Effect::QueueMail {
                    mail: follow_up_notification(&rules.notify, &letter, note),
                    auto_reply_to: None,
                });
            }
            effects
        }
    }
}

/// Staff hear that a delivery of ours failed for good (a bounce, or a 5xx from the relay), so
/// a person can reach the customer another way. Never for a failed staff notification: that
/// would only fail the same way, again and again.
pub fn delivery_failed(delivery: &Delivery, detail: &str, rules: &DeskRules) -> Vec<Effect> {
    if rules.notify.is_empty() || delivery.kind == OutgoingKind::StaffNotification.code() {
        return Vec::new();
    }
    vec![Effect::QueueMail {
        mail: delivery_failure_notice(
            &rules.notify,
            &rules.desk_address,
            &rules.ticket_prefix,
            delivery.ticket,
            &delivery.kind,
            &delivery.recipients,
            detail,
        ),
        auto_reply_to: None,
    }]
}

/// The customer's address and name as a ticket records them: the form's claims when the mail
/// came through a form, otherwise the sender.
fn customer_of(mail: &InboundMail) -> (String, String) {
    if mail.form.is_some() {
        return (mail.form_address().unwrap_or_default(), form_name(mail));
    }
    let from = mail.from.as_ref();
    (
        from.map(|m| m.address.clone()).unwrap_or_default(),
        from.and_then(|m| m.name.clone()).unwrap_or_default(),
    )
}

/// A form's own 会社名 and ご担当者名, once each.
fn form_name(mail: &InboundMail) -> String {
    let Some(form) = &mail.form else {
        return String::new();
    };
    [
        form.get(FormField::Company),
        form.get(FormField::ContactName),
    ]
    .into_iter()
    .flatten()
    .map(str::trim)
    .filter(|s| !s.is_empty())
    .collect::<Vec<_>>()
    .join(" ")
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
    let license = intake.license.map(|l| {
        judge(
            l.application,
            l.book,
            calendar,
            intake.received_at,
            l.earlier,
            l.policy,
        )
    });
    let license_due = match &license {
        Some(LicenseVerdict::Eligible { schedule, .. }) => Some(schedule.due),
        _ => None,
    };
    let (reply, reply_withheld) = choose_reply(intake, rules, &entitlement, license.as_ref());
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
        license,
    }
}

fn choose_reply(
    intake: &Intake<'_>,
    rules: &DeskRules,
    entitlement: &Entitlement,
    license: Option<&LicenseVerdict>,
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
    // What an application came to goes only to a registered contact of the contract it names;
    // anyone else gets the plain acknowledgement (which then promises no key).
    let to_applicant = intake
        .license
        .and_then(|l| l.application.applicant.as_deref())
        .is_some_and(|a| a.eq_ignore_ascii_case(&to));
    match license {
        Some(LicenseVerdict::Refused {
            applicant_registered: true,
            ..
        }) if to_applicant => return (Some((ReplyKind::LicenseRefused, to)), None),
        Some(LicenseVerdict::Repeated {
            applicant_registered: true,
            ..
        }) if to_applicant => return (Some((ReplyKind::LicenseRepeated, to)), None),
        Some(_) => return (Some((ReplyKind::Acknowledgement, to)), None),
        None => {}
    }
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
