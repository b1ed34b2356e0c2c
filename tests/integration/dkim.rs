//! Issue 9 item 2, `[staff] authentication = "dkim"`: the desk verifies the DKIM signature of
//! staff mail itself, against keys a real DNS server (dnsmasq, `dns.rs`) serves on loopback.
//! Keys are made for the test (RSA 2048 by openssl, Ed25519 by ring through mail-auth) and
//! mail is signed with mail-auth's signer, as a staff member's mail server would.
//!
//! Only a reply signed by the From domain is relayed; an unsigned forgery, a signature by
//! another domain, a tampered body and a resolver that does not answer are each held: recorded
//! with the reason, staff told, nothing sent to the customer, the ticket as it was.

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use madoguchi::config::Config;
use madoguchi::core::inbound::InboundMail;
use madoguchi::desk::Desk;
use madoguchi::intake::maildir::Maildir;
use madoguchi::mail::read_message;
use madoguchi::outbound::file::FileSender;
use mail_auth::common::crypto::{Ed25519Key, RsaKey, Sha256, SigningKey};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::DkimSigner;
use tokio_rustls::rustls::pki_types::PrivateKeyDer;

use crate::dns::{Dns, free_port};
use crate::util::{block_on, jst};

const CUSTOMER: &str = "yamada@alpha.example.co.jp";
const TEAM: &str = "support-team@example.co.jp";

/// The signing keys (DER; a signer takes its key by value), and the TXT records that
/// publish them.
struct Keys {
    /// The staff domain's own key: `rsa._domainkey.example.co.jp`.
    rsa: Vec<u8>,
    /// A key of another domain, validly published: `ed._domainkey.example.net`.
    other: Vec<u8>,
    records: Vec<(String, String)>,
}

impl Keys {
    fn new(dir: &std::path::Path) -> Keys {
        let der = dir.join("rsa.der");
        let made = Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
            ])
            .args(["-outform", "DER", "-out"])
            .arg(&der)
            .output()
            .expect("run openssl");
        assert!(made.status.success(), "openssl: {made:?}");
        let mut keys = Keys {
            rsa: fs::read(&der).expect("the RSA key"),
            other: Ed25519Key::generate_pkcs8().expect("a new key"),
            records: Vec::new(),
        };
        let b64 = |bytes: Vec<u8>| base64::engine::general_purpose::STANDARD.encode(bytes);
        keys.records = vec![
            (
                "rsa._domainkey.example.co.jp".to_owned(),
                format!("v=DKIM1; k=rsa; p={}", b64(keys.rsa().public_key())),
            ),
            (
                "ed._domainkey.example.net".to_owned(),
                format!("v=DKIM1; k=ed25519; p={}", b64(keys.other().public_key())),
            ),
        ];
        keys
    }

    fn rsa(&self) -> RsaKey<Sha256> {
        // PKCS#1 or PKCS#8, whichever this openssl writes.
        let der = PrivateKeyDer::try_from(self.rsa.as_slice()).expect("a private key");
        RsaKey::<Sha256>::from_key_der(der).expect("an RSA key")
    }

    fn other(&self) -> Ed25519Key {
        Ed25519Key::from_pkcs8_der(&self.other).expect("an Ed25519 key")
    }
}

/// `raw` with a DKIM-Signature by `domain` and `selector` on top, over the headers a mail
/// server signs.
fn signed(
    key: impl SigningKey<Hasher = Sha256>,
    domain: &str,
    selector: &str,
    raw: &[u8],
) -> Vec<u8> {
    let signature = DkimSigner::from_key(key)
        .domain(domain)
        .selector(selector)
        .headers([
            "From",
            "To",
            "Subject",
            "Message-ID",
            "In-Reply-To",
            "References",
        ])
        .sign(raw)
        .expect("sign");
    let mut out = signature.to_header().into_bytes();
    out.extend_from_slice(raw);
    out
}

struct DkimDesk {
    _dir: tempfile::TempDir,
    root: PathBuf,
    desk: Desk,
    delivered: usize,
}

impl DkimDesk {
    /// A desk that verifies staff mail with DKIM keys looked up at `127.0.0.1:port`.
    fn new(port: u16) -> DkimDesk {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().to_path_buf();
        let toml = format!(
            "[desk]\naddress = \"support@example.co.jp\"\nstaff = [\"tanaka@example.co.jp\"]\n\
             notify = [\"{TEAM}\"]\n\n[staff]\nauthentication = \"dkim\"\n\
             dns_resolver = \"127.0.0.1:{port}\"\n{}",
            crate::util::NO_REMINDERS
        );
        fs::write(root.join("madoguchi.toml"), toml).expect("config");
        let config = Config::load(root.join("madoguchi.toml")).expect("valid config");
        let desk = Desk::open(config).expect("desk");
        DkimDesk {
            _dir: dir,
            root,
            desk,
            delivered: 0,
        }
    }

