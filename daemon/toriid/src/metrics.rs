//! Prometheus metrics, served as `GET /metrics` by the HTTP adapter (loopback TCP and
//! the Unix socket; viewer level, no personal data). `docs/metrics.md` lists every
//! metric, its type, labels and meaning.
//!
//! The `metrics` facade records; metrics-exporter-prometheus'
//! [`PrometheusRecorder`](metrics_exporter_prometheus::PrometheusRecorder) (without the
//! exporter's own HTTP listener) keeps the values and renders them. It is installed
//! once per process ([`install`]): tests that start several daemons in one process share
//! it, so their counters add up there. Three sources feed it:
//!
//! - **events** ([`spawn`]): a task subscribed to [`Core::events`] turns the gate's
//!   events into counters and histograms ([`EventMetrics`]): transactions, step and
//!   transaction durations (measured on the monotonic clock when the events arrive),
//!   alarms, mode changes, device state changes;
//! - **hooks** in the engine's adapters (`gate.rs`) and the device event pump
//!   (`daemon.rs`): door commands the gate sends ([`device_request`]), door state events
//!   ([`device_event`]), match decisions ([`MeteredVerifier`]) and the match scores of
//!   committed records ([`MeteredSink`]);
//! - **scrape time** ([`render`]): gauges read from the [`Core`] just before rendering —
//!   devices, driver restarts, the gate's mode and interlocks, the central link's
//!   figures ([`Core::link_stats`], omitted while the daemon runs without them), build
//!   information, uptime and the `process_*` metrics.
//!
//! **Labels are bounded and carry no personal data.** Every label value is an enum's
//! name (steps, outcomes, reason codes, modes, interlocks, alarms, doors, device classes
//! and states, match results) or a device id. Device ids come from the configuration
//! (the keys of `[devices.<id>]`): a fixed set per process, chosen by the operator,
//! naming hardware, never people. Forwarder and sync error kinds come from the link as
//! strings; kinds outside the link's known list are counted as `other`. Record ids,
//! traveler data, driver fault texts and scores never become labels.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use metrics::{
    Label, Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::sync::broadcast::error::RecvError;
use torii_core::flow::{
    AlarmKind, FingerDecision, FingerprintVerifier, Interlock, Mode, Verification,
};
use torii_core::record::{RecordSink, Step, TransactionRecord};
use torii_core::registry::EnrolledFinger;
use torii_sdk::model::{DeviceState, Door, DoorCommand, DoorState, Event, FingerSample, Request};
use uuid::Uuid;

use crate::command::Core;
use crate::events::{GateEvent, Numbered};

/// The `Content-Type` of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// How often the recorder's histogram samples are folded into their buckets when
/// nobody scrapes (bounds their memory).
const UPKEEP_PERIOD: Duration = Duration::from_secs(5);

// From events.
const TRANSACTIONS: &str = "torii_transactions_total";
const TRANSACTION_DURATION: &str = "torii_transaction_duration_seconds";
const STEP_DURATION: &str = "torii_step_duration_seconds";
const ALARMS: &str = "torii_alarms_total";
const MODE_CHANGES: &str = "torii_mode_changes_total";
const DEVICE_STATE_CHANGES: &str = "torii_device_state_changes_total";
const EVENTS_LOST: &str = "torii_metrics_events_lost_total";
// From hooks.
const DOOR_COMMANDS: &str = "torii_door_commands_total";
const DOOR_EVENTS: &str = "torii_door_events_total";
const MATCH_SCORE: &str = "torii_match_score";
const MATCH_DECISIONS: &str = "torii_match_decisions_total";
// At scrape time.
const BUILD_INFO: &str = "torii_build_info";
const UPTIME: &str = "torii_uptime_seconds";
const DEVICE_UP: &str = "torii_device_up";
const DEVICE_STATE: &str = "torii_device_state";
const DRIVER_RESTARTS: &str = "torii_driver_restarts_total";
const GATE_ACCEPTING: &str = "torii_gate_accepting";
const GATE_MODE: &str = "torii_gate_mode";
const GATE_INTERLOCK: &str = "torii_gate_interlock";
const GATE_ALARM: &str = "torii_gate_alarm";
const OUTBOX_DEPTH: &str = "torii_outbox_depth";
const OUTBOX_CAPACITY: &str = "torii_outbox_capacity";
const OUTBOX_OLDEST_AGE: &str = "torii_outbox_oldest_age_seconds";
const OUTBOX_WARNING: &str = "torii_outbox_warning";
const RECORDS_COMMITTED: &str = "torii_records_committed_total";
const RECORDS_FORWARDED: &str = "torii_records_forwarded_total";
const FORWARDER_ERRORS: &str = "torii_forwarder_errors_total";
const REGISTRY_STALENESS: &str = "torii_registry_staleness_seconds";
const REGISTRY_STALE: &str = "torii_registry_stale";
const REGISTRY_SYNC_ERRORS: &str = "torii_registry_sync_errors_total";
const CERTIFICATE_RELOADS: &str = "torii_certificate_reloads_total";
const CERTIFICATE_EXPIRY: &str = "torii_client_certificate_expiry_timestamp_seconds";

