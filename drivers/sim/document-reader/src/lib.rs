//! Sim driver: document reader (passport MRZ + contactless chip) backed by torii-sim.

use torii_sdk::abi::{TORII_CAP_CHIP, TORII_CAP_MRZ};
use torii_sdk::driver::DocumentReader;
use torii_sdk::model::{DeviceClass, Request, Response, Status};

torii_sim_link::sim_driver!(
    SimDocumentReader,
    DeviceClass::DocumentReader,
    c"torii-sim-document-reader",
    TORII_CAP_MRZ | TORII_CAP_CHIP
);

impl DocumentReader for SimDocumentReader {
    fn read_mrz(&self) -> Result<Vec<String>, Status> {
        self.0.call_for(Request::ReadMrz, |r| match r {
            Response::Mrz { lines } => Some(lines),
            _ => None,
        })
    }

    fn chip_connect(&self) -> Result<Vec<u8>, Status> {
        self.0.call_for(Request::ChipConnect, |r| match r {
            Response::Atr { atr } => Some(atr),
            _ => None,
        })
    }

    fn chip_transmit(&self, command: &[u8]) -> Result<Vec<u8>, Status> {
        self.0.call_for(
            Request::ChipTransmit {
                apdu: command.to_vec(),
            },
            |r| match r {
                Response::Apdu { response } => Some(response),
                _ => None,
            },
        )
    }

    fn chip_disconnect(&self) -> Result<(), Status> {
        self.0.call_done(Request::ChipDisconnect)
    }
}

torii_sdk::export_driver!(DocumentReader => SimDocumentReader);
