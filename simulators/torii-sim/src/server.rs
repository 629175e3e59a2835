//! The Unix socket server: one listener per device class (`DIR/<class>.sock`), one
//! tokio task per driver connection, and the generic fault modes of every device.
//!
//! Per connection: the driver sends `Hello` (protocol version and class must match,
//! otherwise the socket is closed); the simulator answers `Welcome` with the device
//! state, then re-announces what is on the device (see `devices::presence`). A new
//! connection replaces the previous one (which is closed).
//!
//! Calls: one at a time per device. A call arriving while another runs gets
//! `Err(Busy)`, except `GetState`, which is answered at once (`Busy` while a call
//! runs, `Unavailable` under a sticky fault, else `Ready`). `Cancel { id }` makes the
//! running call `id` answer `Err(Cancelled)`. Requests of another class:
//! `Err(NotSupported)`. Undecodable frames are logged and skipped; frames over
//! `MAX_FRAME_LEN` close the connection.
//!
//! Fault modes (control API):
//! - `fault <status>`: the next call (or, when sticky, every call until `clear`) fails
//!   with that status; a sticky fault also turns the device `Unavailable`
//!   (`StateChanged` event). `GetState` is never failed by a fault.
//! - `hang`: calls (including `GetState` and cancels) are swallowed and never
//!   answered, until `clear`; calls swallowed meanwhile stay unanswered.
//! - `unplug`: the connection is dropped and new ones are closed right after accept,
//!   until `replug` (or `clear`).
//! - `delay <ms>`: every call (not `GetState`) is answered that much later, until
//!   `clear` (e.g. a slow printer, to pull the card out mid-print).

