//! DG11/DG12 (ICAO 9303 Part 10, additional personal/document details): parsing,
//! a full simulated read (PACE + Passive Authentication) with both groups present,
//! tampering, and a table of malformed encodings whose errors name the tag.

use torii_chip_sim::pki::system_time;
use torii_chip_sim::{ChipConfig, ChipSim, Fault, TestPki};
use torii_icao::lds::{self, Dg11, Dg12, LdsError, build};
use torii_icao::mrz;
use torii_icao::tlv::{encode, encode_constructed};
use torii_icao::verdict::{AccessProtocol, Check, Outcome, ReasonCode, inspect};

fn dg11() -> Dg11 {
    Dg11 {
        full_name: Some("ERIKSSON<<ANNA<MARIA".into()),
        other_names: vec!["ERIKSSON<<ANNIKA".into(), "SMITH<<ANNA".into()],
        personal_number: Some("1234567890".into()),
        full_date_of_birth: Some("19740812".into()),
        place_of_birth: Some("ZENITH<UTOPIA".into()),
        address: Some("123 MAPLE RD<ANYTOWN<UTO".into()),
        telephone: Some("1-555-555-1234".into()),
        profession: Some("TRAVEL AGENT".into()),
        title: Some("PRIVATE".into()),
        personal_summary: Some("BROWN HAIR".into()),
        proof_of_citizenship: Some(vec![0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3]),
        other_valid_td_numbers: Some("L898902C<369080211".into()),
        custody_information: Some("NONE".into()),
    }
}

fn dg12() -> Dg12 {
    Dg12 {
        issuing_authority: Some("UTOPIA MINISTRY".into()),
        date_of_issue: Some("20240101".into()),
        other_persons: vec!["ERIKSSON<<LARS".into()],
        endorsements: Some("NONE".into()),
        tax_exit_requirements: Some("PAID".into()),
        image_front: Some(vec![0xFF, 0xD8, 9, 9]),
        image_rear: Some(vec![0xFF, 0xD8, 8, 8]),
        personalisation_time: Some("20240101123000".into()),
        personalisation_device: Some("SN-42".into()),
    }
}

fn pki() -> TestPki {
    TestPki::generate("dg11-12", "UT").unwrap()
}

fn optical() -> mrz::Mrz {
    mrz::parse(torii_chip_sim::SPECIMEN_TD3).unwrap()
}

fn sim(d11: Option<Dg11>, d12: Option<Dg12>, faults: Vec<Fault>, pki: &TestPki) -> ChipSim {
    ChipSim::new(
        &ChipConfig {
            face_bytes: 500,
            dg11: d11,
            dg12: d12,
            faults,
            ..ChipConfig::default()
        },
        pki,
    )
    .unwrap()
}

#[test]
fn builders_round_trip_and_debug_shows_no_values() {
    let b11 = build::dg11(&dg11()).unwrap();
    let b12 = build::dg12(&dg12()).unwrap();
    assert_eq!(lds::parse_dg11(&b11).unwrap(), dg11());
    assert_eq!(lds::parse_dg12(&b12).unwrap(), dg12());
    let dbg = format!("{:?} {:?}", dg11(), dg12());
    for secret in [
        "ERIKSSON",
        "1234567890",
        "19740812",
        "MAPLE",
        "UTOPIA",
        "SN-42",
    ] {
        assert!(!dbg.contains(secret), "{dbg}");
    }
    assert!(dbg.contains("5F0E") && dbg.contains("5F56"), "{dbg}");
    // A minimal DG11 with one field.
    let one = Dg11 {
        full_name: Some("A<<B".into()),
        ..Dg11::default()
    };
    assert_eq!(lds::parse_dg11(&build::dg11(&one).unwrap()).unwrap(), one);
}

#[test]
fn bcd_dates_are_accepted() {
    let list = encode(0x5C, &[0x5F, 0x2B]).unwrap();
    let body = [list, encode(0x5F2B, &[0x19, 0x74, 0x08, 0x12]).unwrap()].concat();
    let d = lds::parse_dg11(&encode_constructed(0x6B, &body).unwrap()).unwrap();
    assert_eq!(d.full_date_of_birth.as_deref(), Some("19740812"));
}

