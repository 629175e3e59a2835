//! The safe Rust side of the contract: one trait per device class. A Rust driver is a
//! struct, `impl Driver` plus its class trait, and one [`export_driver!`](crate::export_driver)
//! line.

use std::ffi::{CStr, CString};
use std::time::Duration;

use crate::abi;
use crate::convert::with_abi_event;
use crate::model::{
    DeviceState, Door, DoorCommand, DoorState, Event, FingerPosition, FingerSample, Light, Status,
    Zone,
};

/// Severity of a driver log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
}

impl LogLevel {
    pub const fn to_abi(self) -> i32 {
        match self {
            LogLevel::Error => abi::TORII_LOG_ERROR,
            LogLevel::Warn => abi::TORII_LOG_WARN,
            LogLevel::Info => abi::TORII_LOG_INFO,
            LogLevel::Debug => abi::TORII_LOG_DEBUG,
        }
    }

    pub fn from_abi(raw: i32) -> Self {
        match raw {
            abi::TORII_LOG_ERROR => LogLevel::Error,
            abi::TORII_LOG_WARN => LogLevel::Warn,
            abi::TORII_LOG_INFO => LogLevel::Info,
            _ => LogLevel::Debug,
        }
    }
}

/// The host's services, handed to [`Driver::open`]. Usable from any thread until the
/// driver value is dropped (the host's `close`).
#[derive(Clone, Copy)]
pub struct Host {
    api: *const abi::torii_host_api,
}

// SAFETY: the contract (driver.h rule 4) makes emit_event and log callable from any
// thread for as long as the device is open; the pointer itself is never written.
unsafe impl Send for Host {}
// SAFETY: as above.
unsafe impl Sync for Host {}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Host")
    }
}

impl Host {
    /// # Safety
    /// `api` must point at a `torii_host_api` that stays valid while this `Host` is used.
    pub unsafe fn from_raw(api: *const abi::torii_host_api) -> Self {
        Host { api }
    }

    fn api(&self) -> Option<&abi::torii_host_api> {
        // SAFETY: from_raw's contract: valid while the device is open.
        unsafe { self.api.as_ref() }
    }

    /// Reports an event to the host.
    pub fn emit(&self, event: &Event) {
        let Some(api) = self.api() else { return };
        let Some(emit) = api.emit_event else { return };
        with_abi_event(event, |raw| {
            // SAFETY: the host promised a callable emit_event; `raw` lives for the call.
            unsafe { emit(api.host_ctx, raw) }
        });
    }

    /// Logs through the host. Never pass names, document or card numbers, or biometrics.
    pub fn log(&self, level: LogLevel, message: &str) {
        let Some(api) = self.api() else { return };
        let Some(log) = api.log else { return };
        let message = CString::new(message.replace('\0', " ")).unwrap_or_default();
        // SAFETY: the host promised a callable log; the string lives for the call.
        unsafe { log(api.host_ctx, level.to_abi(), message.as_ptr()) }
    }
}

/// What every driver has, whatever its class.
pub trait Driver: Sized + Send + Sync + 'static {
    /// Short driver name, e.g. `c"acme-mrz-300"`.
    const NAME: &'static CStr;
    /// The driver's own version.
    const VERSION: &'static CStr;
    const VENDOR: &'static CStr;
    /// `TORII_CAP_*` bits.
    const CAPABILITIES: u64 = 0;

    /// Opens the device. `config` is the device's table of the daemon config as JSON.
    fn open(host: Host, config: &str) -> Result<Self, Status>;

    /// Current state; called often, must not block.
    fn state(&self) -> DeviceState {
        DeviceState::Ready
    }

    /// Makes a running long operation return [`Status::Cancelled`] soon. Called from
    /// another thread than the operation's.
    fn cancel(&self) {}
}

pub trait DocumentReader: Driver {
    /// The MRZ lines as read optically.
    fn read_mrz(&self) -> Result<Vec<String>, Status>;
    /// Powers the contactless chip; returns its ATR/ATS.
    fn chip_connect(&self) -> Result<Vec<u8>, Status> {
        Err(Status::NotSupported)
    }
    /// One command APDU → one response APDU (with SW1 SW2).
    fn chip_transmit(&self, _command: &[u8]) -> Result<Vec<u8>, Status> {
        Err(Status::NotSupported)
    }
    fn chip_disconnect(&self) -> Result<(), Status> {
        Ok(())
    }
}

/// Codes are reported with [`Event::CodeRead`] through [`Host::emit`].
pub trait CodeReader: Driver {
    fn set_enabled(&self, enabled: bool) -> Result<(), Status>;
}

pub trait CardPrinter: Driver {
    fn read_chip(&self) -> Result<Vec<u8>, Status>;
    fn print_line(&self, line: &str) -> Result<(), Status>;
    fn eject(&self) -> Result<(), Status>;
    fn retain(&self) -> Result<(), Status> {
        Err(Status::NotSupported)
    }
}

pub trait CardReader: Driver {
    fn read_chip(&self) -> Result<Vec<u8>, Status>;
}

/// Which representations a capture should produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CaptureWants {
    pub template: bool,
    pub image: bool,
}

pub trait FingerprintSensor: Driver {
    /// Captures `fingers` in order, waiting up to `timeout` for them to be placed.
    fn capture(
        &self,
        fingers: &[FingerPosition],
        timeout: Duration,
        wants: CaptureWants,
    ) -> Result<Vec<FingerSample>, Status>;
}

pub trait Camera: Driver {
    /// A frontal face image as JPEG, waiting up to `timeout` for a subject.
    fn capture_face(&self, timeout: Duration) -> Result<Vec<u8>, Status>;
}

pub trait LaneController: Driver {
    fn set_door(&self, door: Door, command: DoorCommand) -> Result<(), Status>;
    fn door_state(&self, door: Door) -> Result<DoorState, Status>;
    fn person_count(&self, zone: Zone) -> Result<u32, Status>;
    fn fire_alarm(&self) -> Result<bool, Status>;
    fn set_light(&self, light: Light) -> Result<(), Status>;
}

/// Buffer sizes the host provides for outputs (drivers may rely on at least these).
pub mod limits {
    pub const MRZ_TEXT: usize = 1024;
    pub const ATR: usize = 256;
    pub const APDU_RESPONSE: usize = 65_536 + 2;
    pub const CARD_CHIP: usize = 64 * 1024;
    pub const FINGER_TEMPLATE: usize = 64 * 1024;
    pub const FINGER_IMAGE: usize = 4 * 1024 * 1024;
    pub const FACE_JPEG: usize = 4 * 1024 * 1024;
}
