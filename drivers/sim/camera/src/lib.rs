//! Sim driver: face camera (JPEG) backed by torii-sim.

use std::time::Duration;

use torii_sdk::driver::Camera;
use torii_sdk::model::{DeviceClass, Request, Response, Status};

torii_sim_link::sim_driver!(SimCamera, DeviceClass::Camera, c"torii-sim-camera", 0);

impl Camera for SimCamera {
    fn capture_face(&self, timeout: Duration) -> Result<Vec<u8>, Status> {
        let timeout_ms = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
        self.0
            .call_for(Request::CaptureFace { timeout_ms }, |r| match r {
                Response::Face { jpeg } => Some(jpeg),
                _ => None,
            })
    }
}

torii_sdk::export_driver!(Camera => SimCamera);
