//! Chip Authentication (DG14) and Active Authentication (DG15) end to end against the
//! chip simulator: genuine chips pass, clones are refused, and a CA/AA key that Passive
//! Authentication did not verify is never used.

use torii_chip_sim::pki::system_time;
use torii_chip_sim::{ChipConfig, ChipSim, Fault, TestPki};
use torii_icao::pace::Cipher;
use torii_icao::verdict::{
    AccessProtocol, Check, InspectOptions, Outcome, ReasonCode, inspect, inspect_with,
};
use torii_icao::{ChipTransport, TransportError, mrz};

fn pki() -> TestPki {
    TestPki::generate("e2e", "UT").unwrap()
}

fn chip(faults: Vec<Fault>, dg14: bool, dg15: bool) -> ChipSim {
    ChipSim::new(
        &ChipConfig {
            faults,
            dg14,
            dg15,
            face_bytes: 2_000,
            ..ChipConfig::default()
        },
        &pki(),
    )
    .unwrap()
}

fn optical() -> mrz::Mrz {
    mrz::parse(torii_chip_sim::SPECIMEN_TD3).unwrap()
}

/// CA's MSE (INS 22, P1 41; PACE uses P1 C1) and AA's INTERNAL AUTHENTICATE.
const CA: (u8, u8) = (0x22, 0x41);
const AA: (u8, u8) = (0x88, 0x00);

/// Records every command APDU's INS and P1 (they stay in clear under SM).
struct Spy<'a> {
    sim: &'a mut ChipSim,
    ins: Vec<(u8, u8)>,
}

impl ChipTransport for Spy<'_> {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        self.ins.push((
            apdu.get(1).copied().unwrap_or(0),
            apdu.get(2).copied().unwrap_or(0),
        ));
        self.sim.transmit(apdu)
    }
}

fn run(sim: &mut ChipSim) -> (torii_icao::DocumentVerdict, Vec<(u8, u8)>) {
    let mut spy = Spy { sim, ins: vec![] };
    let v = inspect(
        &mut spy,
        &optical(),
        &pki().trust_store(),
        system_time(2026),
    );
    (v, spy.ins)
}

#[test]
fn genuine_chip_passes_ca_and_aa_with_pace_and_bac() {
    for pace in [true, false] {
        let mut sim = chip(vec![], true, true);
        let mut n = 0u8;
        let mut rng = |b: &mut [u8]| {
            n = n.wrapping_add(1);
            b.fill(n);
        };
        let v = inspect_with(
            &mut sim,
            &optical(),
            &pki().trust_store(),
            system_time(2026),
            &InspectOptions {
                pace,
                ..InspectOptions::default()
            },
            &mut rng,
        );
        assert!(v.is_genuine(), "{:?}", v.checks);
        for (c, o) in &v.checks {
            assert_eq!(o, &Outcome::Passed, "{c:?}");
        }
        assert_eq!(
            v.access,
            Some(if pace {
                AccessProtocol::Pace
            } else {
                AccessProtocol::Bac
            })
        );
        let others: Vec<u8> = v
            .document()
            .unwrap()
            .others
            .iter()
            .map(|d| d.number)
            .collect();
        assert_eq!(others, vec![14, 15]);
    }
}

#[test]
fn ca_with_3des_set_kat_and_aa_without_dg14() {
    let mut sim = ChipSim::new(
        &ChipConfig {
            dg14: true,
            ca_cipher: Cipher::Tdes,
            face_bytes: 1_000,
            ..ChipConfig::default()
        },
        &pki(),
    )
    .unwrap();
    let (v, ins) = run(&mut sim);
    assert!(v.is_genuine(), "{:?}", v.checks);
    assert_eq!(v.outcome(Check::ChipAuthentication), Some(&Outcome::Passed));
    assert!(ins.contains(&CA) && !ins.contains(&AA));
    // AA alone (no DG14: ECDSA with SHA-256 assumed).
    let mut sim = chip(vec![], false, true);
    let (v, ins) = run(&mut sim);
    assert!(v.is_genuine(), "{:?}", v.checks);
    assert_eq!(
        v.outcome(Check::ActiveAuthentication),
        Some(&Outcome::Passed)
    );
    assert!(matches!(
        v.outcome(Check::ChipAuthentication),
        Some(Outcome::NotPerformed { .. })
    ));
    assert!(ins.contains(&AA) && !ins.contains(&CA));
}

