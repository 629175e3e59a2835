//! Loading: each source is parsed and schema-checked on its own (so errors can name
//! their file), then the `config` crate merges them with the environment, then the
//! merged values are checked for meaning, each error naming the source of the value.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use config::{Environment, Map, Source, Value, ValueKind};
use torii_plugin_host::Isolation;
use torii_sdk::model::DeviceClass;

use super::schema;
use super::{
    Config, ConfigError, ConfigPaths, DeviceConfig, DocumentsConfig, ENV_PREFIX, ENV_SEPARATOR,
    GateConfig, HttpConfig, Issue, Lane, LogConfig, LogFormat, PathsConfig, RegistryConfig,
};

const DEFAULT_STATE_DIR: &str = "/var/lib/torii";
const DEFAULT_RUNTIME_DIR: &str = "/run/torii";
const DEFAULT_LISTEN: &str = "127.0.0.1:8770";
const DEFAULT_SOCKET: &str = "/run/torii/api.sock";
const DEFAULT_CALL_TIMEOUT_MS: i64 = 3000;
const MAX_CALL_TIMEOUT_MS: i64 = 600_000;
/// What `config::Environment` puts in `Value::origin()`.
const CONFIG_CRATE_ENV_ORIGIN: &str = "the environment";

pub(super) fn load(
    paths: &ConfigPaths,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Config, ConfigError> {
    let mut issues = Vec::new();
    let mut builder = config::Config::builder();
    let mut sources = Vec::new();

    for file in config_files(paths, &mut issues) {
        let origin = file.display().to_string();
        match read_toml(&file) {
            Ok(table) => {
                schema::check_file(&origin, &table, &mut issues);
                builder = builder.add_source(TomlSource { origin, table });
                sources.push(file);
            }
            Err(message) => issues.push(Issue::new(&origin, "", message)),
        }
    }

    // Environment overrides: checked one variable at a time, remembered by key so a
    // bad merged value can be traced back to its variable.
    let mut env_names = HashMap::new();
    let mut env_map = Map::new();
    for (name, value) in env {
        let Some(rest) = strip_prefix_ignore_case(&name, ENV_PREFIX) else {
            continue;
        };
        let origin = format!("environment {name}");
        let key = rest.to_ascii_lowercase();
        let segments: Vec<&str> = key.split(ENV_SEPARATOR).collect();
        if segments.iter().any(|s| s.is_empty()) {
            issues.push(Issue::new(
                &origin,
                "",
                "malformed variable name (expected TORII__SECTION__KEY)",
            ));
            continue;
        }
        schema::check_env(&origin, &segments, &value, &mut issues);
        env_names.insert(segments.join("."), name.clone());
        env_map.insert(name, value);
    }
    builder = builder.add_source(
        Environment::with_prefix("TORII")
            .prefix_separator(ENV_SEPARATOR)
            .separator(ENV_SEPARATOR)
            .try_parsing(true)
            .source(Some(env_map)),
    );

    // Merging sources that are already known to be malformed would only repeat the
    // same errors with less precise origins.
    if !issues.is_empty() {
        return Err(ConfigError::Invalid(issues));
    }
    let merged = builder.build().map_err(|e| {
        ConfigError::Invalid(vec![Issue::new(
            &paths.file.display().to_string(),
            "",
            e.to_string(),
        )])
    })?;
    let view = Merged {
        cfg: &merged,
        env_names,
        main_origin: paths.file.display().to_string(),
    };
    let config = view.check(&mut issues, sources);
    match config {
        Some(config) if issues.is_empty() => Ok(config),
        _ => Err(ConfigError::Invalid(issues)),
    }
}

fn strip_prefix_ignore_case<'a>(name: &'a str, prefix: &str) -> Option<&'a str> {
    let head = name.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &name[prefix.len()..])
}

