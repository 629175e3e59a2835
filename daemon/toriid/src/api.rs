//! The daemon's API adapters. Each turns its input into a [`crate::command::Command`]
//! and establishes who asks ([`crate::command::Caller`]); the core decides.

pub mod auth;
pub mod dbus;
pub mod http;
pub mod json;
pub mod openapi;
pub mod routes;
pub mod socket;
pub mod sse;
pub mod web;
