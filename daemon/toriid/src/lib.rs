//! toriid: the torii gate daemon.
//!
//! Every way into the daemon (HTTP today; D-Bus, the kiosk and the flow engine later)
//! parses its input into one [`command::Command`] and hands it to
//! [`command::Core::execute`]; adapters translate, the core decides.

pub mod api;
pub mod command;
pub mod config;
pub mod daemon;
pub mod events;
pub mod gate;
pub mod hotplug;
pub mod link;
pub mod link_stats;
pub mod logging;
pub mod metrics;
pub mod notify;
pub mod registry;
pub mod reload;
