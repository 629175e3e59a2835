//! The central link with the real daemon, the real sim drivers and the mTLS central
//! simulator: records reach central exactly once and in order through kill -9 and
//! outages, TLS refusals are reported and audited, revocations bite.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;
use torii_e2e::{Gate, GateOptions, PATIENCE};

fn suite() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../simulators/torii-sim/scenarios/suite.toml")
}

fn suite_gate() -> Gate {
    Gate::start_with(GateOptions {
        scenario: Some(suite()),
        ..GateOptions::default()
    })
}

/// Waits up to `limit` for `check`, polling.
fn eventually(limit: Duration, what: &str, gate: &Gate, check: impl Fn(&Gate) -> bool) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check(gate) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "timed out waiting for {what}\n--- toriid log (tail) ---\n{}",
        tail(&gate.daemon_log())
    );
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(60)..].join("\n")
}

/// Central's records are each stored once, and for this gate their seqs rise in arrival
/// order (central keeps order per gate by refusing a new record whose seq is not above
/// the last; this checks it never had to, and never stored out of order).
fn assert_exactly_once_in_order(records: &[Value]) {
    let mut ids = HashSet::new();
    let mut last = 0;
    for record in records {
        let id = record["record_id"].as_str().unwrap().to_owned();
        assert!(ids.insert(id.clone()), "record {id} stored twice");
        let seq = record["seq"].as_u64().unwrap();
        assert!(seq > last, "record {id}: seq {seq} after {last}");
        last = seq;
    }
}

fn delivered(gate: &Gate, expected: &[String]) -> bool {
    let held: HashSet<String> = gate
        .central_records()
        .iter()
        .filter_map(|r| r["record_id"].as_str().map(str::to_owned))
        .collect();
    expected.iter().all(|id| held.contains(id))
}

#[test]
fn every_record_reaches_central_once_and_in_order_through_kill_9() {
    let mut gate = suite_gate();
    // A different cut each run, printed so a failure can be replayed by hand.
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    eprintln!("kill points seeded with {seed}");
    let mut state = u64::from(seed) | 1;
    let mut next = || {
        // xorshift: enough to spread kill points, no dependency.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..4 {
        let socket = gate.layout.api_socket();
        let control = gate.control_url.clone();
        let runner = std::thread::spawn(move || {
            std::process::Command::new(torii_e2e::bin_dir().join("torii-sim"))
                .args(["scenario", "run", "--scenario"])
                .arg(suite())
                .arg("--daemon-socket")
                .arg(socket)
                .args(["--control", &control])
                .args(["--step-timeout-ms", "3000", "--decision-timeout-ms", "5000"])
                .output()
        });
        let cut = Duration::from_millis(300 + next() % 4000);
        std::thread::sleep(cut);
        eprintln!("round {round}: kill -9 after {cut:?}");
        gate.kill_daemon();
        let _ = runner.join();
        gate.sim(&["reset"]);
        gate.start_daemon();
    }
    // One full run without a cut, so the last records are recent ones.
    gate.sim(&["reset"]);
    let _ = gate.run_scenario(&suite());
    let finished = gate.finished_record_ids();
    assert!(
        finished.len() >= 10,
        "travelers were served between the cuts ({} records)",
        finished.len()
    );
    eventually(
        PATIENCE * 2,
        "every finished record at central",
        &gate,
        |g| delivered(g, &finished),
    );
    let records = gate.central_records();
    assert_exactly_once_in_order(&records);
    let stats = gate.central(&["stats"]);
    assert_eq!(
        stats["conflicts"], 0,
        "no record id ever came with two bodies"
    );
    eventually(PATIENCE, "the outbox drained", &gate, |g| {
        g.link()["outbox_depth"] == 0
    });
}

