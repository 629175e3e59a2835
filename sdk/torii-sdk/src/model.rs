//! The device model as the host sees it: one request/response/event vocabulary for
//! every device class. The in-process host, the isolated driver host (over a pipe),
//! the simulators (over a socket) and the daemon all speak these types, so a device
//! behaves the same whichever way it is reached.

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::abi;

/// The device classes of the ABI (`TORII_CLASS_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceClass {
    DocumentReader,
    CodeReader,
    CardPrinter,
    CardReader,
    FingerprintSensor,
    Camera,
    LaneController,
}

impl DeviceClass {
    pub const ALL: [DeviceClass; 7] = [
        DeviceClass::DocumentReader,
        DeviceClass::CodeReader,
        DeviceClass::CardPrinter,
        DeviceClass::CardReader,
        DeviceClass::FingerprintSensor,
        DeviceClass::Camera,
        DeviceClass::LaneController,
    ];

    pub const fn to_abi(self) -> u32 {
        match self {
            DeviceClass::DocumentReader => abi::TORII_CLASS_DOCUMENT_READER,
            DeviceClass::CodeReader => abi::TORII_CLASS_CODE_READER,
            DeviceClass::CardPrinter => abi::TORII_CLASS_CARD_PRINTER,
            DeviceClass::CardReader => abi::TORII_CLASS_CARD_READER,
            DeviceClass::FingerprintSensor => abi::TORII_CLASS_FINGERPRINT_SENSOR,
            DeviceClass::Camera => abi::TORII_CLASS_CAMERA,
            DeviceClass::LaneController => abi::TORII_CLASS_LANE_CONTROLLER,
        }
    }

    pub fn from_abi(raw: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.to_abi() == raw)
    }

    /// The kebab-case name used in config files, URLs and metric labels.
    pub const fn name(self) -> &'static str {
        match self {
            DeviceClass::DocumentReader => "document-reader",
            DeviceClass::CodeReader => "code-reader",
            DeviceClass::CardPrinter => "card-printer",
            DeviceClass::CardReader => "card-reader",
            DeviceClass::FingerprintSensor => "fingerprint-sensor",
            DeviceClass::Camera => "camera",
            DeviceClass::LaneController => "lane-controller",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }
}

impl fmt::Display for DeviceClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// CUSS component states.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeviceState {
    Ready,
    Busy,
    Unavailable,
}

impl DeviceState {
    pub const fn to_abi(self) -> i32 {
        match self {
            DeviceState::Ready => abi::TORII_STATE_READY,
            DeviceState::Busy => abi::TORII_STATE_BUSY,
            DeviceState::Unavailable => abi::TORII_STATE_UNAVAILABLE,
        }
    }

    /// Unknown values are read as UNAVAILABLE: a state we cannot interpret is not READY.
    pub fn from_abi(raw: i32) -> Self {
        match raw {
            abi::TORII_STATE_READY => DeviceState::Ready,
            abi::TORII_STATE_BUSY => DeviceState::Busy,
            _ => DeviceState::Unavailable,
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            DeviceState::Ready => "READY",
            DeviceState::Busy => "BUSY",
            DeviceState::Unavailable => "UNAVAILABLE",
        }
    }
}

impl fmt::Display for DeviceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A non-OK `torii_status` (CUSS message codes where one exists).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    #[error("TIMEOUT")]
    Timeout,
    #[error("CANCELLED")]
    Cancelled,
    #[error("HARDWARE_ERROR")]
    HardwareError,
    #[error("MEDIA_JAMMED")]
    MediaJammed,
    #[error("MEDIA_ABSENT")]
    MediaAbsent,
    #[error("MEDIA_PRESENT")]
    MediaPresent,
    #[error("MEDIA_DAMAGED")]
    MediaDamaged,
    #[error("BUFFER_TOO_SMALL")]
    BufferTooSmall,
    #[error("NOT_SUPPORTED")]
    NotSupported,
    #[error("INVALID_ARGUMENT")]
    InvalidArgument,
    #[error("BUSY")]
    Busy,
    #[error("UNAVAILABLE")]
    Unavailable,
    #[error("INTERNAL_ERROR")]
    InternalError,
    /// A code this host does not know (a newer driver); treated as a hardware error.
    #[error("UNKNOWN_STATUS({0})")]
    Unknown(i32),
}