/// Steps: from the document check (well under a second) to the ED card (minutes).
const STEP_BUCKETS: &[f64] = &[
    0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 180.0, 300.0,
];
/// Whole transactions: tens of seconds for a traveler who knows the gate.
const TRANSACTION_BUCKETS: &[f64] = &[
    1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 300.0, 600.0,
];
/// Calibrated scores are `-log10 FMR` (torii-matcher's `calibration`): impostors sit
/// below ~6 (single finger, 5e-6 is the last measured point) and ~7 (fused); the usual
/// thresholds (FMR 1e-3 … 1e-5) lie between 3 and 6; genuine fingers score well above.
const SCORE_BUCKETS: &[f64] = &[
    0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 7.0, 8.0, 10.0, 12.0, 15.0, 20.0,
];

/// The reason label of an admission.
const NO_REASON: &str = "none";

const MODES: [Mode; 4] = [
    Mode::InService,
    Mode::OutOfService,
    Mode::Maintenance,
    Mode::FireAlarm,
];
const INTERLOCKS: [Interlock; 2] = [Interlock::RegistryStale, Interlock::RecordStoreUnavailable];
const ALARM_KINDS: [AlarmKind; 2] = [AlarmKind::Tailgating, AlarmKind::DeviceFault];
const DEVICE_STATES: [DeviceState; 3] = [
    DeviceState::Ready,
    DeviceState::Busy,
    DeviceState::Unavailable,
];
/// Forwarder and registry sync error kinds (torii-link's `ErrorKind`); any other string
/// is counted as `other`, so the label stays bounded whatever the link reports.
const LINK_ERROR_KINDS: [&str; 7] = [
    "connect", "tls", "timeout", "http", "protocol", "conflict", "local",
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
static PROCESS: OnceLock<metrics_process::Collector> = OnceLock::new();
static RESTARTS: OnceLock<RestartCounter> = OnceLock::new();

/// The recorder's configuration: histograms with buckets (rendered as Prometheus
/// histograms, not summaries), no unit suffixes added (the names carry them).
pub fn builder() -> PrometheusBuilder {
    let buckets = [
        (STEP_DURATION, STEP_BUCKETS),
        (TRANSACTION_DURATION, TRANSACTION_BUCKETS),
        (MATCH_SCORE, SCORE_BUCKETS),
    ];
    buckets
        .into_iter()
        .fold(PrometheusBuilder::new(), |builder, (name, buckets)| {
            builder
                .set_buckets_for_metric(Matcher::Full(name.to_owned()), buckets)
                .expect("bucket lists are not empty")
        })
}

/// Installs the process-wide recorder (once; later calls return the same handle).
pub fn install() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = builder().build_recorder();
        let handle = recorder.handle();
        match metrics::set_global_recorder(recorder) {
            Ok(()) => {
                describe();
                process().describe();
            }
            Err(_) => tracing::warn!(
                "another metrics recorder is installed: /metrics shows nothing of this daemon"
            ),
        }
        handle
    })
}

fn process() -> &'static metrics_process::Collector {
    PROCESS.get_or_init(metrics_process::Collector::default)
}

