//! Matcher plugins end to end: the C example matcher (compiled from matcher.h by
//! torii-c-drivers' build) loaded in-process and comparing real ISO/IEC 19794-2 records;
//! a matcher built for another ABI major refused before any of its code runs; malformed
//! templates are errors, never scores.
//!
//! The records are written here by a small ISO/IEC 19794-2:2005 writer (24-byte header,
//! one view, 6 bytes per minutia, no extended data) over seeded pseudo-random fingers.

mod common;

use std::path::Path;
use std::sync::Arc;

use torii_plugin_host::matcher::{
    LoadedMatcher, MatcherConfig, MatcherLoadError, configured_or, probe_matcher,
};
use torii_sdk::matcher::{DynMatcher, MatcherError, Modality, Template, TemplateFormat};

/// (x, y, angle code 0..=255) on a 500 dpi image of 400 × 500 px.
type Minutia = (u16, u16, u8);

fn iso_record(position: u8, quality: u8, minutiae: &[Minutia]) -> Vec<u8> {
    let len = 24 + 4 + 6 * minutiae.len() + 2;
    let mut r = Vec::with_capacity(len);
    r.extend_from_slice(b"FMR\0 20\0");
    r.extend_from_slice(&(len as u32).to_be_bytes());
    r.extend_from_slice(&0u16.to_be_bytes()); // capture equipment
    r.extend_from_slice(&400u16.to_be_bytes()); // width
    r.extend_from_slice(&500u16.to_be_bytes()); // height
    r.extend_from_slice(&197u16.to_be_bytes()); // x resolution (px/cm)
    r.extend_from_slice(&197u16.to_be_bytes()); // y resolution
    r.push(1); // views
    r.push(0); // reserved
    r.extend_from_slice(&[position, 0, quality, minutiae.len() as u8]);
    for &(x, y, angle) in minutiae {
        r.extend_from_slice(&((1u16 << 14) | x).to_be_bytes()); // ridge ending
        r.extend_from_slice(&y.to_be_bytes());
        r.extend_from_slice(&[angle, 60]);
    }
    r.extend_from_slice(&0u16.to_be_bytes()); // no extended data
    assert_eq!(r.len(), len);
    r
}

/// A seeded finger: `n` minutiae at least 12 px apart.
fn finger(seed: u64, n: usize) -> Vec<Minutia> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move |m: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % m
    };
    let mut out: Vec<Minutia> = Vec::new();
    while out.len() < n {
        let (x, y) = (40 + next(320) as u16, 40 + next(420) as u16);
        if out
            .iter()
            .all(|&(a, b, _)| (a as i32 - x as i32).pow(2) + (b as i32 - y as i32).pow(2) > 144)
        {
            out.push((x, y, next(256) as u8));
        }
    }
    out
}

/// Another impression of the same finger: a few px of noise, some minutiae missing.
fn impression(minutiae: &[Minutia], shift: i32) -> Vec<Minutia> {
    minutiae
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 7 != 3)
        .map(|(i, &(x, y, a))| {
            let jitter = (i as i32 % 5) - 2;
            (
                (x as i32 + shift + jitter) as u16,
                (y as i32 - jitter) as u16,
                a.wrapping_add((i % 3) as u8),
            )
        })
        .collect()
}

fn demo() -> LoadedMatcher {
    LoadedMatcher::load(
        Path::new(torii_c_drivers::DEMO_FINGER_MATCHER),
        Modality::Finger,
        "{}",
    )
    .expect("the C example matcher loads")
}

#[test]
fn the_c_matcher_loads_and_compares_iso_records() {
    let m = demo();
    let info = m.info();
    assert_eq!(info.name, "demo-finger-matcher");
    assert_eq!(info.vendor, "torii examples");
    assert_eq!(info.modality, Modality::Finger);
    assert_eq!((m.probe.abi_major, m.probe.abi_minor), (1, 0));

    let a = finger(1, 40);
    let reference = iso_record(2, 80, &a);
    let same = iso_record(2, 70, &impression(&a, 3));
    let other = iso_record(2, 70, &finger(2, 40));
    let prep = |bytes: &[u8]| m.prepare(Template::iso19794_2(bytes, 2)).unwrap();
    let (r, s, o) = (prep(&reference), prep(&same), prep(&other));

    let genuine = m.compare(&s, &r).unwrap();
    let impostor = m.compare(&o, &r).unwrap();
    assert!(genuine.score > 4.0, "{genuine:?}");
    assert!(impostor.score < genuine.score / 2.0, "{impostor:?}");
    assert_eq!(genuine.quality, Some(70));
    for score in [genuine, impostor] {
        assert!(score.score.is_finite() && score.score >= 0.0);
    }
    // Deterministic, and the handles can be compared again and again.
    assert_eq!(m.compare(&s, &r).unwrap(), genuine);
}

