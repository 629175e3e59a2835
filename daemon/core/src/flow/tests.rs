//! The sequences under a paused clock, against a scripted lane.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use time::macros::{date, datetime};
use tokio::sync::{mpsc, watch};
use torii_sdk::model::{
    DeviceClass, Door, DoorCommand, Event, FingerPosition, FingerSample, Request, Response, Status,
    Zone,
};

use super::*;
use crate::card::tests::{sample as card_data, test_issuer};
use crate::card::{CardData, encode_signed};
use crate::edcard::EdCard;
use crate::record::{Notice, Outcome, Step, TransactionRecord};
use crate::registry::tests::alice;
use crate::registry::{RegistrationStatus, RegistryStore};

/// A lane whose devices answer from a script and remember every call.
#[derive(Default)]
struct FakeLane {
    calls: Mutex<Vec<(DeviceClass, Request)>>,
    cancels: Mutex<Vec<DeviceClass>>,
    card_chip: Mutex<Vec<u8>>,
    mrz_ok: Mutex<bool>,
    print_result: Mutex<Option<Status>>,
    persons_in_lane: Mutex<u32>,
    /// CaptureFingers waits for `release_capture` (to act during a call).
    capture_hangs: Mutex<bool>,
    release_capture: tokio::sync::Notify,
    /// Doors jammed in a position: `GetDoor` reports it (other doors answer `Done`).
    stuck_doors: Mutex<Vec<(Door, torii_sdk::model::DoorState)>>,
    /// What the fingerprint sensor's driver declares (`None`: not known).
    finger_capabilities: Mutex<Option<u64>>,
}

#[derive(Clone, Default)]
struct Devices(Arc<FakeLane>);

impl GateDevices for Devices {
    async fn call(&self, class: DeviceClass, request: Request) -> Result<Response, DeviceFailure> {
        self.0.calls.lock().unwrap().push((class, request.clone()));
        let fail = |status| {
            Err(DeviceFailure {
                status,
                detail: "scripted".into(),
            })
        };
        match request {
            Request::ReadMrz => Ok(Response::Mrz {
                lines: vec![
                    if *self.0.mrz_ok.lock().unwrap() {
                        "OK"
                    } else {
                        "BAD"
                    }
                    .into(),
                ],
            }),
            Request::ReadCardChip => Ok(Response::CardChip {
                data: self.0.card_chip.lock().unwrap().clone(),
            }),
            Request::CaptureFingers { fingers, .. } => {
                let hangs = *self.0.capture_hangs.lock().unwrap();
                if hangs {
                    self.0.release_capture.notified().await;
                }
                let samples = fingers
                    .into_iter()
                    .map(|position| FingerSample {
                        position,
                        quality: Some(80),
                        template: vec![1],
                        image: vec![],
                    })
                    .collect();
                Ok(Response::Fingers { samples })
            }
            Request::CaptureFace { .. } => Ok(Response::Face {
                jpeg: vec![0xFF, 0xD8, 0xFF, 0xD9],
            }),
            Request::PrintLine { .. } => match *self.0.print_result.lock().unwrap() {
                Some(status) => fail(status),
                None => Ok(Response::Done),
            },
            Request::GetDoor { door } => Ok(self
                .0
                .stuck_doors
                .lock()
                .unwrap()
                .iter()
                .find(|(d, _)| *d == door)
                .map_or(Response::Done, |(_, state)| Response::DoorState {
                    state: *state,
                })),
            Request::GetPersonCount { zone: Zone::Lane } => Ok(Response::PersonCount {
                count: *self.0.persons_in_lane.lock().unwrap(),
            }),
            _ => Ok(Response::Done),
        }
    }

    fn cancel(&self, class: DeviceClass) {
        self.0.cancels.lock().unwrap().push(class);
    }

    fn driver(&self, class: DeviceClass) -> String {
        format!("fake-{class}")
    }

    fn capabilities(&self, class: DeviceClass) -> Option<u64> {
        match class {
            DeviceClass::FingerprintSensor => *self.0.finger_capabilities.lock().unwrap(),
            _ => None,
        }
    }
}

struct ScriptedVerifier(Mutex<VecDeque<FingerDecision>>);

impl FingerprintVerifier for ScriptedVerifier {
    fn verify(
        &self,
        enrolled: &[crate::registry::EnrolledFinger],
        _captured: &[FingerSample],
    ) -> Verification {
        let decision = self
            .0
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(FingerDecision::Match);
        let comparisons = enrolled
            .iter()
            .map(|f| crate::record::Comparison {
                finger: f.position,
                attempt: 0,
                score: if decision == FingerDecision::Match {
                    0.9
                } else {
                    0.1
                },
                threshold: 0.5,
                quality: Some(80),
            })
            .collect();
        Verification {
            decision,
            comparisons,
        }
    }
}

struct FakeMrz;

impl MrzChecker for FakeMrz {
    fn check(&self, lines: &[String]) -> Result<MrzIdentity, String> {
        if lines.first().map(String::as_str) != Some("OK") {
            return Err("line 2: document number check digit".into());
        }
        Ok(MrzIdentity {
            document_number: "TW1000017".into(),
            nationality: "GBR".into(),
            birth_yymmdd: "860412".into(),
            expiry: date!(2033 - 09 - 30),
            name: "TESTWOOD<<ALICE<SAMPLE".into(),
        })
    }
}

