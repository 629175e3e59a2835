//! Shared by the plugin contract tests.

/// Runs the ignored test `child` of this test binary in a child process with
/// `TORII_TEST_MARKER` pointing at a fresh path — set for the whole process, isolated
/// driver hosts included — and returns whether the child passed and whether the marker
/// was written (i.e. whether a refused library's constructor ran after all).
pub fn run_child_with_marker(child: &str) -> (bool, bool) {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("code-ran");
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", child, "--ignored", "--test-threads=1"])
        .env("TORII_TEST_MARKER", &marker)
        .status()
        .unwrap();
    (status.success(), marker.exists())
}
