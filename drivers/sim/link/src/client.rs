//! The sim driver side of the link: a blocking client that keeps a connection to one
//! device simulator, reconnecting when the simulator restarts or "unplugs" the device.
//!
//! Sim drivers are plugins like any vendor's, so they use no async runtime: one reader
//! thread per device, calls block the host's (blocking) call thread.

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::Deserialize;
use torii_sdk::driver::{Host, LogLevel};
use torii_sdk::model::{DeviceClass, DeviceState, Event, Request, Response, Status};

use crate::protocol::{DriverToSim, PROTOCOL_VERSION, SimToDriver, encode, read_frame};

const RECONNECT_DELAY: Duration = Duration::from_millis(100);

/// A sim driver's config table (the daemon hands it over as JSON).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimConfig {
    /// The simulator's socket for this device, e.g. `/run/torii-sim/camera.sock`.
    pub socket: PathBuf,
    /// How long a call may take on top of the time it waits for a traveler.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_timeout_ms() -> u64 {
    5_000
}

type Pending = Mutex<HashMap<u64, SyncSender<Result<Response, Status>>>>;

struct Inner {
    class: DeviceClass,
    config: SimConfig,
    host: Host,
    writer: Mutex<Option<UnixStream>>,
    pending: Pending,
    next_id: AtomicU64,
    current_call: Mutex<Option<u64>>,
    state: Mutex<DeviceState>,
    stop: AtomicBool,
}

/// A connection to one device simulator. Dropping it stops the reader thread.
pub struct SimLink {
    inner: Arc<Inner>,
    reader: Option<JoinHandle<()>>,
}

impl SimLink {
    /// Parses `config_json` and starts connecting. The device is UNAVAILABLE until the
    /// simulator welcomes it; open succeeds either way, like a real device that is
    /// plugged in later.
    pub fn open(host: Host, config_json: &str, class: DeviceClass) -> Result<SimLink, Status> {
        let config: SimConfig = serde_json::from_str(config_json).map_err(|e| {
            host.log(
                LogLevel::Error,
                &format!("sim {class} driver: bad config: {e}"),
            );
            Status::InvalidArgument
        })?;
        let inner = Arc::new(Inner {
            class,
            config,
            host,
            writer: Mutex::new(None),
            pending: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            current_call: Mutex::new(None),
            state: Mutex::new(DeviceState::Unavailable),
            stop: AtomicBool::new(false),
        });
        // Try once synchronously so a running simulator makes the device READY at open.
        let first = inner.connect().ok();
        let reader_inner = inner.clone();
        let reader = std::thread::Builder::new()
            .name(format!("sim-{class}"))
            .spawn(move || reader_inner.run(first))
            .map_err(|_| Status::HardwareError)?;
        Ok(SimLink {
            inner,
            reader: Some(reader),
        })
    }

    pub fn state(&self) -> DeviceState {
        *self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends `request` and waits for the answer.
    pub fn call(&self, request: Request) -> Result<Response, Status> {
        let inner = &self.inner;
        let limit =
            Duration::from_millis(inner.config.timeout_ms + u64::from(request.traveler_wait_ms()));
        let id = inner.next_id.fetch_add(1, Ordering::Relaxed);
        let (reply_tx, reply_rx) = mpsc::sync_channel(1);
        inner
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, reply_tx);
        *inner.current_call.lock().unwrap_or_else(|p| p.into_inner()) = Some(id);
        let sent = inner.send(&DriverToSim::Call { id, request });
        let result = match sent {
            Err(status) => Err(status),
            Ok(()) => match reply_rx.recv_timeout(limit) {
                Ok(result) => result,
                Err(RecvTimeoutError::Timeout) => {
                    let _ = inner.send(&DriverToSim::Cancel { id });
                    Err(Status::Timeout)
                }
                Err(RecvTimeoutError::Disconnected) => Err(Status::Unavailable),
            },
        };
        inner
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        *inner.current_call.lock().unwrap_or_else(|p| p.into_inner()) = None;
        result
    }

    /// Like [`call`](Self::call), keeping only the response `pick` accepts.
    pub fn call_for<T>(
        &self,
        request: Request,
        pick: impl FnOnce(Response) -> Option<T>,
    ) -> Result<T, Status> {
        let response = self.call(request)?;
        pick(response).ok_or_else(|| {
            self.inner.host.log(
                LogLevel::Error,
                "simulator answered with the wrong kind of response",
            );
            Status::HardwareError
        })
    }

    /// Sends `request`, expecting `Response::Done`.
    pub fn call_done(&self, request: Request) -> Result<(), Status> {
        self.call_for(request, |r| matches!(r, Response::Done).then_some(()))
    }

