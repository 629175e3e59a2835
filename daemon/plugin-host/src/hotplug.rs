//! USB hotplug: which driver serves which plugged device.
//!
//! Each driver's USB id table is read from its ELF file (no driver code runs to decide a
//! binding, as with pcsc-lite's Info.plist). An [`UsbEnumerator`] lists what is plugged
//! in — the real bus through rusb, or a JSON file standing in for it where no USB bus
//! exists (CI, containers) — and a [`HotplugTracker`] turns successive listings into
//! plug and unplug changes.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use torii_sdk::usb::UsbId;

use crate::probe::{ProbeError, probe};

/// One device on the bus.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct UsbDevice {
    pub bus: u8,
    pub address: u8,
    #[serde(flatten)]
    pub id: UsbId,
}

#[derive(Debug, thiserror::Error)]
pub enum HotplugError {
    #[error("USB enumeration unavailable: {0}")]
    Usb(String),
    #[error("fake USB enumeration {path}: {reason}")]
    Fake { path: PathBuf, reason: String },
    #[error("{0}")]
    Probe(#[from] ProbeError),
}

pub trait UsbEnumerator: Send {
    fn enumerate(&mut self) -> Result<Vec<UsbDevice>, HotplugError>;
}

/// The machine's USB bus, through libusb.
pub struct RusbEnumerator {
    context: rusb::Context,
}

impl RusbEnumerator {
    /// Fails (rather than panicking like rusb's global context) where there is no bus.
    pub fn new() -> Result<Self, HotplugError> {
        rusb::Context::new()
            .map(|context| RusbEnumerator { context })
            .map_err(|e| HotplugError::Usb(e.to_string()))
    }
}

impl UsbEnumerator for RusbEnumerator {
    fn enumerate(&mut self) -> Result<Vec<UsbDevice>, HotplugError> {
        use rusb::UsbContext;
        let devices = self
            .context
            .devices()
            .map_err(|e| HotplugError::Usb(e.to_string()))?;
        Ok(devices
            .iter()
            .filter_map(|device| {
                let descriptor = device.device_descriptor().ok()?;
                Some(UsbDevice {
                    bus: device.bus_number(),
                    address: device.address(),
                    id: UsbId::new(descriptor.vendor_id(), descriptor.product_id()),
                })
            })
            .collect())
    }
}

/// A JSON file listing devices (`[{"bus":1,"address":4,"vendor_id":3111,"product_id":15354}]`);
/// a missing file is an empty bus. Tests rewrite it to plug and unplug devices.
pub struct FileEnumerator {
    path: PathBuf,
}

impl FileEnumerator {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileEnumerator { path: path.into() }
    }
}

impl UsbEnumerator for FileEnumerator {
    fn enumerate(&mut self) -> Result<Vec<UsbDevice>, HotplugError> {
        let fake = |reason: String| HotplugError::Fake {
            path: self.path.clone(),
            reason,
        };
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| fake(e.to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(fake(e.to_string())),
        }
    }
}

/// Drivers and the USB ids each binds to, in priority order.
#[derive(Clone, Debug, Default)]
pub struct MatchTable {
    entries: Vec<(PathBuf, Vec<UsbId>)>,
}

impl MatchTable {
    /// Reads each driver's id table from its file. Drivers without a table are skipped.
    pub fn from_drivers<'a>(
        drivers: impl IntoIterator<Item = &'a Path>,
    ) -> Result<Self, HotplugError> {
        let mut entries = Vec::new();
        for driver in drivers {
            let ids = probe(driver)?.usb_ids;
            if !ids.is_empty() {
                entries.push((driver.to_path_buf(), ids));
            }
        }
        Ok(MatchTable { entries })
    }

    pub fn from_entries(entries: Vec<(PathBuf, Vec<UsbId>)>) -> Self {
        MatchTable { entries }
    }

    /// The first driver whose table lists `id`.
    pub fn driver_for(&self, id: UsbId) -> Option<&Path> {
        self.entries
            .iter()
            .find(|(_, ids)| ids.contains(&id))
            .map(|(path, _)| path.as_path())
    }
}

