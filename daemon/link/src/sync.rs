//! Pulls central's registry changes and revocations into the gate's registry.
//!
//! Two loops, one per feed, each with its own interval. A pass asks for the pages after
//! the stored cursor until a page says nothing `more` waits (pages with `more` are asked
//! for at once), applying each page atomically with its cursor through a
//! [`RegistryTarget`] (implemented for torii-core's [`RegistryStore`]). A failed pass is
//! retried with backoff (never later than the feed's interval); a refused page leaves
//! the cursor where it was.
//!
//! # Staleness
//!
//! A feed's *last sync* is when a pass last caught it up (the last page had no `more`);
//! it is stored with the cursor, so it survives restarts. The registry's staleness is the
//! time since the **older** of the two feeds' last syncs: the gate can only vouch for a
//! registration as far as both the registrations and the revocations are current. A feed
//! that has **never** caught up (a new gate, or a registry only imported from a file)
//! makes the registry stale without limit: fail closed. A gate meant to run on an
//! imported registry alone runs without the link (and so without this check).
//! [`SyncStatus::is_stale`] is what the daemon takes TTP lanes out of service on.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use torii_core::registry::{
    AppliedChanges, AppliedRevocations, PageBounds, RegistryError, RegistryStore, SyncChange,
    SyncRevocation, SyncState,
};

use crate::backoff::{Backoff, BackoffConfig};
use crate::client::{Central, ErrorKind, LinkError};
use crate::protocol::{MAX_PAGE, RegistryChange, RegistryPage, RevocationPage};
use crate::{Clock, EventHook, LinkEvent, sleep_or_stop, system_clock};

/// One of the two feeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Feed {
    Registry,
    Revocations,
}

impl fmt::Display for Feed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Feed::Registry => "registry",
            Feed::Revocations => "revocations",
        })
    }
}

/// Why the target did not apply a page.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// The page's content was refused (a garbage entry, a cursor out of order): nothing
    /// was applied. Counted as [`ErrorKind::Protocol`].
    #[error("{0}")]
    Refused(String),
    /// The store failed. Counted as [`ErrorKind::Local`].
    #[error("registry store: {0}")]
    Store(String),
}

impl TargetError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            TargetError::Refused(_) => ErrorKind::Protocol,
            TargetError::Store(_) => ErrorKind::Local,
        }
    }
}

/// Where synced pages go. Blocking calls: the sync makes them on tokio's blocking pool.
pub trait RegistryTarget: Send + Sync + 'static {
    /// The stored cursors and last syncs.
    fn sync_state(&self) -> Result<SyncState, TargetError>;
    /// Applies a registry page and stores `page.cursor` (and `caught_up_at` as the last
    /// sync, if given) in one transaction; all or nothing. `after` is the cursor the page
    /// was asked with.
    fn apply_changes(
        &self,
        after: u64,
        page: &RegistryPage,
        caught_up_at: Option<SystemTime>,
    ) -> Result<AppliedChanges, TargetError>;
    /// The same for a revocation page.
    fn apply_revocations(
        &self,
        after: u64,
        page: &RevocationPage,
        caught_up_at: Option<SystemTime>,
    ) -> Result<AppliedRevocations, TargetError>;
}

fn target_error(error: RegistryError) -> TargetError {
    if error.is_refusal() {
        TargetError::Refused(error.to_string())
    } else {
        TargetError::Store(error.to_string())
    }
}

impl RegistryTarget for RegistryStore {
    fn sync_state(&self) -> Result<SyncState, TargetError> {
        RegistryStore::sync_state(self).map_err(target_error)
    }

    fn apply_changes(
        &self,
        after: u64,
        page: &RegistryPage,
        caught_up_at: Option<SystemTime>,
    ) -> Result<AppliedChanges, TargetError> {
        let changes: Vec<SyncChange<'_>> = page
            .changes
            .iter()
            .map(|change| match change {
                RegistryChange::Upsert { seq, traveler } => SyncChange::Upsert {
                    seq: *seq,
                    entry: traveler,
                },
                RegistryChange::Erase {
                    seq,
                    passport_number,
                    nationality,
                } => SyncChange::Erase {
                    seq: *seq,
                    passport_number,
                    nationality,
                },
            })
            .collect();
        RegistryStore::apply_changes(
            self,
            PageBounds {
                after,
                cursor: page.cursor,
                caught_up_at,
            },
            &changes,
        )
        .map_err(target_error)
    }

