//! What ISO/IEC 19794-2:2005 and ANSI/INCITS 378-2004 finger minutiae records have in
//! common: finger views, minutiae, extended data blocks, and a bounds-checked reader
//! that names the byte offset and field of every problem.
//!
//! Templates are biometric data: no `Debug` impl here prints a coordinate or an angle.

use std::fmt;

/// Minutia type (the 2 high bits of the x word). `0b11` is reserved by both standards
/// and is rejected by the parsers.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum MinutiaType {
    /// `00`: other (neither an ending nor a bifurcation, or not determined).
    Other,
    /// `01`: ridge ending.
    RidgeEnding,
    /// `10`: ridge bifurcation.
    Bifurcation,
}

impl MinutiaType {
    pub const fn code(self) -> u16 {
        match self {
            MinutiaType::Other => 0,
            MinutiaType::RidgeEnding => 1,
            MinutiaType::Bifurcation => 2,
        }
    }

    pub const fn from_code(code: u16) -> Option<Self> {
        match code {
            0 => Some(MinutiaType::Other),
            1 => Some(MinutiaType::RidgeEnding),
            2 => Some(MinutiaType::Bifurcation),
            _ => None,
        }
    }
}

impl fmt::Debug for MinutiaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MinutiaType(..)")
    }
}

/// One minutia in the record's own pixel grid (origin top left, y downwards).
///
/// The angle is kept in the unit of the format it came from (`angle_code`), so a record
/// round-trips bit-exactly; [`Minutia::angle_degrees`] needs to know that unit.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Minutia {
    pub kind: MinutiaType,
    /// 14 bits.
    pub x: u16,
    /// 14 bits.
    pub y: u16,
    /// ISO: 0..=255 in 360/256° units; ANSI: 0..=179 in 2° units. Counter-clockwise
    /// from the x axis in both.
    pub angle_code: u8,
    /// 0..=100; 0 means "not reported".
    pub quality: u8,
}

impl Minutia {
    /// The angle in degrees, given the unit of the format the minutia belongs to.
    pub fn angle_degrees(&self, unit: AngleUnit) -> f32 {
        f32::from(self.angle_code) * unit.degrees()
    }
}

impl fmt::Debug for Minutia {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Biometric data: never printed.
        f.write_str("Minutia(..)")
    }
}

/// The unit of [`Minutia::angle_code`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AngleUnit {
    /// ISO/IEC 19794-2:2005: 360/256 = 1.40625° per step.
    Iso,
    /// ANSI/INCITS 378-2004: 2° per step (0..=179).
    Ansi,
}

impl AngleUnit {
    pub const fn degrees(self) -> f32 {
        match self {
            AngleUnit::Iso => 360.0 / 256.0,
            AngleUnit::Ansi => 2.0,
        }
    }

    /// The code nearest to `degrees` (any real number, wrapped into [0, 360)).
    pub fn code_for(self, degrees: f32) -> u8 {
        let steps = match self {
            AngleUnit::Iso => 256.0,
            AngleUnit::Ansi => 180.0,
        };
        let wrapped = degrees.rem_euclid(360.0);
        let code = (wrapped / self.degrees()).round();
        // 359.9° rounds up to a full turn: wrap it to 0.
        if !code.is_finite() || code >= steps {
            0
        } else {
            code as u8
        }
    }
}

/// Impression type (low nibble of the view byte). Both standards define 0–3; 8
/// (live-scan swipe) comes from the 19794 finger image family and is accepted as
/// well; every other value is reserved and rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImpressionType {
    LiveScanPlain,
    LiveScanRolled,
    NonLiveScanPlain,
    NonLiveScanRolled,
    LiveScanSwipe,
}

impl ImpressionType {
    pub const fn code(self) -> u8 {
        match self {
            ImpressionType::LiveScanPlain => 0,
            ImpressionType::LiveScanRolled => 1,
            ImpressionType::NonLiveScanPlain => 2,
            ImpressionType::NonLiveScanRolled => 3,
            ImpressionType::LiveScanSwipe => 8,
        }
    }

