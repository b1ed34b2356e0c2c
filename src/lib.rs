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
pub mod monthly;
pub mod outbound;
pub mod profile;
pub mod report;
pub mod service;
pub mod store;
pub mod timearg;
pub mod tls;

/// Entry points for the fuzz targets in `fuzz/` to private parts of the mail reader. Not an
/// API: it may change at any time.
#[doc(hidden)]
pub mod fuzzing {
    /// The HTML → text converter HTML-only mail goes through (`src/mail/html.rs`).
    pub fn html_to_text(html: &str) -> String {
        crate::mail::html::to_text(html)
    }

    /// RFC 3676 `format=flowed` decoding (`src/mail/flowed.rs`).
    pub fn flowed_decode(text: &str, delsp: bool) -> String {
        crate::mail::flowed::decode(text, delsp)
    }
}
