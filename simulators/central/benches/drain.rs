//! How fast a gate's backlog reaches central: records committed to a real outbox
//! (fsync, encrypted), then forwarded by torii-link's forwarder over mutual TLS 1.3 to
//! the central simulator on loopback until the outbox is empty.
//!
//! `cargo bench -p torii-central --bench drain` — prints figures, asserts nothing.
//! `TORII_DRAIN_RECORDS` sets the backlog (default 20 000; the issue's figure is
//! 100 000: `TORII_DRAIN_RECORDS=100000`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use torii_central::{Central, CentralConfig, pki};
use torii_link::{CentralClient, ClientOptions, ClientTls, Forwarder, ForwarderConfig, TlsFiles};
use torii_outbox::{Outbox, OutboxConfig, RecordKey, RecordMeta};
use uuid::Uuid;

/// A record of realistic size without a face photo (~3 KiB of JSON).
fn payload(i: u64) -> Vec<u8> {
    let filler = "x".repeat(2800);
    format!(
        r#"{{"record_id":"{}","gate_id":"BENCH-01","seq_hint":{i},"outcome":"admitted","filler":"{filler}"}}"#,
        Uuid::new_v4()
    )
    .into_bytes()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let records: u64 = std::env::var("TORII_DRAIN_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let dir = tempfile::tempdir().unwrap();
    let pki = pki::generate(&dir.path().join("pki"), "BENCH-01", false).unwrap();
    let outbox = Outbox::open(OutboxConfig::new(
        dir.path().join("outbox.db"),
        RecordKey::generate(),
        records + 10,
    ))
    .unwrap();

    // Fill the backlog as a busy gate would: 64 committers sharing fsyncs.
    let started = Instant::now();
    let per_task = records.div_ceil(64);
    let mut tasks = Vec::new();
    for t in 0..64 {
        let outbox = outbox.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..per_task {
                let n = t * per_task + i;
                if n >= records {
                    break;
                }
                outbox
                    .commit(Uuid::new_v4(), RecordMeta::now("admitted"), &payload(n))
                    .await
                    .unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let fill = started.elapsed();

    let central = Central::start(CentralConfig::from_pki(
        &pki,
        "127.0.0.1:0".parse().unwrap(),
        "127.0.0.1:0".parse().unwrap(),
    ))
    .await
    .unwrap();
    let tls = Arc::new(
        ClientTls::new(TlsFiles {
            ca: pki.ca_cert(),
            client_certificate: pki.gate_cert(),
            client_key: pki.gate_key(),
        })
        .unwrap(),
    );
    let client = Arc::new(CentralClient::new(&ClientOptions::new(central.url()), tls).unwrap());

    let mut results = Vec::new();
    for batch in [100usize, 500] {
        if batch == 500 {
            // Second pass: the same backlog again, with the largest batch central takes.
            central.reset_records();
            for i in 0..records {
                outbox
                    .commit(Uuid::new_v4(), RecordMeta::now("admitted"), &payload(i))
                    .await
                    .unwrap();
            }
        }
        let mut config = ForwarderConfig::new("BENCH-01");
        config.max_batch = batch;
        config.poll_interval = Duration::from_millis(50);
        let started = Instant::now();
        let forwarder = Forwarder::new(config, Arc::new(outbox.clone()), client.clone()).spawn();
        forwarder.wake();
        while outbox.stats().depth > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let drain = started.elapsed();
        forwarder.stop().await;
        assert_eq!(central.stats().records, records);
        results.push((batch, drain));
    }

    println!("backlog: {records} records of ~3 KiB (encrypted, fsync'd outbox on this disk)");
    println!(
        "  committed (64 committers, group commit): {:>8.0} records/s ({:.1} s)",
        records as f64 / fill.as_secs_f64(),
        fill.as_secs_f64()
    );
    for (batch, drain) in &results {
        println!(
            "  forwarded over mTLS 1.3, batch {batch:>3}:     {:>8.0} records/s (drained in {:.1} s; {:.2}x the commit rate)",
            records as f64 / drain.as_secs_f64(),
            drain.as_secs_f64(),
            fill.as_secs_f64() / drain.as_secs_f64(),
        );
    }
    println!(
        "  100 000-record backlog at batch 500, extrapolated: {:.0} s",
        results[1].1.as_secs_f64() * 100_000.0 / records as f64
    );
    central.shutdown().await;
}
