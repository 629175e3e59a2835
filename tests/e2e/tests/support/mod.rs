//! Shared by the fault-injection test files (each `tests/*.rs` is its own crate and
//! includes this module): one traveler scripted to pause at a step, a fault injected
//! there, and the oracles every case is judged by — the simulator's doors watched
//! throughout, the referral's reason code, the record at central, the audit trail.
//! The style is `fault_injection.rs`'s; its table runner is generalised here (any
//! lane, any traveler, any injection).

#![allow(dead_code)] // every test file uses a different part

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use torii_e2e::{Gate, PATIENCE, bin_dir};

pub fn scenario_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../simulators/torii-sim/scenarios")
        .join(name)
}

/// The entry suite (`suite.toml`).
pub fn suite() -> PathBuf {
    scenario_file("suite.toml")
}

/// The exit suite (`exit-suite.toml`).
pub fn exit_suite() -> PathBuf {
    scenario_file("exit-suite.toml")
}

/// Alice's entry script: (step to pause at before the action, action).
pub const ENTRY_SCRIPT: &[(&str, &str)] = &[
    ("", "enter-lane"),
    ("document", "present-passport"),
    ("card", "insert-card"),
    ("ed-card", "edit-ed-card flight=JL5"),
    ("", "confirm-ed-card"),
    ("fingerprints", "place-fingers genuine"),
    ("face", "look-at-camera"),
    ("take-card", "take-card"),
    ("passage", "walk-through"),
];

/// Alice's exit script.
pub const EXIT_SCRIPT: &[(&str, &str)] = &[
    ("", "enter-lane"),
    ("document", "present-passport"),
    ("card", "place-card"),
    ("fingerprints", "place-fingers genuine"),
    ("take-card", "lift-card"),
    ("passage", "walk-through"),
];

/// Short flow and device timeouts (a drop-in), so faults end cases in seconds.
pub const FAST: &str = "\
[flow]
card_timeout_ms = 4000
finger_timeout_ms = 2000
face_timeout_ms = 2000
take_card_timeout_ms = 4000
passage_timeout_ms = 3000
[devices.document-reader]
call_timeout_ms = 1500
[devices.fingerprint-sensor]
call_timeout_ms = 1000
[devices.card-printer]
call_timeout_ms = 1500
[devices.lane-controller]
call_timeout_ms = 1000
[devices.camera]
call_timeout_ms = 1000
";

