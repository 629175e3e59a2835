//! Card printer (entry): takes the registered user card, reads its chip, prints the
//! landing record on its back, then ejects (or retains) it.
//!
//! - Events: `MediaPresent` when a card is inserted; `MediaRemoved` when the traveler
//!   takes the ejected card, pulls the card out, or the printer retains it.
//! - `ReadCardChip` → `CardChip { data }` ([`crate::data::card::card_chip_content`]).
//! - `PrintLine { line }` → `Done` after [`PRINT_TIME`]; the line is kept on the card
//!   (see `GET /v1/state`). Lines over [`MAX_LINE_CHARS`] characters or with control
//!   characters: `InvalidArgument`. A card pulled out while the line prints:
//!   `MediaAbsent` and nothing is printed (inject `media-jammed` with `fault`).
//! - `EjectCard` → `Done`: the card waits at the slot until the traveler takes it.
//! - `RetainCard` → `Done`: the card is captured (it leaves the traveler for good).
//! - With no card inside (or the card already ejected): `MediaAbsent`.

use super::{Shared, World};
use crate::control::ActionError;
use crate::data::card;
use serde::Serialize;
use serde_json::{Value, json};
use std::time::Duration;
use torii_sdk::model::{DeviceClass, Event, Request, Response, Status};

const CLASS: DeviceClass = DeviceClass::CardPrinter;
/// How long printing one line takes.
pub const PRINT_TIME: Duration = Duration::from_millis(50);
pub const MAX_LINE_CHARS: usize = 64;

#[derive(Clone, Debug, Serialize)]
pub struct PrinterCard {
    /// Traveler id of the card's holder.
    pub traveler: String,
    /// Ejected and waiting at the slot for the traveler to take it.
    pub ejected: bool,
}

#[derive(Debug, Default, Serialize)]
pub struct State {
    pub card: Option<PrinterCard>,
    pub lines_printed: u64,
}

fn card_inside(world: &World) -> Option<String> {
    world
        .card_printer
        .card
        .as_ref()
        .filter(|c| !c.ejected)
        .map(|c| c.traveler.clone())
}

pub(crate) fn presence(world: &World) -> Vec<Event> {
    card_inside(world)
        .map(|_| Event::MediaPresent)
        .into_iter()
        .collect()
}

pub(crate) async fn call(shared: &Shared, request: Request) -> Result<Response, Status> {
    match request {
        Request::ReadCardChip => {
            let id = card_inside(&shared.world()).ok_or(Status::MediaAbsent)?;
            let traveler = shared.scenario.traveler(&id).ok_or(Status::InternalError)?;
            let data = card::card_chip_content(traveler).ok_or(Status::MediaDamaged)?;
            Ok(Response::CardChip { data })
        }
        Request::PrintLine { line } => {
            if line.chars().count() > MAX_LINE_CHARS || line.chars().any(char::is_control) {
                return Err(Status::InvalidArgument);
            }
            let id = card_inside(&shared.world()).ok_or(Status::MediaAbsent)?;
            tokio::time::sleep(PRINT_TIME).await;
            {
                let mut world = shared.world();
                if card_inside(&world).as_deref() != Some(id.as_str()) {
                    tracing::warn!(traveler = %id, "card pulled out while printing");
                    return Err(Status::MediaAbsent);
                }
                world.cards.entry(id).or_default().printed_lines.push(line);
                world.card_printer.lines_printed += 1;
            }
            shared.notify();
            Ok(Response::Done)
        }
        Request::EjectCard => {
            {
                let mut world = shared.world();
                let card = world
                    .card_printer
                    .card
                    .as_mut()
                    .ok_or(Status::MediaAbsent)?;
                card.ejected = true;
            }
            shared.notify();
            Ok(Response::Done)
        }
        Request::RetainCard => {
            {
                let mut world = shared.world();
                let card = world.card_printer.card.take().ok_or(Status::MediaAbsent)?;
                tracing::info!(traveler = %card.traveler, "card retained");
                world.cards.entry(card.traveler).or_default().retained = true;
                shared.emit(CLASS, Event::MediaRemoved);
            }
            shared.notify();
            Ok(Response::Done)
        }
        _ => Err(Status::NotSupported),
    }
}

/// The traveler inserts their registered user card into the printer.
pub(crate) fn insert_card(shared: &Shared, traveler: &str) -> Result<Value, ActionError> {
    let t = shared.traveler(traveler)?;
    {
        let mut world = shared.world();
        world.card_in_hand(&t.id, traveler)?;
        if world.card_printer.card.is_some() {
            return Err(ActionError::Conflict(
                "the card printer already holds a card".into(),
            ));
        }
        world.card_printer.card = Some(PrinterCard {
            traveler: t.id.clone(),
            ejected: false,
        });
        shared.emit(CLASS, Event::MediaPresent);
    }
    shared.notify();
    tracing::info!(traveler = %t.id, "card inserted");
    Ok(json!({ "inserted": t.id }))
}

/// The traveler takes the card the printer ejected.
pub(crate) fn take_card(shared: &Shared) -> Result<Value, ActionError> {
    let taken = {
        let mut world = shared.world();
        match world.card_printer.card.take() {
            Some(card) if card.ejected => {
                shared.emit(CLASS, Event::MediaRemoved);
                card.traveler
            }
            other => {
                world.card_printer.card = other;
                return Err(ActionError::Conflict(
                    "no ejected card waiting at the printer slot".into(),
                ));
            }
        }
    };
    shared.notify();
    tracing::info!(traveler = %taken, "card taken");
    Ok(json!({ "taken": taken }))
}

/// The card is pulled out of the printer (even mid-print).
pub(crate) fn remove_card(shared: &Shared) -> Result<Value, ActionError> {
    let removed = {
        let mut world = shared.world();
        let card = world
            .card_printer
            .card
            .take()
            .ok_or_else(|| ActionError::Conflict("no card in the card printer".into()))?;
        shared.emit(CLASS, Event::MediaRemoved);
        card.traveler
    };
    shared.notify();
    tracing::info!(traveler = %removed, "card pulled out of the printer");
    Ok(json!({ "removed": removed }))
}
