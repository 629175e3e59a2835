//! Exit-lane faults (departure examination): a device fails at each step of alice's
//! exit — the passport reader, the card reader (error, unplugged mid-read), the
//! fingerprint sensor (hung), the lane controller (error before the door). Fail closed:
//! she is referred with the expected reason code, the exit door never opens, the record
//! reaches central.

mod support;

use support::{Case, EXIT_SCRIPT, Expect, FAST, exit_suite, run_table, settle, sim_until};
use torii_e2e::{Gate, GateOptions};

/// Alice's exit, the passport laid after a pause at `idle`.
const SCRIPT: &[(&str, &str)] = &[
    ("", "enter-lane"),
    ("idle", "present-passport"),
    ("card", "place-card"),
    ("fingerprints", "place-fingers genuine"),
    ("take-card", "lift-card"),
    ("passage", "walk-through"),
];

fn case<'a>(
    name: &'a str,
    at: &'a str,
    inject: &'a (dyn Fn(&Gate) + Sync),
    reason: &'static str,
) -> Case<'a> {
    Case {
        name,
        suite: exit_suite(),
        traveler: "alice",
        script: SCRIPT,
        at: Some(at),
        pause_ms: 700,
        inject,
        expect: Expect::Referred(reason),
        audit: None,
        exit_may_open: false,
    }
}

#[test]
fn device_faults_at_every_exit_step_refer_the_traveler_and_keep_the_exit_closed() {
    assert_eq!(
        SCRIPT[2..],
        EXIT_SCRIPT[2..],
        "the same exit as the suite's"
    );
    let gate = Gate::start_with(GateOptions {
        lane: "exit",
        scenario: Some(exit_suite()),
        drop_in: Some(format!(
            "{FAST}[devices.card-reader]\ncall_timeout_ms = 1500\n"
        )),
        ..GateOptions::default()
    });
    let passport_error = |g: &Gate| {
        g.sim(&["fault", "document-reader", "hardware-error", "--sticky"]);
    };
    let card_error = |g: &Gate| {
        g.sim(&["fault", "card-reader", "hardware-error", "--sticky"]);
    };
    let card_unplugged = |g: &Gate| {
        g.sim(&["delay", "card-reader", "1000"]);
        assert!(sim_until(g, |s| {
            s["devices"]["card-reader"]["state"]["card"].is_string()
        }));
        settle();
        g.sim(&["unplug", "card-reader"]);
    };
    let sensor_hangs = |g: &Gate| {
        g.sim(&["hang", "fingerprint-sensor"]);
    };
    let lane_error = |g: &Gate| {
        g.sim(&["fault", "lane-controller", "hardware-error", "--sticky"]);
    };
    run_table(
        &gate,
        &[
            case(
                "passport reader hardware error",
                "idle",
                &passport_error,
                "DEVICE_FAULT",
            ),
            case(
                "card reader hardware error",
                "card",
                &card_error,
                "DEVICE_FAULT",
            ),
            case(
                "card reader unplugged while the card chip is read",
                "card",
                &card_unplugged,
                "DEVICE_FAULT",
            ),
            // Injected a step early: once the step is reached the capture is already
            // waiting on the device (see fault_injection.rs).
            case(
                "fingerprint sensor hangs",
                "card",
                &sensor_hangs,
                "DEVICE_FAULT",
            ),
            case(
                "lane controller error before the exit door",
                "take-card",
                &lane_error,
                "DEVICE_FAULT",
            ),
        ],
    );
}
