//! LDS data groups (ICAO 9303 Part 10): EF.COM, DG1, DG2 and raw DGs.
//!
//! BER-TLV parsing is done by `iso7816-tlv` (through [`crate::tlv`]). The ISO/IEC
//! 19794-5 facial record inside DG2 is a fixed binary layout, not ASN.1, so it is
//! read here field by field with bounds-checked slices.

use crate::mrz::{self, Mrz, MrzError};
use crate::tlv::{self, TlvError};
use std::fmt;
use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum LdsError {
    #[error("{file}: {source}")]
    Tlv {
        file: &'static str,
        source: TlvError,
    },
    #[error("{file}: missing {what}")]
    Missing {
        file: &'static str,
        what: &'static str,
    },
    #[error("DG1: MRZ is not valid: {0}")]
    Mrz(MrzError),
    #[error("DG2: facial record: {0}")]
    Face(&'static str),
    #[error("data group tag {found:02X} does not match DG{number}")]
    WrongDataGroup { number: u8, found: u32 },
}

fn ctx(file: &'static str) -> impl Fn(TlvError) -> LdsError {
    move |source| LdsError::Tlv { file, source }
}

/// EF.COM: LDS version, Unicode version and the list of present data group tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EfCom {
    pub lds_version: String,
    pub unicode_version: String,
    /// Data group tags (e.g. 0x61 for DG1, 0x75 for DG2).
    pub tags: Vec<u8>,
}

impl EfCom {
    /// Data group numbers listed in EF.COM.
    pub fn data_groups(&self) -> Vec<u8> {
        self.tags.iter().filter_map(|&t| dg_number(t)).collect()
    }
}

pub fn parse_ef_com(b: &[u8]) -> Result<EfCom, LdsError> {
    const F: &str = "EF.COM";
    let t = tlv::parse_expect(b, 0x60).map_err(ctx(F))?;
    let text = |tag, what| -> Result<String, LdsError> {
        let v = tlv::child(&t, tag)
            .and_then(tlv::primitive)
            .ok_or(LdsError::Missing { file: F, what })?;
        Ok(String::from_utf8_lossy(v).into_owned())
    };
    Ok(EfCom {
        lds_version: text(0x5F01, "LDS version (5F01)")?,
        unicode_version: text(0x5F36, "Unicode version (5F36)").unwrap_or_default(),
        tags: tlv::child(&t, 0x5C)
            .and_then(tlv::primitive)
            .ok_or(LdsError::Missing {
                file: F,
                what: "tag list (5C)",
            })?
            .to_vec(),
    })
}

/// DG tag → DG number (Part 10, table 34).
pub fn dg_number(tag: u8) -> Option<u8> {
    Some(match tag {
        0x61 => 1,
        0x75 => 2,
        0x63 => 3,
        0x76 => 4,
        0x65..=0x6F => tag - 0x65 + 5,
        0x70 => 16,
        _ => return None,
    })
}

/// DG number → DG tag.
pub fn dg_tag(n: u8) -> Option<u8> {
    (0..=255u8).find(|&t| dg_number(t) == Some(n))
}

/// DG1: the MRZ as stored on the chip.
#[derive(Clone, PartialEq, Eq)]
pub struct Dg1 {
    pub mrz: Mrz,
}

impl fmt::Debug for Dg1 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Dg1({:?})", self.mrz.format)
    }
}

