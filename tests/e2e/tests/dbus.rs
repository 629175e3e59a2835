//! The D-Bus interface of the real daemon on a simulated gate, used as a third party
//! does: a private `dbus-daemon` started here, `busctl` for properties and calls,
//! `gdbus monitor` for the signals while a traveler goes through, `gdbus call` (as
//! another user, when the test runs as root) for a refusal.
//! Needs `dbus-daemon`, `busctl` and `gdbus` (tests/run-all installs them).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use torii_e2e::{Gate, GateOptions, PATIENCE};

const NAME: &str = "org.torii.Gate1";
const GATE: &str = "/org/torii/Gate1";
const IFACE: &str = "org.torii.Gate1";
const DEVICE_IFACE: &str = "org.torii.Device1";

/// A private bus that lets everyone do everything (the shipped policy is tested with
/// the adapter in toriid's own tests).
const CONFIG: &str = r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=@SOCKET@</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
  </policy>
</busconfig>
"#;

struct Bus {
    dir: tempfile::TempDir,
    daemon: Child,
}

impl Bus {
    fn start() -> Bus {
        let dir = tempfile::Builder::new()
            .prefix("torii-e2e-bus-")
            .tempdir_in("/tmp")
            .unwrap();
        // Other users (the refused caller) must reach the socket.
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let config = dir.path().join("bus.conf");
        let socket = dir.path().join("bus");
        std::fs::write(
            &config,
            CONFIG.replace("@SOCKET@", &socket.display().to_string()),
        )
        .unwrap();
        let mut daemon = Command::new(tool("dbus-daemon"))
            .arg(format!("--config-file={}", config.display()))
            .args(["--nofork", "--nopidfile", "--print-address=1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dbus-daemon");
        // The address is printed once the bus listens.
        let mut line = String::new();
        BufReader::new(daemon.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.starts_with("unix:"), "dbus-daemon printed {line:?}");
        Bus { dir, daemon }
    }

    fn address(&self) -> String {
        format!("unix:path={}", self.dir.path().join("bus").display())
    }

    fn busctl(&self, args: &[&str]) -> Output {
        Command::new(tool("busctl"))
            .arg(format!("--address={}", self.address()))
            .args(args)
            .output()
            .expect("run busctl")
    }

    fn get(&self, path: &str, interface: &str, property: &str) -> String {
        let output = self.busctl(&["get-property", NAME, path, interface, property]);
        assert!(output.status.success(), "{property}: {}", describe(&output));
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    fn wait_for_name(&self, gate: &Gate) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let output = self.busctl(&[
                "call",
                "org.freedesktop.DBus",
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus",
                "NameHasOwner",
                "s",
                NAME,
            ]);
            if String::from_utf8_lossy(&output.stdout).trim() == "b true" {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "toriid never owned {NAME}\n--- toriid log ---\n{}",
                gate.daemon_log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_for_property(&self, gate: &Gate, property: &str, expected: &str) {
        let deadline = Instant::now() + PATIENCE;
        while self.get(GATE, IFACE, property) != expected {
            assert!(
                Instant::now() < deadline,
                "{property} never became {expected}\n--- toriid log ---\n{}",
                gate.daemon_log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

/// `gdbus monitor --dest org.torii.Gate1`: every signal of the daemon's objects, one
/// line each, collected as it prints them.
struct Monitor {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Monitor {
    fn start(bus: &Bus) -> Monitor {
        let mut child = Command::new(tool("gdbus"))
            .args(["monitor", "--address", &bus.address(), "--dest", NAME])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start gdbus monitor");
        let stdout = child.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let monitor = Monitor { child, lines };
        // Subscribed once it has found the name's owner.
        monitor.wait_for("the name's owner", |l| l.contains("is owned by"));
        monitor
    }

    fn text(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// Waits for a line matching `check`, returns it.
    fn wait_for(&self, what: &str, check: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(line) = self.lines.lock().unwrap().iter().find(|l| check(l)) {
                return line.clone();
            }
            assert!(
                Instant::now() < deadline,
                "gdbus monitor never showed {what}:\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tool(name: &str) -> PathBuf {
    for dir in ["/usr/bin", "/bin", "/usr/local/bin"] {
        let path = Path::new(dir).join(name);
        if path.exists() {
            return path;
        }
    }
    panic!(
        "{name} is missing: install dbus-daemon, systemd (busctl) and libglib2.0-bin (gdbus); tests/run-all does"
    );
}

fn describe(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn the_gate_on_the_bus_as_a_third_party_sees_it() {
    let bus = Bus::start();
    let gate = Gate::start_with(GateOptions {
        drop_in: Some(format!("[dbus]\nbus = \"{}\"\n", bus.address())),
        ..GateOptions::default()
    });
    bus.wait_for_name(&gate);

    // The gate's public state.
    let gate_id = gate.status().unwrap()["gate_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(bus.get(GATE, IFACE, "GateId"), format!("s \"{gate_id}\""));
    assert_eq!(bus.get(GATE, IFACE, "Lane"), r#"s "entry""#);
    bus.wait_for_property(&gate, "Accepting", "b true");
    assert_eq!(bus.get(GATE, IFACE, "Mode"), r#"s "in-service""#);
    assert_eq!(bus.get(GATE, IFACE, "Step"), r#"s "idle""#);
    assert_eq!(bus.get(GATE, IFACE, "Alarm"), r#"s """#);

    // Every device has its object, with the driver the daemon loaded.
    let devices = gate.toriictl(&["devices"]).unwrap();
    for device in devices.as_array().unwrap() {
        let id = device["id"].as_str().unwrap();
        let path = format!("/org/torii/Gate1/devices/{}", id.replace('-', "_"));
        assert_eq!(bus.get(&path, DEVICE_IFACE, "Id"), format!("s \"{id}\""));
        assert_eq!(bus.get(&path, DEVICE_IFACE, "State"), r#"s "READY""#);
        let driver = bus.get(&path, DEVICE_IFACE, "Driver");
        assert!(driver.starts_with("s \"torii-sim-"), "{id}: {driver}");
    }

    // A traveler who is not registered: the steps and the referral, as signals.
    let monitor = Monitor::start(&bus);
    gate.sim(&["present-passport", "farah"]);
    monitor.wait_for("the document step", |l| {
        l.contains("org.torii.Gate1.StepChanged ('document', '")
    });
    let finished = monitor.wait_for("the referral", |l| {
        l.contains("org.torii.Gate1.TransactionFinished (")
    });
    assert!(finished.contains(", false, 'REG_NOT_FOUND')"), "{finished}");
    monitor.wait_for("the step back to idle", |l| {
        l.contains("org.torii.Gate1.StepChanged ('idle', '')")
    });
    monitor.wait_for("the Step property's change", |l| {
        l.contains("PropertiesChanged ('org.torii.Gate1', {'Step': <'document'>}")
    });
    gate.sim(&["remove-passport"]);

    // An officer (the test runs as root or as toriid's own user) changes the mode.
    let output = bus.busctl(&["call", NAME, GATE, IFACE, "SetMode", "s", "maintenance"]);
    assert!(output.status.success(), "{}", describe(&output));
    bus.wait_for_property(&gate, "Mode", r#"s "maintenance""#);
    assert_eq!(bus.get(GATE, IFACE, "Accepting"), "b false");
    monitor.wait_for("the Mode property's change", |l| {
        l.contains("'Mode': <'maintenance'>") && l.contains("'Accepting': <false>")
    });
    assert_eq!(gate.toriictl(&["gate"]).unwrap()["mode"], "maintenance");
    let output = bus.busctl(&["call", NAME, GATE, IFACE, "SetMode", "s", "in-service"]);
    assert!(output.status.success(), "{}", describe(&output));
    bus.wait_for_property(&gate, "Mode", r#"s "in-service""#);

    // Nothing personal went over the bus.
    let seen = monitor.text();
    for secret in ["PA0000077", "PLACEHOLDA", "FARAH"] {
        assert!(!seen.contains(secret), "personal data on the bus:\n{seen}");
    }

    // Anyone else reads, but the daemon refuses them control (audited by the core).
    // The bus directory was made by this process: its owner is the test's uid.
    let uid = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(bus.dir.path()).unwrap());
    if uid == 0 {
        let as_nobody = |method: &str, args: &[&str]| {
            Command::new("setpriv")
                .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .arg(tool("gdbus"))
                .args(["call", "--address", &bus.address(), "--dest", NAME])
                .args(["--object-path", GATE, "--method"])
                .arg(format!("{IFACE}.{method}"))
                .args(args)
                .output()
                .expect("run gdbus as nobody")
        };
        let output = as_nobody("GetStatus", &[]);
        assert!(
            String::from_utf8_lossy(&output.stdout).contains(&gate_id),
            "{}",
            describe(&output)
        );
        let output = as_nobody("SetMode", &["out-of-service"]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("org.torii.Gate1.Error.Forbidden")
                && stderr.contains("set-mode needs the operator role; the caller has viewer"),
            "{}",
            describe(&output)
        );
        assert_eq!(bus.get(GATE, IFACE, "Mode"), r#"s "in-service""#);
    } else {
        eprintln!("not root: the refusal of another user is tested in toriid's own tests");
    }
}
