//! The protocol between the daemon and an isolated `torii-driver-host` process: frames
//! (see `torii_sdk::wire`) on the worker's stdin (host → worker) and on its original
//! stdout (worker → host; the worker points fd 1 at stderr so a driver's printf cannot
//! corrupt the stream).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use torii_sdk::model::{DeviceClass, DeviceState, Event, Request, Response};

use crate::device::{CallError, DeviceHealth, DriverInfo};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum HostToWorker {
    /// Always the first message.
    Open {
        device_id: String,
        driver: PathBuf,
        expected_class: Option<DeviceClass>,
        config_json: String,
        call_timeout_ms: u64,
    },
    Call {
        id: u64,
        request: Request,
    },
    Cancel,
    Shutdown,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum WorkerToHost {
    /// The answer to `Open`: the driver's info and the device's state, or why it could
    /// not be opened.
    Opened {
        result: Result<(DriverInfo, DeviceState), String>,
    },
    Reply {
        id: u64,
        result: Result<Response, CallError>,
    },
    Event {
        event: Event,
    },
    Health {
        health: DeviceHealth,
    },
}
