//! madoguchi: the e-mail support desk behind the desknet's NEO distributed-server support terms.
//! See ARCHITECTURE.md for the map. `core` is pure; everything else is the I/O shell.

pub mod clock;
pub mod config;
pub mod core;
pub mod daemon;
pub mod desk;
pub mod endpoints;
pub mod import;
pub mod instance;
pub mod intake;
pub mod license;
pub mod mail;
pub mod metrics;
pub mod outbound;
pub mod report;
pub mod service;
pub mod store;
pub mod timearg;
pub mod tls;
