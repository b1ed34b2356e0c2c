//! The daemon loop in-process (`madoguchi::daemon::run`): drain on stop, reload, due-work
//! scheduling, and a stop while another process holds SQLite's write lock. Control messages go
//! in on a channel and events come out on one; nothing sleeps to wait for readiness, and every
//! wait for an event has a real-time limit, so a loop that stalls fails the test instead of
//! passing once its 300 s `max_wait` is over.

use std::fs;
use std::path::PathBuf;
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use madoguchi::config::Config;
use madoguchi::daemon::{Control, Event, Observer, Timing};
use madoguchi::desk::Desk;
use madoguchi::store::{Store, StoreError};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use crate::util::jst;

/// The events of a run, owned.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Ready,
    Pass { messages: usize, opened: usize },
    Failed(String),
    Stopping,
    DrainTimedOut,
    Reloading,
    Reloaded,
    ReloadFailed(String),
    Waiting(Duration),
    Stopped,
}

struct Events(UnboundedSender<Seen>);

impl Observer for Events {
    fn event(&mut self, event: Event<'_>) {
        let seen = match event {
            Event::Ready => Seen::Ready,
            Event::Pass(s) => Seen::Pass {
                messages: s.messages,
                opened: s.opened,
            },
            Event::PassFailed(e) => Seen::Failed(e.to_string()),
            Event::ConnectFailed(e) => Seen::Failed(e.to_string()),
            Event::Stopping => Seen::Stopping,
            Event::DrainTimedOut => Seen::DrainTimedOut,
            Event::Reloading => Seen::Reloading,
            Event::Reloaded => Seen::Reloaded,
            Event::ReloadFailed(e) => Seen::ReloadFailed(e.to_string()),
            Event::Waiting(d) => Seen::Waiting(d),
            Event::Stopped => Seen::Stopped,
            Event::Alive | Event::Status { .. } => return,
        };
        let _ = self.0.send(seen);
    }
}

struct Setup {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl Setup {
    fn new(extra: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().to_path_buf();
        let s = Setup { _dir: dir, root };
        s.write_config(extra);
        s
    }

    fn write_config(&self, extra: &str) {
        fs::write(
            self.root.join("madoguchi.toml"),
            format!(
                "[desk]\naddress = \"support@example.co.jp\"\nnotify = [\"team@example.co.jp\"]\n{extra}\n{}",
                crate::util::NO_REMINDERS
            ),
        )
        .expect("config");
    }

    fn config(&self) -> Config {
        Config::load(self.root.join("madoguchi.toml")).expect("valid config")
    }

    fn deliver(&self, n: usize, at: DateTime<Utc>) {
        let new = self.root.join("var/inbox/new");
        fs::create_dir_all(&new).expect("inbox");
        let path = new.join(format!("{n:06}.test"));
        fs::write(
            &path,
            format!(
                "From: c{n}@customer.example.jp\r\nTo: support@example.co.jp\r\nSubject: q{n}\r\n\
                 Message-ID: <q{n}@customer.example.jp>\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n質問です\r\n"
            ),
        )
        .expect("deliver");
        fs::File::options()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_modified(at.into()))
            .expect("set delivery time");
    }

    fn outbox_subjects(&self) -> Vec<String> {
        let mut files: Vec<PathBuf> = fs::read_dir(self.root.join("var/outbox"))
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        files.sort();
        files
            .iter()
            .map(|p| {
                madoguchi::mail::read_message(&fs::read(p).expect("eml"), &[])
                    .mail
                    .subject
            })
            .collect()
    }
}

