//! `torii-sim`: run the simulated gate devices, or drive a running simulator.

use clap::{Parser, Subcommand};
use serde_json::{Value, json};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use torii_sdk::model::DeviceClass;
use torii_sim::scenario::Scenario;
use torii_sim::{Simulator, SimulatorConfig, control};

const DEFAULT_CONTROL: &str = "127.0.0.1:8771";

#[derive(Parser)]
#[command(
    name = "torii-sim",
    version,
    about = "Software simulator of every torii gate device"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every device simulator, the control API and (optionally) the central stub.
    Serve {
        /// Directory of the device sockets (DIR/<class>.sock).
        #[arg(long)]
        dir: PathBuf,
        /// Control API address (loopback; port 0 picks a free port).
        #[arg(long, default_value = DEFAULT_CONTROL)]
        control: SocketAddr,
        /// Scenario file (default: the shipped scenarios/default.toml).
        #[arg(long)]
        scenario: Option<PathBuf>,
        /// Central immigration stub address (loopback); not started when absent.
        #[arg(long)]
        central: Option<SocketAddr>,
    },
    /// Run a complete simulated gate: every device simulator, the central stub, and the
    /// real toriid (next to this binary) with all seven sim drivers; prints where to look.
    Gate {
        /// The lane's direction: entry or exit.
        #[arg(long, default_value = "entry", value_parser = ["entry", "exit"])]
        lane: String,
        /// The daemon's loopback HTTP address (console and read-only API).
        #[arg(long, default_value = "127.0.0.1:8770")]
        http: SocketAddr,
        /// The simulator's control API address.
        #[arg(long, default_value = DEFAULT_CONTROL)]
        control: SocketAddr,
        /// The central immigration stub's address.
        #[arg(long, default_value = "127.0.0.1:8772")]
        central: SocketAddr,
        /// Scenario file (default: the shipped scenarios/default.toml).
        #[arg(long)]
        scenario: Option<PathBuf>,
        /// Keep sockets, config and state here (default: a fresh temporary directory,
        /// removed on exit).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Send a control action to a running simulator and print its JSON answer.
    Ctl {
        /// Control API URL.
        #[arg(
            long,
            env = "TORII_SIM_CONTROL",
            default_value = "http://127.0.0.1:8771"
        )]
        control: String,
        #[command(subcommand)]
        action: Ctl,
    },
}

#[derive(Subcommand)]
enum Ctl {
    /// Print the whole simulated state (GET /v1/state).
    State,
    /// Print the scenario's travelers (GET /v1/travelers).
    Travelers,
    /// Lay TRAVELER's passport on the document reader.
    PresentPassport {
        traveler: String,
    },
    RemovePassport,
    /// Hold TRAVELER's registration QR (or --payload TEXT) to the code reader.
    PresentQr {
        traveler: Option<String>,
        #[arg(long)]
        payload: Option<String>,
    },
    /// Insert TRAVELER's card into the card printer.
    InsertCard {
        traveler: String,
    },
    /// Pull the card out of the printer (even mid-print).
    RemoveCard,
    /// Take the card the printer ejected.
    TakeCard,
    /// Lay TRAVELER's card on the card reader.
    PlaceCard {
        traveler: String,
    },
    LiftCard,
    /// Place TRAVELER's fingers on the sensor; MODE: genuine | impostor | poor | none.
    PlaceFingers {
        traveler: String,
        #[arg(default_value = "genuine")]
        mode: String,
    },
    LiftFingers,
    LookAtCamera {
        traveler: String,
    },
    LeaveCamera,
    EnterLane,
    WalkThrough,
    SecondPerson,
    /// Make DEVICE's next call (every call with --sticky) fail with STATUS.
    Fault {
        device: String,
        status: String,
        #[arg(long)]
        sticky: bool,
    },
    /// DEVICE stops answering calls until cleared.
    Hang {
        device: String,
    },
    /// Drop DEVICE's connection and refuse new ones.
    Unplug {
        device: String,
    },
    Replug {
        device: String,
    },
    /// Clear DEVICE's faults (fault, hang, unplug); DEVICE may be `all`.
    Clear {
        device: String,
    },
    /// Raise or reset the fire alarm: on | off.
    FireAlarm {
        state: String,
    },
}