struct FakeInspector(ChipCheck);

impl DocumentInspector for FakeInspector {
    fn inspect<'a>(
        &'a self,
        _lines: &'a [String],
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ChipCheck> + Send + 'a>> {
        let verdict = self.0.clone();
        Box::pin(async move { verdict })
    }
}

struct FixedClock;

impl Clock for FixedClock {
    fn now(&self) -> time::OffsetDateTime {
        datetime!(2026-11-21 03:00 UTC)
    }
}

/// The outbox stand-in: remembers every commit, and whether the exit door had been
/// commanded open when it happened; `fail` makes commits fail (a full or broken store).
#[derive(Default)]
struct Sink {
    records: Mutex<Vec<TransactionRecord>>,
    fail: Mutex<bool>,
    lane: Mutex<Option<Arc<FakeLane>>>,
    exit_open_at_commit: Mutex<Vec<bool>>,
}

impl crate::record::RecordSink for Sink {
    fn commit<'a>(
        &'a self,
        record: &'a TransactionRecord,
    ) -> crate::BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            if let Some(lane) = &*self.lane.lock().unwrap() {
                let opened = lane.calls.lock().unwrap().iter().any(|(_, r)| {
                    matches!(
                        r,
                        Request::SetDoor {
                            door: Door::Exit,
                            command: DoorCommand::Open
                        }
                    )
                });
                self.exit_open_at_commit.lock().unwrap().push(opened);
            }
            if *self.fail.lock().unwrap() {
                return Err("disk full".into());
            }
            self.records.lock().unwrap().push(record.clone());
            Ok(())
        })
    }
}

struct Harness {
    lane: Arc<FakeLane>,
    inputs: mpsc::Sender<GateInput>,
    status: watch::Receiver<GateStatus>,
    sink: Arc<Sink>,
    registry: Arc<RegistryStore>,
}

fn complete_ed_card() -> EdCard {
    EdCard {
        flight: "NH212".into(),
        address_in_japan: "1-1 Test-cho, Tokyo".into(),
        purpose: "tourism".into(),
        length_of_stay_days: 10,
        deported_before: Some(false),
        convicted_before: Some(false),
        carrying_prohibited_items: Some(false),
        carrying_firearms: Some(false),
        ..EdCard::default()
    }
}

fn start(
    lane_kind: crate::rules::Lane,
    decisions: &[FingerDecision],
    change: impl FnOnce(&mut crate::registry::Registration, &mut CardData),
) -> Harness {
    start_with_chip(
        lane_kind,
        decisions,
        change,
        ChipCheck::Genuine {
            access: "pace".into(),
        },
    )
}

fn start_with_chip(
    lane_kind: crate::rules::Lane,
    decisions: &[FingerDecision],
    change: impl FnOnce(&mut crate::registry::Registration, &mut CardData),
    chip: ChipCheck,
) -> Harness {
    let mut registration = alice();
    registration.ed_card = Some(complete_ed_card());
    let mut card = card_data();
    change(&mut registration, &mut card);
    let registry = Arc::new(RegistryStore::open_in_memory().unwrap());
    registry.upsert_all(&[registration]).unwrap();
    let lane = Arc::new(FakeLane::default());
    *lane.mrz_ok.lock().unwrap() = true;
    *lane.persons_in_lane.lock().unwrap() = 1;
    *lane.card_chip.lock().unwrap() = encode_signed(&card, &test_issuer());
    let sink = Arc::new(Sink::default());
    *sink.lane.lock().unwrap() = Some(lane.clone());
    let (inputs, receiver) = mpsc::channel(64);
    let config = FlowConfig {
        gate_id: "NRT-T1-E01".into(),
        lane: lane_kind,
        ..FlowConfig::default()
    };
    let ports = Ports {
        devices: Devices(lane.clone()),
        registry: registry.clone(),
        verifier: Arc::new(ScriptedVerifier(Mutex::new(
            decisions.iter().copied().collect(),
        ))),
        mrz: Arc::new(FakeMrz),
        inspector: Arc::new(FakeInspector(chip)),
        clock: Arc::new(FixedClock),
        sink: sink.clone(),
        card_issuer: *test_issuer().verifying_key(),
    };
    let (engine, status) = Engine::new(config, ports, receiver);
    tokio::spawn(engine.run());
    Harness {
        lane,
        inputs,
        status,
        sink,
        registry,
    }
}

fn device(class: DeviceClass, event: Event) -> GateInput {
    GateInput::Device { class, event }
}

impl Harness {
    async fn send(&self, input: GateInput) {
        self.inputs.send(input).await.unwrap();
    }

    /// Waits (in paused time) for the next finished transaction.
    async fn finished(&mut self) -> TransactionRecord {
        let before = self.status.borrow().transactions;
        self.status
            .wait_for(|s| s.transactions > before)
            .await
            .unwrap();
        self.sink.records.lock().unwrap().last().cloned().unwrap()
    }

