//! The HTTPS client to central: HTTP/1.1 over TLS 1.3 with the gate's client
//! certificate ([`ClientTls`]), connections kept alive and reused, a fresh one made when
//! a kept one failed or the TLS files were reloaded.
//!
//! Errors are classified by [`ErrorKind`] so the forwarder, the sync and the metrics can
//! count them by kind.

use std::error::Error as _;
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, StatusCode, Uri, header};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};
use tokio_rustls::TlsConnector;

use crate::protocol::{
    OutOfOrder, ProblemBody, RecordAck, RecordBatch, RegistryPage, RevocationPage,
};
use crate::tls::ClientTls;

/// Largest answer read from central (a registry page of [`crate::protocol::MAX_PAGE`]
/// entries with their templates fits easily).
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// Kept-alive connections held for reuse.
const MAX_IDLE: usize = 4;

/// How an exchange with central (or the gate's own store around it) failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// No TCP connection (refused, unreachable, name not resolved), or it was lost.
    Connect,
    /// The TLS handshake failed: central's certificate not from our CA or not for its
    /// name, our client certificate refused, no TLS at all on the other end.
    Tls,
    /// Connecting or the exchange took longer than configured.
    Timeout,
    /// Central answered with an error status.
    Http,
    /// Central's answer (or a page's content) is not what the protocol says.
    Protocol,
    /// Central refused a record (409: its seq out of order, or its id held with another
    /// body): needs a person.
    Conflict,
    /// The gate's own store (outbox, registry) failed.
    Local,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 7] = [
        ErrorKind::Connect,
        ErrorKind::Tls,
        ErrorKind::Timeout,
        ErrorKind::Http,
        ErrorKind::Protocol,
        ErrorKind::Conflict,
        ErrorKind::Local,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Tls => "tls",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Http => "http",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Local => "local",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed exchange with central.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("cannot reach central: {0}")]
    Connect(String),
    #[error("TLS with central failed: {0}")]
    Tls(String),
    #[error("central did not answer in time ({0})")]
    Timeout(&'static str),
    #[error("central answered {status}: {body}")]
    Http { status: u16, body: String },
    #[error("central's answer is not understood: {0}")]
    Protocol(String),
}

impl LinkError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            LinkError::Connect(_) => ErrorKind::Connect,
            LinkError::Tls(_) => ErrorKind::Tls,
            LinkError::Timeout(_) => ErrorKind::Timeout,
            LinkError::Http { .. } => ErrorKind::Http,
            LinkError::Protocol(_) => ErrorKind::Protocol,
        }
    }
}

/// Where central is and how long to wait for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientOptions {
    /// `https://host[:port][/prefix]`.
    pub url: String,
    /// The name central's certificate must carry, if not the URL's host (e.g. when the
    /// URL names an address).
    pub server_name: Option<String>,
    /// TCP connect and TLS handshake together.
    pub connect_timeout: Duration,
    /// Sending a request and reading the whole answer.
    pub request_timeout: Duration,
}

impl ClientOptions {
    pub fn new(url: impl Into<String>) -> Self {
        ClientOptions {
            url: url.into(),
            server_name: None,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// The client's configuration was not usable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("central URL {url}: {problem}")]
pub struct UrlError {
    pub url: String,
    pub problem: String,
}

/// What `POST /v1/records` answered.
#[derive(Clone, Debug, PartialEq)]
pub enum PostOutcome {
    Acknowledged(RecordAck),
    OutOfOrder(OutOfOrder),
}

/// The calls the forwarder and the sync make; [`CentralClient`] makes them over HTTPS
/// (tests substitute their own).
pub trait Central: Send + Sync + 'static {
    fn post_records(
        &self,
        batch: &RecordBatch,
    ) -> impl Future<Output = Result<PostOutcome, LinkError>> + Send;
    fn registry_changes(
        &self,
        after: u64,
        limit: usize,
    ) -> impl Future<Output = Result<RegistryPage, LinkError>> + Send;
    fn revocations(
        &self,
        after: u64,
        limit: usize,
    ) -> impl Future<Output = Result<RevocationPage, LinkError>> + Send;
}

/// A byte stream to central (TCP, or an in-memory pipe in tests).
pub trait Transport: AsyncRead + AsyncWrite + Send + Unpin + 'static {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Transport for T {}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Opens the byte stream TLS runs over. [`TcpConnector`] unless replaced (tests run the
/// whole TLS and HTTP stack over in-memory pipes, where a paused clock is exact).
pub trait Connector: Send + Sync + 'static {
    fn connect<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> BoxFuture<'a, io::Result<Box<dyn Transport>>>;
}

/// TCP, with Nagle off.
#[derive(Clone, Copy, Debug, Default)]
pub struct TcpConnector;

impl Connector for TcpConnector {
    fn connect<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> BoxFuture<'a, io::Result<Box<dyn Transport>>> {
        Box::pin(async move {
            let tcp = TcpStream::connect((host, port)).await?;
            let _ = tcp.set_nodelay(true);
            Ok(Box::new(tcp) as Box<dyn Transport>)
        })
    }
}