#[test]
fn full_read_with_pace_and_pa_exposes_dg11_and_dg12() {
    let pki = pki();
    let mut chip = sim(Some(dg11()), Some(dg12()), vec![], &pki);
    let v = inspect(&mut chip, &optical(), &pki.trust_store(), system_time(2026));
    assert!(v.is_genuine(), "{:?}", v.checks);
    assert_eq!(v.access, Some(AccessProtocol::Pace));
    assert_eq!(v.outcome(Check::DataGroupHashes), Some(&Outcome::Passed));
    let doc = v.document().unwrap();
    assert_eq!(doc.dg11.as_ref(), Some(&dg11()));
    assert_eq!(doc.dg12.as_ref(), Some(&dg12()));
    assert!(doc.others.is_empty());
    let dbg = format!("{v:?}");
    assert!(
        !dbg.contains("MAPLE") && !dbg.contains("UTOPIA MINISTRY"),
        "{dbg}"
    );

    // Without the option the chip has neither group and the document has none.
    let mut plain = sim(None, None, vec![], &pki);
    let v = inspect(
        &mut plain,
        &optical(),
        &pki.trust_store(),
        system_time(2026),
    );
    assert!(v.is_genuine(), "{:?}", v.checks);
    let doc = v.document().unwrap();
    assert!(doc.dg11.is_none() && doc.dg12.is_none());
}

#[test]
fn tampered_dg11_and_dg12_are_refused_by_passive_authentication() {
    let pki = pki();
    for n in [11u8, 12] {
        let mut chip = sim(Some(dg11()), Some(dg12()), vec![Fault::TamperedDg(n)], &pki);
        let v = inspect(&mut chip, &optical(), &pki.trust_store(), system_time(2026));
        assert!(!v.is_genuine(), "DG{n}");
        assert!(v.document().is_none());
        assert_eq!(v.reasons(), vec![ReasonCode::DgHashMismatch], "DG{n}");
        match v.outcome(Check::DataGroupHashes) {
            Some(Outcome::Failed { detail, .. }) => {
                assert!(detail.contains(&n.to_string()), "{detail}")
            }
            o => panic!("DG{n}: {o:?}"),
        }
    }
}

#[test]
fn signed_but_malformed_dg11_fails_the_lds_check_naming_the_tag() {
    // The crate's rule for every group it reads: a malformed group fails LdsStructure
    // even when its hash is right (the issuer signed garbage).
    let pki = pki();
    let bad = Dg11 {
        full_date_of_birth: Some("1974-08-12".into()),
        ..dg11()
    };
    let mut chip = sim(Some(bad), None, vec![], &pki);
    let v = inspect(&mut chip, &optical(), &pki.trust_store(), system_time(2026));
    assert!(!v.is_genuine());
    assert_eq!(v.reasons(), vec![ReasonCode::LdsInvalid]);
    assert_eq!(v.outcome(Check::DataGroupHashes), Some(&Outcome::Passed));
    match v.outcome(Check::LdsStructure) {
        Some(Outcome::Failed { detail, .. }) => {
            assert!(
                detail.contains("DG11") && detail.contains("5F2B"),
                "{detail}"
            );
            assert!(!detail.contains("1974"), "{detail}");
        }
        o => panic!("{o:?}"),
    }
}

