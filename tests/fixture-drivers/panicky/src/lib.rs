//! Test fixture: a Rust card reader that panics in `read_chip` when its config says
//! `{"panic": true}`. The panic message carries a fake passport number, so tests can
//! check that it never reaches the daemon's output.

use torii_sdk::driver::{CardReader, Driver, Host};
use torii_sdk::model::Status;

pub struct PanickyCardReader {
    panic: bool,
}

impl Driver for PanickyCardReader {
    const NAME: &'static std::ffi::CStr = c"fixture-panicky-card-reader";
    const VERSION: &'static std::ffi::CStr = c"0.0.1";
    const VENDOR: &'static std::ffi::CStr = c"torii tests";

    fn open(_host: Host, config: &str) -> Result<Self, Status> {
        Ok(PanickyCardReader {
            panic: config.contains("\"panic\":true"),
        })
    }
}

impl CardReader for PanickyCardReader {
    fn read_chip(&self) -> Result<Vec<u8>, Status> {
        if self.panic {
            panic!("driver bug while reading passport XS1234567");
        }
        Ok(b"card".to_vec())
    }
}

torii_sdk::export_driver!(CardReader => PanickyCardReader);
