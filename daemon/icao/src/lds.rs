//! LDS data groups (ICAO 9303 Part 10): EF.COM, DG1, DG2, DG11, DG12 and raw DGs.
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
    /// A DG11/DG12 field is wrong: names the tag and the byte offset in the file,
    /// never the value (these fields are personal data).
    #[error("{file}: field {tag:X} at offset {offset}: {problem}")]
    Field {
        file: &'static str,
        tag: u32,
        offset: usize,
        problem: &'static str,
    },
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

// ---------------------------------------------------------------------------
// DG11 (additional personal details) and DG12 (additional document details).
//
// Both are a tag list (5C) followed by exactly the fields it announces. The TLV
// objects are decoded by `iso7816-tlv` through [`crate::tlv`]; this code only walks
// the sequence of children to know each one's offset, so that errors can point at
// the field without quoting it.

/// Tag of the template holding the "other names" (DG11) / "other persons" (DG12).
const TEMPLATE: u32 = 0xA0;
/// Tag of the count inside that template.
const COUNT: u32 = 0x02;

/// One decoded child with the offset of its first byte in the file.
struct Field {
    tag: u32,
    offset: usize,
    tlv: iso7816_tlv::ber::Tlv,
}

/// Decodes the sequence of TLV objects in `b[start..end]`, keeping offsets.
fn walk(file: &'static str, b: &[u8], start: usize, end: usize) -> Result<Vec<Field>, LdsError> {
    let mut out = Vec::new();
    let mut off = start;
    while off < end {
        let rest = b.get(off..end).unwrap_or_default();
        let (t, used) = tlv::parse_one(rest).map_err(ctx(file))?;
        out.push(Field {
            tag: tlv::tag_of(&t),
            offset: off,
            tlv: t,
        });
        off += used;
    }
    Ok(out)
}

/// Offset of the value of the object that starts at `offset`.
fn value_offset(b: &[u8], offset: usize) -> usize {
    offset + tlv::header(b.get(offset..).unwrap_or_default()).map_or(0, |h| h.header_len)
}

/// Reads the tag list: a plain concatenation of tags. Only the tags defined for this
/// data group are accepted (`allowed`); all of them are one byte or 5Fxx, so a tag
/// outside the table is reported rather than decoded further.
fn tag_list(
    file: &'static str,
    b: &[u8],
    list: &Field,
    allowed: &[u32],
) -> Result<Vec<u32>, LdsError> {
    let err = |offset, tag, problem| LdsError::Field {
        file,
        tag,
        offset,
        problem,
    };
    let v = tlv::primitive(&list.tlv).ok_or(err(list.offset, 0x5C, "tag list is not primitive"))?;
    let base = value_offset(b, list.offset);
    let mut tags = Vec::new();
    let mut i = 0usize;
    while let Some(&first) = v.get(i) {
        let (tag, len) = if first == 0x5F {
            match v.get(i + 1) {
                Some(&second) => (0x5F00 | u32::from(second), 2),
                None => return Err(err(base + i, 0x5C, "tag list ends inside a tag")),
            }
        } else {
            (u32::from(first), 1)
        };
        if !allowed.contains(&tag) {
            return Err(err(
                base + i,
                tag,
                "tag list announces a tag not defined here",
            ));
        }
        if tags.contains(&tag) {
            return Err(err(base + i, tag, "tag announced twice in the tag list"));
        }
        tags.push(tag);
        i += len;
    }
    if tags.is_empty() {
        return Err(err(list.offset, 0x5C, "tag list is empty"));
    }
    Ok(tags)
}

