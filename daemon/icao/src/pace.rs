//! PACE (ICAO 9303 Part 11, section 4.4) with Generic Mapping on elliptic curves:
//! EF.CardAccess (`PACEInfo`), MSE:Set AT, the four GENERAL AUTHENTICATE steps
//! (encrypted nonce, mapping, key agreement, mutual authentication tokens), key
//! derivation and the secure messaging session (AES: 16-byte SSC starting at zero;
//! 3DES: 8-byte SSC).
//!
//! Curves: NIST P-256 (parameter id 12) and P-384 (15) through RustCrypto `p256`/`p384`,
//! brainpoolP256r1 (13) and brainpoolP384r1 (16) through `bp256`/`bp384` (same
//! `elliptic-curve` 0.14 generation). brainpoolP512r1 (17) is refused: no well-kept
//! crate of this generation has its arithmetic. DH and Integrated Mapping / CAM are
//! recognised and refused likewise.
//!
//! The card side ([`card`]) is used by the chip simulator; it shares every primitive.

use crate::apdu::{Command, Response, SW_OK};
use crate::bac;
use crate::crypto::{self, CryptoError};
use crate::sm::SecureMessaging;
use crate::tlv;
use const_oid::ObjectIdentifier;
use der::asn1::Any;
use der::{Decode, Encode, Reader, Sequence, Tag, Tagged};
use sha1::{Digest, Sha1};
use sha2::Sha256;
use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum PaceError {
    #[error("EF.CardAccess: {0}")]
    CardAccess(String),
    #[error("no supported PACE protocol in EF.CardAccess")]
    NoSupportedProtocol,
    #[error("PACE protocol {0} is not supported")]
    Unsupported(String),
    #[error("{step} refused with status {sw:04X}")]
    Status { step: &'static str, sw: u16 },
    #[error("{0}: malformed chip answer")]
    Malformed(&'static str),
    #[error("chip sent an invalid public key")]
    BadPoint,
    #[error("chip authentication token does not verify")]
    BadToken,
    #[error("chip reused the terminal's ephemeral public key")]
    ReusedKey,
    #[error("crypto: {0}")]
    Crypto(#[from] CryptoError),
    #[error("transport: {0}")]
    Transport(String),
}

/// id-PACE (BSI TR-03110 / ICAO 9303 Part 11, 9.2.3).
pub const OID_PACE: &str = "0.4.0.127.0.7.2.2.4";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mapping {
    Generic,
    Integrated,
    ChipAuthentication,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agreement {
    Dh,
    Ecdh,
}

/// The symmetric suite of a PACE protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cipher {
    Tdes,
    Aes128,
    Aes192,
    Aes256,
}

impl Cipher {
    pub fn key_len(self) -> usize {
        match self {
            Cipher::Tdes | Cipher::Aes128 => 16,
            Cipher::Aes192 => 24,
            Cipher::Aes256 => 32,
        }
    }

    pub fn block(self) -> usize {
        match self {
            Cipher::Tdes => 8,
            _ => 16,
        }
    }
}

const OID_CURVE_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_CURVE_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const OID_CURVE_BP256R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.36.3.3.2.8.1.1.7");
const OID_CURVE_BP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.36.3.3.2.8.1.1.11");

/// Standardized domain parameters (Part 11, Table 12) this code can compute on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    P256,
    P384,
    BrainpoolP256r1,
    BrainpoolP384r1,
}

impl Curve {
    pub fn from_parameter_id(id: u32) -> Option<Curve> {
        match id {
            12 => Some(Curve::P256),
            13 => Some(Curve::BrainpoolP256r1),
            15 => Some(Curve::P384),
            16 => Some(Curve::BrainpoolP384r1),
            _ => None,
        }
    }

    /// The named-curve OID (RFC 5480 / RFC 5639) of an EC key on this curve.
    pub fn oid(self) -> ObjectIdentifier {
        match self {
            Curve::P256 => OID_CURVE_P256,
            Curve::P384 => OID_CURVE_P384,
            Curve::BrainpoolP256r1 => OID_CURVE_BP256R1,
            Curve::BrainpoolP384r1 => OID_CURVE_BP384R1,
        }
    }

    /// The curve of a named-curve OID, when this code can compute on it.
    pub fn from_oid(oid: &ObjectIdentifier) -> Option<Curve> {
        [
            Curve::P256,
            Curve::P384,
            Curve::BrainpoolP256r1,
            Curve::BrainpoolP384r1,
        ]
        .into_iter()
        .find(|c| c.oid() == *oid)
    }

    pub fn parameter_id(self) -> u32 {
        match self {
            Curve::P256 => 12,
            Curve::BrainpoolP256r1 => 13,
            Curve::P384 => 15,
            Curve::BrainpoolP384r1 => 16,
        }
    }
}

/// One PACEInfo of EF.CardAccess.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaceInfo {
    pub oid: ObjectIdentifier,
    pub version: u32,
    pub parameter_id: Option<u32>,
    pub agreement: Agreement,
    pub mapping: Mapping,
    pub cipher: Cipher,
}

impl PaceInfo {
    /// A PACEInfo from its protocol OID, if it is one.
    pub fn from_oid(
        oid: ObjectIdentifier,
        version: u32,
        parameter_id: Option<u32>,
    ) -> Option<PaceInfo> {
        let arcs: Vec<u32> = oid.arcs().collect();
        let prefix: Vec<u32> = ObjectIdentifier::new(OID_PACE).ok()?.arcs().collect();
        let rest = arcs.strip_prefix(prefix.as_slice())?;
        let (agreement, mapping) = match rest.first()? {
            1 => (Agreement::Dh, Mapping::Generic),
            2 => (Agreement::Ecdh, Mapping::Generic),
            3 => (Agreement::Dh, Mapping::Integrated),
            4 => (Agreement::Ecdh, Mapping::Integrated),
            6 => (Agreement::Ecdh, Mapping::ChipAuthentication),
            _ => return None,
        };
        let cipher = match rest.get(1)? {
            1 => Cipher::Tdes,
            2 => Cipher::Aes128,
            3 => Cipher::Aes192,
            4 => Cipher::Aes256,
            _ => return None,
        };
        (rest.len() == 2).then_some(PaceInfo {
            oid,
            version,
            parameter_id,
            agreement,
            mapping,
            cipher,
        })
    }

    /// ECDH Generic Mapping on P-256 with AES-128, as the simulator's chips offer it.
    pub fn ecdh_gm(cipher: Cipher, curve: Curve) -> PaceInfo {
        let suffix = match cipher {
            Cipher::Tdes => 1,
            Cipher::Aes128 => 2,
            Cipher::Aes192 => 3,
            Cipher::Aes256 => 4,
        };
        let oid = ObjectIdentifier::new(&format!("{OID_PACE}.2.{suffix}"))
            .unwrap_or(ObjectIdentifier::new_unwrap("0.4.0.127.0.7.2.2.4.2.2"));
        PaceInfo {
            oid,
            version: 2,
            parameter_id: Some(curve.parameter_id()),
            agreement: Agreement::Ecdh,
            mapping: Mapping::Generic,
            cipher,
        }
    }

    /// The curve, when this implementation supports the protocol.
    pub fn supported_curve(&self) -> Result<Curve, PaceError> {
        if self.agreement != Agreement::Ecdh || self.mapping != Mapping::Generic {
            return Err(PaceError::Unsupported(self.oid.to_string()));
        }
        self.parameter_id
            .and_then(Curve::from_parameter_id)
            .ok_or_else(|| {
                PaceError::Unsupported(format!(
                    "{} with domain parameters {:?}",
                    self.oid, self.parameter_id
                ))
            })
    }

    /// DER of a one-entry EF.CardAccess (SET OF SecurityInfo) holding this PACEInfo.
    pub fn to_card_access(infos: &[PaceInfo]) -> Result<Vec<u8>, PaceError> {
        let mut body = Vec::new();
        for i in infos {
            let si = SecurityInfo {
                protocol: i.oid,
                required_data: Any::encode_from(&i.version).map_err(der_err)?,
                optional_data: i
                    .parameter_id
                    .map(|p| Any::encode_from(&p))
                    .transpose()
                    .map_err(der_err)?,
            };
            body.extend(si.to_der().map_err(der_err)?);
        }
        let mut out = vec![0x31];
        out.extend(
            der::Length::try_from(body.len())
                .map_err(der_err)?
                .to_der()
                .map_err(der_err)?,
        );
        out.extend(body);
        Ok(out)
    }
}

fn der_err(e: der::Error) -> PaceError {
    PaceError::CardAccess(e.to_string())
}

/// SecurityInfo ::= SEQUENCE { protocol OID, requiredData ANY, optionalData ANY OPTIONAL }
#[derive(Sequence)]
pub(crate) struct SecurityInfo {
    pub(crate) protocol: ObjectIdentifier,
    pub(crate) required_data: Any,
    pub(crate) optional_data: Option<Any>,
}

/// Parses EF.CardAccess and returns its PACEInfos (other SecurityInfos are skipped).
/// The SET is read element by element, so chips that do not sort it are accepted.
pub fn parse_card_access(bytes: &[u8]) -> Result<Vec<PaceInfo>, PaceError> {
    let set = Any::from_der(bytes).map_err(der_err)?;
    if set.tag() != Tag::Set {
        return Err(PaceError::CardAccess("not a SET".into()));
    }
    let mut r = der::SliceReader::new(set.value()).map_err(der_err)?;
    let mut out = Vec::new();
    while !r.is_finished() {
        let si: SecurityInfo = r.decode().map_err(der_err)?;
        let Ok(version) = si.required_data.decode_as::<u32>() else {
            continue;
        };
        let parameter_id = si.optional_data.and_then(|a| a.decode_as::<u32>().ok());
        if let Some(p) = PaceInfo::from_oid(si.protocol, version, parameter_id) {
            out.push(p);
        }
    }
    Ok(out)
}

/// The PACEInfo to use: ECDH-GM on a supported curve, strongest cipher first.
pub fn choose(infos: &[PaceInfo]) -> Option<&PaceInfo> {
    infos
        .iter()
        .filter(|i| i.supported_curve().is_ok())
        .max_by_key(|i| i.cipher.key_len())
}

/// π for an MRZ password: SHA-1 of the MRZ information (Part 11, 9.7.3).
pub fn mrz_password(mrz_information: &str) -> [u8; 20] {
    Sha1::digest(mrz_information.as_bytes()).into()
}

/// KDF (Part 11, 9.7.1): H(K || counter), SHA-1 for 3DES and AES-128, SHA-256 otherwise.
pub fn kdf(cipher: Cipher, secret: &[u8], counter: u32) -> Vec<u8> {
    match cipher {
        Cipher::Tdes => bac::derive_3des_key(secret, counter).to_vec(),
        Cipher::Aes128 => {
            let mut h = Sha1::new();
            h.update(secret);
            h.update(counter.to_be_bytes());
            h.finalize().get(..16).unwrap_or_default().to_vec()
        }
        Cipher::Aes192 | Cipher::Aes256 => {
            let mut h = Sha256::new();
            h.update(secret);
            h.update(counter.to_be_bytes());
            h.finalize()
                .get(..cipher.key_len())
                .unwrap_or_default()
                .to_vec()
        }
    }
}

/// Counter of Kπ.
pub const KDF_PI: u32 = 3;

fn tdes_key(k: &[u8]) -> Result<[u8; 16], CryptoError> {
    k.try_into().map_err(|_| CryptoError::KeyLength(k.len()))
}

/// Decrypts the chip's nonce z with Kπ (CBC, zero IV).
pub fn decrypt_nonce(cipher: Cipher, k_pi: &[u8], z: &[u8]) -> Result<Vec<u8>, CryptoError> {
    match cipher {
        Cipher::Tdes => crypto::tdes_cbc_decrypt(&tdes_key(k_pi)?, &[0; 8], z),
        _ => crypto::aes_cbc_decrypt(k_pi, &[0; 16], z),
    }
}

/// Encrypts a nonce s with Kπ (card side).
pub fn encrypt_nonce(cipher: Cipher, k_pi: &[u8], s: &[u8]) -> Result<Vec<u8>, CryptoError> {
    match cipher {
        Cipher::Tdes => crypto::tdes_cbc_encrypt(&tdes_key(k_pi)?, &[0; 8], s),
        _ => crypto::aes_cbc_encrypt(k_pi, &[0; 16], s),
    }
}

/// The public key data object the tokens are computed over:
/// `7F49 { 06 <protocol OID>, 86 <uncompressed point> }`.
pub fn public_key_object(oid: &ObjectIdentifier, point: &[u8]) -> Result<Vec<u8>, PaceError> {
    let mut inner = tlv::encode(0x06, oid.as_bytes()).map_err(|_| PaceError::Malformed("OID"))?;
    inner.extend(tlv::encode(0x86, point).map_err(|_| PaceError::Malformed("point"))?);
    tlv::encode_constructed(0x7F49, &inner).map_err(|_| PaceError::Malformed("7F49"))
}

/// Authentication token: MAC(KSmac, 7F49{OID, PK}) — AES-CMAC/8 or the retail MAC.
pub fn token(
    cipher: Cipher,
    ks_mac: &[u8],
    oid: &ObjectIdentifier,
    other_public: &[u8],
) -> Result<[u8; 8], PaceError> {
    let data = public_key_object(oid, other_public)?;
    Ok(match cipher {
        Cipher::Tdes => crypto::retail_mac(&tdes_key(ks_mac)?, &crypto::pad(&data, 8))?,
        _ => crypto::aes_cmac8(ks_mac, &data)?,
    })
}

/// The SM session PACE establishes: SSC starts at zero.
pub fn session(cipher: Cipher, shared_x: &[u8]) -> Result<SecureMessaging, PaceError> {
    let enc = kdf(cipher, shared_x, bac::KDF_ENC);
    let mac = kdf(cipher, shared_x, bac::KDF_MAC);
    Ok(match cipher {
        Cipher::Tdes => SecureMessaging::tdes(tdes_key(&enc)?, tdes_key(&mac)?, [0; 8]),
        _ => SecureMessaging::aes(&enc, &mac, [0; 16])
            .map_err(|_| CryptoError::KeyLength(enc.len()))?,
    })
}

/// MSE:Set AT for PACE with the MRZ (P1P2 C1A4, no Le: some chips refuse one).
pub fn mse_set_at(info: &PaceInfo, send_parameter_id: bool) -> Result<Command, PaceError> {
    let mut data =
        tlv::encode(0x80, info.oid.as_bytes()).map_err(|_| PaceError::Malformed("OID"))?;
    data.extend([0x83, 0x01, 0x01]);
    if let (true, Some(id)) = (send_parameter_id, info.parameter_id) {
        let id =
            u8::try_from(id).map_err(|_| PaceError::Unsupported(format!("parameter id {id}")))?;
        data.extend([0x84, 0x01, id]);
    }
    Ok(Command::new(0x00, 0x22, 0xC1, 0xA4).with_data(data))
}

/// GENERAL AUTHENTICATE with dynamic authentication data `7C { tag value }` (or an
/// empty 7C); `last` clears the command chaining bit.
pub fn general_authenticate(
    tag_value: Option<(u32, &[u8])>,
    last: bool,
) -> Result<Command, PaceError> {
    let inner = match tag_value {
        Some((t, v)) => tlv::encode(t, v).map_err(|_| PaceError::Malformed("GA data"))?,
        None => Vec::new(),
    };
    let data = tlv::encode_constructed(0x7C, &inner).map_err(|_| PaceError::Malformed("7C"))?;
    Ok(
        Command::new(if last { 0x00 } else { 0x10 }, 0x86, 0x00, 0x00)
            .with_data(data)
            .with_le(256),
    )
}

/// The value of `tag` inside a `7C` dynamic authentication data object.
pub fn dynamic_data(bytes: &[u8], tag: u32, step: &'static str) -> Result<Vec<u8>, PaceError> {
    let t = tlv::parse_expect(bytes, 0x7C).map_err(|_| PaceError::Malformed(step))?;
    tlv::child(&t, tag)
        .and_then(tlv::primitive)
        .map(<[u8]>::to_vec)
        .ok_or(PaceError::Malformed(step))
}

/// The same Generic Mapping / ECDH steps for every curve crate of the RustCrypto
/// generation in use (they share `elliptic-curve` 0.14's traits).
macro_rules! curve_ops {
    ($name:ident, $c:path, $len:expr) => {
        mod $name {
            use super::PaceError;
            use elliptic_curve::Field;
            use elliptic_curve::group::Group;
            use elliptic_curve::ops::Reduce;
            use elliptic_curve::point::AffineCoordinates;
            use elliptic_curve::sec1::{FromSec1Point, ToSec1Point};
            use $c::{AffinePoint, FieldBytes, ProjectivePoint, Scalar, Sec1Point};

            pub const LEN: usize = $len;

            pub fn scalar(b: &[u8]) -> Result<Scalar, PaceError> {
                if b.len() > LEN {
                    return Err(PaceError::Malformed("scalar"));
                }
                let mut fb = FieldBytes::default();
                fb[LEN - b.len()..].copy_from_slice(b);
                Ok(<Scalar as Reduce<FieldBytes>>::reduce(&fb))
            }

            pub fn point(b: &[u8]) -> Result<ProjectivePoint, PaceError> {
                if b.len() != 1 + 2 * LEN || b.first() != Some(&0x04) {
                    return Err(PaceError::BadPoint);
                }
                let ep = Sec1Point::from_bytes(b).map_err(|_| PaceError::BadPoint)?;
                let a: Option<AffinePoint> = AffinePoint::from_sec1_point(&ep).into();
                let p = ProjectivePoint::from(a.ok_or(PaceError::BadPoint)?);
                if bool::from(p.is_identity()) {
                    return Err(PaceError::BadPoint);
                }
                Ok(p)
            }

            pub fn encode(p: &ProjectivePoint) -> Result<Vec<u8>, PaceError> {
                if bool::from(p.is_identity()) {
                    return Err(PaceError::BadPoint);
                }
                Ok(p.to_affine().to_sec1_point(false).as_bytes().to_vec())
            }

            pub fn generator(g: Option<&[u8]>) -> Result<ProjectivePoint, PaceError> {
                match g {
                    None => Ok(ProjectivePoint::generator()),
                    Some(g) => point(g),
                }
            }

            pub fn mul(sk: &[u8], p: Option<&[u8]>) -> Result<Vec<u8>, PaceError> {
                let k = scalar(sk)?;
                if bool::from(Field::is_zero(&k)) {
                    return Err(PaceError::Malformed("zero scalar"));
                }
                encode(&(generator(p)? * k))
            }

            pub fn map(s: &[u8], h: &[u8]) -> Result<Vec<u8>, PaceError> {
                encode(&(ProjectivePoint::generator() * scalar(s)? + point(h)?))
            }

            pub fn x(p: &[u8]) -> Result<Vec<u8>, PaceError> {
                Ok(point(p)?.to_affine().x().to_vec())
            }
        }
    };
}

curve_ops!(ops_p256, p256, 32);
curve_ops!(ops_p384, p384, 48);
curve_ops!(ops_bp256, bp256::r1, 32);
curve_ops!(ops_bp384, bp384::r1, 48);

/// Dispatches one `curve_ops` function on the curve.
macro_rules! on_curve {
    ($curve:expr, $f:ident ( $($arg:expr),* )) => {
        match $curve {
            Curve::P256 => ops_p256::$f($($arg),*),
            Curve::P384 => ops_p384::$f($($arg),*),
            Curve::BrainpoolP256r1 => ops_bp256::$f($($arg),*),
            Curve::BrainpoolP384r1 => ops_bp384::$f($($arg),*),
        }
    };
}

impl Curve {
    /// Length of a field element / scalar in bytes.
    pub fn field_len(self) -> usize {
        match self {
            Curve::P256 => ops_p256::LEN,
            Curve::P384 => ops_p384::LEN,
            Curve::BrainpoolP256r1 => ops_bp256::LEN,
            Curve::BrainpoolP384r1 => ops_bp384::LEN,
        }
    }

    /// `sk · P` (P defaults to the curve's generator), uncompressed.
    pub fn mul(self, sk: &[u8], p: Option<&[u8]>) -> Result<Vec<u8>, PaceError> {
        on_curve!(self, mul(sk, p))
    }

    /// Generic Mapping: Ĝ = s·G + H.
    pub fn map(self, s: &[u8], h: &[u8]) -> Result<Vec<u8>, PaceError> {
        on_curve!(self, map(s, h))
    }

    /// The x-coordinate of a point (the shared secret of ECDH).
    pub fn x(self, p: &[u8]) -> Result<Vec<u8>, PaceError> {
        on_curve!(self, x(p))
    }

    /// Checks that `p` is a valid point of the curve (not the identity).
    pub fn check_point(self, p: &[u8]) -> Result<(), PaceError> {
        self.x(p).map(|_| ())
    }

    /// A private key from randomness (retried while it reduces to zero).
    pub fn random_key(self, random: &mut dyn FnMut(&mut [u8])) -> Result<Vec<u8>, PaceError> {
        for _ in 0..8 {
            let mut b = vec![0u8; self.field_len()];
            random(&mut b);
            if self.mul(&b, None).is_ok() {
                return Ok(b);
            }
        }
        Err(PaceError::Malformed("random source"))
    }
}

/// Terminal knobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaceOptions {
    /// Send the domain parameter id (tag 84) in MSE:Set AT; some chips need it.
    pub send_parameter_id: bool,
}

