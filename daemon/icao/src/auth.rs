//! Chip Authentication (ICAO 9303 Part 11, 6.2: DG14, ECDH key agreement, re-keyed
//! secure messaging) and Active Authentication (Part 11, 6.1: DG15, INTERNAL
//! AUTHENTICATE, ECDSA).
//!
//! Both prove only that the chip holds the private key of a public key read from
//! the chip. That proves nothing unless Passive Authentication verified the file the
//! key came from (a clone would simply carry its own key). The protocols therefore
//! take a [`Verified`] key, which only the inspection sequence ([`crate::verdict`])
//! creates, after the SOD signature, the DS → CSCA chain, the validity periods and
//! the data group's hash all passed.
//!
//! Supported: CA with ECDH on P-256/P-384/brainpoolP256r1/brainpoolP384r1 (named
//! curves), 3DES (MSE:Set KAT) and AES-128/192/256 (MSE:Set AT + GENERAL
//! AUTHENTICATE); AA with ECDSA (same curves, plain or DER signatures) and with RSA
//! (ISO/IEC 9796-2 scheme 1, partial message recovery: [`iso9796_2`]). Not supported:
//! CA with DH or keys with explicit domain parameters.

use crate::apdu::{Command, SW_OK};
use crate::pa::{self, HashAlg};
use crate::pace::{self, Cipher, Curve, SecurityInfo};
use crate::reader::{ChipTransport, Reader, ReaderError, fid};
use crate::sm::SmError;
use crate::tlv;
use const_oid::ObjectIdentifier;
use der::asn1::{Any, BitString};
use der::{Decode, Encode, Tag, Tagged};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use std::fmt;
use thiserror::Error;

/// id-CA (BSI TR-03110): `.1` DH, `.2` ECDH, then `.1` 3DES, `.2`/`.3`/`.4` AES-128/192/256.
pub const OID_CA: &str = "0.4.0.127.0.7.2.2.3";
/// id-PK-ECDH: ChipAuthenticationPublicKeyInfo with an EC key.
pub const OID_PK_ECDH: ObjectIdentifier = ObjectIdentifier::new_unwrap("0.4.0.127.0.7.2.2.1.2");
/// id-PK-DH.
pub const OID_PK_DH: ObjectIdentifier = ObjectIdentifier::new_unwrap("0.4.0.127.0.7.2.2.1.1");
/// id-icao-mrtd-security-aaProtocolObject: ActiveAuthenticationInfo.
pub const OID_AA_INFO: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.23.136.1.1.5");
/// ecdsa-plain-signatures (BSI TR-03111): `.1` SHA-1 … `.5` SHA-512.
pub const OID_ECDSA_PLAIN: &str = "0.4.0.127.0.7.1.1.4.1";
const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

/// Errors of CA and AA. Carry status words and field names, never key or data bytes.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum AuthError {
    #[error("DG14: {0}")]
    Dg14(String),
    #[error("DG15: {0}")]
    Dg15(String),
    #[error("not supported: {0}")]
    Unsupported(String),
    #[error("{step} refused with status {sw:04X}")]
    Status { step: &'static str, sw: u16 },
    #[error("{0}: malformed chip answer")]
    Malformed(&'static str),
    /// The chip does not hold the private key of the verified public key: after CA its
    /// secure messaging does not verify, or its AA signature does not verify.
    #[error("the chip does not hold the private key of {0}")]
    KeyMismatch(&'static str),
    #[error("{0}")]
    Reader(ReaderError),
}

impl From<ReaderError> for AuthError {
    fn from(e: ReaderError) -> Self {
        AuthError::Reader(e)
    }
}

/// A value taken from a data group that Passive Authentication verified. Only the
/// inspection sequence creates one: CA/AA cannot be run on an unverified key.
#[derive(Clone)]
pub struct Verified<T>(T);

impl<T> Verified<T> {
    /// Crate-internal: call only after the SOD signature, the chain to a trusted CSCA,
    /// the validity periods and this data group's hash all passed.
    pub(crate) fn after_passive_authentication(value: T) -> Self {
        Verified(value)
    }

    pub fn get(&self) -> &T {
        &self.0
    }
}

impl<T: fmt::Debug> fmt::Debug for Verified<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Verified({:?})", self.0)
    }
}

/// A ChipAuthenticationInfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChipAuthInfo {
    pub oid: ObjectIdentifier,
    pub version: u32,
    pub cipher: Cipher,
    pub key_id: Option<u32>,
}