/// Checks the outer tag, the tag list and that the fields are exactly the announced
/// ones (none missing, none duplicated, none extra). `alias` is the tag that some
/// issuers announce in the list for the A0 template (5F0F in DG11, 5F1A in DG12).
fn announced_fields(
    file: &'static str,
    outer: u32,
    b: &[u8],
    allowed: &[u32],
    alias: u32,
) -> Result<Vec<Field>, LdsError> {
    // Whole-object validation by the TLV crate: outer tag, lengths, depth, trailing bytes.
    tlv::parse_expect(b, outer).map_err(ctx(file))?;
    let h = tlv::header(b).map_err(ctx(file))?;
    let mut fields = walk(file, b, h.header_len, b.len())?;
    let first = match fields.first() {
        Some(f) if f.tag == 0x5C => fields.remove(0),
        Some(f) => {
            return Err(LdsError::Field {
                file,
                tag: 0x5C,
                offset: f.offset,
                problem: "the tag list must come first",
            });
        }
        None => {
            return Err(LdsError::Missing {
                file,
                what: "tag list (5C)",
            });
        }
    };
    let announced: Vec<u32> = tag_list(file, b, &first, allowed)?
        .into_iter()
        .map(|t| if t == alias { TEMPLATE } else { t })
        .collect();
    let mut seen: Vec<u32> = Vec::new();
    for f in &fields {
        let problem = if f.tag == 0x5C {
            Some("second tag list")
        } else if !announced.contains(&f.tag) {
            Some("field not announced in the tag list")
        } else if seen.contains(&f.tag) {
            Some("field duplicated")
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(LdsError::Field {
                file,
                tag: f.tag,
                offset: f.offset,
                problem,
            });
        }
        seen.push(f.tag);
    }
    if let Some(&tag) = announced.iter().find(|t| !seen.contains(t)) {
        return Err(LdsError::Field {
            file,
            tag,
            offset: b.len(),
            problem: "announced in the tag list but absent",
        });
    }
    Ok(fields)
}

fn field_bytes<'a>(file: &'static str, f: &'a Field) -> Result<&'a [u8], LdsError> {
    tlv::primitive(&f.tlv).ok_or(LdsError::Field {
        file,
        tag: f.tag,
        offset: f.offset,
        problem: "expected a primitive field",
    })
}

fn field_text(file: &'static str, f: &Field) -> Result<String, LdsError> {
    let v = field_bytes(file, f)?;
    std::str::from_utf8(v)
        .map(str::to_owned)
        .map_err(|_| LdsError::Field {
            file,
            tag: f.tag,
            offset: f.offset,
            problem: "not UTF-8 text",
        })
}

/// A date (8 digits, yyyymmdd) or date-time (14 digits): ASCII digits, or the same
/// digits packed as BCD, which some issuers use.
fn field_digits(file: &'static str, f: &Field, digits: usize) -> Result<String, LdsError> {
    let v = field_bytes(file, f)?;
    let bad = LdsError::Field {
        file,
        tag: f.tag,
        offset: f.offset,
        problem: "not a date of the expected number of digits",
    };
    let text = if v.len() == digits && v.iter().all(u8::is_ascii_digit) {
        String::from_utf8_lossy(v).into_owned()
    } else if v.len() * 2 == digits && v.iter().all(|x| x >> 4 < 10 && x & 0x0F < 10) {
        v.iter()
            .map(|x| format!("{}{}", x >> 4, x & 0x0F))
            .collect()
    } else {
        return Err(bad);
    };
    // Calendar sanity (month, day, and time of day when present): also what tells
    // four ASCII digits apart from a BCD date, since ASCII digits are valid BCD bytes.
    let num = |r: std::ops::Range<usize>| text.get(r).and_then(|x| x.parse::<u32>().ok());
    let ok = matches!(num(4..6), Some(1..=12))
        && matches!(num(6..8), Some(1..=31))
        && (digits < 14
            || (matches!(num(8..10), Some(0..=23))
                && matches!(num(10..12), Some(0..=59))
                && matches!(num(12..14), Some(0..=59))));
    if ok { Ok(text) } else { Err(bad) }
}

