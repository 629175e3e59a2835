//! A contactless eMRTD chip with a real ICAO 9303 LDS1 file system (no access control
//! and no security object yet: BAC/PACE, secure messaging and EF.SOD come later).
//!
//! Files under the eMRTD application (AID `A0 00 00 02 47 10 01`):
//! EF.COM (FID 011E, SFI 1E), DG1 (FID 0101, SFI 01), DG2 (FID 0102, SFI 02).
//! EF.CardAccess (011C) is absent from the master file, so a reader falls back to the
//! plain (BAC-less) path.
//!
//! APDUs (ISO/IEC 7816-4, short length fields only, CLA 00):
//! - `SELECT` (A4): P1=04 by DF name (the eMRTD AID), P1=02 (or 00) by 2-byte file
//!   id, P1=00 with 3F00 or no data selects the MF. P2 is ignored (no FCI returned).
//! - `READ BINARY` (B0): P1 bit 8 clear: 15-bit offset in P1/P2 of the current EF;
//!   set: short EF id in P1 bits 5–1 and an 8-bit offset in P2. Le=00 means 256.
//!
//! Status words: 9000 success; 6282 end of file reached before Ne bytes (the available
//! bytes are returned); 6700 wrong length (no Le for READ BINARY, extended lengths,
//! Lc/data mismatch); 6A82 file or application not found; 6A86 wrong P1/P2;
//! 6B00 offset beyond the end of the file; 6986 no current EF; 6882 secure messaging
//! not supported; 6E00 class not supported; 6D00 instruction not supported.

use super::{face, mrz};
use crate::scenario::{Sex, Traveler};
use iso7816_tlv::ber::{Tag, Tlv, Value};
use std::sync::Arc;

/// The eMRTD LDS1 application identifier.
pub const EMRTD_AID: [u8; 7] = [0xA0, 0x00, 0x00, 0x02, 0x47, 0x10, 0x01];
pub const FID_EF_COM: u16 = 0x011E;
pub const FID_DG1: u16 = 0x0101;
pub const FID_DG2: u16 = 0x0102;
pub const FID_EF_CARD_ACCESS: u16 = 0x011C;

pub const SW_OK: [u8; 2] = [0x90, 0x00];
pub const SW_END_OF_FILE: [u8; 2] = [0x62, 0x82];
pub const SW_WRONG_LENGTH: [u8; 2] = [0x67, 0x00];
pub const SW_SM_NOT_SUPPORTED: [u8; 2] = [0x68, 0x82];
pub const SW_NO_CURRENT_EF: [u8; 2] = [0x69, 0x86];
pub const SW_FILE_NOT_FOUND: [u8; 2] = [0x6A, 0x82];
pub const SW_WRONG_P1P2: [u8; 2] = [0x6A, 0x86];
pub const SW_WRONG_OFFSET: [u8; 2] = [0x6B, 0x00];
pub const SW_INS_NOT_SUPPORTED: [u8; 2] = [0x6D, 0x00];
pub const SW_CLA_NOT_SUPPORTED: [u8; 2] = [0x6E, 0x00];

#[derive(Debug, thiserror::Error)]
pub enum ChipFsError {
    #[error("BER-TLV encoding failed: {0}")]
    Tlv(String),
    #[error("MRZ: {0}")]
    Mrz(#[from] mrz::MrzError),
    #[error("face image: {0}")]
    Face(#[from] face::FaceError),
    #[error("the face image is too large for a 19794-5 record")]
    FaceTooLarge,
}

fn tag(raw: u64) -> Result<Tag, ChipFsError> {
    Tag::try_from(raw).map_err(|e| ChipFsError::Tlv(format!("tag {raw:X}: {e}")))
}

fn prim(raw: u64, value: Vec<u8>) -> Result<Tlv, ChipFsError> {
    Tlv::new(tag(raw)?, Value::Primitive(value))
        .map_err(|e| ChipFsError::Tlv(format!("{raw:X}: {e}")))
}

fn cons(raw: u64, children: Vec<Tlv>) -> Result<Tlv, ChipFsError> {
    Tlv::new(tag(raw)?, Value::Constructed(children))
        .map_err(|e| ChipFsError::Tlv(format!("{raw:X}: {e}")))
}

/// One elementary file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ElementaryFile {
    pub fid: u16,
    pub sfi: u8,
    pub content: Vec<u8>,
}

/// The chip's files (all inside the eMRTD application).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChipFs {
    pub files: Vec<ElementaryFile>,
}

