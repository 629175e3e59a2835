//! ISO/IEC 19794-2:2005 finger minutiae record format (record format, not the card
//! formats), read and written strictly per the standard.
//!
//! ```text
//! offset  size  field
//!  0      4     format identifier "FMR\0"
//!  4      4     version " 20\0"
//!  8      4     record length (big-endian), equal to the whole record
//! 12      2     capture equipment: 4-bit certification flag + 12-bit device type id
//! 14      2     image width (px)        16  2  image height (px)
//! 18      2     x resolution (px/cm)    20  2  y resolution (px/cm)
//! 22      1     number of finger views
//! 23      1     reserved (0)
//! per view:
//!         1     finger position 0..=10
//!         1     view number (high nibble) | impression type (low nibble)
//!         1     finger quality 0..=100
//!         1     number of minutiae
//!         6×n   type(2 bits)+x(14) | reserved(2)+y(14) | angle (360/256°) | quality
//!         2     extended data area length, then blocks (type id, length incl. header, data)
//! ```
//!
//! Known disagreements between open tools (we follow the standard): some writers put
//! the minutiae count of the only view at byte 27 but omit the certification nibble or
//! write a 2-byte length; some count the extended block length without its header.

use crate::record::{
    AngleUnit, FingerView, ImageGeometry, Reader, RecordError, check_unique, check_views, nonzero,
    read_view, write_view,
};
use std::fmt;

pub const MAGIC: [u8; 4] = *b"FMR\0";
pub const VERSION: [u8; 4] = *b" 20\0";
const HEADER_LEN: usize = 24;

/// An ISO/IEC 19794-2:2005 finger minutiae record.
#[derive(Clone, PartialEq, Eq)]
pub struct IsoRecord {
    /// 4 bits: 1 = the equipment is certified to the Appendix F image quality spec.
    pub certification: u8,
    /// 12 bits, vendor assigned; 0 = unreported.
    pub device_type: u16,
    pub geometry: ImageGeometry,
    pub views: Vec<FingerView>,
}

impl fmt::Debug for IsoRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IsoRecord")
            .field("certification", &self.certification)
            .field("device_type", &self.device_type)
            .field("geometry", &self.geometry)
            .field("views", &self.views)
            .finish()
    }
}

impl IsoRecord {
    /// Parses a whole record. Any deviation from the standard is an error naming the
    /// byte offset and the field; nothing panics, whatever the input.
    pub fn parse(data: &[u8]) -> Result<Self, RecordError> {
        let mut r = Reader::new(data);
        let magic = r.bytes(4, "format identifier")?;
        if magic != MAGIC {
            return Err(RecordError::BadMagic {
                found: [magic[0], magic[1], magic[2], magic[3]],
            });
        }
        let version = r.bytes(4, "version")?;
        if version != VERSION {
            return Err(RecordError::BadVersion {
                found: [version[0], version[1], version[2], version[3]],
            });
        }
        let declared = r.u32("record length")?;
        if u64::from(declared) != data.len() as u64 {
            return Err(RecordError::LengthMismatch {
                offset: 8,
                declared: declared.into(),
                actual: data.len(),
            });
        }
        let equipment = r.u16("capture equipment")?;
        let geometry = ImageGeometry {
            width: nonzero(r.u16("image width")?, 14, "image width")?,
            height: nonzero(r.u16("image height")?, 16, "image height")?,
            x_resolution: nonzero(r.u16("x resolution")?, 18, "x resolution")?,
            y_resolution: nonzero(r.u16("y resolution")?, 20, "y resolution")?,
        };
        let view_count = r.u8("number of finger views")?;
        let reserved = r.u8("reserved byte")?;
        if reserved != 0 {
            return Err(RecordError::InvalidField {
                offset: 23,
                field: "reserved byte",
                value: reserved.into(),
                reason: "must be zero",
            });
        }
        debug_assert_eq!(r.pos(), HEADER_LEN);
        let mut views: Vec<FingerView> = Vec::with_capacity(usize::from(view_count));
        for i in 0..usize::from(view_count) {
            let at = r.pos();
            let view = read_view(&mut r, i, geometry, AngleUnit::Iso)?;
            check_unique(&views, &view, i, at)?;
            views.push(view);
        }
        if r.remaining() != 0 {
            return Err(RecordError::TrailingBytes {
                offset: r.pos(),
                trailing: r.remaining(),
            });
        }
        Ok(IsoRecord {
            certification: (equipment >> 12) as u8,
            device_type: equipment & 0x0FFF,
            geometry,
            views,
        })
    }

