//! Document (passport) reader: the passport on the glass, its MRZ and its chip.
//!
//! - Events: `MediaPresent` when a passport is laid on the reader, `MediaRemoved` when
//!   it is taken away.
//! - `ReadMrz` → `Mrz { lines }` (TD3, 2×44); `MediaAbsent` with no passport.
//! - `ChipConnect` → `Atr`; `ChipTransmit { apdu }` → `Apdu { response }` (see
//!   [`crate::data::chip_fs`] for the APDUs: a `torii-chip-sim` chip with PACE, BAC,
//!   secure messaging and a signed SOD); `ChipDisconnect` → `Done`.
//!   No passport: `MediaAbsent`. A passport **without a chip**: `NotSupported` (no chip
//!   answers the RF field; distinct from `MediaDamaged`, which is left to fault
//!   injection). `ChipTransmit` before `ChipConnect`: `InvalidArgument`.

use super::{Shared, World};
use crate::control::ActionError;
use crate::data::chip_fs::{self, ChipSession};
use crate::data::mrz;
use serde::Serialize;
use serde_json::{Value, json};
use torii_sdk::model::{DeviceClass, Event, Request, Response, Status};

const CLASS: DeviceClass = DeviceClass::DocumentReader;

#[derive(Debug, Default, Serialize)]
pub struct State {
    /// Traveler id of the passport on the reader.
    pub passport: Option<String>,
    /// An open chip session (selection state), when connected.
    #[serde(skip)]
    pub chip: Option<ChipSession>,
    pub chip_connected: bool,
    pub mrz_reads: u64,
    pub apdus: u64,
}

pub(crate) fn presence(world: &World) -> Vec<Event> {
    world
        .document_reader
        .passport
        .iter()
        .map(|_| Event::MediaPresent)
        .collect()
}

pub(crate) async fn call(shared: &Shared, request: Request) -> Result<Response, Status> {
    match request {
        Request::ReadMrz => {
            let id = shared
                .world()
                .document_reader
                .passport
                .clone()
                .ok_or(Status::MediaAbsent)?;
            let traveler = shared.scenario.traveler(&id).ok_or(Status::InternalError)?;
            let lines = mrz::traveler_mrz(traveler).map_err(|e| {
                tracing::error!(traveler = %id, error = %e, "cannot build the MRZ");
                Status::InternalError
            })?;
            shared.world().document_reader.mrz_reads += 1;
            Ok(Response::Mrz {
                lines: lines.to_vec(),
            })
        }
        Request::ChipConnect => {
            let id = shared
                .world()
                .document_reader
                .passport
                .clone()
                .ok_or(Status::MediaAbsent)?;
            let traveler = shared.scenario.traveler(&id).ok_or(Status::InternalError)?;
            if !traveler.passport.chip {
                return Err(Status::NotSupported);
            }
            let fs = shared.chip_fs(traveler)?;
            let mut world = shared.world();
            // The passport may have been taken away while the file system was built.
            if world.document_reader.passport.as_deref() != Some(id.as_str()) {
                return Err(Status::MediaAbsent);
            }
            world.document_reader.chip = Some(ChipSession::new(fs));
            world.document_reader.chip_connected = true;
            Ok(Response::Atr {
                atr: chip_fs::atr(),
            })
        }
        Request::ChipTransmit { apdu } => {
            let mut world = shared.world();
            let state = &mut world.document_reader;
            if state.passport.is_none() {
                return Err(Status::MediaAbsent);
            }
            let session = state.chip.as_mut().ok_or(Status::InvalidArgument)?;
            let response = session.transmit(&apdu);
            state.apdus += 1;
            Ok(Response::Apdu { response })
        }
        Request::ChipDisconnect => {
            let mut world = shared.world();
            world.document_reader.chip = None;
            world.document_reader.chip_connected = false;
            Ok(Response::Done)
        }
        _ => Err(Status::NotSupported),
    }
}

/// The traveler lays their passport on the reader (replacing any passport there).
pub(crate) fn present_passport(shared: &Shared, traveler: &str) -> Result<Value, ActionError> {
    let t = shared.traveler(traveler)?;
    {
        let mut world = shared.world();
        let state = &mut world.document_reader;
        if state.passport.take().is_some() {
            state.chip = None;
            state.chip_connected = false;
            shared.emit(CLASS, Event::MediaRemoved);
        }
        state.passport = Some(t.id.clone());
        shared.emit(CLASS, Event::MediaPresent);
    }
    shared.notify();
    tracing::info!(traveler = %t.id, "passport presented");
    Ok(json!({ "passport": t.id, "chip": t.passport.chip }))
}

pub(crate) fn remove_passport(shared: &Shared) -> Result<Value, ActionError> {
    let removed = {
        let mut world = shared.world();
        let state = &mut world.document_reader;
        state.chip = None;
        state.chip_connected = false;
        let removed = state.passport.take();
        if removed.is_some() {
            shared.emit(CLASS, Event::MediaRemoved);
        }
        removed
    };
    shared.notify();
    match removed {
        Some(id) => Ok(json!({ "removed": id })),
        None => Err(ActionError::Conflict(
            "no passport on the document reader".into(),
        )),
    }
}