impl ChipAuthInfo {
    /// `id-CA-ECDH-<cipher>` with an optional key id.
    pub fn ecdh(cipher: Cipher, key_id: Option<u32>) -> ChipAuthInfo {
        let suffix = match cipher {
            Cipher::Tdes => 1,
            Cipher::Aes128 => 2,
            Cipher::Aes192 => 3,
            Cipher::Aes256 => 4,
        };
        ChipAuthInfo {
            oid: ObjectIdentifier::new(&format!("{OID_CA}.2.{suffix}"))
                .unwrap_or(ObjectIdentifier::new_unwrap("0.4.0.127.0.7.2.2.3.2.2")),
            version: 1,
            cipher,
            key_id,
        }
    }

    fn from_oid(oid: ObjectIdentifier, version: u32, key_id: Option<u32>) -> Option<Self> {
        let arcs: Vec<u32> = oid.arcs().collect();
        let prefix: Vec<u32> = ObjectIdentifier::new(OID_CA).ok()?.arcs().collect();
        let rest = arcs.strip_prefix(prefix.as_slice())?;
        // DH (arc 1) is recognised by the caller as unsupported.
        if rest.len() != 2 || rest.first() != Some(&2) {
            return None;
        }
        let cipher = match rest.get(1)? {
            1 => Cipher::Tdes,
            2 => Cipher::Aes128,
            3 => Cipher::Aes192,
            4 => Cipher::Aes256,
            _ => return None,
        };
        Some(ChipAuthInfo {
            oid,
            version,
            cipher,
            key_id,
        })
    }
}

/// A chip authentication public key (ECDH on a supported named curve).
#[derive(Clone, PartialEq, Eq)]
pub struct ChipAuthKey {
    pub key_id: Option<u32>,
    pub curve: Curve,
    /// Uncompressed point.
    pub point: Vec<u8>,
}

impl fmt::Debug for ChipAuthKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChipAuthKey({:?}, key id {:?})", self.curve, self.key_id)
    }
}

/// DG14 (SecurityInfos): what Chip and Active Authentication need.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dg14 {
    pub ca_infos: Vec<ChipAuthInfo>,
    pub ca_keys: Vec<ChipAuthKey>,
    /// Chip authentication keys this implementation cannot use (DH, explicit
    /// parameters, other curves), with the reason.
    pub unsupported: Vec<String>,
    /// ActiveAuthenticationInfo's signature algorithm (the hash of ECDSA AA).
    pub aa_hash: Option<HashAlg>,
}

fn dg14_err(e: impl fmt::Display) -> AuthError {
    AuthError::Dg14(e.to_string())
}

fn curve_of(alg: &AlgorithmIdentifierOwned) -> Result<Curve, String> {
    if alg.oid != OID_EC_PUBLIC_KEY {
        return Err(format!("key type {}", alg.oid));
    }
    match alg
        .parameters
        .as_ref()
        .and_then(|p| p.decode_as::<ObjectIdentifier>().ok())
    {
        Some(c) => Curve::from_oid(&c).ok_or_else(|| format!("curve {c}")),
        None => Err("EC key with explicit domain parameters".into()),
    }
}

/// The hash of an AA signature algorithm OID (ecdsa-plain-* or X9.62 ecdsa-with-*).
pub fn aa_hash_from_oid(oid: &ObjectIdentifier) -> Option<HashAlg> {
    let arcs: Vec<u32> = oid.arcs().collect();
    let prefix: Vec<u32> = ObjectIdentifier::new(OID_ECDSA_PLAIN)
        .ok()?
        .arcs()
        .collect();
    match arcs.strip_prefix(prefix.as_slice()) {
        Some([1]) => Some(HashAlg::Sha1),
        Some([2]) => Some(HashAlg::Sha224),
        Some([3]) => Some(HashAlg::Sha256),
        Some([4]) => Some(HashAlg::Sha384),
        Some([5]) => Some(HashAlg::Sha512),
        Some(_) => None,
        None => HashAlg::from_oid(oid).ok(),
    }
}

