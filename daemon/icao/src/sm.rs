//! Secure messaging (ISO/IEC 7816-4 with the ICAO 9303 Part 11 profile, section 9.8).
//!
//! Terminal side (`protect` / `unprotect`) and card side (`unprotect_command` /
//! `protect_response`, used by the chip simulator), for 3DES (BAC, PACE-3DES:
//! zero IV, retail MAC) and AES (PACE: IV = E(KSenc, SSC), CMAC truncated to 8
//! bytes). The SSC is incremented before every command *and* every response,
//! so one exchange consumes two values.

use crate::apdu::{ApduError, Command, Response, SW_OK};
use crate::crypto::{self, CryptoError};
use crate::tlv::{self, TlvError};
use std::fmt;
use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SmError {
    /// The chip answered with a bare status word: an error, never data.
    #[error("chip returned unprotected status {0:04X}")]
    UnprotectedStatus(u16),
    #[error("protected response lacks {0}")]
    Missing(&'static str),
    #[error("secure messaging MAC does not verify")]
    BadMac,
    #[error("unexpected data object {0:X} in a protected message")]
    UnexpectedObject(u32),
    #[error("DO'87 padding-content indicator is not 01")]
    PaddingIndicator,
    #[error("DO'99 must hold exactly 2 bytes")]
    StatusObject,
    #[error("command is already protected (CLA has SM bits)")]
    AlreadyProtected,
    #[error("TLV: {0}")]
    Tlv(#[from] TlvError),
    #[error("crypto: {0}")]
    Crypto(#[from] CryptoError),
    #[error("APDU: {0}")]
    Apdu(#[from] ApduError),
}

#[derive(Clone)]
enum Keys {
    Tdes { enc: [u8; 16], mac: [u8; 16] },
    Aes { enc: Vec<u8>, mac: Vec<u8> },
}

/// An established secure messaging session (keys and SSC). `Debug` hides keys.
#[derive(Clone)]
pub struct SecureMessaging {
    keys: Keys,
    ssc: Vec<u8>,
}

impl fmt::Debug for SecureMessaging {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let alg = match self.keys {
            Keys::Tdes { .. } => "3DES",
            Keys::Aes { .. } => "AES",
        };
        write!(f, "SecureMessaging({alg})")
    }
}

/// One DO as it appeared on the wire: its tag, value and the exact raw bytes
/// (the MAC covers the bytes as sent, not a re-encoding).
struct RawDo<'a> {
    tag: u32,
    value: Vec<u8>,
    raw: &'a [u8],
}

fn split_dos(mut b: &[u8]) -> Result<Vec<RawDo<'_>>, SmError> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let (t, used) = tlv::parse_one(b)?;
        let value = tlv::primitive(&t)
            .ok_or(SmError::UnexpectedObject(tlv::tag_of(&t)))?
            .to_vec();
        let (raw, rest) = b.split_at(used.min(b.len()));
        out.push(RawDo {
            tag: tlv::tag_of(&t),
            value,
            raw,
        });
        b = rest;
    }
    Ok(out)
}

fn encode_le(le: usize) -> Vec<u8> {
    if le <= 256 {
        vec![(le % 256) as u8]
    } else {
        ((le % 65536) as u16).to_be_bytes().to_vec()
    }
}

impl SecureMessaging {
    /// 3DES session (BAC or PACE with 3DES): SSC is 8 bytes.
    pub fn tdes(enc: [u8; 16], mac: [u8; 16], ssc: [u8; 8]) -> Self {
        SecureMessaging {
            keys: Keys::Tdes { enc, mac },
            ssc: ssc.to_vec(),
        }
    }

    /// AES session (PACE): 16-, 24- or 32-byte keys, SSC is 16 bytes (zero after PACE).
    pub fn aes(enc: &[u8], mac: &[u8], ssc: [u8; 16]) -> Result<Self, SmError> {
        for k in [enc, mac] {
            if ![16, 24, 32].contains(&k.len()) {
                return Err(CryptoError::KeyLength(k.len()).into());
            }
        }
        Ok(SecureMessaging {
            keys: Keys::Aes {
                enc: enc.to_vec(),
                mac: mac.to_vec(),
            },
            ssc: ssc.to_vec(),
        })
    }

    pub fn ssc(&self) -> &[u8] {
        &self.ssc
    }

    fn block(&self) -> usize {
        match self.keys {
            Keys::Tdes { .. } => 8,
            Keys::Aes { .. } => 16,
        }
    }

    /// Big-endian increment with carry across bytes.
    fn increment(&mut self) {
        for b in self.ssc.iter_mut().rev() {
            let (v, carry) = b.overflowing_add(1);
            *b = v;
            if !carry {
                break;
            }
        }
    }

