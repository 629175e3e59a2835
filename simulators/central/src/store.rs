//! What central holds: the records the gates sent, and the registry and revocation
//! feeds. Plain data and the rules of `POST /v1/records` and the cursors, without any
//! networking, so they are tested on their own.

use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;
use torii_link::protocol::{
    MAX_PAGE, OutOfOrder, RecordEnvelope, RegistryChange, RegistryPage, Revocation, RevocationPage,
};
use uuid::Uuid;

/// The registration statuses a revocation may carry (torii-core's `RegistrationStatus`
/// less `active`).
pub const REVOCATION_STATUSES: [&str; 3] =
    ["revoked", "passport-reported-lost", "changed-to-resident"];

/// One record as central stored it (`GET /control/records`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StoredRecord {
    pub gate_id: String,
    pub seq: u64,
    pub record_id: Uuid,
    pub record: Value,
    /// When central stored it (RFC 3339, UTC).
    pub received_at: String,
}

/// The outcome of a batch (or of the part of it that was processed).
#[derive(Clone, Debug, PartialEq)]
pub enum BatchOutcome {
    /// Every record is held: 200 with these ids, in the batch's order.
    Acknowledged {
        acknowledged: Vec<Uuid>,
        new: usize,
        duplicates: usize,
    },
    /// 409 [`OutOfOrder`]: the records before the offending one were stored.
    OutOfOrder {
        refusal: OutOfOrder,
        new: usize,
        duplicates: usize,
    },
    /// 409: a record id central holds (or that the batch repeats) with another body.
    /// Nothing of the batch was stored.
    Conflict { record_id: Uuid },
}

/// The records received, in arrival order.
#[derive(Debug, Default)]
pub struct Records {
    list: Vec<StoredRecord>,
    by_id: HashMap<Uuid, usize>,
    last_seq: HashMap<String, u64>,
}

impl Records {
    pub fn list(&self) -> &[StoredRecord] {
        &self.list
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The last `seq` stored for `gate_id`.
    pub fn last_seq(&self, gate_id: &str) -> Option<u64> {
        self.last_seq.get(gate_id).copied()
    }

    /// Forgets every record and every gate's last `seq`.
    pub fn clear(&mut self) {
        *self = Records::default();
    }

    fn same(stored: &StoredRecord, gate_id: &str, envelope: &RecordEnvelope) -> bool {
        stored.gate_id == gate_id && stored.seq == envelope.seq && stored.record == envelope.record
    }

    /// Applies `records` of `gate_id`'s batch: idempotent by `record_id`, a new record
    /// only above the gate's last stored `seq`. A conflicting id (held with another
    /// gate, `seq` or body, or repeated differently within the batch) refuses the whole
    /// batch before anything is stored.
    pub fn apply(
        &mut self,
        gate_id: &str,
        records: &[RecordEnvelope],
        received_at: &str,
    ) -> BatchOutcome {
        let mut in_batch: HashMap<Uuid, &RecordEnvelope> = HashMap::new();
        for envelope in records {
            let conflict = match self.by_id.get(&envelope.record_id) {
                Some(&index) => !Self::same(&self.list[index], gate_id, envelope),
                None => in_batch
                    .insert(envelope.record_id, envelope)
                    .is_some_and(|earlier| earlier != envelope),
            };
            if conflict {
                return BatchOutcome::Conflict {
                    record_id: envelope.record_id,
                };
            }
        }
        let mut acknowledged = Vec::with_capacity(records.len());
        let (mut new, mut duplicates) = (0, 0);
        for envelope in records {
            if self.by_id.contains_key(&envelope.record_id) {
                duplicates += 1;
                acknowledged.push(envelope.record_id);
                continue;
            }
            let last = self.last_seq(gate_id);
            if let Some(last_seq) = last.filter(|&last| envelope.seq <= last) {
                return BatchOutcome::OutOfOrder {
                    refusal: OutOfOrder {
                        acknowledged,
                        record_id: envelope.record_id,
                        last_seq,
                    },
                    new,
                    duplicates,
                };
            }
            self.by_id.insert(envelope.record_id, self.list.len());
            self.list.push(StoredRecord {
                gate_id: gate_id.to_owned(),
                seq: envelope.seq,
                record_id: envelope.record_id,
                record: envelope.record.clone(),
                received_at: received_at.to_owned(),
            });
            self.last_seq.insert(gate_id.to_owned(), envelope.seq);
            new += 1;
            acknowledged.push(envelope.record_id);
        }
        BatchOutcome::Acknowledged {
            acknowledged,
            new,
            duplicates,
        }
    }
}

/// Why a registry entry or a revocation was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FeedError {
    #[error("a traveler must be a JSON object")]
    NotAnObject,
    #[error("a traveler needs a non-empty string `{0}`")]
    MissingField(&'static str),
    #[error("`passport_number` and `nationality` must not be empty")]
    EmptyKey,
    #[error("unknown status {0:?}: one of revoked, passport-reported-lost, changed-to-resident")]
    UnknownStatus(String),
}

/// Checks that `traveler` is a registry export entry (an object with the passport
/// number and nationality that identify it).
pub fn check_traveler(traveler: &Value) -> Result<(), FeedError> {
    let object = traveler.as_object().ok_or(FeedError::NotAnObject)?;
    for field in ["passport_number", "nationality"] {
        match object.get(field).and_then(Value::as_str) {
            Some(s) if !s.is_empty() => {}
            _ => return Err(FeedError::MissingField(field)),
        }
    }
    Ok(())
}

/// The registry's change log and the revocation feed, each numbered from 1.
#[derive(Debug, Default)]
pub struct Feeds {
    registry: Vec<RegistryChange>,
    revocations: Vec<Revocation>,
}

/// The page size asked for: absent is [`MAX_PAGE`], above it is cut to it.
pub fn page_size(limit: Option<usize>) -> Result<usize, String> {
    match limit {
        None => Ok(MAX_PAGE),
        Some(0) => Err(format!("`limit` must be 1 to {MAX_PAGE}")),
        Some(n) => Ok(n.min(MAX_PAGE)),
    }
}

/// Entries with seq `after+1 ..`, at most `limit`; the cursor to ask with next (the
/// last seq returned, or `after` when none) and whether more wait.
fn page<T: Clone>(log: &[T], after: u64, limit: usize) -> (Vec<T>, u64, bool) {
    let start = usize::try_from(after).unwrap_or(usize::MAX).min(log.len());
    let end = start.saturating_add(limit).min(log.len());
    let items = log[start..end].to_vec();
    let cursor = if end > start { end as u64 } else { after };
    (items, cursor, end < log.len())
}

impl Feeds {
    /// The initial registry: one upsert per entry, seq 1..n.
    pub fn new(registry: Vec<Value>) -> Result<Self, (usize, FeedError)> {
        let mut feeds = Feeds::default();
        for (index, traveler) in registry.into_iter().enumerate() {
            feeds.upsert(traveler).map_err(|e| (index, e))?;
        }
        Ok(feeds)
    }

