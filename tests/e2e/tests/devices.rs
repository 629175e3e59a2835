//! Every device class, exercised from the real daemon through its real sim driver `.so`
//! and the real simulator process — the way a maintenance engineer would, with
//! `toriictl` and `torii-sim ctl`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::Value;
use torii_e2e::Gate;

fn bytes(field: &Value) -> Vec<u8> {
    BASE64
        .decode(field.as_str().expect("a base64 string"))
        .expect("valid base64")
}

/// ICAO 9303 check digit (weights 7, 3, 1; `<` = 0, A–Z = 10–35).
fn check_digit(field: &str) -> char {
    let sum: u32 = field
        .chars()
        .zip([7, 3, 1].iter().cycle())
        .map(|(c, w)| {
            let v = match c {
                '0'..='9' => c as u32 - '0' as u32,
                'A'..='Z' => c as u32 - 'A' as u32 + 10,
                _ => 0,
            };
            v * w
        })
        .sum();
    char::from_digit(sum % 10, 10).unwrap()
}

#[test]
fn every_device_class_works_from_the_daemon_through_its_sim_driver_and_simulator() {
    let gate = Gate::start();

    // All seven devices are up on their sim drivers, two of them isolated.
    let status = gate.status().unwrap();
    assert_eq!(status["in_service"], true, "{status}");
    let devices = gate.toriictl(&["devices"]).unwrap();
    let devices = devices.as_array().expect("a device list");
    assert_eq!(devices.len(), 7);
    for device in devices {
        assert_eq!(device["state"], "READY", "{device}");
        assert!(
            device["driver"]["name"]
                .as_str()
                .unwrap()
                .starts_with("torii-sim-"),
            "{device}"
        );
    }
    assert_eq!(gate.device("camera")["isolation"], "process");
    assert_eq!(gate.device("document-reader")["isolation"], "in-process");

    // Maintenance mode: the gate flow must not act on what the test presents.
    gate.maintenance();

    // Document reader: presence event, MRZ, and the chip's file system.
    gate.sim(&["present-passport", "alice"]);
    gate.wait_for("document present", |g| {
        g.saw_event("document-reader", "media-present")
    });
    let mrz = gate.call("document-reader", &["read-mrz"]).unwrap();
    let lines: Vec<&str> = mrz["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{mrz}");
    assert!(lines.iter().all(|l| l.len() == 44), "TD3 lines: {lines:?}");
    assert_eq!(
        lines[1].chars().nth(9),
        Some(check_digit(&lines[1][..9])),
        "document number check digit"
    );
    assert_eq!(
        gate.call("document-reader", &["chip-connect"]).unwrap()["kind"],
        "atr"
    );
    let select = gate
        .call(
            "document-reader",
            &[r#"{"op":"chip-transmit","apdu":"00A4040C07A0000002471001"}"#],
        )
        .unwrap();
    assert_eq!(
        bytes(&select["response"]),
        vec![0x90, 0x00],
        "SELECT eMRTD application"
    );
    // The chip demands BAC or PACE: without secure messaging the LDS stays closed...
    let select_com = gate
        .call(
            "document-reader",
            &[r#"{"op":"chip-transmit","apdu":"00A4020C02011E"}"#],
        )
        .unwrap();
    assert_eq!(
        bytes(&select_com["response"]),
        vec![0x69, 0x82],
        "EF.COM needs secure messaging"
    );
    // ...while EF.CardAccess, which announces PACE, is readable in plain.
    let select_ca = gate
        .call(
            "document-reader",
            &[r#"{"op":"chip-transmit","apdu":"00A4020C02011C"}"#],
        )
        .unwrap();
    assert_eq!(
        bytes(&select_ca["response"]),
        vec![0x90, 0x00],
        "SELECT EF.CardAccess"
    );
    let read = gate
        .call(
            "document-reader",
            &[r#"{"op":"chip-transmit","apdu":"00B0000004"}"#],
        )
        .unwrap();
    let read = bytes(&read["response"]);
    assert_eq!(read[0], 0x31, "EF.CardAccess is a SET: {read:02x?}");
    assert_eq!(&read[read.len() - 2..], &[0x90, 0x00]);

    // Code reader: a QR code arrives as an event once scanning is enabled.
    gate.call("code-reader", &["set-code-reader-enabled", "enabled=true"])
        .unwrap();
    gate.sim(&["present-qr", "--payload", "TTP1:E2E-TEST"]);
    gate.wait_for("QR code read", |g| g.saw_event("code-reader", "code-read"));

    // Card printer: insert, read the chip, print a line on the back, eject.
    gate.sim(&["insert-card", "alice"]);
    gate.wait_for("card inserted", |g| {
        g.saw_event("card-printer", "media-present")
    });
    let chip = gate.call("card-printer", &["read-card-chip"]).unwrap();
    assert!(!bytes(&chip["data"]).is_empty());
    gate.call(
        "card-printer",
        &[
            "print-line",
            "line=2026-11-21 NRT TEMPORARY VISITOR 90 DAYS E2E",
        ],
    )
    .unwrap();
    let state = gate.sim_state().to_string();
    assert!(
        state.contains("2026-11-21 NRT TEMPORARY VISITOR 90 DAYS E2E"),
        "printed line in the simulator: {state}"
    );
    assert_eq!(
        gate.call("card-printer", &["eject-card"]).unwrap()["kind"],
        "done"
    );

    // Card reader: the traveler takes the ejected card and lays it on the reader.
    gate.sim(&["take-card"]);
    gate.wait_for("card taken", |g| {
        g.saw_event("card-printer", "media-removed")
    });
    gate.sim(&["place-card", "alice"]);
    gate.wait_for("card placed", |g| {
        g.saw_event("card-reader", "media-present")
    });
    assert!(!bytes(&gate.call("card-reader", &["read-card-chip"]).unwrap()["data"]).is_empty());

    // Fingerprint sensor (isolated driver host): two ISO/IEC 19794-2 records.
    gate.sim(&["place-fingers", "alice", "genuine"]);
    let fingers = gate
        .call(
            "fingerprint-sensor",
            &[r#"{"op":"capture-fingers","fingers":["right-index","left-index"],"timeout_ms":5000,"want_template":true,"want_image":false}"#],
        )
        .unwrap();
    let samples = fingers["samples"].as_array().unwrap();
    assert_eq!(samples.len(), 2, "{fingers}");
    for sample in samples {
        let template = bytes(&sample["template"]);
        assert_eq!(&template[..8], b"FMR\0 20\0", "19794-2:2005 header");
        let declared = u32::from_be_bytes(template[8..12].try_into().unwrap()) as usize;
        assert_eq!(declared, template.len(), "record length field");
    }

    // Camera (isolated driver host): a JPEG.
    gate.sim(&["look-at-camera", "alice"]);
    let face = gate
        .call("camera", &["capture-face", "timeout-ms=5000"])
        .unwrap();
    let jpeg = bytes(&face["jpeg"]);
    assert_eq!(&jpeg[..2], &[0xFF, 0xD8], "JPEG SOI");
    assert_eq!(&jpeg[jpeg.len() - 2..], &[0xFF, 0xD9], "JPEG EOI");

    // Lane controller: doors, presence, fire alarm.
    gate.call(
        "lane-controller",
        &["set-door", "door=entry", "command=open"],
    )
    .unwrap();
    let door = gate
        .call("lane-controller", &["get-door", "door=entry"])
        .unwrap();
    assert_eq!(door["state"], "open", "{door}");
    gate.call(
        "lane-controller",
        &["set-door", "door=entry", "command=close"],
    )
    .unwrap();
    gate.sim(&["enter-lane"]);
    gate.wait_for("person counted", |g| {
        g.saw_event("lane-controller", "person-count")
    });
    gate.sim(&["fire-alarm", "on"]);
    gate.wait_for("fire alarm reported", |g| {
        g.saw_event("lane-controller", "fire-alarm")
    });
    let alarm = gate.call("lane-controller", &["get-fire-alarm"]).unwrap();
    assert_eq!(alarm["active"], true);
}

#[test]
fn an_operation_of_the_wrong_class_is_refused_by_the_daemon() {
    let gate = Gate::start();
    let (code, output) = gate.call("camera", &["read-mrz"]).unwrap_err();
    assert_eq!(code, 1, "{output}");
    assert!(
        output.contains("wrong-class") || output.contains("does not exist on a camera"),
        "{output}"
    );
}
