#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use torii_outbox::{Outbox, OutboxConfig, RecordKey};
use uuid::Uuid;

pub const KEY: [u8; 32] = [0x42; 32];

pub fn db(dir: &Path) -> PathBuf {
    dir.join("outbox.db")
}

pub fn config(dir: &Path, capacity: u64) -> OutboxConfig {
    OutboxConfig::new(db(dir), RecordKey::from_bytes(KEY), capacity)
}

pub fn open(dir: &Path, capacity: u64) -> Outbox {
    Outbox::open(config(dir, capacity)).unwrap()
}

pub fn open_with_retention(dir: &Path, capacity: u64, retention: Duration) -> Outbox {
    let mut c = config(dir, capacity);
    c.retention = retention;
    Outbox::open(c).unwrap()
}

/// A record-like JSON payload of about `size` bytes, derived from the id so that a
/// reader can check it without having seen it.
pub fn payload(id: Uuid, size: usize) -> Vec<u8> {
    let head = format!(
        r#"{{"record_id":"{id}","traveller":{{"surname":"TANAKA","given_names":"HANAKO","document_number":"TR1234567"}},"fill":""#
    );
    let fill_len = size.saturating_sub(head.len() + 2);
    let seed = id.as_bytes();
    let fill: String = (0..fill_len)
        .map(|i| char::from(b'a' + (seed[i % 16].wrapping_add(i as u8)) % 26))
        .collect();
    format!(r#"{head}{fill}"}}"#).into_bytes()
}
