//! Sim driver: fingerprint sensor (ISO/IEC 19794-2 templates) backed by torii-sim.

use std::time::Duration;

use torii_sdk::abi::TORII_CAP_FINGER_TEMPLATE;
use torii_sdk::driver::{CaptureWants, FingerprintSensor};
use torii_sdk::model::{DeviceClass, FingerPosition, FingerSample, Request, Response, Status};

torii_sim_link::sim_driver!(
    SimFingerprintSensor,
    DeviceClass::FingerprintSensor,
    c"torii-sim-fingerprint-sensor",
    TORII_CAP_FINGER_TEMPLATE
);

impl FingerprintSensor for SimFingerprintSensor {
    fn capture(
        &self,
        fingers: &[FingerPosition],
        timeout: Duration,
        wants: CaptureWants,
    ) -> Result<Vec<FingerSample>, Status> {
        let request = Request::CaptureFingers {
            fingers: fingers.to_vec(),
            timeout_ms: u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX),
            want_template: wants.template,
            want_image: wants.image,
        };
        self.0.call_for(request, |r| match r {
            Response::Fingers { samples } => Some(samples),
            _ => None,
        })
    }
}

torii_sdk::export_driver!(FingerprintSensor => SimFingerprintSensor);
