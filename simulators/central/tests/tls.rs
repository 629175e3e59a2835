//! The TLS gate: TLS 1.3 only, a client certificate from the TTP CA required, expired
//! and revoked (CRL) ones refused; every refused handshake is counted.

mod common;

use common::*;
use hyper::Method;

#[tokio::test]
async fn bad_client_certificates_and_old_protocols_are_refused_at_the_handshake() {
    let setup = start(Vec::new()).await;
    let pki = &setup.pki;
    let addr = setup.central.addr();
    let tls13: &[&'static rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];
    let clients = [
        (
            "expired",
            TlsClient::as_client(&setup, Some("gate-expired")),
        ),
        (
            "revoked",
            TlsClient::as_client(&setup, Some("gate-revoked")),
        ),
        ("rogue CA", TlsClient::as_client(&setup, Some("rogue-gate"))),
        ("no certificate", TlsClient::as_client(&setup, None)),
        (
            "TLS 1.2",
            TlsClient::with(
                pki,
                addr,
                &pki.ca_cert(),
                Some("gate"),
                &[&rustls::version::TLS12],
            ),
        ),
    ];
    for (i, (what, client)) in clients.iter().enumerate() {
        let answer = client.post_batch(GATE, &[envelope(1, 1)]).await;
        assert!(answer.is_err(), "{what}: {answer:?}");
        let refused = i as u64 + 1;
        let stats = stats_until(&setup.central, |s| s.tls_handshakes_refused >= refused).await;
        assert_eq!(stats.tls_handshakes_refused, refused, "{what}");
    }
    assert!(setup.central.records().is_empty());
    assert_eq!(setup.central.stats().tls_handshakes, 0);

    // The good certificate still gets in.
    let good = TlsClient::with(pki, addr, &pki.ca_cert(), Some("gate"), tls13);
    let (status, _) = good.request(Method::GET, "/health", None).await.unwrap();
    assert_eq!(status, 200);
    let (_, stats) = control(&setup.central, Method::GET, "/control/stats", None).await;
    assert_eq!(stats["tls_handshakes_refused"], 5);
    assert_eq!(stats["tls_handshakes"], 1);
    setup.central.shutdown().await;
}

#[tokio::test]
async fn a_gate_that_trusts_another_ca_refuses_central() {
    let setup = start(Vec::new()).await;
    let pki = &setup.pki;
    let client = TlsClient::with(
        pki,
        setup.central.addr(),
        &pki.rogue_ca_cert(),
        Some("gate"),
        &[&rustls::version::TLS13],
    );
    let answer = client.request(hyper::Method::GET, "/health", None).await;
    let error = answer.unwrap_err();
    assert!(error.contains("handshake"), "{error}");
    let stats = stats_until(&setup.central, |s| s.tls_handshakes_refused >= 1).await;
    assert_eq!(stats.tls_handshakes_refused, 1);
    setup.central.shutdown().await;
}
