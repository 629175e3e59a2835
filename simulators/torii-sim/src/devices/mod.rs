//! The device simulators, one file per class, each with the same shape:
//!
//! - `State`: the device's simulated state (serialised into `GET /v1/state`);
//! - `presence(world)`: the events re-announced to a driver that (re)connects, so a
//!   driver restarted mid-transaction learns what is on the device;
//! - `call(shared, request)`: answers the class's [`Request`]s (may wait for the
//!   traveler, with tokio timers);
//! - control functions (`present_passport`, `place_fingers`, ...) used by the control
//!   API, which mutate the world and emit [`Event`]s.
//!
//! Fault modes (fault/hang/unplug) are generic and live in [`crate::server::Link`].

pub mod camera;
pub mod card_printer;
pub mod card_reader;
pub mod code_reader;
pub mod document_reader;
pub mod fingerprint_sensor;
pub mod lane_controller;

use crate::control::ActionError;
use crate::data::chip_fs::{self, ChipFs};
use crate::scenario::{Scenario, Traveler};
use crate::server::Link;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;
use torii_sdk::model::{DeviceClass, Event, Request, Response, Status};

/// Locks a mutex, ignoring poisoning (state stays usable even if a task panicked).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A registered user card (one per registered traveler) and what has been printed on
/// its back by the simulated printer.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Card {
    /// Lines printed by `PrintLine` since the simulator started, oldest first.
    pub printed_lines: Vec<String>,
    /// The card was retained by the printer (`RetainCard`).
    pub retained: bool,
}

/// Everything the devices simulate, under one lock.
#[derive(Debug, Default, Serialize)]
pub struct World {
    pub document_reader: document_reader::State,
    pub code_reader: code_reader::State,
    pub card_printer: card_printer::State,
    pub card_reader: card_reader::State,
    pub fingerprint_sensor: fingerprint_sensor::State,
    pub camera: camera::State,
    pub lane_controller: lane_controller::State,
    /// Cards by traveler id.
    pub cards: BTreeMap<String, Card>,
}

impl World {
    /// Ok when `traveler` holds their registered user card in hand (so they can insert it
    /// or lay it on a reader); `name` is how the error names them.
    pub(crate) fn card_in_hand(
        &self,
        traveler: &str,
        name: &str,
    ) -> Result<(), crate::ActionError> {
        if !self.cards.contains_key(traveler) {
            return Err(crate::ActionError::Conflict(format!(
                "traveler {name} has no registered user card"
            )));
        }
        if let Some(at) = self.card_location(traveler) {
            return Err(crate::ActionError::Conflict(format!(
                "the card of {name} is not with them ({at})"
            )));
        }
        Ok(())
    }

    /// Where `traveler`'s card is, if not with the traveler.
    pub fn card_location(&self, traveler: &str) -> Option<&'static str> {
        if self.cards.get(traveler).is_some_and(|c| c.retained) {
            return Some("retained");
        }
        if self
            .card_printer
            .card
            .as_ref()
            .is_some_and(|c| c.traveler == traveler)
        {
            return Some("card-printer");
        }
        if self.card_reader.card.as_deref() == Some(traveler) {
            return Some("card-reader");
        }
        None
    }
}

/// State shared by the socket server, the control API and the device simulators.
pub struct Shared {
    pub(crate) scenario: Arc<Scenario>,
    world: Mutex<World>,
    /// Bumped after every change of the world; waiting calls watch it.
    changed: watch::Sender<u64>,
    links: HashMap<DeviceClass, Link>,
    chips: Mutex<HashMap<String, Arc<ChipFs>>>,
}

