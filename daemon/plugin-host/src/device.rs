//! [`Device`]: one opened driver instance, in-process or isolated, behind one async API.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc;
use torii_sdk::model::{DeviceClass, DeviceState, Event, Request, Response, Status};

use crate::probe::ProbeError;

/// Where a driver's code runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Isolation {
    /// Loaded into the daemon: fastest; a panic is contained, a crash is not.
    InProcess,
    /// Loaded into a supervised `torii-driver-host` process: a crash or hang costs
    /// only that device, which comes back when the host process is restarted.
    Process,
}

/// Everything needed to open one device.
#[derive(Clone, Debug)]
pub struct DeviceSpec {
    /// The device's id in the daemon's config (e.g. `"document-reader"`).
    pub id: String,
    /// Path of the driver's shared library.
    pub driver: PathBuf,
    /// The class the config expects; a driver of another class is refused.
    pub expected_class: Option<DeviceClass>,
    pub isolation: Isolation,
    /// The device's config table, as JSON, handed to the driver's `open`.
    pub config_json: String,
    /// Longest a call may take beyond the time it waits for a traveler.
    pub call_timeout: Duration,
    /// The `torii-driver-host` executable (for [`Isolation::Process`]).
    pub driver_host_exe: PathBuf,
}

/// What the driver says about itself (read after its ABI tag was accepted).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct DriverInfo {
    pub name: String,
    pub version: String,
    pub vendor: String,
    pub class: DeviceClass,
    pub capabilities: u64,
    pub abi_major: u16,
    pub abi_minor: u16,
}

/// The host's view of a device's health.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct DeviceHealth {
    pub state: DeviceState,
    /// Why the device is faulted (driver panicked, host process crashed, ...); `None`
    /// when healthy. Never carries personal data.
    pub fault: Option<String>,
    /// How often the isolated driver host was restarted.
    pub restarts: u32,
}

/// What devices report to the daemon.
#[derive(Clone, Debug)]
pub enum HostEvent {
    Device {
        device: String,
        event: Event,
    },
    Health {
        device: String,
        health: DeviceHealth,
    },
}

pub type EventSink = mpsc::UnboundedSender<HostEvent>;

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{0}")]
    Probe(#[from] ProbeError),
    #[error("driver {path}: {reason}")]
    Load { path: PathBuf, reason: String },
    #[error("driver {path} is a {found} driver, but the device is configured as a {expected}")]
    ClassMismatch {
        path: PathBuf,
        expected: DeviceClass,
        found: DeviceClass,
    },
    #[error("driver {path}: open failed: {status}")]
    Open { path: PathBuf, status: Status },
    #[error("driver host for {path}: {reason}")]
    DriverHost { path: PathBuf, reason: String },
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, serde::Deserialize)]
pub enum CallError {
    /// The driver answered with a status.
    #[error("{0}")]
    Status(Status),
    #[error("operation {op} does not exist on a {class}")]
    WrongClass { op: String, class: DeviceClass },
    #[error("operation not supported by this driver")]
    NotSupported,
    #[error("no answer within {after_ms} ms")]
    Timeout { after_ms: u64 },
    #[error("device faulted: {0}")]
    Faulted(String),
    #[error("device unavailable")]
    Unavailable,
}

impl CallError {
    /// The CUSS status closest to this error, for the flow engine and the APIs.
    pub fn status(&self) -> Status {
        match self {
            CallError::Status(status) => *status,
            CallError::WrongClass { .. } => Status::InvalidArgument,
            CallError::NotSupported => Status::NotSupported,
            CallError::Timeout { .. } => Status::Timeout,
            CallError::Faulted(_) => Status::InternalError,
            CallError::Unavailable => Status::Unavailable,
        }
    }
}

/// A device's health plus the channel its changes are reported on.
pub(crate) struct HealthCell {
    device_id: String,
    events: EventSink,
    health: std::sync::Mutex<DeviceHealth>,
}

