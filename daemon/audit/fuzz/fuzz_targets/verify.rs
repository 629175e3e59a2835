//! Any log and head bytes: never a panic; an empty log is the only thing that could
//! pass without a genuine head, and even it needs one.
#![no_main]
use torii_audit::{AuditKey, Entries, verify_bytes};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // [flags] head \0 log: bit 0 of flags = a head is there, bit 1 = check with a key.
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let (head, log) = match rest.iter().position(|&b| b == 0) {
        Some(at) if flags & 1 == 1 => (Some(&rest[..at]), &rest[at + 1..]),
        _ => (None, rest),
    };
    let key = AuditKey::from_bytes([7u8; 32]);
    let key = (flags & 2 == 2).then_some(&key);
    let _ = verify_bytes(log, head, key);
    for entry in Entries::new(log) {
        let _ = entry;
    }
});
