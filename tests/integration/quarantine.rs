//! The quarantine tools with the real binary, on both intakes: `quarantine list` and `show`
//! say what is held and why; after a config fix `quarantine release` runs a message through
//! the desk again (a ticket and a reply), moves its copy out of the quarantine folder, and is
//! refused the second time; a release the desk quarantines again stays held, with its copy.

use std::fs;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::dovecot::Dovecot;
use crate::util::{Desk, jst};

/// Tanaka is staff by mistake: his question names no ticket, so the desk holds it.
const STAFF_BY_MISTAKE: &str = "staff = [\"tanaka@example.co.jp\"]\n";
/// A business morning: Wednesday 25 November 2026, 10:00 in Japan.
const NOW: &str = "2026-11-25T10:00:00+09:00";

fn config(desk_extra: &str, intake: &str) -> String {
    format!(
        "[desk]\naddress = \"support@example.co.jp\"\n{desk_extra}\n\
         [storage]\ndatabase = \"var/db.sqlite3\"\nfiles = \"var/files\"\n\n{intake}\n\
         [outbound]\nkind = \"file\"\ndir = \"var/outbox\"\n"
    )
}

const MAILDIR: &str = "[intake]\nkind = \"maildir\"\nmaildir = \"var/inbox\"\n";

fn staff_question(message_id: Option<&str>) -> Vec<u8> {
    let id = message_id
        .map(|id| format!("Message-ID: <{id}>\r\n"))
        .unwrap_or_default();
    format!(
        "From: Tanaka Ichiro <tanaka@example.co.jp>\r\nTo: support@example.co.jp\r\n\
         Subject: =?UTF-8?B?44K144O844OQ44O856e76Kit44Gu6LOq5ZWP?=\r\n{id}\
         Date: Wed, 25 Nov 2026 09:50:00 +0900\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=UTF-8\r\n\r\nサーバーの移設について教えてください。\r\n"
    )
    .into_bytes()
}

fn no_from(message_id: &str) -> Vec<u8> {
    format!(
        "To: support@example.co.jp\r\nSubject: ???\r\nMessage-ID: <{message_id}>\r\n\
         Date: Wed, 25 Nov 2026 09:50:00 +0900\r\n\r\nno sender\r\n"
    )
    .into_bytes()
}

