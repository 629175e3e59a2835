//! Passive Authentication (ICAO 9303 Part 11 section 5.1, Part 12).
//!
//! EF.SOD is a CMS SignedData over an LDSSecurityObject holding one hash per
//! data group. We verify: the signer's signature (RSA PKCS#1 v1.5, RSA-PSS,
//! ECDSA P-256/P-384), the DS certificate against a CSCA from the trust store,
//! validity periods, and every data group hash. ASN.1 is decoded with `der`,
//! `cms` and `x509-cert`; the primitives are RustCrypto.

use crate::tlv;
use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerIdentifier, SignerInfo};
use const_oid::ObjectIdentifier;
use der::asn1::{OctetString, PrintableString};
use der::{Decode, Encode, Sequence};
use sha2::Digest;
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use std::path::Path;
use std::time::SystemTime;
use thiserror::Error;
use x509_cert::Certificate;
use x509_cert::crl::CertificateList;

/// id-icao-mrtd-security-ldsSecurityObject.
pub const OID_LDS_SECURITY_OBJECT: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("2.23.136.1.1.1");
const OID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
const OID_CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
const OID_MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
const OID_COUNTRY: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.6");
const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_RSA_PSS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10");
const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum PaError {
    #[error("EF.SOD: {0}")]
    SodStructure(String),
    #[error("EF.SOD holds no DS certificate matching the signer")]
    NoDsCertificate,
    #[error("unsupported algorithm {0}")]
    Unsupported(String),
    #[error("SOD signature does not verify")]
    SodSignature,
    #[error("signed attributes: {0}")]
    SignedAttributes(&'static str),
    #[error("no trusted CSCA issued the DS certificate")]
    CscaUnknown,
    #[error("{which} certificate is not valid at the inspection time ({when})")]
    Validity {
        which: &'static str,
        when: &'static str,
    },
    #[error("DG{0} hash does not match the SOD")]
    DgHashMismatch(u8),
    #[error("DG{0} has no hash in the SOD")]
    DgHashMissing(u8),
    #[error("certificate: {0}")]
    Certificate(String),
    #[error("the DS certificate (serial {0}) is revoked by its CSCA's CRL")]
    DsRevoked(String),
    #[error("CRL: {0}")]
    Crl(String),
    #[error("master list: {0}")]
    MasterList(String),
}

fn sod_err(e: impl std::fmt::Display) -> PaError {
    PaError::SodStructure(e.to_string())
}

/// DataGroupHash ::= SEQUENCE { dataGroupNumber INTEGER, dataGroupHashValue OCTET STRING }
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct DataGroupHash {
    pub data_group_number: u8,
    pub data_group_hash_value: OctetString,
}

/// LDSVersionInfo ::= SEQUENCE { ldsVersion PrintableString, unicodeVersion PrintableString }
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct LdsVersionInfo {
    pub lds_version: PrintableString,
    pub unicode_version: PrintableString,
}

/// LDSSecurityObject (Part 10, 4.6.2.2).
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct LdsSecurityObject {
    pub version: u8,
    pub hash_algorithm: AlgorithmIdentifierOwned,
    pub data_group_hash_values: Vec<DataGroupHash>,
    #[asn1(optional = "true")]
    pub lds_version_info: Option<LdsVersionInfo>,
}

/// Hash functions that may appear in a SOD.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlg {
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl HashAlg {
    pub fn from_oid(oid: &ObjectIdentifier) -> Result<Self, PaError> {
        Ok(match oid.to_string().as_str() {
            "1.3.14.3.2.26" | "1.2.840.113549.1.1.5" | "1.2.840.10045.4.1" => HashAlg::Sha1,
            "2.16.840.1.101.3.4.2.4" | "1.2.840.113549.1.1.14" | "1.2.840.10045.4.3.1" => {
                HashAlg::Sha224
            }
            "2.16.840.1.101.3.4.2.1" | "1.2.840.113549.1.1.11" | "1.2.840.10045.4.3.2" => {
                HashAlg::Sha256
            }
            "2.16.840.1.101.3.4.2.2" | "1.2.840.113549.1.1.12" | "1.2.840.10045.4.3.3" => {
                HashAlg::Sha384
            }
            "2.16.840.1.101.3.4.2.3" | "1.2.840.113549.1.1.13" | "1.2.840.10045.4.3.4" => {
                HashAlg::Sha512
            }
            other => return Err(PaError::Unsupported(format!("hash {other}"))),
        })
    }

    /// The hash function's OID (NIST / OIW arcs).
    pub fn oid(self) -> ObjectIdentifier {
        ObjectIdentifier::new_unwrap(match self {
            HashAlg::Sha1 => "1.3.14.3.2.26",
            HashAlg::Sha224 => "2.16.840.1.101.3.4.2.4",
            HashAlg::Sha256 => "2.16.840.1.101.3.4.2.1",
            HashAlg::Sha384 => "2.16.840.1.101.3.4.2.2",
            HashAlg::Sha512 => "2.16.840.1.101.3.4.2.3",
        })
    }

    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            HashAlg::Sha1 => sha1::Sha1::digest(data).to_vec(),
            HashAlg::Sha224 => sha2::Sha224::digest(data).to_vec(),
            HashAlg::Sha256 => sha2::Sha256::digest(data).to_vec(),
            HashAlg::Sha384 => sha2::Sha384::digest(data).to_vec(),
            HashAlg::Sha512 => sha2::Sha512::digest(data).to_vec(),
        }
    }
}

