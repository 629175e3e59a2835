//! Harness for end-to-end tests: starts `torii-sim serve` and `toriid` as real processes
//! from the workspace's target directory (the test command builds it first), with the
//! daemon loading every sim driver `.so`, and talks to them the way people do: through
//! `toriictl` and `torii-sim ctl`.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use torii_sdk::model::DeviceClass;
use torii_sim::gate::GateLayout;
use torii_sim::scenario::Scenario;

pub mod privacy;

/// How long anything in a test may take to happen before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// `target/<profile>`, where cargo put the binaries and plugins.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>")
        .to_path_buf()
}

fn binary(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace` first (tests/run-all does)",
        path.display()
    );
    path
}

fn free_loopback_port() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address")
}

pub struct GateOptions {
    pub lane: &'static str,
    pub isolated: Vec<DeviceClass>,
    /// A config drop-in (`toriid.d/50-test.toml`) layered over the generated config.
    pub drop_in: Option<String>,
    /// Scenario file for the simulator and the daemon's registry (default: the
    /// simulator's shipped default scenario).
    pub scenario: Option<PathBuf>,
    /// Extra environment for the daemon (e.g. `LD_PRELOAD` of libfaketime), kept for
    /// every (re)start.
    pub daemon_env: Vec<(String, String)>,
}

impl Default for GateOptions {
    fn default() -> Self {
        GateOptions {
            lane: "entry",
            isolated: vec![DeviceClass::FingerprintSensor, DeviceClass::Camera],
            drop_in: None,
            scenario: None,
            daemon_env: Vec::new(),
        }
    }
}

/// A running simulated gate: simulator process + daemon process.
pub struct Gate {
    pub dir: tempfile::TempDir,
    pub layout: GateLayout,
    pub control_url: String,
    /// Central immigration's control API (records received, faults, registry changes).
    pub central_control_url: String,
    simulator: Child,
    daemon: Option<Child>,
    daemon_env: Vec<(String, String)>,
    /// The scenario's personal data, searched for when the gate stops ([`privacy`]).
    secrets: Vec<privacy::Secret>,
}

impl Gate {
    pub fn start() -> Gate {
        Gate::start_with(GateOptions::default())
    }

    pub fn start_with(options: GateOptions) -> Gate {
        // Short paths: Unix socket names are limited to 108 bytes.
        let dir = tempfile::Builder::new()
            .prefix("torii-e2e-")
            .tempdir_in("/tmp")
            .expect("temp dir");
        let scenario = match &options.scenario {
            Some(path) => Scenario::load(path).unwrap_or_else(|e| panic!("{e}")),
            None => Scenario::default_scenario().expect("the default scenario"),
        };
        let mut layout = GateLayout::new(
            dir.path(),
            bin_dir(),
            binary("torii-driver-host"),
            free_loopback_port(),
            options.lane,
        );
        layout.isolated = options.isolated;
        layout.central = free_loopback_port();
        layout.apply_scenario(&scenario);
        // Config, registry import and card issuer key.
        layout.prepare(&scenario).unwrap();
        if let Some(drop_in) = &options.drop_in {
            let dir = layout.work_dir.join("toriid.d");
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("50-test.toml"), drop_in).unwrap();
        }

        let (simulator, control_url, central_control_url) =
            start_simulator(&layout, options.scenario.as_deref());
        let mut gate = Gate {
            dir,
            layout,
            control_url,
            central_control_url,
            simulator,
            daemon: None,
            daemon_env: options.daemon_env,
            secrets: privacy::secrets_of(&scenario),
        };
        gate.start_daemon();
        gate
    }

    fn daemon_log_path(&self) -> PathBuf {
        self.layout.work_dir.join("toriid.log")
    }

    /// Starts (or restarts) toriid and waits until it is ready.
    pub fn start_daemon(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.daemon_log_path())
            .unwrap();
        let daemon = Command::new(binary("toriid"))
            .args(["run", "--config"])
            .arg(self.layout.config_file())
            .env("RUST_LOG", "debug")
            .envs(self.daemon_env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start toriid");
        self.daemon = Some(daemon);
        self.wait_for("toriid ready", |gate| {
            gate.status().map(|s| s["ready"] == true).unwrap_or(false)
        });
    }

    pub fn daemon_pid(&self) -> u32 {
        self.daemon.as_ref().expect("daemon running").id()
    }

    /// Sends SIGTERM and returns the exit status.
    pub fn stop_daemon(&mut self) -> std::process::ExitStatus {
        let mut daemon = self.daemon.take().expect("daemon running");
        signal(daemon.id(), nix::sys::signal::Signal::SIGTERM);
        wait_child(&mut daemon, PATIENCE).expect("toriid exits after SIGTERM")
    }

    pub fn daemon_alive(&mut self) -> bool {
        matches!(self.daemon.as_mut().map(|d| d.try_wait()), Some(Ok(None)))
    }

    pub fn daemon_log(&self) -> String {
        std::fs::read_to_string(self.daemon_log_path()).unwrap_or_default()
    }

    /// `torii-sim ctl <args>`; panics unless it succeeds.
    pub fn sim(&self, args: &[&str]) -> Value {
        let output = Command::new(binary("torii-sim"))
            .args(["ctl", "--control", &self.control_url])
            .args(args)
            .output()
            .expect("run torii-sim ctl");
        assert!(
            output.status.success(),
            "torii-sim ctl {args:?} failed: {}",
            describe(&output)
        );
        serde_json::from_slice(&output.stdout).unwrap_or(Value::Null)
    }

    /// `torii-sim scenario run --scenario <file>` against this gate: its output and
    /// whether every traveler passed.
    pub fn run_scenario(&self, scenario: &Path) -> (bool, String) {
        let output = Command::new(binary("torii-sim"))
            .args(["scenario", "run", "--scenario"])
            .arg(scenario)
            .arg("--daemon-socket")
            .arg(self.layout.api_socket())
            .args(["--control", &self.control_url])
            .env("RUST_LOG", "torii_sim=info")
            .output()
            .expect("run torii-sim scenario run");
        (output.status.success(), describe(&output))
    }

    /// The simulator's state (the test oracle).
    pub fn sim_state(&self) -> Value {
        self.sim(&["state"])
    }

    /// `toriictl --socket <api> --json <args>`: Ok(json) on exit 0, Err((code, output)) otherwise.
    pub fn toriictl(&self, args: &[&str]) -> Result<Value, (i32, String)> {
        let output = Command::new(binary("toriictl"))
            .arg("--socket")
            .arg(self.layout.api_socket())
            .arg("--json")
            .args(args)
            .output()
            .expect("run toriictl");
        if output.status.success() {
            Ok(serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
                panic!(
                    "toriictl {args:?} printed no JSON ({e}): {}",
                    describe(&output)
                )
            }))
        } else {
            Err((output.status.code().unwrap_or(-1), describe(&output)))
        }
    }

    /// Takes the lane into maintenance (as an engineer does before working on devices by
    /// hand): the gate flow then leaves presented documents and cards alone.
    pub fn maintenance(&self) {
        self.toriictl(&["mode", "maintenance"])
            .expect("toriictl mode maintenance");
        self.wait_for("maintenance mode", |g| {
            g.toriictl(&["gate"])
                .map(|gate| gate["mode"] == "maintenance")
                .unwrap_or(false)
        });
    }

    pub fn status(&self) -> Result<Value, (i32, String)> {
        self.toriictl(&["status"])
    }

    pub fn device(&self, id: &str) -> Value {
        self.toriictl(&["device", id])
            .unwrap_or_else(|e| panic!("toriictl device {id}: {e:?}"))
    }

    /// A device call through the daemon; Ok(response view) or Err(output).
    pub fn call(&self, device: &str, op: &[&str]) -> Result<Value, (i32, String)> {
        let mut args = vec!["call", device];
        args.extend_from_slice(op);
        self.toriictl(&args).map(|reply| reply["response"].clone())
    }

    /// Polls `check` until it holds, or fails the test after [`PATIENCE`].
    pub fn wait_for(&self, what: &str, check: impl Fn(&Gate) -> bool) {
        let deadline = Instant::now() + PATIENCE;
        while Instant::now() < deadline {
            if check(self) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "timed out waiting for {what}\n--- toriid log ---\n{}",
            self.daemon_log()
        );
    }

    /// Whether the daemon recorded an event of `kind` on `device`.
    pub fn saw_event(&self, device: &str, kind: &str) -> bool {
        self.device(device)["events"]
            .as_array()
            .is_some_and(|events| events.iter().any(|e| e["kind"] == kind))
    }

    /// `torii-central ctl <args>` against this gate's central; panics unless it succeeds.
    pub fn central(&self, args: &[&str]) -> Value {
        let output = Command::new(binary("torii-central"))
            .args(["ctl", "--control", &self.central_control_url])
            .args(args)
            .output()
            .expect("run torii-central ctl");
        assert!(
            output.status.success(),
            "torii-central ctl {args:?} failed: {}",
            describe(&output)
        );
        serde_json::from_slice(&output.stdout).unwrap_or(Value::Null)
    }

    /// The records central received, in arrival order.
    pub fn central_records(&self) -> Vec<Value> {
        let answer = self.central(&["records"]);
        answer["records"]
            .as_array()
            .or_else(|| answer.as_array())
            .cloned()
            .unwrap_or_default()
    }

    /// The daemon's central-link figures (`status.link`).
    pub fn link(&self) -> Value {
        self.status()
            .map(|s| s["link"].clone())
            .unwrap_or(Value::Null)
    }

    /// Kills the daemon with SIGKILL (a power cut, as far as the process can tell).
    pub fn kill_daemon(&mut self) {
        let mut daemon = self.daemon.take().expect("daemon running");
        let _ = daemon.kill();
        let _ = daemon.wait();
    }

    /// The record ids the daemon logged as finished transactions (every run so far).
    pub fn finished_record_ids(&self) -> Vec<String> {
        self.daemon_log()
            .lines()
            .filter(|l| l.contains("transaction finished"))
            .filter_map(|l| {
                let start = l.find("record=")? + "record=".len();
                Some(l[start..].chars().take(36).collect())
            })
            .collect()
    }

    pub fn device_state(&self, device: &str) -> String {
        self.device(device)["state"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        if self.daemon_alive() {
            // The last scrape joins the privacy scan below.
            privacy::keep_scrape(self.layout.http, &self.layout.work_dir);
        }
        if let Some(mut daemon) = self.daemon.take() {
            let _ = daemon.kill();
            let _ = daemon.wait();
        }
        let _ = self.simulator.kill();
        let _ = self.simulator.wait();
        // Every test is a privacy test: what the gate wrote must not hold its travelers'
        // personal data in clear. Not while unwinding: the first failure is the one to see.
        if !std::thread::panicking() {
            let files = privacy::gate_files(
                &self.layout.work_dir,
                &self.layout.state_dir(),
                &self.daemon_log_path(),
            );
            let leaks = privacy::scan(&files, &self.secrets);
            assert!(leaks.is_empty(), "{}", privacy::describe(&leaks));
        }
    }
}

fn start_simulator(layout: &GateLayout, scenario: Option<&Path>) -> (Child, String, String) {
    let mut command = Command::new(binary("torii-sim"));
    if let Some(scenario) = scenario {
        command.arg("serve").arg("--scenario").arg(scenario);
    } else {
        command.arg("serve");
    }
    let mut child = command
        .arg("--dir")
        .arg(layout.sim_dir())
        .args(["--control", "127.0.0.1:0"])
        .arg("--central")
        .arg(layout.central.to_string())
        .arg("--central-pki")
        .arg(layout.pki_dir())
        .arg("--gate-id")
        .arg(layout.gate_id())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start torii-sim serve");
    let stdout = child.stdout.take().expect("simulator stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut control = None;
        let mut central = None;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("torii-sim: control ") {
                control = Some(url.trim().to_owned());
            }
            if let Some(url) = line.strip_prefix("torii-sim: central-control ") {
                central = Some(url.trim().to_owned());
            }
            if line.trim() == "torii-sim: ready" {
                let _ = tx.send(control.take().zip(central.take()));
            }
        }
    });
    let (control, central) = rx
        .recv_timeout(PATIENCE)
        .ok()
        .flatten()
        .expect("torii-sim printed its control and central URLs and `ready`");
    (child, control, central)
}

pub fn signal(pid: u32, signal: nix::sys::signal::Signal) {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(pid).expect("pid fits"));
    nix::sys::signal::kill(pid, signal).expect("signal delivered");
}

fn wait_child(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

fn describe(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// PIDs of the `torii-driver-host` processes whose parent is `parent`.
pub fn driver_hosts_of(parent: u32) -> Vec<u32> {
    let mut pids = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return pids;
    };
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let mut stat = String::new();
        if std::fs::File::open(format!("/proc/{pid}/stat"))
            .and_then(|mut f| f.read_to_string(&mut stat))
            .is_err()
        {
            continue;
        }
        // pid (comm) state ppid ...
        let Some(after_comm) = stat.rsplit_once(") ") else {
            continue;
        };
        let comm = stat.split_once(" (").map(|(_, rest)| rest).unwrap_or("");
        let ppid = after_comm
            .1
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(parent) && comm.starts_with("torii-driver-ho") {
            pids.push(pid);
        }
    }
    pids
}
