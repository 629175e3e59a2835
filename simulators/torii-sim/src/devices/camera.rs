//! Face camera.
//!
//! - Events: `SubjectPresent { present }` when a traveler steps in front of the camera
//!   and looks at it / leaves.
//! - `CaptureFace { timeout_ms }` returns at once when a subject is present, otherwise
//!   waits up to `timeout_ms` for one (`Timeout`), then answers `Face { jpeg }`: a
//!   240×320 JPEG of that traveler, slightly different on every capture.

use super::{Shared, World};
use crate::control::ActionError;
use crate::data::face;
use serde::Serialize;
use serde_json::{Value, json};
use torii_sdk::model::{DeviceClass, Event, Request, Response, Status};

const CLASS: DeviceClass = DeviceClass::Camera;

#[derive(Debug, Default, Serialize)]
pub struct State {
    /// Traveler id of the person looking at the camera.
    pub subject: Option<String>,
    pub captures: u64,
}

pub(crate) fn presence(world: &World) -> Vec<Event> {
    world
        .camera
        .subject
        .iter()
        .map(|_| Event::SubjectPresent { present: true })
        .collect()
}

pub(crate) async fn call(shared: &Shared, request: Request) -> Result<Response, Status> {
    let Request::CaptureFace { timeout_ms } = request else {
        return Err(Status::NotSupported);
    };
    let (id, counter) = shared
        .wait_for(timeout_ms, |world| {
            let id = world.camera.subject.clone()?;
            world.camera.captures += 1;
            Some((id, world.camera.captures))
        })
        .await?;
    let jpeg = face::face_jpeg(&id, counter).map_err(|e| {
        tracing::error!(traveler = %id, error = %e, "cannot render the face");
        Status::InternalError
    })?;
    tracing::info!(traveler = %id, "face captured");
    Ok(Response::Face { jpeg })
}

pub(crate) fn look_at_camera(shared: &Shared, traveler: &str) -> Result<Value, ActionError> {
    let t = shared.traveler(traveler)?;
    {
        let mut world = shared.world();
        if world.camera.subject.replace(t.id.clone()).is_none() {
            shared.emit(CLASS, Event::SubjectPresent { present: true });
        }
    }
    shared.notify();
    Ok(json!({ "subject": t.id }))
}

pub(crate) fn leave_camera(shared: &Shared) -> Result<Value, ActionError> {
    let left = {
        let mut world = shared.world();
        let was = world.camera.subject.take();
        if was.is_some() {
            shared.emit(CLASS, Event::SubjectPresent { present: false });
        }
        was.is_some()
    };
    shared.notify();
    Ok(json!({ "left": left }))
}