    pub const fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(ImpressionType::LiveScanPlain),
            1 => Some(ImpressionType::LiveScanRolled),
            2 => Some(ImpressionType::NonLiveScanPlain),
            3 => Some(ImpressionType::NonLiveScanRolled),
            8 => Some(ImpressionType::LiveScanSwipe),
            _ => None,
        }
    }
}

/// Finger position code, 0 (unknown) to 10 (left little), as in ISO/IEC 19794-2 and
/// ANSI/INCITS 378 (1 right thumb … 5 right little, 6 left thumb … 10 left little).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FingerPosition(u8);

impl FingerPosition {
    pub const UNKNOWN: FingerPosition = FingerPosition(0);
    pub const RIGHT_INDEX: FingerPosition = FingerPosition(2);
    pub const LEFT_INDEX: FingerPosition = FingerPosition(7);

    pub const fn new(code: u8) -> Option<Self> {
        if code <= 10 {
            Some(FingerPosition(code))
        } else {
            None
        }
    }

    pub const fn code(self) -> u8 {
        self.0
    }
}

/// One extended data block of a finger view (type id ≠ 0, opaque content).
///
/// On the wire: 2-byte type id, 2-byte length *including* these 4 header bytes (as
/// NIST's conformance tooling reads the standards; some open tools count only the
/// data), then the data.
#[derive(Clone, PartialEq, Eq)]
pub struct ExtendedBlock {
    /// 0x0001 ridge count, 0x0002 core and delta, 0x0100.. vendor defined.
    pub type_id: u16,
    pub data: Vec<u8>,
}

impl fmt::Debug for ExtendedBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Ridge counts and cores are biometric data too: only the shape is printed.
        f.debug_struct("ExtendedBlock")
            .field("type_id", &format_args!("{:#06x}", self.type_id))
            .field("len", &self.data.len())
            .finish()
    }
}

/// One finger view (one impression of one finger).
#[derive(Clone, PartialEq, Eq)]
pub struct FingerView {
    pub position: FingerPosition,
    /// 0..=15: distinguishes several views of the same finger in one record.
    pub view_number: u8,
    pub impression: ImpressionType,
    /// Finger quality 0..=100.
    pub quality: u8,
    /// At most 255 (the count is one byte).
    pub minutiae: Vec<Minutia>,
    pub extended: Vec<ExtendedBlock>,
}

impl FingerView {
    /// A plain live-scan view without extended data.
    pub fn new(position: FingerPosition, quality: u8, minutiae: Vec<Minutia>) -> Self {
        FingerView {
            position,
            view_number: 0,
            impression: ImpressionType::LiveScanPlain,
            quality,
            minutiae,
            extended: Vec::new(),
        }
    }

    /// Bytes this view takes on the wire (header, minutiae, extended data).
    pub(crate) fn wire_len(&self) -> usize {
        4 + 6 * self.minutiae.len()
            + 2
            + self
                .extended
                .iter()
                .map(|b| 4 + b.data.len())
                .sum::<usize>()
    }
}

impl fmt::Debug for FingerView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FingerView")
            .field("position", &self.position.code())
            .field("view_number", &self.view_number)
            .field("impression", &self.impression)
            .field("quality", &self.quality)
            .field("minutiae", &self.minutiae.len())
            .field("extended", &self.extended)
            .finish()
    }
}

