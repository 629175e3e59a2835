//! Central's registry export.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = torii_core::registry::import::parse(data);
});
