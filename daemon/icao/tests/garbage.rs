//! Deterministic smoke test for stable CI: every parser gets a few thousand
//! pseudo-random and mutated inputs (seeded xorshift) and must not panic.

use torii_chip_sim::{ChipConfig, ChipSim, TestPki};
use torii_icao::reader::fid;
use torii_icao::sm::SecureMessaging;
use torii_icao::{lds, mrz, pa, tlv};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
    /// Flip, insert, delete or overwrite a few bytes; sometimes truncate.
    fn mutate(&mut self, seed: &[u8]) -> Vec<u8> {
        let mut v = seed.to_vec();
        for _ in 0..1 + self.below(4) {
            let i = self.below(v.len() + 1);
            match self.below(5) {
                0 if i < v.len() => v[i] ^= 1 << self.below(8),
                1 => v.insert(i, self.next() as u8),
                2 if i < v.len() => {
                    v.remove(i);
                }
                3 if i < v.len() => {
                    v[i] = [0x00, 0x7F, 0x80, 0x81, 0x82, 0x84, 0xFF][self.below(7)]
                }
                _ => v.truncate(i),
            }
        }
        v
    }
}

fn all_parsers(b: &[u8]) {
    let _ = mrz::parse(&String::from_utf8_lossy(b));
    let _ = lds::parse_ef_com(b);
    let _ = lds::parse_dg1(b);
    let _ = lds::parse_dg2(b);
    let _ = lds::parse_iso19794_5(b);
    let _ = lds::parse_raw(15, b);
    if let Ok(d) = torii_icao::auth::parse_dg14(b) {
        let _ = d.choose();
    }
    let _ = torii_icao::auth::parse_dg15(b);
    let _ = tlv::parse_one(b);
    let _ = torii_icao::apdu::Command::parse(b);
    if let Ok(s) = pa::Sod::parse(b) {
        let _ = s.ds_certificate().map(|c| s.verify_signature(&c));
        let _ = s.check_dg(1, b);
    }
    let mut sm = SecureMessaging::tdes([1; 16], [2; 16], [0; 8]);
    let _ = sm.unprotect(b);
    let _ = sm.unprotect_command(b);
    // PACE: EF.CardAccess from the chip, and each GENERAL AUTHENTICATE answer.
    if let Ok(infos) = torii_icao::pace::parse_card_access(b) {
        let _ = torii_icao::pace::choose(&infos).map(|i| i.supported_curve());
    }
    for tag in [0x80, 0x82, 0x84, 0x86] {
        let _ = torii_icao::pace::dynamic_data(b, tag, "fuzz");
    }
}

#[test]
fn random_and_mutated_inputs_never_panic() {
    let pki = TestPki::generate("garbage", "UT").unwrap();
    let sim = ChipSim::new(
        &ChipConfig {
            face_bytes: 300,
            dg14: true,
            dg15: true,
            ..ChipConfig::default()
        },
        &pki,
    )
    .unwrap();
    let mut seeds: Vec<Vec<u8>> = [
        fid::EF_COM,
        fid::dg(1),
        fid::dg(2),
        fid::dg(14),
        fid::dg(15),
        fid::EF_SOD,
    ]
    .iter()
    .map(|f| sim.file(*f).unwrap().to_vec())
    .collect();
    seeds.push(torii_chip_sim::SPECIMEN_TD3.as_bytes().to_vec());
    // A real EF.CardAccess, for the PACE parser's seed.
    let pace_info = torii_icao::pace::PaceInfo::ecdh_gm(
        torii_icao::pace::Cipher::Aes128,
        torii_icao::pace::Curve::P256,
    );
    seeds.push(torii_icao::pace::PaceInfo::to_card_access(&[pace_info]).unwrap());
    // A valid protected response for the SM parser's seed.
    let mut card = SecureMessaging::tdes([1; 16], [2; 16], [0; 8]);
    seeds.push(card.protect_response(&[1, 2, 3], 0x9000).unwrap());

    let mut rng = Rng(0x7031_1e5a_9d2b_c0de);
    for i in 0..3000 {
        let input = if i % 3 == 0 {
            let n = rng.below(300);
            rng.bytes(n)
        } else {
            let s = &seeds[rng.below(seeds.len())];
            rng.mutate(s)
        };
        all_parsers(&input);
    }
    // Hostile shapes: huge declared lengths, deep nesting, empty.
    for b in [
        vec![],
        vec![0x77, 0x84, 0xFF, 0xFF, 0xFF, 0xFF],
        vec![0x75, 0x83, 0xFF, 0xFF, 0xFF],
        [0x30u8, 0x80].repeat(5000),
    ] {
        all_parsers(&b);
    }
}