    async fn at_step(&mut self, step: Step) {
        self.status.wait_for(|s| s.step == step).await.unwrap();
    }

    fn door_commands(&self, door: Door) -> Vec<DoorCommand> {
        self.lane
            .calls
            .lock()
            .unwrap()
            .iter()
            .filter_map(|(_, r)| match r {
                Request::SetDoor { door: d, command } if *d == door => Some(*command),
                _ => None,
            })
            .collect()
    }

    fn exit_opened(&self) -> bool {
        self.door_commands(Door::Exit).contains(&DoorCommand::Open)
    }

    /// A traveler doing everything right on an entry lane, up to the given step.
    async fn entry_until(&mut self, last: Step) {
        self.send(device(DeviceClass::DocumentReader, Event::MediaPresent))
            .await;
        if last == Step::Document {
            return;
        }
        self.send(device(DeviceClass::CardPrinter, Event::MediaPresent))
            .await;
        if last == Step::Card {
            return;
        }
        self.at_step(Step::EdCard).await;
        self.send(GateInput::EdCardConfirmed(complete_ed_card()))
            .await;
        if last == Step::EdCard {
            return;
        }
        self.at_step(Step::TakeCard).await;
        if last == Step::TakeCard {
            return;
        }
        self.send(device(DeviceClass::CardPrinter, Event::MediaRemoved))
            .await;
        self.at_step(Step::Passage).await;
        self.send(device(
            DeviceClass::LaneController,
            Event::PersonCount {
                zone: Zone::Lane,
                count: 0,
            },
        ))
        .await;
    }
}

fn referred(record: &TransactionRecord) -> Option<ReasonCode> {
    match record.outcome {
        Outcome::Referred(reason) => Some(reason),
        Outcome::Admitted => None,
    }
}

#[tokio::test(start_paused = true)]
async fn entry_admits_a_registered_traveler_as_the_user_guide_describes() {
    let mut gate = start(crate::rules::Lane::Entry, &[], |_, _| {});
    gate.entry_until(Step::Done).await;
    let record = gate.finished().await;
    assert_eq!(record.outcome, Outcome::Admitted, "{:?}", record.decided_by);
    let steps: Vec<Step> = record.steps.iter().map(|s| s.step).collect();
    assert_eq!(
        steps,
        [
            Step::Document,
            Step::Card,
            Step::EdCard,
            Step::Fingerprints,
            Step::Face,
            Step::Printing,
            Step::TakeCard,
            Step::Passage,
        ],
        "the record is committed as the door opens: passage is its last step"
    );
    assert_eq!(
        *gate.sink.exit_open_at_commit.lock().unwrap(),
        [false],
        "committed before the exit door was commanded open"
    );
    assert_eq!(
        record.printed_line.as_deref(),
        Some("2026-11-21 NRT Temporary Visitor (90 days) NRT-T1-E01")
    );
    assert_eq!(record.period_of_stay_days, Some(90));
    assert_eq!(
        record.comparisons.len(),
        2,
        "both fingers' scores and thresholds are recorded"
    );
    assert!(record.face_jpeg.is_some());
    assert!(record.ed_card.is_some());
    // Exactly the registered fingers were asked for.
    let asked = gate
        .lane
        .calls
        .lock()
        .unwrap()
        .iter()
        .find_map(|(_, r)| match r {
            Request::CaptureFingers { fingers, .. } => Some(fingers.clone()),
            _ => None,
        });
    assert_eq!(
        asked,
        Some(vec![FingerPosition::RightIndex, FingerPosition::LeftIndex])
    );
    // The exit opened once and closed behind the traveler.
    let exit = gate.door_commands(Door::Exit);
    let opened = exit.iter().position(|c| *c == DoorCommand::Open).unwrap();
    assert_eq!(exit[opened + 1], DoorCommand::Close);
    assert_eq!(
        gate.registry
            .lookup("TW1000017", "GBR")
            .unwrap()
            .unwrap()
            .records_on_card,
        4
    );
}

#[tokio::test(start_paused = true)]
async fn no_card_in_time_is_a_referral_and_the_exit_stays_closed() {
    let mut gate = start(crate::rules::Lane::Entry, &[], |_, _| {});
    gate.entry_until(Step::Document).await;
    // Paused clock: the 30 s card timeout elapses at once.
    let record = gate.finished().await;
    assert_eq!(referred(&record), Some(ReasonCode::CardMissing));
    assert!(!gate.exit_opened());
}

#[tokio::test(start_paused = true)]
async fn three_mismatches_refer_and_poor_captures_say_so() {
    let mut gate = start(
        crate::rules::Lane::Entry,
        &[FingerDecision::NoMatch; 3],
        |_, _| {},
    );
    gate.entry_until(Step::EdCard).await;
    let record = gate.finished().await;
    assert_eq!(referred(&record), Some(ReasonCode::FingerprintMismatch));
    assert_eq!(
        record.comparisons.len(),
        6,
        "every attempt's comparisons are recorded"
    );
    assert!(!gate.exit_opened());

    let mut gate = start(
        crate::rules::Lane::Entry,
        &[FingerDecision::Retry; 3],
        |_, _| {},
    );
    gate.entry_until(Step::EdCard).await;
    assert_eq!(
        referred(&gate.finished().await),
        Some(ReasonCode::FingerprintQuality)
    );
}