    pub fn registry_len(&self) -> usize {
        self.registry.len()
    }

    pub fn revocations_len(&self) -> usize {
        self.revocations.len()
    }

    /// Appends an upsert; its seq.
    pub fn upsert(&mut self, traveler: Value) -> Result<u64, FeedError> {
        check_traveler(&traveler)?;
        let seq = self.registry.len() as u64 + 1;
        self.registry.push(RegistryChange::Upsert { seq, traveler });
        Ok(seq)
    }

    /// Appends an erase; its seq.
    pub fn erase(
        &mut self,
        passport_number: String,
        nationality: String,
    ) -> Result<u64, FeedError> {
        if passport_number.is_empty() || nationality.is_empty() {
            return Err(FeedError::EmptyKey);
        }
        let seq = self.registry.len() as u64 + 1;
        self.registry.push(RegistryChange::Erase {
            seq,
            passport_number,
            nationality,
        });
        Ok(seq)
    }

    /// Appends a revocation; its seq.
    pub fn revoke(
        &mut self,
        passport_number: String,
        nationality: String,
        status: String,
    ) -> Result<u64, FeedError> {
        if passport_number.is_empty() || nationality.is_empty() {
            return Err(FeedError::EmptyKey);
        }
        if !REVOCATION_STATUSES.contains(&status.as_str()) {
            return Err(FeedError::UnknownStatus(status));
        }
        let seq = self.revocations.len() as u64 + 1;
        self.revocations.push(Revocation {
            seq,
            passport_number,
            nationality,
            status,
        });
        Ok(seq)
    }

    pub fn registry_page(&self, after: u64, limit: usize) -> RegistryPage {
        let (changes, cursor, more) = page(&self.registry, after, limit);
        RegistryPage {
            changes,
            cursor,
            more,
        }
    }

