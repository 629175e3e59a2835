//! The document verdict and the inspection sequence (Part 11, App. J.1 order):
//! chip access (PACE, else BAC) → read EF.COM, DG1, DG2, DG11/DG12 (when EF.COM
//! lists them), EF.SOD, DG14/DG15 (when
//! EF.COM or the SOD lists them) → Passive Authentication → Chip Authentication
//! (DG14) and Active Authentication (DG15), each only with a PA-verified key. Data
//! groups are handed out only inside a verdict whose checks all passed.

use crate::auth;
use crate::bac::{self, BacKeys};
use crate::lds::{self, Dg1, Dg2, Dg11, Dg12, EfCom, RawDataGroup};
use crate::mrz::{self, Mrz};
use crate::pa::{self, PaError, Sod, TrustStore};
use crate::pace::{self, PaceOptions};
use crate::reader::{ChipTransport, Reader, ReaderConfig, fid};
use std::fmt;
use std::time::SystemTime;

/// Every check the inspection performs, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    OpticalMrz,
    ChipAccess,
    ReadFiles,
    LdsStructure,
    SodStructure,
    SodSignature,
    CscaChain,
    /// The DS certificate is not listed by a current CRL of its CSCA.
    DsRevocation,
    DsValidity,
    CscaValidity,
    DataGroupHashes,
    MrzMatch,
    IssuerMatch,
    ChipAuthentication,
    ActiveAuthentication,
}

/// Short, stable reason codes for the gate and the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReasonCode {
    MrzInvalid,
    ChipAccessFailed,
    ChipReadFailed,
    LdsInvalid,
    SodInvalid,
    SodSignatureInvalid,
    CscaUnknown,
    /// A current CRL signed by the issuing CSCA lists the DS certificate's serial.
    DsRevoked,
    DsExpired,
    CscaExpired,
    DgHashMismatch,
    MrzMismatch,
    IssuerMismatch,
    /// Chip Authentication could not be completed (refused, malformed answer).
    ChipAuthFailed,
    /// Active Authentication could not be completed (refused, malformed answer).
    ActiveAuthFailed,
    /// The chip does not hold the private key of its PA-verified DG14/DG15 key: a copy
    /// of a genuine chip's files on another chip.
    Cloned,
    /// DG14/DG15 (the CA/AA key) was not verified by Passive Authentication, so the
    /// protocol was not run: a proof with an unverified key proves nothing.
    AuthKeyUnverified,
}

impl ReasonCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ReasonCode::MrzInvalid => "DOC_MRZ_INVALID",
            ReasonCode::ChipAccessFailed => "DOC_CHIP_ACCESS_FAILED",
            ReasonCode::ChipReadFailed => "DOC_CHIP_READ_FAILED",
            ReasonCode::LdsInvalid => "DOC_LDS_INVALID",
            ReasonCode::SodInvalid => "DOC_SOD_INVALID",
            ReasonCode::SodSignatureInvalid => "DOC_SOD_SIGNATURE_INVALID",
            ReasonCode::CscaUnknown => "DOC_CSCA_UNKNOWN",
            ReasonCode::DsRevoked => "DOC_DS_REVOKED",
            ReasonCode::DsExpired => "DOC_DS_EXPIRED",
            ReasonCode::CscaExpired => "DOC_CSCA_EXPIRED",
            ReasonCode::DgHashMismatch => "DOC_DG_HASH_MISMATCH",
            ReasonCode::MrzMismatch => "DOC_MRZ_MISMATCH",
            ReasonCode::IssuerMismatch => "DOC_ISSUER_MISMATCH",
            ReasonCode::ChipAuthFailed => "DOC_CHIP_AUTH_FAILED",
            ReasonCode::ActiveAuthFailed => "DOC_ACTIVE_AUTH_FAILED",
            ReasonCode::Cloned => "DOC_CLONED",
            ReasonCode::AuthKeyUnverified => "DOC_AUTH_KEY_UNVERIFIED",
        }
    }
}

impl fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One check's outcome. Reasons name files, fields and statuses, never personal data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    Failed { reason: ReasonCode, detail: String },
    NotPerformed { why: String },
}