fn action_json(action: Ctl) -> Result<Value, String> {
    Ok(match action {
        Ctl::State | Ctl::Travelers => return Err("not an action".into()),
        Ctl::PresentPassport { traveler } => {
            json!({ "action": "present-passport", "traveler": traveler })
        }
        Ctl::RemovePassport => json!({ "action": "remove-passport" }),
        Ctl::PresentQr { traveler, payload } => {
            let mut v = json!({ "action": "present-qr" });
            if let Some(t) = traveler {
                v["traveler"] = json!(t);
            }
            if let Some(p) = payload {
                v["payload"] = json!(p);
            }
            v
        }
        Ctl::InsertCard { traveler } => json!({ "action": "insert-card", "traveler": traveler }),
        Ctl::RemoveCard => json!({ "action": "remove-card" }),
        Ctl::TakeCard => json!({ "action": "take-card" }),
        Ctl::PlaceCard { traveler } => json!({ "action": "place-card", "traveler": traveler }),
        Ctl::LiftCard => json!({ "action": "lift-card" }),
        Ctl::PlaceFingers { traveler, mode } => {
            json!({ "action": "place-fingers", "traveler": traveler, "mode": mode })
        }
        Ctl::LiftFingers => json!({ "action": "lift-fingers" }),
        Ctl::LookAtCamera { traveler } => {
            json!({ "action": "look-at-camera", "traveler": traveler })
        }
        Ctl::LeaveCamera => json!({ "action": "leave-camera" }),
        Ctl::EnterLane => json!({ "action": "enter-lane" }),
        Ctl::WalkThrough => json!({ "action": "walk-through" }),
        Ctl::SecondPerson => json!({ "action": "second-person" }),
        Ctl::Fault {
            device,
            status,
            sticky,
        } => {
            json!({ "action": "fault", "device": device, "status": status, "sticky": sticky })
        }
        Ctl::Hang { device } => json!({ "action": "hang", "device": device }),
        Ctl::Unplug { device } => json!({ "action": "unplug", "device": device }),
        Ctl::Replug { device } => json!({ "action": "replug", "device": device }),
        Ctl::Clear { device } => json!({ "action": "clear", "device": device }),
        Ctl::FireAlarm { state } => {
            let active = match state.as_str() {
                "on" | "true" | "1" => true,
                "off" | "false" | "0" => false,
                other => return Err(format!("fire-alarm takes on or off, not {other:?}")),
            };
            json!({ "action": "fire-alarm", "active": active })
        }
    })
}

async fn ctl(control: &str, action: Ctl) -> ExitCode {
    let base = if control.contains("://") {
        control.to_owned()
    } else {
        format!("http://{control}")
    };
    let result = match action {
        Ctl::State => control::http_request(&base, hyper::Method::GET, "/v1/state", None).await,
        Ctl::Travelers => {
            control::http_request(&base, hyper::Method::GET, "/v1/travelers", None).await
        }
        action => match action_json(action) {
            Ok(body) => {
                control::http_request(&base, hyper::Method::POST, "/v1/actions", Some(&body)).await
            }
            Err(e) => {
                eprintln!("torii-sim ctl: {e}");
                return ExitCode::from(2);
            }
        },
    };
    match result {
        Ok((status, value)) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&value).unwrap_or_else(|_| value.to_string())
            );
            if (200..300).contains(&status) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("torii-sim ctl: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The scenario at `path`, or the shipped one; an error is printed and becomes exit 2.
fn load_scenario(path: Option<&std::path::Path>) -> Result<Scenario, ExitCode> {
    let scenario = match path {
        Some(path) => Scenario::load(path),
        None => Scenario::default_scenario(),
    };
    scenario.map_err(|e| {
        eprintln!("torii-sim: {e}");
        ExitCode::from(2)
    })
}

async fn serve(
    dir: PathBuf,
    control: SocketAddr,
    scenario: Option<PathBuf>,
    central: Option<SocketAddr>,
) -> ExitCode {
    let scenario = match load_scenario(scenario.as_deref()) {
        Ok(scenario) => scenario,
        Err(code) => return code,
    };
    let mut config = SimulatorConfig::new(dir, scenario);
    config.control = Some(control);
    config.central = central;
    let sim = match Simulator::start(config).await {
        Ok(sim) => sim,
        Err(e) => {
            eprintln!("torii-sim: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut out = std::io::stdout().lock();
    if let Some(addr) = sim.control_addr() {
        let _ = writeln!(out, "torii-sim: control http://{addr}");
    }
    if let Some(addr) = sim.central_addr() {
        let _ = writeln!(out, "torii-sim: central http://{addr}");
    }
    for class in DeviceClass::ALL {
        let _ = writeln!(
            out,
            "torii-sim: device {class} unix:{}",
            sim.socket_path(class).display()
        );
    }
    let _ = writeln!(out, "torii-sim: ready");
    let _ = out.flush();
    drop(out);

    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut int), Ok(mut term)) => {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        }
        _ => {
            eprintln!("torii-sim: cannot install signal handlers");
            sim.shutdown().await;
            return ExitCode::FAILURE;
        }
    }
    sim.shutdown().await;
    println!("torii-sim: stopped");
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("torii_sim=info")),
        )
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("torii-sim: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        match cli.command {
            Command::Serve {
                dir,
                control,
                scenario,
                central,
            } => serve(dir, control, scenario, central).await,
            Command::Gate {
                lane,
                http,
                control,
                central,
                scenario,
                dir,
            } => {
                let scenario = match load_scenario(scenario.as_deref()) {
                    Ok(scenario) => scenario,
                    Err(code) => return code,
                };
                let options = torii_sim::gate::GateOptions {
                    scenario,
                    lane,
                    http,
                    control,
                    central,
                    work_dir: dir,
                };
                match torii_sim::gate::run(options).await {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => {
                        eprintln!("torii-sim gate: {e}");
                        ExitCode::FAILURE
                    }
                }
            }
            Command::Ctl { control, action } => ctl(&control, action).await,
        }
    })
}
