//! Card-side ePassport chip simulator: a real LDS file system, BAC, secure
//! messaging, READ BINARY limits and fault modes, with a properly signed SOD
//! from the test PKI ([`pki`]). `ChipSim` implements
//! [`torii_icao::ChipTransport`], so the inspection library runs end to end
//! against it in-process.

pub mod pki;
pub mod vpcd;

/// The inspection library this simulator is built on (re-exported so that users of
/// the simulator reach the same types without a second dependency line).
pub use torii_icao;

use p256::ecdsa::SigningKey;
use sha2::{Digest, Sha256};
use signature::Signer;
use std::collections::BTreeMap;
use torii_icao::apdu::{Command, Response};
use torii_icao::auth::{self, ChipAuthInfo, ChipAuthKey};
use torii_icao::bac::{self, BacKeys};
use torii_icao::crypto;
use torii_icao::lds::build;
use torii_icao::pa::HashAlg;
use torii_icao::pace::{self, Cipher, Curve, PaceInfo};
use torii_icao::reader::{AID_EMRTD, TransportError, fid};
use torii_icao::sm::SecureMessaging;

pub use pki::{PkiError, TestPki};

/// Ways the simulated document can be bad or fussy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// A byte of this data group is changed after the SOD was signed.
    TamperedDg(u8),
    /// The SOD is signed with a key other than the embedded DS certificate's.
    WrongDs,
    /// The DS certificate is issued by a CSCA with the same name but another key.
    UnknownCsca,
    /// The DS certificate expired (valid 2010-2015).
    ExpiredDs,
    /// DG1 holds a different MRZ (same access data) than the printed page.
    MrzMismatch,
    /// READ BINARY with Le over 160 is answered 6700.
    ReadLimit160,
    /// SELECT with an Le byte is answered 6700.
    RejectLeOnSelect,
    /// The DS certificate's country differs from DG1's issuing state.
    IssuerMismatch,
    /// No EF.CardAccess and no PACE: BAC only (chips before PACE).
    BacOnly,
    /// PACE only: GET CHALLENGE / EXTERNAL AUTHENTICATE (BAC) are refused (6D00).
    PaceOnly,
    /// A clone: every file (DG14, DG15, SOD) copied from a genuine chip, but the chip
    /// computes CA and AA with its own keys (it cannot extract the genuine ones).
    ClonedChip,
    /// DG14 replaced by one with the clone's own CA key (which the chip does hold);
    /// the SOD is the genuine one: DG14's hash no longer matches.
    SubstitutedDg14,
    /// DG14 carries the chip's own CA key and the SOD has no hash for DG14 at all.
    Dg14NotInSod,
    /// DG15 replaced by one with the clone's own AA key; the SOD is the genuine one.
    SubstitutedDg15,
    /// EF.COM does not list DG14 (the SOD does): an attempt to skip CA.
    Dg14NotInEfCom,
    /// The last byte of EF.SOD (inside the SignerInfo's signature value) is changed
    /// after signing.
    AlteredSodSignature,
    /// The SOD is signed by a DS certificate (same key) with serial
    /// `pki::REVOKED_DS_SERIAL`, which `TestPki::crl` revokes.
    RevokedDs,
}

