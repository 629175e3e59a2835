//! The scenario's registry as central serves it ([`registry_json`], [`registry_entries`]:
//! what the mutual-TLS simulator of `torii-central` serves as its registry feed, see
//! [`crate::start_central`]), and the old plain-HTTP central stub.
//!
//! The stub (plain loopback HTTP, [`SimulatorConfig::central`](crate::SimulatorConfig)),
//! kept while tests still use it; the gate's link speaks `torii-link`'s protocol to the
//! mutual-TLS simulator instead:
//!
//! - `GET /health` → `{"status":"ok"}`
//! - `GET /v1/registry` → `{"travelers":[…]}`: every registered traveler of the
//!   scenario (registered passport number, nationality, card number, issue/validity,
//!   status, ED pre-entry, one ISO/IEC 19794-2 enrolment template per registered finger
//!   and the registered face photo, both base64).
//! - `POST /v1/records` → stores a JSON object by its string `record_id`: 201
//!   `{"stored":true}` the first time, 200 `{"stored":false,"duplicate":true}` for the
//!   same record again, 409 when the id exists with a different body, 400 when the body
//!   is not an object with a non-empty `record_id` (at most 128 characters).
//! - `GET /v1/records` → `{"records":[…]}` in arrival order.

use crate::data::{face, minutiae};
use crate::devices::lock;
use crate::scenario::{Scenario, Traveler};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct Records {
    order: Vec<String>,
    by_id: HashMap<String, Value>,
}

struct Central {
    scenario: Arc<Scenario>,
    records: Mutex<Records>,
}

/// The enrolment template of `traveler`'s `position` (a careful office capture).
pub fn enrolment_template(
    traveler: &Traveler,
    position: torii_sdk::model::FingerPosition,
) -> Vec<u8> {
    let master = minutiae::master(&traveler.id, position);
    let code = position.code().to_string();
    let imp = minutiae::impression(
        &master,
        position,
        minutiae::Placement::Genuine,
        &["enrolment", &traveler.id, &code],
    );
    minutiae::encode_iso19794_2(std::slice::from_ref(&imp))
}

fn registry_entry(t: &Traveler) -> Option<Value> {
    let reg = t.registration.as_ref()?;
    let fingers: Vec<Value> = reg
        .fingers
        .iter()
        .map(|&p| json!({ "position": p, "template": B64.encode(enrolment_template(t, p)) }))
        .collect();
    let face = face::face_jpeg(&t.id, 0).ok().map(|j| B64.encode(j));
    Some(json!({
        "passport_number": t.registered_passport_number(),
        "nationality": t.nationality,
        "surname": t.surname,
        "given_names": t.given_names,
        "date_of_birth": t.date_of_birth,
        "sex": t.sex,
        "card_number": reg.card_number,
        "card_issued": reg.card_issued,
        "card_valid_until": t.card_valid_until(),
        "status": reg.status,
        "minor_child_of_member": reg.minor_child_of_member,
        "records_on_card": reg.records_on_card,
        "fingers": fingers,
        "face_jpeg": face,
        "ed_card": t.ed_card,
    }))
}

async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// The registry of `scenario`: the `GET /v1/registry` body, also what
/// `torii-sim export-registry` writes for the daemon's `[registry] import` file.
pub fn registry_json(scenario: &Scenario) -> Value {
    json!({ "travelers": registry_entries(scenario) })
}

/// The entries of [`registry_json`]: the initial registry of the central simulator.
pub fn registry_entries(scenario: &Scenario) -> Vec<Value> {
    scenario
        .travelers
        .iter()
        .filter_map(registry_entry)
        .collect()
}

async fn registry(State(c): State<Arc<Central>>) -> Json<Value> {
    Json(registry_json(&c.scenario))
}

fn answer(status: StatusCode, body: Value) -> Response {
    (status, Json(body)).into_response()
}