/// Starts the loop on the current runtime; returns the control sender, the events and the task.
fn start(
    setup: &Setup,
    clock: impl Fn() -> DateTime<Utc> + 'static,
    timing: Timing,
) -> (UnboundedSender<Control>, Watch, tokio::task::JoinHandle<()>) {
    let desk = Desk::open(setup.config()).expect("desk");
    let (controls, received) = unbounded_channel();
    let (events, seen) = unbounded_channel();
    let config_path = setup.root.join("madoguchi.toml");
    let task = tokio::task::spawn_local(async move {
        madoguchi::daemon::run(
            desk,
            clock,
            received,
            move || Config::load(&config_path).map_err(|e| format!("{e:?}")),
            &mut Events(events),
            timing,
        )
        .await;
    });
    (controls, Watch(seen), task)
}

/// How long, in real time, the loop may take to show an expected event. Generous: an event
/// that is due comes within milliseconds.
const EVENT_LIMIT: Duration = Duration::from_secs(30);

/// The events of a run, as they come.
struct Watch(UnboundedReceiver<Seen>);

impl Watch {
    /// The next event matching `want`, with the ones before it; panics when none has come
    /// within [`EVENT_LIMIT`] of real time.
    async fn until(&mut self, want: impl Fn(&Seen) -> bool) -> Vec<Seen> {
        let mut limit = real_time_limit(EVENT_LIMIT);
        let mut before = Vec::new();
        loop {
            tokio::select! {
                event = self.0.recv() => match event {
                    Some(e) if want(&e) => {
                        before.push(e);
                        return before;
                    }
                    Some(e) => before.push(e),
                    None => panic!("the daemon ended; saw {before:?}"),
                },
                _ = &mut limit.expired => {
                    panic!("no such event within {EVENT_LIMIT:?}; saw {before:?}")
                }
            }
        }
    }
}

/// Resolves once `limit` of real time has passed. Measured by a thread, not by tokio: tokio's
/// clock may be paused, and a paused clock jumps to the next timer whenever the runtime idles,
/// which would end a tokio timeout at once. Dropping it ends the thread.
struct RealTimeLimit {
    expired: tokio::sync::oneshot::Receiver<()>,
    _cancel: std::sync::mpsc::Sender<()>,
}

fn real_time_limit(limit: Duration) -> RealTimeLimit {
    let (expire, expired) = tokio::sync::oneshot::channel();
    let (cancel, cancelled) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        if cancelled.recv_timeout(limit) == Err(RecvTimeoutError::Timeout) {
            let _ = expire.send(());
        }
    });
    RealTimeLimit {
        expired,
        _cancel: cancel,
    }
}

fn local<F: std::future::Future>(f: F) -> F::Output {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    tokio::task::LocalSet::new().block_on(&rt, f)
}

#[test]
fn a_stop_finishes_the_pass_in_hand_and_ends_the_loop() {
    let setup = Setup::new("");
    for n in 0..5 {
        setup.deliver(n, jst(2026, 11, 25, 10, 0));
    }
    local(async {
        let (controls, mut seen, task) =
            start(&setup, || jst(2026, 11, 25, 10, 5), Timing::default());
        let events = seen
            .until(|e| matches!(e, Seen::Pass { messages: 5, .. }))
            .await;
        assert_eq!(events.first(), Some(&Seen::Ready), "{events:?}");
        controls.send(Control::Stop).expect("send");
        seen.until(|e| *e == Seen::Stopped).await;
        task.await.expect("the loop ends");
    });
    assert_eq!(setup.outbox_subjects().len(), 10, "5 replies and 5 notices");
}

