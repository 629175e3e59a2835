//! The gate's link to central immigration.
//!
//! - [`protocol`]: the JSON bodies exchanged with central (shared with the central
//!   simulator, so both sides are checked against one definition).

pub mod protocol;
