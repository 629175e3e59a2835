#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut sm = torii_icao::sm::SecureMessaging::tdes([1; 16], [2; 16], [0; 8]);
    let _ = sm.unprotect(data);
    let mut aes = torii_icao::sm::SecureMessaging::aes(&[1; 16], &[2; 16], [0; 16]).expect("valid key sizes");
    let _ = aes.unprotect(data);
});
