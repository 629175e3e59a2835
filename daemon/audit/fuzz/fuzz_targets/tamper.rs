//! A genuine keyed log, damaged by the input: never a panic, and never accepted unless
//! every entry still reads exactly as written.
#![no_main]
use std::sync::OnceLock;

use torii_audit::{AuditEntry, AuditEvent, AuditKey, AuditKind, AuditLog, Entries, verify_bytes};

struct Genuine {
    log: Vec<u8>,
    head: Vec<u8>,
    entries: Vec<AuditEntry>,
}

fn key() -> AuditKey {
    AuditKey::from_bytes([7u8; 32])
}

fn genuine() -> &'static Genuine {
    static GENUINE: OnceLock<Genuine> = OnceLock::new();
    GENUINE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("audit.log");
        let log = AuditLog::open(&path, Some(key())).expect("a new log");
        for (i, kind) in AuditKind::ALL.iter().enumerate() {
            let event = AuditEvent::new(*kind, format!("event {i}: \"quoted\" \\ é"));
            let event = if i % 2 == 0 {
                event.by("token:console-1")
            } else {
                event
            };
            log.append(event).expect("an append");
        }
        drop(log);
        let log = std::fs::read(&path).expect("the log");
        let head = std::fs::read(torii_audit::head_path(&path)).expect("the head");
        let entries = Entries::new(&log[..])
            .map(|e| e.expect("an entry"))
            .collect();
        Genuine { log, head, entries }
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let genuine = genuine();
    let mut log = genuine.log.clone();
    // Each 4 bytes: operation, position (2 bytes), value.
    for op in data.chunks_exact(4) {
        if log.is_empty() {
            break;
        }
        let at = usize::from(u16::from_le_bytes([op[1], op[2]])) % log.len();
        match op[0] % 4 {
            0 => log[at] ^= op[3].max(1),
            1 => {
                let end = (at + 1 + usize::from(op[3])).min(log.len());
                log.drain(at..end);
            }
            2 => log.insert(at, op[3]),
            _ => log.truncate(at),
        }
    }
    if verify_bytes(&log, Some(&genuine.head), Some(&key())).is_ok() {
        let entries: Vec<AuditEntry> = Entries::new(&log[..])
            .map(|e| e.expect("an accepted log reads"))
            .collect();
        assert_eq!(entries, genuine.entries, "a damaged log was accepted");
    }
});