impl HealthCell {
    pub(crate) fn new(device_id: &str, events: EventSink) -> Self {
        HealthCell {
            device_id: device_id.to_owned(),
            events,
            health: std::sync::Mutex::new(DeviceHealth {
                state: DeviceState::Unavailable,
                fault: None,
                restarts: 0,
            }),
        }
    }

    pub(crate) fn get(&self) -> DeviceHealth {
        self.health
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Applies `change` and reports the new health if it differs.
    pub(crate) fn update(&self, change: impl FnOnce(&mut DeviceHealth)) {
        let mut health = self.health.lock().unwrap_or_else(|p| p.into_inner());
        let before = health.clone();
        change(&mut health);
        if *health != before {
            let _ = self.events.send(HostEvent::Health {
                device: self.device_id.clone(),
                health: health.clone(),
            });
        }
    }

    /// Forwards a device event.
    pub(crate) fn emit(&self, event: Event) {
        let _ = self.events.send(HostEvent::Device {
            device: self.device_id.clone(),
            event,
        });
    }

    pub(crate) fn device_id(&self) -> &str {
        &self.device_id
    }
}

/// An opened device. Cheap to clone; every clone is the same device.
#[derive(Clone)]
pub struct Device {
    inner: Arc<DeviceInner>,
}

struct DeviceInner {
    id: String,
    info: DriverInfo,
    isolation: Isolation,
    backend: Backend,
}

enum Backend {
    InProcess(crate::inproc::InProcessDevice),
    Isolated(crate::isolated::IsolatedDevice),
}

impl Device {
    /// Checks the driver's ABI tag (before any of its code runs), loads it in-process
    /// or in a driver host, and opens the device. Events and health changes go to `events`.
    pub async fn open(spec: DeviceSpec, events: EventSink) -> Result<Device, OpenError> {
        let (info, backend) = match spec.isolation {
            Isolation::InProcess => {
                let device = crate::inproc::InProcessDevice::open(&spec, events).await?;
                (device.info().clone(), Backend::InProcess(device))
            }
            Isolation::Process => {
                let device = crate::isolated::IsolatedDevice::open(&spec, events).await?;
                (device.info().clone(), Backend::Isolated(device))
            }
        };
        Ok(Device {
            inner: Arc::new(DeviceInner {
                id: spec.id,
                info,
                isolation: spec.isolation,
                backend,
            }),
        })
    }

    pub fn id(&self) -> &str {
        &self.inner.id
    }

    pub fn info(&self) -> &DriverInfo {
        &self.inner.info
    }

    pub fn class(&self) -> DeviceClass {
        self.inner.info.class
    }

    pub fn isolation(&self) -> Isolation {
        self.inner.isolation
    }

    /// Runs one operation. Operations of another class are refused before reaching
    /// the driver.
    pub async fn call(&self, request: Request) -> Result<Response, CallError> {
        if !request.applies_to(self.class()) {
            return Err(CallError::WrongClass {
                op: request.name().into(),
                class: self.class(),
            });
        }
        match &self.inner.backend {
            Backend::InProcess(device) => device.call(request).await,
            Backend::Isolated(device) => device.call(request).await,
        }
    }

    /// Asks the running operation (if any) to end with CANCELLED.
    pub fn cancel(&self) {
        match &self.inner.backend {
            Backend::InProcess(device) => device.cancel(),
            Backend::Isolated(device) => device.cancel(),
        }
    }

    pub fn health(&self) -> DeviceHealth {
        match &self.inner.backend {
            Backend::InProcess(device) => device.health(),
            Backend::Isolated(device) => device.health(),
        }
    }

    /// Closes the device (and stops its driver host). The library stays mapped: the
    /// host never unloads driver code.
    pub async fn shutdown(&self) {
        match &self.inner.backend {
            Backend::InProcess(device) => device.shutdown().await,
            Backend::Isolated(device) => device.shutdown().await,
        }
    }
}
