//! Wire protocol between a sim driver (client) and a device simulator (server), over a
//! Unix stream socket, in the spirit of libfprint's virtual devices.
//!
//! Framing: a 4-byte big-endian body length, then the body encoded with postcard.
//! The driver opens with [`DriverToSim::Hello`]; the simulator answers
//! [`SimToDriver::Welcome`] (or closes the socket when the device is "unplugged").
//! Calls carry an id; replies echo it. Events may arrive at any time.

use serde::{Deserialize, Serialize};
use torii_sdk::model::{DeviceClass, DeviceState, Event, Request, Response, Status};

#[cfg(feature = "tokio")]
pub use torii_sdk::wire::tokio_io;
pub use torii_sdk::wire::{FrameError, MAX_FRAME_LEN, decode, encode, read_frame, write_frame};

/// Bumped on any incompatible change of the messages below.
pub const PROTOCOL_VERSION: u16 = 1;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum DriverToSim {
    Hello {
        protocol: u16,
        class: DeviceClass,
    },
    Call {
        id: u64,
        request: Request,
    },
    /// Cancel the call with this id (a no-op when it already finished).
    Cancel {
        id: u64,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum SimToDriver {
    Welcome {
        protocol: u16,
        state: DeviceState,
    },
    Reply {
        id: u64,
        result: Result<Response, Status>,
    },
    Event {
        event: Event,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let msg = DriverToSim::Call {
            id: 7,
            request: Request::ReadMrz,
        };
        let frame = encode(&msg).unwrap();
        let back: DriverToSim = read_frame(&mut &frame[..]).unwrap();
        assert_eq!(back, msg);
    }
}
