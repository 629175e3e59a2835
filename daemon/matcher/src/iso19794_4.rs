//! ISO/IEC 19794-4:2005 finger image records, read and written strictly per the
//! standard, and decoded to 8-bit grayscale for the minutiae extractor.
//!
//! ```text
//! general header (32 bytes)
//!  0   4  format identifier "FIR\0"
//!  4   4  version " 10\0"
//!  8   6  record length (big-endian), equal to the whole record
//! 14   2  capture device id
//! 16   2  image acquisition level (10, 20, 30, 31, 40, 41)
//! 18   1  number of finger/palm images (≥ 1)
//! 19   1  scale units (1 = pixels per inch, 2 = pixels per centimetre)
//! 20   2  horizontal scan resolution     22  2  vertical scan resolution
//! 24   2  horizontal image resolution    26  2  vertical image resolution
//!         (image resolution ≤ scan resolution)
//! 28   1  pixel depth (1..=16 bits)
//! 29   1  compression: 0 uncompressed, 1 uncompressed bit-packed, 2 WSQ, 3 JPEG,
//!         4 JPEG 2000, 5 PNG
//! 30   2  reserved (0)
//! per image (14-byte header, then the image data)
//!      4  length of the finger data block, header included
//!      1  finger/palm position (0..=15 fingers, 20..=36 palms)
//!      1  count of views (≥ 1)   1  view number (1..=count)
//!      1  image quality 0..=100  1  impression type (0..=3, 8)
//!      2  horizontal line length (px)   2  vertical line length (px)
//!      1  reserved (0)
//! ```
//!
//! Uncompressed data must have exactly the size the header implies: one byte per pixel
//! up to 8 bits (values below 2^depth), two big-endian bytes above; bit-packed rows
//! are `depth` bits per pixel, each row padded to a whole byte. Compressed data is kept
//! opaque by the parser; [`FirRecord::gray`] decodes PNG (the `png` crate) and JPEG
//! (`zune-jpeg`), both pure Rust and maintained by the image-rs / zune projects, and
//! refuses WSQ and JPEG 2000 with [`ImageError::UnsupportedCompression`]: no maintained
//! pure-Rust decoder exists for either (the JPEG 2000 crates bind OpenJPEG's C code).
//!
//! No `Debug` impl here prints image data: finger images are biometric data.

use crate::record::{ImpressionType, Reader, RecordError};
use std::fmt;

pub const MAGIC: [u8; 4] = *b"FIR\0";
pub const VERSION: [u8; 4] = *b" 10\0";
pub const HEADER_LEN: usize = 32;
pub const IMAGE_HEADER_LEN: usize = 14;
/// Image acquisition levels of the standard's table (setting levels).
pub const ACQUISITION_LEVELS: [u16; 6] = [10, 20, 30, 31, 40, 41];

/// Errors reading or writing a finger image record. Every variant names the byte
/// offset and the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FirError {
    #[error("record truncated at byte {offset}: {field} needs {needed} byte(s), {available} left")]
    Truncated {
        offset: usize,
        field: &'static str,
        needed: usize,
        available: usize,
    },
    #[error("bad format identifier at byte 0: expected \"FIR\\0\", found {found:02x?}")]
    BadMagic { found: [u8; 4] },
    #[error("unsupported version at byte 4: expected \" 10\\0\", found {found:02x?}")]
    BadVersion { found: [u8; 4] },
    #[error("{field} at byte {offset} says {declared} byte(s), but {actual} byte(s) {what}")]
    LengthMismatch {
        offset: usize,
        field: &'static str,
        declared: u64,
        actual: u64,
        what: &'static str,
    },
    #[error("{field} at byte {offset} is {value}: {reason}")]
    InvalidField {
        offset: usize,
        field: &'static str,
        value: u32,
        reason: &'static str,
    },
    #[error("image {image} at byte {offset} repeats position {position} view number {view}")]
    DuplicateView {
        image: usize,
        offset: usize,
        position: u8,
        view: u8,
    },
    #[error("{trailing} byte(s) after the last image at byte {offset}")]
    TrailingBytes { offset: usize, trailing: usize },
    /// Writing: the record cannot be represented in the format.
    #[error("cannot encode: {0}")]
    Unencodable(&'static str),
}

impl From<RecordError> for FirError {
    fn from(e: RecordError) -> Self {
        match e {
            RecordError::Truncated {
                offset,
                field,
                needed,
                available,
            } => FirError::Truncated {
                offset,
                field,
                needed,
                available,
            },
            // The shared reader only ever reports truncation.
            _ => FirError::Unencodable("unexpected reader error"),
        }
    }
}