#[tokio::test(start_paused = true)]
async fn a_retry_then_a_match_admits() {
    let mut gate = start(
        crate::rules::Lane::Entry,
        &[FingerDecision::Retry, FingerDecision::Match],
        |_, _| {},
    );
    gate.entry_until(Step::Done).await;
    let record = gate.finished().await;
    assert_eq!(record.outcome, Outcome::Admitted);
    assert_eq!(record.comparisons.iter().map(|c| c.attempt).max(), Some(2));
}

#[tokio::test(start_paused = true)]
async fn the_fire_alarm_aborts_the_flow_and_frees_every_door() {
    let mut gate = start(crate::rules::Lane::Entry, &[], |_, _| {});
    *gate.lane.capture_hangs.lock().unwrap() = true;
    gate.entry_until(Step::EdCard).await;
    gate.at_step(Step::Fingerprints).await;
    gate.send(device(
        DeviceClass::LaneController,
        Event::FireAlarm { active: true },
    ))
    .await;
    let record = gate.finished().await;
    assert_eq!(referred(&record), Some(ReasonCode::FireAlarm));
    assert!(gate.door_commands(Door::Exit).contains(&DoorCommand::Free));
    assert!(gate.door_commands(Door::Entry).contains(&DoorCommand::Free));
    assert_eq!(gate.status.borrow().mode, Mode::FireAlarm);
    assert!(
        gate.lane
            .cancels
            .lock()
            .unwrap()
            .contains(&DeviceClass::FingerprintSensor),
        "the capture was cancelled"
    );
    // A passport presented during the alarm starts nothing.
    gate.send(device(DeviceClass::DocumentReader, Event::MediaPresent))
        .await;
    gate.send(device(
        DeviceClass::LaneController,
        Event::FireAlarm { active: false },
    ))
    .await;
    gate.status
        .wait_for(|s| s.mode == Mode::InService)
        .await
        .unwrap();
    assert_eq!(gate.status.borrow().transactions, 1);
}

#[tokio::test(start_paused = true)]
async fn a_second_person_in_the_lane_stops_everything() {
    let mut gate = start(crate::rules::Lane::Entry, &[], |_, _| {});
    gate.entry_until(Step::Card).await;
    gate.at_step(Step::EdCard).await;
    gate.send(device(
        DeviceClass::LaneController,
        Event::PersonCount {
            zone: Zone::Lane,
            count: 2,
        },
    ))
    .await;
    let record = gate.finished().await;
    assert_eq!(referred(&record), Some(ReasonCode::MultiplePersons));
    assert!(!gate.exit_opened());

    // Also caught just before the door opens, when the count comes from the sensor.
    let mut gate = start(crate::rules::Lane::Entry, &[], |_, _| {});
    *gate.lane.persons_in_lane.lock().unwrap() = 2;
    gate.entry_until(Step::TakeCard).await;
    gate.send(device(DeviceClass::CardPrinter, Event::MediaRemoved))
        .await;
    assert_eq!(
        referred(&gate.finished().await),
        Some(ReasonCode::MultiplePersons)
    );
    assert!(!gate.exit_opened());
}

#[tokio::test(start_paused = true)]
async fn a_card_pulled_mid_print_is_referred() {
    let mut gate = start(crate::rules::Lane::Entry, &[], |_, _| {});
    *gate.lane.print_result.lock().unwrap() = Some(Status::MediaAbsent);
    gate.entry_until(Step::EdCard).await;
    let record = gate.finished().await;
    assert_eq!(referred(&record), Some(ReasonCode::CardRemovedEarly));
    assert_eq!(record.printed_line, None);
    assert!(!gate.exit_opened());
}

#[tokio::test(start_paused = true)]
async fn a_forged_card_is_retained() {
    let mut gate = start(crate::rules::Lane::Entry, &[], |_, _| {});
    let mut forged = encode_signed(&card_data(), &test_issuer());
    let at = forged.len() / 2;
    forged[at] ^= 0x20;
    *gate.lane.card_chip.lock().unwrap() = forged;
    gate.entry_until(Step::Card).await;
    let record = gate.finished().await;
    assert!(matches!(
        referred(&record),
        Some(ReasonCode::CardForged | ReasonCode::CardUnreadable)
    ));
    assert!(
        gate.lane
            .calls
            .lock()
            .unwrap()
            .iter()
            .any(|(_, r)| *r == Request::RetainCard)
            || referred(&record) == Some(ReasonCode::CardUnreadable)
    );
}

