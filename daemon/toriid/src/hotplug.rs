//! USB hotplug: devices configured with `bind = "usb"` are opened while a USB device
//! listed in their driver's id table (read from the driver's ELF file, so no driver code
//! runs to decide) is plugged in, and closed — UNAVAILABLE, "unplugged" — when it goes.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::mpsc;
use torii_plugin_host::HostEvent;
use torii_plugin_host::hotplug::{
    FileEnumerator, HotplugChange, HotplugTracker, MatchTable, RusbEnumerator, UsbEnumerator,
};

use crate::config::{Config, DeviceConfig};
use crate::registry::Registry;

/// Polls the bus (real, or the configured fake) and binds or unbinds devices.
pub async fn watch(
    config: Config,
    devices: Vec<DeviceConfig>,
    registry: Arc<Registry>,
    events: mpsc::UnboundedSender<HostEvent>,
) {
    let table = match MatchTable::from_drivers(devices.iter().map(|d| d.driver.as_path())) {
        Ok(table) => table,
        Err(error) => {
            tracing::error!(%error, "USB id tables could not be read; USB devices will not be bound");
            return;
        }
    };
    let mut bus: Box<dyn UsbEnumerator> = match &config.usb.fake_bus {
        Some(path) => Box::new(FileEnumerator::new(path)),
        None => match RusbEnumerator::new() {
            Ok(bus) => Box::new(bus),
            Err(error) => {
                tracing::error!(%error, "no USB bus: USB-bound devices stay unavailable");
                return;
            }
        },
    };
    // Which configured device each driver file serves (first one wins).
    let mut by_driver: HashMap<PathBuf, DeviceConfig> = HashMap::new();
    for device in devices {
        by_driver.entry(device.driver.clone()).or_insert(device);
    }
    let mut tracker = HotplugTracker::default();
    let mut ticker = tokio::time::interval(config.usb.poll);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let listing = match bus.enumerate() {
            Ok(listing) => listing,
            Err(error) => {
                tracing::warn!(%error, "USB enumeration failed");
                continue;
            }
        };
        for change in tracker.update(&table, &listing) {
            match change {
                HotplugChange::Plugged {
                    device: usb,
                    driver,
                } => {
                    let Some(device) = by_driver.get(&driver) else {
                        continue;
                    };
                    tracing::info!(device = %device.id, usb = %usb.id, bus = usb.bus, address = usb.address, "USB device plugged in");
                    let mut spec = crate::daemon::spec(device, &config);
                    spec.config_json = with_usb(&device.config_json, &usb);
                    match crate::daemon::open_once(spec, events.clone()).await {
                        Ok(opened) => {
                            registry.attach(&device.id, Arc::new(opened));
                        }
                        Err(error) => {
                            tracing::warn!(device = %device.id, %error, "USB device could not be opened");
                            registry.open_failed(&device.id, &error);
                        }
                    }
                }
                HotplugChange::Unplugged {
                    device: usb,
                    driver,
                } => {
                    let Some(device) = by_driver.get(&driver) else {
                        continue;
                    };
                    tracing::warn!(device = %device.id, usb = %usb.id, "USB device unplugged");
                    let (opened, _) = registry.detach(&device.id, "USB device unplugged");
                    if let Some(opened) = opened {
                        opened.shutdown().await;
                    }
                }
            }
        }
    }
}

/// The device's config table plus where its USB device is: `{"usb": {"bus", "address",
/// "vendor_id", "product_id"}}`, so the driver opens that very device.
fn with_usb(config_json: &str, usb: &torii_plugin_host::hotplug::UsbDevice) -> String {
    let mut value: serde_json::Value =
        serde_json::from_str(config_json).unwrap_or_else(|_| serde_json::json!({}));
    if let Some(table) = value.as_object_mut() {
        table.insert(
            "usb".into(),
            serde_json::json!({
                "bus": usb.bus,
                "address": usb.address,
                "vendor_id": usb.id.vendor_id,
                "product_id": usb.id.product_id,
            }),
        );
    }
    value.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use torii_plugin_host::hotplug::UsbDevice;
    use torii_sdk::usb::UsbId;

    #[test]
    fn the_driver_learns_which_usb_device_it_serves() {
        let usb = UsbDevice {
            bus: 3,
            address: 7,
            id: UsbId::new(0x1d6b, 0x7002),
        };
        let json: serde_json::Value =
            serde_json::from_str(&with_usb(r#"{"baud":9600}"#, &usb)).unwrap();
        assert_eq!(json["baud"], 9600);
        assert_eq!(json["usb"]["address"], 7);
        assert_eq!(json["usb"]["product_id"], 0x7002);
    }
}
