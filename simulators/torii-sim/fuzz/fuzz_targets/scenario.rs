//! torii-sim scenario files (`scenarios/*.toml`, `Scenario::parse`: TOML, then the
//! traveler scripts' actions, then validation). Never a panic; a scenario that is
//! accepted and that serde's TOML writer can write reads back the same.
#![no_main]
use std::path::Path;

use torii_sim::scenario::Scenario;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(scenario) = Scenario::parse(text, Path::new("fuzz.toml")) else {
        return;
    };
    for traveler in scenario.scripted() {
        let _ = traveler.registered_passport_number();
        let _ = traveler.card_valid_until();
    }
    // The derived writer refuses some shapes (e.g. a value after a table); what it
    // writes must read back.
    if let Ok(written) = toml::to_string(&scenario) {
        match Scenario::parse(&written, Path::new("written.toml")) {
            Ok(again) => assert!(
                again == scenario,
                "a scenario changed through a write and a read"
            ),
            Err(error) => panic!("a written scenario does not read back: {error}"),
        }
    }
});
