//! The two file formats, and the canonical byte strings their seals cover.
//!
//! Log line (JSON, one per entry, `\n`-terminated; fields in this order):
//!
//! ```text
//! {"seq":17,"at":"2026-05-01T08:00:00.123456Z","kind":"mode-changed",
//!  "actor":"token:console-1","detail":"in-service -> maintenance",
//!  "prev":"<64 hex: entry 16's seal>","mac":"hmac-sha256:<64 hex>"}
//! ```
//!
//! Head file (`<log>.head`, one JSON line):
//!
//! ```text
//! {"seq":17,"last":"<64 hex: entry 17's seal>","mac":"hmac-sha256:<64 hex>"}
//! ```
//!
//! Seals are computed over a length-prefixed binary encoding, not over the JSON: the
//! JSON spelling (escapes, spacing) is not what is authenticated, the values are, so
//! the check does not depend on how a JSON library prints a string.
//!
//! ```text
//! entry: "torii-audit/v1 entry\0" | seq u64 BE | str(at) | str(kind)
//!        | 0x00 (no actor) or 0x01 str(actor) | str(detail) | prev (32 bytes)
//! head:  "torii-audit/v1 head\0"  | seq u64 BE | last (32 bytes)
//! str(s) = length u32 BE | UTF-8 bytes
//! ```
//!
//! The two domain strings keep an entry's seal from ever being taken for a head's.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::event::{self, AuditEntry, MAX_DETAIL_LEN};
use crate::hex;
use crate::key::{self, Alg, AuditKey, SealCheck};

/// The `prev` of the first entry, and the `last` of a head before any entry.
pub(crate) const GENESIS: [u8; 32] = [0; 32];

/// Longest line a reader accepts, in bytes (an entry is at most a few KiB even with
/// every character of its detail escaped).
pub(crate) const MAX_LINE: usize = 64 * 1024;

/// Longest head file a reader accepts, in bytes.
pub(crate) const MAX_HEAD: usize = 1024;

const ENTRY_DOMAIN: &[u8] = b"torii-audit/v1 entry\0";
const HEAD_DOMAIN: &[u8] = b"torii-audit/v1 head\0";

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    seq: u64,
    at: String,
    kind: String,
    actor: Option<String>,
    detail: String,
    prev: String,
    mac: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHead {
    seq: u64,
    last: String,
    mac: String,
}

