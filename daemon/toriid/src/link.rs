//! The central link inside the daemon: the outbox the flow engine commits every record
//! to (before the door opens), the forwarder that empties it to central over mutual
//! TLS, the registry and revocation sync, the interlocks they drive (fail closed when
//! the registry is stale or records cannot be stored), and their audit entries.
//!
//! The parts live in their own crates (torii-outbox, torii-link); this module only
//! connects them to the engine, the audit trail and the APIs.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::watch;
use torii_core::flow::{GateInput, Interlock};
use torii_core::record::{Outcome, RecordSink, TransactionRecord};
use torii_core::registry::RegistryStore;
use torii_link::{
    CentralClient, ClientOptions, ClientTls, Forwarder, ForwarderConfig, ForwarderHandle,
    ForwarderStatus, ForwarderWaker, LinkEvent, SyncConfig, SyncHandle, SyncStatus, Syncer,
    TlsFiles,
};
use torii_outbox::{Outbox, OutboxConfig, OutboxError, RecordKey, RecordMeta};
use uuid::Uuid;

use crate::config::Config;
use crate::link_stats::LinkStats;

/// Summaries kept in memory for the transaction list (no personal data).
const RECENT: usize = 200;
/// How often interlock conditions (staleness, outbox level) are looked at.
const MONITOR_INTERVAL: Duration = Duration::from_secs(1);
/// Referral records kept in memory while the outbox's storage refuses them.
const HELD: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("outbox key {path}: {reason}")]
    Key { path: String, reason: String },
    #[error("outbox {path}: {reason}")]
    Outbox { path: String, reason: String },
    #[error("central link: {0}")]
    Central(String),
}

/// Opens the outbox; `None` when no key is configured (the gate then takes no
/// travelers: a record it could not keep safely is not a record). With it, the
/// registry's sealing keys, derived from the same data key (one secret for all personal
/// data at rest).
pub fn open_outbox(
    config: &Config,
) -> Result<Option<(Outbox, torii_core::registry::RegistryKey)>, LinkError> {
    let Some(key_path) = &config.outbox.key_file else {
        return Ok(None);
    };
    let key = RecordKey::from_file(key_path).map_err(|e| LinkError::Key {
        path: key_path.display().to_string(),
        reason: e.to_string(),
    })?;
    if let Some(dir) = config.outbox.database.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let registry_key = torii_core::registry::RegistryKey::derive_from(key.expose_secret());
    let mut outbox_config = OutboxConfig::new(&config.outbox.database, key, config.outbox.capacity);
    outbox_config.warn_fraction = f64::from(config.outbox.warn_percent) / 100.0;
    outbox_config.retention = config.outbox.retention;
    Outbox::open(outbox_config)
        .map(|outbox| Some((outbox, registry_key)))
        .map_err(|e| LinkError::Outbox {
            path: config.outbox.database.display().to_string(),
            reason: e.to_string(),
        })
}

/// A record's summary for the transaction list: no personal data.
pub fn summary_of(record: &TransactionRecord) -> TransactionRecord {
    TransactionRecord {
        identification: None,
        chip: None,
        nationality: None,
        passport_number: None,
        card_number: None,
        ed_card: None,
        printed_line: None,
        face_jpeg: None,
        comparisons: Vec::new(),
        ..record.clone()
    }
}

/// The engine's record sink: the durable outbox. Full records are read back from it
/// (decrypted) while it holds them; the list of recent transactions is kept as
/// summaries without personal data.
///
/// When the storage under the outbox fails (a full disk, an I/O error) the sink says so
/// ([`OutboxSink::storage_failing`]: the monitor closes the lane and audits it), and
/// keeps the referral records it could not store in memory, in order, to store them
/// before anything else once the storage takes writes again — so a full disk costs
/// neither the record of the traveler it turned away nor the gate's order. Admissions
/// are never held: an admission that is not durable was never an admission (the
/// engine refers the traveler and commits the referral under the same id).
pub struct OutboxSink {
    outbox: Outbox,
    waker: Mutex<Option<ForwarderWaker>>,
    recent: Mutex<VecDeque<TransactionRecord>>,
    held: Mutex<VecDeque<TransactionRecord>>,
    /// The last commit failed for another reason than the outbox being full.
    storage_failing: AtomicBool,
    /// Why, for the audit trail (an error text without personal data).
    last_storage_error: Mutex<Option<String>>,
}