/// Parses DG14 (tag 6E around a DER SET OF SecurityInfo). Unknown SecurityInfos are
/// skipped; the SET is read element by element (some chips do not sort it).
pub fn parse_dg14(bytes: &[u8]) -> Result<Dg14, AuthError> {
    let h = tlv::header(bytes).map_err(dg14_err)?;
    if h.tag != 0x6E {
        return Err(AuthError::Dg14(format!(
            "expected tag 6E, found {:X}",
            h.tag
        )));
    }
    if h.total_len() != bytes.len() {
        return Err(AuthError::Dg14("trailing bytes".into()));
    }
    let body = bytes
        .get(h.header_len..h.total_len())
        .ok_or(AuthError::Dg14("truncated".into()))?;
    let set = Any::from_der(body).map_err(dg14_err)?;
    if set.tag() != Tag::Set {
        return Err(AuthError::Dg14("SecurityInfos is not a SET".into()));
    }
    let mut r = der::SliceReader::new(set.value()).map_err(dg14_err)?;
    let mut out = Dg14::default();
    let ca_prefix: Vec<u32> = ObjectIdentifier::new(OID_CA)
        .map_err(dg14_err)?
        .arcs()
        .collect();
    while !der::Reader::is_finished(&r) {
        let si: SecurityInfo = der::Reader::decode(&mut r).map_err(dg14_err)?;
        let key_id = si
            .optional_data
            .as_ref()
            .and_then(|a| a.decode_as::<u32>().ok());
        if si.protocol == OID_PK_ECDH {
            let spki: SubjectPublicKeyInfoOwned = si.required_data.decode_as().map_err(dg14_err)?;
            match curve_of(&spki.algorithm) {
                Ok(curve) => {
                    let point = spki
                        .subject_public_key
                        .as_bytes()
                        .ok_or(AuthError::Dg14("public key bit string".into()))?
                        .to_vec();
                    curve.check_point(&point).map_err(|_| {
                        AuthError::Dg14(
                            "chip authentication key is not a point of its curve".into(),
                        )
                    })?;
                    out.ca_keys.push(ChipAuthKey {
                        key_id,
                        curve,
                        point,
                    });
                }
                Err(why) => out.unsupported.push(why),
            }
        } else if si.protocol == OID_PK_DH {
            out.unsupported.push("chip authentication with DH".into());
        } else if si.protocol == OID_AA_INFO {
            // ActiveAuthenticationInfo: version, signatureAlgorithm.
            let alg = si
                .optional_data
                .as_ref()
                .and_then(|a| a.decode_as::<ObjectIdentifier>().ok());
            out.aa_hash = alg.as_ref().and_then(aa_hash_from_oid);
        } else if si
            .protocol
            .arcs()
            .collect::<Vec<_>>()
            .starts_with(&ca_prefix)
        {
            let version = si.required_data.decode_as::<u32>().map_err(dg14_err)?;
            match ChipAuthInfo::from_oid(si.protocol, version, key_id) {
                Some(info) => out.ca_infos.push(info),
                None => out
                    .unsupported
                    .push(format!("chip authentication protocol {}", si.protocol)),
            }
        }
    }
    Ok(out)
}

impl Dg14 {
    /// The protocol and key to use: the strongest cipher whose key id matches a key.
    /// Without any ChipAuthenticationInfo, CA version 1 with 3DES is implied (Part 11, 9.2.5).
    pub fn choose(&self) -> Option<(ChipAuthInfo, &ChipAuthKey)> {
        if self.ca_infos.is_empty() {
            let key = self.ca_keys.first()?;
            return Some((ChipAuthInfo::ecdh(Cipher::Tdes, None), key));
        }
        let mut infos = self.ca_infos.clone();
        infos.sort_by_key(|i| std::cmp::Reverse(i.cipher.key_len()));
        infos.into_iter().find_map(|info| {
            let key = self
                .ca_keys
                .iter()
                .find(|k| info.key_id.is_none() || k.key_id == info.key_id)?;
            Some((info, key))
        })
    }
}

/// Parses DG15 (tag 6F around the AA public key's SubjectPublicKeyInfo).
pub fn parse_dg15(bytes: &[u8]) -> Result<SubjectPublicKeyInfoOwned, AuthError> {
    let e = |e: &dyn fmt::Display| AuthError::Dg15(e.to_string());
    let h = tlv::header(bytes).map_err(|x| e(&x))?;
    if h.tag != 0x6F {
        return Err(AuthError::Dg15(format!(
            "expected tag 6F, found {:X}",
            h.tag
        )));
    }
    if h.total_len() != bytes.len() {
        return Err(AuthError::Dg15("trailing bytes".into()));
    }
    let body = bytes
        .get(h.header_len..h.total_len())
        .ok_or(AuthError::Dg15("truncated".into()))?;
    SubjectPublicKeyInfoOwned::from_der(body).map_err(|x| e(&x))
}

fn key_id_bytes(id: u32) -> Vec<u8> {
    let b = id.to_be_bytes();
    let skip = b.iter().take(3).take_while(|x| **x == 0).count();
    b.get(skip..).unwrap_or(&b).to_vec()
}

/// MSE:Set KAT (3DES, CA version 1): `00 22 41 A6 {91 PK, [84 key id]}`.
pub fn mse_set_kat(pk: &[u8], key_id: Option<u32>) -> Result<Command, AuthError> {
    let mut data = tlv::encode(0x91, pk).map_err(|_| AuthError::Malformed("91"))?;
    if let Some(id) = key_id {
        data.extend(tlv::encode(0x84, &key_id_bytes(id)).map_err(|_| AuthError::Malformed("84"))?);
    }
    Ok(Command::new(0x00, 0x22, 0x41, 0xA6).with_data(data))
}

