//! Crash safety: whatever `commit` confirmed before the process was SIGKILLed is in the
//! outbox afterwards, decryptable, with strictly increasing, never reused seqs.
//!
//! The test re-runs its own binary as a child (the ignored test below, selected with an
//! environment variable). The child commits records from many tasks at once (so kills
//! land in the middle of group-commit transactions) while a forwarder acknowledges some,
//! and prints `SEQ <seq> <record_id>` each time a commit returns. The parent kills it
//! at a random point, reopens the outbox, and checks every printed record.
//!
//! A SIGKILL leaves the kernel's page cache intact, so this proves the transaction
//! logic (nothing confirmed is lost or half-written, nothing is duplicated), not the
//! disk's honouring of fsync on power loss, which no test on this machine can show.

mod common;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rand::Rng;
use torii_outbox::{Outbox, OutboxConfig, RecordKey, RecordMeta};
use uuid::Uuid;

const CHILD_DIR: &str = "TORII_OUTBOX_CRASH_CHILD_DIR";
const CHILD_TEST: &str = "child_commits_until_killed";
const RETENTION: Duration = Duration::from_secs(86_400);

fn payload_size(id: Uuid) -> usize {
    2048 + usize::from(id.as_bytes()[0]) * 8
}

fn open(dir: &Path) -> Outbox {
    let mut config = OutboxConfig::new(
        common::db(dir),
        RecordKey::from_bytes(common::KEY),
        1_000_000,
    );
    config.retention = RETENTION;
    Outbox::open(config).unwrap()
}

/// The child's body; does nothing unless started by the test below.
#[test]
#[ignore = "run as a child process by every_confirmed_commit_survives_sigkill"]
fn child_commits_until_killed() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let outbox = open(Path::new(&dir));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(60); // never outlive a dead parent
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..16 {
            let outbox = outbox.clone();
            set.spawn(async move {
                while Instant::now() < deadline {
                    let id = Uuid::new_v4();
                    let body = common::payload(id, payload_size(id));
                    let seq = outbox
                        .commit(id, RecordMeta::now("admitted"), &body)
                        .await
                        .unwrap();
                    // One write(2) per line: the line is in the pipe before the next commit.
                    println!("SEQ {seq} {id}");
                }
            });
        }
        // A forwarder acknowledging as it goes, so kills also hit acknowledge transactions.
        let forwarder = outbox.clone();
        set.spawn(async move {
            while Instant::now() < deadline {
                let o = forwarder.clone();
                tokio::task::spawn_blocking(move || {
                    let batch = o.pending(50).unwrap();
                    let ids: Vec<Uuid> = batch.iter().step_by(2).map(|p| p.record_id).collect();
                    o.acknowledge(&ids).unwrap();
                })
                .await
                .unwrap();
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        });
        set.join_all().await;
    });
}

#[test]
fn every_confirmed_commit_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = rand::rng();
    let mut confirmed: HashMap<Uuid, u64> = HashMap::new();
    let mut max_seq_before = 0u64;

    for round in 0..4 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                CHILD_TEST,
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DIR, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let kill_after = rng.random_range(1..600);
        let mut lines = Vec::new();
        let mut line = String::new();
        while lines.len() < kill_after {
            line.clear();
            assert!(
                out.read_line(&mut line).unwrap() > 0,
                "round {round}: the child stopped after {} lines (see its stderr)",
                lines.len()
            );
            if line.starts_with("SEQ ") {
                lines.push(line.clone());
            }
        }
        std::thread::sleep(Duration::from_micros(rng.random_range(0..20_000)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        // Whatever the child printed before it died is still in the pipe.
        loop {
            line.clear();
            if out.read_line(&mut line).unwrap() == 0 {
                break;
            }
            if line.starts_with("SEQ ") && line.ends_with('\n') {
                lines.push(line.clone());
            }
        }

        let mut round_seqs = HashSet::new();
        for l in &lines {
            let mut parts = l.split_whitespace().skip(1);
            let seq: u64 = parts.next().unwrap().parse().unwrap();
            let id: Uuid = parts.next().unwrap().parse().unwrap();
            assert!(seq > max_seq_before, "round {round}: seq {seq} reused");
            assert!(
                round_seqs.insert(seq),
                "round {round}: seq {seq} confirmed twice"
            );
            assert!(confirmed.insert(id, seq).is_none());
        }

        let outbox = open(dir.path());
        for (&id, &seq) in &confirmed {
            let record = outbox
                .get(id)
                .unwrap()
                .unwrap_or_else(|| panic!("round {round}: confirmed seq {seq} lost"));
            assert_eq!(record.seq, seq);
            assert_eq!(record.payload, common::payload(id, payload_size(id)));
        }
        // Everything stored (confirmed or not) decrypts, once per id, in seq order.
        let all = outbox.recent(usize::MAX).unwrap();
        assert!(all.windows(2).all(|w| w[0].seq > w[1].seq));
        let ids: HashSet<Uuid> = all.iter().map(|r| r.record_id).collect();
        assert_eq!(ids.len(), all.len());
        let pending = outbox.pending(usize::MAX).unwrap();
        assert_eq!(outbox.stats().depth, pending.len() as u64);
        assert!(pending.iter().all(|p| p.acked_at.is_none()));
        max_seq_before = all.first().map_or(0, |r| r.seq);
        eprintln!(
            "round {round}: killed after {} confirmed lines; {} stored, {} pending",
            lines.len(),
            all.len(),
            pending.len()
        );
        drop(outbox);

        let conn = rusqlite::Connection::open(common::db(dir.path())).unwrap();
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok");
    }
    assert!(!confirmed.is_empty());
}