#[test]
fn malformed_templates_are_errors_naming_the_problem() {
    let m = demo();
    let good = iso_record(2, 80, &finger(3, 30));
    let mut wrong_length = good.clone();
    wrong_length[11] ^= 1;
    let mut wrong_magic = good.clone();
    wrong_magic[0] = b'X';
    let mut overrun = good.clone();
    overrun[24 + 3] = 200; // claims 200 minutiae
    let cases: [(&[u8], &str); 5] = [
        (&[], "shorter"),
        (&good[..20], "shorter"),
        (&wrong_length, "length"),
        (&wrong_magic, "magic"),
        (&overrun, "past the end"),
    ];
    for (bytes, reason) in cases {
        match m.prepare(Template::iso19794_2(bytes, 2)) {
            Err(MatcherError::BadTemplate(text)) => {
                assert!(text.contains(reason), "{reason}: {text}")
            }
            other => panic!("{reason}: {other:?}"),
        }
    }
    // The record is of the right finger or it is refused.
    let err = m.prepare(Template::iso19794_2(&good, 7)).unwrap_err();
    assert!(err.to_string().contains("finger position"), "{err}");
    // A format it does not read.
    let jpeg = Template {
        format: TemplateFormat::Jpeg,
        data: b"\xff\xd8\xff",
        finger_position: 0,
        view_index: 0,
    };
    assert!(matches!(
        m.prepare(jpeg),
        Err(MatcherError::NotSupported(_))
    ));
    // A template prepared by another instance is refused, not dereferenced.
    let other = demo();
    let mine = m.prepare(Template::iso19794_2(&good, 2)).unwrap();
    let theirs = other.prepare(Template::iso19794_2(&good, 2)).unwrap();
    assert_eq!(
        m.compare(&mine, &theirs),
        Err(MatcherError::ForeignTemplate)
    );
}

#[test]
fn modality_and_kind_are_checked_before_loading() {
    let err = LoadedMatcher::load(
        Path::new(torii_c_drivers::DEMO_FINGER_MATCHER),
        Modality::Face,
        "{}",
    )
    .unwrap_err();
    assert!(
        matches!(err, MatcherLoadError::WrongModality { .. }),
        "{err}"
    );
    // A driver is not a matcher (and its code does not run to find out).
    let err = probe_matcher(Path::new(torii_c_drivers::DEMO_CODE_READER)).unwrap_err();
    assert!(matches!(err, MatcherLoadError::NoTag { .. }), "{err}");
}

/// Runs in a child process (see the test below) so that `TORII_TEST_MARKER` is set
/// for the whole process.
#[test]
#[ignore = "run by a_matcher_for_another_abi_major_is_refused_before_any_of_its_code_runs"]
fn wrong_abi_matcher_child() {
    assert!(
        std::env::var_os("TORII_TEST_MARKER").is_some(),
        "run through the parent test"
    );
    let err = LoadedMatcher::load(
        Path::new(torii_c_drivers::FIXTURE_WRONG_ABI_MATCHER),
        Modality::Finger,
        "{}",
    )
    .unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(err, MatcherLoadError::Incompatible { major: 2, .. }),
        "{message}"
    );
    assert!(
        message.contains("ABI 2.0") && message.contains("ABI 1.0"),
        "{message}"
    );
}

#[test]
fn a_matcher_for_another_abi_major_is_refused_before_any_of_its_code_runs() {
    let (passed, code_ran) = common::run_child_with_marker("wrong_abi_matcher_child");
    assert!(passed, "the refusal checks failed in the child");
    assert!(!code_ran, "the wrong-ABI matcher's constructor ran");
}

#[test]
fn the_marker_would_fire_if_the_wrong_abi_matcher_were_loaded() {
    // Guards the test above against passing vacuously.
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("code-ran");
    let status = std::process::Command::new("python3")
        .arg("-c")
        .arg("import ctypes,sys; ctypes.CDLL(sys.argv[1])")
        .arg(torii_c_drivers::FIXTURE_WRONG_ABI_MATCHER)
        .env("TORII_TEST_MARKER", &marker)
        .status()
        .unwrap();
    assert!(status.success());
    assert!(marker.exists());
}

#[test]
fn configured_or_takes_the_plugin_or_the_default() {
    let builtin_called = std::cell::Cell::new(false);
    let fallback = || -> Arc<dyn DynMatcher> {
        builtin_called.set(true);
        Arc::new(demo())
    };
    let plugin = MatcherConfig {
        plugin: Some(torii_c_drivers::DEMO_FINGER_MATCHER.into()),
        config_json: String::new(),
    };
    let m = configured_or(&plugin, Modality::Finger, fallback).unwrap();
    assert_eq!(m.info().name, "demo-finger-matcher");
    assert!(!builtin_called.get());
    let m = configured_or(&MatcherConfig::default(), Modality::Finger, fallback).unwrap();
    assert!(builtin_called.get());
    assert_eq!(m.info().modality, Modality::Finger);
    // A configured plugin that cannot be loaded is an error, not a silent fallback.
    let missing = MatcherConfig {
        plugin: Some("/nonexistent/libmatcher.so".into()),
        config_json: "{}".into(),
    };
    assert!(configured_or(&missing, Modality::Finger, fallback).is_err());
}
