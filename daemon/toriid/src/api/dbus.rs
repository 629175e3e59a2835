//! The D-Bus adapter (the only module that knows zbus): the gate as the object
//! `/org/torii/Gate1` (interface `org.torii.Gate1`) and one object per device under
//! `/org/torii/Gate1/devices/` (interface `org.torii.Device1`), on the system bus by
//! default. The interfaces are checked in as `daemon/toriid/api/*.xml`; the bus policy
//! is `packaging/dbus/org.torii.Gate1.conf`.
//!
//! Like the HTTP adapter it holds no logic: method calls become [`Command`]s run by
//! [`Core::execute`] for a [`Caller`] whose role comes from the peer's Unix uid as the
//! bus reports it (`auth`); properties are the public gate status and device views;
//! signals and `PropertiesChanged` follow the core's [`crate::events::EventBus`]
//! (`signals`). Command errors become `org.torii.Gate1.Error.*` here ([`Error`]).
//! Nothing personal is ever put on the bus: steps, outcomes, reason codes, ids, states.
//!
//! The gate does not depend on the bus: when it cannot be reached (or the name cannot
//! be owned) the adapter logs a warning and retries with backoff; a lost bus
//! connection is re-established the same way.
//!
//! [`Command`]: crate::command::Command
//! [`Caller`]: crate::command::Caller

mod auth;
mod device;
mod error;
mod gate;
mod signals;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use zbus::Connection;
use zbus::fdo::{RequestNameFlags, RequestNameReply};

pub(crate) use auth::Authorizer;
pub use error::Error;

use crate::command::Core;
use crate::config::{DbusBus, DbusConfig};

/// The default well-known name.
pub const DEFAULT_NAME: &str = "org.torii.Gate1";
/// The gate object and its interface.
pub const GATE_PATH: &str = "/org/torii/Gate1";
pub const GATE_INTERFACE: &str = "org.torii.Gate1";
/// Device objects live under this path, one per configured device.
pub const DEVICES_PATH: &str = "/org/torii/Gate1/devices";
pub const DEVICE_INTERFACE: &str = "org.torii.Device1";

/// Retry delays while the bus cannot be reached: doubling up to the maximum.
const RETRY_FIRST_DELAY: Duration = Duration::from_secs(1);
const RETRY_MAX_DELAY: Duration = Duration::from_secs(30);
/// Longest a connection attempt (connect, authenticate, register, own the name) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest the adapter waits for the bus to answer its own calls (the caller's uid).
const METHOD_TIMEOUT: Duration = Duration::from_secs(5);

/// Checks a configured bus address (`dbus.bus`) without connecting.
pub fn check_address(address: &str) -> Result<(), String> {
    address
        .parse::<zbus::Address>()
        .map(drop)
        .map_err(|e| e.to_string())
}

/// Checks a configured well-known name (`dbus.name`).
pub fn check_name(name: &str) -> Result<(), String> {
    zbus::names::WellKnownName::try_from(name)
        .map(drop)
        .map_err(|e| e.to_string())
}

/// The object path of a device: `/org/torii/Gate1/devices/<id>`, `-` becoming `_`
/// (device ids are lower-case letters, digits, `-` and `_`; path elements may not
/// hold `-`).
pub fn device_path(id: &str) -> String {
    format!("{DEVICES_PATH}/{}", id.replace('-', "_"))
}

fn describe_bus(bus: &DbusBus) -> String {
    match bus {
        DbusBus::System => "the system bus".to_owned(),
        DbusBus::Session => "the session bus".to_owned(),
        DbusBus::Address(address) => address.clone(),
    }
}

/// Serves the gate on the bus until `stop` completes: connects (retrying with backoff
/// while the bus is unreachable or the name is taken), and reconnects when the bus
/// goes away. Never fails: the gate runs without D-Bus rather than not at all.
pub async fn serve(core: Arc<Core>, config: DbusConfig, stop: impl Future<Output = ()>) {
    let authorizer = Arc::new(Authorizer::new(&config.operators_group));
    serve_with(core, config, authorizer, stop).await;
}

