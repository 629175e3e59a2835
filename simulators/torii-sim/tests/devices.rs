//! Starts the simulator on a temp dir and drives every device class through a raw
//! protocol client, as a sim driver would.

mod common;

use common::{Client, start};
use torii_sdk::model::{
    DeviceClass as C, DeviceState, Door, DoorCommand, DoorState, Event, FingerPosition as F, Light,
    Request, Response, Status, Symbology, Zone,
};
use torii_sim::FingerMode;
use torii_sim::data::chip_fs::EMRTD_AID;
use torii_sim::data::mrz::verify_td3_line2;
use torii_sim_link::protocol::{DriverToSim, MAX_FRAME_LEN, PROTOCOL_VERSION};

async fn apdu(c: &mut Client, bytes: &[u8]) -> Vec<u8> {
    match c
        .call(Request::ChipTransmit {
            apdu: bytes.to_vec(),
        })
        .await
    {
        Ok(Response::Apdu { response }) => response,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn document_reader_mrz_and_chip() {
    let (sim, _dir) = start().await;
    let (mut c, state) = Client::connect(&sim, C::DocumentReader).await;
    assert_eq!(state, DeviceState::Ready);
    assert_eq!(c.call(Request::ReadMrz).await, Err(Status::MediaAbsent));
    assert_eq!(c.call(Request::ChipConnect).await, Err(Status::MediaAbsent));

    sim.present_passport("alice").unwrap();
    assert_eq!(c.event().await, Event::MediaPresent);
    let Ok(Response::Mrz { lines }) = c.call(Request::ReadMrz).await else {
        panic!()
    };
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0], "P<GBRTESTWOOD<<ALICE<SAMPLE<<<<<<<<<<<<<<<<<");
    assert!(verify_td3_line2(&lines[1]), "{}", lines[1]);
    assert!(lines[1].starts_with("TW1000017"));

    assert_eq!(
        c.call(Request::ChipTransmit {
            apdu: vec![0, 0xA4, 4, 0x0C]
        })
        .await,
        Err(Status::InvalidArgument)
    );
    let Ok(Response::Atr { atr }) = c.call(Request::ChipConnect).await else {
        panic!()
    };
    assert_eq!(atr[0], 0x3B);
    let mut select = vec![0x00, 0xA4, 0x04, 0x0C, 0x07];
    select.extend_from_slice(&EMRTD_AID);
    assert_eq!(apdu(&mut c, &select).await, [0x90, 0x00]);
    // The chip requires access control (BAC): files cannot be selected or read in plain.
    assert_eq!(
        apdu(&mut c, &[0x00, 0xA4, 0x02, 0x0C, 0x02, 0x01, 0x1E]).await,
        [0x69, 0x82]
    );
    assert_eq!(
        apdu(&mut c, &[0x00, 0xB0, 0x00, 0x00, 0x04]).await,
        [0x69, 0x82]
    );
    // BAC starts with GET CHALLENGE: 8 bytes.
    let challenge = apdu(&mut c, &[0x00, 0x84, 0x00, 0x00, 0x08]).await;
    assert_eq!(challenge.len(), 10);
    assert_eq!(&challenge[8..], [0x90, 0x00]);
    // Errors are status words, not failures.
    assert_eq!(apdu(&mut c, &[0x00]).await, [0x67, 0x00]);
    assert_eq!(
        apdu(&mut c, &[0x00, 0xA4, 0x02, 0x0C, 0x02, 0x01, 0x05]).await,
        [0x6A, 0x82]
    );
    assert_eq!(c.call(Request::ChipDisconnect).await, Ok(Response::Done));

    // A passport without a chip.
    sim.present_passport("emil").unwrap();
    assert_eq!(c.event().await, Event::MediaRemoved);
    assert_eq!(c.event().await, Event::MediaPresent);
    assert_eq!(
        c.call(Request::ChipConnect).await,
        Err(Status::NotSupported)
    );
    assert!(matches!(
        c.call(Request::ReadMrz).await,
        Ok(Response::Mrz { .. })
    ));
    sim.remove_passport().unwrap();
    assert_eq!(c.event().await, Event::MediaRemoved);
    assert_eq!(c.call(Request::ReadMrz).await, Err(Status::MediaAbsent));
    // Other classes' requests.
    assert_eq!(c.call(Request::EjectCard).await, Err(Status::NotSupported));
    assert_eq!(
        c.call(Request::GetState).await,
        Ok(Response::State {
            state: DeviceState::Ready
        })
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn code_reader_reads_only_when_enabled() {
    let (sim, _dir) = start().await;
    let (mut c, _) = Client::connect(&sim, C::CodeReader).await;
    assert_eq!(sim.present_qr("emil").unwrap()["read"], false);
    assert_eq!(
        c.call(Request::SetCodeReaderEnabled { enabled: true })
            .await,
        Ok(Response::Done)
    );
    assert_eq!(sim.present_qr("emil").unwrap()["read"], true);
    assert_eq!(
        c.event().await,
        Event::CodeRead {
            symbology: Symbology::Qr,
            payload: b"TTP1:TTP0000001005:19TE00001:FRA".to_vec()
        }
    );
    sim.present_qr_payload("garbage").unwrap();
    assert_eq!(
        c.event().await,
        Event::CodeRead {
            symbology: Symbology::Qr,
            payload: b"garbage".to_vec()
        }
    );
    assert!(sim.present_qr("alice").is_err(), "alice has no QR sticker");
    assert!(sim.present_qr("nobody").is_err());
}

#[tokio::test]
async fn card_printer_reads_prints_and_ejects() {
    let (sim, _dir) = start().await;
    let (mut c, _) = Client::connect(&sim, C::CardPrinter).await;
    assert_eq!(
        c.call(Request::ReadCardChip).await,
        Err(Status::MediaAbsent)
    );
    assert_eq!(
        c.call(Request::PrintLine { line: "x".into() }).await,
        Err(Status::MediaAbsent)
    );
    assert!(sim.insert_card("farah").is_err(), "farah is not registered");

    sim.insert_card("bruno").unwrap();
    assert_eq!(c.event().await, Event::MediaPresent);
    let Ok(Response::CardChip { data }) = c.call(Request::ReadCardChip).await else {
        panic!()
    };
    // Signed card data (torii_core::card), verified with the simulator's issuer key.
    let card = verified_card(&data);
    assert_eq!(card.card_number, "TTP0000001002");
    let line = "2026-07-01 NRT T1 LANDING TV 90D";
    assert_eq!(
        c.call(Request::PrintLine { line: line.into() }).await,
        Ok(Response::Done)
    );
    assert_eq!(
        c.call(Request::PrintLine {
            line: "\u{7}".into()
        })
        .await,
        Err(Status::InvalidArgument)
    );
    assert!(sim.take_card().is_err(), "not ejected yet");
    assert_eq!(c.call(Request::EjectCard).await, Ok(Response::Done));
    assert_eq!(
        c.call(Request::ReadCardChip).await,
        Err(Status::MediaAbsent)
    );
    sim.take_card().unwrap();
    assert_eq!(c.event().await, Event::MediaRemoved);
    let state = sim.state();
    assert_eq!(state["cards"]["bruno"]["printed_lines"][0], line);
    assert_eq!(state["cards"]["bruno"]["location"], "traveler");

    // Retained card.
    sim.insert_card("alice").unwrap();
    assert_eq!(c.event().await, Event::MediaPresent);
    assert_eq!(c.call(Request::RetainCard).await, Ok(Response::Done));
    assert_eq!(c.event().await, Event::MediaRemoved);
    assert_eq!(sim.state()["cards"]["alice"]["location"], "retained");
    assert!(sim.insert_card("alice").is_err());
}

#[tokio::test(start_paused = true)]
async fn card_pulled_mid_print() {
    let (sim, _dir) = start().await;
    let (mut c, _) = Client::connect(&sim, C::CardPrinter).await;
    sim.insert_card("alice").unwrap();
    assert_eq!(c.event().await, Event::MediaPresent);
    let id = c
        .start_call(Request::PrintLine {
            line: "LANDING".into(),
        })
        .await;
    // GetState is answered inline: Busy proves the print call is under way.
    assert_eq!(
        c.call(Request::GetState).await,
        Ok(Response::State {
            state: DeviceState::Busy
        })
    );
    sim.remove_card().unwrap();
    assert_eq!(c.reply(id).await, Err(Status::MediaAbsent));
    assert_eq!(c.event().await, Event::MediaRemoved);
    assert!(
        sim.state()["cards"]["alice"]["printed_lines"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn card_reader_reads_the_card() {
    let (sim, _dir) = start().await;
    let (mut c, _) = Client::connect(&sim, C::CardReader).await;
    assert_eq!(
        c.call(Request::ReadCardChip).await,
        Err(Status::MediaAbsent)
    );
    sim.place_card("chen").unwrap();
    assert_eq!(c.event().await, Event::MediaPresent);
    let Ok(Response::CardChip { data }) = c.call(Request::ReadCardChip).await else {
        panic!()
    };
    let card = verified_card(&data);
    assert_eq!(card.card_number, "TTP0000001003");
    assert!(
        sim.insert_card("chen").is_err(),
        "the card is on the reader"
    );
    sim.lift_card().unwrap();
    assert_eq!(c.event().await, Event::MediaRemoved);
}

fn verified_card(data: &[u8]) -> torii_core::card::CardData {
    let issuer =
        torii_core::card::issuer_key_from_pem(&torii_sim::data::card::issuer_public_key_pem())
            .unwrap();
    torii_core::card::decode_verified(data, &issuer).unwrap()
}

fn capture(fingers: Vec<torii_sdk::model::FingerPosition>, timeout_ms: u32) -> Request {
    Request::CaptureFingers {
        fingers,
        timeout_ms,
        want_template: true,
        want_image: false,
    }
}

#[tokio::test(start_paused = true)]
async fn fingerprint_sensor_captures_times_out_and_cancels() {
    let (sim, _dir) = start().await;
    let (mut c, _) = Client::connect(&sim, C::FingerprintSensor).await;
    // Nobody places fingers: the paused clock runs to the deadline.
    assert_eq!(
        c.call(capture(vec![F::RightIndex, F::LeftIndex], 15_000))
            .await,
        Err(Status::Timeout)
    );
    assert_eq!(
        c.call(capture(vec![], 1000)).await,
        Err(Status::InvalidArgument)
    );

    sim.place_fingers("alice", FingerMode::Genuine).unwrap();
    assert_eq!(c.event().await, Event::FingerPresent { present: true });
    let Ok(Response::Fingers { samples }) = c
        .call(capture(vec![F::RightIndex, F::LeftIndex], 15_000))
        .await
    else {
        panic!()
    };
    assert_eq!(samples.len(), 2);
    assert_eq!(samples[0].position, F::RightIndex);
    assert_eq!(samples[1].position, F::LeftIndex);
    assert_eq!(&samples[0].template[..8], b"FMR\0 20\0");
    assert_eq!(samples[0].template[24], 2, "finger position code");
    assert!(samples[0].quality.unwrap() >= 60);
    // A second capture is a different impression.
    let Ok(Response::Fingers { samples: again }) = c.call(capture(vec![F::RightIndex], 1000)).await
    else {
        panic!()
    };
    assert_ne!(again[0].template, samples[0].template);

    sim.place_fingers("alice", FingerMode::Poor).unwrap();
    let Ok(Response::Fingers { samples: poor }) = c.call(capture(vec![F::RightIndex], 1000)).await
    else {
        panic!()
    };
    assert!(poor[0].quality.unwrap() <= 15);

    sim.lift_fingers().unwrap();
    assert_eq!(c.event().await, Event::FingerPresent { present: false });
    // Waiting call answered when fingers arrive.
    let id = c.start_call(capture(vec![F::RightMiddle], 60_000)).await;
    sim.place_fingers("chen", FingerMode::Impostor).unwrap();
    let Ok(Response::Fingers { samples: imp }) = c.reply(id).await else {
        panic!()
    };
    assert_eq!(imp[0].position, F::RightMiddle);
    assert_eq!(c.event().await, Event::FingerPresent { present: true });

    // Cancel a waiting call; overlapping calls are refused; GetState says Busy.
    sim.lift_fingers().unwrap();
    let id = c.start_call(capture(vec![F::RightIndex], 60_000)).await;
    assert_eq!(
        c.call(Request::GetState).await,
        Ok(Response::State {
            state: DeviceState::Busy
        })
    );
    assert_eq!(
        c.call(capture(vec![F::RightIndex], 10)).await,
        Err(Status::Busy)
    );
    c.send(&DriverToSim::Cancel { id }).await;
    assert_eq!(c.reply(id).await, Err(Status::Cancelled));
    assert_eq!(
        c.call(Request::GetState).await,
        Ok(Response::State {
            state: DeviceState::Ready
        })
    );
}

#[tokio::test(start_paused = true)]
async fn camera_captures_a_face() {
    let (sim, _dir) = start().await;
    let (mut c, _) = Client::connect(&sim, C::Camera).await;
    assert_eq!(
        c.call(Request::CaptureFace { timeout_ms: 5000 }).await,
        Err(Status::Timeout)
    );
    sim.look_at_camera("alice").unwrap();
    assert_eq!(c.event().await, Event::SubjectPresent { present: true });
    let Ok(Response::Face { jpeg }) = c.call(Request::CaptureFace { timeout_ms: 5000 }).await
    else {
        panic!()
    };
    assert_eq!(&jpeg[..2], [0xFF, 0xD8]);
    sim.leave_camera().unwrap();
    assert_eq!(c.event().await, Event::SubjectPresent { present: false });
    let id = c
        .start_call(Request::CaptureFace { timeout_ms: 60_000 })
        .await;
    sim.look_at_camera("bruno").unwrap();
    assert!(matches!(c.reply(id).await, Ok(Response::Face { .. })));
}

#[tokio::test]
async fn lane_controller_doors_people_and_alarm() {
    let (sim, _dir) = start().await;
    let (mut c, _) = Client::connect(&sim, C::LaneController).await;
    // Presence on connect: both doors, three zones.
    assert_eq!(
        c.event().await,
        Event::DoorState {
            door: Door::Entry,
            state: DoorState::Closed
        }
    );
    assert_eq!(
        c.event().await,
        Event::DoorState {
            door: Door::Exit,
            state: DoorState::Closed
        }
    );
    for zone in [Zone::Entry, Zone::Lane, Zone::Exit] {
        assert_eq!(c.event().await, Event::PersonCount { zone, count: 0 });
    }
    // Entry door closed: the person waits in the entry zone.
    sim.enter_lane().unwrap();
    assert_eq!(
        c.event().await,
        Event::PersonCount {
            zone: Zone::Entry,
            count: 1
        }
    );
    assert_eq!(
        c.call(Request::SetDoor {
            door: Door::Entry,
            command: DoorCommand::Open
        })
        .await,
        Ok(Response::Done)
    );
    assert_eq!(
        c.event().await,
        Event::DoorState {
            door: Door::Entry,
            state: DoorState::Open
        }
    );
    sim.enter_lane().unwrap();
    assert_eq!(
        c.event().await,
        Event::PersonCount {
            zone: Zone::Entry,
            count: 0
        }
    );
    assert_eq!(
        c.event().await,
        Event::PersonCount {
            zone: Zone::Lane,
            count: 1
        }
    );
    assert_eq!(
        c.call(Request::GetPersonCount { zone: Zone::Lane }).await,
        Ok(Response::PersonCount { count: 1 })
    );
    assert!(sim.walk_through().is_err(), "exit door closed");
    // Tailgating.
    sim.second_person().unwrap();
    assert_eq!(
        c.event().await,
        Event::PersonCount {
            zone: Zone::Lane,
            count: 2
        }
    );
    c.call(Request::SetDoor {
        door: Door::Exit,
        command: DoorCommand::Open,
    })
    .await
    .unwrap();
    assert_eq!(
        c.event().await,
        Event::DoorState {
            door: Door::Exit,
            state: DoorState::Open
        }
    );
    sim.walk_through().unwrap();
    assert_eq!(
        c.event().await,
        Event::PersonCount {
            zone: Zone::Lane,
            count: 1
        }
    );
    assert_eq!(
        c.event().await,
        Event::PersonCount {
            zone: Zone::Exit,
            count: 1
        }
    );
    assert_eq!(
        c.event().await,
        Event::DoorState {
            door: Door::Exit,
            state: DoorState::Closed
        }
    );
    assert_eq!(
        c.event().await,
        Event::PersonCount {
            zone: Zone::Exit,
            count: 0
        }
    );
    assert_eq!(
        c.call(Request::GetDoor { door: Door::Exit }).await,
        Ok(Response::DoorState {
            state: DoorState::Closed
        })
    );
    assert_eq!(
        sim.state()["devices"]["lane-controller"]["state"]["passed"],
        1
    );

    assert_eq!(
        c.call(Request::GetFireAlarm).await,
        Ok(Response::FireAlarm { active: false })
    );
    sim.fire_alarm(true).unwrap();
    assert_eq!(c.event().await, Event::FireAlarm { active: true });
    assert_eq!(
        c.call(Request::GetFireAlarm).await,
        Ok(Response::FireAlarm { active: true })
    );
    assert_eq!(
        c.call(Request::SetLight { light: Light::Red }).await,
        Ok(Response::Done)
    );
    assert_eq!(
        sim.state()["devices"]["lane-controller"]["state"]["light"],
        "red"
    );
}

#[tokio::test(start_paused = true)]
async fn faults_hangs_and_unplugs() {
    let (sim, _dir) = start().await;
    let (mut c, _) = Client::connect(&sim, C::DocumentReader).await;
    sim.present_passport("alice").unwrap();
    assert_eq!(c.event().await, Event::MediaPresent);

    // One-shot fault.
    sim.fault(C::DocumentReader, Status::HardwareError, false)
        .unwrap();
    assert_eq!(c.call(Request::ReadMrz).await, Err(Status::HardwareError));
    assert!(c.call(Request::ReadMrz).await.is_ok());
    // Sticky fault: Unavailable until cleared.
    sim.fault(C::DocumentReader, Status::MediaJammed, true)
        .unwrap();
    assert_eq!(
        c.event().await,
        Event::StateChanged {
            state: DeviceState::Unavailable
        }
    );
    assert_eq!(c.call(Request::ReadMrz).await, Err(Status::MediaJammed));
    assert_eq!(c.call(Request::ReadMrz).await, Err(Status::MediaJammed));
    assert_eq!(
        c.call(Request::GetState).await,
        Ok(Response::State {
            state: DeviceState::Unavailable
        })
    );
    sim.clear(C::DocumentReader).unwrap();
    assert_eq!(
        c.event().await,
        Event::StateChanged {
            state: DeviceState::Ready
        }
    );
    assert!(c.call(Request::ReadMrz).await.is_ok());

    // Hang: the call is never answered (the client's own timeout fires).
    sim.hang(C::DocumentReader).unwrap();
    let id = c.start_call(Request::ReadMrz).await;
    let waited = tokio::time::timeout(std::time::Duration::from_secs(5), c.reply(id)).await;
    assert!(waited.is_err(), "a hung device does not answer");
    sim.clear(C::DocumentReader).unwrap();
    assert!(c.call(Request::ReadMrz).await.is_ok());

    // Unplug: the connection drops and new ones are refused until replugged.
    sim.unplug(C::DocumentReader).unwrap();
    assert!(c.closed().await);
    let mut refused = Client::raw(&sim, C::DocumentReader).await;
    refused
        .send(&DriverToSim::Hello {
            protocol: PROTOCOL_VERSION,
            class: C::DocumentReader,
        })
        .await;
    assert!(refused.closed().await);
    sim.replug(C::DocumentReader).unwrap();
    let (mut c, state) = Client::connect(&sim, C::DocumentReader).await;
    assert_eq!(state, DeviceState::Ready);
    assert_eq!(
        c.event().await,
        Event::MediaPresent,
        "presence re-announced"
    );
    assert!(c.call(Request::ReadMrz).await.is_ok());
    assert!(sim.fault(C::DocumentReader, Status::Busy, false).is_ok());
    assert!(
        sim.act(torii_sim::Action::Fault {
            device: "toaster".into(),
            status: "busy".into(),
            sticky: false
        })
        .is_err()
    );
}

#[tokio::test]
async fn a_new_connection_replaces_the_old_one_and_bad_frames_are_survived() {
    let (sim, _dir) = start().await;
    let (mut first, _) = Client::connect(&sim, C::Camera).await;
    let (mut second, _) = Client::connect(&sim, C::Camera).await;
    assert!(first.closed().await);
    // A garbage frame is skipped; the connection keeps working.
    second.send_raw(&[0, 0, 0, 3, 0xFF, 0xFF, 0xFF]).await;
    assert_eq!(
        second.call(Request::GetState).await,
        Ok(Response::State {
            state: DeviceState::Ready
        })
    );
    // An oversized frame closes it.
    second
        .send_raw(&((MAX_FRAME_LEN + 1) as u32).to_be_bytes())
        .await;
    assert!(second.closed().await);
    // A Hello for the wrong class is refused.
    let mut wrong = Client::raw(&sim, C::Camera).await;
    wrong
        .send(&DriverToSim::Hello {
            protocol: PROTOCOL_VERSION,
            class: C::CardReader,
        })
        .await;
    assert!(wrong.closed().await);
    let mut old = Client::raw(&sim, C::Camera).await;
    old.send(&DriverToSim::Hello {
        protocol: PROTOCOL_VERSION + 1,
        class: C::Camera,
    })
    .await;
    assert!(old.closed().await);
}

#[tokio::test]
async fn shutdown_removes_the_sockets() {
    let (sim, dir) = start().await;
    let path = sim.socket_path(C::LaneController);
    assert!(path.exists());
    // A second simulator on the same directory is refused.
    let again = torii_sim::Simulator::start(torii_sim::SimulatorConfig::new(
        dir.path().join("sockets"),
        torii_sim::scenario::Scenario::default_scenario().unwrap(),
    ))
    .await;
    assert!(again.is_err());
    sim.shutdown().await;
    assert!(!path.exists());
}
