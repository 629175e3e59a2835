//! Central immigration flapping (down and up every ~0.7 s) and slow (every answer later
//! than the gate's request timeout, so the gate gives up on batches central did store)
//! while travelers pass: the lane keeps serving (records wait in the outbox), and every
//! record reaches central exactly once, in the gate's order.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use support::{
    FAST, accepting, assert_all_delivered_once_in_order, eventually, one_traveler, suite,
};
use torii_e2e::{Gate, GateOptions, PATIENCE};

/// Travelers per phase: enough batches to be cut at different points.
const TRAVELERS: usize = 4;

#[test]
fn flapping_and_slow_central_every_record_once_and_in_order() {
    let gate = Gate::start_with(GateOptions {
        scenario: Some(suite()),
        // Retries soon (backoff capped at 1 s); answers later than 1 s are given up on.
        drop_in: Some(format!(
            "{FAST}[central]\nbackoff_max_ms = 1000\ntimeout_ms = 1000\nbatch = 2\n"
        )),
        ..GateOptions::default()
    });
    eventually(&gate, PATIENCE, "the lane open", accepting);

    // Flapping.
    let stop = AtomicBool::new(false);
    let flips = std::thread::scope(|s| {
        let flapper = s.spawn(|| {
            let mut flips = 0;
            let mut down = false;
            while !stop.load(Ordering::SeqCst) {
                down = !down;
                gate.central(&["fault", if down { "down" } else { "none" }]);
                flips += 1;
                std::thread::sleep(Duration::from_millis(700));
            }
            gate.central(&["fault", "none"]);
            flips
        });
        for n in 0..TRAVELERS {
            let output = one_traveler(&gate, &suite(), "alice");
            assert!(
                output.contains("PASS alice"),
                "flapping, traveler {n}: {output}"
            );
        }
        // Let the forwarder meet a few more flips with records in flight.
        let until = Instant::now() + Duration::from_secs(2);
        while Instant::now() < until {
            std::thread::sleep(Duration::from_millis(100));
        }
        stop.store(true, Ordering::SeqCst);
        flapper.join().unwrap()
    });
    eprintln!("central flipped {flips} times");
    assert!(flips >= 4, "central flapped while travelers passed");

    // Slow: central stores each batch, answers after the gate gave up; the gate sends
    // again (idempotent by record id).
    gate.central(&["fault", "slow", "--delay-ms", "1500"]);
    for n in 0..TRAVELERS {
        let output = one_traveler(&gate, &suite(), "alice");
        assert!(
            output.contains("PASS alice"),
            "slow, traveler {n}: {output}"
        );
    }
    eventually(&gate, PATIENCE, "timeouts counted", |g| {
        g.link()["forwarder_errors"]
            .as_array()
            .is_some_and(|e| !e.is_empty())
    });
    gate.central(&["fault", "none"]);

    assert_all_delivered_once_in_order(&gate);
    eventually(&gate, PATIENCE, "the outbox drained", |g| {
        g.link()["outbox_depth"] == 0
    });
}