impl Default for PaceOptions {
    fn default() -> Self {
        PaceOptions {
            send_parameter_id: true,
        }
    }
}

/// Runs PACE-GM (ECDH) with the MRZ password over an unprotected exchange and returns
/// the SM session. `random` provides the terminal's private keys (tests pass fixed ones).
pub fn perform(
    info: &PaceInfo,
    mrz_information: &str,
    options: PaceOptions,
    exchange: &mut dyn FnMut(&Command) -> Result<Response, PaceError>,
    random: &mut dyn FnMut(&mut [u8]),
) -> Result<SecureMessaging, PaceError> {
    let curve = info.supported_curve()?;
    let cipher = info.cipher;
    let ok = |r: Response, step: &'static str| {
        if r.sw == SW_OK {
            Ok(r.data)
        } else {
            Err(PaceError::Status { step, sw: r.sw })
        }
    };
    ok(
        exchange(&mse_set_at(info, options.send_parameter_id)?)?,
        "MSE:Set AT",
    )?;
    // 1. Encrypted nonce.
    let r = ok(
        exchange(&general_authenticate(None, false)?)?,
        "GENERAL AUTHENTICATE (nonce)",
    )?;
    let z = dynamic_data(&r, 0x80, "encrypted nonce")?;
    let k_pi = kdf(cipher, &mrz_password(mrz_information), KDF_PI);
    let s = decrypt_nonce(cipher, &k_pi, &z)?;
    // 2. Mapping.
    let sk_map = curve.random_key(random)?;
    let pk_map = curve.mul(&sk_map, None)?;
    let r = ok(
        exchange(&general_authenticate(Some((0x81, &pk_map)), false)?)?,
        "GENERAL AUTHENTICATE (map nonce)",
    )?;
    let pk_map_ic = dynamic_data(&r, 0x82, "mapping data")?;
    let h = curve.mul(&sk_map, Some(&pk_map_ic))?;
    let g_hat = curve.map(&s, &h)?;
    // 3. Key agreement on the mapped generator.
    let sk_eph = curve.random_key(random)?;
    let pk_eph = curve.mul(&sk_eph, Some(&g_hat))?;
    let r = ok(
        exchange(&general_authenticate(Some((0x83, &pk_eph)), false)?)?,
        "GENERAL AUTHENTICATE (key agreement)",
    )?;
    let pk_eph_ic = dynamic_data(&r, 0x84, "ephemeral public key")?;
    if crypto::ct_eq(&pk_eph_ic, &pk_eph) {
        return Err(PaceError::ReusedKey);
    }
    let shared = curve.x(&curve.mul(&sk_eph, Some(&pk_eph_ic))?)?;
    let ks_mac = kdf(cipher, &shared, bac::KDF_MAC);
    // 4. Mutual authentication.
    let t_pcd = token(cipher, &ks_mac, &info.oid, &pk_eph_ic)?;
    let r = ok(
        exchange(&general_authenticate(Some((0x85, &t_pcd)), true)?)?,
        "GENERAL AUTHENTICATE (mutual authentication)",
    )?;
    let t_ic = dynamic_data(&r, 0x86, "chip token")?;
    if !crypto::ct_eq(&t_ic, &token(cipher, &ks_mac, &info.oid, &pk_eph)?) {
        return Err(PaceError::BadToken);
    }
    session(cipher, &shared)
}