/// MSE:Set AT for CA (AES): `00 22 41 A4 {80 OID, [84 key id]}`, no Le.
pub fn mse_set_at(info: &ChipAuthInfo) -> Result<Command, AuthError> {
    let mut data =
        tlv::encode(0x80, info.oid.as_bytes()).map_err(|_| AuthError::Malformed("80"))?;
    if let Some(id) = info.key_id {
        data.extend(tlv::encode(0x84, &key_id_bytes(id)).map_err(|_| AuthError::Malformed("84"))?);
    }
    Ok(Command::new(0x00, 0x22, 0x41, 0xA4).with_data(data))
}

/// GENERAL AUTHENTICATE for CA: `7C {80 PK}`; the chip answers an empty `7C`.
pub fn general_authenticate(pk: &[u8]) -> Result<Command, AuthError> {
    let inner = tlv::encode(0x80, pk).map_err(|_| AuthError::Malformed("80"))?;
    let data = tlv::encode_constructed(0x7C, &inner).map_err(|_| AuthError::Malformed("7C"))?;
    Ok(Command::new(0x00, 0x86, 0x00, 0x00)
        .with_data(data)
        .with_le(256))
}

fn expect_ok(r: &crate::apdu::Response, step: &'static str) -> Result<(), AuthError> {
    if r.sw == SW_OK {
        Ok(())
    } else {
        Err(AuthError::Status { step, sw: r.sw })
    }
}

/// Chip Authentication with a PA-verified DG14: ephemeral ECDH with the chip's static
/// key, new SM keys (KDF of the shared x, SSC zero), then one protected SELECT that
/// must verify under the new keys. An SM failure at that point means the chip could not
/// compute the shared secret: it does not hold the DG14 private key (a clone).
pub fn chip_authenticate<T: ChipTransport>(
    reader: &mut Reader<T>,
    dg14: &Verified<Dg14>,
    random: &mut dyn FnMut(&mut [u8]),
) -> Result<(), AuthError> {
    let (info, key) = dg14.get().choose().ok_or_else(|| {
        AuthError::Unsupported(match dg14.get().unsupported.first() {
            Some(w) => w.clone(),
            None => "DG14 offers no usable chip authentication key".into(),
        })
    })?;
    let curve = key.curve;
    let map = |_| AuthError::Malformed("key agreement");
    let sk = curve.random_key(random).map_err(map)?;
    let pk = curve.mul(&sk, None).map_err(map)?;
    let shared = curve
        .x(&curve.mul(&sk, Some(&key.point)).map_err(map)?)
        .map_err(map)?;
    if info.cipher == Cipher::Tdes {
        let r = reader.transmit(&mse_set_kat(&pk, key.key_id.or(info.key_id))?)?;
        expect_ok(&r, "MSE:Set KAT")?;
    } else {
        let r = reader.transmit(&mse_set_at(&info)?)?;
        expect_ok(&r, "MSE:Set AT (CA)")?;
        let r = reader.transmit(&general_authenticate(&pk)?)?;
        expect_ok(&r, "GENERAL AUTHENTICATE (CA)")?;
        if tlv::parse_expect(&r.data, 0x7C).is_err() {
            return Err(AuthError::Malformed("GENERAL AUTHENTICATE (CA)"));
        }
    }
    let sm = pace::session(info.cipher, &shared).map_err(|_| AuthError::Malformed("session"))?;
    reader.set_secure_messaging(sm);
    match reader.select_file(fid::EF_COM) {
        Ok(()) => Ok(()),
        Err(ReaderError::Sm(
            SmError::BadMac
            | SmError::UnprotectedStatus(0x6987 | 0x6988)
            | SmError::Missing(_)
            | SmError::Crypto(_)
            | SmError::PaddingIndicator,
        )) => Err(AuthError::KeyMismatch("DG14")),
        Err(e) => Err(e.into()),
    }
}

/// The public key of Active Authentication with the hash its signature uses.
#[derive(Clone)]
pub struct AaKey {
    pub spki: SubjectPublicKeyInfoOwned,
    /// From DG14's ActiveAuthenticationInfo; SHA-256 when absent.
    pub hash: HashAlg,
}

impl fmt::Debug for AaKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AaKey({}, {:?})", self.spki.algorithm.oid, self.hash)
    }
}

