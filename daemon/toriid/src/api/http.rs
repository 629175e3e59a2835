//! The HTTP adapter (the only module that knows axum): establishes the caller
//! ([`super::auth`]), parses requests into [`Command`]s, runs them on the [`Core`], and
//! maps [`CommandError`]s to statuses. It decides nothing: the core checks the caller's
//! role against the command's and audits refusals.
//!
//! One router ([`router`], built from [`super::routes::ROUTES`]) serves both listeners:
//! loopback TCP (callers without a token are viewers) and the Unix socket (mode 0660,
//! group `torii`; callers without a token are identified by their peer credentials).
//! The routes and their roles are documented in `daemon/toriid/api/openapi.json`,
//! served at `/api/v1/openapi.json`.
//!
//! Statuses: 401 with `WWW-Authenticate: Bearer` for a wrong credential, or for a
//! caller without one asking for more than a viewer may do; 403 for a credential whose
//! role does not allow the command, or a cookie-authenticated state-changing request
//! without `X-Torii-Request: 1`.

use std::future::Future;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::serve::IncomingStream;
use axum::{Extension, Json, Router};
use serde::Serialize;

use super::auth::{self, Auth, Credential, Identified, Peer, Refusal};
use super::routes::ROUTES;
use super::{json, openapi, sse};
use crate::command::{Command, CommandError, Core, ErrorView, Role};
use crate::config::HttpConfig;

const REALM: &str = "Bearer realm=\"toriid\"";

/// The adapter's state: the core and the credentials it knows.
#[derive(Clone)]
pub struct Api {
    core: Arc<Core>,
    auth: Arc<Auth>,
    /// Open event streams, bounded ([`sse::MAX_STREAMS`]).
    streams: Arc<tokio::sync::Semaphore>,
}

impl Api {
    /// With the tokens of `config.tokens_file` (read and checked with the configuration).
    pub fn new(core: Arc<Core>, config: &HttpConfig) -> Self {
        Self::with_auth(core, Auth::new(config.tokens.clone()))
    }

    /// The tokens and sessions, shared with the configuration reload.
    pub fn auth(&self) -> Arc<Auth> {
        self.auth.clone()
    }

    pub fn with_auth(core: Arc<Core>, auth: Auth) -> Self {
        Api {
            core,
            auth: Arc::new(auth),
            streams: Arc::new(tokio::sync::Semaphore::new(sse::MAX_STREAMS)),
        }
    }

    pub fn core(&self) -> &Arc<Core> {
        &self.core
    }
}

/// The router for both listeners: every route of the table, plus the pages ([`super::web`]).
pub fn router(api: Api) -> Router {
    let mut router = Router::new();
    for route in ROUTES {
        router = router.route(route.path, (route.handler)(route.verb.filter()));
    }
    router
        // Pages are not API routes (they are not in the OpenAPI document).
        .merge(super::web::routes())
        // Prometheus metrics: not an API route either; viewer level, like the status.
        .route("/metrics", axum::routing::get(metrics))
        .fallback(not_found)
        .with_state(api)
}

/// Serves `router` on `listener` (TCP or Unix) until `shutdown` completes; requests
/// in flight are then allowed to finish, and event streams end. Each connection's
/// [`Peer`] (address, or Unix peer credentials) is handed to the handlers.
pub async fn serve<L>(
    listener: L,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
    Peer: for<'a> Connected<IncomingStream<'a, L>>,
{
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let router = router.layer(Extension(sse::Stopping(stopping)));
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<Peer>(),
    )
    .with_graceful_shutdown(async move {
        shutdown.await;
        let _ = stop.send(true);
    })
    .await
}

/// The caller of a request. A wrong credential is refused here (401, or 403 for a
/// missing CSRF header), logged and audited by the core.
pub struct Who(pub Identified);

impl FromRequestParts<Api> for Who {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Self, Self::Rejection> {
        let peer = parts.extensions.get::<ConnectInfo<Peer>>().map(|c| &c.0);
        api.auth
            .identify(peer, &parts.method, &parts.headers)
            .map(Who)
            .map_err(|refusal| refused(&api.core, &refusal))
    }
}

