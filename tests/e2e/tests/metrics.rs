//! `GET /metrics` on a live simulated gate: one admitted and one referred traveler walk
//! through the real daemon, then the scrape must carry their counts, every device's
//! health and the histograms, no traveler's data, and pass `promtool check metrics`.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use torii_e2e::{Gate, GateOptions, PATIENCE};

/// Two travelers of the entry suite: alice is admitted, petra's fingers are someone
/// else's (three attempts, FP_MISMATCH). All people, documents and numbers are synthetic.
const SCENARIO: &str = r#"
description = "metrics: one admission, one fingerprint mismatch"

[gate]
lane = "entry"
port = "NRT"

[gate.stay]
default_days = 90

[[traveler]]
id = "alice"
surname = "TESTWOOD"
given_names = "ALICE SAMPLE"
nationality = "GBR"
sex = "F"
date_of_birth = 1986-04-12
height_cm = 170

[traveler.passport]
number = "TW1000017"
expiry = 2033-09-30
chip = true

[traveler.registration]
card_number = "TTP0000001001"
card_issued = 2025-05-20
fingers = ["right-index", "left-index"]
records_on_card = 3
status = "active"

[traveler.ed_card]
flight = "NH212"
arrival_date = 2026-07-01
address_in_japan = "Example Hotel, 1-2-3 Konan, Minato-ku, Tokyo"
phone_in_japan = "03-0000-0001"
purpose = "tourism"
length_of_stay_days = 10

[traveler.script]
actions = [
    "enter-lane",
    "present-passport",
    "insert-card",
    "confirm-ed-card",
    "place-fingers genuine",
    "look-at-camera",
    "take-card",
    "walk-through",
]

[traveler.expect]
outcome = "admitted"

[[traveler]]
id = "petra"
surname = "IMPOSTA"
given_names = "PETRA MOCK"
nationality = "POL"
sex = "F"
date_of_birth = 1989-09-19
height_cm = 170

[traveler.passport]
number = "PL0000017"
expiry = 2032-06-06
chip = true

[traveler.registration]
card_number = "TTP0000001016"
card_issued = 2025-05-20
fingers = ["right-index", "left-index"]
records_on_card = 3
status = "active"

[traveler.ed_card]
flight = "LO79"
arrival_date = 2026-07-01
address_in_japan = "Example Hotel, 1-2-3 Konan, Minato-ku, Tokyo"
phone_in_japan = "03-0000-0001"
purpose = "tourism"
length_of_stay_days = 10

[traveler.script]
actions = [
    "enter-lane",
    "present-passport",
    "insert-card",
    "confirm-ed-card",
    "place-fingers impostor",
    "look-at-camera",
    "take-card",
    "walk-through",
]

[traveler.expect]
outcome = "referred"
reason = "FP_MISMATCH"
"#;

/// A plain HTTP/1.1 GET (the harness has no HTTP client): status line, headers, body.
fn get(mut stream: impl Read + Write, path: &str) -> (String, String, String) {
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let response = String::from_utf8(response).expect("a UTF-8 answer");
    let (head, body) = response.split_once("\r\n\r\n").expect("headers and a body");
    let (status, headers) = head.split_once("\r\n").unwrap_or((head, ""));
    assert!(
        !headers
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "a rendered page has a length: {headers}"
    );
    (
        status.to_owned(),
        headers.to_ascii_lowercase(),
        body.to_owned(),
    )
}

fn scrape_tcp(gate: &Gate) -> String {
    let stream = std::net::TcpStream::connect(gate.layout.http).expect("toriid's loopback port");
    let (status, headers, body) = get(stream, "/metrics");
    assert!(status.contains(" 200 "), "{status}\n{body}");
    assert!(
        headers.contains("content-type: text/plain; version=0.0.4"),
        "{headers}"
    );
    body
}

/// The value of the series `series` (name and labels exactly as rendered).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn promtool_check(text: &str) {
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool: install the Debian package `prometheus` (tests/run-all does)");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = promtool.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success() && report.trim().is_empty(),
        "promtool check metrics: {report}\n--- scrape ---\n{text}"
    );
}

/// Every traveler's name, passport number and card number (as scenarios.rs checks logs).
fn secrets(scenario: &Path) -> Vec<String> {
    let scenario = torii_sim::scenario::Scenario::load(scenario).expect("the scenario parses");
    let mut secrets = Vec::new();
    for traveler in &scenario.travelers {
        secrets.push(traveler.passport.number.clone());
        secrets.push(traveler.surname.clone());
        secrets.extend(traveler.given_names.split_whitespace().map(str::to_owned));
        if let Some(registration) = &traveler.registration {
            secrets.push(registration.card_number.clone());
        }
    }
    secrets
}

