//! Card reader (exit): the traveler lays the registered user card on it.
//!
//! - Events: `MediaPresent` when a card is placed, `MediaRemoved` when it is lifted.
//! - `ReadCardChip` → `CardChip { data }`; `MediaAbsent` with no card.

use super::{Shared, World};
use crate::control::ActionError;
use crate::data::card;
use serde::Serialize;
use serde_json::{Value, json};
use torii_sdk::model::{DeviceClass, Event, Request, Response, Status};

const CLASS: DeviceClass = DeviceClass::CardReader;

#[derive(Debug, Default, Serialize)]
pub struct State {
    /// Traveler id of the card on the reader.
    pub card: Option<String>,
    pub chip_reads: u64,
}

pub(crate) fn presence(world: &World) -> Vec<Event> {
    world
        .card_reader
        .card
        .iter()
        .map(|_| Event::MediaPresent)
        .collect()
}

pub(crate) async fn call(shared: &Shared, request: Request) -> Result<Response, Status> {
    match request {
        Request::ReadCardChip => {
            let id = shared
                .world()
                .card_reader
                .card
                .clone()
                .ok_or(Status::MediaAbsent)?;
            let traveler = shared.scenario.traveler(&id).ok_or(Status::InternalError)?;
            let data = card::card_chip_content(traveler).ok_or(Status::MediaDamaged)?;
            shared.world().card_reader.chip_reads += 1;
            Ok(Response::CardChip { data })
        }
        _ => Err(Status::NotSupported),
    }
}

pub(crate) fn place_card(shared: &Shared, traveler: &str) -> Result<Value, ActionError> {
    let t = shared.traveler(traveler)?;
    {
        let mut world = shared.world();
        world.card_in_hand(&t.id, traveler)?;
        if world.card_reader.card.is_some() {
            return Err(ActionError::Conflict(
                "a card is already on the card reader".into(),
            ));
        }
        world.card_reader.card = Some(t.id.clone());
        shared.emit(CLASS, Event::MediaPresent);
    }
    shared.notify();
    tracing::info!(traveler = %t.id, "card placed on the reader");
    Ok(json!({ "placed": t.id }))
}

pub(crate) fn lift_card(shared: &Shared) -> Result<Value, ActionError> {
    let lifted = {
        let mut world = shared.world();
        let id = world
            .card_reader
            .card
            .take()
            .ok_or_else(|| ActionError::Conflict("no card on the card reader".into()))?;
        shared.emit(CLASS, Event::MediaRemoved);
        id
    };
    shared.notify();
    Ok(json!({ "lifted": lifted }))
}
