//! Test PKI (rcgen), a small mTLS central (hyper + tokio-rustls) with faults, an
//! in-memory outbox and an event recorder.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;
use torii_link::client::BoxFuture;
use torii_link::protocol::{
    OutOfOrder, ProblemBody, RecordAck, RecordBatch, RecordEnvelope, RegistryChange, RegistryPage,
    Revocation, RevocationPage,
};
use torii_link::{
    CentralClient, ClientOptions, ClientTls, Connector, EventHook, LinkEvent, PendingRecord,
    RecordSource, TlsFiles, Transport,
};
use uuid::Uuid;

/// A certificate authority.
pub struct Authority {
    issuer: Issuer<'static, KeyPair>,
    pub pem: String,
    pub der: CertificateDer<'static>,
}

/// A certificate and its key.
#[derive(Clone)]
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: CertificateDer<'static>,
    pub key_der: Vec<u8>,
}

impl Authority {
    pub fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Authority {
            pem: cert.pem(),
            der: cert.der().clone(),
            issuer: Issuer::new(params, key),
        }
    }

    fn issue(&self, cn: &str, sans: &[&str], usage: ExtendedKeyUsagePurpose) -> Issued {
        let mut params =
            CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![usage];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().clone(),
            key_der: key.serialize_der(),
        }
    }

    /// A server certificate for 127.0.0.1 and `central.test`.
    pub fn server(&self) -> Issued {
        self.issue(
            "central.test",
            &["127.0.0.1", "central.test"],
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    /// A gate's client certificate.
    pub fn client(&self, cn: &str) -> Issued {
        self.issue(cn, &[], ExtendedKeyUsagePurpose::ClientAuth)
    }
}

/// Writes a file by renaming a complete temporary one into place (as a rotation should).
pub fn replace_file(path: &Path, content: &str) {
    let temporary = path.with_extension("new");
    std::fs::write(&temporary, content).unwrap();
    std::fs::rename(&temporary, path).unwrap();
}

/// The gate's TLS files in `dir`.
pub fn write_tls_files(dir: &Path, ca: &Authority, client: &Issued) -> TlsFiles {
    let files = TlsFiles {
        ca: dir.join("central-ca.pem"),
        client_certificate: dir.join("gate.pem"),
        client_key: dir.join("gate.key"),
    };
    replace_file(&files.ca, &ca.pem);
    replace_file(&files.client_certificate, &client.cert_pem);
    replace_file(&files.client_key, &client.key_pem);
    files
}

/// What the test central does with the next request.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Answers with this status and a problem body.
    Status(u16),
    /// Closes the connection without answering.
    Drop,
    /// Stores a record batch, then closes the connection without answering.
    StoreThenDrop,
    /// Answers 200 with this body.
    Body(String),
    /// Never answers.
    Stall,
}

/// The test central's state.
#[derive(Default)]
pub struct CentralState {
    /// Records stored, in arrival order.
    pub stored: Vec<RecordEnvelope>,
    pub ids: HashSet<Uuid>,
    pub last_seq: u64,
    /// Seqs of every batch received.
    pub batches: Vec<Vec<u64>>,
    /// `METHOD path?query` of every request.
    pub requests: Vec<String>,
    pub faults: VecDeque<Fault>,
    /// The client certificate of each connection.
    pub peers: Vec<CertificateDer<'static>>,
    pub registry: Vec<RegistryChange>,
    pub revocations: Vec<Revocation>,
}

impl CentralState {
    pub fn stored_seqs(&self) -> Vec<u64> {
        self.stored.iter().map(|r| r.seq).collect()
    }
    pub fn record_requests(&self) -> usize {
        self.requests
            .iter()
            .filter(|r| r.starts_with("POST /v1/records"))
            .count()
    }
}

pub type SharedState = Arc<Mutex<CentralState>>;

/// The mTLS central: server certificate from `server_ca`, client certificates from
/// `client_ca` required. Listens on TCP (127.0.0.1) or on a [`MemoryNet`].
pub struct TestCentral {
    pub addr: SocketAddr,
    pub state: SharedState,
    config: Arc<ServerConfig>,
    net: Option<Arc<MemoryNet>>,
    accept: JoinHandle<()>,
    connections: Arc<Mutex<JoinSet<()>>>,
}

/// An in-memory network to one central: connections are `tokio::io::duplex` pipes, so
/// nothing waits on the OS and a paused clock only moves when every task waits on a
/// timer (exact backoff and timeout behaviour, real TLS and HTTP).
#[derive(Default)]
pub struct MemoryNet {
    central: Mutex<Option<mpsc::UnboundedSender<Box<dyn Transport>>>>,
}

