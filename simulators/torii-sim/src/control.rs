//! The control API: what travelers and technicians do to the simulated gate.
//!
//! Loopback HTTP (axum): `POST /v1/actions` with a JSON [`Action`]
//! (`{"action":"present-passport","traveler":"alice"}`), `GET /v1/state` (every
//! device's state, faults, doors, counts and printed card lines: a test oracle) and
//! `GET /v1/travelers` (the scenario's synthetic test data). Answers are JSON:
//! `{"ok":true,"result":{…}}`, or `{"ok":false,"kind":…,"error":…}` with HTTP 400 for a
//! bad request (unknown action, traveler, device or status, missing field) and 409
//! when the action is impossible in the current state (no card to take, door closed…).
//!
//! Also the small HTTP client used by `torii-sim ctl`.

use crate::data::{mrz, qr};
use crate::devices::{
    Shared, camera, card_printer, card_reader, code_reader, document_reader, fingerprint_sensor,
    fingerprint_sensor::FingerMode, lane_controller,
};
use crate::server::parse_status;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::Arc;
use torii_sdk::model::DeviceClass;

/// One control action (JSON: internally tagged by `action`, kebab-case). The same type
/// is the `torii-sim ctl` command line (clap), so the CLI and the API cannot drift apart.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, clap::Subcommand)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    /// Lay TRAVELER's passport (data page) on the document reader.
    PresentPassport { traveler: String },
    /// Take the passport off the reader.
    RemovePassport,
    /// Hold TRAVELER's registration QR code (or a raw --payload) to the code reader.
    PresentQr {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        traveler: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[arg(long)]
        payload: Option<String>,
    },
    /// Insert TRAVELER's registered user card into the card printer.
    InsertCard { traveler: String },
    /// Pull the card out of the printer (even while it is inside, mid-print).
    RemoveCard,
    /// Take the card the printer ejected.
    TakeCard,
    /// Lay TRAVELER's card on the card reader (exit lanes).
    PlaceCard { traveler: String },
    /// Take the card off the card reader.
    LiftCard,
    /// Place TRAVELER's fingers on the sensor: genuine, impostor (someone else's), poor or none.
    PlaceFingers {
        traveler: String,
        #[serde(default)]
        #[arg(value_enum, default_value = "genuine")]
        mode: FingerMode,
    },
    /// Lift the fingers off the sensor.
    LiftFingers,
    /// TRAVELER looks at the camera.
    LookAtCamera { traveler: String },
    /// The face leaves the camera's view.
    LeaveCamera,
    /// The traveler steps through the entry door into the lane.
    EnterLane,
    /// The traveler walks out through the (open) exit door.
    WalkThrough,
    /// A second person enters the lane (tailgating).
    SecondPerson,
    /// Make DEVICE's next call (every call with --sticky) fail with STATUS, a kebab-case
    /// CUSS status (`hardware-error`, `media-jammed`, `timeout`…).
    Fault {
        device: String,
        status: String,
        #[serde(default)]
        #[arg(long)]
        sticky: bool,
    },
    /// DEVICE stops answering calls until cleared.
    Hang { device: String },
    /// Unplug DEVICE: its connection drops and new ones are refused.
    Unplug { device: String },
    /// Plug DEVICE back in.
    Replug { device: String },
    /// Clear DEVICE's fault, hang and unplug; DEVICE may be `all`.
    Clear { device: String },
    /// Raise (on) or reset (off) the fire alarm.
    FireAlarm {
        #[arg(value_parser = parse_on_off, value_name = "on|off", action = clap::ArgAction::Set)]
        active: bool,
    },
    /// DOOR (entry or exit) jams in STATE (open or closed) once it is there: commands
    /// are answered but do not move it, its position reports the truth; `none` frees it
    /// (so does reset).
    DoorStuck { door: String, state: String },
    /// Every call of DEVICE is answered MS milliseconds later, until cleared.
    Delay { device: String, ms: u64 },
    /// A clean gate for the next traveler: every fault cleared, passport, cards,
    /// fingers and face taken away, retained cards given back, nobody in any zone, fire
    /// alarm off. Printed card lines are kept.
    Reset,
}