pub fn parse_dg1(b: &[u8]) -> Result<Dg1, LdsError> {
    const F: &str = "DG1";
    let t = tlv::parse_expect(b, 0x61).map_err(ctx(F))?;
    let v = tlv::child(&t, 0x5F1F)
        .and_then(tlv::primitive)
        .ok_or(LdsError::Missing {
            file: F,
            what: "MRZ (5F1F)",
        })?;
    let text = std::str::from_utf8(v).map_err(|_| {
        LdsError::Mrz(MrzError::Shape {
            lines: 1,
            lengths: vec![v.len()],
        })
    })?;
    Ok(Dg1 {
        mrz: mrz::parse(text).map_err(LdsError::Mrz)?,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    Jpeg,
    Jpeg2000,
    Other(u8),
}

/// A face image extracted from DG2. `Debug` shows format and size only.
#[derive(Clone, PartialEq, Eq)]
pub struct FaceImage {
    pub format: ImageFormat,
    pub width: u16,
    pub height: u16,
    pub data: Vec<u8>,
}

impl fmt::Debug for FaceImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "FaceImage({:?}, {}x{}, {} bytes)",
            self.format,
            self.width,
            self.height,
            self.data.len()
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dg2 {
    pub faces: Vec<FaceImage>,
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes([
        *b.get(at)?,
        *b.get(at + 1)?,
        *b.get(at + 2)?,
        *b.get(at + 3)?,
    ]))
}

/// Parses an ISO/IEC 19794-5:2005 facial record ("FAC\0" "010\0") and returns its first image.
pub fn parse_iso19794_5(b: &[u8]) -> Result<FaceImage, LdsError> {
    let e = LdsError::Face;
    if b.get(..4) != Some(b"FAC\0") {
        return Err(e("format identifier is not FAC"));
    }
    let n_faces = be16(b, 12).ok_or(e("truncated header"))?;
    if n_faces == 0 {
        return Err(e("no face in record"));
    }
    // Facial record header (20 bytes) starts at 14.
    let rec = 14usize;
    let block_len = be32(b, rec).ok_or(e("truncated facial record"))? as usize;
    let n_points = usize::from(be16(b, rec + 4).ok_or(e("truncated facial record"))?);
    let info = rec + 20 + 8 * n_points;
    let kind = *b.get(info + 1).ok_or(e("truncated image information"))?;
    let width = be16(b, info + 2).ok_or(e("truncated image information"))?;
    let height = be16(b, info + 4).ok_or(e("truncated image information"))?;
    let start = info + 12;
    let end = rec.checked_add(block_len).ok_or(e("bad block length"))?;
    let data = b
        .get(start..end)
        .ok_or(e("block length exceeds the record"))?;
    if data.is_empty() {
        return Err(e("empty image"));
    }
    let format = match kind {
        0 => ImageFormat::Jpeg,
        1 => ImageFormat::Jpeg2000,
        o => ImageFormat::Other(o),
    };
    Ok(FaceImage {
        format,
        width,
        height,
        data: data.to_vec(),
    })
}

/// ISO/IEC 39794-5 records are ASN.1 with many optional parts; until a full
/// decoder exists we locate the image by its JPEG or JPEG 2000 signature.
fn image_from_39794_5(b: &[u8]) -> Result<FaceImage, LdsError> {
    let find = |pat: &[u8]| b.windows(pat.len()).position(|w| w == pat);
    let (format, at) = if let Some(p) = find(&[0xFF, 0xD8, 0xFF]) {
        (ImageFormat::Jpeg, p)
    } else if let Some(p) =
        find(&[0, 0, 0, 0x0C, 0x6A, 0x50, 0x20, 0x20]).or_else(|| find(&[0xFF, 0x4F, 0xFF, 0x51]))
    {
        (ImageFormat::Jpeg2000, p)
    } else {
        return Err(LdsError::Face(
            "no JPEG or JPEG 2000 image in ISO 39794-5 record",
        ));
    };
    Ok(FaceImage {
        format,
        width: 0,
        height: 0,
        data: b.get(at..).unwrap_or_default().to_vec(),
    })
}

/// DG2: biometric information group template(s) → face images.
pub fn parse_dg2(b: &[u8]) -> Result<Dg2, LdsError> {
    const F: &str = "DG2";
    let t = tlv::parse_expect(b, 0x75).map_err(ctx(F))?;
    let group = tlv::child(&t, 0x7F61).ok_or(LdsError::Missing {
        file: F,
        what: "biometric information group template (7F61)",
    })?;
    let mut faces = Vec::new();
    for bit in tlv::children(group)
        .iter()
        .filter(|c| tlv::tag_of(c) == 0x7F60)
    {
        if let Some(rec) = tlv::child(bit, 0x5F2E).and_then(tlv::primitive) {
            faces.push(parse_iso19794_5(rec)?);
        } else if let Some(rec) = tlv::child(bit, 0x7F2E).and_then(tlv::primitive) {
            faces.push(image_from_39794_5(rec)?);
        } else {
            return Err(LdsError::Missing {
                file: F,
                what: "biometric data block (5F2E or 7F2E)",
            });
        }
    }
    if faces.is_empty() {
        return Err(LdsError::Missing {
            file: F,
            what: "biometric information template (7F60)",
        });
    }
    Ok(Dg2 { faces })
}

/// Any data group, kept raw after checking its outer tag (DG14, DG15...).
#[derive(Clone, PartialEq, Eq)]
pub struct RawDataGroup {
    pub number: u8,
    pub bytes: Vec<u8>,
}

impl fmt::Debug for RawDataGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DG{}({} bytes)", self.number, self.bytes.len())
    }
}

