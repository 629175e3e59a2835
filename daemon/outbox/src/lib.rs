//! The durable, encrypted record outbox (SQLite WAL, group commit).
//!
//! Every transaction at the gate ends in a record: who passed, what was checked, the
//! outcome. The record must reach central immigration, and it must not be lost on the
//! way, so the gate works like this:
//!
//! 1. **Durable before the door opens.** The gate calls [`Outbox::commit`] and opens the
//!    door only once it returns `Ok`: by then the record is in the SQLite WAL and fsynced
//!    (`synchronous=FULL`). A crash, a kill or a power cut after that cannot lose it. If
//!    the commit fails — the disk is full or broken, or the outbox holds `capacity`
//!    unacknowledged records ([`OutboxError::Full`]) — the traveller is referred to an
//!    officer: the gate fails closed rather than admit someone it has no record of.
//! 2. **Forwarded, then forgotten.** The forwarder (`torii-link`) reads
//!    [`Outbox::pending`] in `seq` order, sends the records to central, and calls
//!    [`Outbox::acknowledge`] with the ids central acknowledged. Acknowledged rows are
//!    deleted after `retention` (at once when it is zero): the gate does not keep
//!    personal data longer than it must.
//!
//! **Group commit.** An fsync costs milliseconds; one per record would cap the gate at a
//! few hundred records a second on a good disk and far fewer on an SD card, and would make
//! lanes wait for each other. A single writer thread instead takes every commit queued at
//! that moment and writes them in one transaction with one fsync, then answers all their
//! callers (see `writer.rs`). Under load the batches grow by themselves; a lone record
//! is not delayed.
//!
//! **Encryption.** The payload (the record's JSON: names, document numbers, face photo)
//! is encrypted with AES-256-GCM under a key kept in a separate, private file
//! ([`RecordKey`]), so a copy of the database alone discloses nobody. Each row has its
//! own random nonce, and the ciphertext is bound to its row's record id, creation time
//! and outcome, so rows swapped or altered on disk fail to decrypt
//! ([`OutboxError::Decrypt`] naming the `seq`) instead of showing the wrong traveller's
//! record. Only non-personal columns are in clear: `seq`, `record_id`, `created_at`,
//! `outcome` (a label like `referred:FP_MISMATCH`), `acked_at`.
//!
//! **Idempotence.** A daemon killed after its commit reached the disk but before it
//! noticed will commit the same record again after restart. Committing an existing
//! `record_id` returns the existing `seq` and stores nothing new, so retrying is always
//! safe. Central is idempotent by `record_id` too, so re-sending after a lost
//! acknowledgement is safe as well.
//!
//! Nothing personal appears in errors, logs or `Debug` output: payloads are shown by
//! length, keys not at all.
//!
//! ```no_run
//! # async fn demo() -> Result<(), torii_outbox::OutboxError> {
//! use torii_outbox::{Outbox, OutboxConfig, RecordKey, RecordMeta};
//! let key = RecordKey::from_file("/etc/toriid/record.key")?;
//! let outbox = Outbox::open(OutboxConfig::new("/var/lib/toriid/outbox.db", key, 100_000))?;
//! let id = uuid::Uuid::new_v4();
//! let seq = outbox.commit(id, RecordMeta::now("admitted"), br#"{"...":"..."}"#).await?;
//! // durable: open the door
//! # let _ = seq; Ok(()) }
//! ```

mod crypto;
mod error;
mod key;
mod record;
mod stats;
mod store;
mod writer;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use nix::fcntl::Flock;
use rusqlite::Connection;
use tokio::sync::oneshot;
use uuid::Uuid;

pub use crate::error::OutboxError;
pub use crate::key::{KEY_LEN, RecordKey};
pub use crate::record::{MAX_OUTCOME_LEN, Pending, RecordMeta, StoredRecord, now_unix_ms, unix_ms};
pub use crate::stats::{Level, OutboxStats};

use crate::crypto::RecordCipher;
use crate::store::COLUMNS;
use crate::writer::{Op, OpKind, Reply, Shared, Writer};

/// How to open an outbox.
#[derive(Clone, Debug)]
pub struct OutboxConfig {
    /// The SQLite database file (created, mode 0600, if missing; its directory must
    /// exist). `<path>-wal`, `<path>-shm` and `<path>.lock` live beside it.
    pub path: PathBuf,
    pub key: RecordKey,
    /// Most unacknowledged records held; at this depth commits fail with
    /// [`OutboxError::Full`]. At least 1.
    pub capacity: u64,
    /// Fraction of `capacity` at which [`OutboxStats::level`] turns to
    /// [`Level::Warning`]; in (0, 1]. Default 0.8.
    pub warn_fraction: f64,
    /// How long acknowledged records are kept before they are purged; zero purges them
    /// as soon as they are acknowledged. Default zero.
    pub retention: Duration,
}

