//! The driver-host protocol (`torii_plugin_host::protocol`): length-prefixed postcard
//! frames between toriid and an isolated `torii-driver-host`, read in both directions
//! with the same `torii_sdk::wire` reader both sides use. Never a panic; every decoded
//! message encodes, and its encoding decodes to a message with the same encoding.
//!
//! Input: a byte stream of frames, read as `HostToWorker` (what the worker reads on its
//! stdin) and, from the start again, as `WorkerToHost` (what toriid reads from it).
#![no_main]
use serde::Serialize;
use serde::de::DeserializeOwned;
use torii_plugin_host::protocol::{HostToWorker, WorkerToHost};
use torii_sdk::wire::{self, FrameError};

/// Frames read per direction at most, so one input cannot loop for long.
const MAX_FRAMES: usize = 64;

fn read_all<T: Serialize + DeserializeOwned>(mut stream: &[u8]) {
    for _ in 0..MAX_FRAMES {
        match wire::read_frame::<_, T>(&mut stream) {
            Ok(message) => round_trip(&message),
            // A bad frame body is skipped by neither side: the stream ends there.
            Err(FrameError::Decode(_) | FrameError::TooLarge(_) | FrameError::Io(_)) => return,
        }
    }
}

fn round_trip<T: Serialize + DeserializeOwned>(message: &T) {
    let frame = wire::encode(message).expect("a decoded message encodes");
    let back: T = wire::read_frame(&mut &frame[..]).expect("an encoded message decodes");
    let again = wire::encode(&back).expect("encodes again");
    assert_eq!(
        frame, again,
        "a message changed through an encode and a decode"
    );
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    read_all::<HostToWorker>(data);
    read_all::<WorkerToHost>(data);
});