/// Why a record could not be stored.
#[derive(Debug, thiserror::Error)]
enum StoreError {
    #[error("record not serializable: {0}")]
    Serialize(#[from] serde_json::Error),
    #[error(transparent)]
    Outbox(#[from] OutboxError),
}

impl OutboxSink {
    pub fn new(outbox: Outbox) -> Self {
        OutboxSink {
            outbox,
            waker: Mutex::new(None),
            recent: Mutex::new(VecDeque::new()),
            held: Mutex::new(VecDeque::new()),
            storage_failing: AtomicBool::new(false),
            last_storage_error: Mutex::new(None),
        }
    }

    /// The storage refused the last write (not a full outbox: a failing disk), with
    /// the error; `None` while writes succeed.
    pub fn storage_failing(&self) -> Option<String> {
        if self.storage_failing.load(Ordering::SeqCst) {
            Some(
                self.last_storage_error
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone()
                    .unwrap_or_default(),
            )
        } else {
            None
        }
    }

    /// Referral records waiting in memory for the storage to take writes again.
    pub fn held(&self) -> usize {
        self.held.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Stores the held records, oldest first, until one fails; true when none is left.
    pub async fn flush_held(&self) -> bool {
        loop {
            let front = self
                .held
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .front()
                .cloned();
            let Some(record) = front else { return true };
            if self.store(&record).await.is_err() {
                return false;
            }
            tracing::info!(record = %record.record_id, "held record stored");
            let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
            if held
                .front()
                .is_some_and(|r| r.record_id == record.record_id)
            {
                held.pop_front();
            }
        }
    }

    fn hold(&self, record: &TransactionRecord) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(same) = held.iter_mut().find(|r| r.record_id == record.record_id) {
            *same = record.clone();
            return;
        }
        if held.len() == HELD
            && let Some(dropped) = held.pop_front()
        {
            tracing::error!(record = %dropped.record_id, "too many records held while the outbox fails: the oldest is lost");
        }
        held.push_back(record.clone());
    }

    /// One durable write, with the bookkeeping of its outcome.
    async fn store(&self, record: &TransactionRecord) -> Result<(), StoreError> {
        let payload = serde_json::to_vec(record)?;
        let created_at = record.finished_at.unix_timestamp_nanos() / 1_000_000;
        let meta = RecordMeta::new(created_at as i64, outcome_label(record.outcome));
        match self.outbox.commit(record.record_id, meta, &payload).await {
            Ok(_) => self.storage_failing.store(false, Ordering::SeqCst),
            Err(error) => {
                if !matches!(error, OutboxError::Full { .. }) {
                    *self
                        .last_storage_error
                        .lock()
                        .unwrap_or_else(|p| p.into_inner()) = Some(error.to_string());
                    self.storage_failing.store(true, Ordering::SeqCst);
                }
                return Err(error.into());
            }
        }
        {
            let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
            if recent.len() == RECENT {
                recent.pop_front();
            }
            recent.push_back(summary_of(record));
        }
        if let Some(waker) = &*self.waker.lock().unwrap_or_else(|p| p.into_inner()) {
            waker.wake();
        }
        Ok(())
    }

    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    fn set_waker(&self, waker: ForwarderWaker) {
        *self.waker.lock().unwrap_or_else(|p| p.into_inner()) = Some(waker);
    }

    /// Recent transactions, newest first, as summaries.
    pub fn recent(&self, limit: usize) -> Vec<TransactionRecord> {
        let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        recent.iter().rev().take(limit).cloned().collect()
    }

    /// The full record, while the outbox still holds it (or memory, while the
    /// storage refuses it).
    pub fn record(&self, id: Uuid) -> Result<Option<TransactionRecord>, String> {
        let held = || {
            self.held
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .find(|r| r.record_id == id)
                .cloned()
        };
        match self.outbox.get(id).map_err(|e| e.to_string())? {
            None => Ok(held()),
            Some(stored) => serde_json::from_slice(&stored.payload)
                .map(Some)
                .map_err(|e| format!("record {id} is not readable: {e}")),
        }
    }
}

fn outcome_label(outcome: Outcome) -> String {
    match outcome {
        Outcome::Admitted => "admitted".to_owned(),
        Outcome::Referred(reason) => format!("referred:{}", reason.code()),
    }
}

impl RecordSink for OutboxSink {
    fn commit<'a>(
        &'a self,
        record: &'a TransactionRecord,
    ) -> torii_core::BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            // Held records go first: the outbox's seq is the gate's order.
            self.flush_held().await;
            match self.store(record).await {
                Ok(()) => Ok(()),
                Err(error) => {
                    if matches!(record.outcome, Outcome::Referred(_))
                        && matches!(error, StoreError::Outbox(_))
                    {
                        self.hold(record);
                    }
                    Err(error.to_string())
                }
            }
        })
    }
}