/// Why an image could not be turned into grayscale pixels.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ImageError {
    #[error("no image {0} in the record")]
    NoSuchImage(usize),
    #[error("compression {0:?} is not decoded here (no maintained pure-Rust decoder)")]
    UnsupportedCompression(Compression),
    #[error("{depth}-bit {what} images are not decoded here")]
    UnsupportedDepth { depth: u8, what: &'static str },
    #[error("image {image} (data at byte {offset}): {what} data does not decode: {reason}")]
    Decode {
        image: usize,
        offset: usize,
        what: &'static str,
        reason: String,
    },
    #[error(
        "image {image}: decoded {what} is {got_w}x{got_h} px, the header says {want_w}x{want_h}"
    )]
    SizeMismatch {
        image: usize,
        what: &'static str,
        got_w: u32,
        got_h: u32,
        want_w: u16,
        want_h: u16,
    },
    #[error("image resolution {x} x {y} ppi: pixels that are not square are not resampled here")]
    NonSquarePixels { x: f32, y: f32 },
    #[error("pixel at byte {offset} is {value}, above the {depth}-bit range")]
    PixelOutOfRange {
        offset: usize,
        value: u16,
        depth: u8,
    },
}

/// Image compression algorithm (byte 29).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    Uncompressed,
    UncompressedBitPacked,
    Wsq,
    Jpeg,
    Jpeg2000,
    Png,
}

impl Compression {
    pub const fn code(self) -> u8 {
        match self {
            Compression::Uncompressed => 0,
            Compression::UncompressedBitPacked => 1,
            Compression::Wsq => 2,
            Compression::Jpeg => 3,
            Compression::Jpeg2000 => 4,
            Compression::Png => 5,
        }
    }

    pub const fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => Compression::Uncompressed,
            1 => Compression::UncompressedBitPacked,
            2 => Compression::Wsq,
            3 => Compression::Jpeg,
            4 => Compression::Jpeg2000,
            5 => Compression::Png,
            _ => return None,
        })
    }
}

/// Scale units of the resolutions (byte 19).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScaleUnits {
    PixelsPerInch,
    PixelsPerCentimetre,
}

impl ScaleUnits {
    pub const fn code(self) -> u8 {
        match self {
            ScaleUnits::PixelsPerInch => 1,
            ScaleUnits::PixelsPerCentimetre => 2,
        }
    }
}

/// One finger (or palm) image of a record.
#[derive(Clone, PartialEq, Eq)]
pub struct FingerImage {
    /// 0..=15 finger positions (0 unknown, 1–10 single fingers, 11–15 multi-finger),
    /// 20..=36 palm positions.
    pub position: u8,
    pub view_count: u8,
    pub view_number: u8,
    /// 0..=100.
    pub quality: u8,
    pub impression: ImpressionType,
    /// Horizontal / vertical line length in pixels.
    pub width: u16,
    pub height: u16,
    /// Raw image data in the record's compression.
    pub data: Vec<u8>,
}

impl fmt::Debug for FingerImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Biometric data: the shape only.
        f.debug_struct("FingerImage")
            .field("position", &self.position)
            .field("view", &(self.view_number, self.view_count))
            .field("quality", &self.quality)
            .field("impression", &self.impression)
            .field("size", &(self.width, self.height))
            .field("data_len", &self.data.len())
            .finish()
    }
}

/// An ISO/IEC 19794-4:2005 finger image record.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct FirRecord {
    pub device_id: u16,
    pub acquisition_level: u16,
    pub scale_units: ScaleUnits,
    /// (horizontal, vertical) in `scale_units`.
    pub scan_resolution: (u16, u16),
    pub image_resolution: (u16, u16),
    /// 1..=16.
    pub pixel_depth: u8,
    pub compression: Compression,
    pub images: Vec<FingerImage>,
}

/// 8-bit grayscale pixels, row-major, 0 = black, with the resolution in pixels per inch.
#[derive(Clone, PartialEq)]
pub struct GrayImage {
    pub width: usize,
    pub height: usize,
    pub ppi: f32,
    pub pixels: Vec<u8>,
}

impl fmt::Debug for GrayImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrayImage")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("ppi", &self.ppi)
            .finish()
    }
}

fn invalid(offset: usize, field: &'static str, value: u32, reason: &'static str) -> FirError {
    FirError::InvalidField {
        offset,
        field,
        value,
        reason,
    }
}

/// Bytes an uncompressed image of this shape takes, or `None` for compressed data.
fn uncompressed_len(compression: Compression, depth: u8, w: u16, h: u16) -> Option<u64> {
    let (w, h, d) = (u64::from(w), u64::from(h), u64::from(depth));
    match compression {
        Compression::Uncompressed => Some(w * h * d.div_ceil(8)),
        Compression::UncompressedBitPacked => Some((w * d).div_ceil(8) * h),
        _ => None,
    }
}

fn position_ok(p: u8) -> bool {
    p <= 15 || (20..=36).contains(&p)
}