#[test]
fn central_down_then_back_the_backlog_drains_in_order() {
    let gate = suite_gate();
    gate.central(&["fault", "down"]);
    let (_, output) = gate.run_scenario(&suite());
    let finished = gate.finished_record_ids();
    assert!(finished.len() >= 20, "{output}");
    assert!(gate.central_records().is_empty(), "central was down");
    let link = gate.link();
    assert_eq!(link["outbox_depth"].as_u64(), Some(finished.len() as u64));
    assert!(
        link["forwarder_errors"]
            .as_array()
            .is_some_and(|e| !e.is_empty()),
        "the failures are counted: {link}"
    );
    gate.central(&["fault", "none"]);
    // The forwarder backs off up to a minute: wait for its next try.
    eventually(
        Duration::from_secs(90),
        "the backlog at central",
        &gate,
        |g| delivered(g, &finished),
    );
    let records = gate.central_records();
    assert_exactly_once_in_order(&records);
    let order: Vec<String> = records
        .iter()
        .map(|r| r["record_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(order, finished, "central received them in the gate's order");
}

/// Replaces the gate's client certificate and key by another pair of the test PKI; the
/// daemon picks the change up at its next connection, without a restart.
fn use_client_certificate(gate: &Gate, name: &str) {
    let pki = gate.layout.pki_dir();
    for ext in ["pem", "key"] {
        let from = pki.join(format!("{name}.{ext}"));
        let to = pki.join(format!("gate.{ext}.new"));
        std::fs::copy(&from, &to).unwrap();
        std::fs::rename(&to, pki.join(format!("gate.{ext}"))).unwrap();
    }
}

fn audit_log(gate: &Gate) -> String {
    std::fs::read_to_string(gate.layout.state_dir().join("audit.log")).unwrap_or_default()
}

fn one_traveler(gate: &Gate, id: &str) -> String {
    let output = std::process::Command::new(torii_e2e::bin_dir().join("torii-sim"))
        .args(["scenario", "run", "--scenario"])
        .arg(suite())
        .args(["--traveler", id, "--daemon-socket"])
        .arg(gate.layout.api_socket())
        .args(["--control", &gate.control_url])
        .output()
        .unwrap();
    gate.sim(&["reset"]);
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn wrong_server_certificate_expired_and_revoked_client_certificates_are_refused() {
    let gate = suite_gate();
    // The valid pair, to come back to.
    let pki = gate.layout.pki_dir();
    for ext in ["pem", "key"] {
        std::fs::copy(
            pki.join(format!("gate.{ext}")),
            pki.join(format!("gate-good.{ext}")),
        )
        .unwrap();
    }
    let refusal = |g: &Gate| {
        g.central(&["stats"])["last_tls_refusal"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let reloads = |g: &Gate| g.link()["certificate_reloads"].as_u64().unwrap_or(0);
    let delivered_now = |g: &Gate| g.central_records().len();

    // Central presents a certificate from another CA: the gate refuses it.
    gate.central(&["fault", "wrong-server-cert"]);
    let output = one_traveler(&gate, "alice");
    assert!(output.contains("PASS alice"), "{output}");
    eventually(PATIENCE, "a TLS refusal audited", &gate, |g| {
        audit_log(g).contains("\"central-refused\"")
    });
    assert_eq!(delivered_now(&gate), 0, "nothing sent to an impostor");

    // The gate's certificate expired, then is revoked (CRL): central refuses it. Each pair
    // is installed while no handshake can succeed (central still an impostor, then the
    // previous bad pair), and the gate is seen to have loaded it before going on, so the
    // held record can never slip out with a good certificate between two phases.
    for (number, (certificate, why)) in [("gate-expired", "expired"), ("gate-revoked", "revoked")]
        .into_iter()
        .enumerate()
    {
        let before = reloads(&gate);
        use_client_certificate(&gate, certificate);
        eventually(
            Duration::from_secs(90),
            &format!("the gate loading the {certificate} pair"),
            &gate,
            |g| reloads(g) > before,
        );
        if number == 0 {
            gate.central(&["fault", "none"]);
        }
        eventually(
            Duration::from_secs(90),
            &format!("central refusing: {why}"),
            &gate,
            |g| refusal(g).to_lowercase().contains(why),
        );
        assert_eq!(delivered_now(&gate), 0, "{why}: nothing accepted");
    }

    // A valid certificate again: the held record goes through, no restart.
    use_client_certificate(&gate, "gate-good");
    eventually(
        Duration::from_secs(90),
        "the record delivered",
        &gate,
        |g| delivered_now(g) == 1,
    );
    let audit = audit_log(&gate);
    assert!(audit.contains("\"certificate-reloaded\""), "{audit}");
    assert!(gate.link()["certificate_reloads"].as_u64().unwrap() >= 3);
}

#[test]
fn a_revocation_published_by_central_refers_the_travelers_next_attempt() {
    let gate = suite_gate();
    let first = one_traveler(&gate, "alice");
    assert!(first.contains("PASS alice"), "{first}");
    gate.central(&["revoke", "TW1000017", "GBR", "revoked"]);
    eventually(PATIENCE, "the revocation applied", &gate, |g| {
        audit_log(g).contains("\"revocation-applied\"")
    });
    let second = one_traveler(&gate, "alice");
    assert!(
        second.contains("REG_REVOKED"),
        "the next attempt is referred as revoked: {second}"
    );
}

#[test]
fn a_deregistration_erases_the_person_from_the_gate() {
    let gate = suite_gate();
    gate.central(&["erase", "TW1000017", "GBR"]);
    eventually(PATIENCE, "the erasure applied", &gate, |g| {
        audit_log(g).contains(", 1 erasures")
    });
    let output = one_traveler(&gate, "alice");
    assert!(output.contains("REG_NOT_FOUND"), "{output}");
    // Nothing of hers is left in the registry's database.
    let db = std::fs::read(gate.layout.registry_database()).unwrap();
    let needle = b"TW1000017";
    assert!(
        !db.windows(needle.len()).any(|w| w == needle),
        "her passport number is gone from the registry file"
    );
}

#[test]
fn a_stale_registry_closes_the_lane_until_central_is_reached_again() {
    let gate = Gate::start_with(GateOptions {
        scenario: Some(suite()),
        drop_in: Some(
            "[registry]\nsync_interval_ms = 300\nrevocation_interval_ms = 300\nmax_staleness_ms = 2000\n"
                .into(),
        ),
        ..GateOptions::default()
    });
    let accepting = |g: &Gate| {
        g.toriictl(&["gate"])
            .map(|s| s["interlocks"].as_array().is_some_and(|i| i.is_empty()))
            .unwrap_or(false)
    };
    eventually(PATIENCE, "the first sync", &gate, accepting);
    gate.central(&["fault", "down"]);
    eventually(PATIENCE, "the registry-stale interlock", &gate, |g| {
        g.toriictl(&["gate"])
            .is_ok_and(|s| s["interlocks"] == serde_json::json!(["registry-stale"]))
    });
    assert_eq!(gate.link()["registry_stale"], true);
    // A traveler now gets no service: the passport starts nothing.
    let output = one_traveler(&gate, "alice");
    assert!(!output.contains("PASS alice"), "{output}");
    gate.central(&["fault", "none"]);
    eventually(
        Duration::from_secs(90),
        "the lane open again",
        &gate,
        accepting,
    );
    let output = one_traveler(&gate, "alice");
    assert!(output.contains("PASS alice"), "{output}");
}

#[test]
fn the_audit_trail_of_a_run_verifies_and_an_edit_is_found() {
    let gate = suite_gate();
    let output = one_traveler(&gate, "alice");
    assert!(output.contains("PASS alice"), "{output}");
    gate.toriictl(&["mode", "maintenance"]).unwrap();
    let log = gate.layout.state_dir().join("audit.log");
    eventually(PATIENCE, "the mode change audited", &gate, |g| {
        audit_log(g).contains("\"mode-changed\"")
    });
    let key = gate.layout.audit_key_file();
    let verify = || {
        std::process::Command::new(torii_e2e::bin_dir().join("toriictl"))
            .args(["audit", "verify", "--json", "--log"])
            .arg(&log)
            .arg("--key")
            .arg(&key)
            .output()
            .unwrap()
    };
    let intact = verify();
    assert_eq!(
        intact.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&intact.stdout)
    );
    let text = std::fs::read_to_string(&log).unwrap();
    for kind in [
        "daemon-started",
        "config-loaded",
        "audit-opened",
        "mode-changed",
    ] {
        assert!(text.contains(&format!("\"{kind}\"")), "{kind} in\n{text}");
    }
    // Someone turns the officer's mode change into something else.
    assert!(text.contains("mode Maintenance"), "{text}");
    std::fs::write(&log, text.replace("mode Maintenance", "mode InService")).unwrap();
    let tampered = verify();
    assert_eq!(tampered.status.code(), Some(1));
    let report = String::from_utf8_lossy(&tampered.stdout);
    assert!(report.contains("edited"), "{report}");
}
