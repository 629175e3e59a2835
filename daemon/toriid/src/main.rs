//! `toriid`: the gate daemon. `toriid [run]` serves; `toriid check-config` validates
//! the configuration (exit 0) or prints every problem found (exit 2).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};
use toriid::config::{Config, ConfigPaths, DEFAULT_CONFIG_FILE};

#[derive(Parser)]
#[command(name = "toriid", version, about = "torii gate daemon")]
struct Cli {
    /// Configuration file.
    #[arg(long, global = true, value_name = "FILE", default_value = DEFAULT_CONFIG_FILE)]
    config: PathBuf,
    /// Drop-in directory (`*.toml`, sorted by name, later wins) [default: FILE's
    /// directory / FILE's stem + ".d", i.e. /etc/torii/toriid.d].
    #[arg(long, global = true, value_name = "DIR")]
    config_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Subcommand, Clone, Copy, PartialEq, Eq)]
enum Cmd {
    /// Run the daemon (the default).
    Run,
    /// Validate the configuration and print a summary.
    CheckConfig,
}

/// Exit code for a configuration that does not validate.
const EXIT_CONFIG: u8 = 2;

fn main() -> ExitCode {
    let started = Instant::now();
    let cli = Cli::parse();
    let mut paths = ConfigPaths::for_file(&cli.config);
    if let Some(dir) = cli.config_dir {
        paths.drop_in_dir = dir;
    }
    // Non-Unicode variables cannot be TORII__ overrides; skip them rather than panic.
    let env = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)));
    let config = match Config::load(&paths, env) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("toriid: invalid configuration:");
            for issue in e.issues() {
                eprintln!("  {issue}");
            }
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    match cli.command.unwrap_or(Cmd::Run) {
        Cmd::CheckConfig => {
            print!("{}", config.summary());
            ExitCode::SUCCESS
        }
        Cmd::Run => run(config, paths, started),
    }
}

fn run(config: Config, paths: ConfigPaths, started: Instant) -> ExitCode {
    if let Err(e) = toriid::logging::init(&config.log) {
        eprintln!("toriid: {e}");
        return ExitCode::from(EXIT_CONFIG);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(toriid::daemon::run(config, paths, started)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}
