//! `cargo bench -p torii-outbox --bench commit`: what group commit buys, and how fast a
//! backlog drains. Prints figures; asserts nothing about time.
//!
//! 1. Records/s committed with fsync, (a) one at a time, each awaited before the next,
//!    (b) by 64 concurrent committers (group commit), and the ratio b/a from the same run.
//! 2. Draining a backlog the way the forwarder does: `pending(500)` + `acknowledge` until
//!    empty (retention zero, so acknowledged rows are deleted as it goes).
//!
//! Both with ~3 KiB payloads (a record without photo) and ~40 KiB (with a face photo).
//! Environment:
//! - `TORII_OUTBOX_BENCH_DIR`: where the databases go (default: the target's tmp dir;
//!   put it on the disk you care about, not on tmpfs where fsync is free).
//! - `TORII_OUTBOX_BENCH_BIG=1`: bigger runs (more commits; a 100k backlog for the
//!   40 KiB payloads too, ~4 GB of disk).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use torii_outbox::{Outbox, OutboxConfig, RecordKey, RecordMeta};
use uuid::Uuid;

const CONCURRENCY: usize = 64;
const SMALL: usize = 3 * 1024;
const PHOTO: usize = 40 * 1024;

struct Scale {
    sequential: usize,
    concurrent_each: usize,
    backlog_small: usize,
    backlog_photo: usize,
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is accepted and ignored.
    let big = std::env::var("TORII_OUTBOX_BENCH_BIG").is_ok_and(|v| v == "1");
    let scale = if big {
        Scale {
            sequential: 2_000,
            concurrent_each: 300,
            backlog_small: 100_000,
            backlog_photo: 100_000,
        }
    } else {
        Scale {
            sequential: 300,
            concurrent_each: 60,
            backlog_small: 100_000,
            backlog_photo: 10_000,
        }
    };
    let base = std::env::var_os("TORII_OUTBOX_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")));
    std::fs::create_dir_all(&base).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();

    println!(
        "torii-outbox commit benchmark (databases under {})",
        base.display()
    );
    for (label, size, backlog) in [
        ("3 KiB", SMALL, scale.backlog_small),
        ("40 KiB", PHOTO, scale.backlog_photo),
    ] {
        println!("\npayload {label}:");
        let dir = tempfile::tempdir_in(&base).unwrap();
        let outbox = open(dir.path(), 1_000_000);

        let n = scale.sequential;
        let t = Instant::now();
        rt.block_on(async {
            for _ in 0..n {
                commit(&outbox, size).await;
            }
        });
        let seq_rate = rate(n, t.elapsed());
        println!(
            "  (a) one at a time:          {n:>7} records in {:>8.3} s = {seq_rate:>9.0} records/s",
            t.elapsed().as_secs_f64()
        );

        let before = outbox.stats();
        let n = CONCURRENCY * scale.concurrent_each;
        let t = Instant::now();
        rt.block_on(committers(
            &outbox,
            CONCURRENCY,
            scale.concurrent_each,
            size,
        ));
        let elapsed = t.elapsed();
        let after = outbox.stats();
        let txns = after.write_transactions - before.write_transactions;
        let group_rate = rate(n, elapsed);
        println!(
            "  (b) {CONCURRENCY} concurrent:          {n:>7} records in {:>8.3} s = {group_rate:>9.0} records/s \
             ({txns} transactions, {:.1} records/fsync, largest {})",
            elapsed.as_secs_f64(),
            n as f64 / txns as f64,
            after.largest_batch
        );
        println!(
            "      group commit speed-up b/a: {:.1}x",
            group_rate / seq_rate
        );
        drop(outbox);
        drop(dir);

        // Backlog drain.
        let dir = tempfile::tempdir_in(&base).unwrap();
        let outbox = open(dir.path(), backlog as u64 + 1);
        let t = Instant::now();
        rt.block_on(committers(&outbox, 256, backlog / 256, size));
        let rest = backlog % 256;
        rt.block_on(committers(
            &outbox,
            rest.max(1),
            usize::from(rest > 0),
            size,
        ));
        let fill = t.elapsed();
        let depth = outbox.stats().depth as usize;
        println!(
            "  (c) backlog of {depth} filled by 256 committers in {:.2} s ({:.0} records/s, {:.0} MiB/s)",
            fill.as_secs_f64(),
            rate(depth, fill),
            (depth * size) as f64 / fill.as_secs_f64() / (1024.0 * 1024.0)
        );
        let t = Instant::now();
        let mut drained = 0usize;
        let mut batches = 0usize;
        let mut in_pending = Duration::ZERO;
        loop {
            let p = Instant::now();
            let batch = outbox.pending(500).unwrap();
            in_pending += p.elapsed();
            if batch.is_empty() {
                break;
            }
            let ids: Vec<Uuid> = batch.iter().map(|p| p.record_id).collect();
            drained += outbox.acknowledge(&ids).unwrap();
            batches += 1;
        }
        let drain = t.elapsed();
        assert_eq!(drained, depth);
        println!(
            "      drained with pending(500)+acknowledge in {:.2} s ({batches} rounds, {:.0} records/s, \
             {:.1} ms/round of which pending {:.1} ms)",
            drain.as_secs_f64(),
            rate(drained, drain),
            drain.as_secs_f64() * 1000.0 / batches as f64,
            in_pending.as_secs_f64() * 1000.0 / batches as f64
        );
    }
}

fn open(dir: &Path, capacity: u64) -> Outbox {
    Outbox::open(OutboxConfig::new(
        dir.join("outbox.db"),
        RecordKey::generate(),
        capacity,
    ))
    .unwrap()
}

async fn commit(outbox: &Outbox, size: usize) {
    // The body is made once per size: its content does not matter to the outbox, and
    // making 40 KiB of JSON per record would measure the benchmark, not the outbox.
    static BODIES: OnceLock<Mutex<HashMap<usize, Arc<Vec<u8>>>>> = OnceLock::new();
    let body = BODIES
        .get_or_init(Default::default)
        .lock()
        .unwrap()
        .entry(size)
        .or_insert_with(|| Arc::new(record_json(Uuid::new_v4(), size)))
        .clone();
    outbox
        .commit(Uuid::new_v4(), RecordMeta::now("admitted"), &body)
        .await
        .unwrap();
}

async fn committers(outbox: &Outbox, tasks: usize, each: usize, size: usize) {
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..tasks {
        let outbox = outbox.clone();
        set.spawn(async move {
            for _ in 0..each {
                commit(&outbox, size).await;
            }
        });
    }
    set.join_all().await;
}

/// A record-shaped JSON document of about `size` bytes (a base64 "photo" fills it up).
fn record_json(id: Uuid, size: usize) -> Vec<u8> {
    let head = format!(
        r#"{{"record_id":"{id}","lane":"E01","outcome":{{"outcome":"admitted"}},"document":{{"type":"P","issuer":"JPN","number":"TR1234567","surname":"TANAKA","given_names":"HANAKO","birth_date":"1990-01-01","expiry":"2030-01-01"}},"checks":["chip_ok","pa_ok","face_match:0.91"],"face_jpeg":""#
    );
    let fill = size.saturating_sub(head.len() + 2);
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let seed = id.as_u128();
    let photo: String = (0..fill)
        .map(|i| char::from(alphabet[((seed >> (i % 64)) as usize ^ i) % 64]))
        .collect();
    format!(r#"{head}{photo}"}}"#).into_bytes()
}

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}