impl Status {
    pub const fn to_abi(self) -> i32 {
        match self {
            Status::Timeout => abi::TORII_TIMEOUT,
            Status::Cancelled => abi::TORII_CANCELLED,
            Status::HardwareError => abi::TORII_HARDWARE_ERROR,
            Status::MediaJammed => abi::TORII_MEDIA_JAMMED,
            Status::MediaAbsent => abi::TORII_MEDIA_ABSENT,
            Status::MediaPresent => abi::TORII_MEDIA_PRESENT,
            Status::MediaDamaged => abi::TORII_MEDIA_DAMAGED,
            Status::BufferTooSmall => abi::TORII_BUFFER_TOO_SMALL,
            Status::NotSupported => abi::TORII_NOT_SUPPORTED,
            Status::InvalidArgument => abi::TORII_INVALID_ARGUMENT,
            Status::Busy => abi::TORII_BUSY,
            Status::Unavailable => abi::TORII_UNAVAILABLE,
            Status::InternalError => abi::TORII_INTERNAL_ERROR,
            Status::Unknown(raw) => raw,
        }
    }

    /// `Ok(())` for `TORII_OK`, the status otherwise.
    pub fn check(raw: i32) -> Result<(), Status> {
        match raw {
            abi::TORII_OK => Ok(()),
            abi::TORII_TIMEOUT => Err(Status::Timeout),
            abi::TORII_CANCELLED => Err(Status::Cancelled),
            abi::TORII_HARDWARE_ERROR => Err(Status::HardwareError),
            abi::TORII_MEDIA_JAMMED => Err(Status::MediaJammed),
            abi::TORII_MEDIA_ABSENT => Err(Status::MediaAbsent),
            abi::TORII_MEDIA_PRESENT => Err(Status::MediaPresent),
            abi::TORII_MEDIA_DAMAGED => Err(Status::MediaDamaged),
            abi::TORII_BUFFER_TOO_SMALL => Err(Status::BufferTooSmall),
            abi::TORII_NOT_SUPPORTED => Err(Status::NotSupported),
            abi::TORII_INVALID_ARGUMENT => Err(Status::InvalidArgument),
            abi::TORII_BUSY => Err(Status::Busy),
            abi::TORII_UNAVAILABLE => Err(Status::Unavailable),
            abi::TORII_INTERNAL_ERROR => Err(Status::InternalError),
            other => Err(Status::Unknown(other)),
        }
    }
}

/// ISO/IEC 19794 finger position codes 1..=10.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FingerPosition {
    RightThumb = 1,
    RightIndex = 2,
    RightMiddle = 3,
    RightRing = 4,
    RightLittle = 5,
    LeftThumb = 6,
    LeftIndex = 7,
    LeftMiddle = 8,
    LeftRing = 9,
    LeftLittle = 10,
}

impl FingerPosition {
    pub const ALL: [FingerPosition; 10] = [
        FingerPosition::RightThumb,
        FingerPosition::RightIndex,
        FingerPosition::RightMiddle,
        FingerPosition::RightRing,
        FingerPosition::RightLittle,
        FingerPosition::LeftThumb,
        FingerPosition::LeftIndex,
        FingerPosition::LeftMiddle,
        FingerPosition::LeftRing,
        FingerPosition::LeftLittle,
    ];

    pub const fn code(self) -> u32 {
        self as u32
    }

    pub fn from_code(code: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.code() == code)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Symbology {
    Qr,
    DataMatrix,
    Pdf417,
    Code128,
    Other(u32),
}

impl Symbology {
    pub const fn to_abi(self) -> u32 {
        match self {
            Symbology::Qr => abi::TORII_SYMBOLOGY_QR,
            Symbology::DataMatrix => abi::TORII_SYMBOLOGY_DATA_MATRIX,
            Symbology::Pdf417 => abi::TORII_SYMBOLOGY_PDF417,
            Symbology::Code128 => abi::TORII_SYMBOLOGY_CODE128,
            Symbology::Other(raw) => raw,
        }
    }