    fn apply_revocations(
        &self,
        after: u64,
        page: &RevocationPage,
        caught_up_at: Option<SystemTime>,
    ) -> Result<AppliedRevocations, TargetError> {
        let revocations: Vec<SyncRevocation<'_>> = page
            .revocations
            .iter()
            .map(|r| SyncRevocation {
                seq: r.seq,
                passport_number: &r.passport_number,
                nationality: &r.nationality,
                status: &r.status,
            })
            .collect();
        RegistryStore::apply_revocations(
            self,
            PageBounds {
                after,
                cursor: page.cursor,
                caught_up_at,
            },
            &revocations,
        )
        .map_err(target_error)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncConfig {
    /// Between passes of the registry feed.
    pub registry_interval: Duration,
    /// Between passes of the revocation feed (the one that keeps revoked people out).
    pub revocation_interval: Duration,
    /// Entries asked for per page (1..=[`MAX_PAGE`]; clamped).
    pub page_limit: usize,
    /// After a failed pass; the retry never waits longer than the feed's interval.
    pub backoff: BackoffConfig,
    /// Seeds the backoff's jitter (tests); `None`: from the OS.
    pub rng_seed: Option<u64>,
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            registry_interval: Duration::from_secs(300),
            revocation_interval: Duration::from_secs(60),
            page_limit: 500,
            backoff: BackoffConfig {
                base: Duration::from_secs(2),
                max: Duration::from_secs(60),
            },
            rng_seed: None,
        }
    }
}

/// One feed's state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FeedStatus {
    /// When a pass last caught the feed up (stored, so it survives restarts).
    pub last_sync: Option<SystemTime>,
    /// The stored cursor.
    pub cursor: u64,
    /// Failed passes since the last successful one.
    pub consecutive_failures: u32,
    pub last_error_kind: Option<ErrorKind>,
    /// The last failure's message (no personal data).
    pub last_error: Option<String>,
    /// Pages applied since start.
    pub pages_total: u64,
    pub errors_by_kind: BTreeMap<ErrorKind, u64>,
}

/// Both feeds, for metrics, alarms and the fail-closed staleness check.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncStatus {
    pub registry: FeedStatus,
    pub revocations: FeedStatus,
}

impl SyncStatus {
    pub fn feed(&self, feed: Feed) -> &FeedStatus {
        match feed {
            Feed::Registry => &self.registry,
            Feed::Revocations => &self.revocations,
        }
    }

    fn feed_mut(&mut self, feed: Feed) -> &mut FeedStatus {
        match feed {
            Feed::Registry => &mut self.registry,
            Feed::Revocations => &mut self.revocations,
        }
    }

    /// The older of the two feeds' last syncs; `None` while either has never caught up.
    pub fn last_sync(&self) -> Option<SystemTime> {
        Some(self.registry.last_sync?.min(self.revocations.last_sync?))
    }

    /// How long since [`SyncStatus::last_sync`] (zero if the clock is behind it); `None`:
    /// a feed has never caught up, the registry is stale without limit.
    pub fn staleness(&self, now: SystemTime) -> Option<Duration> {
        self.last_sync()
            .map(|last| now.duration_since(last).unwrap_or(Duration::ZERO))
    }

    /// Whether the registry is too stale to use TTP lanes on: staleness beyond `max`,
    /// or never synced.
    pub fn is_stale(&self, now: SystemTime, max: Duration) -> bool {
        self.staleness(now).is_none_or(|staleness| staleness > max)
    }

    /// The larger of the two feeds' consecutive failures.
    pub fn consecutive_failures(&self) -> u32 {
        self.registry
            .consecutive_failures
            .max(self.revocations.consecutive_failures)
    }
}

/// Set up, then [`Syncer::spawn`].
pub struct Syncer<T, C> {
    config: SyncConfig,
    target: Arc<T>,
    central: Arc<C>,
    hook: Option<EventHook>,
    clock: Clock,
}

impl<T: RegistryTarget, C: Central> Syncer<T, C> {
    pub fn new(config: SyncConfig, target: Arc<T>, central: Arc<C>) -> Self {
        Syncer {
            config,
            target,
            central,
            hook: None,
            clock: system_clock(),
        }
    }

    /// Where [`LinkEvent::RegistryUpdated`], [`LinkEvent::RevocationsApplied`] and
    /// [`LinkEvent::SyncRefused`] go.
    pub fn with_hook(mut self, hook: EventHook) -> Self {
        self.hook = Some(hook);
        self
    }

