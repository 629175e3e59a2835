//! A vendor's matcher plugin configured on the daemon is loaded and used; one built for
//! another ABI is refused before its code runs, and the gate then takes no travelers
//! (fail closed) while the daemon keeps serving.

use torii_e2e::{Gate, GateOptions};

#[test]
fn the_configured_matcher_plugin_is_used() {
    let gate = Gate::start_with(GateOptions {
        drop_in: Some(format!(
            "[matcher]\nplugin = {:?}\n",
            torii_c_drivers::DEMO_FINGER_MATCHER
        )),
        ..GateOptions::default()
    });
    let log = gate.daemon_log();
    assert!(
        log.contains("fingerprint matcher") && log.contains("demo-finger-matcher"),
        "{log}"
    );
    assert_eq!(gate.toriictl(&["gate"]).unwrap()["mode"], "in-service");
}

#[test]
fn a_matcher_for_another_abi_keeps_the_gate_closed() {
    let gate = Gate::start_with(GateOptions {
        drop_in: Some(format!(
            "[matcher]\nplugin = {:?}\n",
            torii_c_drivers::FIXTURE_WRONG_ABI_MATCHER
        )),
        ..GateOptions::default()
    });
    let log = gate.daemon_log();
    assert!(log.contains("the gate flow cannot start"), "{log}");
    let (code, output) = gate.toriictl(&["gate"]).unwrap_err();
    assert_eq!(code, 1, "{output}");
    assert!(
        output.contains("not running") || output.contains("gate-not-running"),
        "{output}"
    );
    // The daemon itself keeps serving.
    assert_eq!(gate.status().unwrap()["ready"], true);
}