use crate::devices::{self, Shared, lock};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::OwnedWriteHalf;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};
use torii_sdk::model::{DeviceClass, DeviceState, Event, Request, Response, Status};
use torii_sim_link::protocol::{
    self, DriverToSim, FrameError, MAX_FRAME_LEN, PROTOCOL_VERSION, SimToDriver,
};

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot create the socket directory {path}: {source}")]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} exists and is not a socket; refusing to replace it")]
    NotASocket { path: PathBuf },
    #[error("{path} is in use by a running simulator")]
    InUse { path: PathBuf },
    #[error("cannot listen on {path}: {source}")]
    Bind {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Path of `class`'s socket in `dir`.
pub fn socket_path(dir: &Path, class: DeviceClass) -> PathBuf {
    dir.join(format!("{}.sock", class.name()))
}

/// Binds `class`'s socket in `dir`, replacing a stale socket file.
pub(crate) fn bind(dir: &Path, class: DeviceClass) -> Result<(UnixListener, PathBuf), ServerError> {
    std::fs::create_dir_all(dir).map_err(|source| ServerError::Dir {
        path: dir.to_owned(),
        source,
    })?;
    let path = socket_path(dir, class);
    if let Ok(meta) = std::fs::symlink_metadata(&path) {
        use std::os::unix::fs::FileTypeExt;
        if !meta.file_type().is_socket() {
            return Err(ServerError::NotASocket { path });
        }
        if std::os::unix::net::UnixStream::connect(&path).is_ok() {
            return Err(ServerError::InUse { path });
        }
        let _ = std::fs::remove_file(&path);
    }
    let listener = UnixListener::bind(&path).map_err(|source| ServerError::Bind {
        path: path.clone(),
        source,
    })?;
    Ok((listener, path))
}

#[derive(Clone, Copy, Debug)]
struct Fault {
    status: Status,
    sticky: bool,
}

struct InFlight {
    id: u64,
    cancel: Option<oneshot::Sender<()>>,
}

struct Conn {
    id: u64,
    tx: mpsc::UnboundedSender<SimToDriver>,
    kill: Option<oneshot::Sender<()>>,
}

#[derive(Default)]
struct LinkInner {
    conn: Option<Conn>,
    next_conn: u64,
    connections: u64,
    unplugged: bool,
    hang: bool,
    fault: Option<Fault>,
    /// Latency added to every call (not `GetState`), in milliseconds.
    delay_ms: u64,
}

/// One device's link to its driver, and its fault modes.
pub struct Link {
    class: DeviceClass,
    inner: Mutex<LinkInner>,
}

/// The kebab-case name of a status (`media-jammed`), as used by the control API.
pub fn status_name(status: Status) -> String {
    match status {
        Status::Unknown(raw) => format!("unknown({raw})"),
        other => other.to_string().to_ascii_lowercase().replace('_', "-"),
    }
}

/// Parses a kebab-case (or SCREAMING_SNAKE) status name.
pub fn parse_status(name: &str) -> Option<Status> {
    const ALL: [Status; 13] = [
        Status::Timeout,
        Status::Cancelled,
        Status::HardwareError,
        Status::MediaJammed,
        Status::MediaAbsent,
        Status::MediaPresent,
        Status::MediaDamaged,
        Status::BufferTooSmall,
        Status::NotSupported,
        Status::InvalidArgument,
        Status::Busy,
        Status::Unavailable,
        Status::InternalError,
    ];
    let wanted = name.trim().to_ascii_lowercase().replace('_', "-");
    ALL.into_iter().find(|s| status_name(*s) == wanted)
}

impl Link {
    pub(crate) fn new(class: DeviceClass) -> Self {
        Self {
            class,
            inner: Mutex::new(LinkInner::default()),
        }
    }

    fn state_of(inner: &LinkInner) -> DeviceState {
        if inner.fault.is_some_and(|f| f.sticky) {
            DeviceState::Unavailable
        } else {
            DeviceState::Ready
        }
    }

    fn send(inner: &LinkInner, message: SimToDriver) {
        if let Some(conn) = &inner.conn {
            let _ = conn.tx.send(message);
        }
    }

    pub(crate) fn send_event(&self, event: Event) {
        let inner = lock(&self.inner);
        tracing::debug!(device = %self.class, event = event.name(), connected = inner.conn.is_some(), "event");
        Self::send(&inner, SimToDriver::Event { event });
    }

    fn set_faults(&self, change: impl FnOnce(&mut LinkInner)) {
        let mut inner = lock(&self.inner);
        let before = Self::state_of(&inner);
        change(&mut inner);
        let after = Self::state_of(&inner);
        if before != after {
            Self::send(
                &inner,
                SimToDriver::Event {
                    event: Event::StateChanged { state: after },
                },
            );
        }
    }

    pub(crate) fn set_fault(&self, status: Status, sticky: bool) {
        tracing::warn!(device = %self.class, status = %status, sticky, "fault injected");
        self.set_faults(|i| i.fault = Some(Fault { status, sticky }));
    }

    pub(crate) fn set_hang(&self) {
        tracing::warn!(device = %self.class, "device hangs");
        self.set_faults(|i| i.hang = true);
    }

    /// Every call (not `GetState`) is answered `ms` later, until `clear`.
    pub(crate) fn set_delay(&self, ms: u64) {
        tracing::warn!(device = %self.class, ms, "call latency injected");
        lock(&self.inner).delay_ms = ms;
    }

    fn delay(&self) -> std::time::Duration {
        std::time::Duration::from_millis(lock(&self.inner).delay_ms)
    }

    /// Drops the connection and refuses new ones.
    pub(crate) fn unplug(&self) {
        tracing::warn!(device = %self.class, "device unplugged");
        let mut inner = lock(&self.inner);
        inner.unplugged = true;
        Self::kill(&mut inner);
    }

    pub(crate) fn replug(&self) {
        tracing::info!(device = %self.class, "device replugged");
        lock(&self.inner).unplugged = false;
    }

    /// Clears every fault mode (fault, hang, unplug, delay).
    pub(crate) fn clear(&self) {
        tracing::info!(device = %self.class, "faults cleared");
        self.set_faults(|i| {
            i.fault = None;
            i.hang = false;
            i.unplugged = false;
            i.delay_ms = 0;
        });
    }

    /// Closes the current connection, if any.
    pub(crate) fn disconnect(&self) {
        Self::kill(&mut lock(&self.inner));
    }

    fn kill(inner: &mut LinkInner) {
        if let Some(mut conn) = inner.conn.take()
            && let Some(kill) = conn.kill.take()
        {
            let _ = kill.send(());
        }
    }

    fn is_unplugged(&self) -> bool {
        lock(&self.inner).unplugged
    }

    fn is_hung(&self) -> bool {
        lock(&self.inner).hang
    }

    fn device_state(&self) -> DeviceState {
        Self::state_of(&lock(&self.inner))
    }

    /// Takes the fault for the next call (a sticky fault stays).
    fn take_fault(&self) -> Option<Status> {
        let mut inner = lock(&self.inner);
        let fault = inner.fault?;
        if !fault.sticky {
            inner.fault = None;
        }
        Some(fault.status)
    }

    fn detach(&self, id: u64) {
        let mut inner = lock(&self.inner);
        if inner.conn.as_ref().is_some_and(|c| c.id == id) {
            inner.conn = None;
        }
    }

    /// The link's state for `GET /v1/state`.
    pub(crate) fn view(&self) -> Value {
        let inner = lock(&self.inner);
        json!({
            "connected": inner.conn.is_some(),
            "connections": inner.connections,
            "state": Self::state_of(&inner),
            "unplugged": inner.unplugged,
            "hang": inner.hang,
            "delay_ms": inner.delay_ms,
            "fault": inner.fault.map(|f| json!({ "status": status_name(f.status), "sticky": f.sticky })),
        })
    }
}

/// Accepts driver connections for `class` until the task is aborted.
pub(crate) async fn accept_loop(shared: Arc<Shared>, class: DeviceClass, listener: UnixListener) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                if shared.link(class).is_unplugged() {
                    tracing::info!(device = %class, "connection refused: device unplugged");
                    drop(stream);
                    continue;
                }
                tokio::spawn(connection(shared.clone(), class, stream));
            }
            Err(e) => {
                tracing::warn!(device = %class, error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

async fn read_message<R: AsyncRead + Unpin>(reader: &mut R) -> Result<DriverToSim, FrameError> {
    let mut len = [0u8; 4];
    reader.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME_LEN {
        return Err(FrameError::TooLarge(len));
    }
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body).await?;
    protocol::decode(&body)
}

async fn writer(
    mut wr: OwnedWriteHalf,
    mut rx: mpsc::UnboundedReceiver<SimToDriver>,
    class: DeviceClass,
) {
    while let Some(message) = rx.recv().await {
        let frame = match protocol::encode(&message) {
            Ok(frame) => frame,
            Err(e) => {
                tracing::error!(device = %class, error = %e, "cannot encode a message");
                let SimToDriver::Reply { id, .. } = message else {
                    continue;
                };
                match protocol::encode(&SimToDriver::Reply {
                    id,
                    result: Err(Status::InternalError),
                }) {
                    Ok(frame) => frame,
                    Err(_) => continue,
                }
            }
        };
        if wr.write_all(&frame).await.is_err() {
            break;
        }
    }
    let _ = wr.shutdown().await;
}

async fn cancelled(rx: oneshot::Receiver<()>) {
    if rx.await.is_err() {
        // The sender went away without cancelling: never resolve.
        std::future::pending::<()>().await;
    }
}

async fn connection(shared: Arc<Shared>, class: DeviceClass, stream: UnixStream) {
    let (mut rd, wr) = stream.into_split();
    match read_message(&mut rd).await {
        Ok(DriverToSim::Hello { protocol, class: c })
            if protocol == PROTOCOL_VERSION && c == class => {}
        Ok(DriverToSim::Hello { protocol, class: c }) => {
            tracing::warn!(device = %class, protocol, hello_class = %c, "bad hello: closing");
            return;
        }
        Ok(_) => {
            tracing::warn!(device = %class, "first message is not Hello: closing");
            return;
        }
        Err(e) => {
            tracing::debug!(device = %class, error = %e, "connection closed before Hello");
            return;
        }
    }
    let (tx, rx) = mpsc::unbounded_channel();
    let (kill_tx, mut kill_rx) = oneshot::channel();
    let link = shared.link(class);
    let conn_id = {
        // World, then link: the same order as every event emission, so nothing is
        // missed or duplicated between the presence snapshot and the attachment.
        let world = shared.world();
        let mut inner = lock(&link.inner);
        if inner.unplugged {
            return;
        }
        let _ = tx.send(SimToDriver::Welcome {
            protocol: PROTOCOL_VERSION,
            state: Link::state_of(&inner),
        });
        for event in devices::presence(class, &world) {
            let _ = tx.send(SimToDriver::Event { event });
        }
        if inner.conn.is_some() {
            tracing::info!(device = %class, "new driver connection replaces the old one");
        }
        Link::kill(&mut inner);
        inner.next_conn += 1;
        inner.connections += 1;
        let id = inner.next_conn;
        inner.conn = Some(Conn {
            id,
            tx: tx.clone(),
            kill: Some(kill_tx),
        });
        id
    };
    tracing::info!(device = %class, "driver connected");
    let writer = tokio::spawn(writer(wr, rx, class));
    let inflight: Arc<Mutex<Option<InFlight>>> = Arc::new(Mutex::new(None));
    let mut task: Option<tokio::task::JoinHandle<()>> = None;
    loop {
        let message = tokio::select! {
            message = read_message(&mut rd) => message,
            _ = &mut kill_rx => break,
        };
        let reply = |id, result| {
            let _ = tx.send(SimToDriver::Reply { id, result });
        };
        match message {
            Ok(DriverToSim::Hello { .. }) => {
                tracing::warn!(device = %class, "repeated Hello ignored")
            }
            Ok(DriverToSim::Cancel { id }) => {
                if link.is_hung() {
                    continue;
                }
                if let Some(running) = lock(&inflight).as_mut()
                    && running.id == id
                    && let Some(cancel) = running.cancel.take()
                {
                    let _ = cancel.send(());
                }
            }
            Ok(DriverToSim::Call { id, request }) => {
                if link.is_hung() {
                    tracing::debug!(device = %class, call = request.name(), "call swallowed (hang)");
                    continue;
                }
                if !request.applies_to(class) {
                    reply(id, Err(Status::NotSupported));
                    continue;
                }
                let mut running = lock(&inflight);
                if matches!(request, Request::GetState) {
                    let state = if running.is_some() {
                        DeviceState::Busy
                    } else {
                        link.device_state()
                    };
                    reply(id, Ok(Response::State { state }));
                    continue;
                }
                if running.is_some() {
                    reply(id, Err(Status::Busy));
                    continue;
                }
                let (cancel_tx, cancel_rx) = oneshot::channel();
                *running = Some(InFlight {
                    id,
                    cancel: Some(cancel_tx),
                });
                drop(running);
                task = Some(tokio::spawn(run_call(
                    shared.clone(),
                    class,
                    id,
                    request,
                    cancel_rx,
                    tx.clone(),
                    inflight.clone(),
                )));
            }
            Err(FrameError::Decode(e)) => {
                tracing::warn!(device = %class, error = %e, "undecodable frame skipped");
            }
            Err(FrameError::TooLarge(len)) => {
                tracing::warn!(device = %class, len, "oversized frame: closing");
                break;
            }
            Err(FrameError::Io(_)) => break,
        }
    }
    link.detach(conn_id);
    if let Some(task) = task {
        task.abort();
    }
    writer.abort();
    tracing::info!(device = %class, "driver disconnected");
}

async fn run_call(
    shared: Arc<Shared>,
    class: DeviceClass,
    id: u64,
    request: Request,
    cancel: oneshot::Receiver<()>,
    tx: mpsc::UnboundedSender<SimToDriver>,
    inflight: Arc<Mutex<Option<InFlight>>>,
) {
    let name = request.name();
    let delay = shared.link(class).delay();
    let result = match shared.link(class).take_fault() {
        Some(status) => Err(status),
        None => {
            let call = async {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                devices::call(&shared, class, request).await
            };
            tokio::select! {
                biased;
                () = cancelled(cancel) => Err(Status::Cancelled),
                result = call => result,
            }
        }
    };
    match &result {
        Ok(response) => {
            tracing::debug!(device = %class, call = name, response = response.name(), "call answered")
        }
        Err(status) => {
            tracing::info!(device = %class, call = name, status = %status, "call failed")
        }
    }
    // Free the device before replying: the driver may send its next call at once.
    *lock(&inflight) = None;
    let _ = tx.send(SimToDriver::Reply { id, result });
}
