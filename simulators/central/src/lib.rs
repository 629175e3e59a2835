//! Central immigration simulator.
