//! The outbox's contract: order, idempotence, capacity, acknowledgement and retention,
//! stats, group commit under concurrency, tamper detection.

mod common;

use std::collections::HashSet;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::{db, open, open_with_retention, payload};
use rusqlite::Connection;
use torii_outbox::{Level, Outbox, OutboxConfig, OutboxError, RecordKey, RecordMeta, now_unix_ms};
use uuid::Uuid;

fn commit(outbox: &Outbox, created_at: i64) -> (Uuid, u64) {
    let id = Uuid::new_v4();
    let seq = outbox
        .commit_blocking(
            id,
            RecordMeta::new(created_at, "admitted"),
            &payload(id, 3000),
        )
        .unwrap();
    (id, seq)
}

#[tokio::test]
async fn committed_records_come_back_pending_in_seq_order_decrypted() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = open(dir.path(), 100);
    let mut committed = Vec::new();
    for i in 0..5 {
        let id = Uuid::new_v4();
        let outcome = if i % 2 == 0 {
            "admitted"
        } else {
            "referred:FP_MISMATCH"
        };
        let seq = outbox
            .commit(id, RecordMeta::new(1_000 + i, outcome), &payload(id, 2500))
            .await
            .unwrap();
        committed.push((seq, id, 1_000 + i, outcome));
    }
    assert!(committed.windows(2).all(|w| w[0].0 < w[1].0));

    let pending = outbox.pending(100).unwrap();
    assert_eq!(pending.len(), 5);
    for (p, (seq, id, created_at, outcome)) in pending.iter().zip(&committed) {
        assert_eq!((p.seq, p.record_id, p.created_at), (*seq, *id, *created_at));
        assert_eq!(p.outcome, *outcome);
        assert_eq!(p.acked_at, None);
        assert_eq!(p.payload, payload(*id, 2500));
    }
    assert_eq!(outbox.pending(2).unwrap().len(), 2);
    assert!(outbox.pending(0).unwrap().is_empty());

    // Nothing personal is stored in clear.
    drop(outbox);
    let bytes = std::fs::read(db(dir.path())).unwrap();
    let wal = std::fs::read(dir.path().join("outbox.db-wal")).unwrap_or_default();
    for haystack in [bytes, wal] {
        assert!(!haystack.windows(6).any(|w| w == b"TANAKA"));
    }
}

#[tokio::test]
async fn re_committing_a_record_id_returns_its_seq_and_stores_nothing_new() {
    let dir = tempfile::tempdir().unwrap();
    let id = Uuid::new_v4();
    let seq = {
        let outbox = open(dir.path(), 2);
        let seq = outbox
            .commit(id, RecordMeta::new(1, "admitted"), b"first")
            .await
            .unwrap();
        assert_eq!(
            outbox
                .commit(id, RecordMeta::new(2, "referred:X"), b"second")
                .await
                .unwrap(),
            seq
        );
        commit(&outbox, 3);
        // Full now, but the record that is already stored is still "committed".
        assert_eq!(outbox.stats().level, Level::Full);
        assert_eq!(
            outbox
                .commit_blocking(id, RecordMeta::new(1, "admitted"), b"first")
                .unwrap(),
            seq
        );
        let s = outbox.stats();
        assert_eq!((s.depth, s.committed_total), (2, 2));
        seq
    };
    // After a restart (the daemon died before noticing its commit) too.
    let outbox = open(dir.path(), 2);
    assert_eq!(
        outbox
            .commit(id, RecordMeta::new(1, "admitted"), b"first")
            .await
            .unwrap(),
        seq
    );
    let stored = outbox.get(id).unwrap().unwrap();
    assert_eq!(
        (
            stored.seq,
            stored.payload.as_slice(),
            stored.outcome.as_str()
        ),
        (seq, &b"first"[..], "admitted")
    );
    assert_eq!(outbox.pending(10).unwrap().len(), 2);
}

#[tokio::test]
async fn the_same_new_record_id_twice_in_one_batch_is_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = open(dir.path(), 100);
    let id = Uuid::new_v4();
    let (a, b) = tokio::join!(
        outbox.commit(id, RecordMeta::new(1, "admitted"), b"x"),
        outbox.commit(id, RecordMeta::new(1, "admitted"), b"x"),
    );
    assert_eq!(a.unwrap(), b.unwrap());
    assert_eq!(outbox.pending(10).unwrap().len(), 1);
}

