//! The checked-in OpenAPI document (`daemon/toriid/api/openapi.json`) against the code:
//! - its paths, methods and `x-torii-role`s are exactly the route table the router is
//!   built from (`toriid::api::routes::ROUTES`);
//! - every route, called with its documented example as every kind of caller, is
//!   refused exactly when the documented role is not allowed (so the column documents
//!   what the core really decides), and answers only documented statuses;
//! - real responses of the main routes, from a running gate flow, validate against the
//!   documented schemas, and so do the event stream's data.
//!
//! When a test here fails, the code and the document disagree: fix whichever is wrong
//! (the document is written by hand).

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;

use toriid::api::auth::{self, Auth, Peer};
use toriid::api::http::{Api, router};
use toriid::api::openapi::DOCUMENT;
use toriid::api::routes::ROUTES;
use toriid::command::{Core, Role};
use toriid::config::{Config, ConfigPaths};
use toriid::registry::Registry;

const VIEWER: &str = "torii_test-viewer";
const KIOSK: &str = "torii_test-kiosk";
const OPERATOR: &str = "torii_test-operator";
const OPERATIONS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

fn document() -> Value {
    serde_json::from_str(DOCUMENT).expect("openapi.json is JSON")
}

fn auth() -> Auth {
    let file = [
        ("wall", Role::Viewer, VIEWER),
        ("kiosk-1", Role::Kiosk, KIOSK),
        ("console-1", Role::Operator, OPERATOR),
    ]
    .map(|(name, role, token)| auth::token_entry_toml(name, role, token))
    .concat();
    // As if toriid ran as another user than this test: socket peers are viewers.
    Auth::with_uid(auth::parse_tokens(&file).unwrap(), u32::MAX - 1)
}

fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("path item") {
            if OPERATIONS.contains(&method.as_str()) {
                out.push((method.clone(), path.clone(), operation.clone()));
            }
        }
    }
    out
}

#[test]
fn the_document_lists_exactly_the_route_table() {
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    let documented: BTreeSet<(String, String, String)> = operations(&doc)
        .into_iter()
        .map(|(method, path, operation)| {
            let role = operation["x-torii-role"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path}: no x-torii-role"))
                .to_owned();
            (path, method, role)
        })
        .collect();
    let table: BTreeSet<(String, String, String)> = ROUTES
        .iter()
        .map(|route| {
            (
                route.path.to_owned(),
                route.verb.name().to_owned(),
                route.access.name().to_owned(),
            )
        })
        .collect();
    let missing: Vec<_> = table.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&table).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "openapi.json and the route table disagree.\n  routes not documented (or with another role): {missing:?}\n  documented but not routed (or with another role): {extra:?}"
    );
    assert_eq!(ROUTES.len(), table.len(), "a route is listed twice");
}

#[test]
fn every_reference_resolves_and_operations_are_named_once() {
    fn walk(doc: &Value, value: &Value, at: &str, broken: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    if key == "$ref" {
                        let target = child.as_str().unwrap_or_default();
                        let resolves = target
                            .strip_prefix('#')
                            .is_some_and(|pointer| doc.pointer(pointer).is_some());
                        if !resolves {
                            broken.push(format!("{at}: {target}"));
                        }
                    } else {
                        walk(doc, child, &format!("{at}/{key}"), broken);
                    }
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    walk(doc, child, &format!("{at}/{i}"), broken);
                }
            }
            _ => {}
        }
    }
    let doc = document();
    let mut broken = Vec::new();
    walk(&doc, &doc, "", &mut broken);
    assert!(broken.is_empty(), "unresolved $refs: {broken:#?}");
    let mut ids = BTreeSet::new();
    for (method, path, operation) in operations(&doc) {
        let id = operation["operationId"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(!id.is_empty(), "{method} {path}: no operationId");
        assert!(ids.insert(id.clone()), "operationId {id} used twice");
        let role = operation["x-torii-role"].as_str().unwrap_or_default();
        let security = operation["security"].as_array().expect("security");
        assert_eq!(
            security.is_empty(),
            role == "public",
            "{method} {path}: public routes (only) take no credential"
        );
        if role != "public" {
            assert!(
                operation["responses"]["401"].is_object(),
                "{method} {path}: a credential may be wrong, document 401"
            );
        }
    }
}