#[tokio::test(start_paused = true)]
async fn an_altered_mrz_and_a_foreign_qr_code_are_refused() {
    let mut gate = start(crate::rules::Lane::Entry, &[], |_, _| {});
    *gate.lane.mrz_ok.lock().unwrap() = false;
    gate.entry_until(Step::Document).await;
    assert_eq!(
        referred(&gate.finished().await),
        Some(ReasonCode::DocumentUnreadable)
    );

    gate.send(device(
        DeviceClass::CodeReader,
        Event::CodeRead {
            symbology: torii_sdk::model::Symbology::Qr,
            payload: b"https://example.invalid".to_vec(),
        },
    ))
    .await;
    assert_eq!(
        referred(&gate.finished().await),
        Some(ReasonCode::QrCodeInvalid)
    );
}

#[tokio::test(start_paused = true)]
async fn the_registration_rules_apply_at_the_gate() {
    type Change = fn(&mut crate::registry::Registration, &mut CardData);
    let cases: Vec<(ReasonCode, Change)> = vec![
        (ReasonCode::RegistrationRevoked, |r, _| {
            r.status = RegistrationStatus::Revoked
        }),
        (ReasonCode::CardFull, |r, _| r.records_on_card = 15),
        (ReasonCode::RegistrationNotFound, |r, _| {
            r.nationality = "FRA".into();
            r.holder_key = "someone else".into();
        }),
        // Same person, other passport registered: the passport was renewed.
        (ReasonCode::PassportRenewed, |r, _| {
            r.passport_number = "PAA000111".into()
        }),
    ];
    for (expected, change) in cases {
        let mut gate = start(crate::rules::Lane::Entry, &[], change);
        gate.entry_until(Step::Document).await;
        let record = gate.finished().await;
        assert_eq!(referred(&record), Some(expected));
        let steps: Vec<Step> = record.steps.iter().map(|s| s.step).collect();
        assert!(
            !steps.contains(&Step::Card),
            "{expected}: referred before the card step"
        );
    }
    let mut gate = start(crate::rules::Lane::Entry, &[], |_, c| {
        c.card_number = "TTP0000009999".into()
    });
    gate.entry_until(Step::Card).await;
    assert_eq!(
        referred(&gate.finished().await),
        Some(ReasonCode::CardNotHolders)
    );
}

#[tokio::test(start_paused = true)]
async fn an_invalid_ed_card_stays_on_screen_and_a_yes_answer_is_referred() {
    let mut gate = start(crate::rules::Lane::Entry, &[], |r, _| r.ed_card = None);
    gate.entry_until(Step::Card).await;
    gate.at_step(Step::EdCard).await;
    // Nothing pre-entered: the screen starts empty; a half-filled form is refused.
    assert_eq!(gate.status.borrow().ed_card, Some(EdCard::default()));
    gate.send(GateInput::EdCardConfirmed(EdCard {
        flight: "NH212".into(),
        ..EdCard::default()
    }))
    .await;
    gate.status
        .wait_for(|s| !s.ed_card_errors.is_empty())
        .await
        .unwrap();
    assert_eq!(gate.status.borrow().step, Step::EdCard);
    let mut declared = complete_ed_card();
    declared.carrying_firearms = Some(true);
    gate.send(GateInput::EdCardConfirmed(declared)).await;
    assert_eq!(
        referred(&gate.finished().await),
        Some(ReasonCode::EdCardDeclaration)
    );
}

#[tokio::test(start_paused = true)]
async fn the_fifteenth_record_comes_with_a_rewrite_notice() {
    let mut gate = start(crate::rules::Lane::Entry, &[], |r, _| {
        r.records_on_card = 14
    });
    gate.entry_until(Step::Done).await;
    let record = gate.finished().await;
    assert_eq!(record.outcome, Outcome::Admitted);
    assert_eq!(record.notices, vec![Notice::RewriteCard]);
}

#[tokio::test(start_paused = true)]
async fn exit_uses_the_card_reader_and_prints_nothing() {
    let mut gate = start(crate::rules::Lane::Exit, &[], |_, _| {});
    *gate.lane.capture_hangs.lock().unwrap() = true;
    gate.send(device(DeviceClass::DocumentReader, Event::MediaPresent))
        .await;
    gate.send(device(DeviceClass::CardReader, Event::MediaPresent))
        .await;
    gate.at_step(Step::Fingerprints).await;
    // The traveler lifts the card during the capture: not lost, the take-card step sees it.
    gate.send(device(DeviceClass::CardReader, Event::MediaRemoved))
        .await;
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    gate.lane.release_capture.notify_one();
    gate.at_step(Step::Passage).await;
    gate.send(device(
        DeviceClass::LaneController,
        Event::PersonCount {
            zone: Zone::Lane,
            count: 0,
        },
    ))
    .await;
    let record = gate.finished().await;
    assert_eq!(record.outcome, Outcome::Admitted, "{:?}", record.decided_by);
    let steps: Vec<Step> = record.steps.iter().map(|s| s.step).collect();
    assert_eq!(
        steps,
        [
            Step::Document,
            Step::Card,
            Step::Fingerprints,
            Step::TakeCard,
            Step::Passage,
        ]
    );
    assert_eq!(record.printed_line, None);
    assert!(
        !gate
            .lane
            .calls
            .lock()
            .unwrap()
            .iter()
            .any(|(c, _)| *c == DeviceClass::CardPrinter)
    );
}

