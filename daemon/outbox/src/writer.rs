//! The writer thread and group commit.
//!
//! Every change to the outbox (commits, acknowledgements, purges) goes through one
//! thread that owns the only writing connection. It blocks for the first queued
//! operation, then takes every other operation queued at that moment (up to
//! [`MAX_BATCH`]) and applies them all in ONE SQLite transaction: one WAL append and one
//! fsync for the whole batch. Callers wait on a reply channel that is answered only after
//! that transaction has committed, so "commit returned" still means "on disk".
//!
//! There is no timer and no batching delay: while the writer waits for one fsync, the
//! commits arriving from other lanes queue up, and the next transaction takes them all.
//! A lone commit is written at once; under load, batches grow by themselves to absorb it.
//!
//! Because the writer is the only writer, it also keeps the authoritative queue depth
//! (the number of unacknowledged rows), which is what the capacity check (fail closed
//! when full) and the cheap [`crate::OutboxStats`] are built on.
//!
//! If the transaction fails, it is rolled back and every operation in it gets the same
//! error: nothing of the batch is durable, and nobody is told otherwise.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError};
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::crypto::Sealed;
use crate::error::OutboxError;
use crate::record::now_unix_ms;
use crate::stats::{Level, level_of};
use crate::store::{Initial, oldest_pending};

/// Most operations applied in one transaction.
pub(crate) const MAX_BATCH: usize = 1024;

/// One change for the writer, and where to send its result.
pub(crate) struct Op {
    pub kind: OpKind,
    pub reply: Reply,
}

pub(crate) enum OpKind {
    Commit {
        record_id: Uuid,
        created_at: i64,
        outcome: String,
        sealed: Sealed,
    },
    Acknowledge {
        ids: Vec<Uuid>,
    },
    Purge {
        now: i64,
    },
}

/// Where a result goes: an async caller's oneshot or a blocked thread's channel (a tokio
/// oneshot cannot be waited on from inside a runtime without panicking).
pub(crate) enum Reply {
    Async(oneshot::Sender<Result<u64, OutboxError>>),
    Blocking(SyncSender<Result<u64, OutboxError>>),
}

impl Reply {
    fn send(self, result: Result<u64, OutboxError>) {
        // A caller that stopped waiting (a dropped future) does not undo the commit;
        // retrying with the same record id finds it.
        match self {
            Reply::Async(tx) => {
                let _ = tx.send(result);
            }
            Reply::Blocking(tx) => {
                let _ = tx.send(result);
            }
        }
    }
}

/// Counters the writer publishes after each transaction, read by `stats()`.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Counters {
    pub depth: u64,
    pub oldest_pending_created_at: Option<i64>,
    pub committed_total: u64,
    pub acknowledged_total: u64,
    pub purged_total: u64,
    pub write_transactions: u64,
    pub largest_batch: u64,
}

/// State shared between the writer thread and the `Outbox` handles.
#[derive(Default)]
pub(crate) struct Shared {
    counters: Mutex<Counters>,
    /// Operations sent but not yet taken by the writer.
    pub queued: AtomicU64,
}

impl Shared {
    pub fn counters(&self) -> Counters {
        *self.lock()
    }

    fn lock(&self) -> MutexGuard<'_, Counters> {
        // The counters are plain numbers: a panic elsewhere cannot leave them torn.
        self.counters.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub(crate) struct Writer {
    conn: Connection,
    rx: Receiver<Op>,
    shared: Arc<Shared>,
    capacity: u64,
    warn_at: u64,
    retention_ms: i64,
    /// Authoritative copy of the published counters.
    counters: Counters,
}

/// What one transaction changed.
#[derive(Default)]
struct Delta {
    inserted: u64,
    acknowledged: u64,
    purged: u64,
}

impl Writer {
    pub fn new(
        conn: Connection,
        rx: Receiver<Op>,
        shared: Arc<Shared>,
        initial: Initial,
        capacity: u64,
        warn_at: u64,
        retention_ms: i64,
    ) -> Self {
        let counters = Counters {
            depth: initial.depth,
            oldest_pending_created_at: initial.oldest_pending_created_at,
            ..Counters::default()
        };
        *shared.lock() = counters;
        Writer {
            conn,
            rx,
            shared,
            capacity,
            warn_at,
            retention_ms,
            counters,
        }
    }

    /// Runs until every sender is gone, then closes the connection.
    pub fn run(mut self) {
        while let Ok(first) = self.rx.recv() {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match self.rx.try_recv() {
                    Ok(op) => batch.push(op),
                    Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
                }
            }
            self.shared
                .queued
                .fetch_sub(batch.len() as u64, Ordering::Relaxed);
            self.run_batch(batch);
        }
        tracing::debug!("outbox writer stopped");
    }