/// The main file (required) then the drop-ins, sorted by name.
fn config_files(paths: &ConfigPaths, issues: &mut Vec<Issue>) -> Vec<PathBuf> {
    let mut files = vec![paths.file.clone()];
    match std::fs::read_dir(&paths.drop_in_dir) {
        Ok(entries) => {
            let mut drop_ins: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .filter(|path| path.extension().is_some_and(|ext| ext == "toml") && path.is_file())
                .collect();
            drop_ins.sort();
            files.extend(drop_ins);
        }
        // No drop-in directory is the common case.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => issues.push(Issue::new(
            &paths.drop_in_dir.display().to_string(),
            "",
            format!("cannot read drop-in directory: {e}"),
        )),
    }
    files
}

fn read_toml(file: &Path) -> Result<toml::Table, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("cannot read: {e}"))?;
    text.parse::<toml::Table>()
        .map_err(|e| format!("invalid TOML: {}", e.to_string().trim_end()))
}

/// A parsed file as a `config` source whose values carry the file's path as origin
/// (the crate's own file source rewrites paths relative to the working directory).
#[derive(Clone, Debug)]
struct TomlSource {
    origin: String,
    table: toml::Table,
}

impl Source for TomlSource {
    fn clone_into_box(&self) -> Box<dyn Source + Send + Sync> {
        Box::new(self.clone())
    }

    fn collect(&self) -> Result<Map<String, Value>, config::ConfigError> {
        Ok(self
            .table
            .iter()
            .map(|(k, v)| (k.clone(), to_config_value(&self.origin, v)))
            .collect())
    }
}

fn to_config_value(origin: &String, value: &toml::Value) -> Value {
    let kind = match value {
        toml::Value::String(s) => ValueKind::String(s.clone()),
        toml::Value::Integer(i) => ValueKind::I64(*i),
        toml::Value::Float(f) => ValueKind::Float(*f),
        toml::Value::Boolean(b) => ValueKind::Boolean(*b),
        toml::Value::Datetime(d) => ValueKind::String(d.to_string()),
        toml::Value::Array(items) => {
            ValueKind::Array(items.iter().map(|v| to_config_value(origin, v)).collect())
        }
        toml::Value::Table(table) => ValueKind::Table(
            table
                .iter()
                .map(|(k, v)| (k.clone(), to_config_value(origin, v)))
                .collect(),
        ),
    };
    Value::new(Some(origin), kind)
}

/// The merged configuration, with the means to name where each value came from.
struct Merged<'a> {
    cfg: &'a config::Config,
    /// Dotted key → the environment variable that set it.
    env_names: HashMap<String, String>,
    main_origin: String,
}