/// Active Authentication with a PA-verified DG15: INTERNAL AUTHENTICATE with an 8-byte
/// random challenge; the chip's ECDSA signature over it must verify with the DG15 key.
pub fn active_authenticate<T: ChipTransport>(
    reader: &mut Reader<T>,
    key: &Verified<AaKey>,
    random: &mut dyn FnMut(&mut [u8]),
) -> Result<(), AuthError> {
    let key = key.get();
    if key.spki.algorithm.oid == OID_RSA {
        let public = iso9796_2::public_key(&key.spki)?;
        let mut challenge = [0u8; 8];
        random(&mut challenge);
        let r = reader.transmit(
            &Command::new(0x00, 0x88, 0x00, 0x00)
                .with_data(challenge.to_vec())
                .with_le(256),
        )?;
        expect_ok(&r, "INTERNAL AUTHENTICATE")?;
        return iso9796_2::verify(&public, &challenge, &r.data);
    }
    curve_of(&key.spki.algorithm).map_err(AuthError::Unsupported)?;
    let mut challenge = [0u8; 8];
    random(&mut challenge);
    let r = reader.transmit(
        &Command::new(0x00, 0x88, 0x00, 0x00)
            .with_data(challenge.to_vec())
            .with_le(256),
    )?;
    expect_ok(&r, "INTERNAL AUTHENTICATE")?;
    if r.data.is_empty() {
        return Err(AuthError::Malformed("INTERNAL AUTHENTICATE"));
    }
    let alg = AlgorithmIdentifierOwned {
        oid: OID_EC_PUBLIC_KEY,
        parameters: None,
    };
    let digest = AlgorithmIdentifierOwned {
        oid: key.hash.oid(),
        parameters: None,
    };
    match pa::verify_signature(&key.spki, &alg, Some(&digest), &challenge, &r.data) {
        Ok(()) => Ok(()),
        Err(pa::PaError::SodSignature) => Err(AuthError::KeyMismatch("DG15")),
        Err(e) => Err(AuthError::Unsupported(e.to_string())),
    }
}

/// ISO/IEC 9796-2 digital signature scheme 1 (partial message recovery), the RSA
/// signature of Active Authentication (ICAO 9303 Part 11, 6.1). No RustCrypto crate
/// has it; it is a padding construction on top of `rsa`'s raw RSA primitive
/// (`rsa::hazmat`), like padding method 2 on `des`/`aes` in `crypto`:
/// F = 6A ‖ M1 ‖ H(M1 ‖ M2) ‖ trailer, the signature being F^d mod n; M1 is the
/// chip's nonce (recovered by the terminal), M2 the terminal's challenge. Trailer BC
/// means SHA-1; `hh CC` names the hash (ISO/IEC 10118-3 identifiers 33 SHA-1,
/// 34 SHA-256, 35 SHA-512, 36 SHA-384, 38 SHA-224).
pub mod iso9796_2 {
    use super::*;
    use crypto_bigint::BoxedUint;
    use rsa::traits::PublicKeyParts;
    use rsa::{RsaPrivateKey, RsaPublicKey};

    /// Header of F with partial message recovery ('01', more data, no padding, 'A').
    const HEADER_PARTIAL: u8 = 0x6A;
    const TRAILER_SHA1: u8 = 0xBC;
    const TRAILER_EXPLICIT: u8 = 0xCC;

    fn hash_id(h: HashAlg) -> u8 {
        match h {
            HashAlg::Sha1 => 0x33,
            HashAlg::Sha256 => 0x34,
            HashAlg::Sha512 => 0x35,
            HashAlg::Sha384 => 0x36,
            HashAlg::Sha224 => 0x38,
        }
    }

    fn hash_of_id(id: u8) -> Option<HashAlg> {
        [
            HashAlg::Sha1,
            HashAlg::Sha224,
            HashAlg::Sha256,
            HashAlg::Sha384,
            HashAlg::Sha512,
        ]
        .into_iter()
        .find(|h| hash_id(*h) == id)
    }

    /// The RSA public key of a DG15 SubjectPublicKeyInfo.
    pub fn public_key(spki: &SubjectPublicKeyInfoOwned) -> Result<RsaPublicKey, AuthError> {
        use rsa::pkcs1::DecodeRsaPublicKey;
        RsaPublicKey::from_pkcs1_der(spki.subject_public_key.raw_bytes())
            .map_err(|e| AuthError::Dg15(format!("RSA key: {e}")))
    }

    /// Byte length of F: the modulus length in bytes, when the modulus is a whole
    /// number of bytes (1024, 1536, 2048 … bits: every AA key seen); other sizes
    /// would need the leading-bit handling of ISO/IEC 9796-2 and are refused.
    fn f_len(n_bits: u32) -> Result<usize, AuthError> {
        if !n_bits.is_multiple_of(8) || n_bits < 512 {
            return Err(AuthError::Unsupported(format!(
                "RSA active authentication with a {n_bits}-bit modulus"
            )));
        }
        Ok(n_bits as usize / 8)
    }

