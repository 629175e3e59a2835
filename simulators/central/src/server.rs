//! The mTLS server: its own accept loop (so failed handshakes are counted and the
//! listener can be dropped and bound again for the `down` fault), hyper-util serving the
//! axum router per connection with the peer's gate id attached to each request.

use crate::pki::{self, Pki};
use crate::store::{BatchOutcome, FeedError, Feeds, Records, StoredRecord, page_size};
use crate::tls::{self, TlsError};
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, Extension, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use torii_link::protocol::{MAX_BATCH, ProblemBody, RecordAck, RecordBatch};
use tower::ServiceExt;

/// Longest a TLS handshake may take before the connection is dropped (and counted as
/// refused).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest `POST /v1/records` body.
const MAX_BODY: usize = 64 << 20;

/// How central misbehaves (`POST /control/fault`, `--fault`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultMode {
    /// Behaves.
    #[default]
    None,
    /// Connections refused: the listener is closed (open connections too) and bound
    /// again on the same port when the mode changes.
    Down,
    /// Every answer is delayed by `delay_ms` (after the request was handled).
    Slow,
    /// 500 with a [`ProblemBody`] to every HTTPS request.
    Http500,
    /// `POST /v1/records` stores the first half of the batch (rounded up), then drops
    /// the connection without answering. Other calls answer normally.
    DropMidBatch,
    /// The TLS server presents the rogue CA's server certificate (open connections are
    /// closed when this mode is entered or left).
    WrongServerCert,
}

impl FaultMode {
    pub const ALL: [FaultMode; 6] = [
        FaultMode::None,
        FaultMode::Down,
        FaultMode::Slow,
        FaultMode::Http500,
        FaultMode::DropMidBatch,
        FaultMode::WrongServerCert,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultMode::None => "none",
            FaultMode::Down => "down",
            FaultMode::Slow => "slow",
            FaultMode::Http500 => "http500",
            FaultMode::DropMidBatch => "drop-mid-batch",
            FaultMode::WrongServerCert => "wrong-server-cert",
        }
    }
}

impl std::fmt::Display for FaultMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for FaultMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        FaultMode::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = FaultMode::ALL.iter().map(|m| m.name()).collect();
                format!("unknown fault mode {s:?}: one of {}", names.join(", "))
            })
    }
}

/// The current fault: `{"mode":"slow","delay_ms":500}`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    pub mode: FaultMode,
    /// The delay of `slow`.
    #[serde(default)]
    pub delay_ms: u64,
}

impl Fault {
    pub fn none() -> Self {
        Fault::default()
    }
    pub fn mode(mode: FaultMode) -> Self {
        Fault { mode, delay_ms: 0 }
    }
    pub fn slow(delay: Duration) -> Self {
        Fault {
            mode: FaultMode::Slow,
            delay_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
        }
    }
}

/// What central counts (`GET /control/stats`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Records held now.
    pub records: u64,
    /// Records acknowledged again (already held).
    pub duplicates: u64,
    /// Batches handled (well-formed and from their own gate).
    pub batches: u64,
    /// 409 out-of-order answers.
    pub out_of_order: u64,
    /// 409 answers for a record id held with another body.
    pub conflicts: u64,
    /// 403 answers: a batch for another gate than the certificate's.
    pub forbidden: u64,
    /// 400 answers to `POST /v1/records`.
    pub malformed: u64,
    /// Connections dropped by `drop-mid-batch`.
    pub dropped_batches: u64,
    /// TLS handshakes completed.
    pub tls_handshakes: u64,
    /// TLS handshakes that failed (bad, expired, revoked or missing client certificate,
    /// the client refusing central's certificate, timeouts).
    pub tls_handshakes_refused: u64,
    /// Why the last refused handshake failed, as rustls said it (empty before any): lets a
    /// test tell an expired client certificate from a revoked one or a client refusing
    /// central's certificate.
    #[serde(default)]
    pub last_tls_refusal: String,
}

#[derive(Default)]
struct Counters {
    duplicates: AtomicU64,
    batches: AtomicU64,
    out_of_order: AtomicU64,
    conflicts: AtomicU64,
    forbidden: AtomicU64,
    malformed: AtomicU64,
    dropped_batches: AtomicU64,
    tls_handshakes: AtomicU64,
    tls_handshakes_refused: AtomicU64,
}

fn bump(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}

