//! The mTLS client against the test central: TLS errors, error kinds, keep-alive, and
//! certificate rotation on disk.

use std::sync::Arc;
use std::time::Duration;

use torii_link::protocol::RegistryPage;
use torii_link::tls::FileRole;
use torii_link::{
    CentralClient, ClientOptions, ClientTls, ErrorKind, LinkError, LinkEvent, TlsError, TlsFiles,
};

use crate::common::*;

fn client(url: &str, tls: Arc<ClientTls>) -> CentralClient {
    CentralClient::new(&ClientOptions::new(url), tls).unwrap()
}

async fn health(client: &CentralClient) -> Result<serde_json::Value, LinkError> {
    client.get_json("/health").await
}

#[test]
fn unusable_files_are_named_with_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Authority::new("CA");
    let gate = ca.client("GATE");
    let files = write_tls_files(dir.path(), &ca, &gate);
    let tls = ClientTls::new(files.clone()).unwrap();
    // rcgen's default notAfter, 4096-01-01T00:00:00Z: the expiry metric's source.
    assert_eq!(
        tls.client_certificate_not_after(),
        Some(std::time::UNIX_EPOCH + std::time::Duration::from_secs(67_090_118_400))
    );

    let missing = TlsFiles {
        ca: dir.path().join("nowhere.pem"),
        ..files.clone()
    };
    let error = ClientTls::new(missing).unwrap_err();
    assert!(
        matches!(&error, TlsError::File { role: FileRole::Ca, problem, .. } if problem == "missing"),
        "{error}"
    );
    assert!(error.to_string().contains("nowhere.pem"), "{error}");

    // A CA file with a key in it, no certificate.
    std::fs::write(dir.path().join("not-a-cert.pem"), &gate.key_pem).unwrap();
    let error = ClientTls::new(TlsFiles {
        ca: dir.path().join("not-a-cert.pem"),
        ..files.clone()
    })
    .unwrap_err();
    assert!(
        error.to_string().contains("no certificate in PEM"),
        "{error}"
    );

    // A key file with a certificate in it.
    std::fs::write(dir.path().join("not-a-key.pem"), &gate.cert_pem).unwrap();
    let error = ClientTls::new(TlsFiles {
        client_key: dir.path().join("not-a-key.pem"),
        ..files.clone()
    })
    .unwrap_err();
    assert!(
        matches!(&error, TlsError::File { role: FileRole::ClientKey, problem, .. } if problem == "no private key in PEM"),
        "{error}"
    );

    // Another certificate's key.
    std::fs::write(dir.path().join("other.key"), ca.client("OTHER").key_pem).unwrap();
    let error = ClientTls::new(TlsFiles {
        client_key: dir.path().join("other.key"),
        ..files.clone()
    })
    .unwrap_err();
    assert!(matches!(error, TlsError::KeyMismatch { .. }), "{error}");
    assert!(error.to_string().contains("does not match"), "{error}");

    // Truncated PEM.
    std::fs::write(
        dir.path().join("cut.pem"),
        &gate.cert_pem[..gate.cert_pem.len() / 2],
    )
    .unwrap();
    let error = ClientTls::new(TlsFiles {
        client_certificate: dir.path().join("cut.pem"),
        ..files
    })
    .unwrap_err();
    assert!(
        matches!(
            error,
            TlsError::File {
                role: FileRole::ClientCertificate,
                ..
            }
        ),
        "{error}"
    );
    // No key material is quoted in any message.
    assert!(!error.to_string().contains("MII"));
}

#[tokio::test]
async fn a_request_over_mutual_tls_presents_the_gate_certificate() {
    let setup = Setup::new().await;
    let tls = Arc::new(ClientTls::new(setup.files.clone()).unwrap());
    let client = client(&setup.central.url(), tls);
    assert_eq!(health(&client).await.unwrap()["status"], "ok");
    let state = setup.central.state.lock().unwrap();
    assert_eq!(state.peers, vec![setup.gate.der.clone()]);
}

#[tokio::test]
async fn a_server_name_other_than_the_url_host_can_be_required() {
    let setup = Setup::new().await;
    let tls = Arc::new(ClientTls::new(setup.files.clone()).unwrap());
    let mut options = ClientOptions::new(setup.central.url());
    options.server_name = Some("central.test".into());
    let good = CentralClient::new(&options, tls.clone()).unwrap();
    assert!(health(&good).await.is_ok());
    options.server_name = Some("elsewhere.test".into());
    let wrong = CentralClient::new(&options, tls).unwrap();
    assert_eq!(health(&wrong).await.unwrap_err().kind(), ErrorKind::Tls);
}

