//! The gate's link to central immigration.
//!
//! - [`protocol`]: the JSON bodies exchanged with central (shared with the central
//!   simulator, so both sides are checked against one definition).
//! - [`tls`]: the mutual-TLS client configuration, reloaded when its files change.
//! - [`client`]: the HTTPS client ([`CentralClient`]) and its error kinds.
//! - [`forwarder`]: forwards the record outbox to `POST /v1/records`, in order.
//! - [`sync`]: pulls the registry changes and revocations into the registry store, and
//!   says how stale the registry is.
//!
//! [`Link::start`] puts them together for the daemon. Nothing here logs or reports a
//! name, a passport or card number, or a biometric: counts, seqs and record ids only.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use uuid::Uuid;

pub mod backoff;
pub mod client;
pub mod forwarder;
pub mod protocol;
pub mod sync;
pub mod tls;

pub use backoff::{Backoff, BackoffConfig};
pub use client::{
    Central, CentralClient, ClientOptions, Connector, ErrorKind, LinkError, PostOutcome,
    TcpConnector, Transport,
};
pub use forwarder::{
    Forwarder, ForwarderConfig, ForwarderHandle, ForwarderStatus, ForwarderWaker, PendingRecord,
    RecordSource, SeqConflict,
};
pub use sync::{
    Feed, FeedStatus, RegistryTarget, SyncConfig, SyncHandle, SyncStatus, Syncer, TargetError,
};
pub use tls::{ClientTls, TlsError, TlsFiles};

/// Something the daemon's audit trail records. [`fmt::Display`] gives the audit line
/// (`records-forwarded: 3 records, seq 17..19`); [`LinkEvent::name`] its event name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkEvent {
    /// The TLS files changed and the new ones are in use.
    CertificateReloaded { reloads: u64 },
    /// The TLS files changed but are not usable; the previous ones stay in use.
    CertificateReloadFailed { error: String },
    /// Central acknowledged records (seqs of the acknowledged ones).
    RecordsForwarded {
        count: usize,
        first_seq: u64,
        last_seq: u64,
    },
    /// Central refused a record's seq as out of order (reported once per record).
    RecordConflict {
        record_id: Uuid,
        seq: u64,
        central_last_seq: u64,
    },
    /// A registry page was applied.
    RegistryUpdated {
        upserts: usize,
        /// Upserts whose revocation had arrived first (and now applies).
        revoked_on_arrival: usize,
        erasures: usize,
        /// Erasures of registrations the gate did not hold.
        erasures_unknown: usize,
        cursor: u64,
    },
    /// A revocation page was applied.
    RevocationsApplied {
        applied: usize,
        /// Revocations of registrations the gate does not hold.
        unknown: usize,
        cursor: u64,
    },
    /// A feed's page was refused (nothing of it applied, the cursor stays); reported
    /// once until the feed succeeds again or the reason changes.
    SyncRefused { feed: Feed, error: String },
}

impl LinkEvent {
    pub fn name(&self) -> &'static str {
        match self {
            LinkEvent::CertificateReloaded { .. } => "certificate-reloaded",
            LinkEvent::CertificateReloadFailed { .. } => "certificate-reload-failed",
            LinkEvent::RecordsForwarded { .. } => "records-forwarded",
            LinkEvent::RecordConflict { .. } => "record-seq-conflict",
            LinkEvent::RegistryUpdated { .. } => "registry-updated",
            LinkEvent::RevocationsApplied { .. } => "revocation-applied",
            LinkEvent::SyncRefused { .. } => "sync-refused",
        }
    }
}

