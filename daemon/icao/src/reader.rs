//! Talking to the chip: the transport trait, file selection and chunked READ BINARY.

use crate::apdu::{ApduError, Command, Response, SW_END_OF_FILE, SW_OK, SW_WRONG_LENGTH};
use crate::sm::{SecureMessaging, SmError};
use crate::tlv;
use thiserror::Error;

/// Errors of the link to the chip. Contain no APDU bytes.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum TransportError {
    #[error("no chip in the field")]
    NoCard,
    #[error("chip removed or communication lost: {0}")]
    Lost(String),
    #[error("reader error: {0}")]
    Reader(String),
}

/// The document reader's contactless interface: one command APDU in, one response out.
pub trait ChipTransport {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError>;
}

impl<T: ChipTransport + ?Sized> ChipTransport for &mut T {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        (**self).transmit(apdu)
    }
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ReaderError {
    #[error("transport: {0}")]
    Transport(#[from] TransportError),
    #[error("secure messaging: {0}")]
    Sm(#[from] SmError),
    #[error("APDU: {0}")]
    Apdu(#[from] ApduError),
    #[error("SELECT of file {fid:04X} failed with status {sw:04X}")]
    Select { fid: u16, sw: u16 },
    #[error("SELECT of the eMRTD application failed with status {0:04X}")]
    SelectApplication(u16),
    #[error("READ BINARY of file {fid:04X} at offset {offset} failed with status {sw:04X}")]
    Read { fid: u16, offset: usize, sw: u16 },
    #[error("file {fid:04X} header is not a valid BER-TLV: {err}")]
    Header { fid: u16, err: tlv::TlvError },
    #[error("file {fid:04X} declares {len} bytes, over the limit of {max}")]
    TooLarge { fid: u16, len: usize, max: usize },
    #[error("file {fid:04X} ended early: {got} of {want} bytes")]
    ShortFile { fid: u16, got: usize, want: usize },
}

/// Reader behaviour knobs; defaults suit real chips.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderConfig {
    /// Largest Le to ask for in one READ BINARY. 0xDF keeps a 3DES SM response
    /// within a short APDU (Part 10); lowered automatically to `fallback_read`
    /// when a chip answers 6700.
    pub max_read: usize,
    /// Chunk size used after a chip refused `max_read` (160 suits known fussy chips).
    pub fallback_read: usize,
    /// Use extended-length READ BINARY (only if the chip announced it).
    pub extended_length: bool,
    /// Largest file we accept (BSI: a face image is at most 375 kB).
    pub max_file: usize,
    /// B0 with P1P2 offsets reaches 32767; beyond that needs odd-INS B1 (not implemented).
    pub max_offset: usize,
}

impl Default for ReaderConfig {
    fn default() -> Self {
        ReaderConfig {
            max_read: 0xDF,
            fallback_read: 160,
            extended_length: false,
            max_file: 400_000,
            max_offset: 0x7FFF,
        }
    }
}

/// eMRTD application identifier.
pub const AID_EMRTD: [u8; 7] = [0xA0, 0x00, 0x00, 0x02, 0x47, 0x10, 0x01];

pub mod fid {
    pub const EF_COM: u16 = 0x011E;
    pub const EF_SOD: u16 = 0x011D;
    pub const EF_CARD_ACCESS: u16 = 0x011C;
    /// DG n has file identifier 0x0100 + n.
    pub const fn dg(n: u8) -> u16 {
        0x0100 + n as u16
    }
}

/// A session with a chip: transport, optional SM, configuration and counters.
pub struct Reader<T: ChipTransport> {
    transport: T,
    sm: Option<SecureMessaging>,
    pub config: ReaderConfig,
    /// Command APDUs sent so far (for measurements).
    pub apdus: usize,
    chunk: usize,
}

impl<T: ChipTransport> std::fmt::Debug for Reader<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("sm", &self.sm.is_some())
            .field("apdus", &self.apdus)
            .finish()
    }
}

