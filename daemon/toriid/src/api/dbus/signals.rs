//! The core's events on the bus: each [`GateEvent`] becomes its signal, then the
//! properties it changed are announced with `PropertiesChanged` (one signal per object,
//! only the properties whose value differs from what was last announced).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::broadcast::{self, error::RecvError};
use zbus::Connection;
use zbus::names::InterfaceName;
use zbus::object_server::SignalEmitter;
use zbus::zvariant::Value;

use super::device::DeviceProps;
use super::gate::{GateObject, GateProps, name_of};
use super::{DEVICE_INTERFACE, GATE_INTERFACE, GATE_PATH, device_path};
use crate::command::Core;
use crate::events::{GateEvent, Numbered};

/// The property values last announced (or first shown).
pub(super) struct Announced {
    gate: GateProps,
    devices: HashMap<String, DeviceProps>,
}

impl Announced {
    pub(super) async fn read(core: &Core) -> Announced {
        let mut devices = HashMap::new();
        for snapshot in core.registry().snapshots() {
            let id = snapshot.config.id.clone();
            let props = DeviceProps::read(core, &id).await;
            devices.insert(id, props);
        }
        Announced {
            gate: GateProps::read(core).await,
            devices,
        }
    }
}

/// Forwards events until the connection fails (or the event bus closes).
pub(super) async fn forward(
    core: Arc<Core>,
    connection: Connection,
    mut events: broadcast::Receiver<Arc<Numbered>>,
    announced: Announced,
) {
    let Ok(gate) = SignalEmitter::new(&connection, GATE_PATH) else {
        return;
    };
    let Announced {
        gate: mut gate_props,
        devices: mut device_props,
    } = announced;
    let device_ids: Vec<String> = device_props.keys().cloned().collect();
    loop {
        // Which devices' properties to look at after this event.
        let devices: Vec<String> = match events.recv().await {
            Ok(numbered) => {
                if let Err(error) = emit(&gate, &numbered.event).await {
                    tracing::debug!(%error, "D-Bus: cannot emit a signal");
                    return;
                }
                match &numbered.event {
                    GateEvent::DeviceStateChanged { device, .. } => vec![device.clone()],
                    _ => Vec::new(),
                }
            }
            Err(RecvError::Lagged(missed)) => {
                // The signals are gone; the properties are caught up below.
                tracing::warn!(
                    missed,
                    "D-Bus: {missed} gate events were not signalled (the bus is slow)"
                );
                device_ids.clone()
            }
            Err(RecvError::Closed) => return,
        };

        let now = GateProps::read(&core).await;
        if let Err(error) = announce(&gate, GATE_INTERFACE, now.changed_since(&gate_props)).await {
            tracing::debug!(%error, "D-Bus: cannot announce property changes");
            return;
        }
        gate_props = now;
        for id in devices {
            let Some(old) = device_props.get_mut(&id) else {
                continue;
            };
            let now = DeviceProps::read(&core, &id).await;
            let path = device_path(&id);
            let Ok(emitter) = SignalEmitter::new(&connection, path.as_str()) else {
                continue;
            };
            if let Err(error) = announce(&emitter, DEVICE_INTERFACE, now.changed_since(old)).await {
                tracing::debug!(%error, "D-Bus: cannot announce property changes");
                return;
            }
            *old = now;
        }
    }
}

/// The signal of an event, if it has one (mode and interlock changes are property
/// changes only).
async fn emit(gate: &SignalEmitter<'_>, event: &GateEvent) -> zbus::Result<()> {
    let id_or_empty = |id: Option<uuid::Uuid>| id.map(|id| id.to_string()).unwrap_or_default();
    match event {
        GateEvent::StepChanged { step, transaction } => {
            GateObject::step_changed_signal(gate, &name_of(step), &id_or_empty(*transaction)).await
        }
        GateEvent::TransactionFinished {
            record_id,
            admitted,
            reason,
            // The traveler's screen's words: not for the bus.
            guidance: _,
            guidance_kind: _,
            notices: _,
        } => {
            GateObject::transaction_finished(
                gate,
                &record_id.to_string(),
                *admitted,
                reason.map(|r| r.code()).unwrap_or_default(),
            )
            .await
        }
        GateEvent::DeviceStateChanged {
            device,
            state,
            fault,
        } => {
            GateObject::device_state_changed(
                gate,
                device,
                state.name(),
                fault.as_deref().unwrap_or_default(),
            )
            .await
        }
        GateEvent::AlarmRaised { alarm } => {
            GateObject::alarm_raised(gate, &name_of(&alarm.kind), &id_or_empty(alarm.record_id))
                .await
        }
        GateEvent::AlarmCleared => GateObject::alarm_cleared(gate).await,
        GateEvent::ModeChanged { .. } | GateEvent::InterlocksChanged { .. } => Ok(()),
    }
}

async fn announce(
    emitter: &SignalEmitter<'_>,
    interface: &'static str,
    changed: HashMap<&'static str, Value<'static>>,
) -> zbus::Result<()> {
    if changed.is_empty() {
        return Ok(());
    }
    zbus::fdo::Properties::properties_changed(
        emitter,
        InterfaceName::from_static_str_unchecked(interface),
        changed,
        Cow::Borrowed(&[]),
    )
    .await
}
