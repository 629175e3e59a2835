//! ANSI/INCITS 378-2004 finger minutiae record format, read and written strictly.
//!
//! ```text
//! offset  size  field
//!  0      4     format identifier "FMR\0"
//!  4      4     version " 20\0"
//!  8      2     record length; 0 here means a 4-byte length follows (records > 65535)
//!  +      4     CBEFF product identifier: 2-byte owner + 2-byte type
//!  +      2     capture equipment: 4-bit compliance + 12-bit equipment id
//!  +      8     width, height (px), x/y resolution (px/cm)
//!  +      1     number of finger views, 1 reserved byte (0)
//! per view: as ISO/IEC 19794-2, except the angle is in 2° units (0..=179).
//! ```
//!
//! The 6-byte length form is only valid for records that do not fit the 2-byte one;
//! a short record written with it is rejected (the standard leaves no choice).

use crate::record::{
    AngleUnit, FingerView, ImageGeometry, Reader, RecordError, check_unique, check_views, nonzero,
    read_view, write_view,
};
use std::fmt;

pub const MAGIC: [u8; 4] = *b"FMR\0";
pub const VERSION: [u8; 4] = *b" 20\0";

/// An ANSI/INCITS 378-2004 finger minutiae record.
#[derive(Clone, PartialEq, Eq)]
pub struct AnsiRecord {
    /// CBEFF product identifier owner (IBIA-registered vendor id).
    pub product_owner: u16,
    pub product_type: u16,
    /// 4 bits: compliance with Appendix F / PIV image specifications.
    pub compliance: u8,
    /// 12 bits.
    pub equipment_id: u16,
    pub geometry: ImageGeometry,
    pub views: Vec<FingerView>,
}

impl fmt::Debug for AnsiRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnsiRecord")
            .field("product_owner", &self.product_owner)
            .field("product_type", &self.product_type)
            .field("compliance", &self.compliance)
            .field("equipment_id", &self.equipment_id)
            .field("geometry", &self.geometry)
            .field("views", &self.views)
            .finish()
    }
}