impl Shared {
    pub(crate) fn new(scenario: Scenario) -> Self {
        let mut world = World::default();
        for t in &scenario.travelers {
            if t.registration.is_some() {
                world.cards.insert(t.id.clone(), Card::default());
            }
        }
        Self {
            scenario: Arc::new(scenario),
            world: Mutex::new(world),
            changed: watch::channel(0).0,
            links: DeviceClass::ALL
                .into_iter()
                .map(|c| (c, Link::new(c)))
                .collect(),
            chips: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn world(&self) -> MutexGuard<'_, World> {
        lock(&self.world)
    }

    pub(crate) fn link(&self, class: DeviceClass) -> &Link {
        // Every class has a link (built from DeviceClass::ALL).
        &self.links[&class]
    }

    /// Tells waiting calls that the world changed.
    pub(crate) fn notify(&self) {
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// Sends an event to `class`'s connected driver (dropped when none is connected).
    pub(crate) fn emit(&self, class: DeviceClass, event: Event) {
        self.link(class).send_event(event);
    }

    pub(crate) fn traveler(&self, id: &str) -> Result<&Traveler, ActionError> {
        self.scenario
            .traveler(id)
            .ok_or_else(|| ActionError::UnknownTraveler(id.to_owned()))
    }

    /// The chip file system of `traveler`'s passport (built once, then cached).
    pub(crate) fn chip_fs(&self, traveler: &Traveler) -> Result<Arc<ChipFs>, Status> {
        if let Some(fs) = lock(&self.chips).get(&traveler.id) {
            return Ok(fs.clone());
        }
        let fs = Arc::new(chip_fs::build(traveler).map_err(|e| {
            tracing::error!(traveler = %traveler.id, error = %e, "cannot build the passport chip");
            Status::InternalError
        })?);
        lock(&self.chips).insert(traveler.id.clone(), fs.clone());
        Ok(fs)
    }

    /// Waits until `check` finds what a call waits for, or `timeout_ms` passes
    /// (`Err(Timeout)`). `check` runs under the world lock after every change.
    pub(crate) async fn wait_for<T>(
        &self,
        timeout_ms: u32,
        mut check: impl FnMut(&mut World) -> Option<T>,
    ) -> Result<T, Status> {
        let mut rx = self.changed.subscribe();
        let deadline = Instant::now() + Duration::from_millis(u64::from(timeout_ms));
        loop {
            rx.borrow_and_update();
            let found = check(&mut self.world());
            if let Some(found) = found {
                return Ok(found);
            }
            tokio::select! {
                changed = rx.changed() => {
                    if changed.is_err() {
                        return Err(Status::Unavailable);
                    }
                }
                () = tokio::time::sleep_until(deadline) => return Err(Status::Timeout),
            }
        }
    }
}

/// Events re-announced to a driver that connects to `class`.
pub(crate) fn presence(class: DeviceClass, world: &World) -> Vec<Event> {
    match class {
        DeviceClass::DocumentReader => document_reader::presence(world),
        DeviceClass::CodeReader => code_reader::presence(world),
        DeviceClass::CardPrinter => card_printer::presence(world),
        DeviceClass::CardReader => card_reader::presence(world),
        DeviceClass::FingerprintSensor => fingerprint_sensor::presence(world),
        DeviceClass::Camera => camera::presence(world),
        DeviceClass::LaneController => lane_controller::presence(world),
    }
}

/// Answers a class-specific request (not `GetState`, which the server answers).
pub(crate) async fn call(
    shared: &Shared,
    class: DeviceClass,
    request: Request,
) -> Result<Response, Status> {
    match class {
        DeviceClass::DocumentReader => document_reader::call(shared, request).await,
        DeviceClass::CodeReader => code_reader::call(shared, request).await,
        DeviceClass::CardPrinter => card_printer::call(shared, request).await,
        DeviceClass::CardReader => card_reader::call(shared, request).await,
        DeviceClass::FingerprintSensor => fingerprint_sensor::call(shared, request).await,
        DeviceClass::Camera => camera::call(shared, request).await,
        DeviceClass::LaneController => lane_controller::call(shared, request).await,
    }
}
