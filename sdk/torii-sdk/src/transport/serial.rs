//! Serial ports (tokio-serial): open by path, or find USB-serial adapters by VID/PID.

use crate::usb::UsbId;
use std::time::Duration;
pub use tokio_serial::{SerialPortBuilderExt, SerialStream};

#[derive(Debug, thiserror::Error)]
pub enum SerialError {
    #[error("serial port {path}: {source}")]
    Open {
        path: String,
        source: tokio_serial::Error,
    },
    #[error("listing serial ports: {0}")]
    List(tokio_serial::Error),
}

/// Opens `path` at `baud` 8N1 (must be called inside a tokio runtime).
pub fn open(path: &str, baud: u32, timeout: Duration) -> Result<SerialStream, SerialError> {
    tokio_serial::new(path, baud)
        .timeout(timeout)
        .open_native_async()
        .map_err(|source| SerialError::Open {
            path: path.to_owned(),
            source,
        })
}

/// Serial ports whose USB adapter matches `table`, with the id that matched.
pub fn find_usb_ports(table: &[UsbId]) -> Result<Vec<(String, UsbId)>, SerialError> {
    let ports = tokio_serial::available_ports().map_err(SerialError::List)?;
    Ok(ports
        .into_iter()
        .filter_map(|port| match port.port_type {
            tokio_serial::SerialPortType::UsbPort(info) => {
                let id = UsbId::new(info.vid, info.pid);
                table.contains(&id).then_some((port.port_name, id))
            }
            _ => None,
        })
        .collect())
}