fn parse_on_off(text: &str) -> Result<bool, String> {
    match text {
        "on" | "true" | "1" => Ok(true),
        "off" | "false" | "0" => Ok(false),
        other => Err(format!("expected on or off, not {other:?}")),
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ActionError {
    #[error("unknown traveler {0:?}")]
    UnknownTraveler(String),
    #[error(
        "unknown device {0:?} (expected one of: document-reader, code-reader, card-printer, card-reader, fingerprint-sensor, camera, lane-controller)"
    )]
    UnknownDevice(String),
    #[error("unknown status {0:?} (e.g. hardware-error, media-jammed, timeout)")]
    UnknownStatus(String),
    #[error("{0}")]
    BadRequest(String),
    /// The action is impossible in the current state.
    #[error("{0}")]
    Conflict(String),
}

impl ActionError {
    pub fn kind(&self) -> &'static str {
        match self {
            ActionError::UnknownTraveler(_) => "unknown-traveler",
            ActionError::UnknownDevice(_) => "unknown-device",
            ActionError::UnknownStatus(_) => "unknown-status",
            ActionError::BadRequest(_) => "bad-request",
            ActionError::Conflict(_) => "conflict",
        }
    }

    pub fn http_status(&self) -> StatusCode {
        match self {
            ActionError::Conflict(_) => StatusCode::CONFLICT,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

fn device(name: &str) -> Result<DeviceClass, ActionError> {
    DeviceClass::from_name(name).ok_or_else(|| ActionError::UnknownDevice(name.to_owned()))
}

/// Performs `action` on the simulated gate.
pub(crate) fn act(shared: &Shared, action: Action) -> Result<Value, ActionError> {
    use Action as A;
    match action {
        A::PresentPassport { traveler } => document_reader::present_passport(shared, &traveler),
        A::RemovePassport => document_reader::remove_passport(shared),
        A::PresentQr { traveler, payload } => {
            code_reader::present_qr(shared, traveler.as_deref(), payload.as_deref())
        }
        A::InsertCard { traveler } => card_printer::insert_card(shared, &traveler),
        A::RemoveCard => card_printer::remove_card(shared),
        A::TakeCard => card_printer::take_card(shared),
        A::PlaceCard { traveler } => card_reader::place_card(shared, &traveler),
        A::LiftCard => card_reader::lift_card(shared),
        A::PlaceFingers { traveler, mode } => {
            fingerprint_sensor::place_fingers(shared, &traveler, mode)
        }
        A::LiftFingers => fingerprint_sensor::lift_fingers(shared),
        A::LookAtCamera { traveler } => camera::look_at_camera(shared, &traveler),
        A::LeaveCamera => camera::leave_camera(shared),
        A::EnterLane => lane_controller::enter_lane(shared),
        A::WalkThrough => lane_controller::walk_through(shared),
        A::SecondPerson => lane_controller::second_person(shared),
        A::FireAlarm { active } => lane_controller::fire_alarm(shared, active),
        A::Fault {
            device: name,
            status,
            sticky,
        } => {
            let class = device(&name)?;
            let status = parse_status(&status).ok_or(ActionError::UnknownStatus(status))?;
            shared.link(class).set_fault(status, sticky);
            Ok(
                json!({ "device": class.name(), "fault": crate::server::status_name(status), "sticky": sticky }),
            )
        }
        A::Hang { device: name } => {
            let class = device(&name)?;
            shared.link(class).set_hang();
            Ok(json!({ "device": class.name(), "hang": true }))
        }
        A::Unplug { device: name } => {
            let class = device(&name)?;
            shared.link(class).unplug();
            Ok(json!({ "device": class.name(), "unplugged": true }))
        }
        A::Replug { device: name } => {
            let class = device(&name)?;
            shared.link(class).replug();
            Ok(json!({ "device": class.name(), "unplugged": false }))
        }
        A::Delay { device: name, ms } => {
            let class = device(&name)?;
            if ms > 600_000 {
                return Err(ActionError::BadRequest(format!(
                    "a delay of {ms} ms is more than 10 minutes"
                )));
            }
            shared.link(class).set_delay(ms);
            Ok(json!({ "device": class.name(), "delay_ms": ms }))
        }
        A::DoorStuck { door, state } => {
            let door = match door.as_str() {
                "entry" => torii_sdk::model::Door::Entry,
                "exit" => torii_sdk::model::Door::Exit,
                other => {
                    return Err(ActionError::BadRequest(format!(
                        "unknown door {other:?} (expected entry or exit)"
                    )));
                }
            };
            let state = match state.as_str() {
                "open" => Some(torii_sdk::model::DoorState::Open),
                "closed" => Some(torii_sdk::model::DoorState::Closed),
                "none" => None,
                other => {
                    return Err(ActionError::BadRequest(format!(
                        "unknown door state {other:?} (expected open, closed or none)"
                    )));
                }
            };
            lane_controller::door_stuck(shared, door, state)
        }
        A::Reset => Ok(reset(shared)),
        A::Clear { device: name } => {
            let classes = if name == "all" {
                DeviceClass::ALL.to_vec()
            } else {
                vec![device(&name)?]
            };
            for class in &classes {
                shared.link(*class).clear();
            }
            Ok(json!({ "cleared": classes.iter().map(|c| c.name()).collect::<Vec<_>>() }))
        }
    }
}

/// Back to a clean gate (the `reset` action).
fn reset(shared: &Shared) -> Value {
    for class in DeviceClass::ALL {
        shared.link(class).clear();
    }
    // Each of these is a no-op (a conflict, ignored) when there is nothing to take away.
    let _ = document_reader::remove_passport(shared);
    let _ = card_printer::remove_card(shared);
    let _ = card_reader::lift_card(shared);
    let _ = fingerprint_sensor::lift_fingers(shared);
    let _ = camera::leave_camera(shared);
    let _ = lane_controller::fire_alarm(shared, false);
    for door in [torii_sdk::model::Door::Entry, torii_sdk::model::Door::Exit] {
        let _ = lane_controller::door_stuck(shared, door, None);
    }
    lane_controller::empty_zones(shared);
    for card in shared.world().cards.values_mut() {
        card.retained = false;
    }
    shared.notify();
    tracing::info!("simulator reset");
    json!({ "reset": true })
}

/// The whole simulated state (the `GET /v1/state` document).
pub(crate) fn state_json(shared: &Shared) -> Value {
    let world = shared.world();
    let to = |v: Result<Value, serde_json::Error>| v.unwrap_or(Value::Null);
    let mut devices = serde_json::Map::new();
    for class in DeviceClass::ALL {
        let state = match class {
            DeviceClass::DocumentReader => to(serde_json::to_value(&world.document_reader)),
            DeviceClass::CodeReader => to(serde_json::to_value(&world.code_reader)),
            DeviceClass::CardPrinter => to(serde_json::to_value(&world.card_printer)),
            DeviceClass::CardReader => to(serde_json::to_value(&world.card_reader)),
            DeviceClass::FingerprintSensor => to(serde_json::to_value(&world.fingerprint_sensor)),
            DeviceClass::Camera => to(serde_json::to_value(&world.camera)),
            DeviceClass::LaneController => to(serde_json::to_value(&world.lane_controller)),
        };
        devices.insert(
            class.name().to_owned(),
            json!({ "link": shared.link(class).view(), "state": state }),
        );
    }
    let cards: serde_json::Map<String, Value> = world
        .cards
        .iter()
        .map(|(id, card)| {
            let mut v = to(serde_json::to_value(card));
            if let Some(obj) = v.as_object_mut() {
                obj.insert(
                    "location".into(),
                    json!(world.card_location(id).unwrap_or("traveler")),
                );
            }
            (id.clone(), v)
        })
        .collect();
    json!({ "devices": devices, "cards": cards })
}

/// The scenario's travelers with derived test data (`GET /v1/travelers`).
pub(crate) fn travelers_json(shared: &Shared) -> Value {
    let travelers: Vec<Value> = shared
        .scenario
        .travelers
        .iter()
        .map(|t| {
            json!({
                "id": t.id,
                "note": t.note,
                "registered": t.registration.is_some(),
                "status": t.registration.as_ref().map(|r| r.status),
                "fingers": t.registration.as_ref().map(|r| r.fingers.clone()),
                "chip": t.passport.chip,
                "qr_sticker": t.passport.qr_sticker,
                "ed_card_pre_entered": t.ed_card.is_some(),
                "card_valid_until": t.card_valid_until(),
                "mrz": mrz::traveler_mrz(t).ok(),
                "qr_payload": qr::registration_qr_payload(t).filter(|_| t.passport.qr_sticker),
                "data": t,
            })
        })
        .collect();
    json!({ "ids": shared.scenario.travelers.iter().map(|t| &t.id).collect::<Vec<_>>(), "travelers": travelers })
}

fn error_response(status: StatusCode, kind: &str, message: String) -> Response {
    (
        status,
        Json(json!({ "ok": false, "kind": kind, "error": message })),
    )
        .into_response()
}

async fn post_action(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let value: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                "bad-json",
                format!("body is not JSON: {e}"),
            );
        }
    };
    let action: Action = match serde_json::from_value(value) {
        Ok(a) => a,
        Err(e) => return error_response(StatusCode::BAD_REQUEST, "bad-action", e.to_string()),
    };
    match act(&shared, action) {
        Ok(result) => Json(json!({ "ok": true, "result": result })).into_response(),
        Err(e) => error_response(e.http_status(), e.kind(), e.to_string()),
    }
}

