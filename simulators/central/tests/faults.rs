//! Fault modes, set through the control API (and the in-process handle).

mod common;

use common::*;
use hyper::Method;
use serde_json::json;
use std::time::{Duration, Instant};
use torii_central::{Central, CentralConfig, Fault, FaultMode};

#[tokio::test]
async fn down_refuses_connections_and_recovery_listens_on_the_same_port() {
    let setup = start(Vec::new()).await;
    let client = TlsClient::gate(&setup);
    let addr = setup.central.addr();
    assert_eq!(
        client
            .request(Method::GET, "/health", None)
            .await
            .unwrap()
            .0,
        200
    );

    let (status, answer) = control(
        &setup.central,
        Method::POST,
        "/control/fault",
        Some(&json!({ "mode": "down" })),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let refused = tokio::net::TcpStream::connect(addr).await.unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    let error = client
        .post_batch(GATE, &[envelope(1, 1)])
        .await
        .unwrap_err();
    assert!(error.starts_with("connect"), "{error}");
    let (_, fault) = control(&setup.central, Method::GET, "/control/fault", None).await;
    assert_eq!(fault, json!({ "mode": "down", "delay_ms": 0 }));

    let (status, _) = control(
        &setup.central,
        Method::POST,
        "/control/fault",
        Some(&json!({ "mode": "none" })),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(setup.central.addr(), addr);
    let (status, _) = client.post_batch(GATE, &[envelope(1, 1)]).await.unwrap();
    assert_eq!(status, 200);
    setup.central.shutdown().await;
}

#[tokio::test]
async fn down_closes_open_connections_too() {
    let setup = start(Vec::new()).await;
    // A connection held open across the fault.
    let tcp = tokio::net::TcpStream::connect(setup.central.addr())
        .await
        .unwrap();
    setup
        .central
        .set_fault(Fault::mode(FaultMode::Down))
        .await
        .unwrap();
    let mut tcp = tcp;
    let mut buf = [0u8; 1];
    use tokio::io::AsyncReadExt;
    let read = tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut buf))
        .await
        .expect("closed by central");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    setup.central.set_fault(Fault::none()).await.unwrap();
    setup.central.shutdown().await;
}

#[tokio::test]
async fn slow_delays_each_answer() {
    let setup = start(Vec::new()).await;
    let client = TlsClient::gate(&setup);
    let delay = Duration::from_millis(300);
    let (status, _) = control(
        &setup.central,
        Method::POST,
        "/control/fault",
        Some(&json!({ "mode": "slow", "delay_ms": 300 })),
    )
    .await;
    assert_eq!(status, 200);
    let started = Instant::now();
    let (status, answer) = client.post_batch(GATE, &[envelope(1, 1)]).await.unwrap();
    assert_eq!(status, 200, "{answer}");
    assert!(started.elapsed() >= delay);
    let started = Instant::now();
    let (status, _) = client.request(Method::GET, "/health", None).await.unwrap();
    assert_eq!(status, 200);
    assert!(started.elapsed() >= delay);
    setup.central.shutdown().await;
}

#[tokio::test]
async fn http500_answers_everything_with_500_and_stores_nothing() {
    let setup = start(Vec::new()).await;
    let client = TlsClient::gate(&setup);
    setup
        .central
        .set_fault(Fault::mode(FaultMode::Http500))
        .await
        .unwrap();
    for (method, path) in [
        (Method::GET, "/health"),
        (Method::GET, "/v1/registry/changes?after=0"),
        (Method::GET, "/v1/revocations"),
    ] {
        let (status, answer) = client.request(method, path, None).await.unwrap();
        assert_eq!(status, 500, "{path}");
        assert!(answer["error"].is_string(), "{path}: {answer}");
    }
    let (status, _) = client.post_batch(GATE, &[envelope(1, 1)]).await.unwrap();
    assert_eq!(status, 500);
    assert!(setup.central.records().is_empty());
    setup.central.set_fault(Fault::none()).await.unwrap();
    let (status, _) = client.post_batch(GATE, &[envelope(1, 1)]).await.unwrap();
    assert_eq!(status, 200);
    setup.central.shutdown().await;
}

