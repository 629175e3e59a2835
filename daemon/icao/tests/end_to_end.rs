//! torii-icao against the chip simulator, in-process: a good document passes,
//! every fault mode yields the right failed check and reason code.

use torii_chip_sim::pki::system_time;
use torii_chip_sim::{ChipConfig, ChipSim, Fault, TestPki};
use torii_icao::lds::ImageFormat;
use torii_icao::reader::ReaderConfig;
use torii_icao::verdict::{
    AccessProtocol, Check, InspectOptions, Outcome, ReasonCode, inspect, inspect_with,
};
use torii_icao::{ChipTransport, mrz};

fn pki() -> TestPki {
    TestPki::generate("e2e", "UT").unwrap()
}

fn chip(faults: Vec<Fault>) -> ChipSim {
    ChipSim::new(
        &ChipConfig {
            faults,
            ..ChipConfig::default()
        },
        &pki(),
    )
    .unwrap()
}

fn optical() -> mrz::Mrz {
    mrz::parse(torii_chip_sim::SPECIMEN_TD3).unwrap()
}

#[test]
fn genuine_document_passes_with_bac_and_pa() {
    let mut sim = chip(vec![]);
    let v = inspect(
        &mut sim,
        &optical(),
        &pki().trust_store(),
        system_time(2026),
    );
    for (c, o) in &v.checks {
        if !matches!(c, Check::ChipAuthentication | Check::ActiveAuthentication) {
            assert_eq!(o, &Outcome::Passed, "{c:?}");
        }
    }
    assert!(v.is_genuine(), "{:?}", v.checks);
    let doc = v.document().unwrap();
    assert_eq!(doc.dg1.mrz, optical());
    let face = &doc.dg2.as_ref().unwrap().faces[0];
    assert_eq!((face.format, face.data.len()), (ImageFormat::Jpeg, 20_000));
    assert_eq!(v.apdus, sim.apdus);
    // Privacy: the verdict's Debug shows no personal data.
    let dbg = format!("{v:?}");
    assert!(
        !dbg.contains("ERIKSSON") && !dbg.contains("L898902C"),
        "{dbg}"
    );
}

#[test]
fn dg15_is_read_and_hash_checked() {
    let mut sim = ChipSim::new(
        &ChipConfig {
            dg15: true,
            ..ChipConfig::default()
        },
        &pki(),
    )
    .unwrap();
    let v = inspect(
        &mut sim,
        &optical(),
        &pki().trust_store(),
        system_time(2026),
    );
    assert!(v.is_genuine(), "{:?}", v.reasons());
    assert_eq!(v.document().unwrap().others[0].number, 15);
}

#[test]
fn fault_modes_yield_the_right_check_and_reason() {
    let cases: Vec<(Fault, Check, ReasonCode)> = vec![
        (
            Fault::TamperedDg(2),
            Check::DataGroupHashes,
            ReasonCode::DgHashMismatch,
        ),
        (
            Fault::WrongDs,
            Check::SodSignature,
            ReasonCode::SodSignatureInvalid,
        ),
        (
            Fault::UnknownCsca,
            Check::CscaChain,
            ReasonCode::CscaUnknown,
        ),
        (Fault::ExpiredDs, Check::DsValidity, ReasonCode::DsExpired),
        (Fault::MrzMismatch, Check::MrzMatch, ReasonCode::MrzMismatch),
        (
            Fault::IssuerMismatch,
            Check::IssuerMatch,
            ReasonCode::IssuerMismatch,
        ),
    ];
    for (fault, check, reason) in cases {
        let mut sim = chip(vec![fault.clone()]);
        let v = inspect(
            &mut sim,
            &optical(),
            &pki().trust_store(),
            system_time(2026),
        );
        assert_eq!(v.reasons(), vec![reason], "{fault:?}: {:?}", v.checks);
        assert!(
            matches!(v.outcome(check), Some(Outcome::Failed { reason: r, .. }) if *r == reason),
            "{fault:?}"
        );
        assert!(!v.is_genuine() && v.document().is_none(), "{fault:?}");
    }
}

