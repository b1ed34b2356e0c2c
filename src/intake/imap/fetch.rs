//! Fetching: up to a batch of messages, oldest first, with INTERNALDATE as their arrival; a
//! message that breaks the connection when fetched is set aside so the rest keep flowing.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use async_imap::Session;
use async_imap::imap_proto::{AttributeValue, MailboxDatum, Response};
use chrono::{DateTime, Utc};
use tokio::time::Instant;

use super::codec::{message_key, parse_internal_date, parse_key, uid_set};
use super::error::{Failure, ImapError};
use super::source::State;
use super::wire::Conn;
use crate::intake::{Incoming, IntakeError};

/// The longest a message that breaks the connection when fetched is left alone.
pub const SUSPECT_PAUSE_MAX: Duration = Duration::from_secs(3600);

/// One message as UID FETCH returned it.
#[derive(Default)]
struct Fetched {
    internal_date: Option<String>,
    size: Option<u32>,
    body: Option<Vec<u8>>,
}

/// A message that broke the connection while it was being fetched.
#[derive(Debug, Clone, Copy)]
pub(super) struct Suspect {
    strikes: u32,
    retry_at: Instant,
}

impl State {
    /// Up to `max` messages, leaving out those `in_flight` (handed out, not yet acknowledged).
    pub(super) async fn fetch(
        &mut self,
        max: usize,
        in_flight: &HashSet<String>,
    ) -> Result<Vec<Incoming>, IntakeError> {
        self.flush_acks().await?;
        if max == 0 {
            return Ok(Vec::new());
        }
        let mut session = self.take_session().await?;
        match self.fetch_with(&mut session, max, in_flight).await {
            Ok((batch, None)) => {
                self.session = Some(session);
                self.outstanding = batch.iter().map(|m| m.key.clone()).collect();
                Ok(batch)
            }
            // The connection broke part-way: what came before is handed out all the same (it
            // is acknowledged over a new connection), so one bad message cannot block the rest.
            // When a message was blamed, that is no reason to fail the desk's pass either (it
            // would hold up the outbox); otherwise the outage is reported.
            Ok((batch, Some((f, blamed)))) => {
                drop(session);
                let error = self.failed(f);
                if batch.is_empty() && !blamed {
                    return Err(error);
                }
                self.outstanding = batch.iter().map(|m| m.key.clone()).collect();
                Ok(batch)
            }
            Err(f) => Err(self.failed(f)),
        }
    }