#[tokio::test(start_paused = true)]
async fn out_of_service_ignores_travelers_and_an_officer_can_stop_a_transaction() {
    let mut gate = start(crate::rules::Lane::Entry, &[], |_, _| {});
    gate.send(GateInput::SetMode(Mode::OutOfService)).await;
    gate.status
        .wait_for(|s| s.mode == Mode::OutOfService)
        .await
        .unwrap();
    gate.send(device(DeviceClass::DocumentReader, Event::MediaPresent))
        .await;
    gate.send(GateInput::SetMode(Mode::InService)).await;
    gate.status
        .wait_for(|s| s.mode == Mode::InService)
        .await
        .unwrap();
    assert_eq!(gate.status.borrow().transactions, 0);
    assert!(gate.door_commands(Door::Exit).contains(&DoorCommand::Lock));

    gate.entry_until(Step::Card).await;
    gate.at_step(Step::EdCard).await;
    gate.send(GateInput::SetMode(Mode::Maintenance)).await;
    assert_eq!(
        referred(&gate.finished().await),
        Some(ReasonCode::OutOfService)
    );
}

#[tokio::test(start_paused = true)]
async fn a_chip_that_fails_inspection_is_refused_whatever_the_mrz_says() {
    let mut gate = start_with_chip(
        crate::rules::Lane::Entry,
        &[],
        |_, _| {},
        ChipCheck::Refused {
            code: "DOC_DG_HASH_MISMATCH".into(),
        },
    );
    gate.entry_until(Step::Document).await;
    let record = gate.finished().await;
    assert_eq!(referred(&record), Some(ReasonCode::DocumentChipInvalid));
    assert_eq!(record.decided_by.as_deref(), Some("DOC_DG_HASH_MISMATCH"));
    assert!(!gate.exit_opened());
}

#[tokio::test(start_paused = true)]
async fn a_passport_without_a_chip_goes_on_with_its_mrz() {
    let mut gate = start_with_chip(crate::rules::Lane::Entry, &[], |_, _| {}, ChipCheck::NoChip);
    gate.entry_until(Step::Done).await;
    let record = gate.finished().await;
    assert_eq!(record.outcome, Outcome::Admitted);
    assert_eq!(record.chip, Some(ChipCheck::NoChip));
}

