//! `/org/torii/Gate1`, interface `org.torii.Gate1`.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;
use zbus::Connection;
use zbus::message::Header;
use zbus::object_server::SignalEmitter;
use zbus::zvariant::Value;

use super::{Authorizer, Error};
use crate::command::{Caller, Command, CommandOutput, Core, Role};

pub(super) struct GateObject {
    core: Arc<Core>,
    authorizer: Arc<Authorizer>,
}

impl GateObject {
    pub(super) fn new(core: Arc<Core>, authorizer: Arc<Authorizer>) -> Self {
        GateObject { core, authorizer }
    }

    async fn props(&self) -> GateProps {
        GateProps::read(&self.core).await
    }

    /// Runs a command for the method call's sender.
    async fn run(
        &self,
        connection: &Connection,
        header: &Header<'_>,
        command: Command,
    ) -> Result<CommandOutput, Error> {
        let caller = self
            .authorizer
            .caller(&self.core, connection, header)
            .await?;
        Ok(self.core.execute(&caller, command).await?)
    }

    /// Runs an input for the gate; the gate not taking it is an error.
    async fn input(
        &self,
        connection: &Connection,
        header: &Header<'_>,
        command: Command,
    ) -> Result<(), Error> {
        match self.run(connection, header, command).await? {
            CommandOutput::Accepted(accepted) if !accepted.accepted => Err(Error::NotRunning(
                "the gate did not take the input (its engine is stopped or busy)".into(),
            )),
            _ => Ok(()),
        }
    }
}

/// Reads properties for anyone on the bus: every property is public (no personal data)
/// and needs only the viewer role, so no peer lookup is made for them.
pub(super) fn property_reader() -> Caller {
    Caller::new(Role::Viewer, "dbus:properties")
}

/// An argument in the kebab-case names of the core's types (`in-service`, `exit`).
fn parse<T: serde::de::DeserializeOwned>(value: &str, what: &str) -> Result<T, Error> {
    serde_json::from_value(serde_json::Value::String(value.to_owned()))
        .map_err(|e| Error::BadRequest(format!("invalid {what} {value:?}: {e}")))
}

/// A value of the core's types by its kebab-case name.
pub(super) fn name_of<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        _ => String::new(),
    }
}

/// The public gate state the properties show.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct GateProps {
    pub mode: String,
    pub accepting: bool,
    pub step: String,
    pub lane: String,
    pub gate_id: String,
    pub interlocks: Vec<String>,
    pub alarm: String,
}

impl GateProps {
    /// Without a running gate flow the gate takes nobody: out of service, idle.
    pub(super) async fn read(core: &Core) -> GateProps {
        let reader = property_reader();
        let (gate_id, lane) = match core.execute(&reader, Command::GetStatus).await {
            Ok(CommandOutput::Status(status)) => (status.gate_id, status.lane.name().to_owned()),
            _ => (String::new(), String::new()),
        };
        match core
            .execute(&reader, Command::GetGate { personal: false })
            .await
        {
            Ok(CommandOutput::Gate(gate)) => GateProps {
                mode: name_of(&gate.mode),
                accepting: gate.accepting(),
                step: name_of(&gate.step),
                lane,
                gate_id,
                interlocks: gate.interlocks.iter().map(name_of).collect(),
                alarm: gate
                    .alarm
                    .as_ref()
                    .map(|alarm| name_of(&alarm.kind))
                    .unwrap_or_default(),
            },
            _ => GateProps {
                mode: name_of(&torii_core::flow::Mode::OutOfService),
                accepting: false,
                step: name_of(&torii_core::record::Step::Idle),
                lane,
                gate_id,
                interlocks: Vec::new(),
                alarm: String::new(),
            },
        }
    }

    /// The properties that differ from `old`, by their D-Bus names.
    pub(super) fn changed_since(&self, old: &GateProps) -> HashMap<&'static str, Value<'static>> {
        let mut changed = HashMap::new();
        if self.mode != old.mode {
            changed.insert("Mode", Value::from(self.mode.clone()));
        }
        if self.accepting != old.accepting {
            changed.insert("Accepting", Value::from(self.accepting));
        }
        if self.step != old.step {
            changed.insert("Step", Value::from(self.step.clone()));
        }
        if self.interlocks != old.interlocks {
            changed.insert("Interlocks", Value::from(self.interlocks.clone()));
        }
        if self.alarm != old.alarm {
            changed.insert("Alarm", Value::from(self.alarm.clone()));
        }
        changed
    }
}

/// The gate of one lane. No personal data: steps, modes, outcomes, reason codes and
/// random record ids only.
#[zbus::interface(name = "org.torii.Gate1")]
impl GateObject {
    /// The operating mode: in-service, out-of-service, maintenance or fire-alarm.
    #[zbus(property)]
    async fn mode(&self) -> String {
        self.props().await.mode
    }