/// Errors common to both record formats. Every variant names the byte offset and the
/// field, so a bad template from a vendor can be diagnosed from the log line alone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("record truncated at byte {offset}: {field} needs {needed} byte(s), {available} left")]
    Truncated {
        offset: usize,
        field: &'static str,
        needed: usize,
        available: usize,
    },
    #[error("bad format identifier at byte 0: expected \"FMR\\0\", found {found:02x?}")]
    BadMagic { found: [u8; 4] },
    #[error("unsupported version at byte 4: expected \" 20\\0\", found {found:02x?}")]
    BadVersion { found: [u8; 4] },
    #[error(
        "record length field at byte {offset} says {declared} byte(s), but the data is {actual} byte(s)"
    )]
    LengthMismatch {
        offset: usize,
        declared: u64,
        actual: usize,
    },
    #[error("{field} at byte {offset} is {value}: {reason}")]
    InvalidField {
        offset: usize,
        field: &'static str,
        value: u32,
        reason: &'static str,
    },
    #[error("minutia {index} of view {view} at byte {offset}: {what}")]
    InvalidMinutia {
        view: usize,
        index: usize,
        offset: usize,
        what: MinutiaProblem,
    },
    #[error(
        "view {view} at byte {offset} repeats finger position {position} view number {view_number}"
    )]
    DuplicateView {
        view: usize,
        offset: usize,
        position: u8,
        view_number: u8,
    },
    #[error(
        "extended data of view {view}: block at byte {offset} has length {length}, {reason} ({remaining} byte(s) left in the area)"
    )]
    BadExtendedBlock {
        view: usize,
        offset: usize,
        length: u16,
        remaining: usize,
        reason: &'static str,
    },
    #[error("{trailing} byte(s) after the last finger view at byte {offset}")]
    TrailingBytes { offset: usize, trailing: usize },
    /// Writing: the record cannot be represented in the format.
    #[error("cannot encode: {0}")]
    Unencodable(&'static str),
}

/// Why a minutia is invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MinutiaProblem {
    #[error("type bits are 11 (reserved)")]
    ReservedType,
    #[error("the 2 reserved bits above y are not zero")]
    ReservedBitsSet,
    #[error("x {x} is outside the image width {width}")]
    XOutside { x: u16, width: u16 },
    #[error("y {y} is outside the image height {height}")]
    YOutside { y: u16, height: u16 },
    #[error("angle code {0} is above 179 (2° units)")]
    AngleOutOfRange(u8),
    #[error("quality {0} is above 100")]
    QualityOutOfRange(u8),
}