/// What the traveler should end with.
#[derive(Clone, Copy, Debug)]
pub enum Expect {
    Admitted,
    Referred(&'static str),
}

/// A scenario file holding only `traveler` of `suite`, with `script` as their actions:
/// where an entry's step equals `pause_at`, `wait-step STEP` and a pause come first
/// (the test injects its fault meanwhile). The `[gate]` and header of the suite stay.
pub fn traveler_scenario(
    dir: &Path,
    suite: &Path,
    traveler: &str,
    script: &[(&str, &str)],
    pause_at: Option<&str>,
    pause_ms: u64,
    expect: Expect,
) -> PathBuf {
    let text = std::fs::read_to_string(suite).unwrap();
    let first = text.find("[[traveler]]").unwrap();
    let start = text
        .find(&format!("[[traveler]]\nid = \"{traveler}\""))
        .unwrap_or_else(|| panic!("no traveler {traveler} in {}", suite.display()));
    let script_at = start + text[start..].find("[traveler.script]").unwrap();
    let mut out = text[..first].to_owned();
    out.push_str(&text[start..script_at]);
    out.push_str("[traveler.script]\nactions = [\n");
    let mut paused = pause_at.is_none();
    for (step, action) in script {
        if Some(*step) == pause_at && !step.is_empty() {
            out.push_str(&format!(
                "    \"wait-step {step}\",\n    \"sleep-ms {pause_ms}\",\n"
            ));
            paused = true;
        }
        out.push_str(&format!("    {action:?},\n"));
    }
    assert!(paused, "no action waits for step {pause_at:?}");
    out.push_str("]\n\n[traveler.expect]\n");
    match expect {
        Expect::Admitted => out.push_str("outcome = \"admitted\"\n"),
        Expect::Referred(reason) => {
            out.push_str(&format!("outcome = \"referred\"\nreason = {reason:?}\n"))
        }
    }
    let path = dir.join(format!(
        "{traveler}-{}-{}.toml",
        pause_at.unwrap_or("none"),
        std::process::id()
    ));
    std::fs::write(&path, out).unwrap();
    path
}

/// `torii-sim scenario run` of `scenario` against `gate`, with generous step limits.
pub fn run_scenario(gate: &Gate, scenario: &Path) -> Output {
    Command::new(bin_dir().join("torii-sim"))
        .args(["scenario", "run", "--scenario"])
        .arg(scenario)
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
        .expect("run torii-sim scenario run")
}

pub fn lane(gate: &Gate) -> Value {
    gate.sim_state()["devices"]["lane-controller"]["state"].clone()
}

pub fn audit_log(gate: &Gate) -> String {
    std::fs::read_to_string(gate.layout.state_dir().join("audit.log")).unwrap_or_default()
}

/// Every device READY, the simulator clean, the gate idle in service.
pub fn clean(gate: &Gate) {
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
    if gate.toriictl(&["gate"]).unwrap()["alarm"] != Value::Null {
        let _ = gate.toriictl(&["alarm", "acknowledge"]);
    }
    if gate.toriictl(&["gate"]).unwrap()["mode"] != "in-service" {
        let _ = gate.toriictl(&["mode", "in-service"]);
    }
    gate.wait_for("gate idle in service", |g| {
        g.toriictl(&["gate"])
            .is_ok_and(|v| v["mode"] == "in-service" && v["step"] == "idle")
    });
}

/// What the door oracle saw while it watched.
#[derive(Debug, Default, Clone)]
pub struct Doors {
    /// The exit door was seen open.
    pub exit_opened: bool,
    /// Both doors were seen open at once without a fire alarm (the lane a corridor).
    pub both_open: bool,
    /// Both doors were seen open with the fire alarm on (egress freed).
    pub released_for_fire: bool,
}

/// Watches the simulator's doors every 20 ms while `body` runs.
pub fn watching_doors<T: Send>(gate: &Gate, body: impl FnOnce() -> T + Send) -> (T, Doors) {
    let done = AtomicBool::new(false);
    let seen = Mutex::new(Doors::default());
    let result = std::thread::scope(|s| {
        s.spawn(|| {
            while !done.load(Ordering::SeqCst) {
                let lane = lane(gate);
                let mut seen = seen.lock().unwrap();
                if lane["exit_door"] == "open" {
                    seen.exit_opened = true;
                    if lane["entry_door"] == "open" {
                        if lane["fire_alarm"] == true {
                            seen.released_for_fire = true;
                        } else {
                            seen.both_open = true;
                        }
                    }
                }
                drop(seen);
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        let result = body();
        done.store(true, Ordering::SeqCst);
        result
    });
    (result, seen.into_inner().unwrap())
}

/// Waits for `check`, polling every 100 ms, up to `limit`.
pub fn eventually(gate: &Gate, limit: Duration, what: &str, check: impl Fn(&Gate) -> bool) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check(gate) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = gate.daemon_log();
    let lines: Vec<&str> = log.lines().collect();
    panic!(
        "timed out waiting for {what}\n--- toriid log (tail) ---\n{}",
        lines[lines.len().saturating_sub(80)..].join("\n")
    );
}

/// Central's records: each stored once, seqs rising in arrival order.
pub fn assert_exactly_once_in_order(records: &[Value]) {
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

pub fn at_central(gate: &Gate, ids: &[String]) -> bool {
    let held: HashSet<String> = gate
        .central_records()
        .iter()
        .filter_map(|r| r["record_id"].as_str().map(str::to_owned))
        .collect();
    ids.iter().all(|id| held.contains(id))
}

/// One fault case: a traveler paused at a step, a fault injected there.
pub struct Case<'a> {
    pub name: &'a str,
    /// The suite and the traveler in it, with their script.
    pub suite: PathBuf,
    pub traveler: &'a str,
    pub script: &'a [(&'a str, &'a str)],
    /// The step the traveler pauses at (and the injection waits for); `None`: the
    /// injection runs as soon as the traveler starts.
    pub at: Option<&'a str>,
    pub pause_ms: u64,
    pub inject: &'a (dyn Fn(&Gate) + Sync),
    pub expect: Expect,
    /// An audit kind that must appear while the case runs.
    pub audit: Option<&'a str>,
    /// The exit door may open (an admission, or a fire alarm).
    pub exit_may_open: bool,
}

/// What a case produced, when it went as expected.
#[derive(Debug)]
pub struct Ran {
    pub record_id: String,
    pub outcome: Value,
    pub doors: Doors,
    pub took: Duration,
}

/// Runs one case on a clean gate and checks the common oracles: exactly one more
/// transaction, its outcome, the doors, the record finished and at central, the audit.
pub fn run_case(gate: &Gate, case: &Case) -> Result<Ran, String> {
    clean(gate);
    let started = Instant::now();
    let before = gate.toriictl(&["gate"]).unwrap()["transactions"]
        .as_u64()
        .unwrap();
    let passed_before = lane(gate)["passed"].as_u64().unwrap();
    let audit_before = audit_log(gate).len();
    let scenario = traveler_scenario(
        gate.dir.path(),
        &case.suite,
        case.traveler,
        case.script,
        case.at,
        case.pause_ms,
        case.expect,
    );
    let ((output, injected), doors) = watching_doors(gate, || {
        std::thread::scope(|s| {
            let runner = s.spawn(|| run_scenario(gate, &scenario));
            let deadline = Instant::now() + PATIENCE;
            let mut injected = false;
            while !injected && Instant::now() < deadline && !runner.is_finished() {
                let at_step = match case.at {
                    None => true,
                    // The runner resets the simulator (clearing faults) before each
                    // traveler: `idle` counts once the traveler stepped into the lane.
                    Some("idle") => lane(gate)["lane_zone"].as_u64() >= Some(1),
                    Some(step) => gate.toriictl(&["gate"]).is_ok_and(|v| v["step"] == step),
                };
                if at_step {
                    (case.inject)(gate);
                    injected = true;
                } else {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
            (runner.join().unwrap(), injected)
        })
    });
    let runner = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if !injected {
        return Err(format!(
            "{}: the gate never reached step {:?}\n{runner}",
            case.name, case.at
        ));
    }
    // A referral's record is committed after the step turns to `referred`: wait for the
    // transaction to be counted.
    let deadline = Instant::now() + PATIENCE;
    let mut view = gate.toriictl(&["gate"]).unwrap();
    while Instant::now() < deadline && view["transactions"].as_u64().unwrap() <= before {
        std::thread::sleep(Duration::from_millis(50));
        view = gate.toriictl(&["gate"]).unwrap();
    }
    let mut problems = Vec::new();
    if view["transactions"].as_u64().unwrap() != before + 1 {
        problems.push(format!("not exactly one transaction: {view}"));
    }
    let outcome = view["last"]["outcome"].clone();
    match case.expect {
        Expect::Admitted => {
            if outcome["outcome"] != "admitted" {
                problems.push(format!("expected admitted, got {outcome}"));
            }
        }
        Expect::Referred(reason) => {
            if outcome["outcome"] != "referred" || outcome["reason"] != reason {
                problems.push(format!("expected referred {reason}, got {outcome}"));
            }
        }
    }
    if !output.status.success() {
        problems.push("the scenario runner did not pass".to_owned());
    }
    let after = lane(gate);
    if doors.both_open {
        problems.push(format!("both doors stood open at once: {after}"));
    }
    if !case.exit_may_open {
        if doors.exit_opened || after["exit_door"] == "open" {
            problems.push(format!("the exit door was opened: {after}"));
        }
        if after["passed"].as_u64().unwrap() != passed_before {
            problems.push(format!("someone walked out through the exit: {after}"));
        }
    }
    let record_id = view["last"]["record_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if !gate.finished_record_ids().contains(&record_id) {
        problems.push(format!("record {record_id} not logged as finished"));
    }
    let deadline = Instant::now() + PATIENCE;
    let mut delivered = false;
    while Instant::now() < deadline && !delivered {
        delivered = at_central(gate, std::slice::from_ref(&record_id));
        if !delivered {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    if !delivered {
        problems.push(format!("record {record_id} never reached central"));
    }
    if let Some(kind) = case.audit {
        let needle = format!("\"kind\":\"{kind}\"");
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && !audit_log(gate)[audit_before..].contains(&needle) {
            std::thread::sleep(Duration::from_millis(100));
        }
        if !audit_log(gate)[audit_before..].contains(&needle) {
            problems.push(format!(
                "no {kind:?} audit entry: {}",
                &audit_log(gate)[audit_before..]
            ));
        }
    }
    if problems.is_empty() {
        Ok(Ran {
            record_id,
            outcome,
            doors,
            took: started.elapsed(),
        })
    } else {
        Err(format!(
            "{}: {}\n--- runner ---\n{runner}",
            case.name,
            problems.join("\n")
        ))
    }
}

/// Runs every case, printing one line each; fails naming the cases that failed.
pub fn run_table(gate: &Gate, cases: &[Case]) {
    let mut failures = Vec::new();
    for case in cases {
        match run_case(gate, case) {
            Ok(ran) => eprintln!("ok   {} -> {} in {:?}", case.name, ran.outcome, ran.took),
            Err(problem) => {
                eprintln!("FAIL {problem}");
                failures.push(case.name.to_owned());
            }
        }
    }
    assert!(failures.is_empty(), "failed cases: {failures:?}");
}

/// PID of the isolated driver host serving device `id` (its command line names it).
pub fn driver_host_of(gate: &Gate, id: &str) -> Option<u32> {
    torii_e2e::driver_hosts_of(gate.daemon_pid())
        .into_iter()
        .find(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| c.split(|b| *b == 0).any(|arg| arg == id.as_bytes()))
                .unwrap_or(false)
        })
}

/// Polls the simulator's state until `ready` holds (up to [`PATIENCE`]); false if it
/// never did. Injections use it to act at a precise moment inside a step (a call in
/// flight, a card in the slot).
pub fn sim_until(gate: &Gate, ready: impl Fn(&Value) -> bool) -> bool {
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        if ready(&gate.sim_state()) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Polls the gate's view until `ready` holds (up to [`PATIENCE`]).
pub fn gate_until(gate: &Gate, ready: impl Fn(&Value) -> bool) -> bool {
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        if gate.toriictl(&["gate"]).is_ok_and(|v| ready(&v)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// SIGKILL of the isolated driver host serving `device` (it must have one).
pub fn kill_driver_host(gate: &Gate, device: &str) {
    let pid = driver_host_of(gate, device)
        .unwrap_or_else(|| panic!("no isolated driver host serves {device}"));
    torii_e2e::signal(pid, nix::sys::signal::Signal::SIGKILL);
}

/// A moment for a delayed call to be on its way before the fault lands.
pub fn settle() {
    std::thread::sleep(Duration::from_millis(250));
}

/// Runs traveler `id` of `suite` (as scripted there) and resets the simulator after;
/// the runner's output.
pub fn one_traveler(gate: &Gate, suite: &Path, id: &str) -> String {
    let output = Command::new(bin_dir().join("torii-sim"))
        .args(["scenario", "run", "--scenario"])
        .arg(suite)
        .args(["--traveler", id, "--daemon-socket"])
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
    gate.sim(&["reset"]);
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Taking travelers: in service, no interlock.
pub fn accepting(gate: &Gate) -> bool {
    gate.toriictl(&["gate"]).is_ok_and(|v| {
        v["mode"] == "in-service" && v["interlocks"].as_array().is_some_and(|i| i.is_empty())
    })
}

/// The gate's interlocks now.
pub fn interlocks(gate: &Gate) -> Vec<String> {
    gate.toriictl(&["gate"])
        .ok()
        .and_then(|v| v["interlocks"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|i| i.as_str().map(str::to_owned))
        .collect()
}

/// Every record the daemon finished so far is at central, each once, in the gate's
/// order; central saw no record id with two bodies.
pub fn assert_all_delivered_once_in_order(gate: &Gate) {
    let finished = gate.finished_record_ids();
    eventually(
        gate,
        Duration::from_secs(60),
        "every finished record at central",
        |g| at_central(g, &finished),
    );
    let records = gate.central_records();
    assert_exactly_once_in_order(&records);
    let order: Vec<String> = records
        .iter()
        .map(|r| r["record_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(order, finished, "central received them in the gate's order");
    assert_eq!(gate.central(&["stats"])["conflicts"], 0);
}
