//! Mail from a staff address on a ticket (issue 9): authenticated, it is the staff member's
//! reply (relayed to the customer), an internal note, or commands; otherwise it is held.
//! Pure, like the rest of `decide`.

use super::super::address::Address;
use super::super::auth::StaffAuth;
use super::super::classify::Category;
use super::super::inbound::InboundMail;
use super::super::license::ApplicationState;
use super::super::matching::ContractBook;
use super::super::reply::{
    INTERNAL_BEGIN, INTERNAL_END, REPLY_MARKER, staff_confirmation, staff_note, staff_relay,
};
use super::super::staff_reply::{leaked_line, staff_text_with};
use super::super::ticket::{ArticleKind, TicketState};
use super::{DeskRules, Effect, Verdict};

/// What the decision needs about staff mail on a ticket; the shell gathers it.
#[derive(Debug, Clone)]
pub struct StaffContext<'a> {
    /// The verdict on the mail's authentication (`core::auth`, or the config's `none`).
    pub auth: &'a StaffAuth,
    /// The internal section of the ticket's latest notification: no line of it may reach the
    /// customer (the fail-safe).
    pub internal: Option<&'a str>,
    /// Where the customer is answered and what the answer threads to.
    pub customer: Option<CustomerThread<'a>>,
    /// The contract register, for `#contract ID`.
    pub book: &'a ContractBook,
    /// The ticket's license application, if it has one (`#approve`).
    pub application: Option<ApplicationState>,
}

#[derive(Debug, Clone, Copy)]
pub struct CustomerThread<'a> {
    pub address: &'a str,
    /// The ticket's subject as the customer wrote it.
    pub subject: &'a str,
    /// The customer's latest message on the ticket, and its references.
    pub message_id: Option<&'a str>,
    pub references: &'a [String],
}

/// The words that start a command line.
const COMMAND_WORDS: &[&str] = &[
    "#note",
    "#close",
    "#reopen",
    "#pending",
    "#category",
    "#contract",
    "#assign",
    "#approve",
];

/// A command on the first lines of a staff mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// The text is internal: recorded, copied to staff, never sent to the customer.
    Note,
    Close,
    Reopen,
    /// Waiting for the customer.
    Pending,
    /// Set the ticket's category (the codes of `tickets list --json`).
    Category(Category),
    /// Assign the ticket to a staff member (an address in `desk.staff`).
    Assign(Address),
    /// Tie the ticket to a registered contract (its customer number).
    Contract(String),
    /// Approve the ticket's license application: its key goes out (`[license] approval =
    /// "staff"`).
    Approve,
}

impl Command {
    fn parse(line: &str, staff: &[String], context: &StaffContext<'_>) -> Result<Self, String> {
        let book = context.book;
        let word = line.split_whitespace().next().unwrap_or("");
        match word.to_ascii_lowercase().as_str() {
            "#note" => Ok(Command::Note),
            "#close" => Ok(Command::Close),
            "#reopen" => Ok(Command::Reopen),
            "#pending" => Ok(Command::Pending),
            "#category" => {
                let code = line.split_whitespace().nth(1).unwrap_or("");
                Category::from_code(code)
                    .map(Command::Category)
                    .ok_or_else(|| {
                        let codes: Vec<&str> = Category::ALL.iter().map(|c| c.code()).collect();
                        format!(
                            "#category {code}: 種別コードは {} のいずれかです",
                            codes.join(", ")
                        )
                    })
            }
            "#assign" => {
                let who = line.split_whitespace().nth(1).unwrap_or("");
                Address::parse(who)
                    .ok()
                    .filter(|a| staff.iter().any(|s| a.is(s)))
                    .map(Command::Assign)
                    .ok_or_else(|| format!("#assign {who}: desk.staff のアドレスではありません"))
            }
            "#contract" => {
                let id = line.split_whitespace().nth(1).unwrap_or("");
                book.get(id)
                    .map(|c| Command::Contract(c.contract_id.clone()))
                    .ok_or_else(|| format!("#contract {id}: 登録されていないお客様番号です"))
            }
            "#approve" => match context.application {
                Some(ApplicationState::WaitingApproval) => Ok(Command::Approve),
                Some(ApplicationState::Refused) => Err(format!(
                    "{word}: この受付番号のライセンス申請は発行要件を満たしていないため、承認できません"
                )),
                Some(
                    state @ (ApplicationState::Waiting
                    | ApplicationState::Issued
                    | ApplicationState::Sent),
                ) => Err(format!(
                    "{word}: この受付番号のライセンス申請は承認の必要がありません（{}）",
                    state.label_ja()
                )),
                None => Err(format!(
                    "{word}: この受付番号にはライセンス申請がありません"
                )),
            },
            _ => Err(format!("{word}: 不明なコマンドです")),
        }
    }