/// The JSON Schema validator of whatever `pointer` names in the document.
fn validator(doc: &Value, pointer: &str) -> jsonschema::Validator {
    let mut root = doc.clone();
    root.as_object_mut()
        .unwrap()
        // A URI fragment: the braces of path templates are percent-encoded.
        .insert(
            "$ref".to_owned(),
            Value::from(format!(
                "#{}",
                pointer.replace('{', "%7B").replace('}', "%7D")
            )),
        );
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .build(&root)
        .unwrap_or_else(|e| panic!("schema at {pointer}: {e}"))
}

fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// Checks that `status` is documented for the operation and that `body` (JSON) matches
/// the documented schema.
fn check_response(doc: &Value, method: &str, path: &str, status: StatusCode, body: &Value) {
    let operation = format!("/paths/{}/{method}", escape(path));
    let code = status.as_u16().to_string();
    let mut response = format!("{operation}/responses/{code}");
    let Some(mut documented) = doc.pointer(&response) else {
        panic!("{method} {path} answered {status}, which is not documented: {body}");
    };
    if let Some(target) = documented["$ref"].as_str() {
        response = target.trim_start_matches('#').to_owned();
        documented = doc.pointer(&response).unwrap();
    }
    if documented["content"]["application/json"].is_object() {
        let pointer = format!("{response}/content/application~1json/schema");
        let validator = validator(doc, &pointer);
        let errors: Vec<String> = validator
            .iter_errors(body)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{method} {path} {status}: the answer does not match {pointer}:\n{errors:#?}\n{body:#}"
        );
    }
}

fn check_schema(doc: &Value, name: &str, value: &Value) {
    let pointer = format!("/components/schemas/{name}");
    let errors: Vec<String> = validator(doc, &pointer)
        .iter_errors(value)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{value} does not match {name}: {errors:#?}"
    );
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Option<Body>,
}

impl Answer {
    async fn json(mut self) -> Value {
        let bytes = self
            .body
            .take()
            .unwrap()
            .collect()
            .await
            .unwrap()
            .to_bytes();
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    }
}

async fn call(
    router: &Router,
    peer: Peer,
    token: Option<&str>,
    method: &str,
    uri: &str,
    body: Option<&Value>,
) -> Answer {
    let mut request = Request::builder()
        .method(Method::from_bytes(method.to_uppercase().as_bytes()).unwrap())
        .uri(uri);
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let body = match body {
        Some(value) => {
            request = request.header(header::CONTENT_TYPE, "application/json");
            Body::from(value.to_string())
        }
        None => Body::empty(),
    };
    let mut request = request.body(body).unwrap();
    request.extensions_mut().insert(ConnectInfo(peer));
    let response = router.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body: Some(body),
    }
}

fn tcp() -> Peer {
    Peer::Tcp("127.0.0.1:50000".parse().unwrap())
}

/// The documented example of a route: its URI (path parameters from their examples)
/// and its request body.
fn example(path: &str, operation: &Value) -> (String, Option<Value>) {
    let mut uri = path.to_owned();
    for parameter in operation["parameters"].as_array().into_iter().flatten() {
        if parameter["in"] == "path" {
            let name = parameter["name"].as_str().unwrap();
            let value = parameter["example"]
                .as_str()
                .unwrap_or_else(|| panic!("{path}: path parameter {name} has no example"));
            uri = uri.replace(&format!("{{{name}}}"), value);
        }
    }
    let body = operation["requestBody"]["content"]["application/json"]["example"].clone();
    (
        uri,
        (!body.is_null() || operation["requestBody"].is_object()).then_some(body),
    )
}

/// A daemon's core as toriid builds it, with a running gate flow when the config
/// allows one.
struct Gate {
    _dir: tempfile::TempDir,
    core: Arc<Core>,
    flow: Option<toriid::gate::GateHandle>,
}

fn write_private(path: &Path, content: &[u8]) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::write(path, content).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