/// A plugged device and the driver chosen for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HotplugChange {
    Plugged { device: UsbDevice, driver: PathBuf },
    Unplugged { device: UsbDevice, driver: PathBuf },
}

/// Remembers which matched devices are present, and reports changes.
#[derive(Debug, Default)]
pub struct HotplugTracker {
    present: BTreeSet<(UsbDevice, PathBuf)>,
}

impl HotplugTracker {
    /// Compares a fresh listing with the last one. Devices no driver matches are ignored.
    pub fn update(&mut self, table: &MatchTable, listing: &[UsbDevice]) -> Vec<HotplugChange> {
        let now: BTreeSet<(UsbDevice, PathBuf)> = listing
            .iter()
            .filter_map(|device| {
                table
                    .driver_for(device.id)
                    .map(|driver| (*device, driver.to_path_buf()))
            })
            .collect();
        let mut changes: Vec<HotplugChange> = self
            .present
            .difference(&now)
            .map(|(device, driver)| HotplugChange::Unplugged {
                device: *device,
                driver: driver.clone(),
            })
            .collect();
        changes.extend(now.difference(&self.present).map(|(device, driver)| {
            HotplugChange::Plugged {
                device: *device,
                driver: driver.clone(),
            }
        }));
        self.present = now;
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(bus: u8, address: u8, vid: u16, pid: u16) -> UsbDevice {
        UsbDevice {
            bus,
            address,
            id: UsbId::new(vid, pid),
        }
    }

    #[test]
    fn first_matching_driver_wins_and_unknown_devices_are_ignored() {
        let table = MatchTable::from_entries(vec![
            ("/d/acme.so".into(), vec![UsbId::new(0x0c27, 0x3bfa)]),
            (
                "/d/generic.so".into(),
                vec![UsbId::new(0x0c27, 0x3bfa), UsbId::new(0x1234, 0x0001)],
            ),
        ]);
        let mut tracker = HotplugTracker::default();
        let changes = tracker.update(
            &table,
            &[dev(1, 4, 0x0c27, 0x3bfa), dev(1, 5, 0xdead, 0xbeef)],
        );
        assert_eq!(
            changes,
            vec![HotplugChange::Plugged {
                device: dev(1, 4, 0x0c27, 0x3bfa),
                driver: "/d/acme.so".into()
            }]
        );
        // Same listing: nothing changes.
        assert!(
            tracker
                .update(&table, &[dev(1, 4, 0x0c27, 0x3bfa)])
                .is_empty()
        );
        // Unplug one, plug another.
        let changes = tracker.update(&table, &[dev(2, 9, 0x1234, 0x0001)]);
        assert_eq!(
            changes,
            vec![
                HotplugChange::Unplugged {
                    device: dev(1, 4, 0x0c27, 0x3bfa),
                    driver: "/d/acme.so".into()
                },
                HotplugChange::Plugged {
                    device: dev(2, 9, 0x1234, 0x0001),
                    driver: "/d/generic.so".into()
                },
            ]
        );
    }

    #[test]
    fn the_file_enumerator_reads_a_fake_bus() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("usb.json");
        let mut bus = FileEnumerator::new(&path);
        assert_eq!(bus.enumerate().unwrap(), vec![]);
        std::fs::write(
            &path,
            r#"[{"bus":1,"address":4,"vendor_id":3111,"product_id":15354}]"#,
        )
        .unwrap();
        assert_eq!(bus.enumerate().unwrap(), vec![dev(1, 4, 3111, 15354)]);
        std::fs::write(&path, "not json").unwrap();
        let err = bus.enumerate().unwrap_err().to_string();
        assert!(err.contains("usb.json"), "{err}");
    }

    #[test]
    fn the_real_bus_is_optional() {
        // Where /dev/bus/usb is absent this is an error, never a panic.
        if let Ok(mut bus) = RusbEnumerator::new() {
            let _ = bus.enumerate();
        }
    }
}
