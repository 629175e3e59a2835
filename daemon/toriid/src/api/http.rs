//! The HTTP adapter (the only module that knows axum): parses requests into
//! [`Command`]s, runs them on the [`Core`], and maps [`CommandError`]s to statuses.
//!
//! Two routers from the same handlers:
//! - [`tcp_router`] (loopback TCP, no authentication yet): the read-only routes only;
//! - [`unix_router`] (Unix socket, mode 0660, group `torii`): the read-only routes plus
//!   device control.
//!
//! Keeping control routes out of the TCP router (rather than refusing them at run
//! time) means no mistake in a handler can expose them there.

use std::future::Future;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use torii_sdk::model::Request;

use super::json;
use crate::command::{Command, CommandError, Core, ErrorView};

const CONSOLE_HTML: &str = include_str!("../console.html");

type AppState = Arc<Core>;

/// Routes that only read state: safe on the unauthenticated TCP listener.
fn read_only_routes() -> Router<AppState> {
    Router::new()
        .route("/", get(console))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/api/v1/status", get(status))
        .route("/api/v1/devices", get(list_devices))
        .route("/api/v1/devices/{id}", get(get_device))
        .route("/api/v1/gate", get(gate_public))
        .route("/api/v1/transactions", get(list_transactions))
}

/// Routes that act on devices: only on the Unix socket until token auth exists.
fn control_routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/devices/{id}/call", post(device_call))
        // Personal data (the ED card under edit, full records) and control.
        .route("/api/v1/gate/personal", get(gate_personal))
        .route("/api/v1/gate/ed-card", post(confirm_ed_card))
        .route("/api/v1/gate/mode", post(set_mode))
        .route("/api/v1/transactions/{id}", get(get_transaction))
        .route("/api/v1/documents/inspect", post(inspect_document))
}

/// The router for the loopback TCP listener: read-only routes only.
pub fn tcp_router(core: Arc<Core>) -> Router {
    read_only_routes().fallback(not_found).with_state(core)
}

/// The router for the Unix socket: every route.
pub fn unix_router(core: Arc<Core>) -> Router {
    read_only_routes()
        .merge(control_routes())
        .fallback(not_found)
        .with_state(core)
}

/// Serves `router` on `listener` (TCP or Unix) until `shutdown` completes; requests
/// in flight are then allowed to finish.
pub async fn serve<L>(
    listener: L,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

/// A [`CommandError`] as an HTTP response: status from the error kind, JSON body with
/// the message and (for device errors) the CUSS code.
struct ApiError(CommandError);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self.0 {
            CommandError::UnknownDevice(_) => StatusCode::NOT_FOUND,
            CommandError::BadRequest(_) | CommandError::WrongClass { .. } => {
                StatusCode::BAD_REQUEST
            }
            CommandError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            CommandError::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            CommandError::DeviceStatus { .. } => StatusCode::BAD_GATEWAY,
            CommandError::GateNotRunning(_) => StatusCode::SERVICE_UNAVAILABLE,
            CommandError::UnknownTransaction(_) => StatusCode::NOT_FOUND,
            CommandError::Conflict(_) => StatusCode::CONFLICT,
        };
        (status, Json(ErrorView::from(&self.0))).into_response()
    }
}

async fn run(core: &Core, command: Command) -> Result<Response, ApiError> {
    let output = core.execute(command).await.map_err(ApiError)?;
    Ok(Json(output).into_response())
}

async fn status(State(core): State<AppState>) -> Result<Response, ApiError> {
    run(&core, Command::GetStatus).await
}

async fn list_devices(State(core): State<AppState>) -> Result<Response, ApiError> {
    run(&core, Command::ListDevices).await
}

async fn get_device(
    State(core): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    run(&core, Command::GetDevice { id }).await
}

async fn device_call(
    State(core): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request = parse_request(&body).map_err(ApiError)?;
    run(&core, Command::DeviceCall { id, request }).await
}

async fn gate_public(State(core): State<AppState>) -> Result<Response, ApiError> {
    run(&core, Command::GetGate { personal: false }).await
}

async fn gate_personal(State(core): State<AppState>) -> Result<Response, ApiError> {
    run(&core, Command::GetGate { personal: true }).await
}