/// Card-side PACE (the chip simulator).
pub mod card {
    use super::*;

    /// The chip's PACE state between GENERAL AUTHENTICATE steps.
    #[derive(Clone)]
    pub enum Step {
        /// After MSE:Set AT.
        Start { info: PaceInfo },
        /// Nonce sent.
        Nonce { info: PaceInfo, s: Vec<u8> },
        /// Mapped generator known.
        Mapped { info: PaceInfo, g_hat: Vec<u8> },
        /// Keys agreed.
        Agreed {
            info: PaceInfo,
            shared: Vec<u8>,
            pk_pcd: Vec<u8>,
            pk_ic: Vec<u8>,
        },
    }

    impl std::fmt::Debug for Step {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("pace::card::Step(..)")
        }
    }

    /// Parses MSE:Set AT data: returns the protocol OID and the password reference.
    pub fn parse_set_at(data: &[u8]) -> Result<(ObjectIdentifier, u8), PaceError> {
        let mut rest = data;
        let (mut oid, mut pwd) = (None, None);
        while !rest.is_empty() {
            let (t, used) = tlv::parse_one(rest).map_err(|_| PaceError::Malformed("MSE:Set AT"))?;
            let v = tlv::primitive(&t).ok_or(PaceError::Malformed("MSE:Set AT"))?;
            match tlv::tag_of(&t) {
                0x80 => {
                    oid = Some(
                        ObjectIdentifier::from_bytes(v).map_err(|_| PaceError::Malformed("OID"))?,
                    )
                }
                0x83 => pwd = v.first().copied(),
                _ => {}
            }
            rest = rest.get(used..).unwrap_or_default();
        }
        Ok((
            oid.ok_or(PaceError::Malformed("OID"))?,
            pwd.ok_or(PaceError::Malformed("password"))?,
        ))
    }

    /// Step 1: the encrypted nonce z (returns the state and the 7C response data).
    pub fn nonce(
        info: PaceInfo,
        mrz_information: &str,
        s: Vec<u8>,
    ) -> Result<(Step, Vec<u8>), PaceError> {
        let k_pi = kdf(info.cipher, &mrz_password(mrz_information), KDF_PI);
        let z = encrypt_nonce(info.cipher, &k_pi, &s)?;
        Ok((Step::Nonce { info, s }, seven_c(0x80, &z)?))
    }

    fn seven_c(tag: u32, v: &[u8]) -> Result<Vec<u8>, PaceError> {
        tlv::encode_constructed(
            0x7C,
            &tlv::encode(tag, v).map_err(|_| PaceError::Malformed("7C"))?,
        )
        .map_err(|_| PaceError::Malformed("7C"))
    }

    /// Step 2: mapping with the terminal's PK_map (tag 81); `sk` is the chip's key.
    pub fn map(
        info: PaceInfo,
        s: &[u8],
        data: &[u8],
        sk: &[u8],
    ) -> Result<(Step, Vec<u8>), PaceError> {
        let curve = info.supported_curve()?;
        let pk_pcd = dynamic_data(data, 0x81, "mapping data")?;
        let h = curve.mul(sk, Some(&pk_pcd))?;
        let g_hat = curve.map(s, &h)?;
        let pk_ic = curve.mul(sk, None)?;
        Ok((Step::Mapped { info, g_hat }, seven_c(0x82, &pk_ic)?))
    }

    /// Step 3: key agreement on Ĝ with the terminal's PK (tag 83).
    pub fn agree(
        info: PaceInfo,
        g_hat: &[u8],
        data: &[u8],
        sk: &[u8],
    ) -> Result<(Step, Vec<u8>), PaceError> {
        let curve = info.supported_curve()?;
        let pk_pcd = dynamic_data(data, 0x83, "ephemeral public key")?;
        let pk_ic = curve.mul(sk, Some(g_hat))?;
        if crypto::ct_eq(&pk_ic, &pk_pcd) {
            return Err(PaceError::ReusedKey);
        }
        let shared = curve.x(&curve.mul(sk, Some(&pk_pcd))?)?;
        let out = seven_c(0x84, &pk_ic)?;
        Ok((
            Step::Agreed {
                info,
                shared,
                pk_pcd,
                pk_ic,
            },
            out,
        ))
    }

    /// Step 4: checks the terminal's token (tag 85), answers the chip's and opens SM.
    pub fn authenticate(
        info: &PaceInfo,
        shared: &[u8],
        pk_pcd: &[u8],
        pk_ic: &[u8],
        data: &[u8],
    ) -> Result<(SecureMessaging, Vec<u8>), PaceError> {
        let t_pcd = dynamic_data(data, 0x85, "terminal token")?;
        let ks_mac = kdf(info.cipher, shared, bac::KDF_MAC);
        if !crypto::ct_eq(&t_pcd, &token(info.cipher, &ks_mac, &info.oid, pk_ic)?) {
            return Err(PaceError::BadToken);
        }
        let t_ic = token(info.cipher, &ks_mac, &info.oid, pk_pcd)?;
        Ok((session(info.cipher, shared)?, seven_c(0x86, &t_ic)?))
    }
}