    /// Encodes the record. Refuses what the parser would refuse.
    pub fn to_bytes(&self) -> Result<Vec<u8>, RecordError> {
        check_views(&self.views, self.geometry, AngleUnit::Iso)?;
        if self.certification > 0x0F || self.device_type > 0x0FFF {
            return Err(RecordError::Unencodable(
                "certification flag above 4 bits or device type above 12 bits",
            ));
        }
        let total = HEADER_LEN + self.views.iter().map(FingerView::wire_len).sum::<usize>();
        let total32 = u32::try_from(total)
            .map_err(|_| RecordError::Unencodable("record longer than 4 GiB"))?;
        let mut out = Vec::with_capacity(total);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&VERSION);
        out.extend_from_slice(&total32.to_be_bytes());
        out.extend_from_slice(
            &((u16::from(self.certification) << 12) | self.device_type).to_be_bytes(),
        );
        let g = self.geometry;
        for v in [g.width, g.height, g.x_resolution, g.y_resolution] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        out.push(self.views.len() as u8);
        out.push(0);
        for v in &self.views {
            write_view(&mut out, v);
        }
        debug_assert_eq!(out.len(), total);
        Ok(out)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::record::{
        ExtendedBlock, FingerPosition, ImpressionType, Minutia, MinutiaProblem, MinutiaType,
    };

    pub(crate) fn sample() -> IsoRecord {
        let m = |kind, x, y, a, q| Minutia {
            kind,
            x,
            y,
            angle_code: a,
            quality: q,
        };
        IsoRecord {
            certification: 1,
            device_type: 0x7A1,
            geometry: ImageGeometry {
                width: 400,
                height: 500,
                x_resolution: 197,
                y_resolution: 197,
            },
            views: vec![
                FingerView {
                    position: FingerPosition::RIGHT_INDEX,
                    view_number: 0,
                    impression: ImpressionType::LiveScanPlain,
                    quality: 80,
                    minutiae: vec![
                        m(MinutiaType::RidgeEnding, 10, 20, 0, 50),
                        m(MinutiaType::Bifurcation, 399, 499, 255, 100),
                        m(MinutiaType::Other, 0, 0, 128, 0),
                    ],
                    extended: vec![
                        ExtendedBlock {
                            type_id: 0x0001,
                            data: vec![0, 0, 1, 7],
                        },
                        ExtendedBlock {
                            type_id: 0x0102,
                            data: vec![],
                        },
                    ],
                },
                FingerView {
                    position: FingerPosition::LEFT_INDEX,
                    view_number: 3,
                    impression: ImpressionType::LiveScanSwipe,
                    quality: 0,
                    minutiae: vec![],
                    extended: vec![],
                },
            ],
        }
    }

    #[test]
    fn round_trips_bit_exactly() {
        let rec = sample();
        let bytes = rec.to_bytes().unwrap();
        assert_eq!(&bytes[..8], b"FMR\0 20\0");
        assert_eq!(
            u32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            bytes.len()
        );
        assert_eq!(&bytes[12..14], &[0x17, 0xA1], "certification + device type");
        let back = IsoRecord::parse(&bytes).unwrap();
        assert_eq!(back, rec);
        assert_eq!(back.to_bytes().unwrap(), bytes);
    }