impl ChipFs {
    pub fn file(&self, fid: u16) -> Option<&ElementaryFile> {
        self.files.iter().find(|f| f.fid == fid)
    }
}

/// EF.COM: LDS version 1.7, Unicode 4.0.0, data groups 1 and 2.
pub fn ef_com() -> Result<Vec<u8>, ChipFsError> {
    Ok(cons(
        0x60,
        vec![
            prim(0x5F01, b"0107".to_vec())?,
            prim(0x5F36, b"040000".to_vec())?,
            prim(0x5C, vec![0x61, 0x75])?,
        ],
    )?
    .to_vec())
}

/// DG1: the MRZ (88 characters for TD3) in tag 5F1F inside tag 61.
pub fn dg1(mrz_lines: &[String; 2]) -> Result<Vec<u8>, ChipFsError> {
    let text = format!("{}{}", mrz_lines[0], mrz_lines[1]);
    Ok(cons(0x61, vec![prim(0x5F1F, text.into_bytes())?])?.to_vec())
}

/// An ISO/IEC 19794-5:2005 facial record holding one full-frontal JPEG, no feature points.
pub fn facial_record(
    jpeg: &[u8],
    width: u16,
    height: u16,
    sex: Sex,
) -> Result<Vec<u8>, ChipFsError> {
    let block_len = 20 + 12 + jpeg.len();
    let record_len = 14 + block_len;
    let record_len32 = u32::try_from(record_len).map_err(|_| ChipFsError::FaceTooLarge)?;
    let mut r = Vec::with_capacity(record_len);
    r.extend_from_slice(b"FAC\0");
    r.extend_from_slice(b"010\0");
    r.extend_from_slice(&record_len32.to_be_bytes());
    r.extend_from_slice(&1u16.to_be_bytes()); // number of facial images
    // Facial information block.
    r.extend_from_slice(&(record_len32 - 14).to_be_bytes());
    r.extend_from_slice(&0u16.to_be_bytes()); // feature points
    r.push(match sex {
        Sex::Male => 1,
        Sex::Female => 2,
        Sex::Unspecified => 0,
    });
    r.push(0); // eye colour unspecified
    r.push(0); // hair colour unspecified
    r.extend_from_slice(&[0, 0, 0]); // feature mask
    r.extend_from_slice(&[0, 1]); // expression: neutral
    r.extend_from_slice(&[0, 0, 0]); // pose angle yaw/pitch/roll unspecified
    r.extend_from_slice(&[0, 0, 0]); // pose angle uncertainty
    // Image information.
    r.push(1); // face image type: full frontal
    r.push(0); // image data type: JPEG
    r.extend_from_slice(&width.to_be_bytes());
    r.extend_from_slice(&height.to_be_bytes());
    r.push(1); // colour space: 24-bit RGB
    r.push(2); // source type: static photo from a digital still camera
    r.extend_from_slice(&0u16.to_be_bytes()); // device type
    r.extend_from_slice(&0u16.to_be_bytes()); // quality unspecified
    r.extend_from_slice(jpeg);
    Ok(r)
}