#[cfg(test)]
mod tests {
    //! ICAO 9303 Part 11 Appendix G.1 (PACE ECDH Generic Mapping, AES-128,
    //! brainpoolP256r1), every intermediate value bit-exactly: password key, nonce,
    //! mapping keys, H, the mapped generator, the ephemeral key pairs, the shared
    //! secret, session keys, tokens, and the terminal's whole APDU transcript.
    use super::*;
    use crate::crypto::{from_hex, to_hex};

    fn h(s: &str) -> Vec<u8> {
        from_hex(s).unwrap()
    }

    const MRZ_INFO: &str = "T22000129364081251010318";
    const K: &str = "7E2D2A41C74EA0B38CD36F863939BFA8E9032AAD";
    const K_PI: &str = "89DED1B26624EC1E634C1989302849DD";
    const Z: &str = "95A3A016522EE98D01E76CB6B98B42C3";
    const S: &str = "3F00C4D39D153F2B2A214A078D899B22";
    const PK_MAP_IFD: &str = "047ACF3EFC982EC45565A4B155129EFBC74650DCBFA6362D896FC70262E0C2CC5E544552DCB6725218799115B55C9BAA6D9F6BC3A9618E70C25AF71777A9C4922D";
    const PK_DH_IFD: &str = "042DB7A64C0355044EC9DF190514C625CBA2CEA48754887122F3A5EF0D5EDD301C3556F3B3B186DF10B857B58F6A7EB80F20BA5DC7BE1D43D9BF850149FBB36462";
    const PK_DH_IC: &str = "049E880F842905B8B3181F7AF7CAA9F0EFB743847F44A306D2D28C1D9EC65DF6DB7764B22277A2EDDC3C265A9F018F9CB852E111B768B326904B59A0193776F094";
    const SHARED: &str = "28768D20701247DAE81804C9E780EDE582A9996DB4A315020B2733197DB84925";
    const SK_MAP_IFD: &str = "7F4EF07B9EA82FD78AD689B38D0BC78CF21F249D953BC46F4C6E19259C010F99";
    const SK_MAP_IC: &str = "498FF49756F2DC1587840041839A85982BE7761D14715FB091EFA7BCE9058560";
    const PK_MAP_IC: &str = "04824FBA91C9CBE26BEF53A0EBE7342A3BF178CEA9F45DE0B70AA601651FBA3F5730D8C879AAA9C9F73991E61B58F4D52EB87A0A0C709A49DC63719363CCD13C54";
    const H_POINT: &str = "0460332EF2450B5D247EF6D3868397D398852ED6E8CAF6FFEEF6BF85CA57057FD50840CA7415BAF3E43BD414D35AA4608B93A2CAF3A4E3EA4E82C9C13D03EB7181";
    const G_MAPPED: &str = "048CED63C91426D4F0EB1435E7CB1D74A46723A0AF21C89634F65A9AE87A9265E28C879506743F8611AC33645C5B985C80B5F09A0B83407C1B6A4D857AE76FE522";
    const SK_DH_IFD: &str = "A73FB703AC1436A18E0CFA5ABB3F7BEC7A070E7A6788486BEE230C4A22762595";
    const SK_DH_IC: &str = "107CF58696EF6155053340FD633392BA81909DF7B9706F226F32086C7AFF974A";
    const CARD_ACCESS: &str = "31143012060A04007F0007020204020202010202010D";

