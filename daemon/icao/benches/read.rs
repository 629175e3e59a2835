//! In-process full read: PACE + EF.COM + DG1 + a 20 KB DG2 + SOD + PA against the
//! chip simulator. Prints CPU time per read (this thread, from
//! /proc/thread-self/schedstat; both the reader and the simulated chip run on
//! it) and the APDU count: first with the default READ BINARY sizes (P-256 PACE and
//! PKI), then P-256 against brainpoolP256r1 and brainpoolP384r1 (PACE and the
//! PKI's ECDSA signatures on the same curve) in the same run.

use std::time::Instant;
use torii_chip_sim::pki::{KeyKind, system_time};
use torii_chip_sim::{ChipConfig, ChipSim, TestPki};
use torii_icao::pace::Curve;
use torii_icao::verdict::{AccessProtocol, InspectOptions, inspect_with};

fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

fn main() {
    let pki = TestPki::generate("bench", "UT").expect("test PKI");
    let trust = pki.trust_store();
    let optical = torii_icao::mrz::parse(torii_chip_sim::SPECIMEN_TD3).expect("specimen MRZ");
    let config = ChipConfig {
        face_bytes: 20_000,
        ..ChipConfig::default()
    };
    let now = system_time(2026);
    let mut counter = 0u8;
    let mut rng = |b: &mut [u8]| {
        counter = counter.wrapping_add(1);
        b.fill(counter);
    };
    let runs = 50;
    for (label, max_read) in [("Le 0xDF (default)", 0xDF), ("Le 160 (fussy chips)", 160)] {
        let opts = InspectOptions {
            reader: torii_icao::reader::ReaderConfig {
                max_read,
                ..Default::default()
            },
            ..Default::default()
        };
        // Chips are built (and their SODs signed) before measuring.
        let mut sims: Vec<ChipSim> = (0..runs)
            .map(|_| ChipSim::new(&config, &pki).expect("chip"))
            .collect();
        let mut apdus = 0;
        let (c0, t0) = (thread_cpu_ns(), Instant::now());
        for sim in sims.iter_mut() {
            let v = inspect_with(sim, &optical, &trust, now, &opts, &mut rng);
            assert!(v.is_genuine(), "{:?}", v.reasons());
            apdus = v.apdus;
        }
        let (c1, t1) = (thread_cpu_ns(), Instant::now());
        let cpu = match (c0, c1) {
            (Some(a), Some(b)) => format!("{:.2} ms", (b - a) as f64 / 1e6 / runs as f64),
            _ => "n/a".into(),
        };
        println!(
            "full read, {label}: {apdus} APDUs; CPU {cpu} per read (reader + simulated chip, one thread), wall {:.2} ms per read, mean of {runs}",
            (t1 - t0).as_secs_f64() * 1e3 / runs as f64
        );
    }
    for (label, curve, kind) in [
        ("P-256 PACE + P-256 PKI", Curve::P256, KeyKind::P256),
        (
            "brainpoolP256r1 PACE + PKI",
            Curve::BrainpoolP256r1,
            KeyKind::BrainpoolP256r1,
        ),
        (
            "brainpoolP384r1 PACE + PKI",
            Curve::BrainpoolP384r1,
            KeyKind::BrainpoolP384r1,
        ),
    ] {
        let pki = TestPki::generate_with("bench", "UT", kind).expect("test PKI");
        let trust = pki.trust_store();
        let config = ChipConfig {
            pace_curve: curve,
            ..config.clone()
        };
        let mut sims: Vec<ChipSim> = (0..runs)
            .map(|_| ChipSim::new(&config, &pki).expect("chip"))
            .collect();
        let (c0, t0) = (thread_cpu_ns(), Instant::now());
        for sim in sims.iter_mut() {
            let v = inspect_with(sim, &optical, &trust, now, &Default::default(), &mut rng);
            assert!(v.is_genuine(), "{:?}", v.reasons());
            assert_eq!(v.access, Some(AccessProtocol::Pace));
        }
        let (c1, t1) = (thread_cpu_ns(), Instant::now());
        let cpu = match (c0, c1) {
            (Some(a), Some(b)) => format!("{:.2} ms", (b - a) as f64 / 1e6 / runs as f64),
            _ => "n/a".into(),
        };
        println!(
            "PACE + PA read, {label}: CPU {cpu} per read, wall {:.2} ms per read, mean of {runs}",
            (t1 - t0).as_secs_f64() * 1e3 / runs as f64
        );
    }
}