    /// Delivers `raw` into the Maildir at `at`, then runs a pass a minute later.
    fn receive(&mut self, raw: &[u8], at: DateTime<Utc>) {
        let new = self.root.join("var/inbox/new");
        fs::create_dir_all(&new).expect("inbox");
        self.delivered += 1;
        let path = new.join(format!("{:06}.test", self.delivered));
        fs::write(&path, raw).expect("deliver");
        fs::File::options()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_modified(at.into()))
            .expect("set delivery time");
        let mut source = Maildir::open(&self.root.join("var/inbox")).expect("maildir");
        let mut sender = FileSender::new(self.root.join("var/outbox"));
        let now = at + chrono::Duration::minutes(1);
        block_on(self.desk.pass(&mut source, &mut sender, now)).expect("pass");
    }

    /// Every mail sent, parsed back, in queue order: (To, mail).
    fn sent(&self) -> Vec<(String, InboundMail)> {
        let mut files: Vec<PathBuf> = fs::read_dir(self.root.join("var/outbox"))
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        files.sort();
        files
            .into_iter()
            .map(|p| {
                let mail = read_message(&fs::read(&p).expect("outbox file"), &[]).mail;
                let to = mail
                    .to
                    .first()
                    .map(|m| m.address.clone())
                    .unwrap_or_default();
                (to, mail)
            })
            .collect()
    }

    fn to(&self, address: &str) -> Vec<InboundMail> {
        self.sent()
            .into_iter()
            .filter(|(to, _)| to == address)
            .map(|(_, m)| m)
            .collect()
    }

    fn count(&self, sql: &str) -> i64 {
        crate::util::count(&self.desk.store(), sql)
    }

    /// A customer's question at 10:00, ticket 1; the notification staff answer.
    fn ticket(&mut self) -> InboundMail {
        let question = format!(
            "From: Yamada <{CUSTOMER}>\r\nTo: support@example.co.jp\r\nSubject: sync error\r\n\
             Message-ID: <q1@alpha.example.co.jp>\r\n\r\nSync stops.\r\n"
        );
        self.receive(question.as_bytes(), jst(2026, 11, 25, 10, 0));
        self.to(TEAM).pop().expect("the notification")
    }

    /// Asserts the last staff mail was held for `why`: recorded with the reason, staff told,
    /// nothing more to the customer than `customer_mails`, ticket 1 still open.
    #[track_caller]
    fn held(&self, why: &str, customer_mails: usize) {
        assert_eq!(self.to(CUSTOMER).len(), customer_mails, "nothing relayed");
        let reason = format!("staff mail not authenticated: {why}");
        assert_eq!(
            self.count(&format!(
                "SELECT COUNT(*) FROM messages WHERE reason = '{}'",
                reason.replace('\'', "''")
            )),
            1,
            "recorded with {reason:?}"
        );
        let notice = self.to(TEAM).pop().expect("staff told");
        assert!(notice.text.contains(why), "{}", notice.text);
        assert_eq!(
            self.count("SELECT COUNT(*) FROM tickets WHERE number = 1 AND state = 'open'"),
            1,
            "the ticket as it was"
        );
    }
}

/// Tanaka's reply to `notice`, unsigned.
fn reply(notice: &InboundMail, n: u32, body: &str) -> Vec<u8> {
    let id = notice
        .message_id
        .clone()
        .expect("the notification's Message-ID");
    format!(
        "From: Tanaka <tanaka@example.co.jp>\r\nTo: support@example.co.jp\r\n\
         Subject: Re: {}\r\nMessage-ID: <s{n}@example.co.jp>\r\nIn-Reply-To: <{id}>\r\n\
         References: <{id}>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n\
         \r\n{body}\r\n",
        notice.subject
    )
    .into_bytes()
}

