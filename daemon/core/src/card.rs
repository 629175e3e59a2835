//! The registered user card's chip data, signed by the issuing authority so that a forged
//! or altered card is detected offline, at the gate.
//!
//! Layout (all of it read from the card's chip):
//!
//! ```text
//! "TTPC" | version (1 byte, = 1) | payload length (u16, big-endian) | payload | signature
//! ```
//!
//! The payload is UTF-8 JSON ([`CardData`], unknown fields refused). The signature is
//! ECDSA P-256 with SHA-256, 64 bytes `r || s`, over every byte before it. The issuer's
//! public key is configured on the gate (PEM, SubjectPublicKeyInfo).

use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use std::fmt;
use time::Date;

use crate::reason::ReasonCode;

pub const MAGIC: &[u8; 4] = b"TTPC";
pub const VERSION: u8 = 1;
const HEADER_LEN: usize = 4 + 1 + 2;
const SIGNATURE_LEN: usize = 64;
/// Larger payloads are refused before parsing.
pub const MAX_PAYLOAD_LEN: usize = 4096;

/// What the issuing authority wrote on the card's chip.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CardData {
    pub card_number: String,
    /// The passport registered with the card.
    pub passport_number: String,
    /// ISO 3166 alpha-3.
    pub nationality: String,
    pub issued: Date,
    /// min(issue + 3 years, passport expiry), as issued.
    pub valid_until: Date,
}

impl fmt::Debug for CardData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CardData")
            .field("nationality", &self.nationality)
            .field("issued", &self.issued)
            .field("valid_until", &self.valid_until)
            .finish_non_exhaustive()
    }
}

/// Why card data was refused. Messages name the part that is wrong, never its content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CardError {
    #[error("card data is {0} bytes, shorter than the header and signature")]
    TooShort(usize),
    #[error("card data does not start with \"TTPC\"")]
    BadMagic,
    #[error("card data version {0} is not supported (expected 1)")]
    UnsupportedVersion(u8),
    #[error("card data payload length {declared} does not match the {actual} bytes present")]
    LengthMismatch { declared: usize, actual: usize },
    #[error("card data payload of {0} bytes exceeds the {MAX_PAYLOAD_LEN}-byte limit")]
    PayloadTooLarge(usize),
    #[error("card data signature is not a valid P-256 signature")]
    MalformedSignature,
    #[error("card data signature does not verify against the issuing authority's key")]
    BadSignature,
    #[error("card data payload is not a valid card record: {0}")]
    BadPayload(String),
}

impl CardError {
    /// Unreadable (garbled) or forged (well-formed but not the issuer's)?
    pub fn reason(&self) -> ReasonCode {
        match self {
            CardError::BadSignature | CardError::MalformedSignature => ReasonCode::CardForged,
            CardError::BadPayload(_) => ReasonCode::CardForged,
            _ => ReasonCode::CardUnreadable,
        }
    }
}

/// Encodes and signs card data (what the issuing office — and the simulator — does).
pub fn encode_signed(data: &CardData, key: &SigningKey) -> Vec<u8> {
    let payload = serde_json::to_vec(data).unwrap_or_default();
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len() + SIGNATURE_LEN);
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    out.extend_from_slice(&payload);
    let signature: Signature = key.sign(&out);
    out.extend_from_slice(&signature.to_bytes());
    out
}

/// Checks the layout and the issuer's signature, then parses the payload.
pub fn decode_verified(bytes: &[u8], issuer: &VerifyingKey) -> Result<CardData, CardError> {
    if bytes.len() < HEADER_LEN + SIGNATURE_LEN {
        return Err(CardError::TooShort(bytes.len()));
    }
    if &bytes[..4] != MAGIC {
        return Err(CardError::BadMagic);
    }
    if bytes[4] != VERSION {
        return Err(CardError::UnsupportedVersion(bytes[4]));
    }
    let declared = u16::from_be_bytes([bytes[5], bytes[6]]) as usize;
    if declared > MAX_PAYLOAD_LEN {
        return Err(CardError::PayloadTooLarge(declared));
    }
    let actual = bytes.len() - HEADER_LEN - SIGNATURE_LEN;
    if declared != actual {
        return Err(CardError::LengthMismatch { declared, actual });
    }
    let (signed, signature) = bytes.split_at(HEADER_LEN + declared);
    let signature = Signature::from_slice(signature).map_err(|_| CardError::MalformedSignature)?;
    issuer
        .verify(signed, &signature)
        .map_err(|_| CardError::BadSignature)?;
    // Only now is the payload trusted enough to parse.
    serde_json::from_slice(&signed[HEADER_LEN..]).map_err(|e| CardError::BadPayload(e.to_string()))
}

/// Reads an issuer public key (PEM SubjectPublicKeyInfo).
pub fn issuer_key_from_pem(pem: &str) -> Result<VerifyingKey, String> {
    use p256::pkcs8::DecodePublicKey;
    VerifyingKey::from_public_key_pem(pem)
        .map_err(|e| format!("not a P-256 public key in PEM: {e}"))
}

/// The PEM of a public key.
pub fn issuer_key_to_pem(key: &VerifyingKey) -> String {
    use p256::pkcs8::{EncodePublicKey, LineEnding};
    key.to_public_key_pem(LineEnding::LF).unwrap_or_default()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use time::macros::date;

    pub fn test_issuer() -> SigningKey {
        SigningKey::from_slice(&[7u8; 32]).unwrap()
    }

    pub fn sample() -> CardData {
        CardData {
            card_number: "TTP0000001001".into(),
            passport_number: "TW1000017".into(),
            nationality: "GBR".into(),
            issued: date!(2025 - 05 - 20),
            valid_until: date!(2028 - 05 - 19),
        }
    }

    #[test]
    fn signed_data_round_trips_and_survives_pem() {
        let key = test_issuer();
        let bytes = encode_signed(&sample(), &key);
        let public = issuer_key_from_pem(&issuer_key_to_pem(key.verifying_key())).unwrap();
        assert_eq!(decode_verified(&bytes, &public), Ok(sample()));
    }

    #[test]
    fn any_altered_byte_is_refused() {
        let key = test_issuer();
        let bytes = encode_signed(&sample(), &key);
        for at in 0..bytes.len() {
            let mut altered = bytes.clone();
            altered[at] ^= 0x01;
            assert!(
                decode_verified(&altered, key.verifying_key()).is_err(),
                "byte {at} altered, still accepted"
            );
        }
    }

    #[test]
    fn another_issuers_card_is_forged() {
        let forger = SigningKey::from_slice(&[9u8; 32]).unwrap();
        let bytes = encode_signed(&sample(), &forger);
        let error = decode_verified(&bytes, test_issuer().verifying_key()).unwrap_err();
        assert_eq!(error, CardError::BadSignature);
        assert_eq!(error.reason(), ReasonCode::CardForged);
    }

    #[test]
    fn garbage_is_unreadable_not_a_panic() {
        let key = test_issuer();
        for garbage in [&b""[..], b"TTPC", &[0u8; 80], b"TTPC\x02\x00\x00"] {
            let error = decode_verified(garbage, key.verifying_key()).unwrap_err();
            assert_eq!(error.reason(), ReasonCode::CardUnreadable, "{error}");
        }
        let mut state = 0x1234_5678u32;
        for len in 0..300 {
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 17;
                    state ^= state << 5;
                    state as u8
                })
                .collect();
            let _ = decode_verified(&data, key.verifying_key());
        }
    }
}