/// Whether the signature algorithm OID names only the key type, so the hash
/// comes from the digest algorithm (seen in real SODs).
fn is_bare_key_oid(oid: &ObjectIdentifier) -> bool {
    *oid == OID_RSA || *oid == OID_EC_PUBLIC_KEY
}

/// id-mgf1 (RFC 8017): the mask generation function of RSASSA-PSS.
const OID_MGF1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.8");

/// Verifies `signature` over `message` with `spki`, for the given signature algorithm.
/// `digest_alg` is used when the signature algorithm does not name a hash.
pub fn verify_signature(
    spki: &SubjectPublicKeyInfoOwned,
    sig_alg: &AlgorithmIdentifierOwned,
    digest_alg: Option<&AlgorithmIdentifierOwned>,
    message: &[u8],
    signature: &[u8],
) -> Result<(), PaError> {
    fn bad<E>(_: E) -> PaError {
        PaError::SodSignature
    }
    let key_bytes = spki.subject_public_key.raw_bytes();
    if sig_alg.oid == OID_RSA_PSS {
        use rsa::pkcs1::{DecodeRsaPublicKey, RsaPssParams};
        let params_der = sig_alg
            .parameters
            .as_ref()
            .ok_or(PaError::Unsupported("PSS without parameters".into()))?
            .to_der()
            .map_err(sod_err)?;
        let p = RsaPssParams::<der::Any>::from_der(&params_der).map_err(sod_err)?;
        let h = HashAlg::from_oid(&p.hash.oid)?;
        // `rsa::pss` uses one hash for the message and MGF1: another MGF, or MGF1 with
        // another hash, cannot be verified here and is refused as unsupported rather
        // than reported as a bad signature.
        let mgf1_hash = p
            .mask_gen
            .parameters
            .as_ref()
            .map(|a| HashAlg::from_oid(&a.oid))
            .transpose()?;
        if p.mask_gen.oid != OID_MGF1 || mgf1_hash != Some(h) {
            return Err(PaError::Unsupported(format!(
                "RSA-PSS with mask generation {} ({:?}) and hash {h:?}",
                p.mask_gen.oid, mgf1_hash
            )));
        }
        let key = rsa::RsaPublicKey::from_pkcs1_der(key_bytes)
            .map_err(|e| PaError::Certificate(e.to_string()))?;
        let hashed = h.digest(message);
        let salt = usize::from(p.salt_len);
        let res = match h {
            HashAlg::Sha1 => key.verify(
                rsa::pss::Pss::<sha1::Sha1>::new_with_salt(salt),
                &hashed,
                signature,
            ),
            HashAlg::Sha224 => key.verify(
                rsa::pss::Pss::<sha2::Sha224>::new_with_salt(salt),
                &hashed,
                signature,
            ),
            HashAlg::Sha256 => key.verify(
                rsa::pss::Pss::<sha2::Sha256>::new_with_salt(salt),
                &hashed,
                signature,
            ),
            HashAlg::Sha384 => key.verify(
                rsa::pss::Pss::<sha2::Sha384>::new_with_salt(salt),
                &hashed,
                signature,
            ),
            HashAlg::Sha512 => key.verify(
                rsa::pss::Pss::<sha2::Sha512>::new_with_salt(salt),
                &hashed,
                signature,
            ),
        };
        return res.map_err(bad);
    }
    let h = if is_bare_key_oid(&sig_alg.oid) {
        HashAlg::from_oid(
            &digest_alg
                .ok_or(PaError::Unsupported("no digest algorithm".into()))?
                .oid,
        )?
    } else {
        HashAlg::from_oid(&sig_alg.oid)?
    };
    let hashed = h.digest(message);
    if spki.algorithm.oid == OID_RSA {
        use rsa::Pkcs1v15Sign;
        use rsa::pkcs1::DecodeRsaPublicKey;
        let key = rsa::RsaPublicKey::from_pkcs1_der(key_bytes)
            .map_err(|e| PaError::Certificate(e.to_string()))?;
        let scheme = match h {
            HashAlg::Sha1 => Pkcs1v15Sign::new::<sha1::Sha1>(),
            HashAlg::Sha224 => Pkcs1v15Sign::new::<sha2::Sha224>(),
            HashAlg::Sha256 => Pkcs1v15Sign::new::<sha2::Sha256>(),
            HashAlg::Sha384 => Pkcs1v15Sign::new::<sha2::Sha384>(),
            HashAlg::Sha512 => Pkcs1v15Sign::new::<sha2::Sha512>(),
        };
        return key.verify(scheme, &hashed, signature).map_err(bad);
    }
    if spki.algorithm.oid == OID_EC_PUBLIC_KEY {
        use signature::hazmat::PrehashVerifier;
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.decode_as::<ObjectIdentifier>().ok())
            .ok_or(PaError::Unsupported(
                "EC key without a named curve (explicit parameters)".into(),
            ))?;
        // DER (X9.62) signatures are the norm; plain r||s (BSI TR-03111) also occurs.
        macro_rules! verify_on {
            ($c:ty) => {{
                let vk = ecdsa::VerifyingKey::<$c>::from_sec1_bytes(key_bytes)
                    .map_err(|e| PaError::Certificate(e.to_string()))?;
                let sig = ecdsa::Signature::<$c>::from_der(signature)
                    .or_else(|_| ecdsa::Signature::<$c>::from_slice(signature))
                    .map_err(bad)?;
                vk.verify_prehash(&hashed, &sig).map_err(bad)
            }};
        }
        return match crate::pace::Curve::from_oid(&curve) {
            Some(crate::pace::Curve::P256) => verify_on!(p256::NistP256),
            Some(crate::pace::Curve::P384) => verify_on!(p384::NistP384),
            Some(crate::pace::Curve::BrainpoolP256r1) => verify_on!(bp256::BrainpoolP256r1),
            Some(crate::pace::Curve::BrainpoolP384r1) => verify_on!(bp384::BrainpoolP384r1),
            None => Err(PaError::Unsupported(format!("curve {curve}"))),
        };
    }
    Err(PaError::Unsupported(format!(
        "key type {}",
        spki.algorithm.oid
    )))
}

