//! Building real logs on disk, and tampering with them.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use hmac::{KeyInit as _, Mac as _};
use sha2::Digest as _;
use torii_audit::{AuditEvent, AuditKey, AuditKind, AuditLog, head_path};

pub fn key(byte: u8) -> AuditKey {
    AuditKey::from_bytes([byte; 32])
}

/// A log written by `AuditLog`, and its head after every seq (`heads[seq]`).
pub struct Built {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
    pub heads: Vec<Vec<u8>>,
}

/// The events appended after `audit-opened` (seq 1): seq 2 to 6.
pub const EVENTS: usize = 5;

pub fn build(key: Option<AuditKey>) -> Built {
    build_n(key, EVENTS)
}

pub fn build_n(key: Option<AuditKey>, events: usize) -> Built {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let log = AuditLog::open(&path, key).unwrap();
    let mut heads = vec![Vec::new(), read(&head_path(&path))];
    let kinds = [
        AuditKind::ModeChanged,
        AuditKind::DoorOpenedByOfficer,
        AuditKind::DriverFault,
        AuditKind::ConfigReloaded,
        AuditKind::ApiAuthFailed,
    ];
    for i in 0..events {
        let mut event = AuditEvent::new(kinds[i % kinds.len()], format!("event number {i}"));
        if i % 2 == 0 {
            event = event.by("officer-token:console-1");
        }
        let seq = log.append(event).unwrap();
        assert_eq!(seq as usize, i + 2);
        heads.push(read(&head_path(&path)));
    }
    Built { dir, path, heads }
}

pub fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

/// The log's lines, without their `\n`.
pub fn lines(path: &Path) -> Vec<String> {
    String::from_utf8(read(path))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

pub fn write_lines(path: &Path, lines: &[String]) {
    let mut text = lines.join("\n");
    if !lines.is_empty() {
        text.push('\n');
    }
    std::fs::write(path, text).unwrap();
}

/// The seal of an entry, computed from the documented encoding (independently of the
/// crate): `"torii-audit/v1 entry\0" | seq u64 BE | str(at) | str(kind) | 0 or 1
/// str(actor) | str(detail) | prev`, str = u32 BE length + bytes.
pub fn seal_entry(value: &serde_json::Value, key: Option<&[u8; 32]>) -> [u8; 32] {
    fn push_str(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&(s.len() as u32).to_be_bytes());
        out.extend_from_slice(s.as_bytes());
    }
    let mut input = b"torii-audit/v1 entry\0".to_vec();
    input.extend_from_slice(&value["seq"].as_u64().unwrap().to_be_bytes());
    push_str(&mut input, value["at"].as_str().unwrap());
    push_str(&mut input, value["kind"].as_str().unwrap());
    match value["actor"].as_str() {
        None => input.push(0),
        Some(actor) => {
            input.push(1);
            push_str(&mut input, actor);
        }
    }
    push_str(&mut input, value["detail"].as_str().unwrap());
    input.extend_from_slice(&hex_decode(value["prev"].as_str().unwrap()));
    seal(&input, key)
}

/// The seal of a head: `"torii-audit/v1 head\0" | seq u64 BE | last`.
pub fn seal_head(seq: u64, last: &[u8], key: Option<&[u8; 32]>) -> [u8; 32] {
    let mut input = b"torii-audit/v1 head\0".to_vec();
    input.extend_from_slice(&seq.to_be_bytes());
    input.extend_from_slice(last);
    seal(&input, key)
}

fn seal(input: &[u8], key: Option<&[u8; 32]>) -> [u8; 32] {
    match key {
        Some(key) => {
            let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
            mac.update(input);
            mac.finalize().into_bytes().into()
        }
        None => sha2::Sha256::digest(input).into(),
    }
}

pub fn tagged(seal: &[u8; 32], keyed: bool) -> String {
    let tag = if keyed { "hmac-sha256" } else { "sha256" };
    format!("{tag}:{}", hex_encode(seal))
}

pub fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn hex_decode(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// Re-seals a line edited with `edit`, as someone holding `key` (or nobody, without)
/// would: the result is a line whose own seal is right.
pub fn reseal(
    line: &str,
    key: Option<&[u8; 32]>,
    edit: impl FnOnce(&mut serde_json::Value),
) -> String {
    let mut value: serde_json::Value = serde_json::from_str(line).unwrap();
    edit(&mut value);
    let seal = seal_entry(&value, key);
    value["mac"] = tagged(&seal, key.is_some()).into();
    serde_json::to_string(&value).unwrap()
}

/// The seal (hex) in a line's `mac`.
pub fn seal_of(line: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(line).unwrap();
    value["mac"]
        .as_str()
        .unwrap()
        .split_once(':')
        .unwrap()
        .1
        .to_owned()
}

/// A head naming `seq` whose entry has the seal `last_hex`.
pub fn head_bytes(seq: u64, last_hex: &str, key: Option<&[u8; 32]>) -> Vec<u8> {
    let seal = seal_head(seq, &hex_decode(last_hex), key);
    format!(
        "{{\"seq\":{seq},\"last\":\"{last_hex}\",\"mac\":\"{}\"}}\n",
        tagged(&seal, key.is_some())
    )
    .into_bytes()
}