#[tokio::test]
async fn a_server_certificate_from_another_ca_is_a_tls_error() {
    let setup = Setup::new().await;
    let impostor = Authority::new("Impostor CA");
    let config = server_config(&impostor.server(), &setup.ca);
    let central = TestCentral::start(config, SharedState::default()).await;
    let tls = Arc::new(ClientTls::new(setup.files.clone()).unwrap());
    let error = health(&client(&central.url(), tls)).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Tls, "{error}");
    assert!(central.state.lock().unwrap().requests.is_empty());
}

#[tokio::test]
async fn a_client_certificate_central_does_not_trust_is_a_tls_error() {
    let setup = Setup::new().await;
    let rogue = Authority::new("Rogue CA");
    let dir = tempfile::tempdir().unwrap();
    let mut files = write_tls_files(dir.path(), &rogue, &rogue.client("NRT-T1-E01"));
    // Trusts the right central, presents a certificate central does not know.
    files.ca = setup.files.ca.clone();
    let tls = Arc::new(ClientTls::new(files).unwrap());
    let error = health(&client(&setup.central.url(), tls))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Tls, "{error}");
    assert!(setup.central.state.lock().unwrap().requests.is_empty());
}

#[tokio::test]
async fn errors_are_classified_by_kind() {
    let setup = Setup::new().await;
    let tls = Arc::new(ClientTls::new(setup.files.clone()).unwrap());
    let client = client(&setup.central.url(), tls.clone());
    setup
        .central
        .state
        .lock()
        .unwrap()
        .faults
        .extend([Fault::Status(500), Fault::Body("{not json".into())]);
    let error = health(&client).await.unwrap_err();
    assert_eq!(
        error,
        LinkError::Http {
            status: 500,
            body: "injected".into()
        }
    );
    let error = client
        .get_json::<RegistryPage>("/v1/registry/changes?after=0&limit=1")
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Protocol, "{error}");
    // 404 for an unknown call.
    let error = health_at(&client, "/v2/nothing").await.unwrap_err();
    assert!(
        matches!(error, LinkError::Http { status: 404, .. }),
        "{error}"
    );

    // Nothing listening.
    let (addr, _, _) = setup.central.shutdown().await;
    let error = health(&self::client(&format!("https://{addr}"), tls))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Connect, "{error}");
}

async fn health_at(client: &CentralClient, path: &str) -> Result<serde_json::Value, LinkError> {
    client.get_json(path).await
}

#[tokio::test(start_paused = true)]
async fn a_central_that_never_answers_times_out() {
    let setup = Setup::new().await;
    // Takes the connection, never speaks TLS (in memory: the paused clock is exact).
    let net = Arc::new(MemoryNet::default());
    let _silent = net.listen_silently();
    let tls = Arc::new(ClientTls::new(setup.files.clone()).unwrap());
    let mut options = ClientOptions::new("https://central.test");
    options.connect_timeout = Duration::from_secs(5);
    let client = CentralClient::with_connector(&options, tls, net).unwrap();
    let started = tokio::time::Instant::now();
    let error = health(&client).await.unwrap_err();
    assert_eq!(error, LinkError::Timeout("TLS handshake"));
    assert_eq!(error.kind(), ErrorKind::Timeout);
    assert_eq!(started.elapsed(), Duration::from_secs(5));
}

#[tokio::test(start_paused = true)]
async fn an_answer_that_never_comes_times_out_and_the_next_request_connects_anew() {
    let setup = Setup::memory().await;
    let mut options = ClientOptions::new(setup.central.url());
    options.request_timeout = Duration::from_secs(20);
    let tls = Arc::new(ClientTls::new(setup.files.clone()).unwrap());
    let client = CentralClient::with_connector(&options, tls, setup.net.clone().unwrap()).unwrap();
    health(&client).await.unwrap();
    setup
        .central
        .state
        .lock()
        .unwrap()
        .faults
        .push_back(Fault::Stall);
    let started = tokio::time::Instant::now();
    let error = health(&client).await.unwrap_err();
    assert_eq!(error, LinkError::Timeout("waiting for the answer"));
    assert_eq!(started.elapsed(), Duration::from_secs(20));
    // The stalled connection is not reused.
    health(&client).await.unwrap();
    assert_eq!(client.connections(), 2);
}

