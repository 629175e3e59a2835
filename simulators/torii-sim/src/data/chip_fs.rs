//! A contactless eMRTD chip per traveler, answered by the card-side simulator
//! `torii-chip-sim`: a real ICAO 9303 LDS1 file system (EF.COM, DG1 with the traveler's
//! MRZ, DG2 with the traveler's face JPEG in an ISO/IEC 19794-5 record, EF.SOD), Basic
//! Access Control and secure messaging, and an SOD signed by a deterministic test PKI:
//! one CSCA and one Document Signer per issuing country ([`pki_for`]).
//!
//! The daemon trusts those CSCAs through a trust store directory written by
//! [`write_trust_store`] (or [`write_trust_store_for`] with a custom scenario).
//!
//! APDUs (ISO/IEC 7816-4): before access control only EF.CardAccess (011C, in plain:
//! it offers PACE-GM ECDH P-256 AES-128), `SELECT` of the eMRTD application (AID
//! `A0 00 00 02 47 10 01`, answered 9000), PACE (`MSE:Set AT`, `GENERAL AUTHENTICATE`)
//! and BAC (`GET CHALLENGE`, `EXTERNAL AUTHENTICATE`) are answered; `SELECT` of another
//! file or `READ BINARY` without secure messaging gets 6982 (security status not
//! satisfied), an unknown file 6A82. After PACE or BAC every command must be protected
//! (CLA 0C); an SM error ends the session and is answered 6988 in plain. Files: EF.COM
//! 011E, DG1 0101, DG2 0102, EF.SOD 011D.

use super::{face, mrz};
use crate::scenario::{Scenario, Sex, Traveler};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use torii_chip_sim::torii_icao;
use torii_chip_sim::{ChipConfig, ChipSim, TestPki};
use torii_icao::ChipTransport;

/// The eMRTD LDS1 application identifier.
pub const EMRTD_AID: [u8; 7] = [0xA0, 0x00, 0x00, 0x02, 0x47, 0x10, 0x01];
pub const FID_EF_COM: u16 = 0x011E;
pub const FID_DG1: u16 = 0x0101;
pub const FID_DG2: u16 = 0x0102;
pub const FID_EF_SOD: u16 = 0x011D;
pub const FID_EF_CARD_ACCESS: u16 = 0x011C;

pub const SW_OK: [u8; 2] = [0x90, 0x00];
pub const SW_SECURITY_STATUS: [u8; 2] = [0x69, 0x82];
pub const SW_FILE_NOT_FOUND: [u8; 2] = [0x6A, 0x82];
pub const SW_WRONG_LENGTH: [u8; 2] = [0x67, 0x00];

