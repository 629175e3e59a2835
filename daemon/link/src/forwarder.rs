//! Forwards the record outbox to central (`POST /v1/records`).
//!
//! - One batch in flight at a time, records in `seq` order, at most
//!   [`ForwarderConfig::max_batch`] (and never more than [`MAX_BATCH`]) per batch.
//! - A record leaves the outbox only once central acknowledged it; after any failure the
//!   same records are sent again (central stores a record once by its `record_id`).
//! - Failures back off exponentially with full jitter ([`Backoff`]); a wake during the
//!   backoff does not cut it short (it is remembered for after).
//! - [`ForwarderHandle::wake`] (a new commit) forwards at once instead of waiting for the
//!   poll interval.
//! - A 409 [`OutOfOrder`](crate::protocol::OutOfOrder): the records central acknowledged
//!   before the offending one leave the outbox; the offending record is reported
//!   ([`ForwarderStatus::conflict`], [`LinkEvent::RecordConflict`] once) and retried with
//!   backoff, so a conflict that persists (it needs a person) is not looped hot.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::backoff::{Backoff, BackoffConfig};
use crate::client::{Central, ErrorKind, LinkError, PostOutcome};
use crate::protocol::{MAX_BATCH, RecordBatch, RecordEnvelope};
use crate::{Clock, EventHook, LinkEvent, sleep_or_stop, system_clock};

/// One record waiting in the outbox.
#[derive(Clone, PartialEq, Eq)]
pub struct PendingRecord {
    pub seq: u64,
    pub record_id: Uuid,
    /// The record as JSON (torii-core's `TransactionRecord`).
    pub payload: Vec<u8>,
}

impl fmt::Debug for PendingRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingRecord")
            .field("seq", &self.seq)
            .field("record_id", &self.record_id)
            .field("payload", &format_args!("{} bytes", self.payload.len()))
            .finish()
    }
}

/// The outbox as the forwarder sees it. Blocking calls: the forwarder makes them on
/// tokio's blocking pool.
pub trait RecordSource: Send + Sync + 'static {
    /// Unacknowledged records in `seq` order (at most `max`).
    fn pending(&self, max: usize) -> Result<Vec<PendingRecord>, String>;
    /// Central holds these records: they may leave the outbox.
    fn acknowledge(&self, ids: &[Uuid]) -> Result<(), String>;
}

/// The real outbox (torii-outbox) as a record source.
#[cfg(feature = "outbox")]
impl RecordSource for torii_outbox::Outbox {
    fn pending(&self, max: usize) -> Result<Vec<PendingRecord>, String> {
        Ok(torii_outbox::Outbox::pending(self, max)
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|r| PendingRecord {
                seq: r.seq,
                record_id: r.record_id,
                payload: r.payload,
            })
            .collect())
    }

    fn acknowledge(&self, ids: &[Uuid]) -> Result<(), String> {
        torii_outbox::Outbox::acknowledge(self, ids)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForwarderConfig {
    /// The gate's id (the subject CN of its client certificate).
    pub gate_id: String,
    /// Records per batch (1..=[`MAX_BATCH`]; clamped).
    pub max_batch: usize,
    /// How often the outbox is looked at without a wake.
    pub poll_interval: Duration,
    pub backoff: BackoffConfig,
    /// Seeds the backoff's jitter (tests); `None`: from the OS.
    pub rng_seed: Option<u64>,
}

impl ForwarderConfig {
    pub fn new(gate_id: impl Into<String>) -> Self {
        ForwarderConfig {
            gate_id: gate_id.into(),
            max_batch: 100,
            poll_interval: Duration::from_secs(30),
            backoff: BackoffConfig {
                base: Duration::from_secs(1),
                max: Duration::from_secs(60),
            },
            rng_seed: None,
        }
    }
}

/// A record central refuses as out of order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeqConflict {
    pub record_id: Uuid,
    pub seq: u64,
    /// The last seq central stored for the gate.
    pub central_last_seq: u64,
    /// When it was first refused.
    pub since: SystemTime,
}

/// For metrics and alarms.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ForwarderStatus {
    /// The last batch central acknowledged.
    pub last_success: Option<SystemTime>,
    /// Failed tries since the last success (or since the outbox was last found empty).
    pub consecutive_failures: u32,
    pub last_error_kind: Option<ErrorKind>,
    /// The last failure's message (no personal data).
    pub last_error: Option<String>,
    /// Records central acknowledged since start.
    pub forwarded_total: u64,
    /// Batches central acknowledged (wholly or partly) since start.
    pub batches_total: u64,
    pub errors_by_kind: BTreeMap<ErrorKind, u64>,
    /// The highest seq acknowledged since start.
    pub last_forwarded_seq: Option<u64>,
    /// A record central refuses as out of order, until it or a later one goes through.
    pub conflict: Option<SeqConflict>,
}

/// Set up, then [`Forwarder::spawn`].
pub struct Forwarder<S, C> {
    config: ForwarderConfig,
    source: Arc<S>,
    central: Arc<C>,
    hook: Option<EventHook>,
    clock: Clock,
}

