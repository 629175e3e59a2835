//! USB devices (rusb): find and open devices from a driver's id table.
//!
//! Always uses an explicit `rusb::Context`: the global context panics where
//! `/dev/bus/usb` is absent (containers, CI).

use crate::usb::UsbId;

#[derive(Debug, thiserror::Error)]
pub enum UsbError {
    #[error("USB unavailable on this machine: {0}")]
    Context(rusb::Error),
    #[error("USB enumeration: {0}")]
    List(rusb::Error),
    #[error("opening USB device {id} (bus {bus} address {address}): {source}")]
    Open {
        id: UsbId,
        bus: u8,
        address: u8,
        source: rusb::Error,
    },
}

pub fn context() -> Result<rusb::Context, UsbError> {
    rusb::Context::new().map_err(UsbError::Context)
}

/// Attached devices whose id is in `table`.
pub fn find(
    context: &rusb::Context,
    table: &[UsbId],
) -> Result<Vec<(rusb::Device<rusb::Context>, UsbId)>, UsbError> {
    use rusb::UsbContext;
    let devices = context.devices().map_err(UsbError::List)?;
    Ok(devices
        .iter()
        .filter_map(|device| {
            let descriptor = device.device_descriptor().ok()?;
            let id = UsbId::new(descriptor.vendor_id(), descriptor.product_id());
            table.contains(&id).then_some((device, id))
        })
        .collect())
}

/// Opens a device found by [`find`].
pub fn open(
    device: &rusb::Device<rusb::Context>,
    id: UsbId,
) -> Result<rusb::DeviceHandle<rusb::Context>, UsbError> {
    device.open().map_err(|source| UsbError::Open {
        id,
        bus: device.bus_number(),
        address: device.address(),
        source,
    })
}
