//! The disk under the outbox fills up. The outbox database lives on a small tmpfs
//! mounted for the test (root only: CI runs as root); a filler file takes the rest.
//! Fail closed: the traveler whose record cannot be stored is referred
//! RECORD_NOT_STORED and the exit door never opens; the lane closes
//! (`record-store-unavailable`) and the outbox alarm is audited. Space freed, the lane
//! reopens by itself, the referral's record (held in memory meanwhile) is stored, the
//! next traveler passes, and every record reaches central exactly once, in order.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::{
    FAST, accepting, assert_all_delivered_once_in_order, audit_log, eventually, interlocks, lane,
    one_traveler, suite, watching_doors,
};
use torii_e2e::{Gate, GateOptions, PATIENCE};

/// A tmpfs mounted on a temp dir, unmounted (lazily: the daemon may still be closing
/// its files) when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> SmallDisk {
        assert!(
            effective_uid() == Some(0),
            "disk_full mounts a tmpfs and must run as root (CI does): run the e2e tests as \
             root, e.g. in the CI container"
        );
        let dir = tempfile::Builder::new()
            .prefix("torii-disk-")
            .tempdir_in("/tmp")
            .unwrap();
        let status = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir.path())
            .status()
            .expect("run mount");
        assert!(status.success(), "mount -t tmpfs failed: {status}");
        SmallDisk { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a filler file until the filesystem refuses (ENOSPC).
    fn fill(&self) -> PathBuf {
        let path = self.path().join("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        let chunk = vec![0xA5u8; 16 * 1024];
        loop {
            match file.write(&chunk) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(nix::libc::ENOSPC) => break,
                Err(e) => panic!("filling {}: {e}", path.display()),
            }
        }
        // Whatever is left in smaller pieces too.
        while file.write(&[0xA5u8; 512]).is_ok_and(|n| n > 0) {}
        let _ = file.sync_all();
        path
    }
}

/// The effective uid (`Uid:` real, effective, … in /proc/self/status).
fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

#[test]
fn a_full_disk_under_the_outbox_refers_closes_the_lane_and_recovers_when_freed() {
    // Declared first, dropped last: unmounted after the gate stopped.
    let disk = SmallDisk::mount("2m");
    let database = disk.path().join("outbox.db");
    let gate = Gate::start_with(GateOptions {
        scenario: Some(suite()),
        drop_in: Some(format!("{FAST}[outbox]\ndatabase = {:?}\n", database)),
        ..GateOptions::default()
    });
    eventually(&gate, PATIENCE, "the lane open", accepting);
    assert!(database.exists(), "the outbox is on the small disk");

    // Full before the first record: nothing in the database or its WAL to reuse.
    let filler = disk.fill();
    let audit_before = audit_log(&gate).len();
    let passed_before = lane(&gate)["passed"].as_u64().unwrap();
    let (output, doors) = watching_doors(&gate, || one_traveler(&gate, &suite(), "alice"));
    assert!(
        output.contains("RECORD_NOT_STORED"),
        "referred: the record could not be stored: {output}"
    );
    assert!(
        !doors.exit_opened,
        "the exit door opened on a record not stored"
    );
    assert!(!doors.both_open);
    assert_eq!(lane(&gate)["passed"].as_u64().unwrap(), passed_before);

    // The lane closes and says why; the alarm is audited.
    eventually(&gate, PATIENCE, "the record-store interlock", |g| {
        interlocks(g) == ["record-store-unavailable"]
    });
    eventually(&gate, PATIENCE, "the outbox alarm audited", |g| {
        audit_log(g)[audit_before..].contains("outbox storage failing")
    });
    assert!(
        audit_log(&gate)[audit_before..].contains("\"kind\":\"outbox-alarm\""),
        "{}",
        &audit_log(&gate)[audit_before..]
    );
    let referral = gate.toriictl(&["gate"]).unwrap()["last"]["record_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Space again: the lane reopens by itself, the held referral is stored and sent.
    std::fs::remove_file(&filler).unwrap();
    eventually(&gate, PATIENCE, "the lane open again", accepting);
    eventually(&gate, PATIENCE, "the recovery audited", |g| {
        audit_log(g)[audit_before..].contains("outbox storage writable again")
    });
    eventually(&gate, PATIENCE, "the referral's record at central", |g| {
        support::at_central(g, std::slice::from_ref(&referral))
    });
    let output = one_traveler(&gate, &suite(), "alice");
    assert!(output.contains("PASS alice"), "{output}");

    assert_all_delivered_once_in_order(&gate);
}
