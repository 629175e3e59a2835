//! Device faults seen from the daemon: unplug and replug, a crashing isolated driver
//! host, a hung device, and a clean SIGTERM.

use nix::sys::signal::Signal;
use torii_e2e::{Gate, GateOptions, driver_hosts_of, signal};

#[test]
fn an_unplugged_device_is_unavailable_and_the_gate_out_of_service_until_replugged() {
    let gate = Gate::start();
    gate.sim(&["unplug", "card-printer"]);
    gate.wait_for("card printer UNAVAILABLE", |g| {
        g.device_state("card-printer") == "UNAVAILABLE"
    });
    assert_eq!(gate.status().unwrap()["in_service"], false);
    let (code, output) = gate.call("card-printer", &["read-card-chip"]).unwrap_err();
    assert_eq!(code, 1, "{output}");
    gate.sim(&["replug", "card-printer"]);
    gate.wait_for("card printer READY", |g| {
        g.device_state("card-printer") == "READY"
    });
    gate.wait_for("gate back in service", |g| {
        g.status().unwrap()["in_service"] == true
    });
}

#[test]
fn a_driver_that_segfaults_leaves_the_daemon_running_and_recovers_in_a_new_driver_host() {
    // The camera is replaced by a C driver that writes through a NULL pointer when asked
    // to capture: a real SIGSEGV inside the isolated driver host.
    let mut gate = Gate::start_with(GateOptions {
        drop_in: Some(format!(
            "[devices.camera]\ndriver = {:?}\nisolation = \"process\"\n[devices.camera.config]\nmode = \"segfault\"\n",
            torii_c_drivers::FIXTURE_CRASHY_CAMERA
        )),
        ..GateOptions::default()
    });
    assert_eq!(gate.device("camera")["driver"]["name"], "crashy-camera");
    assert_eq!(gate.device("camera")["state"], "READY");
    let (code, output) = gate
        .call("camera", &["capture-face", "timeout-ms=100"])
        .unwrap_err();
    assert_eq!(code, 1, "{output}");
    assert!(
        output.contains("SIGSEGV"),
        "the caller learns why: {output}"
    );
    gate.wait_for("camera back in a new driver host", |g| {
        let camera = g.device("camera");
        camera["restarts"].as_u64().unwrap() >= 1 && camera["state"] == "READY"
    });
    assert!(gate.daemon_alive(), "toriid died with its driver host");
    assert!(
        gate.daemon_log().contains("signal 11 (SIGSEGV)"),
        "the crash is in the log"
    );
    // Every other device kept working meanwhile.
    assert_eq!(
        gate.call("document-reader", &["get-state"]).unwrap()["state"],
        "READY"
    );
}

#[test]
fn killed_driver_hosts_are_restarted_and_their_devices_work_again() {
    let mut gate = Gate::start();
    let hosts = driver_hosts_of(gate.daemon_pid());
    assert_eq!(
        hosts.len(),
        2,
        "the camera and the fingerprint sensor are isolated: {hosts:?}"
    );
    for pid in &hosts {
        signal(*pid, Signal::SIGKILL);
    }
    gate.wait_for("both isolated devices restarted", |g| {
        ["camera", "fingerprint-sensor"].iter().all(|id| {
            let device = g.device(id);
            device["restarts"].as_u64().unwrap() >= 1 && device["state"] == "READY"
        })
    });
    assert!(gate.daemon_alive(), "toriid died with its driver hosts");
    assert!(
        gate.daemon_log().contains("SIGKILL"),
        "the cause is reported"
    );
    gate.sim(&["look-at-camera", "alice"]);
    assert_eq!(
        gate.call("camera", &["capture-face", "timeout-ms=5000"])
            .unwrap()["kind"],
        "face"
    );
}

#[test]
fn a_device_fault_reaches_the_caller_as_its_cuss_code() {
    let gate = Gate::start();
    gate.sim(&["insert-card", "alice"]);
    gate.sim(&["fault", "card-printer", "media-jammed"]);
    let (code, output) = gate.call("card-printer", &["eject-card"]).unwrap_err();
    assert_eq!(code, 1);
    assert!(output.contains("MEDIA_JAMMED"), "{output}");
}

#[test]
fn a_hung_device_times_out_instead_of_blocking_the_daemon() {
    let gate = Gate::start();
    gate.sim(&["hang", "lane-controller"]);
    let (code, output) = gate
        .call("lane-controller", &["get-fire-alarm"])
        .unwrap_err();
    assert_eq!(code, 1, "{output}");
    assert!(
        output.to_lowercase().contains("timeout") || output.contains("TIMEOUT"),
        "{output}"
    );
    // Other devices still answer meanwhile.
    assert_eq!(
        gate.call("camera", &["get-state"]).unwrap()["kind"],
        "state"
    );
    gate.sim(&["clear", "lane-controller"]);
}

#[test]
fn sigterm_stops_the_daemon_cleanly() {
    let mut gate = Gate::start();
    let socket = gate.layout.api_socket();
    let status = gate.stop_daemon();
    assert!(status.success(), "toriid exit status {status}");
    assert!(!socket.exists(), "the API socket is removed");
}

#[test]
fn an_in_process_driver_that_panics_faults_only_its_device_and_its_message_stays_private() {
    let fixture = torii_e2e::bin_dir().join("libtorii_fixture_panicky.so");
    let mut gate = Gate::start_with(GateOptions {
        drop_in: Some(format!(
            "[devices.card-reader]\ndriver = {:?}\nisolation = \"in-process\"\n[devices.card-reader.config]\npanic = true\n",
            fixture.display().to_string()
        )),
        ..GateOptions::default()
    });
    assert_eq!(gate.device("card-reader")["state"], "READY");
    let (code, output) = gate.call("card-reader", &["read-card-chip"]).unwrap_err();
    assert_eq!(code, 1, "{output}");
    gate.wait_for("card reader faulted", |g| {
        g.device_state("card-reader") == "UNAVAILABLE"
    });
    assert!(
        gate.device("card-reader")["fault"]
            .as_str()
            .unwrap()
            .contains("panic")
    );
    assert_eq!(
        gate.status().unwrap()["in_service"],
        false,
        "a gate missing a device is out of service"
    );
    assert!(gate.daemon_alive());
    assert_eq!(
        gate.call("camera", &["get-state"]).unwrap()["state"],
        "READY"
    );
    // The panic message carried a passport number: it must appear nowhere.
    let log = gate.daemon_log();
    assert!(log.contains("panicked"), "the panic is reported: {log}");
    assert!(
        !log.contains("XS1234567"),
        "personal data leaked into the log"
    );
    assert!(
        !output.contains("XS1234567"),
        "personal data leaked to the caller"
    );
}