impl FirRecord {
    /// Parses a whole record. Any deviation from the standard is an error naming the
    /// byte offset and the field; nothing panics, whatever the input.
    pub fn parse(data: &[u8]) -> Result<Self, FirError> {
        let mut r = Reader::new(data);
        let magic = r.bytes(4, "format identifier")?;
        if magic != MAGIC {
            return Err(FirError::BadMagic {
                found: [magic[0], magic[1], magic[2], magic[3]],
            });
        }
        let version = r.bytes(4, "version")?;
        if version != VERSION {
            return Err(FirError::BadVersion {
                found: [version[0], version[1], version[2], version[3]],
            });
        }
        let len = r.bytes(6, "record length")?;
        let declared = len.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        if declared != data.len() as u64 {
            return Err(FirError::LengthMismatch {
                offset: 8,
                field: "record length",
                declared,
                actual: data.len() as u64,
                what: "were given",
            });
        }
        let device_id = r.u16("capture device id")?;
        let acquisition_level = r.u16("image acquisition level")?;
        if !ACQUISITION_LEVELS.contains(&acquisition_level) {
            return Err(invalid(
                16,
                "image acquisition level",
                acquisition_level.into(),
                "must be 10, 20, 30, 31, 40 or 41",
            ));
        }
        let count = r.u8("number of images")?;
        if count == 0 {
            return Err(invalid(18, "number of images", 0, "must be at least 1"));
        }
        let scale = r.u8("scale units")?;
        let scale_units = match scale {
            1 => ScaleUnits::PixelsPerInch,
            2 => ScaleUnits::PixelsPerCentimetre,
            v => return Err(invalid(19, "scale units", v.into(), "must be 1 or 2")),
        };
        let mut res = [0u16; 4];
        const RES: [&str; 4] = [
            "horizontal scan resolution",
            "vertical scan resolution",
            "horizontal image resolution",
            "vertical image resolution",
        ];
        for (i, v) in res.iter_mut().enumerate() {
            *v = r.u16(RES[i])?;
            if *v == 0 {
                return Err(invalid(20 + 2 * i, RES[i], 0, "must not be zero"));
            }
        }
        for i in 0..2 {
            if res[i + 2] > res[i] {
                return Err(invalid(
                    24 + 2 * i,
                    RES[i + 2],
                    res[i + 2].into(),
                    "must not exceed the scan resolution",
                ));
            }
        }
        let pixel_depth = r.u8("pixel depth")?;
        if !(1..=16).contains(&pixel_depth) {
            return Err(invalid(
                28,
                "pixel depth",
                pixel_depth.into(),
                "must be 1..=16 bits",
            ));
        }
        let cc = r.u8("compression algorithm")?;
        let compression = Compression::from_code(cc).ok_or(invalid(
            29,
            "compression algorithm",
            cc.into(),
            "must be 0..=5",
        ))?;
        let reserved = r.u16("reserved bytes")?;
        if reserved != 0 {
            return Err(invalid(
                30,
                "reserved bytes",
                reserved.into(),
                "must be zero",
            ));
        }
        debug_assert_eq!(r.pos(), HEADER_LEN);
        let mut images: Vec<FingerImage> = Vec::with_capacity(usize::from(count).min(16));
        for i in 0..usize::from(count) {
            let at = r.pos();
            let block = r.u32("finger data block length")?;
            if (block as usize) < IMAGE_HEADER_LEN {
                return Err(invalid(
                    at,
                    "finger data block length",
                    block,
                    "shorter than the 14-byte image header",
                ));
            }
            let position = r.u8("finger position")?;
            if !position_ok(position) {
                return Err(invalid(
                    at + 4,
                    "finger position",
                    position.into(),
                    "must be 0..=15 or 20..=36",
                ));
            }
            let view_count = r.u8("count of views")?;
            if view_count == 0 {
                return Err(invalid(at + 5, "count of views", 0, "must be at least 1"));
            }
            let view_number = r.u8("view number")?;
            if view_number == 0 || view_number > view_count {
                return Err(invalid(
                    at + 6,
                    "view number",
                    view_number.into(),
                    "must be 1..=count of views",
                ));
            }
            let quality = r.u8("image quality")?;
            if quality > 100 {
                return Err(invalid(
                    at + 7,
                    "image quality",
                    quality.into(),
                    "must be 0..=100",
                ));
            }
            let it = r.u8("impression type")?;
            let impression = ImpressionType::from_code(it).ok_or(invalid(
                at + 8,
                "impression type",
                it.into(),
                "reserved (defined: 0-3, 8)",
            ))?;
            let width = r.u16("horizontal line length")?;
            if width == 0 {
                return Err(invalid(
                    at + 9,
                    "horizontal line length",
                    0,
                    "must not be zero",
                ));
            }
            let height = r.u16("vertical line length")?;
            if height == 0 {
                return Err(invalid(
                    at + 11,
                    "vertical line length",
                    0,
                    "must not be zero",
                ));
            }
            let reserved = r.u8("image reserved byte")?;
            if reserved != 0 {
                return Err(invalid(
                    at + 13,
                    "image reserved byte",
                    reserved.into(),
                    "must be zero",
                ));
            }
            let data_len = block as usize - IMAGE_HEADER_LEN;
            if let Some(expected) = uncompressed_len(compression, pixel_depth, width, height)
                && expected != data_len as u64
            {
                return Err(FirError::LengthMismatch {
                    offset: at,
                    field: "finger data block length",
                    declared: block.into(),
                    actual: expected + IMAGE_HEADER_LEN as u64,
                    what: "are implied by the image size and pixel depth",
                });
            }
            if data_len == 0 {
                return Err(invalid(
                    at,
                    "finger data block length",
                    block,
                    "no image data after the header",
                ));
            }
            let pixels = r.bytes(data_len, "image data")?;
            if images
                .iter()
                .any(|o| o.position == position && o.view_number == view_number)
            {
                return Err(FirError::DuplicateView {
                    image: i,
                    offset: at,
                    position,
                    view: view_number,
                });
            }
            images.push(FingerImage {
                position,
                view_count,
                view_number,
                quality,
                impression,
                width,
                height,
                data: pixels.to_vec(),
            });
        }
        if r.remaining() != 0 {
            return Err(FirError::TrailingBytes {
                offset: r.pos(),
                trailing: r.remaining(),
            });
        }
        Ok(FirRecord {
            device_id,
            acquisition_level,
            scale_units,
            scan_resolution: (res[0], res[1]),
            image_resolution: (res[2], res[3]),
            pixel_depth,
            compression,
            images,
        })
    }