/// What to start.
#[derive(Clone, Debug)]
pub struct CentralConfig {
    /// The HTTPS address (port 0 picks a free port; kept across `down`).
    pub listen: SocketAddr,
    /// The control API's address (loopback only; port 0 picks a free port).
    pub control: SocketAddr,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    /// The CA the gates' client certificates must come from.
    pub client_ca: PathBuf,
    /// The CA's CRL (PEM); client certificates listed in it are refused.
    pub crl: Option<PathBuf>,
    /// The certificate presented in the `wrong-server-cert` fault.
    pub rogue_cert: Option<PathBuf>,
    pub rogue_key: Option<PathBuf>,
    /// The initial registry: entries of a registry export (the `travelers` of
    /// `{"travelers":[…]}`), served as upserts 1..n.
    pub registry: Vec<Value>,
    /// The fault mode at start.
    pub fault: Fault,
}

impl CentralConfig {
    /// Everything from a test PKI ([`pki::generate`]): central's certificate, the CA,
    /// the CRL and the rogue server certificate. No registry, no fault.
    pub fn from_pki(pki: &Pki, listen: SocketAddr, control: SocketAddr) -> Self {
        CentralConfig {
            listen,
            control,
            server_cert: pki.central_cert(),
            server_key: pki.central_key(),
            client_ca: pki.ca_cert(),
            crl: Some(pki.crl()),
            rogue_cert: Some(pki.rogue_central_cert()),
            rogue_key: Some(pki.rogue_central_key()),
            registry: Vec::new(),
            fault: Fault::none(),
        }
    }
}

/// The entries of a registry export `{"travelers":[…]}`.
pub fn registry_from_export(export: &Value) -> Result<Vec<Value>, String> {
    export
        .get("travelers")
        .and_then(Value::as_array)
        .cloned()
        .ok_or_else(|| "a registry export is {\"travelers\":[…]}".to_owned())
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("the control address {0} is not a loopback address")]
    NotLoopback(SocketAddr),
    #[error("cannot listen on {addr} ({what}): {source}")]
    Listen {
        what: &'static str,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("registry entry {index}: {error}")]
    Registry { index: usize, error: FeedError },
    #[error(transparent)]
    Fault(#[from] FaultError),
}

#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum FaultError {
    #[error("wrong-server-cert needs a rogue server certificate (rogue_cert and rogue_key)")]
    NoRogueCertificate,
    #[error("cannot listen again on {addr}: {error}")]
    Rebind { addr: SocketAddr, error: String },
    #[error("the server has stopped")]
    Stopped,
}

/// What the accept loop did with the fault of a generation.
#[derive(Clone, Debug, Default)]
struct Applied {
    generation: u64,
    error: Option<String>,
}

pub(crate) struct Shared {
    records: Mutex<Records>,
    feeds: Mutex<Feeds>,
    counters: Counters,
    last_tls_refusal: Mutex<String>,
    /// (generation, fault): the generation grows with every change.
    fault: watch::Sender<(u64, Fault)>,
    applied: watch::Sender<Applied>,
    has_rogue: bool,
    addr: SocketAddr,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

impl Shared {
    pub(crate) fn fault(&self) -> Fault {
        self.fault.borrow().1
    }

    pub(crate) async fn set_fault(&self, fault: Fault) -> Result<(), FaultError> {
        if fault.mode == FaultMode::WrongServerCert && !self.has_rogue {
            return Err(FaultError::NoRogueCertificate);
        }
        let mut generation = 0;
        self.fault.send_modify(|(g, f)| {
            *g += 1;
            *f = fault;
            generation = *g;
        });
        tracing::info!(mode = %fault.mode, delay_ms = fault.delay_ms, "central: fault set");
        let mut applied = self.applied.subscribe();
        let applied = applied
            .wait_for(|a| a.generation >= generation)
            .await
            .map_err(|_| FaultError::Stopped)?;
        match &applied.error {
            Some(error) => Err(FaultError::Rebind {
                addr: self.addr,
                error: error.clone(),
            }),
            None => Ok(()),
        }
    }

    pub(crate) fn stats(&self) -> Stats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Stats {
            records: lock(&self.records).len() as u64,
            duplicates: get(&c.duplicates),
            batches: get(&c.batches),
            out_of_order: get(&c.out_of_order),
            conflicts: get(&c.conflicts),
            forbidden: get(&c.forbidden),
            malformed: get(&c.malformed),
            dropped_batches: get(&c.dropped_batches),
            tls_handshakes: get(&c.tls_handshakes),
            tls_handshakes_refused: get(&c.tls_handshakes_refused),
            last_tls_refusal: lock(&self.last_tls_refusal).clone(),
        }
    }

