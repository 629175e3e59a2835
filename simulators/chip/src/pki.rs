//! Test PKI: a CSCA and a Document Signer, and SOD / CRL / master list signing.
//!
//! Signature schemes ([`KeyKind`]): ECDSA on P-256 (the default), brainpoolP256r1 and
//! brainpoolP384r1, and RSA 2048 with PKCS#1 v1.5 or RSASSA-PSS (SHA-256).
//! EC keys are derived deterministically from a label so that test runs are
//! reproducible (ECDSA signing is deterministic too, RFC 6979). RSA keys are fixed
//! test keys (`testdata/`): deriving an RSA key from a label would need prime
//! generation on every run, which is slow in debug builds.

use cms::cert::CertificateChoices;
use cms::content_info::ContentInfo;
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use const_oid::ObjectIdentifier;
use der::asn1::BitString;
use der::asn1::{OctetString, SetOfVec, UtcTime};
use der::{Any, Encode};
use sha2::{Digest, Sha256, Sha384};
use signature::hazmat::PrehashSigner;
use signature::{Keypair, Signer};
use spki::{
    AlgorithmIdentifierOwned, DynSignatureAlgorithmIdentifier, EncodePublicKey,
    SignatureBitStringEncoding, SubjectPublicKeyInfoOwned,
};
use std::str::FromStr;
use std::time::{Duration, UNIX_EPOCH};
use thiserror::Error;
use torii_icao::pa::{
    CscaMasterList, DataGroupHash, LdsSecurityObject, OID_CSCA_MASTER_LIST,
    OID_LDS_SECURITY_OBJECT, TrustStore,
};
use x509_cert::Certificate;
use x509_cert::attr::Attribute;
use x509_cert::builder::profile::BuilderProfile;
use x509_cert::builder::{Builder, CertificateBuilder};
use x509_cert::crl::{CertificateList, RevokedCert, TbsCertList};
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, KeyUsages};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};

#[derive(Debug, Error)]
pub enum PkiError {
    #[error("DER: {0}")]
    Der(#[from] der::Error),
    #[error("certificate builder: {0}")]
    Builder(#[from] x509_cert::builder::Error),
    #[error("key: {0}")]
    Key(String),
}

const OID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const OID_ECDSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const OID_ECDSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
const OID_RSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const OID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
const OID_CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
const OID_MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");

/// The signature scheme of a test PKI key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// ECDSA P-256 with SHA-256.
    P256,
    /// ECDSA brainpoolP256r1 with SHA-256.
    BrainpoolP256r1,
    /// ECDSA brainpoolP384r1 with SHA-384.
    BrainpoolP384r1,
    /// RSA 2048, PKCS#1 v1.5 with SHA-256.
    RsaPkcs1v15,
    /// RSA 2048, RSASSA-PSS with SHA-256, MGF1-SHA-256, 32-byte salt.
    RsaPss,
}

const RSA_CSCA_PEM: &str = include_str!("../testdata/rsa-csca.pem");
const RSA_DS_PEM: &str = include_str!("../testdata/rsa-ds.pem");
const RSA_OTHER_PEM: &str = include_str!("../testdata/rsa-rogue.pem");
const RSA_AA_PEM: &str = include_str!("../testdata/rsa-aa.pem");
const RSA_AA_CLONE_PEM: &str = include_str!("../testdata/rsa-aa-clone.pem");

/// The fixed RSA test keys by name: `csca`, `ds` (2048 bits), `aa`, `clone/aa` (1024
/// bits, Active Authentication), anything else the rogue key (2048 bits).
pub fn rsa_test_key(name: &str) -> Result<rsa::RsaPrivateKey, PkiError> {
    use rsa::pkcs8::DecodePrivateKey;
    let pem = match name {
        "csca" => RSA_CSCA_PEM,
        "ds" => RSA_DS_PEM,
        "aa" => RSA_AA_PEM,
        "clone/aa" => RSA_AA_CLONE_PEM,
        _ => RSA_OTHER_PEM,
    };
    rsa::RsaPrivateKey::from_pkcs8_pem(pem).map_err(|e| PkiError::Key(e.to_string()))
}

/// A signing key of the test PKI (any [`KeyKind`]).
#[derive(Clone)]
pub enum TestKey {
    P256(p256::ecdsa::SigningKey),
    BrainpoolP256r1(ecdsa::SigningKey<bp256::BrainpoolP256r1>),
    BrainpoolP384r1(ecdsa::SigningKey<bp384::BrainpoolP384r1>),
    Rsa { key: rsa::RsaPrivateKey, pss: bool },
}

impl std::fmt::Debug for TestKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TestKey({:?})", self.kind())
    }
}