    /// Encodes the record. Refuses what the parser would refuse.
    pub fn to_bytes(&self) -> Result<Vec<u8>, FirError> {
        let u = FirError::Unencodable;
        if !ACQUISITION_LEVELS.contains(&self.acquisition_level) {
            return Err(u("image acquisition level not in the standard's table"));
        }
        if self.images.is_empty() || self.images.len() > 255 {
            return Err(u("a record holds 1..=255 images"));
        }
        let (s, i) = (self.scan_resolution, self.image_resolution);
        if s.0 == 0 || s.1 == 0 || i.0 == 0 || i.1 == 0 || i.0 > s.0 || i.1 > s.1 {
            return Err(u(
                "resolutions must be non-zero, image resolution ≤ scan resolution",
            ));
        }
        if !(1..=16).contains(&self.pixel_depth) {
            return Err(u("pixel depth must be 1..=16"));
        }
        let mut out = Vec::new();
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&VERSION);
        out.extend_from_slice(&[0; 6]); // length, patched below
        out.extend_from_slice(&self.device_id.to_be_bytes());
        out.extend_from_slice(&self.acquisition_level.to_be_bytes());
        out.push(self.images.len() as u8);
        out.push(self.scale_units.code());
        for v in [s.0, s.1, i.0, i.1] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        out.push(self.pixel_depth);
        out.push(self.compression.code());
        out.extend_from_slice(&[0, 0]);
        for (n, img) in self.images.iter().enumerate() {
            if !position_ok(img.position)
                || img.view_count == 0
                || img.view_number == 0
                || img.view_number > img.view_count
                || img.quality > 100
                || img.width == 0
                || img.height == 0
                || img.data.is_empty()
            {
                return Err(u(
                    "image position, views, quality, size or data out of range",
                ));
            }
            if let Some(expected) =
                uncompressed_len(self.compression, self.pixel_depth, img.width, img.height)
                && expected != img.data.len() as u64
            {
                return Err(u("uncompressed data size does not match the image size"));
            }
            if self.images[..n]
                .iter()
                .any(|o| o.position == img.position && o.view_number == img.view_number)
            {
                return Err(u("two images with the same position and view number"));
            }
            let block = u32::try_from(IMAGE_HEADER_LEN + img.data.len())
                .map_err(|_| u("image data above 4 GiB"))?;
            out.extend_from_slice(&block.to_be_bytes());
            out.extend_from_slice(&[
                img.position,
                img.view_count,
                img.view_number,
                img.quality,
                img.impression.code(),
            ]);
            out.extend_from_slice(&img.width.to_be_bytes());
            out.extend_from_slice(&img.height.to_be_bytes());
            out.push(0);
            out.extend_from_slice(&img.data);
        }
        let len = out.len() as u64;
        if len >= 1 << 48 {
            return Err(u("record above 2^48 bytes"));
        }
        out[8..14].copy_from_slice(&len.to_be_bytes()[2..]);
        Ok(out)
    }

    /// A one-image record of 8-bit uncompressed grayscale at `ppi` (scan and image
    /// resolution alike), as a sensor that delivers images would send it.
    pub fn from_gray(image: &GrayImage, position: u8, quality: u8) -> Result<Self, FirError> {
        let w = u16::try_from(image.width).map_err(|_| FirError::Unencodable("width"))?;
        let h = u16::try_from(image.height).map_err(|_| FirError::Unencodable("height"))?;
        if image.pixels.len() != image.width * image.height {
            return Err(FirError::Unencodable(
                "pixel buffer does not match the size",
            ));
        }
        let ppi = image.ppi.round();
        if !(1.0..=65535.0).contains(&ppi) {
            return Err(FirError::Unencodable("resolution"));
        }
        Ok(FirRecord {
            device_id: 0,
            acquisition_level: 31,
            scale_units: ScaleUnits::PixelsPerInch,
            scan_resolution: (ppi as u16, ppi as u16),
            image_resolution: (ppi as u16, ppi as u16),
            pixel_depth: 8,
            compression: Compression::Uncompressed,
            images: vec![FingerImage {
                position,
                view_count: 1,
                view_number: 1,
                quality,
                impression: ImpressionType::LiveScanPlain,
                width: w,
                height: h,
                data: image.pixels.clone(),
            }],
        })
    }

    /// Image resolution in pixels per inch (horizontal, vertical).
    pub fn ppi(&self) -> (f32, f32) {
        let k = match self.scale_units {
            ScaleUnits::PixelsPerInch => 1.0,
            ScaleUnits::PixelsPerCentimetre => 2.54,
        };
        (
            f32::from(self.image_resolution.0) * k,
            f32::from(self.image_resolution.1) * k,
        )
    }

    /// Image `index` as 8-bit grayscale (depths below 8 bits are stretched to 0..=255,
    /// 16-bit data keeps its high byte). WSQ and JPEG 2000 are refused.
    pub fn gray(&self, index: usize) -> Result<GrayImage, ImageError> {
        let img = self
            .images
            .get(index)
            .ok_or(ImageError::NoSuchImage(index))?;
        // Offset of this image's data in the encoded record, for error messages.
        let offset = HEADER_LEN
            + self.images[..index]
                .iter()
                .map(|i| IMAGE_HEADER_LEN + i.data.len())
                .sum::<usize>()
            + IMAGE_HEADER_LEN;
        let (w, h) = (usize::from(img.width), usize::from(img.height));
        let depth = self.pixel_depth;
        let (ppi_x, ppi_y) = self.ppi();
        if (ppi_x - ppi_y).abs() > 0.5 {
            return Err(ImageError::NonSquarePixels { x: ppi_x, y: ppi_y });
        }
        let pixels = match self.compression {
            Compression::Uncompressed if depth <= 8 => {
                let max = (1u16 << depth) - 1;
                let mut out = Vec::with_capacity(w * h);
                for (k, &v) in img.data.iter().enumerate() {
                    if u16::from(v) > max {
                        return Err(ImageError::PixelOutOfRange {
                            offset: offset + k,
                            value: v.into(),
                            depth,
                        });
                    }
                    out.push((u32::from(v) * 255 / u32::from(max)) as u8);
                }
                out
            }
            Compression::Uncompressed => {
                let mut out = Vec::with_capacity(w * h);
                for (k, c) in img.data.chunks_exact(2).enumerate() {
                    let v = u16::from_be_bytes([c[0], c[1]]);
                    if depth < 16 && v >> depth != 0 {
                        return Err(ImageError::PixelOutOfRange {
                            offset: offset + 2 * k,
                            value: v,
                            depth,
                        });
                    }
                    out.push((u32::from(v) * 255 / ((1u32 << depth) - 1)) as u8);
                }
                out
            }
            Compression::UncompressedBitPacked if depth <= 8 => {
                let row_bytes = (w * usize::from(depth)).div_ceil(8);
                let max = (1u32 << depth) - 1;
                let mut out = Vec::with_capacity(w * h);
                for row in img.data.chunks_exact(row_bytes) {
                    for x in 0..w {
                        let bit = x * usize::from(depth);
                        let mut v = 0u32;
                        for b in bit..bit + usize::from(depth) {
                            v = (v << 1) | u32::from((row[b / 8] >> (7 - b % 8)) & 1);
                        }
                        out.push((v * 255 / max) as u8);
                    }
                }
                out
            }
            Compression::UncompressedBitPacked => {
                return Err(ImageError::UnsupportedDepth {
                    depth,
                    what: "bit-packed",
                });
            }
            Compression::Png => decode_png(img, index, offset)?,
            Compression::Jpeg => decode_jpeg(img, index, offset)?,
            c @ (Compression::Wsq | Compression::Jpeg2000) => {
                return Err(ImageError::UnsupportedCompression(c));
            }
        };
        Ok(GrayImage {
            width: w,
            height: h,
            ppi: ppi_x,
            pixels,
        })
    }
}

