//! Figures of the central link (outbox, forwarder, registry sync) for the APIs and
//! metrics, gathered on demand from whatever the daemon runs.

use std::sync::Arc;

/// A snapshot; cheap enough to take on every metrics scrape.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LinkStats {
    /// Records committed but not yet acknowledged by central.
    pub outbox_depth: u64,
    pub outbox_capacity: u64,
    /// Age of the oldest unacknowledged record, seconds (0 when empty).
    pub outbox_oldest_age_seconds: f64,
    /// Outbox at or above its alarm level.
    pub outbox_warning: bool,
    pub records_committed_total: u64,
    pub records_forwarded_total: u64,
    /// Forwarder failures by kind (`connect`, `tls`, `timeout`, `http`, `protocol`).
    pub forwarder_errors: Vec<(String, u64)>,
    /// Seconds since the registry was last synchronised with central; `None` before the
    /// first successful sync.
    pub registry_staleness_seconds: Option<f64>,
    /// Beyond the configured limit: TTP lanes are out of service.
    pub registry_stale: bool,
    /// Sync failures by kind.
    pub sync_errors: Vec<(String, u64)>,
    /// Client certificate reloads (rotation without restart).
    pub certificate_reloads: u64,
    /// When the client certificate in use expires (Unix seconds, its notAfter); `None`
    /// without a central link.
    #[serde(default)]
    pub client_certificate_not_after: Option<u64>,
}

/// Produces [`LinkStats`] on demand.
pub type LinkStatsSource = Arc<dyn Fn() -> LinkStats + Send + Sync>;