async fn gate(with_flow: bool) -> Gate {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    std::fs::write(dir.path().join("libdriver.so"), b"not a driver").unwrap();
    let issuer = p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap();
    std::fs::write(
        dir.path().join("issuer.pem"),
        torii_core::card::issuer_key_to_pem(issuer.verifying_key()),
    )
    .unwrap();
    write_private(&dir.path().join("outbox.key"), "ab".repeat(32).as_bytes());
    let flow = if with_flow {
        format!(
            "[registry]\ndatabase = \"{d}/registry.db\"\ncard_issuer_key = \"{d}/issuer.pem\"\n\
             [outbox]\ndatabase = \"{d}/outbox.db\"\nkey_file = \"{d}/outbox.key\"\n"
        )
    } else {
        String::new()
    };
    let text = format!(
        "[gate]\nid = \"NRT-T1-E01\"\nlane = \"entry\"\n\
         [paths]\nstate_dir = \"{d}\"\nruntime_dir = \"{d}/run\"\n\
         [http]\nlisten = \"\"\nsocket = \"\"\n\
         [audit]\npath = \"{d}/audit.log\"\n\
         {flow}\
         [devices.camera]\nclass = \"camera\"\ndriver = \"{d}/libdriver.so\"\n"
    );
    std::fs::write(dir.path().join("toriid.toml"), text).unwrap();
    let config = Config::load(
        &ConfigPaths::for_file(dir.path().join("toriid.toml")),
        std::iter::empty(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let registry = Arc::new(Registry::new(&config.devices));
    let core = Arc::new(Core::new(
        config.gate.clone(),
        registry.clone(),
        Instant::now(),
    ));
    let mut handle = None;
    if with_flow {
        let started = toriid::gate::start(&config, registry)
            .unwrap_or_else(|e| panic!("{e}"))
            .expect("a gate flow");
        let flow = started.handle;
        // The bus publisher (as the daemon runs it) compares each status with the one
        // it saw first: let it see one before the test changes anything.
        let (ready, baseline) = tokio::sync::oneshot::channel();
        let publisher = toriid::events::watch_gate(flow.watch_status(), core.events().clone());
        tokio::spawn(async move {
            let mut publisher = std::pin::pin!(publisher);
            let done = std::future::poll_fn(|cx| {
                std::task::Poll::Ready(publisher.as_mut().poll(cx).is_ready())
            })
            .await;
            let _ = ready.send(());
            if !done {
                publisher.await;
            }
        });
        baseline.await.unwrap();
        core.set_flow(flow.clone());
        handle = Some(flow);
    } else {
        core.set_flow_missing("no card issuer key configured".into());
        // The central link's figures appear in the status when the daemon has them.
        let stats = toriid::link_stats::LinkStats {
            forwarder_errors: vec![("timeout".to_owned(), 2)],
            registry_staleness_seconds: Some(12.5),
            ..Default::default()
        };
        core.set_link_stats(Arc::new(move || stats.clone()));
    }
    core.set_ready(true);
    Gate {
        _dir: dir,
        core,
        flow: handle,
    }
}

/// Every route, as every kind of caller: refused (401 without a credential, 403 with
/// one) exactly when its `x-torii-role` does not allow the caller's role; otherwise
/// answered with a documented status.
#[tokio::test]
async fn every_route_answers_as_its_documented_role_says() {
    let doc = document();
    let gate = gate(false).await;
    let router = router(Api::with_auth(gate.core.clone(), auth()));
    let callers = [
        ("no credential over TCP", tcp(), None, Role::Viewer),
        (
            "no credential, another user on the socket",
            Peer::Unix { uid: Some(1000) },
            None,
            Role::Viewer,
        ),
        ("viewer token", tcp(), Some(VIEWER), Role::Viewer),
        ("kiosk token", tcp(), Some(KIOSK), Role::Kiosk),
        ("operator token", tcp(), Some(OPERATOR), Role::Operator),
    ];
    let mut checked = 0;
    for (method, path, operation) in operations(&doc) {
        let required = match operation["x-torii-role"].as_str().unwrap() {
            "public" => None,
            name => Some(auth::parse_role(name).expect("a role")),
        };
        let (uri, mut body) = example(&path, &operation);
        if path == "/api/v1/session" && method == "post" {
            // Logging in depends on the token, not on the caller: use a real one.
            body = Some(json!({ "token": VIEWER }));
        }
        for (who, peer, token, role) in &callers {
            let answer = call(&router, *peer, *token, &method, &uri, body.as_ref()).await;
            let status = answer.status;
            let allowed = required.is_none_or(|required| role.allows(required));
            let context = format!("{method} {path} as {who}");
            if allowed {
                assert!(
                    !matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN),
                    "{context}: refused ({status}) though x-torii-role allows it"
                );
            } else if token.is_some() {
                assert_eq!(status, StatusCode::FORBIDDEN, "{context}");
            } else {
                assert_eq!(status, StatusCode::UNAUTHORIZED, "{context}");
                assert!(
                    answer.headers[header::WWW_AUTHENTICATE]
                        .to_str()
                        .unwrap()
                        .starts_with("Bearer"),
                    "{context}"
                );
            }
            if path == "/api/v1/events" && status == StatusCode::OK {
                // An endless stream: its status and type are what can be checked here.
                assert_eq!(answer.headers[header::CONTENT_TYPE], "text/event-stream");
                check_response(&doc, &method, &path, status, &Value::Null);
            } else if path == "/api/v1/openapi.json" {
                assert_eq!(answer.json().await, doc, "served as checked in");
            } else {
                let json = answer.json().await;
                check_response(&doc, &method, &path, status, &json);
            }
            checked += 1;
        }
    }
    assert_eq!(checked, ROUTES.len() * callers.len());
}

/// Waits for the gate's status to satisfy `done` (a guard, not a timing assertion).
async fn wait_for(
    flow: &toriid::gate::GateHandle,
    what: &str,
    done: impl Fn(&torii_core::flow::GateStatus) -> bool,
) {
    let mut status = flow.watch_status();
    tokio::time::timeout(Duration::from_secs(60), status.wait_for(|s| done(s)))
        .await
        .unwrap_or_else(|_| panic!("the gate never reached: {what}"))
        .unwrap();
}

#[tokio::test]
async fn real_responses_match_the_documented_schemas() {
    let doc = document();
    let gate = gate(true).await;
    let flow = gate.flow.clone().unwrap();
    let router = router(Api::with_auth(gate.core.clone(), auth()));
    let get = |path: &'static str, token: Option<&'static str>| {
        let router = router.clone();
        async move {
            let answer = call(&router, tcp(), token, "get", path, None).await;
            let status = answer.status;
            (status, answer.json().await)
        }
    };

    // Follow the events from before the transaction.
    let events = call(&router, tcp(), None, "get", "/api/v1/events", None).await;
    assert_eq!(events.status, StatusCode::OK);
    let mut events = Events {
        body: events.body.unwrap(),
        text: String::new(),
    };
    // A mode round trip through the API: once its events arrived, the bus follows the
    // gate (its publisher has the current status to compare with).
    wait_for(&flow, "accepting travelers", |s| s.accepting()).await;
    for mode in ["out-of-service", "in-service"] {
        let body = json!({ "mode": mode });
        let answer = call(
            &router,
            tcp(),
            Some(OPERATOR),
            "post",
            "/api/v1/gate/mode",
            Some(&body),
        )
        .await;
        assert_eq!(answer.status, StatusCode::ACCEPTED);
        let seen = events.until(&doc, "mode-changed").await;
        assert_eq!(seen.last().unwrap()["mode"], mode);
    }

    // A traveler puts a passport on the reader; this gate has no document reader, so
    // the transaction ends in a referral, with a full record.
    wait_for(&flow, "accepting travelers", |s| s.accepting()).await;
    assert!(flow.send(torii_core::flow::GateInput::Device {
        class: torii_sdk::model::DeviceClass::DocumentReader,
        event: torii_sdk::model::Event::MediaPresent,
    }));
    wait_for(&flow, "a finished transaction", |s| s.transactions >= 1).await;
    let seen = events.until(&doc, "transaction-finished").await;
    let finished = seen.last().unwrap();
    assert_eq!(finished["admitted"], false);
    assert!(seen.iter().any(|e| e["type"] == "step-changed"), "{seen:?}");

    for (path, token) in [
        ("/healthz", None),
        ("/readyz", None),
        ("/api/v1/whoami", None),
        ("/api/v1/whoami", Some(OPERATOR)),
        ("/api/v1/status", None),
        ("/api/v1/devices", None),
        ("/api/v1/devices/{id}", None),
        ("/api/v1/gate", None),
        ("/api/v1/gate/personal", Some(KIOSK)),
        ("/api/v1/transactions", None),
        ("/api/v1/reason-codes", None),
    ] {
        let uri = path.replace("{id}", "camera");
        let answer = call(&router, tcp(), token, "get", &uri, None).await;
        let status = answer.status;
        assert_eq!(status, StatusCode::OK, "{path}");
        check_response(&doc, "get", path, status, &answer.json().await);
    }

    let (_, transactions) = get("/api/v1/transactions", None).await;
    let record_id = transactions[0]["record_id"].as_str().unwrap().to_owned();
    let uri = format!("/api/v1/transactions/{record_id}");
    let answer = call(&router, tcp(), Some(OPERATOR), "get", &uri, None).await;
    assert_eq!(answer.status, StatusCode::OK);
    let record = answer.json().await;
    check_response(
        &doc,
        "get",
        "/api/v1/transactions/{id}",
        StatusCode::OK,
        &record,
    );
    assert_eq!(record["outcome"]["outcome"], "referred");

    // Errors have the documented shape too.
    for (method, path, uri, token, body) in [
        (
            "get",
            "/api/v1/devices/{id}",
            "/api/v1/devices/nope",
            None,
            None,
        ),
        (
            "get",
            "/api/v1/transactions/{id}",
            "/api/v1/transactions/not-a-uuid",
            Some(OPERATOR),
            None,
        ),
        ("get", "/api/v1/transactions/{id}", uri.as_str(), None, None),
        (
            "get",
            "/api/v1/status",
            "/api/v1/status",
            Some("torii_wrong"),
            None,
        ),
        (
            "post",
            "/api/v1/gate/mode",
            "/api/v1/gate/mode",
            Some(OPERATOR),
            Some(json!({"mode": "fire-alarm"})),
        ),
        (
            "post",
            "/api/v1/gate/stamp-request",
            "/api/v1/gate/stamp-request",
            Some(OPERATOR),
            None,
        ),
    ] {
        let answer = call(&router, tcp(), token, method, uri, body.as_ref()).await;
        let status = answer.status;
        assert!(status.is_client_error(), "{method} {uri}: {status}");
        check_response(&doc, method, path, status, &answer.json().await);
    }

    // Control: an officer's door command and mode change are taken (202).
    for (path, body) in [
        (
            "/api/v1/gate/doors",
            json!({"door": "exit", "command": "close"}),
        ),
        ("/api/v1/gate/mode", json!({"mode": "maintenance"})),
    ] {
        let answer = call(&router, tcp(), Some(OPERATOR), "post", path, Some(&body)).await;
        let status = answer.status;
        assert_eq!(status, StatusCode::ACCEPTED, "{path}");
        check_response(&doc, "post", path, status, &answer.json().await);
    }
    wait_for(&flow, "maintenance mode", |s| {
        s.mode == torii_core::flow::Mode::Maintenance
    })
    .await;

    // Logging in answers who the session is.
    let answer = call(
        &router,
        tcp(),
        None,
        "post",
        "/api/v1/session",
        Some(&json!({ "token": OPERATOR })),
    )
    .await;
    assert!(answer.headers.contains_key(header::SET_COOKIE));
    let status = answer.status;
    check_response(
        &doc,
        "post",
        "/api/v1/session",
        status,
        &answer.json().await,
    );

    // The officer's mode change is announced too.
    let seen = events.until(&doc, "mode-changed").await;
    assert_eq!(seen.last().unwrap()["mode"], "maintenance");
}

/// The event stream of a test, read event by event.
struct Events {
    body: Body,
    text: String,
}

impl Events {
    /// Reads events up to the first of type `last`, checking each against the
    /// document's `GateEvent` and its `id:`/`event:` lines against its data.
    async fn until(&mut self, doc: &Value, last: &str) -> Vec<Value> {
        let mut seen = Vec::new();
        // Keep-alive comments arrive meanwhile: the guard is for the whole wait.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            while let Some(end) = self.text.find("\n\n") {
                let event: String = self.text.drain(..end + 2).collect();
                let Some(data) = event.lines().find_map(|l| l.strip_prefix("data: ")) else {
                    continue;
                };
                let value: Value = serde_json::from_str(data).unwrap();
                check_schema(doc, "GateEvent", &value);
                let name = event
                    .lines()
                    .find_map(|l| l.strip_prefix("event: "))
                    .unwrap();
                assert_eq!(value["type"], name);
                assert_eq!(
                    event.lines().find_map(|l| l.strip_prefix("id: ")),
                    Some(value["id"].to_string().as_str())
                );
                let done = name == last;
                seen.push(value);
                if done {
                    return seen;
                }
            }
            let frame = tokio::time::timeout_at(deadline, self.body.frame())
                .await
                .unwrap_or_else(|_| panic!("no {last} event; saw {seen:?}"))
                .unwrap()
                .unwrap();
            if let Ok(data) = frame.into_data() {
                self.text.push_str(std::str::from_utf8(&data).unwrap());
            }
        }
    }
}
