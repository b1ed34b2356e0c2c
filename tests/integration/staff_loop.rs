//! Issue 9 item 8: the whole staff loop through real servers. A customer's mail is appended to
//! Dovecot; the desk's notification reaches the SMTP sink; a staff member's reply to it
//! (authenticated by the border MTA's Authentication-Results) is appended to the mailbox; the
//! relay reaches the customer at the sink.

use std::fs;

use madoguchi::config::Config;
use madoguchi::core::inbound::InboundMail;
use madoguchi::desk::Desk;
use madoguchi::endpoints::{MailSender, MailSource};
use madoguchi::intake::Source;
use madoguchi::mail::read_message;

use crate::dovecot::Dovecot;
use crate::smtp_sink::SmtpSink;
use crate::util::{block_on, jst};

fn received(sink: &SmtpSink) -> Vec<(Vec<String>, InboundMail, String)> {
    sink.received()
        .into_iter()
        .map(|r| {
            let text = String::from_utf8_lossy(&r.data).into_owned();
            (r.rcpt_to, read_message(&r.data, &[]).mail, text)
        })
        .collect()
}

#[test]
fn a_staff_reply_goes_from_the_mailbox_to_the_customer_through_real_servers() {
    let dovecot = Dovecot::shared();
    let sink = SmtpSink::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let toml = format!(
        "[desk]\naddress = \"support@example.co.jp\"\nstaff = [\"tanaka@example.co.jp\"]\n\
         notify = [\"support-team@example.co.jp\"]\n\
         [storage]\ndatabase = \"var/db.sqlite3\"\nfiles = \"var/files\"\n\n{}\n\
         [outbound]\nkind = \"smtp\"\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n\
         allow_plaintext = true\nparallel = 1\n\n\
         [staff]\nauthentication = \"authentication-results\"\n\
         trusted_authserv_ids = [\"mx.example.co.jp\"]\n{}",
        dovecot.config_toml(""),
        sink.port(),
        crate::util::NO_REMINDERS
    );
    fs::write(dir.path().join("madoguchi.toml"), toml).expect("config");
    let config = Config::load(dir.path().join("madoguchi.toml")).expect("valid config");
    let mut desk = Desk::open(config).expect("desk");

    dovecot.append(
        "INBOX",
        b"From: Yamada <yamada@alpha.example.co.jp>\r\nTo: support@example.co.jp\r\n\
          Subject: =?UTF-8?B?5ZCM5pyf44Ko44Op44O8?=\r\nMessage-ID: <q1@alpha.example.co.jp>\r\n\
          MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n\
          \xe5\x90\x8c\xe6\x9c\x9f\xe3\x81\x8c\xe6\xad\xa2\xe3\x81\xbe\xe3\x82\x8a\xe3\x81\xbe\xe3\x81\x99\xe3\x80\x82\r\n",
    );
    block_on(async {
        let mut source = MailSource::open(desk.config()).await.expect("mailbox");
        let mut sender = MailSender::open(desk.config()).expect("relay");
        let s = desk
            .pass(&mut source, &mut sender, jst(2026, 11, 25, 10, 1))
            .await
            .expect("pass");
        assert_eq!((s.new_tickets, s.sent), (1, 2), "{s:?}");
        let notice = received(&sink)
            .into_iter()
            .find(|(to, _, _)| to == &["support-team@example.co.jp"])
            .map(|(_, m, _)| m)
            .expect("the notification at the sink");
        let id = notice.message_id.clone().expect("Message-ID");
        let quoted: String = notice.text.lines().map(|l| format!("> {l}\r\n")).collect();
        let reply = format!(
            "Authentication-Results: mx.example.co.jp; dkim=pass header.d=example.co.jp\r\n\
             From: Tanaka <tanaka@example.co.jp>\r\nTo: support@example.co.jp\r\n\
             Subject: Re: {}\r\nMessage-ID: <s1@example.co.jp>\r\nIn-Reply-To: <{id}>\r\n\
             References: <{id}>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n\
             山田様\r\n\r\n同期間隔の設定を見直してください。\r\n\r\n田中\r\n\r\n\
             On Wed, Nov 25, 2026 at 10:05 AM サポート窓口 <support@example.co.jp> wrote:\r\n{quoted}",
            notice.subject
        );
        dovecot.append("INBOX", reply.as_bytes());
        // The source learns of the new message from the server (IDLE, or its next look).
        source
            .wait_for_mail(std::time::Duration::from_secs(10))
            .await
            .expect("wait for mail");
        let s = desk
            .pass(&mut source, &mut sender, jst(2026, 11, 25, 10, 31))
            .await
            .expect("pass");
        assert_eq!((s.follow_ups, s.sent), (1, 1), "{s:?}");
        sender.close().await;
    });
    let all = received(&sink);
    let (to, relay, raw) = all.last().expect("the relay at the sink");
    assert_eq!(to, &["yamada@alpha.example.co.jp"]);
    assert_eq!(relay.subject, "Re: [NEO-DS#000001] 同期エラー");
    assert_eq!(
        relay.in_reply_to,
        vec!["q1@alpha.example.co.jp".to_string()]
    );
    assert!(!raw.contains("Auto-Submitted"), "{raw}");
    assert!(
        relay.text.contains("同期間隔の設定を見直してください。"),
        "{}",
        relay.text
    );
    for secret in ["社内情報", "契約状況", "wrote:", "> "] {
        assert!(
            !relay.text.contains(secret),
            "{secret} relayed: {}",
            relay.text
        );
    }
    assert_eq!(
        dovecot.count("INBOX"),
        0,
        "both acknowledged to the mailbox"
    );
}