/// The running link.
pub struct Link {
    forwarder: Mutex<Option<ForwarderHandle>>,
    sync: Mutex<Option<SyncHandle>>,
    tls: Option<Arc<ClientTls>>,
    forwarder_status: Option<watch::Receiver<ForwarderStatus>>,
    sync_status: Option<watch::Receiver<SyncStatus>>,
    outbox: Outbox,
    sink: Arc<OutboxSink>,
    max_staleness: Duration,
    /// When this start imported a registry export (`[registry] import`), if it did, on
    /// the wall clock and on the monotonic clock.
    imported_at: Option<(SystemTime, Instant)>,
    /// The last sync seen (wall clock) and when it happened on the monotonic clock.
    sync_anchor: Mutex<Option<(SystemTime, Instant)>>,
}

/// What the link reports to the audit trail.
fn audit_link_event(core: &crate::command::Core, event: &LinkEvent) {
    use torii_audit::AuditKind;
    let kind = match event {
        LinkEvent::CertificateReloaded { .. } | LinkEvent::CertificateReloadFailed { .. } => {
            AuditKind::CertificateReloaded
        }
        LinkEvent::RecordsForwarded { .. } | LinkEvent::RecordConflict { .. } => {
            AuditKind::RecordsForwarded
        }
        LinkEvent::RegistryUpdated { .. } | LinkEvent::SyncRefused { .. } => {
            AuditKind::RegistryUpdated
        }
        LinkEvent::RevocationsApplied { .. } => AuditKind::RevocationApplied,
    };
    core.audit(kind, "central-link", event.to_string());
}

impl Link {
    /// Starts the forwarder and the sync (when `[central]` is configured) and the
    /// monitor that turns staleness and a full outbox into interlocks.
    pub fn start(
        config: &Config,
        sink: &Arc<OutboxSink>,
        registry: Arc<RegistryStore>,
        core: Arc<crate::command::Core>,
        gate: crate::gate::GateHandle,
    ) -> Result<Arc<Link>, LinkError> {
        let outbox = sink.outbox().clone();
        let hook_core = core.clone();
        let hook: torii_link::EventHook = Arc::new(move |event: &LinkEvent| {
            match event {
                LinkEvent::CertificateReloadFailed { .. } | LinkEvent::SyncRefused { .. } => {
                    tracing::warn!("central link: {event}")
                }
                _ => tracing::info!("central link: {event}"),
            }
            audit_link_event(&hook_core, event);
        });
        let mut link = Link {
            forwarder: Mutex::new(None),
            sync: Mutex::new(None),
            tls: None,
            forwarder_status: None,
            sync_status: None,
            outbox: outbox.clone(),
            sink: sink.clone(),
            max_staleness: config.registry.max_staleness,
            imported_at: config
                .registry
                .import
                .as_ref()
                .map(|_| (SystemTime::now(), Instant::now())),
            sync_anchor: Mutex::new(None),
        };
        if let Some(central) = &config.central {
            let tls = Arc::new(
                ClientTls::new(TlsFiles {
                    ca: central.ca.clone(),
                    client_certificate: central.client_certificate.clone(),
                    client_key: central.client_key.clone(),
                })
                .map_err(|e| LinkError::Central(e.to_string()))?,
            );
            tls.set_hook(hook.clone());
            let mut options = ClientOptions::new(&central.url);
            options.connect_timeout = central.timeout;
            options.request_timeout = central.timeout;
            let client = Arc::new(
                CentralClient::new(&options, tls.clone())
                    .map_err(|e| LinkError::Central(e.to_string()))?,
            );
            let mut forwarder_config = ForwarderConfig::new(&config.gate.id);
            forwarder_config.max_batch = central.batch;
            forwarder_config.backoff.max = central.backoff_max;
            let forwarder =
                Forwarder::new(forwarder_config, Arc::new(outbox.clone()), client.clone())
                    .with_hook(hook.clone())
                    .spawn();
            sink.set_waker(forwarder.waker());
            link.forwarder_status = Some(forwarder.status());
            link.forwarder = Mutex::new(Some(forwarder));

            let sync_config = SyncConfig {
                registry_interval: config.registry.sync_interval,
                revocation_interval: config.registry.revocation_interval,
                ..SyncConfig::default()
            };
            let sync = Syncer::new(sync_config, registry, client)
                .with_hook(hook)
                .spawn();
            link.sync_status = Some(sync.status());
            link.sync = Mutex::new(Some(sync));
            link.tls = Some(tls);
            tracing::info!(central = %central.url, "central link started");
        } else {
            tracing::warn!(
                "no [central] configured: records stay in the outbox and the registry is not refreshed"
            );
        }
        let link = Arc::new(link);
        tokio::spawn(monitor(link.clone(), gate, core));
        Ok(link)
    }

