//! Card chip data from a hostile card: never a panic, never accepted unsigned, and what
//! is accepted signs and reads back the same.
#![no_main]
use p256::ecdsa::SigningKey;
use torii_core::card::{decode_verified, encode_signed};

/// The simulator's card issuing authority: the fixed, public test scalar
/// SHA-256("torii-sim card issuer v1") (see torii-sim's `data::card`), so that the seeds
/// (the simulator's cards) verify and the fuzzer starts from accepted cards.
const SIM_ISSUER: [u8; 32] = [
    0x97, 0xc7, 0x64, 0x7c, 0x8a, 0x0b, 0xdc, 0x93, 0x9b, 0x31, 0xb3, 0x91, 0x02, 0x8d, 0xba, 0x09,
    0x76, 0xc8, 0x1e, 0xfc, 0xfd, 0x3b, 0x84, 0x26, 0x84, 0x54, 0xb1, 0xd4, 0x58, 0xd2, 0x80, 0x01,
];

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let issuer = SigningKey::from_slice(&SIM_ISSUER).expect("a valid test key");
    let Ok(card) = decode_verified(data, issuer.verifying_key()) else {
        return;
    };
    let again = encode_signed(&card, &issuer);
    assert!(
        decode_verified(&again, issuer.verifying_key()).as_ref() == Ok(&card),
        "a card changed through an encode and a decode"
    );
    let other = SigningKey::from_slice(&[7u8; 32]).expect("a valid test key");
    assert!(
        decode_verified(data, other.verifying_key()).is_err(),
        "a card verified under a key that did not sign it"
    );
});
