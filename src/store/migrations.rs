//! Versioned migrations kept in `PRAGMA user_version`. Each entry moves the schema one version
//! up; a database newer than the binary is refused rather than guessed at.

use rusqlite::Connection;

use super::{QueryContext, StoreError};

/// Migration N (1-based) is `MIGRATIONS[N - 1]`. Append only; never edit a released entry.
const MIGRATIONS: &[&str] = &[
    // 1: contracts, their contacts and domains, and the orders their periods are computed from.
    "CREATE TABLE contracts (
        contract_id    TEXT PRIMARY KEY,
        customer       TEXT NOT NULL,
        license_serial TEXT NOT NULL,
        customized     INTEGER NOT NULL,
        neo_support    INTEGER NOT NULL,
        server_id      TEXT NOT NULL
    );
    CREATE TABLE contract_contacts (
        contract_id TEXT NOT NULL REFERENCES contracts(contract_id) ON DELETE CASCADE,
        address     TEXT NOT NULL,
        PRIMARY KEY (contract_id, address)
    );
    CREATE INDEX contract_contacts_by_address ON contract_contacts(address);
    CREATE TABLE contract_domains (
        contract_id TEXT NOT NULL REFERENCES contracts(contract_id) ON DELETE CASCADE,
        domain      TEXT NOT NULL,
        PRIMARY KEY (contract_id, domain)
    );
    CREATE INDEX contract_domains_by_domain ON contract_domains(domain);
    CREATE TABLE orders (
        contract_id TEXT NOT NULL REFERENCES contracts(contract_id) ON DELETE CASCADE,
        seq         INTEGER NOT NULL,
        kind        TEXT NOT NULL CHECK (kind IN ('initial', 'renewal', 'recontinuation')),
        received    TEXT NOT NULL,
        purchased   TEXT,
        cert_start  TEXT,
        cert_end    TEXT,
        PRIMARY KEY (contract_id, seq)
    );",
    // 2: every message that arrived and what became of it, tickets, their articles, the
    // Message-IDs that thread mail to them, and the outbox (invariants 2–4).
    "CREATE TABLE tickets (
        number           INTEGER PRIMARY KEY,
        state            TEXT NOT NULL,
        category         TEXT NOT NULL,
        contract_id      TEXT,
        matched_by       TEXT,
        entitlement      TEXT NOT NULL,
        customer_address TEXT NOT NULL,
        customer_name    TEXT NOT NULL,
        subject          TEXT NOT NULL,
        received_at      TEXT NOT NULL,
        accepted_at      TEXT NOT NULL,
        license_due      TEXT,
        continues        INTEGER REFERENCES tickets(number),
        closed_at        TEXT,
        updated_at       TEXT NOT NULL
    );
    CREATE INDEX tickets_by_state ON tickets(state, accepted_at);
    CREATE TABLE messages (
        id             INTEGER PRIMARY KEY,
        source         TEXT NOT NULL,
        source_key     TEXT NOT NULL,
        message_id     TEXT,
        content_sha256 TEXT NOT NULL,
        raw_path       TEXT NOT NULL,
        size           INTEGER NOT NULL,
        received_at    TEXT NOT NULL,
        processed_at   TEXT NOT NULL,
        from_address   TEXT,
        subject        TEXT NOT NULL,
        verdict        TEXT NOT NULL
            CHECK (verdict IN ('article', 'recorded', 'quarantined', 'duplicate')),
        reason         TEXT,
        ticket         INTEGER REFERENCES tickets(number),
        UNIQUE (source, source_key)
    );
    CREATE INDEX messages_by_message_id ON messages(message_id, content_sha256);
    CREATE TABLE attachments (
        message      INTEGER NOT NULL REFERENCES messages(id),
        seq          INTEGER NOT NULL,
        name         TEXT,
        content_type TEXT NOT NULL,
        size         INTEGER NOT NULL,
        sha256       TEXT NOT NULL,
        PRIMARY KEY (message, seq)
    );
    CREATE TABLE outbox (
        id              INTEGER PRIMARY KEY,
        ticket          INTEGER REFERENCES tickets(number),
        kind            TEXT NOT NULL,
        auto_reply_to   TEXT,
        message_id      TEXT NOT NULL UNIQUE,
        sender          TEXT NOT NULL,
        recipients      TEXT NOT NULL,
        subject         TEXT NOT NULL,
        raw             BLOB NOT NULL,
        created_at      TEXT NOT NULL,
        state           TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'failed')),
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT NOT NULL,
        sent_at         TEXT,
        last_error      TEXT,
        bounced         TEXT
    );
    CREATE INDEX outbox_due ON outbox(state, next_attempt_at);
    CREATE INDEX outbox_auto_replies ON outbox(auto_reply_to, created_at);
    CREATE TABLE articles (
        id         INTEGER PRIMARY KEY,
        ticket     INTEGER NOT NULL REFERENCES tickets(number),
        direction  TEXT NOT NULL CHECK (direction IN ('in', 'out')),
        message    INTEGER REFERENCES messages(id),
        outbox     INTEGER REFERENCES outbox(id),
        author     TEXT NOT NULL,
        created_at TEXT NOT NULL,
        subject    TEXT NOT NULL,
        text       TEXT NOT NULL
    );
    CREATE INDEX articles_by_ticket ON articles(ticket, id);
    CREATE TABLE thread_ids (
        message_id TEXT PRIMARY KEY,
        ticket     INTEGER NOT NULL REFERENCES tickets(number),
        ours       INTEGER NOT NULL
    );",
    // 3: raw mail kept in the database, content-addressed, committed in the same transaction as
    // the verdict (one file per message cost more than the rest of the pipeline together).
    "CREATE TABLE raw_messages (
        sha256 TEXT PRIMARY KEY,
        bytes  BLOB NOT NULL
    );",
    // 4: staff notifications per ticket are counted for the hourly limit.
    "CREATE INDEX outbox_by_ticket ON outbox(ticket, kind, created_at);",
    // 5: the first staff reply that reached the customer, and how long it took in business
    // minutes from acceptance (R5 calendar).
    "ALTER TABLE tickets ADD COLUMN first_response_at TEXT;
     ALTER TABLE tickets ADD COLUMN first_response_minutes INTEGER;",
    // 6: what each article is (customer, staff, staff_reply, note, auto_reply, notice); older
    // rows have none and are read by their direction.
    "ALTER TABLE articles ADD COLUMN kind TEXT;",
    // 7: who of the staff a ticket is assigned to (`#assign`).
    "ALTER TABLE tickets ADD COLUMN assignee TEXT;",
    // 8: license key applications (R7/R8), one per ticket, and an audit row for every step.
    "CREATE TABLE license_applications (
        ticket             INTEGER PRIMARY KEY REFERENCES tickets(number),
        jti                TEXT NOT NULL UNIQUE,
        contract_id        TEXT NOT NULL,
        license_serial     TEXT NOT NULL,
        server_id          TEXT NOT NULL,
        previous_server_id TEXT,
        applicant          TEXT NOT NULL,
        message_id         TEXT,
        applied_at         TEXT NOT NULL,
        due                TEXT,
        send_at            TEXT,
        state              TEXT NOT NULL CHECK (state IN
                               ('waiting', 'waiting_approval', 'issued', 'sent', 'refused')),
        detail             TEXT,
        approved_by        TEXT,
        approved_at        TEXT,
        key                TEXT,
        key_id             TEXT,
        issued_at          TEXT,
        outbox             INTEGER REFERENCES outbox(id),
        sent_at            TEXT,
        attempts           INTEGER NOT NULL DEFAULT 0,
        next_attempt_at    TEXT,
        superseded_by      INTEGER,
        reminded           INTEGER NOT NULL DEFAULT 0,
        escalated          INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX license_applications_same
        ON license_applications(contract_id, license_serial, server_id);
    CREATE INDEX license_applications_by_state ON license_applications(state);
    CREATE INDEX license_applications_by_outbox ON license_applications(outbox);
    CREATE TABLE license_audit (
        id     INTEGER PRIMARY KEY,
        ticket INTEGER NOT NULL,
        at     TEXT NOT NULL,
        step   TEXT NOT NULL,
        detail TEXT
    );
    CREATE INDEX license_audit_by_ticket ON license_audit(ticket);",
    // 9: a sender's recent tickets, for the flood rule.
    "CREATE INDEX tickets_by_customer ON tickets(customer_address, received_at);
    CREATE INDEX messages_by_ticket ON messages(ticket, received_at);",
    // 10: what the daemon last recorded about itself, one row, for `madoguchi status`: when it
    // started and as which pid, its last successful pass, its last error, the mailbox as it
    // last saw it. Written by the daemon loop after each pass; times are the wall clock's.
    "CREATE TABLE daemon_status (
        id                 INTEGER PRIMARY KEY CHECK (id = 1),
        pid                INTEGER,
        started_at         TEXT,
        last_pass_at       TEXT,
        last_pass_ms       INTEGER,
        last_pass_summary  TEXT,
        last_error         TEXT,
        last_error_at      TEXT,
        mailbox_state      TEXT CHECK (mailbox_state IN ('reachable', 'unreachable')),
        mailbox_checked_at TEXT
    );",
    // 11: a quarantined message released by `quarantine release`: when, and the message row
    // its second decision made (source `release`, key `release:<id>`). A released row is no
    // longer held and no longer the original a re-delivery is a duplicate of.
    "ALTER TABLE messages ADD COLUMN released_at TEXT;
     ALTER TABLE messages ADD COLUMN released_to INTEGER REFERENCES messages(id);
     CREATE INDEX messages_held ON messages(id)
         WHERE verdict = 'quarantined' AND released_at IS NULL;",
    // 12: the desk acting ahead of time (issue 13). `contracts.reminders`: whether a contract's
    // contacts get renewal reminders (contracts.csv `reminders`, default yes). `reminders`:
    // every reminder, staff reminder and digest the desk owed and queued, once each: `key` names
    // what it is for (`renewal:<contract>:<period end>:<days>`, `lapsed:<contract>:<period end>`,
    // `recontinuation:<contract>:<period end>`, `first_response:<ticket>:<level>`,
    // `next_response:<ticket>:<waiting since>:<level>`, `digest:<day>`), so a second pass or a
    // restart never queues it again. `nominal` is when it was due by the rules, `queued_at` when
    // the desk queued it (the first opening of a business day on or after `nominal`); `outbox`
    // is its mail (NULL for a digest that had nothing to say).
    "CREATE TABLE reminders (
        id            INTEGER PRIMARY KEY,
        key           TEXT NOT NULL UNIQUE,
        kind          TEXT NOT NULL CHECK (kind IN ('renewal', 'lapsed', 'recontinuation',
                          'first_response', 'next_response', 'digest')),
        contract_id   TEXT,
        period_end    TEXT,
        days          INTEGER,
        ticket        INTEGER REFERENCES tickets(number),
        level         INTEGER,
        waiting_since TEXT,
        day           TEXT,
        nominal       TEXT NOT NULL,
        queued_at     TEXT NOT NULL,
        outbox        INTEGER REFERENCES outbox(id)
    );
    CREATE INDEX reminders_by_contract ON reminders(contract_id, period_end);
    CREATE INDEX reminders_by_ticket ON reminders(ticket);
    CREATE INDEX reminders_by_queued ON reminders(queued_at);
    ALTER TABLE contracts ADD COLUMN reminders INTEGER NOT NULL DEFAULT 1;",
];

