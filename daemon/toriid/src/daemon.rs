//! `toriid run`: open the devices, serve the API, tell systemd, and stop cleanly.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use torii_plugin_host::{Device, DeviceSpec, HostEvent};

use crate::api::{http, socket};
use crate::command::Core;
use crate::config::{Config, ConfigPaths, DeviceConfig};
use crate::notify;
use crate::registry::{HealthChange, Registry, in_service};

/// Longest a driver may take to open before the device is given up on (for now:
/// it is retried in the background).
const OPEN_TIMEOUT: Duration = Duration::from_secs(30);
/// Retry delays for devices that failed to open: doubling up to the maximum.
const REOPEN_FIRST_DELAY: Duration = Duration::from_secs(2);
const REOPEN_MAX_DELAY: Duration = Duration::from_secs(60);
/// How long in-flight API requests may run once shutdown began.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// How long devices get to close.
const DEVICE_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error("cannot install signal handler: {0}")]
    Signals(std::io::Error),
    #[error("API server on {addr} failed: {source}")]
    Serve {
        addr: String,
        source: std::io::Error,
    },
}

/// Runs the daemon until SIGTERM or SIGINT; SIGHUP reloads the configuration from
/// `paths` ([`crate::reload`]). `started` is the process start.
pub async fn run(
    mut config: Config,
    paths: ConfigPaths,
    started: Instant,
) -> Result<(), DaemonError> {
    let files: Vec<_> = config
        .sources
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    tracing::info!(
        gate = %config.gate.id, lane = config.gate.lane.name(), config = %files.join(", "),
        "toriid {} starting", crate::command::VERSION
    );
    // Signals first, so a SIGTERM during a slow start-up is not lost.
    let mut signals = Signals::install().map_err(DaemonError::Signals)?;

    let registry = Arc::new(Registry::new(&config.devices));
    let core = Arc::new(Core::new(config.gate.clone(), registry.clone(), started));
    open_audit(&config, &core);
    core.audit(
        torii_audit::AuditKind::DaemonStarted,
        "system",
        format!("toriid {} starting", crate::command::VERSION),
    );
    core.audit(
        torii_audit::AuditKind::ConfigLoaded,
        "system",
        format!("configuration from {}", files.join(", ")),
    );
    // Subscribed before anything publishes.
    let metrics = crate::metrics::spawn(&core);
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let gate_slot = Arc::new(std::sync::OnceLock::new());
    let pump = tokio::spawn(pump_events(
        events_rx,
        registry.clone(),
        gate_slot.clone(),
        core.clone(),
    ));

    let mut background = JoinSet::new();
    open_devices(&config, &registry, &events_tx, &mut background).await;

    // USB-bound devices open when their device is plugged in.
    let usb_devices: Vec<DeviceConfig> = config
        .devices
        .iter()
        .filter(|d| d.enabled && d.bind == crate::config::Bind::Usb)
        .cloned()
        .collect();
    if !usb_devices.is_empty() {
        for device in &usb_devices {
            registry.open_failed(&device.id, "waiting for its USB device");
        }
        background.spawn(crate::hotplug::watch(
            config.clone(),
            usb_devices,
            registry.clone(),
            events_tx.clone(),
        ));
    }

    // The flow engine starts once the devices are open, so it sees their first events.
    let mut link = None;
    // The flow engine's status channel, for the systemd watchdog (notify::watchdog).
    let mut flow_status = None;
    match crate::gate::start(&config, registry.clone()) {
        Ok(Some(started)) => {
            let gate = started.handle;
            tokio::spawn(crate::events::watch_gate(
                gate.watch_status(),
                core.events().clone(),
            ));
            match crate::link::Link::start(
                &config,
                &started.sink,
                started.registry.clone(),
                core.clone(),
                gate.clone(),
            ) {
                Ok(running) => {
                    let stats = running.clone();
                    core.set_link_stats(Arc::new(move || stats.stats()));
                    link = Some(running);
                }
                Err(error) => {
                    // Records still reach the outbox; they wait there for a fixed config.
                    tracing::error!(%error, "the central link cannot start; records stay in the outbox");
                }
            }
            let _ = gate_slot.set(gate.clone());
            flow_status = Some(gate.watch_status());
            core.set_flow(gate);
            tracing::info!(lane = config.gate.lane.name(), "gate flow running");
        }
        Ok(None) => {
            core.set_flow_missing("no card issuer key configured (registry.card_issuer_key)".into())
        }
        Err(error) => {
            // Fail closed: no registry, no travelers; the daemon still serves its APIs.
            tracing::error!(%error, "the gate flow cannot start; the gate takes no travelers");
            core.set_flow_missing(error.to_string());
        }
    }

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut servers = JoinSet::new();
    let (socket_path, auth) = start_servers(&config, &core, &stop_rx, &mut servers).await?;

    core.set_ready(true);
    let status = service_status(&registry);
    notify::ready(&status);
    let watchdog = notify::watchdog(flow_status);
    tracing::info!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "ready in {} ms ({status})",
        started.elapsed().as_millis()
    );

    // Run until a stop signal, or until a server fails (then stop all the same, with an
    // error); reload on SIGHUP.
    let outcome = loop {
        tokio::select! {
            signal = signals.recv() => match signal {
                Received::Reload => {
                    tracing::info!("received SIGHUP, reloading the configuration");
                    crate::reload::reload(&mut config, &paths, &core, &auth);
                }
                Received::Stop(name) => {
                    tracing::info!("received {name}, stopping");
                    break Ok(());
                }
            },
            Some(result) = servers.join_next() => break match result {
                Ok(Err(e)) => Err(e),
                Ok(Ok(())) | Err(_) => {
                    tracing::error!("an API server stopped unexpectedly");
                    Ok(())
                }
            },
        }
    };

    notify::stopping();
    if let Some(watchdog) = watchdog {
        watchdog.abort();
    }
    core.set_ready(false);
    let _ = stop_tx.send(true);
    if tokio::time::timeout(DRAIN_TIMEOUT, async {
        while servers.join_next().await.is_some() {}
    })
    .await
    .is_err()
    {
        tracing::warn!(
            "API requests still running after {} s; dropping them",
            DRAIN_TIMEOUT.as_secs()
        );
        servers.abort_all();
    }
    background.abort_all();
    if let Some(link) = &link {
        link.stop().await;
    }
    shutdown_devices(&registry).await;
    pump.abort();
    metrics.abort();
    if let Some(path) = socket_path {
        let _ = std::fs::remove_file(path);
    }
    core.audit(
        torii_audit::AuditKind::DaemonStopped,
        "system",
        "toriid stopped".to_owned(),
    );
    tracing::info!("stopped");
    outcome
}

