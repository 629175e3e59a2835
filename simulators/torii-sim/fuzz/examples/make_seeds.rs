//! Writes the binary and generated seed corpora of the fuzz targets from the
//! simulator's own fictitious data (scenario travelers, their passports' chip files,
//! cards, QR codes, registry), so the seeds are in the real formats:
//!
//! ```text
//! cargo run --manifest-path simulators/torii-sim/fuzz/Cargo.toml --target-dir target/fuzz \
//!     --example make_seeds -- .
//! ```
//!
//! (from the repository root; the argument is the root). Each seed file is named after
//! what it holds; an existing file is overwritten, nothing else is removed.
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use torii_sim::data::{card, chip_fs, mrz, qr};
use torii_sim::scenario::Scenario;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

struct Seeds {
    root: PathBuf,
    written: usize,
}

impl Seeds {
    fn put(&mut self, crate_dir: &str, target: &str, name: &str, bytes: &[u8]) -> Result<()> {
        let dir = self.root.join(crate_dir).join("fuzz/seeds").join(target);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(name), bytes)?;
        self.written += 1;
        Ok(())
    }
}

fn scenario(root: &Path, name: &str) -> Result<Scenario> {
    Ok(Scenario::load(
        &root.join("simulators/torii-sim/scenarios").join(name),
    )?)
}