/// The public half of a [`TestKey`], as the certificate builder wants it.
#[derive(Debug, Clone)]
pub struct TestPublicKey(Option<SubjectPublicKeyInfoOwned>);

impl EncodePublicKey for TestPublicKey {
    fn to_public_key_der(&self) -> spki::Result<der::Document> {
        let spki = self.0.as_ref().ok_or(spki::Error::KeyMalformed)?;
        Ok(der::Document::encode_msg(spki)?)
    }
}

/// A signature in the encoding its algorithm uses (ECDSA: DER `Ecdsa-Sig-Value`).
#[derive(Debug, Clone)]
pub struct TestSignature(pub Vec<u8>);

impl SignatureBitStringEncoding for TestSignature {
    fn to_bitstring(&self) -> der::Result<BitString> {
        BitString::from_bytes(&self.0)
    }
}

impl TestKey {
    /// The key of `kind` for `label`: EC keys are derived from the label; RSA keys are
    /// the fixed test keys, the label choosing one (`rogue/…`, `…/csca`, `…/ds`, anything
    /// else shares the rogue key).
    pub fn from_label(kind: KeyKind, label: &str) -> Result<TestKey, PkiError> {
        let key_err = |e: &dyn std::fmt::Display| PkiError::Key(e.to_string());
        match kind {
            KeyKind::P256 => Ok(TestKey::P256(
                p256::ecdsa::SigningKey::from_slice(&Sha256::digest(label.as_bytes()))
                    .map_err(|e| key_err(&e))?,
            )),
            // Brainpool orders are well below 2^n: a hash is a valid scalar only about
            // two times in three, so the next counter is tried until one is.
            KeyKind::BrainpoolP256r1 => (0u8..=255)
                .find_map(|i| {
                    ecdsa::SigningKey::from_slice(&Sha256::digest(
                        [label.as_bytes(), &[i]].concat(),
                    ))
                    .ok()
                })
                .map(TestKey::BrainpoolP256r1)
                .ok_or_else(|| PkiError::Key("no brainpoolP256r1 key for the label".into())),
            KeyKind::BrainpoolP384r1 => (0u8..=255)
                .find_map(|i| {
                    ecdsa::SigningKey::from_slice(&Sha384::digest(
                        [label.as_bytes(), &[i]].concat(),
                    ))
                    .ok()
                })
                .map(TestKey::BrainpoolP384r1)
                .ok_or_else(|| PkiError::Key("no brainpoolP384r1 key for the label".into())),
            KeyKind::RsaPkcs1v15 | KeyKind::RsaPss => {
                let name = if label.starts_with("rogue/") {
                    "rogue"
                } else if label.ends_with("/csca") {
                    "csca"
                } else if label.ends_with("/ds") {
                    "ds"
                } else {
                    "rogue"
                };
                Ok(TestKey::Rsa {
                    key: rsa_test_key(name)?,
                    pss: kind == KeyKind::RsaPss,
                })
            }
        }
    }

    pub fn kind(&self) -> KeyKind {
        match self {
            TestKey::P256(_) => KeyKind::P256,
            TestKey::BrainpoolP256r1(_) => KeyKind::BrainpoolP256r1,
            TestKey::BrainpoolP384r1(_) => KeyKind::BrainpoolP384r1,
            TestKey::Rsa { pss: false, .. } => KeyKind::RsaPkcs1v15,
            TestKey::Rsa { pss: true, .. } => KeyKind::RsaPss,
        }
    }

    /// The SubjectPublicKeyInfo of the key (EC keys on their named curve).
    pub fn spki(&self) -> Result<SubjectPublicKeyInfoOwned, PkiError> {
        let r = match self {
            TestKey::P256(k) => SubjectPublicKeyInfoOwned::from_key(k.verifying_key()),
            TestKey::BrainpoolP256r1(k) => SubjectPublicKeyInfoOwned::from_key(k.verifying_key()),
            TestKey::BrainpoolP384r1(k) => SubjectPublicKeyInfoOwned::from_key(k.verifying_key()),
            TestKey::Rsa { key, .. } => SubjectPublicKeyInfoOwned::from_key(&key.to_public_key()),
        };
        r.map_err(|e| PkiError::Key(e.to_string()))
    }

