//! `torii-sim gate`: a whole simulated gate in one command — every device simulator, the
//! central immigration simulator (mutual TLS, test PKI in `<dir>/pki/`), and the real
//! `toriid` loading every sim driver as a `.so`.
//!
//! The binaries and plugins are taken from the directory `torii-sim` itself lives in
//! (`target/debug` after `cargo build --workspace`, `/usr/lib/torii` when packaged).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use torii_sdk::model::DeviceClass;

use crate::scenario::Scenario;
use crate::{Simulator, SimulatorConfig};
use torii_core::stay::StayTable;

/// The port printed on cards when the scenario names none.
pub const DEFAULT_PORT: &str = "NRT";

/// Central's HTTPS address when none is given.
pub const DEFAULT_CENTRAL: &str = "127.0.0.1:8772";
/// Central's control API address when none is given.
pub const DEFAULT_CENTRAL_CONTROL: &str = "127.0.0.1:8773";

/// Where a simulated gate's pieces live and listen.
#[derive(Clone, Debug)]
pub struct GateLayout {
    /// Scratch directory: sockets, the generated config, the daemon's state.
    pub work_dir: PathBuf,
    /// Directory holding `libtorii_sim_*.so`.
    pub drivers_dir: PathBuf,
    /// The `torii-driver-host` executable.
    pub driver_host: PathBuf,
    /// The daemon's loopback HTTP address.
    pub http: SocketAddr,
    /// "entry" or "exit".
    pub lane: String,
    /// Devices whose driver runs in an isolated driver host.
    pub isolated: Vec<DeviceClass>,
    /// The port printed on the card's back (`[gate] port`).
    pub port: String,
    /// The period-of-stay table (`[flow.stay]`), from the scenario's `[gate.stay]`.
    pub stay: StayTable,
    /// Central's HTTPS address (`[central] url`); [`DEFAULT_CENTRAL`] unless set.
    pub central: SocketAddr,
}

impl GateLayout {
    /// A layout with the usual choices: fingerprint sensor and camera isolated, port
    /// NRT, the default period-of-stay table (see [`GateLayout::apply_scenario`]).
    pub fn new(
        work_dir: impl Into<PathBuf>,
        drivers_dir: impl Into<PathBuf>,
        driver_host: impl Into<PathBuf>,
        http: SocketAddr,
        lane: &str,
    ) -> Self {
        GateLayout {
            work_dir: work_dir.into(),
            drivers_dir: drivers_dir.into(),
            driver_host: driver_host.into(),
            http,
            lane: lane.to_owned(),
            isolated: vec![DeviceClass::FingerprintSensor, DeviceClass::Camera],
            port: DEFAULT_PORT.to_owned(),
            stay: StayTable::default(),
            central: SocketAddr::from(([127, 0, 0, 1], 8772)),
        }
    }

    /// The gate id (`[gate] id`), also the CN of the gate's client certificate.
    pub fn gate_id(&self) -> String {
        format!("SIM-{}-01", self.lane)
    }

    /// The test PKI: central's and the gate's certificates (see `torii_central::pki`).
    pub fn pki_dir(&self) -> PathBuf {
        self.work_dir.join("pki")
    }

    pub fn pki(&self) -> torii_central::pki::Pki {
        torii_central::pki::Pki::new(self.pki_dir())
    }

    /// The test PKI for this gate: kept when complete and made for [`Self::gate_id`],
    /// made anew otherwise.
    pub fn ensure_pki(&self) -> Result<torii_central::pki::Pki, torii_central::pki::PkiError> {
        torii_central::pki::ensure(&self.pki_dir(), &self.gate_id())
    }

    /// The outbox's record key (`[outbox] key_file`, 32 random bytes).
    pub fn outbox_key_file(&self) -> PathBuf {
        self.work_dir.join("outbox.key")
    }

    /// The audit trail's HMAC key (`[audit] key_file`, 32 random bytes).
    pub fn audit_key_file(&self) -> PathBuf {
        self.work_dir.join("audit.key")
    }

    pub fn state_dir(&self) -> PathBuf {
        self.work_dir.join("state")
    }

