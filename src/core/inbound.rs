//! A received message as the core sees it: already decoded, no bytes to parse, no I/O.
//! `crate::mail` builds it from raw bytes; every decision in the core starts from it.

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};

use super::form::{FormEntry, FormField};

/// A mailbox: the address lowercased (comparisons are on it), the display name decoded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mailbox {
    pub name: Option<String>,
    pub address: String,
}

/// Headers that mark mail as automatic (RFC 3834 and the de-facto ones).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutoHeaders {
    /// `Auto-Submitted` value, lowercased (`no` means a person sent it).
    pub auto_submitted: Option<String>,
    /// `Precedence` value, lowercased (bulk, junk, list).
    pub precedence: Option<String>,
    /// `X-Auto-Response-Suppress` value (Exchange).
    pub auto_response_suppress: Option<String>,
    /// `List-Id` (or `List-Unsubscribe`/`List-Post` presence, recorded as `list_headers`).
    pub list_id: Option<String>,
    pub list_headers: bool,
    /// Our own loop marker header (`X-Madoguchi-Loop`) was present.
    pub loop_marker: bool,
    /// `X-Autoreply`, `X-Autorespond`, `X-Auto-Reply-From`-style vendor markers.
    pub vendor_autoreply: bool,
    /// `Return-Path: <>` (the envelope sender of bounces and auto-replies).
    pub null_return_path: bool,
}

/// A delivery status notification (`multipart/report; report-type=delivery-status`) or an
/// unmistakable bounce, with what it says about the message it reports on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryReport {
    /// Message-ID of the message that could not be delivered, when the report carries it.
    pub original_message_id: Option<String>,
    /// Recipients the report says failed (lowercased).
    pub failed_recipients: Vec<String>,
    /// First `Status:` code found (e.g. `5.1.1`).
    pub status: Option<String>,
    /// The `report-type` (delivery-status, feedback-report, disposition-notification) or
    /// `heuristic` when it was recognised by sender/subject rather than structure.
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub name: Option<String>,
    pub content_type: String,
    pub size: usize,
    pub sha256: String,
}

/// Form fields parsed from a configured form sender's `【label】value` body
/// (see `core::form`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormMail {
    pub kind: FormKind,
    /// Every `【label】value` in body order, known labels with their semantic field.
    pub fields: Vec<FormEntry>,
}

impl FormMail {
    /// The first non-empty value of a semantic field.
    pub fn get(&self, field: FormField) -> Option<&str> {
        self.fields
            .iter()
            .find(|e| e.field == Some(field) && !e.value.is_empty())
            .map(|e| e.value.as_str())
    }

    /// The first value written under exactly this label (as it appeared in the body).
    pub fn get_label(&self, label: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|e| e.label == label)
            .map(|e| e.value.as_str())
    }

    /// Entries whose label is not in the configured mapping.
    pub fn unknown(&self) -> impl Iterator<Item = &FormEntry> {
        self.fields.iter().filter(|e| e.field.is_none())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FormKind {
    Inquiry,
    LicenseApplication,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundMail {
    pub message_id: Option<String>,
    pub in_reply_to: Vec<String>,
    pub references: Vec<String>,
    pub from: Option<Mailbox>,
    pub reply_to: Option<Mailbox>,
    pub to: Vec<Mailbox>,
    pub cc: Vec<Mailbox>,
    pub subject: String,
    /// The `Date:` header as written (not trusted for business time: arrival time is).
    pub date: Option<DateTime<FixedOffset>>,
    /// A readable text body (HTML-only mail converted to text).
    pub text: String,
    pub auto: AutoHeaders,
    pub report: Option<DeliveryReport>,
    pub attachments: Vec<Attachment>,
    pub form: Option<FormMail>,
    /// The value of every `Authentication-Results` header (RFC 8601), topmost first, unfolded
    /// but otherwise as written: what `core::auth` judges staff mail by. Left out of JSON when
    /// there is none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub auth_results: Vec<String>,
    /// Structural problems found while parsing (no From, undecodable charset, …). Not fatal on
    /// their own; the core decides whether they mean quarantine.
    pub defects: Vec<String>,
}

impl InboundMail {
    /// The one address a form's メールアドレス field gives, when it gives exactly one (a form's
    /// address is a claim, not an identity: it routes, it never proves).
    pub fn form_address(&self) -> Option<String> {
        self.form
            .as_ref()
            .and_then(|f| f.get(FormField::Email))
            .and_then(|v| super::address::Address::parse(v).ok())
            .map(super::address::Address::into_string)
    }
}