fn push_str(out: &mut Vec<u8>, s: &str) {
    // Every string is bounded well below 4 GiB (lines are at most MAX_LINE).
    let len = u32::try_from(s.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn entry_input(
    seq: u64,
    at: &str,
    kind: &str,
    actor: Option<&str>,
    detail: &str,
    prev: &[u8; 32],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(ENTRY_DOMAIN.len() + 80 + at.len() + detail.len());
    out.extend_from_slice(ENTRY_DOMAIN);
    out.extend_from_slice(&seq.to_be_bytes());
    push_str(&mut out, at);
    push_str(&mut out, kind);
    match actor {
        None => out.push(0),
        Some(actor) => {
            out.push(1);
            push_str(&mut out, actor);
        }
    }
    push_str(&mut out, detail);
    out.extend_from_slice(prev);
    out
}

fn head_input(seq: u64, last: &[u8; 32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEAD_DOMAIN.len() + 40);
    out.extend_from_slice(HEAD_DOMAIN);
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(last);
    out
}

fn tagged(alg: Alg, seal: &[u8; 32]) -> String {
    format!("{}:{}", alg.tag(), hex::encode(seal))
}

fn parse_tagged(text: &str) -> Result<(Alg, [u8; 32]), String> {
    let (tag, digits) = text
        .split_once(':')
        .ok_or_else(|| "mac: expected ALGORITHM:HEX".to_owned())?;
    let alg = Alg::from_tag(tag).ok_or_else(|| format!("mac: unknown algorithm {tag:?}"))?;
    let seal = hex::decode_32(digits)
        .ok_or_else(|| "mac: expected 64 lower-case hex digits".to_owned())?;
    Ok((alg, seal))
}

/// The line for a new entry (with its `\n`), and its seal.
pub(crate) fn encode_entry(
    seq: u64,
    at: &str,
    kind: &str,
    actor: Option<&str>,
    detail: &str,
    prev: &[u8; 32],
    key: Option<&AuditKey>,
) -> (Vec<u8>, [u8; 32]) {
    let seal = key::seal(key, &entry_input(seq, at, kind, actor, detail, prev));
    let raw = RawEntry {
        seq,
        at: at.to_owned(),
        kind: kind.to_owned(),
        actor: actor.map(str::to_owned),
        detail: detail.to_owned(),
        prev: hex::encode(prev),
        mac: tagged(Alg::of(key), &seal),
    };
    let mut line = serde_json::to_vec(&raw).expect("an entry always serializes");
    line.push(b'\n');
    (line, seal)
}

/// A line parsed, not yet checked.
#[derive(Debug)]
pub(crate) struct Decoded {
    raw: RawEntry,
    pub(crate) prev: [u8; 32],
    alg: Alg,
    pub(crate) seal: [u8; 32],
}

impl Decoded {
    pub(crate) fn seq(&self) -> u64 {
        self.raw.seq
    }

    /// Parses a line (without its `\n`). The problem, if any, is for a person.
    pub(crate) fn parse(line: &[u8]) -> Result<Decoded, String> {
        let raw: RawEntry =
            serde_json::from_slice(line).map_err(|e| format!("not an audit entry: {e}"))?;
        let prev = hex::decode_32(&raw.prev)
            .ok_or_else(|| "prev: expected 64 lower-case hex digits".to_owned())?;
        let (alg, seal) = parse_tagged(&raw.mac)?;
        Ok(Decoded {
            raw,
            prev,
            alg,
            seal,
        })
    }

    /// Checks the seal with the key (or without one).
    pub(crate) fn check(&self, key: Option<&AuditKey>) -> SealCheck {
        let raw = &self.raw;
        let input = entry_input(
            raw.seq,
            &raw.at,
            &raw.kind,
            raw.actor.as_deref(),
            &raw.detail,
            &self.prev,
        );
        key::check_seal(key, self.alg, &input, &self.seal)
    }

    /// The fields' own rules, checked after the seal (so that an edit is reported as an
    /// edit). A sealed entry that breaks them came from another writer.
    pub(crate) fn into_entry(self) -> Result<AuditEntry, String> {
        let raw = self.raw;
        let at = OffsetDateTime::parse(&raw.at, &Rfc3339)
            .map_err(|e| format!("at: not an RFC 3339 time: {e}"))?;
        if !at.offset().is_utc() {
            return Err("at: not in UTC".to_owned());
        }
        if !event::valid_kind(&raw.kind) {
            return Err("kind: not a kebab-case name".to_owned());
        }
        if raw.actor.as_deref().is_some_and(|a| !event::valid_actor(a)) {
            return Err("actor: not a short printable label".to_owned());
        }
        if raw.detail.len() > MAX_DETAIL_LEN {
            return Err(format!("detail: longer than {MAX_DETAIL_LEN} bytes"));
        }
        Ok(AuditEntry {
            seq: raw.seq,
            at,
            kind: raw.kind,
            actor: raw.actor,
            detail: raw.detail,
            prev: raw.prev,
            mac: raw.mac,
        })
    }
}

/// A head file, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Head {
    pub(crate) seq: u64,
    pub(crate) last: [u8; 32],
    alg: Alg,
    seal: [u8; 32],
}

impl Head {
    pub(crate) fn parse(bytes: &[u8]) -> Result<Head, String> {
        if bytes.len() > MAX_HEAD {
            return Err(format!("longer than {MAX_HEAD} bytes"));
        }
        let raw: RawHead = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        let last = hex::decode_32(&raw.last)
            .ok_or_else(|| "last: expected 64 lower-case hex digits".to_owned())?;
        let (alg, seal) = parse_tagged(&raw.mac)?;
        Ok(Head {
            seq: raw.seq,
            last,
            alg,
            seal,
        })
    }

    pub(crate) fn check(&self, key: Option<&AuditKey>) -> SealCheck {
        key::check_seal(key, self.alg, &head_input(self.seq, &self.last), &self.seal)
    }

    /// The head file's content for `seq` and its entry's seal.
    pub(crate) fn encode(seq: u64, last: &[u8; 32], key: Option<&AuditKey>) -> Vec<u8> {
        let seal = key::seal(key, &head_input(seq, last));
        let raw = RawHead {
            seq,
            last: hex::encode(last),
            mac: tagged(Alg::of(key), &seal),
        };
        let mut bytes = serde_json::to_vec(&raw).expect("a head always serializes");
        bytes.push(b'\n');
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_round_trips_and_its_seal_covers_every_field() {
        let key = AuditKey::from_bytes([9u8; 32]);
        let (line, seal) = encode_entry(
            3,
            "2026-05-01T08:00:00.5Z",
            "mode-changed",
            Some("uid:1001"),
            "in-service -> maintenance",
            &[4u8; 32],
            Some(&key),
        );
        assert!(line.ends_with(b"\n"));
        let text = std::str::from_utf8(&line).unwrap().trim_end();
        assert!(text.starts_with(
            r#"{"seq":3,"at":"2026-05-01T08:00:00.5Z","kind":"mode-changed","actor":"uid:1001","#
        ));
        let decoded = Decoded::parse(text.as_bytes()).unwrap();
        assert_eq!(decoded.seal, seal);
        assert_eq!(decoded.check(Some(&key)), SealCheck::Valid);
        let entry = decoded.into_entry().unwrap();
        assert_eq!(entry.seq, 3);
        assert_eq!(entry.detail, "in-service -> maintenance");

        // Changing any one value breaks the seal; an absent actor differs from "".
        for (from, to) in [
            (r#""seq":3"#, r#""seq":4"#),
            ("08:00:00.5Z", "08:00:01.5Z"),
            ("mode-changed", "mode-changes"),
            ("uid:1001", "uid:1002"),
            ("maintenance", "maintenancE"),
            (r#""prev":"04"#, r#""prev":"05"#),
            (r#""actor":"uid:1001""#, r#""actor":null"#),
        ] {
            let edited = text.replacen(from, to, 1);
            assert_ne!(edited, text, "{from}");
            let decoded = Decoded::parse(edited.as_bytes()).unwrap();
            assert_eq!(decoded.check(Some(&key)), SealCheck::Mismatch, "{from}");
        }
    }

    #[test]
    fn length_prefixes_keep_fields_apart() {
        let a = entry_input(1, "t", "ab", None, "c", &GENESIS);
        let b = entry_input(1, "t", "a", None, "bc", &GENESIS);
        assert_ne!(a, b);
        assert_ne!(
            entry_input(1, "t", "k", None, "", &GENESIS),
            entry_input(1, "t", "k", Some(""), "", &GENESIS)
        );
    }

    #[test]
    fn a_head_round_trips() {
        let key = AuditKey::from_bytes([9u8; 32]);
        let bytes = Head::encode(5, &[1u8; 32], Some(&key));
        let head = Head::parse(&bytes).unwrap();
        assert_eq!((head.seq, head.last), (5, [1u8; 32]));
        assert_eq!(head.check(Some(&key)), SealCheck::Valid);
        assert_eq!(head.check(None), SealCheck::KeyRequired);
        let other = AuditKey::from_bytes([8u8; 32]);
        assert_eq!(head.check(Some(&other)), SealCheck::Mismatch);
        let forged = String::from_utf8(bytes)
            .unwrap()
            .replace("\"seq\":5", "\"seq\":6");
        assert_eq!(
            Head::parse(forged.as_bytes()).unwrap().check(Some(&key)),
            SealCheck::Mismatch
        );
    }

    #[test]
    fn malformed_fields_are_named() {
        let problem = |line: &str| Decoded::parse(line.as_bytes()).unwrap_err();
        assert!(problem("{").contains("not an audit entry"));
        let zeros = "0".repeat(64);
        let base = format!(
            r#"{{"seq":1,"at":"x","kind":"k","actor":null,"detail":"","prev":"{zeros}","mac":"sha256:{zeros}"}}"#
        );
        assert!(Decoded::parse(base.as_bytes()).is_ok());
        assert!(problem(&base.replace("sha256:", "md5:")).contains("unknown algorithm"));
        assert!(problem(&base.replacen(&zeros, "00", 1)).contains("prev"));
        assert!(
            problem(&base.replace("\"kind\"", "\"extra\":1,\"kind\"")).contains("unknown field")
        );
        let decoded = Decoded::parse(base.as_bytes()).unwrap();
        assert!(decoded.into_entry().unwrap_err().contains("at:"));
    }
}
