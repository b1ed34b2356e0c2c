//! The config as a whole: files in, `Config` or every problem out.

use std::path::Path;

use chrono::{NaiveDate, NaiveTime, Weekday};

use super::*;
use crate::core::calendar::{BusinessCalendar, CalendarSpec, CompanyClosure, Window};
use crate::core::classify::{Category, ClassifyRules};
use crate::core::form::FormLabels;

mod license;
mod metrics;
mod servers;
mod staff;

fn parse(text: &str) -> Result<Config, Diagnostics> {
    Config::from_toml_str(text, Path::new("/srv/desk"))
}

fn errors(text: &str) -> Diagnostics {
    match parse(text) {
        Ok(c) => panic!("expected errors, got {c:#?}"),
        Err(e) => e,
    }
}

fn t(s: &str) -> NaiveTime {
    NaiveTime::parse_from_str(s, "%H:%M").unwrap()
}

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

const MINIMAL: &str = "[desk]\naddress = \"support@example.co.jp\"\n";

#[test]
fn minimal_file_gets_documented_defaults() {
    let c = parse(MINIMAL).unwrap();
    assert_eq!(c.desk.address, "support@example.co.jp");
    assert_eq!(c.desk.ticket_prefix, "NEO-DS");
    assert!(c.desk.staff.is_empty() && c.desk.notify.is_empty());
    assert!(c.desk.form_senders.is_empty());
    assert_eq!(c.desk.reopen_days, 14);
    assert_eq!(c.desk.auto_reply_limit_per_hour, 5);
    assert_eq!(c.calendar.timezone, chrono_tz::Asia::Tokyo);
    assert_eq!(
        c.calendar.windows,
        vec![
            Window {
                start: t("09:00"),
                end: t("12:00")
            },
            Window {
                start: t("13:00"),
                end: t("17:30")
            },
        ]
    );
    assert_eq!(
        c.calendar.weekdays,
        vec![
            Weekday::Mon,
            Weekday::Tue,
            Weekday::Wed,
            Weekday::Thu,
            Weekday::Fri
        ]
    );
    assert!(c.calendar.national_holidays);
    assert!(c.calendar.company_holidays.is_empty());
    assert_eq!(c.calendar.license_cutoff, t("17:00"));
    assert_eq!(c.calendar, CalendarSpec::default());
    assert_eq!(
        c.storage.database,
        Path::new("/srv/desk/var/madoguchi.sqlite3")
    );
    assert_eq!(c.storage.files, Path::new("/srv/desk/var/files"));
    assert_eq!(
        c.intake,
        Intake::Maildir {
            dir: "/srv/desk/var/inbox".into()
        }
    );
    assert_eq!(
        c.outbound,
        Outbound::File {
            dir: "/srv/desk/var/outbox".into()
        }
    );
    assert_eq!(c.staff, Staff::default());
    assert!(c.warnings().is_empty());
    assert_eq!(c.source_path, None);
    assert_eq!(
        Config::default_for(Path::new("/srv/desk"), "support@example.co.jp").unwrap(),
        c
    );
}

#[test]
fn default_for_rejects_a_bad_address() {
    let e = Config::default_for(Path::new("/x"), "not an address").unwrap_err();
    assert_eq!(e.keys(), ["desk.address"]);
}

#[test]
fn missing_address_is_the_only_required_key() {
    assert_eq!(errors("").keys(), ["desk.address"]);
    assert_eq!(errors("[desk]\n").keys(), ["desk.address"]);
}

/// `deploy/madoguchi.toml` is `/etc/madoguchi/madoguchi.toml` as the .deb and the source install
/// put it: it must pass check-config as is, and keep everything in the service's state directory
/// (relative paths would resolve under /etc/madoguchi, which the service cannot write).
#[test]
fn installed_default_validates_and_stays_in_the_state_directory() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/madoguchi.toml");
    let c = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert!(c.warnings().is_empty(), "{:?}", c.warnings());
    assert!(c.license.is_none());
    let state = Path::new("/var/lib/madoguchi");
    let Intake::Maildir { dir: inbox } = &c.intake else {
        panic!("intake: {:?}", c.intake)
    };
    let Outbound::File { dir: outbox } = &c.outbound else {
        panic!("outbound: {:?}", c.outbound)
    };
    for p in [&c.storage.database, &c.storage.files, inbox, outbox] {
        assert!(
            p.starts_with(state),
            "{} is outside {}",
            p.display(),
            state.display()
        );
    }
}

