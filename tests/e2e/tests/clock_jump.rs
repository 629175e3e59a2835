//! The daemon's wall clock steps (as an NTP step or an operator's `date -s` does) while
//! travelers pass: libfaketime (Debian package `faketime`) is preloaded into toriid with
//! an offset read from a file at every call (`FAKETIME_NO_CACHE`), and only
//! CLOCK_REALTIME is faked (`FAKETIME_DONT_FAKE_MONOTONIC`): tokio's timers and every
//! timeout run on the monotonic clock, which a step does not move.
//!
//! What must hold: a backward step closes no lane; a stale registry is found stale
//! whichever way the clock stepped (a backward step must not hide central's silence,
//! a forward step must not let it pass); timeouts still fire; TLS to central still
//! works (the steps stay within the certificates' validity); every record reaches
//! central once, in the gate's order.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use support::{
    FAST, accepting, assert_all_delivered_once_in_order, eventually, interlocks, one_traveler,
    suite,
};
use torii_e2e::{Gate, GateOptions, PATIENCE};

/// libfaketime's library, wherever Debian put it for this architecture.
fn libfaketime() -> PathBuf {
    let found = std::fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .flatten()
        .map(|dir| dir.path().join("faketime/libfaketime.so.1"))
        .chain([PathBuf::from("/usr/lib/faketime/libfaketime.so.1")])
        .find(|path| path.exists());
    found.unwrap_or_else(|| {
        panic!(
            "libfaketime.so.1 not found: install the Debian package `faketime` \
             (tests/run-all installs it)"
        )
    })
}

/// Sets the daemon's wall-clock offset from real time (`+0`, `-1h`, `+3d`, …).
fn step_clock(file: &Path, offset: &str) {
    // Written whole then renamed: libfaketime rereads the file at every call.
    let tmp = file.with_extension("new");
    std::fs::write(&tmp, format!("{offset}\n")).unwrap();
    std::fs::rename(&tmp, file).unwrap();
    eprintln!("clock stepped to real time {offset}");
}

fn stale(gate: &Gate) -> bool {
    interlocks(gate) == ["registry-stale"]
}