#[test]
fn a_live_scrape_counts_the_travelers_and_passes_promtool() {
    let scenario_dir = tempfile::tempdir().unwrap();
    let scenario = scenario_dir.path().join("metrics.toml");
    std::fs::write(&scenario, SCENARIO).unwrap();
    let gate = Gate::start_with(GateOptions {
        scenario: Some(scenario.clone()),
        ..GateOptions::default()
    });

    // Before any traveler: the devices and the gate, no transaction yet.
    let before = scrape_tcp(&gate);
    assert!(!before.contains("torii_transactions_total{"), "{before}");
    promtool_check(&before);

    let (passed, output) = gate.run_scenario(&scenario);
    assert!(
        passed,
        "not every traveler passed\n{output}\n--- toriid log ---\n{}",
        gate.daemon_log()
    );

    // The metrics task follows the gate's events: wait for it to see both outcomes.
    let admitted = r#"torii_transactions_total{lane="entry",outcome="admitted",reason="none"}"#;
    let referred =
        r#"torii_transactions_total{lane="entry",outcome="referred",reason="FP_MISMATCH"}"#;
    let deadline = Instant::now() + PATIENCE;
    let text = loop {
        let text = scrape_tcp(&gate);
        if value(&text, admitted).is_some() && value(&text, referred).is_some() {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "no transaction counts in\n{text}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let at_least = |series: &str, minimum: f64| {
        let found = value(&text, series);
        assert!(
            found.is_some_and(|v| v >= minimum),
            "{series}: {found:?}, expected at least {minimum}\n{text}"
        );
    };
    assert_eq!(value(&text, admitted), Some(1.0), "{text}");
    assert_eq!(value(&text, referred), Some(1.0), "{text}");

    // Histograms have counts.
    at_least(
        r#"torii_transaction_duration_seconds_count{lane="entry",outcome="admitted"}"#,
        1.0,
    );
    at_least(
        r#"torii_transaction_duration_seconds_count{lane="entry",outcome="referred"}"#,
        1.0,
    );
    at_least(r#"torii_step_duration_seconds_count{step="document"}"#, 2.0);
    at_least(
        r#"torii_step_duration_seconds_count{step="fingerprints"}"#,
        1.0,
    );
    // alice: one attempt, two fingers; petra: every attempt refused.
    at_least(r#"torii_match_score_count{finger_kind="single"}"#, 4.0);
    at_least(r#"torii_match_score_count{finger_kind="fused"}"#, 2.0);
    assert_eq!(
        value(&text, r#"torii_match_decisions_total{result="match"}"#),
        Some(1.0),
        "{text}"
    );
    at_least(r#"torii_match_decisions_total{result="no-match"}"#, 1.0);
    assert!(
        text.contains("torii_door_commands_total{door="),
        "door commands\n{text}"
    );

    // All seven devices up, and the gate in service.
    let devices = gate.toriictl(&["devices"]).unwrap();
    let devices = devices.as_array().expect("a device list");
    assert_eq!(devices.len(), 7);
    for device in devices {
        let series = format!(
            r#"torii_device_up{{device="{}",class="{}"}}"#,
            device["id"].as_str().unwrap(),
            device["class"].as_str().unwrap()
        );
        assert_eq!(value(&text, &series), Some(1.0), "{series}\n{text}");
        let restarts = format!(
            r#"torii_driver_restarts_total{{device="{}"}}"#,
            device["id"].as_str().unwrap()
        );
        assert_eq!(value(&text, &restarts), Some(0.0), "{restarts}\n{text}");
    }
    assert_eq!(value(&text, "torii_gate_accepting"), Some(1.0), "{text}");
    assert_eq!(
        value(&text, r#"torii_gate_mode{mode="in-service"}"#),
        Some(1.0),
        "{text}"
    );
    assert!(text.contains("torii_build_info{version="), "{text}");
    // The test PKI's gate certificate is valid for years: its expiry is in the future.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    at_least(
        "torii_client_certificate_expiry_timestamp_seconds",
        now + 86_400.0,
    );
    at_least("torii_uptime_seconds", 0.0);
    at_least("process_resident_memory_bytes", 1.0);

    // No traveler's data, no record id.
    for secret in secrets(&scenario) {
        assert!(
            !text.contains(&secret),
            "personal data ({} characters) in the scrape",
            secret.len()
        );
    }
    let transactions = gate.toriictl(&["transactions"]).unwrap();
    for transaction in transactions.as_array().expect("a transaction list") {
        let id = transaction["record_id"].as_str().unwrap();
        assert!(!text.contains(id), "a record id in the scrape");
    }

    promtool_check(&text);

    // The Unix socket serves the same page.
    let socket = UnixStream::connect(gate.layout.api_socket()).expect("toriid's socket");
    let (status, _, body) = get(socket, "/metrics");
    assert!(status.contains(" 200 "), "{status}\n{body}");
    assert!(body.contains(admitted), "{body}");
}
