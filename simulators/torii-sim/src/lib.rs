//! torii-sim: a software simulator of every torii gate device.
//!
//! Sim driver plugins connect over Unix sockets (`DIR/<class>.sock`, protocol in
//! `torii-sim-link`); tests and people drive the simulated travelers through the
//! control API ([`control`]) or in-process through [`Simulator`]'s methods. Central
//! immigration is the mutual-TLS simulator of `torii-central`, started in-process with
//! the scenario's registry by [`start_central`] (`torii-sim serve --central`,
//! `torii-sim gate`); [`central`] builds that registry.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use torii_sim::{Simulator, SimulatorConfig, scenario::Scenario};
//! let sim = Simulator::start(SimulatorConfig::new("/tmp/torii-sim", Scenario::default_scenario()?)).await?;
//! sim.present_passport("alice")?;
//! sim.shutdown().await;
//! # Ok(()) }
//! ```

pub mod central;
pub mod control;
pub mod data;
pub mod devices;
pub mod gate;
pub mod runner;
pub mod scenario;
pub mod script;
pub mod server;

pub use control::{Action, ActionError};
pub use devices::fingerprint_sensor::FingerMode;

use devices::Shared;
use scenario::Scenario;
use serde_json::Value;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use torii_sdk::model::{DeviceClass, Status};

/// Writes `scenario`'s registry (the central stub's `GET /v1/registry` body, pretty
/// JSON) to `path`.
pub fn write_registry(scenario: &Scenario, path: &Path) -> std::io::Result<()> {
    let json = serde_json::to_vec_pretty(&central::registry_json(scenario))?;
    write_file(path, &json)
}

/// The test PKI central and the gate use, in `dir`: the one there when it is complete
/// (whatever gate it was made for), else a new one for `gate_id`.
pub fn central_pki(
    dir: &Path,
    gate_id: &str,
) -> Result<torii_central::pki::Pki, torii_central::pki::PkiError> {
    let pki = torii_central::pki::Pki::new(dir);
    if pki.is_complete() {
        return Ok(pki);
    }
    torii_central::pki::generate(dir, gate_id, true)
}

/// Starts the mutual-TLS central immigration simulator in-process: HTTPS on `listen`,
/// its control API on `control` (loopback), certificates, CRL and rogue certificate from
/// `pki`, and `scenario`'s registry as the initial registry (upserts 1..n).
pub async fn start_central(
    scenario: &Scenario,
    pki: &torii_central::pki::Pki,
    listen: SocketAddr,
    control: SocketAddr,
) -> Result<torii_central::CentralHandle, torii_central::StartError> {
    let mut config = torii_central::CentralConfig::from_pki(pki, listen, control);
    config.registry = central::registry_entries(scenario);
    torii_central::Central::start(config).await
}

/// Writes the simulator's card issuer public key (PEM) to `path`.
pub fn write_card_issuer_key(path: &Path) -> std::io::Result<()> {
    write_file(path, data::card::issuer_public_key_pem().as_bytes())
}

/// Writes through a temporary file and a rename, so a daemon never reads half a file.
fn write_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// What to start.
#[derive(Clone, Debug)]
pub struct SimulatorConfig {
    /// Directory of the device sockets (created when missing).
    pub dir: PathBuf,
    pub scenario: Scenario,
    /// Control API address (loopback only; port 0 picks a free port).
    pub control: Option<SocketAddr>,
    /// The old plain-HTTP central stub's address (loopback only): `GET /v1/registry`,
    /// `POST /v1/records` of single records, no TLS (see [`central`]). The gate's link
    /// talks to the mutual-TLS simulator instead ([`start_central`]).
    pub central: Option<SocketAddr>,
}

