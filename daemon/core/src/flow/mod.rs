//! The flow engine: one traveler at a time through the entry or exit sequence (§8).
//!
//! It does no I/O of its own: devices ([`GateDevices`]), the registry ([`Registry`]),
//! the fingerprint matcher ([`FingerprintVerifier`]), the MRZ checker ([`MrzChecker`]),
//! the wall clock ([`Clock`]) and the records sink are interfaces; timeouts use tokio's
//! clock, so tests run the whole sequence under a paused clock, deterministically.
//!
//! Inputs (device events, the traveler's ED card answers, mode changes) arrive on one
//! channel; the gate's live status is published on a watch channel.

mod engine;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use torii_sdk::model::{
    DeviceClass, Door, DoorCommand, Event, FingerSample, Request, Response, Status,
};
use uuid::Uuid;

use crate::edcard::{EdCard, FieldError};
use crate::reason::ReasonCode;
use crate::record::{Comparison, Outcome, RecordSink, Step};
use crate::registry::{EnrolledFinger, Registration};
use crate::rules::Lane;
use crate::stay::StayTable;

pub use engine::{Engine, parse_registration_qr};

/// A device call that did not succeed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceFailure {
    pub status: Status,
    /// For logs; never personal data.
    pub detail: String,
}

/// The lane's devices, as the engine sees them.
pub trait GateDevices: Send + Sync + 'static {
    fn call(
        &self,
        class: DeviceClass,
        request: Request,
    ) -> impl Future<Output = Result<Response, DeviceFailure>> + Send;
    /// Asks the device's running call (if any) to end with CANCELLED.
    fn cancel(&self, class: DeviceClass);
    /// The driver serving `class`, for the record.
    fn driver(&self, class: DeviceClass) -> String;
    /// The `TORII_CAP_*` bits the driver serving `class` declared; `None` when unknown
    /// (no driver loaded yet), which the engine treats as the usual case.
    fn capabilities(&self, _class: DeviceClass) -> Option<u64> {
        None
    }
}

/// What to ask the fingerprint sensor for: ISO 19794-2 templates, unless its driver
/// declared it delivers ISO 19794-4 images only (then the daemon extracts the minutiae).
/// Returns `(want_template, want_image)`.
pub fn finger_capture_formats(capabilities: Option<u64>) -> (bool, bool) {
    use torii_sdk::abi::{TORII_CAP_FINGER_IMAGE, TORII_CAP_FINGER_TEMPLATE};
    match capabilities {
        Some(caps)
            if caps & TORII_CAP_FINGER_TEMPLATE == 0 && caps & TORII_CAP_FINGER_IMAGE != 0 =>
        {
            (false, true)
        }
        _ => (true, false),
    }
}

pub trait Registry: Send + Sync {
    fn lookup(
        &self,
        passport_number: &str,
        nationality: &str,
    ) -> Result<Option<Registration>, String>;
    fn lookup_holder(&self, holder_key: &str) -> Result<Vec<Registration>, String>;
    /// One more landing record printed on the card; returns the new count.
    fn record_landing(&self, card_number: &str) -> Result<u8, String>;
}

impl Registry for crate::registry::RegistryStore {
    fn lookup(
        &self,
        passport_number: &str,
        nationality: &str,
    ) -> Result<Option<Registration>, String> {
        crate::registry::RegistryStore::lookup(self, passport_number, nationality)
            .map_err(|e| e.to_string())
    }
    fn lookup_holder(&self, holder_key: &str) -> Result<Vec<Registration>, String> {
        crate::registry::RegistryStore::lookup_holder(self, holder_key).map_err(|e| e.to_string())
    }
    fn record_landing(&self, card_number: &str) -> Result<u8, String> {
        crate::registry::RegistryStore::record_landing(self, card_number).map_err(|e| e.to_string())
    }
}