    fn info() -> PaceInfo {
        parse_card_access(&h(CARD_ACCESS)).unwrap().remove(0)
    }

    #[test]
    fn g1_card_access() {
        let i = info();
        assert_eq!(i.oid.to_string(), "0.4.0.127.0.7.2.2.4.2.2");
        assert_eq!((i.version, i.parameter_id), (2, Some(13)));
        assert_eq!(
            (i.agreement, i.mapping, i.cipher),
            (Agreement::Ecdh, Mapping::Generic, Cipher::Aes128)
        );
        assert_eq!(i.supported_curve(), Ok(Curve::BrainpoolP256r1));
        assert_eq!(choose(std::slice::from_ref(&i)), Some(&i));
        assert_eq!(PaceInfo::to_card_access(&[i]).unwrap(), h(CARD_ACCESS));
    }

    #[test]
    fn g1_password_key_and_nonce() {
        assert_eq!(to_hex(&mrz_password(MRZ_INFO)), K);
        let k_pi = kdf(Cipher::Aes128, &h(K), KDF_PI);
        assert_eq!(to_hex(&k_pi), K_PI);
        assert_eq!(
            to_hex(&decrypt_nonce(Cipher::Aes128, &k_pi, &h(Z)).unwrap()),
            S
        );
        assert_eq!(
            to_hex(&encrypt_nonce(Cipher::Aes128, &k_pi, &h(S)).unwrap()),
            Z
        );
    }