/// The access control protocol that opened the chip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessProtocol {
    /// PACE, Generic Mapping (ECDH).
    Pace,
    /// Basic Access Control.
    Bac,
}

/// Data that passed Passive Authentication. `Debug` prints no personal data.
#[derive(Debug, Clone)]
pub struct VerifiedDocument {
    pub ef_com: EfCom,
    pub dg1: Dg1,
    pub dg2: Option<Dg2>,
    /// DG11 (additional personal details), when EF.COM lists it.
    pub dg11: Option<Dg11>,
    /// DG12 (additional document details), when EF.COM lists it.
    pub dg12: Option<Dg12>,
    /// Other data groups read and hash-verified (DG14, DG15), raw.
    pub others: Vec<RawDataGroup>,
}

#[derive(Debug, Clone)]
pub struct DocumentVerdict {
    pub checks: Vec<(Check, Outcome)>,
    /// How the chip was opened, when it was.
    pub access: Option<AccessProtocol>,
    /// Command APDUs exchanged with the chip.
    pub apdus: usize,
    verified: Option<VerifiedDocument>,
}

impl DocumentVerdict {
    /// Genuine: nothing failed and PA's checks all passed.
    pub fn is_genuine(&self) -> bool {
        self.verified.is_some()
    }

    /// Reason codes of the failed checks, in check order.
    pub fn reasons(&self) -> Vec<ReasonCode> {
        self.checks
            .iter()
            .filter_map(|(_, o)| match o {
                Outcome::Failed { reason, .. } => Some(*reason),
                _ => None,
            })
            .collect()
    }

    pub fn outcome(&self, check: Check) -> Option<&Outcome> {
        self.checks
            .iter()
            .find(|(c, _)| *c == check)
            .map(|(_, o)| o)
    }

    /// The chip's data, only when the document is genuine.
    pub fn document(&self) -> Option<&VerifiedDocument> {
        self.verified.as_ref()
    }
}

/// Knobs for [`inspect_with`].
#[derive(Debug, Clone)]
pub struct InspectOptions {
    pub reader: ReaderConfig,
    pub read_dg2: bool,
    /// Try PACE first when EF.CardAccess offers it (Part 11, App. J.1).
    pub pace: bool,
    pub pace_options: PaceOptions,
}

impl Default for InspectOptions {
    fn default() -> Self {
        InspectOptions {
            reader: ReaderConfig::default(),
            read_dg2: true,
            pace: true,
            pace_options: PaceOptions::default(),
        }
    }
}

/// Checks required for genuineness. Chip and Active Authentication must not have
/// failed either: they are `NotPerformed` when the chip has no DG14/DG15 (or uses a
/// variant not implemented here), which does not make a document not genuine.
const PA_CHECKS: [Check; 13] = [
    Check::OpticalMrz,
    Check::ChipAccess,
    Check::ReadFiles,
    Check::LdsStructure,
    Check::SodStructure,
    Check::SodSignature,
    Check::CscaChain,
    Check::DsRevocation,
    Check::DsValidity,
    Check::CscaValidity,
    Check::DataGroupHashes,
    Check::MrzMatch,
    Check::IssuerMatch,
];

struct Builder {
    checks: Vec<(Check, Outcome)>,
    access: Option<AccessProtocol>,
}

impl Builder {
    fn pass(&mut self, c: Check) {
        self.checks.push((c, Outcome::Passed));
    }
    fn fail(&mut self, c: Check, reason: ReasonCode, detail: impl fmt::Display) {
        self.checks.push((
            c,
            Outcome::Failed {
                reason,
                detail: detail.to_string(),
            },
        ));
    }
    fn not_performed(&mut self, c: Check, why: &str) {
        self.checks.push((
            c,
            Outcome::NotPerformed {
                why: why.to_string(),
            },
        ));
    }
    fn skip_rest(&mut self, why: &str) {
        for c in PA_CHECKS
            .iter()
            .chain(&[Check::ChipAuthentication, Check::ActiveAuthentication])
        {
            if !self.checks.iter().any(|(d, _)| d == c) {
                self.checks.push((
                    *c,
                    Outcome::NotPerformed {
                        why: why.to_string(),
                    },
                ));
            }
        }
    }
    fn finish(mut self, apdus: usize, data: Option<VerifiedDocument>) -> DocumentVerdict {
        self.skip_rest("not reached");
        let all_passed = PA_CHECKS.iter().all(|c| {
            self.checks
                .iter()
                .any(|(d, o)| d == c && *o == Outcome::Passed)
        }) && !self.checks.iter().any(|(c, o)| {
            matches!(c, Check::ChipAuthentication | Check::ActiveAuthentication)
                && matches!(o, Outcome::Failed { .. })
        });
        DocumentVerdict {
            checks: self.checks,
            access: self.access,
            apdus,
            verified: if all_passed { data } else { None },
        }
    }
}

