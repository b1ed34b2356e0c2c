//! Floods (issue 12, item 4): one sender writing thousands of mails, through the desk on a
//! Maildir with a fixed clock. Nothing is dropped, almost nothing goes out.

use crate::desk::{TestDesk, simple_mail};
use crate::util::jst;

const STAFF: &str = "support-team@example.co.jp";

/// 2,000 mails in ten minutes from one sender: at most 5 automatic replies (the per-sender
/// limit), tickets only up to `flood_per_hour`, one flood notice, and every mail on a ticket.
#[test]
fn two_thousand_mails_in_ten_minutes_from_one_sender() {
    const N: usize = 2_000;
    let mut t = TestDesk::new();
    let flooder = "robot@flood.example.jp";
    for i in 0..N {
        let at = jst(2026, 11, 25, 10, 0) + chrono::Duration::milliseconds((i as i64) * 300);
        t.deliver(
            &simple_mail(
                flooder,
                &format!("alert {i}"),
                &format!("f{i}@flood.example.jp"),
                "",
            ),
            at,
        );
    }
    let started = std::time::Instant::now();
    let s = t.pass(jst(2026, 11, 25, 10, 10));
    let took = started.elapsed();
    assert_eq!(s.messages, N, "{s:?}");
    let sent = t.sent();
    let replies = sent.iter().filter(|(to, _, _)| to == flooder).count();
    assert!(replies <= 5, "{replies} automatic replies");
    let tickets = t.count("SELECT COUNT(*) FROM tickets");
    assert_eq!(tickets, 10, "flood_per_hour = 10 by default");
    let flood_notices = sent
        .iter()
        .filter(|(to, m, _)| to == STAFF && m.subject.contains("大量受信"))
        .count();
    assert_eq!(flood_notices, 1);
    let notices = sent.iter().filter(|(to, _, _)| to == STAFF).count();
    assert_eq!(notices, 11, "a notice per ticket and one flood notice");
    // Nothing lost: every mail is an article of a ticket.
    assert_eq!(
        t.count("SELECT COUNT(*) FROM messages WHERE verdict = 'article' AND ticket IS NOT NULL"),
        N as i64
    );
    assert_eq!(
        t.count("SELECT COUNT(*) FROM articles WHERE direction = 'in'"),
        N as i64
    );
    eprintln!("2,000 flood mails decided in {took:?}");
    // Another sender is not affected by the flood.
    t.deliver(
        &simple_mail(
            "yamada@alpha.example.co.jp",
            "質問",
            "y1@alpha.example.co.jp",
            "",
        ),
        jst(2026, 11, 25, 10, 11),
    );
    t.pass(jst(2026, 11, 25, 10, 12));
    assert_eq!(t.count("SELECT COUNT(*) FROM tickets"), 11);
    // An hour later the sender is a customer like any other again.
    t.deliver(
        &simple_mail(flooder, "next", "f-next@flood.example.jp", ""),
        jst(2026, 11, 25, 11, 30),
    );
    t.pass(jst(2026, 11, 25, 11, 31));
    assert_eq!(t.count("SELECT COUNT(*) FROM tickets"), 12);
}
