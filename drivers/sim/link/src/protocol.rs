//! Wire protocol between a sim driver (client) and a device simulator (server), over a
//! Unix stream socket, in the spirit of libfprint's virtual devices.
//!
//! Framing: a 4-byte big-endian body length, then the body encoded with postcard.
//! The driver opens with [`DriverToSim::Hello`]; the simulator answers
//! [`SimToDriver::Welcome`] (or closes the socket when the device is "unplugged").
//! Calls carry an id; replies echo it. Events may arrive at any time.

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use std::io::{self, Read, Write};
use torii_sdk::model::{DeviceClass, DeviceState, Event, Request, Response, Status};

/// Largest frame either side accepts (a 19794-4 image of two fingers fits easily).
pub const MAX_FRAME_LEN: usize = 16 * 1024 * 1024;

/// Bumped on any incompatible change of the messages below.
pub const PROTOCOL_VERSION: u16 = 1;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum DriverToSim {
    Hello { protocol: u16, class: DeviceClass },
    Call { id: u64, request: Request },
    /// Cancel the call with this id (a no-op when it already finished).
    Cancel { id: u64 },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum SimToDriver {
    Welcome { protocol: u16, state: DeviceState },
    Reply { id: u64, result: Result<Response, Status> },
    Event { event: Event },
}

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    #[error("frame of {0} bytes is larger than the {MAX_FRAME_LEN}-byte limit")]
    TooLarge(usize),
    #[error("undecodable frame: {0}")]
    Decode(#[from] postcard::Error),
}

/// Encodes one message with its length prefix.
pub fn encode<T: Serialize>(message: &T) -> Result<Vec<u8>, FrameError> {
    let body = postcard::to_stdvec(message)?;
    if body.len() > MAX_FRAME_LEN {
        return Err(FrameError::TooLarge(body.len()));
    }
    let mut frame = Vec::with_capacity(body.len() + 4);
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(&body);
    Ok(frame)
}

/// Decodes a frame body (without its length prefix).
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, FrameError> {
    Ok(postcard::from_bytes(body)?)
}

pub fn write_frame<W: Write, T: Serialize>(writer: &mut W, message: &T) -> Result<(), FrameError> {
    writer.write_all(&encode(message)?)?;
    writer.flush()?;
    Ok(())
}

pub fn read_frame<R: Read, T: DeserializeOwned>(reader: &mut R) -> Result<T, FrameError> {
    let mut len = [0u8; 4];
    reader.read_exact(&mut len)?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME_LEN {
        return Err(FrameError::TooLarge(len));
    }
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body)?;
    decode(&body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let msg = DriverToSim::Call { id: 7, request: Request::ReadMrz };
        let frame = encode(&msg).unwrap();
        let back: DriverToSim = read_frame(&mut &frame[..]).unwrap();
        assert_eq!(back, msg);
    }

    #[test]
    fn oversized_and_garbage_frames_are_errors() {
        let mut huge = Vec::from(((MAX_FRAME_LEN + 1) as u32).to_be_bytes());
        huge.extend_from_slice(&[0; 8]);
        assert!(matches!(read_frame::<_, SimToDriver>(&mut &huge[..]), Err(FrameError::TooLarge(_))));
        let garbage = [0, 0, 0, 3, 0xff, 0xff, 0xff];
        assert!(matches!(read_frame::<_, SimToDriver>(&mut &garbage[..]), Err(FrameError::Decode(_))));
        let truncated = [0, 0, 0, 9, 1];
        assert!(matches!(read_frame::<_, SimToDriver>(&mut &truncated[..]), Err(FrameError::Io(_))));
    }
}
