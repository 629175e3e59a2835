//! ED card JSON from the kiosk, then its validation.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(card) = serde_json::from_slice::<torii_core::edcard::EdCard>(data) {
        let _ = card.validate();
        let _ = card.needs_examination();
    }
});