/// (case, DG number, bytes, tag the error must name, offset when checked)
type Case = (&'static str, u8, Vec<u8>, u32, Option<usize>);

fn parse(n: u8, b: &[u8]) -> Result<(), LdsError> {
    if n == 11 {
        lds::parse_dg11(b).map(|_| ())
    } else {
        lds::parse_dg12(b).map(|_| ())
    }
}

fn dg(outer: u32, parts: &[Vec<u8>]) -> Vec<u8> {
    encode_constructed(outer, &parts.concat()).unwrap()
}

fn t(tag: u32, v: &[u8]) -> Vec<u8> {
    encode(tag, v).unwrap()
}

fn template(children: &[Vec<u8>]) -> Vec<u8> {
    encode_constructed(0xA0, &children.concat()).unwrap()
}

#[test]
fn malformed_dg11_and_dg12_name_the_tag() {
    let name = t(0x5F0E, b"A<<B");
    let list_name = t(0x5C, &[0x5F, 0x0E]);
    let mut trailing = dg(0x6B, &[list_name.clone(), name.clone()]);
    trailing.push(0);
    let cases: Vec<Case> = vec![
        (
            "announced but absent",
            11,
            dg(0x6B, &[t(0x5C, &[0x5F, 0x0E, 0x5F, 0x10]), name.clone()]),
            0x5F10,
            None,
        ),
        (
            "duplicated field",
            11,
            dg(0x6B, &[list_name.clone(), name.clone(), name.clone()]),
            0x5F0E,
            Some(2 + 4 + name.len()),
        ),
        (
            "field not announced",
            11,
            dg(0x6B, &[list_name.clone(), name.clone(), t(0x5F10, b"1")]),
            0x5F10,
            Some(2 + 4 + name.len()),
        ),
        (
            "tag list not first",
            11,
            dg(0x6B, &[name.clone(), list_name.clone()]),
            0x5C,
            Some(2),
        ),
        (
            "tag list truncated inside a tag",
            11,
            dg(0x6B, &[t(0x5C, &[0x5F]), name.clone()]),
            0x5C,
            Some(4),
        ),
        (
            "tag list announces a foreign tag",
            11,
            dg(0x6B, &[t(0x5C, &[0x5F, 0x19]), t(0x5F19, b"X")]),
            0x5F19,
            Some(4),
        ),
        (
            "date of birth not digits",
            11,
            dg(0x6B, &[t(0x5C, &[0x5F, 0x2B]), t(0x5F2B, b"1974-8-1")]),
            0x5F2B,
            Some(6),
        ),
        (
            "name not UTF-8",
            11,
            dg(0x6B, &[list_name.clone(), t(0x5F0E, &[0xC3, 0x28])]),
            0x5F0E,
            Some(6),
        ),
        (
            "other names count wrong",
            11,
            dg(
                0x6B,
                &[
                    t(0x5C, &[0x5F, 0x0F]),
                    template(&[t(0x02, &[2]), t(0x5F0F, b"A<<B")]),
                ],
            ),
            0x02,
            Some(8),
        ),
        (
            "other names template without count",
            11,
            dg(0x6B, &[t(0x5C, &[0xA0]), template(&[t(0x5F0F, b"A<<B")])]),
            0x02,
            Some(7),
        ),
        (
            "other name outside the template",
            11,
            dg(0x6B, &[t(0x5C, &[0x5F, 0x0F]), t(0x5F0F, b"A<<B")]),
            0x5F0F,
            Some(6),
        ),
        (
            "date of issue too short",
            12,
            dg(0x6C, &[t(0x5C, &[0x5F, 0x26]), t(0x5F26, b"2024")]),
            0x5F26,
            Some(6),
        ),
        (
            "personalisation time too short",
            12,
            dg(0x6C, &[t(0x5C, &[0x5F, 0x55]), t(0x5F55, b"20240101")]),
            0x5F55,
            Some(6),
        ),
        (
            "other persons entry of the wrong tag",
            12,
            dg(
                0x6C,
                &[
                    t(0x5C, &[0xA0]),
                    template(&[t(0x02, &[1]), t(0x5F0F, b"A<<B")]),
                ],
            ),
            0x5F0F,
            Some(10),
        ),
        (
            "second tag list",
            12,
            dg(
                0x6C,
                &[
                    t(0x5C, &[0x5F, 0x19]),
                    t(0x5F19, b"X"),
                    t(0x5C, &[0x5F, 0x19]),
                ],
            ),
            0x5C,
            Some(2 + 4 + 4),
        ),
    ];
    for (case, n, bytes, tag, offset) in cases {
        let err = parse(n, &bytes).expect_err(case);
        match &err {
            LdsError::Field {
                file,
                tag: got,
                offset: at,
                ..
            } => {
                assert_eq!(*file, if n == 11 { "DG11" } else { "DG12" }, "{case}");
                assert_eq!(*got, tag, "{case}: {err}");
                if let Some(o) = offset {
                    assert_eq!(*at, o, "{case}: {err}");
                }
            }
            other => panic!("{case}: {other:?}"),
        }
        let shown = err.to_string();
        assert!(shown.contains(&format!("{tag:X}")), "{case}: {shown}");
        assert!(
            !shown.contains("A<<B") && !shown.contains("1974"),
            "{shown}"
        );
    }

    // Structural failures come from the TLV layer and name the file.
    let structural: Vec<(&str, u8, Vec<u8>)> = vec![
        ("trailing byte", 11, trailing),
        (
            "wrong outer tag",
            11,
            dg(0x6C, &[list_name.clone(), name.clone()]),
        ),
        (
            "truncated",
            11,
            dg(0x6B, &[list_name.clone(), name.clone()])[..6].to_vec(),
        ),
        ("empty", 12, dg(0x6C, &[])),
        ("no tag list", 12, dg(0x6C, &[t(0x5F19, b"X")])),
    ];
    for (case, n, bytes) in structural {
        let e = parse(n, &bytes).expect_err(case).to_string();
        assert!(e.starts_with(&format!("DG{n}")), "{case}: {e}");
    }
    let e = lds::parse_dg11(&[0x6B, 0x05, 0x5C, 0x02]).unwrap_err();
    assert!(e.to_string().starts_with("DG11"), "{e}");
    let e = lds::parse_dg12(&dg(0x6C, &[])).unwrap_err();
    assert!(
        e.to_string().contains("DG12") && e.to_string().contains("5C"),
        "{e}"
    );
}