    /// The clock a caught-up feed's last sync is stamped with.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Starts both loops in the current tokio runtime. The status starts from the stored
    /// state (read here, once, blocking briefly).
    pub fn spawn(self) -> SyncHandle {
        let mut initial = SyncStatus::default();
        match self.target.sync_state() {
            Ok(state) => {
                initial.registry.cursor = state.registry_cursor;
                initial.registry.last_sync = state.last_registry_sync;
                initial.revocations.cursor = state.revocation_cursor;
                initial.revocations.last_sync = state.last_revocation_sync;
            }
            Err(error) => tracing::warn!(%error, "registry sync state not readable"),
        }
        let (status_tx, status_rx) = watch::channel(initial);
        let status_tx = Arc::new(status_tx);
        let (stop_tx, stop_rx) = watch::channel(false);
        let page_limit = self.config.page_limit.clamp(1, MAX_PAGE);
        let mut now = Vec::new();
        let mut tasks = Vec::new();
        for (index, (feed, interval)) in [
            (Feed::Registry, self.config.registry_interval),
            (Feed::Revocations, self.config.revocation_interval),
        ]
        .into_iter()
        .enumerate()
        {
            let notify = Arc::new(Notify::new());
            now.push(notify.clone());
            let seed = self
                .config
                .rng_seed
                .map(|seed| seed.wrapping_add(index as u64));
            let task = FeedTask {
                feed,
                interval,
                page_limit,
                target: self.target.clone(),
                central: self.central.clone(),
                hook: self.hook.clone(),
                clock: self.clock.clone(),
                status: status_tx.clone(),
                stop: stop_rx.clone(),
                now: notify,
                backoff: Backoff::new(self.config.backoff, seed),
                reported_refusal: None,
            };
            tasks.push(tokio::spawn(task.run()));
        }
        SyncHandle {
            status: status_rx,
            stop: stop_tx,
            now,
            tasks,
        }
    }
}

/// The running sync. Dropping it stops the sync too.
pub struct SyncHandle {
    status: watch::Receiver<SyncStatus>,
    stop: watch::Sender<bool>,
    now: Vec<Arc<Notify>>,
    tasks: Vec<JoinHandle<()>>,
}

impl fmt::Debug for SyncHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncHandle")
            .field("status", &*self.status.borrow())
            .finish_non_exhaustive()
    }
}

impl SyncHandle {
    pub fn status(&self) -> watch::Receiver<SyncStatus> {
        self.status.clone()
    }

    /// Starts a pass of both feeds now rather than at their intervals (a pass waiting
    /// out a backoff is not hurried).
    pub fn sync_now(&self) {
        for notify in &self.now {
            notify.notify_one();
        }
    }

    /// Stops both loops (a page under way is finished first).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            if let Err(error) = task.await {
                tracing::error!(%error, "registry sync task failed");
            }
        }
    }
}

struct FeedTask<T, C> {
    feed: Feed,
    interval: Duration,
    page_limit: usize,
    target: Arc<T>,
    central: Arc<C>,
    hook: Option<EventHook>,
    clock: Clock,
    status: Arc<watch::Sender<SyncStatus>>,
    stop: watch::Receiver<bool>,
    now: Arc<Notify>,
    backoff: Backoff,
    reported_refusal: Option<String>,
}

struct Failure {
    kind: ErrorKind,
    message: String,
}

impl From<LinkError> for Failure {
    fn from(error: LinkError) -> Self {
        Failure {
            kind: error.kind(),
            message: error.to_string(),
        }
    }
}

impl From<TargetError> for Failure {
    fn from(error: TargetError) -> Self {
        Failure {
            kind: error.kind(),
            message: error.to_string(),
        }
    }
}

/// What a page said, once applied.
struct Applied {
    cursor: u64,
    more: bool,
    /// Stored as the feed's last sync with the page (the last page of a pass).
    caught_up_at: Option<SystemTime>,
    event: Option<LinkEvent>,
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, TargetError> + Send + 'static,
) -> Result<T, TargetError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(TargetError::Store(format!("registry call failed: {e}"))))
}