/// A parsed EF.SOD. `Debug` shows the DG numbers only.
#[derive(Clone)]
pub struct Sod {
    pub lso: LdsSecurityObject,
    signed_data: SignedData,
    econtent: Vec<u8>,
}

impl std::fmt::Debug for Sod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let dgs: Vec<u8> = self
            .lso
            .data_group_hash_values
            .iter()
            .map(|d| d.data_group_number)
            .collect();
        write!(f, "Sod(DGs {dgs:?})")
    }
}

impl Sod {
    /// Parses EF.SOD (tag 77 around a DER ContentInfo).
    pub fn parse(ef_sod: &[u8]) -> Result<Sod, PaError> {
        let h = tlv::header(ef_sod).map_err(sod_err)?;
        if h.tag != 0x77 {
            return Err(PaError::SodStructure(format!(
                "expected tag 77, found {:X}",
                h.tag
            )));
        }
        let body = ef_sod
            .get(h.header_len..h.total_len())
            .ok_or(PaError::SodStructure("truncated".into()))?;
        let ci = ContentInfo::from_der(body).map_err(sod_err)?;
        if ci.content_type != OID_SIGNED_DATA {
            return Err(PaError::SodStructure("content is not SignedData".into()));
        }
        let sd: SignedData = ci.content.decode_as().map_err(sod_err)?;
        if sd.encap_content_info.econtent_type != OID_LDS_SECURITY_OBJECT {
            return Err(PaError::SodStructure(
                "encapsulated content is not an LDSSecurityObject".into(),
            ));
        }
        let econtent = sd
            .encap_content_info
            .econtent
            .as_ref()
            .ok_or(PaError::SodStructure("no encapsulated content".into()))?
            .decode_as::<OctetString>()
            .map_err(sod_err)?
            .into_bytes();
        let lso = LdsSecurityObject::from_der(&econtent).map_err(sod_err)?;
        if sd.signer_infos.0.len() != 1 {
            return Err(PaError::SodStructure(format!(
                "{} signer infos, expected 1",
                sd.signer_infos.0.len()
            )));
        }
        Ok(Sod {
            lso,
            signed_data: sd,
            econtent: econtent.into_vec(),
        })
    }

    fn signer(&self) -> Result<&SignerInfo, PaError> {
        self.signed_data
            .signer_infos
            .0
            .iter()
            .next()
            .ok_or(PaError::SodStructure("no signer info".into()))
    }

