//! Card chip data from a hostile card: never a panic, never accepted unsigned.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let issuer = p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).expect("a valid test key");
    let _ = torii_core::card::decode_verified(data, issuer.verifying_key());
});
