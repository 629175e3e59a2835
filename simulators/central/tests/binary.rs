//! The `torii-central` binary: `pki init`, `serve --pki --registry`, `ctl`, SIGTERM; and
//! its log names no traveler.

mod common;

use common::*;
use serde_json::json;
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use torii_central::pki::Pki;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_torii-central"))
}

#[test]
fn pki_init_serve_ctl_and_a_log_without_personal_data() {
    let dir = tempfile::tempdir().unwrap();
    let pki_dir = dir.path().join("pki");
    let out = bin().args(["pki", "init"]).arg(&pki_dir).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let pki = Pki::new(&pki_dir);
    assert!(pki.is_complete());
    assert_eq!(pki.gate_id().as_deref(), Some(GATE));
    let again = bin().args(["pki", "init"]).arg(&pki_dir).output().unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));

    let registry = dir.path().join("registry.json");
    std::fs::write(
        &registry,
        json!({ "travelers": [{ "passport_number": "TK1234567", "nationality": "UTO", "surname": "HOPKINS" }] })
            .to_string(),
    )
    .unwrap();
    let mut child = bin()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--control",
            "127.0.0.1:0",
            "--pki",
        ])
        .arg(&pki_dir)
        .arg("--registry")
        .arg(&registry)
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let done = line == "torii-central: ready";
        seen.push(line);
        if done {
            break;
        }
    }
    let https = seen
        .iter()
        .find_map(|l| l.strip_prefix("torii-central: https://"))
        .unwrap_or_else(|| panic!("{seen:?}"))
        .to_owned();
    let control = seen
        .iter()
        .find_map(|l| l.strip_prefix("torii-central: control "))
        .unwrap()
        .to_owned();

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = TlsClient::with(
            &pki,
            https.parse().unwrap(),
            &pki.ca_cert(),
            Some("gate"),
            &[&rustls::version::TLS13],
        );
        let record = json!({
            "record_id": uuid::Uuid::from_u128(77),
            "seq": 1,
            "record": { "surname": "HOPKINS", "passport_number": "TK1234567", "card_number": "TTP0000009999" },
        });
        let (status, _) = client.post_batch(GATE, &[record]).await.unwrap();
        assert_eq!(status, 200);
        let (status, page) = client
            .request(hyper::Method::GET, "/v1/registry/changes?after=0", None)
            .await
            .unwrap();
        assert_eq!(status, 200);
        assert_eq!(page["changes"][0]["traveler"]["surname"], "HOPKINS");
        // A malformed body quoting personal data is answered, not logged.
        let bad = json!({ "gate_id": GATE, "records": [{ "record_id": uuid::Uuid::from_u128(78), "seq": "HOPKINS", "record": {} }] });
        let (status, _) = client
            .request(hyper::Method::POST, "/v1/records", Some(&bad))
            .await
            .unwrap();
        assert_eq!(status, 400);
    });

    let ctl = |args: &[&str]| {
        bin()
            .args(["ctl", "--control", &control])
            .args(args)
            .output()
            .unwrap()
    };
    let stats = ctl(&["stats"]);
    assert!(stats.status.success(), "{stats:?}");
    let stats: serde_json::Value = serde_json::from_slice(&stats.stdout).unwrap();
    assert_eq!(
        (stats["records"].as_u64(), stats["batches"].as_u64()),
        (Some(1), Some(1))
    );
    let fault = ctl(&["fault", "slow", "--delay-ms", "5"]);
    assert!(fault.status.success(), "{fault:?}");
    let fault: serde_json::Value = serde_json::from_slice(&fault.stdout).unwrap();
    assert_eq!(fault["fault"], json!({ "mode": "slow", "delay_ms": 5 }));
    let revoke = ctl(&["revoke", "TK1234567", "UTO", "nonsense"]);
    assert!(!revoke.status.success());
    let revoke = ctl(&["revoke", "TK1234567", "UTO", "revoked"]);
    assert!(revoke.status.success(), "{revoke:?}");
    let records = ctl(&["records"]);
    let records: serde_json::Value = serde_json::from_slice(&records.stdout).unwrap();
    assert_eq!(records["records"][0]["record"]["surname"], "HOPKINS");

    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(child.wait().unwrap().success());
    assert!(log.contains("batch acknowledged"), "{log}");
    for secret in ["HOPKINS", "TK1234567", "TTP0000009999"] {
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }
}