#[tokio::test]
async fn the_connection_is_kept_alive_and_made_anew_when_lost() {
    let setup = Setup::new().await;
    let tls = Arc::new(ClientTls::new(setup.files.clone()).unwrap());
    let client = client(&setup.central.url(), tls);
    for _ in 0..3 {
        health(&client).await.unwrap();
    }
    assert_eq!(client.connections(), 1);
    assert_eq!(setup.central.state.lock().unwrap().peers.len(), 1);

    // Central closes the idle connection: the next request connects again, no error.
    setup.central.drop_connections().await;
    health(&client).await.unwrap();
    assert_eq!(client.connections(), 2);

    // Central drops a kept-alive connection mid-request: the request is made again on
    // a fresh connection (every call is idempotent).
    setup
        .central
        .state
        .lock()
        .unwrap()
        .faults
        .push_back(Fault::Drop);
    health(&client).await.unwrap();
    assert_eq!(client.connections(), 3);

    // The fresh connection dropped too: a lost connection.
    setup
        .central
        .state
        .lock()
        .unwrap()
        .faults
        .extend([Fault::Drop, Fault::Drop]);
    let error = health(&client).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Connect, "{error}");
    health(&client).await.unwrap();
}

#[tokio::test]
async fn replaced_certificate_files_are_used_by_the_next_connection() {
    let setup = Setup::new().await;
    let events = Events::default();
    let tls = Arc::new(ClientTls::new(setup.files.clone()).unwrap());
    tls.set_hook(events.hook());
    let client = client(&setup.central.url(), tls.clone());
    health(&client).await.unwrap();

    let renewed = setup.ca.client("NRT-T1-E01");
    replace_file(&setup.files.client_certificate, &renewed.cert_pem);
    replace_file(&setup.files.client_key, &renewed.key_pem);
    health(&client).await.unwrap();

    let peers = setup.central.state.lock().unwrap().peers.clone();
    assert_eq!(peers, vec![setup.gate.der.clone(), renewed.der.clone()]);
    assert_eq!(tls.reloads(), 1);
    assert_eq!(tls.generation(), 2);
    assert_eq!(tls.reload_failures(), 0);
    assert_eq!(
        events.all(),
        vec![LinkEvent::CertificateReloaded { reloads: 1 }]
    );
    assert_eq!(
        events.all()[0].to_string(),
        "certificate-reloaded: reload 1"
    );
    // Unchanged files: no reload, the connection is reused.
    health(&client).await.unwrap();
    assert_eq!(tls.reloads(), 1);
    assert_eq!(client.connections(), 2);
}

#[tokio::test]
async fn a_bad_replacement_keeps_the_previous_certificate_in_use() {
    let setup = Setup::new().await;
    let events = Events::default();
    let tls = Arc::new(ClientTls::new(setup.files.clone()).unwrap());
    tls.set_hook(events.hook());
    let client = client(&setup.central.url(), tls.clone());
    health(&client).await.unwrap();

    // Half a rotation: the new certificate is there, its key not yet.
    let renewed = setup.ca.client("NRT-T1-E01");
    replace_file(&setup.files.client_certificate, &renewed.cert_pem);
    for _ in 0..3 {
        client.disconnect();
        health(&client).await.unwrap();
    }
    let peers = setup.central.state.lock().unwrap().peers.clone();
    assert!(peers.iter().all(|p| *p == setup.gate.der), "old cert kept");
    assert_eq!(tls.reload_failures(), 1, "reported once");
    assert!(matches!(
        tls.last_error(),
        Some(TlsError::KeyMismatch { .. })
    ));
    assert_eq!(events.named("certificate-reload-failed").len(), 1);
    assert_eq!(tls.generation(), 1);

    // The key arrives: the rotation completes.
    replace_file(&setup.files.client_key, &renewed.key_pem);
    health(&client).await.unwrap();
    assert_eq!(
        setup.central.state.lock().unwrap().peers.last(),
        Some(&renewed.der)
    );
    assert_eq!(tls.reloads(), 1);
    assert_eq!(tls.last_error(), None);

    // A garbage CA file is refused too, and the working configuration stays.
    replace_file(
        &setup.files.ca,
        "-----BEGIN CERTIFICATE-----\nnot base64!\n",
    );
    client.disconnect();
    health(&client).await.unwrap();
    assert!(matches!(
        tls.last_error(),
        Some(TlsError::File {
            role: FileRole::Ca,
            ..
        })
    ));
    assert_eq!(tls.reload_failures(), 2);
}