struct Idle {
    generation: u64,
    sender: SendRequest<Full<Bytes>>,
}

/// The HTTPS client.
pub struct CentralClient {
    tls: Arc<ClientTls>,
    connector: Arc<dyn Connector>,
    host: String,
    port: u16,
    authority: String,
    base_path: String,
    server_name: ServerName<'static>,
    connect_timeout: Duration,
    request_timeout: Duration,
    idle: Mutex<Vec<Idle>>,
    connections: AtomicU64,
}

impl fmt::Debug for CentralClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CentralClient")
            .field("authority", &self.authority)
            .field("connections", &self.connections())
            .finish_non_exhaustive()
    }
}

impl CentralClient {
    /// A client connecting over TCP.
    pub fn new(options: &ClientOptions, tls: Arc<ClientTls>) -> Result<Self, UrlError> {
        Self::with_connector(options, tls, Arc::new(TcpConnector))
    }

    /// A client opening its byte streams with `connector`.
    pub fn with_connector(
        options: &ClientOptions,
        tls: Arc<ClientTls>,
        connector: Arc<dyn Connector>,
    ) -> Result<Self, UrlError> {
        let problem = |problem: &str| UrlError {
            url: options.url.clone(),
            problem: problem.into(),
        };
        let uri: Uri = options
            .url
            .parse()
            .map_err(|_| problem("not a valid URL"))?;
        if uri.scheme_str() != Some("https") {
            return Err(problem("must be https://"));
        }
        if uri.query().is_some() {
            return Err(problem("must not carry a query"));
        }
        let host = uri.host().ok_or_else(|| problem("has no host"))?;
        let bare_host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri.port_u16().unwrap_or(443);
        let authority = match uri.port_u16() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        let name = options
            .server_name
            .clone()
            .unwrap_or_else(|| bare_host.clone());
        let server_name = ServerName::try_from(name)
            .map_err(|_| problem("server name is not a valid DNS name or address"))?;
        Ok(CentralClient {
            tls,
            connector,
            host: bare_host,
            port,
            authority,
            base_path: uri.path().trim_end_matches('/').to_owned(),
            server_name,
            connect_timeout: options.connect_timeout,
            request_timeout: options.request_timeout,
            idle: Mutex::new(Vec::new()),
            connections: AtomicU64::new(0),
        })
    }

    pub fn tls(&self) -> &Arc<ClientTls> {
        &self.tls
    }