impl fmt::Display for LinkEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.name())?;
        match self {
            LinkEvent::CertificateReloaded { reloads } => write!(f, "reload {reloads}"),
            LinkEvent::CertificateReloadFailed { error } => {
                write!(f, "{error}; the previous certificate stays in use")
            }
            LinkEvent::RecordsForwarded {
                count,
                first_seq,
                last_seq,
            } => write!(f, "{count} records, seq {first_seq}..{last_seq}"),
            LinkEvent::RecordConflict {
                record_id,
                seq,
                central_last_seq,
            } => write!(
                f,
                "record {record_id} seq {seq} refused, central holds seq up to {central_last_seq}"
            ),
            LinkEvent::RegistryUpdated {
                upserts,
                revoked_on_arrival,
                erasures,
                erasures_unknown,
                cursor,
            } => {
                write!(f, "{upserts} upserts")?;
                if *revoked_on_arrival > 0 {
                    write!(f, " ({revoked_on_arrival} revoked on arrival)")?;
                }
                write!(f, ", {erasures} erasures")?;
                if *erasures_unknown > 0 {
                    write!(f, " ({erasures_unknown} not held)")?;
                }
                write!(f, ", cursor {cursor}")
            }
            LinkEvent::RevocationsApplied {
                applied,
                unknown,
                cursor,
            } => write!(
                f,
                "{applied} registrations revoked, {unknown} not held, cursor {cursor}"
            ),
            LinkEvent::SyncRefused { feed, error } => write!(f, "{feed} page refused: {error}"),
        }
    }
}

/// Receives [`LinkEvent`]s. Called from the link's tasks: it must not block (hand the
/// event to a channel).
pub type EventHook = Arc<dyn Fn(&LinkEvent) + Send + Sync>;

/// The wall clock the link stamps successes with (tests substitute their own).
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

pub fn system_clock() -> Clock {
    Arc::new(SystemTime::now)
}

/// Everything the daemon configures of the link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkConfig {
    /// Central, its name, timeouts.
    pub client: ClientOptions,
    pub tls: TlsFiles,
    pub forwarder: ForwarderConfig,
    pub sync: SyncConfig,
}

impl LinkConfig {
    /// Defaults for everything but where central is, the TLS files and the gate id.
    pub fn new(url: impl Into<String>, tls: TlsFiles, gate_id: impl Into<String>) -> Self {
        LinkConfig {
            client: ClientOptions::new(url),
            tls,
            forwarder: ForwarderConfig::new(gate_id),
            sync: SyncConfig::default(),
        }
    }
}

/// Why the link did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Url(#[from] client::UrlError),
}

/// The running link: TLS, one client, the forwarder and the sync.
pub struct Link {
    pub tls: Arc<ClientTls>,
    pub client: Arc<CentralClient>,
    pub forwarder: ForwarderHandle,
    pub sync: SyncHandle,
}

impl fmt::Debug for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Link")
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

impl Link {
    /// Loads the TLS files and starts the forwarder and the sync (in the current tokio
    /// runtime).
    pub fn start<S: RecordSource, T: RegistryTarget>(
        config: LinkConfig,
        source: Arc<S>,
        target: Arc<T>,
        hook: Option<EventHook>,
    ) -> Result<Link, StartError> {
        let tls = Arc::new(ClientTls::new(config.tls)?);
        if let Some(hook) = &hook {
            tls.set_hook(hook.clone());
        }
        let client = Arc::new(CentralClient::new(&config.client, tls.clone())?);
        let mut forwarder = Forwarder::new(config.forwarder, source, client.clone());
        let mut syncer = Syncer::new(config.sync, target, client.clone());
        if let Some(hook) = hook {
            forwarder = forwarder.with_hook(hook.clone());
            syncer = syncer.with_hook(hook);
        }
        Ok(Link {
            tls,
            client,
            forwarder: forwarder.spawn(),
            sync: syncer.spawn(),
        })
    }

    /// Stops both loops (an exchange under way is finished first).
    pub async fn stop(self) {
        tokio::join!(self.forwarder.stop(), self.sync.stop());
    }
}

/// Waits `duration`, or less if `stop` turns true (or its sender is dropped). Returns
/// whether to stop.
pub(crate) async fn sleep_or_stop(
    duration: Duration,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) -> bool {
    let stopped = tokio::select! {
        _ = tokio::time::sleep(duration) => false,
        _ = stop.wait_for(|stop| *stop) => true,
    };
    stopped || *stop.borrow()
}