    /// A minimal valid one-view record with `n` zeroed minutiae to corrupt.
    fn base(n: u8) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(b"FMR\0 20\0");
        let total = 24 + 4 + 6 * usize::from(n) + 2;
        b.extend_from_slice(&(total as u32).to_be_bytes());
        b.extend_from_slice(&[0, 0, 1, 144, 1, 244, 0, 197, 0, 197, 1, 0]);
        b.extend_from_slice(&[2, 0, 60, n]);
        for _ in 0..n {
            b.extend_from_slice(&[0x40, 10, 0, 10, 64, 50]);
        }
        b.extend_from_slice(&[0, 0]);
        b
    }

    fn fix_len(b: &mut [u8]) {
        let n = b.len() as u32;
        b[8..12].copy_from_slice(&n.to_be_bytes());
    }

    #[test]
    fn malformed_records_are_named_errors() {
        type Mutate = fn(&mut Vec<u8>);
        let cases: &[(&str, Mutate, &str)] = &[
            (
                "empty",
                |b| b.clear(),
                "truncated at byte 0: format identifier",
            ),
            ("magic", |b| b[0] = b'X', "bad format identifier"),
            ("version", |b| b[5] = b'3', "unsupported version"),
            (
                "ANSI-style 2-byte length",
                |b| b[8] = 1,
                "length field at byte 8",
            ),
            (
                "short by one",
                |b| {
                    b.pop();
                },
                "length field at byte 8",
            ),
            (
                "zero width",
                |b| {
                    b[14] = 0;
                    b[15] = 0
                },
                "image width at byte 14 is 0",
            ),
            (
                "zero x res",
                |b| {
                    b[18] = 0;
                    b[19] = 0
                },
                "x resolution at byte 18 is 0",
            ),
            (
                "reserved byte",
                |b| b[23] = 1,
                "reserved byte at byte 23 is 1",
            ),
            (
                "position 11",
                |b| b[24] = 11,
                "finger position at byte 24 is 11",
            ),
            (
                "impression 5",
                |b| b[25] = 5,
                "impression type at byte 25 is 5",
            ),
            (
                "quality 101",
                |b| b[26] = 101,
                "finger quality at byte 26 is 101",
            ),
            (
                "count too big",
                |b| {
                    b[27] = 3;
                },
                "minutiae needs 18 byte(s), 14 left",
            ),
            (
                "type 11",
                |b| b[28] |= 0xC0,
                "minutia 0 of view 0 at byte 28: type bits are 11",
            ),
            (
                "y reserved bits",
                |b| b[30] |= 0x40,
                "minutia 0 of view 0 at byte 28: the 2 reserved bits",
            ),
            (
                "x outside",
                |b| {
                    b[28] = 0x41;
                    b[29] = 0x90
                },
                "x 400 is outside the image width 400",
            ),
            (
                "y outside",
                |b| {
                    b[30] = 0x01;
                    b[31] = 0xF4
                },
                "y 500 is outside the image height 500",
            ),
            (
                "minutia quality",
                |b| b[33] = 200,
                "quality 200 is above 100",
            ),
            (
                "ext truncated",
                |b| {
                    let n = b.len();
                    b[n - 1] = 9;
                },
                "extended data area needs 9",
            ),
            (
                "two views declared",
                |b| b[22] = 2,
                "truncated at byte 42: finger position",
            ),
            (
                "trailing",
                |b| {
                    b.push(0);
                    fix_len(b)
                },
                "1 byte(s) after the last finger view at byte 42",
            ),
            (
                "ext header short",
                |b| {
                    b.extend_from_slice(&[0, 1]);
                    let n = b.len();
                    b[n - 4] = 0;
                    b[n - 3] = 2;
                    fix_len(b)
                },
                "no room for a 4-byte block header",
            ),
            (
                "ext block len 2",
                |b| {
                    b.extend_from_slice(&[0, 1, 0, 2]);
                    let n = b.len();
                    b[n - 5] = 4;
                    fix_len(b)
                },
                "shorter than its own 4-byte header",
            ),
            (
                "ext block too long",
                |b| {
                    b.extend_from_slice(&[0, 1, 0, 9]);
                    let n = b.len();
                    b[n - 5] = 4;
                    fix_len(b)
                },
                "longer than the extended data area",
            ),
            (
                "ext reserved type",
                |b| {
                    b.extend_from_slice(&[0, 0, 0, 4]);
                    let n = b.len();
                    b[n - 5] = 4;
                    fix_len(b)
                },
                "extended data type id at byte 42 is 0",
            ),
        ];
        for (name, mutate, expected) in cases {
            let mut b = base(2);
            mutate(&mut b);
            let err = IsoRecord::parse(&b).expect_err(name).to_string();
            assert!(err.contains(expected), "{name}: {err:?} lacks {expected:?}");
        }
        assert!(IsoRecord::parse(&base(2)).is_ok());
    }

    #[test]
    fn duplicate_views_are_rejected() {
        let mut rec = sample();
        rec.views[1].position = FingerPosition::RIGHT_INDEX;
        rec.views[1].view_number = 0;
        assert!(matches!(rec.to_bytes(), Err(RecordError::Unencodable(_))));
        rec.views[1].view_number = 1;
        let mut bytes = rec.to_bytes().unwrap();
        let second = 24 + rec.views[0].wire_len();
        bytes[second + 1] &= 0x0F; // view number 1 -> 0
        let err = IsoRecord::parse(&bytes).unwrap_err();
        assert_eq!(
            err,
            RecordError::DuplicateView {
                view: 1,
                offset: second,
                position: 2,
                view_number: 0
            }
        );
    }

    #[test]
    fn writer_refuses_what_the_parser_refuses() {
        let mut rec = sample();
        rec.views[0].minutiae[0].x = 400;
        assert!(rec.to_bytes().is_err());
        let mut rec = sample();
        rec.views[0].minutiae[0].quality = 101;
        assert!(rec.to_bytes().is_err());
        let mut rec = sample();
        rec.device_type = 0x1000;
        assert!(rec.to_bytes().is_err());
        let mut rec = sample();
        rec.views[0].minutiae = vec![rec.views[0].minutiae[0]; 256];
        assert!(rec.to_bytes().is_err());
    }

    #[test]
    fn debug_is_privacy_safe() {
        let s = format!("{:?}", sample());
        assert!(s.contains("minutiae: 3"), "{s}");
        assert!(!s.contains("499"), "{s}");
    }

    #[test]
    fn error_reports_minutia_problem() {
        let mut b = base(1);
        b[33] = 101;
        assert_eq!(
            IsoRecord::parse(&b).unwrap_err(),
            RecordError::InvalidMinutia {
                view: 0,
                index: 0,
                offset: 28,
                what: MinutiaProblem::QualityOutOfRange(101)
            }
        );
    }
}