pub(crate) fn spec(device: &DeviceConfig, config: &Config) -> DeviceSpec {
    DeviceSpec {
        id: device.id.clone(),
        driver: device.driver.clone(),
        expected_class: Some(device.class),
        isolation: device.isolation,
        config_json: device.config_json.clone(),
        call_timeout: device.call_timeout,
        driver_host_exe: config.paths.driver_host.clone(),
    }
}

/// One attempt to open a device. A panic in the open path (a driver, or the host)
/// is turned into an error: one bad device must not take the daemon down.
pub(crate) async fn open_once(
    spec: DeviceSpec,
    events: mpsc::UnboundedSender<HostEvent>,
) -> Result<Device, String> {
    let task = tokio::spawn(async move {
        tokio::time::timeout(OPEN_TIMEOUT, Device::open(spec, events)).await
    });
    match task.await {
        Ok(Ok(Ok(device))) => Ok(device),
        Ok(Ok(Err(e))) => Err(e.to_string()),
        Ok(Err(_)) => Err(format!(
            "open did not finish within {} s",
            OPEN_TIMEOUT.as_secs()
        )),
        Err(e) if e.is_panic() => Err("open panicked".to_owned()),
        Err(_) => Err("open was cancelled".to_owned()),
    }
}

/// Opens every enabled device concurrently; those that fail are registered
/// UNAVAILABLE with their error and retried in the background.
async fn open_devices(
    config: &Config,
    registry: &Arc<Registry>,
    events: &mpsc::UnboundedSender<HostEvent>,
    background: &mut JoinSet<()>,
) {
    let enabled: Vec<&DeviceConfig> = config
        .devices
        .iter()
        .filter(|d| d.enabled && d.bind == crate::config::Bind::Always)
        .collect();
    notify::status(&format!("opening {} devices", enabled.len()));
    let mut opening = JoinSet::new();
    for device in enabled {
        let spec = spec(device, config);
        let events = events.clone();
        opening.spawn(async move {
            let started = Instant::now();
            let id = spec.id.clone();
            (
                id,
                spec.clone(),
                open_once(spec, events).await,
                started.elapsed(),
            )
        });
    }
    while let Some(joined) = opening.join_next().await {
        let Ok((id, spec, result, took)) = joined else {
            continue;
        };
        match result {
            Ok(device) => {
                let info = device.info();
                tracing::info!(
                    device = %id, driver = %info.name, version = %info.version, class = info.class.name(),
                    took_ms = took.as_millis() as u64, "device opened"
                );
                log_change(registry.attach(&id, Arc::new(device)));
            }
            Err(error) => {
                tracing::error!(device = %id, driver = %spec.driver.display(), "cannot open device: {error}");
                registry.open_failed(&id, &error);
                background.spawn(reopen(spec, events.clone(), registry.clone(), error));
            }
        }
    }
    for device in config.devices.iter().filter(|d| !d.enabled) {
        tracing::info!(device = %device.id, "device disabled in the configuration");
    }
}

