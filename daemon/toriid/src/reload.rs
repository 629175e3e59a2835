//! Configuration reload (`SIGHUP`, i.e. `systemctl reload toriid`): the files are read
//! and validated again, exactly as at start. What can change while travelers pass is
//! applied at once; the rest is only read at start, and the reload says which keys wait
//! for a restart — every time, until the daemon restarts. Files that do not validate
//! change nothing: the running configuration stays, and the refusal is audited with the
//! problems found.
//!
//! Applied live:
//! - `log.level` (unless `RUST_LOG` pinned it at start);
//! - the tokens of `http.tokens_file`: a removed token stops working and its browser
//!   sessions end (a leaked token is revoked without a restart);
//! - `flow` and `gate.port`: timeouts, attempts and the period-of-stay table, from the
//!   next traveler on (the flow engine never judges one traveler by two configurations).
//!
//! Everything else (devices, listeners, paths, keys, central, registry, matcher, ...) is
//! opened once at start.

use crate::api::auth::Auth;
use crate::command::Core;
use crate::config::{Config, ConfigPaths, HttpConfig};
use crate::logging::{self, LevelChange};
use crate::notify;

/// How a new configuration differs from the running one.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ReloadPlan {
    /// Changed and applied now.
    pub live: Vec<&'static str>,
    /// Changed, but read only at start.
    pub needs_restart: Vec<&'static str>,
}

impl ReloadPlan {
    /// Compares section by section (the flow section as the engine sees it, which
    /// includes `gate.port`).
    pub fn between(running: &Config, new: &Config) -> ReloadPlan {
        let mut plan = ReloadPlan::default();
        let mut changed = |name: &'static str, differs: bool, live: bool| {
            if differs {
                if live {
                    plan.live.push(name);
                } else {
                    plan.needs_restart.push(name);
                }
            }
        };
        changed("log.level", running.log.level != new.log.level, true);
        changed("log.format", running.log.format != new.log.format, false);
        changed("http tokens", running.http.tokens != new.http.tokens, true);
        changed(
            "http",
            without_tokens(&running.http) != without_tokens(&new.http),
            false,
        );
        changed("gate.id", running.gate.id != new.gate.id, false);
        changed("gate.lane", running.gate.lane != new.gate.lane, false);
        changed("flow", running.flow != new.flow, true);
        changed("paths", running.paths != new.paths, false);
        changed("registry", running.registry != new.registry, false);
        changed("central", running.central != new.central, false);
        changed("outbox", running.outbox != new.outbox, false);
        changed("audit", running.audit != new.audit, false);
        changed("documents", running.documents != new.documents, false);
        changed("usb", running.usb != new.usb, false);
        changed("matcher", running.matcher != new.matcher, false);
        changed("dbus", running.dbus != new.dbus, false);
        changed("devices", running.devices != new.devices, false);
        plan
    }

    /// One line for the audit trail and the journal.
    pub fn describe(&self) -> String {
        let list = |names: &[&str]| {
            if names.is_empty() {
                "nothing".to_owned()
            } else {
                names.join(", ")
            }
        };
        format!(
            "applied: {}; waiting for a restart: {}",
            list(&self.live),
            list(&self.needs_restart)
        )
    }
}

fn without_tokens(http: &HttpConfig) -> HttpConfig {
    HttpConfig {
        tokens: Vec::new(),
        ..http.clone()
    }
}

/// Reads the configuration again and applies what can be applied. `running` is updated
/// to what now runs (its restart-only parts keep their start values).
pub fn reload(running: &mut Config, paths: &ConfigPaths, core: &Core, auth: &Auth) {
    notify::reloading();
    // Non-Unicode variables cannot be TORII__ overrides (as at start).
    let env = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)));
    match Config::load(paths, env) {
        Err(error) => {
            let issues = error.issues();
            for issue in issues {
                tracing::error!("configuration reload refused: {issue}");
            }
            let first = issues.first().map(ToString::to_string).unwrap_or_default();
            core.audit(
                torii_audit::AuditKind::ConfigReloadRefused,
                "system",
                format!(
                    "{} problem(s), the running configuration stays; first: {first}",
                    issues.len()
                ),
            );
            notify::reloaded("configuration reload refused: see the journal");
        }
        Ok(new) => {
            let plan = ReloadPlan::between(running, &new);
            apply(running, new, &plan, core, auth);
            let summary = plan.describe();
            tracing::info!("configuration reloaded ({summary})");
            core.audit(
                torii_audit::AuditKind::ConfigReloaded,
                "system",
                format!("from {}: {summary}", sources(running)),
            );
            if plan.needs_restart.is_empty() {
                notify::reloaded("configuration reloaded");
            } else {
                notify::reloaded(&format!(
                    "configuration reloaded; restart to apply {}",
                    plan.needs_restart.join(", ")
                ));
            }
        }
    }
}

