//! The audit key, and the two ways an entry is sealed: HMAC-SHA256 with the key, or a
//! plain SHA-256 when the log has none.
//!
//! Why a key matters: the chain alone only proves that the entries agree with each
//! other. Someone who can write the file and knows the format can edit an entry and
//! recompute every hash after it, and the head too; the result verifies. With an HMAC
//! key they cannot: every seal depends on 32 bytes they do not have. The key must
//! therefore live where the log does not (another file, private to the daemon's user,
//! ideally on another medium or delivered as a systemd credential), and a key file that
//! group or others may read is refused.

use std::fmt;
use std::fs;
use std::io::Read as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac as _};
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

use crate::hex;

/// Length of an audit key in bytes.
pub const KEY_LEN: usize = 32;

/// The 32-byte HMAC-SHA256 key of an audit log. `Debug` never shows the bytes, and
/// they are wiped from memory when the key is dropped.
#[derive(Clone)]
pub struct AuditKey {
    bytes: Zeroizing<[u8; KEY_LEN]>,
}

impl fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuditKey(<redacted>)")
    }
}

/// Why a key file was refused. Messages name the file and the problem, never the
/// content.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("audit key {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("audit key {}: not a regular file", path.display())]
    NotAFile { path: PathBuf },
    #[error(
        "audit key {}: has mode {mode:04o}: it must not be accessible to group or others \
         (use mode 0600 or 0400)",
        path.display()
    )]
    Permissive { path: PathBuf, mode: u32 },
    #[error("audit key {}: {problem}", path.display())]
    Format { path: PathBuf, problem: String },
}

impl AuditKey {
    /// A key from its raw bytes (keys that come from somewhere other than a file, tests).
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        AuditKey {
            bytes: Zeroizing::new(bytes),
        }
    }

    /// Reads the key file at `path`: 32 raw bytes, or 64 hex digits with an optional
    /// trailing newline (`head -c 32 /dev/urandom > audit.key`, or `xxd -p -c 64` of it).
    ///
    /// Refused, with an error naming the path: a path that is not a regular file (after
    /// following symlinks); any group or other permission bit (the mode is in the
    /// message; `0600` and `0400` are fine); any other content, and an all-zero key (a
    /// placeholder, not a secret).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, KeyError> {
        let path = path.as_ref();
        let io = |source| KeyError::Io {
            path: path.to_owned(),
            source,
        };
        // stat before open: opening a FIFO or a device could block or have side effects;
        // then again on what was opened, in case the path changed in between.
        check_metadata(path, &fs::metadata(path).map_err(io)?)?;
        let file = fs::File::open(path).map_err(io)?;
        check_metadata(path, &file.metadata().map_err(io)?)?;
        let mut content = Zeroizing::new(Vec::with_capacity(2 * KEY_LEN + 3));
        file.take(2 * KEY_LEN as u64 + 3)
            .read_to_end(&mut content)
            .map_err(io)?;
        parse_key(&content)
            .map(AuditKey::from_bytes)
            .map_err(|problem| KeyError::Format {
                path: path.to_owned(),
                problem,
            })
    }
}