/// The outcome of one two-finger verification attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FingerDecision {
    Match,
    NoMatch,
    /// The capture was too poor to decide: try again.
    Retry,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Verification {
    pub decision: FingerDecision,
    /// Every comparison made, with its score and threshold (`attempt` is set by the engine).
    pub comparisons: Vec<Comparison>,
}

pub trait FingerprintVerifier: Send + Sync {
    fn verify(&self, enrolled: &[EnrolledFinger], captured: &[FingerSample]) -> Verification;
}

/// What the MRZ says about the traveler, once its check digits passed.
#[derive(Clone, PartialEq, Eq)]
pub struct MrzIdentity {
    pub document_number: String,
    pub nationality: String,
    pub birth_yymmdd: String,
    pub expiry: time::Date,
    /// `SURNAME<<GIVEN<NAMES`.
    pub name: String,
}

impl std::fmt::Debug for MrzIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MrzIdentity")
            .field("nationality", &self.nationality)
            .finish_non_exhaustive()
    }
}

pub trait MrzChecker: Send + Sync {
    /// Parses and checks the MRZ as read optically; the error names the failing field.
    fn check(&self, lines: &[String]) -> Result<MrzIdentity, String>;
}

/// The passport chip's verdict (ICAO 9303 inspection: access, passive authentication,
/// DG1 against the optically read MRZ, issuer against the signer's country).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "chip")]
pub enum ChipCheck {
    /// Every check passed; `access` is the protocol used (PACE or BAC).
    Genuine { access: String },
    /// The passport has no chip: the MRZ alone identifies the traveler.
    NoChip,
    /// The gate is not configured to verify chips (no trust store).
    NotChecked { why: String },
    /// A check failed: forged, altered or cloned. `code` is the inspection's reason
    /// code (e.g. `DOC_DG_HASH_MISMATCH`).
    Refused { code: String },
}

pub trait DocumentInspector: Send + Sync {
    /// Inspects the chip of the passport on the reader, given its optically read MRZ.
    fn inspect<'a>(
        &'a self,
        mrz_lines: &'a [String],
    ) -> std::pin::Pin<Box<dyn Future<Output = ChipCheck> + Send + 'a>>;
}

pub trait Clock: Send + Sync {
    fn now(&self) -> OffsetDateTime;
}

/// The system clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// The gate's operating mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    InService,
    OutOfService,
    Maintenance,
    /// Set by the fire alarm: every door released until the alarm clears.
    FireAlarm,
}

/// What reaches the engine.
#[derive(Clone, Debug)]
pub enum GateInput {
    Device {
        class: DeviceClass,
        event: Event,
    },
    /// The traveler confirmed the ED card (possibly edited) on the screen.
    EdCardConfirmed(EdCard),
    /// An officer changed the mode (fire alarm mode is set by the alarm only).
    SetMode(Mode),
    /// A condition outside the lane that forbids taking travelers (fail closed) began or
    /// ended. The gate is in service only in mode `in-service` with no interlock active.
    Interlock {
        interlock: Interlock,
        active: bool,
    },
    /// An officer commands a door. During a transaction this ends it
    /// (`OFFICER_INTERVENTION`) before the door moves.
    OfficerDoor {
        door: Door,
        command: DoorCommand,
    },
    /// An officer acknowledged the lane's alarm.
    AcknowledgeAlarm,
    /// The traveler in the lane asked the officer for a passport stamp: noted on the
    /// transaction's record.
    StampRequested,
    /// New timeouts, attempts and period-of-stay table (a configuration reload). Applied
    /// at once when idle, else when the transaction under way ends: a traveler is never
    /// judged by two configurations. The gate id and the lane are not reloadable and
    /// keep their values.
    Reconfigure(Box<FlowConfig>),
}

/// Conditions that take a TTP lane out of service until they clear.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Interlock {
    /// The registry was not synchronised with central within the configured limit.
    RegistryStale,
    /// Records cannot be stored durably (outbox full or its storage failing).
    RecordStoreUnavailable,
}

