//! Transports for driver authors. Enable the `serial` or `usb` feature of torii-sdk.

#[cfg(feature = "serial")]
pub mod serial;
#[cfg(feature = "usb")]
pub mod usb;