#[test]
fn a_reload_takes_the_new_config_for_the_next_mail() {
    let setup = Setup::new("");
    setup.deliver(0, jst(2026, 11, 25, 10, 0));
    local(async {
        let (controls, mut seen, task) =
            start(&setup, || jst(2026, 11, 25, 10, 5), Timing::default());
        seen.until(|e| matches!(e, Seen::Pass { messages: 1, .. }))
            .await;
        // Each reload comes while the loop waits for mail (for one during a pass, see
        // `mail_is_read_at_once_after_a_reload_during_a_pass`).
        seen.until(|e| matches!(e, Seen::Waiting(_))).await;
        // A broken config is refused and the running one kept.
        fs::write(setup.root.join("madoguchi.toml"), "[desk]\nadress = 1\n").expect("write");
        controls.send(Control::Reload).expect("send");
        let events = seen.until(|e| matches!(e, Seen::ReloadFailed(_))).await;
        assert!(events.contains(&Seen::Reloading), "{events:?}");
        seen.until(|e| matches!(e, Seen::Waiting(_))).await;
        // So is one that names another database: the instance lock is on the first.
        setup.write_config("[storage]\ndatabase = \"var/other.sqlite3\"");
        controls.send(Control::Reload).expect("send");
        let events = seen.until(|e| matches!(e, Seen::ReloadFailed(_))).await;
        assert!(
            matches!(events.last(), Some(Seen::ReloadFailed(m))
                if m.contains("[storage] database cannot change on reload")),
            "{events:?}"
        );
        seen.until(|e| matches!(e, Seen::Waiting(_))).await;
        // A good one is taken: the next ticket carries the new prefix.
        setup.write_config("ticket_prefix = \"NEW\"");
        controls.send(Control::Reload).expect("send");
        seen.until(|e| *e == Seen::Reloaded).await;
        setup.deliver(1, jst(2026, 11, 25, 10, 1));
        seen.until(|e| matches!(e, Seen::Pass { messages: 1, .. }))
            .await;
        controls.send(Control::Stop).expect("send");
        seen.until(|e| *e == Seen::Stopped).await;
        task.await.expect("the loop ends");
    });
    let subjects = setup.outbox_subjects();
    assert!(subjects[0].starts_with("[NEO-DS#000001]"), "{subjects:?}");
    assert!(
        subjects.iter().any(|s| s.starts_with("[NEW#000002]")),
        "{subjects:?}"
    );
}

/// Mail that arrives outside reception hours makes the loop wait for the opening (R5): the
/// wait it announces ends exactly then, and at that time the ticket opens. Tokio's clock is
/// paused, so the hour passes at once. (The Maildir source checks its folders every 2 s of
/// that clock, each check a real `stat`: an hour is 1,800 checks, a weekend 113,000, some
/// 18 s of real time; the weekend's arithmetic is the calendar's unit tests' business.)
#[test]
fn due_work_wakes_the_loop_at_the_next_opening() {
    let setup = Setup::new("");
    // Wednesday 12:00, in the lunch break → accepted at 13:00.
    setup.deliver(0, jst(2026, 11, 25, 12, 0));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("runtime");
    tokio::task::LocalSet::new().block_on(&rt, async {
        let began = tokio::time::Instant::now();
        let t0 = jst(2026, 11, 25, 12, 1);
        // Business time runs with tokio's (paused, auto-advancing) clock.
        let clock = move || t0 + chrono::Duration::from_std(began.elapsed()).unwrap_or_default();
        let timing = Timing {
            max_wait: Duration::from_secs(7 * 24 * 3600),
            ..Timing::default()
        };
        let (controls, mut seen, task) = start(&setup, clock, timing);
        seen.until(|e| {
            matches!(
                e,
                Seen::Pass {
                    messages: 1,
                    opened: 0
                }
            )
        })
        .await;
        let waits = seen.until(|e| matches!(e, Seen::Waiting(_))).await;
        let Some(Seen::Waiting(wait)) = waits.last() else {
            panic!("{waits:?}")
        };
        let until_opening = (jst(2026, 11, 25, 13, 0) - t0).to_std().expect("positive");
        assert!(
            wait.abs_diff(until_opening) < Duration::from_secs(1),
            "waits {wait:?}, opening in {until_opening:?}"
        );
        seen.until(|e| matches!(e, Seen::Pass { opened: 1, .. }))
            .await;
        assert!(clock() >= jst(2026, 11, 25, 13, 0));
        controls.send(Control::Stop).expect("send");
        seen.until(|e| *e == Seen::Stopped).await;
        task.await.expect("the loop ends");
    });
}