    fn done_ja(&self) -> String {
        let text = match self {
            Command::Category(c) => return format!("種別を「{c}」にしました"),
            Command::Assign(a) => return format!("担当者を {a} にしました"),
            Command::Contract(id) => return format!("お客様番号を {id} にしました"),
            Command::Note => "社内メモとして記録しました",
            Command::Close => "クローズしました",
            Command::Reopen => "再オープンしました",
            Command::Pending => "お客様の返答待ちにしました",
            Command::Approve => {
                "ライセンス申請を承認しました。キーは送付予定時刻になり次第、申請者に送付します"
            }
        };
        text.to_string()
    }
}

/// What became of an authenticated staff mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffMail {
    pub ticket: u64,
    /// The text relayed to the customer, if any.
    pub relayed: Option<String>,
    /// The text kept as an internal note, if any.
    pub note: Option<String>,
    pub state: Option<TicketState>,
    /// What was done and what was refused, in Japanese, for the confirmation.
    pub done: Vec<String>,
    pub refused: Vec<String>,
    /// A new category from `#category`.
    pub category: Option<Category>,
    /// A new assignee from `#assign`.
    pub assignee: Option<String>,
    /// The contract from `#contract`.
    pub contract_id: Option<String>,
    /// `#approve`: the ticket's license application is approved.
    pub approved: bool,
    /// The mail carried commands (each such mail is confirmed to its sender).
    pub commanded: bool,
    /// The ticket's first response, in business minutes from its acceptance, when this relay
    /// is the first.
    pub first_response_minutes: Option<i64>,
}

/// Decides an authenticated staff mail on `ticket` (in state `state`).
pub fn staff_mail(
    mail: &InboundMail,
    ticket: u64,
    state: TicketState,
    staff: &StaffContext<'_>,
    staff_addresses: &[String],
) -> StaffMail {
    let text = staff_text_with(&mail.text, &[REPLY_MARKER, INTERNAL_BEGIN]);
    let mut out = StaffMail {
        ticket,
        relayed: None,
        note: None,
        state: None,
        done: Vec::new(),
        refused: Vec::new(),
        commanded: !text.commands.is_empty(),
        first_response_minutes: None,
        category: None,
        assignee: None,
        contract_id: None,
        approved: false,
    };
    let mut commands = Vec::new();
    for line in &text.commands {
        match Command::parse(line, staff_addresses, staff) {
            Ok(c) => commands.push(c),
            Err(why) => out.refused.push(why),
        }
    }
    if !out.refused.is_empty() {
        // An unknown command refuses the whole mail: nothing relayed, nothing changed.
        out.refused
            .push("コマンドに誤りがあるため、このメールでは何も実行・送信していません".into());
        return out;
    }
    let reply = text.reply.trim().to_string();
    if commands.contains(&Command::Note) {
        out.note = Some(reply.clone());
    } else if has_words(&reply) {
        out.relayed = relay_text(mail, &reply, staff, &mut out.refused);
    } else if !reply.is_empty() && commands.is_empty() {
        // Only a signature: nothing to say to the customer.
        out.refused
            .push("署名のほかに本文がないため、お客様へは送信していません".into());
    }
    for command in &commands {
        let state = match command {
            Command::Note => None,
            Command::Category(c) => {
                out.category = Some(*c);
                None
            }
            Command::Assign(a) => {
                out.assignee = Some(a.to_string());
                None
            }
            Command::Contract(id) => {
                out.contract_id = Some(id.clone());
                None
            }
            Command::Approve => {
                out.approved = true;
                None
            }
            Command::Close => Some(TicketState::Closed),
            Command::Reopen => Some(TicketState::Open),
            Command::Pending => Some(TicketState::Pending),
        };
        out.state = state.or(out.state);
        out.done.push(command.done_ja());
    }
    // A reply sent waits for the customer, unless a command said otherwise.
    if out.relayed.is_some() {
        out.done.push("お客様へ返信を送信しました".into());
        if out.state.is_none() && state != TicketState::Closed {
            out.state = Some(TicketState::Pending);
        }
    }
    out
}

/// Whether `reply` says something beyond a signature (`-- ` and what follows it). A mail of
/// commands signed by its sender must not send the customer a lone signature.
fn has_words(reply: &str) -> bool {
    reply
        .lines()
        .take_while(|l| l.trim_end() != "--")
        .any(|l| !l.trim().is_empty())
}