/// DG2: 75 → 7F61 (biometric group template, 1 instance) → 7F60 → A1 (biometric
/// header template) + 5F2E (the 19794-5 facial record).
pub fn dg2(face_record: Vec<u8>) -> Result<Vec<u8>, ChipFsError> {
    let bht = cons(
        0xA1,
        vec![
            prim(0x80, vec![0x01, 0x01])?, // ICAO header version 1.1
            prim(0x81, vec![0x02])?,       // biometric type: facial features
            prim(0x87, vec![0x01, 0x01])?, // format owner: ISO/IEC JTC 1/SC 37
            prim(0x88, vec![0x00, 0x08])?, // format type: face image (19794-5)
        ],
    )?;
    let bit = cons(0x7F60, vec![bht, prim(0x5F2E, face_record)?])?;
    let group = cons(0x7F61, vec![prim(0x02, vec![0x01])?, bit])?;
    Ok(cons(0x75, vec![group])?.to_vec())
}

/// Builds the chip file system of `traveler`'s passport.
pub fn build(traveler: &Traveler) -> Result<ChipFs, ChipFsError> {
    let lines = mrz::traveler_mrz(traveler)?;
    let jpeg = face::face_jpeg(&traveler.id, 0)?;
    let record = facial_record(&jpeg, face::WIDTH, face::HEIGHT, traveler.sex)?;
    Ok(ChipFs {
        files: vec![
            ElementaryFile {
                fid: FID_EF_COM,
                sfi: 0x1E,
                content: ef_com()?,
            },
            ElementaryFile {
                fid: FID_DG1,
                sfi: 0x01,
                content: dg1(&lines)?,
            },
            ElementaryFile {
                fid: FID_DG2,
                sfi: 0x02,
                content: dg2(record)?,
            },
        ],
    })
}

/// The answer to `ChipConnect`: a PC/SC-style ATR built from the chip's ATS historical
/// bytes (`3B 8n 80 01 <historical bytes> TCK`).
pub fn atr() -> Vec<u8> {
    let historical = [
        0x80, 0x31, 0x80, 0x65, 0xB0, 0x85, 0x03, 0x00, 0xEF, 0x12, 0x0F, 0xFF, 0x82, 0x90, 0x00,
    ];
    let mut atr = vec![0x3B, 0x80 | historical.len() as u8, 0x80, 0x01];
    atr.extend_from_slice(&historical);
    let tck = atr[1..].iter().fold(0u8, |acc, b| acc ^ b);
    atr.push(tck);
    atr
}

/// An open contactless session with one chip: the selection state.
#[derive(Clone, Debug)]
pub struct ChipSession {
    fs: Arc<ChipFs>,
    application_selected: bool,
    current: Option<u16>,
}

struct Apdu<'a> {
    cla: u8,
    ins: u8,
    p1: u8,
    p2: u8,
    data: &'a [u8],
    /// Ne (Le=00 → 256), `None` when absent.
    ne: Option<usize>,
}

fn parse_apdu(apdu: &[u8]) -> Result<Apdu<'_>, [u8; 2]> {
    let [cla, ins, p1, p2, body @ ..] = apdu else {
        return Err(SW_WRONG_LENGTH);
    };
    let le = |b: u8| Some(if b == 0 { 256 } else { usize::from(b) });
    let (data, ne): (&[u8], _) = match body {
        [] => (&[], None),
        [le_byte] => (&[], le(*le_byte)),
        [0, _, ..] => return Err(SW_WRONG_LENGTH), // extended length: not supported
        [lc, rest @ ..] => {
            let lc = usize::from(*lc);
            if rest.len() == lc {
                (rest, None)
            } else if rest.len() == lc + 1 {
                (&rest[..lc], le(rest[lc]))
            } else {
                return Err(SW_WRONG_LENGTH);
            }
        }
    };
    Ok(Apdu {
        cla: *cla,
        ins: *ins,
        p1: *p1,
        p2: *p2,
        data,
        ne,
    })
}

fn with_sw(mut data: Vec<u8>, sw: [u8; 2]) -> Vec<u8> {
    data.extend_from_slice(&sw);
    data
}

impl ChipSession {
    pub fn new(fs: Arc<ChipFs>) -> Self {
        Self {
            fs,
            application_selected: false,
            current: None,
        }
    }

