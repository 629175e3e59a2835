//! Conversions between the C event struct and [`Event`], used by both sides.

use crate::abi::{self, torii_event};
use crate::model::{DeviceState, Door, DoorState, Event, Symbology, Zone};

/// Calls `with` with the C form of `event`; the data pointer is valid during the call only.
pub fn with_abi_event<R>(event: &Event, with: impl FnOnce(&torii_event) -> R) -> R {
    let (kind, value, value2, data): (u32, i64, i64, &[u8]) = match event {
        Event::StateChanged { state } => (
            abi::TORII_EVENT_STATE_CHANGED,
            state.to_abi().into(),
            0,
            &[],
        ),
        Event::MediaPresent => (abi::TORII_EVENT_MEDIA_PRESENT, 0, 0, &[]),
        Event::MediaRemoved => (abi::TORII_EVENT_MEDIA_REMOVED, 0, 0, &[]),
        Event::CodeRead { symbology, payload } => (
            abi::TORII_EVENT_CODE_READ,
            symbology.to_abi().into(),
            0,
            payload.as_slice(),
        ),
        Event::FingerPresent { present } => {
            (abi::TORII_EVENT_FINGER_PRESENT, (*present).into(), 0, &[])
        }
        Event::SubjectPresent { present } => {
            (abi::TORII_EVENT_SUBJECT_PRESENT, (*present).into(), 0, &[])
        }
        Event::DoorState { door, state } => (
            abi::TORII_EVENT_DOOR_STATE,
            door.to_abi().into(),
            state.to_abi().into(),
            &[],
        ),
        Event::PersonCount { zone, count } => (
            abi::TORII_EVENT_PERSON_COUNT,
            zone.to_abi().into(),
            (*count).into(),
            &[],
        ),
        Event::FireAlarm { active } => (abi::TORII_EVENT_FIRE_ALARM, (*active).into(), 0, &[]),
    };
    let raw = torii_event {
        struct_size: size_of::<torii_event>() as u32,
        kind,
        value,
        value2,
        borrowed_data: if data.is_empty() {
            std::ptr::null()
        } else {
            data.as_ptr()
        },
        data_len: data.len(),
    };
    with(&raw)
}

/// Why a C event could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("event struct_size {0} is smaller than the 1.0 event")]
    TooSmall(u32),
    #[error("unknown event kind {0}")]
    UnknownKind(u32),
    #[error("event kind {kind}: value {value} out of range")]
    BadValue { kind: u32, value: i64 },
}

/// Reads a C event. `data` is the event's borrowed data, already copied out by the caller.
pub fn event_from_abi(raw: &torii_event, data: &[u8]) -> Result<Event, EventError> {
    if (raw.struct_size as usize) < size_of::<torii_event>() {
        return Err(EventError::TooSmall(raw.struct_size));
    }
    let bad = |value: i64| EventError::BadValue {
        kind: raw.kind,
        value,
    };
    let as_u32 = |value: i64| u32::try_from(value).map_err(|_| bad(value));
    Ok(match raw.kind {
        abi::TORII_EVENT_STATE_CHANGED => Event::StateChanged {
            state: DeviceState::from_abi(i32::try_from(raw.value).map_err(|_| bad(raw.value))?),
        },
        abi::TORII_EVENT_MEDIA_PRESENT => Event::MediaPresent,
        abi::TORII_EVENT_MEDIA_REMOVED => Event::MediaRemoved,
        abi::TORII_EVENT_CODE_READ => Event::CodeRead {
            symbology: Symbology::from_abi(as_u32(raw.value)?),
            payload: data.to_vec(),
        },
        abi::TORII_EVENT_FINGER_PRESENT => Event::FingerPresent {
            present: raw.value != 0,
        },
        abi::TORII_EVENT_SUBJECT_PRESENT => Event::SubjectPresent {
            present: raw.value != 0,
        },
        abi::TORII_EVENT_DOOR_STATE => Event::DoorState {
            door: Door::from_abi(as_u32(raw.value)?).ok_or(bad(raw.value))?,
            state: DoorState::from_abi(as_u32(raw.value2)?).ok_or(bad(raw.value2))?,
        },
        abi::TORII_EVENT_PERSON_COUNT => Event::PersonCount {
            zone: Zone::from_abi(as_u32(raw.value)?).ok_or(bad(raw.value))?,
            count: as_u32(raw.value2)?,
        },
        abi::TORII_EVENT_FIRE_ALARM => Event::FireAlarm {
            active: raw.value != 0,
        },
        other => return Err(EventError::UnknownKind(other)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::FingerPosition;

    #[test]
    fn every_event_round_trips_through_the_c_struct() {
        let events = vec![
            Event::StateChanged {
                state: DeviceState::Unavailable,
            },
            Event::MediaPresent,
            Event::MediaRemoved,
            Event::CodeRead {
                symbology: Symbology::Qr,
                payload: b"TTP1:x".to_vec(),
            },
            Event::FingerPresent { present: true },
            Event::SubjectPresent { present: false },
            Event::DoorState {
                door: Door::Exit,
                state: DoorState::Open,
            },
            Event::PersonCount {
                zone: Zone::Lane,
                count: 2,
            },
            Event::FireAlarm { active: true },
        ];
        for event in events {
            let back = with_abi_event(&event, |raw| {
                let data = if raw.data_len == 0 {
                    Vec::new()
                } else {
                    // SAFETY: with_abi_event points borrowed_data at data_len live bytes.
                    unsafe { std::slice::from_raw_parts(raw.borrowed_data, raw.data_len) }.to_vec()
                };
                event_from_abi(raw, &data)
            });
            assert_eq!(back, Ok(event));
        }
        let _ = FingerPosition::LeftIndex;
    }

    #[test]
    fn malformed_events_are_errors() {
        let mut raw = torii_event {
            struct_size: size_of::<torii_event>() as u32,
            kind: 999,
            value: 0,
            value2: 0,
            borrowed_data: std::ptr::null(),
            data_len: 0,
        };
        assert_eq!(event_from_abi(&raw, &[]), Err(EventError::UnknownKind(999)));
        raw.kind = abi::TORII_EVENT_DOOR_STATE;
        raw.value = 7;
        assert!(matches!(
            event_from_abi(&raw, &[]),
            Err(EventError::BadValue { .. })
        ));
        raw.struct_size = 4;
        assert_eq!(event_from_abi(&raw, &[]), Err(EventError::TooSmall(4)));
    }
}