/// The newest schema version this binary knows.
pub fn supported_version() -> i64 {
    MIGRATIONS.len() as i64
}

pub fn current_version(conn: &Connection) -> Result<i64, StoreError> {
    conn.query_row("PRAGMA user_version", [], |row| row.get(0))
        .doing("read the schema version")
}

pub fn apply(conn: &mut Connection) -> Result<(), StoreError> {
    apply_up_to(conn, supported_version())
}

/// Migrates up to `target` only (`apply` goes to the newest): how a test makes a database as
/// an older madoguchi left it.
pub fn apply_up_to(conn: &mut Connection, target: i64) -> Result<(), StoreError> {
    let found = current_version(conn)?;
    let supported = supported_version();
    if found > supported {
        return Err(StoreError::TooNew { found, supported });
    }
    let wanted = target.clamp(0, supported) as usize;
    for (index, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .take(wanted)
        .skip(found.max(0) as usize)
    {
        let version = index as i64 + 1;
        let migrate = |source| StoreError::Migrate { version, source };
        // Each migration and its version bump commit together, so a crash leaves a known version.
        // The write lock is taken first and the version read again under it: another process
        // opening the same new database (`status` while the daemon starts) may have applied
        // this step meanwhile.
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(migrate)?;
        let now_at: i64 = tx
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .map_err(migrate)?;
        if now_at >= version {
            continue;
        }
        tx.execute_batch(sql).map_err(migrate)?;
        tx.pragma_update(None, "user_version", version)
            .map_err(migrate)?;
        tx.commit().map_err(migrate)?;
        tracing::info!(version, "Migrated database schema.");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[test]
    fn a_new_database_reaches_the_newest_version_and_reopening_is_a_no_op() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db/m.sqlite3");
        let store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), supported_version());
        drop(store);
        let store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), supported_version());
    }

    #[test]
    fn a_database_newer_than_the_binary_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.sqlite3");
        drop(Store::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", supported_version() + 1)
            .unwrap();
        drop(conn);
        match Store::open(&path) {
            Err(StoreError::TooNew { found, supported }) => {
                assert_eq!(found, supported_version() + 1);
                assert_eq!(supported, supported_version());
            }
            Err(other) => panic!("unexpected error {other}"),
            Ok(_) => panic!("a newer database was opened"),
        }
    }

    #[test]
    fn the_journal_is_wal() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("w.sqlite3")).unwrap();
        let mode: String = store
            .conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }
}