/// Help text and unit of every torii metric (on the current recorder).
pub fn describe() {
    describe_counter!(
        TRANSACTIONS,
        Unit::Count,
        "Finished transactions by lane, outcome (admitted, referred) and referral reason code (none when admitted)."
    );
    describe_histogram!(
        TRANSACTION_DURATION,
        Unit::Seconds,
        "Duration of finished transactions, from the first step to the outcome, by lane and outcome."
    );
    describe_histogram!(
        STEP_DURATION,
        Unit::Seconds,
        "Time spent in each step of a transaction (idle excluded)."
    );
    describe_counter!(
        ALARMS,
        Unit::Count,
        "Alarms the lane raised, by kind (tailgating, device-fault)."
    );
    describe_counter!(
        MODE_CHANGES,
        Unit::Count,
        "Changes of the gate's mode, by the mode entered."
    );
    describe_counter!(
        DEVICE_STATE_CHANGES,
        Unit::Count,
        "Device health changes reported by the plugin host, by device and the state entered."
    );
    describe_counter!(
        EVENTS_LOST,
        Unit::Count,
        "Gate events the metrics task missed because it fell behind (the counts above are then short)."
    );
    describe_counter!(
        DOOR_COMMANDS,
        Unit::Count,
        "Door commands the gate flow sent to the lane controller (officer commands included), by door and command."
    );
    describe_counter!(
        DOOR_EVENTS,
        Unit::Count,
        "Door state changes reported by the lane controller, by door and state."
    );
    describe_histogram!(
        MATCH_SCORE,
        Unit::Count,
        "Calibrated fingerprint scores (-log10 FMR) of committed records: single per comparison, fused per two-finger attempt (the sum)."
    );
    describe_counter!(
        MATCH_DECISIONS,
        Unit::Count,
        "Two-finger verification attempts by decision (match, no-match, retry)."
    );
    describe_gauge!(
        BUILD_INFO,
        "Always 1; the labels name the running toriid build."
    );
    describe_gauge!(UPTIME, Unit::Seconds, "Seconds since toriid started.");
    describe_gauge!(
        DEVICE_UP,
        "1 when the enabled device is open and READY or BUSY, 0 otherwise."
    );
    describe_gauge!(
        DEVICE_STATE,
        "The enabled device's CUSS state, one-hot over ready, busy and unavailable."
    );
    describe_counter!(
        DRIVER_RESTARTS,
        Unit::Count,
        "Restarts of the device's isolated driver host since toriid started."
    );
    describe_gauge!(
        GATE_ACCEPTING,
        "1 when the gate takes travelers (flow running, in service, no interlock active)."
    );
    describe_gauge!(GATE_MODE, "The gate's mode, one-hot.");
    describe_gauge!(
        GATE_INTERLOCK,
        "1 for each interlock that keeps the lane closed."
    );
    describe_gauge!(
        GATE_ALARM,
        "1 while an alarm of this kind waits for an officer's acknowledgement."
    );
    describe_gauge!(
        OUTBOX_DEPTH,
        Unit::Count,
        "Records committed but not yet acknowledged by central."
    );
    describe_gauge!(OUTBOX_CAPACITY, Unit::Count, "Records the outbox can hold.");
    describe_gauge!(
        OUTBOX_OLDEST_AGE,
        Unit::Seconds,
        "Age of the oldest unacknowledged record (0 when the outbox is empty)."
    );
    describe_gauge!(
        OUTBOX_WARNING,
        "1 when the outbox is at or above its alarm level."
    );
    describe_counter!(
        RECORDS_COMMITTED,
        Unit::Count,
        "Records committed to the outbox."
    );
    describe_counter!(
        RECORDS_FORWARDED,
        Unit::Count,
        "Records forwarded to and acknowledged by central."
    );
    describe_counter!(
        FORWARDER_ERRORS,
        Unit::Count,
        "Failed attempts to forward records to central, by kind."
    );
    describe_gauge!(
        REGISTRY_STALENESS,
        Unit::Seconds,
        "Seconds since the registry was last synchronised with central (absent before the first sync)."
    );
    describe_gauge!(
        REGISTRY_STALE,
        "1 when the registry is older than the configured limit (TTP lanes out of service)."
    );
    describe_counter!(
        REGISTRY_SYNC_ERRORS,
        Unit::Count,
        "Failed registry synchronisations with central, by kind."
    );
    describe_counter!(
        CERTIFICATE_RELOADS,
        Unit::Count,
        "Reloads of the client certificate for central (rotation without restart)."
    );
    describe_gauge!(
        CERTIFICATE_EXPIRY,
        Unit::Seconds,
        "When the client certificate for central expires (notAfter, Unix time)."
    );
}

/// Starts the task that turns the gate's events into metrics (and keeps the recorder's
/// upkeep). Subscribes at once, so call it before the gate publishes.
pub fn spawn(core: &Arc<Core>) -> tokio::task::JoinHandle<()> {
    let handle = install();
    let events = core.events().subscribe();
    let lane = core.status().lane.name();
    tokio::spawn(run(events, lane, handle))
}

async fn run(
    mut events: tokio::sync::broadcast::Receiver<Arc<Numbered>>,
    lane: &'static str,
    handle: &'static PrometheusHandle,
) {
    let mut metrics = EventMetrics::new(lane);
    let mut upkeep = tokio::time::interval(UPKEEP_PERIOD);
    upkeep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            received = events.recv() => match received {
                Ok(numbered) => metrics.observe(&numbered.event, Instant::now()),
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "the metrics task fell behind the gate's events");
                    counter!(EVENTS_LOST).increment(missed);
                }
                Err(RecvError::Closed) => return,
            },
            _ = upkeep.tick() => handle.run_upkeep(),
        }
    }
}

/// Turns gate events into metrics. Durations are measured between the arrivals of the
/// events (monotonic clock), so steps shorter than the event delivery may be counted in
/// the step before them.
#[derive(Debug)]
pub struct EventMetrics {
    lane: &'static str,
    step: Option<(Step, Instant)>,
    transaction: Option<(Uuid, Instant)>,
}

impl EventMetrics {
    pub fn new(lane: &'static str) -> Self {
        EventMetrics {
            lane,
            step: None,
            transaction: None,
        }
    }

