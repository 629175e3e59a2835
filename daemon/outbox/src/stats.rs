//! The outbox's health, for metrics and for deciding whether the gate may keep admitting.

use serde::Serialize;

/// How full the outbox is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Below the warning threshold.
    Normal,
    /// At or above `warn_fraction` of capacity: central has not acknowledged for a while.
    Warning,
    /// At capacity: commits are refused ([`crate::OutboxError::Full`]); the gate refers.
    Full,
}

/// A snapshot of the outbox. Taken from counters the writer keeps in memory: no
/// database access, cheap enough for every metrics scrape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct OutboxStats {
    /// Records waiting for central's acknowledgement.
    pub depth: u64,
    /// `created_at` (Unix ms) of the record at the head of the queue (lowest `seq`).
    pub oldest_pending_created_at: Option<i64>,
    /// Records stored since this `Outbox` was opened (idempotent re-commits not counted).
    pub committed_total: u64,
    /// Records acknowledged since open.
    pub acknowledged_total: u64,
    /// Acknowledged records deleted since open.
    pub purged_total: u64,
    /// Write transactions (each one fsync) since open. `committed_total /
    /// write_transactions` is the group-commit batching factor.
    pub write_transactions: u64,
    /// Most records stored by one transaction since open.
    pub largest_batch: u64,
    /// Operations waiting for the writer thread right now.
    pub queued: u64,
    pub capacity: u64,
    pub level: Level,
}

pub(crate) fn level_of(depth: u64, capacity: u64, warn_at: u64) -> Level {
    if depth >= capacity {
        Level::Full
    } else if depth >= warn_at {
        Level::Warning
    } else {
        Level::Normal
    }
}

/// The depth at which the level turns to `Warning`: `warn_fraction` of capacity, rounded
/// up, at least 1.
pub(crate) fn warn_threshold(capacity: u64, warn_fraction: f64) -> u64 {
    ((capacity as f64 * warn_fraction).ceil() as u64).clamp(1, capacity.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels() {
        let warn_at = warn_threshold(10, 0.8);
        assert_eq!(warn_at, 8);
        assert_eq!(level_of(7, 10, warn_at), Level::Normal);
        assert_eq!(level_of(8, 10, warn_at), Level::Warning);
        assert_eq!(level_of(10, 10, warn_at), Level::Full);
        assert_eq!(warn_threshold(3, 0.5), 2);
        assert_eq!(warn_threshold(1, 0.01), 1);
    }
}
