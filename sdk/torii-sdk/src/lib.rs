//! torii driver SDK.
//!
//! - [`abi`]: the C ABI of `sdk/include/torii/driver.h` (the source of truth) in Rust.
//! - [`driver`]: a safe trait per device class, and [`export_driver!`] to turn a type
//!   implementing them into a plugin.
//! - [`model`]: the host-side vocabulary (requests, responses, events, states, codes).
//! - [`usb`], [`transport`]: USB id tables and serial/USB helpers for driver authors.
//!
//! ```ignore
//! struct MyReader { /* ... */ }
//! impl torii_sdk::driver::Driver for MyReader { /* NAME, VERSION, VENDOR, open */ }
//! impl torii_sdk::driver::DocumentReader for MyReader { /* read_mrz, chip_* */ }
//! torii_sdk::export_driver!(DocumentReader => MyReader);
//! ```

pub mod abi;
pub mod convert;
pub mod driver;
#[doc(hidden)]
pub mod export;
pub mod matcher;
pub mod model;
pub mod transport;
pub mod usb;
pub mod wire;

/// The header this SDK mirrors, for tools that compile C drivers.
pub const C_HEADER: &str = include_str!("../../include/torii/driver.h");