    pub fn from_abi(raw: u32) -> Self {
        match raw {
            abi::TORII_SYMBOLOGY_QR => Symbology::Qr,
            abi::TORII_SYMBOLOGY_DATA_MATRIX => Symbology::DataMatrix,
            abi::TORII_SYMBOLOGY_PDF417 => Symbology::Pdf417,
            abi::TORII_SYMBOLOGY_CODE128 => Symbology::Code128,
            other => Symbology::Other(other),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Door {
    Entry,
    Exit,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DoorCommand {
    Open,
    Close,
    Lock,
    Free,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DoorState {
    Closed,
    Open,
    Locked,
    Moving,
    Fault,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Zone {
    Entry,
    Lane,
    Exit,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Light {
    Off,
    Green,
    Red,
    Amber,
}

macro_rules! abi_enum_mapping {
    ($ty:ident { $($variant:ident = $raw:path),+ $(,)? }) => {
        impl $ty {
            pub const fn to_abi(self) -> u32 {
                match self { $($ty::$variant => $raw),+ }
            }
            pub fn from_abi(raw: u32) -> Option<Self> {
                match raw { $(x if x == $raw => Some($ty::$variant),)+ _ => None }
            }
        }
    };
}

abi_enum_mapping!(Door { Entry = abi::TORII_DOOR_ENTRY, Exit = abi::TORII_DOOR_EXIT });
abi_enum_mapping!(DoorCommand {
    Open = abi::TORII_DOOR_OPEN,
    Close = abi::TORII_DOOR_CLOSE,
    Lock = abi::TORII_DOOR_LOCK,
    Free = abi::TORII_DOOR_FREE,
});
abi_enum_mapping!(DoorState {
    Closed = abi::TORII_DOOR_STATE_CLOSED,
    Open = abi::TORII_DOOR_STATE_OPEN,
    Locked = abi::TORII_DOOR_STATE_LOCKED,
    Moving = abi::TORII_DOOR_STATE_MOVING,
    Fault = abi::TORII_DOOR_STATE_FAULT,
});
abi_enum_mapping!(Zone { Entry = abi::TORII_ZONE_ENTRY, Lane = abi::TORII_ZONE_LANE, Exit = abi::TORII_ZONE_EXIT });
abi_enum_mapping!(Light {
    Off = abi::TORII_LIGHT_OFF,
    Green = abi::TORII_LIGHT_GREEN,
    Red = abi::TORII_LIGHT_RED,
    Amber = abi::TORII_LIGHT_AMBER,
});

/// One captured finger.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FingerSample {
    pub position: FingerPosition,
    /// 0..=100, `None` when the sensor does not rate quality.
    pub quality: Option<u8>,
    /// ISO/IEC 19794-2:2005 finger minutiae record.
    #[serde(with = "serde_bytes")]
    pub template: Vec<u8>,
    /// ISO/IEC 19794-4:2005 finger image record (empty when not captured).
    #[serde(with = "serde_bytes")]
    pub image: Vec<u8>,
}

// Biometric bytes never reach a log line, even through `{:?}`.
impl fmt::Debug for FingerSample {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FingerSample")
            .field("position", &self.position)
            .field("quality", &self.quality)
            .field("template_len", &self.template.len())
            .field("image_len", &self.image.len())
            .finish()
    }
}

/// An operation on a device. Every variant belongs to exactly one class
/// ([`Request::class`]), except `GetState` which every device answers.
///
/// Externally tagged (serde's default) because the binary wire format (postcard) is not
/// self-describing: in JSON a request is `"read-mrz"` or
/// `{"set-door": {"door": "entry", "command": "open"}}`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Request {
    GetState,
    // document reader
    ReadMrz,
    ChipConnect,
    ChipTransmit {
        #[serde(with = "serde_bytes")]
        apdu: Vec<u8>,
    },
    ChipDisconnect,
    // code reader
    SetCodeReaderEnabled {
        enabled: bool,
    },
    // card printer and card reader
    ReadCardChip,
    // card printer
    PrintLine {
        line: String,
    },
    EjectCard,
    RetainCard,
    // fingerprint sensor
    CaptureFingers {
        fingers: Vec<FingerPosition>,
        timeout_ms: u32,
        want_template: bool,
        want_image: bool,
    },
    // camera
    CaptureFace {
        timeout_ms: u32,
    },
    // lane controller
    SetDoor {
        door: Door,
        command: DoorCommand,
    },
    GetDoor {
        door: Door,
    },
    GetPersonCount {
        zone: Zone,
    },
    GetFireAlarm,
    SetLight {
        light: Light,
    },
}

impl Request {
    /// The class that implements this operation; `None` for operations every class has.
    pub fn class(&self) -> Option<DeviceClass> {
        use DeviceClass as C;
        Some(match self {
            Request::GetState => return None,
            Request::ReadMrz
            | Request::ChipConnect
            | Request::ChipTransmit { .. }
            | Request::ChipDisconnect => C::DocumentReader,
            Request::SetCodeReaderEnabled { .. } => C::CodeReader,
            Request::ReadCardChip => return None,
            Request::PrintLine { .. } | Request::EjectCard | Request::RetainCard => C::CardPrinter,
            Request::CaptureFingers { .. } => C::FingerprintSensor,
            Request::CaptureFace { .. } => C::Camera,
            Request::SetDoor { .. }
            | Request::GetDoor { .. }
            | Request::GetPersonCount { .. }
            | Request::GetFireAlarm
            | Request::SetLight { .. } => C::LaneController,
        })
    }

    /// Whether `class` implements this operation.
    pub fn applies_to(&self, class: DeviceClass) -> bool {
        match self {
            Request::GetState => true,
            Request::ReadCardChip => {
                matches!(class, DeviceClass::CardPrinter | DeviceClass::CardReader)
            }
            other => other.class() == Some(class),
        }
    }

    /// The time the operation may legitimately wait for a traveler, on top of which a
    /// host adds its own call timeout.
    pub fn traveler_wait_ms(&self) -> u32 {
        match self {
            Request::CaptureFingers { timeout_ms, .. } | Request::CaptureFace { timeout_ms } => {
                *timeout_ms
            }
            _ => 0,
        }
    }

    /// A short name for logs and metrics (never carries the request's data).
    pub fn name(&self) -> &'static str {
        match self {
            Request::GetState => "get-state",
            Request::ReadMrz => "read-mrz",
            Request::ChipConnect => "chip-connect",
            Request::ChipTransmit { .. } => "chip-transmit",
            Request::ChipDisconnect => "chip-disconnect",
            Request::SetCodeReaderEnabled { .. } => "set-code-reader-enabled",
            Request::ReadCardChip => "read-card-chip",
            Request::PrintLine { .. } => "print-line",
            Request::EjectCard => "eject-card",
            Request::RetainCard => "retain-card",
            Request::CaptureFingers { .. } => "capture-fingers",
            Request::CaptureFace { .. } => "capture-face",
            Request::SetDoor { .. } => "set-door",
            Request::GetDoor { .. } => "get-door",
            Request::GetPersonCount { .. } => "get-person-count",
            Request::GetFireAlarm => "get-fire-alarm",
            Request::SetLight { .. } => "set-light",
        }
    }
}

// Requests can carry APDUs and printed lines (personal data): Debug shows the name only.
impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Request::{}", self.name())
    }
}

/// The successful answer to a [`Request`].
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Response {
    Done,
    State {
        state: DeviceState,
    },
    Mrz {
        lines: Vec<String>,
    },
    Atr {
        #[serde(with = "serde_bytes")]
        atr: Vec<u8>,
    },
    Apdu {
        #[serde(with = "serde_bytes")]
        response: Vec<u8>,
    },
    CardChip {
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
    },
    Fingers {
        samples: Vec<FingerSample>,
    },
    Face {
        #[serde(with = "serde_bytes")]
        jpeg: Vec<u8>,
    },
    DoorState {
        state: DoorState,
    },
    PersonCount {
        count: u32,
    },
    FireAlarm {
        active: bool,
    },
}

impl Response {
    pub fn name(&self) -> &'static str {
        match self {
            Response::Done => "done",
            Response::State { .. } => "state",
            Response::Mrz { .. } => "mrz",
            Response::Atr { .. } => "atr",
            Response::Apdu { .. } => "apdu",
            Response::CardChip { .. } => "card-chip",
            Response::Fingers { .. } => "fingers",
            Response::Face { .. } => "face",
            Response::DoorState { .. } => "door-state",
            Response::PersonCount { .. } => "person-count",
            Response::FireAlarm { .. } => "fire-alarm",
        }
    }
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Response::State { state } => write!(f, "Response::State({state})"),
            Response::DoorState { state } => write!(f, "Response::DoorState({state:?})"),
            Response::PersonCount { count } => write!(f, "Response::PersonCount({count})"),
            Response::FireAlarm { active } => write!(f, "Response::FireAlarm({active})"),
            other => write!(f, "Response::{}", other.name()),
        }
    }
}