/// What [`inspect`] accepts as the optically read MRZ: a parsed [`Mrz`], the text
/// (lines separated by newlines, or concatenated), or the lines as a document reader
/// returns them (`Vec<String>`, `[String; 2]`, `&[&str]`...).
pub trait OpticalMrz {
    fn to_mrz(&self) -> Result<Mrz, mrz::MrzError>;
}

impl OpticalMrz for Mrz {
    fn to_mrz(&self) -> Result<Mrz, mrz::MrzError> {
        Ok(self.clone())
    }
}

impl OpticalMrz for str {
    fn to_mrz(&self) -> Result<Mrz, mrz::MrzError> {
        mrz::parse(self)
    }
}

impl OpticalMrz for String {
    fn to_mrz(&self) -> Result<Mrz, mrz::MrzError> {
        mrz::parse(self)
    }
}

impl<S: AsRef<str>> OpticalMrz for [S] {
    fn to_mrz(&self) -> Result<Mrz, mrz::MrzError> {
        let lines: Vec<&str> = self.iter().map(|l| l.as_ref().trim()).collect();
        mrz::parse(&lines.join("\n"))
    }
}

impl<S: AsRef<str>, const N: usize> OpticalMrz for [S; N] {
    fn to_mrz(&self) -> Result<Mrz, mrz::MrzError> {
        self.as_slice().to_mrz()
    }
}

impl<S: AsRef<str>> OpticalMrz for Vec<S> {
    fn to_mrz(&self) -> Result<Mrz, mrz::MrzError> {
        self.as_slice().to_mrz()
    }
}

impl<M: OpticalMrz + ?Sized> OpticalMrz for &M {
    fn to_mrz(&self) -> Result<Mrz, mrz::MrzError> {
        (**self).to_mrz()
    }
}

/// Parses the optically read MRZ text and inspects; an invalid MRZ is a verdict, not an error.
pub fn inspect_mrz_text<T: ChipTransport>(
    transport: T,
    mrz_text: &str,
    trust: &TrustStore,
    now: SystemTime,
) -> DocumentVerdict {
    inspect(transport, mrz_text, trust, now)
}

/// System randomness for the terminal's nonces and ephemeral keys.
pub fn os_random(b: &mut [u8]) {
    // The OS RNG only fails without any entropy source; a zero nonce then
    // merely weakens freshness, it cannot make a bad chip pass.
    let _ = getrandom::fill(b);
}

/// Full inspection with system randomness: chip access (PACE when EF.CardAccess
/// offers it, else BAC), reading, Passive Authentication. Blocking: call it from a
/// blocking thread (`tokio::task::spawn_blocking`) with a [`ChipTransport`] whose
/// `transmit` sends one APDU to the reader and waits for the answer.
///
/// `optical_mrz` is anything [`OpticalMrz`]: the lines from the document reader, the
/// text, or a parsed [`Mrz`]. An invalid MRZ is a verdict (`DOC_MRZ_INVALID`), not an error.
pub fn inspect<T: ChipTransport, M: OpticalMrz + ?Sized>(
    transport: T,
    optical_mrz: &M,
    trust: &TrustStore,
    now: SystemTime,
) -> DocumentVerdict {
    let optical = match optical_mrz.to_mrz() {
        Ok(m) => m,
        Err(e) => {
            let mut b = Builder {
                checks: Vec::new(),
                access: None,
            };
            b.fail(Check::OpticalMrz, ReasonCode::MrzInvalid, e);
            b.skip_rest("optical MRZ invalid");
            return b.finish(0, None);
        }
    };
    inspect_with(
        transport,
        &optical,
        trust,
        now,
        &InspectOptions::default(),
        &mut os_random,
    )
}

