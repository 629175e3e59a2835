//! The device registry: every configured device, opened or not, with what the daemon
//! knows about it (driver info, health, media presence, recent events).
//!
//! Devices are reached through [`DeviceHandle`] rather than the plugin host's
//! `Device` directly, so the core can be tested with fake devices and without drivers.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::SystemTime;

use torii_plugin_host::{CallError, Device, DeviceHealth, DriverInfo, HostEvent};
use torii_sdk::model::{DeviceState, Event, Request, Response};

use crate::config::DeviceConfig;

/// How many recent events each device keeps (kind and time only, never payloads).
pub const EVENT_HISTORY: usize = 20;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the daemon needs from an opened device.
pub trait DeviceHandle: Send + Sync {
    fn info(&self) -> &DriverInfo;
    fn health(&self) -> DeviceHealth;
    fn call(&self, request: Request) -> BoxFuture<'_, Result<Response, CallError>>;
    /// Asks the running call (if any) to end with CANCELLED.
    fn cancel(&self) {}
    fn shutdown(&self) -> BoxFuture<'_, ()>;
}

impl DeviceHandle for Device {
    fn info(&self) -> &DriverInfo {
        Device::info(self)
    }

    fn health(&self) -> DeviceHealth {
        Device::health(self)
    }

    fn call(&self, request: Request) -> BoxFuture<'_, Result<Response, CallError>> {
        Box::pin(Device::call(self, request))
    }

    fn cancel(&self) {
        Device::cancel(self)
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(Device::shutdown(self))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventRecord {
    pub kind: &'static str,
    pub at: SystemTime,
}

/// A copy of one device's entry, safe to hold while the registry changes.
#[derive(Clone, Debug)]
pub struct DeviceSnapshot {
    pub config: DeviceConfig,
    /// `None` until the driver was opened.
    pub info: Option<DriverInfo>,
    pub opened: bool,
    pub health: DeviceHealth,
    /// `None` when the device never reported media (or has none).
    pub media_present: Option<bool>,
    /// Oldest first.
    pub events: Vec<EventRecord>,
}

/// A health change worth logging and reporting to systemd.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthChange {
    pub device: String,
    pub from: DeviceState,
    pub to: DeviceState,
    pub fault: Option<String>,
}

struct Entry {
    config: DeviceConfig,
    device: Option<Arc<dyn DeviceHandle>>,
    info: Option<DriverInfo>,
    health: DeviceHealth,
    media_present: Option<bool>,
    events: VecDeque<EventRecord>,
}

impl Entry {
    fn snapshot(&self) -> DeviceSnapshot {
        DeviceSnapshot {
            config: self.config.clone(),
            info: self.info.clone(),
            opened: self.device.is_some(),
            health: self.health.clone(),
            media_present: self.media_present,
            events: self.events.iter().copied().collect(),
        }
    }

    fn set_health(&mut self, health: DeviceHealth) -> Option<HealthChange> {
        let change =
            (self.health.state != health.state || self.health.fault != health.fault).then(|| {
                HealthChange {
                    device: self.config.id.clone(),
                    from: self.health.state,
                    to: health.state,
                    fault: health.fault.clone(),
                }
            });
        self.health = health;
        change
    }
}

/// Why a device cannot take a call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    #[error("no device {0:?} is configured")]
    Unknown(String),
    #[error("device {id:?} is disabled in the configuration")]
    Disabled { id: String },
    #[error("device {id:?} is not open: {reason}")]
    NotOpen { id: String, reason: String },
}

#[derive(Default)]
pub struct Registry {
    // A std lock: never held across an await, and every critical section is a copy.
    entries: RwLock<BTreeMap<String, Entry>>,
}

fn unavailable(fault: &str) -> DeviceHealth {
    DeviceHealth {
        state: DeviceState::Unavailable,
        fault: Some(fault.to_owned()),
        restarts: 0,
    }
}