#[test]
fn example_file_validates() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/madoguchi.example.toml");
    let c = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let dir = path.parent().unwrap();
    assert_eq!(c.source_path.as_deref(), Some(path.as_path()));
    assert_eq!(c.desk.address, "support@example.co.jp");
    assert_eq!(c.storage.database, dir.join("var/madoguchi.sqlite3"));
    assert_eq!(
        c.calendar.company_holidays,
        vec![
            CompanyClosure {
                first: d("2026-08-13"),
                last: d("2026-08-16")
            },
            CompanyClosure {
                first: d("2026-12-29"),
                last: d("2027-01-04")
            },
            CompanyClosure {
                first: d("2027-05-06"),
                last: d("2027-05-06")
            },
        ]
    );
    BusinessCalendar::new(c.calendar.clone()).unwrap();
    // The embedded copy is the same file.
    assert_eq!(parse(EXAMPLE_TOML).unwrap().desk, c.desk);
    assert_eq!(parse(EXAMPLE_TOML).unwrap().staff, c.staff);
    assert!(c.warnings().is_empty(), "{:?}", c.warnings());
    assert!(!c.summary().is_empty());
}

#[test]
fn example_server_variant_validates_when_uncommented() {
    // The commented IMAP/SMTP blocks must stay valid too: swap them in and load.
    // Convention in the example: `# prose`, `#key = value` for a commented-out setting.
    let mut text = String::new();
    let mut in_io = false;
    for line in EXAMPLE_TOML.lines() {
        if line.starts_with('[') {
            in_io = line.starts_with("[intake]") || line.starts_with("[outbound]");
        }
        let commented_key = line
            .strip_prefix('#')
            .filter(|rest| rest.starts_with(|c: char| c.is_ascii_alphabetic()));
        if in_io && let Some(rest) = commented_key {
            text.push_str(rest);
        } else if in_io && !line.starts_with('[') && !line.starts_with('#') {
            continue; // drop the active maildir/file keys
        } else {
            text.push_str(line);
        }
        text.push('\n');
    }
    let c = parse(&text).unwrap_or_else(|e| panic!("{e}\n---\n{text}"));
    let Intake::Imap(i) = c.intake else {
        panic!("{:?}", c.intake)
    };
    assert_eq!((i.port, i.tls), (993, Tls::Implicit));
    assert_eq!(
        i.password.source(),
        &SecretSource::File("${CREDENTIALS_DIRECTORY}/imap".into())
    );
    let Outbound::Smtp(s) = c.outbound else {
        panic!("{:?}", c.outbound)
    };
    assert_eq!((s.port, s.tls), (587, Tls::StartTls));
    assert!(s.auth.is_some());
}