#[test]
fn unknown_trust_store_and_time_outside_validity() {
    let other = TestPki::generate("other-country", "UT").unwrap();
    let v = inspect(
        chip(vec![]),
        &optical(),
        &other.trust_store(),
        system_time(2026),
    );
    assert_eq!(v.reasons(), vec![ReasonCode::CscaUnknown]);
    // In 2038 the DS (to 2036) has expired while the CSCA (to 2040) is valid.
    let v = inspect(
        chip(vec![]),
        &optical(),
        &pki().trust_store(),
        system_time(2038),
    );
    assert_eq!(v.reasons(), vec![ReasonCode::DsExpired]);
    let v = inspect(
        chip(vec![]),
        &optical(),
        &pki().trust_store(),
        system_time(2041),
    );
    assert_eq!(
        v.reasons(),
        vec![ReasonCode::CscaExpired, ReasonCode::DsExpired]
    );
}

#[test]
fn wrong_mrz_fails_chip_access() {
    // Another valid MRZ (TD3 specimen of the BAC example): the chip refuses BAC.
    let other = mrz::parse("P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\nL898902C<3UTO6908061F9406236ZE184226B<<<<<14").unwrap();
    let v = inspect(
        chip(vec![]),
        &other,
        &pki().trust_store(),
        system_time(2026),
    );
    assert_eq!(v.reasons(), vec![ReasonCode::ChipAccessFailed]);
    assert!(
        matches!(v.outcome(Check::ChipAccess), Some(Outcome::Failed { detail, .. }) if detail.contains("6300"))
    );
}

#[test]
fn read_limit_160_is_adapted_to() {
    let mut sim = chip(vec![Fault::ReadLimit160]);
    let v = inspect(
        &mut sim,
        &optical(),
        &pki().trust_store(),
        system_time(2026),
    );
    assert!(v.is_genuine(), "{:?}", v.checks);
    // Configured straight at 160, no retry is needed and fewer APDUs are sent.
    let mut sim2 = chip(vec![Fault::ReadLimit160]);
    let opts = InspectOptions {
        reader: ReaderConfig {
            max_read: 160,
            ..ReaderConfig::default()
        },
        ..InspectOptions::default()
    };
    let mut rng = |b: &mut [u8]| b.fill(7);
    let v2 = inspect_with(
        &mut sim2,
        &optical(),
        &pki().trust_store(),
        system_time(2026),
        &opts,
        &mut rng,
    );
    assert!(v2.is_genuine());
    assert!(v2.apdus < v.apdus);
}

#[test]
fn chip_that_rejects_le_on_select_still_reads() {
    let v = inspect(
        chip(vec![Fault::RejectLeOnSelect]),
        &optical(),
        &pki().trust_store(),
        system_time(2026),
    );
    assert!(v.is_genuine(), "{:?}", v.checks);
}

/// A transport that corrupts one response: SM must refuse it, the verdict says why.
struct Corrupting {
    inner: ChipSim,
    at: usize,
    n: usize,
}

impl ChipTransport for Corrupting {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, torii_icao::TransportError> {
        self.n += 1;
        let mut r = self.inner.transmit(apdu)?;
        if self.n == self.at && r.len() > 4 {
            r[2] ^= 0x40;
        }
        Ok(r)
    }
}

#[test]
fn corrupted_protected_response_is_a_read_failure() {
    // APDUs 1-3 read EF.CardAccess, 4-8 run PACE (a corrupted PACE answer makes the
    // terminal fall back to BAC), 9 selects the application; 10 on are protected reads.
    for at in [10, 11, 14, 30] {
        let t = Corrupting {
            inner: chip(vec![]),
            at,
            n: 0,
        };
        let v = inspect(t, &optical(), &pki().trust_store(), system_time(2026));
        assert_eq!(
            v.reasons(),
            vec![ReasonCode::ChipReadFailed],
            "corrupt APDU {at}"
        );
        assert!(v.document().is_none());
    }
}

