//! Sim driver: card reader (registered user card's chip, on exit) backed by torii-sim.

use torii_sdk::driver::CardReader;
use torii_sdk::model::{DeviceClass, Request, Response, Status};

torii_sim_link::sim_driver!(
    SimCardReader,
    DeviceClass::CardReader,
    c"torii-sim-card-reader",
    0
);

impl CardReader for SimCardReader {
    fn read_chip(&self) -> Result<Vec<u8>, Status> {
        self.0.call_for(Request::ReadCardChip, |r| match r {
            Response::CardChip { data } => Some(data),
            _ => None,
        })
    }
}

torii_sdk::export_driver!(CardReader => SimCardReader);