/// The A0 template: a count (02) then exactly that many `inner` entries.
fn field_list(
    file: &'static str,
    b: &[u8],
    f: &Field,
    inner: u32,
) -> Result<Vec<String>, LdsError> {
    let err = |tag, offset, problem| LdsError::Field {
        file,
        tag,
        offset,
        problem,
    };
    if tlv::primitive(&f.tlv).is_some() {
        return Err(err(f.tag, f.offset, "expected a constructed template"));
    }
    let h = tlv::header(b.get(f.offset..).unwrap_or_default()).map_err(ctx(file))?;
    let start = f.offset + h.header_len;
    let entries = walk(file, b, start, f.offset + h.total_len())?;
    let (count, rest) = match entries.split_first() {
        Some((c, rest)) if c.tag == COUNT => (c, rest),
        _ => return Err(err(COUNT, start, "template must start with the count (02)")),
    };
    let n = match field_bytes(file, count)? {
        [n] => usize::from(*n),
        _ => return Err(err(COUNT, count.offset, "count is not one byte")),
    };
    let mut out = Vec::with_capacity(rest.len());
    for e in rest {
        if e.tag != inner {
            return Err(err(e.tag, e.offset, "unexpected field in the template"));
        }
        out.push(field_text(file, e)?);
    }
    if out.len() != n {
        return Err(err(
            COUNT,
            count.offset,
            "count differs from the number of entries",
        ));
    }
    Ok(out)
}

/// Names the fields present, for `Debug` without values.
fn present(tags: &[(u32, bool)]) -> Vec<String> {
    tags.iter()
        .filter(|(_, p)| *p)
        .map(|(t, _)| format!("{t:X}"))
        .collect()
}

/// DG11: additional personal details. All personal data: `Debug` lists only which
/// fields are present.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Dg11 {
    /// 5F0E, in MRZ-like form (primary<<secondary).
    pub full_name: Option<String>,
    /// 5F0F entries of the A0 template.
    pub other_names: Vec<String>,
    /// 5F10
    pub personal_number: Option<String>,
    /// 5F2B, yyyymmdd.
    pub full_date_of_birth: Option<String>,
    /// 5F11
    pub place_of_birth: Option<String>,
    /// 5F42
    pub address: Option<String>,
    /// 5F12
    pub telephone: Option<String>,
    /// 5F13
    pub profession: Option<String>,
    /// 5F14
    pub title: Option<String>,
    /// 5F15
    pub personal_summary: Option<String>,
    /// 5F16: an image (JPEG/JPEG 2000), kept as bytes.
    pub proof_of_citizenship: Option<Vec<u8>>,
    /// 5F17
    pub other_valid_td_numbers: Option<String>,
    /// 5F18
    pub custody_information: Option<String>,
}

impl Dg11 {
    fn presence(&self) -> [(u32, bool); 13] {
        [
            (0x5F0E, self.full_name.is_some()),
            (TEMPLATE, !self.other_names.is_empty()),
            (0x5F10, self.personal_number.is_some()),
            (0x5F2B, self.full_date_of_birth.is_some()),
            (0x5F11, self.place_of_birth.is_some()),
            (0x5F42, self.address.is_some()),
            (0x5F12, self.telephone.is_some()),
            (0x5F13, self.profession.is_some()),
            (0x5F14, self.title.is_some()),
            (0x5F15, self.personal_summary.is_some()),
            (0x5F16, self.proof_of_citizenship.is_some()),
            (0x5F17, self.other_valid_td_numbers.is_some()),
            (0x5F18, self.custody_information.is_some()),
        ]
    }
}

impl fmt::Debug for Dg11 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Dg11(fields: {:?})", present(&self.presence()))
    }
}

const DG11_TAGS: [u32; 14] = [
    0x5F0E, 0x5F0F, TEMPLATE, 0x5F10, 0x5F2B, 0x5F11, 0x5F42, 0x5F12, 0x5F13, 0x5F14, 0x5F15,
    0x5F16, 0x5F17, 0x5F18,
];