fn check_size(
    img: &FingerImage,
    index: usize,
    what: &'static str,
    w: u32,
    h: u32,
) -> Result<(), ImageError> {
    if w != u32::from(img.width) || h != u32::from(img.height) {
        return Err(ImageError::SizeMismatch {
            image: index,
            what,
            got_w: w,
            got_h: h,
            want_w: img.width,
            want_h: img.height,
        });
    }
    Ok(())
}

fn decode_png(img: &FingerImage, index: usize, offset: usize) -> Result<Vec<u8>, ImageError> {
    let fail = |reason: String| ImageError::Decode {
        image: index,
        offset,
        what: "PNG",
        reason,
    };
    // Limits: never allocate more than the header's own size allows.
    let limits = png::Limits {
        bytes: usize::from(img.width) * usize::from(img.height) * 8 + 1024,
    };
    let mut decoder = png::Decoder::new_with_limits(std::io::Cursor::new(&img.data[..]), limits);
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().map_err(|e| fail(e.to_string()))?;
    let (w, h) = {
        let info = reader.info();
        (info.width, info.height)
    };
    check_size(img, index, "PNG", w, h)?;
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| fail("image too large".into()))?;
    let mut buf = vec![0; size];
    let frame = reader
        .next_frame(&mut buf)
        .map_err(|e| fail(e.to_string()))?;
    let n = (w * h) as usize;
    let data = &buf[..frame.buffer_size()];
    Ok(match frame.color_type {
        png::ColorType::Grayscale => data[..n].to_vec(),
        png::ColorType::GrayscaleAlpha => data.chunks_exact(2).map(|p| p[0]).collect(),
        png::ColorType::Rgb => data.chunks_exact(3).map(luma).collect(),
        png::ColorType::Rgba => data.chunks_exact(4).map(luma).collect(),
        png::ColorType::Indexed => return Err(fail("palette not expanded".into())),
    })
}

