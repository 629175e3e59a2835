//! Software time per entry and exit transaction through the real flow engine with
//! zero-latency devices: the real MRZ checks (torii-icao), card signature check
//! (P-256), SQLite registry and fingerprint matcher (torii-matcher); only the devices
//! are instant fakes. Prints p50/p99 and transactions per second; asserts nothing.
//!
//!     cargo bench -p toriid --bench flow

use std::sync::{Arc, Mutex};
use std::time::Instant;

use time::macros::date;
use tokio::sync::{mpsc, watch};
use torii_core::card::{CardData, encode_signed};
use torii_core::flow::{
    DeviceFailure, Engine, FlowConfig, GateDevices, GateInput, GateStatus, Ports, SystemClock,
};
use torii_core::record::{RecordSink, Step, TransactionRecord};
use torii_core::registry::{
    EnrolledFinger, Registration, RegistrationStatus, RegistryStore, holder_key,
};
use torii_core::rules::Lane;
use torii_matcher::record::FingerPosition as MatcherFinger;
use torii_matcher::synth::{Finger, Params};
use torii_sdk::model::{DeviceClass, Event, FingerPosition, FingerSample, Request, Response, Zone};
use toriid::gate::{IcaoMrz, MatcherVerifier};

/// The ICAO specimen traveler with a passport valid until 2034, check digits computed.
fn mrz() -> Vec<String> {
    let digit = |field: &str| {
        char::from(b'0' + torii_icao::mrz::check_digit(field.as_bytes()).expect("MRZ characters"))
    };
    let (number, birth, expiry, optional) = ("L898902C3", "740812", "341231", "ZE184226B<<<<<");
    let line2 = format!(
        "{number}{}UTO{birth}{}F{expiry}{}{optional}{}",
        digit(number),
        digit(birth),
        digit(expiry),
        digit(optional)
    );
    let composite = format!("{}{}{}", &line2[0..10], &line2[13..20], &line2[21..43]);
    vec![
        "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<".to_owned(),
        format!("{line2}{}", digit(&composite)),
    ]
}

/// Instant devices: fresh fingerprint impressions each capture, a signed card, a JPEG.
struct InstantLane {
    card: Vec<u8>,
    params: Params,
    fingers: Vec<(FingerPosition, Finger)>,
    captures: Mutex<u64>,
}

#[derive(Clone)]
struct Devices(Arc<InstantLane>);

impl GateDevices for Devices {
    async fn call(&self, _class: DeviceClass, request: Request) -> Result<Response, DeviceFailure> {
        Ok(match request {
            Request::ReadMrz => Response::Mrz { lines: mrz() },
            Request::ReadCardChip => Response::CardChip {
                data: self.0.card.clone(),
            },
            Request::CaptureFingers { .. } => {
                let n = {
                    let mut captures = self.0.captures.lock().unwrap();
                    *captures += 1;
                    *captures
                };
                let samples = self
                    .0
                    .fingers
                    .iter()
                    .enumerate()
                    .map(|(i, (position, finger))| {
                        let iso = finger
                            .impression(&self.0.params, 7, i as u64, n + 1)
                            .to_iso(MatcherFinger::new(position.code() as u8).unwrap());
                        FingerSample {
                            position: *position,
                            quality: Some(80),
                            template: iso.to_bytes().unwrap(),
                            image: vec![],
                        }
                    })
                    .collect();
                Response::Fingers { samples }
            }
            Request::CaptureFace { .. } => Response::Face {
                jpeg: vec![0xFF, 0xD8, 0xFF, 0xD9],
            },
            Request::GetPersonCount { .. } => Response::PersonCount { count: 1 },
            _ => Response::Done,
        })
    }

    fn cancel(&self, _class: DeviceClass) {}

    fn driver(&self, class: DeviceClass) -> String {
        format!("instant-{class}")
    }
}

/// Chip inspection is measured on its own (`cargo bench -p torii-icao --bench read`).
struct NoChip;

impl torii_core::flow::DocumentInspector for NoChip {
    fn inspect<'a>(
        &'a self,
        _lines: &'a [String],
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = torii_core::flow::ChipCheck> + Send + 'a>>
    {
        Box::pin(async { torii_core::flow::ChipCheck::NoChip })
    }
}

struct Discard;

impl RecordSink for Discard {
    fn commit<'a>(
        &'a self,
        _record: &'a TransactionRecord,
    ) -> torii_core::BoxFuture<'a, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }
}

fn device(class: DeviceClass, event: Event) -> GateInput {
    GateInput::Device { class, event }
}

async fn wait_step(status: &mut watch::Receiver<GateStatus>, step: Step) {
    let reached = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        status.wait_for(|s| s.step == step),
    )
    .await
    .is_ok();
    if !reached {
        panic!(
            "the bench traveler never reached {step:?}; last outcome {:?}",
            status.borrow().last
        );
    }
}