impl<T: ChipTransport> Reader<T> {
    pub fn new(transport: T, config: ReaderConfig) -> Self {
        let chunk = config.max_read;
        Reader {
            transport,
            sm: None,
            config,
            apdus: 0,
            chunk,
        }
    }

    pub fn set_secure_messaging(&mut self, sm: SecureMessaging) {
        self.sm = Some(sm);
    }

    pub fn is_secured(&self) -> bool {
        self.sm.is_some()
    }

    /// Sends a command without secure messaging (before BAC/PACE).
    pub fn transmit_plain(&mut self, cmd: &Command) -> Result<Response, ReaderError> {
        self.apdus += 1;
        let out = self.transport.transmit(&cmd.to_bytes()?)?;
        Ok(Response::parse(&out)?)
    }

    /// Sends a command, protected when a session is established.
    pub fn transmit(&mut self, cmd: &Command) -> Result<Response, ReaderError> {
        match self.sm.as_mut() {
            None => self.transmit_plain(cmd),
            Some(sm) => {
                let wire = sm.protect(cmd)?.to_bytes()?;
                self.apdus += 1;
                let out = self.transport.transmit(&wire)?;
                // Re-borrow: `transport` and `sm` are distinct fields.
                let sm = self.sm.as_mut().ok_or(SmError::Missing("session"))?;
                Ok(sm.unprotect(&out)?)
            }
        }
    }

    /// SELECT the eMRTD application by AID. No Le: some chips refuse it on SELECT.
    pub fn select_application(&mut self) -> Result<(), ReaderError> {
        let r =
            self.transmit(&Command::new(0x00, 0xA4, 0x04, 0x0C).with_data(AID_EMRTD.to_vec()))?;
        if r.sw == SW_OK {
            Ok(())
        } else {
            Err(ReaderError::SelectApplication(r.sw))
        }
    }

    /// SELECT an EF by file identifier (P2=0C: no FCI, hence no Le).
    pub fn select_file(&mut self, fid: u16) -> Result<(), ReaderError> {
        let r = self.transmit(
            &Command::new(0x00, 0xA4, 0x02, 0x0C).with_data(fid.to_be_bytes().to_vec()),
        )?;
        if r.sw == SW_OK {
            Ok(())
        } else {
            Err(ReaderError::Select { fid, sw: r.sw })
        }
    }

    /// One READ BINARY; adapts the chunk size once if the chip answers 6700.
    fn read_chunk(&mut self, fid: u16, offset: usize, len: usize) -> Result<Vec<u8>, ReaderError> {
        let mut want = len.min(self.chunk);
        loop {
            let p = (offset as u16).to_be_bytes();
            let r = self.transmit(&Command::new(0x00, 0xB0, p[0], p[1]).with_le(want))?;
            match r.sw {
                SW_OK | SW_END_OF_FILE => return Ok(r.data),
                SW_WRONG_LENGTH if want > self.config.fallback_read => {
                    self.chunk = self.config.fallback_read;
                    want = len.min(self.chunk);
                }
                sw => return Err(ReaderError::Read { fid, offset, sw }),
            }
        }
    }

