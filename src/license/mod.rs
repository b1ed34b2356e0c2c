//! Placeholder of the issuer interface (replaced by the issuer branch's module).

use chrono::{DateTime, Utc};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct KeyRequest {
    pub jti: String,
    pub product: String,
    pub license_serial: String,
    pub contract_id: String,
    pub server_id: String,
    pub issued_at: DateTime<Utc>,
    pub ticket: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedKey {
    pub key: String,
    pub key_id: String,
}

#[derive(Debug)]
pub enum Issuer {}

#[derive(Debug, thiserror::Error)]
pub enum LicenseError {
    #[error("cannot issue")]
    Placeholder,
}

impl Issuer {
    pub async fn issue(&self, _req: &KeyRequest) -> Result<IssuedKey, LicenseError> {
        match *self {}
    }
}
