//! The crate's one integration-test binary: runs the real `madoguchi` executable (and, later,
//! real mail servers on loopback) in temp directories.

mod cli;
mod daemon;
mod daemon_loop;
mod db_care;
mod desk;
mod dkim;
mod dns;
mod dovecot;
mod floods;
mod full_disk;
mod fuzz_regressions;
mod hostile;
mod hostile_imap;
mod imap;
mod license_keys;
mod licenses;
mod logs;
mod metrics;
mod quarantine;
mod reminders;
mod report;
mod smtp;
mod smtp_sink;
mod soak;
mod staff_loop;
mod status;
mod systemd;
mod tidy;
mod util;
mod wait;
