//! Mail addresses: one parser for every place an address is read (config, contracts, forms,
//! replies). An `Address` is one plain `local@domain`, lowercased, that mail can be sent to.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One plain `local@domain` address, lowercased (compared without regard to case, as mail
/// systems do in practice).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Address(String);

/// Why a text is not one usable address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("no '@' in {0:?}")]
    NoAt(String),
    #[error("the part before '@' in {0:?} is not a plain mailbox name")]
    Local(String),
    #[error("the domain of {0:?} is not a domain name with a dot")]
    Domain(String),
}

impl Address {
    /// Parses exactly one address: no display name, no angle brackets, no list.
    pub fn parse(value: &str) -> Result<Self, AddressError> {
        let value = value.trim();
        let Some((local, domain)) = value.split_once('@') else {
            return Err(AddressError::NoAt(value.to_string()));
        };
        let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c);
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && local.chars().all(atext)
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..");
        if !local_ok {
            return Err(AddressError::Local(value.to_string()));
        }
        if check_domain(domain).is_err() {
            return Err(AddressError::Domain(value.to_string()));
        }
        Ok(Address(value.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }

    /// The part after '@'.
    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(_, d)| d)
    }

    /// Whether `other` (any case, surrounding spaces allowed) is this address.
    pub fn is(&self, other: &str) -> bool {
        self.0.eq_ignore_ascii_case(other.trim())
    }
}

/// Why a text is not a domain name mail can go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("too long")]
    TooLong,
    #[error("needs a dot")]
    NoDot,
    #[error("not a valid host name")]
    NotHostName,
}

/// An ASCII host name with at least two labels (IDNs in punycode, `xn--…`), in any case: the
/// domain rule of [`Address::parse`], for places that read a domain alone (contract domains).
pub fn check_domain(domain: &str) -> Result<(), DomainError> {
    if domain.len() > 253 {
        return Err(DomainError::TooLong);
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 {
        return Err(DomainError::NoDot);
    }
    let label_ok = |l: &&str| {
        !l.is_empty()
            && l.len() <= 63
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if !labels.iter().all(label_ok) {
        return Err(DomainError::NotHostName);
    }
    Ok(())
}

impl FromStr for Address {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Address::parse(s)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Address {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Serialize for Address {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Address {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Address::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_plain_address_only() {
        for ok in ["a@b.jp", "a.b+c@x-y.example.co.jp", " A@B.JP "] {
            let a = Address::parse(ok).unwrap();
            assert_eq!(a.as_str(), ok.trim().to_ascii_lowercase());
        }
        for bad in [
            "",
            "a",
            "a@b",
            "a@@b.jp",
            "a@b.jp,c@d.jp",
            "a b@c.jp",
            "<a@b.jp>",
            ".a@b.jp",
            "a@-b.jp",
            "a@b..jp",
            "あ@b.jp",
            "a@b.jp c@d.jp",
        ] {
            assert!(Address::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Address::parse("x@Example.JP").unwrap().domain(),
            "example.jp"
        );
    }

    #[test]
    fn domains_alone() {
        assert_eq!(check_domain("Example.co.jp"), Ok(()));
        assert_eq!(check_domain("xn--wgv71a.jp"), Ok(()));
        assert_eq!(check_domain("localhost"), Err(DomainError::NoDot));
        for bad in ["exa_mple.jp", "a..jp", "-a.jp", "a.jp.", "@a.jp", "あ.jp"] {
            assert_eq!(check_domain(bad), Err(DomainError::NotHostName), "{bad}");
        }
        assert_eq!(
            check_domain(&format!("{}.jp", "a.".repeat(130))),
            Err(DomainError::TooLong)
        );
    }

    /// Every address this parser accepts is one lettre can send to.
    #[test]
    fn what_we_accept_lettre_accepts() {
        for ok in [
            "a@b.jp",
            "o'brien+x@mail-1.example.co.jp",
            "a!#$%&*=?^_`{|}~@b.jp",
        ] {
            let a = Address::parse(ok).unwrap();
            assert!(a.as_str().parse::<lettre::Address>().is_ok(), "{ok}");
        }
    }
}
