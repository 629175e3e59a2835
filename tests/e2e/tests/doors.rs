//! Doors that do not obey (`torii-sim ctl door-stuck DOOR open|closed`: the lane
//! controller takes the command, the leaf does not move, the position sensor tells the
//! truth). The gate is a mantrap: the exit opens only on an entry reported shut, the
//! entry opens only on an exit reported shut. A door not where it was commanded is the
//! lane's alarm: the traveler (if any) is referred DEVICE_FAULT, the lane goes out of
//! service, and only an officer's acknowledgement — with the door working again —
//! puts it back. Nothing opens wrongly, ever: the doors are watched throughout.

mod support;

use serde_json::Value;
use support::{Case, ENTRY_SCRIPT, Expect, FAST, audit_log, lane, run_case, suite, watching_doors};
use torii_e2e::{Gate, GateOptions};

fn gate() -> Gate {
    Gate::start_with(GateOptions {
        scenario: Some(suite()),
        drop_in: Some(FAST.to_owned()),
        ..GateOptions::default()
    })
}

fn view(gate: &Gate) -> Value {
    gate.toriictl(&["gate"]).unwrap()
}

fn out_of_service_with_alarm(gate: &Gate) -> bool {
    let v = view(gate);
    v["mode"] == "out-of-service" && v["alarm"]["kind"] == "device-fault"
}

fn acknowledge(gate: &Gate) {
    gate.toriictl(&["alarm", "acknowledge"])
        .expect("toriictl alarm acknowledge");
}

/// With `jam` (the scenario runner's final reset freed the door: jam it again where it
/// stands), the officer acknowledges while the door is still jammed: the gate checks
/// the doors again and stays out of service with its alarm. (A door jammed where the
/// idle posture wants it — entry open, exit shut — is caught at the next passage
/// instead.) Once the door is freed, the acknowledgement brings the lane back in
/// service with the entry open and the exit shut.
fn acknowledge_jammed_then_repaired(gate: &Gate, door: &str, jam: Option<&str>) {
    let ((), doors) = watching_doors(gate, || {
        let acks = audit_log(gate).matches("\"alarm-acknowledged\"").count();
        if let Some(state) = jam {
            gate.sim(&["door-stuck", door, state]);
            acknowledge(gate);
            support::eventually(gate, torii_e2e::PATIENCE, "the ack audited", |g| {
                audit_log(g).matches("\"alarm-acknowledged\"").count() > acks
            });
            support::eventually(gate, torii_e2e::PATIENCE, "the alarm raised again", |g| {
                out_of_service_with_alarm(g)
            });
        }
        gate.sim(&["door-stuck", door, "none"]);
        acknowledge(gate);
        support::eventually(gate, torii_e2e::PATIENCE, "back in service", |g| {
            let v = view(g);
            let l = lane(g);
            v["mode"] == "in-service"
                && v["alarm"].is_null()
                && l["entry_door"] == "open"
                && l["exit_door"] == "closed"
        });
    });
    assert!(!doors.both_open, "both doors open while recovering");
}

#[test]
fn doors_that_do_not_obey_close_the_lane_until_an_officer_acknowledges() {
    let gate = gate();
    let entry_open = |g: &Gate| {
        g.sim(&["door-stuck", "entry", "open"]);
    };
    let exit_closed = |g: &Gate| {
        g.sim(&["door-stuck", "exit", "closed"]);
    };
    let exit_open = |g: &Gate| {
        g.sim(&["door-stuck", "exit", "open"]);
    };
    let referred = |name, inject| Case {
        name,
        suite: suite(),
        traveler: "alice",
        script: ENTRY_SCRIPT,
        at: Some("take-card"),
        pause_ms: 500,
        inject,
        expect: Expect::Referred("DEVICE_FAULT"),
        audit: None,
        exit_may_open: false,
    };

    // 1. The entry jams open: the exit must not open onto it (the lane would be a
    //    corridor). Referred before the record is committed as an admission.
    let ran = run_case(
        &gate,
        &referred("entry door jammed open before the passage", &entry_open),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(out_of_service_with_alarm(&gate), "{}", view(&gate));
    assert_ne!(lane(&gate)["exit_door"], "open");
    eprintln!(
        "ok   entry jammed open -> {} in {:?}",
        ran.outcome, ran.took
    );
    acknowledge_jammed_then_repaired(&gate, "entry", None);

    // 2. The exit jams shut: the traveler cannot leave; referred DEVICE_FAULT (the
    //    admission was already durable: the record stands as committed, see the report).
    let ran = run_case(
        &gate,
        &referred("exit door jammed shut at the passage", &exit_closed),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(out_of_service_with_alarm(&gate), "{}", view(&gate));
    eprintln!("ok   exit jammed shut -> {} in {:?}", ran.outcome, ran.took);
    acknowledge_jammed_then_repaired(&gate, "exit", None);

    // 3. The exit jams open after the traveler walked through: she is admitted (her
    //    record stands); the lane alarms and stays out of service, the entry shut.
    let ran = run_case(
        &gate,
        &Case {
            name: "exit door jammed open after the passage",
            inject: &exit_open,
            expect: Expect::Admitted,
            exit_may_open: true,
            ..referred("", &exit_open)
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(!ran.doors.both_open);
    support::eventually(&gate, torii_e2e::PATIENCE, "the door alarm", |g| {
        out_of_service_with_alarm(g)
    });
    let l = lane(&gate);
    assert_eq!(l["exit_door"], "open", "{l}");
    assert_ne!(l["entry_door"], "open", "nobody may come in: {l}");
    eprintln!("ok   exit jammed open -> {} in {:?}", ran.outcome, ran.took);
    acknowledge_jammed_then_repaired(&gate, "exit", Some("open"));

    // 4. The entry jams shut while idle: the lane cannot take anyone. Found at the next
    //    idle posture (here: an officer's mode change), alarmed, out of service.
    support::clean(&gate);
    gate.sim(&["door-stuck", "entry", "closed"]);
    gate.toriictl(&["mode", "out-of-service"]).unwrap();
    gate.toriictl(&["mode", "in-service"]).unwrap();
    support::eventually(&gate, torii_e2e::PATIENCE, "the door alarm", |g| {
        out_of_service_with_alarm(g)
    });
    let exit = lane(&gate)["exit_door"].clone();
    assert!(exit == "closed" || exit == "locked", "{exit}");
    acknowledge_jammed_then_repaired(&gate, "entry", Some("closed"));
}