pub fn parse_dg11(b: &[u8]) -> Result<Dg11, LdsError> {
    const F: &str = "DG11";
    let mut d = Dg11::default();
    for f in announced_fields(F, 0x6B, b, &DG11_TAGS, 0x5F0F)? {
        match f.tag {
            0x5F0E => d.full_name = Some(field_text(F, &f)?),
            TEMPLATE => d.other_names = field_list(F, b, &f, 0x5F0F)?,
            0x5F10 => d.personal_number = Some(field_text(F, &f)?),
            0x5F2B => d.full_date_of_birth = Some(field_digits(F, &f, 8)?),
            0x5F11 => d.place_of_birth = Some(field_text(F, &f)?),
            0x5F42 => d.address = Some(field_text(F, &f)?),
            0x5F12 => d.telephone = Some(field_text(F, &f)?),
            0x5F13 => d.profession = Some(field_text(F, &f)?),
            0x5F14 => d.title = Some(field_text(F, &f)?),
            0x5F15 => d.personal_summary = Some(field_text(F, &f)?),
            0x5F16 => d.proof_of_citizenship = Some(field_bytes(F, &f)?.to_vec()),
            0x5F17 => d.other_valid_td_numbers = Some(field_text(F, &f)?),
            0x5F18 => d.custody_information = Some(field_text(F, &f)?),
            // Announced 5F0F outside the A0 template: the template is required.
            tag => {
                return Err(LdsError::Field {
                    file: F,
                    tag,
                    offset: f.offset,
                    problem: "field must be inside the A0 template",
                });
            }
        }
    }
    Ok(d)
}

/// DG12: additional document details. `Debug` lists only which fields are present.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Dg12 {
    /// 5F19
    pub issuing_authority: Option<String>,
    /// 5F26, yyyymmdd.
    pub date_of_issue: Option<String>,
    /// 5F1A entries of the A0 template.
    pub other_persons: Vec<String>,
    /// 5F1B
    pub endorsements: Option<String>,
    /// 5F1C
    pub tax_exit_requirements: Option<String>,
    /// 5F1D: image of the front of the document.
    pub image_front: Option<Vec<u8>>,
    /// 5F1E: image of the rear of the document.
    pub image_rear: Option<Vec<u8>>,
    /// 5F55, yyyymmddhhmmss.
    pub personalisation_time: Option<String>,
    /// 5F56
    pub personalisation_device: Option<String>,
}

impl Dg12 {
    fn presence(&self) -> [(u32, bool); 9] {
        [
            (0x5F19, self.issuing_authority.is_some()),
            (0x5F26, self.date_of_issue.is_some()),
            (TEMPLATE, !self.other_persons.is_empty()),
            (0x5F1B, self.endorsements.is_some()),
            (0x5F1C, self.tax_exit_requirements.is_some()),
            (0x5F1D, self.image_front.is_some()),
            (0x5F1E, self.image_rear.is_some()),
            (0x5F55, self.personalisation_time.is_some()),
            (0x5F56, self.personalisation_device.is_some()),
        ]
    }
}

impl fmt::Debug for Dg12 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Dg12(fields: {:?})", present(&self.presence()))
    }
}

const DG12_TAGS: [u32; 10] = [
    0x5F19, 0x5F26, 0x5F1A, TEMPLATE, 0x5F1B, 0x5F1C, 0x5F1D, 0x5F1E, 0x5F55, 0x5F56,
];