impl<T: RegistryTarget, C: Central> FeedTask<T, C> {
    async fn run(mut self) {
        let feed = self.feed;
        tracing::info!(%feed, interval_s = self.interval.as_secs(), "registry sync started");
        let mut failures: u32 = 0;
        loop {
            if *self.stop.borrow() {
                break;
            }
            let wait = match self.pass().await {
                Ok(()) => {
                    failures = 0;
                    self.reported_refusal = None;
                    self.status.send_modify(|s| {
                        let status = s.feed_mut(feed);
                        status.consecutive_failures = 0;
                    });
                    self.interval
                }
                Err(failure) => {
                    failures = failures.saturating_add(1);
                    tracing::warn!(
                        %feed,
                        kind = %failure.kind,
                        error = %failure.message,
                        consecutive_failures = failures,
                        "registry sync failed"
                    );
                    if failure.kind == ErrorKind::Protocol
                        && self.reported_refusal.as_deref() != Some(failure.message.as_str())
                    {
                        self.reported_refusal = Some(failure.message.clone());
                        self.emit(LinkEvent::SyncRefused {
                            feed,
                            error: failure.message.clone(),
                        });
                    }
                    self.status.send_modify(|s| {
                        let status = s.feed_mut(feed);
                        status.consecutive_failures = failures;
                        status.last_error_kind = Some(failure.kind);
                        status.last_error = Some(failure.message);
                        *status.errors_by_kind.entry(failure.kind).or_default() += 1;
                    });
                    self.backoff.delay(failures).min(self.interval)
                }
            };
            let stop = if failures == 0 {
                tokio::select! {
                    _ = self.now.notified() => false,
                    stop = sleep_or_stop(wait, &mut self.stop) => stop,
                }
            } else {
                sleep_or_stop(wait, &mut self.stop).await
            };
            if stop {
                break;
            }
        }
        tracing::info!(%feed, "registry sync stopped");
    }

    /// Pages until caught up.
    async fn pass(&mut self) -> Result<(), Failure> {
        let target = self.target.clone();
        let state = blocking(move || target.sync_state()).await?;
        let mut cursor = match self.feed {
            Feed::Registry => state.registry_cursor,
            Feed::Revocations => state.revocation_cursor,
        };
        loop {
            let applied = self.page(cursor).await?;
            let feed = self.feed;
            self.status.send_modify(|s| {
                let status = s.feed_mut(feed);
                status.cursor = applied.cursor;
                status.pages_total += 1;
                if let Some(at) = applied.caught_up_at {
                    status.last_sync = Some(at);
                }
            });
            if let Some(event) = applied.event {
                self.emit(event);
            }
            if !applied.more {
                return Ok(());
            }
            if *self.stop.borrow() {
                // Stopping between pages: the cursor is stored, the next start goes on.
                return Ok(());
            }
            cursor = applied.cursor;
        }
    }

    /// Fetches and applies the page after `after`. The caught-up time stored with the
    /// last page is taken when central's answer came.
    async fn page(&mut self, after: u64) -> Result<Applied, Failure> {
        let target = self.target.clone();
        let clock = self.clock.clone();
        let feed = self.feed;
        let no_progress = |cursor: u64, empty: bool, more: bool| {
            (more && empty && cursor == after).then(|| Failure {
                kind: ErrorKind::Protocol,
                message: format!("{feed} page after {after} says more but brings nothing"),
            })
        };
        match self.feed {
            Feed::Registry => {
                let page = self
                    .central
                    .registry_changes(after, self.page_limit)
                    .await?;
                if let Some(failure) = no_progress(page.cursor, page.changes.is_empty(), page.more)
                {
                    return Err(failure);
                }
                let (cursor, more, count) = (page.cursor, page.more, page.changes.len());
                let caught_up_at = (!more).then(|| clock());
                let applied =
                    blocking(move || target.apply_changes(after, &page, caught_up_at)).await?;
                tracing::info!(
                    upserts = applied.upserts,
                    erasures = applied.erasures,
                    erasures_unknown = applied.erasures_unknown,
                    cursor,
                    "registry page applied"
                );
                Ok(Applied {
                    cursor,
                    more,
                    caught_up_at,
                    event: (count > 0).then_some(LinkEvent::RegistryUpdated {
                        upserts: applied.upserts,
                        revoked_on_arrival: applied.revoked_on_arrival,
                        erasures: applied.erasures,
                        erasures_unknown: applied.erasures_unknown,
                        cursor,
                    }),
                })
            }
            Feed::Revocations => {
                let page = self.central.revocations(after, self.page_limit).await?;
                if let Some(failure) =
                    no_progress(page.cursor, page.revocations.is_empty(), page.more)
                {
                    return Err(failure);
                }
                let (cursor, more, count) = (page.cursor, page.more, page.revocations.len());
                let caught_up_at = (!more).then(|| clock());
                let applied =
                    blocking(move || target.apply_revocations(after, &page, caught_up_at)).await?;
                tracing::info!(
                    applied = applied.applied,
                    unknown = applied.unknown,
                    cursor,
                    "revocation page applied"
                );
                Ok(Applied {
                    cursor,
                    more,
                    caught_up_at,
                    event: (count > 0).then_some(LinkEvent::RevocationsApplied {
                        applied: applied.applied,
                        unknown: applied.unknown,
                        cursor,
                    }),
                })
            }
        }
    }

    fn emit(&self, event: LinkEvent) {
        if let Some(hook) = &self.hook {
            hook(&event);
        }
    }
}