    /// Records `event`, which arrived at `at`.
    pub fn observe(&mut self, event: &GateEvent, at: Instant) {
        match event {
            GateEvent::StepChanged { step, transaction } => {
                if let Some((previous, since)) = self.step.take()
                    && previous != Step::Idle
                {
                    histogram!(STEP_DURATION, "step" => step_name(previous))
                        .record(seconds(at, since));
                }
                self.step = Some((*step, at));
                if let Some(id) = transaction
                    && self.transaction.is_none_or(|(current, _)| current != *id)
                {
                    self.transaction = Some((*id, at));
                }
            }
            GateEvent::TransactionFinished {
                record_id,
                admitted,
                reason,
                ..
            } => {
                let outcome = if *admitted { "admitted" } else { "referred" };
                let reason = reason.map_or(NO_REASON, |r| r.code());
                counter!(TRANSACTIONS, "lane" => self.lane, "outcome" => outcome, "reason" => reason)
                    .increment(1);
                if let Some((id, since)) = self.transaction.take()
                    && id == *record_id
                {
                    histogram!(TRANSACTION_DURATION, "lane" => self.lane, "outcome" => outcome)
                        .record(seconds(at, since));
                }
            }
            GateEvent::ModeChanged { mode } => {
                counter!(MODE_CHANGES, "mode" => mode_name(*mode)).increment(1);
            }
            GateEvent::AlarmRaised { alarm } => {
                counter!(ALARMS, "kind" => alarm_name(alarm.kind)).increment(1);
            }
            GateEvent::DeviceStateChanged { device, state, .. } => {
                counter!(DEVICE_STATE_CHANGES, "device" => device.clone(), "state" => state_name(*state))
                    .increment(1);
            }
            GateEvent::InterlocksChanged { .. } | GateEvent::AlarmCleared => {}
        }
    }
}

fn seconds(at: Instant, since: Instant) -> f64 {
    at.saturating_duration_since(since).as_secs_f64()
}

/// Hook: a request the gate flow sends to a device (counts door commands).
pub fn device_request(request: &Request) {
    if let Request::SetDoor { door, command } = request {
        counter!(DOOR_COMMANDS, "door" => door_name(*door), "command" => door_command_name(*command))
            .increment(1);
    }
}

/// Hook: an event a device reported (counts door state changes).
pub fn device_event(event: &Event) {
    if let Event::DoorState { door, state } = event {
        counter!(DOOR_EVENTS, "door" => door_name(*door), "state" => door_state_name(*state))
            .increment(1);
    }
}

/// Hook: a record was committed. Its fingerprint comparisons' calibrated scores go to
/// the score histogram: each comparison as `single`, each attempt with two or more
/// comparisons also as `fused` (the sum, the statistic of score fusion).
pub fn record_committed(record: &TransactionRecord) {
    let mut attempts: BTreeMap<u8, (usize, f64)> = BTreeMap::new();
    for comparison in &record.comparisons {
        if !comparison.score.is_finite() {
            continue;
        }
        histogram!(MATCH_SCORE, "finger_kind" => "single").record(comparison.score);
        let attempt = attempts.entry(comparison.attempt).or_default();
        attempt.0 += 1;
        attempt.1 += comparison.score;
    }
    for (count, sum) in attempts.into_values() {
        if count >= 2 {
            histogram!(MATCH_SCORE, "finger_kind" => "fused").record(sum);
        }
    }
}

/// The engine's record sink, with the scores of each record it commits
/// ([`record_committed`]; a record that could not be stored is not counted).
pub struct MeteredSink(pub Arc<dyn RecordSink>);

impl RecordSink for MeteredSink {
    fn commit<'a>(
        &'a self,
        record: &'a TransactionRecord,
    ) -> torii_core::BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            self.0.commit(record).await?;
            record_committed(record);
            Ok(())
        })
    }
}

/// A fingerprint verifier that counts its decisions (one per attempt).
pub struct MeteredVerifier<V>(pub V);

impl<V: FingerprintVerifier> FingerprintVerifier for MeteredVerifier<V> {
    fn verify(&self, enrolled: &[EnrolledFinger], captured: &[FingerSample]) -> Verification {
        let verification = self.0.verify(enrolled, captured);
        let result = match verification.decision {
            FingerDecision::Match => "match",
            FingerDecision::NoMatch => "no-match",
            FingerDecision::Retry => "retry",
        };
        counter!(MATCH_DECISIONS, "result" => result).increment(1);
        verification
    }
}

/// Sets the scrape-time gauges from `core` and renders every metric (the body of
/// `GET /metrics`).
pub fn render(core: &Core) -> String {
    let handle = install();
    scrape(core, RESTARTS.get_or_init(RestartCounter::default));
    process().collect();
    handle.render()
}

/// Driver restarts as a counter. The registry's figure is per driver host: it starts
/// over when a device is opened again (a USB device plugged back in), so the counter
/// adds the increases it sees, and the new figure after such a reset.
#[derive(Debug, Default)]
pub struct RestartCounter {
    seen: Mutex<HashMap<String, u32>>,
}