fn check_metadata(path: &Path, meta: &fs::Metadata) -> Result<(), KeyError> {
    if !meta.is_file() {
        return Err(KeyError::NotAFile {
            path: path.to_owned(),
        });
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(KeyError::Permissive {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

/// 32 raw bytes, or 64 hex digits optionally followed by "\n" or "\r\n".
fn parse_key(content: &[u8]) -> Result<[u8; KEY_LEN], String> {
    const EXPECTED: &str = "expected 32 raw bytes or 64 hex digits (optional trailing newline)";
    let key = if content.len() == KEY_LEN {
        let mut key = [0u8; KEY_LEN];
        key.copy_from_slice(content);
        key
    } else {
        let text = content
            .strip_suffix(b"\r\n")
            .or_else(|| content.strip_suffix(b"\n"))
            .unwrap_or(content);
        if text.len() != 2 * KEY_LEN {
            return Err(match content.len() {
                0 => format!("is empty: {EXPECTED}"),
                n if n > 2 * KEY_LEN + 2 => format!("is too long: {EXPECTED}"),
                n => format!("is {n} bytes long: {EXPECTED}"),
            });
        }
        hex::decode_32_any_case(text)
            .ok_or_else(|| format!("is 64 characters long but not all hex digits: {EXPECTED}"))?
    };
    if key == [0u8; KEY_LEN] {
        return Err("is all zeros: a placeholder, not a key".to_owned());
    }
    Ok(key)
}

/// How an entry or a head is sealed. Written before the hex digits of the seal
/// (`hmac-sha256:…`, `sha256:…`), so that a reader knows which check applies and can
/// say "this log needs its key" rather than "every entry is forged".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Alg {
    HmacSha256,
    Sha256,
}

impl Alg {
    pub(crate) fn of(key: Option<&AuditKey>) -> Alg {
        if key.is_some() {
            Alg::HmacSha256
        } else {
            Alg::Sha256
        }
    }

    pub(crate) fn tag(self) -> &'static str {
        match self {
            Alg::HmacSha256 => "hmac-sha256",
            Alg::Sha256 => "sha256",
        }
    }

    pub(crate) fn from_tag(tag: &str) -> Option<Alg> {
        match tag {
            "hmac-sha256" => Some(Alg::HmacSha256),
            "sha256" => Some(Alg::Sha256),
            _ => None,
        }
    }
}

fn hmac(key: &AuditKey) -> Hmac<Sha256> {
    <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(&key.bytes[..])
        .expect("HMAC takes keys of any length")
}

/// Seals `input` with the key, or hashes it without one.
pub(crate) fn seal(key: Option<&AuditKey>, input: &[u8]) -> [u8; 32] {
    match key {
        Some(key) => {
            let mut mac = hmac(key);
            mac.update(input);
            mac.finalize().into_bytes().into()
        }
        None => Sha256::digest(input).into(),
    }
}

/// The outcome of checking a seal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SealCheck {
    Valid,
    /// Wrong seal: edited, or sealed with another key.
    Mismatch,
    /// Sealed with a key, and none was given.
    KeyRequired,
    /// A plain hash where the key's HMAC was expected.
    NotKeyed,
}

pub(crate) fn check_seal(
    key: Option<&AuditKey>,
    alg: Alg,
    input: &[u8],
    seal_bytes: &[u8; 32],
) -> SealCheck {
    match (key, alg) {
        (None, Alg::HmacSha256) => SealCheck::KeyRequired,
        (Some(_), Alg::Sha256) => SealCheck::NotKeyed,
        (Some(key), Alg::HmacSha256) => {
            let mut mac = hmac(key);
            mac.update(input);
            // Constant-time comparison.
            if mac.verify_slice(seal_bytes).is_ok() {
                SealCheck::Valid
            } else {
                SealCheck::Mismatch
            }
        }
        (None, Alg::Sha256) => {
            let digest: [u8; 32] = Sha256::digest(input).into();
            if &digest == seal_bytes {
                SealCheck::Valid
            } else {
                SealCheck::Mismatch
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_content_is_raw_or_hex() {
        let raw = [7u8; 32];
        assert_eq!(parse_key(&raw), Ok(raw));
        let text = "07".repeat(32);
        assert_eq!(parse_key(text.as_bytes()), Ok(raw));
        assert_eq!(parse_key(format!("{text}\n").as_bytes()), Ok(raw));
        assert_eq!(parse_key(format!("{text}\r\n").as_bytes()), Ok(raw));
        assert_eq!(
            parse_key(text.to_uppercase().replace("07", "0A").as_bytes()),
            Ok([10u8; 32])
        );
        assert!(parse_key(b"").unwrap_err().contains("empty"));
        assert!(parse_key(&[1u8; 31]).unwrap_err().contains("31 bytes"));
        assert!(parse_key(&[1u8; 200]).unwrap_err().contains("too long"));
        assert!(parse_key("zz".repeat(32).as_bytes()).is_err());
        assert!(parse_key(&[0u8; 32]).unwrap_err().contains("zeros"));
    }

    #[test]
    fn seals_check_against_the_right_key_only() {
        let key = AuditKey::from_bytes([1u8; 32]);
        let other = AuditKey::from_bytes([2u8; 32]);
        let sealed = seal(Some(&key), b"entry");
        let alg = Alg::HmacSha256;
        assert_eq!(
            check_seal(Some(&key), alg, b"entry", &sealed),
            SealCheck::Valid
        );
        assert_eq!(
            check_seal(Some(&key), alg, b"entrz", &sealed),
            SealCheck::Mismatch
        );
        assert_eq!(
            check_seal(Some(&other), alg, b"entry", &sealed),
            SealCheck::Mismatch
        );
        assert_eq!(
            check_seal(None, alg, b"entry", &sealed),
            SealCheck::KeyRequired
        );
        let hashed = seal(None, b"entry");
        assert_eq!(
            check_seal(None, Alg::Sha256, b"entry", &hashed),
            SealCheck::Valid
        );
        assert_eq!(
            check_seal(Some(&key), Alg::Sha256, b"entry", &hashed),
            SealCheck::NotKeyed
        );
    }

    #[test]
    fn debug_hides_the_key() {
        let key = AuditKey::from_bytes([0xab; 32]);
        assert_eq!(format!("{key:?}"), "AuditKey(<redacted>)");
    }
}