/// With another process holding SQLite's write lock, a stop is seen at once (the store waits
/// on its own thread, not on the runtime's), and the batch in hand is finished once the lock
/// is released.
#[test]
fn a_stop_is_served_at_once_while_another_process_holds_the_write_lock() {
    let setup = Setup::new("");
    let database = setup.config().storage.database.clone();
    // Create the schema first, so the holder below only holds the lock.
    drop(Store::open(&database).expect("store"));
    setup.deliver(0, jst(2026, 11, 25, 10, 0));
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let store = Store::open(&database).expect("store");
        store
            .write(|_| {
                let _ = locked_tx.send(());
                let _ = release_rx.recv();
                Ok::<_, StoreError>(())
            })
            .expect("hold the lock");
    });
    locked_rx.recv().expect("the lock is held");
    let stop_seen_after = Arc::new(Mutex::new(None));
    local(async {
        let (controls, mut seen, task) =
            start(&setup, || jst(2026, 11, 25, 10, 5), Timing::default());
        seen.until(|e| *e == Seen::Ready).await;
        // Give the pass a moment to reach the lock: it is waiting in SQLite's busy handler.
        tokio::task::yield_now().await;
        let asked = Instant::now();
        controls.send(Control::Stop).expect("send");
        seen.until(|e| *e == Seen::Stopping).await;
        *stop_seen_after.lock().expect("lock") = Some(asked.elapsed());
        release_tx.send(()).expect("release");
        let rest = seen.until(|e| *e == Seen::Stopped).await;
        assert!(
            rest.contains(&Seen::Pass {
                messages: 1,
                opened: 0
            }),
            "the batch in hand is finished: {rest:?}"
        );
        task.await.expect("the loop ends");
    });
    holder.join().expect("holder");
    let took = stop_seen_after.lock().expect("lock").expect("stop seen");
    println!("stop acted on after {took:?} with the write lock held elsewhere");
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert_eq!(setup.outbox_subjects().len(), 2);
}

/// A reload that comes while a pass runs is taken after the pass, and mail is read again at
/// once: the loop reconnects its source. Another process holds SQLite's write lock so that the
/// first pass is still running when the reload arrives.
#[test]
fn mail_is_read_at_once_after_a_reload_during_a_pass() {
    let setup = Setup::new("");
    let database = setup.config().storage.database.clone();
    drop(Store::open(&database).expect("store"));
    setup.deliver(0, jst(2026, 11, 25, 10, 0));
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let store = Store::open(&database).expect("store");
        store
            .write(|_| {
                let _ = locked_tx.send(());
                let _ = release_rx.recv();
                Ok::<_, StoreError>(())
            })
            .expect("hold the lock");
    });
    locked_rx.recv().expect("the lock is held");
    local(async {
        let (controls, mut seen, task) =
            start(&setup, || jst(2026, 11, 25, 10, 5), Timing::default());
        seen.until(|e| *e == Seen::Ready).await;
        controls.send(Control::Reload).expect("send");
        // Let the loop take the reload while the pass waits for the lock, then let the pass end.
        tokio::task::yield_now().await;
        release_tx.send(()).expect("release");
        let events = seen.until(|e| *e == Seen::Reloaded).await;
        assert!(
            events.contains(&Seen::Pass {
                messages: 1,
                opened: 0
            }),
            "the pass in hand is finished first: {events:?}"
        );
        setup.deliver(1, jst(2026, 11, 25, 10, 1));
        seen.until(|e| matches!(e, Seen::Pass { messages: 1, .. }))
            .await;
        controls.send(Control::Stop).expect("send");
        seen.until(|e| *e == Seen::Stopped).await;
        task.await.expect("the loop ends");
    });
    holder.join().expect("holder");
}