#[test]
fn at_capacity_commits_fail_closed_until_central_acknowledges() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = open(dir.path(), 3);
    let ids: Vec<Uuid> = (0..3).map(|i| commit(&outbox, i).0).collect();
    let err = outbox
        .commit_blocking(Uuid::new_v4(), RecordMeta::now("admitted"), b"{}")
        .unwrap_err();
    assert!(matches!(err, OutboxError::Full { capacity: 3 }), "{err}");
    assert_eq!(outbox.stats().depth, 3);
    assert_eq!(outbox.pending(10).unwrap().len(), 3);

    assert_eq!(outbox.acknowledge(&ids[..1]).unwrap(), 1);
    commit(&outbox, 9);
    assert_eq!(outbox.stats().level, Level::Full);

    // Capacity holds across a restart (the depth is read back from the database).
    drop(outbox);
    let outbox = open(dir.path(), 3);
    assert_eq!(outbox.stats().depth, 3);
    assert!(matches!(
        outbox.commit_blocking(Uuid::new_v4(), RecordMeta::now("admitted"), b"{}"),
        Err(OutboxError::Full { capacity: 3 })
    ));
}

#[test]
fn stats_levels_and_oldest_pending() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = open(dir.path(), 10); // warn_fraction 0.8: Warning from 8
    let s = outbox.stats();
    assert_eq!(
        (s.depth, s.level, s.capacity, s.oldest_pending_created_at),
        (0, Level::Normal, 10, None)
    );

    let mut ids = Vec::new();
    for i in 0..10 {
        ids.push(commit(&outbox, 5_000 + i).0);
        let s = outbox.stats();
        assert_eq!(s.depth, i as u64 + 1);
        let expected = match s.depth {
            0..=7 => Level::Normal,
            8 | 9 => Level::Warning,
            _ => Level::Full,
        };
        assert_eq!(s.level, expected, "depth {}", s.depth);
        assert_eq!(s.oldest_pending_created_at, Some(5_000));
    }
    outbox.acknowledge(&ids[..3]).unwrap();
    let s = outbox.stats();
    assert_eq!((s.depth, s.level), (7, Level::Normal));
    assert_eq!(s.oldest_pending_created_at, Some(5_003));
    assert_eq!((s.committed_total, s.acknowledged_total), (10, 3));
    outbox.acknowledge(&ids).unwrap();
    assert_eq!(outbox.stats().oldest_pending_created_at, None);

    let json = serde_json::to_value(outbox.stats()).unwrap();
    assert_eq!(json["level"], "normal");

    let mut config = common::config(dir.path(), 4);
    config.warn_fraction = 0.5;
    drop(outbox);
    let outbox = Outbox::open(config).unwrap();
    commit(&outbox, 1);
    assert_eq!(outbox.stats().level, Level::Normal);
    commit(&outbox, 2);
    assert_eq!(outbox.stats().level, Level::Warning);
}

#[test]
fn acknowledged_records_are_kept_for_the_retention_period_then_purged() {
    let dir = tempfile::tempdir().unwrap();
    let hour = Duration::from_secs(3600);
    let outbox = open_with_retention(dir.path(), 100, hour);
    let (a, _) = commit(&outbox, 1);
    let (b, _) = commit(&outbox, 2);
    let (c, seq_c) = commit(&outbox, 3);

    assert_eq!(outbox.acknowledge(&[a, b, Uuid::new_v4()]).unwrap(), 2);
    assert_eq!(outbox.acknowledge(&[a]).unwrap(), 0, "already acknowledged");
    assert_eq!(outbox.acknowledge(&[]).unwrap(), 0);
    let pending = outbox.pending(10).unwrap();
    assert_eq!(pending.iter().map(|p| p.seq).collect::<Vec<_>>(), [seq_c]);

    // Still readable for the APIs, marked acknowledged.
    let now = now_unix_ms();
    let got = outbox.get(a).unwrap().unwrap();
    assert!(got.acked_at.unwrap() >= now - 60_000 && got.acked_at.unwrap() <= now);
    assert_eq!(got.payload, payload(a, 3000));
    let recent: Vec<Uuid> = outbox
        .recent(10)
        .unwrap()
        .iter()
        .map(|r| r.record_id)
        .collect();
    assert_eq!(recent, [c, b, a]);
    assert_eq!(outbox.recent(1).unwrap()[0].record_id, c);

    assert_eq!(outbox.purge(now_unix_ms()).unwrap(), 0, "within retention");
    assert_eq!(outbox.purge(now_unix_ms() + 2 * 3_600_000).unwrap(), 2);
    assert!(outbox.get(a).unwrap().is_none());
    assert!(outbox.get(b).unwrap().is_none());
    assert!(
        outbox.get(c).unwrap().is_some(),
        "pending records are never purged"
    );
    assert_eq!(outbox.purge(i64::MAX).unwrap(), 0);
    assert_eq!(outbox.stats().purged_total, 2);
}