async fn confirm_ed_card(State(core): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let card = serde_json::from_slice(&body)
        .map_err(|e| ApiError(CommandError::BadRequest(format!("invalid ED card: {e}"))))?;
    let response = run(
        &core,
        Command::ConfirmEdCard {
            card: Box::new(card),
        },
    )
    .await?;
    Ok((StatusCode::ACCEPTED, response).into_response())
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ModeBody {
    mode: torii_core::flow::Mode,
}

async fn set_mode(State(core): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let body: ModeBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError(CommandError::BadRequest(format!(
            "invalid mode request: {e}"
        )))
    })?;
    let response = run(&core, Command::SetMode { mode: body.mode }).await?;
    Ok((StatusCode::ACCEPTED, response).into_response())
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct InspectBody {
    #[serde(default)]
    mrz: Option<Vec<String>>,
}

async fn inspect_document(State(core): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let body: InspectBody = if body.iter().all(u8::is_ascii_whitespace) {
        InspectBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError(CommandError::BadRequest(format!(
                "invalid inspection request: {e}"
            )))
        })?
    };
    run(&core, Command::InspectDocument { mrz: body.mrz }).await
}

#[derive(serde::Deserialize)]
struct ListQuery {
    limit: Option<usize>,
}

async fn list_transactions(
    State(core): State<AppState>,
    axum::extract::Query(query): axum::extract::Query<ListQuery>,
) -> Result<Response, ApiError> {
    run(
        &core,
        Command::ListTransactions {
            limit: query.limit.unwrap_or(20),
        },
    )
    .await
}

async fn get_transaction(
    State(core): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    run(&core, Command::GetTransaction { id }).await
}

/// The body is parsed here rather than by axum's `Json` extractor so a client gets a
/// 400 naming what was wrong (`unknown variant ...`, `missing field ...`).
fn parse_request(body: &[u8]) -> Result<Request, CommandError> {
    json::parse_request(body).map_err(CommandError::BadRequest)
}

#[derive(Serialize)]
struct Health {
    live: bool,
}

#[derive(Serialize)]
struct Readiness {
    ready: bool,
    in_service: bool,
}

async fn healthz() -> Json<Health> {
    Json(Health { live: true })
}

/// 200 once start-up finished, 503 before (and while stopping).
async fn readyz(State(core): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let status = core.status();
    let code = if status.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        Json(Readiness {
            ready: status.ready,
            in_service: status.in_service,
        }),
    )
}

async fn console() -> impl IntoResponse {
    // The page is self-contained; forbid it from loading anything from elsewhere.
    (
        [(
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'",
        )],
        Html(CONSOLE_HTML),
    )
}

