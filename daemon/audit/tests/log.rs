//! Writing: opening, appending, reopening, crashes, concurrency, keys.

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::sync::Arc;

use common::*;
use torii_audit::{
    AuditError, AuditEvent, AuditKey, AuditKind, AuditLog, KeyError, VerifyError, head_path,
    read_entries, verify,
};

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn kinds(path: &std::path::Path) -> Vec<String> {
    read_entries(path)
        .unwrap()
        .map(|e| e.unwrap().kind)
        .collect()
}

#[test]
fn a_new_log_is_private_and_starts_with_audit_opened() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let log = AuditLog::open(&path, Some(key(1))).unwrap();
    assert!(log.is_keyed());
    assert_eq!(log.path(), path);
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&head_path(&path)), 0o600);
    let anchor = log.anchor();
    assert_eq!(anchor.seq, 1);
    assert_eq!(anchor.mac.len(), 64);

    let seq = log
        .append(
            AuditEvent::new(AuditKind::ModeChanged, "in-service -> maintenance")
                .by("officer-token:console-1"),
        )
        .unwrap();
    assert_eq!(seq, 2);
    let entries: Vec<_> = read_entries(&path).unwrap().map(Result::unwrap).collect();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].known_kind(), Some(AuditKind::AuditOpened));
    assert_eq!(entries[0].actor.as_deref(), Some("system"));
    assert!(
        entries[0].detail.starts_with("new audit log"),
        "{}",
        entries[0].detail
    );
    assert_eq!(entries[1].kind, "mode-changed");
    assert_eq!(entries[1].actor.as_deref(), Some("officer-token:console-1"));
    assert_eq!(entries[1].prev, seal_of(&lines(&path)[0]));
    assert!(entries[1].at.offset().is_utc());
    assert!(entries[0].at <= entries[1].at);

    let report = verify(&path, Some(&key(1))).unwrap();
    assert_eq!((report.entries, report.head_seq), (2, 2));
    assert!(report.keyed);
    assert_eq!(report.first_at, Some(entries[0].at));
    assert_eq!(report.last_at, Some(entries[1].at));
}

#[test]
fn reopening_continues_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    for round in 0..3u64 {
        let log = AuditLog::open(&path, Some(key(1))).unwrap();
        for _ in 0..3 {
            log.append(AuditEvent::new(AuditKind::DaemonStarted, "toriid 0.1.0"))
                .unwrap();
        }
        assert_eq!(log.anchor().seq, (round + 1) * 4);
    }
    assert_eq!(verify(&path, Some(&key(1))).unwrap().entries, 12);
    let entries: Vec<_> = read_entries(&path).unwrap().map(Result::unwrap).collect();
    assert_eq!(entries[4].kind, "audit-opened");
    assert!(entries[4].detail.starts_with("continuing after seq 4"));
    assert!(
        entries
            .iter()
            .enumerate()
            .all(|(i, e)| e.seq == i as u64 + 1)
    );
}

#[test]
fn concurrent_appends_keep_seq_contiguous() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let log = Arc::new(AuditLog::open(&path, Some(key(1))).unwrap());
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                (0..25)
                    .map(|i| {
                        log.append(AuditEvent::new(
                            AuditKind::RecordForwarded,
                            format!("thread {t} record {i}"),
                        ))
                        .unwrap()
                    })
                    .collect::<Vec<u64>>()
            })
        })
        .collect();
    let mut seqs: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (2..=201).collect::<Vec<u64>>());
    let report = verify(&path, Some(&key(1))).unwrap();
    assert_eq!((report.entries, report.head_seq), (201, 201));
}

#[test]
fn a_second_writer_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let _log = AuditLog::open(&path, None).unwrap();
    assert!(matches!(
        AuditLog::open(&path, None),
        Err(AuditError::Locked { .. })
    ));
}