impl Registry {
    /// Registers every configured device as not yet opened.
    pub fn new(devices: &[DeviceConfig]) -> Self {
        let entries = devices
            .iter()
            .map(|config| {
                let fault = if config.enabled {
                    "not opened yet"
                } else {
                    "disabled in the configuration"
                };
                let entry = Entry {
                    config: config.clone(),
                    device: None,
                    info: None,
                    health: unavailable(fault),
                    media_present: None,
                    events: VecDeque::new(),
                };
                (config.id.clone(), entry)
            })
            .collect();
        Registry {
            entries: RwLock::new(entries),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Entry>> {
        // A panic elsewhere while holding the lock leaves plain data behind: keep serving.
        self.entries.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Entry>> {
        self.entries.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records an opened device; its health is read from the host.
    pub fn attach(&self, id: &str, device: Arc<dyn DeviceHandle>) -> Option<HealthChange> {
        let health = device.health();
        let mut entries = self.write();
        let entry = entries.get_mut(id)?;
        entry.info = Some(device.info().clone());
        entry.device = Some(device);
        entry.set_health(health)
    }

    /// Removes an opened device (its USB device was unplugged); the entry stays,
    /// UNAVAILABLE with `why` as its fault. Returns the device to shut down.
    pub fn detach(
        &self,
        id: &str,
        why: &str,
    ) -> (Option<Arc<dyn DeviceHandle>>, Option<HealthChange>) {
        let mut entries = self.write();
        let Some(entry) = entries.get_mut(id) else {
            return (None, None);
        };
        let device = entry.device.take();
        let change = entry.set_health(DeviceHealth {
            restarts: entry.health.restarts,
            ..unavailable(why)
        });
        (device, change)
    }

    /// Records that opening failed: the device stays UNAVAILABLE with the error as fault.
    pub fn open_failed(&self, id: &str, error: &str) -> Option<HealthChange> {
        let mut entries = self.write();
        let entry = entries.get_mut(id)?;
        entry.set_health(DeviceHealth {
            restarts: entry.health.restarts,
            ..unavailable(error)
        })
    }

    /// Applies an event from the plugin host.
    pub fn apply(&self, event: &HostEvent) -> Option<HealthChange> {
        let mut entries = self.write();
        match event {
            HostEvent::Health { device, health } => {
                let entry = entries.get_mut(device)?;
                // A detached device (unplugged, shut down) may still report its own
                // closing; the registry's reason for it being gone stands.
                entry.device.as_ref()?;
                entry.set_health(health.clone())
            }
            HostEvent::Device { device, event } => {
                let entry = entries.get_mut(device)?;
                if entry.events.len() == EVENT_HISTORY {
                    entry.events.pop_front();
                }
                entry.events.push_back(EventRecord {
                    kind: event.name(),
                    at: SystemTime::now(),
                });
                match event {
                    Event::MediaPresent => entry.media_present = Some(true),
                    Event::MediaRemoved => entry.media_present = Some(false),
                    // The driver's own view; the host's Health events (its
                    // supervision, faults, restarts) arrive separately and win.
                    Event::StateChanged { .. } if entry.device.is_none() => {}
                    Event::StateChanged { state } => {
                        let health = DeviceHealth {
                            state: *state,
                            ..entry.health.clone()
                        };
                        return entry.set_health(health);
                    }
                    _ => {}
                }
                None
            }
        }
    }

    pub fn snapshot(&self, id: &str) -> Option<DeviceSnapshot> {
        self.read().get(id).map(Entry::snapshot)
    }

    /// Every device, sorted by id.
    pub fn snapshots(&self) -> Vec<DeviceSnapshot> {
        self.read().values().map(Entry::snapshot).collect()
    }

    /// The opened device `id`, for a call.
    pub fn handle(&self, id: &str) -> Result<Arc<dyn DeviceHandle>, LookupError> {
        let entries = self.read();
        let entry = entries
            .get(id)
            .ok_or_else(|| LookupError::Unknown(id.to_owned()))?;
        if !entry.config.enabled {
            return Err(LookupError::Disabled { id: id.to_owned() });
        }
        entry.device.clone().ok_or_else(|| LookupError::NotOpen {
            id: id.to_owned(),
            reason: entry
                .health
                .fault
                .clone()
                .unwrap_or_else(|| "not opened".to_owned()),
        })
    }

    /// Removes every opened device (for shutdown); entries stay, UNAVAILABLE.
    pub fn detach_all(&self) -> Vec<(String, Arc<dyn DeviceHandle>)> {
        let mut entries = self.write();
        entries
            .iter_mut()
            .filter_map(|(id, entry)| {
                let device = entry.device.take()?;
                entry.set_health(unavailable("daemon shutting down"));
                Some((id.clone(), device))
            })
            .collect()
    }
}

/// The gate is in service when it has devices and none of the enabled ones is
/// UNAVAILABLE (BUSY is a device at work, not a missing one).
pub fn in_service(devices: &[DeviceSnapshot]) -> bool {
    let mut enabled = devices.iter().filter(|d| d.config.enabled).peekable();
    enabled.peek().is_some()
        && enabled.all(|d| d.opened && d.health.state != DeviceState::Unavailable)
}

/// Fake devices for tests of the core and the adapters (no drivers are opened).
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use crate::command::Core;
    use crate::config::{DeviceConfig, GateConfig, Lane};
    use std::time::{Duration, Instant};
    use torii_plugin_host::Isolation;
    use torii_sdk::model::DeviceClass;

    pub(crate) struct FakeDevice {
        pub config: DeviceConfig,
        pub info: DriverInfo,
        pub health: DeviceHealth,
        pub answer: Result<Response, CallError>,
        pub open_error: Option<String>,
    }

    impl FakeDevice {
        pub fn ready(id: &str, class: DeviceClass) -> Self {
            FakeDevice {
                config: DeviceConfig {
                    id: id.to_owned(),
                    class,
                    driver: format!(
                        "/usr/lib/torii/drivers/libtorii_sim_{}.so",
                        id.replace('-', "_")
                    )
                    .into(),
                    isolation: Isolation::InProcess,
                    call_timeout: Duration::from_secs(3),
                    enabled: true,
                    bind: crate::config::Bind::Always,
                    config_json: "{}".to_owned(),
                },
                info: DriverInfo {
                    name: format!("sim-{id}"),
                    version: "0.1.0".to_owned(),
                    vendor: "torii".to_owned(),
                    class,
                    capabilities: 0,
                    abi_major: 1,
                    abi_minor: 0,
                },
                health: DeviceHealth {
                    state: DeviceState::Ready,
                    fault: None,
                    restarts: 0,
                },
                answer: Ok(Response::Done),
                open_error: None,
            }
        }

        pub fn unopened(id: &str, class: DeviceClass, error: &str) -> Self {
            FakeDevice {
                open_error: Some(error.to_owned()),
                ..FakeDevice::ready(id, class)
            }
        }

        pub fn answering(self, answer: Result<Response, CallError>) -> Self {
            FakeDevice { answer, ..self }
        }

        pub fn disabled(mut self) -> Self {
            self.config.enabled = false;
            self
        }
    }

    impl DeviceHandle for FakeDevice {
        fn info(&self) -> &DriverInfo {
            &self.info
        }

        fn health(&self) -> DeviceHealth {
            self.health.clone()
        }

        fn call(&self, _request: Request) -> BoxFuture<'_, Result<Response, CallError>> {
            let answer = self.answer.clone();
            Box::pin(async move { answer })
        }

        fn shutdown(&self) -> BoxFuture<'_, ()> {
            Box::pin(async {})
        }
    }

    pub(crate) fn registry_with(devices: Vec<FakeDevice>) -> Arc<Registry> {
        let configs: Vec<DeviceConfig> = devices.iter().map(|d| d.config.clone()).collect();
        let registry = Arc::new(Registry::new(&configs));
        for device in devices {
            let id = device.config.id.clone();
            match (&device.open_error, device.config.enabled) {
                (_, false) => {}
                (Some(error), true) => {
                    registry.open_failed(&id, error);
                }
                (None, true) => {
                    registry.attach(&id, Arc::new(device));
                }
            }
        }
        registry
    }

    pub(crate) fn core_with(devices: Vec<FakeDevice>) -> Arc<Core> {
        let gate = GateConfig {
            id: "NRT-T1-E01".to_owned(),
            lane: Lane::Entry,
            port: "NRT".into(),
        };
        Arc::new(Core::new(gate, registry_with(devices), Instant::now()))
    }
}