/// Retries a device that failed to open until it opens (the gate is out of service
/// meanwhile). Logs only when the error changes, not on every attempt.
async fn reopen(
    spec: DeviceSpec,
    events: mpsc::UnboundedSender<HostEvent>,
    registry: Arc<Registry>,
    mut last_error: String,
) {
    let mut delay = REOPEN_FIRST_DELAY;
    loop {
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(REOPEN_MAX_DELAY);
        match open_once(spec.clone(), events.clone()).await {
            Ok(device) => {
                tracing::info!(device = %spec.id, driver = %device.info().name, "device opened after retry");
                log_change(registry.attach(&spec.id, Arc::new(device)));
                update_status(&registry);
                return;
            }
            Err(error) if error != last_error => {
                tracing::error!(device = %spec.id, "cannot open device: {error}");
                registry.open_failed(&spec.id, &error);
                last_error = error;
            }
            Err(_) => tracing::debug!(device = %spec.id, "device still cannot be opened"),
        }
    }
}

async fn start_servers(
    config: &Config,
    core: &Arc<Core>,
    stop: &watch::Receiver<bool>,
    servers: &mut JoinSet<Result<(), DaemonError>>,
) -> Result<(Option<PathBuf>, Arc<crate::api::auth::Auth>), DaemonError> {
    let stopped = |mut stop: watch::Receiver<bool>| async move {
        let _ = stop.wait_for(|stop| *stop).await;
    };
    // D-Bus: never fails and ends only on stop (an unreachable bus is retried).
    if config.dbus.enabled {
        let (core, dbus, shutdown) = (core.clone(), config.dbus.clone(), stopped(stop.clone()));
        servers.spawn(async move {
            crate::api::dbus::serve(core, dbus, shutdown).await;
            Ok(())
        });
    }
    // One API state for both listeners (the same routes; browser sessions shared).
    let api = http::Api::new(core.clone(), &config.http);
    let auth = api.auth();
    if let Some(addr) = config.http.listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| DaemonError::Listen {
                addr: addr.to_string(),
                source,
            })?;
        // The bound address (not the configured one): port 0 picks a free port.
        let bound = listener
            .local_addr()
            .map_or(addr.to_string(), |a| a.to_string());
        tracing::info!(addr = %bound, "http listening on {bound}");
        let router = http::router(api.clone());
        let shutdown = stopped(stop.clone());
        servers.spawn(async move {
            http::serve(listener, router, shutdown)
                .await
                .map_err(|source| DaemonError::Serve {
                    addr: bound,
                    source,
                })
        });
    }
    let Some(path) = config.http.socket.clone() else {
        if config.http.listen.is_none() {
            tracing::warn!("both http.listen and http.socket are disabled: no API is served");
        }
        return Ok((None, auth));
    };
    let listener = socket::bind_unix(&path).map_err(|source| DaemonError::Listen {
        addr: path.display().to_string(),
        source,
    })?;
    let shown = path.display().to_string();
    tracing::info!(path = %shown, "api socket {shown}");
    let router = http::router(api);
    let shutdown = stopped(stop.clone());
    servers.spawn(async move {
        http::serve(listener, router, shutdown)
            .await
            .map_err(|source| DaemonError::Serve {
                addr: shown,
                source,
            })
    });
    Ok((Some(path), auth))
}

