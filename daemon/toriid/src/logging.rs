//! Logging setup: journald under systemd, human-readable on a terminal, JSON on request.
//!
//! What may be logged: device ids, op names, status codes, timings. What may not:
//! names, document or card numbers, MRZ lines, codes read, biometric bytes. The device
//! model's `Debug` impls hide payloads; log those types with `?` only, never their fields.

use std::io::IsTerminal as _;
use std::sync::OnceLock;

use tracing_subscriber::layer::Layered;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Registry, reload};

use crate::config::{LogConfig, LogFormat};

#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    #[error("invalid log level {level:?}: {reason}")]
    Level { level: String, reason: String },
    #[error("a logger is already installed")]
    AlreadyInstalled,
    #[error("cannot change the log level: {0}")]
    Reload(String),
}

/// The format actually used: `auto` resolved against the environment.
pub fn effective_format(format: LogFormat, journal_stream: bool) -> LogFormat {
    match format {
        LogFormat::Auto if journal_stream => LogFormat::Journald,
        LogFormat::Auto => LogFormat::Human,
        other => other,
    }
}

/// The installed level filter, for [`set_level`]; `RUST_LOG` set at start pins it.
struct LevelControl {
    handle: reload::Handle<EnvFilter, Registry>,
    pinned_by_env: bool,
}

static LEVEL: OnceLock<LevelControl> = OnceLock::new();

/// Installs the global subscriber. `RUST_LOG`, when set, overrides the configured level
/// (handy when debugging on a gate without editing its config).
pub fn init(config: &LogConfig) -> Result<LogFormat, LoggingError> {
    let directives = std::env::var("RUST_LOG").ok().filter(|v| !v.is_empty());
    let pinned_by_env = directives.is_some();
    let level = directives.unwrap_or_else(|| config.level.clone());
    let filter = parse_level(&level)?;
    let journal_stream = std::env::var_os("JOURNAL_STREAM").is_some();
    let mut format = effective_format(config.format, journal_stream);

    let (filter, handle) = reload::Layer::new(filter);
    let registry: Layered<_, Registry> = tracing_subscriber::registry().with(filter);
    let installed = match format {
        LogFormat::Journald => match tracing_journald::layer() {
            Ok(layer) => registry
                .with(layer.with_syslog_identifier("toriid".into()))
                .try_init(),
            Err(e) => {
                // No journald (a container, a chroot): fall back to stderr, which
                // systemd would capture anyway.
                format = LogFormat::Human;
                let result = registry.with(human_layer()).try_init();
                tracing::warn!("journald unavailable ({e}); logging to stderr");
                result
            }
        },
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr),
            )
            .try_init(),
        LogFormat::Human | LogFormat::Auto => registry.with(human_layer()).try_init(),
    };
    installed.map_err(|_| LoggingError::AlreadyInstalled)?;
    let _ = LEVEL.set(LevelControl {
        handle,
        pinned_by_env,
    });
    Ok(format)
}

fn parse_level(level: &str) -> Result<EnvFilter, LoggingError> {
    EnvFilter::try_new(level).map_err(|e| LoggingError::Level {
        level: level.to_owned(),
        reason: e.to_string(),
    })
}

/// Whether [`set_level`] changed the level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LevelChange {
    Applied,
    /// `RUST_LOG` was set when the daemon started: it keeps precedence.
    PinnedByEnvironment,
    /// No logger was installed by [`init`] (tests, `check-config`).
    NoLogger,
}

/// Replaces the running logger's level filter (a configuration reload).
pub fn set_level(level: &str) -> Result<LevelChange, LoggingError> {
    let filter = parse_level(level)?;
    let Some(control) = LEVEL.get() else {
        return Ok(LevelChange::NoLogger);
    };
    if control.pinned_by_env {
        return Ok(LevelChange::PinnedByEnvironment);
    }
    control
        .handle
        .reload(filter)
        .map(|()| LevelChange::Applied)
        .map_err(|e| LoggingError::Reload(e.to_string()))
}

fn human_layer<S>() -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_picks_journald_only_under_systemd() {
        assert_eq!(effective_format(LogFormat::Auto, true), LogFormat::Journald);
        assert_eq!(effective_format(LogFormat::Auto, false), LogFormat::Human);
        assert_eq!(effective_format(LogFormat::Json, true), LogFormat::Json);
    }
}
