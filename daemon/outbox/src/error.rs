//! The outbox's one error type.
//!
//! No variant carries personal data: payloads never reach an error, outcome labels are
//! not echoed back (only their length or the rule they broke), and SQLite's own messages
//! name tables and constraints, not values. A record is identified by its `seq` only.

use std::path::PathBuf;
use std::sync::Arc;

/// What can go wrong in the outbox. `Clone` because one failed group-commit transaction
/// fails every commit in it with the same error.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OutboxError {
    /// The database said no (disk full, I/O error, corruption, ...). Nothing of the
    /// operation that got this error is durable.
    #[error("outbox database: {0}")]
    Sqlite(#[source] Arc<rusqlite::Error>),

    /// A file-system operation around the database failed.
    #[error("outbox {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: Arc<std::io::Error>,
    },

    /// The record key file is unusable; `problem` says why (never the key's bytes).
    #[error("record key {path}: {problem}")]
    Key { path: PathBuf, problem: String },

    /// The key does not open this outbox: it was created with another key.
    #[error(
        "outbox {path} was created with a different record key (its key check does not decrypt)"
    )]
    WrongKey { path: PathBuf },

    /// Another process (or another `Outbox` in this one) has the outbox open.
    #[error("outbox {path} is already open elsewhere (lock file {lock} is held)")]
    Locked { path: PathBuf, lock: PathBuf },

    /// The configuration is unusable.
    #[error("outbox configuration: {0}")]
    Config(String),

    /// `capacity` records are waiting for central's acknowledgement: the record was not
    /// stored, and the gate must fail closed (refer the traveller).
    #[error("outbox full: {capacity} records wait for central's acknowledgement")]
    Full { capacity: u64 },

    /// The outcome label is not a short, plain label (see [`crate::RecordMeta`]).
    #[error("outcome label rejected: {0}")]
    Outcome(&'static str),

    /// The payload could not be encrypted (it is larger than AES-GCM allows).
    #[error("record payload could not be encrypted ({len} bytes)")]
    Encrypt { len: usize },

    /// The stored row `seq` does not decrypt with the outbox key: its ciphertext, nonce,
    /// record id, creation time or outcome was altered, or it was moved from another row.
    #[error("outbox record seq {seq} does not decrypt: altered or moved ciphertext")]
    Decrypt { seq: u64 },

    /// The stored row `seq` is malformed in a way decryption does not cover.
    #[error("outbox record seq {seq} is malformed: {problem}")]
    Corrupt { seq: u64, problem: &'static str },

    /// The writer thread is gone (the outbox is shutting down or the thread died).
    #[error("outbox writer is closed")]
    Closed,
}

impl From<rusqlite::Error> for OutboxError {
    fn from(e: rusqlite::Error) -> Self {
        OutboxError::Sqlite(Arc::new(e))
    }
}

impl OutboxError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        OutboxError::Io {
            path: path.into(),
            source: Arc::new(source),
        }
    }

    pub(crate) fn key(path: impl Into<PathBuf>, problem: impl Into<String>) -> Self {
        OutboxError::Key {
            path: path.into(),
            problem: problem.into(),
        }
    }
}
