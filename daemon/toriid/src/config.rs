//! The daemon's configuration: `/etc/torii/toriid.toml`, then the drop-ins
//! `/etc/torii/toriid.d/*.toml` (sorted by name, later wins), then environment
//! overrides `TORII__SECTION__KEY`.
//!
//! Loading is strict: unknown keys, wrong types and bad values are all errors, and
//! every error names the file (or environment variable) and the key, because the
//! person reading it is an installer at a gate with a vendor's drop-in in front of them.

mod schema;
mod validate;

pub use schema::{SchemaKey, keys as schema_keys};

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use torii_plugin_host::Isolation;
use torii_sdk::model::DeviceClass;

pub const DEFAULT_CONFIG_FILE: &str = "/etc/torii/toriid.toml";
/// Environment overrides look like `TORII__HTTP__LISTEN=127.0.0.1:9000`.
pub const ENV_PREFIX: &str = "TORII__";
pub const ENV_SEPARATOR: &str = "__";

/// Where the configuration is read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigPaths {
    pub file: PathBuf,
    pub drop_in_dir: PathBuf,
}

impl ConfigPaths {
    /// `file` plus its drop-in directory: `toriid.toml` → `toriid.d/` beside it, so
    /// `--config` alone never mixes in the system's drop-ins.
    pub fn for_file(file: impl Into<PathBuf>) -> Self {
        let file = file.into();
        let stem = file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let drop_in_dir = file.with_file_name(format!("{stem}.d"));
        ConfigPaths { file, drop_in_dir }
    }
}

impl Default for ConfigPaths {
    fn default() -> Self {
        ConfigPaths::for_file(DEFAULT_CONFIG_FILE)
    }
}

/// One problem found in the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issue {
    /// The file path, or `environment TORII__...`.
    pub origin: String,
    /// The dotted key, e.g. `devices.camera.isolation`; empty for file-level problems.
    pub key: String,
    pub message: String,
}

