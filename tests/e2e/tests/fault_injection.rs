//! Fault injection end to end: a traveler (alice, the happy path of the entry suite) is
//! driven through the real daemon, the real sim driver `.so`s and the simulator, and a
//! device fault is injected just before one step of the entry sequence. Every case must
//! end safely: the traveler is referred with the expected reason code, the exit door is
//! never opened (except on a fire alarm, which releases every door), the record reaches
//! central, and driver faults are audited.
//!
//! The cases are a table: step × fault × expected reason. Left for later (not covered
//! here): a wall-clock jump mid-transaction, and a full disk under the outbox.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use torii_e2e::{Gate, GateOptions, PATIENCE, bin_dir};

/// What goes wrong.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// `torii-sim ctl fault DEVICE STATUS --sticky`: every call fails with the CUSS status.
    Status(&'static str, &'static str),
    /// `torii-sim ctl hang DEVICE`: calls are never answered.
    Hang(&'static str),
    /// `torii-sim ctl unplug DEVICE`: the connection drops.
    Unplug(&'static str),
    /// `torii-sim ctl fire-alarm on`.
    FireAlarm,
    /// Nothing injected: the device's driver itself fails (a crashing fixture driver).
    Driver,
}

struct Case {
    name: &'static str,
    /// The gate step at which the fault is injected, before the traveler acts on it.
    /// Faults of the fingerprint sensor and the camera are injected one step earlier:
    /// once their step is reached the capture call is already waiting on the device,
    /// and a hang or a status set then only affects later calls (the traveler would be
    /// admitted).
    at: &'static str,
    fault: Fault,
    reason: &'static str,
    /// An audit kind that must appear while the case runs.
    audit: Option<&'static str>,
}

/// Alice's full entry script; `wait-step STEP` + a pause are inserted before the
/// action of the injected step, giving the test time to inject the fault.
const SCRIPT: &[(&str, &str)] = &[
    ("", "enter-lane"),
    ("", "present-passport"),
    ("card", "insert-card"),
    ("ed-card", "edit-ed-card flight=JL5"),
    ("", "confirm-ed-card"),
    ("fingerprints", "place-fingers genuine"),
    ("face", "look-at-camera"),
    ("take-card", "take-card"),
    ("passage", "walk-through"),
];

/// How long the scripted traveler pauses at the injected step.
const PAUSE_MS: u64 = 700;

const DROP_IN: &str = "\
[flow]
card_timeout_ms = 4000
finger_timeout_ms = 2000
face_timeout_ms = 2000
take_card_timeout_ms = 4000
passage_timeout_ms = 4000
[devices.fingerprint-sensor]
call_timeout_ms = 1000
[devices.card-printer]
call_timeout_ms = 1000
[devices.lane-controller]
call_timeout_ms = 1000
";

fn suite() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../simulators/torii-sim/scenarios/suite.toml")
}

/// A gate running the entry suite's registry, short timeouts, and `camera` as the body
/// of its `[devices.camera]` table (over the generated one).
fn start_gate(camera: &str) -> Gate {
    Gate::start_with(GateOptions {
        scenario: Some(suite()),
        drop_in: Some(format!(
            "{DROP_IN}[devices.camera]\ncall_timeout_ms = 1000\n{camera}"
        )),
        ..GateOptions::default()
    })
}