pub(crate) async fn serve_with(
    core: Arc<Core>,
    config: DbusConfig,
    authorizer: Arc<Authorizer>,
    stop: impl Future<Output = ()>,
) {
    let bus = describe_bus(&config.bus);
    let mut stop = std::pin::pin!(stop);
    let mut delay = RETRY_FIRST_DELAY;
    let mut last_error: Option<String> = None;
    loop {
        // Subscribed before the objects exist, so nothing that happens while they are
        // being registered is missed.
        let events = core.events().subscribe();
        let attempt = tokio::time::timeout(
            CONNECT_TIMEOUT,
            connect(core.clone(), &config, authorizer.clone()),
        );
        let connected = tokio::select! {
            () = &mut stop => return,
            result = attempt => result.unwrap_or_else(|_| Err(zbus::Error::InputOutput(Arc::new(
                std::io::Error::new(std::io::ErrorKind::TimedOut, "the bus did not answer in time"),
            )))),
        };
        match connected {
            Ok((connection, announced)) => {
                tracing::info!(name = %config.name, bus = %bus, "D-Bus: serving {} on {bus}", config.name);
                delay = RETRY_FIRST_DELAY;
                last_error = None;
                // In its own task: a bug in the adapter costs the bus, not the daemon.
                let forwarding = tokio::spawn(signals::forward(
                    core.clone(),
                    connection.clone(),
                    events,
                    announced,
                ));
                let abort = forwarding.abort_handle();
                tokio::select! {
                    () = &mut stop => {
                        abort.abort();
                        let _ = connection.release_name(config.name.as_str()).await;
                        return;
                    }
                    () = connection.closed() => {}
                    ended = forwarding => {
                        if let Err(e) = ended && e.is_panic() {
                            tracing::error!("D-Bus: the signal forwarder panicked; reconnecting");
                        }
                    }
                }
                abort.abort();
                tracing::warn!(bus = %bus, "D-Bus: lost the connection to {bus}; reconnecting");
                drop(connection);
            }
            Err(error) => {
                let error = error.to_string();
                if last_error.as_ref() != Some(&error) {
                    tracing::warn!(
                        name = %config.name, bus = %bus,
                        "D-Bus: cannot serve {} on {bus}: {error}; retrying in the background (the gate does not depend on it)",
                        config.name
                    );
                    last_error = Some(error);
                } else {
                    tracing::debug!(bus = %bus, "D-Bus: still cannot connect: {error}");
                }
            }
        }
        tokio::select! {
            () = &mut stop => return,
            () = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(RETRY_MAX_DELAY);
    }
}

/// Connects, registers the gate and device objects, then owns the name (so a client
/// that sees the name finds the objects). Returns the property values as they were
/// before the name was owned: what any client may have read, so changes from them on
/// are announced.
async fn connect(
    core: Arc<Core>,
    config: &DbusConfig,
    authorizer: Arc<Authorizer>,
) -> zbus::Result<(Connection, signals::Announced)> {
    let builder = match &config.bus {
        DbusBus::System => zbus::connection::Builder::system()?,
        DbusBus::Session => zbus::connection::Builder::session()?,
        DbusBus::Address(address) => zbus::connection::Builder::address(address.as_str())?,
    };
    let connection = builder.method_timeout(METHOD_TIMEOUT).build().await?;
    let server = connection.object_server();
    server
        .at(GATE_PATH, gate::GateObject::new(core.clone(), authorizer))
        .await?;
    let mut paths = std::collections::HashMap::new();
    for snapshot in core.registry().snapshots() {
        let id = snapshot.config.id.clone();
        let path = device_path(&id);
        if let Some(other) = paths.insert(path.clone(), id.clone()) {
            tracing::warn!(device = %id, other = %other, "D-Bus: devices {other} and {id} map to the same object path {path}; {id} is not published");
            paths.insert(path, other);
            continue;
        }
        server
            .at(path.as_str(), device::DeviceObject::new(core.clone(), id))
            .await?;
    }
    let announced = signals::Announced::read(&core).await;
    let reply = connection
        .request_name_with_flags(config.name.as_str(), RequestNameFlags::DoNotQueue.into())
        .await?;
    match reply {
        RequestNameReply::PrimaryOwner | RequestNameReply::AlreadyOwner => {
            Ok((connection, announced))
        }
        RequestNameReply::Exists | RequestNameReply::InQueue => Err(zbus::Error::NameTaken),
    }
}
