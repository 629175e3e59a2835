//! Operators' passport tools: `toriictl doc mrz` (offline) and `toriictl doc read`
//! (the chip on the gate's reader, inspected through the real daemon and driver).

use std::process::Command;

use torii_e2e::{Gate, GateOptions, bin_dir};

const SPECIMEN: [&str; 2] = [
    "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
    "L898902C36UTO7408122F1204159ZE184226B<<<<<10",
];

#[test]
fn doc_mrz_checks_an_mrz_without_a_daemon_and_names_a_bad_field() {
    let toriictl = bin_dir().join("toriictl");
    let good = Command::new(&toriictl)
        .args(["--json", "doc", "mrz"])
        .args(SPECIMEN)
        .output()
        .unwrap();
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    let view: serde_json::Value = serde_json::from_slice(&good.stdout).unwrap();
    assert_eq!(view["valid"], true);
    assert_eq!(view["document_number"], "L898902C3");

    let damaged = SPECIMEN[1].replacen("C36", "C35", 1);
    let bad = Command::new(&toriictl)
        .args(["doc", "mrz", SPECIMEN[0], &damaged])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    let message = String::from_utf8_lossy(&bad.stderr);
    assert!(message.contains("check digit"), "{message}");
}

#[test]
fn doc_read_inspects_the_chip_on_the_reader_and_lists_every_check() {
    let suite = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../simulators/torii-sim/scenarios/suite.toml"
    );
    let gate = Gate::start_with(GateOptions {
        scenario: Some(suite.into()),
        ..GateOptions::default()
    });
    gate.maintenance();

    gate.sim(&["present-passport", "alice"]);
    let report = gate.toriictl(&["doc", "read"]).expect("a genuine passport");
    assert_eq!(report["genuine"], true, "{report}");
    assert_eq!(report["access"], "pace");
    let checks = report["checks"].as_array().unwrap();
    for name in [
        "ChipAccess",
        "SodSignature",
        "CscaChain",
        "DataGroupHashes",
        "MrzMatch",
        "ChipAuthentication",
        "ActiveAuthentication",
    ] {
        let check = checks
            .iter()
            .find(|c| c["check"] == name)
            .unwrap_or_else(|| panic!("{name} missing: {report}"));
        assert_eq!(check["outcome"], "passed", "{name}: {check}");
    }

    gate.sim(&["remove-passport"]);
    gate.sim(&["present-passport", "chip-dg1-altered"]);
    let (code, output) = gate.toriictl(&["doc", "read"]).unwrap_err();
    assert_eq!(code, 1, "{output}");
    assert!(output.contains("DOC_DG_HASH_MISMATCH"), "{output}");
}