fn luma(p: &[u8]) -> u8 {
    // ITU-R BT.601 weights, the usual gray conversion.
    ((299 * u32::from(p[0]) + 587 * u32::from(p[1]) + 114 * u32::from(p[2]) + 500) / 1000) as u8
}

fn decode_jpeg(img: &FingerImage, index: usize, offset: usize) -> Result<Vec<u8>, ImageError> {
    use zune_jpeg::zune_core::bytestream::ZCursor;
    use zune_jpeg::zune_core::colorspace::ColorSpace;
    use zune_jpeg::zune_core::options::DecoderOptions;
    let fail = |reason: String| ImageError::Decode {
        image: index,
        offset,
        what: "JPEG",
        reason,
    };
    let options = DecoderOptions::default()
        .jpeg_set_out_colorspace(ColorSpace::Luma)
        .set_max_width(usize::from(img.width))
        .set_max_height(usize::from(img.height));
    let mut decoder =
        zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(&img.data[..]), options);
    let pixels = decoder.decode().map_err(|e| fail(format!("{e:?}")))?;
    let (w, h) = decoder
        .dimensions()
        .ok_or_else(|| fail("no dimensions".into()))?;
    check_size(img, index, "JPEG", w as u32, h as u32)?;
    if pixels.len() != w * h {
        return Err(fail("unexpected output size".into()));
    }
    Ok(pixels)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gray(w: usize, h: usize) -> GrayImage {
        GrayImage {
            width: w,
            height: h,
            ppi: 500.0,
            pixels: (0..w * h).map(|i| (i * 7 % 251) as u8).collect(),
        }
    }

    fn sample() -> Vec<u8> {
        FirRecord::from_gray(&gray(5, 3), 2, 80)
            .unwrap()
            .to_bytes()
            .unwrap()
    }

    #[test]
    fn layout_matches_the_standard() {
        let b = sample();
        assert_eq!(&b[0..8], b"FIR\0 10\0");
        assert_eq!(&b[8..14], &[0, 0, 0, 0, 0, 32 + 14 + 15]);
        assert_eq!(b.len(), 32 + 14 + 15);
        assert_eq!(&b[16..18], &[0, 31]); // acquisition level
        assert_eq!(b[18], 1); // images
        assert_eq!(b[19], 1); // ppi
        assert_eq!(&b[20..28], &[1, 0xF4, 1, 0xF4, 1, 0xF4, 1, 0xF4]);
        assert_eq!((b[28], b[29]), (8, 0));
        assert_eq!(&b[32..36], &[0, 0, 0, 29]); // block length incl. header
        assert_eq!(&b[36..41], &[2, 1, 1, 80, 0]);
        assert_eq!(&b[41..46], &[0, 5, 0, 3, 0]);
    }

    #[test]
    fn round_trips_and_decodes() {
        let b = sample();
        let rec = FirRecord::parse(&b).unwrap();
        assert_eq!(rec.to_bytes().unwrap(), b);
        assert_eq!(rec.gray(0).unwrap(), gray(5, 3));
        assert_eq!(rec.gray(1).unwrap_err(), ImageError::NoSuchImage(1));
        // Two images, per centimetre, other acquisition level.
        let mut two = rec.clone();
        two.scale_units = ScaleUnits::PixelsPerCentimetre;
        two.scan_resolution = (197, 197);
        two.image_resolution = (197, 197);
        two.acquisition_level = 41;
        let mut second = two.images[0].clone();
        second.position = 7;
        two.images.push(second);
        let b2 = two.to_bytes().unwrap();
        let back = FirRecord::parse(&b2).unwrap();
        assert_eq!(back, two);
        assert_eq!(back.to_bytes().unwrap(), b2);
        assert!((back.ppi().0 - 500.38).abs() < 0.01);
        let mut odd = back.clone();
        odd.image_resolution.1 = 100;
        assert!(matches!(
            odd.gray(0).unwrap_err(),
            ImageError::NonSquarePixels { .. }
        ));
    }

    #[test]
    fn low_depths_and_bit_packing_decode() {
        // 4-bit unpacked: 0..=15 stretched to 0..=255.
        let mut rec = FirRecord::from_gray(&gray(2, 2), 1, 50).unwrap();
        rec.pixel_depth = 4;
        rec.images[0].data = vec![0, 15, 5, 10];
        let bytes = rec.to_bytes().unwrap();
        let back = FirRecord::parse(&bytes).unwrap();
        assert_eq!(back.gray(0).unwrap().pixels, vec![0, 255, 85, 170]);
        rec.images[0].data = vec![0, 16, 5, 10];
        let bytes = rec.to_bytes().unwrap();
        assert_eq!(
            FirRecord::parse(&bytes).unwrap().gray(0).unwrap_err(),
            ImageError::PixelOutOfRange {
                offset: 47,
                value: 16,
                depth: 4
            }
        );
        // 1-bit packed, 3 px rows padded to a byte: 101, 010.
        rec.pixel_depth = 1;
        rec.compression = Compression::UncompressedBitPacked;
        rec.images[0].width = 3;
        rec.images[0].data = vec![0b1010_0000, 0b0100_0000];
        let bytes = rec.to_bytes().unwrap();
        let back = FirRecord::parse(&bytes).unwrap();
        assert_eq!(back.gray(0).unwrap().pixels, vec![255, 0, 255, 0, 255, 0]);
        // 16-bit big-endian keeps the high byte's scale.
        let mut rec = FirRecord::from_gray(&gray(2, 1), 1, 50).unwrap();
        rec.pixel_depth = 16;
        rec.images[0].data = vec![0xFF, 0xFF, 0x00, 0x00];
        let back = FirRecord::parse(&rec.to_bytes().unwrap()).unwrap();
        assert_eq!(back.gray(0).unwrap().pixels, vec![255, 0]);
    }

    #[test]
    fn png_decodes_and_wsq_jpeg2000_are_refused() {
        let g = gray(6, 4);
        let mut png_bytes = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut png_bytes, 6, 4);
            enc.set_color(png::ColorType::Grayscale);
            enc.set_depth(png::BitDepth::Eight);
            enc.write_header()
                .unwrap()
                .write_image_data(&g.pixels)
                .unwrap();
        }
        let mut rec = FirRecord::from_gray(&g, 2, 60).unwrap();
        rec.compression = Compression::Png;
        rec.images[0].data = png_bytes.clone();
        let back = FirRecord::parse(&rec.to_bytes().unwrap()).unwrap();
        assert_eq!(back.gray(0).unwrap().pixels, g.pixels);
        // A PNG whose size disagrees with the header.
        rec.images[0].width = 7;
        let err = FirRecord::parse(&rec.to_bytes().unwrap())
            .unwrap()
            .gray(0)
            .unwrap_err();
        assert!(
            matches!(err, ImageError::SizeMismatch { got_w: 6, .. }),
            "{err}"
        );
        // Garbage in a PNG or JPEG record is a decode error naming the format.
        for (c, what) in [(Compression::Png, "PNG"), (Compression::Jpeg, "JPEG")] {
            rec.compression = c;
            rec.images[0].data = vec![1, 2, 3, 4];
            let err = FirRecord::parse(&rec.to_bytes().unwrap())
                .unwrap()
                .gray(0)
                .unwrap_err();
            assert!(
                matches!(err, ImageError::Decode { what: w, offset: 46, .. } if w == what),
                "{err}"
            );
        }
        for c in [Compression::Wsq, Compression::Jpeg2000] {
            rec.compression = c;
            let back = FirRecord::parse(&rec.to_bytes().unwrap()).unwrap();
            assert_eq!(
                back.gray(0).unwrap_err(),
                ImageError::UnsupportedCompression(c)
            );
        }
    }

    /// (what, mutation of the sample, expected message fragment)
    #[test]
    fn bad_inputs_name_the_field_and_offset() {
        type Edit = fn(&mut Vec<u8>);
        let cases: &[(&str, Edit, &str)] = &[
            (
                "empty",
                |b| b.clear(),
                "truncated at byte 0: format identifier",
            ),
            ("magic", |b| b[0] = b'X', "bad format identifier at byte 0"),
            ("version", |b| b[5] = b'2', "unsupported version at byte 4"),
            ("length", |b| b[13] += 1, "record length at byte 8 says 62"),
            (
                "truncated",
                |b| {
                    b.truncate(20);
                    b[13] = 20;
                },
                "truncated at byte 20: horizontal scan resolution",
            ),
            (
                "level",
                |b| b[17] = 32,
                "image acquisition level at byte 16 is 32",
            ),
            ("count", |b| b[18] = 0, "number of images at byte 18 is 0"),
            ("scale", |b| b[19] = 3, "scale units at byte 19 is 3"),
            (
                "scan res",
                |b| b[20..22].fill(0),
                "horizontal scan resolution at byte 20 is 0",
            ),
            (
                "image res",
                |b| b[27] = 0xF5,
                "vertical image resolution at byte 26 is 501: must not exceed",
            ),
            ("depth", |b| b[28] = 17, "pixel depth at byte 28 is 17"),
            (
                "compression",
                |b| b[29] = 6,
                "compression algorithm at byte 29 is 6",
            ),
            ("reserved", |b| b[31] = 1, "reserved bytes at byte 30 is 1"),
            (
                "block short",
                |b| b[35] = 13,
                "finger data block length at byte 32 is 13",
            ),
            (
                "block size",
                |b| b[35] = 30,
                "finger data block length at byte 32 says 30 byte(s), but 29",
            ),
            (
                "position",
                |b| b[36] = 16,
                "finger position at byte 36 is 16",
            ),
            ("views", |b| b[37] = 0, "count of views at byte 37 is 0"),
            ("view number", |b| b[38] = 2, "view number at byte 38 is 2"),
            (
                "quality",
                |b| b[39] = 101,
                "image quality at byte 39 is 101",
            ),
            (
                "impression",
                |b| b[40] = 4,
                "impression type at byte 40 is 4",
            ),
            (
                "width",
                |b| b[42] = 0,
                "horizontal line length at byte 41 is 0",
            ),
            (
                "height",
                |b| b[44] = 0,
                "vertical line length at byte 43 is 0",
            ),
            (
                "image reserved",
                |b| b[45] = 9,
                "image reserved byte at byte 45 is 9",
            ),
            (
                "trailing",
                |b| {
                    b.push(0);
                    b[13] += 1;
                },
                "1 byte(s) after the last image at byte 61",
            ),
            (
                "second image missing",
                |b| {
                    b[18] = 2;
                },
                "truncated at byte 61: finger data block length",
            ),
        ];
        for (name, edit, want) in cases {
            let mut b = sample();
            edit(&mut b);
            let err = FirRecord::parse(&b).expect_err(name).to_string();
            assert!(err.contains(want), "{name}: {err}");
        }
        // A repeated (position, view) pair.
        let mut rec = FirRecord::parse(&sample()).unwrap();
        rec.images.push(rec.images[0].clone());
        assert!(rec.to_bytes().is_err());
        let mut b = sample();
        let image = b[32..].to_vec();
        b.extend_from_slice(&image);
        b[18] = 2;
        let len = b.len() as u8;
        b[13] = len;
        assert_eq!(
            FirRecord::parse(&b).unwrap_err(),
            FirError::DuplicateView {
                image: 1,
                offset: 61,
                position: 2,
                view: 1
            }
        );
    }

    #[test]
    fn the_writer_refuses_what_the_parser_refuses() {
        let good = FirRecord::parse(&sample()).unwrap();
        let edits: &[fn(&mut FirRecord)] = &[
            |r| r.acquisition_level = 11,
            |r| r.images.clear(),
            |r| r.image_resolution.0 = 600,
            |r| r.pixel_depth = 0,
            |r| r.images[0].quality = 101,
            |r| r.images[0].view_number = 2,
            |r| r.images[0].position = 17,
            |r| r.images[0].data.pop().map(drop).unwrap_or(()),
        ];
        for (i, edit) in edits.iter().enumerate() {
            let mut r = good.clone();
            edit(&mut r);
            assert!(r.to_bytes().is_err(), "edit {i}");
        }
    }

    #[test]
    fn debug_prints_no_pixels() {
        let rec = FirRecord::parse(&sample()).unwrap();
        let text = format!("{rec:?} {:?}", rec.gray(0).unwrap());
        assert!(text.contains("data_len: 15"));
        assert!(!text.contains("[0, 7"), "{text}");
    }
}
