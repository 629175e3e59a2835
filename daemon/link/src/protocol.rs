//! Central immigration's wire protocol, version 1: JSON over HTTPS with mutual TLS
//! (TLS 1.3; the gate presents its client certificate, central's server certificate is
//! verified against the configured CA). `docs/central-protocol.md` is the prose version.
//!
//! | call | body | answer |
//! |---|---|---|
//! | `POST /v1/records` | [`RecordBatch`] | 200 [`RecordAck`]; 409 [`OutOfOrder`]; 400 [`ProblemBody`] |
//! | `GET /v1/registry/changes?after=C&limit=N` | – | 200 [`RegistryPage`] |
//! | `GET /v1/revocations?after=C&limit=N` | – | 200 [`RevocationPage`] |
//! | `GET /health` | – | 200 `{"status":"ok"}` |
//!
//! Records are idempotent by `record_id`: sending one again is acknowledged again and
//! stored once. `seq` is the gate's outbox sequence, strictly increasing per gate;
//! central refuses a *new* record whose `seq` is not above the last one it stored for
//! that gate (409 [`OutOfOrder`]), which is how order per gate is kept.
//!
//! Registry and revocation feeds are cursors: `after=0` starts from the beginning, each
//! page carries the cursor to ask with next, `more` says whether to ask at once.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Largest number of records in one batch central accepts.
pub const MAX_BATCH: usize = 500;
/// Largest page the feeds return.
pub const MAX_PAGE: usize = 1000;

/// `POST /v1/records`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordBatch {
    pub gate_id: String,
    /// In `seq` order.
    pub records: Vec<RecordEnvelope>,
}

/// One transaction record as sent to central.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordEnvelope {
    pub record_id: Uuid,
    /// The gate's outbox sequence number (strictly increasing per gate).
    pub seq: u64,
    /// The record (torii-core's `TransactionRecord` as JSON).
    pub record: serde_json::Value,
}

/// 200 answer to [`RecordBatch`]: every record of the batch central now holds (new or
/// already held), in the batch's order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordAck {
    pub acknowledged: Vec<Uuid>,
}

/// 409 answer: a new record's `seq` is not above the last one stored for the gate.
/// Records before the offending one were stored and are listed in `acknowledged`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutOfOrder {
    pub acknowledged: Vec<Uuid>,
    pub record_id: Uuid,
    pub last_seq: u64,
}

/// Any 4xx/5xx answer that is not [`OutOfOrder`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProblemBody {
    pub error: String,
}

/// `GET /v1/registry/changes`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryPage {
    pub changes: Vec<RegistryChange>,
    /// Ask with `after=cursor` next.
    pub cursor: u64,
    /// More changes wait after `cursor`.
    pub more: bool,
}

/// A change of the registry, in central's order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum RegistryChange {
    /// A registration, new or changed: `traveler` is one entry of the registry export
    /// (the format `torii_core::registry::import` reads).
    Upsert {
        seq: u64,
        traveler: serde_json::Value,
    },
    /// A deregistration: the gate erases everything it holds of this person.
    Erase {
        seq: u64,
        passport_number: String,
        nationality: String,
    },
}

impl RegistryChange {
    pub fn seq(&self) -> u64 {
        match self {
            RegistryChange::Upsert { seq, .. } | RegistryChange::Erase { seq, .. } => *seq,
        }
    }
}

/// `GET /v1/revocations`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevocationPage {
    pub revocations: Vec<Revocation>,
    pub cursor: u64,
    pub more: bool,
}

/// A registration that may no longer be used at the gate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Revocation {
    pub seq: u64,
    pub passport_number: String,
    pub nationality: String,
    /// The registration's new status: `revoked`, `passport-reported-lost` or
    /// `changed-to-resident` (torii-core's `RegistrationStatus`).
    pub status: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_is_tagged_by_its_op() {
        let change = RegistryChange::Erase {
            seq: 7,
            passport_number: "X".into(),
            nationality: "UTO".into(),
        };
        let json = serde_json::to_value(&change).unwrap();
        assert_eq!(json["op"], "erase");
        assert_eq!(
            serde_json::from_value::<RegistryChange>(json).unwrap(),
            change
        );
        assert!(serde_json::from_str::<RegistryChange>(r#"{"op":"drop","seq":1}"#).is_err());
    }
}
