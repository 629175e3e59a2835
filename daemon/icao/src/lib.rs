//! ICAO 9303 inspection: MRZ, BAC, secure messaging, LDS and passive authentication.
//!
//! Entry point: [`verdict::inspect`]. Nothing read from a chip is genuine until
//! Passive Authentication has succeeded; [`verdict::DocumentVerdict`] hands out
//! the data groups only when every check passed.

pub mod apdu;
pub mod auth;
pub mod bac;
pub mod crypto;
pub mod lds;
pub mod mrz;
pub mod pa;
pub mod pace;
pub mod reader;
pub mod sm;
pub mod tlv;
pub mod verdict;
pub use pa::{TrustStore, TrustStoreError};
pub use reader::{ChipTransport, TransportError};
pub use verdict::{
    AccessProtocol, Check, DocumentVerdict, InspectOptions, OpticalMrz, Outcome, ReasonCode,
    inspect, inspect_with,
};
