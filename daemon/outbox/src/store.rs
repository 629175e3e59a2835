//! The SQLite side: opening the database durably, the schema, reading rows back.
//!
//! The database runs in WAL mode with `synchronous=FULL`: a transaction's commit returns
//! only after its WAL frames are fsynced, so a committed record survives a crash of the
//! process and a loss of power alike (as far as the disk honours fsync). WAL also lets the
//! readers (the forwarder's `pending`, the APIs' `get`/`recent`) read while the writer
//! commits.
//!
//! `seq` is `INTEGER PRIMARY KEY AUTOINCREMENT`: strictly increasing and never reused,
//! even after the newest rows were purged, which central relies on to keep a gate's
//! records in order. Two partial indexes keep the two hot queries independent of how
//! many acknowledged rows are kept for the retention period: the pending queue in `seq`
//! order, and acknowledged rows by `acked_at` for purging.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::fcntl::{Flock, FlockArg};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Params};
use uuid::Uuid;

use crate::crypto::RecordCipher;
use crate::error::OutboxError;
use crate::record::StoredRecord;

/// The schema version this code writes (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS records (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    record_id   TEXT    NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL,
    outcome     TEXT    NOT NULL,
    nonce       BLOB    NOT NULL,
    ciphertext  BLOB    NOT NULL,
    acked_at    INTEGER
);
CREATE INDEX IF NOT EXISTS records_pending ON records (seq) WHERE acked_at IS NULL;
CREATE INDEX IF NOT EXISTS records_acked ON records (acked_at) WHERE acked_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS meta (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
";

/// How long a connection waits for SQLite's own locks (only the writer writes; this
/// covers checkpoints and an operator's `sqlite3` session).
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Columns in the order [`RawRow::from_row`] reads them.
pub(crate) const COLUMNS: &str = "seq, record_id, created_at, outcome, nonce, ciphertext, acked_at";

/// What the writer needs to know about the outbox when it starts.
pub(crate) struct Initial {
    pub depth: u64,
    pub oldest_pending_created_at: Option<i64>,
}

/// Takes the outbox's lock file (`<path>.lock`): one process at a time, so that the
/// writer's view of the queue depth is the truth.
pub(crate) fn lock(path: &Path) -> Result<Flock<File>, OutboxError> {
    let lock_path = lock_path(path);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&lock_path)
        .map_err(|e| OutboxError::io(&lock_path, e))?;
    Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|(_, errno)| {
        if errno == nix::errno::Errno::EWOULDBLOCK {
            OutboxError::Locked {
                path: path.to_owned(),
                lock: lock_path.clone(),
            }
        } else {
            OutboxError::io(&lock_path, errno.into())
        }
    })
}

fn lock_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".lock");
    PathBuf::from(p)
}

/// Opens (creating if needed) the database for the writer, and checks the key.
pub(crate) fn open_writer(
    path: &Path,
    cipher: &RecordCipher,
) -> Result<(Connection, Initial), OutboxError> {
    // Create the file ourselves so that it is private from its first moment; SQLite gives
    // its -wal and -shm files the database file's permissions.
    let created = match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => true,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
        Err(e) => return Err(OutboxError::io(path, e)),
    };

    let mut conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String =
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(OutboxError::Config(format!(
            "the database refused WAL mode (journal_mode is {mode})"
        )));
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    // Give the WAL file back to the file system after checkpoints past 64 MiB.
    conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;

    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let version: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(OutboxError::Config(format!(
            "{} has schema version {version}; this build knows up to {SCHEMA_VERSION}",
            path.display()
        )));
    }
    tx.execute_batch(SCHEMA)?;
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    let check: Option<Vec<u8>> = tx
        .query_row("SELECT value FROM meta WHERE name = 'key_check'", [], |r| {
            r.get(0)
        })
        .optional()?;
    match check {
        Some(check) if !cipher.verify_key_check(&check) => {
            return Err(OutboxError::WrongKey {
                path: path.to_owned(),
            });
        }
        Some(_) => {}
        None => {
            tx.execute(
                "INSERT INTO meta (name, value) VALUES ('key_check', ?1)",
                [cipher.key_check()?],
            )?;
        }
    }
    let depth: i64 = tx.query_row(
        "SELECT count(*) FROM records WHERE acked_at IS NULL",
        [],
        |r| r.get(0),
    )?;
    let oldest_pending_created_at = oldest_pending(&tx)?;
    tx.commit()?;

    if created {
        // The new directory entries (database, WAL) must survive a power cut too.
        sync_parent_dir(path)?;
    }
    Ok((
        conn,
        Initial {
            depth: u64::try_from(depth).unwrap_or(0),
            oldest_pending_created_at,
        },
    ))
}

/// A second connection for reads, so that reads never queue behind the writer's fsyncs.
pub(crate) fn open_reader(path: &Path) -> Result<Connection, OutboxError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "query_only", true)?;
    Ok(conn)
}

/// `created_at` of the record at the head of the pending queue.
pub(crate) fn oldest_pending(conn: &Connection) -> Result<Option<i64>, OutboxError> {
    Ok(conn
        .query_row(
            "SELECT created_at FROM records WHERE acked_at IS NULL ORDER BY seq LIMIT 1",
            [],
            |r| r.get(0),
        )
        .optional()?)
}

/// fsyncs the directory holding `path`, making a file created in it durable.
pub(crate) fn sync_parent_dir(path: &Path) -> Result<(), OutboxError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| OutboxError::io(dir, e))
}

/// One row as stored, still encrypted.
pub(crate) struct RawRow {
    seq: i64,
    record_id: String,
    created_at: i64,
    outcome: String,
    nonce: Vec<u8>,
    ciphertext: Vec<u8>,
    acked_at: Option<i64>,
}

impl RawRow {
    fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(RawRow {
            seq: row.get(0)?,
            record_id: row.get(1)?,
            created_at: row.get(2)?,
            outcome: row.get(3)?,
            nonce: row.get(4)?,
            ciphertext: row.get(5)?,
            acked_at: row.get(6)?,
        })
    }

    pub fn decrypt(self, cipher: &RecordCipher) -> Result<StoredRecord, OutboxError> {
        let seq = u64::try_from(self.seq).map_err(|_| OutboxError::Corrupt {
            seq: 0,
            problem: "negative seq",
        })?;
        let record_id = Uuid::parse_str(&self.record_id).map_err(|_| OutboxError::Corrupt {
            seq,
            problem: "record_id is not a UUID",
        })?;
        let payload = cipher.open(
            seq,
            record_id,
            self.created_at,
            &self.outcome,
            &self.nonce,
            &self.ciphertext,
        )?;
        Ok(StoredRecord {
            seq,
            record_id,
            created_at: self.created_at,
            outcome: self.outcome,
            acked_at: self.acked_at,
            payload,
        })
    }
}

/// Runs a query selecting [`COLUMNS`].
pub(crate) fn query_rows(
    conn: &Connection,
    sql: &str,
    params: impl Params,
) -> Result<Vec<RawRow>, OutboxError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt
        .query_map(params, RawRow::from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}
