//! The one command path: every adapter (HTTP, D-Bus, `toriictl` through HTTP, the kiosk
//! and console pages through HTTP) turns its input into a [`Command`] and says who asks
//! ([`Caller`]); [`Core::execute`] checks the caller's [`Role`] against the command's,
//! audits refusals, and runs it. Adapters hold no logic of their own — not even the
//! authorization policy, which is [`Command::required_role`] — and the views returned
//! here are what every adapter shows.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use torii_plugin_host::{CallError, Isolation};
use torii_sdk::model::{
    DeviceClass, DeviceState, DoorState, FingerPosition, FingerSample, Request, Response, Status,
};

use crate::config::{GateConfig, Lane};
use crate::registry::{DeviceSnapshot, LookupError, Registry, in_service};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Everything the daemon can be asked to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    GetStatus,
    ListDevices,
    GetDevice {
        id: String,
    },
    /// Officer/maintenance access to one device (hardware bring-up, end-to-end tests).
    DeviceCall {
        id: String,
        request: Request,
    },
    /// The gate's live state (mode, step, last outcome). `personal` adds the ED card
    /// under edit, for the traveler's own screen.
    GetGate {
        personal: bool,
    },
    /// An officer changes the gate's mode.
    SetMode {
        mode: torii_core::flow::Mode,
    },
    /// The traveler confirms the (possibly corrected) ED card on the screen.
    ConfirmEdCard {
        card: Box<torii_core::edcard::EdCard>,
    },
    /// Recent transactions, newest first, without personal data.
    ListTransactions {
        limit: usize,
    },
    /// One full transaction record (personal data).
    GetTransaction {
        id: String,
    },
    /// Inspects the passport on the document reader and reports every ICAO check
    /// (maintenance: diagnosing a real passport on a real reader). `mrz` replaces the
    /// optical MRZ (readers without optics).
    InspectDocument {
        mrz: Option<Vec<String>>,
    },
    /// An officer commands a door (ends a transaction under way).
    SetDoor {
        door: torii_sdk::model::Door,
        command: torii_sdk::model::DoorCommand,
    },
    /// An officer acknowledges the lane's alarm.
    AcknowledgeAlarm,
    /// The traveler in the lane asked the officer for a passport stamp.
    RequestStamp,
}

/// What a caller may do. Ordered: each role may do what the roles before it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Status, devices, the public gate state, transaction summaries: no personal data.
    Viewer,
    /// The traveler's own screen: the ED card under edit, and confirming it.
    Kiosk,
    /// Officers and maintenance: mode, doors, alarms, device calls, full records.
    Operator,
}

impl Role {
    pub const fn name(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Kiosk => "kiosk",
            Role::Operator => "operator",
        }
    }

    /// Kiosk and viewer are not ordered by trust for everything: a kiosk may confirm
    /// an ED card but not command doors; an operator may do both.
    pub fn allows(self, required: Role) -> bool {
        matches!(
            (self, required),
            (Role::Operator, _) | (_, Role::Viewer) | (Role::Kiosk, Role::Kiosk)
        )
    }
}

/// Who asks: the role the adapter established (token, D-Bus peer, socket peer) and a
/// non-personal name for the audit trail (`token:console-1`, `dbus:uid=1000`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub role: Role,
    pub name: String,
}

impl Caller {
    pub fn new(role: Role, name: impl Into<String>) -> Self {
        Caller {
            role,
            name: name.into(),
        }
    }

    /// In-process callers (tests, the daemon itself).
    pub fn system() -> Self {
        Caller::new(Role::Operator, "system")
    }
}