    /// Verifies the chip's signature over the challenge `m2`.
    pub fn verify(key: &RsaPublicKey, m2: &[u8], signature: &[u8]) -> Result<(), AuthError> {
        let n_bits = key.n_bits_precision();
        let len = f_len(key.n().bits())?;
        let mismatch = || AuthError::KeyMismatch("DG15");
        if signature.len() != len {
            return Err(AuthError::Malformed("INTERNAL AUTHENTICATE"));
        }
        let s = BoxedUint::from_be_slice(signature, n_bits).map_err(|_| mismatch())?;
        if s >= *key.n().as_ref() {
            return Err(mismatch());
        }
        let f = rsa::hazmat::rsa_encrypt(key, &s).map_err(|_| mismatch())?;
        let f = f.to_be_bytes();
        let f = f.get(f.len().saturating_sub(len)..).ok_or_else(mismatch)?;
        if f.first() != Some(&HEADER_PARTIAL) {
            return Err(mismatch());
        }
        let (hash, trailer_len) = match f.last() {
            Some(&TRAILER_SHA1) => (HashAlg::Sha1, 1),
            Some(&TRAILER_EXPLICIT) => {
                let id = f
                    .len()
                    .checked_sub(2)
                    .and_then(|i| f.get(i))
                    .ok_or_else(mismatch)?;
                (hash_of_id(*id).ok_or_else(mismatch)?, 2)
            }
            _ => return Err(mismatch()),
        };
        let h_len = hash.digest(&[]).len();
        let d_start = len
            .checked_sub(trailer_len + h_len)
            .filter(|d| *d >= 1)
            .ok_or_else(mismatch)?;
        let m1 = f.get(1..d_start).ok_or_else(mismatch)?;
        let d = f.get(d_start..d_start + h_len).ok_or_else(mismatch)?;
        let want = hash.digest(&[m1, m2].concat());
        if crate::crypto::ct_eq(d, &want) {
            Ok(())
        } else {
            Err(mismatch())
        }
    }

    /// The chip side: signs `m2` with a fresh nonce M1 from `random` (the simulator).
    pub fn sign(
        key: &RsaPrivateKey,
        hash: HashAlg,
        m2: &[u8],
        random: &mut dyn FnMut(&mut [u8]),
    ) -> Result<Vec<u8>, AuthError> {
        let len = f_len(key.n().bits())?;
        let h_len = hash.digest(&[]).len();
        let trailer: &[u8] = match hash {
            HashAlg::Sha1 => &[TRAILER_SHA1],
            h => &[hash_id(h), TRAILER_EXPLICIT],
        };
        let m1_len = len
            .checked_sub(1 + h_len + trailer.len())
            .ok_or(AuthError::Unsupported(
                "RSA key too short for the hash".into(),
            ))?;
        let mut m1 = vec![0u8; m1_len];
        random(&mut m1);
        let d = hash.digest(&[&m1[..], m2].concat());
        let f = [&[HEADER_PARTIAL][..], &m1, &d, trailer].concat();
        let f = BoxedUint::from_be_slice(&f, key.n_bits_precision())
            .map_err(|_| AuthError::Malformed("ISO/IEC 9796-2 representative"))?;
        // Blinded with OS randomness (the private operation of a real chip).
        let s = rsa::hazmat::rsa_decrypt_and_check(key, Some(&mut getrandom::SysRng), &f)
            .map_err(|e| AuthError::Unsupported(format!("RSA: {e}")))?;
        let s = s.to_be_bytes();
        Ok(s.get(s.len().saturating_sub(len)..).unwrap_or(&s).to_vec())
    }
}

/// Encoders for the chip simulator and tests.
pub mod build {
    use super::*;

    fn security_info(
        protocol: ObjectIdentifier,
        required: Any,
        optional: Option<Any>,
    ) -> Result<Vec<u8>, der::Error> {
        SecurityInfo {
            protocol,
            required_data: required,
            optional_data: optional,
        }
        .to_der()
    }

    /// An EC SubjectPublicKeyInfo on a named curve from an uncompressed point.
    pub fn ec_spki(curve: Curve, point: &[u8]) -> Result<SubjectPublicKeyInfoOwned, der::Error> {
        let c = curve.oid();
        Ok(SubjectPublicKeyInfoOwned {
            algorithm: AlgorithmIdentifierOwned {
                oid: OID_EC_PUBLIC_KEY,
                parameters: Some(Any::encode_from(&c)?),
            },
            subject_public_key: BitString::from_bytes(point)?,
        })
    }

