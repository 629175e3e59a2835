//! Every request body the HTTP API accepts, parsed exactly as the router does
//! (`toriid::api::http::command_from_body`, which the handlers call) into the one
//! `Command` type: never a panic, and what is accepted writes back to a body that parses
//! to the same command.
//!
//! Input: one byte choosing the route (`BodyRoute::ALL`, then `POST /api/v1/session`),
//! then the body.
#![no_main]
use serde_json::json;
use toriid::api::http::{BodyRoute, command_from_body, session_token_from_body};
use toriid::api::json::{parse_request, request_to_value};
use toriid::command::Command;

const DEVICE: &str = "document-reader";

fn reparse(route: BodyRoute, body: &serde_json::Value) -> Command {
    let bytes = serde_json::to_vec(body).expect("a JSON value serializes");
    command_from_body(route, DEVICE, &bytes).expect("a written body parses back")
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let routes = BodyRoute::ALL;
    let Some(&route) = routes.get(usize::from(selector) % (routes.len() + 1)) else {
        if let Ok(token) = session_token_from_body(body) {
            let again = serde_json::to_vec(&json!({ "token": token })).expect("serializes");
            assert_eq!(session_token_from_body(&again).ok(), Some(token));
        }
        return;
    };
    let Ok(command) = command_from_body(route, DEVICE, body) else {
        return;
    };
    // The core's authorization policy must have an answer for every parsed command.
    let _ = command.required_role();
    let written = match &command {
        Command::DeviceCall { id, request } => {
            assert_eq!(id, DEVICE);
            // Both written forms: `{"op": ...}` and the model's externally tagged one.
            let op_form = request_to_value(request);
            let tagged = serde_json::to_vec(request).expect("a request serializes");
            assert!(
                parse_request(&tagged).as_ref() == Ok(request),
                "the tagged form of a request did not parse back"
            );
            op_form
        }
        Command::ConfirmEdCard { card } => serde_json::to_value(card).expect("serializes"),
        Command::SetMode { mode } => json!({ "mode": mode }),
        Command::SetDoor { door, command } => json!({ "door": door, "command": command }),
        Command::AcknowledgeAlarm | Command::RequestStamp => json!({}),
        Command::InspectDocument { mrz } => json!({ "mrz": mrz }),
        _ => panic!("route {route:?} parsed into a command it does not make"),
    };
    assert!(
        reparse(route, &written) == command,
        "route {route:?}: the command changed through a write and a parse"
    );
});