impl OutboxConfig {
    /// The defaults: `warn_fraction` 0.8, `retention` zero.
    pub fn new(path: impl Into<PathBuf>, key: RecordKey, capacity: u64) -> Self {
        OutboxConfig {
            path: path.into(),
            key,
            capacity,
            warn_fraction: 0.8,
            retention: Duration::ZERO,
        }
    }

    fn validate(&self) -> Result<i64, OutboxError> {
        if self.capacity == 0 {
            return Err(OutboxError::Config("capacity must be at least 1".into()));
        }
        if !(self.warn_fraction > 0.0 && self.warn_fraction <= 1.0) {
            return Err(OutboxError::Config(format!(
                "warn_fraction must be in (0, 1], not {}",
                self.warn_fraction
            )));
        }
        i64::try_from(self.retention.as_millis())
            .map_err(|_| OutboxError::Config("retention is too long".into()))
    }
}

/// The outbox. Cheap to clone (all clones share one database, writer thread and
/// counters); `Send + Sync`. The database is closed when the last clone is dropped.
///
/// `commit` is async (and has a blocking twin) because it waits for the group-commit
/// fsync. The other methods block the calling thread on SQLite for a short while (an
/// fsync for `acknowledge`/`purge`; reading and decrypting for `pending`/`get`/`recent`);
/// from async code, call them through `tokio::task::spawn_blocking` with a clone.
/// `stats` does no I/O.
#[derive(Clone)]
pub struct Outbox {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("path", &self.inner.path)
            .field("capacity", &self.inner.capacity)
            .finish_non_exhaustive()
    }
}