async fn get_state(State(shared): State<Arc<Shared>>) -> Json<Value> {
    Json(state_json(&shared))
}

async fn get_travelers(State(shared): State<Arc<Shared>>) -> Json<Value> {
    Json(travelers_json(&shared))
}

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/actions", post(post_action))
        .route("/v1/state", get(get_state))
        .route("/v1/travelers", get(get_travelers))
        .with_state(shared)
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("bad URL {0:?}: {1}")]
    Url(String, String),
    #[error("cannot connect to {0}: {1}")]
    Connect(String, std::io::Error),
    #[error("HTTP: {0}")]
    Http(#[from] hyper::Error),
    #[error("HTTP request: {0}")]
    Request(#[from] hyper::http::Error),
}

/// Sends one HTTP request to `base` (`http://host:port`) and returns the status code
/// and the JSON answer (a JSON string when the answer is not JSON).
pub async fn http_request(
    base: &str,
    method: hyper::Method,
    path: &str,
    body: Option<&Value>,
) -> Result<(u16, Value), ClientError> {
    use http_body_util::{BodyExt, Full};
    use hyper_util::rt::TokioIo;

    let url = format!("{}{path}", base.trim_end_matches('/'));
    let uri: hyper::Uri = url
        .parse()
        .map_err(|e: hyper::http::uri::InvalidUri| ClientError::Url(url.clone(), e.to_string()))?;
    if uri.scheme_str() != Some("http") {
        return Err(ClientError::Url(url, "only http:// is supported".into()));
    }
    let authority = uri
        .authority()
        .cloned()
        .ok_or_else(|| ClientError::Url(url.clone(), "no host".into()))?;
    let port = authority.port_u16().unwrap_or(80);
    let stream = tokio::net::TcpStream::connect((authority.host(), port))
        .await
        .map_err(|e| ClientError::Connect(authority.to_string(), e))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    let conn = tokio::spawn(conn);
    let payload = body.map(|b| b.to_string()).unwrap_or_default();
    let request = hyper::Request::builder()
        .method(method)
        .uri(uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"))
        .header(hyper::header::HOST, authority.as_str())
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(payload)))?;
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await?.to_bytes();
    drop(sender);
    conn.abort();
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    Ok((status, value))
}