    fn encrypt(&self, padded: &[u8]) -> Result<Vec<u8>, SmError> {
        Ok(match &self.keys {
            Keys::Tdes { enc, .. } => crypto::tdes_cbc_encrypt(enc, &[0; 8], padded)?,
            Keys::Aes { enc, .. } => {
                let iv = crypto::aes_ecb_block(enc, &self.ssc16())?;
                crypto::aes_cbc_encrypt(enc, &iv, padded)?
            }
        })
    }

    fn decrypt(&self, c: &[u8]) -> Result<Vec<u8>, SmError> {
        Ok(match &self.keys {
            Keys::Tdes { enc, .. } => crypto::tdes_cbc_decrypt(enc, &[0; 8], c)?,
            Keys::Aes { enc, .. } => {
                let iv = crypto::aes_ecb_block(enc, &self.ssc16())?;
                crypto::aes_cbc_decrypt(enc, &iv, c)?
            }
        })
    }

    fn ssc16(&self) -> [u8; 16] {
        let mut s = [0u8; 16];
        for (d, v) in s.iter_mut().rev().zip(self.ssc.iter().rev()) {
            *d = *v;
        }
        s
    }

    /// MAC over pad(SSC || data).
    fn mac(&self, data: &[u8]) -> Result<[u8; 8], SmError> {
        let mut n = self.ssc.clone();
        n.extend_from_slice(data);
        let padded = crypto::pad(&n, self.block());
        Ok(match &self.keys {
            Keys::Tdes { mac, .. } => crypto::retail_mac(mac, &padded)?,
            Keys::Aes { mac, .. } => crypto::aes_cmac8(mac, &padded)?,
        })
    }

    fn padded_header(&self, cla: u8, ins: u8, p1: u8, p2: u8) -> Vec<u8> {
        crypto::pad(&[cla, ins, p1, p2], self.block())
    }

    /// Terminal: protects a command. The protected command always asks for the
    /// maximum response (Le = 00, or 0000 when extended), as in App. D.4.
    pub fn protect(&mut self, cmd: &Command) -> Result<Command, SmError> {
        if cmd.cla & 0x0C == 0x0C {
            return Err(SmError::AlreadyProtected);
        }
        self.increment();
        let cla = cmd.cla | 0x0C;
        let mut dos = Vec::new();
        if !cmd.data.is_empty() {
            let c = self.encrypt(&crypto::pad(&cmd.data, self.block()))?;
            if cmd.ins & 1 == 1 {
                // Odd INS: data is BER-TLV coded; DO'85 carries it without indicator.
                dos.extend(tlv::encode(0x85, &c)?);
            } else {
                let mut v = vec![0x01];
                v.extend_from_slice(&c);
                dos.extend(tlv::encode(0x87, &v)?);
            }
        }
        if let Some(le) = cmd.le {
            dos.extend(tlv::encode(0x97, &encode_le(le))?);
        }
        let mut m = self.padded_header(cla, cmd.ins, cmd.p1, cmd.p2);
        m.extend_from_slice(&dos);
        let cc = self.mac(&m)?;
        dos.extend(tlv::encode(0x8E, &cc)?);
        let extended = dos.len() > 255 || cmd.le.is_some_and(|l| l > 231);
        Ok(Command {
            cla,
            ins: cmd.ins,
            p1: cmd.p1,
            p2: cmd.p2,
            data: dos,
            le: Some(if extended { 65536 } else { 256 }),
        })
    }

    /// Terminal: verifies and decrypts a protected response (all bytes incl. SW).
    pub fn unprotect(&mut self, bytes: &[u8]) -> Result<Response, SmError> {
        self.increment();
        let r = Response::parse(bytes)?;
        if r.data.is_empty() {
            // A bare status word cannot be authenticated: report it, never treat it as success.
            return Err(if r.sw == SW_OK {
                SmError::Missing("DO'8E")
            } else {
                SmError::UnprotectedStatus(r.sw)
            });
        }
        let dos = split_dos(&r.data)?;
        let mut mac_input = Vec::new();
        let (mut enc, mut sw, mut cc) = (None, None, None);
        for d in &dos {
            if cc.is_some() {
                return Err(SmError::UnexpectedObject(d.tag));
            }
            match d.tag {
                0x87 | 0x85 => {
                    mac_input.extend_from_slice(d.raw);
                    enc = Some((d.tag, d.value.clone()));
                }
                0x99 => {
                    mac_input.extend_from_slice(d.raw);
                    sw = Some(d.value.clone());
                }
                0x8E => cc = Some(d.value.clone()),
                t => return Err(SmError::UnexpectedObject(t)),
            }
        }
        let cc = cc.ok_or(SmError::Missing("DO'8E"))?;
        let sw = sw.ok_or(SmError::Missing("DO'99"))?;
        if !crypto::ct_eq(&self.mac(&mac_input)?, &cc) {
            return Err(SmError::BadMac);
        }
        let sw: [u8; 2] = sw
            .as_slice()
            .try_into()
            .map_err(|_| SmError::StatusObject)?;
        let data = match enc {
            None => Vec::new(),
            Some((tag, v)) => {
                let c = if tag == 0x87 {
                    match v.split_first() {
                        Some((0x01, c)) => c.to_vec(),
                        _ => return Err(SmError::PaddingIndicator),
                    }
                } else {
                    v
                };
                let p = self.decrypt(&c)?;
                crypto::unpad(&p)?.to_vec()
            }
        };
        Ok(Response {
            data,
            sw: u16::from_be_bytes(sw),
        })
    }