    /// The curve steps of G.1 on brainpoolP256r1: both mapping key pairs, H (from
    /// either side), the mapped generator, both ephemeral key pairs on it and the
    /// shared secret (from either side).
    #[test]
    fn g1_mapping_and_key_agreement() {
        let c = Curve::BrainpoolP256r1;
        assert_eq!(to_hex(&c.mul(&h(SK_MAP_IFD), None).unwrap()), PK_MAP_IFD);
        assert_eq!(to_hex(&c.mul(&h(SK_MAP_IC), None).unwrap()), PK_MAP_IC);
        let h_ifd = c.mul(&h(SK_MAP_IFD), Some(&h(PK_MAP_IC))).unwrap();
        assert_eq!(to_hex(&h_ifd), H_POINT);
        let h_ic = c.mul(&h(SK_MAP_IC), Some(&h(PK_MAP_IFD))).unwrap();
        assert_eq!(to_hex(&h_ic), H_POINT);
        let g = c.map(&h(S), &h_ifd).unwrap();
        assert_eq!(to_hex(&g), G_MAPPED);
        assert_eq!(to_hex(&c.mul(&h(SK_DH_IFD), Some(&g)).unwrap()), PK_DH_IFD);
        assert_eq!(to_hex(&c.mul(&h(SK_DH_IC), Some(&g)).unwrap()), PK_DH_IC);
        let k_ifd = c.x(&c.mul(&h(SK_DH_IFD), Some(&h(PK_DH_IC))).unwrap());
        assert_eq!(to_hex(&k_ifd.unwrap()), SHARED);
        let k_ic = c.x(&c.mul(&h(SK_DH_IC), Some(&h(PK_DH_IFD))).unwrap());
        assert_eq!(to_hex(&k_ic.unwrap()), SHARED);
        // A point of another curve is refused.
        assert!(c.check_point(&h(PK_MAP_IC)).is_ok());
        assert!(Curve::P256.check_point(&h(PK_MAP_IC)).is_err());
    }