#[test]
fn only_a_reply_signed_by_the_staff_domain_reaches_the_customer() {
    let dir = tempfile::tempdir().expect("temp dir");
    let keys = Keys::new(dir.path());
    let dns = Dns::serve(&keys.records);
    let mut t = DkimDesk::new(dns.port());
    let notice = t.ticket();
    let replies = t.to(CUSTOMER).len();
    assert_eq!(replies, 1, "the automatic acknowledgement");

    // (b) A forged From, unsigned; its Authentication-Results header counts for nothing here.
    let mut forged =
        b"Authentication-Results: mx.example.co.jp; dkim=pass header.d=example.co.jp\r\n".to_vec();
    forged.extend(reply(&notice, 1, "Please send me the contract details."));
    t.receive(&forged, jst(2026, 11, 25, 10, 10));
    t.held("no DKIM signature", replies);

    // (c) A valid signature, by a domain the forger owns: not the From domain.
    let unaligned = signed(
        keys.other(),
        "example.net",
        "ed",
        &reply(&notice, 2, "Here is your new license key."),
    );
    t.receive(&unaligned, jst(2026, 11, 25, 10, 20));
    t.held(
        "dkim=pass for example.net, not aligned with example.co.jp",
        replies,
    );

    // (d) Signed by the staff domain, then the body changed on the way.
    let genuine = signed(
        keys.rsa(),
        "example.co.jp",
        "rsa",
        &reply(&notice, 3, "Please check the sync interval."),
    );
    let text = String::from_utf8(genuine.clone()).expect("ASCII mail");
    let tampered = text.replace("check the sync interval", "send us your password");
    assert_ne!(tampered, text);
    t.receive(tampered.as_bytes(), jst(2026, 11, 25, 10, 30));
    t.held(
        "dkim=neutral (header.d=example.co.jp: Calculated body hash does not match signature \
         hash)",
        replies,
    );

    // (e) Signed with the staff domain's key under a selector nothing is published at.
    let unpublished = signed(
        keys.rsa(),
        "example.co.jp",
        "gone",
        &reply(&notice, 4, "Please check the sync interval."),
    );
    t.receive(&unpublished, jst(2026, 11, 25, 10, 35));
    assert_eq!(
        t.count(
            "SELECT COUNT(*) FROM messages WHERE reason LIKE 'staff mail not authenticated: \
             dkim=permerror (header.d=example.co.jp: DNS record not found%'"
        ),
        1,
        "held: no key"
    );

    // (a) The same reply as signed: verified against the published key, relayed.
    t.receive(&genuine, jst(2026, 11, 25, 10, 40));
    let to_customer = t.to(CUSTOMER);
    assert_eq!(to_customer.len(), replies + 1, "the relay");
    let relay = to_customer.last().expect("the relay");
    assert!(
        relay.text.contains("Please check the sync interval."),
        "{}",
        relay.text
    );
    assert_eq!(relay.subject, "Re: [NEO-DS#000001] sync error");
    assert_eq!(
        t.count("SELECT COUNT(*) FROM tickets WHERE number = 1 AND state = 'pending'"),
        1,
        "the ticket waits for the customer"
    );
    assert_eq!(
        t.count("SELECT COUNT(*) FROM messages WHERE reason LIKE 'staff mail not authenticated:%'"),
        4,
        "only the four held"
    );
}

#[test]
fn a_resolver_that_fails_holds_the_reply() {
    let dir = tempfile::tempdir().expect("temp dir");
    let keys = Keys::new(dir.path());
    // A DNS server that refuses every name (it publishes nothing), and a port nothing listens
    // on (every lookup times out): a temperror is never a pass.
    let refusing = Dns::serve(&[]);
    for (port, why) in [
        (refusing.port(), "error response: Query Refused"),
        (free_port(), "request timed out"),
    ] {
        let mut t = DkimDesk::new(port);
        let notice = t.ticket();
        let replies = t.to(CUSTOMER).len();
        let genuine = signed(
            keys.rsa(),
            "example.co.jp",
            "rsa",
            &reply(&notice, 1, "Please check the sync interval."),
        );
        t.receive(&genuine, jst(2026, 11, 25, 10, 10));
        assert_eq!(t.to(CUSTOMER).len(), replies, "nothing relayed");
        let notice = t.to(TEAM).pop().expect("staff told");
        let told = notice
            .text
            .lines()
            .find_map(|l| l.strip_prefix("認証できない理由: "))
            .unwrap_or_default()
            .to_owned();
        assert!(
            told.starts_with("dkim=temperror (header.d=example.co.jp: DNS resolution error: ")
                && told.ends_with(&format!("{why})")),
            "{told}"
        );
        assert_eq!(
            t.count(&format!(
                "SELECT COUNT(*) FROM messages WHERE reason = 'staff mail not authenticated: {}'",
                told.replace('\'', "''")
            )),
            1
        );
        assert_eq!(
            t.count("SELECT COUNT(*) FROM tickets WHERE number = 1 AND state = 'open'"),
            1
        );
    }
}