#[test]
fn zero_retention_purges_on_acknowledge_and_seqs_are_never_reused() {
    let dir = tempfile::tempdir().unwrap();
    let last = {
        let outbox = open(dir.path(), 100);
        let rows: Vec<(Uuid, u64)> = (0..3).map(|i| commit(&outbox, i)).collect();
        let ids: Vec<Uuid> = rows.iter().map(|r| r.0).collect();
        assert_eq!(outbox.acknowledge(&ids).unwrap(), 3);
        assert!(outbox.recent(10).unwrap().is_empty());
        let s = outbox.stats();
        assert_eq!((s.depth, s.acknowledged_total, s.purged_total), (0, 3, 3));
        rows[2].1
    };
    // The newest rows were deleted; a new record still gets a higher seq, after restart too.
    let outbox = open(dir.path(), 100);
    let (_, seq) = commit(&outbox, 4);
    assert!(seq > last, "seq {seq} reused");
}

#[test]
fn many_concurrent_committers_all_land_with_distinct_seqs_in_shared_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = open(dir.path(), 100_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .build()
        .unwrap();
    const TASKS: usize = 64;
    const EACH: usize = 20;
    let results: Vec<(u64, Uuid)> = rt.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..TASKS {
            let outbox = outbox.clone();
            set.spawn(async move {
                let mut mine = Vec::new();
                for _ in 0..EACH {
                    let id = Uuid::new_v4();
                    let seq = outbox
                        .commit(id, RecordMeta::now("admitted"), &payload(id, 2048))
                        .await
                        .unwrap();
                    mine.push((seq, id));
                }
                // Each task's own commits are ordered.
                assert!(mine.windows(2).all(|w| w[0].0 < w[1].0));
                mine
            });
        }
        set.join_all().await.into_iter().flatten().collect()
    });
    let seqs: HashSet<u64> = results.iter().map(|r| r.0).collect();
    assert_eq!(seqs.len(), TASKS * EACH);

    let pending = outbox.pending(usize::MAX).unwrap();
    assert_eq!(pending.len(), TASKS * EACH);
    assert!(pending.windows(2).all(|w| w[0].seq < w[1].seq));
    let by_id: std::collections::HashMap<Uuid, u64> =
        results.iter().map(|&(s, i)| (i, s)).collect();
    for p in &pending {
        assert_eq!(by_id[&p.record_id], p.seq);
        assert_eq!(p.payload, payload(p.record_id, 2048));
    }

    let s = outbox.stats();
    assert_eq!(s.committed_total, (TASKS * EACH) as u64);
    assert!(
        s.write_transactions < s.committed_total && s.largest_batch > 1,
        "no group commit: {s:?}"
    );
    assert_eq!(s.queued, 0);
}

#[test]
fn blocking_commits_from_threads_and_from_inside_a_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = open(dir.path(), 1000);
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                for i in 0..10 {
                    commit(&outbox, i);
                }
            });
        }
    });
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async { commit(&outbox, 0) });
    assert_eq!(outbox.stats().depth, 81);
}

fn raw(dir: &std::path::Path) -> Connection {
    Connection::open(db(dir)).unwrap()
}

#[test]
fn an_altered_ciphertext_is_a_decrypt_error_naming_the_seq() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = open(dir.path(), 100);
    let rows: Vec<(Uuid, u64)> = (0..3).map(|i| commit(&outbox, i)).collect();
    drop(outbox);

    let (id, seq) = rows[1];
    let conn = raw(dir.path());
    let mut ct: Vec<u8> = conn
        .query_row(
            "SELECT ciphertext FROM records WHERE seq = ?1",
            [seq as i64],
            |r| r.get(0),
        )
        .unwrap();
    ct[100] ^= 0x01;
    conn.execute(
        "UPDATE records SET ciphertext = ?1 WHERE seq = ?2",
        rusqlite::params![ct, seq as i64],
    )
    .unwrap();
    drop(conn);

    let outbox = open(dir.path(), 100);
    let err = outbox.get(id).unwrap_err();
    assert!(
        matches!(err, OutboxError::Decrypt { seq: s } if s == seq),
        "{err}"
    );
    let shown = err.to_string();
    assert!(shown.contains(&format!("seq {seq}")), "{shown}");
    assert!(!shown.contains("TANAKA"));
    assert!(matches!(outbox.pending(10), Err(OutboxError::Decrypt { seq: s }) if s == seq));
    assert!(matches!(outbox.recent(10), Err(OutboxError::Decrypt { seq: s }) if s == seq));
    // The rows around it are fine.
    assert!(outbox.get(rows[0].0).unwrap().is_some());
    assert!(outbox.get(rows[2].0).unwrap().is_some());
    assert_eq!(outbox.pending(1).unwrap()[0].seq, rows[0].1);
}