    /// Connections made so far (a kept-alive one is counted once).
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }

    /// Forgets the kept-alive connections: the next request connects anew.
    pub fn disconnect(&self) {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// One exchange: the answer's status and body (an error status is not an error
    /// here). A kept-alive connection that fails before answering is replaced by a fresh
    /// one once (every call of the protocol is idempotent).
    pub async fn request(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(StatusCode, Bytes), LinkError> {
        let (generation, config) = self.tls.current();
        let body = Bytes::from(body.unwrap_or_default());
        let has_body = !body.is_empty() || method == Method::POST;
        let build = || -> Result<Request<Full<Bytes>>, LinkError> {
            let mut request = Request::builder()
                .method(method.clone())
                .uri(format!("{}{}", self.base_path, path_and_query))
                .header(header::HOST, &self.authority)
                .header(header::ACCEPT, "application/json");
            if has_body {
                request = request.header(header::CONTENT_TYPE, "application/json");
            }
            request
                .body(Full::new(body.clone()))
                .map_err(|e| LinkError::Protocol(format!("request not built: {e}")))
        };
        if let Some(sender) = self.take_idle(generation) {
            match self.exchange(sender, generation, build()?).await {
                Ok(answer) => return Ok(answer),
                Err(Failed::BeforeAnswer(error)) => {
                    tracing::debug!(%error, "central link: kept-alive connection failed, connecting anew");
                }
                Err(Failed::Other(error)) => return Err(error),
            }
        }
        let sender = self.connect(config).await?;
        match self.exchange(sender, generation, build()?).await {
            Ok(answer) => Ok(answer),
            Err(Failed::BeforeAnswer(error) | Failed::Other(error)) => Err(error),
        }
    }

    /// GET, expecting 200 with `T`.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        path_and_query: &str,
    ) -> Result<T, LinkError> {
        let (status, body) = self.request(Method::GET, path_and_query, None).await?;
        json_answer(status, &body)
    }

    /// POST `body` as JSON, expecting 200 with `T`.
    pub async fn post_json<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, LinkError> {
        let (status, answer) = self.post_raw(path, body).await?;
        json_answer(status, &answer)
    }

    async fn post_raw<B: Serialize>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<(StatusCode, Bytes), LinkError> {
        let bytes = serde_json::to_vec(body)
            .map_err(|e| LinkError::Protocol(format!("request body not serialised: {e}")))?;
        self.request(Method::POST, path, Some(bytes)).await
    }

    fn take_idle(&self, generation: u64) -> Option<SendRequest<Full<Bytes>>> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        // Connections made with replaced TLS files are not reused.
        idle.retain(|c| c.generation == generation && !c.sender.is_closed());
        idle.pop().map(|c| c.sender)
    }

    fn put_idle(&self, generation: u64, sender: SendRequest<Full<Bytes>>) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(Idle { generation, sender });
        }
    }

    async fn connect(
        &self,
        config: Arc<rustls::ClientConfig>,
    ) -> Result<SendRequest<Full<Bytes>>, LinkError> {
        let deadline = Instant::now() + self.connect_timeout;
        let stream = timeout_at(deadline, self.connector.connect(&self.host, self.port))
            .await
            .map_err(|_| LinkError::Timeout("connecting"))?
            .map_err(|e| LinkError::Connect(format!("{}: {e}", self.authority)))?;
        let tls = timeout_at(
            deadline,
            TlsConnector::from(config).connect(self.server_name.clone(), stream),
        )
        .await
        .map_err(|_| LinkError::Timeout("TLS handshake"))?
        .map_err(|e| match find_tls_error(&e) {
            Some(tls) => LinkError::Tls(tls.to_string()),
            None => LinkError::Tls(format!("handshake failed: {e}")),
        })?;
        let (sender, connection) = timeout_at(
            deadline,
            hyper::client::conn::http1::handshake(TokioIo::new(tls)),
        )
        .await
        .map_err(|_| LinkError::Timeout("connecting"))?
        .map_err(|e| classify(&e))?;
        self.connections.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "central link: connection closed");
            }
        });
        Ok(sender)
    }

    async fn exchange(
        &self,
        mut sender: SendRequest<Full<Bytes>>,
        generation: u64,
        request: Request<Full<Bytes>>,
    ) -> Result<(StatusCode, Bytes), Failed> {
        let deadline = Instant::now() + self.request_timeout;
        let timed_out = || Failed::Other(LinkError::Timeout("waiting for the answer"));
        timeout_at(deadline, sender.ready())
            .await
            .map_err(|_| timed_out())?
            .map_err(|e| Failed::BeforeAnswer(classify(&e)))?;
        let response = timeout_at(deadline, sender.send_request(request))
            .await
            .map_err(|_| timed_out())?
            .map_err(|e| Failed::BeforeAnswer(classify(&e)))?;
        let status = response.status();
        let body = timeout_at(
            deadline,
            Limited::new(response.into_body(), MAX_RESPONSE_BYTES).collect(),
        )
        .await
        .map_err(|_| timed_out())?
        .map_err(|e| {
            Failed::Other(match e.downcast_ref::<hyper::Error>() {
                Some(e) => classify(e),
                None => LinkError::Protocol(format!("answer too large or unreadable: {e}")),
            })
        })?
        .to_bytes();
        self.put_idle(generation, sender);
        Ok((status, body))
    }
}