    /// Takes the port and the period-of-stay table from the scenario's `[gate]`.
    pub fn apply_scenario(&mut self, scenario: &Scenario) {
        if let Some(port) = &scenario.gate.port {
            self.port = port.clone();
        }
        self.stay = scenario.gate.stay.clone();
    }

    /// The registry the daemon imports at start (`[registry] import`).
    pub fn registry_file(&self) -> PathBuf {
        self.work_dir.join("registry.json")
    }

    /// The card issuer's public key (`[registry] card_issuer_key`).
    pub fn card_issuer_key_file(&self) -> PathBuf {
        self.work_dir.join("card-issuer.pem")
    }

    /// The CSCA certificates the daemon trusts for passive authentication.
    pub fn trust_store_dir(&self) -> PathBuf {
        self.work_dir.join("csca")
    }

    /// The daemon's registry database (`[registry] database`).
    pub fn registry_database(&self) -> PathBuf {
        self.work_dir.join("state").join("registry.db")
    }

    /// Writes everything toriid needs before it starts: the state directory, the
    /// config, the scenario's registry, the card issuer key, the test PKI
    /// ([`Self::ensure_pki`]) and the outbox and audit keys (kept when there, so a kept
    /// work directory's outbox and audit trail stay readable).
    pub fn prepare(&self, scenario: &Scenario) -> std::io::Result<()> {
        std::fs::create_dir_all(self.state_dir())?;
        self.ensure_pki()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        for key in [self.outbox_key_file(), self.audit_key_file()] {
            write_random_key(&key)?;
        }
        self.write_tokens()?;
        std::fs::write(self.config_file(), self.daemon_config())?;
        crate::write_registry(scenario, &self.registry_file())?;
        std::fs::create_dir_all(self.trust_store_dir())?;
        crate::data::chip_fs::write_trust_store_for(&self.trust_store_dir(), scenario)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        crate::write_card_issuer_key(&self.card_issuer_key_file())
    }

    pub fn sim_dir(&self) -> PathBuf {
        self.work_dir.join("sim")
    }

    pub fn api_socket(&self) -> PathBuf {
        self.work_dir.join("api.sock")
    }

    pub fn config_file(&self) -> PathBuf {
        self.work_dir.join("toriid.toml")
    }

    /// The sim driver library of `class`, e.g. `libtorii_sim_card_printer.so`.
    pub fn driver(&self, class: DeviceClass) -> PathBuf {
        self.drivers_dir.join(format!(
            "libtorii_sim_{}.so",
            class.name().replace('-', "_")
        ))
    }