    /// The DS certificate embedded in the SOD that matches the signer identifier.
    pub fn ds_certificate(&self) -> Result<Certificate, PaError> {
        use cms::cert::CertificateChoices;
        let si = self.signer()?;
        let certs = self
            .signed_data
            .certificates
            .as_ref()
            .ok_or(PaError::NoDsCertificate)?;
        for c in certs.0.iter() {
            let CertificateChoices::Certificate(c) = c else {
                continue;
            };
            let tbs = &c.tbs_certificate();
            let matches = match &si.sid {
                SignerIdentifier::IssuerAndSerialNumber(ias) => {
                    ias.issuer == *tbs.issuer() && ias.serial_number == *tbs.serial_number()
                }
                SignerIdentifier::SubjectKeyIdentifier(ski) => {
                    use x509_cert::ext::pkix::SubjectKeyIdentifier;
                    tbs.get_extension::<SubjectKeyIdentifier>()
                        .ok()
                        .flatten()
                        .is_some_and(|(_, k)| k == *ski)
                }
            };
            if matches {
                return Ok(c.clone());
            }
        }
        Err(PaError::NoDsCertificate)
    }

    /// Verifies the signer's signature with the DS certificate's key, including
    /// the signed attributes' content type and message digest.
    pub fn verify_signature(&self, ds: &Certificate) -> Result<(), PaError> {
        verify_signer_info(
            self.signer()?,
            &self.econtent,
            (
                OID_LDS_SECURITY_OBJECT,
                "content type is not the LDS security object",
            ),
            ds.tbs_certificate().subject_public_key_info(),
        )
    }

    pub fn hash_algorithm(&self) -> Result<HashAlg, PaError> {
        HashAlg::from_oid(&self.lso.hash_algorithm.oid)
    }

    /// Data group numbers the SOD holds a hash for (signed: a chip cannot hide DG14
    /// or DG15 from the inspection system by leaving them out of EF.COM).
    pub fn data_groups(&self) -> Vec<u8> {
        self.lso
            .data_group_hash_values
            .iter()
            .map(|d| d.data_group_number)
            .collect()
    }

    /// Checks one data group's bytes (the whole file) against its hash in the SOD.
    pub fn check_dg(&self, number: u8, bytes: &[u8]) -> Result<(), PaError> {
        let h = self.hash_algorithm()?;
        let entry = self
            .lso
            .data_group_hash_values
            .iter()
            .find(|d| d.data_group_number == number)
            .ok_or(PaError::DgHashMissing(number))?;
        if crate::crypto::ct_eq(entry.data_group_hash_value.as_bytes(), &h.digest(bytes)) {
            Ok(())
        } else {
            Err(PaError::DgHashMismatch(number))
        }
    }
}

/// Verifies one CMS `SignerInfo` over `econtent` with `spki`: signed attributes
/// (content type `content_type`, message digest) when present, then the signature.
fn verify_signer_info(
    si: &SignerInfo,
    econtent: &[u8],
    (content_type, wrong_type): (ObjectIdentifier, &'static str),
    spki: &SubjectPublicKeyInfoOwned,
) -> Result<(), PaError> {
    let message = match &si.signed_attrs {
        None => econtent.to_vec(),
        Some(attrs) => {
            let h = HashAlg::from_oid(&si.digest_alg.oid)?;
            let mut ct_ok = false;
            let mut md_ok = false;
            for a in attrs.iter() {
                let first = a.values.iter().next();
                if a.oid == OID_CONTENT_TYPE {
                    ct_ok = first.and_then(|v| v.decode_as::<ObjectIdentifier>().ok())
                        == Some(content_type);
                } else if a.oid == OID_MESSAGE_DIGEST {
                    let want = h.digest(econtent);
                    md_ok = first
                        .and_then(|v| v.decode_as::<OctetString>().ok())
                        .is_some_and(|d| d.as_bytes() == want.as_slice());
                }
            }
            if !ct_ok {
                return Err(PaError::SignedAttributes(wrong_type));
            }
            if !md_ok {
                return Err(PaError::SignedAttributes(
                    "message digest does not match the content",
                ));
            }
            // The signature covers the DER SET OF, not the [0] IMPLICIT wrapper.
            attrs.to_der().map_err(sod_err)?
        }
    };
    verify_signature(
        spki,
        &si.signature_algorithm,
        Some(&si.digest_alg),
        &message,
        si.signature.as_bytes(),
    )
}

/// Checks that `cert` is valid at `now`.
pub fn check_validity(
    cert: &Certificate,
    now: SystemTime,
    which: &'static str,
) -> Result<(), PaError> {
    let v = &cert.tbs_certificate().validity();
    if now < v.not_before.to_system_time() {
        return Err(PaError::Validity {
            which,
            when: "not yet valid",
        });
    }
    if now > v.not_after.to_system_time() {
        return Err(PaError::Validity {
            which,
            when: "expired",
        });
    }
    Ok(())
}

/// The country (C=) of a certificate's subject, upper-cased.
pub fn subject_country(cert: &Certificate) -> Option<String> {
    for atv in cert.tbs_certificate().subject().iter() {
        if atv.oid == OID_COUNTRY {
            let s = atv
                .value
                .decode_as::<der::asn1::PrintableStringRef<'_>>()
                .map(|s| s.as_str().to_string())
                .or_else(|_| {
                    atv.value
                        .decode_as::<der::asn1::Utf8StringRef<'_>>()
                        .map(|s| s.as_str().to_string())
                })
                .ok()?;
            return Some(s.to_ascii_uppercase());
        }
    }
    None
}

/// ICAO three-letter codes (ISO 3166-1 alpha-3 plus Doc 9303 Part 3 deviations)
/// → ISO 3166-1 alpha-2, as used in certificate C= attributes.
pub fn alpha3_to_alpha2(code: &str) -> Option<&'static str> {
    let code = code.trim_end_matches('<');
    // ICAO codes that are not ISO alpha-3 (Part 3, section 5).
    let special: &[(&str, &str)] = &[
        ("D", "DE"),
        ("GBD", "GB"),
        ("GBN", "GB"),
        ("GBO", "GB"),
        ("GBP", "GB"),
        ("GBS", "GB"),
        ("RKS", "XK"),
        ("EUE", "EU"),
        ("UTO", "UT"),
    ];
    if let Some((_, a2)) = special.iter().find(|(a3, _)| *a3 == code) {
        return Some(a2);
    }
    ISO3166
        .split(' ')
        .find(|e| e.get(..3) == Some(code) && e.len() == 5)
        .and_then(|e| e.get(3..))
}