    /// Cancels the running call, if any.
    pub fn cancel(&self) {
        let current = *self
            .inner
            .current_call
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(id) = current {
            let _ = self.inner.send(&DriverToSim::Cancel { id });
        }
    }
}

impl Drop for SimLink {
    fn drop(&mut self) {
        self.inner.stop.store(true, Ordering::Release);
        if let Some(stream) = self
            .inner
            .writer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

impl Inner {
    fn set_state(&self, state: DeviceState) {
        let mut current = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if *current != state {
            *current = state;
            drop(current);
            self.host.emit(&Event::StateChanged { state });
        }
    }

    fn send(&self, message: &DriverToSim) -> Result<(), Status> {
        let frame = encode(message).map_err(|_| Status::InvalidArgument)?;
        let mut writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let stream = writer.as_mut().ok_or(Status::Unavailable)?;
        stream.write_all(&frame).map_err(|_| Status::Unavailable)
    }

    /// Connects, says hello, and returns the reading half once welcomed.
    fn connect(&self) -> Result<UnixStream, Status> {
        let stream = UnixStream::connect(&self.config.socket).map_err(|_| Status::Unavailable)?;
        let mut reader = stream.try_clone().map_err(|_| Status::Unavailable)?;
        *self.writer.lock().unwrap_or_else(|p| p.into_inner()) = Some(stream);
        self.send(&DriverToSim::Hello {
            protocol: PROTOCOL_VERSION,
            class: self.class,
        })?;
        match read_frame::<_, SimToDriver>(&mut reader) {
            Ok(SimToDriver::Welcome { protocol, state }) if protocol == PROTOCOL_VERSION => {
                self.set_state(state);
                Ok(reader)
            }
            _ => {
                *self.writer.lock().unwrap_or_else(|p| p.into_inner()) = None;
                Err(Status::Unavailable)
            }
        }
    }

    fn run(self: Arc<Self>, mut connection: Option<UnixStream>) {
        while !self.stop.load(Ordering::Acquire) {
            let Some(mut reader) = connection.take() else {
                std::thread::sleep(RECONNECT_DELAY);
                connection = self.connect().ok();
                continue;
            };
            self.host
                .log(LogLevel::Debug, &format!("sim {} connected", self.class));
            loop {
                match read_frame::<_, SimToDriver>(&mut reader) {
                    Ok(SimToDriver::Reply { id, result }) => {
                        if let Some(reply) = self
                            .pending
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .remove(&id)
                        {
                            let _ = reply.try_send(result);
                        }
                    }
                    Ok(SimToDriver::Event { event }) => {
                        if let Event::StateChanged { state } = event {
                            *self.state.lock().unwrap_or_else(|p| p.into_inner()) = state;
                        }
                        self.host.emit(&event);
                    }
                    Ok(SimToDriver::Welcome { .. }) => {}
                    Err(_) => break,
                }
            }
            // The simulator went away (or unplugged us): fail what was waiting.
            *self.writer.lock().unwrap_or_else(|p| p.into_inner()) = None;
            for (_, reply) in self
                .pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .drain()
            {
                let _ = reply.try_send(Err(Status::Unavailable));
            }
            if !self.stop.load(Ordering::Acquire) {
                self.set_state(DeviceState::Unavailable);
                self.host.log(
                    LogLevel::Warn,
                    &format!("sim {} disconnected; reconnecting", self.class),
                );
            }
        }
    }
}

/// Declares a sim driver type: the struct around a [`SimLink`] and its `Driver` impl.
/// The class trait impl and `export_driver!` stay in the driver crate.
#[macro_export]
macro_rules! sim_driver {
    ($ty:ident, $class:expr, $name:literal, $caps:expr) => {
        pub struct $ty($crate::client::SimLink);

        impl ::torii_sdk::driver::Driver for $ty {
            const NAME: &'static ::std::ffi::CStr = $name;
            const VERSION: &'static ::std::ffi::CStr = c"0.1.0";
            const VENDOR: &'static ::std::ffi::CStr = c"torii project (simulator)";
            const CAPABILITIES: u64 = $caps;

            fn open(
                host: ::torii_sdk::driver::Host,
                config: &str,
            ) -> Result<Self, ::torii_sdk::model::Status> {
                $crate::client::SimLink::open(host, config, $class).map($ty)
            }

            fn state(&self) -> ::torii_sdk::model::DeviceState {
                self.0.state()
            }

            fn cancel(&self) {
                self.0.cancel()
            }
        }
    };
}
