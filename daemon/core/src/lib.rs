//! torii's core: the TTP gate's flow engine and everything it decides with.
//!
//! - [`flow`]: the entry and exit sequences (§8 of the user guide). Does no I/O: devices,
//!   clock, registry and matcher are behind traits.
//! - [`rules`]: the eligibility rules, one table row each.
//! - [`reason`]: reason codes (code, meaning, officer action, traveler guidance).
//! - [`card`]: the registered user card's signed chip data.
//! - [`registry`]: registrations and their SQLite store.
//! - [`edcard`], [`stay`], [`record`]: the ED card, the period of stay, the records.

pub mod card;
pub mod edcard;
pub mod flow;
pub mod reason;
pub mod record;
pub mod registry;
pub mod rules;
pub mod stay;

/// A boxed future, for the engine's async ports (object-safe traits).
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;
