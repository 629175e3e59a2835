//! The record key: the AES-256-GCM key that encrypts every record's payload at rest.
//!
//! The key lives in its own file, apart from the database, so that a copy of the
//! database (a backup, a disk pulled from a decommissioned gate) does not disclose the
//! travellers in it. The file must be private to the daemon's user: a key file that
//! group or others may read is refused rather than used, because using it would make the
//! encryption decorative. Its content is either the 32 raw key bytes or 64 hex digits
//! (an optional trailing newline is allowed, so `xxd -p -c 64` or an editor's output
//! works).
//!
//! The key's bytes are never printed: `Debug` is redacted, errors describe the problem
//! (length, position of a bad character) without quoting content, and the bytes are
//! wiped from memory when the key is dropped.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use zeroize::Zeroizing;

use crate::error::OutboxError;

/// Length of an AES-256 key in bytes.
pub const KEY_LEN: usize = 32;

/// A 32-byte AES-256-GCM record key. `Debug` never shows the bytes.
#[derive(Clone)]
pub struct RecordKey {
    bytes: Zeroizing<[u8; KEY_LEN]>,
}

impl fmt::Debug for RecordKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecordKey(<redacted>)")
    }
}

impl RecordKey {
    /// A key from its raw bytes (for keys that come from somewhere other than a file).
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        RecordKey {
            bytes: Zeroizing::new(bytes),
        }
    }

    /// A fresh random key from the operating system's CSPRNG (not written anywhere).
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        // Without an entropy source the gate cannot protect records at all.
        getrandom::fill(&mut bytes[..]).expect("the OS random number generator");
        RecordKey { bytes }
    }

    /// Reads the key file at `path`.
    ///
    /// Refused, with an error naming the path and the problem: a path that is not a
    /// regular file (after following symlinks); a file with any group or other permission
    /// bit set (its mode is in the message; `0600` and `0400` are fine); content that is
    /// neither exactly 32 bytes nor 64 hex digits with an optional trailing newline.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, OutboxError> {
        let path = path.as_ref();
        // stat before open: opening a FIFO or a device could block or have side effects.
        let meta = fs::metadata(path).map_err(|e| OutboxError::key(path, e.to_string()))?;
        check_metadata(path, &meta)?;
        let file = fs::File::open(path).map_err(|e| OutboxError::key(path, e.to_string()))?;
        // And again on what was actually opened, in case the path changed in between.
        let meta = file
            .metadata()
            .map_err(|e| OutboxError::key(path, e.to_string()))?;
        check_metadata(path, &meta)?;

        // Longest accepted content: 64 hex digits + "\r\n". Read one byte more to tell
        // "too long" apart without reading an arbitrarily large file.
        let mut content = Zeroizing::new(Vec::with_capacity(2 * KEY_LEN + 3));
        file.take(2 * KEY_LEN as u64 + 3)
            .read_to_end(&mut content)
            .map_err(|e| OutboxError::key(path, e.to_string()))?;
        parse_key(&content)
            .map(RecordKey::from_bytes)
            .map_err(|problem| OutboxError::key(path, problem))
    }

    /// Writes a fresh random key to `path` (64 hex digits and a newline, mode `0600`)
    /// and returns it. Refuses to overwrite an existing file: replacing the key of an
    /// outbox makes every record in it unreadable.
    pub fn generate_file(path: impl AsRef<Path>) -> Result<Self, OutboxError> {
        let path = path.as_ref();
        let key = RecordKey::generate();
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| {
                let problem = if e.kind() == std::io::ErrorKind::AlreadyExists {
                    "already exists; refusing to overwrite a record key".to_owned()
                } else {
                    e.to_string()
                };
                OutboxError::key(path, problem)
            })?;
        let mut text = Zeroizing::new(hex_encode(&key.bytes[..]));
        text.push('\n');
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| OutboxError::key(path, e.to_string()))?;
        crate::store::sync_parent_dir(path)?;
        Ok(key)
    }

    /// The key's bytes, for deriving the gate's other at-rest keys from this one secret
    /// (the registry's: `torii_core::registry::RegistryKey::derive_from`). Never log or
    /// store them.
    pub fn expose_secret(&self) -> &[u8; KEY_LEN] {
        &self.bytes
    }

    pub(crate) fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.bytes
    }
}

