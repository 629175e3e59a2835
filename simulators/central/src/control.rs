//! Central's control API: plain HTTP on a loopback address, JSON in and out (curl-able:
//! bodies are read as JSON whatever their content type; `torii-central ctl` wraps it).
//! Errors are `{"error": "…"}`.
//!
//! | call | body | answer |
//! |---|---|---|
//! | `GET /control/records` | – | `{"records":[{gate_id, seq, record_id, record, received_at}]}`, arrival order |
//! | `GET /control/stats` | – | [`Stats`](crate::Stats) |
//! | `GET /control/fault` | – | the current [`Fault`] |
//! | `POST /control/fault` | `{"mode":"slow","delay_ms":500}` | `{"fault":…}` once in effect; 400 bad mode, 503 cannot listen again |
//! | `POST /control/registry/upsert` | `{"traveler":{…registry export entry…}}` | `{"seq":n}` |
//! | `POST /control/registry/erase` | `{"passport_number":…,"nationality":…}` | `{"seq":n}` |
//! | `POST /control/revoke` | `{"passport_number":…,"nationality":…,"status":"revoked"}` | `{"seq":n}` |
//! | `POST /control/reset-records` | – | `{"cleared":n}`: records and every gate's last seq forgotten |
//! | `GET /health` | – | `{"status":"ok"}` |

use crate::server::{FaultError, Shared, problem};
use crate::{Fault, store::FeedError};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::sync::Arc;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/health", get(|| async { Json(json!({ "status": "ok" })) }))
        .route("/control/records", get(records))
        .route("/control/stats", get(stats))
        .route("/control/fault", get(fault).post(set_fault))
        .route("/control/registry/upsert", post(upsert))
        .route("/control/registry/erase", post(erase))
        .route("/control/revoke", post(revoke))
        .route("/control/reset-records", post(reset_records))
        .fallback(|| async { problem(StatusCode::NOT_FOUND, "no such control call") })
        .with_state(shared)
}

/// The JSON body whatever its content type (`curl -d` sends a form type), or why it
/// is refused (400).
fn body<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("the body is not the JSON expected: {e}"))
}

fn seq_answer(seq: Result<u64, FeedError>) -> Response {
    match seq {
        Ok(seq) => Json(json!({ "seq": seq })).into_response(),
        Err(e) => problem(StatusCode::BAD_REQUEST, e.to_string()),
    }
}

async fn records(State(shared): State<Arc<Shared>>) -> Json<Value> {
    Json(json!({ "records": shared.records() }))
}

async fn stats(State(shared): State<Arc<Shared>>) -> Response {
    Json(shared.stats()).into_response()
}

async fn fault(State(shared): State<Arc<Shared>>) -> Json<Fault> {
    Json(shared.fault())
}

async fn set_fault(State(shared): State<Arc<Shared>>, bytes: Bytes) -> Response {
    let fault = match body(&bytes) {
        Ok(fault) => fault,
        Err(e) => return problem(StatusCode::BAD_REQUEST, e),
    };
    match shared.set_fault(fault).await {
        Ok(()) => Json(json!({ "fault": fault })).into_response(),
        Err(e @ FaultError::NoRogueCertificate) => problem(StatusCode::BAD_REQUEST, e.to_string()),
        Err(e) => problem(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Upsert {
    traveler: Value,
}

async fn upsert(State(shared): State<Arc<Shared>>, bytes: Bytes) -> Response {
    match body(&bytes) {
        Ok(Upsert { traveler }) => seq_answer(shared.upsert(traveler)),
        Err(e) => problem(StatusCode::BAD_REQUEST, e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Erase {
    passport_number: String,
    nationality: String,
}

async fn erase(State(shared): State<Arc<Shared>>, bytes: Bytes) -> Response {
    match body(&bytes) {
        Ok(Erase {
            passport_number,
            nationality,
        }) => seq_answer(shared.erase(passport_number, nationality)),
        Err(e) => problem(StatusCode::BAD_REQUEST, e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Revoke {
    passport_number: String,
    nationality: String,
    status: String,
}

async fn revoke(State(shared): State<Arc<Shared>>, bytes: Bytes) -> Response {
    match body(&bytes) {
        Ok(Revoke {
            passport_number,
            nationality,
            status,
        }) => seq_answer(shared.revoke(passport_number, nationality, status)),
        Err(e) => problem(StatusCode::BAD_REQUEST, e),
    }
}

async fn reset_records(State(shared): State<Arc<Shared>>) -> Json<Value> {
    Json(json!({ "cleared": shared.reset_records() }))
}
