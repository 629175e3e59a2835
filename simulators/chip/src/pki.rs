//! Test PKI: a CSCA and a Document Signer (ECDSA P-256), and SOD signing.
//!
//! Keys are derived deterministically from a label so that test runs are
//! reproducible (ECDSA signing is deterministic too, RFC 6979).

use cms::cert::CertificateChoices;
use cms::content_info::ContentInfo;
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use const_oid::ObjectIdentifier;
use der::asn1::BitString;
use der::asn1::{OctetString, SetOfVec, UtcTime};
use der::{Any, Encode};
use p256::ecdsa::{DerSignature, SigningKey};
use sha2::{Digest, Sha256};
use signature::Signer;
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use std::str::FromStr;
use std::time::{Duration, UNIX_EPOCH};
use thiserror::Error;
use torii_icao::pa::{
    CscaMasterList, DataGroupHash, LdsSecurityObject, OID_CSCA_MASTER_LIST,
    OID_LDS_SECURITY_OBJECT, TrustStore,
};
use x509_cert::Certificate;
use x509_cert::attr::Attribute;
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::crl::{CertificateList, RevokedCert, TbsCertList};
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
const OID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
const OID_CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
const OID_MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");

/// A deterministic P-256 key from a label.
pub fn key_from_label(label: &str) -> Result<SigningKey, PkiError> {
    let seed = Sha256::digest(label.as_bytes());
    SigningKey::from_slice(&seed).map_err(|e| PkiError::Key(e.to_string()))
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

fn spki_of(key: &SigningKey) -> Result<SubjectPublicKeyInfoOwned, PkiError> {
    SubjectPublicKeyInfoOwned::from_key(*key.verifying_key())
        .map_err(|e| PkiError::Key(e.to_string()))
}

/// A self-signed CSCA certificate.
pub fn csca_certificate(
    key: &SigningKey,
    country: &str,
    from: u64,
    to: u64,
) -> Result<Certificate, PkiError> {
    let subject = Name::from_str(&format!("CN=Test CSCA,O=torii test PKI,C={country}"))?;
    let validity = Validity {
        not_before: utc(jan1(from))?,
        not_after: utc(jan1(to))?,
    };
    let b = CertificateBuilder::new(
        Profile::Root,
        SerialNumber::from(1u32),
        validity,
        subject,
        spki_of(key)?,
        key,
    )?;
    Ok(b.build::<DerSignature>()?)
}

/// The serial number of the DS certificate that [`TestPki::crl`] revokes (the
/// regular DS has serial 2, the CSCA 1, the master list signer 3).
pub const REVOKED_DS_SERIAL: u32 = 0x0BAD;

/// A DS certificate for `ds_key`, issued by `csca_cert`/`csca_key`.
pub fn ds_certificate(
    ds_key: &SigningKey,
    csca_cert: &Certificate,
    csca_key: &SigningKey,
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
    key: &SigningKey,
    (csca_cert, csca_key): (&Certificate, &SigningKey),
    subject: &str,
    serial: u32,
    (from, to): (u64, u64),
) -> Result<Certificate, PkiError> {
    let subject = Name::from_str(subject)?;
    let validity = Validity {
        not_before: utc(jan1(from))?,
        not_after: utc(jan1(to))?,
    };
    let profile = Profile::Leaf {
        issuer: csca_cert.tbs_certificate.subject.clone(),
        enable_key_agreement: false,
        enable_key_encipherment: false,
    };
    let b = CertificateBuilder::new(
        profile,
        SerialNumber::from(serial),
        validity,
        subject,
        spki_of(key)?,
        csca_key,
    )?;
    Ok(b.build::<DerSignature>()?)
}

/// Builds EF.SOD: tag 77 around a CMS SignedData over an LDSSecurityObject with
/// SHA-256 hashes of `dgs`, signed (signed attributes, ECDSA-SHA256) by `signer`
/// and carrying `ds_cert`.
pub fn sign_sod(
    dgs: &[(u8, Vec<u8>)],
    ds_cert: &Certificate,
    signer: &SigningKey,
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
    signer: &SigningKey,
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
    let sig: DerSignature = signer.sign(&attrs.to_der()?);
    let si = SignerInfo {
        version: cms::content_info::CmsVersion::V1,
        sid: SignerIdentifier::IssuerAndSerialNumber(cms::cert::IssuerAndSerialNumber {
            issuer: cert.tbs_certificate.issuer.clone(),
            serial_number: cert.tbs_certificate.serial_number.clone(),
        }),
        digest_alg: sha256.clone(),
        signed_attrs: Some(attrs),
        signature_algorithm: AlgorithmIdentifierOwned {
            oid: OID_ECDSA_SHA256,
            parameters: None,
        },
        signature: OctetString::new(sig.to_bytes().to_vec())?,
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
    signer: &SigningKey,
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
    csca_key: &SigningKey,
    serials: &[u32],
    this_update: u64,
    next_update: u64,
) -> Result<Vec<u8>, PkiError> {
    let alg = AlgorithmIdentifierOwned {
        oid: OID_ECDSA_SHA256,
        parameters: None,
    };
    let tbs = TbsCertList {
        version: x509_cert::Version::V2,
        signature: alg.clone(),
        issuer: csca_cert.tbs_certificate.subject.clone(),
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
    let sig: DerSignature = csca_key.sign(&tbs.to_der()?);
    let crl = CertificateList {
        tbs_cert_list: tbs,
        signature_algorithm: alg,
        signature: BitString::from_bytes(sig.as_bytes())?,
    };
    Ok(crl.to_der()?)
}

fn subject_country_of(cert: &Certificate) -> String {
    torii_icao::pa::subject_country(cert).unwrap_or_else(|| "UT".into())
}

/// The test PKI of one issuing country.
#[derive(Clone)]
pub struct TestPki {
    pub csca_key: SigningKey,
    pub csca_cert: Certificate,
    pub ds_key: SigningKey,
    pub ds_cert: Certificate,
}

impl std::fmt::Debug for TestPki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TestPki(..)")
    }
}

impl TestPki {
    /// CSCA valid 2020-2040, DS valid 2024-2036, for country `c` (alpha-2).
    pub fn generate(label: &str, country: &str) -> Result<Self, PkiError> {
        let csca_key = key_from_label(&format!("{label}/csca"))?;
        let csca_cert = csca_certificate(&csca_key, country, 2020, 2040)?;
        let ds_key = key_from_label(&format!("{label}/ds"))?;
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
    pub fn master_list_signer(&self) -> Result<(SigningKey, Certificate), PkiError> {
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
