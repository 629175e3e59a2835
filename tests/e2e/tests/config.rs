//! The daemon binary refuses a bad configuration, naming the file and the key.

use std::process::Command;

use torii_e2e::bin_dir;

#[test]
fn a_bad_drop_in_stops_the_daemon_naming_the_file_and_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("toriid.toml");
    std::fs::write(
        &config,
        "[gate]\nid = \"T-01\"\nlane = \"entry\"\n[http]\nlisten = \"\"\nsocket = \"\"\n",
    )
    .unwrap();
    let drop_ins = dir.path().join("toriid.d");
    std::fs::create_dir(&drop_ins).unwrap();
    std::fs::write(
        drop_ins.join("10-vendor.toml"),
        "[gate]\nlane = \"sideways\"\n",
    )
    .unwrap();
    for subcommand in ["check-config", "run"] {
        let output = Command::new(bin_dir().join("toriid"))
            .arg(subcommand)
            .arg("--config")
            .arg(&config)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !output.status.success(),
            "{subcommand} accepted a bad config"
        );
        assert!(
            stderr.contains("10-vendor.toml"),
            "{subcommand}: file named: {stderr}"
        );
        assert!(
            stderr.contains("gate.lane"),
            "{subcommand}: key named: {stderr}"
        );
    }
}