fn main() -> Result<()> {
    let root = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| ".".into()));
    let mut seeds = Seeds {
        root: root.clone(),
        written: 0,
    };
    let default = scenario(&root, "default.toml")?;
    let suite = scenario(&root, "suite.toml")?;

    // Scenario files as shipped.
    for name in ["default.toml", "suite.toml", "exit-suite.toml"] {
        let text = std::fs::read(root.join("simulators/torii-sim/scenarios").join(name))?;
        seeds.put("simulators/torii-sim", "scenario", name, &text)?;
    }

    // MRZs (the printed page, and the chip's), QR codes and card chip content.
    for t in default
        .travelers
        .iter()
        .chain(suite.travelers.iter().take(12))
    {
        if let Ok(lines) = mrz::traveler_mrz(t) {
            seeds.put(
                "daemon/icao",
                "mrz",
                &format!("{}-page", t.id),
                lines.join("\n").as_bytes(),
            )?;
        }
        if let Ok(lines) = mrz::chip_mrz(t) {
            seeds.put(
                "daemon/icao",
                "mrz",
                &format!("{}-chip", t.id),
                lines.concat().as_bytes(),
            )?;
        }
        if let Some(payload) = qr::registration_qr_payload(t) {
            seeds.put("daemon/core", "qr", &t.id, payload.as_bytes())?;
        }
        if let Some(content) = card::card_chip_content(t) {
            seeds.put("daemon/core", "card", &t.id, &content)?;
        }
    }

    // Passport chips: the LDS files, the SOD and EF.CardAccess of a few travelers, one
    // with a chip fault (the SOD signed by the wrong document signer).
    let chip_travelers = default
        .travelers
        .iter()
        .chain(suite.travelers.iter())
        .filter(|t| t.passport.chip)
        .take(3)
        .chain(
            suite
                .travelers
                .iter()
                .filter(|t| t.passport.chip_fault.is_some())
                .take(2),
        );
    for t in chip_travelers {
        let chip = chip_fs::build(t)?;
        for (fid, name, target) in [
            (0x011E, "ef-com", "lds"),
            (0x0101, "dg1", "lds"),
            (0x0102, "dg2", "lds"),
            (0x010E, "dg14", "lds"),
            (0x010F, "dg15", "lds"),
            (0x011D, "sod", "sod"),
            (0x011C, "card-access", "pace"),
        ] {
            // DG2's face JPEG is tens of kilobytes: one is enough.
            if let Some(bytes) = chip.file(fid)
                && (fid != 0x0102 || bytes.len() < 32 * 1024)
            {
                seeds.put("daemon/icao", target, &format!("{}-{name}", t.id), bytes)?;
            }
        }
    }

    // Central's registry export, then central's answers to the gate (call byte, status
    // byte, body: see the central_answers target).
    // Two travelers only: each entry carries finger templates, and libFuzzer's longest
    // input is the longest seed's length.
    let entries = torii_sim::central::registry_entries(&default);
    let registry = json!({ "travelers": entries.iter().take(2).collect::<Vec<_>>() });
    seeds.put(
        "daemon/core",
        "registry_import",
        "two-travelers",
        &serde_json::to_vec_pretty(&registry)?,
    )?;
    let answers: Vec<(&str, u8, u8, Value)> = vec![
        (
            "records-ack",
            0,
            0,
            json!({ "acknowledged": ["0b9e2a52-6c4e-4d0e-9a51-2f3c1d7e8a10"] }),
        ),
        (
            "records-out-of-order",
            0,
            1,
            json!({
                "acknowledged": [],
                "record_id": "0b9e2a52-6c4e-4d0e-9a51-2f3c1d7e8a10",
                "last_seq": 41
            }),
        ),
        (
            "records-problem",
            0,
            2,
            json!({ "error": "gate id does not match the certificate" }),
        ),
        (
            "registry-page",
            1,
            0,
            json!({
                "changes": [
                    { "op": "upsert", "seq": 1, "traveler": entries.first().cloned().unwrap_or(Value::Null) },
                    { "op": "upsert", "seq": 2, "traveler": entries.get(1).cloned().unwrap_or(Value::Null) },
                    { "op": "erase", "seq": 3, "passport_number": "TW1000017", "nationality": "GBR" }
                ],
                "cursor": 3,
                "more": false
            }),
        ),
        (
            "revocation-page",
            2,
            0,
            json!({
                "revocations": [
                    { "seq": 1, "passport_number": "TW1000017", "nationality": "GBR", "status": "revoked" },
                    { "seq": 2, "passport_number": "TW1000025", "nationality": "GBR", "status": "passport-reported-lost" }
                ],
                "cursor": 2,
                "more": true
            }),
        ),
        (
            "revocation-error",
            2,
            6,
            json!({ "error": "central is restarting" }),
        ),
    ];
    for (name, call, status, body) in answers {
        let mut bytes = vec![call, status];
        bytes.extend(serde_json::to_vec(&body)?);
        seeds.put("daemon/link", "central_answers", name, &bytes)?;
    }

    // ED cards as the kiosk sends them.
    for (i, t) in default
        .travelers
        .iter()
        .filter(|t| t.ed_card.is_some())
        .take(3)
        .enumerate()
    {
        let ed = t.ed_card.as_ref().map(serde_json::to_value).transpose()?;
        let flight = ed
            .as_ref()
            .and_then(|e| e.get("flight"))
            .cloned()
            .unwrap_or(json!(""));
        let card = json!({
            "flight": flight,
            "arrival_date": "2026-07-01",
            "address_in_japan": "Hotel Example Shinagawa, 1-2-3 Konan, Minato-ku, Tokyo",
            "phone_in_japan": "03-0000-0001",
            "purpose": "tourism",
            "length_of_stay_days": 10 + i,
            "occupation": "engineer",
            "deported_before": false,
            "convicted_before": false,
            "carrying_prohibited_items": false,
            "carrying_firearms": i == 2
        });
        seeds.put("daemon/core", "ed_card", &t.id, &serde_json::to_vec(&card)?)?;
        let mut body = vec![1u8];
        body.extend(serde_json::to_vec(&card)?);
        seeds.put(
            "daemon/toriid",
            "http_body",
            &format!("ed-card-{}", t.id),
            &body,
        )?;
    }

    driver_host(&mut seeds)?;
    audit(&mut seeds)?;
    println!(
        "{} seed files written under {}",
        seeds.written,
        root.display()
    );
    Ok(())
}

