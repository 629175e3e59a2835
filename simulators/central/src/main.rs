//! `torii-central`: the central immigration simulator (mTLS), its test PKI and a small
//! client of its control API.

use clap::{Parser, Subcommand};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use torii_central::pki::{self, Pki};
use torii_central::{Central, CentralConfig, Fault, FaultMode, registry_from_export};

#[derive(Parser)]
#[command(
    name = "torii-central",
    version,
    about = "Central immigration simulator: mutual-TLS records, registry and revocation feeds, fault modes"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve HTTPS (mTLS) and the loopback control API until SIGINT/SIGTERM.
    Serve(Serve),
    /// The test PKI.
    Pki {
        #[command(subcommand)]
        command: PkiCommand,
    },
    /// Call a running central's control API and print its JSON answer.
    Ctl {
        /// Control API URL or address.
        #[arg(
            long,
            env = "TORII_CENTRAL_CONTROL",
            default_value = "http://127.0.0.1:8773"
        )]
        control: String,
        #[command(subcommand)]
        call: CtlCall,
    },
}

#[derive(clap::Args)]
struct Serve {
    /// HTTPS address.
    #[arg(long, default_value = "127.0.0.1:8772")]
    listen: SocketAddr,
    /// Control API address (loopback).
    #[arg(long, default_value = "127.0.0.1:8773")]
    control: SocketAddr,
    /// A test PKI directory (`torii-central pki init`): takes central.pem/.key, ca.pem,
    /// crl.pem and rogue-central.pem/.key from it.
    #[arg(long, conflicts_with_all = ["cert", "key", "client_ca"])]
    pki: Option<PathBuf>,
    /// Server certificate (PEM).
    #[arg(long, requires = "key")]
    cert: Option<PathBuf>,
    /// Server key (PEM).
    #[arg(long, requires = "cert")]
    key: Option<PathBuf>,
    /// The CA client certificates must come from (PEM).
    #[arg(long)]
    client_ca: Option<PathBuf>,
    /// The CA's CRL (PEM).
    #[arg(long)]
    crl: Option<PathBuf>,
    /// Server certificate presented in the wrong-server-cert fault.
    #[arg(long, requires = "rogue_key")]
    rogue_cert: Option<PathBuf>,
    #[arg(long, requires = "rogue_cert")]
    rogue_key: Option<PathBuf>,
    /// A registry export `{"travelers":[…]}`: the initial registry.
    #[arg(long)]
    registry: Option<PathBuf>,
    /// Fault mode at start: none, down, slow, http500, drop-mid-batch, wrong-server-cert.
    #[arg(long, default_value = "none")]
    fault: FaultMode,
    /// The delay of the slow fault.
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
}

#[derive(Subcommand)]
enum PkiCommand {
    /// Generate the test PKI into DIR (refuses to overwrite without --force).
    Init {
        dir: PathBuf,
        /// The gate id (client certificates' CN).
        #[arg(long, default_value = pki::DEFAULT_GATE_ID)]
        gate_id: String,
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand)]
enum CtlCall {
    /// GET /control/stats.
    Stats,
    /// GET /control/records.
    Records,
    /// POST /control/fault.
    Fault {
        mode: FaultMode,
        #[arg(long, default_value_t = 0)]
        delay_ms: u64,
    },
    /// POST /control/registry/upsert with the traveler (a registry export entry) in FILE.
    Upsert { file: PathBuf },
    /// POST /control/registry/erase.
    Erase {
        passport_number: String,
        nationality: String,
    },
    /// POST /control/revoke (status: revoked, passport-reported-lost, changed-to-resident).
    Revoke {
        passport_number: String,
        nationality: String,
        status: String,
    },
    /// POST /control/reset-records.
    ResetRecords,
}

fn serve_config(serve: &Serve) -> Result<CentralConfig, String> {
    let mut config = if let Some(dir) = &serve.pki {
        let pki = Pki::new(dir);
        if !pki.is_complete() {
            return Err(format!(
                "{} is not a complete test PKI (torii-central pki init {})",
                dir.display(),
                dir.display()
            ));
        }
        CentralConfig::from_pki(&pki, serve.listen, serve.control)
    } else {
        let (Some(cert), Some(key), Some(client_ca)) = (&serve.cert, &serve.key, &serve.client_ca)
        else {
            return Err("give --pki DIR, or --cert, --key and --client-ca".into());
        };
        CentralConfig {
            listen: serve.listen,
            control: serve.control,
            server_cert: cert.clone(),
            server_key: key.clone(),
            client_ca: client_ca.clone(),
            crl: None,
            rogue_cert: None,
            rogue_key: None,
            registry: Vec::new(),
            fault: Fault::none(),
        }
    };
    if serve.crl.is_some() {
        config.crl = serve.crl.clone();
    }
    if serve.rogue_cert.is_some() {
        config.rogue_cert = serve.rogue_cert.clone();
        config.rogue_key = serve.rogue_key.clone();
    }
    if let Some(path) = &serve.registry {
        config.registry = read_registry(path)?;
    }
    config.fault = Fault {
        mode: serve.fault,
        delay_ms: serve.delay_ms,
    };
    Ok(config)
}