    /// Time since the registry was last synchronised (`None`: never): the larger of
    /// what the wall clock and the monotonic clock say. The wall clock alone can be
    /// stepped back (NTP, an operator), which would hide the age of a registry central
    /// no longer refreshes — for as long as the step. The monotonic clock alone misses
    /// time the machine did not run and cannot span a restart. Fail closed: the
    /// registry is as old as either clock says. A wall clock stepped forward therefore
    /// closes the lane until the next sync catches both feeds up.
    fn staleness(&self, now: SystemTime) -> Option<Duration> {
        let status = self.sync_status.as_ref()?.borrow().clone();
        let last = status.last_sync()?;
        let wall = status.staleness(now)?;
        let mut anchor = self.sync_anchor.lock().unwrap_or_else(|p| p.into_inner());
        let since = match *anchor {
            Some((seen, at)) if seen == last => at,
            _ => {
                // First seen now: it happened `wall` ago (zero if the clock is behind it).
                let at = Instant::now()
                    .checked_sub(wall)
                    .unwrap_or_else(Instant::now);
                *anchor = Some((last, at));
                at
            }
        };
        Some(wall.max(since.elapsed()))
    }

    /// Stale: central is configured and both feeds did not catch up within the limit.
    /// Before the first successful sync the registry is stale at once (fail closed) —
    /// unless an import file was loaded at this start: that export is as fresh as the
    /// daemon's start, and gets the same limit from then.
    fn is_stale(&self, now: SystemTime) -> bool {
        if self.sync_status.is_none() {
            return false;
        }
        match self.staleness(now) {
            Some(age) => age > self.max_staleness,
            None => match self.imported_at {
                Some((at, since)) => {
                    now.duration_since(at)
                        .unwrap_or(Duration::ZERO)
                        .max(since.elapsed())
                        > self.max_staleness
                }
                None => true,
            },
        }
    }

    pub fn stats(&self) -> LinkStats {
        let outbox = self.outbox.stats();
        let now_ms = torii_outbox::now_unix_ms();
        let mut stats = LinkStats {
            outbox_depth: outbox.depth,
            outbox_capacity: outbox.capacity,
            outbox_oldest_age_seconds: outbox
                .oldest_pending_created_at
                .map_or(0.0, |at| (now_ms - at).max(0) as f64 / 1000.0),
            outbox_warning: outbox.level != torii_outbox::Level::Normal,
            records_committed_total: outbox.committed_total,
            ..LinkStats::default()
        };
        if let Some(status) = &self.forwarder_status {
            let status = status.borrow();
            stats.records_forwarded_total = status.forwarded_total;
            stats.forwarder_errors = status
                .errors_by_kind
                .iter()
                .map(|(kind, n)| (kind.as_str().to_owned(), *n))
                .collect();
        }
        if let Some(status) = &self.sync_status {
            let status = status.borrow().clone();
            let now = SystemTime::now();
            stats.registry_staleness_seconds = self.staleness(now).map(|d| d.as_secs_f64());
            stats.registry_stale = self.is_stale(now);
            let mut errors = std::collections::BTreeMap::new();
            for feed in [&status.registry, &status.revocations] {
                for (kind, n) in &feed.errors_by_kind {
                    *errors.entry(kind.as_str().to_owned()).or_insert(0) += n;
                }
            }
            stats.sync_errors = errors.into_iter().collect();
        }
        if let Some(tls) = &self.tls {
            stats.certificate_reloads = tls.reloads();
            stats.client_certificate_not_after = tls
                .client_certificate_not_after()
                .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
                .map(|d| d.as_secs());
        }
        stats
    }

