//! Garbage and random damage: never a panic, never a damaged log accepted.
//! (The fuzz targets in `fuzz/` do the same for longer.)

mod common;

use common::*;
use torii_audit::{AuditEntry, Entries, head_path, verify_bytes};

/// xorshift64*: reproducible noise without a dependency.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

fn entries(log: &[u8]) -> Vec<AuditEntry> {
    Entries::new(log).map(Result::unwrap).collect()
}

#[test]
fn random_bytes_never_panic() {
    let mut noise = Noise(0x9e37_79b9_7f4a_7c15);
    let built = build(Some(key(1)));
    let head = read(&head_path(&built.path));
    let fragments: [&[u8]; 8] = [
        b"{\"seq\":",
        b"\"mac\":\"hmac-sha256:",
        b"\"prev\":\"",
        b"\n",
        b"}",
        b"00000000000000000000000000000000",
        b"18446744073709551615",
        b"\\u0000",
    ];
    for round in 0..3000 {
        let mut log = Vec::new();
        for _ in 0..noise.below(20) {
            if noise.below(2) == 0 {
                log.extend_from_slice(fragments[noise.below(fragments.len())]);
            } else {
                let len = noise.below(40);
                log.extend(noise.bytes(len));
            }
        }
        let len = noise.below(200);
        let garbage_head = noise.bytes(len);
        let heads: [Option<&[u8]>; 3] = [None, Some(&head), Some(&garbage_head)];
        let head = heads[round % 3];
        let key = key(1);
        let keys = [None, Some(&key)];
        let outcome = verify_bytes(&log, head, keys[round % 2]);
        assert!(outcome.is_err() || log.is_empty(), "{log:?}");
        let _ = Entries::new(&log[..]).count();
    }
}

#[test]
fn very_long_lines_are_malformed_not_a_memory_problem() {
    let mut log = vec![b'x'; 200_000];
    log.push(b'\n');
    let error = verify_bytes(&log, None, None).unwrap_err();
    assert!(error.to_string().contains("longer than"), "{error}");
    let read: Vec<_> = Entries::new(&log[..]).collect();
    assert_eq!(read.len(), 1);
}

#[test]
fn random_damage_is_never_accepted_unless_harmless() {
    let built = build_n(Some(key(1)), 12);
    let log = read(&built.path);
    let head = read(&head_path(&built.path));
    let original = entries(&log);
    let mut noise = Noise(42);
    let mut caught = 0;
    for _ in 0..3000 {
        let mut damaged = log.clone();
        for _ in 0..1 + noise.below(3) {
            let at = noise.below(damaged.len());
            match noise.below(5) {
                0 => damaged[at] ^= 1 << noise.below(8),
                1 => {
                    let end = (at + 1 + noise.below(300)).min(damaged.len());
                    damaged.drain(at..end);
                }
                2 => damaged.insert(at, noise.next() as u8),
                3 => damaged.truncate(at),
                _ => {
                    // Move a byte range elsewhere.
                    let end = (at + 1 + noise.below(400)).min(damaged.len());
                    let piece: Vec<u8> = damaged.drain(at..end).collect();
                    let to = noise.below(damaged.len() + 1);
                    damaged.splice(to..to, piece);
                }
            }
            if damaged.is_empty() {
                break;
            }
        }
        match verify_bytes(&damaged, Some(&head), Some(&key(1))) {
            // Accepted: then every entry is exactly what was written (the damage can
            // only have changed the JSON spelling, e.g. the case of a `\u` escape).
            Ok(_) => assert_eq!(
                entries(&damaged),
                original,
                "{}",
                String::from_utf8_lossy(&damaged)
            ),
            Err(e) => {
                assert!(e.is_tampering(), "{e}");
                caught += 1;
            }
        }
    }
    assert!(caught > 2900, "{caught}");
}

#[test]
fn the_largest_seq_is_refused_not_a_panic() {
    // Only possible without a key: anyone can seal anything.
    let built = build(None);
    let line = reseal(&lines(&built.path)[0], None, |v| v["seq"] = u64::MAX.into());
    let head = head_bytes(u64::MAX, &seal_of(&line), None);
    for tail in ["", "{\"seq\":"] {
        write_lines(&built.path, std::slice::from_ref(&line));
        let mut log = read(&built.path);
        log.extend_from_slice(tail.as_bytes());
        std::fs::write(&built.path, &log).unwrap();
        std::fs::write(head_path(&built.path), &head).unwrap();
        assert!(matches!(
            torii_audit::AuditLog::open(&built.path, None),
            Err(torii_audit::AuditError::Exhausted { .. })
        ));
        assert!(verify_bytes(&log, Some(&head), None).is_err());
    }
}