impl SimulatorConfig {
    /// Device sockets only (no HTTP endpoints).
    pub fn new(dir: impl Into<PathBuf>, scenario: Scenario) -> Self {
        Self {
            dir: dir.into(),
            scenario,
            control: None,
            central: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Socket(#[from] server::ServerError),
    #[error("the {what} address {addr} is not a loopback address")]
    NotLoopback {
        what: &'static str,
        addr: SocketAddr,
    },
    #[error("cannot listen on {addr} ({what}): {source}")]
    Listen {
        what: &'static str,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// A running simulator. Dropping it stops the device servers and removes the sockets;
/// [`Simulator::shutdown`] also waits for the HTTP servers to stop.
pub struct Simulator {
    shared: Arc<Shared>,
    dir: PathBuf,
    sockets: Vec<PathBuf>,
    control_addr: Option<SocketAddr>,
    central_addr: Option<SocketAddr>,
    accept_tasks: Vec<JoinHandle<()>>,
    http_tasks: Vec<JoinHandle<()>>,
    stop: watch::Sender<bool>,
}

async fn serve_http(
    what: &'static str,
    addr: SocketAddr,
    router: axum::Router,
    stop: watch::Receiver<bool>,
) -> Result<(SocketAddr, JoinHandle<()>), StartError> {
    if !addr.ip().is_loopback() {
        return Err(StartError::NotLoopback { what, addr });
    }
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Listen { what, addr, source })?;
    let bound =
        listener
            .local_addr()
            .map_err(|source| StartError::Listen { what, addr, source })?;
    let task = tokio::spawn(async move {
        let mut stop = stop;
        let shutdown = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        if let Err(e) = axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(what, error = %e, "HTTP server failed");
        }
    });
    Ok((bound, task))
}

impl Simulator {
    /// Binds every device socket (and the HTTP endpoints asked for) and starts serving.
    pub async fn start(config: SimulatorConfig) -> Result<Self, StartError> {
        let shared = Arc::new(Shared::new(config.scenario));
        let (stop, _) = watch::channel(false);
        let mut sim = Simulator {
            shared: shared.clone(),
            dir: config.dir.clone(),
            sockets: Vec::new(),
            control_addr: None,
            central_addr: None,
            accept_tasks: Vec::new(),
            http_tasks: Vec::new(),
            stop,
        };
        // On an error below, dropping `sim` removes the sockets bound so far.
        for class in DeviceClass::ALL {
            let (listener, path) = server::bind(&config.dir, class)?;
            sim.sockets.push(path);
            sim.accept_tasks.push(tokio::spawn(server::accept_loop(
                shared.clone(),
                class,
                listener,
            )));
        }
        if let Some(addr) = config.control {
            let (bound, task) = serve_http(
                "control",
                addr,
                control::router(shared.clone()),
                sim.stop.subscribe(),
            )
            .await?;
            sim.control_addr = Some(bound);
            sim.http_tasks.push(task);
        }
        if let Some(addr) = config.central {
            let (bound, task) = serve_http(
                "central",
                addr,
                central::router(shared.scenario.clone()),
                sim.stop.subscribe(),
            )
            .await?;
            sim.central_addr = Some(bound);
            sim.http_tasks.push(task);
        }
        tracing::info!(
            travelers = shared.scenario.travelers.len(),
            "simulator started"
        );
        Ok(sim)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The socket of `class`'s device.
    pub fn socket_path(&self, class: DeviceClass) -> PathBuf {
        server::socket_path(&self.dir, class)
    }

    pub fn control_addr(&self) -> Option<SocketAddr> {
        self.control_addr
    }

    pub fn central_addr(&self) -> Option<SocketAddr> {
        self.central_addr
    }

    pub fn scenario(&self) -> &Scenario {
        &self.shared.scenario
    }

    /// Writes the scenario's registry (the central stub's `GET /v1/registry` body) to
    /// `path`, for the daemon's `[registry] import`.
    pub fn write_registry(&self, path: &Path) -> std::io::Result<()> {
        write_registry(&self.shared.scenario, path)
    }

    /// Writes the public key of the simulator's card issuing authority (PEM) to `path`,
    /// for the daemon's `[registry] card_issuer_key`.
    pub fn write_card_issuer_key(&self, path: &Path) -> std::io::Result<()> {
        write_card_issuer_key(path)
    }

    /// Performs a control action (the same as `POST /v1/actions`).
    pub fn act(&self, action: Action) -> Result<Value, ActionError> {
        control::act(&self.shared, action)
    }

    /// The simulated state (the same as `GET /v1/state`).
    pub fn state(&self) -> Value {
        control::state_json(&self.shared)
    }

    /// The scenario's travelers (the same as `GET /v1/travelers`).
    pub fn travelers(&self) -> Value {
        control::travelers_json(&self.shared)
    }

    pub fn present_passport(&self, traveler: &str) -> Result<Value, ActionError> {
        self.act(Action::PresentPassport {
            traveler: traveler.into(),
        })
    }
    pub fn remove_passport(&self) -> Result<Value, ActionError> {
        self.act(Action::RemovePassport)
    }
    pub fn present_qr(&self, traveler: &str) -> Result<Value, ActionError> {
        self.act(Action::PresentQr {
            traveler: Some(traveler.into()),
            payload: None,
        })
    }
    pub fn present_qr_payload(&self, payload: &str) -> Result<Value, ActionError> {
        self.act(Action::PresentQr {
            traveler: None,
            payload: Some(payload.into()),
        })
    }
    pub fn insert_card(&self, traveler: &str) -> Result<Value, ActionError> {
        self.act(Action::InsertCard {
            traveler: traveler.into(),
        })
    }
    pub fn remove_card(&self) -> Result<Value, ActionError> {
        self.act(Action::RemoveCard)
    }
    pub fn take_card(&self) -> Result<Value, ActionError> {
        self.act(Action::TakeCard)
    }
    pub fn place_card(&self, traveler: &str) -> Result<Value, ActionError> {
        self.act(Action::PlaceCard {
            traveler: traveler.into(),
        })
    }
    pub fn lift_card(&self) -> Result<Value, ActionError> {
        self.act(Action::LiftCard)
    }
    pub fn place_fingers(&self, traveler: &str, mode: FingerMode) -> Result<Value, ActionError> {
        self.act(Action::PlaceFingers {
            traveler: traveler.into(),
            mode,
        })
    }
    pub fn lift_fingers(&self) -> Result<Value, ActionError> {
        self.act(Action::LiftFingers)
    }
    pub fn look_at_camera(&self, traveler: &str) -> Result<Value, ActionError> {
        self.act(Action::LookAtCamera {
            traveler: traveler.into(),
        })
    }
    pub fn leave_camera(&self) -> Result<Value, ActionError> {
        self.act(Action::LeaveCamera)
    }
    pub fn enter_lane(&self) -> Result<Value, ActionError> {
        self.act(Action::EnterLane)
    }
    pub fn walk_through(&self) -> Result<Value, ActionError> {
        self.act(Action::WalkThrough)
    }
    pub fn second_person(&self) -> Result<Value, ActionError> {
        self.act(Action::SecondPerson)
    }
    pub fn fire_alarm(&self, active: bool) -> Result<Value, ActionError> {
        self.act(Action::FireAlarm { active })
    }
    /// The next call (or every call, when `sticky`) of `class` fails with `status`.
    pub fn fault(
        &self,
        class: DeviceClass,
        status: Status,
        sticky: bool,
    ) -> Result<Value, ActionError> {
        self.act(Action::Fault {
            device: class.name().into(),
            status: server::status_name(status),
            sticky,
        })
    }
    pub fn hang(&self, class: DeviceClass) -> Result<Value, ActionError> {
        self.act(Action::Hang {
            device: class.name().into(),
        })
    }
    pub fn unplug(&self, class: DeviceClass) -> Result<Value, ActionError> {
        self.act(Action::Unplug {
            device: class.name().into(),
        })
    }
    pub fn replug(&self, class: DeviceClass) -> Result<Value, ActionError> {
        self.act(Action::Replug {
            device: class.name().into(),
        })
    }
    pub fn clear(&self, class: DeviceClass) -> Result<Value, ActionError> {
        self.act(Action::Clear {
            device: class.name().into(),
        })
    }

    fn stop_devices(&mut self) {
        for task in self.accept_tasks.drain(..) {
            task.abort();
        }
        for class in DeviceClass::ALL {
            self.shared.link(class).disconnect();
        }
        for path in self.sockets.drain(..) {
            let _ = std::fs::remove_file(path);
        }
    }

    /// Stops everything: closes driver connections, removes the sockets and waits (a
    /// little) for the HTTP servers to finish.
    pub async fn shutdown(mut self) {
        self.stop_devices();
        let _ = self.stop.send(true);
        for task in self.http_tasks.drain(..) {
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(3), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
        tracing::info!("simulator stopped");
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.stop_devices();
        let _ = self.stop.send(true);
        for task in self.http_tasks.drain(..) {
            task.abort();
        }
    }
}