    /// Up to `max` messages, oldest first. The second value is set when the connection broke
    /// part-way (what arrived before the break is good and returned all the same), with whether
    /// a message was blamed for it.
    async fn fetch_with(
        &mut self,
        session: &mut Session<Conn>,
        max: usize,
        in_flight: &HashSet<String>,
    ) -> Result<(Vec<Incoming>, Option<(Failure, bool)>), Failure> {
        let Some(uidvalidity) = self.uidvalidity else {
            return Err(Failure::new("fetch mail", ImapError::NotSelected));
        };
        // Whatever EXISTS announced so far, this search sees.
        self.mail_hint = false;
        let mut uids: Vec<u32> = Vec::new();
        self.command(session, "search the mailbox", "UID SEARCH UNDELETED", |r| {
            if let Response::MailboxData(MailboxDatum::Search(found)) = r {
                uids.extend(found);
            }
        })
        .await?
        .map_err(|refusal| Failure::new("search the mailbox", refusal))?;
        // UIDs grow with delivery, so the lowest are the oldest mail.
        uids.sort_unstable();
        uids.dedup();
        let present = |&(v, uid): &(u32, u32)| v == uidvalidity && uids.binary_search(&uid).is_ok();
        self.suspects.retain(|k, _| present(k));
        self.bodiless.retain(present);
        // Messages the desk holds (fetched ahead of their acknowledgement) are not handed out
        // again.
        if !in_flight.is_empty() {
            let held: HashSet<u32> = in_flight
                .iter()
                .filter_map(|key| parse_key(key))
                .filter(|&(v, _)| v == uidvalidity)
                .map(|(_, uid)| uid)
                .collect();
            uids.retain(|uid| !held.contains(uid));
        }

        // A message that broke a fetch before is read on its own, after the others, so that it
        // cannot hold them up; one that broke the connection even alone waits a while.
        let now = Instant::now();
        let (suspects, normal): (Vec<u32>, Vec<u32>) = uids
            .iter()
            .partition(|&&uid| self.suspects.contains_key(&(uidvalidity, uid)));
        let suspects: Vec<u32> = suspects
            .into_iter()
            .filter(|&uid| {
                self.suspects
                    .get(&(uidvalidity, uid))
                    .is_some_and(|s| s.retry_at <= now)
            })
            .collect();

        let batch_size = (self.config.batch_size as usize).max(1);
        let mut out: Vec<(DateTime<Utc>, u32, Incoming)> = Vec::new();
        let mut broken = None;
        let (mut next, mut next_suspect) = (0, 0);
        // Bytes of the messages fetched so far in this call.
        let mut held = 0u64;
        while out.len() < max && broken.is_none() && held < crate::intake::BATCH_BYTES {
            let (listed, from_normal): (Vec<u32>, bool) = if next < normal.len() {
                let take = (max - out.len()).min(batch_size).min(normal.len() - next);
                next += take;
                (normal[next - take..next].to_vec(), true)
            } else if next_suspect < suspects.len() {
                next_suspect += 1;
                (vec![suspects[next_suspect - 1]], false)
            } else {
                break;
            };
            // Sizes first: mail over `max_message_size` is never fetched, and a batch holds at
            // most `BATCH_BYTES` (one message at least), so a backlog of large mail cannot
            // fill memory.
            let sizes = match self.sizes(session, &listed).await {
                Ok(sizes) => sizes,
                Err(f) => {
                    broken = Some((f, false));
                    break;
                }
            };
            let (mut want, mut bytes) = (Vec::with_capacity(listed.len()), 0u64);
            let mut full = false;
            for (i, &uid) in listed.iter().enumerate() {
                let Some((size, date)) = sizes.get(&uid) else {
                    want.push(uid);
                    continue;
                };
                let size = u64::from(*size);
                if size > self.max_message_size {
                    let received_at = date
                        .as_deref()
                        .and_then(parse_internal_date)
                        .unwrap_or_else(crate::clock::system_now);
                    self.suspects.remove(&(uidvalidity, uid));
                    out.push((
                        received_at,
                        uid,
                        Incoming {
                            key: message_key(uidvalidity, uid),
                            handle: uid.to_string(),
                            raw: Vec::new(),
                            received_at,
                            too_big: Some(size),
                        },
                    ));
                    continue;
                }
                let taken = !want.is_empty() || held > 0;
                if taken && held + bytes + size > crate::intake::BATCH_BYTES {
                    // The rest waits for the next round.
                    if from_normal {
                        next -= listed.len() - i;
                    }
                    full = true;
                    break;
                }
                bytes += size;
                want.push(uid);
            }
            if want.is_empty() {
                if full {
                    break;
                }
                continue;
            }
            held += bytes;
            let mut got: HashMap<u32, Fetched> = HashMap::with_capacity(want.len());
            let set = uid_set(&want);
            let status = self
                .command(
                    session,
                    "fetch mail",
                    &format!("UID FETCH {set} (UID INTERNALDATE RFC822.SIZE BODY.PEEK[])"),
                    |r| {
                        let Response::Fetch(_, attrs) = r else {
                            return;
                        };
                        let mut fetched = Fetched::default();
                        let mut uid = None;
                        for attr in attrs {
                            match attr {
                                AttributeValue::Uid(u) => uid = Some(*u),
                                AttributeValue::InternalDate(d) => {
                                    fetched.internal_date = Some(d.to_string())
                                }
                                AttributeValue::Rfc822Size(s) => fetched.size = Some(*s),
                                AttributeValue::BodySection {
                                    section: None,
                                    index: None,
                                    data: Some(data),
                                } => fetched.body = Some(data.to_vec()),
                                _ => {}
                            }
                        }
                        // Unsolicited FETCH responses (flag changes) carry no body: ignored.
                        if let Some(uid) = uid
                            && fetched.body.is_some()
                        {
                            got.insert(uid, fetched);
                        }
                    },
                )
                .await;
            match status {
                Ok(Ok(_)) => {}
                Ok(Err(refusal)) => {
                    tracing::warn!(server = %self.name, uids = %set, "The IMAP server did not return every message: {refusal}; they are tried again next pass.");
                }
                Err(f) => {
                    // Servers answer in UID order: the first one missing is the likely culprit
                    // (Dovecot says BYE when it cannot read a message file).
                    let culprit = want.iter().find(|uid| !got.contains_key(uid)).copied();
                    if let Some(uid) = culprit {
                        self.strike(uidvalidity, uid);
                    }
                    broken = Some((f, culprit.is_some()));
                }
            }
            for &uid in &want {
                let Some(fetched) = got.remove(&uid) else {
                    if broken.is_none() && self.bodiless.insert((uidvalidity, uid)) {
                        tracing::warn!(server = %self.name, uid, "The IMAP server returned message {uid} without its content; it is tried again next pass.");
                    }
                    continue;
                };
                self.suspects.remove(&(uidvalidity, uid));
                let raw = fetched.body.unwrap_or_default();
                if let Some(size) = fetched.size
                    && size as usize != raw.len()
                {
                    tracing::debug!(
                        uid,
                        size,
                        got = raw.len(),
                        "RFC822.SIZE differs from the content fetched."
                    );
                }
                let received_at = match fetched
                    .internal_date
                    .as_deref()
                    .and_then(parse_internal_date)
                {
                    Some(at) => at,
                    None => {
                        // Rare (a server bug); the time we saw it is the next best arrival time.
                        tracing::warn!(server = %self.name, uid, date = ?fetched.internal_date, "No usable INTERNALDATE; using the current time.");
                        crate::clock::system_now()
                    }
                };
                out.push((
                    received_at,
                    uid,
                    Incoming {
                        key: message_key(uidvalidity, uid),
                        handle: uid.to_string(),
                        raw,
                        received_at,
                        too_big: None,
                    },
                ));
            }
        }
        // Delivery order within the batch, as the desk threads follow-ups after originals.
        out.sort_by_key(|(at, uid, _)| (*at, *uid));
        Ok((out.into_iter().map(|(_, _, m)| m).collect(), broken))
    }