#[test]
fn swapped_ciphertexts_and_rewritten_metadata_are_detected() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = open(dir.path(), 100);
    let rows: Vec<(Uuid, u64)> = (0..4).map(|i| commit(&outbox, i)).collect();
    drop(outbox);

    let conn = raw(dir.path());
    // Swap nonce and ciphertext (each a whole, valid encryption) between rows 1 and 2.
    let read = |seq: u64| -> (Vec<u8>, Vec<u8>) {
        conn.query_row(
            "SELECT nonce, ciphertext FROM records WHERE seq = ?1",
            [seq as i64],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
    };
    let (first, second) = (read(rows[0].1), read(rows[1].1));
    for (seq, (nonce, ct)) in [(rows[0].1, second), (rows[1].1, first)] {
        conn.execute(
            "UPDATE records SET nonce = ?1, ciphertext = ?2 WHERE seq = ?3",
            rusqlite::params![nonce, ct, seq as i64],
        )
        .unwrap();
    }
    // Turn a referral into an admission, and move a record in time.
    conn.execute(
        "UPDATE records SET outcome = 'referred:X' WHERE seq = ?1",
        [rows[2].1 as i64],
    )
    .unwrap();
    conn.execute(
        "UPDATE records SET created_at = created_at + 1 WHERE seq = ?1",
        [rows[3].1 as i64],
    )
    .unwrap();
    drop(conn);

    let outbox = open(dir.path(), 100);
    for (id, seq) in rows {
        let err = outbox.get(id).unwrap_err();
        assert!(
            matches!(err, OutboxError::Decrypt { seq: s } if s == seq),
            "{err}"
        );
    }
}

#[test]
fn one_outbox_per_database() {
    let dir = tempfile::tempdir().unwrap();
    let first = open(dir.path(), 10);
    let err = Outbox::open(common::config(dir.path(), 10)).unwrap_err();
    assert!(matches!(err, OutboxError::Locked { .. }), "{err}");
    drop(first);
    open(dir.path(), 10);
}

#[test]
fn the_database_is_private_and_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = open(dir.path(), 10);
    let (id, seq) = commit(&outbox, 1);
    let mode = std::fs::metadata(db(dir.path()))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    drop(outbox);
    let conn = raw(dir.path());
    let (journal, check): (String, String) = (
        conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap(),
        conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap(),
    );
    assert_eq!((journal.as_str(), check.as_str()), ("wal", "ok"));
    drop(conn);
    let outbox = open(dir.path(), 10);
    assert_eq!(outbox.get(id).unwrap().unwrap().seq, seq);
}

#[test]
fn the_pending_query_uses_the_partial_index() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path(), 10));
    let conn = raw(dir.path());
    let plan: Vec<String> = conn
        .prepare("EXPLAIN QUERY PLAN SELECT seq FROM records WHERE acked_at IS NULL ORDER BY seq LIMIT 500")
        .unwrap()
        .query_map([], |r| r.get::<_, String>(3))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(
        plan.iter().any(|p| p.contains("records_pending")),
        "{plan:?}"
    );
}

#[test]
fn outcome_labels_and_configuration_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = open(dir.path(), 10);
    for bad in ["", "TANAKA Hanako", "referred:氏名", &"x".repeat(65)] {
        let err = outbox
            .commit_blocking(Uuid::new_v4(), RecordMeta::now(bad), b"{}")
            .unwrap_err();
        assert!(matches!(err, OutboxError::Outcome(_)), "{err}");
        assert!(bad.is_empty() || !err.to_string().contains(bad));
    }
    assert_eq!(outbox.stats().depth, 0);
    drop(outbox);

    let key = || RecordKey::from_bytes(common::KEY);
    let path = db(dir.path());
    assert!(matches!(
        Outbox::open(OutboxConfig::new(&path, key(), 0)),
        Err(OutboxError::Config(_))
    ));
    for fraction in [0.0, 1.5, f64::NAN] {
        let mut c = OutboxConfig::new(&path, key(), 10);
        c.warn_fraction = fraction;
        assert!(matches!(Outbox::open(c), Err(OutboxError::Config(_))));
    }
    let missing_dir = dir.path().join("no/such/dir/outbox.db");
    assert!(Outbox::open(OutboxConfig::new(missing_dir, key(), 10)).is_err());
}