/// What to put on the chip.
#[derive(Debug, Clone)]
pub struct ChipConfig {
    /// The MRZ as printed (newline separated or concatenated).
    pub mrz: String,
    /// Size of the synthetic JPEG in DG2 (used when `face_record` is `None`).
    pub face_bytes: usize,
    /// A complete ISO/IEC 19794-5 facial record for DG2 (replaces the synthetic JPEG).
    pub face_record: Option<Vec<u8>>,
    /// DG15 with an ECDSA P-256 Active Authentication key (the chip answers INTERNAL
    /// AUTHENTICATE).
    pub dg15: bool,
    /// The DG15 key is RSA 1024 (ISO/IEC 9796-2 signatures) instead of ECDSA P-256.
    pub aa_rsa: bool,
    /// DG14 with an ECDH P-256 Chip Authentication key (and the ActiveAuthenticationInfo
    /// when `dg15` is set).
    pub dg14: bool,
    /// The cipher of the ChipAuthenticationInfo in DG14.
    pub ca_cipher: Cipher,
    /// The named curve of the DG14 Chip Authentication key.
    pub ca_curve: Curve,
    /// The PACE protocol EF.CardAccess offers: ECDH Generic Mapping with this cipher
    /// on these standardized domain parameters.
    pub pace_cipher: Cipher,
    pub pace_curve: Curve,
    /// DG11 (additional personal details) to carry, listed in EF.COM and signed in
    /// the SOD like the other groups.
    pub dg11: Option<torii_icao::lds::Dg11>,
    /// DG12 (additional document details), likewise.
    pub dg12: Option<torii_icao::lds::Dg12>,
    pub faults: Vec<Fault>,
}

/// The ICAO 9303 specimen (Utopia).
pub const SPECIMEN_TD3: &str =
    "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\nL898902C36UTO7408122F1204159ZE184226B<<<<<10";

impl Default for ChipConfig {
    fn default() -> Self {
        ChipConfig {
            mrz: SPECIMEN_TD3.into(),
            face_bytes: 20_000,
            face_record: None,
            dg15: false,
            aa_rsa: false,
            dg14: false,
            ca_cipher: Cipher::Aes128,
            ca_curve: Curve::P256,
            pace_cipher: Cipher::Aes128,
            pace_curve: Curve::P256,
            dg11: None,
            dg12: None,
            faults: Vec::new(),
        }
    }
}

/// The chip's Active Authentication key.
#[derive(Clone)]
enum AaSigner {
    /// ECDSA P-256 (plain r‖s signatures).
    Ecdsa(SigningKey),
    /// RSA with ISO/IEC 9796-2 scheme 1 and SHA-1 (trailer BC), the classic AA.
    Rsa(rsa::RsaPrivateKey),
}

#[derive(Clone)]
enum State {
    Idle,
    Challenged([u8; 8]),
    Pace(pace::card::Step),
    Secure(SecureMessaging),
}

/// The simulated chip. Cloning gives an independent chip with the same files (and
/// the same session state: call [`ChipSim::reset`] for a fresh card session).
#[derive(Clone)]
pub struct ChipSim {
    files: BTreeMap<u16, Vec<u8>>,
    keys: BacKeys,
    /// MRZ information (the PACE password) and the PACEInfo offered, if any.
    mrz_information: String,
    pace: Option<PaceInfo>,
    state: State,
    app_selected: bool,
    selected: Option<u16>,
    faults: Vec<Fault>,
    counter: u64,
    /// The private keys the chip computes CA (scalar) and AA with.
    ca_key: Option<(Cipher, Curve, Vec<u8>)>,
    aa_key: Option<AaSigner>,
    /// CA protocol chosen by MSE:Set AT, waiting for GENERAL AUTHENTICATE.
    ca_selected: Option<Cipher>,
    /// The SM session CA established; it replaces the current one after the answer.
    next_sm: Option<SecureMessaging>,
    /// Command APDUs received.
    pub apdus: usize,
}

