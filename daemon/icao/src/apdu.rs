//! Command and response APDUs (ISO/IEC 7816-4), short and extended length.

use std::fmt;
use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ApduError {
    #[error("command data of {0} bytes exceeds the extended-length maximum of 65535")]
    DataTooLong(usize),
    #[error("expected length {0} exceeds the extended-length maximum of 65536")]
    LeTooLong(usize),
    #[error("command APDU of {0} bytes is malformed")]
    Malformed(usize),
    #[error("response of {0} byte(s) is shorter than a status word")]
    ResponseTooShort(usize),
}

/// A command APDU. `le: Some(256)` is encoded as `00` (short) and `Some(65536)` as `0000` (extended).
#[derive(Clone, PartialEq, Eq)]
pub struct Command {
    pub cla: u8,
    pub ins: u8,
    pub p1: u8,
    pub p2: u8,
    pub data: Vec<u8>,
    pub le: Option<usize>,
}

impl fmt::Debug for Command {
    // The data field may carry personal data (e.g. a protected payload): header and sizes only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Command({:02X} {:02X} {:02X} {:02X}, {} data bytes, le {:?})",
            self.cla,
            self.ins,
            self.p1,
            self.p2,
            self.data.len(),
            self.le
        )
    }
}

impl Command {
    pub fn new(cla: u8, ins: u8, p1: u8, p2: u8) -> Self {
        Command {
            cla,
            ins,
            p1,
            p2,
            data: Vec::new(),
            le: None,
        }
    }

    pub fn with_data(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.data = data.into();
        self
    }

    pub fn with_le(mut self, le: usize) -> Self {
        self.le = Some(le);
        self
    }

    /// Decodes a command APDU (all ISO 7816-4 cases, short and extended). Used by the card side.
    pub fn parse(b: &[u8]) -> Result<Self, ApduError> {
        let bad = || ApduError::Malformed(b.len());
        let hdr = b.get(..4).ok_or_else(bad)?;
        let mut c = Command::new(hdr[0], hdr[1], hdr[2], hdr[3]);
        let body = b.get(4..).unwrap_or_default();
        let le_of = |x: usize, max: usize| if x == 0 { max } else { x };
        match body {
            [] => {}
            [le] => c.le = Some(le_of(usize::from(*le), 256)),
            [0, hi, lo] => c.le = Some(le_of(usize::from(u16::from_be_bytes([*hi, *lo])), 65536)),
            [0, hi, lo, rest @ ..] => {
                let lc = usize::from(u16::from_be_bytes([*hi, *lo]));
                c.data = rest.get(..lc).ok_or_else(bad)?.to_vec();
                match rest.get(lc..).unwrap_or_default() {
                    [] => {}
                    [a, b2] => {
                        c.le = Some(le_of(usize::from(u16::from_be_bytes([*a, *b2])), 65536))
                    }
                    _ => return Err(bad()),
                }
            }
            [lc, rest @ ..] => {
                let lc = usize::from(*lc);
                c.data = rest.get(..lc).ok_or_else(bad)?.to_vec();
                match rest.get(lc..).unwrap_or_default() {
                    [] => {}
                    [le] => c.le = Some(le_of(usize::from(*le), 256)),
                    _ => return Err(bad()),
                }
            }
        }
        Ok(c)
    }

    /// Whether this command needs extended length encoding.
    pub fn is_extended(&self) -> bool {
        self.data.len() > 255 || self.le.is_some_and(|l| l > 256)
    }

    /// Encodes the APDU, choosing short or extended length as needed (cases 1-4).
    pub fn to_bytes(&self) -> Result<Vec<u8>, ApduError> {
        if self.data.len() > 65535 {
            return Err(ApduError::DataTooLong(self.data.len()));
        }
        if let Some(le) = self.le
            && (le == 0 || le > 65536)
        {
            return Err(ApduError::LeTooLong(le));
        }
        let mut out = vec![self.cla, self.ins, self.p1, self.p2];
        let ext = self.is_extended();
        if !self.data.is_empty() {
            if ext {
                out.push(0);
                out.extend_from_slice(&(self.data.len() as u16).to_be_bytes());
            } else {
                out.push(self.data.len() as u8);
            }
            out.extend_from_slice(&self.data);
        }
        if let Some(le) = self.le {
            if ext {
                if self.data.is_empty() {
                    out.push(0);
                }
                out.extend_from_slice(&((le % 65536) as u16).to_be_bytes());
            } else {
                out.push((le % 256) as u8);
            }
        }
        Ok(out)
    }
}

