//! TLS for the desk's two clients, the IMAP intake and the SMTP relay: one setup, here and
//! nowhere else. rustls with the ring provider and rustls's safe protocol versions (TLS 1.2 and
//! 1.3), trusting the system's CA certificates (rustls-native-certs, so `SSL_CERT_FILE` and
//! `SSL_CERT_DIR` apply), verifying the server's name. No client certificates.

use std::io;
use std::sync::Arc;

use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls;
use tokio_rustls::rustls::RootCertStore;
use tokio_rustls::rustls::pki_types::{CertificateDer, InvalidDnsNameError, ServerName};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot find a usable trusted CA certificate on this system ({})", problems.join("; "))]
    NoRoots { problems: Vec<String> },
    #[error("cannot set up TLS")]
    Setup(#[source] rustls::Error),
    #[error("cannot check the host {host:?} against a certificate")]
    ServerName {
        host: String,
        #[source]
        source: InvalidDnsNameError,
    },
}

/// The CA certificates a client trusts: read once, shared by the connections of one client.
#[derive(Clone)]
pub struct Roots {
    store: Arc<RootCertStore>,
    /// The same certificates as DER, for clients that build their own configuration (lettre's
    /// STARTTLS).
    certificates: Vec<CertificateDer<'static>>,
}

impl Roots {
    /// The system's trusted CA certificates, those rustls can use. One unusable certificate does
    /// not stop the others; none at all is an error.
    pub fn system() -> Result<Roots, TlsError> {
        let found = rustls_native_certs::load_native_certs();
        let mut store = RootCertStore::empty();
        let certificates: Vec<_> = found
            .certs
            .into_iter()
            .filter(|cert| store.add(cert.clone()).is_ok())
            .collect();
        if certificates.is_empty() {
            return Err(TlsError::NoRoots {
                problems: found.errors.iter().map(ToString::to_string).collect(),
            });
        }
        Ok(Roots {
            store: Arc::new(store),
            certificates,
        })
    }

    pub fn certificates(&self) -> &[CertificateDer<'static>] {
        &self.certificates
    }
}

/// A TLS client for one server: the shared configuration and the name the server's certificate
/// must show.
#[derive(Clone)]
pub struct TlsClient {
    connector: TlsConnector,
    name: ServerName<'static>,
}

impl TlsClient {
    /// A client for `host` (a DNS name or an IP address) trusting `roots`.
    pub fn new(host: &str, roots: &Roots) -> Result<TlsClient, TlsError> {
        let name =
            ServerName::try_from(host.to_owned()).map_err(|source| TlsError::ServerName {
                host: host.to_owned(),
                source,
            })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Setup)?
            .with_root_certificates(roots.store.clone())
            .with_no_client_auth();
        Ok(TlsClient {
            connector: TlsConnector::from(Arc::new(config)),
            name,
        })
    }

    /// The handshake over `tcp`. A certificate the roots do not vouch for, or one for another
    /// name, is an `InvalidData` error carrying rustls's reason.
    pub async fn connect(&self, tcp: TcpStream) -> io::Result<TlsStream<TcpStream>> {
        self.connector.connect(self.name.clone(), tcp).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_is_for_a_dns_name_or_an_ip_address() {
        let roots = Roots {
            store: Arc::new(RootCertStore::empty()),
            certificates: Vec::new(),
        };
        assert!(TlsClient::new("mail.example.co.jp", &roots).is_ok());
        assert!(TlsClient::new("127.0.0.1", &roots).is_ok());
        assert!(matches!(
            TlsClient::new("not a host", &roots),
            Err(TlsError::ServerName { .. })
        ));
    }
}
