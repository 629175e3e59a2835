//! The chip simulator as a virtual card of vsmartcard's `vpcd` (the pcscd reader
//! driver of Debian's `vsmartcard-vpcd`): the card connects to vpcd's TCP port
//! (35963 by default) and then answers what pcscd sends through it.
//!
//! Framing, both directions: a 2-byte big-endian length, then the payload. A 1-byte
//! payload from vpcd is a control message (0 power off, 1 power on, 2 reset, 4 ATR
//! request: answered with the ATR); anything else is a command APDU, answered with the
//! response APDU.

use crate::ChipSim;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};
use torii_icao::ChipTransport;

/// vpcd's default port (its reader.conf: `DEVICENAME /dev/null:0x8C7B`).
pub const DEFAULT_PORT: u16 = 35963;

/// The ATR a PC/SC part 3 reader builds for an ISO 14443-4 card without historical
/// bytes: TS 3B, T0 80, TD1 80, TD2 01 (T=1), TCK 01.
pub const ATR: [u8; 5] = [0x3B, 0x80, 0x80, 0x01, 0x01];

const CTRL_OFF: u8 = 0;
const CTRL_ON: u8 = 1;
const CTRL_RESET: u8 = 2;
const CTRL_ATR: u8 = 4;

/// What one session served.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Served {
    pub apdus: usize,
    pub resets: usize,
}

/// Connects to vpcd at `addr`, retrying until `wait` has passed (vpcd listens only
/// once pcscd has loaded it).
pub fn connect(addr: impl ToSocketAddrs + Clone, wait: Duration) -> io::Result<TcpStream> {
    let start = Instant::now();
    loop {
        match TcpStream::connect(addr.clone()) {
            Ok(s) => {
                // One write per frame and no Nagle delay: APDU exchanges are tiny.
                s.set_nodelay(true)?;
                return Ok(s);
            }
            Err(e) if start.elapsed() >= wait => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

fn send(stream: &mut impl Write, payload: &[u8]) -> io::Result<()> {
    let len = u16::try_from(payload.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame over 65535 bytes"))?;
    let mut frame = Vec::with_capacity(payload.len() + 2);
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(payload);
    stream.write_all(&frame)?;
    stream.flush()
}

/// Serves `chip` on an established vpcd connection until vpcd closes it. Returns what
/// was served; I/O errors other than the peer closing are returned.
///
/// Before each read the socket is put in quick-ACK mode: vpcd writes a frame's length
/// and its payload separately, and with Nagle's algorithm on its side the payload
/// waits for the ACK of the length, which a delayed ACK holds back for up to 40 ms.
pub fn serve(stream: &mut TcpStream, chip: &mut ChipSim) -> io::Result<Served> {
    let sock = stream.try_clone()?;
    serve_with(stream, chip, &mut || {
        let _ = socket2::SockRef::from(&sock).set_tcp_quickack(true);
    })
}

/// [`serve`] on any byte stream; `before_read` runs before each blocking read.
pub fn serve_with(
    stream: &mut (impl Read + Write),
    chip: &mut ChipSim,
    before_read: &mut dyn FnMut(),
) -> io::Result<Served> {
    let mut served = Served::default();
    loop {
        before_read();
        let mut len = [0u8; 2];
        match stream.read_exact(&mut len) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(served),
            Err(e) => return Err(e),
        }
        let mut payload = vec![0u8; usize::from(u16::from_be_bytes(len))];
        before_read();
        stream.read_exact(&mut payload)?;
        match payload.as_slice() {
            [CTRL_OFF] | [CTRL_ON] | [CTRL_RESET] => {
                chip.reset();
                served.resets += 1;
            }
            [CTRL_ATR] => send(stream, &ATR)?,
            [_] | [] => {} // unknown control message: ignored, as vpcd's own cards do
            apdu => {
                served.apdus += 1;
                let r = chip.transmit(apdu).unwrap_or_else(|_| vec![0x6F, 0x00]);
                send(stream, &r)?;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ChipConfig, TestPki};
    use std::io::Cursor;

    /// Reads scripted input, collects output.
    struct Pipe {
        input: Cursor<Vec<u8>>,
        output: Vec<u8>,
    }
    impl Read for Pipe {
        fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
            self.input.read(b)
        }
    }
    impl Write for Pipe {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.output.write(b)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn control_messages_and_apdus_are_framed() {
        let pki = TestPki::generate("vpcd", "UT").unwrap();
        let mut chip = ChipSim::new(
            &ChipConfig {
                face_bytes: 100,
                ..ChipConfig::default()
            },
            &pki,
        )
        .unwrap();
        let select = [0x00, 0xA4, 0x04, 0x0C, 0x07, 0xA0, 0, 0, 2, 0x47, 0x10, 1];
        let mut input = vec![0, 1, CTRL_ON, 0, 1, CTRL_ATR, 0, select.len() as u8];
        input.extend(select);
        input.extend([0, 1, CTRL_RESET]);
        let mut pipe = Pipe {
            input: Cursor::new(input),
            output: vec![],
        };
        let served = serve_with(&mut pipe, &mut chip, &mut || {}).unwrap();
        assert_eq!(
            served,
            Served {
                apdus: 1,
                resets: 2
            }
        );
        assert_eq!(
            pipe.output,
            vec![0, 5, 0x3B, 0x80, 0x80, 0x01, 0x01, 0, 2, 0x90, 0x00]
        );
        // A truncated frame is an error, not a panic.
        let mut pipe = Pipe {
            input: Cursor::new(vec![0, 9, 1, 2]),
            output: vec![],
        };
        assert!(serve_with(&mut pipe, &mut chip, &mut || {}).is_err());
    }
}