#[tokio::test(start_paused = true)]
async fn a_record_that_cannot_be_stored_keeps_the_door_closed() {
    let mut gate = start(crate::rules::Lane::Entry, &[], |_, _| {});
    *gate.sink.fail.lock().unwrap() = true;
    gate.entry_until(Step::TakeCard).await;
    gate.send(device(DeviceClass::CardPrinter, Event::MediaRemoved))
        .await;
    gate.status.wait_for(|s| s.transactions == 1).await.unwrap();
    assert!(!gate.exit_opened(), "fail closed: the exit never opened");
    let last = gate.status.borrow().last.clone().unwrap();
    assert_eq!(last.outcome, Outcome::Referred(ReasonCode::RecordNotStored));
    assert!(gate.sink.records.lock().unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn an_interlock_takes_the_lane_out_of_service_until_it_clears() {
    let mut gate = start(crate::rules::Lane::Entry, &[], |_, _| {});
    gate.send(GateInput::Interlock {
        interlock: Interlock::RegistryStale,
        active: true,
    })
    .await;
    gate.status
        .wait_for(|s| s.interlocks == [Interlock::RegistryStale])
        .await
        .unwrap();
    assert!(!gate.status.borrow().accepting());
    assert_eq!(
        gate.door_commands(Door::Entry).last(),
        Some(&DoorCommand::Close)
    );
    // A passport laid down now starts nothing.
    gate.send(device(DeviceClass::DocumentReader, Event::MediaPresent))
        .await;
    tokio::time::sleep(std::time::Duration::from_secs(60)).await;
    assert_eq!(gate.status.borrow().step, Step::Idle);
    assert_eq!(gate.status.borrow().transactions, 0);
    gate.send(GateInput::Interlock {
        interlock: Interlock::RegistryStale,
        active: false,
    })
    .await;
    gate.status.wait_for(|s| s.accepting()).await.unwrap();
    assert_eq!(
        gate.door_commands(Door::Entry).last(),
        Some(&DoorCommand::Open)
    );
    gate.send(device(DeviceClass::DocumentReader, Event::MediaRemoved))
        .await;
    gate.entry_until(Step::Done).await;
    assert_eq!(gate.finished().await.outcome, Outcome::Admitted);
}

#[tokio::test(start_paused = true)]
async fn an_officer_door_command_ends_the_transaction_then_moves_the_door() {
    let mut gate = start(crate::rules::Lane::Entry, &[], |_, _| {});
    gate.entry_until(Step::EdCard).await;
    gate.at_step(Step::TakeCard).await;
    gate.send(GateInput::OfficerDoor {
        door: Door::Exit,
        command: DoorCommand::Open,
    })
    .await;
    let record = gate.finished().await;
    assert_eq!(referred(&record), Some(ReasonCode::OfficerIntervention));
    gate.status
        .wait_for(|s| s.step == Step::Idle)
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    assert_eq!(
        gate.door_commands(Door::Exit).last(),
        Some(&DoorCommand::Open),
        "the officer's command runs after the referral closed the exit"
    );
}

#[tokio::test(start_paused = true)]
async fn a_stamp_request_is_noted_on_the_record() {
    let mut gate = start(crate::rules::Lane::Entry, &[], |_, _| {});
    gate.entry_until(Step::EdCard).await;
    gate.send(GateInput::StampRequested).await;
    gate.at_step(Step::TakeCard).await;
    gate.send(device(DeviceClass::CardPrinter, Event::MediaRemoved))
        .await;
    let record = gate.finished().await;
    assert_eq!(record.outcome, Outcome::Admitted);
    assert!(record.notices.contains(&Notice::StampRequested));
}

#[tokio::test(start_paused = true)]
async fn tailgating_raises_an_alarm_an_officer_acknowledges() {
    let mut gate = start(crate::rules::Lane::Entry, &[], |_, _| {});
    gate.entry_until(Step::Card).await;
    gate.send(device(
        DeviceClass::LaneController,
        Event::PersonCount {
            zone: Zone::Lane,
            count: 2,
        },
    ))
    .await;
    let record = gate.finished().await;
    assert_eq!(referred(&record), Some(ReasonCode::MultiplePersons));
    let alarm = gate.status.borrow().alarm.clone().unwrap();
    assert_eq!(alarm.kind, AlarmKind::Tailgating);
    assert_eq!(alarm.record_id, Some(record.record_id));
    gate.send(GateInput::AcknowledgeAlarm).await;
    gate.status.wait_for(|s| s.alarm.is_none()).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn an_entry_door_jammed_open_refers_before_the_exit_opens() {
    use torii_sdk::model::DoorState;
    let mut gate = start(crate::rules::Lane::Entry, &[], |_, _| {});
    gate.entry_until(Step::TakeCard).await;
    gate.lane
        .stuck_doors
        .lock()
        .unwrap()
        .push((Door::Entry, DoorState::Open));
    gate.send(device(DeviceClass::CardPrinter, Event::MediaRemoved))
        .await;
    let record = gate.finished().await;
    assert_eq!(referred(&record), Some(ReasonCode::DeviceFault));
    assert!(!gate.exit_opened(), "never both doors open");
    assert!(
        gate.sink.records.lock().unwrap().len() == 1,
        "only the referral was committed"
    );
    let status = gate.status.borrow().clone();
    assert_eq!(status.mode, Mode::OutOfService);
    assert_eq!(status.alarm.map(|a| a.kind), Some(AlarmKind::DeviceFault));
}

#[tokio::test(start_paused = true)]
async fn an_exit_door_left_open_after_passage_closes_the_lane_until_acknowledged() {
    use torii_sdk::model::DoorState;
    let mut gate = start(crate::rules::Lane::Entry, &[], |_, _| {});
    gate.entry_until(Step::TakeCard).await;
    gate.send(device(DeviceClass::CardPrinter, Event::MediaRemoved))
        .await;
    gate.at_step(Step::Passage).await;
    // The traveler walks out; the door does not shut behind them.
    gate.lane
        .stuck_doors
        .lock()
        .unwrap()
        .push((Door::Exit, DoorState::Open));
    gate.send(device(
        DeviceClass::LaneController,
        Event::PersonCount {
            zone: Zone::Lane,
            count: 0,
        },
    ))
    .await;
    let record = gate.finished().await;
    assert_eq!(
        record.outcome,
        Outcome::Admitted,
        "they passed: the record stands"
    );
    let status = gate.status.borrow().clone();
    assert_eq!(status.mode, Mode::OutOfService);
    assert_eq!(status.alarm.map(|a| a.kind), Some(AlarmKind::DeviceFault));
    // The entry is not opened onto a lane whose exit stands open.
    let entry = gate.door_commands(Door::Entry);
    assert_ne!(entry.last(), Some(&DoorCommand::Open), "{entry:?}");
    // Acknowledged while still jammed: back in service is refused again at once.
    gate.send(GateInput::AcknowledgeAlarm).await;
    gate.status
        .wait_for(|s| s.alarm.is_some() && s.mode == Mode::OutOfService)
        .await
        .unwrap();
    // Repaired, then acknowledged: in service, entry open.
    gate.lane.stuck_doors.lock().unwrap().clear();
    gate.send(GateInput::AcknowledgeAlarm).await;
    gate.status
        .wait_for(|s| s.alarm.is_none() && s.mode == Mode::InService)
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    assert_eq!(
        gate.door_commands(Door::Entry).last(),
        Some(&DoorCommand::Open)
    );
}

#[tokio::test(start_paused = true)]
async fn a_reloaded_configuration_applies_from_the_next_traveler_on() {
    let mut gate = start(crate::rules::Lane::Entry, &[], |_, _| {});
    gate.entry_until(Step::EdCard).await;
    // Mid-transaction: a shorter stay, and values that are not reloadable.
    let mut reloaded = FlowConfig {
        gate_id: "ANOTHER-GATE".into(),
        lane: crate::rules::Lane::Exit,
        ..FlowConfig::default()
    };
    reloaded.stay.default_days = 30;
    gate.send(GateInput::Reconfigure(Box::new(reloaded))).await;
    gate.at_step(Step::TakeCard).await;
    gate.send(device(DeviceClass::CardPrinter, Event::MediaRemoved))
        .await;
    gate.at_step(Step::Passage).await;
    gate.send(device(
        DeviceClass::LaneController,
        Event::PersonCount {
            zone: Zone::Lane,
            count: 0,
        },
    ))
    .await;
    let first = gate.finished().await;
    assert_eq!(
        first.printed_line.as_deref(),
        Some("2026-11-21 NRT Temporary Visitor (90 days) NRT-T1-E01"),
        "the traveler under way keeps the configuration the transaction began with"
    );

    gate.entry_until(Step::Done).await;
    let second = gate.finished().await;
    assert_eq!(second.outcome, Outcome::Admitted, "{:?}", second.decided_by);
    assert_eq!(
        second.printed_line.as_deref(),
        Some("2026-11-21 NRT Temporary Visitor (30 days) NRT-T1-E01"),
        "the next one gets the new stay; the gate id and the lane did not change"
    );
    assert_eq!(gate.status.borrow().lane, crate::rules::Lane::Entry);
}

#[tokio::test(start_paused = true)]
async fn a_card_forgotten_by_a_device_that_went_away_is_not_read_for_the_next_traveler() {
    let mut gate = start(crate::rules::Lane::Exit, &[], |_, _| {});
    // A card lay on the reader; the reader was unplugged (its removal never seen).
    gate.send(device(DeviceClass::CardReader, Event::MediaPresent))
        .await;
    gate.send(device(
        DeviceClass::CardReader,
        Event::StateChanged {
            state: torii_sdk::model::DeviceState::Unavailable,
        },
    ))
    .await;
    gate.send(device(DeviceClass::DocumentReader, Event::MediaPresent))
        .await;
    gate.at_step(Step::Card).await;
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let read = gate
        .lane
        .calls
        .lock()
        .unwrap()
        .iter()
        .any(|(_, r)| matches!(r, Request::ReadCardChip));
    assert!(
        !read,
        "the card step waits for a card instead of reading a ghost"
    );
}

#[tokio::test(start_paused = true)]
async fn an_image_only_sensor_is_asked_for_images_others_for_templates() {
    use torii_sdk::abi::{TORII_CAP_FINGER_IMAGE, TORII_CAP_FINGER_TEMPLATE};
    for (declared, expected) in [
        (None, (true, false)),
        (Some(TORII_CAP_FINGER_TEMPLATE), (true, false)),
        (
            Some(TORII_CAP_FINGER_TEMPLATE | TORII_CAP_FINGER_IMAGE),
            (true, false),
        ),
        (Some(TORII_CAP_FINGER_IMAGE), (false, true)),
    ] {
        let mut gate = start(crate::rules::Lane::Entry, &[], |_, _| {});
        *gate.lane.finger_capabilities.lock().unwrap() = declared;
        gate.entry_until(Step::Done).await;
        gate.finished().await;
        let asked: Vec<(bool, bool)> = gate
            .lane
            .calls
            .lock()
            .unwrap()
            .iter()
            .filter_map(|(_, r)| match r {
                Request::CaptureFingers {
                    want_template,
                    want_image,
                    ..
                } => Some((*want_template, *want_image)),
                _ => None,
            })
            .collect();
        assert_eq!(asked, [expected], "declared {declared:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_traveler_through_before_the_exit_is_checked_is_not_a_stuck_door() {
    use torii_sdk::model::DoorState;
    // The exit opened, the traveler walked through at once and it closed behind them
    // before the engine asked where it is: it reads closed, and the lane is empty.
    for (in_lane, admitted) in [(0, true), (1, false)] {
        let mut gate = start(crate::rules::Lane::Entry, &[], |_, _| {});
        gate.entry_until(Step::TakeCard).await;
        gate.lane
            .stuck_doors
            .lock()
            .unwrap()
            .push((Door::Exit, DoorState::Closed));
        *gate.lane.persons_in_lane.lock().unwrap() = in_lane;
        gate.send(device(DeviceClass::CardPrinter, Event::MediaRemoved))
            .await;
        if admitted {
            // The lane-empty event the engine waits for at the passage.
            gate.at_step(Step::Passage).await;
            gate.send(device(
                DeviceClass::LaneController,
                Event::PersonCount {
                    zone: Zone::Lane,
                    count: 0,
                },
            ))
            .await;
        }
        let record = gate.finished().await;
        let status = gate.status.borrow().clone();
        if admitted {
            assert_eq!(record.outcome, Outcome::Admitted, "{:?}", record.decided_by);
            assert_eq!(status.mode, Mode::InService);
            assert_eq!(status.alarm, None);
        } else {
            // (The record committed before the door opened stands: see the threat model.)
            let last = status.last.as_ref().map(|l| l.outcome);
            assert_eq!(
                last,
                Some(Outcome::Referred(ReasonCode::DeviceFault)),
                "{record:?}"
            );
            assert_eq!(status.mode, Mode::OutOfService);
        }
    }
}