async fn not_found() -> (StatusCode, Json<ErrorView>) {
    (
        StatusCode::NOT_FOUND,
        Json(ErrorView {
            error: "not-found".to_owned(),
            message: "no such route".to_owned(),
            code: None,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::testing::{FakeDevice, core_with};
    use axum::body::Body;
    use axum::http::{Method, Request as HttpRequest};
    use http_body_util::BodyExt as _;
    use torii_plugin_host::CallError;
    use torii_sdk::model::{DeviceClass, Response as DeviceResponse, Status};
    use tower::ServiceExt as _;

    async fn send(
        router: Router,
        method: Method,
        uri: &str,
        body: &str,
    ) -> (StatusCode, serde_json::Value) {
        let request = HttpRequest::builder()
            .method(method)
            .uri(uri)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_owned()))
            .unwrap();
        let response = router.oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        (status, json)
    }

    fn gate() -> Arc<Core> {
        core_with(vec![
            FakeDevice::ready("document-reader", DeviceClass::DocumentReader).answering(Ok(
                DeviceResponse::Mrz {
                    lines: vec!["P<JPN".into()],
                },
            )),
            FakeDevice::ready("camera", DeviceClass::Camera)
                .answering(Err(CallError::Timeout { after_ms: 3000 })),
            FakeDevice::ready("card-printer", DeviceClass::CardPrinter)
                .answering(Err(CallError::Status(Status::MediaAbsent))),
            FakeDevice::unopened(
                "lane-controller",
                DeviceClass::LaneController,
                "driver not found",
            ),
        ])
    }

    const CALL: &str = "/api/v1/devices/document-reader/call";

    #[tokio::test]
    async fn read_only_routes_answer_on_both_routers() {
        for router in [tcp_router(gate()), unix_router(gate())] {
            let (status, json) = send(router.clone(), Method::GET, "/api/v1/status", "").await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(json["gate_id"], "NRT-T1-E01");
            assert_eq!(json["in_service"], false);
            assert_eq!(json["devices"]["unavailable"], 1);
            let (status, json) = send(router.clone(), Method::GET, "/api/v1/devices", "").await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(json.as_array().map(Vec::len), Some(4));
            let (status, json) =
                send(router.clone(), Method::GET, "/api/v1/devices/camera", "").await;
            assert_eq!(
                (status, &json["class"]),
                (StatusCode::OK, &serde_json::json!("camera"))
            );
            assert_eq!(
                send(router.clone(), Method::GET, "/healthz", "").await.0,
                StatusCode::OK
            );
            let response = router
                .oneshot(HttpRequest::get("/").body(Body::empty()).unwrap())
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK);
        }
    }

    #[tokio::test]
    async fn the_tcp_router_has_no_call_route() {
        let (status, json) = send(
            tcp_router(gate()),
            Method::POST,
            CALL,
            r#"{"op":"read-mrz"}"#,
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(json["error"], "not-found");
        // ... while the Unix socket router serves it.
        let (status, json) = send(
            unix_router(gate()),
            Method::POST,
            CALL,
            r#"{"op":"read-mrz"}"#,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(json["response"]["kind"], "mrz");
        assert_eq!(json["op"], "read-mrz");
    }

    #[tokio::test]
    async fn errors_map_to_statuses() {
        let cases = [
            (
                "/api/v1/devices/nope/call",
                r#"{"op":"get-state"}"#,
                StatusCode::NOT_FOUND,
                None,
            ),
            (
                CALL,
                r#"{"op":"capture-face","timeout_ms":5}"#,
                StatusCode::BAD_REQUEST,
                Some("INVALID_ARGUMENT"),
            ),
            (CALL, r#"{"op":"read-mzr"}"#, StatusCode::BAD_REQUEST, None),
            (CALL, "", StatusCode::BAD_REQUEST, None),
            (CALL, "{not json", StatusCode::BAD_REQUEST, None),
            (
                "/api/v1/devices/camera/call",
                r#"{"op":"capture-face","timeout_ms":5}"#,
                StatusCode::GATEWAY_TIMEOUT,
                Some("TIMEOUT"),
            ),
            (
                "/api/v1/devices/lane-controller/call",
                r#"{"op":"get-fire-alarm"}"#,
                StatusCode::SERVICE_UNAVAILABLE,
                Some("UNAVAILABLE"),
            ),
            (
                "/api/v1/devices/card-printer/call",
                r#"{"op":"eject-card"}"#,
                StatusCode::BAD_GATEWAY,
                Some("MEDIA_ABSENT"),
            ),
        ];
        for (uri, body, expected, code) in cases {
            let (status, json) = send(unix_router(gate()), Method::POST, uri, body).await;
            assert_eq!(status, expected, "{uri} {body}: {json}");
            assert!(
                json["message"].as_str().is_some_and(|m| !m.is_empty()),
                "{json}"
            );
            assert_eq!(json["code"].as_str(), code, "{uri} {body}: {json}");
        }
    }

    #[tokio::test]
    async fn a_bad_body_names_what_was_wrong() {
        let (_, json) = send(
            unix_router(gate()),
            Method::POST,
            CALL,
            r#"{"op":"read-mzr"}"#,
        )
        .await;
        assert!(
            json["message"].as_str().unwrap().contains("read-mzr"),
            "{json}"
        );
        let (_, json) = send(
            unix_router(gate()),
            Method::POST,
            "/api/v1/devices/lane-controller/call",
            r#"{"op":"set-door","door":"entry"}"#,
        )
        .await;
        assert!(
            json["message"].as_str().unwrap().contains("command"),
            "{json}"
        );
    }

    #[tokio::test]
    async fn unknown_device_is_404() {
        let (status, json) =
            send(tcp_router(gate()), Method::GET, "/api/v1/devices/nope", "").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(json["error"], "unknown-device");
    }

    #[tokio::test]
    async fn readyz_follows_the_ready_flag() {
        let core = gate();
        assert_eq!(
            send(tcp_router(core.clone()), Method::GET, "/readyz", "")
                .await
                .0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        core.set_ready(true);
        assert_eq!(
            send(tcp_router(core), Method::GET, "/readyz", "").await.0,
            StatusCode::OK
        );
    }
}
