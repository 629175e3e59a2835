//! Sim driver: card printer (registered user card: chip, print on the back, eject,
//! retain) backed by torii-sim.

use torii_sdk::abi::{TORII_CAP_PRINT, TORII_CAP_RETAIN};
use torii_sdk::driver::CardPrinter;
use torii_sdk::model::{DeviceClass, Request, Response, Status};

torii_sim_link::sim_driver!(
    SimCardPrinter,
    DeviceClass::CardPrinter,
    c"torii-sim-card-printer",
    TORII_CAP_PRINT | TORII_CAP_RETAIN
);

impl CardPrinter for SimCardPrinter {
    fn read_chip(&self) -> Result<Vec<u8>, Status> {
        self.0.call_for(Request::ReadCardChip, |r| match r {
            Response::CardChip { data } => Some(data),
            _ => None,
        })
    }

    fn print_line(&self, line: &str) -> Result<(), Status> {
        self.0.call_done(Request::PrintLine {
            line: line.to_owned(),
        })
    }

    fn eject(&self) -> Result<(), Status> {
        self.0.call_done(Request::EjectCard)
    }

    fn retain(&self) -> Result<(), Status> {
        self.0.call_done(Request::RetainCard)
    }
}

torii_sdk::export_driver!(CardPrinter => SimCardPrinter);
