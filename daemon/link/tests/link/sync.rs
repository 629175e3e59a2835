//! The registry and revocation sync against the test central, into a real
//! `RegistryStore`.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;
use torii_core::registry::{RegistrationStatus, RegistryStore};
use torii_link::protocol::{RegistryChange, Revocation};
use torii_link::{
    BackoffConfig, Clock, ErrorKind, FeedStatus, SyncConfig, SyncHandle, SyncStatus, Syncer,
};

use crate::common::*;

fn traveler(passport: &str, card: &str) -> serde_json::Value {
    json!({"passport_number": passport, "nationality": "GBR", "surname": "TESTWOOD",
        "given_names": "ALICE SAMPLE", "date_of_birth": "1986-04-12", "card_number": card,
        "card_issued": "2025-05-20", "card_valid_until": "2028-05-19", "status": "active",
        "fingers": [{"position": "right-index", "template": "AQID"}],
        "ed_card": {"flight": "NH212", "address_in_japan": "1-2-3 Minato", "purpose": "tourism",
            "length_of_stay_days": 10}})
}

fn upsert(seq: u64, passport: &str) -> RegistryChange {
    RegistryChange::Upsert {
        seq,
        traveler: traveler(passport, &format!("CARD-{passport}")),
    }
}

fn revocation(seq: u64, passport: &str, status: &str) -> Revocation {
    Revocation {
        seq,
        passport_number: passport.into(),
        nationality: "GBR".into(),
        status: status.into(),
    }
}

const T0: Duration = Duration::from_secs(1_780_000_000);

fn fixed_clock() -> Clock {
    Arc::new(|| UNIX_EPOCH + T0)
}

fn config() -> SyncConfig {
    SyncConfig {
        registry_interval: Duration::from_secs(300),
        revocation_interval: Duration::from_secs(60),
        page_limit: 2,
        backoff: BackoffConfig {
            base: Duration::from_secs(1),
            max: Duration::from_secs(30),
        },
        rng_seed: Some(3),
    }
}

fn start(setup: &Setup, store: &Arc<RegistryStore>, events: &Events) -> SyncHandle {
    Syncer::new(config(), store.clone(), setup.client())
        .with_hook(events.hook())
        .with_clock(fixed_clock())
        .spawn()
}

async fn until(handle: &SyncHandle, condition: impl Fn(&SyncStatus) -> bool) {
    let mut status = handle.status();
    tokio::time::timeout(Duration::from_secs(7200), status.wait_for(condition))
        .await
        .expect("sync status not reached")
        .unwrap();
}

fn both_synced(s: &SyncStatus) -> bool {
    s.registry.last_sync.is_some() && s.revocations.last_sync.is_some()
}