impl RestartCounter {
    fn observe(&self, device: &str, restarts: u32) {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let previous = seen.insert(device.to_owned(), restarts).unwrap_or(0);
        let increase = if restarts >= previous {
            restarts - previous
        } else {
            restarts
        };
        counter!(DRIVER_RESTARTS, "device" => device.to_owned()).increment(u64::from(increase));
    }
}

/// The gauges read from the core at scrape time (on the current recorder).
pub fn scrape(core: &Core, restarts: &RestartCounter) {
    let mut build = vec![Label::new("version", crate::command::VERSION)];
    if let Some(commit) = option_env!("TORII_GIT_COMMIT") {
        build.push(Label::new("commit", commit));
    }
    gauge!(BUILD_INFO, build).set(1.0);
    gauge!(UPTIME).set(core.status().uptime_ms as f64 / 1000.0);

    // Disabled devices are not part of the gate: no series.
    for device in core.registry().snapshots() {
        if !device.config.enabled {
            continue;
        }
        let id = device.config.id;
        let state = if device.opened {
            device.health.state
        } else {
            DeviceState::Unavailable
        };
        gauge!(DEVICE_UP, "device" => id.clone(), "class" => device.config.class.name())
            .set(flag(state != DeviceState::Unavailable));
        for each in DEVICE_STATES {
            gauge!(DEVICE_STATE, "device" => id.clone(), "state" => state_name(each))
                .set(flag(each == state));
        }
        restarts.observe(&id, device.health.restarts);
    }

    match core.flow().map(|flow| flow.status()) {
        Some(status) => {
            gauge!(GATE_ACCEPTING).set(flag(status.accepting()));
            for mode in MODES {
                gauge!(GATE_MODE, "mode" => mode_name(mode)).set(flag(status.mode == mode));
            }
            for interlock in INTERLOCKS {
                gauge!(GATE_INTERLOCK, "interlock" => interlock_name(interlock))
                    .set(flag(status.interlocks.contains(&interlock)));
            }
            for kind in ALARM_KINDS {
                let active = status.alarm.as_ref().is_some_and(|a| a.kind == kind);
                gauge!(GATE_ALARM, "kind" => alarm_name(kind)).set(flag(active));
            }
        }
        // The flow is not running: the gate takes no travelers.
        None => gauge!(GATE_ACCEPTING).set(0.0),
    }

    let Some(link) = core.link_stats() else {
        return;
    };
    gauge!(OUTBOX_DEPTH).set(link.outbox_depth as f64);
    gauge!(OUTBOX_CAPACITY).set(link.outbox_capacity as f64);
    gauge!(OUTBOX_OLDEST_AGE).set(link.outbox_oldest_age_seconds);
    gauge!(OUTBOX_WARNING).set(flag(link.outbox_warning));
    counter!(RECORDS_COMMITTED).absolute(link.records_committed_total);
    counter!(RECORDS_FORWARDED).absolute(link.records_forwarded_total);
    for (kind, count) in bounded_kinds(&link.forwarder_errors) {
        counter!(FORWARDER_ERRORS, "kind" => kind).absolute(count);
    }
    // Absent before the first sync (rather than NaN): alert on `torii_registry_stale`,
    // or on `absent(torii_registry_staleness_seconds)` for a gate that never synced.
    if let Some(staleness) = link.registry_staleness_seconds {
        gauge!(REGISTRY_STALENESS).set(staleness);
    }
    gauge!(REGISTRY_STALE).set(flag(link.registry_stale));
    for (kind, count) in bounded_kinds(&link.sync_errors) {
        counter!(REGISTRY_SYNC_ERRORS, "kind" => kind).absolute(count);
    }
    counter!(CERTIFICATE_RELOADS).absolute(link.certificate_reloads);
    // Absent without a central link: alert with `- time() < ...` on what is there.
    if let Some(not_after) = link.client_certificate_not_after {
        gauge!(CERTIFICATE_EXPIRY).set(not_after as f64);
    }
}

/// Error counts by kind, unknown kinds summed as `other`.
fn bounded_kinds(counts: &[(String, u64)]) -> BTreeMap<&'static str, u64> {
    let mut bounded = BTreeMap::new();
    for (kind, count) in counts {
        let kind = LINK_ERROR_KINDS
            .into_iter()
            .find(|known| known == kind)
            .unwrap_or("other");
        *bounded.entry(kind).or_insert(0) += count;
    }
    bounded
}

fn flag(on: bool) -> f64 {
    if on { 1.0 } else { 0.0 }
}

// Label values: the kebab-case names the APIs use. Exhaustive matches, so a new variant
// does not compile until it has a name here (and in the lists above).