    pub(crate) fn records(&self) -> Vec<StoredRecord> {
        lock(&self.records).list().to_vec()
    }

    pub(crate) fn reset_records(&self) -> usize {
        let mut records = lock(&self.records);
        let n = records.len();
        records.clear();
        tracing::info!(records = n, "central: records reset");
        n
    }

    pub(crate) fn upsert(&self, traveler: Value) -> Result<u64, FeedError> {
        let seq = lock(&self.feeds).upsert(traveler)?;
        tracing::info!(seq, "central: registry upsert");
        Ok(seq)
    }

    pub(crate) fn erase(
        &self,
        passport_number: String,
        nationality: String,
    ) -> Result<u64, FeedError> {
        let seq = lock(&self.feeds).erase(passport_number, nationality)?;
        tracing::info!(seq, "central: registry erase");
        Ok(seq)
    }

    pub(crate) fn revoke(
        &self,
        passport_number: String,
        nationality: String,
        status: String,
    ) -> Result<u64, FeedError> {
        let seq = lock(&self.feeds).revoke(passport_number, nationality, status)?;
        tracing::info!(seq, "central: revocation");
        Ok(seq)
    }
}

/// The simulator; [`Central::start`] runs it.
pub struct Central;

/// A running central. Dropping it stops it (the listeners close at once);
/// [`CentralHandle::shutdown`] also waits for the tasks.
pub struct CentralHandle {
    shared: Arc<Shared>,
    addr: SocketAddr,
    control_addr: SocketAddr,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for CentralHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CentralHandle")
            .field("addr", &self.addr)
            .field("control_addr", &self.control_addr)
            .finish_non_exhaustive()
    }
}

fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

impl Central {
    /// Loads the certificates, binds both addresses and starts serving.
    pub async fn start(config: CentralConfig) -> Result<CentralHandle, StartError> {
        if !config.control.ip().is_loopback() {
            return Err(StartError::NotLoopback(config.control));
        }
        let main = tls::server_config(
            &config.server_cert,
            &config.server_key,
            &config.client_ca,
            config.crl.as_deref(),
        )?;
        let rogue = match (&config.rogue_cert, &config.rogue_key) {
            (Some(cert), Some(key)) => Some(tls::server_config(
                cert,
                key,
                &config.client_ca,
                config.crl.as_deref(),
            )?),
            _ => None,
        };
        let feeds = Feeds::new(config.registry)
            .map_err(|(index, error)| StartError::Registry { index, error })?;
        if config.fault.mode == FaultMode::WrongServerCert && rogue.is_none() {
            return Err(FaultError::NoRogueCertificate.into());
        }
        let listener = bind(config.listen).map_err(|source| StartError::Listen {
            what: "central",
            addr: config.listen,
            source,
        })?;
        let addr = listener.local_addr().map_err(|source| StartError::Listen {
            what: "central",
            addr: config.listen,
            source,
        })?;
        let control_listener =
            TcpListener::bind(config.control)
                .await
                .map_err(|source| StartError::Listen {
                    what: "central control",
                    addr: config.control,
                    source,
                })?;
        let control_addr = control_listener
            .local_addr()
            .map_err(|source| StartError::Listen {
                what: "central control",
                addr: config.control,
                source,
            })?;
        let registry_entries = feeds.registry_len();
        let shared = Arc::new(Shared {
            records: Mutex::new(Records::default()),
            feeds: Mutex::new(feeds),
            counters: Counters::default(),
            last_tls_refusal: Mutex::new(String::new()),
            // Generation 1 is the fault at start; the accept loop reports it applied.
            fault: watch::Sender::new((1, config.fault)),
            applied: watch::Sender::new(Applied::default()),
            has_rogue: rogue.is_some(),
            addr,
        });
        let (stop, _) = watch::channel(false);
        let acceptors = Acceptors {
            main: TlsAcceptor::from(main),
            rogue: rogue.map(TlsAcceptor::from),
        };
        let accept = tokio::spawn(accept_loop(
            shared.clone(),
            listener,
            acceptors,
            https_router(shared.clone()),
            stop.subscribe(),
        ));
        let control_task = {
            let router = crate::control::router(shared.clone());
            let mut stop = stop.subscribe();
            tokio::spawn(async move {
                let shutdown = async move {
                    let _ = stop.wait_for(|s| *s).await;
                };
                if let Err(e) = axum::serve(control_listener, router)
                    .with_graceful_shutdown(shutdown)
                    .await
                {
                    tracing::error!(error = %e, "central control API failed");
                }
            })
        };
        // The fault at start is in effect when start returns (`down`: not listening).
        let _ = shared
            .applied
            .subscribe()
            .wait_for(|a| a.generation >= 1)
            .await;
        tracing::info!(%addr, %control_addr, registry_entries, "central started");
        Ok(CentralHandle {
            shared,
            addr,
            control_addr,
            stop,
            tasks: vec![accept, control_task],
        })
    }
}

