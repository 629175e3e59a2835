//! The registered user card's chip content, in the format of [`torii_core::card`]:
//! `"TTPC" | version | payload length | JSON CardData | ECDSA P-256 signature`.
//!
//! The simulator is the issuing authority of its cards. Its key is a **fixed, public
//! test key** (never use it outside simulations): the P-256 scalar
//! `SHA-256("torii-sim card issuer v1")`. The gate is given the matching public key
//! ([`issuer_public_key_pem`], written by `torii-sim gate` as `card-issuer.pem`).
//!
//! A scenario traveler may carry a bad card (`[traveler.registration]`):
//! - `card_forged = true`: signed by another key (`SHA-256("torii-sim card forger v1")`);
//! - `card_altered = true`: issued correctly, then one payload byte changed (the last
//!   digit of the validity year), so the signature no longer verifies.

use crate::scenario::{Date, Traveler};
use p256::ecdsa::SigningKey;
use sha2::{Digest, Sha256};
use torii_core::card::{CardData, encode_signed, issuer_key_to_pem};

/// The seed of the simulator's issuing authority key.
pub const ISSUER_KEY_SEED: &str = "torii-sim card issuer v1";
/// The seed of the key forged cards are signed with.
pub const FORGER_KEY_SEED: &str = "torii-sim card forger v1";

fn key_from_seed(seed: &str) -> SigningKey {
    let scalar = Sha256::digest(seed.as_bytes());
    // A SHA-256 output is a valid P-256 scalar except with negligible probability
    // (zero or ≥ the group order); these fixed seeds are known to be fine (tested).
    SigningKey::from_slice(&scalar).unwrap_or_else(|_| unreachable_key())
}

#[cold]
fn unreachable_key() -> SigningKey {
    // Not reachable for the fixed seeds above (see the tests); a constant valid scalar
    // keeps this function total without a panic.
    let mut one = [0u8; 32];
    one[31] = 1;
    SigningKey::from_slice(&one).unwrap_or_else(|_| unreachable!("1 is a valid scalar"))
}

/// The simulator's card issuing authority key (a fixed test key).
pub fn issuer_key() -> SigningKey {
    key_from_seed(ISSUER_KEY_SEED)
}

/// The key forged cards are signed with.
pub fn forger_key() -> SigningKey {
    key_from_seed(FORGER_KEY_SEED)
}

/// The issuer's public key as PEM (SubjectPublicKeyInfo), for the gate's
/// `[registry] card_issuer_key` file.
pub fn issuer_public_key_pem() -> String {
    issuer_key_to_pem(issuer_key().verifying_key())
}

fn to_time(date: Date) -> Option<time::Date> {
    let month = time::Month::try_from(date.month).ok()?;
    time::Date::from_calendar_date(i32::from(date.year), month, date.day).ok()
}

/// What the issuing authority wrote on `traveler`'s card, or `None` when the traveler
/// has no card (not registered).
pub fn card_data(traveler: &Traveler) -> Option<CardData> {
    let reg = traveler.registration.as_ref()?;
    Some(CardData {
        card_number: reg.card_number.clone(),
        passport_number: traveler.registered_passport_number()?.to_owned(),
        nationality: traveler.nationality.clone(),
        issued: to_time(reg.card_issued)?,
        valid_until: to_time(traveler.card_valid_until()?)?,
    })
}

/// The bytes stored on `traveler`'s registered user card chip (signed card data, see
/// the module documentation), or `None` when the traveler has no card.
pub fn card_chip_content(traveler: &Traveler) -> Option<Vec<u8>> {
    let reg = traveler.registration.as_ref()?;
    let data = card_data(traveler)?;
    let key = if reg.card_forged {
        forger_key()
    } else {
        issuer_key()
    };
    let mut bytes = encode_signed(&data, &key);
    if reg.card_altered {
        alter(&mut bytes);
    }
    Some(bytes)
}