async fn post_record(State(c): State<Arc<Central>>, body: Bytes) -> Response {
    let Ok(record) = serde_json::from_slice::<Value>(&body) else {
        return answer(
            StatusCode::BAD_REQUEST,
            json!({ "error": "body is not JSON" }),
        );
    };
    let Some(id) = record
        .get("record_id")
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return answer(
            StatusCode::BAD_REQUEST,
            json!({ "error": "a JSON object with a string `record_id` is required" }),
        );
    };
    if id.is_empty() || id.len() > 128 {
        return answer(
            StatusCode::BAD_REQUEST,
            json!({ "error": "`record_id` must be 1 to 128 characters" }),
        );
    }
    let mut records = lock(&c.records);
    match records.by_id.get(&id) {
        Some(existing) if *existing == record => answer(
            StatusCode::OK,
            json!({ "stored": false, "duplicate": true, "record_id": id }),
        ),
        Some(_) => answer(
            StatusCode::CONFLICT,
            json!({ "error": "a different record with this record_id exists", "record_id": id }),
        ),
        None => {
            tracing::info!("central: record stored");
            records.order.push(id.clone());
            records.by_id.insert(id.clone(), record);
            answer(
                StatusCode::CREATED,
                json!({ "stored": true, "record_id": id }),
            )
        }
    }
}

async fn get_records(State(c): State<Arc<Central>>) -> Json<Value> {
    let records = lock(&c.records);
    let list: Vec<&Value> = records
        .order
        .iter()
        .filter_map(|id| records.by_id.get(id))
        .collect();
    Json(json!({ "records": list }))
}

pub(crate) fn router(scenario: Arc<Scenario>) -> Router {
    let central = Arc::new(Central {
        scenario,
        records: Mutex::new(Records::default()),
    });
    Router::new()
        .route("/health", get(health))
        .route("/v1/registry", get(registry))
        .route("/v1/records", get(get_records).post(post_record))
        .with_state(central)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The export is what torii-core imports: every registered traveler, with the
    /// registered passport number, the card, the status and the enrolment templates.
    #[test]
    fn the_registry_export_round_trips_through_torii_core() {
        let scenario = Scenario::parse(
            include_str!("../scenarios/suite.toml"),
            std::path::Path::new("suite.toml"),
        )
        .unwrap();
        let json = serde_json::to_vec(&registry_json(&scenario)).unwrap();
        let registrations = torii_core::registry::import::parse(&json).unwrap();
        let registered: Vec<&Traveler> = scenario
            .travelers
            .iter()
            .filter(|t| t.registration.is_some())
            .collect();
        assert_eq!(registrations.len(), registered.len());
        for (r, t) in registrations.iter().zip(registered) {
            let reg = t.registration.as_ref().unwrap();
            assert_eq!(
                Some(r.passport_number.as_str()),
                t.registered_passport_number()
            );
            assert_eq!(r.nationality, t.nationality);
            assert_eq!(r.card_number, reg.card_number);
            assert_eq!(r.card_issued.to_string(), reg.card_issued.to_string());
            assert_eq!(
                r.card_valid_until.to_string(),
                t.card_valid_until().unwrap().to_string()
            );
            assert_eq!(u32::from(r.records_on_card), reg.records_on_card);
            assert_eq!(
                serde_json::to_value(r.status).unwrap(),
                serde_json::to_value(reg.status).unwrap()
            );
            assert_eq!(r.fingers.len(), reg.fingers.len());
            for f in &r.fingers {
                assert_eq!(f.template, enrolment_template(t, f.position));
            }
            assert_eq!(r.ed_card.is_some(), t.ed_card.is_some(), "{}", t.id);
            if let (Some(ed), Some(sim)) = (&r.ed_card, &t.ed_card) {
                assert_eq!(ed.flight, sim.flight);
                assert_eq!(ed.deported_before, Some(false));
                assert!(ed.validate().is_empty(), "{}: {:?}", t.id, ed.validate());
            }
            // The holder key the gate computes from the MRZ finds the registration.
            let mrz = crate::data::mrz::traveler_mrz(t).unwrap();
            let name = &mrz[0][5..];
            let key =
                torii_core::registry::holder_key(&t.nationality, &t.date_of_birth.yymmdd(), name);
            assert_eq!(r.holder_key, key, "{}", t.id);
        }
    }
}