    /// RFC822.SIZE and INTERNALDATE of `uids` (those the server answered for).
    async fn sizes(
        &mut self,
        session: &mut Session<Conn>,
        uids: &[u32],
    ) -> Result<HashMap<u32, (u32, Option<String>)>, Failure> {
        let mut sizes = HashMap::with_capacity(uids.len());
        let set = uid_set(uids);
        self.command(
            session,
            "fetch mail sizes",
            &format!("UID FETCH {set} (UID RFC822.SIZE INTERNALDATE)"),
            |r| {
                let Response::Fetch(_, attrs) = r else {
                    return;
                };
                let (mut uid, mut size, mut date) = (None, None, None);
                for attr in attrs {
                    match attr {
                        AttributeValue::Uid(u) => uid = Some(*u),
                        AttributeValue::Rfc822Size(s) => size = Some(*s),
                        AttributeValue::InternalDate(d) => date = Some(d.to_string()),
                        _ => {}
                    }
                }
                if let (Some(uid), Some(size)) = (uid, size) {
                    sizes.insert(uid, (size, date));
                }
            },
        )
        .await?
        .map_err(|refusal| Failure::new("fetch mail sizes", refusal))?;
        Ok(sizes)
    }

    /// Marks `uid` as having broken a fetch. The second time (it was fetched alone) it is left
    /// alone for `poll_interval`, doubling per strike up to an hour: it stays in the mailbox
    /// for a person, and the rest of the mail flows meanwhile.
    fn strike(&mut self, uidvalidity: u32, uid: u32) {
        let suspect = self.suspects.entry((uidvalidity, uid)).or_insert(Suspect {
            strikes: 0,
            retry_at: Instant::now(),
        });
        suspect.strikes = suspect.strikes.saturating_add(1);
        if suspect.strikes >= 2 {
            let pause = self
                .config
                .poll_interval
                .max(Duration::from_secs(1))
                .saturating_mul(1 << (suspect.strikes - 2).min(12))
                .min(SUSPECT_PAUSE_MAX);
            suspect.retry_at = Instant::now() + pause;
            tracing::warn!(server = %self.name, uid, "Message {uid} cuts the IMAP connection whenever it is fetched; it stays in the mailbox and is tried again in {} s.", pause.as_secs());
        }
    }
}