/// ISO 3166-1 alpha-3 followed by alpha-2, from Debian's iso-codes data.
const ISO3166: &str = include_str!("iso3166.txt");

/// Why a trust store directory could not be loaded.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum TrustStoreError {
    #[error("trust store directory {dir:?}: {error}")]
    Directory {
        dir: std::path::PathBuf,
        error: String,
    },
    #[error("trust store file {file:?}: {error}")]
    File {
        file: std::path::PathBuf,
        error: String,
    },
}

/// id-icao-cscaMasterList (ICAO 9303 Part 12, 9).
pub const OID_CSCA_MASTER_LIST: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.23.136.1.1.2");

/// CscaMasterList ::= SEQUENCE { version CscaMasterListVersion (v0), certList SET OF Certificate }
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct CscaMasterList {
    pub version: u8,
    pub cert_list: der::asn1::SetOfVec<Certificate>,
}

/// A CRL whose signature was verified with a trusted CSCA's key when it was added.
#[derive(Clone)]
struct TrustedCrl {
    crl: CertificateList,
    /// The key of the CSCA that signed it (a CRL counts only for DS certificates
    /// issued by this very key, not by another CSCA with the same name).
    signer: SubjectPublicKeyInfoOwned,
}

/// Trusted CSCA certificates and the CRLs their CSCAs signed.
#[derive(Clone, Default)]
pub struct TrustStore {
    cscas: Vec<Certificate>,
    crls: Vec<TrustedCrl>,
}

impl std::fmt::Debug for TrustStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "TrustStore({} CSCA certificates, {} CRLs)",
            self.cscas.len(),
            self.crls.len()
        )
    }
}

fn crl_err(e: impl std::fmt::Display) -> PaError {
    PaError::Crl(e.to_string())
}

fn ml_err(e: impl std::fmt::Display) -> PaError {
    PaError::MasterList(e.to_string())
}

/// The extension of a trust store file, lower-cased.
fn extension(p: &Path) -> Option<String> {
    p.extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
}