impl CentralHandle {
    /// The HTTPS address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    /// `https://<addr>`.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }
    pub fn control_addr(&self) -> SocketAddr {
        self.control_addr
    }
    /// `http://<control addr>`.
    pub fn control_url(&self) -> String {
        format!("http://{}", self.control_addr)
    }
    pub fn fault(&self) -> Fault {
        self.shared.fault()
    }
    /// Changes the fault mode (as `POST /control/fault`); returns once it is in effect
    /// (for `down`: the listener is closed; leaving `down`: it is bound again).
    pub async fn set_fault(&self, fault: Fault) -> Result<(), FaultError> {
        self.shared.set_fault(fault).await
    }
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }
    /// The records held, in arrival order.
    pub fn records(&self) -> Vec<StoredRecord> {
        self.shared.records()
    }
    /// Forgets every record and every gate's last seq; how many were held.
    pub fn reset_records(&self) -> usize {
        self.shared.reset_records()
    }
    /// Appends a registry upsert; its seq.
    pub fn upsert(&self, traveler: Value) -> Result<u64, FeedError> {
        self.shared.upsert(traveler)
    }
    /// Appends a registry erase; its seq.
    pub fn erase(&self, passport_number: &str, nationality: &str) -> Result<u64, FeedError> {
        self.shared
            .erase(passport_number.to_owned(), nationality.to_owned())
    }
    /// Appends a revocation; its seq.
    pub fn revoke(
        &self,
        passport_number: &str,
        nationality: &str,
        status: &str,
    ) -> Result<u64, FeedError> {
        self.shared.revoke(
            passport_number.to_owned(),
            nationality.to_owned(),
            status.to_owned(),
        )
    }

    /// Stops serving and waits (a little) for the tasks to end.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for task in self.tasks.drain(..) {
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(3), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
        tracing::info!("central stopped");
    }
}

impl Drop for CentralHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        for task in self.tasks.drain(..) {
            task.abort();
        }
    }
}

/// Resolves once `stop` is true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

#[derive(Clone)]
struct Acceptors {
    main: TlsAcceptor,
    rogue: Option<TlsAcceptor>,
}

