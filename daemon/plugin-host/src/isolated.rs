//! A device whose driver runs in a supervised `torii-driver-host` process.
//!
//! The supervisor restarts the process when it dies (SIGSEGV included), when a call does
//! not come back in time (a hung driver), and when the driver poisons itself (a contained
//! panic). While it is down the device is UNAVAILABLE with the reason as its fault; when
//! the new process has reopened the device, the fault clears and `restarts` counts up.

use std::collections::HashMap;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::process::{Child, Command};
use tokio::sync::{Notify, mpsc, oneshot};
use torii_sdk::model::{DeviceState, Request, Response};
use torii_sdk::wire::tokio_io::{read_frame, write_frame};

use crate::device::{
    CallError, DeviceHealth, DeviceSpec, DriverInfo, EventSink, HealthCell, OpenError,
};
use crate::protocol::{HostToWorker, WorkerToHost};

/// Extra time the worker's own (in-process) timeout gets, so that the supervisor's
/// timeout fires first and replaces a hung process.
const WORKER_TIMEOUT_MARGIN: Duration = Duration::from_secs(2);
const FIRST_RESTART_DELAY: Duration = Duration::from_millis(100);
const MAX_RESTART_DELAY: Duration = Duration::from_secs(10);

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Result<Response, CallError>>>>>;

/// The live connection to one worker process.
#[derive(Clone)]
struct Link {
    to_worker: mpsc::UnboundedSender<HostToWorker>,
    pending: Pending,
    /// Asks the supervisor to kill (and so restart) this worker.
    replace: Arc<Notify>,
}

struct Supervisor {
    spec: DeviceSpec,
    health: Arc<HealthCell>,
    link: Mutex<Option<Link>>,
    next_call_id: AtomicU64,
    restarts: AtomicU32,
    stopping: AtomicBool,
    stop: Notify,
}

pub struct IsolatedDevice {
    info: DriverInfo,
    supervisor: Arc<Supervisor>,
}

impl IsolatedDevice {
    pub async fn open(spec: &DeviceSpec, events: EventSink) -> Result<Self, OpenError> {
        let health = Arc::new(HealthCell::new(&spec.id, events));
        let (child, link, info) = start_worker(spec, &health).await?;
        let supervisor = Arc::new(Supervisor {
            spec: spec.clone(),
            health,
            link: Mutex::new(Some(link.clone())),
            next_call_id: AtomicU64::new(1),
            restarts: AtomicU32::new(0),
            stopping: AtomicBool::new(false),
            stop: Notify::new(),
        });
        tokio::spawn(supervise(supervisor.clone(), child, link));
        Ok(IsolatedDevice { info, supervisor })
    }

    pub fn info(&self) -> &DriverInfo {
        &self.info
    }

    pub async fn call(&self, request: Request) -> Result<Response, CallError> {
        let sup = &self.supervisor;
        let Some(link) = sup.link.lock().unwrap_or_else(|p| p.into_inner()).clone() else {
            return Err(CallError::Unavailable);
        };
        let limit =
            sup.spec.call_timeout + Duration::from_millis(request.traveler_wait_ms().into());
        let id = sup.next_call_id.fetch_add(1, Ordering::Relaxed);
        let (reply_tx, reply_rx) = oneshot::channel();
        link.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, reply_tx);
        if link
            .to_worker
            .send(HostToWorker::Call { id, request })
            .is_err()
        {
            link.pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&id);
            return Err(CallError::Unavailable);
        }
        match tokio::time::timeout(limit, reply_rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(CallError::Faulted(
                "driver host exited during the call".into(),
            )),
            Err(_) => {
                link.pending
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&id);
                let after_ms = limit.as_millis() as u64;
                tracing::warn!(device = %sup.spec.id, after_ms, "isolated driver call timed out; replacing its driver host");
                link.replace.notify_one();
                Err(CallError::Timeout { after_ms })
            }
        }
    }

    pub fn cancel(&self) {
        if let Some(link) = self
            .supervisor
            .link
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            let _ = link.to_worker.send(HostToWorker::Cancel);
        }
    }

    pub fn health(&self) -> DeviceHealth {
        self.supervisor.health.get()
    }

    pub async fn shutdown(&self) {
        self.supervisor.stopping.store(true, Ordering::Release);
        self.supervisor.stop.notify_one();
        // Give the worker a moment to close the device cleanly.
        for _ in 0..50 {
            if self
                .supervisor
                .link
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .is_none()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn driver_host_error(spec: &DeviceSpec, reason: impl std::fmt::Display) -> OpenError {
    OpenError::DriverHost {
        path: spec.driver.clone(),
        reason: reason.to_string(),
    }
}

/// Spawns a worker, opens the device in it, and starts relaying its messages.
async fn start_worker(
    spec: &DeviceSpec,
    health: &Arc<HealthCell>,
) -> Result<(Child, Link, DriverInfo), OpenError> {
    let mut child = Command::new(&spec.driver_host_exe)
        .arg(&spec.id)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            driver_host_error(
                spec,
                format_args!("cannot start {}: {e}", spec.driver_host_exe.display()),
            )
        })?;
    let (Some(mut stdin), Some(mut stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return Err(driver_host_error(spec, "no pipes to the driver host"));
    };

    let (to_worker, mut outbox) = mpsc::unbounded_channel::<HostToWorker>();
    tokio::spawn(async move {
        while let Some(message) = outbox.recv().await {
            if write_frame(&mut stdin, &message).await.is_err() {
                break;
            }
        }
    });
    let _ = to_worker.send(HostToWorker::Open {
        device_id: spec.id.clone(),
        driver: spec.driver.clone(),
        expected_class: spec.expected_class,
        config_json: spec.config_json.clone(),
        call_timeout_ms: (spec.call_timeout + WORKER_TIMEOUT_MARGIN).as_millis() as u64,
    });

    let open_limit = spec.call_timeout * 3 + Duration::from_secs(5);
    let info =
        match tokio::time::timeout(open_limit, read_frame::<_, WorkerToHost>(&mut stdout)).await {
            Ok(Ok(WorkerToHost::Opened {
                result: Ok((info, state)),
            })) => {
                health.update(|h| {
                    if h.fault.is_none() {
                        h.state = state;
                    }
                });
                info
            }
            Ok(Ok(WorkerToHost::Opened {
                result: Err(reason),
            })) => return Err(driver_host_error(spec, reason)),
            Ok(Ok(_)) => return Err(driver_host_error(spec, "protocol error: expected Opened")),
            Ok(Err(e)) => {
                let status = child.wait().await.ok();
                return Err(driver_host_error(
                    spec,
                    format_args!(
                        "died while opening the device ({}; {e})",
                        describe_exit(status)
                    ),
                ));
            }
            Err(_) => {
                return Err(driver_host_error(
                    spec,
                    format_args!("no answer to Open within {open_limit:?}"),
                ));
            }
        };

    let link = Link {
        to_worker,
        pending: Pending::default(),
        replace: Arc::new(Notify::new()),
    };
    tokio::spawn(relay(stdout, link.clone(), health.clone()));
    Ok((child, link, info))
}

/// Worker → host messages until the pipe closes.
async fn relay(mut stdout: tokio::process::ChildStdout, link: Link, health: Arc<HealthCell>) {
    while let Ok(message) = read_frame::<_, WorkerToHost>(&mut stdout).await {
        match message {
            WorkerToHost::Reply { id, result } => {
                if let Some(reply) = link
                    .pending
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&id)
                {
                    let _ = reply.send(result);
                }
            }
            WorkerToHost::Event { event } => health.emit(event),
            WorkerToHost::Health { health: reported } => {
                if let Some(fault) = reported.fault {
                    // A poisoned or hung driver in the worker: a fresh process recovers it.
                    tracing::warn!(device = %health_device(&health), %fault, "isolated driver faulted; replacing its driver host");
                    link.replace.notify_one();
                } else {
                    health.update(|h| {
                        if h.fault.is_none() {
                            h.state = reported.state
                        }
                    });
                }
            }
            WorkerToHost::Opened { .. } => {}
        }
    }
}