impl Command {
    pub fn name(&self) -> &'static str {
        match self {
            Command::GetStatus => "get-status",
            Command::ListDevices => "list-devices",
            Command::GetDevice { .. } => "get-device",
            Command::DeviceCall { .. } => "device-call",
            Command::GetGate { .. } => "get-gate",
            Command::SetMode { .. } => "set-mode",
            Command::ConfirmEdCard { .. } => "confirm-ed-card",
            Command::ListTransactions { .. } => "list-transactions",
            Command::GetTransaction { .. } => "get-transaction",
            Command::InspectDocument { .. } => "inspect-document",
            Command::SetDoor { .. } => "set-door",
            Command::AcknowledgeAlarm => "acknowledge-alarm",
            Command::RequestStamp => "request-stamp",
        }
    }

    /// The role a caller needs: the whole authorization policy, in one place.
    pub fn required_role(&self) -> Role {
        match self {
            Command::GetStatus
            | Command::ListDevices
            | Command::GetDevice { .. }
            | Command::GetGate { personal: false }
            | Command::ListTransactions { .. } => Role::Viewer,
            Command::GetGate { personal: true } | Command::ConfirmEdCard { .. } => Role::Kiosk,
            Command::DeviceCall { .. }
            | Command::SetMode { .. }
            | Command::GetTransaction { .. }
            | Command::InspectDocument { .. }
            | Command::SetDoor { .. }
            | Command::AcknowledgeAlarm
            | Command::RequestStamp => Role::Operator,
        }
    }

    /// Commands that change the gate: audited when they run.
    fn audited(&self) -> bool {
        matches!(
            self,
            Command::DeviceCall { .. }
                | Command::SetMode { .. }
                | Command::SetDoor { .. }
                | Command::AcknowledgeAlarm
                | Command::RequestStamp
                | Command::InspectDocument { .. }
                | Command::GetTransaction { .. }
        )
    }
}

/// What a command returns; serialized as the inner view.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum CommandOutput {
    Status(StatusView),
    Devices(Vec<DeviceView>),
    Device(DeviceView),
    Call(CallView),
    Gate(Box<torii_core::flow::GateStatus>),
    Accepted(Accepted),
    Transactions(Vec<TransactionSummary>),
    Transaction(Box<torii_core::record::TransactionRecord>),
    Inspection(crate::gate::InspectionReport),
}

/// An input the gate took (it acts on it asynchronously).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accepted {
    pub accepted: bool,
}

/// A transaction without personal data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransactionSummary {
    pub record_id: String,
    pub lane: torii_core::rules::Lane,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: time::OffsetDateTime,
    pub duration_ms: i64,
    pub outcome: torii_core::record::Outcome,
    pub decided_by: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusView {
    pub gate_id: String,
    pub lane: Lane,
    pub version: String,
    pub uptime_ms: u64,
    /// Start-up finished (devices opened or given up on, API serving).
    pub ready: bool,
    /// Every enabled device is working: the gate can take travelers.
    pub in_service: bool,
    pub devices: DeviceCounts,
    /// The central link (outbox, forwarding, registry sync); absent when the gate flow
    /// does not run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<crate::link_stats::LinkStats>,
}