impl<S: RecordSource, C: Central> Forwarder<S, C> {
    pub fn new(config: ForwarderConfig, source: Arc<S>, central: Arc<C>) -> Self {
        Forwarder {
            config,
            source,
            central,
            hook: None,
            clock: system_clock(),
        }
    }

    /// Where [`LinkEvent::RecordsForwarded`] and [`LinkEvent::RecordConflict`] go.
    pub fn with_hook(mut self, hook: EventHook) -> Self {
        self.hook = Some(hook);
        self
    }

    /// The clock for [`ForwarderStatus`]'s times.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Starts forwarding in the current tokio runtime.
    pub fn spawn(self) -> ForwarderHandle {
        let wake = Arc::new(Notify::new());
        let (status_tx, status_rx) = watch::channel(ForwarderStatus::default());
        let (stop_tx, stop_rx) = watch::channel(false);
        let backoff = Backoff::new(self.config.backoff, self.config.rng_seed);
        let task = Task {
            max_batch: self.config.max_batch.clamp(1, MAX_BATCH),
            config: self.config,
            source: self.source,
            central: self.central,
            hook: self.hook,
            clock: self.clock,
            wake: wake.clone(),
            status: status_tx,
            stop: stop_rx,
            backoff,
            failures: 0,
        };
        ForwarderHandle {
            wake,
            status: status_rx,
            stop: stop_tx,
            task: tokio::spawn(task.run()),
        }
    }
}

/// The running forwarder. Dropping it stops the forwarder too.
pub struct ForwarderHandle {
    wake: Arc<Notify>,
    status: watch::Receiver<ForwarderStatus>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl fmt::Debug for ForwarderHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ForwarderHandle")
            .field("status", &*self.status.borrow())
            .finish_non_exhaustive()
    }
}

/// Wakes the forwarder (e.g. from the outbox's commit path). Cheap to clone.
#[derive(Clone, Debug)]
pub struct ForwarderWaker(Arc<Notify>);

impl ForwarderWaker {
    /// A record was committed: forward now rather than at the next poll.
    pub fn wake(&self) {
        self.0.notify_one();
    }
}

impl ForwarderHandle {
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    pub fn waker(&self) -> ForwarderWaker {
        ForwarderWaker(self.wake.clone())
    }

    pub fn status(&self) -> watch::Receiver<ForwarderStatus> {
        self.status.clone()
    }

    /// Stops after the batch in flight, if any, has been answered and acknowledged.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if let Err(error) = self.task.await {
            tracing::error!(%error, "record forwarder task failed");
        }
    }
}

struct Task<S, C> {
    config: ForwarderConfig,
    max_batch: usize,
    source: Arc<S>,
    central: Arc<C>,
    hook: Option<EventHook>,
    clock: Clock,
    wake: Arc<Notify>,
    status: watch::Sender<ForwarderStatus>,
    stop: watch::Receiver<bool>,
    backoff: Backoff,
    failures: u32,
}

enum Round {
    /// Nothing to forward.
    Idle,
    /// A batch went through: look again at once.
    Forwarded,
}

struct Failure {
    kind: ErrorKind,
    message: String,
}

impl Failure {
    fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Failure {
            kind,
            message: message.into(),
        }
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(format!("outbox call failed: {e}")))
}

impl<S: RecordSource, C: Central> Task<S, C> {
    async fn run(mut self) {
        tracing::info!(max_batch = self.max_batch, "record forwarder started");
        loop {
            if *self.stop.borrow() {
                break;
            }
            match self.round().await {
                Ok(Round::Forwarded) => {}
                Ok(Round::Idle) => {
                    self.failures = 0;
                    self.status.send_if_modified(|s| {
                        let changed = s.consecutive_failures != 0;
                        s.consecutive_failures = 0;
                        changed
                    });
                    let stop = tokio::select! {
                        _ = self.wake.notified() => false,
                        stop = sleep_or_stop(self.config.poll_interval, &mut self.stop) => stop,
                    };
                    if stop {
                        break;
                    }
                }
                Err(failure) => {
                    self.failures = self.failures.saturating_add(1);
                    let failures = self.failures;
                    tracing::warn!(
                        kind = %failure.kind,
                        error = %failure.message,
                        consecutive_failures = failures,
                        "records not forwarded"
                    );
                    self.status.send_modify(|s| {
                        s.consecutive_failures = failures;
                        s.last_error_kind = Some(failure.kind);
                        s.last_error = Some(failure.message);
                        *s.errors_by_kind.entry(failure.kind).or_default() += 1;
                    });
                    let delay = self.backoff.delay(failures);
                    if sleep_or_stop(delay, &mut self.stop).await {
                        break;
                    }
                }
            }
        }
        tracing::info!("record forwarder stopped");
    }