/// Changes the last digit of the validity year in the signed payload (`"valid_until":
/// "2028-…"` → `"2029-…"`): still well-formed, no longer the issuer's signature.
fn alter(bytes: &mut [u8]) {
    const KEY: &[u8] = b"\"valid_until\":\"";
    let at = bytes
        .windows(KEY.len())
        .position(|w| w == KEY)
        .map(|p| p + KEY.len() + 3);
    // Fallback (never expected): the first payload byte after the 7-byte header.
    let at = at
        .filter(|&p| p < bytes.len())
        .unwrap_or(7.min(bytes.len()));
    if let Some(b) = bytes.get_mut(at) {
        *b ^= 0x01;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Scenario;
    use torii_core::card::{CardError, decode_verified, issuer_key_from_pem};
    use torii_core::reason::ReasonCode;

    fn gate_key() -> p256::ecdsa::VerifyingKey {
        issuer_key_from_pem(&issuer_public_key_pem()).unwrap()
    }

    #[test]
    fn fixed_keys_are_the_documented_ones() {
        let expected =
            SigningKey::from_slice(&Sha256::digest(b"torii-sim card issuer v1")).unwrap();
        assert_eq!(issuer_key().to_bytes(), expected.to_bytes());
        let forger = SigningKey::from_slice(&Sha256::digest(b"torii-sim card forger v1")).unwrap();
        assert_eq!(forger_key().to_bytes(), forger.to_bytes());
        assert_ne!(issuer_key().to_bytes(), forger_key().to_bytes());
        assert!(issuer_public_key_pem().starts_with("-----BEGIN PUBLIC KEY-----"));
    }

    #[test]
    fn issued_cards_verify_with_torii_core() {
        let s = Scenario::default_scenario().unwrap();
        let bruno = s.traveler("bruno").unwrap();
        let data = decode_verified(&card_chip_content(bruno).unwrap(), &gate_key()).unwrap();
        assert_eq!(data.card_number, "TTP0000001002");
        assert_eq!(data.passport_number, "C0TEST123");
        assert_eq!(data.nationality, "DEU");
        assert_eq!(data.issued.to_string(), "2024-03-01");
        assert_eq!(data.valid_until.to_string(), "2027-02-28");
        // A renewed passport: the card carries the registered (old) number.
        let hugo = s.traveler("hugo").unwrap();
        let data = decode_verified(&card_chip_content(hugo).unwrap(), &gate_key()).unwrap();
        assert_eq!(data.passport_number, "PAA000111");
        // Every registered traveler's card verifies; unregistered travelers have none.
        for t in &s.travelers {
            match card_chip_content(t) {
                Some(bytes) => assert!(decode_verified(&bytes, &gate_key()).is_ok(), "{}", t.id),
                None => assert!(t.registration.is_none()),
            }
        }
        assert!(card_chip_content(s.traveler("farah").unwrap()).is_none());
    }

    #[test]
    fn forged_and_altered_cards_are_refused_as_forged() {
        let s = Scenario::default_scenario().unwrap();
        let mut forged = s.traveler("alice").unwrap().clone();
        forged.registration.as_mut().unwrap().card_forged = true;
        let error = decode_verified(&card_chip_content(&forged).unwrap(), &gate_key()).unwrap_err();
        assert_eq!(error, CardError::BadSignature);
        assert_eq!(error.reason(), ReasonCode::CardForged);

        let mut altered = s.traveler("alice").unwrap().clone();
        altered.registration.as_mut().unwrap().card_altered = true;
        let bytes = card_chip_content(&altered).unwrap();
        let genuine = card_chip_content(s.traveler("alice").unwrap()).unwrap();
        assert_eq!(bytes.len(), genuine.len());
        let differing: Vec<usize> = (0..bytes.len())
            .filter(|&i| bytes[i] != genuine[i])
            .collect();
        assert_eq!(differing.len(), 1, "exactly one byte altered");
        // Still readable JSON with a later validity: only the signature gives it away.
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("\"valid_until\":\"2029-05-19\""), "{text}");
        let error = decode_verified(&bytes, &gate_key()).unwrap_err();
        assert_eq!(error.reason(), ReasonCode::CardForged);
    }
}
