//! The I/O half of `[staff] authentication = "dkim"`: the desk verifies the DKIM signatures of
//! staff mail itself (stalwart's mail-auth). For each message whose From is a `desk.staff`
//! address, the signing keys are looked up in DNS and the signatures checked; what was found
//! goes to the core as data, a [`DkimReport`], and `core::auth::dkim` judges it.
//!
//! Only staff mail is checked: a lookup for every customer's signed mail would be wasted, and
//! would put intake at the mercy of DNS. A lookup that fails is the signature's `temperror`,
//! not an error of the pass: the mail is held (fail closed) and intake goes on.

use std::net::SocketAddr;
use std::sync::Arc;

use mail_auth::common::crypto::Algorithm;
use mail_auth::hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts,
};
use mail_auth::hickory_resolver::net::NetError;
use mail_auth::{AuthenticatedMessage, DkimOutput, MessageAuthenticator};

use crate::core::auth::{DkimReport, DkimResult, DkimSignature};

/// Why DKIM verification cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum DkimError {
    #[error(
        "cannot read the system's DNS resolver configuration (/etc/resolv.conf) to look up DKIM \
         keys; or set [staff] dns_resolver"
    )]
    SystemResolver(#[source] NetError),
    #[error("cannot set up the DNS resolver at {at} to look up DKIM keys")]
    Resolver {
        at: SocketAddr,
        #[source]
        source: NetError,
    },
}

/// The verifier: a DNS resolver, and whose mail it checks.
pub struct DkimVerifier {
    authenticator: MessageAuthenticator,
    /// `desk.staff`, lowercased.
    staff: Vec<String>,
}

impl DkimVerifier {
    /// A verifier looking keys up at `resolver` (UDP, and TCP for long answers), else with the
    /// system's resolvers. Reads `/etc/resolv.conf` in the latter case; no lookup yet.
    pub fn new(resolver: Option<SocketAddr>, staff: Vec<String>) -> Result<Self, DkimError> {
        let authenticator = match resolver {
            None => MessageAuthenticator::new_system_conf().map_err(DkimError::SystemResolver)?,
            Some(at) => {
                let connections = [ConnectionConfig::udp(), ConnectionConfig::tcp()]
                    .into_iter()
                    .map(|mut c| {
                        c.port = at.port();
                        c
                    })
                    .collect();
                let server = NameServerConfig::new(at.ip(), true, connections);
                MessageAuthenticator::new(
                    ResolverConfig::from_name_servers(vec![server]),
                    ResolverOpts::default(),
                )
                .map_err(|source| DkimError::Resolver { at, source })?
            }
        };
        Ok(DkimVerifier {
            authenticator,
            staff,
        })
    }

    /// What the signatures of `raw` say, when its From names a staff address (`None`
    /// otherwise, and for bytes with no header at all). Parsing hashes the body: call it off
    /// the async runtime's own thread.
    pub async fn report(&self, raw: &[u8]) -> Option<DkimReport> {
        let message = AuthenticatedMessage::parse(raw)?;
        if !message.from.iter().any(|a| self.staff.contains(a)) {
            return None;
        }
        let outputs = self.authenticator.verify_dkim(&message).await;
        let report = DkimReport {
            from: message.from.clone(),
            signatures: outputs.iter().map(signature).collect(),
        };
        tracing::debug!(?report, "DKIM checked.");
        Some(report)
    }
}

/// Runs `reports` for every message of a batch at once, on a blocking thread (the body hashes
/// and signature checks are CPU work), the DNS lookups driven by the runtime of `handle`.
pub fn reports_blocking(
    verifier: &Arc<DkimVerifier>,
    handle: &tokio::runtime::Handle,
    raws: &[&[u8]],
) -> Vec<Option<DkimReport>> {
    handle.block_on(futures::future::join_all(
        raws.iter().map(|raw| verifier.report(raw)),
    ))
}

/// One verifier output as the core's data.
fn signature(output: &DkimOutput<'_>) -> DkimSignature {
    let why = |e: &mail_auth::Error| e.to_string();
    let result = match output.result() {
        mail_auth::DkimResult::Pass => DkimResult::Pass,
        mail_auth::DkimResult::Fail(e) => DkimResult::Fail(why(e)),
        mail_auth::DkimResult::Neutral(e) => DkimResult::Neutral(why(e)),
        mail_auth::DkimResult::PermError(e) => DkimResult::PermError(why(e)),
        mail_auth::DkimResult::TempError(e) => DkimResult::TempError(why(e)),
        mail_auth::DkimResult::None => DkimResult::Neutral("no result".to_owned()),
    };
    match output.signature() {
        Some(s) => DkimSignature {
            domain: s.d.clone(),
            selector: s.s.clone(),
            algorithm: match s.a {
                Algorithm::RsaSha1 => "rsa-sha1",
                Algorithm::RsaSha256 => "rsa-sha256",
                Algorithm::Ed25519Sha256 => "ed25519-sha256",
            }
            .to_owned(),
            signs_from: s.h.iter().any(|h| h.trim().eq_ignore_ascii_case("from")),
            result,
        },
        // A DKIM-Signature header that could not be read.
        None => DkimSignature {
            domain: String::new(),
            selector: String::new(),
            algorithm: String::new(),
            signs_from: false,
            result,
        },
    }
}