    /// Stops the forwarder and the sync (records stay in the outbox).
    pub async fn stop(&self) {
        let forwarder = self
            .forwarder
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(forwarder) = forwarder {
            forwarder.stop().await;
        }
        let sync = self.sync.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(sync) = sync {
            sync.stop().await;
        }
    }
}

/// Turns staleness and the outbox level into interlocks; audits outbox alarms.
async fn monitor(link: Arc<Link>, gate: crate::gate::GateHandle, core: Arc<crate::command::Core>) {
    let mut stale = false;
    let mut full = false;
    let mut warning = false;
    let mut storage_failing = false;
    let mut tls_failures = 0u64;
    let mut ticker = tokio::time::interval(MONITOR_INTERVAL);
    loop {
        ticker.tick().await;
        let now = SystemTime::now();
        let now_stale = link.is_stale(now);
        if now_stale != stale {
            stale = now_stale;
            if stale {
                tracing::warn!(
                    limit_s = link.max_staleness.as_secs(),
                    "registry stale: the lane goes out of service until central is reached"
                );
            } else {
                tracing::info!("registry synchronised again");
            }
            gate.send(GateInput::Interlock {
                interlock: Interlock::RegistryStale,
                active: stale,
            });
        }
        audit_tls_refusals(&link, &core, &mut tls_failures);
        // A failing storage is retried through the records it still holds; the first
        // that is stored again clears the failure.
        if link.sink.held() > 0 {
            link.sink.flush_held().await;
        }
        let failing = link.sink.storage_failing();
        if failing.is_some() != storage_failing {
            storage_failing = failing.is_some();
            let detail = match failing {
                Some(error) => format!(
                    "outbox storage failing: records cannot be stored, the lane is closed ({} referral records held): {error}",
                    link.sink.held()
                ),
                None => "outbox storage writable again: held records stored".to_owned(),
            };
            tracing::warn!("{detail}");
            core.audit(torii_audit::AuditKind::OutboxAlarm, "system", detail);
        }
        let stats = link.outbox.stats();
        let now_full = stats.level == torii_outbox::Level::Full || storage_failing;
        let now_warning = stats.level != torii_outbox::Level::Normal;
        if now_warning != warning {
            warning = now_warning;
            let detail = format!(
                "outbox {} ({} of {} records unacknowledged)",
                if warning {
                    "alarm raised"
                } else {
                    "alarm cleared"
                },
                stats.depth,
                stats.capacity
            );
            tracing::warn!("{detail}");
            core.audit(torii_audit::AuditKind::OutboxAlarm, "system", detail);
        }
        if now_full != full {
            full = now_full;
            gate.send(GateInput::Interlock {
                interlock: Interlock::RecordStoreUnavailable,
                active: full,
            });
        }
    }
}

/// Audits TLS handshake failures with central (a wrong server certificate, or our
/// client certificate refused): once when they begin, counted while they go on.
fn audit_tls_refusals(link: &Link, core: &crate::command::Core, seen: &mut u64) {
    use torii_link::ErrorKind;
    let mut total = 0;
    let mut last_error = None;
    if let Some(status) = &link.forwarder_status {
        let status = status.borrow();
        total += status
            .errors_by_kind
            .get(&ErrorKind::Tls)
            .copied()
            .unwrap_or(0);
        if status.last_error_kind == Some(ErrorKind::Tls) {
            last_error = status.last_error.clone();
        }
    }
    if let Some(status) = &link.sync_status {
        let status = status.borrow();
        for feed in [&status.registry, &status.revocations] {
            total += feed
                .errors_by_kind
                .get(&ErrorKind::Tls)
                .copied()
                .unwrap_or(0);
            if last_error.is_none() && feed.last_error_kind == Some(ErrorKind::Tls) {
                last_error = feed.last_error.clone();
            }
        }
    }
    if total > *seen {
        let detail = format!(
            "TLS handshake with central failed ({} so far): {}",
            total,
            last_error.unwrap_or_else(|| "no detail".into())
        );
        tracing::warn!("{detail}");
        core.audit(
            torii_audit::AuditKind::CentralRefused,
            "central-link",
            detail,
        );
        *seen = total;
    }
}