fn sources(config: &Config) -> String {
    config
        .sources
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn apply(running: &mut Config, new: Config, plan: &ReloadPlan, core: &Core, auth: &Auth) {
    if plan.live.contains(&"log.level") {
        match logging::set_level(&new.log.level) {
            Ok(LevelChange::Applied | LevelChange::NoLogger) => {}
            Ok(LevelChange::PinnedByEnvironment) => {
                tracing::warn!("log.level changed, but RUST_LOG set at start keeps precedence");
            }
            Err(error) => tracing::error!(%error, "log.level not applied"),
        }
        running.log.level = new.log.level;
    }
    if plan.live.contains(&"http tokens") {
        let ended = auth.replace_tokens(new.http.tokens.clone());
        tracing::info!(
            tokens = new.http.tokens.len(),
            sessions_ended = ended,
            "API tokens reloaded"
        );
        running.http.tokens = new.http.tokens;
    }
    if plan.live.contains(&"flow") {
        match core.flow() {
            Some(flow) => {
                flow.send(torii_core::flow::GateInput::Reconfigure(Box::new(
                    new.flow.clone(),
                )));
            }
            None => tracing::warn!("no gate flow running: the flow configuration waits"),
        }
        running.flow = new.flow;
        running.gate.port = new.gate.port;
    }
    running.sources = new.sources;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigPaths;

    fn load(text: &str) -> Config {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("toriid.toml");
        std::fs::write(&file, text).unwrap();
        Config::load(&ConfigPaths::for_file(&file), Vec::new()).unwrap()
    }

    const BASE: &str = "[gate]\nid = \"NRT-T1-E01\"\nlane = \"entry\"\n";

    #[test]
    fn each_section_is_either_live_or_waits_for_a_restart() {
        let running = load(BASE);
        assert_eq!(
            ReloadPlan::between(&running, &running),
            ReloadPlan::default()
        );
        let cases: [(&str, &[&str], &[&str]); 5] = [
            ("[log]\nlevel = \"debug\"\n", &["log.level"], &[]),
            ("[flow]\nfinger_attempts = 2\n", &["flow"], &[]),
            ("[flow.stay]\ndefault_days = 30\n", &["flow"], &[]),
            ("[http]\nlisten = \"127.0.0.1:9999\"\n", &[], &["http"]),
            (
                "[log]\nlevel = \"warn\"\n[dbus]\nenabled = false\n",
                &["log.level"],
                &["dbus"],
            ),
        ];
        for (extra, live, restart) in cases {
            let new = load(&format!("{BASE}{extra}"));
            let plan = ReloadPlan::between(&running, &new);
            assert_eq!(plan.live, live, "{extra}");
            assert_eq!(plan.needs_restart, restart, "{extra}");
        }
        let moved = load("[gate]\nid = \"NRT-T1-E02\"\nlane = \"exit\"\n");
        let plan = ReloadPlan::between(&running, &moved);
        assert!(plan.needs_restart.contains(&"gate.id"), "{plan:?}");
        assert!(plan.needs_restart.contains(&"gate.lane"), "{plan:?}");
        assert_eq!(
            plan.describe(),
            format!(
                "applied: {}; waiting for a restart: {}",
                if plan.live.is_empty() {
                    "nothing".to_owned()
                } else {
                    plan.live.join(", ")
                },
                plan.needs_restart.join(", ")
            )
        );
    }
}
