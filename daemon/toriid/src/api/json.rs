//! The JSON shape of a device request in the API: `{"op": "<name>", ...fields}`, e.g.
//! `{"op":"read-mrz"}` or `{"op":"set-door","door":"entry","command":"open"}`.
//!
//! The device model itself is externally tagged (`"read-mrz"`,
//! `{"set-door":{...}}`) because its binary wire format is not self-describing; that
//! form is accepted too. Byte fields (`apdu`) may be given as a hex string.

use serde_json::{Map, Value};
use torii_sdk::model::Request;

/// Parses a request body in either form; the error says what was wrong.
pub fn parse_request(body: &[u8]) -> Result<Request, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(
            "empty body: expected a JSON device request such as {\"op\":\"get-state\"}".to_owned(),
        );
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| format!("invalid JSON: {e}"))?;
    request_from_value(value)
}

pub fn request_from_value(value: Value) -> Result<Request, String> {
    let Value::Object(mut fields) = value else {
        // `"read-mrz"`: the model's own form.
        return serde_json::from_value(value).map_err(|e| format!("invalid device request: {e}"));
    };
    let Some(op) = fields.remove("op") else {
        return serde_json::from_value(Value::Object(fields))
            .map_err(|e| format!("invalid device request (expected an \"op\" field): {e}"));
    };
    let Value::String(op) = op else {
        return Err(format!(
            "invalid device request: \"op\" must be a string, found {op}"
        ));
    };
    if let Some(Value::String(hex)) = fields.get("apdu") {
        let bytes = decode_hex(hex)
            .ok_or_else(|| format!("invalid device request: apdu {hex:?} is not hex"))?;
        fields.insert("apdu".to_owned(), Value::from(bytes));
    }
    if fields.is_empty() {
        // A unit variant (`read-mrz`), or a struct variant missing all its fields:
        // the second attempt gives the better message ("missing field `door`").
        if let Ok(request) = serde_json::from_value(Value::String(op.clone())) {
            return Ok(request);
        }
    }
    let tagged = Value::Object(Map::from_iter([(op, Value::Object(fields))]));
    serde_json::from_value(tagged).map_err(|e| format!("invalid device request: {e}"))
}

/// The `{"op": ...}` form of a request.
pub fn request_to_value(request: &Request) -> Value {
    match serde_json::to_value(request) {
        Ok(Value::String(op)) => {
            Value::Object(Map::from_iter([("op".to_owned(), Value::String(op))]))
        }
        Ok(Value::Object(outer)) => {
            let mut fields = Map::new();
            for (op, inner) in outer {
                fields.insert("op".to_owned(), Value::String(op));
                if let Value::Object(inner) = inner {
                    fields.extend(inner);
                }
            }
            Value::Object(fields)
        }
        // Requests always serialize to one of the two shapes above.
        _ => Value::Object(Map::from_iter([(
            "op".to_owned(),
            Value::from(request.name()),
        )])),
    }
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use torii_sdk::model::{Door, DoorCommand};

    fn parse(text: &str) -> Result<Request, String> {
        parse_request(text.as_bytes())
    }

    #[test]
    fn both_forms_parse() {
        assert_eq!(parse(r#"{"op":"read-mrz"}"#), Ok(Request::ReadMrz));
        assert_eq!(parse(r#""read-mrz""#), Ok(Request::ReadMrz));
        let door = Request::SetDoor {
            door: Door::Entry,
            command: DoorCommand::Open,
        };
        assert_eq!(
            parse(r#"{"op":"set-door","door":"entry","command":"open"}"#),
            Ok(door.clone())
        );
        assert_eq!(
            parse(r#"{"set-door":{"door":"entry","command":"open"}}"#),
            Ok(door)
        );
    }

    #[test]
    fn apdus_may_be_hex() {
        let expected = Request::ChipTransmit {
            apdu: vec![0x00, 0xa4, 0x04, 0x0c],
        };
        assert_eq!(
            parse(r#"{"op":"chip-transmit","apdu":"00a4 040c"}"#),
            Ok(expected.clone())
        );
        assert_eq!(
            parse(r#"{"op":"chip-transmit","apdu":[0,164,4,12]}"#),
            Ok(expected)
        );
        assert!(
            parse(r#"{"op":"chip-transmit","apdu":"xyz"}"#)
                .unwrap_err()
                .contains("not hex")
        );
    }

    #[test]
    fn errors_say_what_was_wrong() {
        assert!(
            parse(r#"{"op":"read-mzr"}"#)
                .unwrap_err()
                .contains("read-mzr")
        );
        assert!(
            parse(r#"{"op":"set-door","door":"entry"}"#)
                .unwrap_err()
                .contains("command")
        );
        assert!(parse(r#"{"op":"set-door"}"#).unwrap_err().contains("door"));
        assert!(
            parse(r#"{"op":7}"#)
                .unwrap_err()
                .contains("must be a string")
        );
        assert!(parse("{not json").unwrap_err().starts_with("invalid JSON"));
        assert!(parse("  ").unwrap_err().starts_with("empty body"));
    }

    #[test]
    fn the_op_form_round_trips() {
        let requests = [
            Request::ReadMrz,
            Request::SetDoor {
                door: Door::Exit,
                command: DoorCommand::Close,
            },
            Request::CaptureFace { timeout_ms: 5000 },
            Request::ChipTransmit {
                apdu: vec![1, 2, 3],
            },
        ];
        for request in requests {
            let value = request_to_value(&request);
            assert!(value["op"].is_string(), "{value}");
            assert_eq!(request_from_value(value), Ok(request));
        }
    }
}