fn refused(core: &Core, refusal: &Refusal) -> Response {
    core.authentication_failed(&refusal.adapter, refusal.why);
    if refusal.csrf {
        return error_response(
            StatusCode::FORBIDDEN,
            "csrf",
            format!(
                "{}: cookie-authenticated requests that change state must carry the header X-Torii-Request: 1",
                refusal.why
            ),
        );
    }
    let mut response = error_response(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        refusal.why.to_owned(),
    );
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"toriid\", error=\"invalid_token\""),
    );
    response
}

fn error_response(status: StatusCode, error: &str, message: String) -> Response {
    (
        status,
        Json(ErrorView {
            error: error.to_owned(),
            message,
            code: None,
        }),
    )
        .into_response()
}

/// A [`CommandError`] as an HTTP response: status from the error kind, JSON body with
/// the message and (for device errors) the CUSS code. `anonymous`: the caller presented
/// no token or session, so a role refusal asks for one (401).
pub struct ApiError {
    error: CommandError,
    anonymous: bool,
}

impl From<CommandError> for ApiError {
    fn from(error: CommandError) -> Self {
        ApiError {
            error,
            anonymous: false,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self.error {
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
            CommandError::Forbidden { .. } if self.anonymous => {
                let mut response = error_response(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    format!(
                        "{}: present a token (Authorization: Bearer) or log in",
                        self.error
                    ),
                );
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(REALM));
                return response;
            }
            CommandError::Forbidden { .. } => StatusCode::FORBIDDEN,
        };
        (status, Json(ErrorView::from(&self.error))).into_response()
    }
}

/// Runs a command for the caller: the core decides whether it may, and audits.
async fn run(api: &Api, who: &Identified, command: Command) -> Result<Response, ApiError> {
    match api.core.execute(&who.caller, command).await {
        Ok(output) => Ok(Json(output).into_response()),
        Err(error) => Err(ApiError {
            error,
            anonymous: who.anonymous(),
        }),
    }
}

/// An input the gate acts on asynchronously: 202.
async fn run_accepted(api: &Api, who: &Identified, command: Command) -> Result<Response, ApiError> {
    let response = run(api, who, command).await?;
    Ok((StatusCode::ACCEPTED, response).into_response())
}

/// The body is parsed here rather than by axum's `Json` extractor so a client gets a
/// 400 naming what was wrong (`unknown variant ...`, `missing field ...`).
fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<T, CommandError> {
    serde_json::from_slice(body)
        .map_err(|e| CommandError::BadRequest(format!("invalid {what}: {e}")))
}

fn blank(body: &[u8]) -> bool {
    body.iter().all(u8::is_ascii_whitespace)
}

pub(super) async fn status(State(api): State<Api>, Who(who): Who) -> Result<Response, ApiError> {
    run(&api, &who, Command::GetStatus).await
}

pub(super) async fn list_devices(
    State(api): State<Api>,
    Who(who): Who,
) -> Result<Response, ApiError> {
    run(&api, &who, Command::ListDevices).await
}

pub(super) async fn get_device(
    State(api): State<Api>,
    Who(who): Who,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    run(&api, &who, Command::GetDevice { id }).await
}

pub(super) async fn device_call(
    State(api): State<Api>,
    Who(who): Who,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let command = command_from_body(BodyRoute::DeviceCall, &id, &body)?;
    run(&api, &who, command).await
}

pub(super) async fn gate_public(
    State(api): State<Api>,
    Who(who): Who,
) -> Result<Response, ApiError> {
    run(&api, &who, Command::GetGate { personal: false }).await
}

pub(super) async fn gate_personal(
    State(api): State<Api>,
    Who(who): Who,
) -> Result<Response, ApiError> {
    run(&api, &who, Command::GetGate { personal: true }).await
}

