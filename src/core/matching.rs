//! Contract matching (DESIGN.md, issue 3): a registered contact's address first; then a
//! customer number or license serial given in the form or the body; then a contact domain.
//! A number or a domain only routes the request — it never makes the sender a registered
//! contact, so keys and contract details still go only to registered addresses.

use std::collections::HashMap;

use super::form::FormField;
use super::inbound::InboundMail;
use super::ticket::{ContractFacts, MatchedBy};

/// The contract register, indexed for matching. Built by the shell from the store.
#[derive(Debug, Default, Clone)]
pub struct ContractBook {
    contracts: Vec<ContractFacts>,
    by_contact: HashMap<String, usize>,
    by_number: HashMap<String, usize>,
    by_serial: HashMap<String, usize>,
    /// Domains registered by exactly one contract; a domain two contracts share routes nowhere.
    by_domain: HashMap<String, Option<usize>>,
}

/// Full-width ASCII (ＡＢＣ１２３－) as typed on Japanese keyboards, folded to ASCII and
/// uppercased, so `ｃ－１００１` finds `C-1001`.
pub fn normalize_token(text: &str) -> String {
    text.trim()
        .chars()
        .map(|c| match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            '\u{2010}'..='\u{2015}' | '\u{2212}' | '\u{30FC}' => '-',
            _ => c,
        })
        .collect::<String>()
        .to_ascii_uppercase()
}

impl ContractBook {
    pub fn new(contracts: Vec<ContractFacts>) -> Self {
        let mut book = ContractBook {
            contracts,
            ..Default::default()
        };
        for (i, c) in book.contracts.iter().enumerate() {
            book.by_number.insert(normalize_token(&c.contract_id), i);
            if !c.license_serial.trim().is_empty() {
                book.by_serial.insert(normalize_token(&c.license_serial), i);
            }
            for a in &c.contacts {
                book.by_contact.insert(a.to_ascii_lowercase(), i);
            }
            for d in &c.domains {
                book.by_domain
                    .entry(d.to_ascii_lowercase())
                    .and_modify(|e| {
                        if *e != Some(i) {
                            *e = None;
                        }
                    })
                    .or_insert(Some(i));
            }
        }
        book
    }

    pub fn len(&self) -> usize {
        self.contracts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.contracts.is_empty()
    }

    /// Every contract, in the order registered.
    pub fn iter(&self) -> impl Iterator<Item = &ContractFacts> {
        self.contracts.iter()
    }

    pub fn get(&self, contract_id: &str) -> Option<&ContractFacts> {
        self.by_number
            .get(&normalize_token(contract_id))
            .map(|&i| &self.contracts[i])
    }

    /// The contract whose license serial this is.
    pub fn by_serial(&self, serial: &str) -> Option<&ContractFacts> {
        self.by_serial
            .get(&normalize_token(serial))
            .map(|&i| &self.contracts[i])
    }

    /// The contract a request belongs to. `addresses` are the sender's (From, and for form
    /// mail the form's address); `numbers` are customer numbers or serials stated in the form;
    /// `text` is searched for them too.
    /// The contract a message is about: the form's address or the sender as a registered
    /// contact, then a customer number or serial (the form's fields, else the text), then a
    /// domain one contract owns. A form's robot sender is never matched.
    pub fn for_mail(&self, mail: &InboundMail) -> Option<(&ContractFacts, MatchedBy)> {
        let form_address = mail.form_address();
        let mut addresses: Vec<&str> = Vec::new();
        addresses.extend(form_address.as_deref());
        if mail.form.is_none() {
            addresses.extend(mail.from.as_ref().map(|m| m.address.as_str()));
        }
        let numbers: Vec<&str> = mail
            .form
            .iter()
            .flat_map(|f| {
                [
                    f.get(FormField::CustomerNumber),
                    f.get(FormField::LicenseSerial),
                ]
            })
            .flatten()
            .collect();
        self.find(
            &addresses,
            &numbers,
            &format!("{}\n{}", mail.subject, mail.text),
        )
    }

