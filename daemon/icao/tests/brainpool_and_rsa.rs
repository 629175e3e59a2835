//! PACE on brainpool curves, and Passive Authentication with brainpool ECDSA and RSA
//! (PKCS#1 v1.5 and RSASSA-PSS) document signers, end to end against the chip
//! simulator.

use torii_chip_sim::pki::{KeyKind, system_time};
use torii_chip_sim::{ChipConfig, ChipSim, Fault, TestPki};
use torii_icao::mrz;
use torii_icao::pace::{Cipher, Curve};
use torii_icao::verdict::{AccessProtocol, Check, Outcome, ReasonCode, inspect};

fn optical() -> mrz::Mrz {
    mrz::parse(torii_chip_sim::SPECIMEN_TD3).unwrap()
}

fn read(config: &ChipConfig, pki: &TestPki) -> torii_icao::verdict::DocumentVerdict {
    let mut sim = ChipSim::new(config, pki).unwrap();
    inspect(&mut sim, &optical(), &pki.trust_store(), system_time(2026))
}

fn config(curve: Curve, cipher: Cipher, faults: Vec<Fault>) -> ChipConfig {
    ChipConfig {
        face_bytes: 2_000,
        pace_curve: curve,
        pace_cipher: cipher,
        faults,
        ..ChipConfig::default()
    }
}

#[test]
fn pace_on_brainpool_p256_and_p384_reads_a_genuine_document() {
    let pki = TestPki::generate("bp-pace", "UT").unwrap();
    // The chip refuses BAC: only a working brainpool PACE can open it.
    for (curve, cipher) in [
        (Curve::BrainpoolP256r1, Cipher::Aes128),
        (Curve::BrainpoolP384r1, Cipher::Aes256),
        (Curve::BrainpoolP256r1, Cipher::Tdes),
    ] {
        let v = read(&config(curve, cipher, vec![Fault::PaceOnly]), &pki);
        assert_eq!(v.access, Some(AccessProtocol::Pace), "{curve:?}");
        assert!(v.is_genuine(), "{curve:?}: {:?}", v.checks);
        assert_eq!(v.outcome(Check::ChipAccess), Some(&Outcome::Passed));
    }
}

#[test]
fn passive_authentication_with_brainpool_ecdsa_signers() {
    for (kind, curve) in [
        (KeyKind::BrainpoolP256r1, Curve::BrainpoolP256r1),
        (KeyKind::BrainpoolP384r1, Curve::BrainpoolP384r1),
    ] {
        let pki = TestPki::generate_with("bp-pa", "UT", kind).unwrap();
        let v = read(&config(curve, Cipher::Aes128, vec![]), &pki);
        assert_eq!(v.access, Some(AccessProtocol::Pace));
        assert!(v.is_genuine(), "{kind:?}: {:?}", v.checks);
        for (fault, reason) in [
            (Fault::WrongDs, ReasonCode::SodSignatureInvalid),
            (Fault::AlteredSodSignature, ReasonCode::SodSignatureInvalid),
            (Fault::UnknownCsca, ReasonCode::CscaUnknown),
            (Fault::TamperedDg(2), ReasonCode::DgHashMismatch),
        ] {
            let v = read(&config(curve, Cipher::Aes128, vec![fault.clone()]), &pki);
            assert_eq!(
                v.reasons(),
                vec![reason],
                "{kind:?} {fault:?}: {:?}",
                v.checks
            );
            assert!(!v.is_genuine());
        }
    }
}

#[test]
fn passive_authentication_with_rsa_pkcs1_and_pss_signers() {
    for kind in [KeyKind::RsaPkcs1v15, KeyKind::RsaPss] {
        let pki = TestPki::generate_with("rsa-pa", "UT", kind).unwrap();
        let v = read(&config(Curve::P256, Cipher::Aes128, vec![]), &pki);
        assert!(v.is_genuine(), "{kind:?}: {:?}", v.checks);
        for (fault, reason) in [
            (Fault::WrongDs, ReasonCode::SodSignatureInvalid),
            (Fault::AlteredSodSignature, ReasonCode::SodSignatureInvalid),
            (Fault::UnknownCsca, ReasonCode::CscaUnknown),
            (Fault::RevokedDs, ReasonCode::DsRevoked),
        ] {
            let mut sim = ChipSim::new(
                &config(Curve::P256, Cipher::Aes128, vec![fault.clone()]),
                &pki,
            )
            .unwrap();
            let mut trust = pki.trust_store();
            trust.add_crl(&pki.crl().unwrap()).unwrap();
            let v = inspect(&mut sim, &optical(), &trust, system_time(2026));
            assert_eq!(
                v.reasons(),
                vec![reason],
                "{kind:?} {fault:?}: {:?}",
                v.checks
            );
        }
    }
}

fn aa_outcome(v: &torii_icao::verdict::DocumentVerdict) -> Option<&Outcome> {
    v.outcome(Check::ActiveAuthentication)
}

/// Active Authentication with an RSA DG15 key (ISO/IEC 9796-2 scheme 1, SHA-1): a
/// genuine chip passes, a clone (every file copied, its own RSA key) is `DOC_CLONED`,
/// a substituted DG15 is caught by PA and AA is not run.
#[test]
fn rsa_active_authentication_and_a_cloned_chip() {
    for kind in [KeyKind::P256, KeyKind::RsaPkcs1v15] {
        let pki = TestPki::generate_with("rsa-aa", "UT", kind).unwrap();
        let aa = |faults: Vec<Fault>| ChipConfig {
            dg15: true,
            aa_rsa: true,
            ..config(Curve::P256, Cipher::Aes128, faults)
        };
        let v = read(&aa(vec![]), &pki);
        assert!(v.is_genuine(), "{kind:?}: {:?}", v.checks);
        assert_eq!(aa_outcome(&v), Some(&Outcome::Passed));

        let v = read(&aa(vec![Fault::ClonedChip]), &pki);
        assert!(!v.is_genuine());
        assert_eq!(v.reasons(), vec![ReasonCode::Cloned], "{:?}", v.checks);

        let v = read(&aa(vec![Fault::SubstitutedDg15]), &pki);
        assert!(!v.is_genuine());
        assert!(
            v.reasons().contains(&ReasonCode::AuthKeyUnverified),
            "{:?}",
            v.checks
        );
    }
}

/// Chip Authentication (DG14 ECDH key) on brainpool curves, after brainpool PACE and
/// PA: a genuine chip passes, a clone (DG14 copied, its own key) is `DOC_CLONED`.
#[test]
fn chip_authentication_on_brainpool_curves() {
    let pki = TestPki::generate_with("bp-ca", "UT", KeyKind::BrainpoolP256r1).unwrap();
    for (curve, cipher) in [
        (Curve::BrainpoolP256r1, Cipher::Aes128),
        (Curve::BrainpoolP384r1, Cipher::Aes256),
        (Curve::BrainpoolP256r1, Cipher::Tdes),
    ] {
        let ca = |faults: Vec<Fault>| ChipConfig {
            dg14: true,
            ca_curve: curve,
            ca_cipher: cipher,
            ..config(curve, Cipher::Aes128, faults)
        };
        let v = read(&ca(vec![]), &pki);
        assert!(v.is_genuine(), "{curve:?} {cipher:?}: {:?}", v.checks);
        assert_eq!(v.outcome(Check::ChipAuthentication), Some(&Outcome::Passed));
        let v = read(&ca(vec![Fault::ClonedChip]), &pki);
        assert_eq!(
            v.reasons(),
            vec![ReasonCode::Cloned],
            "{curve:?}: {:?}",
            v.checks
        );
    }
}