    /// The signature algorithm this key signs with.
    pub fn algorithm(&self) -> Result<AlgorithmIdentifierOwned, PkiError> {
        let plain = |oid| AlgorithmIdentifierOwned {
            oid,
            parameters: None,
        };
        Ok(match self {
            TestKey::P256(_) | TestKey::BrainpoolP256r1(_) => plain(OID_ECDSA_SHA256),
            TestKey::BrainpoolP384r1(_) => plain(OID_ECDSA_SHA384),
            TestKey::Rsa { pss: false, .. } => AlgorithmIdentifierOwned {
                oid: OID_RSA_SHA256,
                parameters: Some(Any::null()),
            },
            TestKey::Rsa { pss: true, .. } => {
                rsa::pss::get_default_pss_signature_algo_id::<Sha256>()
                    .map_err(|e| PkiError::Key(e.to_string()))?
            }
        })
    }

    /// Signs `msg` (hashing it with the algorithm's hash).
    pub fn sign_bytes(&self, msg: &[u8]) -> Result<Vec<u8>, PkiError> {
        let err = |e: signature::Error| PkiError::Key(format!("{:?}: {e}", self.kind()));
        Ok(match self {
            TestKey::P256(k) => {
                let sig: ecdsa::der::Signature<p256::NistP256> =
                    k.sign_prehash(&Sha256::digest(msg)).map_err(err)?;
                sig.as_bytes().to_vec()
            }
            TestKey::BrainpoolP256r1(k) => {
                let sig: ecdsa::der::Signature<bp256::BrainpoolP256r1> =
                    k.sign_prehash(&Sha256::digest(msg)).map_err(err)?;
                sig.as_bytes().to_vec()
            }
            TestKey::BrainpoolP384r1(k) => {
                let sig: ecdsa::der::Signature<bp384::BrainpoolP384r1> =
                    k.sign_prehash(&Sha384::digest(msg)).map_err(err)?;
                sig.as_bytes().to_vec()
            }
            TestKey::Rsa { key, pss: false } => {
                use signature::SignatureEncoding as _;
                rsa::pkcs1v15::SigningKey::<Sha256>::new(key.clone())
                    .try_sign(msg)
                    .map_err(err)?
                    .to_vec()
            }
            TestKey::Rsa { key, pss: true } => {
                use signature::SignatureEncoding as _;
                rsa::pss::SigningKey::<Sha256>::new(key.clone())
                    .try_sign(msg)
                    .map_err(err)?
                    .to_vec()
            }
        })
    }
}

impl Keypair for TestKey {
    type VerifyingKey = TestPublicKey;

    fn verifying_key(&self) -> TestPublicKey {
        // A key that cannot be encoded surfaces as an encoding error of the builder.
        TestPublicKey(self.spki().ok())
    }
}

impl DynSignatureAlgorithmIdentifier for TestKey {
    fn signature_algorithm_identifier(&self) -> spki::Result<AlgorithmIdentifierOwned> {
        self.algorithm().map_err(|_| spki::Error::KeyMalformed)
    }
}

impl Signer<TestSignature> for TestKey {
    fn try_sign(&self, msg: &[u8]) -> Result<TestSignature, signature::Error> {
        self.sign_bytes(msg)
            .map(TestSignature)
            .map_err(|_| signature::Error::new())
    }
}

/// A deterministic P-256 key from a label (the default test PKI key).
pub fn key_from_label(label: &str) -> Result<TestKey, PkiError> {
    TestKey::from_label(KeyKind::P256, label)
}

/// The certificate profile of the test PKI: a CSCA (self-issued, CA, keyCertSign and
/// cRLSign) or a certificate it issues (digitalSignature).
struct TestProfile {
    subject: Name,
    issuer: Option<Name>,
}

impl BuilderProfile for TestProfile {
    fn get_issuer(&self, subject: &Name) -> Name {
        self.issuer.clone().unwrap_or_else(|| subject.clone())
    }

    fn get_subject(&self) -> Name {
        self.subject.clone()
    }