impl TrustStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of CSCA certificates.
    pub fn len(&self) -> usize {
        self.cscas.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cscas.is_empty()
    }

    /// Number of CRLs accepted (signature verified by a trusted CSCA).
    pub fn crl_count(&self) -> usize {
        self.crls.len()
    }

    pub fn add(&mut self, cert: Certificate) {
        if !self.cscas.contains(&cert) {
            self.cscas.push(cert);
        }
    }

    /// Adds one DER certificate or every certificate of a PEM file.
    pub fn add_bytes(&mut self, bytes: &[u8]) -> Result<usize, PaError> {
        if bytes.starts_with(b"-----BEGIN") {
            let certs = Certificate::load_pem_chain(bytes)
                .map_err(|e| PaError::Certificate(e.to_string()))?;
            let n = certs.len();
            for c in certs {
                self.add(c);
            }
            Ok(n)
        } else {
            self.add(
                Certificate::from_der(bytes).map_err(|e| PaError::Certificate(e.to_string()))?,
            );
            Ok(1)
        }
    }

    /// Adds a CRL, DER or PEM (`X509 CRL`). Refused unless a trusted CSCA's key
    /// verifies its signature: a CRL nobody can vouch for is an operator error,
    /// reported at load time rather than silently ignored. Whether it is current
    /// is decided at each inspection (`now`).
    pub fn add_crl(&mut self, bytes: &[u8]) -> Result<(), PaError> {
        let crl = if bytes.starts_with(b"-----BEGIN") {
            let (label, der) = der::pem::decode_vec(bytes).map_err(crl_err)?;
            if label != "X509 CRL" {
                return Err(PaError::Crl(format!(
                    "PEM label is {label:?}, expected \"X509 CRL\""
                )));
            }
            CertificateList::from_der(&der).map_err(crl_err)?
        } else {
            CertificateList::from_der(bytes).map_err(crl_err)?
        };
        if crl.signature_algorithm != crl.tbs_cert_list.signature {
            return Err(PaError::Crl(
                "signature algorithm differs from the one in the signed part".into(),
            ));
        }
        let tbs = crl.tbs_cert_list.to_der().map_err(crl_err)?;
        let sig = crl.signature.as_bytes().ok_or(PaError::Crl(
            "signature is not a whole number of bytes".into(),
        ))?;
        let signer = self
            .cscas
            .iter()
            .filter(|c| *c.tbs_certificate().subject() == crl.tbs_cert_list.issuer)
            .find(|c| {
                verify_signature(
                    c.tbs_certificate().subject_public_key_info(),
                    &crl.signature_algorithm,
                    None,
                    &tbs,
                    sig,
                )
                .is_ok()
            })
            .ok_or(PaError::Crl(
                "signature does not verify with any trusted CSCA of the issuer's name".into(),
            ))?
            .tbs_certificate()
            .subject_public_key_info()
            .clone();
        self.crls.push(TrustedCrl { crl, signer });
        Ok(())
    }

    /// Adds the CSCAs of an ICAO CSCA master list (CMS SignedData, eContentType
    /// id-icao-cscaMasterList). The master list signer's certificate must be in the
    /// SignedData, verify the signature (and the signed attributes), and be issued
    /// by a CSCA already trusted. Returns the number of CSCA certificates listed.
    pub fn add_master_list(&mut self, bytes: &[u8]) -> Result<usize, PaError> {
        let ci = ContentInfo::from_der(bytes).map_err(ml_err)?;
        if ci.content_type != OID_SIGNED_DATA {
            return Err(PaError::MasterList("content is not SignedData".into()));
        }
        let sd: SignedData = ci.content.decode_as().map_err(ml_err)?;
        if sd.encap_content_info.econtent_type != OID_CSCA_MASTER_LIST {
            return Err(PaError::MasterList(format!(
                "encapsulated content type is {}, not id-icao-cscaMasterList",
                sd.encap_content_info.econtent_type
            )));
        }
        let econtent = sd
            .encap_content_info
            .econtent
            .as_ref()
            .ok_or(PaError::MasterList("no encapsulated content".into()))?
            .decode_as::<OctetString>()
            .map_err(ml_err)?
            .into_bytes();
        let list = CscaMasterList::from_der(&econtent).map_err(ml_err)?;
        if list.version != 0 {
            return Err(PaError::MasterList(format!(
                "version {}, expected 0",
                list.version
            )));
        }
        let mut infos = sd.signer_infos.0.iter();
        let (Some(si), None) = (infos.next(), infos.next()) else {
            return Err(PaError::MasterList(format!(
                "{} signer infos, expected 1",
                sd.signer_infos.0.len()
            )));
        };
        let signer = signer_certificate(&sd, si).ok_or(PaError::MasterList(
            "no certificate matches the signer".into(),
        ))?;
        verify_signer_info(
            si,
            &econtent,
            (
                OID_CSCA_MASTER_LIST,
                "content type is not id-icao-cscaMasterList",
            ),
            signer.tbs_certificate().subject_public_key_info(),
        )
        .map_err(|e| PaError::MasterList(format!("signature: {e}")))?;
        self.find_issuer(signer).map_err(|_| {
            PaError::MasterList("the signer certificate is not issued by a trusted CSCA".into())
        })?;
        let n = list.cert_list.len();
        for c in list.cert_list.into_vec() {
            self.add(c);
        }
        Ok(n)
    }

    /// Loads a directory: certificates (`.der`, `.cer`, `.crt`, `.pem`) first, then
    /// master lists (`.ml`, which need the CSCA of their signer), then CRLs (`.crl`,
    /// which need their CSCA, possibly from a master list). Files that fail are
    /// returned with the reason, so an operator sees them.
    pub fn load_dir(
        dir: &Path,
    ) -> std::io::Result<(TrustStore, Vec<(std::path::PathBuf, String)>)> {
        let mut ts = TrustStore::new();
        let mut rejected = Vec::new();
        let mut entries: Vec<_> = std::fs::read_dir(dir)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .collect();
        entries.sort();
        type Load = fn(&mut TrustStore, &[u8]) -> Result<(), PaError>;
        let passes: [(&[&str], Load); 3] = [
            (&["der", "cer", "crt", "pem"], |ts, b| {
                ts.add_bytes(b).map(drop)
            }),
            (&["ml"], |ts, b| ts.add_master_list(b).map(drop)),
            (&["crl"], TrustStore::add_crl),
        ];
        for (exts, load) in passes {
            for p in &entries {
                if !extension(p).is_some_and(|e| exts.contains(&e.as_str())) {
                    continue;
                }
                if let Err(e) = std::fs::read(p)
                    .map_err(|e| e.to_string())
                    .and_then(|b| load(&mut ts, &b).map_err(|e| e.to_string()))
                {
                    rejected.push((p.clone(), e));
                }
            }
        }
        Ok((ts, rejected))
    }

    /// The trust store of a directory (`[documents] trust_store`): every `.der`,
    /// `.cer`, `.crt` and `.pem` certificate, `.ml` master list and `.crl` CRL in it.
    /// Strict, for start-up: an unreadable directory or any file that does not load
    /// (bad encoding, bad signature, master list signer or CRL issuer not trusted) is
    /// an error naming the file, so a misconfigured gate does not silently reject
    /// (or accept) documents.
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<TrustStore, TrustStoreError> {
        let dir = dir.as_ref();
        let (ts, rejected) = Self::load_dir(dir).map_err(|e| TrustStoreError::Directory {
            dir: dir.to_path_buf(),
            error: e.to_string(),
        })?;
        match rejected.into_iter().next() {
            Some((file, error)) => Err(TrustStoreError::File { file, error }),
            None => Ok(ts),
        }
    }

    /// Finds the CSCA whose key verifies the DS certificate's signature. Name
    /// matches are tried first; the signature is what decides.
    pub fn find_issuer(&self, ds: &Certificate) -> Result<&Certificate, PaError> {
        let tbs = ds
            .tbs_certificate()
            .to_der()
            .map_err(|e| PaError::Certificate(e.to_string()))?;
        let sig = ds.signature().raw_bytes();
        let mut order: Vec<&Certificate> = self
            .cscas
            .iter()
            .filter(|c| c.tbs_certificate().subject() == ds.tbs_certificate().issuer())
            .collect();
        order.extend(
            self.cscas
                .iter()
                .filter(|c| c.tbs_certificate().subject() != ds.tbs_certificate().issuer()),
        );
        order
            .into_iter()
            .find(|c| {
                verify_signature(
                    c.tbs_certificate().subject_public_key_info(),
                    ds.signature_algorithm(),
                    None,
                    &tbs,
                    sig,
                )
                .is_ok()
            })
            .ok_or(PaError::CscaUnknown)
    }

    /// Checks the DS certificate against the CRLs signed by `csca` (its issuer, as
    /// found by [`TrustStore::find_issuer`]) that are current at `now` (thisUpdate ≤
    /// now ≤ nextUpdate). A CRL that is not current is not used. No current CRL
    /// listing the serial: not revoked.
    pub fn check_revocation(
        &self,
        ds: &Certificate,
        csca: &Certificate,
        now: SystemTime,
    ) -> Result<(), PaError> {
        let key = csca.tbs_certificate().subject_public_key_info();
        let serial = ds.tbs_certificate().serial_number();
        let revoked = self
            .crls
            .iter()
            .filter(|c| {
                c.signer == *key && c.crl.tbs_cert_list.issuer == *ds.tbs_certificate().issuer()
            })
            .filter(|c| {
                let t = &c.crl.tbs_cert_list;
                t.this_update.to_system_time() <= now
                    && t.next_update.is_none_or(|n| now <= n.to_system_time())
            })
            .any(|c| {
                c.crl
                    .tbs_cert_list
                    .revoked_certificates
                    .iter()
                    .flatten()
                    .any(|r| r.serial_number == *serial)
            });
        if revoked {
            Err(PaError::DsRevoked(serial.to_string()))
        } else {
            Ok(())
        }
    }
}