/// Runs `n` transactions; returns each one's wall time in µs.
async fn run(lane_kind: Lane, n: usize) -> Vec<f64> {
    let issuer = p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap();
    let params = Params::with_difficulty(0.6);
    let fingers: Vec<(FingerPosition, Finger)> =
        [FingerPosition::RightIndex, FingerPosition::LeftIndex]
            .into_iter()
            .enumerate()
            .map(|(i, p)| (p, Finger::new(&params, 7, i as u64)))
            .collect();
    let enrolled = fingers
        .iter()
        .enumerate()
        .map(|(i, (position, finger))| EnrolledFinger {
            position: *position,
            template: finger
                .impression(&params, 7, i as u64, 0)
                .to_iso(MatcherFinger::new(position.code() as u8).unwrap())
                .to_bytes()
                .unwrap(),
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let registry = Arc::new(
        RegistryStore::open(
            &dir.path().join("registry.db"),
            torii_core::registry::RegistryKey::random(),
        )
        .unwrap(),
    );
    registry
        .upsert_all(&[Registration {
            passport_number: "L898902C3".into(),
            nationality: "UTO".into(),
            holder_key: holder_key("UTO", "740812", "ERIKSSON<<ANNA<MARIA"),
            card_number: "TTP0000000001".into(),
            card_issued: date!(2025 - 01 - 01),
            card_valid_until: date!(2027 - 12 - 31),
            status: RegistrationStatus::Active,
            records_on_card: 0,
            fingers: enrolled,
            ed_card: None,
        }])
        .unwrap();
    let card = encode_signed(
        &CardData {
            card_number: "TTP0000000001".into(),
            passport_number: "L898902C3".into(),
            nationality: "UTO".into(),
            issued: date!(2025 - 01 - 01),
            valid_until: date!(2027 - 12 - 31),
        },
        &issuer,
    );
    let lane = Arc::new(InstantLane {
        card,
        params,
        fingers,
        captures: Mutex::new(0),
    });
    let ports = Ports {
        devices: Devices(lane),
        registry: registry.clone(),
        verifier: Arc::new(MatcherVerifier::builtin()),
        mrz: Arc::new(IcaoMrz),
        inspector: Arc::new(NoChip),
        clock: Arc::new(SystemClock),
        sink: Arc::new(Discard),
        card_issuer: *issuer.verifying_key(),
    };
    let config = FlowConfig {
        gate_id: "BENCH-01".into(),
        lane: lane_kind,
        ..FlowConfig::default()
    };
    let (inputs, receiver) = mpsc::channel(64);
    let (engine, mut status) = Engine::new(config, ports, receiver);
    tokio::spawn(engine.run());
    let card_device = if lane_kind == Lane::Entry {
        DeviceClass::CardPrinter
    } else {
        DeviceClass::CardReader
    };
    let ed_card = torii_core::edcard::EdCard {
        flight: "NH212".into(),
        address_in_japan: "1-1 Test-cho, Tokyo".into(),
        purpose: "tourism".into(),
        length_of_stay_days: 10,
        deported_before: Some(false),
        convicted_before: Some(false),
        carrying_prohibited_items: Some(false),
        carrying_firearms: Some(false),
        ..Default::default()
    };
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        // The card's back never fills up during the benchmark.
        registry
            .upsert_all(&[registry
                .lookup("L898902C3", "UTO")
                .unwrap()
                .map(|mut r| {
                    r.records_on_card = 0;
                    r
                })
                .unwrap()])
            .unwrap();
        let before = status.borrow().transactions;
        let started = Instant::now();
        inputs
            .send(device(DeviceClass::DocumentReader, Event::MediaPresent))
            .await
            .unwrap();
        inputs
            .send(device(card_device, Event::MediaPresent))
            .await
            .unwrap();
        if lane_kind == Lane::Entry {
            wait_step(&mut status, Step::EdCard).await;
            inputs
                .send(GateInput::EdCardConfirmed(ed_card.clone()))
                .await
                .unwrap();
        }
        wait_step(&mut status, Step::TakeCard).await;
        inputs
            .send(device(card_device, Event::MediaRemoved))
            .await
            .unwrap();
        wait_step(&mut status, Step::Passage).await;
        inputs
            .send(device(
                DeviceClass::LaneController,
                Event::PersonCount {
                    zone: Zone::Lane,
                    count: 0,
                },
            ))
            .await
            .unwrap();
        status.wait_for(|s| s.transactions > before).await.unwrap();
        let outcome = status.borrow().last.as_ref().map(|l| l.outcome);
        assert_eq!(
            outcome,
            Some(torii_core::record::Outcome::Admitted),
            "bench traveler must be admitted"
        );
        times.push(started.elapsed().as_secs_f64() * 1e6);
    }
    times
}

fn report(name: &str, mut times: Vec<f64>) {
    let total: f64 = times.iter().sum();
    times.sort_by(f64::total_cmp);
    let pct = |p: usize| times[(times.len() * p / 100).min(times.len() - 1)];
    println!(
        "{name:<6} {} transactions: p50 {:.2} ms, p99 {:.2} ms, {:.0} transactions/s through one lane",
        times.len(),
        pct(50) / 1000.0,
        pct(99) / 1000.0,
        times.len() as f64 / (total / 1e6)
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let _ = run(Lane::Entry, 20).await; // warm-up
        println!("software time per transaction (zero-latency devices; real MRZ, card signature, registry, matcher):");
        report("entry", run(Lane::Entry, 500).await);
        report("exit", run(Lane::Exit, 500).await);
    });
}