    /// Selects and reads a whole EF whose content is one BER-TLV object: reads the
    /// header first to learn the length, then the rest in chunks.
    pub fn read_file(&mut self, fid: u16) -> Result<Vec<u8>, ReaderError> {
        self.select_file(fid)?;
        if self.config.extended_length {
            self.chunk = self.chunk.max(self.config.max_read);
        }
        let mut data = self.read_chunk(fid, 0, 8)?;
        let h = tlv::header(&data).map_err(|err| ReaderError::Header { fid, err })?;
        let total = h.total_len();
        if total > self.config.max_file || total > self.config.max_offset + self.chunk {
            return Err(ReaderError::TooLarge {
                fid,
                len: total,
                max: self.config.max_file.min(self.config.max_offset),
            });
        }
        data.truncate(total);
        while data.len() < total {
            let off = data.len();
            if off > self.config.max_offset {
                return Err(ReaderError::TooLarge {
                    fid,
                    len: total,
                    max: self.config.max_offset,
                });
            }
            let part = self.read_chunk(fid, off, total - off)?;
            if part.is_empty() {
                return Err(ReaderError::ShortFile {
                    fid,
                    got: off,
                    want: total,
                });
            }
            data.extend_from_slice(&part);
        }
        data.truncate(total);
        Ok(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// A scripted chip: answers in order, records what was sent.
    struct Script {
        answers: VecDeque<Vec<u8>>,
        sent: Vec<Vec<u8>>,
    }

    impl ChipTransport for Script {
        fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
            self.sent.push(apdu.to_vec());
            self.answers
                .pop_front()
                .ok_or(TransportError::Lost("script ended".into()))
        }
    }

    fn ok(data: &[u8]) -> Vec<u8> {
        let mut v = data.to_vec();
        v.extend_from_slice(&[0x90, 0]);
        v
    }

    #[test]
    fn select_has_no_le_and_read_is_chunked_with_fallback() {
        let file: Vec<u8> = {
            let mut f = vec![0x60, 0x82, 0x01, 0x2C];
            f.extend((0..300).map(|i| i as u8));
            f
        };
        let answers = VecDeque::from(vec![
            ok(&[]),
            ok(&file[..8]),
            vec![0x67, 0x00],
            ok(&file[8..168]),
            ok(&file[168..]),
        ]);
        let mut r = Reader::new(
            Script {
                answers,
                sent: vec![],
            },
            ReaderConfig::default(),
        );
        assert_eq!(r.read_file(fid::EF_COM).unwrap(), file);
        let sent = &r.transport.sent;
        assert_eq!(sent[0], vec![0x00, 0xA4, 0x02, 0x0C, 0x02, 0x01, 0x1E]);
        assert_eq!(sent[1], vec![0x00, 0xB0, 0x00, 0x00, 0x08]);
        assert_eq!(sent[2], vec![0x00, 0xB0, 0x00, 0x08, 0xDF]);
        assert_eq!(sent[3], vec![0x00, 0xB0, 0x00, 0x08, 160]);
        assert_eq!(sent[4], vec![0x00, 0xB0, 0x00, 0xA8, 136]);
        assert_eq!(r.apdus, 5);
    }

    #[test]
    fn errors_carry_file_and_status() {
        let mut r = Reader::new(
            Script {
                answers: VecDeque::from(vec![vec![0x6A, 0x82]]),
                sent: vec![],
            },
            ReaderConfig::default(),
        );
        assert_eq!(
            r.read_file(0x0102),
            Err(ReaderError::Select {
                fid: 0x0102,
                sw: 0x6A82
            })
        );
        let answers = VecDeque::from(vec![ok(&[]), ok(&[0x75, 0x84, 0xFF, 0xFF, 0xFF, 0xFF])]);
        let mut r = Reader::new(
            Script {
                answers,
                sent: vec![],
            },
            ReaderConfig::default(),
        );
        assert!(matches!(
            r.read_file(0x0102),
            Err(ReaderError::TooLarge { .. })
        ));
        let answers = VecDeque::from(vec![ok(&[]), ok(&[0x75, 0x10, 1]), ok(&[])]);
        let mut r = Reader::new(
            Script {
                answers,
                sent: vec![],
            },
            ReaderConfig::default(),
        );
        assert!(matches!(
            r.read_file(0x0102),
            Err(ReaderError::ShortFile { .. })
        ));
        let mut r = Reader::new(
            Script {
                answers: VecDeque::new(),
                sent: vec![],
            },
            ReaderConfig::default(),
        );
        assert!(matches!(
            r.select_application(),
            Err(ReaderError::Transport(_))
        ));
    }
}