/// Accepts connections while the fault is not `down`; closes the listener (and every
/// open connection) when it is, binds the same address again when it no longer is.
/// Entering or leaving `wrong-server-cert` closes the open connections too.
/// Every fault change is reported in `applied` once in effect.
async fn accept_loop(
    shared: Arc<Shared>,
    listener: TcpListener,
    acceptors: Acceptors,
    router: Router,
    mut stop: watch::Receiver<bool>,
) {
    let mut listener = Some(listener);
    let mut faults = shared.fault.subscribe();
    // Bumped to close every open connection.
    let (close_all, _) = watch::channel(0u64);
    let mut previous = shared.fault().mode;
    loop {
        let (generation, fault) = *faults.borrow_and_update();
        let mut error = None;
        // Open connections were made with the other certificate: close them, so the
        // next request sees the change.
        if (previous == FaultMode::WrongServerCert) != (fault.mode == FaultMode::WrongServerCert) {
            close_all.send_modify(|n| *n += 1);
        }
        previous = fault.mode;
        if fault.mode == FaultMode::Down {
            if listener.take().is_some() {
                close_all.send_modify(|n| *n += 1);
                tracing::info!(addr = %shared.addr, "central: down (listener closed)");
            }
        } else if listener.is_none() {
            match bind(shared.addr) {
                Ok(l) => {
                    tracing::info!(addr = %shared.addr, "central: listening again");
                    listener = Some(l);
                }
                Err(e) => {
                    tracing::warn!(addr = %shared.addr, error = %e, "central: cannot listen again");
                    error = Some(e.to_string());
                }
            }
        }
        let retry = error.is_some();
        shared.applied.send_replace(Applied { generation, error });
        match &listener {
            None => {
                tokio::select! {
                    changed = faults.changed() => if changed.is_err() { return },
                    () = stopped(&mut stop) => return,
                    // A failed bind is tried again.
                    _ = tokio::time::sleep(Duration::from_millis(200)), if retry => {}
                }
            }
            Some(l) => loop {
                let conn_stop = stop.clone();
                tokio::select! {
                    changed = faults.changed() => {
                        if changed.is_err() { return }
                        break;
                    }
                    () = stopped(&mut stop) => return,
                    accepted = l.accept() => match accepted {
                        Ok((tcp, peer)) => {
                            let acceptor = match (shared.fault().mode, &acceptors.rogue) {
                                (FaultMode::WrongServerCert, Some(rogue)) => rogue.clone(),
                                _ => acceptors.main.clone(),
                            };
                            let conn = connection(shared.clone(), tcp, peer, acceptor, router.clone());
                            let mut closed = close_all.subscribe();
                            let mut stop = conn_stop;
                            tokio::spawn(async move {
                                tokio::select! {
                                    () = conn => {}
                                    _ = closed.changed() => {}
                                    () = stopped(&mut stop) => {}
                                }
                            });
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "central: accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
            },
        }
    }
}

/// What a request knows of its connection.
struct Conn {
    /// The client certificate's CN.
    gate_id: Option<String>,
    /// Notified to drop the connection without answering.
    drop: Notify,
}

async fn connection(
    shared: Arc<Shared>,
    tcp: TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    router: Router,
) {
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            bump(&shared.counters.tls_handshakes_refused, 1);
            *lock(&shared.last_tls_refusal) = e.to_string();
            tracing::info!(%peer, error = %e, "central: TLS handshake refused");
            return;
        }
        Err(_) => {
            bump(&shared.counters.tls_handshakes_refused, 1);
            *lock(&shared.last_tls_refusal) = "handshake timed out".to_owned();
            tracing::info!(%peer, "central: TLS handshake timed out");
            return;
        }
    };
    bump(&shared.counters.tls_handshakes, 1);
    let gate_id = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|certs| certs.first())
        .and_then(|cert| pki::common_name(cert));
    tracing::debug!(%peer, gate = gate_id.as_deref().unwrap_or("?"), "central: TLS connection");
    let conn = Arc::new(Conn {
        gate_id,
        drop: Notify::new(),
    });
    let service = {
        let conn = conn.clone();
        router.map_request(move |mut request: Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(conn.clone());
            request
        })
    };
    let builder = auto::Builder::new(TokioExecutor::new());
    let serving = builder.serve_connection(TokioIo::new(tls), TowerToHyperService::new(service));
    tokio::select! {
        result = serving => if let Err(e) = result {
            tracing::debug!(%peer, error = %e, "central: connection ended");
        },
        () = conn.drop.notified() => {
            tracing::info!(%peer, "central: connection dropped mid-batch");
        }
    }
}

pub(crate) fn problem(status: StatusCode, error: impl Into<String>) -> Response {
    (
        status,
        Json(ProblemBody {
            error: error.into(),
        }),
    )
        .into_response()
}

fn https_router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route(
            "/v1/records",
            post(post_records).layer(DefaultBodyLimit::max(MAX_BODY)),
        )
        .route("/v1/registry/changes", get(registry_changes))
        .route("/v1/revocations", get(revocations))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(shared.clone(), faults))
        .with_state(shared)
}

async fn faults(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let fault = shared.fault();
    if fault.mode == FaultMode::Http500 {
        return problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "central simulator: fault http500",
        );
    }
    let response = next.run(request).await;
    if fault.mode == FaultMode::Slow {
        tokio::time::sleep(Duration::from_millis(fault.delay_ms)).await;
    }
    response
}

async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn not_found() -> Response {
    problem(StatusCode::NOT_FOUND, "no such call")
}