/// The text to relay, or `None` with the reason in `refused`.
fn relay_text(
    mail: &InboundMail,
    reply: &str,
    staff: &StaffContext<'_>,
    refused: &mut Vec<String>,
) -> Option<String> {
    let Some(customer) = &staff.customer else {
        refused.push("この受付番号にはお客様のメールアドレスがないため、送信していません".into());
        return None;
    };
    let already = mail
        .to
        .iter()
        .chain(&mail.cc)
        .any(|m| m.address.eq_ignore_ascii_case(customer.address));
    if already {
        refused.push(
            "お客様が宛先に含まれていたため直接届いています。窓口からは再送していません".into(),
        );
        return None;
    }
    // A command below the text (bottom-posting) would reach the customer as words and not be
    // carried out: neither happens.
    if let Some(line) = reply.lines().find(|l| {
        let word = l.split_whitespace().next().unwrap_or("");
        COMMAND_WORDS.contains(&word.to_ascii_lowercase().replace('＃', "#").as_str())
    }) {
        refused.push(format!(
            "コマンド「{}」が本文の途中にあるため、送信していません（コマンドは先頭の行に書いてください）",
            super::super::reply::cut(line.trim(), 40, true)
        ));
        return None;
    }
    if reply.contains(INTERNAL_BEGIN) || reply.contains(INTERNAL_END) {
        refused.push("社内情報の区切り行が含まれていたため、送信していません".into());
        return None;
    }
    if let Some(internal) = staff.internal
        && let Some(line) = leaked_line(reply, internal)
    {
        refused.push(format!(
            "社内情報の行「{}」が含まれていたため、送信していません",
            super::super::reply::cut(&line, 80, true)
        ));
        return None;
    }
    Some(reply.to_string())
}

/// The effects of an authenticated staff mail: the mail on the ticket, then the relay, the
/// note copy, the state, and the confirmation to its sender.
pub fn staff_effects(
    decided: &StaffMail,
    mail: &InboundMail,
    staff: &StaffContext<'_>,
    rules: &DeskRules,
) -> Vec<Effect> {
    let ticket = decided.ticket;
    let mut effects = vec![
        Effect::RecordMessage {
            verdict: Verdict::Article,
            reason: Some(format!("staff mail ({})", auth_text(staff.auth))),
            ticket: Some(ticket),
        },
        Effect::AddArticle {
            ticket,
            kind: if decided.note.is_some() {
                ArticleKind::Note
            } else {
                ArticleKind::Staff
            },
        },
    ];
    if let (Some(text), Some(customer)) = (&decided.relayed, &staff.customer) {
        effects.push(Effect::QueueMail {
            mail: staff_relay(rules, ticket, customer, text, &mail.attachments),
            auto_reply_to: None,
        });
        if let Some(business_minutes) = decided.first_response_minutes {
            effects.push(Effect::FirstResponse {
                ticket,
                business_minutes,
            });
        }
    }
    if let Some(text) = &decided.note
        && !rules.notify.is_empty()
    {
        effects.push(Effect::QueueMail {
            mail: staff_note(rules, ticket, mail, text),
            auto_reply_to: None,
        });
    }
    if let Some(category) = decided.category {
        effects.push(Effect::SetCategory { ticket, category });
    }
    if let Some(contract_id) = &decided.contract_id {
        effects.push(Effect::SetContract {
            ticket,
            contract_id: contract_id.clone(),
        });
    }
    if let Some(assignee) = &decided.assignee {
        effects.push(Effect::Assign {
            ticket,
            assignee: assignee.clone(),
        });
    }
    if decided.approved
        && let Some(by) = &mail.from
    {
        effects.push(Effect::ApproveLicense {
            ticket,
            by: by.address.clone(),
        });
    }
    effects.push(match decided.state {
        Some(state) => Effect::SetState { ticket, state },
        None => Effect::Touch { ticket },
    });
    // Commands are confirmed; a refusal always goes back to the sender with the reason.
    if let Some(sender) = mail
        .from
        .as_ref()
        .filter(|_| decided.commanded || !decided.refused.is_empty())
    {
        effects.push(Effect::QueueMail {
            mail: staff_confirmation(
                rules,
                ticket,
                &sender.address,
                &mail.subject,
                &decided.done,
                &decided.refused,
            ),
            auto_reply_to: None,
        });
    }
    effects
}

fn auth_text(auth: &StaffAuth) -> String {
    match auth {
        StaffAuth::Authenticated { method } => method.clone(),
        StaffAuth::Unauthenticated { reason } => reason.clone(),
    }
}