fn deliver(desk: &Desk, name: &str, raw: &[u8], at: DateTime<Utc>) {
    let inbox = desk.dir().join("var/inbox");
    for sub in ["new", "cur", "tmp"] {
        fs::create_dir_all(inbox.join(sub)).expect("maildir");
    }
    let path = inbox.join("new").join(name);
    fs::write(&path, raw).expect("deliver");
    fs::File::options()
        .write(true)
        .open(&path)
        .and_then(|f| f.set_modified(at.into()))
        .expect("date the delivery");
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The outbox files for `to` (the file sender writes the envelope into each).
fn mail_to(outbox: &Path, to: &str) -> Vec<PathBuf> {
    fs::read_dir(outbox)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    fs::read_to_string(p).is_ok_and(|t| {
                        t.lines().any(|l| {
                            l.starts_with("X-Envelope-To:") && l.contains(&format!("<{to}>"))
                        })
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

fn held(desk: &Desk) -> Vec<Value> {
    desk.json(&["quarantine", "list"])
        .as_array()
        .cloned()
        .expect("a list")
}

fn id_with_reason(list: &[Value], reason: &str) -> i64 {
    list.iter()
        .find(|m| m["reason"].as_str().is_some_and(|r| r.contains(reason)))
        .and_then(|m| m["id"].as_i64())
        .unwrap_or_else(|| panic!("no message held for {reason:?} in {list:#?}"))
}

#[test]
fn a_maildir_message_held_for_a_config_mistake_is_released_ticketed_and_answered() {
    let desk = Desk::with_config(&config(STAFF_BY_MISTAKE, MAILDIR));
    let raw = staff_question(Some("q-tanaka@example.co.jp"));
    deliver(&desk, "1.host", &raw, jst(2026, 11, 25, 9, 50));
    deliver(
        &desk,
        "2.host",
        &no_from("q-nobody@example.jp"),
        jst(2026, 11, 25, 9, 51),
    );
    desk.run(&["run", "--once", "--now", NOW]).assert_success();
    let quarantine = desk.dir().join("var/inbox/.Quarantine/cur");
    assert_eq!(files_in(&quarantine), ["1.host:2,S", "2.host:2,S"]);

    let list = held(&desk);
    assert_eq!(list.len(), 2, "{list:#?}");
    let staff = id_with_reason(&list, "mail from staff that refers to no ticket");
    let nobody = id_with_reason(&list, "no usable From address");
    let entry = list.iter().find(|m| m["id"] == staff).expect("entry");
    assert_eq!(entry["from"], "tanaka@example.co.jp");
    assert_eq!(entry["subject"], "サーバー移設の質問");
    assert_eq!(entry["received_at"], "2026-11-25T00:50:00Z");
    assert_eq!(entry["size"], raw.len());
    let source = entry["source"].as_str().expect("source");
    assert!(
        source.starts_with("maildir:") && source.ends_with("var/inbox"),
        "{source}"
    );
    let text = desk.run(&["quarantine", "list"]);
    text.assert_success().assert_stdout_has(&[
        "tanaka@example.co.jp",
        "サーバー移設の質問",
        "reason: mail from staff that refers to no ticket",
        "(no From)",
    ]);
    let shown = desk.run(&["quarantine", "show", &staff.to_string()]);
    shown.assert_success();
    assert_eq!(
        shown.stdout.as_bytes(),
        raw.as_slice(),
        "show gives the raw message"
    );

    // Nothing to release yet but what is held.
    desk.run(&["quarantine", "release", "999"])
        .assert_code(2)
        .assert_stderr_has(&["there is no message 999"]);
    // Tanaka is a customer after all: the admin fixes the config and releases his mail.
    fs::write(desk.config(), config("", MAILDIR)).expect("config");
    let released = desk.run(&["quarantine", "release", &staff.to_string()]);
    released.assert_success().assert_stdout_has(&[
        "new ticket [NEO-DS#000001]",
        "moved from quarantine to processed",
    ]);
    assert_eq!(
        files_in(&quarantine),
        ["2.host:2,S"],
        "the copy left quarantine"
    );
    assert!(files_in(&desk.dir().join("var/inbox/cur")).contains(&"1.host:2,S".to_owned()));
    let tickets = desk.json(&["tickets", "list"]);
    assert_eq!(tickets.as_array().map(Vec::len), Some(1), "{tickets:#}");
    assert_eq!(tickets[0]["customer"], "tanaka@example.co.jp");
    assert_eq!(
        tickets[0]["received_at"], "2026-11-25T00:50:00Z",
        "arrival kept"
    );
    // The reply goes out with the next pass (on the real clock, as the release was).
    let outbox = desk.dir().join("var/outbox");
    assert!(mail_to(&outbox, "tanaka@example.co.jp").is_empty());
    desk.run(&["run", "--once"]).assert_success();
    assert_eq!(mail_to(&outbox, "tanaka@example.co.jp").len(), 1);

    // Released once only; what was not quarantined is not released.
    desk.run(&["quarantine", "release", &staff.to_string()])
        .assert_code(2)
        .assert_stderr_has(&["already released"]);
    let article = desk.json(&["quarantine", "list", "--all"]);
    let to = article
        .as_array()
        .and_then(|l| l.iter().find(|m| m["id"] == staff))
        .map(|m| m["released_to"].clone())
        .expect("the released message in --all");
    desk.run(&["quarantine", "release", &to.to_string()])
        .assert_code(2)
        .assert_stderr_has(&["is not quarantined"]);

    // No config fix gives mail without a sender a From: held again, the copy stays.
    let again = desk.json(&["quarantine", "release", &nobody.to_string()]);
    assert_eq!(again["verdict"], "quarantined", "{again:#}");
    assert_eq!(again["reason"], "no usable From address");
    assert_eq!(again["mailbox"], "kept");
    assert_eq!(files_in(&quarantine), ["2.host:2,S"]);
    let list = held(&desk);
    assert_eq!(list.len(), 1, "{list:#?}");
    assert_eq!(list[0]["id"], again["released_to"]);
    assert_eq!(list[0]["source"], "release");
    // Released again (the held row is the release's own): its copy is found by the origin.
    let twice = desk.json(&["quarantine", "release", &again["released_to"].to_string()]);
    assert_eq!(twice["verdict"], "quarantined");
    assert_eq!(
        desk.json(&["quarantine", "list", "--all"])
            .as_array()
            .map(Vec::len),
        Some(4)
    );
}

#[test]
fn an_imap_message_held_in_the_quarantine_folder_is_released_and_the_folder_emptied() {
    let dovecot = Dovecot::shared();
    let intake = dovecot.config_toml("");
    let desk = Desk::with_config(&config(STAFF_BY_MISTAKE, &intake));
    let at = "25-Nov-2026 09:50:00 +0900";
    dovecot.append_at("INBOX", &staff_question(Some("imap-q@example.co.jp")), at);
    // No Message-ID: found in the folder by its content alone.
    dovecot.append_at("INBOX", &staff_question(None), at);
    dovecot.append_at("INBOX", &no_from("imap-nobody@example.jp"), at);
    desk.run(&["run", "--once", "--now", NOW]).assert_success();
    assert_eq!(dovecot.count("INBOX"), 0);
    assert_eq!(dovecot.count("Quarantine"), 3);

    let list = held(&desk);
    assert_eq!(list.len(), 3, "{list:#?}");
    let source = format!(
        "imap://{}@127.0.0.1:{}/INBOX",
        dovecot.user(),
        dovecot.port()
    );
    assert!(
        list.iter().all(|m| m["source"] == source.as_str()),
        "{list:#?}"
    );
    let with_id = list
        .iter()
        .find(|m| m["message_id"] == "imap-q@example.co.jp")
        .and_then(|m| m["id"].as_i64())
        .expect("the staff question with a Message-ID");
    let without_id = list
        .iter()
        .find(|m| m["from"] == "tanaka@example.co.jp" && m["message_id"].is_null())
        .and_then(|m| m["id"].as_i64())
        .expect("the staff question without a Message-ID");
    let nobody = id_with_reason(&list, "no usable From address");

    fs::write(desk.config(), config("", &intake)).expect("config");
    let first = desk.json(&["quarantine", "release", &with_id.to_string()]);
    assert_eq!(
        (first["verdict"].as_str(), first["mailbox"].as_str()),
        (Some("article"), Some("moved")),
        "{first:#}"
    );
    assert_eq!(first["new_ticket"], true);
    assert_eq!(
        (dovecot.count("Quarantine"), dovecot.count("Processed")),
        (2, 1)
    );
    let second = desk.json(&["quarantine", "release", &without_id.to_string()]);
    assert_eq!(second["mailbox"], "moved", "{second:#}");
    assert_eq!(
        (dovecot.count("Quarantine"), dovecot.count("Processed")),
        (1, 2)
    );
    // Held again: the copy stays where staff see held mail.
    let again = desk.json(&["quarantine", "release", &nobody.to_string()]);
    assert_eq!(
        (again["verdict"].as_str(), again["mailbox"].as_str()),
        (Some("quarantined"), Some("kept"))
    );
    assert_eq!(dovecot.count("Quarantine"), 1);
    // What remains in the folder is the message without a sender.
    let left = dovecot.maildir("Quarantine");
    let names: Vec<PathBuf> = ["cur", "new"]
        .iter()
        .flat_map(|sub| fs::read_dir(left.join(sub)).into_iter().flatten())
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    let text = fs::read_to_string(&names[0]).expect("the held copy");
    assert!(text.contains("imap-nobody@example.jp"), "{text}");

    let tickets = desk.json(&["tickets", "list"]);
    assert_eq!(tickets.as_array().map(Vec::len), Some(2), "{tickets:#}");
    desk.run(&["quarantine", "release", &with_id.to_string()])
        .assert_code(2)
        .assert_stderr_has(&["already released"]);
}
