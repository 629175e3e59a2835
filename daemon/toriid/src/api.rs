//! The daemon's API adapters. Each turns its input into a [`crate::command::Command`].

pub mod http;
pub mod json;
pub mod socket;