/// Applies host events to the registry; logs health changes (never event payloads).
async fn pump_events(
    mut events: mpsc::UnboundedReceiver<HostEvent>,
    registry: Arc<Registry>,
    gate: Arc<std::sync::OnceLock<crate::gate::GateHandle>>,
    core: Arc<Core>,
) {
    let bus = core.events().clone();
    while let Some(event) = events.recv().await {
        if let HostEvent::Device { device, event } = &event {
            tracing::debug!(device = %device, event = event.name(), "device event");
            crate::metrics::device_event(event);
            if let Some(gate) = gate.get() {
                gate.device_event(device, event);
            }
        }
        if let Some(change) = registry.apply(&event) {
            // A driver host that crashed says nothing itself: the engine hears that the
            // device went away (and forgets what media it held) all the same.
            if change.to == torii_sdk::model::DeviceState::Unavailable
                && change.from != change.to
                && let Some(gate) = gate.get()
            {
                gate.device_event(
                    &change.device,
                    &torii_sdk::model::Event::StateChanged { state: change.to },
                );
            }
            if change.from != change.to || change.fault.is_some() {
                bus.publish(crate::events::GateEvent::DeviceStateChanged {
                    device: change.device.clone(),
                    state: change.to,
                    fault: change.fault.clone(),
                });
            }
            if let Some(fault) = &change.fault {
                core.audit(
                    torii_audit::AuditKind::DriverFault,
                    "system",
                    format!("device {} {}: {fault}", change.device, change.to),
                );
            }
            log_change(Some(change));
            update_status(&registry);
        }
    }
}

fn log_change(change: Option<HealthChange>) {
    let Some(HealthChange {
        device,
        from,
        to,
        fault,
    }) = change
    else {
        return;
    };
    match fault {
        Some(fault) => {
            tracing::warn!(device = %device, from = %from, to = %to, "device {to}: {fault}")
        }
        None if from != to => {
            tracing::info!(device = %device, from = %from, to = %to, "device {to}")
        }
        // Only a fault cleared (e.g. "not opened yet" once opened): not news.
        None => tracing::debug!(device = %device, state = %to, "device fault cleared"),
    }
}

