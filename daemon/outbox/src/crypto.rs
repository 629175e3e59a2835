//! Payload encryption: AES-256-GCM, a fresh random 96-bit nonce per row, and associated
//! data binding the ciphertext to its row.
//!
//! The associated data is the record id, the creation time and the outcome label (the
//! row's plaintext columns that say what the record is). So a ciphertext copied or
//! swapped into another row, or a row whose outcome was rewritten ("referred" into
//! "admitted"), no longer decrypts, and the reader gets [`OutboxError::Decrypt`] naming
//! the row instead of somebody else's record. `seq` is not bound: it is assigned by the
//! database inside the writer's transaction, after encryption, and the record id is
//! unique already.
//!
//! Random nonces with one key are safe for about 2^32 messages (NIST SP 800-38D); a gate
//! commits a few million records in its life.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use uuid::Uuid;

use crate::error::OutboxError;
use crate::key::RecordKey;

/// Nonce length in bytes (96 bits).
pub(crate) const NONCE_LEN: usize = 12;

const AAD_DOMAIN: &[u8] = b"torii-outbox record v1\0";
const KEY_CHECK_AAD: &[u8] = b"torii-outbox key check v1\0";
const KEY_CHECK_PLAINTEXT: &[u8] = b"torii-outbox";

/// A fresh random 96-bit nonce from the operating system's CSPRNG.
fn random_nonce() -> Result<Nonce<aes_gcm::aead::consts::U12>, getrandom::Error> {
    let mut nonce = Nonce::default();
    getrandom::fill(&mut nonce)?;
    Ok(nonce)
}

/// The outbox's cipher (the expanded key; wiped on drop).
pub(crate) struct RecordCipher {
    aead: Aes256Gcm,
}

/// One encrypted payload, ready to store.
pub(crate) struct Sealed {
    pub nonce: [u8; NONCE_LEN],
    pub ciphertext: Vec<u8>,
}

impl RecordCipher {
    pub fn new(key: &RecordKey) -> Self {
        RecordCipher {
            aead: Aes256Gcm::new(&Key::<Aes256Gcm>::from(*key.bytes())),
        }
    }

    pub fn seal(
        &self,
        record_id: Uuid,
        created_at: i64,
        outcome: &str,
        payload: &[u8],
    ) -> Result<Sealed, OutboxError> {
        let aad = record_aad(record_id, created_at, outcome);
        let nonce = random_nonce().map_err(|_| OutboxError::Encrypt { len: payload.len() })?;
        let ciphertext = self
            .aead
            .encrypt(
                &nonce,
                Payload {
                    msg: payload,
                    aad: &aad,
                },
            )
            .map_err(|_| OutboxError::Encrypt { len: payload.len() })?;
        Ok(Sealed {
            nonce: nonce.into(),
            ciphertext,
        })
    }

    pub fn open(
        &self,
        seq: u64,
        record_id: Uuid,
        created_at: i64,
        outcome: &str,
        nonce: &[u8],
        ciphertext: &[u8],
    ) -> Result<Vec<u8>, OutboxError> {
        if nonce.len() != NONCE_LEN {
            return Err(OutboxError::Decrypt { seq });
        }
        let aad = record_aad(record_id, created_at, outcome);
        self.aead
            .decrypt(
                &Nonce::try_from(nonce).map_err(|_| OutboxError::Decrypt { seq })?,
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| OutboxError::Decrypt { seq })
    }

    /// A value stored once in a new outbox so that opening it with another key fails at
    /// once, instead of on every record later.
    pub fn key_check(&self) -> Result<Vec<u8>, OutboxError> {
        let nonce = random_nonce().map_err(|_| OutboxError::Encrypt {
            len: KEY_CHECK_PLAINTEXT.len(),
        })?;
        let sealed = self
            .aead
            .encrypt(
                &nonce,
                Payload {
                    msg: KEY_CHECK_PLAINTEXT,
                    aad: KEY_CHECK_AAD,
                },
            )
            .map_err(|_| OutboxError::Encrypt {
                len: KEY_CHECK_PLAINTEXT.len(),
            })?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    pub fn verify_key_check(&self, stored: &[u8]) -> bool {
        if stored.len() < NONCE_LEN {
            return false;
        }
        let (nonce, ciphertext) = stored.split_at(NONCE_LEN);
        let Ok(nonce) = Nonce::try_from(nonce) else {
            return false;
        };
        self.aead
            .decrypt(
                &nonce,
                Payload {
                    msg: ciphertext,
                    aad: KEY_CHECK_AAD,
                },
            )
            .is_ok_and(|plain| plain == KEY_CHECK_PLAINTEXT)
    }
}

fn record_aad(record_id: Uuid, created_at: i64, outcome: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(AAD_DOMAIN.len() + 16 + 8 + outcome.len());
    aad.extend_from_slice(AAD_DOMAIN);
    aad.extend_from_slice(record_id.as_bytes());
    aad.extend_from_slice(&created_at.to_be_bytes());
    aad.extend_from_slice(outcome.as_bytes());
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cipher() -> RecordCipher {
        RecordCipher::new(&RecordKey::from_bytes([7; 32]))
    }

    #[test]
    fn seals_and_opens() {
        let c = cipher();
        let id = Uuid::new_v4();
        let s = c.seal(id, 1, "admitted", b"{\"x\":1}").unwrap();
        assert_eq!(
            c.open(1, id, 1, "admitted", &s.nonce, &s.ciphertext)
                .unwrap(),
            b"{\"x\":1}"
        );
    }

    #[test]
    fn every_bound_field_matters() {
        let c = cipher();
        let id = Uuid::new_v4();
        let s = c.seal(id, 1, "admitted", b"payload").unwrap();
        let other = Uuid::new_v4();
        for (rid, at, outcome) in [
            (other, 1, "admitted"),
            (id, 2, "admitted"),
            (id, 1, "referred"),
        ] {
            let e = c
                .open(9, rid, at, outcome, &s.nonce, &s.ciphertext)
                .unwrap_err();
            assert!(matches!(e, OutboxError::Decrypt { seq: 9 }));
        }
        assert!(matches!(
            c.open(9, id, 1, "admitted", &s.nonce[..11], &s.ciphertext),
            Err(OutboxError::Decrypt { seq: 9 })
        ));
    }

    #[test]
    fn nonces_differ() {
        let c = cipher();
        let id = Uuid::new_v4();
        let a = c.seal(id, 1, "admitted", b"p").unwrap();
        let b = c.seal(id, 1, "admitted", b"p").unwrap();
        assert_ne!(a.nonce, b.nonce);
    }

    #[test]
    fn key_check_tells_keys_apart() {
        let check = cipher().key_check().unwrap();
        assert!(cipher().verify_key_check(&check));
        assert!(!RecordCipher::new(&RecordKey::from_bytes([8; 32])).verify_key_check(&check));
        assert!(!cipher().verify_key_check(&check[..5]));
    }
}