pub fn parse_raw(number: u8, b: &[u8]) -> Result<RawDataGroup, LdsError> {
    let want = dg_tag(number).ok_or(LdsError::WrongDataGroup { number, found: 0 })?;
    let h = tlv::header(b).map_err(ctx("data group"))?;
    if h.tag != u32::from(want) {
        return Err(LdsError::WrongDataGroup {
            number,
            found: h.tag,
        });
    }
    if h.total_len() != b.len() {
        return Err(LdsError::Tlv {
            file: "data group",
            source: TlvError::Trailing(b.len().saturating_sub(h.total_len())),
        });
    }
    Ok(RawDataGroup {
        number,
        bytes: b.to_vec(),
    })
}

/// Builders used by the chip simulator and tests (encoding goes through the TLV crate too).
pub mod build {
    use super::*;

    pub fn ef_com(tags: &[u8]) -> Result<Vec<u8>, TlvError> {
        let mut c = tlv::encode(0x5F01, b"0107")?;
        c.extend(tlv::encode(0x5F36, b"040000")?);
        c.extend(tlv::encode(0x5C, tags)?);
        tlv::encode_constructed(0x60, &c)
    }

    pub fn dg1(mrz_concatenated: &str) -> Result<Vec<u8>, TlvError> {
        tlv::encode_constructed(0x61, &tlv::encode(0x5F1F, mrz_concatenated.as_bytes())?)
    }

    /// An ISO/IEC 19794-5 record with one face and no feature points.
    pub fn iso19794_5(image: &[u8], jpeg2000: bool, width: u16, height: u16) -> Vec<u8> {
        let block = 20 + 12 + image.len();
        let mut r = [&b"FAC\0"[..], b"010\0"].concat();
        r.extend(((14 + block) as u32).to_be_bytes());
        r.extend(1u16.to_be_bytes());
        r.extend((block as u32).to_be_bytes());
        r.extend([0, 0]); // feature points
        r.extend([0; 14]); // gender .. pose uncertainty
        r.push(1); // full frontal
        r.push(u8::from(jpeg2000));
        r.extend(width.to_be_bytes());
        r.extend(height.to_be_bytes());
        r.extend([1, 2, 0, 0, 0, 0]);
        r.extend_from_slice(image);
        r
    }

