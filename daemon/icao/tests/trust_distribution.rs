//! Trust distribution (ICAO 9303 Part 12): CRLs revoking a DS certificate and CSCA
//! master lists, end to end against the chip simulator. Deterministic: fixed keys,
//! RFC 6979 signatures, fixed inspection time.

use std::path::PathBuf;
use torii_chip_sim::pki::{self, system_time};
use torii_chip_sim::{ChipConfig, ChipSim, Fault, TestPki};
use torii_icao::pa::{PaError, TrustStoreError};
use torii_icao::verdict::{Check, Outcome, ReasonCode, inspect};
use torii_icao::{TrustStore, mrz};

fn pki() -> TestPki {
    TestPki::generate("trust", "UT").unwrap()
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

fn outcome(v: &torii_icao::verdict::DocumentVerdict, c: Check) -> Outcome {
    v.checks
        .iter()
        .find(|(d, _)| *d == c)
        .map(|(_, o)| o.clone())
        .unwrap()
}

/// A fresh directory under the target's temp dir (removed first).
fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("torii-trust-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn store_with_crl() -> TrustStore {
    let p = pki();
    let mut ts = p.trust_store();
    ts.add_crl(&p.crl().unwrap()).unwrap();
    assert_eq!(ts.crl_count(), 1);
    ts
}

#[test]
fn revoked_ds_is_refused() {
    let v = inspect(
        chip(vec![Fault::RevokedDs]),
        &optical(),
        &store_with_crl(),
        system_time(2026),
    );
    assert!(!v.is_genuine());
    assert_eq!(v.reasons(), vec![ReasonCode::DsRevoked]);
    assert!(matches!(
        outcome(&v, Check::DsRevocation),
        Outcome::Failed { reason: ReasonCode::DsRevoked, ref detail } if detail.contains("revoked")
    ));
    assert_eq!(ReasonCode::DsRevoked.as_str(), "DOC_DS_REVOKED");
    // The chain itself is fine: only the revocation check fails.
    assert_eq!(outcome(&v, Check::CscaChain), Outcome::Passed);
    assert!(v.document().is_none());
}

#[test]
fn crl_does_not_touch_other_ds_certificates() {
    let v = inspect(
        chip(vec![]),
        &optical(),
        &store_with_crl(),
        system_time(2026),
    );
    assert!(v.is_genuine(), "{:?}", v.reasons());
    assert_eq!(outcome(&v, Check::DsRevocation), Outcome::Passed);
}

#[test]
fn revoked_ds_passes_without_the_crl() {
    let v = inspect(
        chip(vec![Fault::RevokedDs]),
        &optical(),
        &pki().trust_store(),
        system_time(2026),
    );
    assert!(v.is_genuine(), "{:?}", v.reasons());
}

#[test]
fn crl_counts_only_while_current() {
    // The test CRL is current 2025-2030: before thisUpdate and after nextUpdate it is
    // not used (the DS and CSCA certificates are still valid in 2031).
    for (year, revoked) in [(2024, false), (2026, true), (2031, false)] {
        let v = inspect(
            chip(vec![Fault::RevokedDs]),
            &optical(),
            &store_with_crl(),
            system_time(year),
        );
        assert_eq!(
            v.reasons().contains(&ReasonCode::DsRevoked),
            revoked,
            "{year}: {:?}",
            v.reasons()
        );
    }
}

#[test]
fn crl_with_bad_signature_is_refused_at_load() {
    let p = pki();
    let mut crl = p.crl().unwrap();
    // The last byte is the last byte of the ECDSA signature's s.
    *crl.last_mut().unwrap() ^= 0x01;
    let mut ts = p.trust_store();
    let e = ts.add_crl(&crl).unwrap_err();
    assert!(
        matches!(e, PaError::Crl(ref m) if m.contains("signature")),
        "{e}"
    );
    assert_eq!(ts.crl_count(), 0);
    // Not counted: the revoked DS is not refused by this store.
    let v = inspect(
        chip(vec![Fault::RevokedDs]),
        &optical(),
        &ts,
        system_time(2026),
    );
    assert!(v.is_genuine(), "{:?}", v.reasons());

    // A CRL signed by another CSCA with the same name is refused the same way.
    let rogue_key = pki::key_from_label("rogue/csca").unwrap();
    let rogue = pki::csca_certificate(&rogue_key, "UT", 2020, 2040).unwrap();
    let forged = pki::sign_crl(&rogue, &rogue_key, &[2], 2025, 2030).unwrap();
    assert!(matches!(ts.add_crl(&forged), Err(PaError::Crl(_))));

    // From a directory: an error naming the file.
    let d = dir("badcrl");
    std::fs::write(d.join("csca-UT.der"), p.csca_der().unwrap()).unwrap();
    std::fs::write(d.join("UT.crl"), &crl).unwrap();
    match TrustStore::from_dir(&d) {
        Err(TrustStoreError::File { file, error }) => {
            assert_eq!(file, d.join("UT.crl"));
            assert!(
                error.contains("CRL") && error.contains("signature"),
                "{error}"
            );
        }
        other => panic!("{other:?}"),
    }
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn crl_garbage_is_an_error() {
    let mut ts = pki().trust_store();
    for bad in [
        &b""[..],
        &[0x30, 0x00],
        &[0x30, 0x83, 0xFF, 0xFF],
        b"-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n",
    ] {
        assert!(matches!(ts.add_crl(bad), Err(PaError::Crl(_))));
    }
    // A certificate is not a CRL.
    assert!(ts.add_crl(&pki().csca_der().unwrap()).is_err());
}

#[test]
fn trust_directory_with_pem_crl_revokes() {
    let p = pki();
    let d = dir("pemcrl");
    std::fs::write(d.join("csca-UT.der"), p.csca_der().unwrap()).unwrap();
    let pem =
        der::pem::encode_string("X509 CRL", der::pem::LineEnding::LF, &p.crl().unwrap()).unwrap();
    std::fs::write(d.join("UT.crl"), pem).unwrap();
    let ts = TrustStore::from_dir(&d).unwrap();
    assert_eq!((ts.len(), ts.crl_count()), (1, 1));
    let v = inspect(
        chip(vec![Fault::RevokedDs]),
        &optical(),
        &ts,
        system_time(2026),
    );
    assert_eq!(v.reasons(), vec![ReasonCode::DsRevoked]);
    let _ = std::fs::remove_dir_all(&d);
}

/// A root CSCA (country JP) whose master list signer lists the UT CSCA.
fn ml_root() -> TestPki {
    TestPki::generate("ml-root", "JP").unwrap()
}

#[test]
fn csca_trusted_only_through_a_master_list_passes() {
    let root = ml_root();
    let ml = root.master_list(&[pki().csca_cert.clone()]).unwrap();
    let mut ts = root.trust_store();
    // Without the master list, the UT CSCA is unknown.
    let v = inspect(chip(vec![]), &optical(), &ts, system_time(2026));
    assert_eq!(v.reasons(), vec![ReasonCode::CscaUnknown]);

    assert_eq!(ts.add_master_list(&ml).unwrap(), 1);
    assert_eq!(ts.len(), 2);
    let v = inspect(chip(vec![]), &optical(), &ts, system_time(2026));
    assert!(v.is_genuine(), "{:?}", v.reasons());

    // From a directory: the .ml is loaded after the certificates, and a CRL of the
    // CSCA that came from the master list is loaded after that.
    let d = dir("ml");
    std::fs::write(d.join("root-JP.der"), root.csca_der().unwrap()).unwrap();
    std::fs::write(d.join("a-list.ml"), &ml).unwrap();
    std::fs::write(d.join("0-UT.crl"), pki().crl().unwrap()).unwrap();
    let ts = TrustStore::from_dir(&d).unwrap();
    assert_eq!((ts.len(), ts.crl_count()), (2, 1));
    let v = inspect(chip(vec![]), &optical(), &ts, system_time(2026));
    assert!(v.is_genuine(), "{:?}", v.reasons());
    let v = inspect(
        chip(vec![Fault::RevokedDs]),
        &optical(),
        &ts,
        system_time(2026),
    );
    assert_eq!(v.reasons(), vec![ReasonCode::DsRevoked]);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn tampered_master_list_is_a_load_error() {
    let root = ml_root();
    let ml = root.master_list(&[pki().csca_cert.clone()]).unwrap();
    // Flip one byte inside the listed CSCA certificate (its subject public key),
    // well inside the encapsulated content.
    let csca_key = pki()
        .csca_cert
        .tbs_certificate()
        .subject_public_key_info()
        .subject_public_key
        .clone();
    let key = csca_key.raw_bytes();
    let at = ml
        .windows(key.len())
        .position(|w| w == key)
        .expect("CSCA key in the master list");
    let mut tampered = ml.clone();
    tampered[at + 10] ^= 0x01;
    let mut ts = root.trust_store();
    let e = ts.add_master_list(&tampered).unwrap_err();
    assert!(
        matches!(e, PaError::MasterList(ref m) if m.contains("message digest")),
        "{e}"
    );
    assert_eq!(ts.len(), 1, "nothing added");

    let d = dir("badml");
    std::fs::write(d.join("root-JP.der"), root.csca_der().unwrap()).unwrap();
    std::fs::write(d.join("list.ml"), &tampered).unwrap();
    match TrustStore::from_dir(&d) {
        Err(e @ TrustStoreError::File { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains("list.ml") && msg.contains("master list"),
                "{msg}"
            );
        }
        other => panic!("{other:?}"),
    }
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn master_list_signer_must_chain_to_a_trusted_csca() {
    let root = ml_root();
    let ml = root.master_list(&[pki().csca_cert.clone()]).unwrap();
    // The UT store does not trust the JP root that issued the signer.
    let mut ts = pki().trust_store();
    let e = ts.add_master_list(&ml).unwrap_err();
    assert!(
        matches!(e, PaError::MasterList(ref m) if m.contains("not issued by a trusted CSCA")),
        "{e}"
    );
    // A master list signed by a key other than its signer certificate's.
    let (_, cert) = root.master_list_signer().unwrap();
    let other = pki::key_from_label("rogue/ml").unwrap();
    let forged = pki::sign_master_list(&[pki().csca_cert.clone()], &cert, &other).unwrap();
    let mut ts = root.trust_store();
    assert!(matches!(
        ts.add_master_list(&forged),
        Err(PaError::MasterList(ref m)) if m.contains("signature")
    ));
    // A SOD is not a master list.
    let sod = chip(vec![]).file(0x011D).unwrap().to_vec();
    assert!(ts.add_master_list(&sod).is_err());
    assert!(ts.add_master_list(&sod[4..]).is_err());
    assert!(ts.add_master_list(&[]).is_err());
    assert_eq!(ts.len(), 1);
}

#[test]
fn mutated_crls_and_master_lists_never_panic() {
    let root = ml_root();
    let crl = pki().crl().unwrap();
    let ml = root.master_list(&[pki().csca_cert.clone()]).unwrap();
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for i in 0..600 {
        let src = if i % 2 == 0 { &crl } else { &ml };
        let mut m = src.clone();
        for _ in 0..1 + next() % 4 {
            let at = (next() as usize) % m.len();
            m[at] = next() as u8;
        }
        if next() % 4 == 0 {
            m.truncate((next() as usize) % m.len());
        }
        let mut ts = root.trust_store();
        ts.add(pki().csca_cert.clone());
        let _ = ts.add_crl(&m);
        let _ = ts.add_master_list(&m);
    }
}
