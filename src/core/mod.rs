//! The pure core: no clock reads, no network, no disk. Time is always a parameter.

pub mod address;
pub mod auth;
pub mod calendar;
pub mod classify;
pub mod contract;
pub mod date;
pub mod decide;
pub mod form;
pub mod guard;
pub mod inbound;
pub mod license;
pub mod matching;
pub mod reminders;
pub mod reply;
pub mod staff_reply;
pub mod ticket;

#[cfg(test)]
pub(crate) mod test_support;