#[test]
fn cloned_chip_is_refused_by_ca_and_by_aa() {
    // CA detects the clone; AA is not attempted on the broken session.
    let mut sim = chip(vec![Fault::ClonedChip], true, true);
    let (v, _) = run(&mut sim);
    assert_eq!(v.reasons(), vec![ReasonCode::Cloned], "{:?}", v.checks);
    assert!(matches!(
        v.outcome(Check::ChipAuthentication),
        Some(Outcome::Failed {
            reason: ReasonCode::Cloned,
            ..
        })
    ));
    assert!(!v.is_genuine() && v.document().is_none());
    // PA alone would have accepted the clone: every PA check passed.
    assert_eq!(v.outcome(Check::DataGroupHashes), Some(&Outcome::Passed));
    assert_eq!(v.outcome(Check::SodSignature), Some(&Outcome::Passed));

    // AA only.
    let mut sim = chip(vec![Fault::ClonedChip], false, true);
    let (v, _) = run(&mut sim);
    assert_eq!(v.reasons(), vec![ReasonCode::Cloned], "{:?}", v.checks);
    assert!(matches!(
        v.outcome(Check::ActiveAuthentication),
        Some(Outcome::Failed {
            reason: ReasonCode::Cloned,
            ..
        })
    ));
    assert!(!v.is_genuine());
}

#[test]
fn key_not_verified_by_pa_is_never_used() {
    // The chip holds the private key of the DG14/DG15 it presents, so CA/AA would
    // "succeed" with it; but that file is not the one the SOD signed.
    let cases = [
        (
            Fault::SubstitutedDg14,
            true,
            false,
            Check::ChipAuthentication,
            CA,
        ),
        (
            Fault::Dg14NotInSod,
            true,
            false,
            Check::ChipAuthentication,
            CA,
        ),
        (
            Fault::SubstitutedDg15,
            false,
            true,
            Check::ActiveAuthentication,
            AA,
        ),
    ];
    for (fault, dg14, dg15, check, ins_of_protocol) in cases {
        let mut sim = chip(vec![fault.clone()], dg14, dg15);
        let (v, ins) = run(&mut sim);
        assert_eq!(
            v.reasons(),
            vec![ReasonCode::DgHashMismatch, ReasonCode::AuthKeyUnverified],
            "{fault:?}: {:?}",
            v.checks
        );
        assert!(
            matches!(
                v.outcome(check),
                Some(Outcome::Failed {
                    reason: ReasonCode::AuthKeyUnverified,
                    ..
                })
            ),
            "{fault:?}"
        );
        assert!(
            !ins.contains(&ins_of_protocol),
            "{fault:?}: the protocol ran with an unverified key"
        );
        assert!(!v.is_genuine() && v.document().is_none());
    }
}

#[test]
fn pa_failure_blocks_ca_and_aa_even_with_matching_keys() {
    // Unknown CSCA: the DG14/DG15 hashes match, but the SOD itself is not trusted.
    let mut sim = chip(vec![Fault::UnknownCsca], true, true);
    let (v, ins) = run(&mut sim);
    assert_eq!(
        v.reasons(),
        vec![
            ReasonCode::CscaUnknown,
            ReasonCode::AuthKeyUnverified,
            ReasonCode::AuthKeyUnverified
        ],
        "{:?}",
        v.checks
    );
    assert!(!ins.contains(&CA) && !ins.contains(&AA));
}

#[test]
fn dg14_hidden_from_ef_com_is_still_read_and_used() {
    let mut sim = chip(vec![Fault::Dg14NotInEfCom], true, false);
    let (v, ins) = run(&mut sim);
    assert!(v.is_genuine(), "{:?}", v.checks);
    assert_eq!(v.outcome(Check::ChipAuthentication), Some(&Outcome::Passed));
    assert!(ins.contains(&CA));
    // A clone hiding DG14 gains nothing.
    let mut sim = chip(vec![Fault::Dg14NotInEfCom, Fault::ClonedChip], true, false);
    let (v, _) = run(&mut sim);
    assert_eq!(v.reasons(), vec![ReasonCode::Cloned]);
}

#[test]
fn chip_without_dg14_or_dg15_is_unchanged() {
    let mut sim = chip(vec![], false, false);
    let (v, ins) = run(&mut sim);
    assert!(v.is_genuine());
    for c in [Check::ChipAuthentication, Check::ActiveAuthentication] {
        assert!(matches!(v.outcome(c), Some(Outcome::NotPerformed { .. })));
    }
    assert!(!ins.contains(&CA) && !ins.contains(&AA));
}

/// A chip that refuses CA's MSE:Set AT: a protocol failure, not a clone.
struct RefuseCa(ChipSim);

impl ChipTransport for RefuseCa {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        if apdu.get(1..4) == Some(&[0x22, 0x41, 0xA4][..]) {
            // An unprotected error status, as real chips send.
            return Ok(vec![0x6A, 0x80]);
        }
        self.0.transmit(apdu)
    }
}

#[test]
fn refused_ca_is_chip_auth_failed() {
    let v = inspect(
        RefuseCa(chip(vec![], true, false)),
        &optical(),
        &pki().trust_store(),
        system_time(2026),
    );
    assert_eq!(
        v.reasons(),
        vec![ReasonCode::ChipAuthFailed],
        "{:?}",
        v.checks
    );
    assert!(!v.is_genuine());
}