/// The lane, watched for `how_long`, never leaves service.
fn stays_accepting(gate: &Gate, how_long: Duration, why: &str) {
    let until = Instant::now() + how_long;
    while Instant::now() < until {
        assert!(
            accepting(gate),
            "{why}: the lane closed: {}",
            gate.toriictl(&["gate"]).unwrap()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn admitted(gate: &Gate, when: &str) {
    let output = one_traveler(gate, &suite(), "alice");
    assert!(output.contains("PASS alice"), "{when}: {output}");
}

/// Central down: the registry goes stale (within a few monitor ticks of the 2 s limit)
/// and the lane closes; central back: it opens again.
fn central_silence_is_noticed(gate: &Gate, when: &str) {
    gate.central(&["fault", "down"]);
    let since = Instant::now();
    eventually(
        gate,
        PATIENCE,
        &format!("{when}: the registry stale"),
        stale,
    );
    eprintln!("{when}: stale after {:?} of silence", since.elapsed());
    gate.central(&["fault", "none"]);
    eventually(
        gate,
        PATIENCE,
        &format!("{when}: the lane open again"),
        accepting,
    );
}

#[test]
fn wall_clock_steps_close_no_lane_hide_no_staleness_and_lose_no_record() {
    let dir = tempfile::tempdir().unwrap();
    let offset = dir.path().join("faketime");
    step_clock(&offset, "+0");
    let gate = Gate::start_with(GateOptions {
        scenario: Some(suite()),
        drop_in: Some(format!(
            "{FAST}[registry]\nsync_interval_ms = 300\nrevocation_interval_ms = 300\n\
             max_staleness_ms = 2000\n[central]\nbackoff_max_ms = 1000\n"
        )),
        daemon_env: vec![
            ("LD_PRELOAD".into(), libfaketime().display().to_string()),
            (
                "FAKETIME_TIMESTAMP_FILE".into(),
                offset.display().to_string(),
            ),
            ("FAKETIME_NO_CACHE".into(), "1".into()),
            ("FAKETIME_DONT_FAKE_MONOTONIC".into(), "1".into()),
            // The name libfaketime before 0.9.9 reads.
            ("DONT_FAKE_MONOTONIC".into(), "1".into()),
        ],
        ..GateOptions::default()
    });
    eventually(&gate, PATIENCE, "the first sync", accepting);
    admitted(&gate, "before any step");

    step_clock(&offset, "+2h");
    eventually(&gate, PATIENCE, "the lane open at +2 h", accepting);
    admitted(&gate, "+2 h");
    // The preload is in effect: the daemon's audit entries are dated 2 h ahead.
    assert_eq!(last_audit_minutes_ahead(&gate), 120);

    // Backward: one hour. No lane closes for it, records still flow (TLS: within
    // validity), and central's silence is still noticed within the limit — the wall
    // clock alone would say the last sync is in the future and the registry fresh for
    // the hour the clock went back.
    step_clock(&offset, "-1h");
    stays_accepting(&gate, Duration::from_secs(3), "-1 h");
    admitted(&gate, "-1 h");
    assert_eq!(last_audit_minutes_ahead(&gate), -60);
    central_silence_is_noticed(&gate, "-1 h");

    // Forward: three days. Fail closed: the registry is as old as the wall clock says
    // until the next sync catches up (300 ms here), so the lane may close for a moment;
    // it must come back by itself, and silence must still close it.
    step_clock(&offset, "+3d");
    eventually(&gate, PATIENCE, "the lane open at +3 d", accepting);
    admitted(&gate, "+3 d");
    central_silence_is_noticed(&gate, "+3 d");

    // Timeouts run on the monotonic clock: a traveler who never inserts the card is
    // still referred after card_timeout_ms (4 s), whatever the wall clock did.
    let started = Instant::now();
    let scenario = support::traveler_scenario(
        dir.path(),
        &suite(),
        "alice",
        &[("", "enter-lane"), ("", "present-passport")],
        None,
        0,
        support::Expect::Referred("CARD_MISSING"),
    );
    let output = support::run_scenario(&gate, &scenario);
    gate.sim(&["reset"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    eprintln!("card timeout fired after {:?}", started.elapsed());

    // Back to real time (-3 d): still no spurious closure, still flowing.
    step_clock(&offset, "+0");
    stays_accepting(&gate, Duration::from_secs(2), "back to real time");
    admitted(&gate, "real time again");

    assert_all_delivered_once_in_order(&gate);
    eventually(&gate, PATIENCE, "the outbox drained", |g| {
        g.link()["outbox_depth"] == 0
    });
}

/// How far ahead of the real clock (in whole minutes, within ±12 h) the daemon dated
/// its last audit entry (`"at":"YYYY-MM-DDTHH:MM:…"`), waiting for the forwarder's
/// entry of the last record first.
fn last_audit_minutes_ahead(gate: &Gate) -> i64 {
    eventually(gate, PATIENCE, "the last record forwarded", |g| {
        g.link()["outbox_depth"] == 0
    });
    let audit = support::audit_log(gate);
    let line = audit.lines().last().expect("an audit entry");
    let at = line
        .split("\"at\":\"")
        .nth(1)
        .unwrap_or_else(|| panic!("no time in {line}"));
    let field = |range: std::ops::Range<usize>| at[range].parse::<i64>().unwrap();
    let daemon = field(11..13) * 60 + field(14..16);
    let real = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        / 60
        % 1440;
    // Minutes may turn between the entry and now: round to the nearest 5 minutes.
    let ahead = (daemon - real).rem_euclid(1440);
    let ahead = if ahead > 720 { ahead - 1440 } else { ahead };
    (ahead as f64 / 5.0).round() as i64 * 5
}
