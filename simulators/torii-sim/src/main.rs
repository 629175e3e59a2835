//! `torii-sim`: run the simulated gate devices, or drive a running simulator.

use clap::{Parser, Subcommand};
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
    /// Run every device simulator, the control API and (optionally) the central
    /// immigration simulator (mutual TLS).
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
        /// Central immigration's HTTPS address (mutual TLS); not started when absent.
        #[arg(long)]
        central: Option<SocketAddr>,
        /// Central's control API address (loopback; port 0 picks a free port).
        #[arg(long, default_value = "127.0.0.1:0", requires = "central")]
        central_control: SocketAddr,
        /// Central's test PKI (default: DIR/pki): used as is when complete, generated
        /// for --gate-id otherwise.
        #[arg(long, requires = "central")]
        central_pki: Option<PathBuf>,
        /// The gate id of a generated PKI's client certificates (their CN).
        #[arg(long, default_value = "SIM-entry-01", requires = "central")]
        gate_id: String,
    },
    /// Run a complete simulated gate: every device simulator, central immigration (mutual
    /// TLS, test PKI in DIR/pki), and the real toriid (next to this binary) with all seven
    /// sim drivers; prints where to look.
    Gate {
        /// The lane's direction: entry or exit (default: the scenario's `[gate] lane`,
        /// else entry).
        #[arg(long, value_parser = ["entry", "exit"])]
        lane: Option<String>,
        /// The daemon's loopback HTTP address (console and read-only API).
        #[arg(long, default_value = "127.0.0.1:8770")]
        http: SocketAddr,
        /// The simulator's control API address.
        #[arg(long, default_value = DEFAULT_CONTROL)]
        control: SocketAddr,
        /// Central immigration's HTTPS address (mutual TLS).
        #[arg(long, default_value = torii_sim::gate::DEFAULT_CENTRAL)]
        central: SocketAddr,
        /// Central's control API address (fault modes, records received, registry
        /// changes).
        #[arg(long, default_value = torii_sim::gate::DEFAULT_CENTRAL_CONTROL)]
        central_control: SocketAddr,
        /// Scenario file (default: the shipped scenarios/default.toml).
        #[arg(long)]
        scenario: Option<PathBuf>,
        /// Keep sockets, config and state here (default: a fresh temporary directory,
        /// removed on exit).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Write a scenario's registry (central's initial registry) as the JSON file toriid
    /// imports at start (`[registry] import`).
    ExportRegistry {
        /// Scenario file (default: the shipped scenarios/default.toml).
        #[arg(long)]
        scenario: Option<PathBuf>,
        /// Where to write the registry JSON.
        #[arg(long)]
        out: PathBuf,
        /// Also write the card issuer's public key (PEM) here (`[registry] card_issuer_key`).
        #[arg(long)]
        issuer_key: Option<PathBuf>,
    },
    /// The test PKI of central and the gate (mutual TLS).
    Pki {
        #[command(subcommand)]
        command: PkiCommand,
    },
    /// Scripted travelers: run them against a running simulator and toriid.
    Scenario {
        #[command(subcommand)]
        command: ScenarioCommand,
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
enum PkiCommand {
    /// Generate the test PKI into DIR: the CA, central's server certificate, the gate's
    /// client certificates (good, expired, revoked), the CRL, and a rogue CA's server
    /// and client certificates. Refuses to overwrite without --force.
    Init {
        dir: PathBuf,
        /// The gate id (the client certificates' CN).
        #[arg(long, default_value = torii_central::pki::DEFAULT_GATE_ID)]
        gate_id: String,
        /// Overwrite an existing PKI.
        #[arg(long)]
        force: bool,
    },
}

fn pki_init(dir: &std::path::Path, gate_id: &str, force: bool) -> ExitCode {
    match torii_central::pki::generate(dir, gate_id, force) {
        Ok(_) => {
            println!(
                "torii-sim: test PKI for gate {gate_id} in {}",
                dir.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("torii-sim pki init: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Where `serve --central` runs central.
struct CentralOptions {
    listen: SocketAddr,
    control: SocketAddr,
    pki: PathBuf,
    gate_id: String,
}

#[derive(Subcommand)]
enum ScenarioCommand {
    /// Run each scripted traveler against a running simulator and toriid; print
    /// `PASS <id> <outcome>` / `FAIL <id> expected … got …` per traveler and
    /// `N passed, M failed`; exit 1 when any traveler fails.
    Run {
        /// Scenario file (default: the shipped scenarios/default.toml).
        #[arg(long)]
        scenario: Option<PathBuf>,
        /// toriid's Unix socket (full API).
        #[arg(long, env = "TORII_SOCKET", default_value = "/run/torii/api.sock")]
        daemon_socket: PathBuf,
        /// The simulator's control API URL.
        #[arg(
            long,
            env = "TORII_SIM_CONTROL",
            default_value = "http://127.0.0.1:8771"
        )]
        control: String,
        /// Run only this traveler.
        #[arg(long)]
        traveler: Option<String>,
        /// Longest wait for the gate to reach a step, in milliseconds.
        #[arg(long, default_value_t = 20_000)]
        step_timeout_ms: u64,
        /// Longest wait for the decision after the script, in milliseconds.
        #[arg(long, default_value_t = 60_000)]
        decision_timeout_ms: u64,
    },
}

#[derive(Subcommand)]
enum Ctl {
    /// Print the whole simulated state (GET /v1/state).
    State,
    /// Print the scenario's travelers (GET /v1/travelers).
    Travelers,
    #[command(flatten)]
    Act(control::Action),
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
        Ctl::Act(action) => match serde_json::to_value(&action) {
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
    central: Option<CentralOptions>,
) -> ExitCode {
    let scenario = match load_scenario(scenario.as_deref()) {
        Ok(scenario) => scenario,
        Err(code) => return code,
    };
    let central = match central {
        Some(options) => {
            let pki = match torii_sim::central_pki(&options.pki, &options.gate_id) {
                Ok(pki) => pki,
                Err(e) => {
                    eprintln!("torii-sim: test PKI: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match torii_sim::start_central(&scenario, &pki, options.listen, options.control).await {
                Ok(central) => Some((central, pki)),
                Err(e) => {
                    eprintln!("torii-sim: central: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
        None => None,
    };
    let mut config = SimulatorConfig::new(dir, scenario);
    config.control = Some(control);
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
    if let Some((central, pki)) = &central {
        let _ = writeln!(out, "torii-sim: central {}", central.url());
        let _ = writeln!(out, "torii-sim: central-control {}", central.control_url());
        let _ = writeln!(out, "torii-sim: central-pki {}", pki.dir.display());
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

    if torii_central::stop_signal().await.is_err() {
        eprintln!("torii-sim: cannot install signal handlers");
        sim.shutdown().await;
        return ExitCode::FAILURE;
    }
    sim.shutdown().await;
    if let Some((central, _)) = central {
        central.shutdown().await;
    }
    println!("torii-sim: stopped");
    ExitCode::SUCCESS
}

fn export_registry(
    scenario: Option<PathBuf>,
    out: PathBuf,
    issuer_key: Option<PathBuf>,
) -> ExitCode {
    let scenario = match load_scenario(scenario.as_deref()) {
        Ok(scenario) => scenario,
        Err(code) => return code,
    };
    if let Err(e) = torii_sim::write_registry(&scenario, &out) {
        eprintln!("torii-sim: cannot write {}: {e}", out.display());
        return ExitCode::FAILURE;
    }
    if let Some(path) = issuer_key
        && let Err(e) = torii_sim::write_card_issuer_key(&path)
    {
        eprintln!("torii-sim: cannot write {}: {e}", path.display());
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

async fn scenario_command(command: ScenarioCommand) -> ExitCode {
    let ScenarioCommand::Run {
        scenario,
        daemon_socket,
        control,
        traveler,
        step_timeout_ms,
        decision_timeout_ms,
    } = command;
    let scenario = match load_scenario(scenario.as_deref()) {
        Ok(scenario) => scenario,
        Err(code) => return code,
    };
    let control = if control.contains("://") {
        control
    } else {
        format!("http://{control}")
    };
    let mut options = torii_sim::runner::RunnerOptions::new(daemon_socket, control);
    options.traveler = traveler;
    options.step_timeout = std::time::Duration::from_millis(step_timeout_ms);
    options.decision_timeout = std::time::Duration::from_millis(decision_timeout_ms);
    let mut out = std::io::stdout();
    match torii_sim::runner::run(&scenario, &options, &mut out).await {
        Ok(summary) if summary.success() => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("torii-sim scenario run: {e}");
            ExitCode::from(2)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("torii_sim=info,torii_central=info")
            }),
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
                central_control,
                central_pki,
                gate_id,
            } => {
                let central = central.map(|listen| CentralOptions {
                    listen,
                    control: central_control,
                    pki: central_pki.unwrap_or_else(|| dir.join("pki")),
                    gate_id,
                });
                serve(dir, control, scenario, central).await
            }
            Command::Pki {
                command:
                    PkiCommand::Init {
                        dir,
                        gate_id,
                        force,
                    },
            } => pki_init(&dir, &gate_id, force),
            Command::Gate {
                lane,
                http,
                control,
                central,
                central_control,
                scenario,
                dir,
            } => {
                let scenario_path = scenario.clone();
                let scenario = match load_scenario(scenario.as_deref()) {
                    Ok(scenario) => scenario,
                    Err(code) => return code,
                };
                let lane = lane.unwrap_or_else(|| match scenario.gate.lane {
                    Some(torii_core::rules::Lane::Exit) => "exit".into(),
                    _ => "entry".into(),
                });
                let options = torii_sim::gate::GateOptions {
                    scenario,
                    scenario_path: scenario_path.clone(),
                    lane,
                    http,
                    control,
                    central,
                    central_control,
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
            Command::ExportRegistry {
                scenario,
                out,
                issuer_key,
            } => export_registry(scenario, out, issuer_key),
            Command::Scenario { command } => scenario_command(command).await,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn ctl_actions_parse_into_the_api_json() {
        let cli = Cli::try_parse_from(["torii-sim", "ctl", "fire-alarm", "on"]).unwrap();
        let Command::Ctl {
            action: Ctl::Act(action),
            ..
        } = cli.command
        else {
            panic!("an action")
        };
        assert_eq!(
            serde_json::to_value(&action).unwrap(),
            serde_json::json!({"action": "fire-alarm", "active": true})
        );
        let cli = Cli::try_parse_from(["torii-sim", "ctl", "place-fingers", "alice", "impostor"])
            .unwrap();
        let Command::Ctl {
            action: Ctl::Act(action),
            ..
        } = cli.command
        else {
            panic!("an action")
        };
        assert_eq!(
            serde_json::to_value(&action).unwrap(),
            serde_json::json!({"action": "place-fingers", "traveler": "alice", "mode": "impostor"})
        );
        assert!(Cli::try_parse_from(["torii-sim", "ctl", "fire-alarm", "maybe"]).is_err());
    }
}