/// The one-line status for systemd: in service, or which devices keep it out.
fn service_status(registry: &Registry) -> String {
    let devices = registry.snapshots();
    if in_service(&devices) {
        return "in service".to_owned();
    }
    let missing: Vec<&str> = devices
        .iter()
        .filter(|d| {
            d.config.enabled
                && (!d.opened || d.health.state == torii_sdk::model::DeviceState::Unavailable)
        })
        .map(|d| d.config.id.as_str())
        .collect();
    if missing.is_empty() {
        "out of service: no devices configured".to_owned()
    } else {
        format!("out of service: {} unavailable", missing.join(", "))
    }
}

fn update_status(registry: &Registry) {
    notify::status(&service_status(registry));
}

async fn shutdown_devices(registry: &Registry) {
    let mut closing = JoinSet::new();
    for (id, device) in registry.detach_all() {
        closing.spawn(async move {
            device.shutdown().await;
            id
        });
    }
    let all_closed = tokio::time::timeout(DEVICE_SHUTDOWN_TIMEOUT, async {
        while let Some(closed) = closing.join_next().await {
            if let Ok(id) = closed {
                tracing::debug!(device = %id, "device closed");
            }
        }
    })
    .await;
    if all_closed.is_err() {
        tracing::warn!(
            "some devices did not close within {} s",
            DEVICE_SHUTDOWN_TIMEOUT.as_secs()
        );
    }
}

/// SIGTERM (systemd stop) and SIGINT (Ctrl-C).
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

enum Received {
    Stop(&'static str),
    Reload,
}

impl Signals {
    fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    async fn recv(&mut self) -> Received {
        tokio::select! {
            _ = self.term.recv() => Received::Stop("SIGTERM"),
            _ = self.int.recv() => Received::Stop("SIGINT"),
            _ = self.hup.recv() => Received::Reload,
        }
    }
}

/// Opens the audit trail. A trail that cannot be opened (or fails verification at
/// open) is an error in the log and the journal, not a reason to keep the gate shut:
/// the door's safety does not depend on it, and the operator is told loudly.
fn open_audit(config: &Config, core: &Core) {
    let key = match &config.audit.key_file {
        Some(path) => match torii_audit::AuditKey::from_file(path) {
            Ok(key) => Some(key),
            Err(error) => {
                tracing::error!(%error, "audit key unusable: the audit trail is off");
                return;
            }
        },
        None => {
            tracing::warn!("no audit.key_file: the audit trail is hash-chained but not keyed");
            None
        }
    };
    if let Some(dir) = config.audit.path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let path = &config.audit.path;
    let log = match torii_audit::AuditLog::open(path, key.clone()) {
        Ok(log) => log,
        Err(torii_audit::AuditError::Refused { source, .. }) => {
            // A trail that fails verification is evidence: set it aside (both files,
            // untouched) and start a new one that says so, rather than stop auditing.
            let stamp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let aside = path.with_extension(format!("refused-{stamp}"));
            let head = torii_audit::head_path(path);
            let head_aside = aside.with_extension(format!("refused-{stamp}.head"));
            let _ = std::fs::rename(path, &aside);
            let _ = std::fs::rename(&head, &head_aside);
            tracing::error!(
                problem = %source, kept_as = %aside.display(),
                "the audit trail failed verification: set aside, a new trail starts"
            );
            match torii_audit::AuditLog::open(path, key) {
                Ok(log) => {
                    let _ = log.append(torii_audit::AuditEvent::new(
                        torii_audit::AuditKind::AuditRecovered,
                        format!(
                            "previous trail failed verification ({source}); kept as {}",
                            aside.display()
                        ),
                    ));
                    log
                }
                Err(error) => {
                    tracing::error!(%error, "a new audit trail cannot be opened: auditing is off");
                    return;
                }
            }
        }
        Err(error) => {
            tracing::error!(%error, "the audit trail cannot be opened: auditing is off");
            return;
        }
    };
    // The anchor in the journal: deleting both files is then still detectable.
    let anchor = log.anchor();
    tracing::info!(seq = anchor.seq, mac = %anchor.mac, "audit trail opened");
    core.set_audit(Arc::new(log));
}