fn health_device(health: &HealthCell) -> String {
    health.device_id().to_owned()
}

/// Watches the worker, and replaces it whenever it dies or must be replaced.
async fn supervise(sup: Arc<Supervisor>, mut child: Child, mut link: Link) {
    loop {
        let status = tokio::select! {
            status = child.wait() => status.ok(),
            _ = link.replace.notified() => {
                let _ = child.start_kill();
                child.wait().await.ok()
            }
            _ = sup.stop.notified() => {
                let _ = link.to_worker.send(HostToWorker::Shutdown);
                if tokio::time::timeout(Duration::from_secs(1), child.wait()).await.is_err() {
                    let _ = child.kill().await;
                }
                *sup.link.lock().unwrap_or_else(|p| p.into_inner()) = None;
                sup.health.update(|h| h.state = DeviceState::Unavailable);
                return;
            }
        };
        let reason = format!("driver host {}", describe_exit(status));
        *sup.link.lock().unwrap_or_else(|p| p.into_inner()) = None;
        for (_, reply) in link
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
        {
            let _ = reply.send(Err(CallError::Faulted(reason.clone())));
        }
        tracing::warn!(device = %sup.spec.id, %reason, "restarting the driver host");
        sup.health.update(|h| {
            h.state = DeviceState::Unavailable;
            h.fault = Some(reason.clone());
        });

        let mut delay = FIRST_RESTART_DELAY;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = sup.stop.notified() => return,
            }
            if sup.stopping.load(Ordering::Acquire) {
                return;
            }
            match start_worker(&sup.spec, &sup.health).await {
                Ok((new_child, new_link, _info)) => {
                    child = new_child;
                    link = new_link;
                    *sup.link.lock().unwrap_or_else(|p| p.into_inner()) = Some(link.clone());
                    let restarts = sup.restarts.fetch_add(1, Ordering::AcqRel) + 1;
                    sup.health.update(|h| {
                        h.fault = None;
                        h.restarts = restarts;
                        if h.state == DeviceState::Unavailable {
                            h.state = DeviceState::Ready;
                        }
                    });
                    tracing::info!(device = %sup.spec.id, restarts, "driver host restarted");
                    break;
                }
                Err(error) => {
                    tracing::warn!(device = %sup.spec.id, %error, retry_in_ms = delay.as_millis() as u64, "driver host restart failed");
                    sup.health.update(|h| h.fault = Some(error.to_string()));
                    delay = (delay * 2).min(MAX_RESTART_DELAY);
                }
            }
        }
    }
}

/// "exited with status 3", "was killed by signal 11 (SIGSEGV)".
pub fn describe_exit(status: Option<ExitStatus>) -> String {
    let Some(status) = status else {
        return "ended (status unknown)".into();
    };
    if let Some(signal) = status.signal() {
        let name = match signal {
            libc::SIGSEGV => "SIGSEGV",
            libc::SIGABRT => "SIGABRT",
            libc::SIGBUS => "SIGBUS",
            libc::SIGILL => "SIGILL",
            libc::SIGFPE => "SIGFPE",
            libc::SIGKILL => "SIGKILL",
            libc::SIGTERM => "SIGTERM",
            _ => "signal",
        };
        return format!("was killed by signal {signal} ({name})");
    }
    match status.code() {
        Some(code) => format!("exited with status {code}"),
        None => "ended".into(),
    }
}