    /// Processes one command APDU and returns the response APDU (data + SW1 SW2).
    /// Never fails: malformed commands get the matching status word.
    pub fn transmit(&mut self, raw: &[u8]) -> Vec<u8> {
        let apdu = match parse_apdu(raw) {
            Ok(apdu) => apdu,
            Err(sw) => return sw.to_vec(),
        };
        if apdu.cla & 0x0C != 0 {
            return SW_SM_NOT_SUPPORTED.to_vec();
        }
        if apdu.cla != 0x00 {
            return SW_CLA_NOT_SUPPORTED.to_vec();
        }
        match apdu.ins {
            0xA4 => self.select(&apdu).to_vec(),
            0xB0 => self.read_binary(&apdu),
            _ => SW_INS_NOT_SUPPORTED.to_vec(),
        }
    }

    fn select(&mut self, apdu: &Apdu<'_>) -> [u8; 2] {
        match apdu.p1 {
            0x04 => {
                if apdu.data == EMRTD_AID {
                    self.application_selected = true;
                    self.current = None;
                    SW_OK
                } else if apdu.data.is_empty() {
                    SW_WRONG_LENGTH
                } else {
                    SW_FILE_NOT_FOUND
                }
            }
            0x00 if apdu.data.is_empty() || apdu.data == [0x3F, 0x00] => {
                self.application_selected = false;
                self.current = None;
                SW_OK
            }
            0x00 | 0x02 => {
                let [hi, lo] = apdu.data else {
                    return SW_WRONG_LENGTH;
                };
                let fid = u16::from_be_bytes([*hi, *lo]);
                if self.application_selected && self.fs.file(fid).is_some() {
                    self.current = Some(fid);
                    SW_OK
                } else {
                    // EF.CardAccess (011C) and anything else: not on this chip.
                    SW_FILE_NOT_FOUND
                }
            }
            _ => SW_WRONG_P1P2,
        }
    }

