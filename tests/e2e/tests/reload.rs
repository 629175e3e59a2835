//! `systemctl reload toriid` (SIGHUP) on the real daemon: an API token added to the
//! tokens file works without a restart and stops working once removed; files that do
//! not validate change nothing and the refusal is audited; a flow change is applied and
//! audited; the daemon keeps serving throughout.

use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::Value;
use torii_e2e::{Gate, PATIENCE, bin_dir, signal};

/// `toriictl whoami` over the loopback TCP listener with `token`: the role, or None
/// when the daemon refuses the token.
fn role_of(gate: &Gate, token: &str) -> Option<String> {
    let output = Command::new(bin_dir().join("toriictl"))
        .args(["--url", &format!("http://{}", gate.layout.http)])
        .args(["--token", token, "--json", "whoami"])
        .output()
        .unwrap();
    if !output.status.success() {
        return None;
    }
    let answer: Value = serde_json::from_slice(&output.stdout).unwrap();
    answer["role"].as_str().map(str::to_owned)
}

fn audit_log(gate: &Gate) -> String {
    std::fs::read_to_string(gate.layout.state_dir().join("audit.log")).unwrap_or_default()
}

fn reload_and_wait_for(gate: &mut Gate, audited: &str) {
    let before = audit_log(gate).matches(audited).count();
    signal(gate.daemon_pid(), Signal::SIGHUP);
    let deadline = Instant::now() + PATIENCE;
    while audit_log(gate).matches(audited).count() == before {
        assert!(
            Instant::now() < deadline,
            "no new {audited} entry after SIGHUP\n{}",
            gate.daemon_log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(gate.daemon_alive(), "toriid survives a reload");
}

#[test]
fn a_reload_takes_new_tokens_refuses_bad_files_and_applies_the_flow() {
    let mut gate = Gate::start();
    let tokens_file = gate.layout.tokens_file();
    let shipped = std::fs::read_to_string(&tokens_file).unwrap();

    // A new operator token: refused until the daemon reloads its tokens file.
    let new = Command::new(bin_dir().join("toriictl"))
        .args([
            "token", "new", "--name", "reloaded", "--role", "operator", "--json",
        ])
        .output()
        .unwrap();
    assert!(new.status.success());
    let new: Value = serde_json::from_slice(&new.stdout).unwrap();
    let token = new["token"].as_str().unwrap().to_owned();
    assert_eq!(role_of(&gate, &token), None, "unknown before the reload");
    std::fs::write(
        &tokens_file,
        format!("{shipped}\n{}", new["entry"].as_str().unwrap()),
    )
    .unwrap();
    reload_and_wait_for(&mut gate, "\"config-reloaded\"");
    assert_eq!(role_of(&gate, &token).as_deref(), Some("operator"));
    let audit = audit_log(&gate);
    assert!(audit.contains("applied: http tokens"), "{audit}");

    // A drop-in that does not validate: refused, audited with the key, nothing changes.
    let drop_ins = gate.layout.work_dir.join("toriid.d");
    std::fs::create_dir_all(&drop_ins).unwrap();
    let bad = drop_ins.join("90-typo.toml");
    std::fs::write(&bad, "[flow]\nfinger_atempts = 2\n").unwrap();
    reload_and_wait_for(&mut gate, "\"config-reload-refused\"");
    let audit = audit_log(&gate);
    assert!(
        audit.contains("finger_atempts"),
        "the refusal names the key: {audit}"
    );
    assert_eq!(role_of(&gate, &token).as_deref(), Some("operator"));
    std::fs::remove_file(&bad).unwrap();

    // A flow change applies live; a listener change waits for a restart, and says so.
    std::fs::write(
        drop_ins.join("90-flow.toml"),
        "[flow]\nfinger_attempts = 2\n\n[http]\nlisten = \"127.0.0.1:1\"\n",
    )
    .unwrap();
    reload_and_wait_for(&mut gate, "\"config-reloaded\"");
    let audit = audit_log(&gate);
    assert!(
        audit.contains("applied: flow; waiting for a restart: http"),
        "{audit}"
    );
    assert!(gate.daemon_log().contains("flow configuration reloaded"));

    // The token removed (it leaked): refused from the next request on.
    std::fs::write(&tokens_file, &shipped).unwrap();
    reload_and_wait_for(&mut gate, "\"config-reloaded\"");
    assert_eq!(role_of(&gate, &token), None, "a removed token is refused");
    assert!(gate.toriictl(&["status"]).is_ok(), "still serving");
}