    pub fn find(
        &self,
        addresses: &[&str],
        numbers: &[&str],
        text: &str,
    ) -> Option<(&ContractFacts, MatchedBy)> {
        for a in addresses {
            if let Some(&i) = self.by_contact.get(&a.to_ascii_lowercase()) {
                return Some((&self.contracts[i], MatchedBy::Contact));
            }
        }
        let stated = numbers.iter().map(|n| normalize_token(n));
        let in_text = tokens(text);
        for token in stated.chain(in_text) {
            if let Some(&i) = self.by_number.get(&token) {
                return Some((&self.contracts[i], MatchedBy::CustomerNumber));
            }
            if let Some(&i) = self.by_serial.get(&token) {
                return Some((&self.contracts[i], MatchedBy::LicenseSerial));
            }
        }
        for a in addresses {
            let Some((_, domain)) = a.rsplit_once('@') else {
                continue;
            };
            if let Some(Some(i)) = self.by_domain.get(&domain.to_ascii_lowercase()) {
                return Some((&self.contracts[*i], MatchedBy::Domain));
            }
        }
        None
    }
}

/// Candidate identifiers in free text: runs of ASCII letters, digits and `-`/`_` (after
/// folding full-width forms), at least three characters long.
fn tokens(text: &str) -> impl Iterator<Item = String> + '_ {
    let folded = normalize_token(text);
    folded
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .map(|t| t.trim_matches('-').to_string())
        .filter(|t| t.len() >= 3)
        .collect::<Vec<_>>()
        .into_iter()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(id: &str, contacts: &[&str], serial: &str, domains: &[&str]) -> ContractFacts {
        ContractFacts::from_orders(
            crate::core::contract::Contract {
                contract_id: id.into(),
                customer: format!("{id} 株式会社"),
                license_serial: serial.into(),
                contacts: contacts.iter().map(|s| s.to_string()).collect(),
                domains: domains.iter().map(|s| s.to_string()).collect(),
                customized: false,
                neo_support: false,
                server_id: String::new(),
                reminders: true,
            },
            &[],
        )
    }

    fn book() -> ContractBook {
        ContractBook::new(vec![
            facts(
                "C-1001",
                &["yamada@alpha.co.jp"],
                "NEO-DS-7788",
                &["alpha.co.jp"],
            ),
            facts("C-1002", &["sato@beta.co.jp"], "", &["shared.jp"]),
            facts("C-1003", &["kato@shared.jp"], "", &["shared.jp"]),
        ])
    }

    #[test]
    fn a_registered_contact_wins_over_everything() {
        let b = book();
        let (c, how) = b.find(&["Sato@Beta.co.jp"], &["C-1001"], "C-1003").unwrap();
        assert_eq!(
            (c.contract_id.as_str(), how),
            ("C-1002", MatchedBy::Contact)
        );
    }

    #[test]
    fn numbers_in_form_or_text_route_full_width_included() {
        let b = book();
        let (c, how) = b.find(&["someone@else.jp"], &["ｃ－１００２"], "").unwrap();
        assert_eq!(
            (c.contract_id.as_str(), how),
            ("C-1002", MatchedBy::CustomerNumber)
        );
        let (c, how) = b
            .find(
                &["someone@else.jp"],
                &[],
                "お客様番号はC-1003です。ライセンス",
            )
            .unwrap();
        assert_eq!(
            (c.contract_id.as_str(), how),
            ("C-1003", MatchedBy::CustomerNumber)
        );
        let (c, how) = b.find(&["x@else.jp"], &[], "serial: neo-ds-7788").unwrap();
        assert_eq!(
            (c.contract_id.as_str(), how),
            ("C-1001", MatchedBy::LicenseSerial)
        );
    }

    #[test]
    fn a_domain_routes_only_when_one_contract_has_it() {
        let b = book();
        let (c, how) = b.find(&["new.person@alpha.co.jp"], &[], "").unwrap();
        assert_eq!((c.contract_id.as_str(), how), ("C-1001", MatchedBy::Domain));
        assert!(b.find(&["new.person@shared.jp"], &[], "").is_none());
        assert!(
            b.find(&["nobody@nowhere.example"], &[], "no numbers here")
                .is_none()
        );
    }
}
