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
    assert_no_personal_data_in(&gate.daemon_log(), &suite(file));
}

/// Privacy: the daemon's log of a whole suite (at debug level) holds no traveler's name,
/// passport number or card number.
fn assert_no_personal_data_in(log: &str, scenario: &std::path::Path) {
    let scenario = torii_sim::scenario::Scenario::load(scenario).expect("the suite parses");
    assert!(
        log.contains("transaction finished"),
        "the log is the real one"
    );
    for traveler in &scenario.travelers {
        let mut secrets = vec![traveler.passport.number.clone(), traveler.surname.clone()];
        secrets.extend(
            traveler
                .given_names
                .split_whitespace()
                .filter(|n| n.len() > 3)
                .map(str::to_owned),
        );
        if let Some(registration) = &traveler.registration {
            secrets.push(registration.card_number.clone());
        }
        for secret in secrets {
            assert!(
                !log.contains(&secret),
                "traveler {}: personal data ({} characters) found in the daemon's log",
                traveler.id,
                secret.len()
            );
        }
    }
}

#[test]
fn the_entry_suite_passes_on_an_entry_lane() {
    run_suite("entry", "suite.toml");
}

#[test]
fn the_exit_suite_passes_on_an_exit_lane() {
    run_suite("exit", "exit-suite.toml");
}
