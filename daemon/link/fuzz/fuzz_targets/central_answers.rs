//! Central immigration's answers as the gate's client reads them
//! (`torii_link::client::{records_answer, json_answer}`, which `CentralClient` calls):
//! `RecordAck` (200) and `OutOfOrder` (409) to a batch, `RegistryPage` and
//! `RevocationPage` from the feeds, `ProblemBody` and anything else on an error status.
//! Pages are then applied to a registry store as the sync applies them.
//!
//! Never a panic; an error's summary of the body stays short and printable; what is
//! accepted writes back to JSON that reads back the same.
//!
//! Input: one byte choosing the call (records, registry page, revocation page), one byte
//! choosing the status, then the body.
#![no_main]
use hyper::StatusCode;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use torii_core::registry::RegistryStore;
use torii_link::client::{json_answer, records_answer};
use torii_link::protocol::{RegistryPage, RevocationPage};
use torii_link::{LinkError, PostOutcome, RegistryTarget};

const STATUSES: [u16; 8] = [200, 409, 400, 404, 500, 502, 503, 204];

fn check_error(error: &LinkError) {
    if let LinkError::Http { body, .. } = error {
        // 200 characters and an ellipsis at most, no control characters (it is logged).
        assert!(
            body.chars().count() <= 201,
            "error summary of {} chars",
            body.chars().count()
        );
        assert!(
            !body.chars().any(char::is_control),
            "a control character in a summary"
        );
    }
    let _ = (error.kind(), error.to_string());
}

/// Numbers compared as numbers: serde_json's float parsing need not give back the
/// exact bits it printed (no `float_roundtrip` feature), and that is not the client's
/// concern.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            _ if x == y => true,
            (Some(x), Some(y)) => (x - y).abs() <= f64::EPSILON * x.abs().max(y.abs()) * 4.0,
            _ => false,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

fn round_trip<T: Serialize + DeserializeOwned>(parsed: &T) {
    let written = serde_json::to_vec(parsed).expect("an answer serializes");
    let back: T = json_answer(StatusCode::OK, &written).expect("a written answer reads back");
    let (a, b) = (
        serde_json::to_value(parsed).expect("serializes"),
        serde_json::to_value(&back).expect("serializes"),
    );
    assert!(same(&a, &b), "an answer changed through a write and a read");
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let [call, status, body @ ..] = data else {
        return;
    };
    let status = StatusCode::from_u16(STATUSES[usize::from(*status) % STATUSES.len()])
        .expect("a valid status");
    match call % 3 {
        0 => match records_answer(status, body) {
            Ok(PostOutcome::Acknowledged(ack)) => round_trip(&ack),
            Ok(PostOutcome::OutOfOrder(out_of_order)) => round_trip(&out_of_order),
            Err(error) => check_error(&error),
        },
        1 => match json_answer::<RegistryPage>(status, body) {
            Ok(page) => {
                round_trip(&page);
                let store = RegistryStore::open_in_memory().expect("an in-memory registry");
                let _ = RegistryTarget::apply_changes(&store, 0, &page, None);
            }
            Err(error) => check_error(&error),
        },
        _ => match json_answer::<RevocationPage>(status, body) {
            Ok(page) => {
                round_trip(&page);
                let store = RegistryStore::open_in_memory().expect("an in-memory registry");
                let _ = RegistryTarget::apply_revocations(&store, 0, &page, None);
            }
            Err(error) => check_error(&error),
        },
    }
});