#[test]
fn events_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let log = AuditLog::open(&path, None).unwrap();
    // Fields are cleaned rather than the event refused.
    log.append(AuditEvent::new(AuditKind::ApiAuthFailed, "x").by("token:officer one"))
        .unwrap();
    log.append(AuditEvent::new(AuditKind::ApiAuthFailed, "x").by(""))
        .unwrap();
    log.append(AuditEvent::new(
        AuditKind::DriverFault,
        format!("line one\nline two\u{1b}[0m{}", "x".repeat(10_000)),
    ))
    .unwrap();
    let entries: Vec<_> = read_entries(&path).unwrap().map(Result::unwrap).collect();
    assert_eq!(entries[1].actor.as_deref(), Some("token:officer_one"));
    assert_eq!(entries[2].actor, None);
    let detail = &entries[3].detail;
    assert!(detail.starts_with("line one line two [0m"));
    assert!(detail.len() <= torii_audit::MAX_DETAIL_LEN);
    assert_eq!(verify(&path, None).unwrap().entries, 4);
}

fn refusal(result: Result<AuditLog, AuditError>) -> VerifyError {
    match result {
        Err(AuditError::Refused { source, .. }) => source,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn open_refuses_a_log_whose_end_was_tampered_with() {
    // Last line deleted.
    let built = build(Some(key(1)));
    let mut all = lines(&built.path);
    all.pop();
    write_lines(&built.path, &all);
    assert!(matches!(
        refusal(AuditLog::open(&built.path, Some(key(1)))),
        VerifyError::Truncated {
            last_seq: 5,
            head_seq: 6
        }
    ));
    // Nothing was written.
    assert_eq!(lines(&built.path), all);

    // Last line edited: the line number is counted.
    let built = build(Some(key(1)));
    let mut all = lines(&built.path);
    all[5] = all[5].replace("event number 4", "event number 5");
    write_lines(&built.path, &all);
    assert!(matches!(
        refusal(AuditLog::open(&built.path, Some(key(1)))),
        VerifyError::Edited { line: 6, seq: 6 }
    ));

    // Garbage last line.
    let built = build(Some(key(1)));
    let mut all = lines(&built.path);
    all.push("{}".to_owned());
    write_lines(&built.path, &all);
    assert!(matches!(
        refusal(AuditLog::open(&built.path, Some(key(1)))),
        VerifyError::Malformed { line: 7, .. }
    ));

    // Head gone, head stale, log gone.
    let built = build(Some(key(1)));
    std::fs::remove_file(head_path(&built.path)).unwrap();
    assert!(matches!(
        refusal(AuditLog::open(&built.path, Some(key(1)))),
        VerifyError::HeadMissing
    ));
    let built = build(Some(key(1)));
    std::fs::write(head_path(&built.path), &built.heads[2]).unwrap();
    assert!(matches!(
        refusal(AuditLog::open(&built.path, Some(key(1)))),
        VerifyError::HeadStale {
            head_seq: 2,
            last_seq: 6
        }
    ));
    let built = build(Some(key(1)));
    std::fs::remove_file(&built.path).unwrap();
    assert!(matches!(
        refusal(AuditLog::open(&built.path, Some(key(1)))),
        VerifyError::LogMissing
    ));
    assert!(!built.path.exists());
}

#[test]
fn open_refuses_the_wrong_key_or_none() {
    let built = build(Some(key(1)));
    assert!(matches!(
        refusal(AuditLog::open(&built.path, None)),
        VerifyError::KeyRequired
    ));
    assert!(matches!(
        refusal(AuditLog::open(&built.path, Some(key(2)))),
        VerifyError::Edited { line: 6, seq: 6 }
    ));
    let built = build(None);
    assert!(matches!(
        refusal(AuditLog::open(&built.path, Some(key(1)))),
        VerifyError::NotKeyed { line: 6, seq: 6 }
    ));
}

#[test]
fn open_rolls_a_lagging_head_forward() {
    let built = build(Some(key(1)));
    std::fs::write(head_path(&built.path), &built.heads[5]).unwrap();
    let log = AuditLog::open(&built.path, Some(key(1))).unwrap();
    assert_eq!(log.anchor().seq, 8);
    drop(log);
    assert_eq!(verify(&built.path, Some(&key(1))).unwrap().head_seq, 8);
    let entries: Vec<_> = read_entries(&built.path)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(entries[6].kind, "audit-recovered");
    assert!(entries[6].detail.contains("rolled forward from seq 5 to 6"));
    assert_eq!(entries[7].kind, "audit-opened");
}

#[test]
fn open_cuts_a_torn_last_line() {
    let built = build(Some(key(1)));
    let good = read(&built.path);
    // An entry interrupted half-way: as if seq 7 was being written.
    let mut torn = good.clone();
    torn.extend_from_slice(&lines(&build_n(Some(key(1)), 6).path)[6].as_bytes()[..50]);
    std::fs::write(&built.path, &torn).unwrap();
    assert!(matches!(
        verify(&built.path, Some(&key(1))),
        Err(VerifyError::Malformed { line: 7, .. })
    ));

    let log = AuditLog::open(&built.path, Some(key(1))).unwrap();
    assert_eq!(log.anchor().seq, 8);
    drop(log);
    assert!(read(&built.path).starts_with(&good));
    assert_eq!(verify(&built.path, Some(&key(1))).unwrap().entries, 8);
    assert_eq!(
        &kinds(&built.path)[6..],
        ["audit-recovered", "audit-opened"]
    );
    let entries: Vec<_> = read_entries(&built.path)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        entries[6].detail,
        "cut 50 bytes of an interrupted write after seq 6"
    );
}

#[test]
fn open_completes_an_entry_that_only_lacks_its_newline() {
    let built = build(Some(key(1)));
    // Write seq 7 fully, then take its newline and the head update back.
    let log = AuditLog::open(&built.path, Some(key(1))).unwrap();
    drop(log);
    let mut bytes = read(&built.path);
    assert_eq!(bytes.pop(), Some(b'\n'));
    std::fs::write(&built.path, &bytes).unwrap();
    std::fs::write(head_path(&built.path), &built.heads[6]).unwrap();

    let log = AuditLog::open(&built.path, Some(key(1))).unwrap();
    assert_eq!(log.anchor().seq, 9);
    drop(log);
    assert_eq!(verify(&built.path, Some(&key(1))).unwrap().entries, 9);
    let entries: Vec<_> = read_entries(&built.path)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(entries[6].kind, "audit-opened");
    assert_eq!(
        entries[7].detail,
        "completed entry seq 7, interrupted before its end of line"
    );
}

#[test]
fn a_torn_line_the_head_covers_is_not_repaired() {
    // The head names seq 6 but seq 6's line lost its end: that is a truncation.
    let built = build(Some(key(1)));
    let bytes = read(&built.path);
    std::fs::write(&built.path, &bytes[..bytes.len() - 30]).unwrap();
    assert!(matches!(
        refusal(AuditLog::open(&built.path, Some(key(1)))),
        VerifyError::Truncated {
            last_seq: 5,
            head_seq: 6
        }
    ));
}

#[test]
fn a_crash_before_the_first_head_leaves_an_openable_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    std::fs::write(&path, b"").unwrap();
    let log = AuditLog::open(&path, None).unwrap();
    assert_eq!(log.anchor().seq, 1);
}