    /// Card: verifies and decrypts a protected command APDU.
    pub fn unprotect_command(&mut self, apdu: &[u8]) -> Result<Command, SmError> {
        self.increment();
        let c = Command::parse(apdu)?;
        if c.cla & 0x0C != 0x0C {
            return Err(SmError::Missing("SM class bits"));
        }
        let dos = split_dos(&c.data)?;
        let mut m = self.padded_header(c.cla, c.ins, c.p1, c.p2);
        let (mut enc, mut le, mut cc) = (None, None, None);
        for d in &dos {
            if cc.is_some() {
                return Err(SmError::UnexpectedObject(d.tag));
            }
            match d.tag {
                0x87 | 0x85 => {
                    m.extend_from_slice(d.raw);
                    enc = Some((d.tag, d.value.clone()));
                }
                0x97 => {
                    m.extend_from_slice(d.raw);
                    le = Some(match d.value.as_slice() {
                        [0] => 256,
                        [x] => usize::from(*x),
                        [0, 0] => 65536,
                        [a, b] => usize::from(u16::from_be_bytes([*a, *b])),
                        _ => return Err(SmError::UnexpectedObject(0x97)),
                    });
                }
                0x8E => cc = Some(d.value.clone()),
                t => return Err(SmError::UnexpectedObject(t)),
            }
        }
        let cc = cc.ok_or(SmError::Missing("DO'8E"))?;
        if !crypto::ct_eq(&self.mac(&m)?, &cc) {
            return Err(SmError::BadMac);
        }
        let data = match enc {
            None => Vec::new(),
            Some((tag, v)) => {
                let ct = if tag == 0x87 {
                    match v.split_first() {
                        Some((0x01, ct)) => ct.to_vec(),
                        _ => return Err(SmError::PaddingIndicator),
                    }
                } else {
                    v
                };
                crypto::unpad(&self.decrypt(&ct)?)?.to_vec()
            }
        };
        Ok(Command {
            cla: c.cla & !0x0C,
            ins: c.ins,
            p1: c.p1,
            p2: c.p2,
            data,
            le,
        })
    }