impl Issue {
    pub(crate) fn new(origin: &str, key: &str, message: impl Into<String>) -> Self {
        Issue {
            origin: origin.to_owned(),
            key: key.to_owned(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.origin, self.message)
        } else {
            write!(f, "{}: {}: {}", self.origin, self.key, self.message)
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Every problem found, not just the first: fixing a config one error per restart
    /// is slow at a gate.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Issue>),
}

impl ConfigError {
    pub fn issues(&self) -> &[Issue] {
        match self {
            ConfigError::Invalid(issues) => issues,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Lane {
    Entry,
    Exit,
}

impl Lane {
    pub const fn name(self) -> &'static str {
        match self {
            Lane::Entry => "entry",
            Lane::Exit => "exit",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// journald when started by systemd (`JOURNAL_STREAM` set), human otherwise.
    Auto,
    Journald,
    Human,
    Json,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GateConfig {
    pub id: String,
    pub lane: Lane,
    /// The port (airport) printed on the card's back, e.g. "NRT".
    pub port: String,
}

/// The registered-user registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistryConfig {
    /// The SQLite database (default `<state_dir>/registry.db`).
    pub database: PathBuf,
    /// A registry export (central's JSON) upserted at start.
    pub import: Option<PathBuf>,
    /// The card issuing authority's public key (PEM); without it the gate cannot verify
    /// cards and stays out of service.
    pub card_issuer_key: Option<PathBuf>,
    /// How often registry changes are pulled from central.
    pub sync_interval: Duration,
    /// How often revocations are pulled (more often: a revocation must bite promptly).
    pub revocation_interval: Duration,
    /// Beyond this since the last successful sync, TTP lanes go out of service.
    pub max_staleness: Duration,
}

/// Central immigration (`[central]`); without it records stay in the outbox and the
/// registry is never refreshed (the gate goes out of service once it is stale).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CentralConfig {
    /// `https://host:port` (no path).
    pub url: String,
    /// The CA central's server certificate must chain to.
    pub ca: PathBuf,
    /// The gate's client certificate and key (PEM), reloaded when they change.
    pub client_certificate: PathBuf,
    pub client_key: PathBuf,
    /// Records per batch.
    pub batch: usize,
    /// Connect and request timeout.
    pub timeout: Duration,
    /// Longest wait between retries (exponential backoff with jitter up to this).
    pub backoff_max: Duration,
}

/// The durable record outbox (`[outbox]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxConfig {
    /// SQLite database (default `<state_dir>/outbox.db`).
    pub database: PathBuf,
    /// 32-byte key encrypting personal data at rest (mode 0600); without it the gate
    /// takes no travelers.
    pub key_file: Option<PathBuf>,
    /// Unacknowledged records held at most; at capacity travelers are referred.
    pub capacity: u64,
    /// Alarm level, percent of capacity.
    pub warn_percent: u8,
    /// How long acknowledged records stay before they are purged.
    pub retention: Duration,
}

/// The audit trail (`[audit]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditConfig {
    /// Default `<state_dir>/audit.log`.
    pub path: PathBuf,
    /// HMAC key chaining the entries (mode 0600); strongly recommended.
    pub key_file: Option<PathBuf>,
}

/// Passport chip inspection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocumentsConfig {
    /// Directory of CSCA certificates (DER or PEM) trusted for passive authentication.
    pub trust_store: Option<PathBuf>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathsConfig {
    pub state_dir: PathBuf,
    pub runtime_dir: PathBuf,
    /// Resolved: the configured executable, or `torii-driver-host` next to toriid.
    pub driver_host: PathBuf,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpConfig {
    /// Loopback TCP listener; callers without a token are viewers. `None` when disabled.
    pub listen: Option<SocketAddr>,
    /// Unix socket (mode 0660); callers without a token are identified by their peer
    /// credentials (root and toriid's own user: operators). `None` when disabled.
    pub socket: Option<PathBuf>,
    /// The API tokens file (`[[token]] name, role, sha256`), not accessible to others.
    pub tokens_file: Option<PathBuf>,
    /// Its entries, read and checked with the configuration (hashes only).
    pub tokens: Vec<crate::api::auth::TokenEntry>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogConfig {
    pub format: LogFormat,
    /// An `EnvFilter` directive (`info`, `toriid=debug,info`, ...).
    pub level: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceConfig {
    pub id: String,
    pub class: DeviceClass,
    pub driver: PathBuf,
    pub isolation: Isolation,
    pub call_timeout: Duration,
    pub enabled: bool,
    /// When the device is opened: at start, or while a USB device its driver's id table
    /// lists is plugged in.
    pub bind: Bind,
    /// The `[devices.<id>.config]` table as JSON, handed to the driver's `open`.
    pub config_json: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bind {
    /// Opened at start (serial lines, network devices, simulators).
    Always,
    /// Opened when a matching USB device appears, closed when it is unplugged.
    Usb,
}

/// Fingerprint verification.
#[derive(Clone, Debug, PartialEq)]
pub struct MatcherSettings {
    /// A matcher plugin (`.so`); `None` = the built-in matcher.
    pub plugin: Option<PathBuf>,
    /// The `[matcher.config]` table as JSON, handed to the plugin.
    pub config_json: String,
    /// Two fingers: both must pass, or their scores are fused.
    pub mode: torii_matcher::policy::Mode,
    /// The false match rate the threshold is set for (e.g. 0.0005, 0.0001).
    pub target_fmr: f64,
}

/// USB hotplug.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsbConfig {
    /// How often the bus is listed.
    pub poll: Duration,
    /// A JSON file standing in for the bus (labs and tests without USB hardware).
    pub fake_bus: Option<PathBuf>,
}

/// The D-Bus adapter (`[dbus]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DbusConfig {
    /// Serve the gate on the bus (the gate does not depend on it: an unreachable bus
    /// is retried in the background).
    pub enabled: bool,
    pub bus: DbusBus,
    /// The well-known name (default `org.torii.Gate1`).
    pub name: String,
    /// Members of this group (besides root and toriid's own user) are operators on the
    /// bus; everyone else is a viewer. Empty: no group.
    pub operators_group: String,
}

/// Which message bus the D-Bus adapter connects to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DbusBus {
    System,
    Session,
    /// A D-Bus address such as `unix:path=/run/dbus/system_bus_socket`.
    Address(String),
}

/// The validated configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub gate: GateConfig,
    pub paths: PathsConfig,
    pub http: HttpConfig,
    pub log: LogConfig,
    pub registry: RegistryConfig,
    pub central: Option<CentralConfig>,
    pub outbox: OutboxConfig,
    pub audit: AuditConfig,
    /// Timeouts, attempts and the period-of-stay table of the sequences.
    pub flow: torii_core::flow::FlowConfig,
    pub documents: DocumentsConfig,
    pub usb: UsbConfig,
    pub matcher: MatcherSettings,
    pub dbus: DbusConfig,
    /// Sorted by id.
    pub devices: Vec<DeviceConfig>,
    /// The files read, in merge order (for `check-config` and the start-up log).
    pub sources: Vec<PathBuf>,
}

impl Config {
    /// Reads, merges and validates the configuration. `env` is the process
    /// environment (passed in so tests do not depend on, or change, the real one).
    pub fn load(
        paths: &ConfigPaths,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        validate::load(paths, env)
    }

    /// A short human summary, printed by `toriid check-config`.
    pub fn summary(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let files: Vec<_> = self
            .sources
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        let _ = writeln!(out, "configuration OK ({})", files.join(", "));
        let _ = writeln!(
            out,
            "gate {} ({} lane)",
            self.gate.id,
            self.gate.lane.name()
        );
        let _ = writeln!(
            out,
            "http listen: {}",
            self.http
                .listen
                .map_or("disabled".into(), |a| a.to_string())
        );
        let _ = writeln!(
            out,
            "api socket: {}",
            self.http
                .socket
                .as_deref()
                .map_or("disabled".into(), |p| p.display().to_string())
        );
        let _ = writeln!(
            out,
            "api tokens: {}",
            match &self.http.tokens_file {
                Some(file) => format!("{} ({})", self.http.tokens.len(), file.display()),
                None => "none (TCP callers are viewers; socket callers go by uid)".into(),
            }
        );
        let _ = writeln!(
            out,
            "d-bus: {}",
            if self.dbus.enabled {
                let bus = match &self.dbus.bus {
                    DbusBus::System => "the system bus",
                    DbusBus::Session => "the session bus",
                    DbusBus::Address(address) => address,
                };
                format!("{} on {bus}", self.dbus.name)
            } else {
                "disabled".to_owned()
            }
        );
        let _ = writeln!(out, "driver host: {}", self.paths.driver_host.display());
        let _ = writeln!(out, "devices ({}):", self.devices.len());
        for d in &self.devices {
            let _ = writeln!(
                out,
                "  {:<20} {:<18} {:<10} {:>6} ms  {}{}",
                d.id,
                d.class.name(),
                isolation_name(d.isolation),
                d.call_timeout.as_millis(),
                d.driver.display(),
                if d.enabled { "" } else { "  (disabled)" }
            );
        }
        out
    }
}

pub fn isolation_name(isolation: Isolation) -> &'static str {
    match isolation {
        Isolation::InProcess => "in-process",
        Isolation::Process => "process",
    }
}

/// `torii-driver-host` next to the running executable (the packaged layout puts both
/// in `/usr/bin`; a cargo build puts both in `target/<profile>`).
pub fn default_driver_host() -> PathBuf {
    let dir = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("/usr/bin"));
    let beside = dir.join("torii-driver-host");
    // Test binaries run from target/<profile>/deps; the host is one level up.
    if !beside.exists()
        && dir.ends_with("deps")
        && let Some(profile_dir) = dir.parent()
    {
        return profile_dir.join("torii-driver-host");
    }
    beside
}
