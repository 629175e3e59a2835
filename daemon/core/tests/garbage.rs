//! The core's parsers on seeded random and mutated input (a stable-toolchain companion
//! of the cargo-fuzz targets in `fuzz/`): never a panic, never an acceptance.

use torii_core::card::{CardData, decode_verified, encode_signed};
use torii_core::flow::parse_registration_qr;

/// xorshift64*: deterministic, dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

#[test]
fn hostile_card_data_is_refused_never_a_panic() {
    let issuer = p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap();
    let good = encode_signed(
        &CardData {
            card_number: "TTP0000001001".into(),
            passport_number: "TW1000017".into(),
            nationality: "GBR".into(),
            issued: time::macros::date!(2025 - 05 - 20),
            valid_until: time::macros::date!(2028 - 05 - 19),
        },
        &issuer,
    );
    let mut rng = Rng(0x5EED);
    // Signature checks are slow in debug builds: enough rounds to cover every layer.
    for round in 0..600 {
        let data = if round % 2 == 0 {
            let len = (rng.next() % 300) as usize;
            rng.bytes(len)
        } else {
            let mut mutated = good.clone();
            for _ in 0..1 + rng.next() % 4 {
                let at = (rng.next() as usize) % mutated.len();
                mutated[at] = rng.next() as u8;
            }
            mutated
        };
        if data != good {
            assert!(
                decode_verified(&data, issuer.verifying_key()).is_err(),
                "round {round}: accepted"
            );
        }
    }
}

#[test]
fn hostile_qr_payloads_and_registry_exports_never_panic() {
    let mut rng = Rng(0xC0DE);
    for _ in 0..3000 {
        let len = (rng.next() % 120) as usize;
        let data = rng.bytes(len);
        let _ = parse_registration_qr(&data);
        let _ = torii_core::registry::import::parse(&data);
        let _ = serde_json::from_slice::<torii_core::edcard::EdCard>(&data).map(|c| c.validate());
    }
    // Near misses of the real formats.
    for payload in [
        "TTP1:",
        "TTP1:A:B",
        "TTP1:A:B:GB",
        "TTP1:A:B:GBR:X",
        "TTP2:A:B:GBR",
        "ttp1:A:B:GBR",
        "TTP1::B:GBR",
    ] {
        assert!(
            parse_registration_qr(payload.as_bytes()).is_none(),
            "{payload}"
        );
    }
    assert!(parse_registration_qr(b"TTP1:TTP0000001001:TW1000017:GBR").is_some());
    for export in [
        "{}",
        r#"{"travelers":[{}]}"#,
        r#"{"travelers":"x"}"#,
        "null",
    ] {
        assert!(
            torii_core::registry::import::parse(export.as_bytes()).is_err(),
            "{export}"
        );
    }
}
