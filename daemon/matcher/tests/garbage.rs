//! Deterministic smoke test for bad input: thousands of seeded random and mutated
//! records through both parsers. Nothing may panic, and nothing malformed may ever
//! produce a match (a parse error is the only acceptable outcome for a broken record;
//! a mutated record that still parses must be a valid record).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use torii_matcher::ansi378::AnsiRecord;
use torii_matcher::calibration::Threshold;
use torii_matcher::iso19794_2::IsoRecord;
use torii_matcher::record::FingerPosition;
use torii_matcher::synth::{Finger, Params};
use torii_matcher::{PreparedTemplate, compare};

fn valid_iso(rng: &mut ChaCha8Rng) -> Vec<u8> {
    let p = Params::default();
    let f = rng.random_range(0..50);
    Finger::new(&p, 3, f)
        .impression(&p, 3, f, rng.random_range(0..4))
        .to_iso(FingerPosition::RIGHT_INDEX)
        .to_bytes()
        .unwrap()
}

fn mutate(rng: &mut ChaCha8Rng, mut b: Vec<u8>) -> Vec<u8> {
    for _ in 0..rng.random_range(1..=4) {
        match rng.random_range(0..5) {
            0 if !b.is_empty() => {
                let i = rng.random_range(0..b.len());
                b[i] = rng.random();
            }
            1 if !b.is_empty() => {
                let i = rng.random_range(0..b.len());
                b[i] ^= 1 << rng.random_range(0..8);
            }
            2 => b.truncate(rng.random_range(0..=b.len())),
            3 => {
                let n = rng.random_range(1..8);
                b.extend((0..n).map(|_| rng.random::<u8>()));
            }
            _ if b.len() > 12 => {
                // Keep the length field consistent so deeper fields get exercised.
                let n = b.len() as u32;
                b[8..12].copy_from_slice(&n.to_be_bytes());
            }
            _ => {}
        }
    }
    b
}

#[test]
fn parsers_never_panic_and_garbage_never_matches() {
    let mut rng = ChaCha8Rng::seed_from_u64(0x6A5BA6E);
    let reference_bytes = valid_iso(&mut rng);
    let reference = PreparedTemplate::from_iso_bytes(&reference_bytes, 0).unwrap();
    let threshold = Threshold::for_fmr(1e-4).unwrap();
    let (mut rejected, mut parsed) = (0, 0);
    for round in 0..4000 {
        let input = match round % 3 {
            0 => {
                let n = rng.random_range(0..300);
                let mut b: Vec<u8> = (0..n).map(|_| rng.random()).collect();
                if rng.random_bool(0.5) && b.len() >= 8 {
                    b[..8].copy_from_slice(b"FMR\0 20\0");
                }
                b
            }
            _ => {
                let base = valid_iso(&mut rng);
                mutate(&mut rng, base)
            }
        };
        let _ = AnsiRecord::parse(&input);
        match IsoRecord::parse(&input) {
            Err(e) => {
                rejected += 1;
                assert!(!e.to_string().is_empty());
            }
            Ok(rec) => {
                parsed += 1;
                // What parses must write back to the same bytes: it is a valid record.
                assert_eq!(rec.to_bytes().unwrap(), input, "round {round}");
                for i in 0..rec.views.len() {
                    let t = PreparedTemplate::from_iso(&rec, i).unwrap();
                    let s = compare(&t, &reference);
                    assert!(s.is_finite() && s >= 0.0);
                }
            }
        }
        // Random bytes are never a record, let alone a match.
        if round % 3 == 0 && input.get(..8) != Some(b"FMR\0 20\0".as_slice()) {
            assert!(PreparedTemplate::from_iso_bytes(&input, 0).is_err());
        }
        let _ = threshold;
    }
    assert!(rejected > 2000, "{rejected} rejected, {parsed} parsed");
}

#[test]
fn random_but_valid_minutiae_do_not_match() {
    // Structurally valid records full of random minutiae: parse fine, never match.
    let mut rng = ChaCha8Rng::seed_from_u64(0xBAD5EED);
    let p = Params::default();
    let threshold = Threshold::for_fmr(1e-4).unwrap();
    let reference = PreparedTemplate::from_iso(
        &Finger::new(&p, 9, 0)
            .impression(&p, 9, 0, 0)
            .to_iso(FingerPosition::RIGHT_INDEX),
        0,
    )
    .unwrap();
    for _ in 0..300 {
        let mut rec = Finger::new(&p, 9, 1)
            .impression(&p, 9, 1, 0)
            .to_iso(FingerPosition::RIGHT_INDEX);
        for m in rec.views[0].minutiae.iter_mut() {
            m.x = rng.random_range(0..rec.geometry.width);
            m.y = rng.random_range(0..rec.geometry.height);
            m.angle_code = rng.random();
        }
        let t = PreparedTemplate::from_iso(&IsoRecord::parse(&rec.to_bytes().unwrap()).unwrap(), 0)
            .unwrap();
        assert!(!threshold.accepts(compare(&t, &reference)));
    }
}
