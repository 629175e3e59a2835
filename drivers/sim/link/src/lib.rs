//! The link between torii's sim driver plugins and the device simulators (`torii-sim`).
//!
//! - [`protocol`]: the messages and their framing (shared with the simulator).
//! - [`client`]: the blocking, reconnecting client every sim driver is built on.

pub mod client;
pub mod protocol;

pub use client::{SimConfig, SimLink};