#[test]
fn many_problems_are_all_reported() {
    let e = errors(
        r#"
[desk]
address = "support example.co.jp"
ticket_prefix = "NEO_DS"
staff = ["tanaka@example.co.jp", "nobody"]
notify = ["support example"]
reopen_days = 400
auto_reply_limit_per_hour = 0
[hours]
timezone = "Asia/Tokio"
windows = ["09:00-12:00", "13:00-12:00", "9am-5pm"]
weekdays = ["Mon", "Funday", "mon"]
company_holidays = ["2026-08-16..2026-08-13", "2026-02-30"]
license_cutoff = "25:00"
[storage]
database = ""
[intake]
kind = "imap"
host = "imap.example.co.jp"
port = 70000
tls = "none"
user = "support"
password = "hunter2"
[outbound]
kind = "carrier-pigeon"
"#,
    );
    let keys = e.keys();
    let expected = [
        "desk.address",
        "desk.ticket_prefix",
        "desk.staff[1]",
        "desk.notify[0]",
        "desk.reopen_days",
        "desk.auto_reply_limit_per_hour",
        "hours.timezone",
        "hours.windows[1]",
        "hours.windows[2]",
        "hours.weekdays[1]",
        "hours.weekdays[2]",
        "hours.company_holidays[0]",
        "hours.company_holidays[1]",
        "hours.license_cutoff",
        "storage.database",
        "intake.password",
        "intake.tls",
        "intake.port",
        "outbound.kind",
    ];
    assert_eq!(keys, expected, "{e}");
    assert_eq!(e.problems.len(), 19);
    let text = e.to_string();
    assert!(
        text.contains(r#"hours.windows[1]: "13:00-12:00" ends before it starts"#),
        "{text}"
    );
    assert!(
        text.contains(r#"hours.weekdays[2]: "mon" is listed twice"#),
        "{text}"
    );
    assert!(!text.contains("hunter2"));
}

#[test]
fn unknown_keys_are_reported_per_section_with_line_and_column() {
    let e = errors(
        "[desk]\naddress = \"support@example.co.jp\"\nadress = \"x\"\n\
         [hours]\nwindows = [\"13:00-12:00\"]\n\
         [intake]\nmaildir = \"in\"\npasswrd = 1\n\
         [extra]\n",
    );
    // Keys outside the schema first, in file order, each at its own dotted path.
    assert_eq!(
        e.keys(),
        ["desk.adress", "intake.passwrd", "extra", "hours.windows[0]"],
        "{e}"
    );
    assert!(
        e.problems[0]
            .message
            .starts_with("line 3, column 1: unknown field `adress`"),
        "{e}"
    );
    assert!(
        e.problems[1].message.contains("unknown field `passwrd`"),
        "{e}"
    );
    assert!(
        e.problems[2]
            .message
            .starts_with("line 9, column 2: unknown field `extra`"),
        "{e}"
    );
    // The rest of a section with an unknown key is still read (no spurious desk.address).
    assert!(!e.keys().contains(&"desk.address"));
}

#[test]
fn an_unknown_key_does_not_hide_the_other_problems_of_its_section() {
    // One typo in [desk] plus four other [desk] mistakes: all five in one run.
    let e = errors(
        "[desk]\n\
         address = \"support example.co.jp\"\n\
         ticket_prefix = \"NEO_DS\"\n\
         notfy = [\"team@example.co.jp\"]\n\
         reopen_days = 400\n\
         reply_charset = \"shift_jis\"\n",
    );
    assert_eq!(
        e.keys(),
        [
            "desk.notfy",
            "desk.address",
            "desk.ticket_prefix",
            "desk.reopen_days",
            "desk.reply_charset",
        ],
        "{e}"
    );
    assert!(
        e.problems[0]
            .message
            .starts_with("line 4, column 1: unknown field `notfy`, expected one of"),
        "{e}"
    );
    assert!(e.problems[0].message.contains("`notify`"), "{e}");
}

#[test]
fn a_wrong_type_does_not_hide_the_other_problems_of_its_section() {
    let e = errors(
        "[desk]\naddress = \"a@b.jp\"\nreopen_days = \"14\"\nticket_prefix = \"NEO_DS\"\n\
         [intake]\nkind = \"imap\"\nport = \"993\"\nhost = \"imap example\"\n\
         user = \"support\"\npassword_env = \"IMAP_PASSWORD\"\n",
    );
    assert_eq!(
        e.keys(),
        [
            "desk.reopen_days",
            "intake.port",
            "desk.ticket_prefix",
            "intake.host",
        ],
        "{e}"
    );
    assert!(
        e.problems[0]
            .message
            .starts_with("line 3, column 15: invalid type"),
        "{e}"
    );
}

#[test]
fn a_key_left_out_is_not_guessed_at() {
    // A section that is not a table, a `kind` of the wrong type, a list with a bad item:
    // each is one problem, and validation says nothing about what was left out.
    let e = errors(
        "desk = 5\n\
         [intake]\nkind = 1\nhost = \"imap.example.co.jp\"\nport = 993\n\
         [outbound]\nkind = \"file\"\ndir = [\"out\", 2]\n",
    );
    assert_eq!(e.keys(), ["desk", "intake.kind", "outbound.dir"], "{e}");
    assert!(e.problems[0].message.starts_with("line 1, column "), "{e}");
    assert!(e.problems[2].message.starts_with("line 8, column "), "{e}");
}

#[test]
fn syntax_error_is_one_problem_with_position() {
    let e = errors("[desk]\naddress = \"support@example.co.jp\n");
    assert_eq!(e.problems.len(), 1);
    assert_eq!(e.problems[0].key(), "");
    assert!(e.problems[0].message.starts_with("line 2, column "), "{e}");
    assert!(!e.to_string().contains('\n'));
}

#[test]
fn wrong_type_is_reported_with_its_key() {
    let e = errors("[desk]\naddress = \"a@b.jp\"\nreopen_days = \"14\"\n");
    assert_eq!(e.keys(), ["desk.reopen_days"]);
    assert!(
        e.problems[0]
            .message
            .starts_with("line 3, column 15: invalid type"),
        "{e}"
    );
}

#[test]
fn bad_windows_times_dates_and_timezone() {
    let hours = |body: &str| errors(&format!("{MINIMAL}[hours]\n{body}\n"));
    let one = |body: &str| {
        let e = hours(body);
        assert_eq!(e.problems.len(), 1, "{e}");
        e.problems[0].to_string()
    };
    assert_eq!(
        one(r#"windows = ["13:00-17:30", "09:00-12:00"]"#),
        r#"hours.windows[1]: "09:00-12:00" comes before windows[0]; list windows in order"#
    );
    assert_eq!(
        one(r#"windows = ["09:00-13:30", "13:00-17:30"]"#),
        r#"hours.windows[1]: "13:00-17:30" overlaps windows[0]"#
    );
    assert_eq!(
        one(r#"windows = ["09:00-09:00"]"#),
        r#"hours.windows[0]: "09:00-09:00" is empty (starts and ends at the same time)"#
    );
    assert_eq!(
        one(r#"windows = ["9:00-12:00"]"#),
        r#"hours.windows[0]: "9:00-12:00" is not a window (HH:MM-HH:MM)"#
    );
    assert_eq!(
        one("windows = []"),
        "hours.windows: at least one reception window is required"
    );
    assert_eq!(
        one(r#"license_cutoff = "17:60""#),
        r#"hours.license_cutoff: "17:60" is not a time of day (00:00..23:59)"#
    );
    assert_eq!(
        one(r#"license_cutoff = "5pm""#),
        r#"hours.license_cutoff: "5pm" is not a time of day (HH:MM)"#
    );
    assert_eq!(
        one(r#"company_holidays = ["2026-8-13"]"#),
        r#"hours.company_holidays[0]: "2026-8-13" is not a date (YYYY-MM-DD) or range (YYYY-MM-DD..YYYY-MM-DD)"#
    );
    assert_eq!(
        one(r#"company_holidays = ["2026-12-29..2072-01-04"]"#),
        r#"hours.company_holidays[0]: "2026-12-29..2072-01-04" spans more than a year"#
    );
    assert_eq!(
        one(r#"timezone = "JST""#),
        r#"hours.timezone: "JST" is not a known IANA time zone (e.g. "Asia/Tokyo")"#
    );
    assert_eq!(
        one("weekdays = []"),
        "hours.weekdays: at least one business weekday is required"
    );
    // Touching windows are fine; weekdays accept full names in any case and are sorted.
    let c = parse(&format!(
        "{MINIMAL}[hours]\nwindows = [\"09:00-12:00\", \"12:00-13:00\"]\n\
         weekdays = [\"SATURDAY\", \"monday\", \"Wed\"]\ntimezone = \"UTC\"\n\
         company_holidays = [\"2027-05-06\", \"2026-08-13..2026-08-16\"]\n"
    ))
    .unwrap();
    assert_eq!(c.calendar.windows.len(), 2);
    assert_eq!(
        c.calendar.weekdays,
        [Weekday::Mon, Weekday::Wed, Weekday::Sat]
    );
    assert_eq!(c.calendar.timezone, chrono_tz::UTC);
    assert_eq!(c.calendar.company_holidays[0].first, d("2026-08-13"));
}

#[test]
fn desk_checks() {
    let e = errors(
        "[desk]\naddress = \"support@example.co.jp\"\nticket_prefix = \"ABCDEFGHIJKLMNOPQ\"\n\
         notify = [\"Support@example.co.jp\"]\nform_senders = [\"a@@b\"]\n",
    );
    assert_eq!(
        e.keys(),
        [
            "desk.ticket_prefix",
            "desk.notify[0]",
            "desk.form_senders[0]"
        ],
        "{e}"
    );
    assert!(e.problems[1].message.contains("desk's own address"));
    let c =
        parse("[desk]\naddress = \"s@x.jp\"\nticket_prefix = \"T-1\"\nreopen_days = 0\n").unwrap();
    assert_eq!(
        (c.desk.ticket_prefix.as_str(), c.desk.reopen_days),
        ("T-1", 0)
    );
}

/// Addresses are read by `core::address::Address`, as everywhere else: one plain
/// `local@domain` with a dotted domain, kept lowercased.
#[test]
fn desk_addresses_are_read_as_addresses() {
    let e = errors(
        "[desk]\naddress = \"support@localhost\"\n\
         staff = [\"Tanaka <tanaka@example.co.jp>\", \"a@b.jp, c@d.jp\"]\n",
    );
    assert_eq!(
        e.keys(),
        ["desk.address", "desk.staff[0]", "desk.staff[1]"],
        "{e}"
    );
    let c =
        parse("[desk]\naddress = \"Support@Example.CO.JP\"\nstaff = [\"Tanaka@Example.co.jp\"]\n")
            .unwrap();
    assert_eq!(c.desk.address, "support@example.co.jp");
    assert_eq!(c.desk.staff, ["tanaka@example.co.jp"]);
}

#[test]
fn relative_paths_resolve_against_the_config_directory() {
    let dir = tempfile::tempdir().unwrap();
    let etc = dir.path().join("etc");
    std::fs::create_dir(&etc).unwrap();
    let file = etc.join("madoguchi.toml");
    std::fs::write(
        &file,
        format!(
            "{MINIMAL}[storage]\ndatabase = \"db/desk.sqlite3\"\nfiles = \"/var/lib/madoguchi/files\"\n\
             [intake]\nkind = \"imap\"\nhost = \"h\"\nuser = \"u\"\npassword_file = \"imap.password\"\n\
             [outbound]\ndir = \"../outbox\"\n"
        ),
    )
    .unwrap();
    let c = Config::load(&file).unwrap();
    assert_eq!(c.storage.database, etc.join("db/desk.sqlite3"));
    assert_eq!(c.storage.files, Path::new("/var/lib/madoguchi/files"));
    assert_eq!(
        c.outbound,
        Outbound::File {
            dir: etc.join("../outbox")
        }
    );
    let Intake::Imap(i) = c.intake else { panic!() };
    assert_eq!(
        i.password.source(),
        &SecretSource::File(etc.join("imap.password"))
    );
    assert_eq!(c.source_path, Some(file));
}

#[test]
fn load_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.toml");
    let err = Config::load(&missing).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("cannot read config file {}", missing.display())
    );
    assert!(std::error::Error::source(&err).is_some());

    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[desk]\naddress = \"x\"\n[hours]\nlicense_cutoff = \"7\"\n",
    )
    .unwrap();
    let ConfigError::Invalid(errs) = Config::load(&bad).unwrap_err() else {
        panic!()
    };
    let shown = bad.display();
    assert_eq!(
        render_errors(&errs),
        format!(
            "{shown}: desk.address: \"x\" is not an e-mail address (user@domain)\n\
             {shown}: hours.license_cutoff: \"7\" is not a time of day (HH:MM)"
        )
    );
}

#[test]
fn classify_and_forms_tables_override_the_defaults_and_unknown_keys_are_reported() {
    let base = Path::new("/etc/madoguchi");
    let ok = Config::from_toml_str(
        "[desk]\naddress = \"support@example.co.jp\"\n[classify]\nkeywords = [{ category = \"fault\", words = [\"起動しません\"] }]\n",
        base,
    )
    .unwrap();
    assert_eq!(ok.classify.keywords.len(), 1);
    assert_eq!(ok.classify.keywords[0].category, Category::Fault);
    let defaults =
        Config::from_toml_str("[desk]\naddress = \"support@example.co.jp\"\n", base).unwrap();
    assert_eq!(defaults.classify, ClassifyRules::default());
    assert_eq!(defaults.form_labels, FormLabels::default());
    let bad = Config::from_toml_str(
        "[desk]\naddress = \"support@example.co.jp\"\n[classify]\nkeyword = []\n[forms]\nnope = \"x\"\n",
        base,
    )
    .unwrap_err();
    assert_eq!(bad.keys(), ["classify.keyword", "forms.nope"], "{bad}");
}

#[test]
fn reply_charset_is_utf8_unless_iso_2022_jp_is_asked_for() {
    let base = Path::new("/etc/madoguchi");
    let with = |v: &str| {
        Config::from_toml_str(
            &format!("[desk]\naddress = \"support@example.co.jp\"\n{v}"),
            base,
        )
    };
    assert_eq!(with("").unwrap().desk.reply_charset, ReplyCharset::Utf8);
    assert_eq!(
        with("reply_charset = \"ISO-2022-JP\"")
            .unwrap()
            .desk
            .reply_charset,
        ReplyCharset::Iso2022Jp
    );
    let bad = with("reply_charset = \"shift_jis\"").unwrap_err();
    assert_eq!(bad.keys(), ["desk.reply_charset"], "{bad}");
}