#[tokio::test(start_paused = true)]
async fn pages_are_applied_with_their_cursors_and_more_pages_are_fetched_at_once() {
    let setup = Setup::memory().await;
    {
        let mut state = setup.central.state.lock().unwrap();
        state.registry = (1..=5).map(|n| upsert(n, &format!("P{n}"))).collect();
        // A revocation of a registration the gate will only get later in the registry
        // feed (the feeds are not ordered with each other), and of one never held.
        state.revocations = vec![
            revocation(4, "P5", "revoked"),
            revocation(9, "NOTHELD", "passport-reported-lost"),
        ];
    }
    let store = Arc::new(RegistryStore::open_in_memory().unwrap());
    let events = Events::default();
    let handle = start(&setup, &store, &events);
    until(&handle, both_synced).await;

    assert_eq!(store.count().unwrap(), 5);
    let state = store.sync_state().unwrap();
    assert_eq!((state.registry_cursor, state.revocation_cursor), (5, 9));
    assert_eq!(state.last_registry_sync, Some(UNIX_EPOCH + T0));
    assert_eq!(state.last_revocation_sync, Some(UNIX_EPOCH + T0));
    assert_eq!(
        store.lookup("P5", "GBR").unwrap().unwrap().status,
        RegistrationStatus::Revoked
    );
    assert_eq!(
        store.lookup("P1", "GBR").unwrap().unwrap().status,
        RegistrationStatus::Active
    );

    // The registry came in three pages of one pass, asked one after the other.
    let status = handle.status().borrow().clone();
    assert_eq!(status.registry.pages_total, 3);
    assert_eq!(status.registry.cursor, 5);
    let asked: Vec<String> = setup
        .central
        .state
        .lock()
        .unwrap()
        .requests
        .iter()
        .filter(|r| r.contains("/v1/registry/"))
        .cloned()
        .collect();
    assert_eq!(
        asked,
        [
            "GET /v1/registry/changes?after=0&limit=2",
            "GET /v1/registry/changes?after=2&limit=2",
            "GET /v1/registry/changes?after=4&limit=2",
        ]
    );
    let updates: Vec<String> = events
        .named("registry-updated")
        .iter()
        .map(|e| e.to_string())
        .collect();
    assert_eq!(
        updates[0],
        "registry-updated: 2 upserts, 0 erasures, cursor 2"
    );
    assert_eq!(updates.len(), 3);
    // Whether P5 was held yet when its revocation came depends on which feed went
    // first; either way it ends revoked (above).
    let revocations = events.named("revocation-applied");
    assert_eq!(revocations.len(), 1);
    assert!(revocations[0].to_string().ends_with("cursor 9"));

    // The next pass starts from the stored cursor: new changes only.
    setup
        .central
        .state
        .lock()
        .unwrap()
        .registry
        .push(RegistryChange::Erase {
            seq: 6,
            passport_number: "P1".into(),
            nationality: "GBR".into(),
        });
    handle.sync_now();
    until(&handle, |s| s.registry.cursor == 6).await;
    assert_eq!(store.count().unwrap(), 4);
    assert!(
        setup
            .central
            .state
            .lock()
            .unwrap()
            .requests
            .contains(&"GET /v1/registry/changes?after=5&limit=2".to_string())
    );
    handle.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_garbage_page_is_refused_whole_and_the_cursor_stays() {
    let setup = Setup::memory().await;
    let mut garbage = traveler("SECRETPASSPORT", "SECRETCARD");
    garbage["fingers"] = json!([{"position": "right-index", "template": "not base64!"}]);
    {
        let mut state = setup.central.state.lock().unwrap();
        state.registry = vec![
            upsert(1, "P1"),
            upsert(2, "P2"),
            // Page 2: one good change, then garbage.
            upsert(3, "P3"),
            RegistryChange::Upsert {
                seq: 4,
                traveler: garbage,
            },
        ];
    }
    let store = Arc::new(RegistryStore::open_in_memory().unwrap());
    let events = Events::default();
    let handle = start(&setup, &store, &events);
    until(&handle, |s| s.registry.consecutive_failures >= 3).await;

    // Page 1 applied, page 2 not at all.
    assert_eq!(store.count().unwrap(), 2);
    assert_eq!(store.lookup("P3", "GBR").unwrap(), None);
    assert_eq!(store.sync_state().unwrap().registry_cursor, 2);
    let status: FeedStatus = handle.status().borrow().registry.clone();
    assert_eq!(status.cursor, 2);
    assert_eq!(status.last_sync, None, "never caught up");
    assert_eq!(status.last_error_kind, Some(ErrorKind::Protocol));
    let error = status.last_error.unwrap();
    assert!(error.contains("change 4"), "{error}");
    assert!(!error.contains("SECRET"), "{error}");
    // Reported once, however often it is retried.
    let refused = events.named("sync-refused");
    assert_eq!(refused.len(), 1);
    assert!(!refused[0].to_string().contains("SECRET"));
    // The registry is stale: never caught up.
    assert!(
        handle
            .status()
            .borrow()
            .is_stale(UNIX_EPOCH + T0, Duration::from_secs(3600))
    );

    // Central fixes the entry: the next retry applies the page.
    setup.central.state.lock().unwrap().registry[3] = upsert(4, "P4");
    until(&handle, |s| s.registry.last_sync.is_some()).await;
    assert_eq!(store.count().unwrap(), 4);
    assert_eq!(store.sync_state().unwrap().registry_cursor, 4);
    assert_eq!(handle.status().borrow().registry.consecutive_failures, 0);
    handle.stop().await;
}

#[tokio::test(start_paused = true)]
async fn an_erasure_through_the_feed_leaves_nothing_behind() {
    let setup = Setup::memory().await;
    setup.central.state.lock().unwrap().registry = vec![upsert(1, "GONE1"), upsert(2, "KEPT2")];
    let store = Arc::new(RegistryStore::open_in_memory().unwrap());
    let events = Events::default();
    let handle = start(&setup, &store, &events);
    until(&handle, |s| s.registry.cursor == 2).await;
    let holder = store.lookup("GONE1", "GBR").unwrap().unwrap().holder_key;

    setup
        .central
        .state
        .lock()
        .unwrap()
        .registry
        .push(RegistryChange::Erase {
            seq: 3,
            passport_number: "GONE1".into(),
            nationality: "GBR".into(),
        });
    handle.sync_now();
    until(&handle, |s| s.registry.cursor == 3).await;
    assert_eq!(store.lookup("GONE1", "GBR").unwrap(), None);
    // Same holder key as KEPT2 (same test person): only KEPT2 is left under it.
    let left = store.lookup_holder(&holder).unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].passport_number, "KEPT2");
    assert_eq!(left[0].card_number, "CARD-KEPT2");
    assert_eq!(store.count().unwrap(), 1);
    assert_eq!(
        events.named("registry-updated").last().unwrap().to_string(),
        "registry-updated: 0 upserts, 1 erasures, cursor 3"
    );
    handle.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_revocation_changes_the_status_and_unknown_ones_are_counted() {
    let setup = Setup::memory().await;
    setup.central.state.lock().unwrap().registry = vec![upsert(1, "P1"), upsert(2, "P2")];
    let store = Arc::new(RegistryStore::open_in_memory().unwrap());
    let events = Events::default();
    let handle = start(&setup, &store, &events);
    until(&handle, both_synced).await;
    setup.central.state.lock().unwrap().revocations = vec![
        revocation(1, "P1", "passport-reported-lost"),
        revocation(2, "P2", "changed-to-resident"),
        revocation(3, "UNKNOWN", "revoked"),
    ];
    handle.sync_now();
    until(&handle, |s| s.revocations.cursor == 3).await;
    assert_eq!(
        store.lookup("P1", "GBR").unwrap().unwrap().status,
        RegistrationStatus::PassportReportedLost
    );
    assert_eq!(
        store.lookup("P2", "GBR").unwrap().unwrap().status,
        RegistrationStatus::ChangedToResident
    );
    let applied: Vec<String> = events
        .named("revocation-applied")
        .iter()
        .map(|e| e.to_string())
        .collect();
    assert_eq!(
        applied,
        [
            "revocation-applied: 2 registrations revoked, 0 not held, cursor 2",
            "revocation-applied: 0 registrations revoked, 1 not held, cursor 3",
        ]
    );
    assert_eq!(handle.status().borrow().revocations.consecutive_failures, 0);
    handle.stop().await;
}

