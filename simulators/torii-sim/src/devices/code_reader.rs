//! Registration-code (QR) reader.
//!
//! - `SetCodeReaderEnabled { enabled }` → `Done`. The reader starts disabled.
//! - Presenting a code while enabled emits `CodeRead { symbology: Qr, payload }`;
//!   while disabled nothing happens (the action reports `"read": false`).

use super::{Shared, World};
use crate::control::ActionError;
use crate::data::qr;
use serde::Serialize;
use serde_json::{Value, json};
use torii_sdk::model::{DeviceClass, Event, Request, Response, Status, Symbology};

const CLASS: DeviceClass = DeviceClass::CodeReader;

#[derive(Debug, Default, Serialize)]
pub struct State {
    pub enabled: bool,
    /// Codes delivered to the driver.
    pub reads: u64,
}

pub(crate) fn presence(_world: &World) -> Vec<Event> {
    Vec::new()
}

pub(crate) async fn call(shared: &Shared, request: Request) -> Result<Response, Status> {
    match request {
        Request::SetCodeReaderEnabled { enabled } => {
            shared.world().code_reader.enabled = enabled;
            shared.notify();
            Ok(Response::Done)
        }
        _ => Err(Status::NotSupported),
    }
}

/// Holds a QR code to the reader: the registration code of `traveler` (who must have
/// the QR sticker), or a raw `payload` (for malformed-code tests).
pub(crate) fn present_qr(
    shared: &Shared,
    traveler: Option<&str>,
    payload: Option<&str>,
) -> Result<Value, ActionError> {
    let (payload, who) = match (traveler, payload) {
        (Some(id), None) => {
            let t = shared.traveler(id)?;
            if !t.passport.qr_sticker {
                return Err(ActionError::Conflict(format!(
                    "traveler {id} has no QR sticker"
                )));
            }
            let payload = qr::registration_qr_payload(t)
                .ok_or_else(|| ActionError::Conflict(format!("traveler {id} is not registered")))?;
            (payload, t.id.clone())
        }
        (None, Some(raw)) => (raw.to_owned(), "raw".to_owned()),
        _ => {
            return Err(ActionError::BadRequest(
                "present-qr needs exactly one of `traveler` or `payload`".into(),
            ));
        }
    };
    let read = {
        let mut world = shared.world();
        let enabled = world.code_reader.enabled;
        if enabled {
            world.code_reader.reads += 1;
            shared.emit(
                CLASS,
                Event::CodeRead {
                    symbology: Symbology::Qr,
                    payload: payload.into_bytes(),
                },
            );
        }
        enabled
    };
    shared.notify();
    tracing::info!(traveler = %who, read, "QR code presented");
    Ok(json!({ "read": read }))
}
