//! Real TLS clients (tokio-rustls + hyper's HTTP/1 client) and a plain HTTP client for
//! the control API.

#![allow(dead_code)]

use http_body_util::{BodyExt, Full};
use hyper::Method;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tempfile::TempDir;
use torii_central::pki::{self, Pki};
use torii_central::{Central, CentralConfig, CentralHandle, Stats};
use uuid::Uuid;

pub const GATE: &str = "NRT-T1-E01";

pub struct Setup {
    pub dir: TempDir,
    pub pki: Pki,
    pub central: CentralHandle,
}

/// A fresh PKI for [`GATE`] and a central on free loopback ports with `registry`.
pub async fn start(registry: Vec<Value>) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki::generate(&dir.path().join("pki"), GATE, false).unwrap();
    let mut config = CentralConfig::from_pki(
        &pki,
        "127.0.0.1:0".parse().unwrap(),
        "127.0.0.1:0".parse().unwrap(),
    );
    config.registry = registry;
    let central = Central::start(config).await.unwrap();
    Setup { dir, pki, central }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// How a test client connects.
pub struct TlsClient {
    config: Arc<ClientConfig>,
    addr: SocketAddr,
}

impl TlsClient {
    /// Trusts `trust` (a CA file), presents `client` (`gate`, `gate-expired`, …) or no
    /// certificate, offers `versions`.
    pub fn with(
        pki: &Pki,
        addr: SocketAddr,
        trust: &Path,
        client: Option<&str>,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> Self {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(trust).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
        let builder = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots);
        let config = match client {
            Some(name) => {
                let (cert, key) = pki.client(name);
                let certs = CertificateDer::pem_file_iter(&cert)
                    .unwrap()
                    .collect::<Result<Vec<_>, _>>()
                    .unwrap();
                builder
                    .with_client_auth_cert(certs, PrivateKeyDer::from_pem_file(&key).unwrap())
                    .unwrap()
            }
            None => builder.with_no_client_auth(),
        };
        TlsClient {
            config: Arc::new(config),
            addr,
        }
    }

    /// The gate's good certificate, trusting the TTP CA, TLS 1.3.
    pub fn gate(setup: &Setup) -> Self {
        Self::as_client(setup, Some("gate"))
    }

    pub fn as_client(setup: &Setup, client: Option<&str>) -> Self {
        Self::with(
            &setup.pki,
            setup.central.addr(),
            &setup.pki.ca_cert(),
            client,
            &[&rustls::version::TLS13],
        )
    }

    /// A TLS connection, handshake done.
    pub async fn connect(
        &self,
    ) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, String> {
        let tcp = tokio::net::TcpStream::connect(self.addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let connector = tokio_rustls::TlsConnector::from(self.config.clone());
        let name = ServerName::try_from("localhost").unwrap();
        connector
            .connect(name, tcp)
            .await
            .map_err(|e| format!("handshake: {e}"))
    }

    /// One request on a new connection: the status and the JSON body, or why there was
    /// no answer.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), String> {
        let tls = self.connect().await?;
        http1(tls, method, path, body).await
    }

    pub async fn post_batch(
        &self,
        gate_id: &str,
        records: &[Value],
    ) -> Result<(u16, Value), String> {
        let body = json!({ "gate_id": gate_id, "records": records });
        self.request(Method::POST, "/v1/records", Some(&body)).await
    }
}

async fn http1<S>(
    stream: S,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> Result<(u16, Value), String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("http: {e}"))?;
    tokio::spawn(conn);
    let bytes = body.map(|b| b.to_string()).unwrap_or_default();
    let request = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(bytes)))
        .unwrap();
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("request: {e}"))?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("body: {e}"))?
        .to_bytes();
    let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    Ok((status, value))
}

/// A call to the control API (plain HTTP).
pub async fn control(
    central: &CentralHandle,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let tcp = tokio::net::TcpStream::connect(central.control_addr())
        .await
        .unwrap();
    http1(tcp, method, path, body).await.unwrap()
}

/// A record envelope: id from `n`, `seq`, a small body.
pub fn envelope(n: u128, seq: u64) -> Value {
    json!({
        "record_id": Uuid::from_u128(n),
        "seq": seq,
        "record": { "kind": "landing", "n": n as u64 },
    })
}

pub fn uuid(n: u128) -> Value {
    json!(Uuid::from_u128(n))
}

/// Waits (at most 10 s) until central's stats satisfy `done` (counters of failed
/// handshakes are bumped just after the client saw the failure).
pub async fn stats_until(central: &CentralHandle, done: impl Fn(&Stats) -> bool) -> Stats {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stats = central.stats();
        if done(&stats) || Instant::now() > deadline {
            return stats;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