struct Inner {
    path: PathBuf,
    cipher: RecordCipher,
    reader: Mutex<Connection>,
    sender: Option<mpsc::Sender<Op>>,
    writer: Option<JoinHandle<()>>,
    shared: Arc<Shared>,
    capacity: u64,
    warn_at: u64,
    /// Released last (fields drop in order, after `Drop::drop` joined the writer).
    _lock: Flock<File>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the channel stops the writer after it has answered what was queued;
        // wait for it so that the database is closed when the last handle is gone.
        drop(self.sender.take());
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

impl Outbox {
    /// Opens (or creates) the outbox, checks that `key` is the one it was created with
    /// ([`OutboxError::WrongKey`] otherwise) and starts its writer thread. Only one
    /// `Outbox` may have a database open at a time ([`OutboxError::Locked`]).
    pub fn open(config: OutboxConfig) -> Result<Outbox, OutboxError> {
        let retention_ms = config.validate()?;
        let path = config.path;
        let lock = store::lock(&path)?;
        let cipher = RecordCipher::new(&config.key);
        let (conn, initial) = store::open_writer(&path, &cipher)?;
        let reader = store::open_reader(&path)?;
        let warn_at = stats::warn_threshold(config.capacity, config.warn_fraction);
        tracing::info!(
            path = %path.display(),
            depth = initial.depth,
            capacity = config.capacity,
            "outbox opened"
        );

        let shared = Arc::new(Shared::default());
        let (sender, rx) = mpsc::channel();
        let writer = Writer::new(
            conn,
            rx,
            shared.clone(),
            initial,
            config.capacity,
            warn_at,
            retention_ms,
        );
        let handle = std::thread::Builder::new()
            .name("outbox-writer".into())
            .spawn(move || writer.run())
            .map_err(|e| OutboxError::io(&path, e))?;

        Ok(Outbox {
            inner: Arc::new(Inner {
                path,
                cipher,
                reader: Mutex::new(reader),
                sender: Some(sender),
                writer: Some(handle),
                shared,
                capacity: config.capacity,
                warn_at,
                _lock: lock,
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Stores a record durably and returns its `seq`; returns only after the transaction
    /// holding it is fsynced. Committing a `record_id` that is already stored returns the
    /// stored `seq` (the new `meta` and `payload` are ignored). Fails with
    /// [`OutboxError::Full`] when `capacity` records are unacknowledged.
    ///
    /// Dropping the future after the commit was queued does not withdraw it; commit the
    /// same id again to learn its `seq`.
    pub async fn commit(
        &self,
        record_id: Uuid,
        meta: RecordMeta,
        payload: &[u8],
    ) -> Result<u64, OutboxError> {
        let (tx, rx) = oneshot::channel();
        self.submit_commit(record_id, meta, payload, Reply::Async(tx))?;
        rx.await.map_err(|_| OutboxError::Closed)?
    }

    /// [`Outbox::commit`] for threads that are not async (blocks the thread until the
    /// fsync; usable from inside a runtime too, at the cost of blocking a worker).
    pub fn commit_blocking(
        &self,
        record_id: Uuid,
        meta: RecordMeta,
        payload: &[u8],
    ) -> Result<u64, OutboxError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.submit_commit(record_id, meta, payload, Reply::Blocking(tx))?;
        rx.recv().map_err(|_| OutboxError::Closed)?
    }

    fn submit_commit(
        &self,
        record_id: Uuid,
        meta: RecordMeta,
        payload: &[u8],
        reply: Reply,
    ) -> Result<(), OutboxError> {
        meta.validate()?;
        // Encrypt on the caller's thread: lanes encrypt in parallel, the writer only writes.
        let sealed = self
            .inner
            .cipher
            .seal(record_id, meta.created_at, &meta.outcome, payload)?;
        self.submit(Op {
            kind: OpKind::Commit {
                record_id,
                created_at: meta.created_at,
                outcome: meta.outcome,
                sealed,
            },
            reply,
        })
    }

    fn submit(&self, op: Op) -> Result<(), OutboxError> {
        let sender = self.inner.sender.as_ref().ok_or(OutboxError::Closed)?;
        self.inner.shared.queued.fetch_add(1, Ordering::Relaxed);
        sender.send(op).map_err(|_| {
            self.inner.shared.queued.fetch_sub(1, Ordering::Relaxed);
            OutboxError::Closed
        })
    }

    /// Sends a change to the writer and waits for its result.
    fn write_blocking(&self, kind: OpKind) -> Result<u64, OutboxError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.submit(Op {
            kind,
            reply: Reply::Blocking(tx),
        })?;
        rx.recv().map_err(|_| OutboxError::Closed)?
    }

    /// Up to `max` unacknowledged records, lowest `seq` first, decrypted. Fails on the
    /// first row that does not decrypt ([`OutboxError::Decrypt`] naming its `seq`).
    pub fn pending(&self, max: usize) -> Result<Vec<Pending>, OutboxError> {
        let limit = i64::try_from(max).unwrap_or(i64::MAX);
        let rows = store::query_rows(
            &self.reader(),
            &format!("SELECT {COLUMNS} FROM records WHERE acked_at IS NULL ORDER BY seq LIMIT ?1"),
            [limit],
        )?;
        self.decrypt_all(rows)
    }

    /// Marks the records central acknowledged; returns how many were pending until now
    /// (unknown and already acknowledged ids are ignored). Durable when it returns. Also
    /// purges acknowledged records older than `retention`, so with a zero retention the
    /// acknowledged records are deleted in the same transaction.
    pub fn acknowledge(&self, record_ids: &[Uuid]) -> Result<usize, OutboxError> {
        if record_ids.is_empty() {
            return Ok(0);
        }
        let n = self.write_blocking(OpKind::Acknowledge {
            ids: record_ids.to_vec(),
        })?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    /// Deletes acknowledged records acknowledged at or before `now_ms - retention`
    /// (Unix ms); returns how many. `acknowledge` already does this as it goes; call it
    /// from a timer to purge when acknowledgements stop coming.
    pub fn purge(&self, now_ms: i64) -> Result<usize, OutboxError> {
        let n = self.write_blocking(OpKind::Purge { now: now_ms })?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    /// The stored record with this id, acknowledged or not (until purged).
    pub fn get(&self, record_id: Uuid) -> Result<Option<StoredRecord>, OutboxError> {
        let rows = store::query_rows(
            &self.reader(),
            &format!("SELECT {COLUMNS} FROM records WHERE record_id = ?1"),
            [record_id.hyphenated().to_string()],
        )?;
        rows.into_iter()
            .next()
            .map(|row| row.decrypt(&self.inner.cipher))
            .transpose()
    }

    /// The `limit` newest stored records (highest `seq` first), acknowledged or not.
    pub fn recent(&self, limit: usize) -> Result<Vec<StoredRecord>, OutboxError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = store::query_rows(
            &self.reader(),
            &format!("SELECT {COLUMNS} FROM records ORDER BY seq DESC LIMIT ?1"),
            [limit],
        )?;
        self.decrypt_all(rows)
    }

    /// Depth, level and counters, from memory (no database access).
    pub fn stats(&self) -> OutboxStats {
        let c = self.inner.shared.counters();
        OutboxStats {
            depth: c.depth,
            oldest_pending_created_at: c.oldest_pending_created_at,
            committed_total: c.committed_total,
            acknowledged_total: c.acknowledged_total,
            purged_total: c.purged_total,
            write_transactions: c.write_transactions,
            largest_batch: c.largest_batch,
            queued: self.inner.shared.queued.load(Ordering::Relaxed),
            capacity: self.inner.capacity,
            level: stats::level_of(c.depth, self.inner.capacity, self.inner.warn_at),
        }
    }

    fn reader(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the connection leaves no half-done state in it (reads only).
        self.inner.reader.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Decrypts outside the reader lock.
    fn decrypt_all(&self, rows: Vec<store::RawRow>) -> Result<Vec<StoredRecord>, OutboxError> {
        rows.into_iter()
            .map(|row| row.decrypt(&self.inner.cipher))
            .collect()
    }
}