    fn run_batch(&mut self, batch: Vec<Op>) {
        let before = level_of(self.counters.depth, self.capacity, self.warn_at);
        match self.apply(&batch) {
            Ok(results) => {
                let after = level_of(self.counters.depth, self.capacity, self.warn_at);
                if after != before {
                    log_level_change(after, self.counters.depth, self.capacity);
                }
                *self.shared.lock() = self.counters;
                for (op, result) in batch.into_iter().zip(results) {
                    op.reply.send(result);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, operations = batch.len(),
                    "outbox transaction failed; nothing of it was stored");
                for op in batch {
                    op.reply.send(Err(e.clone()));
                }
            }
        }
    }

    /// Applies the batch in one transaction. On `Ok`, it is committed (fsynced) and
    /// `self.counters` updated; each operation has its own result (a commit may be
    /// refused as `Full` while the others go through).
    fn apply(&mut self, batch: &[Op]) -> Result<Vec<Result<u64, OutboxError>>, OutboxError> {
        let now = now_unix_ms();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut depth = self.counters.depth;
        let mut delta = Delta::default();
        let mut results = Vec::with_capacity(batch.len());
        {
            let mut find = tx.prepare_cached("SELECT seq FROM records WHERE record_id = ?1")?;
            let mut insert = tx.prepare_cached(
                "INSERT INTO records (record_id, created_at, outcome, nonce, ciphertext)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            // With zero retention an acknowledged row is deleted outright: marking it
            // first would rewrite the whole row (payload included) only to delete it.
            let mut ack = tx.prepare_cached(if self.retention_ms == 0 {
                "DELETE FROM records WHERE record_id = ?1 AND acked_at IS NULL"
            } else {
                "UPDATE records SET acked_at = ?2 WHERE record_id = ?1 AND acked_at IS NULL"
            })?;
            let mut purge = tx.prepare_cached(
                "DELETE FROM records WHERE acked_at IS NOT NULL AND acked_at <= ?1",
            )?;
            for op in batch {
                let result = match &op.kind {
                    OpKind::Commit {
                        record_id,
                        created_at,
                        outcome,
                        sealed,
                    } => {
                        let id = record_id.hyphenated().to_string();
                        let existing: Option<i64> =
                            find.query_row([&id], |r| r.get(0)).optional()?;
                        if let Some(seq) = existing {
                            // Idempotent: already durable (perhaps by a process that died
                            // before it could tell anybody). Allowed even when full.
                            Ok(seq as u64)
                        } else if depth >= self.capacity {
                            Err(OutboxError::Full {
                                capacity: self.capacity,
                            })
                        } else {
                            insert.execute(params![
                                id,
                                created_at,
                                outcome,
                                &sealed.nonce[..],
                                &sealed.ciphertext
                            ])?;
                            depth += 1;
                            delta.inserted += 1;
                            Ok(tx.last_insert_rowid() as u64)
                        }
                    }
                    OpKind::Acknowledge { ids } => {
                        let mut n = 0u64;
                        for id in ids {
                            let id = id.hyphenated().to_string();
                            n += if self.retention_ms == 0 {
                                ack.execute([id])?
                            } else {
                                ack.execute(params![id, now])?
                            } as u64;
                        }
                        depth = depth.saturating_sub(n);
                        delta.acknowledged += n;
                        if self.retention_ms == 0 {
                            delta.purged += n;
                        }
                        // Purge as we go, so retention needs no timer of its own.
                        delta.purged +=
                            purge.execute([now.saturating_sub(self.retention_ms)])? as u64;
                        Ok(n)
                    }
                    OpKind::Purge { now } => {
                        let n = purge.execute([now.saturating_sub(self.retention_ms)])? as u64;
                        delta.purged += n;
                        Ok(n)
                    }
                };
                results.push(result);
            }
        }
        let changed = delta.inserted + delta.acknowledged + delta.purged > 0;
        let oldest = if changed {
            oldest_pending(&tx)?
        } else {
            self.counters.oldest_pending_created_at
        };
        tx.commit()?;

        let c = &mut self.counters;
        c.depth = depth;
        c.oldest_pending_created_at = oldest;
        c.committed_total += delta.inserted;
        c.acknowledged_total += delta.acknowledged;
        c.purged_total += delta.purged;
        if changed {
            c.write_transactions += 1;
            c.largest_batch = c.largest_batch.max(delta.inserted);
        }
        Ok(results)
    }
}

fn log_level_change(level: Level, depth: u64, capacity: u64) {
    match level {
        Level::Full => tracing::error!(
            depth,
            capacity,
            "outbox full: new records are refused until central acknowledges"
        ),
        Level::Warning => tracing::warn!(depth, capacity, "outbox filling up"),
        Level::Normal => tracing::info!(depth, capacity, "outbox back to normal"),
    }
}