    /// Whether the lane takes travelers: in service with no interlock active.
    #[zbus(property)]
    async fn accepting(&self) -> bool {
        self.props().await.accepting
    }

    /// The traveler's step: idle, document, card, ed-card, fingerprints, face, printing,
    /// take-card, passage, referred, done.
    #[zbus(property)]
    async fn step(&self) -> String {
        self.props().await.step
    }

    /// The lane's direction: entry or exit.
    #[zbus(property(emits_changed_signal = "const"))]
    async fn lane(&self) -> String {
        self.props().await.lane
    }

    /// The gate's id, as printed on its records.
    #[zbus(property(emits_changed_signal = "const"))]
    async fn gate_id(&self) -> String {
        self.props().await.gate_id
    }

    /// The conditions keeping the lane closed (registry-stale,
    /// record-store-unavailable); empty when none.
    #[zbus(property)]
    async fn interlocks(&self) -> Vec<String> {
        self.props().await.interlocks
    }

    /// The alarm waiting for an officer (tailgating, device-fault); "" when none.
    #[zbus(property)]
    async fn alarm(&self) -> String {
        self.props().await.alarm
    }

    /// Sets the mode (in-service, out-of-service, maintenance). Operators only.
    async fn set_mode(
        &self,
        #[zbus(connection)] connection: &Connection,
        #[zbus(header)] header: Header<'_>,
        mode: &str,
    ) -> Result<(), Error> {
        let mode = parse(mode, "mode")?;
        self.input(connection, &header, Command::SetMode { mode })
            .await
    }

    /// Commands a door (entry, exit) to open, close, lock or free; ends a transaction
    /// under way. Operators only.
    async fn set_door(
        &self,
        #[zbus(connection)] connection: &Connection,
        #[zbus(header)] header: Header<'_>,
        door: &str,
        command: &str,
    ) -> Result<(), Error> {
        let door = parse(door, "door")?;
        let command = parse(command, "door command")?;
        self.input(connection, &header, Command::SetDoor { door, command })
            .await
    }

    /// Acknowledges the lane's alarm. Operators only.
    async fn acknowledge_alarm(
        &self,
        #[zbus(connection)] connection: &Connection,
        #[zbus(header)] header: Header<'_>,
    ) -> Result<(), Error> {
        self.input(connection, &header, Command::AcknowledgeAlarm)
            .await
    }

    /// Notes on the current transaction that the traveler asked for a passport stamp.
    /// Operators only.
    async fn request_stamp(
        &self,
        #[zbus(connection)] connection: &Connection,
        #[zbus(header)] header: Header<'_>,
    ) -> Result<(), Error> {
        self.input(connection, &header, Command::RequestStamp).await
    }

    /// The daemon's status as JSON (gate id, lane, version, readiness, device counts),
    /// as `toriictl status --json` prints it.
    #[zbus(out_args("status"))]
    async fn get_status(
        &self,
        #[zbus(connection)] connection: &Connection,
        #[zbus(header)] header: Header<'_>,
    ) -> Result<String, Error> {
        let output = self.run(connection, &header, Command::GetStatus).await?;
        serde_json::to_string(&output).map_err(|e| Error::BadRequest(e.to_string()))
    }

    /// The traveler's step changed; transaction_id is "" between travelers.
    #[zbus(signal, name = "StepChanged")]
    pub(super) async fn step_changed_signal(
        emitter: &SignalEmitter<'_>,
        step: &str,
        transaction_id: &str,
    ) -> zbus::Result<()>;

    /// A transaction ended: admitted, or referred to an officer with a reason code
    /// (docs/reason-codes.md; "" when admitted).
    #[zbus(signal)]
    pub(super) async fn transaction_finished(
        emitter: &SignalEmitter<'_>,
        record_id: &str,
        admitted: bool,
        reason_code: &str,
    ) -> zbus::Result<()>;

    /// A device's state changed (READY, BUSY, UNAVAILABLE); fault says why it is
    /// unavailable ("" when it is not).
    #[zbus(signal)]
    pub(super) async fn device_state_changed(
        emitter: &SignalEmitter<'_>,
        device_id: &str,
        state: &str,
        fault: &str,
    ) -> zbus::Result<()>;

    /// The lane raised an alarm (tailgating, device-fault); record_id is the
    /// transaction's, or "".
    #[zbus(signal)]
    pub(super) async fn alarm_raised(
        emitter: &SignalEmitter<'_>,
        kind: &str,
        record_id: &str,
    ) -> zbus::Result<()>;

    /// The alarm was acknowledged.
    #[zbus(signal)]
    pub(super) async fn alarm_cleared(emitter: &SignalEmitter<'_>) -> zbus::Result<()>;
}