/// Enabled devices by state, plus the disabled ones.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceCounts {
    pub total: usize,
    pub ready: usize,
    pub busy: usize,
    pub unavailable: usize,
    pub disabled: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceView {
    pub id: String,
    /// Kebab-case class name (`document-reader`).
    pub class: String,
    pub enabled: bool,
    pub isolation: Isolation,
    /// The driver library configured for the device.
    pub driver_path: String,
    /// What the driver says about itself; `null` until it was opened.
    pub driver: Option<DriverView>,
    pub state: DeviceState,
    pub fault: Option<String>,
    pub restarts: u32,
    pub media_present: Option<bool>,
    /// Recent events, oldest first: kind and time only.
    pub events: Vec<EventView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriverView {
    pub name: String,
    pub version: String,
    pub vendor: String,
    pub class: String,
    pub capabilities: u64,
    /// `major.minor`
    pub abi: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventView {
    pub kind: String,
    pub at_unix_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallView {
    pub device: String,
    pub op: String,
    pub elapsed_ms: u64,
    pub response: ResponseView,
}

/// A [`Response`] for JSON clients: byte fields are base64 (standard alphabet, padded).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ResponseView {
    Done,
    State { state: DeviceState },
    Mrz { lines: Vec<String> },
    Atr { atr: String },
    Apdu { response: String },
    CardChip { data: String },
    Fingers { samples: Vec<FingerSampleView> },
    Face { jpeg: String },
    DoorState { state: DoorState },
    PersonCount { count: u32 },
    FireAlarm { active: bool },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FingerSampleView {
    pub position: FingerPosition,
    pub quality: Option<u8>,
    pub template: String,
    pub image: String,
}

impl From<Response> for ResponseView {
    fn from(response: Response) -> Self {
        let b64 = |bytes: Vec<u8>| BASE64.encode(bytes);
        match response {
            Response::Done => ResponseView::Done,
            Response::State { state } => ResponseView::State { state },
            Response::Mrz { lines } => ResponseView::Mrz { lines },
            Response::Atr { atr } => ResponseView::Atr { atr: b64(atr) },
            Response::Apdu { response } => ResponseView::Apdu {
                response: b64(response),
            },
            Response::CardChip { data } => ResponseView::CardChip { data: b64(data) },
            Response::Fingers { samples } => ResponseView::Fingers {
                samples: samples
                    .into_iter()
                    .map(
                        |FingerSample {
                             position,
                             quality,
                             template,
                             image,
                         }| FingerSampleView {
                            position,
                            quality,
                            template: b64(template),
                            image: b64(image),
                        },
                    )
                    .collect(),
            },
            Response::Face { jpeg } => ResponseView::Face { jpeg: b64(jpeg) },
            Response::DoorState { state } => ResponseView::DoorState { state },
            Response::PersonCount { count } => ResponseView::PersonCount { count },
            Response::FireAlarm { active } => ResponseView::FireAlarm { active },
        }
    }
}

/// The body of every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorView {
    /// [`CommandError::kind`], or `not-found` for an unknown route.
    pub error: String,
    pub message: String,
    /// The CUSS status, for device errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<Status>,
}

impl From<&CommandError> for ErrorView {
    fn from(error: &CommandError) -> Self {
        ErrorView {
            error: error.kind().to_owned(),
            message: error.to_string(),
            code: error.code(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("no device {0:?} is configured")]
    UnknownDevice(String),
    /// Input an adapter could not turn into a command, or a command that makes no sense.
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("operation {op} does not apply to device {id:?} (a {class})")]
    WrongClass {
        id: String,
        op: String,
        class: DeviceClass,
    },
    #[error("device {id:?} is unavailable: {reason}")]
    Unavailable { id: String, reason: String },
    #[error("device {id:?} did not answer within {after_ms} ms")]
    Timeout { id: String, after_ms: u64 },
    /// The driver answered with a CUSS status.
    #[error("device {id:?} answered {status}")]
    DeviceStatus { id: String, status: Status },
    #[error("the gate is not running: {0}")]
    GateNotRunning(String),
    #[error("no transaction {0:?} among the recent ones")]
    UnknownTransaction(String),
    /// The gate cannot take this input now (e.g. an ED card outside the ED card step).
    #[error("not now: {0}")]
    Conflict(String),
    /// The caller's role does not allow the command.
    #[error("{command} needs the {required} role; the caller has {has}")]
    Forbidden {
        command: &'static str,
        required: &'static str,
        has: &'static str,
    },
}

impl CommandError {
    /// A stable machine-readable name for the error.
    pub fn kind(&self) -> &'static str {
        match self {
            CommandError::UnknownDevice(_) => "unknown-device",
            CommandError::BadRequest(_) => "bad-request",
            CommandError::WrongClass { .. } => "wrong-class",
            CommandError::Unavailable { .. } => "device-unavailable",
            CommandError::Timeout { .. } => "device-timeout",
            CommandError::DeviceStatus { .. } => "device-status",
            CommandError::GateNotRunning(_) => "gate-not-running",
            CommandError::UnknownTransaction(_) => "unknown-transaction",
            CommandError::Conflict(_) => "conflict",
            CommandError::Forbidden { .. } => "forbidden",
        }
    }

    /// The CUSS status closest to the error, for device errors.
    pub fn code(&self) -> Option<Status> {
        match self {
            CommandError::UnknownDevice(_)
            | CommandError::BadRequest(_)
            | CommandError::GateNotRunning(_)
            | CommandError::UnknownTransaction(_)
            | CommandError::Conflict(_)
            | CommandError::Forbidden { .. } => None,
            CommandError::WrongClass { .. } => Some(Status::InvalidArgument),
            CommandError::Unavailable { .. } => Some(Status::Unavailable),
            CommandError::Timeout { .. } => Some(Status::Timeout),
            CommandError::DeviceStatus { status, .. } => Some(*status),
        }
    }

    fn from_call(id: &str, error: CallError) -> Self {
        let id = id.to_owned();
        match error {
            CallError::Status(status) => CommandError::DeviceStatus { id, status },
            CallError::NotSupported => CommandError::DeviceStatus {
                id,
                status: Status::NotSupported,
            },
            CallError::WrongClass { op, class } => CommandError::WrongClass { id, op, class },
            CallError::Timeout { after_ms } => CommandError::Timeout { id, after_ms },
            CallError::Faulted(fault) => CommandError::Unavailable {
                id,
                reason: format!("device faulted: {fault}"),
            },
            CallError::Unavailable => CommandError::Unavailable {
                id,
                reason: "device unavailable".to_owned(),
            },
        }
    }
}

impl From<LookupError> for CommandError {
    fn from(error: LookupError) -> Self {
        match error {
            LookupError::Unknown(id) => CommandError::UnknownDevice(id),
            LookupError::Disabled { ref id } => CommandError::Unavailable {
                id: id.clone(),
                reason: error.to_string(),
            },
            LookupError::NotOpen { id, reason } => CommandError::Unavailable { id, reason },
        }
    }
}

/// The daemon's core: owns the registry and answers commands.
pub struct Core {
    gate: GateConfig,
    registry: Arc<Registry>,
    started: Instant,
    ready: AtomicBool,
    /// The running flow engine, once started (absent when the gate cannot take travelers).
    flow: std::sync::OnceLock<crate::gate::GateHandle>,
    /// Why the flow engine is not running, when it is not.
    flow_missing: std::sync::OnceLock<String>,
    audit: std::sync::OnceLock<Arc<torii_audit::AuditLog>>,
    events: crate::events::EventBus,
    link_stats: std::sync::OnceLock<crate::link_stats::LinkStatsSource>,
}

/// What the audit entry of a command says (no personal data: ids, modes, door names).
fn audit_detail(command: &Command) -> String {
    match command {
        Command::DeviceCall { id, request } => format!("device {id}: {}", request.name()),
        Command::SetMode { mode } => format!("mode {mode:?}"),
        Command::SetDoor { door, command } => format!("door {door:?}: {command:?}"),
        Command::GetTransaction { id } => format!("record {id} read"),
        other => other.name().to_owned(),
    }
}

fn audit_kind(command: &Command) -> torii_audit::AuditKind {
    use torii_audit::AuditKind;
    use torii_sdk::model::DoorCommand;
    match command {
        Command::SetMode { .. } => AuditKind::ModeChanged,
        Command::SetDoor {
            command: DoorCommand::Open | DoorCommand::Free,
            ..
        } => AuditKind::DoorOpenedByOfficer,
        Command::SetDoor { .. } => AuditKind::DoorClosedByOfficer,
        Command::AcknowledgeAlarm => AuditKind::AlarmAcknowledged,
        _ => AuditKind::OperatorCommand,
    }
}

impl Core {
    /// `started` is the process start, so `uptime` and `ready in N ms` count start-up.
    pub fn new(gate: GateConfig, registry: Arc<Registry>, started: Instant) -> Self {
        Core {
            gate,
            registry,
            started,
            ready: AtomicBool::new(false),
            flow: std::sync::OnceLock::new(),
            flow_missing: std::sync::OnceLock::new(),
            audit: std::sync::OnceLock::new(),
            events: crate::events::EventBus::new(),
            link_stats: std::sync::OnceLock::new(),
        }
    }

    /// Records why the gate takes no travelers (shown to API callers).
    pub fn set_flow_missing(&self, why: String) {
        let _ = self.flow_missing.set(why);
    }

    /// Attaches the running flow engine.
    pub fn set_flow(&self, flow: crate::gate::GateHandle) {
        let _ = self.flow.set(flow);
    }

    pub fn flow(&self) -> Option<&crate::gate::GateHandle> {
        self.flow.get()
    }

    fn running_flow(&self) -> Result<&crate::gate::GateHandle, CommandError> {
        self.flow.get().ok_or_else(|| {
            CommandError::GateNotRunning(
                self.flow_missing
                    .get()
                    .cloned()
                    .unwrap_or_else(|| "starting".to_owned()),
            )
        })
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    /// Runs `command` for `caller`: the role check, the audit entry, the command.
    pub async fn execute(
        &self,
        caller: &Caller,
        command: Command,
    ) -> Result<CommandOutput, CommandError> {
        let name = command.name();
        let required = command.required_role();
        if !caller.role.allows(required) {
            tracing::warn!(caller = %caller.name, command = name, "command refused: role");
            self.audit(
                torii_audit::AuditKind::ApiForbidden,
                &caller.name,
                format!("{name} refused: needs {}", required.name()),
            );
            return Err(CommandError::Forbidden {
                command: name,
                required: required.name(),
                has: caller.role.name(),
            });
        }
        let audited = command.audited();
        let detail = audit_detail(&command);
        let kind = audit_kind(&command);
        let result = self.run(command).await;
        if audited {
            let outcome = match &result {
                Ok(_) => "ok".to_owned(),
                Err(e) => format!("failed: {}", e.kind()),
            };
            self.audit(kind, &caller.name, format!("{detail} ({outcome})"));
        }
        result
    }

    /// An authentication failure seen by an adapter (bad or missing token, a peer not
    /// in the operators' group): logged and audited here so every adapter does it alike.
    pub fn authentication_failed(&self, adapter: &str, why: &str) {
        tracing::warn!(adapter, why, "API authentication failed");
        self.audit(
            torii_audit::AuditKind::ApiAuthFailed,
            adapter,
            why.to_owned(),
        );
    }

    /// Appends to the audit trail, if one is attached. A failing audit trail is an
    /// error in the log, not a refusal: the gate's safety does not depend on it.
    pub fn audit(&self, kind: torii_audit::AuditKind, actor: &str, detail: String) {
        let Some(audit) = self.audit.get() else {
            return;
        };
        let event = torii_audit::AuditEvent {
            kind,
            actor: Some(actor.to_owned()),
            detail,
        };
        // An append fsyncs (a few ms): on the multi-threaded runtime, tell tokio this
        // worker blocks so other tasks move on; elsewhere (tests) just do it.
        let multi_thread = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        let result = if multi_thread {
            tokio::task::block_in_place(|| audit.append(event))
        } else {
            audit.append(event)
        };
        if let Err(error) = result {
            tracing::error!(%error, "audit trail append failed");
        }
    }

    /// The central link's figures (outbox, forwarder, sync); `None` when the daemon
    /// runs without them (no gate flow).
    pub fn link_stats(&self) -> Option<crate::link_stats::LinkStats> {
        self.link_stats.get().map(|source| source())
    }

    pub fn set_link_stats(&self, source: crate::link_stats::LinkStatsSource) {
        let _ = self.link_stats.set(source);
    }

    /// Attaches the audit trail.
    pub fn set_audit(&self, audit: Arc<torii_audit::AuditLog>) {
        let _ = self.audit.set(audit);
    }

    /// The gate's events (steps, outcomes, devices, alarms), for SSE, D-Bus signals
    /// and metrics.
    pub fn events(&self) -> &crate::events::EventBus {
        &self.events
    }

    async fn run(&self, command: Command) -> Result<CommandOutput, CommandError> {
        match command {
            Command::GetStatus => Ok(CommandOutput::Status(self.status())),
            Command::ListDevices => Ok(CommandOutput::Devices(
                self.registry.snapshots().iter().map(device_view).collect(),
            )),
            Command::GetDevice { id } => self
                .registry
                .snapshot(&id)
                .map(|s| CommandOutput::Device(device_view(&s)))
                .ok_or(CommandError::UnknownDevice(id)),
            Command::DeviceCall { id, request } => {
                self.device_call(id, request).await.map(CommandOutput::Call)
            }
            Command::GetGate { personal } => {
                let mut status = self.running_flow()?.status();
                if !personal {
                    status.ed_card = None;
                    status.nationality = None;
                }
                Ok(CommandOutput::Gate(Box::new(status)))
            }
            Command::SetMode { mode } => {
                if mode == torii_core::flow::Mode::FireAlarm {
                    return Err(CommandError::BadRequest(
                        "fire-alarm mode is set by the fire alarm only".into(),
                    ));
                }
                let accepted = self
                    .running_flow()?
                    .send(torii_core::flow::GateInput::SetMode(mode));
                tracing::info!(mode = ?mode, accepted, "mode change requested");
                Ok(CommandOutput::Accepted(Accepted { accepted }))
            }
            Command::ConfirmEdCard { card } => {
                let flow = self.running_flow()?;
                if flow.status().step != torii_core::record::Step::EdCard {
                    return Err(CommandError::Conflict(
                        "the gate is not showing an ED card".into(),
                    ));
                }
                let accepted = flow.send(torii_core::flow::GateInput::EdCardConfirmed(*card));
                Ok(CommandOutput::Accepted(Accepted { accepted }))
            }
            Command::ListTransactions { limit } => Ok(CommandOutput::Transactions(
                self.running_flow()?
                    .recent(limit.clamp(1, 200))
                    .iter()
                    .map(|r| TransactionSummary {
                        record_id: r.record_id.to_string(),
                        lane: r.lane,
                        started_at: r.started_at,
                        duration_ms: (r.finished_at - r.started_at).whole_milliseconds() as i64,
                        outcome: r.outcome,
                        decided_by: r.decided_by.clone(),
                    })
                    .collect(),
            )),
            Command::InspectDocument { mrz } => {
                let flow = self.running_flow()?;
                if flow.status().transaction.is_some() {
                    return Err(CommandError::Conflict(
                        "a traveler is using the gate".into(),
                    ));
                }
                flow.inspect_document(mrz)
                    .await
                    .map(CommandOutput::Inspection)
                    .map_err(CommandError::Conflict)
            }
            Command::SetDoor { door, command } => {
                let accepted = self
                    .running_flow()?
                    .send(torii_core::flow::GateInput::OfficerDoor { door, command });
                Ok(CommandOutput::Accepted(Accepted { accepted }))
            }
            Command::AcknowledgeAlarm => {
                let flow = self.running_flow()?;
                if flow.status().alarm.is_none() {
                    return Err(CommandError::Conflict("no alarm to acknowledge".into()));
                }
                let accepted = flow.send(torii_core::flow::GateInput::AcknowledgeAlarm);
                Ok(CommandOutput::Accepted(Accepted { accepted }))
            }
            Command::RequestStamp => {
                let flow = self.running_flow()?;
                if flow.status().transaction.is_none() {
                    return Err(CommandError::Conflict(
                        "no traveler is using the gate".into(),
                    ));
                }
                let accepted = flow.send(torii_core::flow::GateInput::StampRequested);
                Ok(CommandOutput::Accepted(Accepted { accepted }))
            }
            Command::GetTransaction { id } => {
                let parsed = uuid::Uuid::parse_str(&id)
                    .map_err(|_| CommandError::BadRequest(format!("{id:?} is not a record id")))?;
                self.running_flow()?
                    .record(parsed)
                    .map_err(CommandError::Conflict)?
                    .map(|r| CommandOutput::Transaction(Box::new(r)))
                    .ok_or(CommandError::UnknownTransaction(id))
            }
        }
    }

    pub fn status(&self) -> StatusView {
        let devices = self.registry.snapshots();
        let mut counts = DeviceCounts {
            total: devices.len(),
            ..DeviceCounts::default()
        };
        for device in &devices {
            match (device.config.enabled, device.health.state) {
                (false, _) => counts.disabled += 1,
                (true, DeviceState::Ready) => counts.ready += 1,
                (true, DeviceState::Busy) => counts.busy += 1,
                (true, DeviceState::Unavailable) => counts.unavailable += 1,
            }
        }
        StatusView {
            gate_id: self.gate.id.clone(),
            lane: self.gate.lane,
            version: VERSION.to_owned(),
            uptime_ms: millis(self.started.elapsed()),
            ready: self.is_ready(),
            in_service: in_service(&devices),
            devices: counts,
            link: self.link_stats(),
        }
    }

    async fn device_call(&self, id: String, request: Request) -> Result<CallView, CommandError> {
        let device = self.registry.handle(&id)?;
        let op = request.name();
        // Refused here as well as in the host, so a fake or future backend behaves alike.
        if !request.applies_to(device.info().class) {
            return Err(CommandError::WrongClass {
                id,
                op: op.to_owned(),
                class: device.info().class,
            });
        }
        let started = Instant::now();
        // Op names and outcomes only: requests and responses may carry personal data.
        let result = device.call(request).await;
        let elapsed_ms = millis(started.elapsed());
        match result {
            Ok(response) => {
                tracing::info!(device = %id, op, elapsed_ms, outcome = response.name(), "device call");
                Ok(CallView {
                    device: id,
                    op: op.to_owned(),
                    elapsed_ms,
                    response: response.into(),
                })
            }
            Err(error) => {
                tracing::warn!(device = %id, op, elapsed_ms, status = %error.status(), "device call failed: {error}");
                Err(CommandError::from_call(&id, error))
            }
        }
    }
}

fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn unix_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map(millis).unwrap_or(0)
}

pub fn device_view(snapshot: &DeviceSnapshot) -> DeviceView {
    let config = &snapshot.config;
    DeviceView {
        id: config.id.clone(),
        class: config.class.name().to_owned(),
        enabled: config.enabled,
        isolation: config.isolation,
        driver_path: config.driver.display().to_string(),
        driver: snapshot.info.as_ref().map(|info| DriverView {
            name: info.name.clone(),
            version: info.version.clone(),
            vendor: info.vendor.clone(),
            class: info.class.name().to_owned(),
            capabilities: info.capabilities,
            abi: format!("{}.{}", info.abi_major, info.abi_minor),
        }),
        state: snapshot.health.state,
        fault: snapshot.health.fault.clone(),
        restarts: snapshot.health.restarts,
        media_present: snapshot.media_present,
        events: snapshot
            .events
            .iter()
            .map(|e| EventView {
                kind: e.kind.to_owned(),
                at_unix_ms: unix_ms(e.at),
            })
            .collect(),
    }
}

/// Counts by state as a map, for log lines and the systemd STATUS line.
pub fn state_summary(devices: &[DeviceSnapshot]) -> BTreeMap<&'static str, usize> {
    let mut summary = BTreeMap::new();
    for device in devices.iter().filter(|d| d.config.enabled) {
        *summary.entry(device.health.state.name()).or_insert(0) += 1;
    }
    summary
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::testing::{FakeDevice, core_with};
    use torii_plugin_host::{DeviceHealth, HostEvent};
    use torii_sdk::model::Event;

    fn status_of(core: &Core) -> StatusView {
        core.status()
    }

    #[tokio::test]
    async fn status_counts_devices_and_reports_service() {
        let core = core_with(vec![
            FakeDevice::ready("camera", DeviceClass::Camera),
            FakeDevice::ready("document-reader", DeviceClass::DocumentReader),
            FakeDevice::ready("code-reader", DeviceClass::CodeReader).disabled(),
        ]);
        let status = status_of(&core);
        assert_eq!(status.gate_id, "NRT-T1-E01");
        assert_eq!(status.version, VERSION);
        assert!(!status.ready);
        assert!(
            status.in_service,
            "disabled devices do not keep the gate out of service"
        );
        assert_eq!(
            status.devices,
            DeviceCounts {
                total: 3,
                ready: 2,
                busy: 0,
                unavailable: 0,
                disabled: 1
            }
        );

        // A device going away takes the gate out of service.
        let lost = DeviceHealth {
            state: DeviceState::Unavailable,
            fault: Some("host crashed".into()),
            restarts: 1,
        };
        core.registry().apply(&HostEvent::Health {
            device: "camera".into(),
            health: lost,
        });
        let status = status_of(&core);
        assert!(!status.in_service);
        assert_eq!(status.devices.unavailable, 1);
    }

    #[tokio::test]
    async fn a_device_that_failed_to_open_is_listed_unavailable_with_its_error() {
        let core = core_with(vec![FakeDevice::unopened(
            "camera",
            DeviceClass::Camera,
            "driver: no such file",
        )]);
        let Ok(CommandOutput::Device(view)) = core
            .execute(
                &Caller::system(),
                Command::GetDevice {
                    id: "camera".into(),
                },
            )
            .await
        else {
            panic!("expected a device view");
        };
        assert_eq!(view.state, DeviceState::Unavailable);
        assert_eq!(view.fault.as_deref(), Some("driver: no such file"));
        assert!(view.driver.is_none());
        assert!(!core.status().in_service);
        let error = core
            .execute(
                &Caller::system(),
                Command::DeviceCall {
                    id: "camera".into(),
                    request: Request::GetState,
                },
            )
            .await
            .unwrap_err();
        assert!(
            matches!(error, CommandError::Unavailable { .. }),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn no_devices_means_out_of_service() {
        assert!(!status_of(&core_with(vec![])).in_service);
    }

    #[tokio::test]
    async fn device_list_is_sorted_and_carries_driver_info() {
        let core = core_with(vec![
            FakeDevice::ready("lane-controller", DeviceClass::LaneController),
            FakeDevice::ready("camera", DeviceClass::Camera),
        ]);
        let Ok(CommandOutput::Devices(devices)) =
            core.execute(&Caller::system(), Command::ListDevices).await
        else {
            panic!()
        };
        let ids: Vec<_> = devices.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(ids, ["camera", "lane-controller"]);
        let driver = devices[0].driver.as_ref().unwrap();
        assert_eq!(
            (
                driver.name.as_str(),
                driver.class.as_str(),
                driver.abi.as_str()
            ),
            ("sim-camera", "camera", "1.0")
        );
    }

    #[tokio::test]
    async fn events_update_media_presence_and_history_without_payloads() {
        let core = core_with(vec![FakeDevice::ready(
            "code-reader",
            DeviceClass::CodeReader,
        )]);
        let registry = core.registry();
        for event in [
            Event::MediaPresent,
            Event::CodeRead {
                symbology: torii_sdk::model::Symbology::Qr,
                payload: b"TTP:SECRET".to_vec(),
            },
        ] {
            registry.apply(&HostEvent::Device {
                device: "code-reader".into(),
                event,
            });
        }
        for _ in 0..crate::registry::EVENT_HISTORY {
            registry.apply(&HostEvent::Device {
                device: "code-reader".into(),
                event: Event::MediaRemoved,
            });
        }
        let Ok(CommandOutput::Device(view)) = core
            .execute(
                &Caller::system(),
                Command::GetDevice {
                    id: "code-reader".into(),
                },
            )
            .await
        else {
            panic!()
        };
        assert_eq!(view.media_present, Some(false));
        assert_eq!(view.events.len(), crate::registry::EVENT_HISTORY);
        let json = serde_json::to_string(&view).unwrap();
        assert!(!json.contains("SECRET"));
    }

    #[tokio::test]
    async fn unknown_devices_and_wrong_classes_are_refused() {
        let core = core_with(vec![FakeDevice::ready("camera", DeviceClass::Camera)]);
        let error = core
            .execute(&Caller::system(), Command::GetDevice { id: "nope".into() })
            .await
            .unwrap_err();
        assert_eq!(error, CommandError::UnknownDevice("nope".into()));
        let error = core
            .execute(
                &Caller::system(),
                Command::DeviceCall {
                    id: "camera".into(),
                    request: Request::ReadMrz,
                },
            )
            .await
            .unwrap_err();
        assert_eq!(error.kind(), "wrong-class");
        assert_eq!(error.code(), Some(Status::InvalidArgument));
    }

    #[tokio::test]
    async fn call_errors_become_command_errors() {
        let cases = [
            (
                CallError::Status(Status::MediaJammed),
                "device-status",
                Status::MediaJammed,
            ),
            (
                CallError::NotSupported,
                "device-status",
                Status::NotSupported,
            ),
            (
                CallError::Timeout { after_ms: 3000 },
                "device-timeout",
                Status::Timeout,
            ),
            (
                CallError::Faulted("panicked".into()),
                "device-unavailable",
                Status::Unavailable,
            ),
            (
                CallError::Unavailable,
                "device-unavailable",
                Status::Unavailable,
            ),
        ];
        for (call_error, kind, code) in cases {
            let core = core_with(vec![
                FakeDevice::ready("camera", DeviceClass::Camera).answering(Err(call_error)),
            ]);
            let error = core
                .execute(
                    &Caller::system(),
                    Command::DeviceCall {
                        id: "camera".into(),
                        request: Request::CaptureFace { timeout_ms: 10 },
                    },
                )
                .await
                .unwrap_err();
            assert_eq!((error.kind(), error.code()), (kind, Some(code)), "{error}");
        }
    }

    #[tokio::test]
    async fn byte_fields_come_back_as_base64() {
        let core = core_with(vec![
            FakeDevice::ready("camera", DeviceClass::Camera).answering(Ok(Response::Face {
                jpeg: vec![0xff, 0xd8, 0xff],
            })),
        ]);
        let Ok(CommandOutput::Call(call)) = core
            .execute(
                &Caller::system(),
                Command::DeviceCall {
                    id: "camera".into(),
                    request: Request::CaptureFace { timeout_ms: 10 },
                },
            )
            .await
        else {
            panic!()
        };
        assert_eq!(call.op, "capture-face");
        assert_eq!(
            call.response,
            ResponseView::Face {
                jpeg: "/9j/".into()
            }
        );
        let json = serde_json::to_value(CommandOutput::Call(call)).unwrap();
        assert_eq!(
            json["response"],
            serde_json::json!({"kind": "face", "jpeg": "/9j/"})
        );
    }
}