#[derive(Debug, thiserror::Error)]
pub enum ChipFsError {
    #[error("MRZ: {0}")]
    Mrz(#[from] mrz::MrzError),
    #[error("face image: {0}")]
    Face(#[from] face::FaceError),
    #[error("the face image is too large for a 19794-5 record")]
    FaceTooLarge,
    #[error("test PKI: {0}")]
    Pki(#[from] torii_chip_sim::PkiError),
    #[error("chip: {0}")]
    Chip(#[from] torii_chip_sim::SimError),
}

/// The ISO 3166 alpha-2 code a DS/CSCA certificate carries for an ICAO alpha-3 issuing
/// state (`D` → `DE`, `GBR` → `GB`); unknown codes get `XX` (PA then reports an
/// issuer mismatch, as it would for such a passport).
pub fn certificate_country(alpha3: &str) -> &'static str {
    torii_icao::pa::alpha3_to_alpha2(alpha3).unwrap_or("XX")
}

/// The simulator's test PKI of an issuing state (alpha-3): CSCA valid 2020–2040 and
/// DS valid 2024–2036, keys derived from the label `torii-sim/<alpha-2>`. Built once,
/// then cached.
pub fn pki_for(issuing_state: &str) -> Result<TestPki, ChipFsError> {
    static CACHE: OnceLock<Mutex<BTreeMap<String, TestPki>>> = OnceLock::new();
    let country = certificate_country(issuing_state);
    let cache = CACHE.get_or_init(Default::default);
    if let Some(p) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(country) {
        return Ok(p.clone());
    }
    let pki = TestPki::generate(&format!("torii-sim/{country}"), country)?;
    cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(country.to_owned(), pki.clone());
    Ok(pki)
}

/// Writes the CSCA certificate (DER, `csca-<alpha-2>.der`) of every issuing state of
/// `scenario`'s chip passports into `dir` (created if missing), for the daemon's
/// `[documents] trust_store`. Returns the files written.
pub fn write_trust_store_for(dir: &Path, scenario: &Scenario) -> std::io::Result<Vec<PathBuf>> {
    let states: std::collections::BTreeSet<&str> = scenario
        .travelers
        .iter()
        .filter(|t| t.passport.chip)
        .map(Traveler::issuing_state)
        .collect();
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    let mut countries = std::collections::BTreeSet::new();
    for state in states {
        if !countries.insert(certificate_country(state)) {
            continue;
        }
        let pki = pki_for(state).map_err(std::io::Error::other)?;
        let der = pki.csca_der().map_err(std::io::Error::other)?;
        let path = dir.join(format!("csca-{}.der", certificate_country(state)));
        std::fs::write(&path, der)?;
        written.push(path);
    }
    Ok(written)
}

/// [`write_trust_store_for`] the shipped default scenario.
pub fn write_trust_store(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let scenario = Scenario::default_scenario().map_err(std::io::Error::other)?;
    write_trust_store_for(dir, &scenario)
}

/// An ISO/IEC 19794-5:2005 facial record holding one full-frontal JPEG, no feature points.
pub fn facial_record(
    jpeg: &[u8],
    width: u16,
    height: u16,
    sex: Sex,
) -> Result<Vec<u8>, ChipFsError> {
    let block_len = 20 + 12 + jpeg.len();
    let record_len = 14 + block_len;
    let record_len32 = u32::try_from(record_len).map_err(|_| ChipFsError::FaceTooLarge)?;
    let mut r = Vec::with_capacity(record_len);
    r.extend_from_slice(b"FAC\0");
    r.extend_from_slice(b"010\0");
    r.extend_from_slice(&record_len32.to_be_bytes());
    r.extend_from_slice(&1u16.to_be_bytes()); // number of facial images
    // Facial information block.
    r.extend_from_slice(&(record_len32 - 14).to_be_bytes());
    r.extend_from_slice(&0u16.to_be_bytes()); // feature points
    r.push(match sex {
        Sex::Male => 1,
        Sex::Female => 2,
        Sex::Unspecified => 0,
    });
    r.push(0); // eye colour unspecified
    r.push(0); // hair colour unspecified
    r.extend_from_slice(&[0, 0, 0]); // feature mask
    r.extend_from_slice(&[0, 1]); // expression: neutral
    r.extend_from_slice(&[0, 0, 0]); // pose angle yaw/pitch/roll unspecified
    r.extend_from_slice(&[0, 0, 0]); // pose angle uncertainty
    // Image information.
    r.push(1); // face image type: full frontal
    r.push(0); // image data type: JPEG
    r.extend_from_slice(&width.to_be_bytes());
    r.extend_from_slice(&height.to_be_bytes());
    r.push(1); // colour space: 24-bit RGB
    r.push(2); // source type: static photo from a digital still camera
    r.extend_from_slice(&0u16.to_be_bytes()); // device type
    r.extend_from_slice(&0u16.to_be_bytes()); // quality unspecified
    r.extend_from_slice(jpeg);
    Ok(r)
}

/// The chip of one passport: a card-side simulator with the traveler's files, kept as
/// a template from which every `ChipConnect` starts a fresh card session.
#[derive(Clone)]
pub struct ChipFs {
    chip: ChipSim,
}

impl std::fmt::Debug for ChipFs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // No personal data: the chip holds the traveler's MRZ and face.
        write!(f, "ChipFs({:?})", self.chip)
    }
}

impl ChipFs {
    /// Raw content of a file (tests, diagnostics).
    pub fn file(&self, fid: u16) -> Option<&[u8]> {
        self.chip.file(fid)
    }
}

/// Builds the chip of `traveler`'s passport: MRZ from the scenario, face JPEG from
/// [`face::face_jpeg`], SOD signed by the issuing state's [`pki_for`].
pub fn build(traveler: &Traveler) -> Result<ChipFs, ChipFsError> {
    // The chip holds the true MRZ; only the optically read data page may be damaged.
    let lines = mrz::chip_mrz(traveler)?;
    let jpeg = face::face_jpeg(&traveler.id, 0)?;
    let record = facial_record(&jpeg, face::WIDTH, face::HEIGHT, traveler.sex)?;
    let pki = pki_for(traveler.issuing_state())?;
    use crate::scenario::ChipFault;
    use torii_chip_sim::Fault;
    let faults = match traveler.passport.chip_fault {
        None => Vec::new(),
        Some(ChipFault::TamperedDg1) => vec![Fault::TamperedDg(1)],
        Some(ChipFault::TamperedDg2) => vec![Fault::TamperedDg(2)],
        Some(ChipFault::WrongDs) => vec![Fault::WrongDs],
        Some(ChipFault::UnknownCsca) => vec![Fault::UnknownCsca],
        Some(ChipFault::ExpiredDs) => vec![Fault::ExpiredDs],
        Some(ChipFault::MrzMismatch) => vec![Fault::MrzMismatch],
        Some(ChipFault::IssuerMismatch) => vec![Fault::IssuerMismatch],
        Some(ChipFault::Cloned) => vec![Fault::ClonedChip],
    };
    let config = ChipConfig {
        mrz: format!("{}\n{}", lines[0], lines[1]),
        face_record: Some(record),
        faults,
        // Chip Authentication and Active Authentication keys: a clone without them fails.
        dg14: true,
        dg15: true,
        ..ChipConfig::default()
    };
    Ok(ChipFs {
        chip: ChipSim::new(&config, &pki)?,
    })
}

/// The answer to `ChipConnect`: a PC/SC-style ATR built from the chip's ATS historical
/// bytes (`3B 8n 80 01 <historical bytes> TCK`).
pub fn atr() -> Vec<u8> {
    let historical = [
        0x80, 0x31, 0x80, 0x65, 0xB0, 0x85, 0x03, 0x00, 0xEF, 0x12, 0x0F, 0xFF, 0x82, 0x90, 0x00,
    ];
    let mut atr = vec![0x3B, 0x80 | historical.len() as u8, 0x80, 0x01];
    atr.extend_from_slice(&historical);
    let tck = atr[1..].iter().fold(0u8, |acc, b| acc ^ b);
    atr.push(tck);
    atr
}

/// An open contactless session with one chip (its own access-control and SM state).
pub struct ChipSession {
    chip: ChipSim,
}

impl std::fmt::Debug for ChipSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ChipSession({:?})", self.chip)
    }
}