/// Something a device reports on its own.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Event {
    StateChanged {
        state: DeviceState,
    },
    MediaPresent,
    MediaRemoved,
    CodeRead {
        symbology: Symbology,
        #[serde(with = "serde_bytes")]
        payload: Vec<u8>,
    },
    FingerPresent {
        present: bool,
    },
    SubjectPresent {
        present: bool,
    },
    DoorState {
        door: Door,
        state: DoorState,
    },
    PersonCount {
        zone: Zone,
        count: u32,
    },
    FireAlarm {
        active: bool,
    },
}

impl Event {
    pub fn name(&self) -> &'static str {
        match self {
            Event::StateChanged { .. } => "state-changed",
            Event::MediaPresent => "media-present",
            Event::MediaRemoved => "media-removed",
            Event::CodeRead { .. } => "code-read",
            Event::FingerPresent { .. } => "finger-present",
            Event::SubjectPresent { .. } => "subject-present",
            Event::DoorState { .. } => "door-state",
            Event::PersonCount { .. } => "person-count",
            Event::FireAlarm { .. } => "fire-alarm",
        }
    }
}

// A code payload identifies a traveler: Debug never prints it.
impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::CodeRead { symbology, payload } => {
                write!(f, "Event::CodeRead({symbology:?}, {} bytes)", payload.len())
            }
            Event::StateChanged { state } => write!(f, "Event::StateChanged({state})"),
            Event::FingerPresent { present } | Event::SubjectPresent { present } => {
                write!(f, "Event::{}({present})", self.name())
            }
            Event::DoorState { door, state } => write!(f, "Event::DoorState({door:?}, {state:?})"),
            Event::PersonCount { zone, count } => {
                write!(f, "Event::PersonCount({zone:?}, {count})")
            }
            Event::FireAlarm { active } => write!(f, "Event::FireAlarm({active})"),
            other => write!(f, "Event::{}", other.name()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_round_trip_through_the_abi() {
        for raw in 1..=13 {
            let status = Status::check(raw).unwrap_err();
            assert_eq!(status.to_abi(), raw);
        }
        assert_eq!(Status::check(0), Ok(()));
        assert_eq!(Status::check(99), Err(Status::Unknown(99)));
    }

    #[test]
    fn classes_round_trip_by_code_and_name() {
        for class in DeviceClass::ALL {
            assert_eq!(DeviceClass::from_abi(class.to_abi()), Some(class));
            assert_eq!(DeviceClass::from_name(class.name()), Some(class));
        }
        assert_eq!(DeviceClass::from_abi(0), None);
    }

    #[test]
    fn every_operation_belongs_to_a_class() {
        assert!(Request::ReadCardChip.applies_to(DeviceClass::CardReader));
        assert!(Request::ReadCardChip.applies_to(DeviceClass::CardPrinter));
        assert!(!Request::ReadMrz.applies_to(DeviceClass::Camera));
        assert!(Request::GetState.applies_to(DeviceClass::Camera));
    }

    #[test]
    fn debug_output_never_carries_payloads() {
        let event = Event::CodeRead {
            symbology: Symbology::Qr,
            payload: b"TTP:SECRET".to_vec(),
        };
        assert!(!format!("{event:?}").contains("SECRET"));
        let request = Request::PrintLine {
            line: "SECRET".into(),
        };
        assert!(!format!("{request:?}").contains("SECRET"));
    }
}