    /// DG14 with a chip authentication key (and its ChipAuthenticationInfo) and/or an
    /// ActiveAuthenticationInfo naming ecdsa-plain-SHA256.
    pub fn dg14(
        ca: Option<(&ChipAuthInfo, &ChipAuthKey)>,
        aa_ecdsa_sha256: bool,
    ) -> Result<Vec<u8>, AuthError> {
        let e = |x: der::Error| AuthError::Dg14(x.to_string());
        let mut body = Vec::new();
        if let Some((info, key)) = ca {
            let spki = ec_spki(key.curve, &key.point).map_err(e)?;
            body.extend(
                security_info(
                    OID_PK_ECDH,
                    Any::encode_from(&spki).map_err(e)?,
                    key.key_id
                        .map(|k| Any::encode_from(&k))
                        .transpose()
                        .map_err(e)?,
                )
                .map_err(e)?,
            );
            body.extend(
                security_info(
                    info.oid,
                    Any::encode_from(&info.version).map_err(e)?,
                    info.key_id
                        .map(|k| Any::encode_from(&k))
                        .transpose()
                        .map_err(e)?,
                )
                .map_err(e)?,
            );
        }
        if aa_ecdsa_sha256 {
            let alg = ObjectIdentifier::new(&format!("{OID_ECDSA_PLAIN}.3"))
                .map_err(|x| AuthError::Dg14(x.to_string()))?;
            body.extend(
                security_info(
                    OID_AA_INFO,
                    Any::encode_from(&1u32).map_err(e)?,
                    Some(Any::encode_from(&alg).map_err(e)?),
                )
                .map_err(e)?,
            );
        }
        let set = Any::new(Tag::Set, body).map_err(e)?.to_der().map_err(e)?;
        tlv::encode_constructed(0x6E, &set).map_err(|x| AuthError::Dg14(x.to_string()))
    }

    /// DG15 around a SubjectPublicKeyInfo.
    pub fn dg15(spki: &SubjectPublicKeyInfoOwned) -> Result<Vec<u8>, AuthError> {
        let der = spki.to_der().map_err(|x| AuthError::Dg15(x.to_string()))?;
        tlv::encode_constructed(0x6F, &der).map_err(|x| AuthError::Dg15(x.to_string()))
    }
}

/// Card side of CA (the chip simulator): the new SM session from the terminal's
/// ephemeral key and the chip's static private key.
pub mod card {
    use super::*;
    use crate::sm::SecureMessaging;

    pub fn key_agreement(
        cipher: Cipher,
        curve: Curve,
        sk: &[u8],
        terminal_pk: &[u8],
    ) -> Result<SecureMessaging, AuthError> {
        let map = |_| AuthError::Malformed("terminal key");
        let shared = curve
            .x(&curve.mul(sk, Some(terminal_pk)).map_err(map)?)
            .map_err(map)?;
        pace::session(cipher, &shared).map_err(|_| AuthError::Malformed("session"))
    }

    /// The terminal's key from GENERAL AUTHENTICATE data (`7C {80 PK}`).
    pub fn ga_public_key(data: &[u8]) -> Result<Vec<u8>, AuthError> {
        pace::dynamic_data(data, 0x80, "CA public key").map_err(|_| AuthError::Malformed("7C"))
    }