fn step_name(step: Step) -> &'static str {
    match step {
        Step::Idle => "idle",
        Step::Document => "document",
        Step::Card => "card",
        Step::EdCard => "ed-card",
        Step::Fingerprints => "fingerprints",
        Step::Face => "face",
        Step::Printing => "printing",
        Step::TakeCard => "take-card",
        Step::Passage => "passage",
        Step::Referred => "referred",
        Step::Done => "done",
    }
}

fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::InService => "in-service",
        Mode::OutOfService => "out-of-service",
        Mode::Maintenance => "maintenance",
        Mode::FireAlarm => "fire-alarm",
    }
}

fn interlock_name(interlock: Interlock) -> &'static str {
    match interlock {
        Interlock::RegistryStale => "registry-stale",
        Interlock::RecordStoreUnavailable => "record-store-unavailable",
    }
}

fn alarm_name(kind: AlarmKind) -> &'static str {
    match kind {
        AlarmKind::Tailgating => "tailgating",
        AlarmKind::DeviceFault => "device-fault",
    }
}

fn state_name(state: DeviceState) -> &'static str {
    match state {
        DeviceState::Ready => "ready",
        DeviceState::Busy => "busy",
        DeviceState::Unavailable => "unavailable",
    }
}

fn door_name(door: Door) -> &'static str {
    match door {
        Door::Entry => "entry",
        Door::Exit => "exit",
    }
}

fn door_command_name(command: DoorCommand) -> &'static str {
    match command {
        DoorCommand::Open => "open",
        DoorCommand::Close => "close",
        DoorCommand::Lock => "lock",
        DoorCommand::Free => "free",
    }
}