/// An alarm the lane raised, waiting for an officer's acknowledgement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alarm {
    pub kind: AlarmKind,
    /// The transaction during which it was raised.
    pub record_id: Option<Uuid>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AlarmKind {
    /// More than one person in the lane.
    Tailgating,
    /// A transaction ended because of a device fault.
    DeviceFault,
}

/// Timeouts and limits of the sequences.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlowConfig {
    pub gate_id: String,
    /// The port printed on the card (e.g. "NRT").
    pub port: String,
    pub lane: Lane,
    pub stay: StayTable,
    /// Time for the traveler to insert or lay down the card.
    pub card_timeout_ms: u64,
    /// Time to confirm or complete the ED card.
    pub ed_card_timeout_ms: u64,
    /// Per capture attempt.
    pub finger_timeout_ms: u64,
    pub finger_attempts: u8,
    pub face_timeout_ms: u64,
    /// Time to take the card back.
    pub take_card_timeout_ms: u64,
    /// Time to walk through the open door before it closes again.
    pub passage_timeout_ms: u64,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            gate_id: "GATE".into(),
            port: "NRT".into(),
            lane: Lane::Entry,
            stay: StayTable::default(),
            card_timeout_ms: 30_000,
            ed_card_timeout_ms: 180_000,
            finger_timeout_ms: 15_000,
            finger_attempts: 3,
            face_timeout_ms: 15_000,
            take_card_timeout_ms: 30_000,
            passage_timeout_ms: 20_000,
        }
    }
}

impl FlowConfig {
    pub(crate) fn ms(value: u64) -> Duration {
        Duration::from_millis(value)
    }
}

/// The gate's live state, for the APIs and the screens. No personal data except the
/// ED card under edit, which only the kiosk shows to its owner.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GateStatus {
    pub mode: Mode,
    pub lane: Lane,
    pub step: Step,
    pub transaction: Option<Uuid>,
    /// The ED card to confirm (step `ed-card`).
    pub ed_card: Option<EdCard>,
    /// The traveler's nationality (ISO 3166 alpha-3) once the document was read, so
    /// the traveler's screen can default its language. Personal: the kiosk's only.
    pub nationality: Option<String>,
    pub ed_card_errors: Vec<FieldError>,
    pub last: Option<LastTransaction>,
    pub transactions: u64,
    /// Active interlocks (the lane takes no travelers while any is active).
    pub interlocks: Vec<Interlock>,
    /// The alarm waiting for acknowledgement, if any.
    pub alarm: Option<Alarm>,
}

impl GateStatus {
    /// Taking travelers: in service and no interlock active.
    pub fn accepting(&self) -> bool {
        self.mode == Mode::InService && self.interlocks.is_empty()
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LastTransaction {
    pub record_id: Uuid,
    pub outcome: Outcome,
    /// Guidance for the traveler's screen (never the grounds of a referral).
    pub guidance: String,
    /// Where the traveler goes, for screens that say it in their own words; `None`
    /// when admitted.
    #[serde(default)]
    pub guidance_kind: Option<crate::reason::Guidance>,
    /// Notices for the traveler (e.g. the card must be rewritten).
    #[serde(default)]
    pub notices: Vec<crate::record::Notice>,
}

/// The engine's collaborators.
pub struct Ports<D: GateDevices> {
    pub devices: D,
    pub registry: Arc<dyn Registry>,
    pub verifier: Arc<dyn FingerprintVerifier>,
    pub mrz: Arc<dyn MrzChecker>,
    pub inspector: Arc<dyn DocumentInspector>,
    pub clock: Arc<dyn Clock>,
    pub sink: Arc<dyn RecordSink>,
    /// The card issuer's key, to verify card chip data.
    pub card_issuer: p256::ecdsa::VerifyingKey,
}

/// Why a transaction stopped early: the referral reason and what decided it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Referral {
    pub reason: ReasonCode,
    pub by: String,
}

impl Referral {
    pub fn new(reason: ReasonCode, by: impl Into<String>) -> Self {
        Referral {
            reason,
            by: by.into(),
        }
    }
}