    fn read_binary(&mut self, apdu: &Apdu<'_>) -> Vec<u8> {
        if !apdu.data.is_empty() {
            return SW_WRONG_LENGTH.to_vec();
        }
        let Some(ne) = apdu.ne else {
            return SW_WRONG_LENGTH.to_vec();
        };
        let (fid, offset) = if apdu.p1 & 0x80 != 0 {
            if apdu.p1 & 0x60 != 0 {
                return SW_WRONG_P1P2.to_vec();
            }
            let sfi = apdu.p1 & 0x1F;
            let found = self.fs.files.iter().find(|f| f.sfi == sfi).map(|f| f.fid);
            match found {
                Some(fid) if self.application_selected => {
                    self.current = Some(fid);
                    (fid, usize::from(apdu.p2))
                }
                _ => return SW_FILE_NOT_FOUND.to_vec(),
            }
        } else {
            let Some(fid) = self.current else {
                return SW_NO_CURRENT_EF.to_vec();
            };
            (
                fid,
                usize::from(u16::from_be_bytes([apdu.p1 & 0x7F, apdu.p2])),
            )
        };
        let Some(file) = self.fs.file(fid) else {
            return SW_FILE_NOT_FOUND.to_vec();
        };
        if offset >= file.content.len() {
            return SW_WRONG_OFFSET.to_vec();
        }
        let end = (offset + ne).min(file.content.len());
        let data = file.content[offset..end].to_vec();
        let sw = if data.len() < ne {
            SW_END_OF_FILE
        } else {
            SW_OK
        };
        with_sw(data, sw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Scenario;

    fn session(id: &str) -> ChipSession {
        let s = Scenario::default_scenario().unwrap();
        ChipSession::new(Arc::new(build(s.traveler(id).unwrap()).unwrap()))
    }

    fn select_aid(chip: &mut ChipSession) {
        let mut apdu = vec![0x00, 0xA4, 0x04, 0x0C, 0x07];
        apdu.extend_from_slice(&EMRTD_AID);
        assert_eq!(chip.transmit(&apdu), SW_OK);
    }

    /// Reads a whole file the way a reader does: 4 bytes for the length, then chunks.
    fn read_file(chip: &mut ChipSession, fid: u16) -> Vec<u8> {
        let [hi, lo] = fid.to_be_bytes();
        assert_eq!(
            chip.transmit(&[0x00, 0xA4, 0x02, 0x0C, 0x02, hi, lo]),
            SW_OK
        );
        let head = chip.transmit(&[0x00, 0xB0, 0x00, 0x00, 0x04]);
        assert_eq!(&head[4..], SW_OK);
        let total = {
            let probe = &head[..4];
            let len_byte = probe[1];
            if len_byte & 0x80 == 0 {
                2 + usize::from(len_byte)
            } else {
                let n = usize::from(len_byte & 0x7F);
                2 + n
                    + probe[2..2 + n]
                        .iter()
                        .fold(0usize, |a, b| a << 8 | usize::from(*b))
            }
        };
        let mut out = Vec::new();
        while out.len() < total {
            let want = (total - out.len()).min(0xE0);
            let [p1, p2] = (out.len() as u16).to_be_bytes();
            let resp = chip.transmit(&[0x00, 0xB0, p1, p2, want as u8]);
            assert_eq!(&resp[resp.len() - 2..], SW_OK);
            out.extend_from_slice(&resp[..resp.len() - 2]);
        }
        out
    }

    #[test]
    fn ef_com_and_dg1_read_back() {
        let mut chip = session("alice");
        select_aid(&mut chip);
        let com = Tlv::from_bytes(&read_file(&mut chip, FID_EF_COM)).unwrap();
        assert_eq!(com.tag().to_bytes(), [0x60]);
        let list = com.find(&Tag::try_from(0x5Cu64).unwrap()).unwrap();
        assert_eq!(list.value(), &Value::Primitive(vec![0x61, 0x75]));

        let dg1 = Tlv::from_bytes(&read_file(&mut chip, FID_DG1)).unwrap();
        assert_eq!(dg1.tag().to_bytes(), [0x61]);
        let Value::Primitive(mrz) = dg1
            .find(&Tag::try_from(0x5F1Fu64).unwrap())
            .unwrap()
            .value()
            .clone()
        else {
            panic!("primitive")
        };
        let mrz = String::from_utf8(mrz).unwrap();
        assert_eq!(mrz.len(), 88);
        assert!(mrz.starts_with("P<GBRTESTWOOD<<ALICE<SAMPLE"));
        assert!(mrz::verify_td3_line2(&mrz[44..]));
    }

    #[test]
    fn dg2_holds_a_19794_5_record_with_a_jpeg() {
        let mut chip = session("bruno");
        select_aid(&mut chip);
        let dg2 = Tlv::from_bytes(&read_file(&mut chip, FID_DG2)).unwrap();
        assert_eq!(dg2.tag().to_bytes(), [0x75]);
        let child = |tlv: &Tlv, tag: u64| -> Tlv {
            let Value::Constructed(children) = tlv.value() else {
                panic!("constructed")
            };
            let tag = Tag::try_from(tag).unwrap();
            children.iter().find(|c| *c.tag() == tag).unwrap().clone()
        };
        let group = child(&dg2, 0x7F61);
        assert_eq!(child(&group, 0x02).value(), &Value::Primitive(vec![1]));
        let bit = child(&group, 0x7F60);
        let bht = child(&bit, 0xA1);
        assert_eq!(
            child(&bht, 0x88).value(),
            &Value::Primitive(vec![0x00, 0x08])
        );
        let Value::Primitive(rec) = child(&bit, 0x5F2E).value().clone() else {
            panic!("primitive")
        };
        assert_eq!(&rec[0..8], b"FAC\x00010\x00");
        assert_eq!(
            u32::from_be_bytes([rec[8], rec[9], rec[10], rec[11]]) as usize,
            rec.len()
        );
        assert_eq!(u16::from_be_bytes([rec[12], rec[13]]), 1);
        assert_eq!(
            u32::from_be_bytes([rec[14], rec[15], rec[16], rec[17]]) as usize,
            rec.len() - 14
        );
        assert_eq!(rec[34], 1, "full frontal");
        assert_eq!(rec[35], 0, "JPEG");
        assert_eq!(&rec[46..48], &[0xFF, 0xD8]);
    }

    #[test]
    fn status_words() {
        let mut chip = session("alice");
        // Before the application is selected, nothing is found; EF.CardAccess is absent.
        assert_eq!(
            chip.transmit(&[0x00, 0xA4, 0x02, 0x0C, 0x02, 0x01, 0x1C]),
            SW_FILE_NOT_FOUND
        );
        assert_eq!(
            chip.transmit(&[0x00, 0xA4, 0x04, 0x0C, 0x02, 0xA0, 0x00]),
            SW_FILE_NOT_FOUND
        );
        assert_eq!(
            chip.transmit(&[0x00, 0xB0, 0x00, 0x00, 0x04]),
            SW_NO_CURRENT_EF
        );
        select_aid(&mut chip);
        assert_eq!(
            chip.transmit(&[0x00, 0xA4, 0x02, 0x0C, 0x02, 0x01, 0x05]),
            SW_FILE_NOT_FOUND
        );
        assert_eq!(
            chip.transmit(&[0x00, 0xA4, 0x02, 0x0C, 0x02, 0x01, 0x1E]),
            SW_OK
        );
        // Offsets past the end, missing Le, Le=00 and a short last chunk.
        assert_eq!(
            chip.transmit(&[0x00, 0xB0, 0x7F, 0x00, 0x04]),
            SW_WRONG_OFFSET
        );
        assert_eq!(chip.transmit(&[0x00, 0xB0, 0x00, 0x00]), SW_WRONG_LENGTH);
        let all = chip.transmit(&[0x00, 0xB0, 0x00, 0x00, 0x00]);
        assert_eq!(&all[all.len() - 2..], SW_END_OF_FILE);
        let com_len = all.len() - 2;
        let tail = chip.transmit(&[0x00, 0xB0, 0x00, 0x02, 0x00]);
        assert_eq!(tail.len() - 2, com_len - 2);
        // Short EF id read of DG1.
        let sfi = chip.transmit(&[0x00, 0xB0, 0x81, 0x00, 0x02]);
        assert_eq!(sfi, [0x61, 0x5B, 0x90, 0x00]);
        // Garbage.
        assert_eq!(chip.transmit(&[]), SW_WRONG_LENGTH);
        assert_eq!(chip.transmit(&[0x00, 0xA4]), SW_WRONG_LENGTH);
        assert_eq!(
            chip.transmit(&[0x00, 0xCA, 0x00, 0x00, 0x00]),
            SW_INS_NOT_SUPPORTED
        );
        assert_eq!(
            chip.transmit(&[0x0C, 0xB0, 0x00, 0x00, 0x00]),
            SW_SM_NOT_SUPPORTED
        );
        assert_eq!(
            chip.transmit(&[0x80, 0xB0, 0x00, 0x00, 0x00]),
            SW_CLA_NOT_SUPPORTED
        );
        assert_eq!(
            chip.transmit(&[0x00, 0xB0, 0x00, 0x00, 0x05, 1, 2]),
            SW_WRONG_LENGTH
        );
        assert_eq!(
            chip.transmit(&[0x00, 0xB0, 0x00, 0x00, 0x00, 0x01, 0x00]),
            SW_WRONG_LENGTH
        );
        assert_eq!(chip.transmit(&[0x00, 0xA4, 0x07, 0x0C]), SW_WRONG_P1P2);
    }

    #[test]
    fn the_atr_has_a_valid_checksum() {
        let atr = atr();
        assert_eq!(atr[0], 0x3B);
        assert_eq!(atr[1..].iter().fold(0u8, |a, b| a ^ b), 0);
    }
}