async fn post_records(
    State(shared): State<Arc<Shared>>,
    Extension(conn): Extension<Arc<Conn>>,
    body: Bytes,
) -> Response {
    let counters = &shared.counters;
    let batch: RecordBatch = match serde_json::from_slice(&body) {
        Ok(batch) => batch,
        Err(e) => {
            bump(&counters.malformed, 1);
            // The message may quote the body: it goes back to the gate, not to the log.
            tracing::info!("central: malformed record batch refused");
            return problem(
                StatusCode::BAD_REQUEST,
                format!("malformed record batch: {e}"),
            );
        }
    };
    if batch.gate_id.is_empty() {
        bump(&counters.malformed, 1);
        return problem(StatusCode::BAD_REQUEST, "`gate_id` is empty");
    }
    if batch.records.len() > MAX_BATCH {
        bump(&counters.malformed, 1);
        tracing::info!(records = batch.records.len(), "central: batch too large");
        return problem(
            StatusCode::BAD_REQUEST,
            format!(
                "a batch holds at most {MAX_BATCH} records, this one {}",
                batch.records.len()
            ),
        );
    }
    if conn.gate_id.as_deref() != Some(batch.gate_id.as_str()) {
        bump(&counters.forbidden, 1);
        tracing::warn!(
            gate = %batch.gate_id,
            certificate = conn.gate_id.as_deref().unwrap_or("?"),
            "central: batch for another gate refused"
        );
        return problem(
            StatusCode::FORBIDDEN,
            format!(
                "the client certificate is gate {:?}'s, not {:?}'s",
                conn.gate_id.as_deref().unwrap_or(""),
                batch.gate_id
            ),
        );
    }
    bump(&counters.batches, 1);
    let drop_mid_batch = shared.fault().mode == FaultMode::DropMidBatch;
    let records = if drop_mid_batch {
        &batch.records[..batch.records.len().div_ceil(2)]
    } else {
        &batch.records[..]
    };
    let outcome = lock(&shared.records).apply(&batch.gate_id, records, &now_rfc3339());
    let gate = batch.gate_id.as_str();
    let response = match outcome {
        BatchOutcome::Acknowledged {
            acknowledged,
            new,
            duplicates,
        } => {
            bump(&counters.duplicates, duplicates as u64);
            tracing::info!(
                gate,
                records = records.len(),
                new,
                duplicates,
                "central: batch acknowledged"
            );
            (StatusCode::OK, Json(RecordAck { acknowledged })).into_response()
        }
        BatchOutcome::OutOfOrder {
            refusal,
            new,
            duplicates,
        } => {
            bump(&counters.duplicates, duplicates as u64);
            bump(&counters.out_of_order, 1);
            tracing::warn!(
                gate,
                new,
                duplicates,
                record_id = %refusal.record_id,
                last_seq = refusal.last_seq,
                "central: record out of order"
            );
            (StatusCode::CONFLICT, Json(refusal)).into_response()
        }
        BatchOutcome::Conflict { record_id } => {
            bump(&counters.conflicts, 1);
            tracing::warn!(gate, %record_id, "central: record id held with another body");
            problem(
                StatusCode::CONFLICT,
                format!("record {record_id} is held with another body"),
            )
        }
    };
    if drop_mid_batch {
        bump(&counters.dropped_batches, 1);
        conn.drop.notify_one();
        // The connection task drops the connection (and this future with it).
        std::future::pending::<()>().await;
    }
    response
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedQuery {
    #[serde(default)]
    after: u64,
    limit: Option<usize>,
}

/// `after` and the page size, or why the query is refused (400).
fn feed_query(query: Result<Query<FeedQuery>, QueryRejection>) -> Result<(u64, usize), String> {
    let Query(query) = query.map_err(|e| e.body_text())?;
    Ok((query.after, page_size(query.limit)?))
}

async fn registry_changes(
    State(shared): State<Arc<Shared>>,
    query: Result<Query<FeedQuery>, QueryRejection>,
) -> Response {
    match feed_query(query) {
        Ok((after, limit)) => Json(lock(&shared.feeds).registry_page(after, limit)).into_response(),
        Err(e) => problem(StatusCode::BAD_REQUEST, e),
    }
}

async fn revocations(
    State(shared): State<Arc<Shared>>,
    query: Result<Query<FeedQuery>, QueryRejection>,
) -> Response {
    match feed_query(query) {
        Ok((after, limit)) => {
            Json(lock(&shared.feeds).revocation_page(after, limit)).into_response()
        }
        Err(e) => problem(StatusCode::BAD_REQUEST, e),
    }
}
