#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(sod) = torii_icao::pa::Sod::parse(data) {
        if let Ok(ds) = sod.ds_certificate() {
            let _ = sod.verify_signature(&ds);
        }
    }
});