pub fn parse_dg12(b: &[u8]) -> Result<Dg12, LdsError> {
    const F: &str = "DG12";
    let mut d = Dg12::default();
    for f in announced_fields(F, 0x6C, b, &DG12_TAGS, 0x5F1A)? {
        match f.tag {
            0x5F19 => d.issuing_authority = Some(field_text(F, &f)?),
            0x5F26 => d.date_of_issue = Some(field_digits(F, &f, 8)?),
            TEMPLATE => d.other_persons = field_list(F, b, &f, 0x5F1A)?,
            0x5F1B => d.endorsements = Some(field_text(F, &f)?),
            0x5F1C => d.tax_exit_requirements = Some(field_text(F, &f)?),
            0x5F1D => d.image_front = Some(field_bytes(F, &f)?.to_vec()),
            0x5F1E => d.image_rear = Some(field_bytes(F, &f)?.to_vec()),
            0x5F55 => d.personalisation_time = Some(field_digits(F, &f, 14)?),
            0x5F56 => d.personalisation_device = Some(field_text(F, &f)?),
            tag => {
                return Err(LdsError::Field {
                    file: F,
                    tag,
                    offset: f.offset,
                    problem: "field must be inside the A0 template",
                });
            }
        }
    }
    Ok(d)
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

    /// Tag list plus fields, in the given order; `None` values are left out.
    fn tagged(outer: u32, fields: Vec<(u32, Option<Vec<u8>>)>) -> Result<Vec<u8>, TlvError> {
        let mut list = Vec::new();
        let mut body = Vec::new();
        for (tag, v) in fields {
            let Some(v) = v else { continue };
            let tag_bytes = tag.to_be_bytes();
            let skip = if tag > 0xFF { 2 } else { 3 };
            list.extend_from_slice(tag_bytes.get(skip..).unwrap_or_default());
            body.extend(if tag == TEMPLATE {
                tlv::encode_constructed(TEMPLATE, &v)?
            } else {
                tlv::encode(tag, &v)?
            });
        }
        let mut c = tlv::encode(0x5C, &list)?;
        c.extend(body);
        tlv::encode_constructed(outer, &c)
    }

    /// Encoded children of an A0 template (count, then entries), or `None` when empty.
    fn template(inner: u32, entries: &[String]) -> Result<Option<Vec<u8>>, TlvError> {
        if entries.is_empty() {
            return Ok(None);
        }
        let n = u8::try_from(entries.len())
            .map_err(|_| TlvError::Malformed("more than 255 entries".into()))?;
        let mut v = tlv::encode(COUNT, &[n])?;
        for e in entries {
            v.extend(tlv::encode(inner, e.as_bytes())?);
        }
        Ok(Some(v))
    }

    fn text(s: &Option<String>) -> Option<Vec<u8>> {
        s.as_ref().map(|s| s.as_bytes().to_vec())
    }

    pub fn dg11(d: &Dg11) -> Result<Vec<u8>, TlvError> {
        tagged(
            0x6B,
            vec![
                (0x5F0E, text(&d.full_name)),
                (TEMPLATE, template(0x5F0F, &d.other_names)?),
                (0x5F10, text(&d.personal_number)),
                (0x5F2B, text(&d.full_date_of_birth)),
                (0x5F11, text(&d.place_of_birth)),
                (0x5F42, text(&d.address)),
                (0x5F12, text(&d.telephone)),
                (0x5F13, text(&d.profession)),
                (0x5F14, text(&d.title)),
                (0x5F15, text(&d.personal_summary)),
                (0x5F16, d.proof_of_citizenship.clone()),
                (0x5F17, text(&d.other_valid_td_numbers)),
                (0x5F18, text(&d.custody_information)),
            ],
        )
    }

    pub fn dg12(d: &Dg12) -> Result<Vec<u8>, TlvError> {
        tagged(
            0x6C,
            vec![
                (0x5F19, text(&d.issuing_authority)),
                (0x5F26, text(&d.date_of_issue)),
                (TEMPLATE, template(0x5F1A, &d.other_persons)?),
                (0x5F1B, text(&d.endorsements)),
                (0x5F1C, text(&d.tax_exit_requirements)),
                (0x5F1D, d.image_front.clone()),
                (0x5F1E, d.image_rear.clone()),
                (0x5F55, text(&d.personalisation_time)),
                (0x5F56, text(&d.personalisation_device)),
            ],
        )
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