/// A bounds-checked big-endian reader that knows where it is.
pub(crate) struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Reader { data, pos: 0 }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    pub(crate) fn bytes(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], RecordError> {
        if self.remaining() < n {
            return Err(RecordError::Truncated {
                offset: self.pos,
                field,
                needed: n,
                available: self.remaining(),
            });
        }
        let out = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, RecordError> {
        Ok(self.bytes(1, field)?[0])
    }

    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, RecordError> {
        let b = self.bytes(2, field)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, RecordError> {
        let b = self.bytes(4, field)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// Image geometry shared by both formats, validated the same way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageGeometry {
    pub width: u16,
    pub height: u16,
    /// Pixels per centimetre (197 ≈ 500 dpi).
    pub x_resolution: u16,
    pub y_resolution: u16,
}

pub(crate) fn nonzero(value: u16, offset: usize, field: &'static str) -> Result<u16, RecordError> {
    if value == 0 {
        Err(RecordError::InvalidField {
            offset,
            field,
            value: 0,
            reason: "must not be zero",
        })
    } else {
        Ok(value)
    }
}

/// Reads the per-view part both formats share (view header, minutiae, extended data).
/// `angle_unit` decides the angle range check.
pub(crate) fn read_view(
    r: &mut Reader<'_>,
    view: usize,
    geometry: ImageGeometry,
    angle_unit: AngleUnit,
) -> Result<FingerView, RecordError> {
    let at = r.pos();
    let position_code = r.u8("finger position")?;
    let position = FingerPosition::new(position_code).ok_or(RecordError::InvalidField {
        offset: at,
        field: "finger position",
        value: position_code.into(),
        reason: "must be 0..=10",
    })?;
    let vi = r.u8("view number / impression type")?;
    let impression = ImpressionType::from_code(vi & 0x0F).ok_or(RecordError::InvalidField {
        offset: at + 1,
        field: "impression type",
        value: (vi & 0x0F).into(),
        reason: "reserved (defined: 0-3, 8)",
    })?;
    let quality = r.u8("finger quality")?;
    if quality > 100 {
        return Err(RecordError::InvalidField {
            offset: at + 2,
            field: "finger quality",
            value: quality.into(),
            reason: "must be 0..=100",
        });
    }
    let count = usize::from(r.u8("number of minutiae")?);
    // Check the whole minutiae area up front so a lying count reports one clear error.
    if r.remaining() < 6 * count {
        return Err(RecordError::Truncated {
            offset: r.pos(),
            field: "minutiae",
            needed: 6 * count,
            available: r.remaining(),
        });
    }
    let mut minutiae = Vec::with_capacity(count);
    for index in 0..count {
        let offset = r.pos();
        let bad = |what| RecordError::InvalidMinutia {
            view,
            index,
            offset,
            what,
        };
        let xw = r.u16("minutia x")?;
        let yw = r.u16("minutia y")?;
        let angle_code = r.u8("minutia angle")?;
        let mq = r.u8("minutia quality")?;
        let kind = MinutiaType::from_code(xw >> 14).ok_or(bad(MinutiaProblem::ReservedType))?;
        if yw >> 14 != 0 {
            return Err(bad(MinutiaProblem::ReservedBitsSet));
        }
        let (x, y) = (xw & 0x3FFF, yw & 0x3FFF);
        if x >= geometry.width {
            return Err(bad(MinutiaProblem::XOutside {
                x,
                width: geometry.width,
            }));
        }
        if y >= geometry.height {
            return Err(bad(MinutiaProblem::YOutside {
                y,
                height: geometry.height,
            }));
        }
        if angle_unit == AngleUnit::Ansi && angle_code > 179 {
            return Err(bad(MinutiaProblem::AngleOutOfRange(angle_code)));
        }
        if mq > 100 {
            return Err(bad(MinutiaProblem::QualityOutOfRange(mq)));
        }
        minutiae.push(Minutia {
            kind,
            x,
            y,
            angle_code,
            quality: mq,
        });
    }
    let extended = read_extended(r, view)?;
    Ok(FingerView {
        position,
        view_number: vi >> 4,
        impression,
        quality,
        minutiae,
        extended,
    })
}

fn read_extended(r: &mut Reader<'_>, view: usize) -> Result<Vec<ExtendedBlock>, RecordError> {
    let area_at = r.pos();
    let area_len = usize::from(r.u16("extended data block length")?);
    if r.remaining() < area_len {
        return Err(RecordError::Truncated {
            offset: area_at + 2,
            field: "extended data area",
            needed: area_len,
            available: r.remaining(),
        });
    }
    let mut blocks = Vec::new();
    let mut left = area_len;
    while left > 0 {
        let offset = r.pos();
        if left < 4 {
            return Err(RecordError::BadExtendedBlock {
                view,
                offset,
                length: 0,
                remaining: left,
                reason: "no room for a 4-byte block header",
            });
        }
        let type_id = r.u16("extended data type id")?;
        let length = r.u16("extended data length")?;
        let bad = |reason| RecordError::BadExtendedBlock {
            view,
            offset,
            length,
            remaining: left,
            reason,
        };
        if type_id == 0 || (0x0003..=0x00FF).contains(&type_id) {
            return Err(RecordError::InvalidField {
                offset,
                field: "extended data type id",
                value: type_id.into(),
                reason: "reserved (defined: 0x0001, 0x0002, vendor 0x0100..)",
            });
        }
        if length < 4 {
            return Err(bad("shorter than its own 4-byte header"));
        }
        if usize::from(length) > left {
            return Err(bad("longer than the extended data area"));
        }
        let data = r.bytes(usize::from(length) - 4, "extended data")?.to_vec();
        left -= usize::from(length);
        blocks.push(ExtendedBlock { type_id, data });
    }
    Ok(blocks)
}

/// Writes the per-view part both formats share. The caller has validated the view.
pub(crate) fn write_view(out: &mut Vec<u8>, view: &FingerView) {
    out.push(view.position.code());
    out.push((view.view_number << 4) | view.impression.code());
    out.push(view.quality);
    out.push(view.minutiae.len() as u8);
    for m in &view.minutiae {
        out.extend_from_slice(&((m.kind.code() << 14) | (m.x & 0x3FFF)).to_be_bytes());
        out.extend_from_slice(&(m.y & 0x3FFF).to_be_bytes());
        out.push(m.angle_code);
        out.push(m.quality);
    }
    let area: usize = view.extended.iter().map(|b| 4 + b.data.len()).sum();
    out.extend_from_slice(&(area as u16).to_be_bytes());
    for b in &view.extended {
        out.extend_from_slice(&b.type_id.to_be_bytes());
        out.extend_from_slice(&((4 + b.data.len()) as u16).to_be_bytes());
        out.extend_from_slice(&b.data);
    }
}

/// Checks that `views` can be written: the same rules the parser enforces, so what we
/// write we also read back.
pub(crate) fn check_views(
    views: &[FingerView],
    geometry: ImageGeometry,
    angle_unit: AngleUnit,
) -> Result<(), RecordError> {
    let u = RecordError::Unencodable;
    if views.len() > 255 {
        return Err(u("more than 255 finger views"));
    }
    if geometry.width == 0
        || geometry.height == 0
        || geometry.x_resolution == 0
        || geometry.y_resolution == 0
    {
        return Err(u("image size and resolution must not be zero"));
    }
    for (i, v) in views.iter().enumerate() {
        if v.view_number > 15 {
            return Err(u("view number above 15"));
        }
        if v.quality > 100 {
            return Err(u("finger quality above 100"));
        }
        if v.minutiae.len() > 255 {
            return Err(u("more than 255 minutiae in a view"));
        }
        if views[..i]
            .iter()
            .any(|w| w.position == v.position && w.view_number == v.view_number)
        {
            return Err(u("two views share finger position and view number"));
        }
        for m in &v.minutiae {
            if m.x >= geometry.width || m.y >= geometry.height {
                return Err(u("minutia outside the image"));
            }
            if m.quality > 100 {
                return Err(u("minutia quality above 100"));
            }
            if angle_unit == AngleUnit::Ansi && m.angle_code > 179 {
                return Err(u("ANSI angle code above 179"));
            }
        }
        let area: usize = v.extended.iter().map(|b| 4 + b.data.len()).sum();
        if area > usize::from(u16::MAX) {
            return Err(u("extended data area above 65535 bytes"));
        }
        if v.extended
            .iter()
            .any(|b| b.type_id == 0 || (0x0003..=0x00FF).contains(&b.type_id))
        {
            return Err(u("reserved extended data type id"));
        }
    }
    Ok(())
}

/// Rejects a second view with the same (position, view number).
pub(crate) fn check_unique(
    views: &[FingerView],
    new: &FingerView,
    view: usize,
    offset: usize,
) -> Result<(), RecordError> {
    if views
        .iter()
        .any(|w| w.position == new.position && w.view_number == new.view_number)
    {
        return Err(RecordError::DuplicateView {
            view,
            offset,
            position: new.position.code(),
            view_number: new.view_number,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn angle_codes_round_and_wrap() {
        let cases: &[(AngleUnit, f32, u8)] = &[
            (AngleUnit::Iso, 0.0, 0),
            (AngleUnit::Iso, 1.40625, 1),
            (AngleUnit::Iso, -1.40625, 255),
            (AngleUnit::Iso, 359.9, 0),
            (AngleUnit::Iso, 720.0 + 90.0, 64),
            (AngleUnit::Ansi, 2.0, 1),
            (AngleUnit::Ansi, 358.0, 179),
            (AngleUnit::Ansi, 359.5, 0),
            (AngleUnit::Ansi, f32::NAN, 0),
        ];
        for &(unit, deg, code) in cases {
            assert_eq!(unit.code_for(deg), code, "{unit:?} {deg}");
        }
    }

    #[test]
    fn debug_never_prints_minutiae() {
        let m = Minutia {
            kind: MinutiaType::Bifurcation,
            x: 1234,
            y: 4321,
            angle_code: 77,
            quality: 99,
        };
        let v = FingerView::new(FingerPosition::RIGHT_INDEX, 80, vec![m; 3]);
        let s = format!("{v:?} {m:?}");
        for secret in ["1234", "4321", "77", "99"] {
            assert!(!s.contains(secret), "{s}");
        }
        assert!(s.contains("minutiae: 3"));
    }
}