#[test]
fn key_files_must_be_private_and_well_formed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.key");
    let write = |content: &[u8], mode: u32| {
        std::fs::write(&path, content).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    };

    write(&[7u8; 32], 0o600);
    let raw = AuditKey::from_file(&path).unwrap();
    write(format!("{}\n", "07".repeat(32)).as_bytes(), 0o400);
    let hex = AuditKey::from_file(&path).unwrap();
    // The same key: a log written with one verifies with the other.
    let log_path = dir.path().join("audit.log");
    drop(AuditLog::open(&log_path, Some(raw)).unwrap());
    assert!(verify(&log_path, Some(&hex)).is_ok());

    write(&[7u8; 32], 0o640);
    let error = AuditKey::from_file(&path).unwrap_err();
    assert!(matches!(error, KeyError::Permissive { mode: 0o640, .. }));
    let message = error.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("0640"), "{message}");

    write(&[7u8; 31], 0o600);
    assert!(matches!(
        AuditKey::from_file(&path),
        Err(KeyError::Format { .. })
    ));
    assert!(matches!(
        AuditKey::from_file(dir.path()),
        Err(KeyError::NotAFile { .. })
    ));
    assert!(matches!(
        AuditKey::from_file(dir.path().join("missing")),
        Err(KeyError::Io { .. })
    ));
}
