//! Every way of tampering with a log, and what `verify` says about each.

mod common;

use std::path::Path;

use common::*;
use torii_audit::{AuditKey, VerifyError, head_path, verify};

/// A keyed log of 6 entries (lines 1 to 6 hold seq 1 to 6), its head after every seq,
/// and other logs to take lines from.
struct Scene<'a> {
    log: &'a Path,
    head: &'a Path,
    heads: &'a [Vec<u8>],
    /// Written with the same key: its lines are sealed right but chain elsewhere.
    same_key: &'a [String],
    /// Written with another key.
    other_key: &'a [String],
    /// Written without a key.
    unkeyed: &'a [String],
}

struct Case {
    name: &'static str,
    tamper: fn(&Scene<'_>),
    expect: fn(&VerifyError) -> bool,
}

fn edit_lines(scene: &Scene<'_>, edit: impl FnOnce(&mut Vec<String>)) {
    let mut all = lines(scene.log);
    edit(&mut all);
    write_lines(scene.log, &all);
}

const CASES: &[Case] = &[
    Case {
        name: "edit a detail",
        tamper: |s| {
            edit_lines(s, |l| {
                l[2] = l[2].replace("event number 1", "event number 9")
            })
        },
        expect: |e| matches!(e, VerifyError::Edited { line: 3, seq: 3 }),
    },
    Case {
        name: "edit a kind",
        tamper: |s| {
            edit_lines(s, |l| {
                l[2] = l[2].replace("door-opened-by-officer", "door-closed-by-officer")
            })
        },
        expect: |e| matches!(e, VerifyError::Edited { line: 3, seq: 3 }),
    },
    Case {
        name: "remove an actor",
        tamper: |s| {
            edit_lines(s, |l| {
                l[1] = l[1].replace(r#""officer-token:console-1""#, "null")
            })
        },
        expect: |e| matches!(e, VerifyError::Edited { line: 2, seq: 2 }),
    },
    Case {
        name: "edit a seq",
        tamper: |s| edit_lines(s, |l| l[3] = l[3].replace(r#""seq":4"#, r#""seq":9"#)),
        expect: |e| matches!(e, VerifyError::Edited { line: 4, seq: 9 }),
    },
    Case {
        name: "edit a time",
        tamper: |s| edit_lines(s, |l| l[3] = l[3].replacen(r#""at":"2"#, r#""at":"1"#, 1)),
        expect: |e| matches!(e, VerifyError::Edited { line: 4, seq: 4 }),
    },
    Case {
        name: "delete a middle line",
        tamper: |s| edit_lines(s, |l| drop(l.remove(2))),
        expect: |e| {
            matches!(
                e,
                VerifyError::Deleted {
                    line: 3,
                    expected_seq: 3,
                    found_seq: 4
                }
            )
        },
    },
    Case {
        name: "delete two middle lines",
        tamper: |s| edit_lines(s, |l| drop(l.drain(1..3))),
        expect: |e| {
            matches!(
                e,
                VerifyError::Deleted {
                    line: 2,
                    expected_seq: 2,
                    found_seq: 4
                }
            )
        },
    },
    Case {
        name: "delete the first line",
        tamper: |s| edit_lines(s, |l| drop(l.remove(0))),
        expect: |e| {
            matches!(
                e,
                VerifyError::Deleted {
                    line: 1,
                    expected_seq: 1,
                    found_seq: 2
                }
            )
        },
    },
    Case {
        name: "swap two lines",
        tamper: |s| edit_lines(s, |l| l.swap(2, 3)),
        expect: |e| {
            matches!(
                e,
                VerifyError::OutOfOrder {
                    line: 3,
                    expected_seq: 3,
                    found_seq: 4
                }
            )
        },
    },
    Case {
        name: "swap two distant lines",
        tamper: |s| edit_lines(s, |l| l.swap(1, 4)),
        expect: |e| {
            matches!(
                e,
                VerifyError::OutOfOrder {
                    line: 2,
                    expected_seq: 2,
                    found_seq: 5
                }
            )
        },
    },
    Case {
        name: "duplicate a line",
        tamper: |s| {
            edit_lines(s, |l| {
                let copy = l[1].clone();
                l.insert(2, copy);
            })
        },
        expect: |e| {
            matches!(
                e,
                VerifyError::OutOfOrder {
                    line: 3,
                    expected_seq: 3,
                    found_seq: 2
                }
            )
        },
    },
    Case {
        name: "truncate the last line",
        tamper: |s| edit_lines(s, |l| drop(l.pop())),
        expect: |e| {
            matches!(
                e,
                VerifyError::Truncated {
                    last_seq: 5,
                    head_seq: 6
                }
            )
        },
    },
    Case {
        name: "truncate the last three lines",
        tamper: |s| edit_lines(s, |l| l.truncate(3)),
        expect: |e| {
            matches!(
                e,
                VerifyError::Truncated {
                    last_seq: 3,
                    head_seq: 6
                }
            )
        },
    },
    Case {
        name: "truncate everything but the head",
        tamper: |s| std::fs::write(s.log, b"").unwrap(),
        expect: |e| {
            matches!(
                e,
                VerifyError::Truncated {
                    last_seq: 0,
                    head_seq: 6
                }
            )
        },
    },
    Case {
        name: "cut the last line in the middle",
        tamper: |s| {
            let bytes = read(s.log);
            std::fs::write(s.log, &bytes[..bytes.len() - 40]).unwrap();
        },
        expect: |e| matches!(e, VerifyError::Malformed { line: 6, .. }),
    },
    Case {
        name: "delete the log",
        tamper: |s| std::fs::remove_file(s.log).unwrap(),
        expect: |e| matches!(e, VerifyError::LogMissing),
    },
    Case {
        name: "delete the head",
        tamper: |s| std::fs::remove_file(s.head).unwrap(),
        expect: |e| matches!(e, VerifyError::HeadMissing),
    },
    Case {
        name: "append a forged line without the key",
        tamper: |s| edit_lines(s, |l| l.push(s.unkeyed[6].clone())),
        expect: |e| matches!(e, VerifyError::NotKeyed { line: 7, seq: 7 }),
    },
    Case {
        name: "append a line forged with a wrong key",
        tamper: |s| edit_lines(s, |l| l.push(s.other_key[6].clone())),
        expect: |e| matches!(e, VerifyError::Edited { line: 7, seq: 7 }),
    },
    Case {
        name: "append a line with a made-up seal",
        tamper: |s| {
            edit_lines(s, |l| {
                let forged = l[5].replace(r#""seq":6"#, r#""seq":7"#);
                l.push(forged);
            })
        },
        expect: |e| matches!(e, VerifyError::Edited { line: 7, seq: 7 }),
    },
    Case {
        name: "replace a line with one from another log with the same key",
        tamper: |s| edit_lines(s, |l| l[2] = s.same_key[2].clone()),
        expect: |e| matches!(e, VerifyError::ChainBroken { line: 3, seq: 3 }),
    },
    Case {
        name: "replace the tail with another log's",
        tamper: |s| {
            edit_lines(s, |l| {
                l.truncate(3);
                l.extend(s.same_key[3..].iter().cloned());
            })
        },
        expect: |e| matches!(e, VerifyError::ChainBroken { line: 4, seq: 4 }),
    },
    Case {
        name: "replace the whole log with another log's",
        tamper: |s| edit_lines(s, |l| *l = s.same_key[..6].to_vec()),
        expect: |e| matches!(e, VerifyError::HeadMismatch { head_seq: 6 }),
    },
    Case {
        name: "replace the head with an older one",
        tamper: |s| std::fs::write(s.head, &s.heads[3]).unwrap(),
        expect: |e| {
            matches!(
                e,
                VerifyError::HeadStale {
                    head_seq: 3,
                    last_seq: 6
                }
            )
        },
    },
    Case {
        name: "truncate and put back the matching older head",
        // Not detectable locally (documented): what remains is a genuine shorter log.
        tamper: |s| {
            edit_lines(s, |l| l.truncate(3));
            std::fs::write(s.head, &s.heads[3]).unwrap();
        },
        expect: |_| false,
    },
    Case {
        name: "edit the head's seq",
        tamper: |s| {
            let head = String::from_utf8(read(s.head)).unwrap();
            std::fs::write(s.head, head.replace(r#""seq":6"#, r#""seq":9"#)).unwrap();
        },
        expect: |e| matches!(e, VerifyError::HeadForged),
    },
    Case {
        name: "truncate and forge the head without the key",
        tamper: |s| {
            edit_lines(s, |l| l.truncate(4));
            let last = seal_of(&lines(s.log)[3]);
            std::fs::write(s.head, head_bytes(4, &last, None)).unwrap();
        },
        expect: |e| matches!(e, VerifyError::HeadForged),
    },
    Case {
        name: "garbage head",
        tamper: |s| std::fs::write(s.head, b"\x00\xffnot json").unwrap(),
        expect: |e| matches!(e, VerifyError::HeadMalformed { .. }),
    },
    Case {
        name: "garbage line in the middle",
        tamper: |s| edit_lines(s, |l| l.insert(3, "rm -rf /".to_owned())),
        expect: |e| matches!(e, VerifyError::Malformed { line: 4, .. }),
    },
    Case {
        name: "blank line in the middle",
        tamper: |s| edit_lines(s, |l| l.insert(2, String::new())),
        expect: |e| matches!(e, VerifyError::Malformed { line: 3, .. }),
    },
    Case {
        name: "binary garbage in a line",
        tamper: |s| {
            let mut bytes = read(s.log);
            let at = bytes.iter().position(|&b| b == b'\n').unwrap() + 10;
            bytes[at] = 0xff;
            std::fs::write(s.log, bytes).unwrap();
        },
        expect: |e| matches!(e, VerifyError::Malformed { line: 2, .. }),
    },
    Case {
        name: "an extra field",
        tamper: |s| {
            edit_lines(s, |l| {
                l[4] = l[4].replacen(r#"{"seq""#, r#"{"note":"x","seq""#, 1)
            })
        },
        expect: |e| matches!(e, VerifyError::Malformed { line: 5, .. }),
    },
    Case {
        name: "seal spelled in upper case",
        tamper: |s| {
            edit_lines(s, |l| {
                let seal = seal_of(&l[4]);
                l[4] = l[4].replace(&seal, &seal.to_uppercase());
            })
        },
        expect: |e| matches!(e, VerifyError::Malformed { line: 5, .. }),
    },
];

#[test]
fn every_tampering_is_caught_where_it_happened() {
    let same_key = lines(&build_n(Some(key(1)), 8).path);
    let other_key = lines(&build_n(Some(key(2)), 8).path);
    let unkeyed = lines(&build_n(None, 8).path);
    let mut failures = Vec::new();
    for case in CASES {
        let built = build(Some(key(1)));
        let head = head_path(&built.path);
        assert_eq!(verify(&built.path, Some(&key(1))).unwrap().entries, 6);
        (case.tamper)(&Scene {
            log: &built.path,
            head: &head,
            heads: &built.heads,
            same_key: &same_key,
            other_key: &other_key,
            unkeyed: &unkeyed,
        });
        let outcome = verify(&built.path, Some(&key(1)));
        match &outcome {
            Err(e) if (case.expect)(e) => assert!(e.is_tampering(), "{}: {e}", case.name),
            Ok(report) if case.name.starts_with("truncate and put back") => {
                assert_eq!(report.entries, 3);
            }
            _ => failures.push(format!("{}: got {outcome:?}", case.name)),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn without_a_key_an_edit_shows_unless_every_later_seal_is_rebuilt() {
    // Edited without re-sealing: the entry's own seal.
    let built = build(None);
    let mut all = lines(&built.path);
    all[2] = all[2].replace("event number 1", "event number 9");
    write_lines(&built.path, &all);
    assert!(matches!(
        verify(&built.path, None),
        Err(VerifyError::Edited { line: 3, seq: 3 })
    ));

    // Re-sealed: the next entry's link.
    let built = build(None);
    let mut all = lines(&built.path);
    all[2] = reseal(&all[2], None, |v| v["detail"] = "event number 9".into());
    write_lines(&built.path, &all);
    assert!(matches!(
        verify(&built.path, None),
        Err(VerifyError::ChainBroken { line: 4, seq: 4 })
    ));

    // Every later entry and the head rebuilt: it verifies. This is why toriid needs a
    // key; with one, the same rebuild is caught at once.
    let built = build(None);
    let mut all = lines(&built.path);
    let mut prev = seal_of(&all[1]);
    for (i, line) in all.iter_mut().enumerate().skip(2) {
        *line = reseal(line, None, |v| {
            if i == 2 {
                v["detail"] = "event number 9".into();
            }
            v["prev"] = prev.clone().into();
        });
        prev = seal_of(line);
    }
    write_lines(&built.path, &all);
    std::fs::write(head_path(&built.path), head_bytes(6, &prev, None)).unwrap();
    let report = verify(&built.path, None).unwrap();
    assert!(!report.keyed);
    assert_eq!(report.entries, 6);
}

#[test]
fn a_rebuild_without_the_key_fails_against_the_key() {
    let built = build(Some(key(1)));
    let mut all = lines(&built.path);
    let mut prev = seal_of(&all[1]);
    for line in all.iter_mut().skip(2) {
        *line = reseal(line, Some(&[9u8; 32]), |v| v["prev"] = prev.clone().into());
        prev = seal_of(line);
    }
    write_lines(&built.path, &all);
    assert!(matches!(
        verify(&built.path, Some(&key(1))),
        Err(VerifyError::Edited { line: 3, seq: 3 })
    ));
}

#[test]
fn the_seals_are_the_documented_ones() {
    let built = build(Some(key(1)));
    let all = lines(&built.path);
    let mut prev = "0".repeat(64);
    for line in &all {
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(value["prev"].as_str().unwrap(), prev);
        let seal = seal_entry(&value, Some(&[1u8; 32]));
        assert_eq!(value["mac"].as_str().unwrap(), tagged(&seal, true));
        prev = hex_encode(&seal);
    }
    assert_eq!(
        read(&head_path(&built.path)),
        head_bytes(6, &prev, Some(&[1u8; 32]))
    );
    // The field order of a line.
    assert!(all[1].starts_with(r#"{"seq":2,"at":""#), "{}", all[1]);
    let keys: Vec<&str> = [
        "\"seq\"",
        "\"at\"",
        "\"kind\"",
        "\"actor\"",
        "\"detail\"",
        "\"prev\"",
        "\"mac\"",
    ]
    .to_vec();
    let positions: Vec<usize> = keys.iter().map(|k| all[1].find(k).unwrap()).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn a_key_is_needed_to_check_a_keyed_log_and_refused_for_an_unkeyed_one() {
    let built = build(Some(key(1)));
    let error = verify(&built.path, None).unwrap_err();
    assert!(matches!(error, VerifyError::KeyRequired));
    assert!(!error.is_tampering());

    let built = build(None);
    assert!(matches!(
        verify(&built.path, Some(&key(1))),
        Err(VerifyError::NotKeyed { line: 1, seq: 1 })
    ));
    let wrong: AuditKey = key(3);
    let built = build(Some(key(1)));
    assert!(matches!(
        verify(&built.path, Some(&wrong)),
        Err(VerifyError::Edited { line: 1, seq: 1 })
    ));
}

#[test]
fn a_head_one_entry_behind_is_a_crash_not_tampering() {
    let built = build(Some(key(1)));
    std::fs::write(head_path(&built.path), &built.heads[5]).unwrap();
    let report = verify(&built.path, Some(&key(1))).unwrap();
    assert_eq!((report.entries, report.head_seq), (6, 5));
}

#[test]
fn reports_say_what_and_where_in_json_too() {
    let built = build(Some(key(1)));
    let mut all = lines(&built.path);
    all.remove(2);
    write_lines(&built.path, &all);
    let error = verify(&built.path, Some(&key(1))).unwrap_err();
    assert_eq!(error.line(), Some(3));
    assert_eq!(
        error.to_string(),
        "line 3: entries deleted: expected seq 3, found seq 4"
    );
    let json = error.to_json();
    assert_eq!(json["error"], "deleted");
    assert_eq!(json["tampered"], true);
    assert_eq!(json["line"], 3);
    assert_eq!(json["expected_seq"], 3);
    assert_eq!(json["found_seq"], 4);

    let missing = verify(built.dir.path().join("nope.log"), None).unwrap_err();
    assert!(matches!(missing, VerifyError::Io { .. }));
    assert!(!missing.is_tampering());
}
