//! The adapter in-process against a [`Core`] with fake devices, on a private
//! `dbus-daemon` started here, used the way a third party does: `busctl` and `gdbus`
//! (properties, calls, errors, introspection), and a zbus client for signals.
//! Needs `dbus-daemon`, `busctl` and `gdbus` (tests/run-all installs them).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::watch;
use torii_core::reason::ReasonCode;
use torii_core::record::Step;
use torii_plugin_host::{DeviceHealth, HostEvent};
use torii_sdk::model::{DeviceClass, DeviceState};
use zbus::zvariant::OwnedValue;

use super::*;
use crate::command::Role;
use crate::config::{DbusBus, DbusConfig};
use crate::events::GateEvent;
use crate::registry::testing::{FakeDevice, core_with};

/// How long anything may take to happen before a test fails.
const PATIENCE: Duration = Duration::from_secs(30);

const PERMISSIVE: &str = r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
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

/// The default policy of Debian's system bus (/usr/share/dbus-1/system.conf), with the
/// policy file under test included.
const SYSTEM_LIKE: &str = r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=@SOCKET@</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
  </policy>
  <include>@POLICY@</include>
</busconfig>
"#;

/// A private `dbus-daemon` on a socket in a temporary directory.
struct TestBus {
    dir: tempfile::TempDir,
    daemon: Option<tokio::process::Child>,
}

impl TestBus {
    async fn start() -> TestBus {
        let bus = TestBus::unstarted();
        bus.with_config(PERMISSIVE).await
    }

    /// A directory for a bus, the bus not started yet.
    fn unstarted() -> TestBus {
        // Short paths: Unix socket names are limited to 108 bytes.
        let dir = tempfile::Builder::new()
            .prefix("torii-dbus-")
            .tempdir_in("/tmp")
            .unwrap();
        // Other users (the refused callers) must reach the socket.
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        TestBus { dir, daemon: None }
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("bus")
    }

    fn address(&self) -> String {
        format!("unix:path={}", self.socket().display())
    }

    /// Starts (or restarts) the daemon with `config` (`@SOCKET@` replaced).
    async fn with_config(mut self, config: &str) -> TestBus {
        self.launch(config).await;
        self
    }

