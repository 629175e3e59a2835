//! The registry at rest: what identifies a person is sealed.
//!
//! A copy of `registry.db` (a backup, a disk pulled from a decommissioned gate) must not
//! disclose who is registered. So every row keeps its identifying values only sealed
//! (AES-256-GCM, a fresh random nonce per write, the row's lookup tag as associated data
//! so a sealed value moved to another row does not open), and is found by *lookup tags*:
//! HMAC-SHA256 of the passport number and nationality, of the card number, of the holder
//! key, under a key that is not in the database. Without the key, a tag cannot be tested
//! against a guessed passport number or name (which a plain hash could).
//!
//! Both keys are derived (HKDF-SHA256, one label each) from the gate's data key, the 32
//! bytes of `outbox.key_file` that also seal the outbox, so a gate has one secret to
//! protect for all personal data at rest. A registry sealed under another key is refused
//! at open (a key check value), not misread row by row; it can be removed, as everything
//! in it comes again from central's feed and the registry export.

use std::fmt;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

const NONCE_LEN: usize = 12;
const SEAL_LABEL: &[u8] = b"torii registry seal v1";
const TAG_LABEL: &[u8] = b"torii registry lookup tag v1";
const KEY_CHECK: &[u8] = b"torii registry key check v1";

/// What a lookup tag is of: the tag of a card number never equals that of a passport.
#[derive(Clone, Copy, Debug)]
pub(super) enum TagOf {
    Passport,
    Card,
    Holder,
}

impl TagOf {
    fn label(self) -> &'static [u8] {
        match self {
            TagOf::Passport => b"passport",
            TagOf::Card => b"card",
            TagOf::Holder => b"holder",
        }
    }
}

/// The registry's sealing and tag keys. `Debug` never shows them.
#[derive(Clone)]
pub struct RegistryKey {
    aead: Aes256Gcm,
    tag: Zeroizing<[u8; 32]>,
}

impl fmt::Debug for RegistryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RegistryKey(<redacted>)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("the operating system gave no random bytes for a nonce")]
    Random,
    #[error("AES-256-GCM refused to seal")]
    Seal,
    /// The value is not ours: another key, another row, or altered bytes.
    #[error("a sealed value does not open (another key, another row, or altered)")]
    Open,
}

impl RegistryKey {
    /// Derives the registry's keys from the gate's 32-byte data key.
    pub fn derive_from(data_key: &[u8; 32]) -> Self {
        let hkdf = Hkdf::<Sha256>::new(None, data_key);
        let mut seal = Zeroizing::new([0u8; 32]);
        let mut tag = Zeroizing::new([0u8; 32]);
        // 32 bytes is far below HKDF-SHA256's 8160-byte limit: these cannot fail.
        hkdf.expand(SEAL_LABEL, &mut seal[..])
            .expect("32 bytes from HKDF-SHA256");
        hkdf.expand(TAG_LABEL, &mut tag[..])
            .expect("32 bytes from HKDF-SHA256");
        RegistryKey {
            aead: Aes256Gcm::new(&Key::<Aes256Gcm>::from(*seal)),
            tag,
        }
    }

    /// A throwaway key (an in-memory registry, tests).
    pub fn random() -> Self {
        let mut bytes = Zeroizing::new([0u8; 32]);
        getrandom::fill(&mut bytes[..]).expect("the operating system's random bytes");
        RegistryKey::derive_from(&bytes)
    }

    /// The lookup tag of `parts` (length-prefixed, so ("AB","C") ≠ ("A","BC")).
    pub(super) fn tag(&self, of: TagOf, parts: &[&str]) -> Vec<u8> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.tag[..])
            .expect("HMAC takes a key of any length");
        mac.update(of.label());
        for part in parts {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        mac.finalize().into_bytes().to_vec()
    }

    /// `nonce || ciphertext+tag`, bound to `context` (the row it belongs to).
    pub(super) fn seal(&self, context: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut nonce = Nonce::default();
        getrandom::fill(&mut nonce).map_err(|_| SealError::Random)?;
        let ciphertext = self
            .aead
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: context,
                },
            )
            .map_err(|_| SealError::Seal)?;
        let mut sealed = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        Ok(sealed)
    }

    pub(super) fn open(&self, context: &[u8], sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        if sealed.len() < NONCE_LEN {
            return Err(SealError::Open);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_from(nonce).map_err(|_| SealError::Open)?;
        self.aead
            .decrypt(
                &nonce,
                Payload {
                    msg: ciphertext,
                    aad: context,
                },
            )
            .map_err(|_| SealError::Open)
    }

    /// Stored once per database: opening it with another key fails at once.
    pub(super) fn key_check(&self) -> Result<Vec<u8>, SealError> {
        self.seal(KEY_CHECK, KEY_CHECK)
    }

    pub(super) fn verifies(&self, key_check: &[u8]) -> bool {
        self.open(KEY_CHECK, key_check)
            .is_ok_and(|plain| plain == KEY_CHECK)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_keyed_typed_and_unambiguous() {
        let key = RegistryKey::derive_from(&[7; 32]);
        let same = RegistryKey::derive_from(&[7; 32]);
        let other = RegistryKey::derive_from(&[8; 32]);
        let tag = key.tag(TagOf::Passport, &["GBR", "TW1000017"]);
        assert_eq!(tag, same.tag(TagOf::Passport, &["GBR", "TW1000017"]));
        assert_ne!(tag, other.tag(TagOf::Passport, &["GBR", "TW1000017"]));
        assert_ne!(tag, key.tag(TagOf::Card, &["GBR", "TW1000017"]));
        assert_ne!(
            key.tag(TagOf::Passport, &["GB", "RTW1000017"]),
            tag,
            "length-prefixed parts"
        );
        assert_eq!(tag.len(), 32);
    }

    #[test]
    fn sealed_values_open_only_with_their_key_and_row() {
        let key = RegistryKey::derive_from(&[7; 32]);
        let sealed = key.seal(b"row 1", b"TW1000017").unwrap();
        assert!(!sealed.windows(9).any(|w| w == b"TW1000017"));
        assert_eq!(key.open(b"row 1", &sealed).unwrap(), b"TW1000017");
        assert!(key.open(b"row 2", &sealed).is_err(), "moved to another row");
        let mut altered = sealed.clone();
        *altered.last_mut().unwrap() ^= 1;
        assert!(key.open(b"row 1", &altered).is_err());
        assert!(key.open(b"row 1", &sealed[..5]).is_err());
        let other = RegistryKey::derive_from(&[8; 32]);
        assert!(other.open(b"row 1", &sealed).is_err());
        assert!(key.verifies(&key.key_check().unwrap()));
        assert!(!other.verifies(&key.key_check().unwrap()));
        assert_ne!(
            key.seal(b"row 1", b"x").unwrap(),
            key.seal(b"row 1", b"x").unwrap(),
            "a fresh nonce each time"
        );
    }
}