impl ChipSession {
    pub fn new(fs: Arc<ChipFs>) -> Self {
        let mut chip = fs.chip.clone();
        chip.reset();
        Self { chip }
    }

    /// Processes one command APDU and returns the response APDU (data + SW1 SW2).
    /// Never fails: malformed commands get the matching status word.
    pub fn transmit(&mut self, raw: &[u8]) -> Vec<u8> {
        self.chip
            .transmit(raw)
            .unwrap_or_else(|_| SW_WRONG_LENGTH.to_vec())
    }
}

/// Lets the inspection library talk to a session directly (tests, benchmarks).
impl ChipTransport for ChipSession {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, torii_icao::TransportError> {
        Ok(ChipSession::transmit(self, apdu))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Scenario;
    use torii_icao::verdict::{Check, Outcome};

    fn fs(id: &str) -> (Arc<ChipFs>, Traveler) {
        let s = Scenario::default_scenario().unwrap();
        let t = s.traveler(id).unwrap().clone();
        (Arc::new(build(&t).unwrap()), t)
    }

    fn now() -> std::time::SystemTime {
        torii_chip_sim::pki::system_time(2026)
    }

    #[test]
    fn a_full_inspection_is_genuine_with_the_written_trust_store() {
        let dir = tempfile::tempdir().unwrap();
        let written = write_trust_store(dir.path()).unwrap();
        assert!(written.len() >= 2, "{written:?}");
        let trust = torii_icao::TrustStore::from_dir(dir.path()).unwrap();
        for id in ["alice", "bruno"] {
            let (fs, t) = fs(id);
            let lines = mrz::traveler_mrz(&t).unwrap();
            let v = torii_icao::inspect(ChipSession::new(fs), &lines, &trust, now());
            assert!(v.is_genuine(), "{id}: {:?}", v.checks);
            let doc = v.document().unwrap();
            assert_eq!(
                doc.dg1.mrz.concatenated(),
                format!("{}{}", lines[0], lines[1])
            );
            let face = doc.dg2.as_ref().unwrap().faces.first().unwrap();
            assert_eq!(face.data, face::face_jpeg(id, 0).unwrap());
        }
    }