    fn build_extensions(
        &self,
        _spk: spki::SubjectPublicKeyInfoRef<'_>,
        _issuer_spk: spki::SubjectPublicKeyInfoRef<'_>,
        tbs: &x509_cert::TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        use x509_cert::ext::ToExtension as _;
        let subject = tbs.subject();
        Ok(if self.issuer.is_none() {
            vec![
                (
                    true,
                    &BasicConstraints {
                        ca: true,
                        path_len_constraint: Some(0),
                    },
                )
                    .to_extension(subject, &[])?,
                (true, &KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign))
                    .to_extension(subject, &[])?,
            ]
        } else {
            vec![(true, &KeyUsage(KeyUsages::DigitalSignature.into())).to_extension(subject, &[])?]
        })
    }
}

fn utc(year_secs: u64) -> Result<Time, PkiError> {
    Ok(Time::UtcTime(UtcTime::from_unix_duration(
        Duration::from_secs(year_secs),
    )?))
}

/// Seconds since the epoch at 1 January of `year` (good enough for test validity periods).
pub fn jan1(year: u64) -> u64 {
    let days: u64 = (1970..year)
        .map(|y| {
            if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 {
                366
            } else {
                365
            }
        })
        .sum();
    days * 86_400
}

pub fn system_time(year: u64) -> std::time::SystemTime {
    UNIX_EPOCH + Duration::from_secs(jan1(year))
}

/// A self-signed CSCA certificate.
pub fn csca_certificate(
    key: &TestKey,
    country: &str,
    from: u64,
    to: u64,
) -> Result<Certificate, PkiError> {
    let subject = Name::from_str(&format!("CN=Test CSCA,O=torii test PKI,C={country}"))?;
    let validity = Validity::new(utc(jan1(from))?, utc(jan1(to))?);
    let b = CertificateBuilder::new(
        TestProfile {
            subject,
            issuer: None,
        },
        SerialNumber::from(1u32),
        validity,
        key.spki()?,
    )?;
    Ok(b.build::<_, TestSignature>(key)?)
}

/// The serial number of the DS certificate that [`TestPki::crl`] revokes (the
/// regular DS has serial 2, the CSCA 1, the master list signer 3).
pub const REVOKED_DS_SERIAL: u32 = 0x0BAD;

/// A DS certificate for `ds_key`, issued by `csca_cert`/`csca_key`.
pub fn ds_certificate(
    ds_key: &TestKey,
    csca_cert: &Certificate,
    csca_key: &TestKey,
    country: &str,
    from: u64,
    to: u64,
) -> Result<Certificate, PkiError> {
    issued_certificate(
        ds_key,
        (csca_cert, csca_key),
        &format!("CN=Test Document Signer,O=torii test PKI,C={country}"),
        2,
        (from, to),
    )
}

/// A certificate for `key` with `subject` and `serial`, issued by a CSCA.
pub fn issued_certificate(
    key: &TestKey,
    (csca_cert, csca_key): (&Certificate, &TestKey),
    subject: &str,
    serial: u32,
    (from, to): (u64, u64),
) -> Result<Certificate, PkiError> {
    let subject = Name::from_str(subject)?;
    let validity = Validity::new(utc(jan1(from))?, utc(jan1(to))?);
    let profile = TestProfile {
        subject,
        issuer: Some(csca_cert.tbs_certificate().subject().clone()),
    };
    let b = CertificateBuilder::new(profile, SerialNumber::from(serial), validity, key.spki()?)?;
    Ok(b.build::<_, TestSignature>(csca_key)?)
}

/// Builds EF.SOD: tag 77 around a CMS SignedData over an LDSSecurityObject with
/// SHA-256 hashes of `dgs`, signed (signed attributes, ECDSA-SHA256) by `signer`
/// and carrying `ds_cert`.
pub fn sign_sod(
    dgs: &[(u8, Vec<u8>)],
    ds_cert: &Certificate,
    signer: &TestKey,
) -> Result<Vec<u8>, PkiError> {
    let sha256 = AlgorithmIdentifierOwned {
        oid: OID_SHA256,
        parameters: None,
    };
    let lso = LdsSecurityObject {
        version: 0,
        hash_algorithm: sha256.clone(),
        data_group_hash_values: dgs
            .iter()
            .map(|(n, b)| {
                Ok(DataGroupHash {
                    data_group_number: *n,
                    data_group_hash_value: OctetString::new(Sha256::digest(b).to_vec())?,
                })
            })
            .collect::<Result<_, der::Error>>()?,
        lds_version_info: None,
    };
    let econtent = lso.to_der()?;
    let body = sign_cms(OID_LDS_SECURITY_OBJECT, econtent, ds_cert, signer)?;
    torii_icao::tlv::encode_constructed(0x77, &body).map_err(|e| PkiError::Key(e.to_string()))
}