/// The certificate of a SignedData matching a signer identifier.
fn signer_certificate<'a>(sd: &'a SignedData, si: &SignerInfo) -> Option<&'a Certificate> {
    use cms::cert::CertificateChoices;
    sd.certificates.as_ref()?.0.iter().find_map(|c| {
        let CertificateChoices::Certificate(c) = c else {
            return None;
        };
        let tbs = &c.tbs_certificate();
        let matches = match &si.sid {
            SignerIdentifier::IssuerAndSerialNumber(ias) => {
                ias.issuer == *tbs.issuer() && ias.serial_number == *tbs.serial_number()
            }
            SignerIdentifier::SubjectKeyIdentifier(ski) => {
                use x509_cert::ext::pkix::SubjectKeyIdentifier;
                tbs.get_extension::<SubjectKeyIdentifier>()
                    .ok()
                    .flatten()
                    .is_some_and(|(_, k)| k == *ski)
            }
        };
        matches.then_some(c)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn country_codes() {
        for (a3, a2) in [
            ("JPN", "JP"),
            ("D<<", "DE"),
            ("D", "DE"),
            ("UTO", "UT"),
            ("GBR", "GB"),
            ("GBD", "GB"),
            ("NLD", "NL"),
            ("USA", "US"),
        ] {
            assert_eq!(alpha3_to_alpha2(a3), Some(a2), "{a3}");
        }
        assert_eq!(alpha3_to_alpha2("XXX"), None);
        assert_eq!(alpha3_to_alpha2(""), None);
    }

    #[test]
    fn hash_oids() {
        assert_eq!(
            HashAlg::from_oid(&ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1")).unwrap(),
            HashAlg::Sha256
        );
        assert!(HashAlg::from_oid(&ObjectIdentifier::new_unwrap("1.2.3")).is_err());
        assert_eq!(HashAlg::Sha1.digest(b"abc").len(), 20);
    }

    #[test]
    fn sod_rejections() {
        assert!(matches!(
            Sod::parse(&[0x77, 0x00]),
            Err(PaError::SodStructure(_))
        ));
        assert!(
            matches!(Sod::parse(&[0x30, 0x00]), Err(PaError::SodStructure(m)) if m.contains("expected tag 77"))
        );
        assert!(matches!(
            Sod::parse(&[0x77, 0x05, 0x30]),
            Err(PaError::SodStructure(_))
        ));
        assert!(matches!(Sod::parse(&[]), Err(PaError::SodStructure(_))));
    }

    #[test]
    fn lds_security_object_round_trip() {
        let lso = LdsSecurityObject {
            version: 0,
            hash_algorithm: AlgorithmIdentifierOwned {
                oid: ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1"),
                parameters: None,
            },
            data_group_hash_values: vec![DataGroupHash {
                data_group_number: 1,
                data_group_hash_value: OctetString::new(vec![1; 32]).unwrap(),
            }],
            lds_version_info: None,
        };
        let der = lso.to_der().unwrap();
        assert_eq!(LdsSecurityObject::from_der(&der).unwrap(), lso);
    }

    #[test]
    fn empty_trust_store_knows_no_csca() {
        let ts = TrustStore::new();
        assert!(ts.is_empty());
        assert!(
            ts.clone()
                .add_bytes(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
                .is_err()
        );
        assert!(TrustStore::new().add_bytes(&[0x30, 0x00]).is_err());
    }

    /// RSA-PSS parameters whose MGF1 hash differs from the message hash are refused as
    /// unsupported (not reported as a bad signature, not verified with the wrong MGF).
    #[test]
    fn pss_with_another_mgf1_hash_is_unsupported() {
        use rsa::pkcs1::RsaPssParams;
        use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey};
        let pem = include_str!("../../../simulators/chip/testdata/rsa-ds.pem");
        let key = rsa::RsaPrivateKey::from_pkcs8_pem(pem)
            .unwrap()
            .to_public_key();
        let spki = SubjectPublicKeyInfoOwned::from_der(key.to_public_key_der().unwrap().as_bytes())
            .unwrap();
        let alg = rsa::pss::get_default_pss_signature_algo_id::<sha2::Sha256>().unwrap();
        let der = alg.parameters.as_ref().unwrap().to_der().unwrap();
        let mut p = RsaPssParams::<der::Any>::from_der(&der).unwrap();
        p.mask_gen.parameters = Some(spki::AlgorithmIdentifier {
            oid: HashAlg::Sha1.oid(),
            parameters: None,
        });
        let bad = AlgorithmIdentifierOwned {
            oid: alg.oid,
            parameters: Some(der::Any::from_der(&p.to_der().unwrap()).unwrap()),
        };
        assert!(matches!(
            verify_signature(&spki, &bad, None, b"m", &[0; 256]),
            Err(PaError::Unsupported(_))
        ));
        // The same parameters with MGF1-SHA-256 are verified (and this signature is bad).
        assert_eq!(
            verify_signature(&spki, &alg, None, b"m", &[0; 256]),
            Err(PaError::SodSignature)
        );
    }
}