    async fn round(&mut self) -> Result<Round, Failure> {
        let source = self.source.clone();
        let max = self.max_batch;
        let mut pending = blocking(move || source.pending(max))
            .await
            .map_err(|e| Failure::new(ErrorKind::Local, format!("outbox: {e}")))?;
        if pending.is_empty() {
            return Ok(Round::Idle);
        }
        pending.sort_by_key(|r| r.seq);
        pending.truncate(self.max_batch);
        let mut records = Vec::with_capacity(pending.len());
        for record in &pending {
            let value = serde_json::from_slice(&record.payload).map_err(|_| {
                Failure::new(
                    ErrorKind::Local,
                    format!(
                        "outbox record seq {} ({}) is not JSON",
                        record.seq, record.record_id
                    ),
                )
            })?;
            records.push(RecordEnvelope {
                record_id: record.record_id,
                seq: record.seq,
                record: value,
            });
        }
        let batch = RecordBatch {
            gate_id: self.config.gate_id.clone(),
            records,
        };
        let outcome = self.central.post_records(&batch).await.map_err(|e| {
            // A 409 that is not out-of-order: a record id central holds with another
            // body. Like a seq conflict, it needs a person.
            let kind = match &e {
                LinkError::Http { status: 409, .. } => ErrorKind::Conflict,
                _ => e.kind(),
            };
            Failure::new(kind, e.to_string())
        })?;
        match outcome {
            PostOutcome::Acknowledged(ack) => {
                let acknowledged = self.acknowledge(&pending, &ack.acknowledged).await?;
                if acknowledged == 0 {
                    return Err(Failure::new(
                        ErrorKind::Protocol,
                        format!(
                            "central acknowledged none of the {} records sent",
                            pending.len()
                        ),
                    ));
                }
                Ok(Round::Forwarded)
            }
            PostOutcome::OutOfOrder(refusal) => {
                self.acknowledge(&pending, &refusal.acknowledged).await?;
                let Some(record) = pending.iter().find(|r| r.record_id == refusal.record_id) else {
                    return Err(Failure::new(
                        ErrorKind::Protocol,
                        format!(
                            "central refused record {} as out of order, which was not sent",
                            refusal.record_id
                        ),
                    ));
                };
                let conflict = SeqConflict {
                    record_id: record.record_id,
                    seq: record.seq,
                    central_last_seq: refusal.last_seq,
                    since: (self.clock)(),
                };
                let mut new = false;
                self.status.send_modify(|s| match &s.conflict {
                    Some(known) if known.record_id == conflict.record_id => {}
                    _ => {
                        s.conflict = Some(conflict);
                        new = true;
                    }
                });
                if new {
                    tracing::error!(
                        record_id = %conflict.record_id,
                        seq = conflict.seq,
                        central_last_seq = conflict.central_last_seq,
                        "central refuses a record's seq as out of order"
                    );
                    self.emit(&LinkEvent::RecordConflict {
                        record_id: conflict.record_id,
                        seq: conflict.seq,
                        central_last_seq: conflict.central_last_seq,
                    });
                }
                Err(Failure::new(
                    ErrorKind::Conflict,
                    format!(
                        "record {} seq {} refused as out of order (central holds seq up to {})",
                        conflict.record_id, conflict.seq, conflict.central_last_seq
                    ),
                ))
            }
        }
    }

    /// Removes from the outbox the records of `sent` that central acknowledged (ids it
    /// names that were not sent are ignored); returns how many.
    async fn acknowledge(
        &mut self,
        sent: &[PendingRecord],
        acknowledged: &[Uuid],
    ) -> Result<usize, Failure> {
        let named: HashSet<Uuid> = acknowledged.iter().copied().collect();
        let acked: Vec<&PendingRecord> = sent
            .iter()
            .filter(|r| named.contains(&r.record_id))
            .collect();
        if acked.is_empty() {
            return Ok(0);
        }
        let ids: Vec<Uuid> = acked.iter().map(|r| r.record_id).collect();
        let source = self.source.clone();
        blocking(move || source.acknowledge(&ids))
            .await
            .map_err(|e| Failure::new(ErrorKind::Local, format!("outbox acknowledge: {e}")))?;
        let count = acked.len();
        let first_seq = acked.iter().map(|r| r.seq).min().unwrap_or_default();
        let last_seq = acked.iter().map(|r| r.seq).max().unwrap_or_default();
        let now = (self.clock)();
        self.failures = 0;
        self.status.send_modify(|s| {
            s.last_success = Some(now);
            s.consecutive_failures = 0;
            s.forwarded_total += count as u64;
            s.batches_total += 1;
            s.last_forwarded_seq = Some(s.last_forwarded_seq.unwrap_or(0).max(last_seq));
            if s.conflict.is_some_and(|c| c.seq <= last_seq) {
                s.conflict = None;
            }
        });
        tracing::info!(count, first_seq, last_seq, "records forwarded");
        self.emit(&LinkEvent::RecordsForwarded {
            count,
            first_seq,
            last_seq,
        });
        Ok(count)
    }

    fn emit(&self, event: &LinkEvent) {
        if let Some(hook) = &self.hook {
            hook(event);
        }
    }
}