/// A DER ContentInfo holding a CMS SignedData over `econtent` of type `content_type`,
/// with signed attributes (content type, message digest), signed with ECDSA-SHA256 by
/// `signer` and carrying `cert`, identified by issuer and serial number.
pub fn sign_cms(
    content_type: ObjectIdentifier,
    econtent: Vec<u8>,
    cert: &Certificate,
    signer: &TestKey,
) -> Result<Vec<u8>, PkiError> {
    let sha256 = AlgorithmIdentifierOwned {
        oid: OID_SHA256,
        parameters: None,
    };
    let mut attrs = SetOfVec::new();
    attrs.insert(Attribute {
        oid: OID_CONTENT_TYPE,
        values: SetOfVec::try_from(vec![Any::encode_from(&content_type)?])?,
    })?;
    attrs.insert(Attribute {
        oid: OID_MESSAGE_DIGEST,
        values: SetOfVec::try_from(vec![Any::encode_from(&OctetString::new(
            Sha256::digest(&econtent).to_vec(),
        )?)?])?,
    })?;
    let sig = signer.sign_bytes(&attrs.to_der()?)?;
    let si = SignerInfo {
        version: cms::content_info::CmsVersion::V1,
        sid: SignerIdentifier::IssuerAndSerialNumber(cms::cert::IssuerAndSerialNumber {
            issuer: cert.tbs_certificate().issuer().clone(),
            serial_number: cert.tbs_certificate().serial_number().clone(),
        }),
        digest_alg: sha256.clone(),
        signed_attrs: Some(attrs),
        signature_algorithm: signer.algorithm()?,
        signature: OctetString::new(sig)?,
        unsigned_attrs: None,
    };
    let sd = SignedData {
        version: cms::content_info::CmsVersion::V3,
        digest_algorithms: SetOfVec::try_from(vec![sha256])?,
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: content_type,
            econtent: Some(Any::encode_from(&OctetString::new(econtent)?)?),
        },
        certificates: Some(CertificateSet(SetOfVec::try_from(vec![
            CertificateChoices::Certificate(cert.clone()),
        ])?)),
        crls: None,
        signer_infos: SignerInfos(SetOfVec::try_from(vec![si])?),
    };
    let ci = ContentInfo {
        content_type: OID_SIGNED_DATA,
        content: Any::encode_from(&sd)?,
    };
    Ok(ci.to_der()?)
}

/// An ICAO CSCA master list (`.ml`): CscaMasterList { v0, `cscas` } in a CMS
/// SignedData of type id-icao-cscaMasterList, signed by `signer`.
pub fn sign_master_list(
    cscas: &[Certificate],
    signer_cert: &Certificate,
    signer: &TestKey,
) -> Result<Vec<u8>, PkiError> {
    let list = CscaMasterList {
        version: 0,
        cert_list: SetOfVec::try_from(cscas.to_vec())?,
    };
    sign_cms(OID_CSCA_MASTER_LIST, list.to_der()?, signer_cert, signer)
}

/// A v2 CRL issued by `csca_cert`/`csca_key` (ECDSA-SHA256), revoking `serials`
/// (revocation date = `this_update`), current from 1 January `this_update` to
/// 1 January `next_update`.
pub fn sign_crl(
    csca_cert: &Certificate,
    csca_key: &TestKey,
    serials: &[u32],
    this_update: u64,
    next_update: u64,
) -> Result<Vec<u8>, PkiError> {
    let alg = csca_key.algorithm()?;
    let tbs = TbsCertList {
        version: x509_cert::Version::V2,
        signature: alg.clone(),
        issuer: csca_cert.tbs_certificate().subject().clone(),
        this_update: utc(jan1(this_update))?,
        next_update: Some(utc(jan1(next_update))?),
        revoked_certificates: (!serials.is_empty())
            .then(|| {
                serials
                    .iter()
                    .map(|s| {
                        Ok(RevokedCert {
                            serial_number: SerialNumber::from(*s),
                            revocation_date: utc(jan1(this_update))?,
                            crl_entry_extensions: None,
                        })
                    })
                    .collect::<Result<Vec<_>, PkiError>>()
            })
            .transpose()?,
        crl_extensions: None,
    };
    let sig = csca_key.sign_bytes(&tbs.to_der()?)?;
    let crl = CertificateList {
        tbs_cert_list: tbs,
        signature_algorithm: alg,
        signature: BitString::from_bytes(&sig)?,
    };
    Ok(crl.to_der()?)
}