    #[test]
    fn an_unknown_csca_and_a_wrong_mrz_fail() {
        let (fs, t) = fs("alice");
        let lines = mrz::traveler_mrz(&t).unwrap();
        let v = torii_icao::inspect(
            ChipSession::new(fs.clone()),
            &lines,
            &torii_icao::TrustStore::new(),
            now(),
        );
        assert!(!v.is_genuine());
        assert!(matches!(
            v.outcome(Check::CscaChain),
            Some(Outcome::Failed { .. })
        ));
        let (_, bruno) = self::fs("bruno");
        let other = mrz::traveler_mrz(&bruno).unwrap();
        let v = torii_icao::inspect(ChipSession::new(fs), &other, &pki_trust("GBR"), now());
        assert!(matches!(
            v.outcome(Check::ChipAccess),
            Some(Outcome::Failed { .. })
        ));
    }

    fn pki_trust(state: &str) -> torii_icao::TrustStore {
        pki_for(state).unwrap().trust_store()
    }

    #[test]
    fn files_need_access_control() {
        let (fs, _) = fs("alice");
        assert_eq!(fs.file(FID_EF_COM).unwrap()[0], 0x60);
        assert_eq!(fs.file(FID_EF_SOD).unwrap()[0], 0x77);
        let mut chip = ChipSession::new(fs);
        let mut select = vec![0x00, 0xA4, 0x04, 0x0C, 0x07];
        select.extend_from_slice(&EMRTD_AID);
        assert_eq!(chip.transmit(&select), SW_OK);
        assert_eq!(
            chip.transmit(&[0x00, 0xA4, 0x02, 0x0C, 0x02, 0x01, 0x1E]),
            SW_SECURITY_STATUS
        );
        assert_eq!(
            chip.transmit(&[0x00, 0xB0, 0x00, 0x00, 0x04]),
            SW_SECURITY_STATUS
        );
        assert_eq!(chip.transmit(&[0x00, 0xA4]), SW_WRONG_LENGTH);
        let challenge = chip.transmit(&[0x00, 0x84, 0x00, 0x00, 0x08]);
        assert_eq!((challenge.len(), &challenge[8..]), (10, &SW_OK[..]));
    }

    #[test]
    fn the_atr_has_a_valid_checksum() {
        let atr = atr();
        assert_eq!(atr[0], 0x3B);
        assert_eq!(atr[1..].iter().fold(0u8, |a, b| a ^ b), 0);
    }
}