    /// The terminal side of G.1 end to end: with the worked example's keys as its
    /// randomness, `perform` sends exactly the G.1 commands and accepts the chip's
    /// G.1 answers (which it could not if any derived value were off).
    #[test]
    fn g1_terminal_transcript() {
        let script: Vec<(String, String)> = vec![
            (
                "0022C1A40F800A04007F00070202040202830101".into(),
                String::new(),
            ),
            ("10860000027C0000".into(), format!("7C1280 10{Z}")),
            (
                format!("10860000457C438141{PK_MAP_IFD}00"),
                format!("7C438241{PK_MAP_IC}"),
            ),
            (
                format!("10860000457C438341{PK_DH_IFD}00"),
                format!("7C438441{PK_DH_IC}"),
            ),
            (
                "008600000C7C0A8508C2B0BD78D94BA86600".into(),
                "7C0A86083ABB9674BCE93C08".into(),
            ),
        ];
        let mut step = 0usize;
        let mut ex = |c: &Command| -> Result<Response, PaceError> {
            let (want, answer) = script.get(step).expect("no command after the script");
            step += 1;
            assert_eq!(to_hex(&c.to_bytes().unwrap()), *want);
            Ok(Response {
                data: h(&answer.replace(' ', "")),
                sw: SW_OK,
            })
        };
        let mut keys = vec![h(SK_DH_IFD), h(SK_MAP_IFD)];
        let mut rng = |b: &mut [u8]| b.copy_from_slice(&keys.pop().unwrap());
        // G.1's MSE:Set AT carries no parameter id (tag 84).
        let options = PaceOptions {
            send_parameter_id: false,
        };
        let sm = perform(&info(), MRZ_INFO, options, &mut ex, &mut rng).unwrap();
        assert_eq!(step, 5);
        assert_eq!(sm.ssc(), &[0u8; 16]);
    }

    /// The card side of G.1: with the chip's worked-example keys it answers exactly
    /// the G.1 responses and accepts the terminal's token.
    #[test]
    fn g1_card_side() {
        let i = info();
        let (st, out) = card::nonce(i.clone(), MRZ_INFO, h(S)).unwrap();
        assert_eq!(to_hex(&out), format!("7C1280 10{Z}").replace(' ', ""));
        let (st, out) = match st {
            card::Step::Nonce { info, s } => card::map(
                info,
                &s,
                &h(&format!("7C438141{PK_MAP_IFD}")),
                &h(SK_MAP_IC),
            )
            .unwrap(),
            _ => panic!("unexpected step"),
        };
        assert_eq!(to_hex(&out), format!("7C438241{PK_MAP_IC}"));
        let (st, out) = match st {
            card::Step::Mapped { info, g_hat } => {
                assert_eq!(to_hex(&g_hat), G_MAPPED);
                card::agree(
                    info,
                    &g_hat,
                    &h(&format!("7C438341{PK_DH_IFD}")),
                    &h(SK_DH_IC),
                )
                .unwrap()
            }
            _ => panic!("unexpected step"),
        };
        assert_eq!(to_hex(&out), format!("7C438441{PK_DH_IC}"));
        match st {
            card::Step::Agreed {
                info,
                shared,
                pk_pcd,
                pk_ic,
            } => {
                assert_eq!(to_hex(&shared), SHARED);
                let (_, out) = card::authenticate(
                    &info,
                    &shared,
                    &pk_pcd,
                    &pk_ic,
                    &h("7C0A8508C2B0BD78D94BA866"),
                )
                .unwrap();
                assert_eq!(to_hex(&out), "7C0A86083ABB9674BCE93C08");
            }
            _ => panic!("unexpected step"),
        }
    }

    #[test]
    fn g1_session_keys_and_tokens() {
        let shared = h(SHARED);
        assert_eq!(
            to_hex(&kdf(Cipher::Aes128, &shared, 1)),
            "F5F0E35C0D7161EE6724EE513A0D9A7F"
        );
        let ks_mac = kdf(Cipher::Aes128, &shared, 2);
        assert_eq!(to_hex(&ks_mac), "FE251C7858B356B24514B3BD5F4297D1");
        let oid = info().oid;
        assert_eq!(
            to_hex(&public_key_object(&oid, &h(PK_DH_IC)).unwrap()),
            format!("7F494F060A04007F000702020402028641{PK_DH_IC}")
        );
        assert_eq!(
            to_hex(&token(Cipher::Aes128, &ks_mac, &oid, &h(PK_DH_IC)).unwrap()),
            "C2B0BD78D94BA866"
        );
        assert_eq!(
            to_hex(&token(Cipher::Aes128, &ks_mac, &oid, &h(PK_DH_IFD)).unwrap()),
            "3ABB9674BCE93C08"
        );
        let sm = session(Cipher::Aes128, &shared).unwrap();
        assert_eq!(sm.ssc(), &[0u8; 16]);
    }

