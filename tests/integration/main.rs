//! The crate's one integration-test binary: runs the real `madoguchi` executable (and, later,
//! real mail servers on loopback) in temp directories.

mod cli;
mod daemon;
mod daemon_loop;
mod desk;
mod dkim;
mod dns;
mod dovecot;
mod fuzz_regressions;
mod imap;
mod license_keys;
mod licenses;
mod smtp;
mod smtp_sink;
mod staff_loop;
mod tidy;
mod util;
mod wait;
