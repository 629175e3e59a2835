//! What goes into the outbox and what comes out of it.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use uuid::Uuid;

use crate::error::OutboxError;

/// Longest accepted outcome label, in bytes.
pub const MAX_OUTCOME_LEN: usize = 64;

/// Milliseconds since the Unix epoch (negative before it).
pub fn unix_ms(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_millis()).map_or(i64::MIN, |ms| -ms),
    }
}

/// `unix_ms(SystemTime::now())`.
pub fn now_unix_ms() -> i64 {
    unix_ms(SystemTime::now())
}

/// The plaintext columns stored beside a record's encrypted payload. They say what the
/// record is without saying who it is about, so that the outbox's depth and the outcome
/// mix can be inspected without the key. Both are bound to the ciphertext: altering
/// either makes the row fail to decrypt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordMeta {
    /// When the transaction finished, Unix milliseconds.
    pub created_at: i64,
    /// A short, non-personal label: `admitted`, `referred:FP_MISMATCH`, ... At most
    /// [`MAX_OUTCOME_LEN`] bytes of ASCII letters, digits and `_ : . -` (so that a name
    /// or a document number cannot end up here by mistake without also looking wrong).
    pub outcome: String,
}

impl RecordMeta {
    pub fn new(created_at: i64, outcome: impl Into<String>) -> Self {
        RecordMeta {
            created_at,
            outcome: outcome.into(),
        }
    }

    /// Created now.
    pub fn now(outcome: impl Into<String>) -> Self {
        RecordMeta::new(now_unix_ms(), outcome)
    }

    pub(crate) fn validate(&self) -> Result<(), OutboxError> {
        let o = self.outcome.as_bytes();
        if o.is_empty() || o.len() > MAX_OUTCOME_LEN {
            return Err(OutboxError::Outcome("must be 1 to 64 bytes long"));
        }
        if !o
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b':' | b'.' | b'-'))
        {
            return Err(OutboxError::Outcome(
                "may contain only ASCII letters, digits and _ : . -",
            ));
        }
        Ok(())
    }
}

/// One record as stored, its payload decrypted. `Debug` shows the payload's length only.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// The outbox sequence number: strictly increasing in commit order, never reused.
    pub seq: u64,
    pub record_id: Uuid,
    /// Unix milliseconds, as given in [`RecordMeta::created_at`].
    pub created_at: i64,
    pub outcome: String,
    /// When central's acknowledgement was recorded (Unix ms); `None` while pending.
    pub acked_at: Option<i64>,
    /// The record (the JSON given to `commit`), decrypted.
    pub payload: Vec<u8>,
}

/// A record waiting for central's acknowledgement (`acked_at` is `None`).
pub type Pending = StoredRecord;

impl fmt::Debug for StoredRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredRecord")
            .field("seq", &self.seq)
            .field("record_id", &self.record_id)
            .field("created_at", &self.created_at)
            .field("outcome", &self.outcome)
            .field("acked_at", &self.acked_at)
            .field("payload_len", &self.payload.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn labels() {
        for ok in ["admitted", "referred:FP_MISMATCH", "a.b-c_d:1"] {
            RecordMeta::new(0, ok).validate().unwrap();
        }
        for bad in [
            "",
            "TANAKA Hanako",
            "referred:名前",
            &"x".repeat(65),
            "a\nb",
        ] {
            let e = RecordMeta::new(0, bad).validate().unwrap_err();
            assert!(!e.to_string().contains(bad) || bad.is_empty(), "{e}");
        }
    }

    #[test]
    fn unix_ms_both_sides_of_the_epoch() {
        assert_eq!(unix_ms(UNIX_EPOCH + Duration::from_millis(1500)), 1500);
        assert_eq!(unix_ms(UNIX_EPOCH - Duration::from_millis(1500)), -1500);
    }

    #[test]
    fn debug_hides_the_payload() {
        let r = StoredRecord {
            seq: 1,
            record_id: Uuid::nil(),
            created_at: 0,
            outcome: "admitted".into(),
            acked_at: None,
            payload: b"TANAKA".to_vec(),
        };
        let shown = format!("{r:?}");
        assert!(
            !shown.contains("TANAKA") && shown.contains("payload_len: 6"),
            "{shown}"
        );
    }
}
