//! The control API, the central stub and the `torii-sim` binary.

mod common;

use hyper::Method;
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use torii_sim::control::http_request;
use torii_sim::scenario::Scenario;
use torii_sim::{Simulator, SimulatorConfig};

async fn start_http() -> (Simulator, tempfile::TempDir, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = SimulatorConfig::new(dir.path(), Scenario::default_scenario().unwrap());
    config.control = Some("127.0.0.1:0".parse().unwrap());
    config.central = Some("127.0.0.1:0".parse().unwrap());
    let sim = Simulator::start(config).await.unwrap();
    let control = format!("http://{}", sim.control_addr().unwrap());
    let central = format!("http://{}", sim.central_addr().unwrap());
    (sim, dir, control, central)
}

#[tokio::test]
async fn control_actions_over_http() {
    let (sim, _dir, control, _) = start_http().await;
    let post = |body: serde_json::Value| {
        let control = control.clone();
        async move {
            http_request(&control, Method::POST, "/v1/actions", Some(&body))
                .await
                .unwrap()
        }
    };
    let (status, answer) = post(json!({ "action": "present-passport", "traveler": "alice" })).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["ok"], true);
    let (status, answer) = post(json!({ "action": "present-passport", "traveler": "zed" })).await;
    assert_eq!(status, 400);
    assert_eq!(answer["kind"], "unknown-traveler");
    assert!(answer["error"].as_str().unwrap().contains("zed"));
    let (status, answer) = post(json!({ "action": "dance" })).await;
    assert_eq!(status, 400);
    assert!(
        answer["error"].as_str().unwrap().contains("dance"),
        "{answer}"
    );
    let (status, answer) = post(json!({ "action": "insert-card" })).await;
    assert_eq!(status, 400);
    assert!(
        answer["error"].as_str().unwrap().contains("traveler"),
        "{answer}"
    );
    let (status, _) = post(json!({ "action": "take-card" })).await;
    assert_eq!(status, 409);
    let (status, answer) =
        post(json!({ "action": "fault", "device": "camera", "status": "melted" })).await;
    assert_eq!(status, 400);
    assert_eq!(answer["kind"], "unknown-status");
    let (status, _) = post(json!({ "action": "fault", "device": "camera", "status": "hardware-error", "sticky": true })).await;
    assert_eq!(status, 200);
    let (status, _) =
        post(json!({ "action": "place-fingers", "traveler": "chen", "mode": "impostor" })).await;
    assert_eq!(status, 200);
    let (status, _) = post(json!({ "action": "fire-alarm", "active": true })).await;
    assert_eq!(status, 200);

    let (status, state) = http_request(&control, Method::GET, "/v1/state", None)
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        state["devices"]["document-reader"]["state"]["passport"],
        "alice"
    );
    assert_eq!(
        state["devices"]["camera"]["link"]["fault"]["status"],
        "hardware-error"
    );
    assert_eq!(
        state["devices"]["fingerprint-sensor"]["state"]["placed"]["mode"],
        "impostor"
    );
    assert_eq!(
        state["devices"]["lane-controller"]["state"]["fire_alarm"],
        true
    );
    assert_eq!(state["cards"]["alice"]["location"], "traveler");

    let (_, travelers) = http_request(&control, Method::GET, "/v1/travelers", None)
        .await
        .unwrap();
    let ids: Vec<&str> = travelers["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(ids.contains(&"alice") && ids.contains(&"farah"));
    let emil = travelers["travelers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == "emil")
        .unwrap();
    assert_eq!(emil["qr_payload"], "TTP1:TTP0000001005:19TE00001:FRA");
    sim.shutdown().await;
}

#[tokio::test]
async fn central_registry_and_records() {
    let (sim, _dir, _, central) = start_http().await;
    let (status, health) = http_request(&central, Method::GET, "/health", None)
        .await
        .unwrap();
    assert_eq!((status, health["status"].as_str()), (200, Some("ok")));
    let (_, registry) = http_request(&central, Method::GET, "/v1/registry", None)
        .await
        .unwrap();
    let list = registry["travelers"].as_array().unwrap();
    assert!(
        list.iter().all(|t| t["passport_number"] != "PA0000077"),
        "farah is not registered"
    );
    let chen = list
        .iter()
        .find(|t| t["card_number"] == "TTP0000001003")
        .unwrap();
    assert_eq!(chen["fingers"][0]["position"], "right-middle");
    use base64::Engine;
    let template = base64::engine::general_purpose::STANDARD
        .decode(chen["fingers"][0]["template"].as_str().unwrap())
        .unwrap();
    assert_eq!(&template[..4], b"FMR\0");
    let hugo = list
        .iter()
        .find(|t| t["card_number"] == "TTP0000001008")
        .unwrap();
    assert_eq!(hugo["passport_number"], "PAA000111");
    assert!(list.iter().any(|t| t["status"] == "revoked"));

    let record = json!({ "record_id": "r-1", "kind": "landing", "card_number": "TTP0000001001" });
    let (status, _) = http_request(&central, Method::POST, "/v1/records", Some(&record))
        .await
        .unwrap();
    assert_eq!(status, 201);
    let (status, answer) = http_request(&central, Method::POST, "/v1/records", Some(&record))
        .await
        .unwrap();
    assert_eq!((status, answer["duplicate"].as_bool()), (200, Some(true)));
    let changed = json!({ "record_id": "r-1", "kind": "departure" });
    let (status, _) = http_request(&central, Method::POST, "/v1/records", Some(&changed))
        .await
        .unwrap();
    assert_eq!(status, 409);
    let (status, _) = http_request(
        &central,
        Method::POST,
        "/v1/records",
        Some(&json!({ "kind": "x" })),
    )
    .await
    .unwrap();
    assert_eq!(status, 400);
    let (_, records) = http_request(&central, Method::GET, "/v1/records", None)
        .await
        .unwrap();
    assert_eq!(records["records"].as_array().unwrap().len(), 1);
    sim.shutdown().await;
}

#[test]
fn the_binary_serves_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_torii-sim"))
        .args(["serve", "--dir"])
        .arg(dir.path())
        .args(["--control", "127.0.0.1:0", "--central", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let done = line == "torii-sim: ready";
        seen.push(line);
        if done {
            break;
        }
    }
    assert_eq!(
        seen.last().map(String::as_str),
        Some("torii-sim: ready"),
        "{seen:?}"
    );
    let control = seen
        .iter()
        .find_map(|l| l.strip_prefix("torii-sim: control "))
        .unwrap()
        .to_owned();
    assert!(
        seen.iter()
            .any(|l| l.starts_with("torii-sim: device document-reader unix:"))
    );
    assert!(dir.path().join("fingerprint-sensor.sock").exists());

    let ctl = Command::new(env!("CARGO_BIN_EXE_torii-sim"))
        .args([
            "ctl",
            "--control",
            &control,
            "place-fingers",
            "alice",
            "poor",
        ])
        .output()
        .unwrap();
    assert!(ctl.status.success(), "{ctl:?}");
    let answer: serde_json::Value = serde_json::from_slice(&ctl.stdout).unwrap();
    assert_eq!(answer["result"]["mode"], "poor");
    let bad = Command::new(env!("CARGO_BIN_EXE_torii-sim"))
        .args(["ctl", "--control", &control, "present-passport", "nobody"])
        .output()
        .unwrap();
    assert!(!bad.status.success());

    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    assert!(child.wait().unwrap().success());
    assert!(!dir.path().join("fingerprint-sensor.sock").exists());
}

#[test]
fn a_bad_scenario_file_is_reported_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broken.toml");
    std::fs::write(&file, "[[traveler]]\nid = \"x\"\nsurname = 5\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_torii-sim"))
        .args(["serve", "--dir"])
        .arg(dir.path().join("s"))
        .args(["--control", "127.0.0.1:0", "--scenario"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("broken.toml") && err.contains("line 3"),
        "{err}"
    );
}
