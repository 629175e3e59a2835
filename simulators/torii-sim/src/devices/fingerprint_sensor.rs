//! Fingerprint sensor.
//!
//! - Events: `FingerPresent { present }` when fingers are placed / lifted.
//! - `CaptureFingers { fingers, timeout_ms, want_template, .. }` waits up to
//!   `timeout_ms` for fingers on the sensor (`Timeout` otherwise; returns at once when
//!   they are already there) and answers one `FingerSample` per requested finger, each
//!   a fresh impression (ISO/IEC 19794-2:2005 record, one view) when `want_template`:
//!   - `genuine`: the placing traveler's own finger at that position (read as poor for a
//!     traveler whose `finger_condition` is `poor`);
//!   - `impostor`: somebody else's finger;
//!   - `poor`: the traveler's finger, few minutiae, finger quality 5..=15.
//!
//!   `want_image` is accepted but finger images (19794-4) are not simulated: `image` is
//!   always empty. An empty or duplicated finger list, or more than 10 fingers:
//!   `InvalidArgument`.

use super::{Shared, World};
use crate::control::ActionError;
use crate::data::minutiae::{self, Placement};
use crate::scenario::FingerCondition;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use torii_sdk::model::{DeviceClass, Event, FingerSample, Request, Response, Status};

const CLASS: DeviceClass = DeviceClass::FingerprintSensor;

/// How the traveler places their fingers (`place-fingers`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum FingerMode {
    #[default]
    Genuine,
    Impostor,
    Poor,
    /// Nothing on the sensor (same as `lift-fingers`).
    None,
}

#[derive(Clone, Debug, Serialize)]
pub struct Placed {
    pub traveler: String,
    pub mode: FingerMode,
}

#[derive(Debug, Default, Serialize)]
pub struct State {
    pub placed: Option<Placed>,
    /// Captures answered (also the impression counter).
    pub captures: u64,
}

pub(crate) fn presence(world: &World) -> Vec<Event> {
    world
        .fingerprint_sensor
        .placed
        .iter()
        .map(|_| Event::FingerPresent { present: true })
        .collect()
}

pub(crate) async fn call(shared: &Shared, request: Request) -> Result<Response, Status> {
    let Request::CaptureFingers {
        fingers,
        timeout_ms,
        want_template,
        want_image: _,
    } = request
    else {
        return Err(Status::NotSupported);
    };
    let unique: BTreeSet<_> = fingers.iter().collect();
    if fingers.is_empty() || fingers.len() > 10 || unique.len() != fingers.len() {
        return Err(Status::InvalidArgument);
    }
    let (placed, counter) = shared
        .wait_for(timeout_ms, |world| {
            let placed = world.fingerprint_sensor.placed.clone()?;
            world.fingerprint_sensor.captures += 1;
            Some((placed, world.fingerprint_sensor.captures))
        })
        .await?;
    let traveler = shared
        .scenario
        .traveler(&placed.traveler)
        .ok_or(Status::InternalError)?;
    let counter = counter.to_string();
    let impostor_key = format!("impostor-of-{}", traveler.id);
    let samples = fingers
        .iter()
        .map(|&position| {
            let (key, placement) = match placed.mode {
                FingerMode::Impostor => (impostor_key.as_str(), Placement::Genuine),
                FingerMode::Poor => (traveler.id.as_str(), Placement::Poor),
                _ if traveler.finger_condition == FingerCondition::Poor => {
                    (traveler.id.as_str(), Placement::Poor)
                }
                _ => (traveler.id.as_str(), Placement::Genuine),
            };
            let master = minutiae::master(key, position);
            let code = position.code().to_string();
            let imp = minutiae::impression(&master, position, placement, &[key, &code, &counter]);
            FingerSample {
                position,
                quality: Some(imp.quality),
                template: if want_template {
                    minutiae::encode_iso19794_2(std::slice::from_ref(&imp))
                } else {
                    Vec::new()
                },
                image: Vec::new(),
            }
        })
        .collect();
    tracing::info!(traveler = %traveler.id, mode = ?placed.mode, fingers = fingers.len(), "fingers captured");
    Ok(Response::Fingers { samples })
}

pub(crate) fn place_fingers(
    shared: &Shared,
    traveler: &str,
    mode: FingerMode,
) -> Result<Value, ActionError> {
    let t = shared.traveler(traveler)?;
    if mode == FingerMode::None {
        return lift_fingers(shared);
    }
    {
        let mut world = shared.world();
        let was = world.fingerprint_sensor.placed.replace(Placed {
            traveler: t.id.clone(),
            mode,
        });
        if was.is_none() {
            shared.emit(CLASS, Event::FingerPresent { present: true });
        }
    }
    shared.notify();
    tracing::info!(traveler = %t.id, ?mode, "fingers placed");
    Ok(json!({ "placed": t.id, "mode": mode }))
}

pub(crate) fn lift_fingers(shared: &Shared) -> Result<Value, ActionError> {
    let lifted = {
        let mut world = shared.world();
        let was = world.fingerprint_sensor.placed.take();
        if was.is_some() {
            shared.emit(CLASS, Event::FingerPresent { present: false });
        }
        was.is_some()
    };
    shared.notify();
    Ok(json!({ "lifted": lifted }))
}