impl std::fmt::Debug for ChipSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ChipSim({} files, {} APDUs)",
            self.files.len(),
            self.apdus
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("MRZ: {0}")]
    Mrz(#[from] torii_icao::mrz::MrzError),
    #[error("PKI: {0}")]
    Pki(#[from] PkiError),
    #[error("TLV: {0}")]
    Tlv(#[from] torii_icao::tlv::TlvError),
    #[error("PACE: {0}")]
    Pace(#[from] torii_icao::pace::PaceError),
    #[error("DG14/DG15: {0}")]
    Auth(#[from] torii_icao::auth::AuthError),
}

/// A deterministic P-256 key from a label: the chip's own CA and AA keys.
fn chip_key(label: &str) -> Result<SigningKey, PkiError> {
    SigningKey::from_slice(&Sha256::digest(label.as_bytes()))
        .map_err(|e| PkiError::Key(e.to_string()))
}

/// The chip's Chip Authentication private key on `curve`, from a label (a hash of it,
/// reduced modulo the order by the curve code; on P-256 the same key as before curves
/// were configurable).
fn ca_scalar(curve: Curve, label: &str) -> Vec<u8> {
    if curve.field_len() == 48 {
        sha2::Sha384::digest(label.as_bytes()).to_vec()
    } else {
        Sha256::digest(label.as_bytes()).to_vec()
    }
}

/// A synthetic baseline JPEG-looking image of `n` bytes (SOI, APP0, filler, EOI).
pub fn synthetic_jpeg(n: usize) -> Vec<u8> {
    let mut v = vec![
        0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0,
    ];
    let mut x = 0x1234_5678u32;
    while v.len() + 2 < n.max(13) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        v.push((x & 0xFE) as u8);
    }
    v.extend([0xFF, 0xD9]);
    v
}

impl ChipSim {
    /// Builds the chip's file system and signs its SOD with `pki` (fault modes may
    /// substitute other keys or certificates).
    pub fn new(config: &ChipConfig, pki: &TestPki) -> Result<ChipSim, SimError> {
        let mrz = torii_icao::mrz::parse(&config.mrz)?;
        let has = |f: &Fault| config.faults.contains(f);
        let mut dg1_mrz = mrz.concatenated();
        if has(&Fault::MrzMismatch) {
            // Change the name only: the access key (number, dates) stays valid.
            dg1_mrz = dg1_mrz.replacen("ERIKSSON", "ERIKSSEN", 1);
        }
        let dg1 = build::dg1(&dg1_mrz)?;
        let dg2 = match &config.face_record {
            Some(record) => build::dg2(record)?,
            None => build::dg2(&build::iso19794_5(
                &synthetic_jpeg(config.face_bytes),
                false,
                480,
                640,
            ))?,
        };
        let mut tags = vec![0x61, 0x75];
        let mut dgs = vec![(1u8, dg1), (2u8, dg2)];
        // Files as signed in the SOD, and substitutes the chip carries instead.
        let mut substitutes: Vec<(u8, Vec<u8>)> = Vec::new();
        if let Some(d) = &config.dg11 {
            tags.push(0x6B);
            dgs.push((11, build::dg11(d)?));
        }
        if let Some(d) = &config.dg12 {
            tags.push(0x6C);
            dgs.push((12, build::dg12(d)?));
        }
        let mut unsigned: Vec<u8> = Vec::new();
        let clone_ca = ca_scalar(config.ca_curve, "clone/ca");
        let clone_aa = chip_key("clone/aa")?;
        let genuine_ca = ca_scalar(config.ca_curve, "ca");
        let genuine_aa = chip_key("aa")?;
        let mut ca_key = None;
        let mut aa_key = None;
        if config.dg14 {
            let info = ChipAuthInfo::ecdh(config.ca_cipher, None);
            let dg14_for = |k: &Vec<u8>| -> Result<Vec<u8>, SimError> {
                let point = config.ca_curve.mul(k, None)?;
                let key = ChipAuthKey {
                    key_id: None,
                    curve: config.ca_curve,
                    point,
                };
                Ok(auth::build::dg14(Some((&info, &key)), config.dg15)?)
            };
            dgs.push((14, dg14_for(&genuine_ca)?));
            let own = if has(&Fault::SubstitutedDg14) || has(&Fault::Dg14NotInSod) {
                substitutes.push((14, dg14_for(&clone_ca)?));
                if has(&Fault::Dg14NotInSod) {
                    unsigned.push(14);
                }
                &clone_ca
            } else if has(&Fault::ClonedChip) {
                &clone_ca
            } else {
                &genuine_ca
            };
            ca_key = Some((config.ca_cipher, config.ca_curve, own.clone()));
            if !has(&Fault::Dg14NotInEfCom) {
                tags.push(0x6E);
            }
        }
        if config.dg15 {
            let (genuine_aa, clone_aa) = if config.aa_rsa {
                (
                    AaSigner::Rsa(pki::rsa_test_key("aa")?),
                    AaSigner::Rsa(pki::rsa_test_key("clone/aa")?),
                )
            } else {
                (AaSigner::Ecdsa(genuine_aa), AaSigner::Ecdsa(clone_aa))
            };
            let dg15_for = |k: &AaSigner| -> Result<Vec<u8>, SimError> {
                let spki = match k {
                    AaSigner::Ecdsa(k) => {
                        spki::SubjectPublicKeyInfoOwned::from_key(k.verifying_key())
                    }
                    AaSigner::Rsa(k) => {
                        spki::SubjectPublicKeyInfoOwned::from_key(&k.to_public_key())
                    }
                }
                .map_err(|e| PkiError::Key(e.to_string()))?;
                Ok(auth::build::dg15(&spki)?)
            };
            dgs.push((15, dg15_for(&genuine_aa)?));
            let own = if has(&Fault::SubstitutedDg15) {
                substitutes.push((15, dg15_for(&clone_aa)?));
                &clone_aa
            } else if has(&Fault::ClonedChip) {
                &clone_aa
            } else {
                &genuine_aa
            };
            aa_key = Some(own.clone());
            tags.push(0x6F);
        }
        let country = if has(&Fault::IssuerMismatch) {
            "JP"
        } else {
            "UT"
        };
        let (mut csca_cert, mut csca_key) = (pki.csca_cert.clone(), pki.csca_key.clone());
        if has(&Fault::UnknownCsca) {
            csca_key = pki::TestKey::from_label(csca_key.kind(), "rogue/csca")?;
            csca_cert = pki::csca_certificate(&csca_key, "UT", 2020, 2040)?;
        }
        let (from, to) = if has(&Fault::ExpiredDs) {
            (2010, 2015)
        } else {
            (2024, 2036)
        };
        let ds_cert =
            if has(&Fault::UnknownCsca) || has(&Fault::ExpiredDs) || has(&Fault::IssuerMismatch) {
                pki::ds_certificate(&pki.ds_key, &csca_cert, &csca_key, country, from, to)?
            } else if has(&Fault::RevokedDs) {
                pki.revoked_ds_certificate(country)?
            } else {
                pki.ds_cert.clone()
            };
        let signer = if has(&Fault::WrongDs) {
            pki::TestKey::from_label(pki.ds_key.kind(), "rogue/ds")?
        } else {
            pki.ds_key.clone()
        };
        let signed: Vec<(u8, Vec<u8>)> = dgs
            .iter()
            .filter(|(n, _)| !unsigned.contains(n))
            .cloned()
            .collect();
        let mut sod = pki::sign_sod(&signed, &ds_cert, &signer)?;
        if has(&Fault::AlteredSodSignature)
            && let Some(last) = sod.last_mut()
        {
            *last ^= 0x01;
        }
        for (n, b) in substitutes {
            if let Some((_, file)) = dgs.iter_mut().find(|(m, _)| *m == n) {
                *file = b;
            }
        }
        for f in &config.faults {
            if let Fault::TamperedDg(n) = f
                && let Some((_, b)) = dgs.iter_mut().find(|(m, _)| m == n)
                && let Some(last) = b.len().checked_sub(3)
                && let Some(x) = b.get_mut(last)
            {
                *x ^= 0x01;
            }
        }
        let mut files = BTreeMap::new();
        files.insert(fid::EF_COM, build::ef_com(&tags)?);
        for (n, b) in dgs {
            files.insert(fid::dg(n), b);
        }
        files.insert(fid::EF_SOD, sod);
        let pace = (!has(&Fault::BacOnly))
            .then(|| PaceInfo::ecdh_gm(config.pace_cipher, config.pace_curve));
        if let Some(info) = &pace {
            files.insert(
                fid::EF_CARD_ACCESS,
                PaceInfo::to_card_access(std::slice::from_ref(info))?,
            );
        }
        Ok(ChipSim {
            files,
            keys: BacKeys::from_mrz_information(&mrz.access_key_info()),
            mrz_information: mrz.access_key_info(),
            pace,
            state: State::Idle,
            app_selected: false,
            selected: None,
            faults: config.faults.clone(),
            counter: 0,
            ca_key,
            aa_key,
            ca_selected: None,
            next_sm: None,
            apdus: 0,
        })
    }

    /// Raw file content (tests).
    pub fn file(&self, fid: u16) -> Option<&[u8]> {
        self.files.get(&fid).map(Vec::as_slice)
    }

    /// Card reset: drops the session and selection.
    pub fn reset(&mut self) {
        self.state = State::Idle;
        self.app_selected = false;
        self.selected = None;
        self.ca_selected = None;
        self.next_sm = None;
    }

    fn random<const N: usize>(&mut self) -> [u8; N] {
        self.counter += 1;
        let d = Sha256::digest(self.counter.to_be_bytes());
        let mut out = [0u8; N];
        for (o, v) in out.iter_mut().zip(d.iter().cycle()) {
            *o = *v;
        }
        out
    }

    fn random_vec(&mut self, n: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(n + 32);
        while out.len() < n {
            out.extend(self.random::<32>());
        }
        out.truncate(n);
        out
    }

    fn data(data: Vec<u8>) -> Response {
        Response { data, sw: 0x9000 }
    }

    /// MSE:Set AT and the GENERAL AUTHENTICATE steps of PACE-GM (card side).
    fn pace(&mut self, c: &Command) -> Response {
        let Some(info) = self.pace.clone() else {
            return Self::sw(0x6D00);
        };
        if c.ins == 0x22 {
            return match pace::card::parse_set_at(&c.data) {
                Ok((oid, 1)) if oid == info.oid => {
                    self.state = State::Pace(pace::card::Step::Start { info });
                    Self::sw(0x9000)
                }
                Ok(_) => Self::sw(0x6A80),
                Err(_) => Self::sw(0x6A80),
            };
        }
        let step = match std::mem::replace(&mut self.state, State::Idle) {
            State::Pace(step) => step,
            _ => return Self::sw(0x6985),
        };
        let Ok(curve) = info.supported_curve() else {
            return Self::sw(0x6A80);
        };
        use pace::card::Step;
        let result = match step {
            Step::Start { info } => {
                let s = self.random_vec(info.cipher.block());
                pace::card::nonce(info, &self.mrz_information, s).map(|(st, out)| (Some(st), out))
            }
            Step::Nonce { info, s } => {
                let sk = self.random_vec(curve.field_len());
                pace::card::map(info, &s, &c.data, &sk).map(|(st, out)| (Some(st), out))
            }
            Step::Mapped { info, g_hat } => {
                let sk = self.random_vec(curve.field_len());
                pace::card::agree(info, &g_hat, &c.data, &sk).map(|(st, out)| (Some(st), out))
            }
            Step::Agreed {
                info,
                shared,
                pk_pcd,
                pk_ic,
            } => match pace::card::authenticate(&info, &shared, &pk_pcd, &pk_ic, &c.data) {
                Ok((sm, out)) => {
                    self.state = State::Secure(sm);
                    return Self::data(out);
                }
                Err(_) => return Self::sw(0x6300),
            },
        };
        match result {
            Ok((Some(st), out)) => {
                self.state = State::Pace(st);
                Self::data(out)
            }
            Ok((None, out)) => Self::data(out),
            Err(_) => Self::sw(0x6A80),
        }
    }

    fn sw(sw: u16) -> Response {
        Response {
            data: Vec::new(),
            sw,
        }
    }

    fn external_authenticate(&mut self, rnd_ic: [u8; 8], data: &[u8]) -> Response {
        if data.len() != 40 {
            return Self::sw(0x6700);
        }
        let (e, m) = data.split_at(32);
        let ok = bac::cryptogram_mac(&self.keys.k_mac, e).is_ok_and(|want| crypto::ct_eq(&want, m));
        let s = crypto::tdes_cbc_decrypt(&self.keys.k_enc, &[0; 8], e).unwrap_or_default();
        if !ok || s.get(8..16) != Some(&rnd_ic[..]) {
            return Self::sw(0x6300);
        }
        let mut rnd_ifd = [0u8; 8];
        let mut k_ifd = [0u8; 16];
        rnd_ifd.copy_from_slice(s.get(..8).unwrap_or(&[0; 8]));
        k_ifd.copy_from_slice(s.get(16..32).unwrap_or(&[0; 16]));
        let k_ic: [u8; 16] = self.random();
        let r = [&rnd_ic[..], &rnd_ifd, &k_ic].concat();
        let Ok(e_ic) = crypto::tdes_cbc_encrypt(&self.keys.k_enc, &[0; 8], &r) else {
            return Self::sw(0x6F00);
        };
        let Ok(m_ic) = bac::cryptogram_mac(&self.keys.k_mac, &e_ic) else {
            return Self::sw(0x6F00);
        };
        let ks = bac::session_keys(&k_ifd, &k_ic);
        self.state = State::Secure(SecureMessaging::tdes(
            ks.k_enc,
            ks.k_mac,
            bac::initial_ssc(&rnd_ic, &rnd_ifd),
        ));
        Response {
            data: [e_ic, m_ic.to_vec()].concat(),
            sw: 0x9000,
        }
    }

    /// Chip Authentication (MSE:Set AT + GENERAL AUTHENTICATE, or MSE:Set KAT) and
    /// Active Authentication (INTERNAL AUTHENTICATE), under secure messaging.
    fn authenticate(&mut self, c: &Command) -> Response {
        match (c.ins, c.p2) {
            (0x88, _) => {
                let Some(key) = &self.aa_key else {
                    return Self::sw(0x6D00);
                };
                if c.data.len() != 8 {
                    return Self::sw(0x6700);
                }
                match key {
                    AaSigner::Ecdsa(key) => {
                        let sig: p256::ecdsa::Signature = key.sign(&c.data);
                        Self::data(sig.to_bytes().to_vec())
                    }
                    AaSigner::Rsa(key) => {
                        let key = key.clone();
                        let mut nonce = |b: &mut [u8]| {
                            let r = self.random_vec(b.len());
                            b.copy_from_slice(&r);
                        };
                        match auth::iso9796_2::sign(&key, HashAlg::Sha1, &c.data, &mut nonce) {
                            Ok(sig) => Self::data(sig),
                            Err(_) => Self::sw(0x6F00),
                        }
                    }
                }
            }
            (0x22, 0xA4) => {
                let Some((cipher, _, _)) = &self.ca_key else {
                    return Self::sw(0x6A80);
                };
                let want = ChipAuthInfo::ecdh(*cipher, None).oid;
                let oid = torii_icao::tlv::parse_one(&c.data)
                    .ok()
                    .filter(|(t, _)| torii_icao::tlv::tag_of(t) == 0x80)
                    .and_then(|(t, _)| torii_icao::tlv::primitive(&t).map(<[u8]>::to_vec));
                if oid.as_deref() != Some(want.as_bytes()) {
                    return Self::sw(0x6A80);
                }
                self.ca_selected = Some(*cipher);
                Self::sw(0x9000)
            }
            (0x86, _) | (0x22, 0xA6) => {
                let Some((cipher, curve, sk)) = self.ca_key.clone() else {
                    return Self::sw(0x6A80);
                };
                let pk = if c.ins == 0x86 {
                    if self.ca_selected.take() != Some(cipher) {
                        return Self::sw(0x6985);
                    }
                    auth::card::ga_public_key(&c.data)
                } else {
                    auth::card::kat_public_key(&c.data)
                };
                let Ok(pk) = pk else {
                    return Self::sw(0x6A80);
                };
                match auth::card::key_agreement(cipher, curve, &sk, &pk) {
                    Ok(sm) => {
                        self.next_sm = Some(sm);
                        if c.ins == 0x86 {
                            Self::data(vec![0x7C, 0x00])
                        } else {
                            Self::sw(0x9000)
                        }
                    }
                    Err(_) => Self::sw(0x6A80),
                }
            }
            _ => Self::sw(0x6D00),
        }
    }

    /// Executes a plain (already unwrapped) command.
    fn execute(&mut self, c: &Command, secure: bool) -> Response {
        match (c.ins, c.p1, c.p2) {
            (0xA4, _, _) if c.le.is_some() && self.faults.contains(&Fault::RejectLeOnSelect) => {
                Self::sw(0x6700)
            }
            (0xA4, 0x04, _) => {
                if c.data == AID_EMRTD {
                    self.app_selected = true;
                    self.selected = None;
                    Self::sw(0x9000)
                } else {
                    Self::sw(0x6A82)
                }
            }
            (0xA4, 0x02 | 0x00, _) => {
                let Ok(f) = <[u8; 2]>::try_from(c.data.as_slice()).map(u16::from_be_bytes) else {
                    return Self::sw(0x6700);
                };
                // EF.CardAccess lives in the master file: readable without access control.
                if f == fid::EF_CARD_ACCESS && self.files.contains_key(&f) {
                    self.selected = Some(f);
                    return Self::sw(0x9000);
                }
                if !self.app_selected || !self.files.contains_key(&f) {
                    return Self::sw(0x6A82);
                }
                if !secure {
                    return Self::sw(0x6982);
                }
                self.selected = Some(f);
                Self::sw(0x9000)
            }
            (0xB0, p1, p2) => {
                if !secure && self.selected != Some(fid::EF_CARD_ACCESS) {
                    return Self::sw(0x6982);
                }
                let Some(file) = self.selected.and_then(|f| self.files.get(&f)) else {
                    return Self::sw(0x6986);
                };
                if p1 & 0x80 != 0 {
                    return Self::sw(0x6B00);
                }
                let le = c.le.unwrap_or(256);
                if le > 160 && self.faults.contains(&Fault::ReadLimit160) {
                    return Self::sw(0x6700);
                }
                let off = usize::from(u16::from_be_bytes([p1, p2]));
                if off >= file.len() {
                    return Self::sw(0x6B00);
                }
                let end = (off + le).min(file.len());
                let data = file.get(off..end).unwrap_or_default().to_vec();
                let sw = if end - off < le { 0x6282 } else { 0x9000 };
                Response { data, sw }
            }
            (0x84 | 0x82, 0, 0) if self.faults.contains(&Fault::PaceOnly) => Self::sw(0x6D00),
            (0x22, 0xC1, 0xA4) | (0x86, 0, 0) if !secure => self.pace(c),
            (0x22, 0x41, 0xA4 | 0xA6) | (0x86, 0, 0) | (0x88, 0, 0) => self.authenticate(c),
            (0x84, 0, 0) if !secure => {
                let rnd: [u8; 8] = self.random();
                self.state = State::Challenged(rnd);
                Response {
                    data: rnd.to_vec(),
                    sw: 0x9000,
                }
            }
            (0x82, 0, 0) if !secure => match self.state {
                State::Challenged(rnd_ic) => self.external_authenticate(rnd_ic, &c.data),
                _ => Self::sw(0x6985),
            },
            _ => Self::sw(0x6D00),
        }
    }

    fn process(&mut self, apdu: &[u8]) -> Vec<u8> {
        if let State::Secure(sm) = &mut self.state {
            // Any SM error ends the session and is answered unprotected (ISO 7816-4).
            let cmd = match sm.unprotect_command(apdu) {
                Ok(c) => c,
                Err(_) => {
                    self.state = State::Idle;
                    return vec![0x69, 0x88];
                }
            };
            let r = self.execute(&cmd, true);
            let out = match &mut self.state {
                State::Secure(sm) => sm
                    .protect_response(&r.data, r.sw)
                    .unwrap_or_else(|_| vec![0x6F, 0x00]),
                _ => r.to_bytes(),
            };
            // Chip Authentication: the answer goes under the old keys, then the new apply.
            if let Some(next) = self.next_sm.take() {
                self.state = State::Secure(next);
            }
            return out;
        }
        match Command::parse(apdu) {
            Ok(c) => self.execute(&c, false).to_bytes(),
            Err(_) => vec![0x67, 0x00],
        }
    }
}

impl torii_icao::ChipTransport for ChipSim {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        self.apdus += 1;
        Ok(self.process(apdu))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use torii_icao::ChipTransport;

    fn sim(faults: Vec<Fault>) -> ChipSim {
        let pki = TestPki::generate("unit", "UT").unwrap();
        ChipSim::new(
            &ChipConfig {
                faults,
                face_bytes: 500,
                ..ChipConfig::default()
            },
            &pki,
        )
        .unwrap()
    }

    #[test]
    fn files_exist_and_are_well_formed() {
        let s = sim(vec![]);
        let com = torii_icao::lds::parse_ef_com(s.file(fid::EF_COM).unwrap()).unwrap();
        assert_eq!(com.data_groups(), vec![1, 2]);
        assert!(torii_icao::pa::Sod::parse(s.file(fid::EF_SOD).unwrap()).is_ok());
    }

    #[test]
    fn access_control_before_bac() {
        let mut s = sim(vec![]);
        assert_eq!(
            s.transmit(&[0, 0xA4, 4, 0x0C, 7, 0xA0, 0, 0, 2, 0x47, 0x10, 1])
                .unwrap(),
            vec![0x90, 0]
        );
        assert_eq!(
            s.transmit(&[0, 0xA4, 2, 0x0C, 2, 1, 0x1E]).unwrap(),
            vec![0x69, 0x82]
        );
        assert_eq!(s.transmit(&[0, 0xB0, 0, 0, 4]).unwrap(), vec![0x69, 0x82]);
        assert_eq!(
            s.transmit(&[0, 0x82, 0, 0, 1, 0]).unwrap(),
            vec![0x69, 0x85]
        );
        assert_eq!(s.transmit(&[0, 0xA4]).unwrap(), vec![0x67, 0x00]);
    }

    #[test]
    fn rejects_le_on_select_when_asked() {
        let mut s = sim(vec![Fault::RejectLeOnSelect]);
        assert_eq!(
            s.transmit(&[0, 0xA4, 4, 0x0C, 7, 0xA0, 0, 0, 2, 0x47, 0x10, 1, 0])
                .unwrap(),
            vec![0x67, 0]
        );
        assert_eq!(
            s.transmit(&[0, 0xA4, 4, 0x0C, 7, 0xA0, 0, 0, 2, 0x47, 0x10, 1])
                .unwrap(),
            vec![0x90, 0]
        );
    }

    #[test]
    fn synthetic_jpeg_has_markers() {
        let j = synthetic_jpeg(1000);
        assert_eq!(j.len(), 1000);
        assert_eq!(&j[..3], &[0xFF, 0xD8, 0xFF]);
        assert_eq!(&j[998..], &[0xFF, 0xD9]);
    }
}