enum Failed {
    /// Nothing was answered: safe to try again on a fresh connection.
    BeforeAnswer(LinkError),
    Other(LinkError),
}

impl Central for CentralClient {
    async fn post_records(&self, batch: &RecordBatch) -> Result<PostOutcome, LinkError> {
        let (status, body) = self.post_raw("/v1/records", batch).await?;
        records_answer(status, &body)
    }

    async fn registry_changes(&self, after: u64, limit: usize) -> Result<RegistryPage, LinkError> {
        self.get_json(&format!("/v1/registry/changes?after={after}&limit={limit}"))
            .await
    }

    async fn revocations(&self, after: u64, limit: usize) -> Result<RevocationPage, LinkError> {
        self.get_json(&format!("/v1/revocations?after={after}&limit={limit}"))
            .await
    }
}

/// How the client reads central's answer to `POST /v1/records` (also the entry point of
/// the `central_answers` fuzz target, daemon/link/fuzz).
pub fn records_answer(status: StatusCode, body: &[u8]) -> Result<PostOutcome, LinkError> {
    match status {
        StatusCode::OK => parse_json(body).map(PostOutcome::Acknowledged),
        StatusCode::CONFLICT => match serde_json::from_slice::<OutOfOrder>(body) {
            Ok(out_of_order) => Ok(PostOutcome::OutOfOrder(out_of_order)),
            Err(_) => Err(http_error(status, body)),
        },
        _ => Err(http_error(status, body)),
    }
}

/// How the client reads an answer that must be 200 with `T` (the registry and
/// revocation pages among them).
pub fn json_answer<T: DeserializeOwned>(status: StatusCode, body: &[u8]) -> Result<T, LinkError> {
    if status != StatusCode::OK {
        return Err(http_error(status, body));
    }
    parse_json(body)
}

fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, LinkError> {
    serde_json::from_slice(body).map_err(|e| {
        // Position and category only: the message may quote the answer.
        LinkError::Protocol(format!(
            "answer is not the expected JSON ({:?} error at line {} column {})",
            e.classify(),
            e.line(),
            e.column()
        ))
    })
}

/// An error status with a short summary of the body (central's `error` text if it sent
/// a [`ProblemBody`]).
fn http_error(status: StatusCode, body: &[u8]) -> LinkError {
    let text = match serde_json::from_slice::<ProblemBody>(body) {
        Ok(problem) => problem.error,
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    };
    let mut summary: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect();
    if text.chars().count() > 200 {
        summary.push('…');
    }
    LinkError::Http {
        status: status.as_u16(),
        body: summary,
    }
}

/// The TLS error somewhere in an error's chain (tokio-rustls wraps rustls's errors in
/// `io::Error`s, whose `source` skips them).
fn find_tls_error<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
            && let Some(tls) = inner.downcast_ref::<rustls::Error>()
        {
            return Some(tls);
        }
        current = e.source();
    }
    None
}

/// A hyper error by kind: TLS (e.g. our client certificate refused, which TLS 1.3
/// reports after the handshake, on the first read), a garbled answer, or a lost
/// connection.
fn classify(error: &hyper::Error) -> LinkError {
    if let Some(tls) = find_tls_error(error) {
        return LinkError::Tls(tls.to_string());
    }
    if error.is_parse() || error.is_parse_status() {
        return LinkError::Protocol(format!("HTTP answer malformed: {error}"));
    }
    let detail = match error.source() {
        Some(source) => format!("{error}: {source}"),
        None => error.to_string(),
    };
    LinkError::Connect(format!("connection lost: {detail}"))
}