pub(super) async fn confirm_ed_card(
    State(api): State<Api>,
    Who(who): Who,
    body: Bytes,
) -> Result<Response, ApiError> {
    let command = command_from_body(BodyRoute::EdCard, "", &body)?;
    run_accepted(&api, &who, command).await
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ModeBody {
    mode: torii_core::flow::Mode,
}

pub(super) async fn set_mode(
    State(api): State<Api>,
    Who(who): Who,
    body: Bytes,
) -> Result<Response, ApiError> {
    let command = command_from_body(BodyRoute::Mode, "", &body)?;
    run_accepted(&api, &who, command).await
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DoorBody {
    door: torii_sdk::model::Door,
    command: torii_sdk::model::DoorCommand,
}

pub(super) async fn set_door(
    State(api): State<Api>,
    Who(who): Who,
    body: Bytes,
) -> Result<Response, ApiError> {
    let command = command_from_body(BodyRoute::Doors, "", &body)?;
    run_accepted(&api, &who, command).await
}

/// Takes no body (an empty JSON object is accepted too).
pub(super) async fn acknowledge_alarm(
    State(api): State<Api>,
    Who(who): Who,
    body: Bytes,
) -> Result<Response, ApiError> {
    let command = command_from_body(BodyRoute::AlarmAcknowledge, "", &body)?;
    run_accepted(&api, &who, command).await
}

pub(super) async fn request_stamp(
    State(api): State<Api>,
    Who(who): Who,
    body: Bytes,
) -> Result<Response, ApiError> {
    let command = command_from_body(BodyRoute::StampRequest, "", &body)?;
    run_accepted(&api, &who, command).await
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Empty {}

fn empty_body(body: &[u8]) -> Result<(), CommandError> {
    if !blank(body) {
        parse_body::<Empty>(body, "request (expected no body or {})")?;
    }
    Ok(())
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct InspectBody {
    #[serde(default)]
    mrz: Option<Vec<String>>,
}

pub(super) async fn inspect_document(
    State(api): State<Api>,
    Who(who): Who,
    body: Bytes,
) -> Result<Response, ApiError> {
    let command = command_from_body(BodyRoute::Inspect, "", &body)?;
    run(&api, &who, command).await
}

#[derive(serde::Deserialize)]
pub(super) struct ListQuery {
    limit: Option<usize>,
}

pub(super) async fn list_transactions(
    State(api): State<Api>,
    Who(who): Who,
    axum::extract::Query(query): axum::extract::Query<ListQuery>,
) -> Result<Response, ApiError> {
    let limit = query.limit.unwrap_or(20);
    run(&api, &who, Command::ListTransactions { limit }).await
}

pub(super) async fn get_transaction(
    State(api): State<Api>,
    Who(who): Who,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    run(&api, &who, Command::GetTransaction { id }).await
}

/// The gate's events as server-sent events (see [`sse`]); every caller may follow them.
pub(super) async fn events(
    State(api): State<Api>,
    Who(_who): Who,
    stopping: Option<Extension<sse::Stopping>>,
) -> Response {
    let Ok(permit) = api.streams.clone().try_acquire_owned() else {
        return error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "too-many-streams",
            format!(
                "{} event streams are open already; close one",
                sse::MAX_STREAMS
            ),
        );
    };
    let events = api.core.events().subscribe();
    sse::response(events, stopping.map(|e| e.0), Some(permit)).into_response()
}

/// One row of the reason code table, for the officer console.
#[derive(Serialize)]
struct ReasonCodeView {
    code: &'static str,
    description: &'static str,
    recommended_action: &'static str,
    guidance: torii_core::reason::Guidance,
    guidance_text: &'static str,
}

/// `GET /metrics`: the Prometheus text format ([`crate::metrics`], no personal data).
async fn metrics(State(api): State<Api>, Who(_who): Who) -> Response {
    (
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        crate::metrics::render(&api.core),
    )
        .into_response()
}

pub(super) async fn reason_codes(Who(_who): Who) -> Response {
    let rows: Vec<ReasonCodeView> = torii_core::reason::ReasonCode::ALL
        .iter()
        .map(|reason| ReasonCodeView {
            code: reason.code(),
            description: reason.meaning(),
            recommended_action: reason.officer_action(),
            guidance: reason.guidance(),
            guidance_text: reason.guidance().english(),
        })
        .collect();
    Json(rows).into_response()
}

#[derive(Serialize)]
struct WhoAmI {
    role: Role,
    name: String,
    credential: Credential,
}

impl From<Identified> for WhoAmI {
    fn from(who: Identified) -> Self {
        WhoAmI {
            role: who.caller.role,
            name: who.caller.name,
            credential: who.credential,
        }
    }
}

pub(super) async fn whoami(Who(who): Who) -> Response {
    Json(WhoAmI::from(who)).into_response()
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionBody {
    token: String,
}

/// `POST /api/v1/session {"token": "..."}`: opens a browser session (cookie).
pub(super) async fn open_session(
    State(api): State<Api>,
    peer: Option<Extension<ConnectInfo<Peer>>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let token = session_token_from_body(&body)?;
    let Some((id, caller)) = api.auth.open_session(&token) else {
        return Ok(refused(
            &api.core,
            &Refusal {
                csrf: false,
                adapter: auth::adapter_name(peer.as_ref().map(|c| &c.0.0)),
                why: "unknown token (session)",
            },
        ));
    };
    tracing::info!(caller = %caller.name, "API session opened");
    let who = WhoAmI {
        role: caller.role,
        name: caller.name,
        credential: Credential::Session,
    };
    Ok(with_cookie(
        Json(who).into_response(),
        &auth::session_set_cookie(&id),
    ))
}

/// `DELETE /api/v1/session`: logs out (idempotent). Needs the CSRF header when a
/// session cookie is sent, like every cookie-authenticated change.
pub(super) async fn close_session(
    State(api): State<Api>,
    peer: Option<Extension<ConnectInfo<Peer>>>,
    headers: HeaderMap,
) -> Response {
    if let Some(id) = auth::session_cookie(&headers) {
        if headers
            .get(auth::CSRF_HEADER)
            .is_none_or(|value| value.as_bytes() != b"1")
        {
            return refused(
                &api.core,
                &Refusal {
                    csrf: true,
                    adapter: auth::adapter_name(peer.as_ref().map(|c| &c.0.0)),
                    why: "logout without X-Torii-Request: 1",
                },
            );
        }
        if api.auth.close_session(id) {
            tracing::info!("API session closed");
        }
    }
    with_cookie(
        StatusCode::NO_CONTENT.into_response(),
        &auth::session_clear_cookie(),
    )
}

fn with_cookie(mut response: Response, cookie: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

pub(super) async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        openapi::DOCUMENT,
    )
        .into_response()
}

/// The routes whose request body becomes a [`Command`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyRoute {
    /// `POST /api/v1/devices/{id}/call`
    DeviceCall,
    /// `POST /api/v1/gate/ed-card`
    EdCard,
    /// `POST /api/v1/gate/mode`
    Mode,
    /// `POST /api/v1/gate/doors`
    Doors,
    /// `POST /api/v1/gate/alarm/acknowledge`
    AlarmAcknowledge,
    /// `POST /api/v1/gate/stamp-request`
    StampRequest,
    /// `POST /api/v1/documents/inspect`
    Inspect,
}

impl BodyRoute {
    pub const ALL: [BodyRoute; 7] = [
        BodyRoute::DeviceCall,
        BodyRoute::EdCard,
        BodyRoute::Mode,
        BodyRoute::Doors,
        BodyRoute::AlarmAcknowledge,
        BodyRoute::StampRequest,
        BodyRoute::Inspect,
    ];
}

/// Parses a request body into its command, as the handlers do (they call this), so that
/// the fuzz target `http_body` (daemon/toriid/fuzz) runs the router's own parsing.
/// `id` is the `{id}` path segment of [`BodyRoute::DeviceCall`], ignored by the others.
pub fn command_from_body(route: BodyRoute, id: &str, body: &[u8]) -> Result<Command, CommandError> {
    Ok(match route {
        BodyRoute::DeviceCall => Command::DeviceCall {
            id: id.to_owned(),
            request: json::parse_request(body).map_err(CommandError::BadRequest)?,
        },
        BodyRoute::EdCard => Command::ConfirmEdCard {
            card: Box::new(parse_body(body, "ED card")?),
        },
        BodyRoute::Mode => {
            let ModeBody { mode } = parse_body(body, "mode request")?;
            Command::SetMode { mode }
        }
        BodyRoute::Doors => {
            let DoorBody { door, command } = parse_body(body, "door request")?;
            Command::SetDoor { door, command }
        }
        BodyRoute::AlarmAcknowledge => {
            empty_body(body)?;
            Command::AcknowledgeAlarm
        }
        BodyRoute::StampRequest => {
            empty_body(body)?;
            Command::RequestStamp
        }
        BodyRoute::Inspect => {
            let InspectBody { mrz } = if blank(body) {
                InspectBody::default()
            } else {
                parse_body(body, "inspection request")?
            };
            Command::InspectDocument { mrz }
        }
    })
}

/// The token of `POST /api/v1/session` (not a command: it opens a browser session).
pub fn session_token_from_body(body: &[u8]) -> Result<String, CommandError> {
    let SessionBody { token } = parse_body(body, "session request")?;
    Ok(token)
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

pub(super) async fn healthz() -> Response {
    Json(Health { live: true }).into_response()
}

/// 200 once start-up finished, 503 before (and while stopping).
pub(super) async fn readyz(State(api): State<Api>) -> Response {
    let status = api.core.status();
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
        .into_response()
}

async fn not_found() -> Response {
    error_response(
        StatusCode::NOT_FOUND,
        "not-found",
        "no such route".to_owned(),
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

    const OWN_UID: u32 = 4242;
    const OPERATOR_TOKEN: &str = "torii_operator";
    const VIEWER_TOKEN: &str = "torii_viewer";

    fn tcp() -> Peer {
        Peer::Tcp("127.0.0.1:40000".parse().unwrap())
    }

    fn own_socket() -> Peer {
        Peer::Unix { uid: Some(OWN_UID) }
    }

    fn other_socket() -> Peer {
        Peer::Unix { uid: Some(1000) }
    }

    fn api_for(core: Arc<Core>) -> Router {
        let tokens = format!(
            "{}{}",
            auth::token_entry_toml("console-1", Role::Operator, OPERATOR_TOKEN),
            auth::token_entry_toml("wall", Role::Viewer, VIEWER_TOKEN)
        );
        let auth = Auth::with_uid(auth::parse_tokens(&tokens).unwrap(), OWN_UID);
        router(Api::with_auth(core, auth))
    }

    async fn exchange(
        router: &Router,
        peer: Peer,
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (StatusCode, HeaderMap, serde_json::Value) {
        let mut request = HttpRequest::builder()
            .method(method)
            .uri(uri)
            .header(header::CONTENT_TYPE, "application/json");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let mut request = request.body(Body::from(body.to_owned())).unwrap();
        request.extensions_mut().insert(ConnectInfo(peer));
        let response = router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        (status, headers, json)
    }

    async fn send(
        router: &Router,
        peer: Peer,
        method: Method,
        uri: &str,
        body: &str,
    ) -> (StatusCode, serde_json::Value) {
        let (status, _, json) = exchange(router, peer, method, uri, &[], body).await;
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
    async fn read_only_routes_answer_every_caller() {
        let router = api_for(gate());
        for peer in [tcp(), own_socket(), other_socket()] {
            let (status, json) = send(&router, peer, Method::GET, "/api/v1/status", "").await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(json["gate_id"], "NRT-T1-E01");
            assert_eq!(json["in_service"], false);
            assert_eq!(json["devices"]["unavailable"], 1);
            let (status, json) = send(&router, peer, Method::GET, "/api/v1/devices", "").await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(json.as_array().map(Vec::len), Some(4));
            let (status, json) =
                send(&router, peer, Method::GET, "/api/v1/devices/camera", "").await;
            assert_eq!(
                (status, &json["class"]),
                (StatusCode::OK, &serde_json::json!("camera"))
            );
            assert_eq!(
                send(&router, peer, Method::GET, "/healthz", "").await.0,
                StatusCode::OK
            );
            let response = router
                .clone()
                .oneshot(HttpRequest::get("/").body(Body::empty()).unwrap())
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK);
        }
    }

    #[tokio::test]
    async fn device_calls_need_an_operator() {
        let router = api_for(gate());
        // Without a credential over TCP: 401 asking for a token.
        let (status, headers, json) = exchange(
            &router,
            tcp(),
            Method::POST,
            CALL,
            &[],
            r#"{"op":"read-mrz"}"#,
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(json["error"], "unauthorized");
        assert!(
            headers[header::WWW_AUTHENTICATE]
                .to_str()
                .unwrap()
                .starts_with("Bearer")
        );
        // A viewer token: 403.
        let viewer = format!("Bearer {VIEWER_TOKEN}");
        let (status, _, json) = exchange(
            &router,
            tcp(),
            Method::POST,
            CALL,
            &[("authorization", &viewer)],
            r#"{"op":"read-mrz"}"#,
        )
        .await;
        assert_eq!(
            (status, json["error"].as_str()),
            (StatusCode::FORBIDDEN, Some("forbidden"))
        );
        // Another user on the socket without a token: a viewer.
        let (status, _) = send(
            &router,
            other_socket(),
            Method::POST,
            CALL,
            r#"{"op":"read-mrz"}"#,
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        // The daemon's own user on the socket, or an operator token anywhere.
        let operator = format!("Bearer {OPERATOR_TOKEN}");
        for (peer, headers) in [
            (own_socket(), vec![]),
            (Peer::Unix { uid: Some(0) }, vec![]),
            (tcp(), vec![("authorization", operator.as_str())]),
            (other_socket(), vec![("authorization", operator.as_str())]),
        ] {
            let (status, _, json) = exchange(
                &router,
                peer,
                Method::POST,
                CALL,
                &headers,
                r#"{"op":"read-mrz"}"#,
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{peer:?}: {json}");
            assert_eq!(json["response"]["kind"], "mrz");
            assert_eq!(json["op"], "read-mrz");
        }
    }

    #[tokio::test]
    async fn a_wrong_token_is_401_even_for_read_only_routes() {
        let router = api_for(gate());
        for value in ["Bearer torii_wrong", "Basic YTpi"] {
            let (status, headers, json) = exchange(
                &router,
                own_socket(),
                Method::GET,
                "/api/v1/status",
                &[("authorization", value)],
                "",
            )
            .await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{value}");
            assert!(
                headers[header::WWW_AUTHENTICATE]
                    .to_str()
                    .unwrap()
                    .contains("invalid_token")
            );
            assert!(!json.to_string().contains("torii_wrong"));
        }
        // Public routes do not look at credentials.
        let (status, _, _) = exchange(
            &router,
            tcp(),
            Method::GET,
            "/healthz",
            &[("authorization", "Bearer torii_wrong")],
            "",
        )
        .await;
        assert_eq!(status, StatusCode::OK);
    }

    #[tokio::test]
    async fn whoami_tells_role_name_and_credential() {
        let router = api_for(gate());
        let (_, json) = send(&router, tcp(), Method::GET, "/api/v1/whoami", "").await;
        assert_eq!(
            json,
            serde_json::json!({"role":"viewer","name":"tcp:anonymous","credential":"none"})
        );
        let (_, json) = send(&router, own_socket(), Method::GET, "/api/v1/whoami", "").await;
        assert_eq!(
            json,
            serde_json::json!({"role":"operator","name":"socket:uid=4242","credential":"socket-peer"})
        );
        let bearer = format!("Bearer {OPERATOR_TOKEN}");
        let (_, _, json) = exchange(
            &router,
            other_socket(),
            Method::GET,
            "/api/v1/whoami",
            &[("authorization", &bearer)],
            "",
        )
        .await;
        assert_eq!(
            json,
            serde_json::json!({"role":"operator","name":"token:console-1","credential":"token"})
        );
    }

    #[tokio::test]
    async fn a_browser_session_works_with_its_cookie_and_the_csrf_header() {
        let router = api_for(gate());
        let (status, _, _) = exchange(
            &router,
            tcp(),
            Method::POST,
            "/api/v1/session",
            &[],
            r#"{"token":"torii_wrong"}"#,
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let body = serde_json::json!({ "token": OPERATOR_TOKEN }).to_string();
        let (status, headers, json) =
            exchange(&router, tcp(), Method::POST, "/api/v1/session", &[], &body).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(json["role"], "operator");
        let set_cookie = headers[header::SET_COOKIE].to_str().unwrap().to_owned();
        assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"));
        let cookie = set_cookie.split(';').next().unwrap().to_owned();
        assert!(cookie.starts_with("torii_session=") && !cookie.contains(OPERATOR_TOKEN));

        let (_, _, json) = exchange(
            &router,
            tcp(),
            Method::GET,
            "/api/v1/whoami",
            &[("cookie", &cookie)],
            "",
        )
        .await;
        assert_eq!(json["name"], "session:console-1");
        // A state change without the header is refused (403), with it allowed.
        let (status, _, json) = exchange(
            &router,
            tcp(),
            Method::POST,
            CALL,
            &[("cookie", &cookie)],
            r#"{"op":"read-mrz"}"#,
        )
        .await;
        assert_eq!(
            (status, json["error"].as_str()),
            (StatusCode::FORBIDDEN, Some("csrf"))
        );
        let with_header = [("cookie", cookie.as_str()), ("x-torii-request", "1")];
        let (status, _, _) = exchange(
            &router,
            tcp(),
            Method::POST,
            CALL,
            &with_header,
            r#"{"op":"read-mrz"}"#,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        // Logging out needs the header too, and ends the session.
        let (status, _, _) = exchange(
            &router,
            tcp(),
            Method::DELETE,
            "/api/v1/session",
            &[("cookie", &cookie)],
            "",
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, headers, _) = exchange(
            &router,
            tcp(),
            Method::DELETE,
            "/api/v1/session",
            &with_header,
            "",
        )
        .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        assert!(
            headers[header::SET_COOKIE]
                .to_str()
                .unwrap()
                .contains("Max-Age=0")
        );
        let (status, _, _) = exchange(
            &router,
            tcp(),
            Method::GET,
            "/api/v1/whoami",
            &[("cookie", &cookie)],
            "",
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
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
            (
                "/api/v1/gate/doors",
                r#"{"door":"entry","command":"open"}"#,
                StatusCode::SERVICE_UNAVAILABLE,
                None,
            ),
            (
                "/api/v1/gate/doors",
                r#"{"door":"side","command":"open"}"#,
                StatusCode::BAD_REQUEST,
                None,
            ),
            (
                "/api/v1/gate/alarm/acknowledge",
                r#"{"now":true}"#,
                StatusCode::BAD_REQUEST,
                None,
            ),
            (
                "/api/v1/gate/stamp-request",
                "",
                StatusCode::SERVICE_UNAVAILABLE,
                None,
            ),
        ];
        let router = api_for(gate());
        for (uri, body, expected, code) in cases {
            let (status, json) = send(&router, own_socket(), Method::POST, uri, body).await;
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
        let router = api_for(gate());
        let (_, json) = send(
            &router,
            own_socket(),
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
            &router,
            own_socket(),
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
    async fn unknown_device_and_route_are_404() {
        let router = api_for(gate());
        let (status, json) = send(&router, tcp(), Method::GET, "/api/v1/devices/nope", "").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(json["error"], "unknown-device");
        let (status, json) = send(&router, tcp(), Method::GET, "/api/v2/nothing", "").await;
        assert_eq!(
            (status, json["error"].as_str()),
            (StatusCode::NOT_FOUND, Some("not-found"))
        );
    }

    #[tokio::test]
    async fn readyz_follows_the_ready_flag() {
        let core = gate();
        let router = api_for(core.clone());
        assert_eq!(
            send(&router, tcp(), Method::GET, "/readyz", "").await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        core.set_ready(true);
        assert_eq!(
            send(&router, tcp(), Method::GET, "/readyz", "").await.0,
            StatusCode::OK
        );
    }

    #[tokio::test]
    async fn reason_codes_list_every_code_with_its_action() {
        let (status, json) = send(
            &api_for(gate()),
            tcp(),
            Method::GET,
            "/api/v1/reason-codes",
            "",
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let rows = json.as_array().unwrap();
        assert_eq!(rows.len(), torii_core::reason::ReasonCode::ALL.len());
        let row = rows.iter().find(|r| r["code"] == "MULTI_PERSON").unwrap();
        assert_eq!(
            row["recommended_action"],
            torii_core::reason::ReasonCode::MultiplePersons.officer_action()
        );
        assert_eq!(row["guidance"], "see-officer");
    }

    #[tokio::test]
    async fn the_event_stream_sends_numbered_named_events_and_tells_lag() {
        use crate::events::GateEvent;
        let core = gate();
        let router = api_for(core.clone());
        let mut request = HttpRequest::get("/api/v1/events")
            .body(Body::empty())
            .unwrap();
        request.extensions_mut().insert(ConnectInfo(tcp()));
        let response = router.oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "text/event-stream"
        );
        core.events().publish(GateEvent::ModeChanged {
            mode: torii_core::flow::Mode::Maintenance,
        });
        core.events().publish(GateEvent::AlarmCleared);
        let mut body = response.into_body();
        let mut text = String::new();
        while !text.contains("alarm-cleared") {
            let frame = body.frame().await.unwrap().unwrap();
            if let Ok(data) = frame.into_data() {
                text.push_str(std::str::from_utf8(&data).unwrap());
            }
        }
        let first: Vec<&str> = text.split("\n\n").next().unwrap().lines().collect();
        assert_eq!(
            first,
            [
                "id: 1",
                "event: mode-changed",
                r#"data: {"id":1,"type":"mode-changed","mode":"maintenance"}"#,
            ]
        );
        assert!(text.contains("event: alarm-cleared\n"));

        // A subscriber that falls behind is told how much it missed.
        for _ in 0..2000 {
            core.events().publish(GateEvent::AlarmCleared);
        }
        text.clear();
        while !text.contains("event: lagged") {
            let frame = body.frame().await.unwrap().unwrap();
            if let Ok(data) = frame.into_data() {
                text.push_str(std::str::from_utf8(&data).unwrap());
            }
        }
        let lagged = text
            .split("\n\n")
            .find(|e| e.contains("event: lagged"))
            .unwrap();
        let data: serde_json::Value = serde_json::from_str(
            lagged
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .unwrap(),
        )
        .unwrap();
        assert!(data["missed"].as_u64().unwrap() > 0, "{lagged}");
    }

    #[tokio::test]
    async fn event_streams_are_bounded() {
        let router = api_for(gate());
        let open = || {
            let router = router.clone();
            async move {
                let mut request = HttpRequest::get("/api/v1/events")
                    .body(Body::empty())
                    .unwrap();
                request.extensions_mut().insert(ConnectInfo(tcp()));
                router.oneshot(request).await.unwrap()
            }
        };
        let mut streams = Vec::new();
        for _ in 0..sse::MAX_STREAMS {
            let response = open().await;
            assert_eq!(response.status(), StatusCode::OK);
            streams.push(response);
        }
        assert_eq!(open().await.status(), StatusCode::SERVICE_UNAVAILABLE);
        // A stream that ends gives its place back.
        drop(streams.pop());
        assert_eq!(open().await.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn the_event_stream_ends_when_the_server_stops() {
        let (stop, stopping) = tokio::sync::watch::channel(false);
        let (_tx, rx) = tokio::sync::broadcast::channel::<Arc<crate::events::Numbered>>(4);
        let mut stream = std::pin::pin!(sse::stream(rx, Some(sse::Stopping(stopping)), None));
        stop.send(true).unwrap();
        use futures_util::StreamExt as _;
        assert!(stream.next().await.is_none());
    }
}