impl Merged<'_> {
    /// The value's own record of its source. (`get::<Value>` would deserialize a copy
    /// without it; the leaf is read from its parent table instead.)
    fn raw(&self, key: &str) -> Option<Value> {
        let (parent, leaf) = key.rsplit_once('.')?;
        self.cfg.get_table(parent).ok()?.remove(leaf)
    }

    fn origin(&self, key: &str) -> String {
        match self.raw(key).as_ref().and_then(Value::origin) {
            Some(CONFIG_CRATE_ENV_ORIGIN) => {
                let name = self.env_names.get(key).cloned().unwrap_or_else(|| {
                    format!(
                        "{ENV_PREFIX}{}",
                        key.to_ascii_uppercase().replace('.', ENV_SEPARATOR)
                    )
                });
                format!("environment {name}")
            }
            Some(origin) => origin.to_owned(),
            None => self.main_origin.clone(),
        }
    }

    fn issue(&self, issues: &mut Vec<Issue>, key: &str, message: impl Into<String>) {
        issues.push(Issue::new(&self.origin(key), key, message));
    }

    fn has(&self, key: &str) -> bool {
        self.cfg.get::<Value>(key).is_ok()
    }

    /// Schema checks already ran, so a type mismatch here means a source the schema
    /// does not see; it is reported rather than ignored all the same.
    fn get<T: serde::de::DeserializeOwned>(&self, issues: &mut Vec<Issue>, key: &str) -> Option<T> {
        match self.cfg.get::<T>(key) {
            Ok(value) => Some(value),
            Err(config::ConfigError::NotFound(_)) => None,
            Err(e) => {
                self.issue(issues, key, e.to_string());
                None
            }
        }
    }

    fn string(&self, issues: &mut Vec<Issue>, key: &str, default: &str) -> String {
        self.get::<String>(issues, key)
            .unwrap_or_else(|| default.to_owned())
    }

    fn required_string(
        &self,
        issues: &mut Vec<Issue>,
        key: &str,
        origin_hint: &str,
    ) -> Option<String> {
        let value = self.get::<String>(issues, key);
        if value.is_none() && !self.has(key) {
            issues.push(Issue::new(
                origin_hint,
                key,
                "missing (this key is required)",
            ));
        }
        value
    }

    fn one_of<T: Copy>(
        &self,
        issues: &mut Vec<Issue>,
        key: &str,
        value: &str,
        choices: &[(&str, T)],
    ) -> Option<T> {
        let found = choices
            .iter()
            .find(|(name, _)| *name == value)
            .map(|(_, v)| *v);
        if found.is_none() {
            let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
            self.issue(
                issues,
                key,
                format!(
                    "unknown value {value:?}, expected one of {}",
                    names.join(", ")
                ),
            );
        }
        found
    }

    fn absolute_path(&self, issues: &mut Vec<Issue>, key: &str, value: &str) -> PathBuf {
        let path = PathBuf::from(value);
        if !path.is_absolute() {
            self.issue(issues, key, format!("{value:?} is not an absolute path"));
        }
        path
    }

    fn check(&self, issues: &mut Vec<Issue>, sources: Vec<PathBuf>) -> Option<Config> {
        let main = self.main_origin.clone();

        let gate_id = self.required_string(issues, "gate.id", &main);
        if let Some(id) = &gate_id
            && (id.trim().is_empty() || id.len() > 64 || id.chars().any(char::is_control))
        {
            self.issue(
                issues,
                "gate.id",
                format!("{id:?} is not a usable gate id (1 to 64 printable characters)"),
            );
        }
        let lane = self
            .required_string(issues, "gate.lane", &main)
            .and_then(|lane| {
                self.one_of(
                    issues,
                    "gate.lane",
                    &lane,
                    &[("entry", Lane::Entry), ("exit", Lane::Exit)],
                )
            });

        let state_dir = self.string(issues, "paths.state_dir", DEFAULT_STATE_DIR);
        let state_dir = self.absolute_path(issues, "paths.state_dir", &state_dir);
        let runtime_dir = self.string(issues, "paths.runtime_dir", DEFAULT_RUNTIME_DIR);
        let runtime_dir = self.absolute_path(issues, "paths.runtime_dir", &runtime_dir);
        let driver_host = match self.string(issues, "paths.driver_host", "").as_str() {
            "" => super::default_driver_host(),
            configured => {
                let path = PathBuf::from(configured);
                if !path.is_file() {
                    self.issue(
                        issues,
                        "paths.driver_host",
                        format!("{configured:?}: no such executable"),
                    );
                }
                path
            }
        };

        let listen = self.listen_address(issues);
        let socket = self.api_socket(issues, &runtime_dir);
        let (tokens_file, tokens) = self.api_tokens(issues);

        let format = self.string(issues, "log.format", "auto");
        let format = self.one_of(
            issues,
            "log.format",
            &format,
            &[
                ("auto", LogFormat::Auto),
                ("journald", LogFormat::Journald),
                ("human", LogFormat::Human),
                ("json", LogFormat::Json),
            ],
        );
        let level = self.string(issues, "log.level", "info");
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&level) {
            self.issue(issues, "log.level", format!("invalid level {level:?}: {e}"));
        }

        let devices = self.devices(issues);
        let port = self.string(issues, "gate.port", "NRT");
        if port.len() != 3 || !port.bytes().all(|b| b.is_ascii_uppercase()) {
            self.issue(
                issues,
                "gate.port",
                format!("{port:?} is not a 3-letter airport code such as NRT"),
            );
        }
        let registry = self.registry(issues, &state_dir);
        let central = self.central(issues);
        let outbox = self.outbox(issues, &state_dir);
        let audit = self.audit(issues, &state_dir);
        let documents = DocumentsConfig {
            trust_store: self.optional_path(issues, "documents.trust_store", true),
        };
        let flow = self.flow(issues, gate_id.as_deref().unwrap_or_default(), &port, lane);
        let poll_ms = self.get::<i64>(issues, "usb.poll_ms").unwrap_or(1000);
        if !(10..=60_000).contains(&poll_ms) {
            self.issue(
                issues,
                "usb.poll_ms",
                format!("{poll_ms} is out of range (10 to 60000 ms)"),
            );
        }
        let matcher = self.matcher(issues);
        let dbus = self.dbus(issues);
        let usb = super::UsbConfig {
            poll: Duration::from_millis(poll_ms.clamp(10, 60_000) as u64),
            fake_bus: self
                .get::<String>(issues, "usb.fake_bus")
                .filter(|v| !v.is_empty())
                .map(|v| self.absolute_path(issues, "usb.fake_bus", &v)),
        };

        Some(Config {
            gate: GateConfig {
                id: gate_id?,
                lane: lane?,
                port,
            },
            paths: PathsConfig {
                state_dir,
                runtime_dir,
                driver_host,
            },
            http: HttpConfig {
                listen,
                socket,
                tokens_file,
                tokens,
            },
            log: LogConfig {
                format: format?,
                level,
            },
            registry,
            central,
            outbox,
            audit,
            flow,
            documents,
            usb,
            matcher,
            dbus,
            devices,
            sources,
        })
    }

    fn matcher(&self, issues: &mut Vec<Issue>) -> super::MatcherSettings {
        use torii_matcher::policy::Mode;
        let plugin = self.optional_path(issues, "matcher.plugin", false);
        let mode = self.string(issues, "matcher.mode", "score-fusion");
        let mode = self
            .one_of(
                issues,
                "matcher.mode",
                &mode,
                &[
                    ("score-fusion", Mode::ScoreFusion),
                    ("both-must-pass", Mode::BothMustPass),
                ],
            )
            .unwrap_or(Mode::ScoreFusion);
        let default_fmr = torii_matcher::policy::Policy::default().target_fmr;
        let target_fmr = self
            .get::<f64>(issues, "matcher.target_fmr")
            .unwrap_or(default_fmr);
        let target_fmr = if (1e-6..=0.01).contains(&target_fmr)
            && torii_matcher::calibration::Threshold::for_fmr(target_fmr).is_ok()
        {
            target_fmr
        } else {
            self.issue(
                issues,
                "matcher.target_fmr",
                format!("{target_fmr} is not a false match rate the matcher is calibrated for (1e-6 to 0.01)"),
            );
            default_fmr
        };
        let config_json = match self.get::<serde_json::Value>(issues, "matcher.config") {
            Some(value @ serde_json::Value::Object(_)) => value.to_string(),
            Some(_) => {
                self.issue(issues, "matcher.config", "expected a table");
                "{}".to_owned()
            }
            None => "{}".to_owned(),
        };
        super::MatcherSettings {
            plugin,
            config_json,
            mode,
            target_fmr,
        }
    }

    fn dbus(&self, issues: &mut Vec<Issue>) -> super::DbusConfig {
        use super::DbusBus;
        let enabled = self.get::<bool>(issues, "dbus.enabled").unwrap_or(true);
        let bus = match self.string(issues, "dbus.bus", "system").as_str() {
            "system" => DbusBus::System,
            "session" => DbusBus::Session,
            address => {
                // Only the adapter knows the address syntax (and zbus).
                if let Err(e) = crate::api::dbus::check_address(address) {
                    self.issue(
                        issues,
                        "dbus.bus",
                        format!("{address:?} is not \"system\", \"session\" or a D-Bus address such as \"unix:path=/run/dbus/system_bus_socket\" ({e})"),
                    );
                }
                DbusBus::Address(address.to_owned())
            }
        };
        let name = self.string(issues, "dbus.name", crate::api::dbus::DEFAULT_NAME);
        if let Err(e) = crate::api::dbus::check_name(&name) {
            self.issue(
                issues,
                "dbus.name",
                format!("{name:?} is not a well-known bus name such as org.torii.Gate1 ({e})"),
            );
        }
        let operators_group = self.string(issues, "dbus.operators_group", "torii-operators");
        if operators_group.len() > 64
            || operators_group
                .chars()
                .any(|c| c == ':' || c == ',' || c.is_whitespace() || c.is_control())
        {
            self.issue(
                issues,
                "dbus.operators_group",
                format!("{operators_group:?} is not a group name"),
            );
        }
        super::DbusConfig {
            enabled,
            bus,
            name,
            operators_group,
        }
    }

    /// An optional absolute path that must exist (a directory when `dir`).
    fn optional_path(&self, issues: &mut Vec<Issue>, key: &str, dir: bool) -> Option<PathBuf> {
        let value = self.get::<String>(issues, key).filter(|v| !v.is_empty())?;
        let path = self.absolute_path(issues, key, &value);
        let ok = if dir { path.is_dir() } else { path.is_file() };
        if !ok {
            let what = if dir { "directory" } else { "file" };
            self.issue(issues, key, format!("{value:?}: no such {what}"));
        }
        Some(path)
    }

    fn registry(&self, issues: &mut Vec<Issue>, state_dir: &Path) -> RegistryConfig {
        let database = match self
            .get::<String>(issues, "registry.database")
            .filter(|v| !v.is_empty())
        {
            Some(value) => self.absolute_path(issues, "registry.database", &value),
            None => state_dir.join("registry.db"),
        };
        let import = self.optional_path(issues, "registry.import", false);
        let card_issuer_key = self.optional_path(issues, "registry.card_issuer_key", false);
        if let Some(key) = &card_issuer_key
            && let Ok(pem) = std::fs::read_to_string(key)
            && let Err(e) = torii_core::card::issuer_key_from_pem(&pem)
        {
            self.issue(issues, "registry.card_issuer_key", e);
        }
        RegistryConfig {
            database,
            import,
            card_issuer_key,
            sync_interval: self.millis(
                issues,
                "registry.sync_interval_ms",
                60_000,
                100..=86_400_000,
            ),
            revocation_interval: self.millis(
                issues,
                "registry.revocation_interval_ms",
                10_000,
                100..=86_400_000,
            ),
            max_staleness: self.millis(
                issues,
                "registry.max_staleness_ms",
                3_600_000,
                1_000..=30 * 86_400_000,
            ),
        }
    }

    /// A duration in milliseconds within `range`, or `default`.
    fn millis(
        &self,
        issues: &mut Vec<Issue>,
        key: &str,
        default: i64,
        range: std::ops::RangeInclusive<i64>,
    ) -> Duration {
        let value = self.get::<i64>(issues, key).unwrap_or(default);
        if !range.contains(&value) {
            self.issue(
                issues,
                key,
                format!(
                    "{value} is out of range ({} to {} ms)",
                    range.start(),
                    range.end()
                ),
            );
        }
        Duration::from_millis(value.clamp(*range.start(), *range.end()) as u64)
    }

    /// An integer within `range`, or `default`.
    fn bounded(
        &self,
        issues: &mut Vec<Issue>,
        key: &str,
        default: i64,
        range: std::ops::RangeInclusive<i64>,
    ) -> i64 {
        let value = self.get::<i64>(issues, key).unwrap_or(default);
        if !range.contains(&value) {
            self.issue(
                issues,
                key,
                format!(
                    "{value} is out of range ({} to {})",
                    range.start(),
                    range.end()
                ),
            );
        }
        value.clamp(*range.start(), *range.end())
    }

    fn central(&self, issues: &mut Vec<Issue>) -> Option<super::CentralConfig> {
        let Some(url) = self
            .get::<String>(issues, "central.url")
            .filter(|v| !v.is_empty())
        else {
            for key in [
                "ca",
                "client_certificate",
                "client_key",
                "batch",
                "timeout_ms",
                "backoff_max_ms",
            ] {
                let key = format!("central.{key}");
                if self.has(&key) {
                    self.issue(issues, &key, "has no effect without central.url");
                }
            }
            return None;
        };
        let scheme_ok = url
            .strip_prefix("https://")
            .is_some_and(|rest| !rest.is_empty() && !rest.trim_end_matches('/').contains('/'));
        if !scheme_ok {
            self.issue(
                issues,
                "central.url",
                format!("{url:?} is not an https://host:port address (central is reached over mutual TLS only)"),
            );
        }
        // A missing file key is reported where the url was set: that is the source
        // the installer is looking at.
        let url_origin = self.origin("central.url");
        let mut file = |key: &str| match self.optional_path(issues, key, false) {
            Some(path) => path,
            None => {
                issues.push(Issue::new(
                    &url_origin,
                    key,
                    "required when central.url is set",
                ));
                PathBuf::new()
            }
        };
        let ca = file("central.ca");
        let client_certificate = file("central.client_certificate");
        let client_key = file("central.client_key");
        Some(super::CentralConfig {
            url: url.trim_end_matches('/').to_owned(),
            ca,
            client_certificate,
            client_key,
            batch: self.bounded(issues, "central.batch", 100, 1..=500) as usize,
            timeout: self.millis(issues, "central.timeout_ms", 10_000, 100..=600_000),
            backoff_max: self.millis(issues, "central.backoff_max_ms", 60_000, 100..=3_600_000),
        })
    }

    fn outbox(&self, issues: &mut Vec<Issue>, state_dir: &Path) -> super::OutboxConfig {
        let database = match self
            .get::<String>(issues, "outbox.database")
            .filter(|v| !v.is_empty())
        {
            Some(value) => self.absolute_path(issues, "outbox.database", &value),
            None => state_dir.join("outbox.db"),
        };
        super::OutboxConfig {
            database,
            key_file: self.optional_path(issues, "outbox.key_file", false),
            capacity: self.bounded(issues, "outbox.capacity", 100_000, 10..=100_000_000) as u64,
            warn_percent: self.bounded(issues, "outbox.warn_percent", 80, 1..=100) as u8,
            retention: Duration::from_secs(
                self.bounded(issues, "outbox.retention_hours", 0, 0..=24 * 365) as u64 * 3600,
            ),
        }
    }

    fn audit(&self, issues: &mut Vec<Issue>, state_dir: &Path) -> super::AuditConfig {
        let path = match self
            .get::<String>(issues, "audit.path")
            .filter(|v| !v.is_empty())
        {
            Some(value) => self.absolute_path(issues, "audit.path", &value),
            None => state_dir.join("audit.log"),
        };
        super::AuditConfig {
            path,
            key_file: self.optional_path(issues, "audit.key_file", false),
        }
    }

    fn flow(
        &self,
        issues: &mut Vec<Issue>,
        gate_id: &str,
        port: &str,
        lane: Option<Lane>,
    ) -> torii_core::flow::FlowConfig {
        let mut flow = torii_core::flow::FlowConfig {
            gate_id: gate_id.to_owned(),
            port: port.to_owned(),
            lane: match lane {
                Some(Lane::Exit) => torii_core::rules::Lane::Exit,
                _ => torii_core::rules::Lane::Entry,
            },
            ..Default::default()
        };
        let mut millis = |key: &str, slot: &mut u64| {
            let full = format!("flow.{key}");
            if let Some(value) = self.get::<i64>(issues, &full) {
                if (1..=3_600_000).contains(&value) {
                    *slot = value as u64;
                } else {
                    self.issue(
                        issues,
                        &full,
                        format!("{value} is out of range (1 to 3600000 ms)"),
                    );
                }
            }
        };
        millis("card_timeout_ms", &mut flow.card_timeout_ms);
        millis("ed_card_timeout_ms", &mut flow.ed_card_timeout_ms);
        millis("finger_timeout_ms", &mut flow.finger_timeout_ms);
        millis("face_timeout_ms", &mut flow.face_timeout_ms);
        millis("take_card_timeout_ms", &mut flow.take_card_timeout_ms);
        millis("passage_timeout_ms", &mut flow.passage_timeout_ms);
        if let Some(attempts) = self.get::<i64>(issues, "flow.finger_attempts") {
            match u8::try_from(attempts) {
                Ok(n @ 1..=10) => flow.finger_attempts = n,
                _ => self.issue(
                    issues,
                    "flow.finger_attempts",
                    format!("{attempts} is out of range (1 to 10)"),
                ),
            }
        }
        if let Some(days) = self.get::<i64>(issues, "flow.stay.default_days") {
            flow.stay.default_days = u16::try_from(days).unwrap_or(0);
        }
        if let Some(table) =
            self.get::<std::collections::BTreeMap<String, i64>>(issues, "flow.stay.by_nationality")
        {
            for (nationality, days) in table {
                // Each entry is checked on its own so the message names its source file.
                let key = format!("flow.stay.by_nationality.{nationality}");
                let days = u16::try_from(days).unwrap_or(0);
                let mut single = torii_core::stay::StayTable::default();
                single.by_nationality.insert(nationality.clone(), days);
                match single.validate() {
                    Ok(()) => {
                        flow.stay.by_nationality.insert(nationality, days);
                    }
                    Err(e) => self.issue(issues, &key, e.to_string()),
                }
            }
        }
        if let Err(e) = flow.stay.validate() {
            self.issue(issues, "flow.stay.default_days", e.to_string());
        }
        flow
    }

    fn listen_address(&self, issues: &mut Vec<Issue>) -> Option<SocketAddr> {
        let listen = self.string(issues, "http.listen", DEFAULT_LISTEN);
        if listen.is_empty() {
            return None;
        }
        match listen.parse::<SocketAddr>() {
            // The TCP listener is plain HTTP (tokens, session cookies): it must not
            // leave the machine.
            Ok(addr) if !addr.ip().is_loopback() => {
                self.issue(issues, "http.listen", format!("{listen:?} is not a loopback address (the TCP listener is plain HTTP: tokens would cross the network in the clear; use 127.0.0.1 or [::1])"));
                None
            }
            Ok(addr) => Some(addr),
            Err(_) => {
                self.issue(issues, "http.listen", format!("invalid address {listen:?}, expected IP:PORT such as 127.0.0.1:8770, or \"\" to disable"));
                None
            }
        }
    }

    /// The API tokens file, read now so a bad one stops the daemon at start (and
    /// `toriid check-config` names it).
    fn api_tokens(
        &self,
        issues: &mut Vec<Issue>,
    ) -> (Option<PathBuf>, Vec<crate::api::auth::TokenEntry>) {
        let Some(path) = self.optional_path(issues, "http.tokens_file", false) else {
            return (None, Vec::new());
        };
        if !path.is_file() {
            // Already reported by optional_path.
            return (Some(path), Vec::new());
        }
        match crate::api::auth::load_tokens(&path) {
            Ok(tokens) => (Some(path), tokens),
            Err(message) => {
                self.issue(issues, "http.tokens_file", message);
                (Some(path), Vec::new())
            }
        }
    }

    fn api_socket(&self, issues: &mut Vec<Issue>, runtime_dir: &Path) -> Option<PathBuf> {
        let socket = self.string(issues, "http.socket", DEFAULT_SOCKET);
        if socket.is_empty() {
            return None;
        }
        let path = self.absolute_path(issues, "http.socket", &socket);
        // The runtime directory is created by systemd (RuntimeDirectory=) or by toriid
        // at start, so it need not exist when the config is checked.
        if let Some(dir) = path.parent()
            && path.is_absolute()
            && dir != runtime_dir
            && !dir.is_dir()
        {
            self.issue(
                issues,
                "http.socket",
                format!("directory {} does not exist", dir.display()),
            );
        }
        Some(path)
    }

    fn devices(&self, issues: &mut Vec<Issue>) -> Vec<DeviceConfig> {
        let Some(table) = self.get::<Map<String, Value>>(issues, "devices") else {
            return Vec::new();
        };
        let mut ids: Vec<String> = table.into_keys().collect();
        ids.sort();
        ids.into_iter()
            .filter_map(|id| self.device(issues, id))
            .collect()
    }

    fn device(&self, issues: &mut Vec<Issue>, id: String) -> Option<DeviceConfig> {
        let key = |field: &str| format!("devices.{id}.{field}");
        // A missing key has no origin of its own: name the file that defines the device.
        let table_origin = self.device_origin(&id);

        let enabled = self.get::<bool>(issues, &key("enabled")).unwrap_or(true);
        let class = self
            .required_string(issues, &key("class"), &table_origin)
            .and_then(|name| {
                let class = DeviceClass::from_name(&name);
                if class.is_none() {
                    let names: Vec<&str> = DeviceClass::ALL.iter().map(|c| c.name()).collect();
                    self.issue(
                        issues,
                        &key("class"),
                        format!(
                            "unknown value {name:?}, expected one of {}",
                            names.join(", ")
                        ),
                    );
                }
                class
            });
        let driver = self
            .required_string(issues, &key("driver"), &table_origin)
            .map(|driver| {
                let path = self.absolute_path(issues, &key("driver"), &driver);
                // A disabled device may name a driver that is not installed on this gate.
                if enabled && path.is_absolute() && !path.is_file() {
                    self.issue(
                        issues,
                        &key("driver"),
                        format!("driver file {driver:?} does not exist"),
                    );
                }
                path
            });
        let isolation = self.string(issues, &key("isolation"), "in-process");
        let isolation = self.one_of(
            issues,
            &key("isolation"),
            &isolation,
            &[
                ("in-process", Isolation::InProcess),
                ("process", Isolation::Process),
            ],
        );
        let timeout_ms = self
            .get::<i64>(issues, &key("call_timeout_ms"))
            .unwrap_or(DEFAULT_CALL_TIMEOUT_MS);
        if !(1..=MAX_CALL_TIMEOUT_MS).contains(&timeout_ms) {
            self.issue(
                issues,
                &key("call_timeout_ms"),
                format!("{timeout_ms} is out of range 1..={MAX_CALL_TIMEOUT_MS}"),
            );
        }
        let bind = self.string(issues, &key("bind"), "always");
        let bind = self.one_of(
            issues,
            &key("bind"),
            &bind,
            &[("always", super::Bind::Always), ("usb", super::Bind::Usb)],
        );
        let config_json = match self.get::<serde_json::Value>(issues, &key("config")) {
            Some(value @ serde_json::Value::Object(_)) => value.to_string(),
            Some(_) => {
                self.issue(issues, &key("config"), "expected a table");
                "{}".to_owned()
            }
            None => "{}".to_owned(),
        };

        Some(DeviceConfig {
            class: class?,
            driver: driver?,
            isolation: isolation?,
            call_timeout: Duration::from_millis(timeout_ms.clamp(1, MAX_CALL_TIMEOUT_MS) as u64),
            enabled,
            bind: bind?,
            config_json,
            id,
        })
    }

    fn device_origin(&self, id: &str) -> String {
        let table = self
            .cfg
            .get::<Map<String, Value>>(&format!("devices.{id}"))
            .unwrap_or_default();
        let mut keys: Vec<&String> = table.keys().collect();
        keys.sort();
        keys.first().map_or_else(
            || self.main_origin.clone(),
            |k| self.origin(&format!("devices.{id}.{k}")),
        )
    }
}