fn check_metadata(path: &Path, meta: &fs::Metadata) -> Result<(), OutboxError> {
    if !meta.is_file() {
        return Err(OutboxError::key(path, "is not a regular file"));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(OutboxError::key(
            path,
            format!(
                "has mode {mode:04o}: a record key must not be accessible to group or others \
                 (use mode 0600 or 0400)"
            ),
        ));
    }
    Ok(())
}

/// 32 raw bytes, or 64 hex digits optionally followed by "\n" or "\r\n".
fn parse_key(content: &[u8]) -> Result<[u8; KEY_LEN], String> {
    if content.len() == KEY_LEN {
        let mut key = [0u8; KEY_LEN];
        key.copy_from_slice(content);
        return Ok(key);
    }
    let text = content
        .strip_suffix(b"\r\n")
        .or_else(|| content.strip_suffix(b"\n"))
        .unwrap_or(content);
    if text.len() != 2 * KEY_LEN {
        return Err(if content.is_empty() {
            "is empty: expected 32 raw bytes or 64 hex digits".to_owned()
        } else if content.len() > 2 * KEY_LEN + 2 {
            "is too long: expected 32 raw bytes or 64 hex digits (optional trailing newline)"
                .to_owned()
        } else {
            format!(
                "is {} bytes long: expected 32 raw bytes or 64 hex digits (optional trailing \
                 newline)",
                content.len()
            )
        });
    }
    let mut key = [0u8; KEY_LEN];
    for (i, pair) in text.chunks_exact(2).enumerate() {
        let (Some(hi), Some(lo)) = (hex_value(pair[0]), hex_value(pair[1])) else {
            let at = 2 * i + usize::from(hex_value(pair[0]).is_some()) + 1;
            return Err(format!(
                "is 64 characters long but character {at} is not a hex digit \
                 (expected 32 raw bytes or 64 hex digits)"
            ));
        };
        key[i] = hi << 4 | lo;
    }
    Ok(key)
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

fn hex_encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_in_either_case() {
        let bytes: [u8; 32] = std::array::from_fn(|i| (i * 37 + 5) as u8);
        let lower = hex_encode(&bytes);
        assert_eq!(parse_key(lower.as_bytes()).unwrap(), bytes);
        assert_eq!(parse_key(lower.to_uppercase().as_bytes()).unwrap(), bytes);
        assert_eq!(parse_key(format!("{lower}\n").as_bytes()).unwrap(), bytes);
        assert_eq!(parse_key(format!("{lower}\r\n").as_bytes()).unwrap(), bytes);
    }

    #[test]
    fn raw_bytes_are_taken_as_they_are() {
        let bytes = [b'\n'; 32];
        assert_eq!(parse_key(&bytes).unwrap(), bytes);
    }

    #[test]
    fn a_bad_hex_digit_is_located_without_being_quoted() {
        let mut text = "ab".repeat(32).into_bytes();
        text[9] = b'z';
        let problem = parse_key(&text).unwrap_err();
        assert!(problem.contains("character 10"), "{problem}");
        assert!(!problem.contains('z'), "{problem}");
    }

    #[test]
    fn wrong_lengths_say_so() {
        assert!(parse_key(b"").unwrap_err().contains("empty"));
        assert!(parse_key(&[1; 31]).unwrap_err().contains("31 bytes"));
        assert!(parse_key(&[1; 33]).unwrap_err().contains("33 bytes"));
        assert!(parse_key(&[b'a'; 70]).unwrap_err().contains("too long"));
        // 64 hex digits followed by two newlines is not "an optional trailing newline".
        let two = format!("{}\n\n", "ab".repeat(32));
        assert!(parse_key(two.as_bytes()).unwrap_err().contains("66 bytes"));
    }

    #[test]
    fn debug_is_redacted() {
        let key = RecordKey::from_bytes([0xab; 32]);
        let shown = format!("{key:?}");
        assert_eq!(shown, "RecordKey(<redacted>)");
    }
}