fn subject_country_of(cert: &Certificate) -> String {
    torii_icao::pa::subject_country(cert).unwrap_or_else(|| "UT".into())
}

/// The test PKI of one issuing country.
#[derive(Clone)]
pub struct TestPki {
    pub csca_key: TestKey,
    pub csca_cert: Certificate,
    pub ds_key: TestKey,
    pub ds_cert: Certificate,
}

impl std::fmt::Debug for TestPki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TestPki(..)")
    }
}

impl TestPki {
    /// CSCA valid 2020-2040, DS valid 2024-2036, for country `c` (alpha-2), ECDSA P-256.
    pub fn generate(label: &str, country: &str) -> Result<Self, PkiError> {
        Self::generate_with(label, country, KeyKind::P256)
    }

    /// [`TestPki::generate`] with CSCA and DS keys of `kind`.
    pub fn generate_with(label: &str, country: &str, kind: KeyKind) -> Result<Self, PkiError> {
        let csca_key = TestKey::from_label(kind, &format!("{label}/csca"))?;
        let csca_cert = csca_certificate(&csca_key, country, 2020, 2040)?;
        let ds_key = TestKey::from_label(kind, &format!("{label}/ds"))?;
        let ds_cert = ds_certificate(&ds_key, &csca_cert, &csca_key, country, 2024, 2036)?;
        Ok(TestPki {
            csca_key,
            csca_cert,
            ds_key,
            ds_cert,
        })
    }

    /// The CSCA certificate, DER encoded (for a trust store directory).
    pub fn csca_der(&self) -> Result<Vec<u8>, PkiError> {
        Ok(self.csca_cert.to_der()?)
    }

    /// A DS certificate for the same DS key with serial [`REVOKED_DS_SERIAL`] (the one
    /// [`TestPki::crl`] revokes; `Fault::RevokedDs` puts it on the chip).
    pub fn revoked_ds_certificate(&self, country: &str) -> Result<Certificate, PkiError> {
        issued_certificate(
            &self.ds_key,
            (&self.csca_cert, &self.csca_key),
            &format!("CN=Test Document Signer,O=torii test PKI,C={country}"),
            REVOKED_DS_SERIAL,
            (2024, 2036),
        )
    }

    /// The CSCA's CRL (DER), current 2025-2030, revoking [`REVOKED_DS_SERIAL`] only.
    pub fn crl(&self) -> Result<Vec<u8>, PkiError> {
        sign_crl(
            &self.csca_cert,
            &self.csca_key,
            &[REVOKED_DS_SERIAL],
            2025,
            2030,
        )
    }

    /// A master list signer (key and certificate, serial 3, valid 2024-2036) issued
    /// by this PKI's CSCA.
    pub fn master_list_signer(&self) -> Result<(TestKey, Certificate), PkiError> {
        let key = key_from_label("master-list-signer")?;
        let country = crate::pki::subject_country_of(&self.csca_cert);
        let cert = issued_certificate(
            &key,
            (&self.csca_cert, &self.csca_key),
            &format!("CN=Test Master List Signer,O=torii test PKI,C={country}"),
            3,
            (2024, 2036),
        )?;
        Ok((key, cert))
    }

    /// A master list of `cscas` signed by this PKI's master list signer.
    pub fn master_list(&self, cscas: &[Certificate]) -> Result<Vec<u8>, PkiError> {
        let (key, cert) = self.master_list_signer()?;
        sign_master_list(cscas, &cert, &key)
    }

    pub fn trust_store(&self) -> TrustStore {
        let mut t = TrustStore::new();
        t.add(self.csca_cert.clone());
        t
    }
}
