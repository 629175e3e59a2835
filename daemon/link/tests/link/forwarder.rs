//! The record forwarder: order, acknowledgement, retries, conflicts, backoff, wake, stop.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use torii_link::protocol::{RecordAck, RecordBatch, RegistryPage, RevocationPage};
use torii_link::{
    Backoff, BackoffConfig, Central, ErrorKind, Forwarder, ForwarderConfig, ForwarderHandle,
    ForwarderStatus, LinkError, LinkEvent, PostOutcome,
};
use uuid::Uuid;

use crate::common::*;

fn config(max_batch: usize) -> ForwarderConfig {
    ForwarderConfig {
        max_batch,
        poll_interval: Duration::from_secs(30),
        backoff: BackoffConfig {
            base: Duration::from_millis(500),
            max: Duration::from_secs(20),
        },
        rng_seed: Some(7),
        ..ForwarderConfig::new("NRT-T1-E01")
    }
}

async fn until(handle: &ForwarderHandle, condition: impl Fn(&ForwarderStatus) -> bool) {
    let mut status = handle.status();
    tokio::time::timeout(Duration::from_secs(86_400), status.wait_for(condition))
        .await
        .expect("forwarder status not reached")
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn records_are_forwarded_in_order_in_batches_and_acknowledged() {
    let setup = Setup::memory().await;
    let outbox = Arc::new(MemoryOutbox::default());
    for _ in 0..7 {
        outbox.commit();
    }
    let events = Events::default();
    let handle = Forwarder::new(config(3), outbox.clone(), setup.client())
        .with_hook(events.hook())
        .spawn();
    until(&handle, |s| s.forwarded_total == 7).await;
    assert_eq!(outbox.len(), 0);
    {
        let state = setup.central.state.lock().unwrap();
        assert_eq!(state.batches, vec![vec![1, 2, 3], vec![4, 5, 6], vec![7]]);
        assert_eq!(state.stored_seqs(), (1..=7).collect::<Vec<_>>());
        assert_eq!(state.stored[0].record["kind"], "entry");
    }
    let status = handle.status().borrow().clone();
    assert_eq!(status.batches_total, 3);
    assert_eq!(status.consecutive_failures, 0);
    assert_eq!(status.last_forwarded_seq, Some(7));
    assert!(status.last_success.is_some());
    assert!(status.errors_by_kind.is_empty());
    let forwarded: Vec<String> = events.all().iter().map(|e| e.to_string()).collect();
    assert_eq!(
        forwarded,
        [
            "records-forwarded: 3 records, seq 1..3",
            "records-forwarded: 3 records, seq 4..6",
            "records-forwarded: 1 records, seq 7..7",
        ]
    );
    handle.stop().await;
}

/// The same over TCP, in real time (the paused-clock tests run over in-memory pipes).
#[tokio::test]
async fn records_are_forwarded_over_tcp() {
    let setup = Setup::new().await;
    let outbox = Arc::new(MemoryOutbox::default());
    for _ in 0..5 {
        outbox.commit();
    }
    let handle = Forwarder::new(config(2), outbox.clone(), setup.client()).spawn();
    // A hang guard only.
    until(&handle, |s| s.forwarded_total == 5).await;
    assert_eq!(
        setup.central.state.lock().unwrap().stored_seqs(),
        vec![1, 2, 3, 4, 5]
    );
    assert_eq!(outbox.len(), 0);
    handle.stop().await;
}

#[tokio::test(start_paused = true)]
async fn when_central_is_down_the_backlog_waits_and_drains_in_order_when_it_is_back() {
    let setup = Setup::memory().await;
    let outbox = Arc::new(MemoryOutbox::default());
    outbox.commit();
    outbox.commit();
    let handle = Forwarder::new(config(4), outbox.clone(), setup.client()).spawn();
    until(&handle, |s| s.forwarded_total == 2).await;

    let Setup { central, net, .. } = setup;
    let net = net.unwrap();
    let (_, server_config, state) = central.shutdown().await;
    for _ in 0..9 {
        outbox.commit();
    }
    handle.wake();
    until(&handle, |s| s.consecutive_failures >= 4).await;
    {
        let status = handle.status().borrow().clone();
        assert_eq!(status.last_error_kind, Some(ErrorKind::Connect));
        assert!(status.errors_by_kind[&ErrorKind::Connect] >= 4);
        assert_eq!(status.forwarded_total, 2);
    }
    assert_eq!(outbox.len(), 9, "nothing leaves the outbox unacknowledged");

    let central = TestCentral::start_memory(&net, server_config, state);
    until(&handle, |s| s.forwarded_total == 11).await;
    assert_eq!(outbox.len(), 0);
    let state = central.state.lock().unwrap();
    assert_eq!(state.stored_seqs(), (1..=11).collect::<Vec<_>>());
    assert_eq!(handle.status().borrow().consecutive_failures, 0);
}

#[tokio::test(start_paused = true)]
async fn errors_and_dropped_connections_are_retried_and_nothing_is_stored_twice() {
    let setup = Setup::memory().await;
    let outbox = Arc::new(MemoryOutbox::default());
    for _ in 0..5 {
        outbox.commit();
    }
    setup.central.state.lock().unwrap().faults.extend([
        Fault::Status(500),
        Fault::Drop,
        // Central stores the batch but the answer is lost: the resend is acknowledged
        // again, stored once.
        Fault::StoreThenDrop,
        Fault::Status(503),
        // A 409 that is not out-of-order (a record id held with another body).
        Fault::Status(409),
    ]);
    let handle = Forwarder::new(config(2), outbox.clone(), setup.client()).spawn();
    until(&handle, |s| outbox.len() == 0 && s.forwarded_total >= 5).await;
    let state = setup.central.state.lock().unwrap();
    assert_eq!(state.stored_seqs(), vec![1, 2, 3, 4, 5]);
    let status = handle.status().borrow().clone();
    assert_eq!(status.errors_by_kind[&ErrorKind::Http], 2);
    // The plain drop hit a kept-alive connection (after the 500), so the client made the
    // request again on a fresh one at once, where central stored and dropped: one lost
    // connection reported.
    assert_eq!(status.errors_by_kind[&ErrorKind::Connect], 1);
    assert_eq!(status.errors_by_kind[&ErrorKind::Conflict], 1);
    assert_eq!(status.consecutive_failures, 0);
    // Every batch after a failure began with the oldest unacknowledged record.
    assert_eq!(state.batches.first(), Some(&vec![1, 2]));
    assert!(state.batches.windows(2).all(|w| w[1][0] >= w[0][0]));
}

#[tokio::test(start_paused = true)]
async fn an_out_of_order_answer_acknowledges_what_central_took_and_reports_the_conflict() {
    let setup = Setup::memory().await;
    let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    {
        // Central already holds seqs 1..3 (records a, b, c).
        let mut state = setup.central.state.lock().unwrap();
        state.ids.extend([a, b, c]);
        state.last_seq = 3;
    }
    // The gate's outbox (restored from an old backup, say) holds a and b, then a new
    // record under seq 3, and one more.
    let outbox = Arc::new(MemoryOutbox::default());
    outbox.insert(1, a);
    outbox.insert(2, b);
    let d = Uuid::new_v4();
    outbox.insert(3, d);
    outbox.insert(4, Uuid::new_v4());
    let events = Events::default();
    let handle = Forwarder::new(config(10), outbox.clone(), setup.client())
        .with_hook(events.hook())
        .spawn();
    until(&handle, |s| s.consecutive_failures >= 3).await;
    assert_eq!(outbox.seqs(), vec![3, 4], "a and b acknowledged");
    let status = handle.status().borrow().clone();
    let conflict = status.conflict.unwrap();
    assert_eq!(
        (conflict.record_id, conflict.seq, conflict.central_last_seq),
        (d, 3, 3)
    );
    assert_eq!(status.last_error_kind, Some(ErrorKind::Conflict));
    assert_eq!(
        events.named("record-seq-conflict").len(),
        1,
        "reported once"
    );

    // Not looped hot: over ten minutes, a bounded number of tries.
    let before = setup.central.state.lock().unwrap().record_requests();
    tokio::time::sleep(Duration::from_secs(600)).await;
    let tries = setup.central.state.lock().unwrap().record_requests() - before;
    assert!((5..=200).contains(&tries), "{tries} tries in 10 minutes");
    assert_eq!(events.named("record-seq-conflict").len(), 1);

    // Someone resolves it at central: the records go through, the conflict clears.
    setup.central.state.lock().unwrap().last_seq = 2;
    until(&handle, |s| {
        s.conflict.is_none() && s.consecutive_failures == 0
    })
    .await;
    until(&handle, |_| outbox.len() == 0).await;
    assert_eq!(
        setup.central.state.lock().unwrap().stored_seqs(),
        vec![3, 4]
    );
}

#[tokio::test(start_paused = true)]
async fn a_central_with_the_wrong_certificate_gets_nothing_and_nothing_is_acknowledged() {
    let setup = Setup::memory().await;
    let impostor = Authority::new("Impostor CA");
    let net = setup.net.clone().unwrap();
    let central = TestCentral::start_memory(
        &net,
        server_config(&impostor.server(), &setup.ca),
        SharedState::default(),
    );
    let outbox = Arc::new(MemoryOutbox::default());
    outbox.commit();
    outbox.commit();
    let handle = Forwarder::new(config(10), outbox.clone(), setup.client()).spawn();
    until(&handle, |s| s.consecutive_failures >= 2).await;
    let status = handle.status().borrow().clone();
    assert_eq!(status.last_error_kind, Some(ErrorKind::Tls));
    assert_eq!(status.forwarded_total, 0);
    assert_eq!(outbox.len(), 2);
    assert!(central.state.lock().unwrap().requests.is_empty());
    handle.stop().await;
}

/// A central in memory, for timing: no I/O, so the paused clock is exact.
#[derive(Default)]
struct FakeCentral {
    fail: bool,
    calls: Mutex<Vec<(Instant, Vec<u64>)>>,
}

impl Central for FakeCentral {
    async fn post_records(&self, batch: &RecordBatch) -> Result<PostOutcome, LinkError> {
        self.calls.lock().unwrap().push((
            Instant::now(),
            batch.records.iter().map(|r| r.seq).collect(),
        ));
        if self.fail {
            return Err(LinkError::Connect("down".into()));
        }
        Ok(PostOutcome::Acknowledged(RecordAck {
            acknowledged: batch.records.iter().map(|r| r.record_id).collect(),
        }))
    }
    async fn registry_changes(&self, _: u64, _: usize) -> Result<RegistryPage, LinkError> {
        Err(LinkError::Connect("not here".into()))
    }
    async fn revocations(&self, _: u64, _: usize) -> Result<RevocationPage, LinkError> {
        Err(LinkError::Connect("not here".into()))
    }
}

#[tokio::test(start_paused = true)]
async fn retries_follow_exponential_backoff_with_seeded_full_jitter() {
    let backoff = BackoffConfig {
        base: Duration::from_secs(1),
        max: Duration::from_secs(8),
    };
    let central = Arc::new(FakeCentral {
        fail: true,
        ..FakeCentral::default()
    });
    let outbox = Arc::new(MemoryOutbox::default());
    outbox.commit();
    let handle = Forwarder::new(
        ForwarderConfig {
            backoff,
            rng_seed: Some(42),
            ..config(10)
        },
        outbox,
        central.clone(),
    )
    .spawn();
    tokio::time::sleep(Duration::from_secs(120)).await;
    let calls: Vec<Instant> = central.calls.lock().unwrap().iter().map(|c| c.0).collect();
    assert!(calls.len() >= 10, "{} calls", calls.len());
    let mut expected = Backoff::new(backoff, Some(42));
    for (n, pair) in calls.windows(2).enumerate().take(10) {
        let failures = n as u32 + 1;
        let gap = pair[1] - pair[0];
        let delay = expected.delay(failures);
        // Timers fire on millisecond ticks.
        assert!(
            gap >= delay && gap - delay <= Duration::from_millis(1),
            "try {failures}: waited {gap:?}, backoff says {delay:?}"
        );
        assert!(gap <= expected.ceiling(failures) + Duration::from_millis(1));
    }
    let status = handle.status().borrow().clone();
    assert_eq!(status.consecutive_failures as usize, calls.len());
    handle.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_wake_forwards_a_new_commit_at_once_and_the_poll_finds_it_otherwise() {
    let central = Arc::new(FakeCentral::default());
    let outbox = Arc::new(MemoryOutbox::default());
    let handle = Forwarder::new(
        ForwarderConfig {
            poll_interval: Duration::from_secs(3600),
            ..config(10)
        },
        outbox.clone(),
        central.clone(),
    )
    .spawn();
    let waker = handle.waker();
    // Idle: nothing sent.
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(central.calls.lock().unwrap().is_empty());

    let committed = Instant::now();
    outbox.commit();
    waker.wake();
    until(&handle, |s| s.forwarded_total == 1).await;
    assert_eq!(Instant::now(), committed, "forwarded without waiting");

    // Without a wake, the poll interval finds it. (Let the forwarder go idle first, or
    // its look after the first batch may find the record.)
    tokio::time::sleep(Duration::from_secs(1)).await;
    let committed = Instant::now();
    outbox.commit();
    until(&handle, |s| s.forwarded_total == 2).await;
    let calls = central.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 2);
    assert!(calls[1].0 - committed >= Duration::from_secs(3590));
    handle.stop().await;
}

#[tokio::test(start_paused = true)]
async fn stop_ends_the_forwarder_while_idle_or_backing_off() {
    let central = Arc::new(FakeCentral {
        fail: true,
        ..FakeCentral::default()
    });
    let outbox = Arc::new(MemoryOutbox::default());
    outbox.commit();
    let handle = Forwarder::new(
        ForwarderConfig {
            backoff: BackoffConfig {
                base: Duration::from_secs(600),
                max: Duration::from_secs(600),
            },
            ..config(10)
        },
        outbox.clone(),
        central.clone(),
    )
    .spawn();
    until(&handle, |s| s.consecutive_failures == 1).await;
    let started = Instant::now();
    handle.stop().await;
    assert_eq!(Instant::now(), started, "did not wait out the backoff");
    let calls = central.calls.lock().unwrap().len();
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(central.calls.lock().unwrap().len(), calls);
    assert_eq!(outbox.len(), 1);
}

#[test]
fn audit_lines_carry_counts_and_seqs_only() {
    let event = LinkEvent::RecordsForwarded {
        count: 3,
        first_seq: 17,
        last_seq: 19,
    };
    assert_eq!(event.name(), "records-forwarded");
    assert_eq!(
        event.to_string(),
        "records-forwarded: 3 records, seq 17..19"
    );
}