/// Full inspection with explicit options and randomness (tests, benchmarks).
pub fn inspect_with<T: ChipTransport>(
    transport: T,
    optical_mrz: &Mrz,
    trust: &TrustStore,
    now: SystemTime,
    options: &InspectOptions,
    random: &mut dyn FnMut(&mut [u8]),
) -> DocumentVerdict {
    let mut b = Builder {
        checks: Vec::new(),
        access: None,
    };
    b.pass(Check::OpticalMrz);
    let mut r = Reader::new(transport, options.reader.clone());

    // Chip access (Part 11, App. J.1): PACE when EF.CardAccess offers a protocol we
    // support, else (or when PACE fails) BAC after SELECT of the application.
    let mrz_information = optical_mrz.access_key_info();
    let mut pace_failure = None;
    let pace_info = if options.pace {
        r.read_file(fid::EF_CARD_ACCESS)
            .ok()
            .and_then(|b| pace::parse_card_access(&b).ok())
            .and_then(|infos| pace::choose(&infos).cloned())
    } else {
        None
    };
    let mut access = None;
    if let Some(info) = pace_info {
        let sm = {
            let mut ex = |c: &crate::apdu::Command| {
                r.transmit_plain(c)
                    .map_err(|e| pace::PaceError::Transport(e.to_string()))
            };
            pace::perform(
                &info,
                &mrz_information,
                options.pace_options,
                &mut ex,
                random,
            )
        };
        match sm {
            Ok(sm) => {
                r.set_secure_messaging(sm);
                match r.select_application() {
                    Ok(()) => access = Some(AccessProtocol::Pace),
                    Err(e) => {
                        b.fail(Check::ChipAccess, ReasonCode::ChipAccessFailed, e);
                        b.skip_rest("no chip access");
                        return b.finish(r.apdus, None);
                    }
                }
            }
            Err(e) => pace_failure = Some(e),
        }
    }
    if access.is_none() {
        if let Err(e) = r.select_application() {
            b.fail(Check::ChipAccess, ReasonCode::ChipAccessFailed, e);
            b.skip_rest("no chip access");
            return b.finish(r.apdus, None);
        }
        let keys = BacKeys::from_mrz_information(&mrz_information);
        let sm = {
            let mut ex = |c: &crate::apdu::Command| {
                r.transmit_plain(c)
                    .map_err(|e| bac::BacError::Transport(e.to_string()))
            };
            bac::perform(&keys, &mut ex, random)
        };
        match sm {
            Ok(sm) => {
                r.set_secure_messaging(sm);
                access = Some(AccessProtocol::Bac);
            }
            Err(e) => {
                let detail = match &pace_failure {
                    Some(p) => format!("PACE: {p}; BAC: {e}"),
                    None => format!("BAC: {e}"),
                };
                b.fail(Check::ChipAccess, ReasonCode::ChipAccessFailed, detail);
                b.skip_rest("no chip access");
                return b.finish(r.apdus, None);
            }
        }
    }
    b.access = access;
    b.pass(Check::ChipAccess);

    // Read files.
    let read = (|| {
        let com = r.read_file(fid::EF_COM)?;
        let dg1 = r.read_file(fid::dg(1))?;
        Ok::<_, crate::reader::ReaderError>((com, dg1))
    })();
    let (com_bytes, dg1_bytes) = match read {
        Ok(v) => v,
        Err(e) => {
            b.fail(Check::ReadFiles, ReasonCode::ChipReadFailed, e);
            b.skip_rest("files not read");
            return b.finish(r.apdus, None);
        }
    };
    let ef_com = match lds::parse_ef_com(&com_bytes) {
        Ok(c) => c,
        Err(e) => {
            b.fail(Check::ReadFiles, ReasonCode::LdsInvalid, e);
            b.skip_rest("EF.COM invalid");
            return b.finish(r.apdus, None);
        }
    };
    let listed = ef_com.data_groups();
    let mut dgs: Vec<(u8, Vec<u8>)> = vec![(1, dg1_bytes)];
    let mut wanted: Vec<u8> = if options.read_dg2 { vec![2] } else { vec![] };
    // DG11/DG12 are optional extras: read only when EF.COM lists them.
    wanted.extend([11, 12]);
    for n in wanted.into_iter().filter(|n| listed.contains(n)) {
        match r.read_file(fid::dg(n)) {
            Ok(bytes) => dgs.push((n, bytes)),
            Err(e) => {
                b.fail(Check::ReadFiles, ReasonCode::ChipReadFailed, e);
                b.skip_rest("files not read");
                return b.finish(r.apdus, None);
            }
        }
    }
    let sod_bytes = match r.read_file(fid::EF_SOD) {
        Ok(s) => s,
        Err(e) => {
            b.fail(Check::ReadFiles, ReasonCode::ChipReadFailed, e);
            b.skip_rest("files not read");
            return b.finish(r.apdus, None);
        }
    };
    // DG14/DG15 hold the CA/AA keys: read them when EF.COM *or* the (signed) SOD lists
    // them, so that a chip cannot skip CA/AA by leaving them out of EF.COM.
    let in_sod = Sod::parse(&sod_bytes)
        .map(|s| s.data_groups())
        .unwrap_or_default();
    for n in [14u8, 15] {
        if !(listed.contains(&n) || in_sod.contains(&n)) {
            continue;
        }
        match r.read_file(fid::dg(n)) {
            Ok(bytes) => dgs.push((n, bytes)),
            Err(e) => {
                b.fail(Check::ReadFiles, ReasonCode::ChipReadFailed, e);
                b.skip_rest("files not read");
                return b.finish(r.apdus, None);
            }
        }
    }
    b.pass(Check::ReadFiles);

    // LDS structure (parsed, not yet trusted).
    let mut dg1 = None;
    let mut dg2 = None;
    let mut dg11 = None;
    let mut dg12 = None;
    let mut others = Vec::new();
    let mut lds_err = None;
    for (n, bytes) in &dgs {
        let res = match n {
            1 => lds::parse_dg1(bytes).map(|d| dg1 = Some(d)),
            2 => lds::parse_dg2(bytes).map(|d| dg2 = Some(d)),
            // Same rule as every other group read: malformed means the LDS check fails.
            11 => lds::parse_dg11(bytes).map(|d| dg11 = Some(d)),
            12 => lds::parse_dg12(bytes).map(|d| dg12 = Some(d)),
            n => lds::parse_raw(*n, bytes).map(|d| others.push(d)),
        };
        if let Err(e) = res {
            lds_err.get_or_insert(e);
        }
    }
    match (&lds_err, &dg1) {
        (None, Some(_)) => b.pass(Check::LdsStructure),
        (Some(e), _) => b.fail(Check::LdsStructure, ReasonCode::LdsInvalid, e),
        (None, None) => b.fail(Check::LdsStructure, ReasonCode::LdsInvalid, "DG1 missing"),
    }

    // Passive Authentication.
    let sod = match Sod::parse(&sod_bytes) {
        Ok(s) => {
            b.pass(Check::SodStructure);
            s
        }
        Err(e) => {
            b.fail(Check::SodStructure, ReasonCode::SodInvalid, e);
            b.skip_rest("EF.SOD invalid");
            return b.finish(r.apdus, None);
        }
    };
    let ds = sod.ds_certificate();
    match ds
        .as_ref()
        .map_err(Clone::clone)
        .and_then(|ds| sod.verify_signature(ds))
    {
        Ok(()) => b.pass(Check::SodSignature),
        Err(e) => b.fail(Check::SodSignature, ReasonCode::SodSignatureInvalid, e),
    }
    match &ds {
        Ok(ds) => {
            match trust.find_issuer(ds) {
                Ok(csca) => {
                    b.pass(Check::CscaChain);
                    match trust.check_revocation(ds, csca, now) {
                        Ok(()) => b.pass(Check::DsRevocation),
                        Err(e) => b.fail(Check::DsRevocation, ReasonCode::DsRevoked, e),
                    }
                    match pa::check_validity(csca, now, "CSCA") {
                        Ok(()) => b.pass(Check::CscaValidity),
                        Err(e) => b.fail(Check::CscaValidity, ReasonCode::CscaExpired, e),
                    }
                }
                Err(e) => {
                    b.fail(Check::CscaChain, ReasonCode::CscaUnknown, e);
                    b.not_performed(Check::DsRevocation, "no trusted CSCA issued the DS");
                }
            }
            match pa::check_validity(ds, now, "DS") {
                Ok(()) => b.pass(Check::DsValidity),
                Err(e) => b.fail(Check::DsValidity, ReasonCode::DsExpired, e),
            }
        }
        Err(e) => b.fail(Check::CscaChain, ReasonCode::CscaUnknown, e),
    }
    let hash_errors: Vec<PaError> = dgs
        .iter()
        .filter_map(|(n, bytes)| sod.check_dg(*n, bytes).err())
        .collect();
    match hash_errors.first() {
        None => b.pass(Check::DataGroupHashes),
        Some(_) => b.fail(
            Check::DataGroupHashes,
            ReasonCode::DgHashMismatch,
            hash_errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        ),
    }
    match &dg1 {
        Some(d) if d.mrz.concatenated() == optical_mrz.concatenated() => b.pass(Check::MrzMatch),
        Some(_) => b.fail(
            Check::MrzMatch,
            ReasonCode::MrzMismatch,
            "DG1 MRZ differs from the optically read MRZ",
        ),
        None => b.checks.push((
            Check::MrzMatch,
            Outcome::NotPerformed {
                why: "DG1 not parsed".into(),
            },
        )),
    }
    match (&dg1, &ds) {
        (Some(d), Ok(ds)) => {
            let want = pa::alpha3_to_alpha2(d.mrz.issuing_state());
            let got = pa::subject_country(ds);
            match (want, got) {
                (Some(w), Some(g)) if w == g => b.pass(Check::IssuerMatch),
                (None, _) => b.fail(
                    Check::IssuerMatch,
                    ReasonCode::IssuerMismatch,
                    "DG1 issuing state is not a known country code",
                ),
                (_, None) => b.fail(
                    Check::IssuerMatch,
                    ReasonCode::IssuerMismatch,
                    "DS certificate has no country",
                ),
                (Some(_), Some(_)) => b.fail(
                    Check::IssuerMatch,
                    ReasonCode::IssuerMismatch,
                    "DG1 issuing state differs from the DS certificate's country",
                ),
            }
        }
        _ => b.checks.push((
            Check::IssuerMatch,
            Outcome::NotPerformed {
                why: "DG1 or DS certificate missing".into(),
            },
        )),
    }

    // Chip and Active Authentication, only with keys from data groups that Passive
    // Authentication verified (signature, chain, validity and the group's own hash).
    let pa_trusted = [
        Check::SodStructure,
        Check::SodSignature,
        Check::CscaChain,
        Check::DsRevocation,
        Check::DsValidity,
        Check::CscaValidity,
    ]
    .iter()
    .all(|c| {
        b.checks
            .iter()
            .any(|(d, o)| d == c && *o == Outcome::Passed)
    });
    let group = |n: u8| dgs.iter().find(|(m, _)| *m == n).map(|(_, b)| b.as_slice());
    let verified = |n: u8, bytes: &[u8]| pa_trusted && sod.check_dg(n, bytes).is_ok();
    let dg14 = group(14);
    let parsed14 = dg14.map(auth::parse_dg14);
    let mut session_lost = false;
    match (dg14, &parsed14) {
        (None, _) | (_, None) => b.not_performed(Check::ChipAuthentication, "the chip has no DG14"),
        (Some(bytes), _) if !verified(14, bytes) => b.fail(
            Check::ChipAuthentication,
            ReasonCode::AuthKeyUnverified,
            "DG14 is not verified by passive authentication: its key proves nothing",
        ),
        (_, Some(Err(e))) => b.fail(Check::ChipAuthentication, ReasonCode::ChipAuthFailed, e),
        (_, Some(Ok(d))) if d.ca_keys.is_empty() && d.unsupported.is_empty() => b.not_performed(
            Check::ChipAuthentication,
            "DG14 offers no chip authentication",
        ),
        (_, Some(Ok(d))) => {
            let d = auth::Verified::after_passive_authentication(d.clone());
            match auth::chip_authenticate(&mut r, &d, random) {
                Ok(()) => b.pass(Check::ChipAuthentication),
                Err(auth::AuthError::Unsupported(w)) => {
                    b.not_performed(Check::ChipAuthentication, &format!("not supported: {w}"))
                }
                Err(e @ auth::AuthError::KeyMismatch(_)) => {
                    session_lost = true;
                    b.fail(Check::ChipAuthentication, ReasonCode::Cloned, e)
                }
                Err(e) => {
                    session_lost = true;
                    b.fail(Check::ChipAuthentication, ReasonCode::ChipAuthFailed, e)
                }
            }
        }
    }
    match group(15) {
        None => b.not_performed(Check::ActiveAuthentication, "the chip has no DG15"),
        Some(bytes) if !verified(15, bytes) => b.fail(
            Check::ActiveAuthentication,
            ReasonCode::AuthKeyUnverified,
            "DG15 is not verified by passive authentication: its key proves nothing",
        ),
        Some(_) if session_lost => b.not_performed(
            Check::ActiveAuthentication,
            "the secure messaging session ended with the failed chip authentication",
        ),
        Some(bytes) => match auth::parse_dg15(bytes) {
            Err(e) => b.fail(Check::ActiveAuthentication, ReasonCode::ActiveAuthFailed, e),
            Ok(spki) => {
                // The AA hash comes from DG14 only if PA verified DG14 too.
                let hash = match (dg14, &parsed14) {
                    (Some(d), Some(Ok(p))) if verified(14, d) => p.aa_hash,
                    _ => None,
                };
                let key = auth::Verified::after_passive_authentication(auth::AaKey {
                    spki,
                    hash: hash.unwrap_or(pa::HashAlg::Sha256),
                });
                match auth::active_authenticate(&mut r, &key, random) {
                    Ok(()) => b.pass(Check::ActiveAuthentication),
                    Err(auth::AuthError::Unsupported(w)) => {
                        b.not_performed(Check::ActiveAuthentication, &format!("not supported: {w}"))
                    }
                    Err(e @ auth::AuthError::KeyMismatch(_)) => {
                        b.fail(Check::ActiveAuthentication, ReasonCode::Cloned, e)
                    }
                    Err(e) => b.fail(Check::ActiveAuthentication, ReasonCode::ActiveAuthFailed, e),
                }
            }
        },
    }

    let data = dg1.map(|dg1| VerifiedDocument {
        ef_com,
        dg1,
        dg2,
        dg11,
        dg12,
        others,
    });
    b.finish(r.apdus, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_codes_are_stable_strings() {
        assert_eq!(
            ReasonCode::DgHashMismatch.to_string(),
            "DOC_DG_HASH_MISMATCH"
        );
        assert_eq!(ReasonCode::CscaUnknown.as_str(), "DOC_CSCA_UNKNOWN");
        assert_eq!(ReasonCode::DsRevoked.as_str(), "DOC_DS_REVOKED");
    }

    struct Dead;
    impl ChipTransport for Dead {
        fn transmit(&mut self, _: &[u8]) -> Result<Vec<u8>, crate::reader::TransportError> {
            Err(crate::reader::TransportError::NoCard)
        }
    }

    #[test]
    fn invalid_optical_mrz_and_dead_chip_are_verdicts() {
        let v = inspect_mrz_text(Dead, "garbage", &TrustStore::new(), SystemTime::now());
        assert_eq!(v.reasons(), vec![ReasonCode::MrzInvalid]);
        assert!(!v.is_genuine() && v.document().is_none());
        let m = mrz::parse("P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\nL898902C36UTO7408122F1204159ZE184226B<<<<<10").unwrap();
        let v = inspect(Dead, &m, &TrustStore::new(), SystemTime::now());
        assert_eq!(v.reasons(), vec![ReasonCode::ChipAccessFailed]);
        assert!(matches!(
            v.outcome(Check::SodSignature),
            Some(Outcome::NotPerformed { .. })
        ));
        assert_eq!(v.checks.len(), 15);
    }
}