impl MemoryNet {
    /// A central that takes connections and never says a word.
    pub fn listen_silently(&self) -> JoinHandle<()> {
        let (tx, mut rx) = mpsc::unbounded_channel::<Box<dyn Transport>>();
        *self.central.lock().unwrap() = Some(tx);
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Some(stream) = rx.recv().await {
                held.push(stream);
            }
        })
    }
}

impl Connector for MemoryNet {
    fn connect<'a>(
        &'a self,
        _host: &'a str,
        _port: u16,
    ) -> BoxFuture<'a, std::io::Result<Box<dyn Transport>>> {
        Box::pin(async move {
            let refused = || std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
            let central = self.central.lock().unwrap().clone().ok_or_else(refused)?;
            let (gate, central_end) = tokio::io::duplex(64 * 1024);
            central.send(Box::new(central_end)).map_err(|_| refused())?;
            Ok(Box::new(gate) as Box<dyn Transport>)
        })
    }
}

pub fn server_config(server: &Issued, client_ca: &Authority) -> Arc<ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    roots.add(client_ca.der.clone()).unwrap();
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .unwrap();
    let config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![server.der.clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server.key_der.clone())),
        )
        .unwrap();
    Arc::new(config)
}

impl TestCentral {
    pub async fn start(config: Arc<ServerConfig>, state: SharedState) -> Self {
        Self::start_on("127.0.0.1:0".parse().unwrap(), config, state).await
    }

    pub async fn start_on(addr: SocketAddr, config: Arc<ServerConfig>, state: SharedState) -> Self {
        let listener = TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = mpsc::unbounded_channel::<Box<dyn Transport>>();
        let pump = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                if tx.send(Box::new(tcp)).is_err() {
                    break;
                }
            }
        });
        Self::serve(addr, None, config, state, rx, Some(pump))
    }

    /// Listens on `net` (replacing whoever listened there).
    pub fn start_memory(
        net: &Arc<MemoryNet>,
        config: Arc<ServerConfig>,
        state: SharedState,
    ) -> Self {
        let (tx, rx) = mpsc::unbounded_channel::<Box<dyn Transport>>();
        *net.central.lock().unwrap() = Some(tx);
        Self::serve(
            "127.0.0.1:443".parse().unwrap(),
            Some(net.clone()),
            config,
            state,
            rx,
            None,
        )
    }

    fn serve(
        addr: SocketAddr,
        net: Option<Arc<MemoryNet>>,
        config: Arc<ServerConfig>,
        state: SharedState,
        mut incoming: mpsc::UnboundedReceiver<Box<dyn Transport>>,
        pump: Option<JoinHandle<()>>,
    ) -> Self {
        let connections = Arc::new(Mutex::new(JoinSet::new()));
        let accept = {
            let acceptor = TlsAcceptor::from(config.clone());
            let state = state.clone();
            let connections = connections.clone();
            tokio::spawn(async move {
                let _pump = pump.map(AbortOnDrop);
                while let Some(stream) = incoming.recv().await {
                    let acceptor = acceptor.clone();
                    let state = state.clone();
                    connections.lock().unwrap().spawn(async move {
                        let Ok(tls) = acceptor.accept(stream).await else {
                            return;
                        };
                        if let Some(peer) = tls.get_ref().1.peer_certificates() {
                            state.lock().unwrap().peers.push(peer[0].clone());
                        }
                        let service = hyper::service::service_fn(move |request| {
                            let state = state.clone();
                            async move { handle(state, request).await }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(tls), service)
                            .await;
                    });
                }
            })
        };
        TestCentral {
            addr,
            state,
            config,
            net,
            accept,
            connections,
        }
    }

    pub fn url(&self) -> String {
        match self.net {
            Some(_) => "https://central.test".into(),
            None => format!("https://{}", self.addr),
        }
    }

    /// Central goes away: the listener and every connection are closed (on a
    /// [`MemoryNet`], connecting is refused until a central listens again).
    pub async fn shutdown(self) -> (SocketAddr, Arc<ServerConfig>, SharedState) {
        if let Some(net) = &self.net {
            *net.central.lock().unwrap() = None;
        }
        self.accept.abort();
        let _ = self.accept.await;
        let mut connections = std::mem::take(&mut *self.connections.lock().unwrap());
        connections.shutdown().await;
        (self.addr, self.config, self.state)
    }

    /// Closes the kept-alive connections (the listener stays).
    pub async fn drop_connections(&self) {
        let mut connections = std::mem::take(&mut *self.connections.lock().unwrap());
        connections.shutdown().await;
    }
}

struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn json(status: StatusCode, body: &impl serde::Serialize) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(serde_json::to_vec(body).unwrap())))
        .unwrap()
}

#[derive(Debug)]
struct DropConnection;

impl std::fmt::Display for DropConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("dropped on purpose")
    }
}

impl std::error::Error for DropConnection {}

fn query(uri: &hyper::Uri, name: &str) -> Option<u64> {
    uri.query()?.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == name).then(|| value.parse().ok())?
    })
}

async fn handle(
    state: SharedState,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, DropConnection> {
    let method = request.method().clone();
    let uri = request.uri().clone();
    let body = request
        .into_body()
        .collect()
        .await
        .map_err(|_| DropConnection)?
        .to_bytes();
    let fault = {
        let mut state = state.lock().unwrap();
        state.requests.push(format!(
            "{method} {}",
            uri.path_and_query().map(|p| p.as_str()).unwrap_or("")
        ));
        state.faults.pop_front()
    };
    if let Some(Fault::Stall) = fault {
        std::future::pending::<()>().await;
    }
    let mut state = state.lock().unwrap();
    match &fault {
        Some(Fault::Status(status)) => {
            return Ok(json(
                StatusCode::from_u16(*status).unwrap(),
                &ProblemBody {
                    error: "injected".into(),
                },
            ));
        }
        Some(Fault::Drop) => return Err(DropConnection),
        Some(Fault::Body(body)) => {
            return Ok(Response::new(Full::new(Bytes::from(body.clone()))));
        }
        Some(Fault::StoreThenDrop | Fault::Stall) | None => {}
    }
    let answer = match (method.as_str(), uri.path()) {
        ("POST", "/v1/records") => {
            let Ok(batch) = serde_json::from_slice::<RecordBatch>(&body) else {
                return Ok(json(
                    StatusCode::BAD_REQUEST,
                    &ProblemBody {
                        error: "bad batch".into(),
                    },
                ));
            };
            state
                .batches
                .push(batch.records.iter().map(|r| r.seq).collect());
            let mut acknowledged = Vec::new();
            let mut refusal = None;
            for record in batch.records {
                if state.ids.contains(&record.record_id) {
                    acknowledged.push(record.record_id);
                } else if record.seq > state.last_seq {
                    state.last_seq = record.seq;
                    state.ids.insert(record.record_id);
                    acknowledged.push(record.record_id);
                    state.stored.push(record);
                } else {
                    refusal = Some(OutOfOrder {
                        acknowledged: std::mem::take(&mut acknowledged),
                        record_id: record.record_id,
                        last_seq: state.last_seq,
                    });
                    break;
                }
            }
            match refusal {
                Some(refusal) => json(StatusCode::CONFLICT, &refusal),
                None => json(StatusCode::OK, &RecordAck { acknowledged }),
            }
        }
        ("GET", "/v1/registry/changes") => {
            let after = query(&uri, "after").unwrap_or(0);
            let limit = query(&uri, "limit").unwrap_or(1000) as usize;
            let waiting: Vec<_> = state
                .registry
                .iter()
                .filter(|c| c.seq() > after)
                .cloned()
                .collect();
            let changes: Vec<_> = waiting.iter().take(limit).cloned().collect();
            json(
                StatusCode::OK,
                &RegistryPage {
                    cursor: changes.last().map(|c| c.seq()).unwrap_or(after),
                    more: waiting.len() > changes.len(),
                    changes,
                },
            )
        }
        ("GET", "/v1/revocations") => {
            let after = query(&uri, "after").unwrap_or(0);
            let limit = query(&uri, "limit").unwrap_or(1000) as usize;
            let waiting: Vec<_> = state
                .revocations
                .iter()
                .filter(|r| r.seq > after)
                .cloned()
                .collect();
            let revocations: Vec<_> = waiting.iter().take(limit).cloned().collect();
            json(
                StatusCode::OK,
                &RevocationPage {
                    cursor: revocations.last().map(|r| r.seq).unwrap_or(after),
                    more: waiting.len() > revocations.len(),
                    revocations,
                },
            )
        }
        ("GET", "/health") => json(StatusCode::OK, &serde_json::json!({"status": "ok"})),
        _ => json(
            StatusCode::NOT_FOUND,
            &ProblemBody {
                error: "no such call".into(),
            },
        ),
    };
    if matches!(fault, Some(Fault::StoreThenDrop)) {
        return Err(DropConnection);
    }
    Ok(answer)
}

/// An outbox in memory.
#[derive(Default)]
pub struct MemoryOutbox {
    records: Mutex<BTreeMap<u64, PendingRecord>>,
    next_seq: Mutex<u64>,
}

impl MemoryOutbox {
    /// Commits a record; returns its seq.
    pub fn commit(&self) -> u64 {
        let seq = *self.next_seq.lock().unwrap() + 1;
        self.insert(seq, Uuid::new_v4());
        seq
    }

    pub fn insert(&self, seq: u64, record_id: Uuid) {
        let payload =
            serde_json::to_vec(&serde_json::json!({"kind": "entry", "seq": seq})).unwrap();
        self.records.lock().unwrap().insert(
            seq,
            PendingRecord {
                seq,
                record_id,
                payload,
            },
        );
        let mut next = self.next_seq.lock().unwrap();
        *next = (*next).max(seq);
    }

    pub fn len(&self) -> usize {
        self.records.lock().unwrap().len()
    }

    pub fn seqs(&self) -> Vec<u64> {
        self.records.lock().unwrap().keys().copied().collect()
    }
}

impl RecordSource for MemoryOutbox {
    fn pending(&self, max: usize) -> Result<Vec<PendingRecord>, String> {
        Ok(self
            .records
            .lock()
            .unwrap()
            .values()
            .take(max)
            .cloned()
            .collect())
    }

    fn acknowledge(&self, ids: &[Uuid]) -> Result<(), String> {
        let ids: HashSet<_> = ids.iter().collect();
        self.records
            .lock()
            .unwrap()
            .retain(|_, r| !ids.contains(&r.record_id));
        Ok(())
    }
}

/// Collects events.
#[derive(Clone, Default)]
pub struct Events(Arc<Mutex<Vec<LinkEvent>>>);

impl Events {
    pub fn hook(&self) -> EventHook {
        let events = self.0.clone();
        Arc::new(move |event: &LinkEvent| events.lock().unwrap().push(event.clone()))
    }
    pub fn all(&self) -> Vec<LinkEvent> {
        self.0.lock().unwrap().clone()
    }
    pub fn named(&self, name: &str) -> Vec<LinkEvent> {
        self.all()
            .into_iter()
            .filter(|e| e.name() == name)
            .collect()
    }
}

/// A central, its CA and a gate's TLS files trusting it.
pub struct Setup {
    pub dir: tempfile::TempDir,
    pub ca: Authority,
    pub gate: Issued,
    pub files: TlsFiles,
    pub central: TestCentral,
    /// Set when central is on an in-memory network.
    pub net: Option<Arc<MemoryNet>>,
}

impl Setup {
    /// Central on 127.0.0.1 (real-time tests).
    pub async fn new() -> Self {
        Self::build(None).await
    }

    /// Central on an in-memory network (paused-clock tests).
    pub async fn memory() -> Self {
        Self::build(Some(Arc::new(MemoryNet::default()))).await
    }

    async fn build(net: Option<Arc<MemoryNet>>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ca = Authority::new("Test Central CA");
        let gate = ca.client("NRT-T1-E01");
        let files = write_tls_files(dir.path(), &ca, &gate);
        let config = server_config(&ca.server(), &ca);
        let central = match &net {
            Some(net) => TestCentral::start_memory(net, config, SharedState::default()),
            None => TestCentral::start(config, SharedState::default()).await,
        };
        Setup {
            dir,
            ca,
            gate,
            files,
            central,
            net,
        }
    }

    /// A client of this setup's central with the gate's TLS files (long timeouts: the
    /// tests that use them wait on the paused clock).
    pub fn client(&self) -> Arc<CentralClient> {
        client_for(&self.central.url(), &self.files, self.net.as_ref())
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

pub fn client_for(url: &str, files: &TlsFiles, net: Option<&Arc<MemoryNet>>) -> Arc<CentralClient> {
    let tls = Arc::new(ClientTls::new(files.clone()).unwrap());
    let mut options = ClientOptions::new(url);
    options.connect_timeout = std::time::Duration::from_secs(10);
    options.request_timeout = std::time::Duration::from_secs(30);
    Arc::new(match net {
        Some(net) => CentralClient::with_connector(&options, tls, net.clone()).unwrap(),
        None => CentralClient::new(&options, tls).unwrap(),
    })
}