    /// The terminal's key from MSE:Set KAT data (`91 PK`).
    pub fn kat_public_key(data: &[u8]) -> Result<Vec<u8>, AuthError> {
        let (t, _) = tlv::parse_one(data).map_err(|_| AuthError::Malformed("91"))?;
        if tlv::tag_of(&t) != 0x91 {
            return Err(AuthError::Malformed("91"));
        }
        tlv::primitive(&t)
            .map(<[u8]>::to_vec)
            .ok_or(AuthError::Malformed("91"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(curve: Curve, seed: u8) -> (Vec<u8>, Vec<u8>) {
        let sk = vec![seed; curve.field_len()];
        let pk = curve.mul(&sk, None).unwrap();
        (sk, pk)
    }

    #[test]
    fn dg14_round_trip_and_choice() {
        let (_, pk) = key(Curve::P256, 7);
        let info = ChipAuthInfo::ecdh(Cipher::Aes128, Some(1));
        assert_eq!(info.oid.to_string(), "0.4.0.127.0.7.2.2.3.2.2");
        let k = ChipAuthKey {
            key_id: Some(1),
            curve: Curve::P256,
            point: pk,
        };
        let b = build::dg14(Some((&info, &k)), true).unwrap();
        let d = parse_dg14(&b).unwrap();
        assert_eq!(d.ca_infos, vec![info.clone()]);
        assert_eq!(d.ca_keys, vec![k.clone()]);
        assert_eq!(d.aa_hash, Some(HashAlg::Sha256));
        let (i, kk) = d.choose().unwrap();
        assert_eq!((&i, kk), (&info, &k));
        assert_eq!(format!("{kk:?}"), "ChipAuthKey(P256, key id Some(1))");
        // No ChipAuthenticationInfo: 3DES is implied.
        let d = Dg14 {
            ca_keys: vec![k],
            ..Dg14::default()
        };
        assert_eq!(d.choose().unwrap().0.cipher, Cipher::Tdes);
        assert!(Dg14::default().choose().is_none());
    }

    #[test]
    fn dg14_and_dg15_rejections_are_errors_not_panics() {
        for bad in [
            &[][..],
            &[0x6E, 0x00],
            &[0x6F, 0x02, 0x31, 0x00],
            &[0x6E, 0x02, 0x30, 0x00],
            &[0x6E, 0x04, 0x31, 0x02, 0x30, 0x00],
            &[0x6E, 0x03, 0x31, 0x00],
        ] {
            assert!(parse_dg14(bad).is_err(), "{bad:02X?}");
            assert!(parse_dg15(bad).is_err());
        }
        assert_eq!(
            parse_dg14(&[0x6E, 0x02, 0x31, 0x00]).unwrap(),
            Dg14::default()
        );
    }

    #[test]
    fn commands_are_encoded_as_specified() {
        use crate::crypto::to_hex;
        let info = ChipAuthInfo::ecdh(Cipher::Aes128, None);
        assert_eq!(
            to_hex(&mse_set_at(&info).unwrap().to_bytes().unwrap()),
            "002241A40C800A04007F00070202030202"
        );
        let c = mse_set_kat(&[4, 1, 2], Some(0x0102)).unwrap();
        assert_eq!(
            to_hex(&c.to_bytes().unwrap()),
            "002241A609910304010284020102"
        );
        assert_eq!(
            to_hex(&general_authenticate(&[4, 9]).unwrap().to_bytes().unwrap()),
            "00860000067C048002040900"
        );
    }

    #[test]
    fn both_sides_agree_on_the_session() {
        for (curve, cipher) in [
            (Curve::P256, Cipher::Aes128),
            (Curve::P384, Cipher::Aes256),
            (Curve::P256, Cipher::Tdes),
        ] {
            let (sk_chip, pk_chip) = key(curve, 3);
            let (sk_term, pk_term) = key(curve, 5);
            let mut term = pace::session(
                cipher,
                &curve
                    .x(&curve.mul(&sk_term, Some(&pk_chip)).unwrap())
                    .unwrap(),
            )
            .unwrap();
            let mut chip = card::key_agreement(cipher, curve, &sk_chip, &pk_term).unwrap();
            let cmd = Command::new(0, 0xA4, 2, 0x0C).with_data(vec![1, 0x1E]);
            let wire = term.protect(&cmd).unwrap().to_bytes().unwrap();
            assert_eq!(chip.unprotect_command(&wire).unwrap(), cmd);
        }
    }

    /// ISO/IEC 9796-2 scheme 1 round trips (SHA-1 trailer BC, SHA-256 trailer 34CC);
    /// another challenge, another key or a changed bit fails as a key mismatch.
    #[test]
    fn iso9796_2_sign_and_verify() {
        use rsa::pkcs8::DecodePrivateKey;
        let pem = include_str!("../../../simulators/chip/testdata/rsa-aa.pem");
        let other = include_str!("../../../simulators/chip/testdata/rsa-aa-clone.pem");
        let key = rsa::RsaPrivateKey::from_pkcs8_pem(pem).unwrap();
        let other = rsa::RsaPrivateKey::from_pkcs8_pem(other).unwrap();
        let public = key.to_public_key();
        let mut n = 0u8;
        let mut rng = |b: &mut [u8]| {
            n = n.wrapping_add(1);
            b.fill(n);
        };
        let challenge = [1, 2, 3, 4, 5, 6, 7, 8];
        for hash in [HashAlg::Sha1, HashAlg::Sha256] {
            let sig = iso9796_2::sign(&key, hash, &challenge, &mut rng).unwrap();
            assert_eq!(sig.len(), 128);
            assert_eq!(iso9796_2::verify(&public, &challenge, &sig), Ok(()));
            let mismatch = Err(AuthError::KeyMismatch("DG15"));
            assert_eq!(iso9796_2::verify(&public, &[0; 8], &sig), mismatch);
            let forged = iso9796_2::sign(&other, hash, &challenge, &mut rng).unwrap();
            assert_eq!(iso9796_2::verify(&public, &challenge, &forged), mismatch);
            let mut flipped = sig.clone();
            flipped[60] ^= 0x01;
            assert_eq!(iso9796_2::verify(&public, &challenge, &flipped), mismatch);
            assert_eq!(
                iso9796_2::verify(&public, &challenge, &sig[1..]),
                Err(AuthError::Malformed("INTERNAL AUTHENTICATE"))
            );
            assert_eq!(
                iso9796_2::verify(&public, &challenge, &[0xFF; 128]),
                mismatch
            );
        }
    }
}