    /// The daemon configuration for this gate: the lane, the registry import and card
    /// issuer key written by [`GateLayout::prepare`] and the sync periods, central (mutual
    /// TLS with the test PKI), the outbox and the audit trail with their keys, the flow's
    /// timeouts (the defaults, spelled out) and period-of-stay table, and all seven
    /// devices on their sim drivers.
    pub fn daemon_config(&self) -> String {
        let by_nationality: Vec<String> = self
            .stay
            .by_nationality
            .iter()
            .map(|(nationality, days)| format!("{nationality} = {days}"))
            .collect();
        let mut toml = format!(
            "# Generated by `torii-sim gate` for a simulated gate.\n\
             [gate]\nid = {gate_id:?}\nlane = \"{lane}\"\nport = {port:?}\n\n\
             [registry]\ndatabase = {database:?}\nimport = {import:?}\ncard_issuer_key = {issuer:?}\n\
             sync_interval_ms = 2000\nrevocation_interval_ms = 1000\nmax_staleness_ms = 600000\n\n\
             [central]\nurl = \"https://{central}\"\nca = {ca:?}\n\
             client_certificate = {client_cert:?}\nclient_key = {client_key:?}\n\n\
             [outbox]\ndatabase = {outbox:?}\nkey_file = {outbox_key:?}\n\
             # A lab keeps forwarded records a day (the scenario runner reads them back).\n\
             retention_hours = 24\n\n\
             [audit]\npath = {audit:?}\nkey_file = {audit_key:?}\n\n\
             [documents]\ntrust_store = {trust:?}\n\n\
             [flow]\ncard_timeout_ms = 30000\ned_card_timeout_ms = 180000\nfinger_timeout_ms = 15000\n\
             finger_attempts = 3\nface_timeout_ms = 15000\ntake_card_timeout_ms = 30000\npassage_timeout_ms = 20000\n\n\
             [flow.stay]\ndefault_days = {default_days}\nby_nationality = {{ {by_nationality} }}\n\n\
             [paths]\nstate_dir = {state:?}\nruntime_dir = {runtime:?}\ndriver_host = {host:?}\n\n\
             [http]\nlisten = \"{http}\"\nsocket = {socket:?}\ntokens_file = {tokens:?}\n\n\
             [log]\nformat = \"human\"\nlevel = \"info\"\n",
            gate_id = self.gate_id(),
            lane = self.lane,
            port = self.port,
            central = self.central,
            ca = self.pki().ca_cert().display().to_string(),
            client_cert = self.pki().gate_cert().display().to_string(),
            client_key = self.pki().gate_key().display().to_string(),
            outbox = self.state_dir().join("outbox.db").display().to_string(),
            outbox_key = self.outbox_key_file().display().to_string(),
            audit = self.state_dir().join("audit.log").display().to_string(),
            audit_key = self.audit_key_file().display().to_string(),
            database = self.registry_database().display().to_string(),
            import = self.registry_file().display().to_string(),
            issuer = self.card_issuer_key_file().display().to_string(),
            trust = self.trust_store_dir().display().to_string(),
            default_days = self.stay.default_days,
            by_nationality = by_nationality.join(", "),
            state = self.state_dir().display().to_string(),
            runtime = self.work_dir.display().to_string(),
            host = self.driver_host.display().to_string(),
            http = self.http,
            socket = self.api_socket().display().to_string(),
            tokens = self.tokens_file().display().to_string(),
        );
        for class in DeviceClass::ALL {
            let isolation = if self.isolated.contains(&class) {
                "process"
            } else {
                "in-process"
            };
            toml.push_str(&format!(
                "\n[devices.{name}]\nclass = \"{name}\"\ndriver = {driver:?}\nisolation = \"{isolation}\"\n\
                 [devices.{name}.config]\nsocket = {socket:?}\n",
                name = class.name(),
                driver = self.driver(class).display().to_string(),
                socket = self.sim_dir().join(format!("{}.sock", class.name())).display().to_string(),
            ));
        }
        toml
    }
}

/// The API tokens of a simulated gate, in plain text for the tester (the daemon only
/// gets their SHA-256 hashes): the kiosk page's and an officer's (operator role).
#[derive(Clone)]
pub struct GateTokens {
    pub kiosk: String,
    pub operator: String,
}

impl std::fmt::Debug for GateTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GateTokens(..)")
    }
}

impl GateLayout {
    /// The daemon's tokens file (`[http] tokens_file`): `[[token]]` name, role and the
    /// SHA-256 of the token, mode 0600.
    pub fn tokens_file(&self) -> PathBuf {
        self.work_dir.join("tokens.toml")
    }

    /// The same tokens in plain text for the tester (`kiosk=…`, `operator=…`), mode 0600.
    pub fn tokens_txt(&self) -> PathBuf {
        self.work_dir.join("tokens.txt")
    }

    /// Makes fresh kiosk and operator tokens (every start: a kept work directory does
    /// not keep old tokens valid) and writes [`Self::tokens_file`] and [`Self::tokens_txt`].
    pub fn write_tokens(&self) -> std::io::Result<GateTokens> {
        let tokens = GateTokens {
            kiosk: new_token(),
            operator: new_token(),
        };
        let mut hashed = String::from(
            "# Generated by `torii-sim gate`: the API tokens of a simulated gate (SHA-256 only;\n\
             # the tokens themselves are in tokens.txt beside this file).\n",
        );
        let mut plain = String::new();
        for (name, role, token) in [
            ("kiosk", "kiosk", &tokens.kiosk),
            ("operator", "operator", &tokens.operator),
        ] {
            hashed.push_str(&format!(
                "\n[[token]]\nname = \"{name}\"\nrole = \"{role}\"\nsha256 = \"{}\"\n",
                sha256_hex(token)
            ));
            plain.push_str(&format!("{name}={token}\n"));
        }
        write_private(&self.tokens_file(), hashed.as_bytes())?;
        write_private(&self.tokens_txt(), plain.as_bytes())?;
        Ok(tokens)
    }