#[tokio::test(start_paused = true)]
async fn staleness_follows_the_older_feed_and_survives_a_restart() {
    let Setup {
        dir: _dir,
        files,
        central,
        net,
        ..
    } = Setup::memory().await;
    let net = net.unwrap();
    let client = client_for(&central.url(), &files, Some(&net));
    let store = Arc::new(RegistryStore::open_in_memory().unwrap());
    let events = Events::default();
    let (_, server_config, state) = central.shutdown().await;
    // Central unreachable from the start: never synced, stale.
    let handle = Syncer::new(config(), store.clone(), client.clone())
        .with_hook(events.hook())
        .with_clock(fixed_clock())
        .spawn();
    until(&handle, |s| s.consecutive_failures() >= 2).await;
    {
        let status = handle.status().borrow().clone();
        assert_eq!(status.staleness(UNIX_EPOCH + T0), None);
        assert!(status.is_stale(UNIX_EPOCH + T0, Duration::from_secs(86400)));
        assert_eq!(status.registry.last_error_kind, Some(ErrorKind::Connect));
    }
    let central = TestCentral::start_memory(&net, server_config, state);
    until(&handle, both_synced).await;
    let status = handle.status().borrow().clone();
    let hour = Duration::from_secs(3600);
    assert_eq!(status.staleness(UNIX_EPOCH + T0 + hour), Some(hour));
    assert!(!status.is_stale(UNIX_EPOCH + T0 + hour, hour));
    assert!(status.is_stale(UNIX_EPOCH + T0 + hour + Duration::from_secs(1), hour));
    handle.stop().await;

    // A restart reads the stored times: not stale for that.
    central.shutdown().await;
    let restarted = Syncer::new(config(), store.clone(), client).spawn();
    let status = restarted.status().borrow().clone();
    assert_eq!(status.last_sync(), Some(UNIX_EPOCH + T0));
    assert!(!status.is_stale(UNIX_EPOCH + T0 + hour, hour));
    restarted.stop().await;
}

#[test]
fn staleness_is_the_time_since_the_older_feed_caught_up() {
    let at = |secs: u64| Some(UNIX_EPOCH + Duration::from_secs(secs));
    let now = UNIX_EPOCH + Duration::from_secs(1000);
    let mut status = SyncStatus::default();
    assert_eq!(status.staleness(now), None);
    assert!(status.is_stale(now, Duration::MAX));
    status.registry.last_sync = at(900);
    assert_eq!(status.staleness(now), None, "revocations never synced");
    assert!(status.is_stale(now, Duration::from_secs(10_000)));
    status.revocations.last_sync = at(700);
    assert_eq!(status.last_sync(), at(700));
    assert_eq!(status.staleness(now), Some(Duration::from_secs(300)));
    assert!(!status.is_stale(now, Duration::from_secs(300)));
    assert!(status.is_stale(now, Duration::from_secs(299)));
    // A clock behind the last sync: not stale, not negative.
    assert_eq!(
        status.staleness(UNIX_EPOCH + Duration::from_secs(500)),
        Some(Duration::ZERO)
    );
    let _: SystemTime = now;
}