    pub fn revocation_page(&self, after: u64, limit: usize) -> RevocationPage {
        let (revocations, cursor, more) = page(&self.revocations, after, limit);
        RevocationPage {
            revocations,
            cursor,
            more,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn envelope(n: u128, seq: u64) -> RecordEnvelope {
        RecordEnvelope {
            record_id: Uuid::from_u128(n),
            seq,
            record: json!({ "n": n as u64 }),
        }
    }

    fn acked(outcome: &BatchOutcome) -> Vec<Uuid> {
        match outcome {
            BatchOutcome::Acknowledged { acknowledged, .. } => acknowledged.clone(),
            other => panic!("not acknowledged: {other:?}"),
        }
    }

    #[test]
    fn records_are_stored_once_and_acknowledged_again() {
        let mut records = Records::default();
        let batch = [envelope(1, 1), envelope(2, 2)];
        let first = records.apply("G", &batch, "t");
        assert_eq!(acked(&first), vec![Uuid::from_u128(1), Uuid::from_u128(2)]);
        let again = records.apply("G", &batch, "t");
        assert_eq!(
            again,
            BatchOutcome::Acknowledged {
                acknowledged: vec![Uuid::from_u128(1), Uuid::from_u128(2)],
                new: 0,
                duplicates: 2
            }
        );
        assert_eq!(records.len(), 2);
        assert_eq!(records.last_seq("G"), Some(2));
    }

    #[test]
    fn a_new_record_not_above_the_last_seq_is_out_of_order() {
        let mut records = Records::default();
        acked(&records.apply("G", &[envelope(1, 5)], "t"));
        let outcome = records.apply("G", &[envelope(2, 6), envelope(3, 6), envelope(4, 7)], "t");
        let BatchOutcome::OutOfOrder { refusal, new, .. } = outcome else {
            panic!("{outcome:?}")
        };
        assert_eq!(refusal.acknowledged, vec![Uuid::from_u128(2)]);
        assert_eq!(refusal.record_id, Uuid::from_u128(3));
        assert_eq!(refusal.last_seq, 6);
        assert_eq!(new, 1);
        assert_eq!(records.len(), 2);
        // Another gate has its own order.
        acked(&records.apply("H", &[envelope(9, 1)], "t"));
    }

    #[test]
    fn a_known_id_with_another_body_refuses_the_whole_batch() {
        let mut records = Records::default();
        acked(&records.apply("G", &[envelope(1, 1)], "t"));
        let mut changed = envelope(1, 1);
        changed.record = json!({ "n": 99 });
        let outcome = records.apply("G", &[envelope(2, 2), changed], "t");
        assert_eq!(
            outcome,
            BatchOutcome::Conflict {
                record_id: Uuid::from_u128(1)
            }
        );
        assert_eq!(records.len(), 1);
        // The same record from another gate is a conflict too.
        let outcome = records.apply("H", &[envelope(1, 1)], "t");
        assert!(matches!(outcome, BatchOutcome::Conflict { .. }));
        // And an id repeated differently within one batch.
        let outcome = records.apply("G", &[envelope(7, 7), envelope(7, 8)], "t");
        assert!(matches!(outcome, BatchOutcome::Conflict { .. }));
        assert_eq!(records.len(), 1);
    }

    #[test]
    fn feeds_page_by_cursor() {
        let travelers: Vec<Value> = (0..5)
            .map(|i| json!({ "passport_number": format!("P{i}"), "nationality": "UTO" }))
            .collect();
        let mut feeds = Feeds::new(travelers).unwrap();
        let page = feeds.registry_page(0, 2);
        assert_eq!(
            page.changes
                .iter()
                .map(RegistryChange::seq)
                .collect::<Vec<_>>(),
            vec![1, 2]
        );
        assert_eq!((page.cursor, page.more), (2, true));
        let page = feeds.registry_page(4, 2);
        assert_eq!((page.changes.len(), page.cursor, page.more), (1, 5, false));
        let page = feeds.registry_page(5, 2);
        assert_eq!((page.changes.len(), page.cursor, page.more), (0, 5, false));
        let page = feeds.registry_page(50, 2);
        assert_eq!((page.changes.len(), page.cursor, page.more), (0, 50, false));
        assert_eq!(feeds.erase("P1".into(), "UTO".into()), Ok(6));
        assert_eq!(feeds.registry_page(5, 10).changes.len(), 1);
        assert_eq!(
            feeds.revoke("P2".into(), "UTO".into(), "lost".into()),
            Err(FeedError::UnknownStatus("lost".into()))
        );
        assert_eq!(
            feeds.revoke("P2".into(), "UTO".into(), "revoked".into()),
            Ok(1)
        );
        assert_eq!(feeds.revocation_page(0, 10).revocations.len(), 1);
        assert!(Feeds::new(vec![json!({ "nationality": "UTO" })]).is_err());
        assert_eq!(page_size(None), Ok(MAX_PAGE));
        assert_eq!(page_size(Some(5000)), Ok(MAX_PAGE));
        assert!(page_size(Some(0)).is_err());
    }
}
