//! Transaction records and the line printed on the card's back.

use serde::{Deserialize, Serialize};
use std::fmt;
use time::{Date, OffsetDateTime};
use torii_sdk::model::{DeviceClass, FingerPosition};
use uuid::Uuid;

use crate::edcard::EdCard;
use crate::reason::ReasonCode;
use crate::rules::Lane;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "outcome", content = "reason")]
pub enum Outcome {
    Admitted,
    Referred(ReasonCode),
}

/// How the traveler identified themselves at step 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Identification {
    Passport,
    QrCode,
}

/// The steps of the sequences (§8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    Idle,
    Document,
    Card,
    EdCard,
    Fingerprints,
    Face,
    Printing,
    TakeCard,
    Passage,
    Referred,
    Done,
}

/// One fingerprint comparison (BSI TR-03121: every comparison's score and threshold).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub finger: FingerPosition,
    pub attempt: u8,
    pub score: f64,
    pub threshold: f64,
    pub quality: Option<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepTime {
    pub step: Step,
    /// Milliseconds since the transaction started.
    pub at_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceUse {
    pub class: DeviceClass,
    pub driver: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Notice {
    /// The 15th record was printed: the card must be rewritten at a registration office.
    RewriteCard,
    /// The traveler asked the officer for a stamp in the passport (the gate never stamps).
    StampRequested,
}

/// The full record of one traveler's transaction. Personal data: `Debug` shows none.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct TransactionRecord {
    pub record_id: Uuid,
    pub gate_id: String,
    pub lane: Lane,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub finished_at: OffsetDateTime,
    pub outcome: Outcome,
    /// The rule or step that decided a referral (e.g. `card-validity-on-chip`).
    pub decided_by: Option<String>,
    pub identification: Option<Identification>,
    /// The passport chip's verdict (passports only).
    pub chip: Option<crate::flow::ChipCheck>,
    pub nationality: Option<String>,
    pub passport_number: Option<String>,
    pub card_number: Option<String>,
    pub steps: Vec<StepTime>,
    pub comparisons: Vec<Comparison>,
    pub devices: Vec<DeviceUse>,
    pub ed_card: Option<EdCard>,
    pub printed_line: Option<String>,
    pub period_of_stay_days: Option<u16>,
    pub notices: Vec<Notice>,
    /// The face photo taken at entry (JPEG, base64 in JSON).
    #[serde(with = "base64_bytes", default)]
    pub face_jpeg: Option<Vec<u8>>,
}

impl fmt::Debug for TransactionRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransactionRecord")
            .field("record_id", &self.record_id)
            .field("lane", &self.lane)
            .field("outcome", &self.outcome)
            .finish_non_exhaustive()
    }
}

mod base64_bytes {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(bytes) => s.serialize_some(&STANDARD.encode(bytes)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        let text: Option<String> = Option::deserialize(d)?;
        text.map(|t| STANDARD.decode(t).map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// Where finished records go (the durable outbox and forwarder come later).
/// Where finished records go. `commit` resolves `Ok` only once the record would survive a
/// power cut (the daemon's outbox fsyncs it): the engine opens the door only after that,
/// and refers the traveler (`RECORD_NOT_STORED`) when it fails.
pub trait RecordSink: Send + Sync {
    fn commit<'a>(
        &'a self,
        record: &'a TransactionRecord,
    ) -> crate::BoxFuture<'a, Result<(), String>>;
}

/// The line printed on the card's back: date, port, status of residence and period of
/// stay, gate id. e.g. `2026-11-21 NRT Temporary Visitor (90 days) NRT-T1-E01`.
pub fn landing_line(date: Date, port: &str, status_of_residence: &str, gate_id: &str) -> String {
    format!("{date} {port} {status_of_residence} {gate_id}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn the_printed_line_has_date_port_status_and_gate() {
        assert_eq!(
            landing_line(
                date!(2026 - 11 - 21),
                "NRT",
                "Temporary Visitor (90 days)",
                "NRT-T1-E01"
            ),
            "2026-11-21 NRT Temporary Visitor (90 days) NRT-T1-E01"
        );
    }

    #[test]
    fn outcomes_serialise_with_their_code() {
        let json = serde_json::to_string(&Outcome::Referred(ReasonCode::CardExpired)).unwrap();
        assert_eq!(json, r#"{"outcome":"referred","reason":"CARD_EXPIRED"}"#);
        assert_eq!(
            serde_json::from_str::<Outcome>(&json).unwrap(),
            Outcome::Referred(ReasonCode::CardExpired)
        );
    }
}
