//! Sim driver: code reader (QR registration codes) backed by torii-sim. Codes arrive as
//! events from the simulator and are passed to the host as they are.

use torii_sdk::driver::CodeReader;
use torii_sdk::model::{DeviceClass, Request, Status};

torii_sim_link::sim_driver!(
    SimCodeReader,
    DeviceClass::CodeReader,
    c"torii-sim-code-reader",
    0
);

impl CodeReader for SimCodeReader {
    fn set_enabled(&self, enabled: bool) -> Result<(), Status> {
        self.0.call_done(Request::SetCodeReaderEnabled { enabled })
    }
}

torii_sdk::export_driver!(CodeReader => SimCodeReader);