impl AnsiRecord {
    /// Parses a whole record; errors name the byte offset and field. Never panics.
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
        let short = r.u16("record length")?;
        let (declared, length_at) = if short == 0 {
            let long = r.u32("record length (4-byte form)")?;
            if long <= u32::from(u16::MAX) {
                return Err(RecordError::InvalidField {
                    offset: 10,
                    field: "record length (4-byte form)",
                    value: long,
                    reason: "the 6-byte length form is only for records above 65535 bytes",
                });
            }
            (u64::from(long), 10)
        } else {
            (u64::from(short), 8)
        };
        if declared != data.len() as u64 {
            return Err(RecordError::LengthMismatch {
                offset: length_at,
                declared,
                actual: data.len(),
            });
        }
        let product_owner = r.u16("CBEFF product owner")?;
        let product_type = r.u16("CBEFF product type")?;
        let equipment = r.u16("capture equipment")?;
        let at = r.pos();
        let geometry = ImageGeometry {
            width: nonzero(r.u16("image width")?, at, "image width")?,
            height: nonzero(r.u16("image height")?, at + 2, "image height")?,
            x_resolution: nonzero(r.u16("x resolution")?, at + 4, "x resolution")?,
            y_resolution: nonzero(r.u16("y resolution")?, at + 6, "y resolution")?,
        };
        let view_count = r.u8("number of finger views")?;
        let reserved_at = r.pos();
        let reserved = r.u8("reserved byte")?;
        if reserved != 0 {
            return Err(RecordError::InvalidField {
                offset: reserved_at,
                field: "reserved byte",
                value: reserved.into(),
                reason: "must be zero",
            });
        }
        let mut views: Vec<FingerView> = Vec::with_capacity(usize::from(view_count));
        for i in 0..usize::from(view_count) {
            let at = r.pos();
            let view = read_view(&mut r, i, geometry, AngleUnit::Ansi)?;
            check_unique(&views, &view, i, at)?;
            views.push(view);
        }
        if r.remaining() != 0 {
            return Err(RecordError::TrailingBytes {
                offset: r.pos(),
                trailing: r.remaining(),
            });
        }
        Ok(AnsiRecord {
            product_owner,
            product_type,
            compliance: (equipment >> 12) as u8,
            equipment_id: equipment & 0x0FFF,
            geometry,
            views,
        })
    }

    /// Encodes the record (2-byte length when it fits, else the 6-byte form).
    pub fn to_bytes(&self) -> Result<Vec<u8>, RecordError> {
        check_views(&self.views, self.geometry, AngleUnit::Ansi)?;
        if self.compliance > 0x0F || self.equipment_id > 0x0FFF {
            return Err(RecordError::Unencodable(
                "compliance above 4 bits or equipment id above 12 bits",
            ));
        }
        let body = 4 + 2 + 8 + 2 + self.views.iter().map(FingerView::wire_len).sum::<usize>();
        let mut out = Vec::with_capacity(body + 14);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&VERSION);
        if 10 + body <= usize::from(u16::MAX) {
            out.extend_from_slice(&((10 + body) as u16).to_be_bytes());
        } else {
            let total = u32::try_from(14 + body)
                .map_err(|_| RecordError::Unencodable("record longer than 4 GiB"))?;
            out.extend_from_slice(&[0, 0]);
            out.extend_from_slice(&total.to_be_bytes());
        }
        out.extend_from_slice(&self.product_owner.to_be_bytes());
        out.extend_from_slice(&self.product_type.to_be_bytes());
        out.extend_from_slice(
            &((u16::from(self.compliance) << 12) | self.equipment_id).to_be_bytes(),
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
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{ExtendedBlock, FingerPosition, Minutia, MinutiaType};

    fn sample(minutiae: usize) -> AnsiRecord {
        let m = Minutia {
            kind: MinutiaType::Bifurcation,
            x: 100,
            y: 200,
            angle_code: 179,
            quality: 60,
        };
        AnsiRecord {
            product_owner: 0x0031,
            product_type: 0x0102,
            compliance: 0,
            equipment_id: 0x123,
            geometry: ImageGeometry {
                width: 300,
                height: 400,
                x_resolution: 197,
                y_resolution: 197,
            },
            views: vec![FingerView {
                extended: vec![ExtendedBlock {
                    type_id: 0x0002,
                    data: vec![0x41, 0, 1, 0, 2, 0],
                }],
                ..FingerView::new(FingerPosition::LEFT_INDEX, 70, vec![m; minutiae])
            }],
        }
    }

    #[test]
    fn round_trips_with_the_two_byte_length() {
        let rec = sample(3);
        let bytes = rec.to_bytes().unwrap();
        assert_eq!(
            u16::from_be_bytes([bytes[8], bytes[9]]) as usize,
            bytes.len()
        );
        assert_eq!(&bytes[10..14], &[0x00, 0x31, 0x01, 0x02]);
        assert_eq!(bytes[26], 7, "first view's finger position");
        assert_eq!(AnsiRecord::parse(&bytes).unwrap(), rec);
    }

    #[test]
    fn round_trips_with_the_six_byte_length() {
        // 255 minutiae × 6 bytes per view, 50 views: well above 65535 bytes.
        let mut rec = sample(255);
        let v = rec.views[0].clone();
        rec.views = (0..50u8)
            .map(|i| FingerView {
                position: FingerPosition::new(i % 11).unwrap(),
                view_number: i / 11,
                ..v.clone()
            })
            .collect();
        let bytes = rec.to_bytes().unwrap();
        assert!(bytes.len() > 65535);
        assert_eq!(&bytes[8..10], &[0, 0]);
        assert_eq!(
            u32::from_be_bytes([bytes[10], bytes[11], bytes[12], bytes[13]]) as usize,
            bytes.len()
        );
        assert_eq!(AnsiRecord::parse(&bytes).unwrap(), rec);
    }

    #[test]
    fn malformed_records_are_named_errors() {
        type Mutate = fn(&mut Vec<u8>);
        let good = sample(2).to_bytes().unwrap();
        // Offsets: 26 view header, 30 first minutia, 34 its angle.
        let cases: &[(&str, Mutate, &str)] = &[
            ("magic", |b| b[3] = 1, "bad format identifier"),
            (
                "ISO 4-byte length",
                |b| {
                    b[8] = 0;
                    b[9] = 0
                },
                "length field at byte 10 says",
            ),
            ("length off", |b| b[9] += 1, "length field at byte 8 says"),
            (
                "zero height",
                |b| {
                    b[18] = 0;
                    b[19] = 0
                },
                "image height at byte 18 is 0",
            ),
            ("reserved", |b| b[25] = 7, "reserved byte at byte 25 is 7"),
            (
                "angle 180",
                |b| b[34] = 180,
                "minutia 0 of view 0 at byte 30: angle code 180 is above 179",
            ),
            (
                "position",
                |b| b[26] = 12,
                "finger position at byte 26 is 12",
            ),
            ("truncated header", |b| b.truncate(12), "length field"),
        ];
        for (name, mutate, expected) in cases {
            let mut b = good.clone();
            mutate(&mut b);
            let err = AnsiRecord::parse(&b).expect_err(name).to_string();
            assert!(err.contains(expected), "{name}: {err:?} lacks {expected:?}");
        }
    }

    #[test]
    fn an_iso_record_is_not_an_ansi_record() {
        let iso = crate::iso19794_2::tests::sample().to_bytes().unwrap();
        assert!(AnsiRecord::parse(&iso).is_err());
    }
}