    pub fn dg2(record: &[u8]) -> Result<Vec<u8>, TlvError> {
        let mut bhdt = tlv::encode(0x87, &[0x01, 0x01])?; // format owner: ISO/IEC JTC1 SC37
        bhdt.extend(tlv::encode(0x88, &[0x00, 0x08])?); // format type: face
        let mut bit = tlv::encode_constructed(0xA1, &bhdt)?;
        bit.extend(tlv::encode(0x5F2E, record)?);
        let mut group = tlv::encode(0x02, &[1])?;
        group.extend(tlv::encode_constructed(0x7F60, &bit)?);
        tlv::encode_constructed(0x75, &tlv::encode_constructed(0x7F61, &group)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::from_hex;

    const TD3: &str =
        "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<L898902C36UTO7408122F1204159ZE184226B<<<<<10";

    #[test]
    fn ef_com_from_appendix_d4() {
        // The EF.COM read in App. D.4: 60 14 5F01 04 "0106" 5F36 06 "040000" 5C 02 61 75.
        let b = from_hex("60145F0104303130365F36063034303030305C026175").unwrap();
        let c = parse_ef_com(&b).unwrap();
        assert_eq!(
            (c.lds_version.as_str(), c.unicode_version.as_str()),
            ("0106", "040000")
        );
        assert_eq!(c.data_groups(), vec![1, 2]);
    }

    #[test]
    fn dg_numbers() {
        assert_eq!(
            [0x61, 0x75, 0x63, 0x76, 0x65, 0x6E, 0x6F, 0x70].map(dg_number),
            [1, 2, 3, 4, 5, 14, 15, 16].map(Some)
        );
        assert_eq!(dg_tag(14), Some(0x6E));
        assert_eq!(dg_number(0x77), None);
    }

    #[test]
    fn dg1_and_dg2_round_trip() {
        let dg1 = parse_dg1(&build::dg1(TD3).unwrap()).unwrap();
        assert_eq!(dg1.mrz.document_number, "L898902C3");
        assert!(!format!("{dg1:?}").contains("L898"));
        let jpeg = [&[0xFF, 0xD8, 0xFF, 0xE0][..], &[7; 100], &[0xFF, 0xD9]].concat();
        let dg2 =
            parse_dg2(&build::dg2(&build::iso19794_5(&jpeg, false, 480, 640)).unwrap()).unwrap();
        assert_eq!(dg2.faces.len(), 1);
        assert_eq!(
            (dg2.faces[0].format, dg2.faces[0].width, dg2.faces[0].height),
            (ImageFormat::Jpeg, 480, 640)
        );
        assert_eq!(dg2.faces[0].data, jpeg);
    }

    #[test]
    fn bad_inputs_say_what_is_wrong() {
        let cases: Vec<(Result<(), LdsError>, &str)> = vec![
            (
                parse_ef_com(&[0x61, 0]).map(|_| ()),
                "EF.COM: expected tag 60, found 61",
            ),
            (
                parse_ef_com(&[0x60, 0]).map(|_| ()),
                "EF.COM: missing LDS version",
            ),
            (parse_ef_com(&[0x60, 5, 1]).map(|_| ()), "EF.COM: truncated"),
            (
                parse_dg1(&build::dg1("P<UTO").unwrap()).map(|_| ()),
                "DG1: MRZ is not valid",
            ),
            (parse_dg1(&[0x61, 0]).map(|_| ()), "DG1: missing MRZ"),
            (
                parse_dg2(&[0x75, 0]).map(|_| ()),
                "DG2: missing biometric information group",
            ),
            (
                parse_dg2(&build::dg2(b"XXXX").unwrap()).map(|_| ()),
                "format identifier is not FAC",
            ),
            (
                parse_iso19794_5(&build::iso19794_5(&[1; 10], false, 1, 1)[..40]).map(|_| ()),
                "block length exceeds",
            ),
            (
                parse_raw(14, &[0x6F, 0]).map(|_| ()),
                "data group tag 6F does not match DG14",
            ),
        ];
        for (r, want) in cases {
            let e = r.unwrap_err().to_string();
            assert!(e.contains(want), "{e:?} should contain {want:?}");
        }
        assert_eq!(parse_raw(15, &[0x6F, 1, 0]).unwrap().number, 15);
    }

    #[test]
    fn iso39794_5_image_located_by_signature() {
        let mut rec = vec![0xA1, 0x05, 1, 2, 3, 4, 5];
        rec.extend([0xFF, 0xD8, 0xFF, 0xE0, 9, 9]);
        let img = image_from_39794_5(&rec).unwrap();
        assert_eq!((img.format, img.data.len()), (ImageFormat::Jpeg, 6));
        assert!(image_from_39794_5(&[1, 2, 3]).is_err());
    }
}