    async fn launch(&mut self, config: &str) {
        let file = self.dir.path().join("bus.conf");
        let socket = self.socket();
        let _ = std::fs::remove_file(&socket);
        std::fs::write(
            &file,
            config.replace("@SOCKET@", &socket.display().to_string()),
        )
        .unwrap();
        let mut daemon = tokio::process::Command::new(tool("dbus-daemon"))
            .arg(format!("--config-file={}", file.display()))
            .args(["--nofork", "--nopidfile", "--print-address=1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start dbus-daemon");
        let stdout = daemon.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let printed = tokio::time::timeout(PATIENCE, lines.next_line()).await;
        let Ok(Ok(Some(address))) = printed else {
            let output = daemon.wait_with_output().await.unwrap();
            panic!(
                "dbus-daemon did not start: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        };
        assert!(address.starts_with("unix:"), "{address}");
        self.daemon = Some(daemon);
    }

    async fn stop(&mut self) {
        if let Some(mut daemon) = self.daemon.take() {
            let _ = daemon.kill().await;
        }
    }

    fn config(&self) -> DbusConfig {
        DbusConfig {
            enabled: true,
            bus: DbusBus::Address(self.address()),
            name: DEFAULT_NAME.to_owned(),
            operators_group: String::new(),
        }
    }

    /// `busctl --address=... <args>`.
    async fn busctl(&self, args: &[&str]) -> Output {
        run(tokio::process::Command::new(tool("busctl"))
            .arg(format!("--address={}", self.address()))
            .args(args))
        .await
    }

    /// `gdbus call --address ... --dest org.torii.Gate1 --object-path /org/torii/Gate1
    /// --method org.torii.Gate1.<method> <args>`, as `as_uid` when given (root only).
    async fn gdbus_call(&self, as_uid: Option<u32>, method: &str, args: &[&str]) -> Output {
        let mut command = match as_uid {
            Some(uid) => {
                let mut command = tokio::process::Command::new("setpriv");
                command
                    .arg(format!("--reuid={uid}"))
                    .arg(format!("--regid={uid}"))
                    .arg("--clear-groups")
                    .arg(tool("gdbus"));
                command
            }
            None => tokio::process::Command::new(tool("gdbus")),
        };
        command
            .args(["call", "--address", &self.address()])
            .args(["--dest", DEFAULT_NAME, "--object-path", GATE_PATH])
            .args(["--method", &format!("{GATE_INTERFACE}.{method}")])
            .args(args);
        run(&mut command).await
    }

    async fn client(&self) -> zbus::Connection {
        zbus::connection::Builder::address(self.address().as_str())
            .unwrap()
            .build()
            .await
            .unwrap()
    }

    /// Waits until `name` has an owner on the bus (or, with `owned` false, none).
    async fn wait_for_owner(&self, owned: bool) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let output = self
                .busctl(&[
                    "call",
                    "org.freedesktop.DBus",
                    "/org/freedesktop/DBus",
                    "org.freedesktop.DBus",
                    "NameHasOwner",
                    "s",
                    DEFAULT_NAME,
                ])
                .await;
            if text(&output).trim() == format!("b {owned}") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{DEFAULT_NAME} owned: {owned}? never: {}",
                describe(&output)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for TestBus {
    fn drop(&mut self) {
        if let Some(daemon) = self.daemon.as_mut() {
            let _ = daemon.start_kill();
        }
    }
}

/// A tool's path; fails the test with what to install when it is missing.
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

async fn run(command: &mut tokio::process::Command) -> Output {
    command
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .expect("run a D-Bus tool")
}

fn text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn describe(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The adapter on `bus`, stopped when the returned sender is dropped or set.
struct Adapter {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Adapter {
    fn start(core: Arc<Core>, config: DbusConfig, authorizer: Authorizer) -> Adapter {
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(serve_with(core, config, Arc::new(authorizer), async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        }));
        Adapter { stop, task }
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        tokio::time::timeout(PATIENCE, self.task)
            .await
            .expect("the adapter stops")
            .unwrap();
    }
}

fn lane() -> Arc<Core> {
    core_with(vec![
        FakeDevice::ready("document-reader", DeviceClass::DocumentReader),
        FakeDevice::ready("camera", DeviceClass::Camera),
        FakeDevice::unopened(
            "lane-controller",
            DeviceClass::LaneController,
            "driver not found",
        ),
    ])
}

/// The running user (the test's uid is an operator by default: toriid's own uid).
fn operator() -> Authorizer {
    Authorizer::new("")
}

/// Trusts no uid and names a group the test user is not in: the caller is a viewer.
fn viewer() -> Authorizer {
    Authorizer::with(Vec::new(), Some("nogroup"))
}

async fn get(bus: &TestBus, path: &str, interface: &str, property: &str) -> String {
    let output = bus
        .busctl(&["get-property", DEFAULT_NAME, path, interface, property])
        .await;
    assert!(output.status.success(), "{property}: {}", describe(&output));
    text(&output).trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn properties_methods_and_errors_as_busctl_and_gdbus_see_them() {
    let bus = TestBus::start().await;
    let core = lane();
    let adapter = Adapter::start(core.clone(), bus.config(), operator());
    bus.wait_for_owner(true).await;

    // The gate: the public status. No flow runs here: out of service, idle.
    for (property, expected) in [
        ("GateId", r#"s "NRT-T1-E01""#),
        ("Lane", r#"s "entry""#),
        ("Mode", r#"s "out-of-service""#),
        ("Accepting", "b false"),
        ("Step", r#"s "idle""#),
        ("Interlocks", "as 0"),
        ("Alarm", r#"s """#),
    ] {
        assert_eq!(
            get(&bus, GATE_PATH, GATE_INTERFACE, property).await,
            expected,
            "{property}"
        );
    }

    // One object per device, `-` as `_` in the path.
    let tree = text(&bus.busctl(&["tree", "--list", DEFAULT_NAME]).await);
    for path in [
        "/org/torii/Gate1/devices/camera",
        "/org/torii/Gate1/devices/document_reader",
        "/org/torii/Gate1/devices/lane_controller",
    ] {
        assert!(tree.lines().any(|l| l.trim() == path), "{path} in {tree}");
    }
    let reader = "/org/torii/Gate1/devices/document_reader";
    let controller = "/org/torii/Gate1/devices/lane_controller";
    for (path, property, expected) in [
        (reader, "Id", r#"s "document-reader""#),
        (reader, "Class", r#"s "document-reader""#),
        (reader, "State", r#"s "READY""#),
        (reader, "Fault", r#"s """#),
        (reader, "Restarts", "u 0"),
        (reader, "Driver", r#"s "sim-document-reader 0.1.0""#),
        (controller, "State", r#"s "UNAVAILABLE""#),
        (controller, "Fault", r#"s "driver not found""#),
        (controller, "Driver", r#"s """#),
    ] {
        assert_eq!(
            get(&bus, path, DEVICE_INTERFACE, property).await,
            expected,
            "{path} {property}"
        );
    }

    // GetStatus: the status view as JSON.
    let output = bus
        .busctl(&[
            "--json=short",
            "call",
            DEFAULT_NAME,
            GATE_PATH,
            GATE_INTERFACE,
            "GetStatus",
        ])
        .await;
    assert!(output.status.success(), "{}", describe(&output));
    let reply: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let status: serde_json::Value =
        serde_json::from_str(reply["data"][0].as_str().unwrap()).unwrap();
    assert_eq!(status["gate_id"], "NRT-T1-E01");
    assert_eq!(status["devices"]["unavailable"], 1);

    // Operator methods reach the core, whose errors come back under the gate's names.
    let cases: [(&str, &[&str], &str); 5] = [
        (
            "SetMode",
            &["maintenance"],
            "org.torii.Gate1.Error.NotRunning: the gate is not running",
        ),
        (
            "SetMode",
            &["sideways"],
            "org.torii.Gate1.Error.BadRequest: invalid mode \"sideways\"",
        ),
        (
            "SetDoor",
            &["exit", "open"],
            "org.torii.Gate1.Error.NotRunning",
        ),
        (
            "SetDoor",
            &["roof", "open"],
            "org.torii.Gate1.Error.BadRequest: invalid door \"roof\"",
        ),
        ("AcknowledgeAlarm", &[], "org.torii.Gate1.Error.NotRunning"),
    ];
    for (method, args, error) in cases {
        let output = bus.gdbus_call(None, method, args).await;
        assert!(!output.status.success(), "{method} {args:?} succeeded");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(error),
            "{method} {args:?}: {error:?} not in {stderr}"
        );
    }
    // Fire-alarm mode is the fire alarm's: refused by the core whatever the caller.
    let output = bus.gdbus_call(None, "SetMode", &["fire-alarm"]).await;
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("org.torii.Gate1.Error.BadRequest"),
        "{}",
        describe(&output)
    );

    adapter.stop().await;
    bus.wait_for_owner(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_reads_but_is_refused_control_by_the_core() {
    let bus = TestBus::start().await;
    let adapter = Adapter::start(lane(), bus.config(), viewer());
    bus.wait_for_owner(true).await;

    assert_eq!(
        get(&bus, GATE_PATH, GATE_INTERFACE, "GateId").await,
        r#"s "NRT-T1-E01""#
    );
    let output = bus.gdbus_call(None, "GetStatus", &[]).await;
    assert!(output.status.success(), "{}", describe(&output));
    assert!(
        text(&output).contains("NRT-T1-E01"),
        "{}",
        describe(&output)
    );

    for (method, args) in [
        ("SetMode", &["maintenance"][..]),
        ("SetDoor", &["entry", "open"][..]),
        ("AcknowledgeAlarm", &[][..]),
        ("RequestStamp", &[][..]),
    ] {
        let output = bus.gdbus_call(None, method, args).await;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("org.torii.Gate1.Error.Forbidden")
                && stderr.contains("needs the operator role; the caller has viewer"),
            "{method}: {}",
            describe(&output)
        );
    }
    adapter.stop().await;
}

/// The next signal named `member` (others are skipped).
async fn next_signal(stream: &mut zbus::MessageStream, member: &str) -> zbus::Message {
    use zbus::export::futures_core::Stream;
    let deadline = Instant::now() + PATIENCE;
    loop {
        let next = std::future::poll_fn(|cx| std::pin::Pin::new(&mut *stream).poll_next(cx));
        let message = tokio::time::timeout_at(deadline.into(), next)
            .await
            .unwrap_or_else(|_| panic!("no {member} signal"))
            .expect("the stream goes on")
            .expect("a message");
        if message.header().member().map(|m| m.as_str()) == Some(member) {
            return message;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gate_events_become_signals_and_property_changes() {
    let bus = TestBus::start().await;
    let core = lane();
    let adapter = Adapter::start(core.clone(), bus.config(), operator());
    bus.wait_for_owner(true).await;

    let client = bus.client().await;
    let rule = zbus::MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .path_namespace(GATE_PATH)
        .unwrap()
        .build();
    let mut signals = zbus::MessageStream::for_match_rule(rule, &client, None)
        .await
        .unwrap();

    let transaction = uuid::Uuid::new_v4();
    core.events().publish(GateEvent::StepChanged {
        step: Step::Fingerprints,
        transaction: Some(transaction),
    });
    let message = next_signal(&mut signals, "StepChanged").await;
    let (step, id): (String, String) = message.body().deserialize().unwrap();
    assert_eq!(
        (step.as_str(), id),
        ("fingerprints", transaction.to_string())
    );

    core.events().publish(GateEvent::TransactionFinished {
        record_id: transaction,
        admitted: false,
        reason: Some(ReasonCode::MultiplePersons),
        guidance: "Please see the officer.".into(),
        guidance_kind: None,
        notices: Vec::new(),
    });
    let message = next_signal(&mut signals, "TransactionFinished").await;
    let finished: (String, bool, String) = message.body().deserialize().unwrap();
    assert_eq!(
        finished,
        (
            transaction.to_string(),
            false,
            ReasonCode::MultiplePersons.code().to_owned()
        )
    );

    core.events().publish(GateEvent::AlarmRaised {
        alarm: torii_core::flow::Alarm {
            kind: torii_core::flow::AlarmKind::Tailgating,
            record_id: Some(transaction),
        },
    });
    let message = next_signal(&mut signals, "AlarmRaised").await;
    let raised: (String, String) = message.body().deserialize().unwrap();
    assert_eq!(raised, ("tailgating".to_owned(), transaction.to_string()));
    core.events().publish(GateEvent::AlarmCleared);
    next_signal(&mut signals, "AlarmCleared").await;

    // A device fails: the gate's signal, then the device object's properties.
    let health = DeviceHealth {
        state: DeviceState::Unavailable,
        fault: Some("driver host crashed".into()),
        restarts: 1,
    };
    core.registry().apply(&HostEvent::Health {
        device: "camera".into(),
        health: health.clone(),
    });
    core.events().publish(GateEvent::DeviceStateChanged {
        device: "camera".into(),
        state: health.state,
        fault: health.fault.clone(),
    });
    let message = next_signal(&mut signals, "DeviceStateChanged").await;
    let changed: (String, String, String) = message.body().deserialize().unwrap();
    assert_eq!(
        changed,
        (
            "camera".to_owned(),
            "UNAVAILABLE".to_owned(),
            "driver host crashed".to_owned()
        )
    );
    let message = next_signal(&mut signals, "PropertiesChanged").await;
    assert_eq!(
        message.header().path().map(|p| p.to_string()).as_deref(),
        Some("/org/torii/Gate1/devices/camera")
    );
    let (interface, changed, _invalidated): (String, HashMap<String, OwnedValue>, Vec<String>) =
        message.body().deserialize().unwrap();
    assert_eq!(interface, DEVICE_INTERFACE);
    let mut names: Vec<&str> = changed.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(names, ["Fault", "Restarts", "State"]);
    assert_eq!(
        String::try_from(changed["State"].try_clone().unwrap()).unwrap(),
        "UNAVAILABLE"
    );
    assert_eq!(
        u32::try_from(changed["Restarts"].try_clone().unwrap()).unwrap(),
        1
    );
    assert_eq!(
        get(
            &bus,
            "/org/torii/Gate1/devices/camera",
            DEVICE_INTERFACE,
            "Fault"
        )
        .await,
        r#"s "driver host crashed""#
    );
    adapter.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_bus_is_retried_and_a_lost_one_reconnected() {
    let mut bus = TestBus::unstarted();
    // The adapter starts first: no bus yet; it keeps trying.
    let adapter = Adapter::start(lane(), bus.config(), operator());
    assert!(!adapter.task.is_finished());
    bus.launch(PERMISSIVE).await;
    bus.wait_for_owner(true).await;

    // The bus goes away and comes back: the adapter owns the name again.
    bus.stop().await;
    bus.launch(PERMISSIVE).await;
    bus.wait_for_owner(true).await;
    assert_eq!(
        get(&bus, GATE_PATH, GATE_INTERFACE, "GateId").await,
        r#"s "NRT-T1-E01""#
    );
    adapter.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_already_owned_is_retried_not_stolen() {
    let bus = TestBus::start().await;
    let first = Adapter::start(lane(), bus.config(), operator());
    bus.wait_for_owner(true).await;
    let second = Adapter::start(lane(), bus.config(), operator());
    let owner = |output: Output| text(&output).trim().to_owned();
    let owner_args = [
        "call",
        "org.freedesktop.DBus",
        "/org/freedesktop/DBus",
        "org.freedesktop.DBus",
        "GetNameOwner",
        "s",
        DEFAULT_NAME,
    ];
    let before = owner(bus.busctl(&owner_args).await);
    // The first stops: the second, retrying, takes the name over.
    first.stop().await;
    let deadline = Instant::now() + PATIENCE;
    loop {
        let now = owner(bus.busctl(&owner_args).await);
        if now.starts_with("s ") && now != before {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the second adapter never took the name"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    second.stop().await;
}

/// The tags of one interface of an introspection document, comments and layout
/// removed: what the comparison looks at (members, arguments, types, annotations).
fn interface_tags(xml: &str, interface: &str) -> Vec<String> {
    let start = xml
        .find(&format!("<interface name=\"{interface}\">"))
        .unwrap_or_else(|| panic!("no interface {interface} in:\n{xml}"));
    let end = start + xml[start..].find("</interface>").unwrap() + "</interface>".len();
    let mut body = &xml[start..end];
    let mut tags = Vec::new();
    while let Some(open) = body.find('<') {
        let close = open + body[open..].find('>').unwrap();
        let tag = &body[open..=close];
        if tag.starts_with("<!--") {
            let comment_end = open + body[open..].find("-->").unwrap() + 3;
            body = &body[comment_end..];
            continue;
        }
        tags.push(tag.split_whitespace().collect::<Vec<_>>().join(" "));
        body = &body[close + 1..];
    }
    tags
}

/// The interface element as the service sent it (with its documentation comments).
fn interface_element(xml: &str, interface: &str) -> String {
    let start = xml
        .find(&format!("<interface name=\"{interface}\">"))
        .unwrap();
    let end = start + xml[start..].find("</interface>").unwrap() + "</interface>".len();
    // From the start of its line, so the indentation is kept.
    let line_start = xml[..start].rfind('\n').map_or(0, |i| i + 1);
    xml[line_start..end].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checked_in_introspection_matches_the_service() {
    let bus = TestBus::start().await;
    let adapter = Adapter::start(lane(), bus.config(), operator());
    bus.wait_for_owner(true).await;

    let api = Path::new(env!("CARGO_MANIFEST_DIR")).join("api");
    let regenerate = std::env::var_os("TORII_REGENERATE_DOCS").is_some();
    for (interface, path) in [
        (GATE_INTERFACE, GATE_PATH),
        (DEVICE_INTERFACE, "/org/torii/Gate1/devices/camera"),
    ] {
        let output = bus
            .busctl(&["introspect", "--xml-interface", DEFAULT_NAME, path])
            .await;
        assert!(output.status.success(), "{}", describe(&output));
        let live = text(&output);
        let file = api.join(format!("{interface}.xml"));
        if regenerate {
            let document = format!(
                "<!DOCTYPE node PUBLIC \"-//freedesktop//DTD D-BUS Object Introspection 1.0//EN\"\n \"http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd\">\n\
                 <!-- {interface}, as toriid serves it (the standard interfaces left out).\n     \
                 Generated from the live service: TORII_REGENERATE_DOCS=1 cargo nextest run -p toriid dbus -->\n\
                 <node>\n{}\n</node>\n",
                interface_element(&live, interface)
            );
            std::fs::write(&file, document).unwrap();
        }
        let checked_in =
            std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert_eq!(
            interface_tags(&checked_in, interface),
            interface_tags(&live, interface),
            "{} differs from the service's introspection: run with TORII_REGENERATE_DOCS=1 to update it",
            file.display()
        );
    }
    adapter.stop().await;
}

#[test]
fn interface_tags_ignore_comments_and_layout() {
    let a = "<node><interface name=\"x.Y\"><!-- doc\n<b> --><method name=\"M\">\n  <arg type=\"s\"   name=\"m\" direction=\"in\"/></method></interface></node>";
    let b = "<interface name=\"x.Y\">\n <method name=\"M\">\n <arg type=\"s\" name=\"m\" direction=\"in\"/>\n </method>\n</interface>";
    assert_eq!(interface_tags(a, "x.Y"), interface_tags(b, "x.Y"));
    let c = b.replace("type=\"s\"", "type=\"u\"");
    assert_ne!(interface_tags(&c, "x.Y"), interface_tags(b, "x.Y"));
}

fn policy_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../packaging/dbus/org.torii.Gate1.conf")
}

/// The shipped policy, its user and group replaced by ones that exist here.
fn mapped_policy(dir: &Path, user: &str, group: &str) -> PathBuf {
    let policy = std::fs::read_to_string(policy_file()).unwrap();
    assert!(policy.contains("user=\"torii\"") && policy.contains("group=\"torii-operators\""));
    let mapped = policy
        .replace("user=\"torii\"", &format!("user=\"{user}\""))
        .replace("group=\"torii-operators\"", &format!("group=\"{group}\""));
    let path = dir.join("policy.conf");
    std::fs::write(&path, mapped).unwrap();
    path
}

/// The bus policy, in a dbus-daemon configured like Debian's system bus: it loads;
/// only its user owns the name; everyone reads; control is for the operators' group.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bus_policy_lets_everyone_read_and_only_operators_control() {
    // The shipped file as is: the bus accepts it (unknown user and group are only
    // warnings there).
    let shipped = TestBus::unstarted();
    let config = SYSTEM_LIKE.replace("@POLICY@", &policy_file().display().to_string());
    let shipped = shipped.with_config(&config).await;
    drop(shipped);

    let me = nix::unistd::User::from_uid(nix::unistd::Uid::current())
        .unwrap()
        .expect("the test user has a name");
    let root = nix::unistd::Uid::current().is_root();
    // As root, the operators' group is nogroup, whose member nobody (65534) plays the
    // officer and the system user daemon (1) anyone else (the bus refuses uids that
    // have no user). Otherwise the test user is the
    // officer (its own primary group) and only the parts it can play are checked.
    let group = if root {
        "nogroup".to_owned()
    } else {
        nix::unistd::Group::from_gid(me.gid)
            .unwrap()
            .expect("the test user's group has a name")
            .name
    };
    let bus = TestBus::unstarted();
    let policy = mapped_policy(bus.dir.path(), &me.name, &group);
    let bus = bus
        .with_config(&SYSTEM_LIKE.replace("@POLICY@", &policy.display().to_string()))
        .await;
    let mut config = bus.config();
    config.operators_group = group.clone();
    let adapter = Adapter::start(lane(), config, Authorizer::new(&group));
    bus.wait_for_owner(true).await;

    // The owner's user (and root) may call everything; the core answers.
    let output = bus.gdbus_call(None, "SetMode", &["maintenance"]).await;
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("org.torii.Gate1.Error.NotRunning"),
        "{}",
        describe(&output)
    );
    if !root {
        eprintln!("not root: the checks as other users are skipped");
        adapter.stop().await;
        return;
    }
    let (officer, anyone) = (Some(65534), Some(1));

    // Anyone: properties, introspection, GetStatus; no control, no name.
    let output = bus.gdbus_call(anyone, "GetStatus", &[]).await;
    assert!(
        text(&output).contains("NRT-T1-E01"),
        "{}",
        describe(&output)
    );
    let mut command = tokio::process::Command::new("setpriv");
    command
        .args(["--reuid=1", "--regid=1", "--clear-groups"])
        .arg(tool("busctl"))
        .arg(format!("--address={}", bus.address()))
        .args([
            "get-property",
            DEFAULT_NAME,
            GATE_PATH,
            GATE_INTERFACE,
            "Mode",
        ]);
    let output = run(&mut command).await;
    assert_eq!(
        text(&output).trim(),
        r#"s "out-of-service""#,
        "{}",
        describe(&output)
    );
    let mut command = tokio::process::Command::new("setpriv");
    command
        .args(["--reuid=1", "--regid=1", "--clear-groups"])
        .arg(tool("gdbus"))
        .args(["introspect", "--address", &bus.address()])
        .args(["--dest", DEFAULT_NAME, "--object-path", GATE_PATH]);
    let output = run(&mut command).await;
    assert!(text(&output).contains("SetMode"), "{}", describe(&output));
    for (method, args) in [
        ("SetMode", &["maintenance"][..]),
        ("SetDoor", &["exit", "open"][..]),
        ("AcknowledgeAlarm", &[][..]),
        ("RequestStamp", &[][..]),
    ] {
        let output = bus.gdbus_call(anyone, method, args).await;
        assert!(
            String::from_utf8_lossy(&output.stderr)
                .contains("org.freedesktop.DBus.Error.AccessDenied"),
            "{method} by anyone: {}",
            describe(&output)
        );
    }
    let mut command = tokio::process::Command::new("setpriv");
    command
        .args(["--reuid=1", "--regid=1", "--clear-groups"])
        .arg(tool("gdbus"))
        .args(["call", "--address", &bus.address()])
        .args([
            "--dest",
            "org.freedesktop.DBus",
            "--object-path",
            "/org/freedesktop/DBus",
        ])
        .args([
            "--method",
            "org.freedesktop.DBus.RequestName",
            DEFAULT_NAME,
            "4",
        ]);
    let output = run(&mut command).await;
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("AccessDenied"),
        "anyone owning the name: {}",
        describe(&output)
    );

    // An operator (a member of the group): the bus lets the call through, the core
    // finds the role and answers.
    let output = bus.gdbus_call(officer, "SetMode", &["maintenance"]).await;
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("org.torii.Gate1.Error.NotRunning"),
        "operator: {}",
        describe(&output)
    );
    adapter.stop().await;
}

#[test]
fn group_membership_is_read_from_the_system() {
    assert!(auth::in_group(0, "root").unwrap());
    assert!(!auth::in_group(65534, "root").unwrap());
    assert!(!auth::in_group(0, "no-such-group-for-torii").unwrap());
    assert!(!auth::in_group(4_242_424, "root").unwrap());
}

#[tokio::test]
async fn roles_follow_uid_and_group() {
    let authorizer = Authorizer::with(vec![1234], Some("root"));
    assert_eq!(authorizer.role_of(1234).await, Role::Operator);
    assert_eq!(authorizer.role_of(0).await, Role::Operator, "group root");
    assert_eq!(authorizer.role_of(65534).await, Role::Viewer);
    let nobody_trusted = Authorizer::with(Vec::new(), None);
    assert_eq!(nobody_trusted.role_of(0).await, Role::Viewer);
    // The default: root and toriid's own user.
    let default = Authorizer::new("");
    assert_eq!(default.role_of(0).await, Role::Operator);
    assert_eq!(
        default.role_of(nix::unistd::Uid::current().as_raw()).await,
        Role::Operator
    );
}

#[test]
fn addresses_names_and_paths() {
    assert!(check_address("unix:path=/run/dbus/system_bus_socket").is_ok());
    assert!(check_address("tcp:host=127.0.0.1,port=1").is_ok());
    assert!(check_address("system").is_err());
    assert!(check_name("org.torii.Gate1").is_ok());
    assert!(check_name("torii").is_err());
    assert!(check_name(":1.5").is_err());
    assert_eq!(
        device_path("fingerprint-sensor"),
        "/org/torii/Gate1/devices/fingerprint_sensor"
    );
}
