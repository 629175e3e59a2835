//! The scenario suites through the real daemon, the real `.so` sim drivers and the
//! simulators: `torii-sim scenario run` must pass every traveler.

use std::path::PathBuf;
use torii_e2e::{Gate, GateOptions};

fn suite(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../simulators/torii-sim/scenarios")
        .join(name)
}

fn run_suite(lane: &'static str, file: &str) {
    let gate = Gate::start_with(GateOptions {
        lane,
        scenario: Some(suite(file)),
        ..GateOptions::default()
    });
    let (passed, output) = gate.run_scenario(&suite(file));
    assert!(
        passed,
        "{file} on an {lane} lane: not every traveler passed\n{output}\n--- toriid log ---\n{}",
        gate.daemon_log()
    );
    assert!(output.contains(" passed, 0 failed"), "{output}");
    // Privacy: the harness searches this debug-level log (with the audit trail and the
    // outbox) for every traveler's name, passport number and card number when `gate`
    // drops; make sure it is the real log of a whole suite.
    assert!(
        gate.daemon_log().contains("transaction finished"),
        "the daemon's log is the real one"
    );
}

#[test]
fn the_entry_suite_passes_on_an_entry_lane() {
    run_suite("entry", "suite.toml");
}

#[test]
fn the_exit_suite_passes_on_an_exit_lane() {
    run_suite("exit", "exit-suite.toml");
}
