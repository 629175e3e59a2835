//! QR payloads from the code reader.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = torii_core::flow::parse_registration_qr(data);
});