/// A response APDU: data and status word.
#[derive(Clone, PartialEq, Eq)]
pub struct Response {
    pub data: Vec<u8>,
    pub sw: u16,
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Response({} data bytes, SW {:04X})",
            self.data.len(),
            self.sw
        )
    }
}

pub const SW_OK: u16 = 0x9000;
/// Warning: end of file reached before Le bytes (the data returned is still valid).
pub const SW_END_OF_FILE: u16 = 0x6282;
pub const SW_WRONG_LENGTH: u16 = 0x6700;
pub const SW_SECURITY_NOT_SATISFIED: u16 = 0x6982;
pub const SW_FILE_NOT_FOUND: u16 = 0x6A82;
pub const SW_WRONG_P1P2: u16 = 0x6B00;
pub const SW_AUTH_FAILED: u16 = 0x6300;

impl Response {
    pub fn parse(bytes: &[u8]) -> Result<Self, ApduError> {
        let n = bytes.len();
        if n < 2 {
            return Err(ApduError::ResponseTooShort(n));
        }
        let (data, sw) = bytes.split_at(n - 2);
        let sw = u16::from_be_bytes([
            sw.first().copied().unwrap_or(0),
            sw.get(1).copied().unwrap_or(0),
        ]);
        Ok(Response {
            data: data.to_vec(),
            sw,
        })
    }

    pub fn is_ok(&self) -> bool {
        self.sw == SW_OK
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = self.data.clone();
        v.extend_from_slice(&self.sw.to_be_bytes());
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::to_hex;

    #[test]
    fn encodings_table() {
        let cases: Vec<(Command, &str)> = vec![
            (Command::new(0, 0x84, 0, 0).with_le(8), "0084000008"),
            (
                Command::new(0, 0xA4, 2, 0x0C).with_data(vec![1, 0x1E]),
                "00A4020C02011E",
            ),
            (Command::new(0, 0xB0, 0, 0).with_le(256), "00B0000000"),
            (
                Command::new(0, 0xB0, 0, 0).with_le(0x1000),
                "00B00000001000",
            ),
            (Command::new(0, 0xB0, 0, 0).with_le(65536), "00B00000000000"),
            (
                Command::new(0, 0xD6, 0, 0)
                    .with_data(vec![0xAA; 300])
                    .with_le(256),
                "",
            ),
            (Command::new(0, 0x20, 0, 0), "00200000"),
        ];
        for (c, want) in cases {
            let b = c.to_bytes().unwrap();
            if want.is_empty() {
                // Extended case 4: 00 Lc(2) data Le(2).
                assert_eq!(&b[4..7], &[0, 0x01, 0x2C]);
                assert_eq!(b.len(), 4 + 3 + 300 + 2);
            } else {
                assert_eq!(to_hex(&b), want, "{c:?}");
            }
        }
        assert!(Command::new(0, 0, 0, 0).with_le(0).to_bytes().is_err());
        assert!(
            Command::new(0, 0, 0, 0)
                .with_data(vec![0; 70000])
                .to_bytes()
                .is_err()
        );
    }

    #[test]
    fn parse_round_trips_every_case() {
        let cmds = [
            Command::new(0, 0x20, 0, 0),
            Command::new(0, 0x84, 0, 0).with_le(8),
            Command::new(0, 0xB0, 0, 0).with_le(256),
            Command::new(0, 0xA4, 2, 12).with_data(vec![1, 0x1E]),
            Command::new(0x0C, 0xB0, 0, 0)
                .with_data(vec![9; 13])
                .with_le(256),
            Command::new(0, 0xB0, 0, 0).with_le(4000),
            Command::new(0, 0xD6, 0, 0).with_data(vec![1; 300]),
            Command::new(0, 0xD6, 0, 0)
                .with_data(vec![1; 300])
                .with_le(65536),
        ];
        for c in cmds {
            assert_eq!(Command::parse(&c.to_bytes().unwrap()).unwrap(), c);
        }
        for bad in [
            &[0u8, 1][..],
            &[0, 0, 0, 0, 5, 1],
            &[0, 0, 0, 0, 1, 1, 1, 1],
            &[0, 0, 0, 0, 0, 0, 3, 1],
        ] {
            assert!(Command::parse(bad).is_err());
        }
    }

    #[test]
    fn response_parse() {
        assert_eq!(Response::parse(&[0x90, 0]).unwrap().sw, SW_OK);
        let r = Response::parse(&[1, 2, 0x62, 0x82]).unwrap();
        assert_eq!((r.data.as_slice(), r.sw), (&[1u8, 2][..], SW_END_OF_FILE));
        assert_eq!(r.to_bytes(), vec![1, 2, 0x62, 0x82]);
        assert!(Response::parse(&[0x90]).is_err());
    }
}
