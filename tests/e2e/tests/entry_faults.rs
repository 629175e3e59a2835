//! Entry-lane faults not covered by `fault_injection.rs`: the document reader failing
//! while the passport is read, the printer failing (or the card pulled) while the
//! landing record prints, and every device's isolated driver host killed (SIGKILL, a
//! crash as far as the daemon can tell) while the gate is using it, one step after
//! another. Every case must end safely: the traveler referred with the expected reason
//! code, the exit door never opened, the record at central, crashes audited.
//!
//! A fault "during" a call needs the call to be in flight: the simulator delays the
//! device's answers (`torii-sim ctl delay`), and the fault lands inside that window.

mod support;

use support::{
    Case, Expect, FAST, gate_until, kill_driver_host, run_table, settle, sim_until, suite,
};
use torii_e2e::{Gate, GateOptions};
use torii_sdk::model::DeviceClass;

/// Alice's script, the passport laid down after a pause at `idle` (so a fault can be
/// set on the document reader before it is read).
const SCRIPT: &[(&str, &str)] = &[
    ("", "enter-lane"),
    ("idle", "present-passport"),
    ("card", "insert-card"),
    ("ed-card", "edit-ed-card flight=JL5"),
    ("", "confirm-ed-card"),
    ("fingerprints", "place-fingers genuine"),
    ("face", "look-at-camera"),
    ("take-card", "take-card"),
    ("passage", "walk-through"),
];

/// Every device of the entry lane in its own driver host, so each can be killed.
fn isolated_gate() -> Gate {
    Gate::start_with(GateOptions {
        scenario: Some(suite()),
        isolated: vec![
            DeviceClass::DocumentReader,
            DeviceClass::CardPrinter,
            DeviceClass::FingerprintSensor,
            DeviceClass::Camera,
            DeviceClass::LaneController,
        ],
        drop_in: Some(FAST.to_owned()),
        ..GateOptions::default()
    })
}

fn case<'a>(
    name: &'a str,
    at: &'a str,
    inject: &'a (dyn Fn(&Gate) + Sync),
    reason: &'static str,
    audit: Option<&'a str>,
) -> Case<'a> {
    Case {
        name,
        suite: suite(),
        traveler: "alice",
        script: SCRIPT,
        at: Some(at),
        pause_ms: 700,
        inject,
        expect: Expect::Referred(reason),
        audit,
        exit_may_open: false,
    }
}

/// The simulator's `device` answers `ms` later from now on (until the next clean).
fn delay(gate: &Gate, device: &str, ms: u64) {
    gate.sim(&["delay", device, &ms.to_string()]);
}

fn passport_on_reader(gate: &Gate) -> bool {
    sim_until(gate, |s| {
        s["devices"]["document-reader"]["state"]["passport"].is_string()
    })
}

fn card_in_printer(gate: &Gate) -> bool {
    sim_until(gate, |s| {
        s["devices"]["card-printer"]["state"]["card"].is_object()
    })
}

fn at_step(gate: &Gate, step: &str) -> bool {
    gate_until(gate, |v| v["step"] == step)
}

#[test]
fn document_and_printing_faults_and_driver_crashes_at_every_entry_step() {
    let gate = isolated_gate();
    // The document reader, while the passport is read.
    let doc_hangs = |g: &Gate| {
        g.sim(&["hang", "document-reader"]);
    };
    let doc_error = |g: &Gate| {
        g.sim(&["fault", "document-reader", "hardware-error", "--sticky"]);
    };
    let doc_unplugged = |g: &Gate| {
        delay(g, "document-reader", 1000);
        assert!(passport_on_reader(g));
        settle();
        g.sim(&["unplug", "document-reader"]);
    };
    let doc_killed = |g: &Gate| {
        delay(g, "document-reader", 1000);
        assert!(passport_on_reader(g));
        settle();
        kill_driver_host(g, "document-reader");
    };
    // The card printer, while the landing record prints.
    let print_error = |g: &Gate| {
        g.sim(&["fault", "card-printer", "hardware-error", "--sticky"]);
    };
    let print_jam = |g: &Gate| {
        g.sim(&["fault", "card-printer", "media-jammed", "--sticky"]);
    };
    let card_pulled = |g: &Gate| {
        delay(g, "card-printer", 800);
        assert!(at_step(g, "printing"));
        settle();
        g.sim(&["remove-card"]);
    };
    let printer_killed = |g: &Gate| {
        delay(g, "card-printer", 800);
        assert!(at_step(g, "printing"));
        settle();
        kill_driver_host(g, "card-printer");
    };
    // Driver hosts killed at the other steps.
    let card_reader_killed = |g: &Gate| {
        delay(g, "card-printer", 800);
        assert!(card_in_printer(g));
        settle();
        kill_driver_host(g, "card-printer");
    };
    let sensor_killed = |g: &Gate| kill_driver_host(g, "fingerprint-sensor");
    let camera_killed = |g: &Gate| kill_driver_host(g, "camera");
    let lane_killed = |g: &Gate| {
        delay(g, "lane-controller", 800);
        assert!(at_step(g, "passage"));
        settle();
        kill_driver_host(g, "lane-controller");
    };
    run_table(
        &gate,
        &[
            case(
                "document reader hangs as the passport is laid",
                "idle",
                &doc_hangs,
                // The MRZ read times out: the reader failed, not the passport.
                "DEVICE_FAULT",
                None,
            ),
            case(
                "document reader hardware error",
                "idle",
                &doc_error,
                "DEVICE_FAULT",
                None,
            ),
            case(
                "document reader unplugged while the MRZ is read",
                "idle",
                &doc_unplugged,
                "DEVICE_FAULT",
                None,
            ),
            case(
                "document reader driver host killed while the MRZ is read",
                "idle",
                &doc_killed,
                "DEVICE_FAULT",
                Some("driver-fault"),
            ),
            case(
                "card printer driver host killed while the card chip is read",
                "card",
                &card_reader_killed,
                "DEVICE_FAULT",
                Some("driver-fault"),
            ),
            case(
                "fingerprint sensor driver host killed during the capture",
                "fingerprints",
                &sensor_killed,
                "DEVICE_FAULT",
                Some("driver-fault"),
            ),
            case(
                "camera driver host killed during the capture",
                "face",
                &camera_killed,
                "DEVICE_FAULT",
                Some("driver-fault"),
            ),
            case(
                "printer hardware error while the landing record prints",
                "face",
                &print_error,
                "DEVICE_FAULT",
                None,
            ),
            case(
                "printer jams while the landing record prints",
                "face",
                &print_jam,
                // A jam is the printer's, not the traveler's (CARD_REMOVED is for
                // a card pulled out).
                "DEVICE_FAULT",
                None,
            ),
            case(
                "card pulled out mid-print",
                "face",
                &card_pulled,
                "CARD_REMOVED",
                None,
            ),
            case(
                "card printer driver host killed while the landing record prints",
                "face",
                &printer_killed,
                "DEVICE_FAULT",
                Some("driver-fault"),
            ),
            case(
                "lane controller driver host killed as the passage begins",
                "take-card",
                &lane_killed,
                "DEVICE_FAULT",
                Some("driver-fault"),
            ),
        ],
    );
    assert!(
        gate.daemon_log().contains("SIGKILL") || gate.daemon_log().contains("signal 9"),
        "the kills are in the log"
    );
}