/// Frames of the driver-host protocol, both directions, as toriid and the worker send
/// them (one stream of frames per file).
fn driver_host(seeds: &mut Seeds) -> Result<()> {
    use torii_plugin_host::protocol::{HostToWorker, WorkerToHost};
    use torii_sdk::model::{Event, Request, Response};
    use torii_sdk::wire::encode;

    let request = |text: &str| serde_json::from_str::<Request>(text);
    let mut to_worker = encode(&HostToWorker::Open {
        device_id: "document-reader".into(),
        driver: "/usr/lib/torii/drivers/libtorii_sim_document_reader.so".into(),
        expected_class: Some(torii_sdk::model::DeviceClass::DocumentReader),
        config_json: r#"{"socket":"/run/torii-sim/document-reader.sock"}"#.into(),
        call_timeout_ms: 3000,
    })?;
    let calls = [
        r#""get-state""#,
        r#""read-mrz""#,
        r#""chip-connect""#,
        r#"{"chip-transmit":{"apdu":[0,164,4,12,7,160,0,0,2,71,16,1]}}"#,
        r#"{"set-door":{"door":"exit","command":"open"}}"#,
    ];
    for (id, text) in calls.iter().enumerate() {
        match request(text) {
            Ok(request) => to_worker.extend(encode(&HostToWorker::Call {
                id: id as u64,
                request,
            })?),
            Err(e) => eprintln!("skipped request {text}: {e}"),
        }
    }
    to_worker.extend(encode(&HostToWorker::Cancel)?);
    to_worker.extend(encode(&HostToWorker::Shutdown)?);
    seeds.put(
        "daemon/plugin-host",
        "driver_host",
        "host-to-worker",
        &to_worker,
    )?;

    let mut to_host = encode(&WorkerToHost::Opened {
        result: Err("the driver's ABI major 2 is not supported".into()),
    })?;
    for (id, text) in [
        r#""done""#,
        r#"{"mrz":{"lines":["P<UTOTESTWOOD<<ALICE<SAMPLE<<<<<<<<<<<<<<<<<<","TW10000170UTO8604125F3309302<<<<<<<<<<<<<<04"]}}"#,
        r#"{"apdu":{"response":[144,0]}}"#,
        r#"{"state":{"state":"READY"}}"#,
    ]
    .iter()
    .enumerate()
    {
        match serde_json::from_str::<Response>(text) {
            Ok(response) => to_host.extend(encode(&WorkerToHost::Reply { id: id as u64, result: Ok(response) })?),
            Err(e) => eprintln!("skipped response {text}: {e}"),
        }
    }
    for text in [
        r#""media-present""#,
        r#"{"state-changed":{"state":"BUSY"}}"#,
        r#"{"code-read":{"symbology":"qr","payload":[84,84,80,49]}}"#,
    ] {
        match serde_json::from_str::<Event>(text) {
            Ok(event) => to_host.extend(encode(&WorkerToHost::Event { event })?),
            Err(e) => eprintln!("skipped event {text}: {e}"),
        }
    }
    let health = serde_json::from_value(
        json!({ "state": "UNAVAILABLE", "fault": "driver panicked", "restarts": 2 }),
    )?;
    to_host.extend(encode(&WorkerToHost::Health { health })?);
    seeds.put(
        "daemon/plugin-host",
        "driver_host",
        "worker-to-host",
        &to_host,
    )?;
    Ok(())
}

/// A genuine keyed audit trail ([7; 32], the key the audit targets use) as the verify
/// target reads it: flags (head present, keyed), the head, a zero byte, the log.
fn audit(seeds: &mut Seeds) -> Result<()> {
    use torii_audit::{AuditEvent, AuditKey, AuditKind, AuditLog};
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("audit.log");
    let log = AuditLog::open(&path, Some(AuditKey::from_bytes([7u8; 32])))?;
    for (i, kind) in AuditKind::ALL.iter().take(6).enumerate() {
        log.append(AuditEvent::new(*kind, format!("seed event {i}")).by("token:console-1"))?;
    }
    drop(log);
    let log = std::fs::read(&path)?;
    let head = std::fs::read(torii_audit::head_path(&path))?;
    let mut input = vec![3u8];
    input.extend(&head);
    input.push(0);
    input.extend(&log);
    seeds.put("daemon/audit", "verify", "keyed-with-head", &input)?;
    let mut unkeyed = vec![0u8];
    unkeyed.extend(&log);
    seeds.put("daemon/audit", "verify", "no-head-no-key", &unkeyed)?;
    Ok(())
}