#[tokio::test]
async fn drop_mid_batch_stores_half_and_answers_nothing_then_the_retry_sees_duplicates() {
    let setup = start(Vec::new()).await;
    let client = TlsClient::gate(&setup);
    let (status, _) = control(
        &setup.central,
        Method::POST,
        "/control/fault",
        Some(&json!({ "mode": "drop-mid-batch" })),
    )
    .await;
    assert_eq!(status, 200);
    let batch = [
        envelope(1, 1),
        envelope(2, 2),
        envelope(3, 3),
        envelope(4, 4),
        envelope(5, 5),
    ];
    let error = client.post_batch(GATE, &batch).await.unwrap_err();
    assert!(error.starts_with("request"), "{error}");
    let held: Vec<u64> = setup.central.records().iter().map(|r| r.seq).collect();
    assert_eq!(held, vec![1, 2, 3]);
    // Other calls answer.
    assert_eq!(
        client
            .request(Method::GET, "/health", None)
            .await
            .unwrap()
            .0,
        200
    );

    setup.central.set_fault(Fault::none()).await.unwrap();
    let (status, answer) = client.post_batch(GATE, &batch).await.unwrap();
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["acknowledged"].as_array().unwrap().len(), 5);
    let stats = setup.central.stats();
    assert_eq!(
        (stats.records, stats.duplicates, stats.dropped_batches),
        (5, 3, 1)
    );
    setup.central.shutdown().await;
}

#[tokio::test]
async fn wrong_server_cert_presents_the_rogue_certificate() {
    let setup = start(Vec::new()).await;
    let pki = &setup.pki;
    let tls13: &[&'static rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];
    let gate = TlsClient::gate(&setup);
    // A connection made before: closed when the fault starts.
    let mut open = gate.connect().await.unwrap();
    let (status, _) = control(
        &setup.central,
        Method::POST,
        "/control/fault",
        Some(&json!({ "mode": "wrong-server-cert" })),
    )
    .await;
    assert_eq!(status, 200);
    let mut buf = [0u8; 1];
    use tokio::io::AsyncReadExt;
    let read = tokio::time::timeout(Duration::from_secs(10), open.read(&mut buf))
        .await
        .expect("closed by central");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    let error = gate
        .request(Method::GET, "/health", None)
        .await
        .unwrap_err();
    assert!(error.starts_with("handshake"), "{error}");
    // Whoever trusts the rogue CA sees it is that certificate.
    let fooled = TlsClient::with(
        pki,
        setup.central.addr(),
        &pki.rogue_ca_cert(),
        Some("gate"),
        tls13,
    );
    assert_eq!(
        fooled
            .request(Method::GET, "/health", None)
            .await
            .unwrap()
            .0,
        200
    );
    let stats = stats_until(&setup.central, |s| s.tls_handshakes_refused >= 1).await;
    assert_eq!(stats.tls_handshakes_refused, 1);

    setup.central.set_fault(Fault::none()).await.unwrap();
    assert_eq!(
        gate.request(Method::GET, "/health", None).await.unwrap().0,
        200
    );
    setup.central.shutdown().await;
}

#[tokio::test]
async fn bad_fault_requests_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pki = torii_central::pki::generate(dir.path(), GATE, false).unwrap();
    let mut config = CentralConfig::from_pki(
        &pki,
        "127.0.0.1:0".parse().unwrap(),
        "127.0.0.1:0".parse().unwrap(),
    );
    config.rogue_cert = None;
    config.rogue_key = None;
    let central = Central::start(config.clone()).await.unwrap();
    let (status, answer) = control(
        &central,
        Method::POST,
        "/control/fault",
        Some(&json!({ "mode": "wrong-server-cert" })),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        answer["error"].as_str().unwrap().contains("rogue"),
        "{answer}"
    );
    let (status, answer) = control(
        &central,
        Method::POST,
        "/control/fault",
        Some(&json!({ "mode": "melt" })),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        answer["error"].as_str().unwrap().contains("melt"),
        "{answer}"
    );
    assert_eq!(central.fault(), Fault::none());
    central.shutdown().await;

    // A fault given at start is in effect from the start.
    config.fault = Fault::mode(FaultMode::Down);
    let central = Central::start(config.clone()).await.unwrap();
    let addr = central.addr();
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    central.set_fault(Fault::none()).await.unwrap();
    assert!(tokio::net::TcpStream::connect(addr).await.is_ok());
    central.shutdown().await;
    config.fault = Fault::mode(FaultMode::WrongServerCert);
    assert!(Central::start(config).await.is_err());
}
