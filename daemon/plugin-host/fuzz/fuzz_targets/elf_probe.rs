//! The driver probe (`torii_plugin_host::probe::probe_bytes`): the ABI tag and USB id
//! table read straight from a driver's ELF file before anything of it is loaded, so a
//! vendor's (or an attacker's) file is parsed by the daemon. Never a panic; what is
//! accepted speaks the host's ABI major.
#![no_main]
use std::path::Path;

use torii_plugin_host::probe::probe_bytes;
use torii_sdk::abi;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    match probe_bytes(Path::new("fuzz.so"), data) {
        Ok(probe) => assert_eq!(probe.abi_major, abi::TORII_ABI_MAJOR),
        Err(error) => {
            let _ = error.to_string();
        }
    }
});