fn door_state_name(state: DoorState) -> &'static str {
    match state {
        DoorState::Closed => "closed",
        DoorState::Open => "open",
        DoorState::Locked => "locked",
        DoorState::Moving => "moving",
        DoorState::Fault => "fault",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link_stats::LinkStats;
    use crate::registry::testing::{FakeDevice, core_with};
    use metrics_exporter_prometheus::PrometheusRecorder;
    use torii_core::flow::Alarm;
    use torii_core::reason::ReasonCode;
    use torii_plugin_host::{DeviceHealth, HostEvent};
    use torii_sdk::model::{DeviceClass, FingerPosition};

    /// A fresh recorder, the metrics described on it, and what `f` records on it.
    fn rendered(f: impl FnOnce()) -> String {
        let recorder: PrometheusRecorder = builder().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            describe();
            f();
        });
        handle.render()
    }

    /// The value of the series `name{labels}` (labels as rendered, sorted as given).
    fn value(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .filter(|line| !line.starts_with('#'))
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    fn step(step: Step, transaction: Option<Uuid>) -> GateEvent {
        GateEvent::StepChanged { step, transaction }
    }

    #[test]
    fn events_become_counters_and_durations() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let (first, second) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let text = rendered(|| {
            let mut m = EventMetrics::new("entry");
            m.observe(
                &GateEvent::ModeChanged {
                    mode: Mode::InService,
                },
                at(0),
            );
            // An admission: document 2 s, fingerprints 5 s, passage 3 s; 10 s in all.
            m.observe(&step(Step::Document, Some(first)), at(10));
            m.observe(&step(Step::Fingerprints, Some(first)), at(12));
            m.observe(&step(Step::Passage, Some(first)), at(17));
            m.observe(
                &GateEvent::TransactionFinished {
                    record_id: first,
                    admitted: true,
                    reason: None,
                    guidance: "Welcome to Japan.".into(),
                    guidance_kind: None,
                    notices: Vec::new(),
                },
                at(20),
            );
            m.observe(&step(Step::Idle, None), at(20));
            // A tailgating referral: 4 s in the document step, then the alarm.
            m.observe(&step(Step::Document, Some(second)), at(100));
            m.observe(
                &GateEvent::TransactionFinished {
                    record_id: second,
                    admitted: false,
                    reason: Some(ReasonCode::MultiplePersons),
                    guidance: "Please see the officer.".into(),
                    guidance_kind: None,
                    notices: Vec::new(),
                },
                at(104),
            );
            m.observe(&step(Step::Idle, None), at(104));
            m.observe(
                &GateEvent::AlarmRaised {
                    alarm: Alarm {
                        kind: AlarmKind::Tailgating,
                        record_id: Some(second),
                    },
                },
                at(104),
            );
            m.observe(
                &GateEvent::DeviceStateChanged {
                    device: "camera".into(),
                    state: DeviceState::Unavailable,
                    fault: Some("host crashed".into()),
                },
                at(105),
            );
            // Idle time is not a step duration.
            m.observe(&step(Step::Document, Some(Uuid::from_u128(3))), at(500));
        });
        let expect = |series: &str, expected: f64| {
            assert_eq!(value(&text, series), Some(expected), "{series}\n{text}");
        };
        expect(
            r#"torii_transactions_total{lane="entry",outcome="admitted",reason="none"}"#,
            1.0,
        );
        expect(
            r#"torii_transactions_total{lane="entry",outcome="referred",reason="MULTI_PERSON"}"#,
            1.0,
        );
        expect(
            r#"torii_transaction_duration_seconds_sum{lane="entry",outcome="admitted"}"#,
            10.0,
        );
        expect(
            r#"torii_transaction_duration_seconds_bucket{lane="entry",outcome="admitted",le="5"}"#,
            0.0,
        );
        expect(
            r#"torii_transaction_duration_seconds_bucket{lane="entry",outcome="admitted",le="10"}"#,
            1.0,
        );
        expect(
            r#"torii_transaction_duration_seconds_sum{lane="entry",outcome="referred"}"#,
            4.0,
        );
        expect(r#"torii_step_duration_seconds_count{step="document"}"#, 2.0);
        expect(r#"torii_step_duration_seconds_sum{step="document"}"#, 6.0);
        expect(
            r#"torii_step_duration_seconds_sum{step="fingerprints"}"#,
            5.0,
        );
        expect(r#"torii_step_duration_seconds_sum{step="passage"}"#, 3.0);
        assert!(!text.contains(r#"step="idle""#), "{text}");
        expect(r#"torii_alarms_total{kind="tailgating"}"#, 1.0);
        expect(r#"torii_mode_changes_total{mode="in-service"}"#, 1.0);
        expect(
            r#"torii_device_state_changes_total{device="camera",state="unavailable"}"#,
            1.0,
        );
        assert!(text.contains("# HELP torii_transactions_total "), "{text}");
        assert!(
            text.contains("# TYPE torii_step_duration_seconds histogram"),
            "{text}"
        );
        for private in ["host crashed", "Welcome", "00000000-0000"] {
            assert!(!text.contains(private), "{private} in\n{text}");
        }
    }

    #[test]
    fn door_commands_and_events_are_counted_by_door() {
        let text = rendered(|| {
            device_request(&Request::SetDoor {
                door: Door::Exit,
                command: DoorCommand::Open,
            });
            device_request(&Request::SetDoor {
                door: Door::Exit,
                command: DoorCommand::Open,
            });
            device_request(&Request::ReadMrz);
            device_event(&Event::DoorState {
                door: Door::Entry,
                state: DoorState::Locked,
            });
            device_event(&Event::MediaPresent);
        });
        assert_eq!(
            value(
                &text,
                r#"torii_door_commands_total{door="exit",command="open"}"#
            ),
            Some(2.0)
        );
        assert_eq!(
            value(
                &text,
                r#"torii_door_events_total{door="entry",state="locked"}"#
            ),
            Some(1.0)
        );
    }

    fn record_with_scores(scores: &[(u8, f64)]) -> TransactionRecord {
        let now = time::OffsetDateTime::UNIX_EPOCH;
        TransactionRecord {
            record_id: Uuid::from_u128(9),
            gate_id: "G".into(),
            lane: torii_core::rules::Lane::Entry,
            started_at: now,
            finished_at: now,
            outcome: torii_core::record::Outcome::Admitted,
            decided_by: None,
            identification: None,
            chip: None,
            nationality: Some("GBR".into()),
            passport_number: Some("TW1000017".into()),
            card_number: Some("TTP0000001001".into()),
            steps: Vec::new(),
            comparisons: scores
                .iter()
                .map(|&(attempt, score)| torii_core::record::Comparison {
                    finger: FingerPosition::RightIndex,
                    attempt,
                    score,
                    threshold: 4.0,
                    quality: Some(80),
                })
                .collect(),
            devices: Vec::new(),
            ed_card: None,
            printed_line: None,
            period_of_stay_days: None,
            notices: Vec::new(),
            face_jpeg: None,
        }
    }

    struct Decides(FingerDecision);

    impl FingerprintVerifier for Decides {
        fn verify(&self, _: &[EnrolledFinger], _: &[FingerSample]) -> Verification {
            Verification {
                decision: self.0,
                comparisons: Vec::new(),
            }
        }
    }

    /// A sink that stores, or fails.
    struct Stores(bool);

    impl RecordSink for Stores {
        fn commit<'a>(
            &'a self,
            _: &'a TransactionRecord,
        ) -> torii_core::BoxFuture<'a, Result<(), String>> {
            let stored = self.0;
            Box::pin(async move {
                if stored {
                    Ok(())
                } else {
                    Err("disk full".into())
                }
            })
        }
    }

    #[test]
    fn committed_scores_and_decisions_are_recorded_without_the_record() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let text = rendered(|| {
            // Attempt 1: two fingers (fused 2.5); attempt 2: 7.0 + 9.0 (fused 16).
            let record =
                record_with_scores(&[(1, 1.0), (1, 1.5), (2, 7.0), (2, 9.0), (3, f64::NAN)]);
            let stored = MeteredSink(Arc::new(Stores(true)));
            runtime.block_on(stored.commit(&record)).unwrap();
            // A record that was not stored is not counted.
            let lost = MeteredSink(Arc::new(Stores(false)));
            runtime.block_on(lost.commit(&record)).unwrap_err();
            for decision in [FingerDecision::NoMatch, FingerDecision::Match] {
                MeteredVerifier(Decides(decision)).verify(&[], &[]);
            }
        });
        let expect = |series: &str, expected: f64| {
            assert_eq!(value(&text, series), Some(expected), "{series}\n{text}");
        };
        expect(r#"torii_match_score_count{finger_kind="single"}"#, 4.0);
        expect(r#"torii_match_score_sum{finger_kind="single"}"#, 18.5);
        expect(
            r#"torii_match_score_bucket{finger_kind="single",le="1.5"}"#,
            2.0,
        );
        expect(r#"torii_match_score_count{finger_kind="fused"}"#, 2.0);
        expect(r#"torii_match_score_sum{finger_kind="fused"}"#, 18.5);
        expect(
            r#"torii_match_score_bucket{finger_kind="fused",le="2.5"}"#,
            1.0,
        );
        expect(r#"torii_match_decisions_total{result="match"}"#, 1.0);
        expect(r#"torii_match_decisions_total{result="no-match"}"#, 1.0);
        for private in ["TW1000017", "TTP0000001001", "GBR", "00000000-0000"] {
            assert!(!text.contains(private), "{private} in\n{text}");
        }
    }

    #[tokio::test]
    async fn scrape_time_gauges_read_devices_and_the_link() {
        let core = core_with(vec![
            FakeDevice::ready("camera", DeviceClass::Camera),
            FakeDevice::unopened("lane-controller", DeviceClass::LaneController, "no driver"),
            FakeDevice::ready("code-reader", DeviceClass::CodeReader).disabled(),
        ]);
        let restarts = RestartCounter::default();
        let crashed = |restarts| HostEvent::Health {
            device: "camera".into(),
            health: DeviceHealth {
                state: DeviceState::Busy,
                fault: None,
                restarts,
            },
        };
        let without_link = rendered(|| {
            core.registry().apply(&crashed(2));
            scrape(&core, &restarts);
            // The device was opened again: its host's count starts over.
            core.registry().apply(&crashed(1));
            scrape(&core, &restarts);
        });
        let expect = |text: &str, series: &str, expected: f64| {
            assert_eq!(value(text, series), Some(expected), "{series}\n{text}");
        };
        expect(
            &without_link,
            r#"torii_device_up{device="camera",class="camera"}"#,
            1.0,
        );
        expect(
            &without_link,
            r#"torii_device_up{device="lane-controller",class="lane-controller"}"#,
            0.0,
        );
        expect(
            &without_link,
            r#"torii_device_state{device="camera",state="busy"}"#,
            1.0,
        );
        expect(
            &without_link,
            r#"torii_device_state{device="camera",state="ready"}"#,
            0.0,
        );
        expect(
            &without_link,
            r#"torii_device_state{device="lane-controller",state="unavailable"}"#,
            1.0,
        );
        expect(
            &without_link,
            r#"torii_driver_restarts_total{device="camera"}"#,
            3.0,
        );
        expect(
            &without_link,
            r#"torii_driver_restarts_total{device="lane-controller"}"#,
            0.0,
        );
        assert!(!without_link.contains("code-reader"), "{without_link}");
        expect(&without_link, "torii_gate_accepting", 0.0);
        expect(
            &without_link,
            &format!(
                r#"torii_build_info{{version="{}"}}"#,
                crate::command::VERSION
            ),
            1.0,
        );
        assert!(!without_link.contains("torii_outbox"), "{without_link}");
        assert!(!without_link.contains("no driver"), "{without_link}");

        core.set_link_stats(Arc::new(|| LinkStats {
            outbox_depth: 3,
            outbox_capacity: 10_000,
            outbox_oldest_age_seconds: 12.5,
            records_forwarded_total: 40,
            forwarder_errors: vec![
                ("connect".into(), 2),
                ("weird".into(), 1),
                ("odd".into(), 1),
            ],
            registry_staleness_seconds: None,
            ..LinkStats::default()
        }));
        let with_link = rendered(|| scrape(&core, &RestartCounter::default()));
        expect(&with_link, "torii_outbox_depth", 3.0);
        expect(&with_link, "torii_outbox_capacity", 10_000.0);
        expect(&with_link, "torii_outbox_oldest_age_seconds", 12.5);
        expect(&with_link, "torii_records_forwarded_total", 40.0);
        expect(
            &with_link,
            r#"torii_forwarder_errors_total{kind="connect"}"#,
            2.0,
        );
        expect(
            &with_link,
            r#"torii_forwarder_errors_total{kind="other"}"#,
            2.0,
        );
        expect(&with_link, "torii_registry_stale", 0.0);
        assert!(
            !with_link.contains("torii_registry_staleness_seconds "),
            "absent before the first sync\n{with_link}"
        );
    }
}