    /// Reads back the tokens [`Self::write_tokens`] wrote.
    pub fn read_tokens(&self) -> std::io::Result<GateTokens> {
        let text = std::fs::read_to_string(self.tokens_txt())?;
        let find = |name: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix('='))
                .map(str::to_owned)
                .ok_or_else(|| {
                    std::io::Error::other(format!(
                        "{}: no {name} token",
                        self.tokens_txt().display()
                    ))
                })
        };
        Ok(GateTokens {
            kiosk: find("kiosk")?,
            operator: find("operator")?,
        })
    }
}

/// A fresh API token: `torii_` and 256 random bits, URL-safe base64 (as `toriictl`
/// makes them). URL-safe, so it can go in a page's `#token=` fragment as it is.
fn new_token() -> String {
    use base64::Engine as _;
    let bytes: [u8; 32] = rand::random();
    format!(
        "torii_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

fn sha256_hex(text: &str) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Writes `bytes` to `path`, readable by its owner only (also when it existed).
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Writes 32 random bytes to `path` (mode 0600) unless it exists.
fn write_random_key(path: &Path) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(e),
    };
    let key: [u8; 32] = rand::random();
    file.write_all(&key)?;
    file.sync_all()
}

#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error("{what} not found at {path}: build the workspace first (cargo build --workspace)")]
    Missing { what: &'static str, path: PathBuf },
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("simulator: {0}")]
    Simulator(#[from] crate::StartError),
    #[error("test PKI: {0}")]
    Pki(#[from] torii_central::pki::PkiError),
    #[error("central: {0}")]
    Central(#[from] torii_central::StartError),
    #[error("toriid did not become ready within {0:?} (its log is above)")]
    NotReady(Duration),
    #[error("toriid exited early with {0}")]
    DaemonExited(std::process::ExitStatus),
}

/// Options of `torii-sim gate`.
#[derive(Clone, Debug)]
pub struct GateOptions {
    pub scenario: Scenario,
    /// Where the scenario came from (to print the command that replays its travelers).
    pub scenario_path: Option<PathBuf>,
    pub lane: String,
    pub http: SocketAddr,
    pub control: SocketAddr,
    /// Central's HTTPS address.
    pub central: SocketAddr,
    /// Central's control API address.
    pub central_control: SocketAddr,
    pub work_dir: Option<PathBuf>,
}

/// Runs the gate until Ctrl-C (or until toriid exits).
pub async fn run(options: GateOptions) -> Result<(), GateError> {
    let bin_dir = std::env::current_exe()?
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let toriid = bin_dir.join("toriid");
    let work_dir = match options.work_dir.clone() {
        Some(dir) => dir,
        // Short: Unix socket paths are limited to 108 bytes.
        None => std::env::temp_dir().join(format!("torii-gate-{}", std::process::id())),
    };
    let mut layout = GateLayout::new(
        work_dir,
        &bin_dir,
        bin_dir.join("torii-driver-host"),
        options.http,
        &options.lane,
    );
    layout.apply_scenario(&options.scenario);
    for (what, path) in [
        ("toriid", toriid.clone()),
        ("torii-driver-host", layout.driver_host.clone()),
    ] {
        if !path.exists() {
            return Err(GateError::Missing { what, path });
        }
    }
    for class in DeviceClass::ALL {
        if !layout.driver(class).exists() {
            return Err(GateError::Missing {
                what: "sim driver",
                path: layout.driver(class),
            });
        }
    }
    // Central first: the daemon's config names the port it got.
    let pki = layout.ensure_pki()?;
    let central = crate::start_central(
        &options.scenario,
        &pki,
        options.central,
        options.central_control,
    )
    .await?;
    layout.central = central.addr();
    layout.prepare(&options.scenario)?;

    let mut config = SimulatorConfig::new(layout.sim_dir(), options.scenario);
    config.control = Some(options.control);
    let simulator = Simulator::start(config).await?;

    let mut daemon = tokio::process::Command::new(&toriid)
        .arg("run")
        .arg("--config")
        .arg(layout.config_file())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let started = Instant::now();
    let ready = wait_ready(layout.http, &mut daemon, Duration::from_secs(30)).await;
    if let Err(error) = ready {
        let _ = daemon.kill().await;
        simulator.shutdown().await;
        central.shutdown().await;
        return Err(error);
    }

    let control = simulator
        .control_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let ctl = bin_dir.join("toriictl");
    let sim = bin_dir.join("torii-sim");
    println!();
    println!(
        "torii simulated gate is up ({} lane, ready in {} ms)",
        layout.lane,
        started.elapsed().as_millis()
    );
    let tokens = layout.read_tokens()?;
    println!(
        "  kiosk (traveler screen): http://{}/kiosk#token={}",
        layout.http, tokens.kiosk
    );
    println!(
        "  console (officer):       http://{}/console#token={}",
        layout.http, tokens.operator
    );
    println!(
        "  console, read-only:      http://{}/console   (tokens: {})",
        layout.http,
        layout.tokens_txt().display()
    );
    println!(
        "  daemon API, read-only:   http://{}/api/v1/devices",
        layout.http
    );
    println!(
        "  daemon API, control:     unix:{}",
        layout.api_socket().display()
    );
    println!(
        "      {} --socket {} devices",
        ctl.display(),
        layout.api_socket().display()
    );
    println!("  simulator control:       http://{control}/v1/state");
    println!(
        "      {} ctl --control http://{control} present-passport alice",
        sim.display()
    );
    println!(
        "  central immigration:     {} (mutual TLS; PKI in {})",
        central.url(),
        layout.pki_dir().display()
    );
    println!(
        "  central control:         {}/control/stats",
        central.control_url()
    );
    println!(
        "      curl -d '{{\"mode\":\"down\"}}' {}/control/fault",
        central.control_url()
    );
    println!(
        "  daemon config:           {}",
        layout.config_file().display()
    );
    if let Some(path) = &options.scenario_path {
        println!("  replay every traveler of the scenario (PASS/FAIL each):");
        println!(
            "      {} scenario run --scenario {} --daemon-socket {} --control http://{control}",
            sim.display(),
            path.display(),
            layout.api_socket().display()
        );
    }
    println!("Press Ctrl-C to stop.");

    let outcome = tokio::select! {
        _ = tokio::signal::ctrl_c() => Ok(()),
        status = daemon.wait() => Err(GateError::DaemonExited(status?)),
    };
    if let Some(pid) = daemon.id() {
        // SIGTERM lets toriid close its devices; it is killed if it takes too long.
        let _ = std::process::Command::new("kill")
            .arg(pid.to_string())
            .status();
        if tokio::time::timeout(Duration::from_secs(10), daemon.wait())
            .await
            .is_err()
        {
            let _ = daemon.kill().await;
        }
    }
    simulator.shutdown().await;
    central.shutdown().await;
    if options.work_dir.is_none() {
        let _ = std::fs::remove_dir_all(&layout.work_dir);
    }
    outcome
}

/// Polls `GET /readyz` until it answers 200.
async fn wait_ready(
    http: SocketAddr,
    daemon: &mut tokio::process::Child,
    limit: Duration,
) -> Result<(), GateError> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(status) = daemon.try_wait()? {
            return Err(GateError::DaemonExited(status));
        }
        if readyz(http).await.unwrap_or(false) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(GateError::NotReady(limit))
}

async fn readyz(http: SocketAddr) -> std::io::Result<bool> {
    let mut stream = tokio::net::TcpStream::connect(http).await?;
    stream
        .write_all(b"GET /readyz HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .await?;
    let mut head = [0u8; 16];
    let n = stream.read(&mut head).await?;
    Ok(head[..n].starts_with(b"HTTP/1.1 200") || head[..n].starts_with(b"HTTP/1.0 200"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generated_daemon_config_lists_every_device_on_its_sim_driver() {
        let mut layout = GateLayout::new(
            "/tmp/g",
            "/opt/drivers",
            "/opt/torii-driver-host",
            "127.0.0.1:8770".parse().unwrap(),
            "entry",
        );
        layout.isolated = vec![DeviceClass::Camera];
        let config: toml::Table = layout.daemon_config().parse().unwrap();
        let devices = config["devices"].as_table().unwrap();
        assert_eq!(devices.len(), 7);
        assert_eq!(devices["camera"]["isolation"].as_str(), Some("process"));
        assert_eq!(
            devices["card-printer"]["driver"].as_str(),
            Some("/opt/drivers/libtorii_sim_card_printer.so")
        );
        assert_eq!(
            devices["card-printer"]["config"]["socket"].as_str(),
            Some("/tmp/g/sim/card-printer.sock")
        );
    }

    #[test]
    fn the_generated_config_carries_the_gate_registry_and_flow() {
        let mut layout = GateLayout::new(
            "/tmp/g",
            "/opt/drivers",
            "/opt/torii-driver-host",
            "127.0.0.1:8770".parse().unwrap(),
            "exit",
        );
        let scenario = Scenario::default_scenario().unwrap();
        layout.apply_scenario(&scenario);
        let config: toml::Table = layout.daemon_config().parse().unwrap();
        assert_eq!(config["gate"]["id"].as_str(), Some("SIM-exit-01"));
        assert_eq!(config["gate"]["lane"].as_str(), Some("exit"));
        assert_eq!(config["gate"]["port"].as_str(), Some("NRT"));
        let registry = &config["registry"];
        assert_eq!(
            registry["database"].as_str(),
            Some("/tmp/g/state/registry.db")
        );
        assert_eq!(registry["import"].as_str(), Some("/tmp/g/registry.json"));
        assert_eq!(
            registry["card_issuer_key"].as_str(),
            Some("/tmp/g/card-issuer.pem")
        );
        for (key, value) in [
            ("sync_interval_ms", 2000),
            ("revocation_interval_ms", 1000),
            ("max_staleness_ms", 600000),
        ] {
            assert_eq!(registry[key].as_integer(), Some(value), "{key}");
        }
        let flow = &config["flow"];
        for (key, value) in [
            ("card_timeout_ms", 30000),
            ("ed_card_timeout_ms", 180000),
            ("finger_timeout_ms", 15000),
            ("finger_attempts", 3),
            ("face_timeout_ms", 15000),
            ("take_card_timeout_ms", 30000),
            ("passage_timeout_ms", 20000),
        ] {
            assert_eq!(flow[key].as_integer(), Some(value), "{key}");
        }
        assert_eq!(flow["stay"]["default_days"].as_integer(), Some(90));
        // The default scenario's chen is THA: a 15-day visa exemption.
        assert_eq!(flow["stay"]["by_nationality"]["THA"].as_integer(), Some(15));
    }

    #[test]
    fn the_generated_config_names_central_the_outbox_and_the_audit_trail() {
        let mut layout = GateLayout::new(
            "/tmp/g",
            "/opt/drivers",
            "/opt/torii-driver-host",
            "127.0.0.1:8770".parse().unwrap(),
            "entry",
        );
        layout.central = "127.0.0.1:9443".parse().unwrap();
        let config: toml::Table = layout.daemon_config().parse().unwrap();
        let expected = toml::toml! {
            [central]
            url = "https://127.0.0.1:9443"
            ca = "/tmp/g/pki/ca.pem"
            client_certificate = "/tmp/g/pki/gate.pem"
            client_key = "/tmp/g/pki/gate.key"

            [outbox]
            database = "/tmp/g/state/outbox.db"
            key_file = "/tmp/g/outbox.key"
            retention_hours = 24

            [audit]
            path = "/tmp/g/state/audit.log"
            key_file = "/tmp/g/audit.key"
        };
        for section in ["central", "outbox", "audit"] {
            assert_eq!(config[section], expected[section], "[{section}]");
        }
        assert_eq!(config["gate"]["id"].as_str(), Some("SIM-entry-01"));
        assert_eq!(layout.gate_id(), "SIM-entry-01");
    }

    #[test]
    fn prepare_writes_the_registry_and_the_issuer_key() {
        let dir = tempfile::tempdir().unwrap();
        let mut layout = GateLayout::new(
            dir.path(),
            "/opt/drivers",
            "/opt/torii-driver-host",
            "127.0.0.1:8770".parse().unwrap(),
            "entry",
        );
        let scenario = Scenario::default_scenario().unwrap();
        layout.apply_scenario(&scenario);
        layout.prepare(&scenario).unwrap();
        assert!(layout.config_file().exists());
        assert!(dir.path().join("state").is_dir());
        let registry: serde_json::Value =
            serde_json::from_slice(&std::fs::read(layout.registry_file()).unwrap()).unwrap();
        assert_eq!(registry, crate::central::registry_json(&scenario));
        let pem = std::fs::read_to_string(layout.card_issuer_key_file()).unwrap();
        assert!(torii_core::card::issuer_key_from_pem(&pem).is_ok());
    }

    #[test]
    fn prepare_writes_the_pki_for_the_gate_and_keeps_the_keys() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let layout = GateLayout::new(
            dir.path(),
            "/opt/drivers",
            "/opt/torii-driver-host",
            "127.0.0.1:8770".parse().unwrap(),
            "exit",
        );
        let scenario = Scenario::default_scenario().unwrap();
        layout.prepare(&scenario).unwrap();
        let pki = layout.pki();
        assert!(pki.is_complete());
        assert_eq!(pki.gate_id().as_deref(), Some("SIM-exit-01"));
        let ca = std::fs::read(pki.ca_cert()).unwrap();
        let mut keys = Vec::new();
        for key in [layout.outbox_key_file(), layout.audit_key_file()] {
            let bytes = std::fs::read(&key).unwrap();
            assert_eq!(bytes.len(), 32, "{}", key.display());
            let mode = std::fs::metadata(&key).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{}", key.display());
            keys.push(bytes);
        }
        assert_ne!(keys[0], keys[1]);
        // Again (a kept work directory): the keys and the PKI stay.
        layout.prepare(&scenario).unwrap();
        assert_eq!(std::fs::read(layout.outbox_key_file()).unwrap(), keys[0]);
        assert_eq!(std::fs::read(layout.audit_key_file()).unwrap(), keys[1]);
        assert_eq!(std::fs::read(pki.ca_cert()).unwrap(), ca);
    }

    #[test]
    fn prepare_writes_fresh_tokens_hashed_for_the_daemon_and_plain_for_the_tester() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let layout = GateLayout::new(
            dir.path(),
            "/opt/drivers",
            "/opt/torii-driver-host",
            "127.0.0.1:8770".parse().unwrap(),
            "entry",
        );
        let scenario = Scenario::default_scenario().unwrap();
        layout.prepare(&scenario).unwrap();
        let tokens = layout.read_tokens().unwrap();
        assert_ne!(tokens.kiosk, tokens.operator);
        for token in [&tokens.kiosk, &tokens.operator] {
            assert!(
                token.starts_with("torii_") && token.len() == 49,
                "{}",
                token.len()
            );
            assert!(
                token[6..]
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            );
        }
        for file in [layout.tokens_file(), layout.tokens_txt()] {
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{}", file.display());
        }
        let hashed: toml::Table = std::fs::read_to_string(layout.tokens_file())
            .unwrap()
            .parse()
            .unwrap();
        let entries = hashed["token"].as_array().unwrap();
        let entry = |name: &str| {
            entries
                .iter()
                .find(|e| e["name"].as_str() == Some(name))
                .unwrap()
                .clone()
        };
        assert_eq!(entry("kiosk")["role"].as_str(), Some("kiosk"));
        assert_eq!(entry("operator")["role"].as_str(), Some("operator"));
        assert_eq!(
            entry("kiosk")["sha256"].as_str(),
            Some(sha256_hex(&tokens.kiosk).as_str())
        );
        assert!(
            !std::fs::read_to_string(layout.tokens_file())
                .unwrap()
                .contains(&tokens.kiosk)
        );
        let config: toml::Table = std::fs::read_to_string(layout.config_file())
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(
            config["http"]["tokens_file"].as_str(),
            Some(layout.tokens_file().to_str().unwrap())
        );
        // A second start makes new tokens.
        layout.prepare(&scenario).unwrap();
        assert_ne!(layout.read_tokens().unwrap().kiosk, tokens.kiosk);
    }
}
