//! The record key file: permissions, format, and that its bytes never show.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use torii_outbox::{Outbox, OutboxConfig, OutboxError, RecordKey, RecordMeta};
use uuid::Uuid;

fn write(path: &Path, content: &[u8], mode: u32) {
    fs::write(path, content).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn key_error(path: &Path) -> (std::path::PathBuf, String) {
    match RecordKey::from_file(path) {
        Err(OutboxError::Key { path, problem }) => (path, problem),
        other => panic!("expected a key error, got {other:?}"),
    }
}

const HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

#[test]
fn group_or_other_permissions_are_refused_with_path_and_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("record.key");
    for mode in [0o644, 0o640, 0o604, 0o660, 0o601, 0o610] {
        write(&path, HEX.as_bytes(), mode);
        let err = RecordKey::from_file(&path).unwrap_err();
        let shown = err.to_string();
        assert!(shown.contains(&path.display().to_string()), "{shown}");
        assert!(shown.contains(&format!("{mode:04o}")), "{shown}");
        assert!(!shown.contains(HEX), "{shown}");
    }
    for mode in [0o600, 0o400] {
        write(&path, HEX.as_bytes(), mode);
        RecordKey::from_file(&path).unwrap();
    }
}

#[test]
fn not_a_regular_file_or_missing() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("keys");
    fs::create_dir(&sub).unwrap();
    fs::set_permissions(&sub, fs::Permissions::from_mode(0o700)).unwrap();
    let (path, problem) = key_error(&sub);
    assert_eq!(path, sub);
    assert!(problem.contains("not a regular file"), "{problem}");

    let missing = dir.path().join("nope.key");
    let (path, _) = key_error(&missing);
    assert_eq!(path, missing);
}

#[test]
fn a_symlink_to_a_private_key_is_followed() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("real.key");
    write(&target, HEX.as_bytes(), 0o600);
    let link = dir.path().join("link.key");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    RecordKey::from_file(&link).unwrap();
}

#[test]
fn content_problems_are_described_without_quoting_the_content() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("record.key");
    let not_hex = format!("{}zz", &HEX[..62]);
    let two_newlines = format!("{HEX}\n\n");
    let cases: [(&[u8], &str); 6] = [
        (b"", "empty"),
        (&[7; 31], "31 bytes"),
        (&[7; 33], "33 bytes"),
        (not_hex.as_bytes(), "character 63 is not a hex digit"),
        (&[b'a'; 200], "too long"),
        (two_newlines.as_bytes(), "66 bytes"),
    ];
    for (content, expected) in cases {
        write(&path, content, 0o600);
        let (p, problem) = key_error(&path);
        assert_eq!(p, path);
        assert!(problem.contains(expected), "{problem} (wanted {expected})");
        assert!(!problem.contains(&HEX[..16]), "{problem}");
    }
}

#[test]
fn raw_and_hex_files_hold_the_same_key_and_a_wrong_key_is_caught_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("raw.key");
    let hex = dir.path().join("hex.key");
    let bytes: Vec<u8> = (0u8..32).collect();
    write(&raw, &bytes, 0o400);
    write(&hex, format!("{}\n", HEX.to_uppercase()).as_bytes(), 0o600);

    let db = dir.path().join("outbox.db");
    let id = Uuid::new_v4();
    {
        let outbox = Outbox::open(OutboxConfig::new(
            &db,
            RecordKey::from_file(&raw).unwrap(),
            10,
        ))
        .unwrap();
        outbox
            .commit_blocking(id, RecordMeta::now("admitted"), b"{}")
            .unwrap();
    }
    {
        let outbox = Outbox::open(OutboxConfig::new(
            &db,
            RecordKey::from_file(&hex).unwrap(),
            10,
        ))
        .unwrap();
        assert_eq!(outbox.get(id).unwrap().unwrap().payload, b"{}");
    }
    let err = Outbox::open(OutboxConfig::new(&db, RecordKey::from_bytes([9; 32]), 10)).unwrap_err();
    assert!(matches!(err, OutboxError::WrongKey { .. }), "{err}");
}

#[test]
fn generated_key_files_are_private_hex_and_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("record.key");
    let generated = RecordKey::generate_file(&path).unwrap();
    let meta = fs::metadata(&path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let text = fs::read_to_string(&path).unwrap();
    assert_eq!(text.len(), 65);
    assert!(text.ends_with('\n'));
    assert!(text[..64].bytes().all(|c| c.is_ascii_hexdigit()));

    // The generated key and the file's key are the same key.
    let db = dir.path().join("outbox.db");
    drop(Outbox::open(OutboxConfig::new(&db, generated, 10)).unwrap());
    drop(
        Outbox::open(OutboxConfig::new(
            &db,
            RecordKey::from_file(&path).unwrap(),
            10,
        ))
        .unwrap(),
    );

    let err = RecordKey::generate_file(&path).unwrap_err();
    assert!(err.to_string().contains("refusing to overwrite"), "{err}");
    assert_eq!(fs::read_to_string(&path).unwrap(), text);

    // Never shown.
    let key = RecordKey::from_file(&path).unwrap();
    let shown = format!("{key:?} {:?}", OutboxConfig::new(&db, key.clone(), 1));
    assert!(!shown.contains(&text[..16]), "{shown}");
    assert!(shown.contains("<redacted>"));
}