#[test]
fn trust_store_loads_a_directory_of_der_and_pem() {
    use der::{Encode, EncodePem};
    let dir = std::env::temp_dir().join(format!("torii-icao-trust-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = pki();
    std::fs::write(dir.join("a.der"), p.csca_cert.to_der().unwrap()).unwrap();
    std::fs::write(
        dir.join("b.pem"),
        p.csca_cert.to_pem(der::pem::LineEnding::LF).unwrap(),
    )
    .unwrap();
    std::fs::write(dir.join("broken.cer"), b"nope").unwrap();
    std::fs::write(dir.join("README"), b"ignored").unwrap();
    let (ts, rejected) = torii_icao::pa::TrustStore::load_dir(&dir).unwrap();
    std::fs::remove_dir_all(&dir).ok();
    // The same CSCA in DER and PEM is kept once (duplicates are dropped, as master
    // lists usually repeat CSCAs already in the directory).
    assert_eq!(ts.len(), 1);
    assert_eq!(rejected.len(), 1);
    let v = inspect(chip(vec![]), &optical(), &ts, system_time(2026));
    assert!(v.is_genuine());
}

#[test]
fn pace_is_preferred_and_bac_is_the_fallback() {
    let trust = pki().trust_store();
    let now = system_time(2026);
    let v = inspect(chip(vec![]), &optical(), &trust, now);
    assert_eq!(v.access, Some(AccessProtocol::Pace));
    assert!(v.is_genuine(), "{:?}", v.checks);
    let v = inspect(chip(vec![Fault::BacOnly]), &optical(), &trust, now);
    assert_eq!(v.access, Some(AccessProtocol::Bac));
    assert!(v.is_genuine(), "{:?}", v.checks);
    let v = inspect(chip(vec![Fault::PaceOnly]), &optical(), &trust, now);
    assert_eq!(v.access, Some(AccessProtocol::Pace));
    assert!(v.is_genuine(), "{:?}", v.checks);
    // A PACE-only chip and a terminal that does not try PACE: no access.
    let mut n = 0u8;
    let mut rng = |b: &mut [u8]| {
        n = n.wrapping_add(1);
        b.fill(n);
    };
    let no_pace = InspectOptions {
        pace: false,
        ..InspectOptions::default()
    };
    let v = inspect_with(
        chip(vec![Fault::PaceOnly]),
        &optical(),
        &trust,
        now,
        &no_pace,
        &mut rng,
    );
    assert_eq!(v.reasons(), vec![ReasonCode::ChipAccessFailed]);
    // Optical MRZ lines as a document reader returns them.
    let lines: Vec<String> = torii_chip_sim::SPECIMEN_TD3
        .lines()
        .map(String::from)
        .collect();
    assert!(inspect(chip(vec![]), &lines, &trust, now).is_genuine());
    let v = inspect(chip(vec![]), &["garbage"], &trust, now);
    assert_eq!(v.reasons(), vec![ReasonCode::MrzInvalid]);
}

#[test]
fn wrong_mrz_fails_pace_and_bac() {
    let other = mrz::parse(
        "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\nL898902C<3UTO6908061F9406236ZE184226B<<<<<14",
    );
    let other = other.unwrap();
    let v = inspect(
        chip(vec![]),
        &other,
        &pki().trust_store(),
        system_time(2026),
    );
    assert!(
        matches!(v.outcome(Check::ChipAccess), Some(Outcome::Failed { detail, .. }) if detail.contains("PACE") && detail.contains("BAC")),
        "{:?}",
        v.checks
    );
    let v = inspect(
        chip(vec![Fault::PaceOnly]),
        &other,
        &pki().trust_store(),
        system_time(2026),
    );
    assert_eq!(v.reasons(), vec![ReasonCode::ChipAccessFailed]);
}