/// A scenario file with alice alone, scripted to pause at `at` and expected to be
/// referred with `reason`.
fn alice_scenario(dir: &Path, at: &str, reason: &str) -> PathBuf {
    let suite = std::fs::read_to_string(suite()).unwrap();
    let first = suite.find("[[traveler]]").unwrap();
    let alice = suite.find("[[traveler]]\nid = \"alice\"").unwrap();
    let script = alice + suite[alice..].find("[traveler.script]").unwrap();
    let mut text = suite[..first].to_owned();
    text.push_str(&suite[alice..script]);
    text.push_str("[traveler.script]\nactions = [\n");
    let mut injected = false;
    for (step, action) in SCRIPT {
        if *step == at {
            text.push_str(&format!(
                "    \"wait-step {at}\",\n    \"sleep-ms {PAUSE_MS}\",\n"
            ));
            injected = true;
        }
        text.push_str(&format!("    {action:?},\n"));
    }
    assert!(injected, "no action waits for step {at}");
    text.push_str(&format!(
        "]\n\n[traveler.expect]\noutcome = \"referred\"\nreason = {reason:?}\n"
    ));
    let path = dir.join(format!("alice-{at}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

fn inject(gate: &Gate, fault: Fault) {
    match fault {
        Fault::Status(device, status) => gate.sim(&["fault", device, status, "--sticky"]),
        Fault::Hang(device) => gate.sim(&["hang", device]),
        Fault::Unplug(device) => gate.sim(&["unplug", device]),
        Fault::FireAlarm => gate.sim(&["fire-alarm", "on"]),
        Fault::Driver => Value::Null,
    };
}

fn lane(gate: &Gate) -> Value {
    gate.sim_state()["devices"]["lane-controller"]["state"].clone()
}

fn audit_log(gate: &Gate) -> String {
    std::fs::read_to_string(gate.layout.state_dir().join("audit.log")).unwrap_or_default()
}

/// A clean, idle gate in service.
fn clean(gate: &Gate) {
    gate.sim(&["reset"]);
    gate.sim(&["clear", "all"]);
    gate.wait_for("all devices READY", |g| {
        g.toriictl(&["devices"])
            .ok()
            .and_then(|d| {
                d.as_array()
                    .cloned()
                    .or_else(|| d["devices"].as_array().cloned())
            })
            .is_some_and(|ds| ds.iter().all(|d| d["state"] == "READY"))
    });
    if gate.toriictl(&["gate"]).unwrap()["mode"] != "in-service" {
        let _ = gate.toriictl(&["mode", "in-service"]);
    }
    gate.wait_for("gate idle in service", |g| {
        g.toriictl(&["gate"])
            .is_ok_and(|v| v["mode"] == "in-service" && v["step"] == "idle")
    });
}

/// Runs one case on `gate`; returns a description of what went wrong, if anything.
fn run_case(gate: &Gate, case: &Case) -> Result<String, String> {
    clean(gate);
    let started = Instant::now();
    let before = gate.toriictl(&["gate"]).unwrap()["transactions"]
        .as_u64()
        .unwrap();
    let passed_before = lane(gate)["passed"].as_u64().unwrap();
    let audit_before = audit_log(gate).len();
    let scenario = alice_scenario(gate.dir.path(), case.at, case.reason);

    let exit_opened = AtomicBool::new(false);
    let all_released = AtomicBool::new(false);
    let done = AtomicBool::new(false);
    let (runner, injected) = std::thread::scope(|s| {
        let runner = s.spawn(|| {
            let output = Command::new(bin_dir().join("torii-sim"))
                .args(["scenario", "run", "--scenario"])
                .arg(&scenario)
                .arg("--daemon-socket")
                .arg(gate.layout.api_socket())
                .args(["--control", &gate.control_url])
                .args([
                    "--step-timeout-ms",
                    "10000",
                    "--decision-timeout-ms",
                    "15000",
                ])
                .output()
                .expect("run torii-sim scenario run");
            done.store(true, Ordering::SeqCst);
            output
        });
        // The door oracle: the simulator's exit door, watched through the whole case.
        s.spawn(|| {
            while !done.load(Ordering::SeqCst) {
                let lane = lane(gate);
                if lane["exit_door"] == "open" {
                    exit_opened.store(true, Ordering::SeqCst);
                    if lane["entry_door"] == "open" && lane["fire_alarm"] == true {
                        all_released.store(true, Ordering::SeqCst);
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        // Inject as soon as the gate reaches the step (the traveler pauses there).
        let deadline = Instant::now() + PATIENCE;
        // A crashing driver needs no injection (its step may be over before it is seen).
        let mut injected = matches!(case.fault, Fault::Driver);
        while !injected && Instant::now() < deadline && !done.load(Ordering::SeqCst) {
            if gate.toriictl(&["gate"]).is_ok_and(|v| v["step"] == case.at) {
                inject(gate, case.fault);
                injected = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        (runner.join().unwrap(), injected)
    });
    let stdout = String::from_utf8_lossy(&runner.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&runner.stderr).into_owned();
    if !injected {
        return Err(format!(
            "the gate never reached step {}\n{stdout}\n{stderr}",
            case.at
        ));
    }
    let view = gate.toriictl(&["gate"]).unwrap();
    let mut problems = Vec::new();
    // 1. referred with the expected reason code.
    if view["transactions"].as_u64().unwrap() != before + 1 {
        problems.push(format!("not exactly one transaction: {view}"));
    }
    let outcome = &view["last"]["outcome"];
    if outcome["outcome"] != "referred" || outcome["reason"] != case.reason {
        problems.push(format!("expected referred {}, got {outcome}", case.reason));
    }
    if !runner.status.success() {
        problems.push(format!("runner: {stdout}"));
    }
    // 2. the exit door: never opened, except on a fire alarm (every door released).
    let after = lane(gate);
    if after["passed"].as_u64().unwrap() != passed_before {
        problems.push(format!("someone walked out through the exit: {after}"));
    }
    if matches!(case.fault, Fault::FireAlarm) {
        if !all_released.load(Ordering::SeqCst) {
            problems.push("fire alarm: the doors were never both released".to_owned());
        }
    } else if exit_opened.load(Ordering::SeqCst) || after["exit_door"] == "open" {
        problems.push(format!("the exit door was opened: {after}"));
    }
    // 3. the record reaches central.
    let record_id = view["last"]["record_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if !gate.finished_record_ids().contains(&record_id) {
        problems.push(format!("record {record_id} not logged as finished"));
    }
    let deadline = Instant::now() + PATIENCE;
    let mut at_central = false;
    while Instant::now() < deadline && !at_central {
        at_central = gate
            .central_records()
            .iter()
            .any(|r| r["record_id"] == record_id.as_str());
        if !at_central {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    if !at_central {
        problems.push(format!("record {record_id} never reached central"));
    }
    // 4. the audit trail.
    if let Some(kind) = case.audit {
        let needle = format!("\"kind\":\"{kind}\"");
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && !audit_log(gate)[audit_before..].contains(&needle) {
            std::thread::sleep(Duration::from_millis(100));
        }
        let audit = audit_log(gate);
        if !audit[audit_before..].contains(&needle) {
            problems.push(format!(
                "no {kind:?} audit entry: {}",
                &audit[audit_before..]
            ));
        }
    }
    if problems.is_empty() {
        Ok(format!(
            "{} -> {} in {:?}",
            case.name,
            outcome,
            started.elapsed()
        ))
    } else {
        Err(format!(
            "{}: {}\n--- runner ---\n{stdout}\n{stderr}",
            case.name,
            problems.join("\n")
        ))
    }
}

fn run_table(gate: &Gate, cases: &[Case]) {
    let mut failures = Vec::new();
    for case in cases {
        match run_case(gate, case) {
            Ok(line) => eprintln!("ok   {line}"),
            Err(problem) => {
                eprintln!("FAIL {problem}");
                failures.push(case.name);
            }
        }
    }
    assert!(failures.is_empty(), "failed cases: {failures:?}");
}

#[test]
fn device_faults_during_an_entry_refer_the_traveler_and_keep_the_exit_closed() {
    let gate = start_gate("");
    run_table(
        &gate,
        &[
            Case {
                name: "card printer hardware error at the card step",
                at: "card",
                fault: Fault::Status("card-printer", "hardware-error"),
                // The printer failing is a device fault, not the card's: maintenance
                // hears about it (a damaged chip would be CARD_UNREADABLE).
                reason: "DEVICE_FAULT",
                audit: None,
            },
            Case {
                name: "card jam at the card step",
                at: "card",
                fault: Fault::Status("card-printer", "media-jammed"),
                reason: "DEVICE_FAULT",
                audit: None,
            },
            Case {
                name: "fingerprint sensor hangs",
                at: "ed-card",
                fault: Fault::Hang("fingerprint-sensor"),
                // The capture's call times out (call_timeout_ms): the device hung, a
                // device fault — not the traveler's TIMEOUT.
                reason: "DEVICE_FAULT",
                audit: None,
            },
            Case {
                name: "fingerprint sensor unplugged",
                at: "ed-card",
                fault: Fault::Unplug("fingerprint-sensor"),
                reason: "DEVICE_FAULT",
                // An unplugged sim device goes UNAVAILABLE without a fault text: no
                // driver-fault audit entry (see the crash case for one).
                audit: None,
            },
            Case {
                name: "fingerprint sensor hardware error",
                at: "ed-card",
                fault: Fault::Status("fingerprint-sensor", "hardware-error"),
                reason: "DEVICE_FAULT",
                audit: None,
            },
            Case {
                name: "camera hangs",
                at: "fingerprints",
                fault: Fault::Hang("camera"),
                // A hung or failing camera is a device fault (FACE_FAILED is for a
                // capture that found no usable face).
                reason: "DEVICE_FAULT",
                audit: None,
            },
            Case {
                name: "camera hardware error",
                at: "fingerprints",
                fault: Fault::Status("camera", "hardware-error"),
                reason: "DEVICE_FAULT",
                audit: None,
            },
            Case {
                name: "lane controller door fault before the exit opens",
                at: "take-card",
                fault: Fault::Status("lane-controller", "hardware-error"),
                reason: "DEVICE_FAULT",
                audit: None,
            },
            Case {
                name: "lane controller hangs (door stuck) before the exit opens",
                at: "take-card",
                fault: Fault::Hang("lane-controller"),
                reason: "DEVICE_FAULT",
                audit: None,
            },
            Case {
                name: "fire alarm at the fingerprint step",
                at: "fingerprints",
                fault: Fault::FireAlarm,
                reason: "FIRE_ALARM",
                audit: None,
            },
        ],
    );
}

#[test]
fn an_isolated_camera_driver_that_segfaults_mid_entry_refers_the_traveler() {
    // The camera is the crashy C fixture: it writes through a NULL pointer when asked to
    // capture, a real SIGSEGV inside its isolated driver host.
    let gate = start_gate(&format!(
        "driver = {:?}\nisolation = \"process\"\n[devices.camera.config]\nmode = \"segfault\"\n",
        torii_c_drivers::FIXTURE_CRASHY_CAMERA
    ));
    assert_eq!(gate.device("camera")["driver"]["name"], "crashy-camera");
    run_table(
        &gate,
        &[Case {
            name: "camera driver host crashes (SIGSEGV) at the face step",
            at: "face",
            fault: Fault::Driver,
            reason: "DEVICE_FAULT",
            audit: Some("driver-fault"),
        }],
    );
    assert!(
        gate.daemon_log().contains("SIGSEGV"),
        "the crash is in the log"
    );
}