fn read_registry(path: &Path) -> Result<Vec<serde_json::Value>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let export: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    registry_from_export(&export).map_err(|e| format!("{}: {e}", path.display()))
}

async fn serve(serve: Serve) -> ExitCode {
    let config = match serve_config(&serve) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("torii-central: {e}");
            return ExitCode::from(2);
        }
    };
    let central = match Central::start(config).await {
        Ok(central) => central,
        Err(e) => {
            eprintln!("torii-central: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "torii-central: {}", central.url());
    let _ = writeln!(out, "torii-central: control {}", central.control_url());
    let _ = writeln!(out, "torii-central: ready");
    let _ = out.flush();
    drop(out);
    if torii_central::stop_signal().await.is_err() {
        eprintln!("torii-central: cannot install signal handlers");
        central.shutdown().await;
        return ExitCode::FAILURE;
    }
    central.shutdown().await;
    ExitCode::SUCCESS
}

/// One plain HTTP/1 request to the control API.
async fn http(
    base: &str,
    method: hyper::Method,
    path: &str,
    body: Option<&serde_json::Value>,
) -> Result<(u16, serde_json::Value), String> {
    let authority = base
        .strip_prefix("http://")
        .unwrap_or(base)
        .trim_end_matches('/');
    let stream = tokio::net::TcpStream::connect(authority)
        .await
        .map_err(|e| format!("{authority}: {e}"))?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let bytes = body.map(|b| b.to_string()).unwrap_or_default();
    let request = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", authority)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(bytes)))
        .map_err(|e| e.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    let value = serde_json::from_slice(&body)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&body).into()));
    Ok((status, value))
}

async fn ctl(control: &str, call: CtlCall) -> ExitCode {
    use hyper::Method;
    use serde_json::json;
    let (method, path, body) = match call {
        CtlCall::Stats => (Method::GET, "/control/stats", None),
        CtlCall::Records => (Method::GET, "/control/records", None),
        CtlCall::Fault { mode, delay_ms } => (
            Method::POST,
            "/control/fault",
            Some(json!({ "mode": mode, "delay_ms": delay_ms })),
        ),
        CtlCall::Upsert { file } => {
            let traveler = std::fs::read(&file)
                .map_err(|e| e.to_string())
                .and_then(|b| {
                    serde_json::from_slice::<serde_json::Value>(&b).map_err(|e| e.to_string())
                });
            match traveler {
                Ok(traveler) => (
                    Method::POST,
                    "/control/registry/upsert",
                    Some(json!({ "traveler": traveler })),
                ),
                Err(e) => {
                    eprintln!("torii-central ctl: {}: {e}", file.display());
                    return ExitCode::from(2);
                }
            }
        }
        CtlCall::Erase {
            passport_number,
            nationality,
        } => (
            Method::POST,
            "/control/registry/erase",
            Some(json!({ "passport_number": passport_number, "nationality": nationality })),
        ),
        CtlCall::Revoke {
            passport_number,
            nationality,
            status,
        } => (
            Method::POST,
            "/control/revoke",
            Some(
                json!({ "passport_number": passport_number, "nationality": nationality, "status": status }),
            ),
        ),
        CtlCall::ResetRecords => (Method::POST, "/control/reset-records", None),
    };
    match http(control, method, path, body.as_ref()).await {
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
            eprintln!("torii-central ctl: {e}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("torii_central=info")),
        )
        .init();
    if let Command::Pki {
        command:
            PkiCommand::Init {
                dir,
                gate_id,
                force,
            },
    } = &cli.command
    {
        return match pki::generate(dir, gate_id, *force) {
            Ok(_) => {
                println!(
                    "torii-central: test PKI for gate {gate_id} in {}",
                    dir.display()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("torii-central pki init: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("torii-central: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        match cli.command {
            Command::Serve(s) => serve(s).await,
            Command::Ctl { control, call } => ctl(&control, call).await,
            Command::Pki { .. } => ExitCode::SUCCESS,
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
        let cli = Cli::try_parse_from(["torii-central", "ctl", "fault", "drop-mid-batch"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Ctl {
                call: CtlCall::Fault {
                    mode: FaultMode::DropMidBatch,
                    ..
                },
                ..
            }
        ));
        assert!(Cli::try_parse_from(["torii-central", "ctl", "fault", "melt"]).is_err());
    }
}
