//! `torii-driver-host`: runs one driver in its own process for the daemon.
//!
//! The daemon starts it with piped stdin/stdout and speaks `torii_plugin_host::protocol`.
//! The worker opens the device in-process (same checks, same panic containment) and
//! relays calls, events and health. When the daemon goes away (stdin closes) it exits.

use std::io::Write;
use std::os::fd::FromRawFd;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use torii_plugin_host::protocol::{HostToWorker, WorkerToHost};
use torii_plugin_host::{Device, DeviceSpec, HostEvent, Isolation};
use torii_sdk::wire;

type Out = Arc<Mutex<std::fs::File>>;

fn send(out: &Out, message: &WorkerToHost) {
    let mut out = out.lock().unwrap_or_else(|p| p.into_inner());
    if wire::write_frame(&mut *out, message).is_err() {
        // The daemon is gone: nothing left to serve.
        std::process::exit(0);
    }
}

fn main() {
    // Keep the protocol on a private copy of stdout, and send fd 1 to stderr.
    // SAFETY: plain fd syscalls on the process's own standard descriptors, before any
    // other thread exists.
    let protocol_fd = unsafe {
        let fd = libc::dup(1);
        if fd < 0 || libc::dup2(2, 1) < 0 {
            eprintln!("torii-driver-host: cannot set up the protocol descriptor");
            std::process::exit(2);
        }
        fd
    };
    // SAFETY: protocol_fd was just returned by dup and is owned by nobody else.
    let out: Out = Arc::new(Mutex::new(unsafe {
        std::fs::File::from_raw_fd(protocol_fd)
    }));

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("torii-driver-host: {e}");
            std::process::exit(2);
        }
    };
    runtime.block_on(serve(out));
    let _ = std::io::stderr().flush();
    std::process::exit(0);
}

async fn serve(out: Out) {
    let mut stdin = tokio::io::stdin();
    let Ok(HostToWorker::Open {
        device_id,
        driver,
        expected_class,
        config_json,
        call_timeout_ms,
    }) = wire::tokio_io::read_frame::<_, HostToWorker>(&mut stdin).await
    else {
        eprintln!("torii-driver-host: expected an Open message first");
        return;
    };
    let spec = DeviceSpec {
        id: device_id,
        driver,
        expected_class,
        isolation: Isolation::InProcess,
        config_json,
        call_timeout: Duration::from_millis(call_timeout_ms),
        driver_host_exe: Default::default(),
    };
    let (events_tx, mut events_rx) = mpsc::unbounded_channel();
    let device = match Device::open(spec, events_tx).await {
        Ok(device) => {
            let state = device.health().state;
            send(
                &out,
                &WorkerToHost::Opened {
                    result: Ok((device.info().clone(), state)),
                },
            );
            device
        }
        Err(error) => {
            send(
                &out,
                &WorkerToHost::Opened {
                    result: Err(error.to_string()),
                },
            );
            return;
        }
    };

    let events_out = out.clone();
    tokio::spawn(async move {
        while let Some(event) = events_rx.recv().await {
            let message = match event {
                HostEvent::Device { event, .. } => WorkerToHost::Event { event },
                HostEvent::Health { health, .. } => WorkerToHost::Health { health },
            };
            send(&events_out, &message);
        }
    });

    loop {
        match wire::tokio_io::read_frame::<_, HostToWorker>(&mut stdin).await {
            Ok(HostToWorker::Call { id, request }) => {
                let device = device.clone();
                let out = out.clone();
                tokio::spawn(async move {
                    let result = device.call(request).await;
                    send(&out, &WorkerToHost::Reply { id, result });
                });
            }
            Ok(HostToWorker::Cancel) => device.cancel(),
            Ok(HostToWorker::Open { .. }) => eprintln!("torii-driver-host: ignoring a second Open"),
            Ok(HostToWorker::Shutdown) | Err(_) => break,
        }
    }
    device.shutdown().await;
}
