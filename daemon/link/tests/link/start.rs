//! `Link::start`: the daemon's one call, end to end.

use std::sync::Arc;
use std::time::Duration;

use torii_core::registry::RegistryStore;
use torii_link::protocol::RegistryChange;
use torii_link::{Link, LinkConfig, StartError, TlsFiles};

use crate::common::*;

/// Over TCP in real time (the timeouts below are hang guards only).
#[tokio::test]
async fn the_link_forwards_records_and_syncs_the_registry() {
    let setup = Setup::new().await;
    setup.central.state.lock().unwrap().registry = vec![RegistryChange::Erase {
        seq: 1,
        passport_number: "NOBODY".into(),
        nationality: "GBR".into(),
    }];
    let outbox = Arc::new(MemoryOutbox::default());
    outbox.commit();
    let store = Arc::new(RegistryStore::open_in_memory().unwrap());
    let events = Events::default();
    let mut config = LinkConfig::new(setup.central.url(), setup.files.clone(), "NRT-T1-E01");
    config.forwarder.rng_seed = Some(1);
    config.sync.rng_seed = Some(2);
    let link = Link::start(config, outbox.clone(), store.clone(), Some(events.hook())).unwrap();
    let mut sync = link.sync.status();
    tokio::time::timeout(
        Duration::from_secs(60),
        sync.wait_for(|s| s.last_sync().is_some()),
    )
    .await
    .unwrap()
    .unwrap();
    outbox.commit();
    link.forwarder.wake();
    let mut forwarder = link.forwarder.status();
    tokio::time::timeout(
        Duration::from_secs(60),
        forwarder.wait_for(|s| s.forwarded_total == 2),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(store.sync_state().unwrap().registry_cursor, 1);
    assert_eq!(
        setup.central.state.lock().unwrap().stored_seqs(),
        vec![1, 2]
    );
    assert!(!events.named("records-forwarded").is_empty());
    assert_eq!(link.tls.reloads(), 0);
    link.stop().await;
}

#[tokio::test]
async fn the_link_does_not_start_without_usable_tls_files_or_an_https_url() {
    let setup = Setup::new().await;
    let outbox = Arc::new(MemoryOutbox::default());
    let store = Arc::new(RegistryStore::open_in_memory().unwrap());
    let missing = TlsFiles {
        client_key: setup.path("missing.key"),
        ..setup.files.clone()
    };
    let error = Link::start(
        LinkConfig::new(setup.central.url(), missing, "G"),
        outbox.clone(),
        store.clone(),
        None,
    )
    .unwrap_err();
    assert!(matches!(error, StartError::Tls(_)), "{error}");
    assert!(error.to_string().contains("missing.key"), "{error}");
    let error = Link::start(
        LinkConfig::new("http://127.0.0.1:1", setup.files.clone(), "G"),
        outbox,
        store,
        None,
    )
    .unwrap_err();
    assert!(matches!(error, StartError::Url(_)), "{error}");
}