    /// Card: protects a response (DO'87 if data, DO'99, DO'8E, then SW).
    pub fn protect_response(&mut self, data: &[u8], sw: u16) -> Result<Vec<u8>, SmError> {
        self.increment();
        let mut out = Vec::new();
        if !data.is_empty() {
            let mut v = vec![0x01];
            v.extend(self.encrypt(&crypto::pad(data, self.block()))?);
            out.extend(tlv::encode(0x87, &v)?);
        }
        out.extend(tlv::encode(0x99, &sw.to_be_bytes())?);
        let cc = self.mac(&out)?;
        out.extend(tlv::encode(0x8E, &cc)?);
        out.extend_from_slice(&sw.to_be_bytes());
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    //! ICAO 9303 Part 11 Appendix D.4: SELECT EF.COM and two READ BINARY, both directions.
    use super::*;
    use crate::crypto::{from_hex, to_hex};

    fn h(s: &str) -> Vec<u8> {
        from_hex(s).unwrap()
    }

    fn session() -> SecureMessaging {
        SecureMessaging::tdes(
            h("979EC13B1CBFE9DCD01AB0FED307EAE5").try_into().unwrap(),
            h("F1CB1F1FB5ADF208806B89DC579DC1F8").try_into().unwrap(),
            h("887022120C06C226").try_into().unwrap(),
        )
    }

    // (plain command, protected command, protected response, plain response data, SSC after)
    const D4: [(&str, &str, &str, &str); 3] = [
        (
            "00A4020C02011E",
            "0CA4020C158709016375432908C044F68E08BF8B92D635FF24F800",
            "990290008E08FA855A5D4C50A8ED9000",
            "",
        ),
        (
            "00B0000004",
            "0CB000000D9701048E08ED6705417E96BA5500",
            "8709019FF0EC34F9922651990290008E08AD55CC17140B2DED9000",
            "60145F01",
        ),
        (
            "00B0000412",
            "0CB000040D9701128E082EA28A70F3C7B53500",
            "871901FB9235F4E4037F2327DCC8964F1F9B8C30F42C8E2FFF224A990290008E08C8B2787EAEA07D749000",
            "04303130365F36063034303030305C026175",
        ),
    ];

    #[test]
    fn d4_terminal_side_bit_exact() {
        let mut sm = session();
        for (plain, protected, resp, data) in D4 {
            let c = sm.protect(&Command::parse(&h(plain)).unwrap()).unwrap();
            assert_eq!(to_hex(&c.to_bytes().unwrap()), protected);
            let r = sm.unprotect(&h(resp)).unwrap();
            assert_eq!((to_hex(&r.data), r.sw), (data.to_string(), 0x9000));
        }
        // Two SSC values per exchange: 26 + 6.
        assert_eq!(to_hex(sm.ssc()), "887022120C06C22C");
    }

    #[test]
    fn d4_card_side_bit_exact() {
        let mut card = session();
        for (plain, protected, resp, data) in D4 {
            let c = card.unprotect_command(&h(protected)).unwrap();
            assert_eq!(to_hex(&c.to_bytes().unwrap()), plain);
            assert_eq!(
                to_hex(&card.protect_response(&h(data), 0x9000).unwrap()),
                resp
            );
        }
    }

    #[test]
    fn unprotected_error_status_is_an_error_not_data() {
        let mut sm = session();
        sm.protect(&Command::new(0, 0xB0, 0, 0).with_le(4)).unwrap();
        assert_eq!(
            sm.unprotect(&h("6982")),
            Err(SmError::UnprotectedStatus(0x6982))
        );
        let mut sm = session();
        assert_eq!(sm.unprotect(&h("9000")), Err(SmError::Missing("DO'8E")));
    }

    #[test]
    fn response_rejections() {
        let cases = [
            ("990290008E08FA855A5D4C50A8EE9000", SmError::BadMac),
            ("990290009000", SmError::Missing("DO'8E")),
            ("8E08FA855A5D4C50A8ED9000", SmError::Missing("DO'99")),
            (
                "990290008E08FA855A5D4C50A8ED990290009000",
                SmError::UnexpectedObject(0x99),
            ),
            ("A0009000", SmError::UnexpectedObject(0xA0)),
        ];
        for (resp, want) in cases {
            let mut sm = session();
            sm.protect(&Command::parse(&h("00A4020C02011E")).unwrap())
                .unwrap();
            assert_eq!(sm.unprotect(&h(resp)), Err(want), "{resp}");
        }
        // A replayed (old) response fails: the SSC moved on.
        let mut sm = session();
        sm.protect(&Command::parse(&h("00A4020C02011E")).unwrap())
            .unwrap();
        sm.unprotect(&h(D4[0].2)).unwrap();
        sm.protect(&Command::parse(&h("00B0000004")).unwrap())
            .unwrap();
        assert_eq!(sm.unprotect(&h(D4[0].2)), Err(SmError::BadMac));
    }

    #[test]
    fn ssc_carries_across_bytes() {
        let mut sm =
            SecureMessaging::tdes([1; 16], [2; 16], h("00000000000000FF").try_into().unwrap());
        sm.protect(&Command::new(0, 0xB0, 0, 0).with_le(1)).unwrap();
        assert_eq!(to_hex(sm.ssc()), "0000000000000100");
    }

    #[test]
    fn aes_round_trip_both_sides_and_large_payloads() {
        for klen in [16, 24, 32] {
            let k1 = vec![0x11; klen];
            let k2 = vec![0x22; klen];
            let mut term = SecureMessaging::aes(&k1, &k2, [0; 16]).unwrap();
            let mut card = SecureMessaging::aes(&k1, &k2, [0; 16]).unwrap();
            for len in [0usize, 1, 15, 16, 200, 1000] {
                let cmd = Command::new(0, 0xD6, 0, 0)
                    .with_data(vec![0x5A; len.max(1)])
                    .with_le(len.max(1));
                let wire = term.protect(&cmd).unwrap().to_bytes().unwrap();
                assert_eq!(card.unprotect_command(&wire).unwrap(), cmd);
                let resp = card.protect_response(&vec![0xA5; len], 0x9000).unwrap();
                let r = term.unprotect(&resp).unwrap();
                assert_eq!((r.data.len(), r.sw), (len, 0x9000));
            }
        }
        assert!(SecureMessaging::aes(&[0; 15], &[0; 16], [0; 16]).is_err());
    }

    #[test]
    fn debug_hides_keys() {
        assert_eq!(format!("{:?}", session()), "SecureMessaging(3DES)");
    }
}