    #[test]
    fn g1_command_encodings() {
        let i = info();
        assert_eq!(
            to_hex(&mse_set_at(&i, false).unwrap().to_bytes().unwrap()),
            "0022C1A40F800A04007F00070202040202830101"
        );
        assert_eq!(
            to_hex(&mse_set_at(&i, true).unwrap().to_bytes().unwrap()),
            "0022C1A412800A04007F0007020204020283010184010D"
        );
        assert_eq!(
            to_hex(
                &general_authenticate(None, false)
                    .unwrap()
                    .to_bytes()
                    .unwrap()
            ),
            "10860000027C0000"
        );
        assert_eq!(
            to_hex(
                &general_authenticate(Some((0x81, &h(PK_MAP_IFD))), false)
                    .unwrap()
                    .to_bytes()
                    .unwrap()
            ),
            format!("10860000457C438141{PK_MAP_IFD}00")
        );
        assert_eq!(
            to_hex(
                &general_authenticate(Some((0x83, &h(PK_DH_IFD))), false)
                    .unwrap()
                    .to_bytes()
                    .unwrap()
            ),
            format!("10860000457C438341{PK_DH_IFD}00")
        );
        assert_eq!(
            to_hex(
                &general_authenticate(Some((0x85, &h("C2B0BD78D94BA866"))), true)
                    .unwrap()
                    .to_bytes()
                    .unwrap()
            ),
            "008600000C7C0A8508C2B0BD78D94BA86600"
        );
        assert_eq!(
            to_hex(
                &dynamic_data(&h(&format!("7C1280 10{Z}").replace(' ', "")), 0x80, "n").unwrap()
            ),
            Z
        );
        let (oid, pwd) = card::parse_set_at(&h("800A04007F00070202040202830101")).unwrap();
        assert_eq!((oid, pwd), (i.oid, 1));
    }

    /// A whole PACE-GM run between the terminal and the card side on every supported
    /// curve, for each cipher.
    #[test]
    fn round_trips() {
        for curve in [
            Curve::P256,
            Curve::P384,
            Curve::BrainpoolP256r1,
            Curve::BrainpoolP384r1,
        ] {
            for cipher in [Cipher::Tdes, Cipher::Aes128, Cipher::Aes192, Cipher::Aes256] {
                let info = PaceInfo::ecdh_gm(cipher, curve);
                let ca = PaceInfo::to_card_access(std::slice::from_ref(&info)).unwrap();
                assert_eq!(parse_card_access(&ca).unwrap(), vec![info.clone()]);
                let mut step: Option<card::Step> = None;
                let mut chip_sm = None;
                let mut n = 0u8;
                let mut chip_rng = move |b: &mut [u8]| {
                    n = n.wrapping_add(1);
                    b.fill(n | 0x40);
                };
                let mut ex = |c: &Command| -> Result<Response, PaceError> {
                    let ok = |data| Ok(Response { data, sw: SW_OK });
                    match (c.ins, step.take()) {
                        (0x22, _) => {
                            let (oid, _) = card::parse_set_at(&c.data)?;
                            assert_eq!(oid, info.oid);
                            step = Some(card::Step::Start { info: info.clone() });
                            ok(vec![])
                        }
                        (0x86, Some(card::Step::Start { info })) => {
                            let (s, out) = card::nonce(info, MRZ_INFO, vec![0x11; cipher.block()])?;
                            step = Some(s);
                            ok(out)
                        }
                        (0x86, Some(card::Step::Nonce { info, s })) => {
                            let sk = curve.random_key(&mut chip_rng)?;
                            let (st, out) = card::map(info, &s, &c.data, &sk)?;
                            step = Some(st);
                            ok(out)
                        }
                        (0x86, Some(card::Step::Mapped { info, g_hat })) => {
                            let sk = curve.random_key(&mut chip_rng)?;
                            let (st, out) = card::agree(info, &g_hat, &c.data, &sk)?;
                            step = Some(st);
                            ok(out)
                        }
                        (
                            0x86,
                            Some(card::Step::Agreed {
                                info,
                                shared,
                                pk_pcd,
                                pk_ic,
                            }),
                        ) => {
                            let (sm, out) =
                                card::authenticate(&info, &shared, &pk_pcd, &pk_ic, &c.data)?;
                            chip_sm = Some(sm);
                            ok(out)
                        }
                        _ => Ok(Response {
                            data: vec![],
                            sw: 0x6985,
                        }),
                    }
                };
                let mut m = 0u8;
                let mut rng = |b: &mut [u8]| {
                    m = m.wrapping_add(1);
                    b.fill(m);
                };
                let mut sm =
                    perform(&info, MRZ_INFO, PaceOptions::default(), &mut ex, &mut rng).unwrap();
                let mut chip = chip_sm.unwrap();
                let cmd = sm.protect(&Command::new(0, 0xB0, 0, 0).with_le(4)).unwrap();
                let plain = chip.unprotect_command(&cmd.to_bytes().unwrap()).unwrap();
                assert_eq!(plain.le, Some(4));
                let resp = chip.protect_response(&[1, 2, 3, 4], SW_OK).unwrap();
                assert_eq!(sm.unprotect(&resp).unwrap().data, vec![1, 2, 3, 4]);
            }
        }
    }

    #[test]
    fn hostile_inputs() {
        assert!(parse_card_access(&[]).is_err());
        assert!(parse_card_access(&[0x30, 0x00]).is_err());
        assert_eq!(parse_card_access(&[0x31, 0x00]).unwrap(), vec![]);
        assert!(Curve::P256.check_point(&[0x04; 65]).is_err());
        assert!(Curve::P256.check_point(&[0x00]).is_err());
        assert!(Curve::P256.mul(&[0; 32], None).is_err());
        assert!(Curve::BrainpoolP384r1.check_point(&[0x04; 97]).is_err());
        assert!(Curve::BrainpoolP256r1.mul(&[0; 32], None).is_err());
        // brainpoolP512r1 (17): recognised as a PACEInfo, refused (no arithmetic).
        assert_eq!(Curve::from_parameter_id(17), None);
        let mut bp512 = PaceInfo::ecdh_gm(Cipher::Aes256, Curve::P256);
        bp512.parameter_id = Some(17);
        assert!(matches!(
            bp512.supported_curve(),
            Err(PaceError::Unsupported(_))
        ));
        assert!(dynamic_data(&[0x7C, 0x05, 0x80], 0x80, "x").is_err());
        assert!(card::parse_set_at(&[0x80, 0x01]).is_err());
    }
}
