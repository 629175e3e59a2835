//! USB hotplug through the real daemon: a device configured with `bind = "usb"` is
//! opened when a USB device its driver's id table lists appears on the bus, and goes
//! UNAVAILABLE when it is unplugged. The bus is a file (no USB in CI).

use torii_e2e::{Gate, GateOptions};

fn plug(bus: &std::path::Path, devices: &str) {
    // Written then renamed, so the daemon never reads half a file.
    let tmp = bus.with_extension("tmp");
    std::fs::write(&tmp, devices).unwrap();
    std::fs::rename(&tmp, bus).unwrap();
}

#[test]
fn a_usb_bound_driver_follows_its_device_in_and_out() {
    let bus = std::env::temp_dir().join(format!("torii-e2e-usb-{}.json", std::process::id()));
    let _ = std::fs::remove_file(&bus);
    let gate = Gate::start_with(GateOptions {
        drop_in: Some(format!(
            "[usb]\nfake_bus = {:?}\npoll_ms = 50\n\n[devices.usb-scanner]\nclass = \"code-reader\"\ndriver = {:?}\nbind = \"usb\"\n",
            bus.display().to_string(),
            torii_c_drivers::DEMO_CODE_READER
        )),
        ..GateOptions::default()
    });
    let scanner = gate.device("usb-scanner");
    assert_eq!(scanner["state"], "UNAVAILABLE");
    assert!(
        scanner["fault"].as_str().unwrap().contains("waiting"),
        "{scanner}"
    );

    // A device nobody's table lists changes nothing; the demo driver's 1d6b:7002 binds.
    plug(
        &bus,
        r#"[{"bus":1,"address":2,"vendor_id":4660,"product_id":1}]"#,
    );
    plug(
        &bus,
        r#"[{"bus":1,"address":2,"vendor_id":4660,"product_id":1},{"bus":3,"address":7,"vendor_id":7531,"product_id":28674}]"#,
    );
    gate.wait_for("scanner bound", |g| {
        g.device_state("usb-scanner") == "READY"
    });
    assert_eq!(
        gate.device("usb-scanner")["driver"]["name"],
        "demo-c-code-reader"
    );
    gate.call("usb-scanner", &["set-code-reader-enabled", "enabled=true"])
        .unwrap();
    gate.wait_for("the scanner's code", |g| {
        g.saw_event("usb-scanner", "code-read")
    });

    plug(&bus, "[]");
    gate.wait_for("scanner unplugged", |g| {
        g.device_state("usb-scanner") == "UNAVAILABLE"
    });
    assert!(
        gate.device("usb-scanner")["fault"]
            .as_str()
            .unwrap()
            .contains("unplugged")
    );
    assert!(
        gate.call("usb-scanner", &["set-code-reader-enabled", "enabled=true"])
            .is_err()
    );

    plug(
        &bus,
        r#"[{"bus":3,"address":9,"vendor_id":7531,"product_id":28673}]"#,
    );
    gate.wait_for("scanner bound again", |g| {
        g.device_state("usb-scanner") == "READY"
    });
    let _ = std::fs::remove_file(&bus);
}
