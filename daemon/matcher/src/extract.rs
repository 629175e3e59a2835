//! Built-in minutiae extractor: an 8-bit grayscale finger image (ISO/IEC 19794-4) in,
//! an ISO/IEC 19794-2 finger view out, usable by [`crate::matcher`].
//!
//! Pipeline (the classic one of Hong, Wan & Jain 1998 and the crossing-number
//! literature; written from the published descriptions, no code copied):
//!
//! 1. **Resample** to 500 ppi (bilinear) when the image has another resolution.
//! 2. **Segmentation**: 16 px blocks whose gray-level standard deviation (after a light
//!    blur against pixel noise) reaches 35 % of the 90th percentile of all blocks are
//!    foreground; the largest 4-connected foreground component is kept and its holes
//!    filled.
//! 3. **Normalisation**: (I − local mean) / local standard deviation over 25 × 25 px.
//! 4. **Orientation field**: Sobel gradients, the structure tensor averaged over
//!    17 × 17 px, then the doubled-angle vector field smoothed again over 33 × 33 px
//!    (two box passes); the tensor's coherence is the local quality.
//! 5. **Ridge frequency**: per block, the x-signature (gray levels along the ridge
//!    normal over 32 px, each averaged over 13 px along the ridges); the period is the
//!    mean distance between its peaks, kept if in 4–16 px; missing blocks take their
//!    neighbours' mean, then a 3 × 3 block average.
//! 6. **Enhancement**: an even-symmetric Gabor filter tuned to each pixel's orientation
//!    (24 steps of 7.5°) and period (0.5 px steps), σ = 4 px, zero mean, 13 × 13 px
//!    (17 × 17 was slower and no better on the image benchmark).
//! 7. **Binarisation**: the sign of the filter response (ridges are dark).
//! 8. **Thinning**: Zhang–Suen, to a one-pixel, 8-connected skeleton.
//! 9. **Minutiae**: crossing number 1 (ridge ending) or 3 (bifurcation).
//! 10. **Direction**: the skeleton is traced 10 px from the minutia (each branch of a
//!     bifurcation); the result is snapped to the orientation field's nearer sense.
//! 11. **False minutiae**: too near the foreground border or low coherence; an ending
//!     whose ridge ends again within 16 px (short ridge, island); an ending whose ridge
//!     meets a bifurcation within 12 px (spur: both go); two bifurcations within 10 px
//!     (bridge, lake); two endings within 14 px facing each other (broken ridge);
//!     clusters of three within 8 px.
//! 12. **Quality**: per minutia, coherence × distance-to-border factor; per finger,
//!     mean coherence × foreground area factor.
//!
//! Direction convention (the same as [`crate::synth`] and [`crate::synth_image`], and
//! as the matcher's expects): counter-clockwise on screen from the x axis; a ridge
//! ending points along its ridge (from the end into the ridge), a bifurcation points
//! between its two branches (the dual valley ending's direction), so an ending read as
//! a bifurcation after a pressure change keeps its direction.

use crate::iso19794_2::IsoRecord;
use crate::iso19794_4::{FirRecord, GrayImage, ImageError};
use crate::record::{
    AngleUnit, FingerPosition, FingerView, ImageGeometry, ImpressionType, Minutia, MinutiaType,
};
use std::f32::consts::{FRAC_PI_2, PI, TAU};

/// Images are processed at this resolution.
pub const PPI: f32 = 500.0;
/// 500 ppi in pixels per centimetre (the 19794-2 record's unit).
const PPCM: u16 = 197;
const BLOCK: usize = 16;

/// Errors of [`extract`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExtractError {
    #[error("image is {width}x{height} px at 500 ppi: at least 64x64 and at most 2048x2048")]
    BadSize { width: usize, height: usize },
    #[error("resolution {0} ppi is outside 250..=1000")]
    BadResolution(f32),
    #[error("pixel buffer holds {got} bytes, {width}x{height} needs {want}")]
    BufferSize {
        got: usize,
        want: usize,
        width: usize,
        height: usize,
    },
    #[error("no finger found in the image (no textured area)")]
    NoFinger,
    #[error("finger image: {0}")]
    Image(#[from] ImageError),
    #[error("finger position {0} is not a single finger (0..=10)")]
    NotAFinger(u8),
}

/// One minutia in image coordinates (500 ppi, y down), direction in radians
/// counter-clockwise on screen.
#[derive(Clone, Copy, PartialEq)]
pub struct Found {
    pub x: f32,
    pub y: f32,
    pub direction: f32,
    pub kind: MinutiaType,
    /// 1..=100.
    pub quality: u8,
}

impl std::fmt::Debug for Found {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Found(..)")
    }
}

/// What [`extract`] returns.
#[derive(Clone)]
pub struct Extraction {
    /// Size of the processed (500 ppi) image.
    pub width: usize,
    pub height: usize,
    pub minutiae: Vec<Found>,
    /// Finger quality 0..=100.
    pub quality: u8,
    /// Share of the image that is finger.
    pub foreground: f32,
}

impl std::fmt::Debug for Extraction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Extraction")
            .field("size", &(self.width, self.height))
            .field("minutiae", &self.minutiae.len())
            .field("quality", &self.quality)
            .finish()
    }
}

impl Extraction {
    /// The ISO/IEC 19794-2 view (at most 128 minutiae, the best quality first kept).
    pub fn to_view(&self, position: FingerPosition) -> FingerView {
        let mut ms = self.minutiae.clone();
        ms.sort_by_key(|m| std::cmp::Reverse(m.quality));
        ms.truncate(128);
        let minutiae = ms
            .iter()
            .map(|m| Minutia {
                kind: m.kind,
                x: (m.x.round().max(0.0) as u16).min(self.width as u16 - 1),
                y: (m.y.round().max(0.0) as u16).min(self.height as u16 - 1),
                angle_code: AngleUnit::Iso.code_for(m.direction.to_degrees()),
                quality: m.quality.min(100),
            })
            .collect();
        let mut view = FingerView::new(position, self.quality, minutiae);
        view.impression = ImpressionType::LiveScanPlain;
        view
    }

    pub fn geometry(&self) -> ImageGeometry {
        ImageGeometry {
            width: self.width as u16,
            height: self.height as u16,
            x_resolution: PPCM,
            y_resolution: PPCM,
        }
    }

    /// A one-view ISO/IEC 19794-2:2005 record at 500 ppi.
    pub fn to_iso(&self, position: FingerPosition) -> IsoRecord {
        IsoRecord {
            certification: 0,
            device_type: 0,
            geometry: self.geometry(),
            views: vec![self.to_view(position)],
        }
    }
}

/// Image `index` of a 19794-4 record → a 19794-2 record of the same finger position.
pub fn extract_record(fir: &FirRecord, index: usize) -> Result<IsoRecord, ExtractError> {
    let gray = fir.gray(index)?;
    let code = fir.images[index].position;
    let position = FingerPosition::new(code).ok_or(ExtractError::NotAFinger(code))?;
    let mut rec = extract(&gray)?.to_iso(position);
    rec.views[0].impression = fir.images[index].impression;
    Ok(rec)
}

/// Why a captured sample gave no probe template.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProbeError {
    #[error("the sample has neither a template nor an image")]
    Empty,
    #[error("finger image record: {0}")]
    Record(#[from] crate::iso19794_4::FirError),
    #[error("the finger image record has no image of finger position {0}")]
    NoImageFor(u8),
    #[error("finger position {0} is not a single finger (0..=10)")]
    NotAFinger(u8),
    #[error(transparent)]
    Extract(#[from] ExtractError),
    #[error("extracted template: {0}")]
    Encode(#[from] crate::record::RecordError),
}

/// The ISO/IEC 19794-2 probe of a captured sample: its `template` when the sensor sent
/// one, otherwise minutiae extracted from its ISO/IEC 19794-4 `image` — the image of
/// finger `position`, or the record's only image when that one's position is unknown
/// (0). The daemon's verifier calls this, so a sensor that delivers images only is
/// matched like one that delivers templates.
pub fn probe_template<'a>(
    template: &'a [u8],
    image: &[u8],
    position: u8,
) -> Result<std::borrow::Cow<'a, [u8]>, ProbeError> {
    if !template.is_empty() {
        return Ok(std::borrow::Cow::Borrowed(template));
    }
    if image.is_empty() {
        return Err(ProbeError::Empty);
    }
    let finger = FingerPosition::new(position).ok_or(ProbeError::NotAFinger(position))?;
    let fir = FirRecord::parse(image)?;
    let index = fir
        .images
        .iter()
        .position(|i| i.position == position)
        .or_else(|| (fir.images.len() == 1 && fir.images[0].position == 0).then_some(0))
        .ok_or(ProbeError::NoImageFor(position))?;
    let gray = fir.gray(index).map_err(ExtractError::from)?;
    let mut record = extract(&gray)?.to_iso(finger);
    record.views[0].impression = fir.images[index].impression;
    Ok(std::borrow::Cow::Owned(record.to_bytes()?))
}

/// A row-major f32 image.
#[derive(Clone)]
struct Plane {
    w: usize,
    h: usize,
    v: Vec<f32>,
}

impl Plane {
    fn new(w: usize, h: usize) -> Self {
        Plane {
            w,
            h,
            v: vec![0.0; w * h],
        }
    }
    #[inline]
    fn at(&self, x: usize, y: usize) -> f32 {
        self.v[y * self.w + x]
    }
    fn bilinear(&self, x: f32, y: f32) -> f32 {
        let x = x.clamp(0.0, (self.w - 1) as f32);
        let y = y.clamp(0.0, (self.h - 1) as f32);
        let (x0, y0) = (x.floor() as usize, y.floor() as usize);
        let (x1, y1) = ((x0 + 1).min(self.w - 1), (y0 + 1).min(self.h - 1));
        let (fx, fy) = (x - x0 as f32, y - y0 as f32);
        let top = self.at(x0, y0) * (1.0 - fx) + self.at(x1, y0) * fx;
        let bot = self.at(x0, y1) * (1.0 - fx) + self.at(x1, y1) * fx;
        top * (1.0 - fy) + bot * fy
    }
    /// Mean over the (2r+1)² box around each pixel (clipped at the borders), by a
    /// summed-area table in f64 so long sums keep their precision.
    fn box_mean(&self, r: usize) -> Plane {
        let (w, h) = (self.w, self.h);
        let mut sat = vec![0f64; (w + 1) * (h + 1)];
        for y in 0..h {
            let mut row = 0f64;
            for x in 0..w {
                row += f64::from(self.at(x, y));
                sat[(y + 1) * (w + 1) + x + 1] = sat[y * (w + 1) + x + 1] + row;
            }
        }
        let mut out = Plane::new(w, h);
        for y in 0..h {
            let (y0, y1) = (y.saturating_sub(r), (y + r + 1).min(h));
            for x in 0..w {
                let (x0, x1) = (x.saturating_sub(r), (x + r + 1).min(w));
                let s = sat[y1 * (w + 1) + x1] - sat[y0 * (w + 1) + x1] - sat[y1 * (w + 1) + x0]
                    + sat[y0 * (w + 1) + x0];
                out.v[y * w + x] = (s / ((y1 - y0) * (x1 - x0)) as f64) as f32;
            }
        }
        out
    }
    fn map(&self, f: impl Fn(f32) -> f32) -> Plane {
        Plane {
            w: self.w,
            h: self.h,
            v: self.v.iter().map(|&x| f(x)).collect(),
        }
    }
}

fn resample(img: &GrayImage) -> Result<Plane, ExtractError> {
    if img.pixels.len() != img.width * img.height {
        return Err(ExtractError::BufferSize {
            got: img.pixels.len(),
            want: img.width * img.height,
            width: img.width,
            height: img.height,
        });
    }
    if !(250.0..=1000.0).contains(&img.ppi) {
        return Err(ExtractError::BadResolution(img.ppi));
    }
    let src = Plane {
        w: img.width,
        h: img.height,
        v: img.pixels.iter().map(|&p| f32::from(p)).collect(),
    };
    let k = img.ppi / PPI;
    let (w, h) = if (k - 1.0).abs() < 0.02 {
        (img.width, img.height)
    } else {
        (
            (img.width as f32 / k).round() as usize,
            (img.height as f32 / k).round() as usize,
        )
    };
    if !(64..=2048).contains(&w) || !(64..=2048).contains(&h) {
        return Err(ExtractError::BadSize {
            width: w,
            height: h,
        });
    }
    if w == img.width && h == img.height {
        return Ok(src);
    }
    let mut out = Plane::new(w, h);
    for y in 0..h {
        for x in 0..w {
            out.v[y * w + x] = src.bilinear(x as f32 * k, y as f32 * k);
        }
    }
    Ok(out)
}

/// Block-level foreground mask, expanded to pixels.
fn segment(img: &Plane) -> Option<Vec<bool>> {
    let blur = img.box_mean(1);
    let (bw, bh) = (img.w.div_ceil(BLOCK), img.h.div_ceil(BLOCK));
    let mut sd = vec![0f32; bw * bh];
    for by in 0..bh {
        for bx in 0..bw {
            let (mut s, mut s2, mut n) = (0f32, 0f32, 0f32);
            for y in by * BLOCK..((by + 1) * BLOCK).min(img.h) {
                for x in bx * BLOCK..((bx + 1) * BLOCK).min(img.w) {
                    let v = blur.at(x, y);
                    s += v;
                    s2 += v * v;
                    n += 1.0;
                }
            }
            let m = s / n;
            sd[by * bw + bx] = (s2 / n - m * m).max(0.0).sqrt();
        }
    }
    let mut sorted = sd.clone();
    sorted.sort_by(f32::total_cmp);
    let p90 = sorted[(sorted.len() * 9 / 10).min(sorted.len() - 1)];
    if p90 < 4.0 {
        return None;
    }
    let fg: Vec<bool> = sd.iter().map(|&s| s >= 0.35 * p90).collect();
    // Largest 4-connected component.
    let mut label = vec![0u32; bw * bh];
    let mut best = (0u32, 0usize);
    let mut next = 0u32;
    for start in 0..bw * bh {
        if !fg[start] || label[start] != 0 {
            continue;
        }
        next += 1;
        let mut stack = vec![start];
        label[start] = next;
        let mut size = 0;
        while let Some(i) = stack.pop() {
            size += 1;
            let (x, y) = (i % bw, i / bw);
            let mut push = |j: usize| {
                if fg[j] && label[j] == 0 {
                    label[j] = next;
                    stack.push(j);
                }
            };
            if x > 0 {
                push(i - 1);
            }
            if x + 1 < bw {
                push(i + 1);
            }
            if y > 0 {
                push(i - bw);
            }
            if y + 1 < bh {
                push(i + bw);
            }
        }
        if size > best.1 {
            best = (next, size);
        }
    }
    if best.1 < 4 {
        return None;
    }
    // Fill holes: background blocks not reachable from the frame become foreground.
    let keep: Vec<bool> = label.iter().map(|&l| l == best.0).collect();
    let mut outside = vec![false; bw * bh];
    let mut stack: Vec<usize> = (0..bw * bh)
        .filter(|&i| {
            let (x, y) = (i % bw, i / bw);
            (x == 0 || y == 0 || x + 1 == bw || y + 1 == bh) && !keep[i]
        })
        .collect();
    for &i in &stack {
        outside[i] = true;
    }
    while let Some(i) = stack.pop() {
        let (x, y) = (i % bw, i / bw);
        let mut visit = |j: usize| {
            if !keep[j] && !outside[j] {
                outside[j] = true;
                stack.push(j);
            }
        };
        if x > 0 {
            visit(i - 1);
        }
        if x + 1 < bw {
            visit(i + 1);
        }
        if y > 0 {
            visit(i - bw);
        }
        if y + 1 < bh {
            visit(i + bw);
        }
    }
    let mut mask = vec![false; img.w * img.h];
    for y in 0..img.h {
        for x in 0..img.w {
            mask[y * img.w + x] = !outside[(y / BLOCK) * bw + x / BLOCK];
        }
    }
    Some(mask)
}

/// Distance (px, capped) from each pixel to the nearest background pixel or the frame,
/// by a two-pass chamfer transform.
fn border_distance(mask: &[bool], w: usize, h: usize) -> Vec<f32> {
    let big = 1e6f32;
    let mut d: Vec<f32> = mask.iter().map(|&m| if m { big } else { 0.0 }).collect();
    for y in 0..h {
        for x in 0..w {
            if x == 0 || y == 0 || x + 1 == w || y + 1 == h {
                d[y * w + x] = d[y * w + x].min(1.0);
            }
        }
    }
    let s2 = std::f32::consts::SQRT_2;
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            let mut v = d[i];
            if x > 0 {
                v = v.min(d[i - 1] + 1.0);
            }
            if y > 0 {
                v = v.min(d[i - w] + 1.0);
                if x > 0 {
                    v = v.min(d[i - w - 1] + s2);
                }
                if x + 1 < w {
                    v = v.min(d[i - w + 1] + s2);
                }
            }
            d[i] = v;
        }
    }
    for y in (0..h).rev() {
        for x in (0..w).rev() {
            let i = y * w + x;
            let mut v = d[i];
            if x + 1 < w {
                v = v.min(d[i + 1] + 1.0);
            }
            if y + 1 < h {
                v = v.min(d[i + w] + 1.0);
                if x + 1 < w {
                    v = v.min(d[i + w + 1] + s2);
                }
                if x > 0 {
                    v = v.min(d[i + w - 1] + s2);
                }
            }
            d[i] = v;
        }
    }
    d
}

fn normalise(img: &Plane) -> Plane {
    let mean = img.box_mean(12);
    let sq = img.map(|v| v * v).box_mean(12);
    let mut out = Plane::new(img.w, img.h);
    for i in 0..img.v.len() {
        let sd = (sq.v[i] - mean.v[i] * mean.v[i]).max(0.0).sqrt();
        out.v[i] = ((img.v[i] - mean.v[i]) / (sd + 4.0)).clamp(-3.0, 3.0);
    }
    out
}

/// Ridge orientation (radians mod π, image frame: y down) and coherence per pixel.
fn orientation(img: &Plane) -> (Plane, Plane) {
    let (w, h) = (img.w, img.h);
    let (mut gxx, mut gyy, mut gxy) = (Plane::new(w, h), Plane::new(w, h), Plane::new(w, h));
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            let p = |dx: isize, dy: isize| {
                img.at((x as isize + dx) as usize, (y as isize + dy) as usize)
            };
            let gx = (p(1, -1) + 2.0 * p(1, 0) + p(1, 1)) - (p(-1, -1) + 2.0 * p(-1, 0) + p(-1, 1));
            let gy = (p(-1, 1) + 2.0 * p(0, 1) + p(1, 1)) - (p(-1, -1) + 2.0 * p(0, -1) + p(1, -1));
            let i = y * w + x;
            gxx.v[i] = gx * gx;
            gyy.v[i] = gy * gy;
            gxy.v[i] = gx * gy;
        }
    }
    let (gxx, gyy, gxy) = (gxx.box_mean(8), gyy.box_mean(8), gxy.box_mean(8));
    let mut c2 = Plane::new(w, h);
    let mut s2 = Plane::new(w, h);
    let mut coh = Plane::new(w, h);
    for i in 0..w * h {
        let (a, b, c) = (gxx.v[i], gyy.v[i], gxy.v[i]);
        let den = a + b;
        let num = ((a - b) * (a - b) + 4.0 * c * c).sqrt();
        coh.v[i] = if den > 1e-6 { num / den } else { 0.0 };
        // The doubled gradient angle, weighted by its strength.
        c2.v[i] = a - b;
        s2.v[i] = 2.0 * c;
    }
    // Two box passes ≈ a Gaussian of σ ≈ 9 px on the doubled-angle field.
    let (c2, s2) = (c2.box_mean(8).box_mean(8), s2.box_mean(8).box_mean(8));
    let mut theta = Plane::new(w, h);
    for i in 0..w * h {
        // The gradient is across the ridges: the ridge direction is a quarter turn on.
        theta.v[i] = (0.5 * s2.v[i].atan2(c2.v[i]) + FRAC_PI_2).rem_euclid(PI);
    }
    (theta, coh.box_mean(4))
}

/// Ridge period (px) per pixel.
fn frequency(img: &Plane, theta: &Plane, mask: &[bool]) -> Plane {
    let (bw, bh) = (img.w.div_ceil(BLOCK), img.h.div_ceil(BLOCK));
    let mut period = vec![f32::NAN; bw * bh];
    for by in 0..bh {
        for bx in 0..bw {
            let cx = ((bx * BLOCK + BLOCK / 2).min(img.w - 1)) as f32;
            let cy = ((by * BLOCK + BLOCK / 2).min(img.h - 1)) as f32;
            if !mask[cy as usize * img.w + cx as usize] {
                continue;
            }
            let t = theta.at(cx as usize, cy as usize);
            let (along, across) = ((t.cos(), t.sin()), (-t.sin(), t.cos()));
            let sig: Vec<f32> = (0..32)
                .map(|k| {
                    let d = k as f32 - 15.5;
                    (-6..=6)
                        .map(|j| {
                            let j = j as f32;
                            img.bilinear(
                                cx + d * across.0 + j * along.0,
                                cy + d * across.1 + j * along.1,
                            )
                        })
                        .sum::<f32>()
                        / 13.0
                })
                .collect();
            let peaks: Vec<usize> = (1..31)
                .filter(|&k| sig[k] > sig[k - 1] && sig[k] >= sig[k + 1])
                .collect();
            if peaks.len() >= 2 {
                let p = (peaks[peaks.len() - 1] - peaks[0]) as f32 / (peaks.len() - 1) as f32;
                if (4.0..=16.0).contains(&p) {
                    period[by * bw + bx] = p;
                }
            }
        }
    }
    // Fill gaps from neighbours, a few rounds, then the global mean.
    for _ in 0..6 {
        let prev = period.clone();
        for by in 0..bh {
            for bx in 0..bw {
                if !prev[by * bw + bx].is_nan() {
                    continue;
                }
                let (mut s, mut n) = (0.0, 0.0);
                for (dx, dy) in [
                    (-1, 0),
                    (1, 0),
                    (0, -1),
                    (0, 1),
                    (-1, -1),
                    (1, 1),
                    (-1, 1),
                    (1, -1),
                ] {
                    let (x, y) = (bx as isize + dx, by as isize + dy);
                    if x >= 0 && y >= 0 && (x as usize) < bw && (y as usize) < bh {
                        let v = prev[y as usize * bw + x as usize];
                        if !v.is_nan() {
                            s += v;
                            n += 1.0;
                        }
                    }
                }
                if n > 0.0 {
                    period[by * bw + bx] = s / n;
                }
            }
        }
    }
    let valid: Vec<f32> = period.iter().copied().filter(|v| !v.is_nan()).collect();
    let mean = if valid.is_empty() {
        9.0
    } else {
        valid.iter().sum::<f32>() / valid.len() as f32
    };
    let blocks = Plane {
        w: bw,
        h: bh,
        v: period
            .iter()
            .map(|&v| if v.is_nan() { mean } else { v })
            .collect(),
    }
    .box_mean(1);
    let mut out = Plane::new(img.w, img.h);
    for y in 0..img.h {
        for x in 0..img.w {
            out.v[y * img.w + x] = blocks.bilinear(
                (x as f32 - BLOCK as f32 / 2.0) / BLOCK as f32,
                (y as f32 - BLOCK as f32 / 2.0) / BLOCK as f32,
            );
        }
    }
    out
}

const GABOR_R: isize = 6;
const ORIENTATIONS: usize = 24;

/// Sign of the Gabor response: true = ridge.
fn enhance(img: &Plane, theta: &Plane, period: &Plane, mask: &[bool]) -> Vec<bool> {
    let side = (2 * GABOR_R + 1) as usize;
    let period_bin = |p: f32| ((p.clamp(4.0, 16.0) - 4.0) * 2.0).round() as usize; // 0..=24
    let mut kernels: Vec<Option<Vec<f32>>> = vec![None; ORIENTATIONS * 25];
    let (w, h) = (img.w, img.h);
    let mut ridge = vec![false; w * h];
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            if !mask[i] {
                continue;
            }
            let ob = ((theta.v[i] / PI * ORIENTATIONS as f32).round() as usize) % ORIENTATIONS;
            let pb = period_bin(period.v[i]);
            let k = kernels[ob * 25 + pb].get_or_insert_with(|| {
                let t = ob as f32 * PI / ORIENTATIONS as f32;
                let f = 1.0 / (4.0 + pb as f32 * 0.5);
                let (s, c) = t.sin_cos();
                let mut k = Vec::with_capacity(side * side);
                for dy in -GABOR_R..=GABOR_R {
                    for dx in -GABOR_R..=GABOR_R {
                        let (dx, dy) = (dx as f32, dy as f32);
                        // Across the ridges: the cosine; along and across: the envelope.
                        let across = -dx * s + dy * c;
                        let env = (-(dx * dx + dy * dy) / (2.0 * 16.0)).exp();
                        k.push(env * (TAU * f * across).cos());
                    }
                }
                let mean = k.iter().sum::<f32>() / k.len() as f32;
                k.iter_mut().for_each(|v| *v -= mean);
                k
            });
            let mut acc = 0.0;
            let mut ki = 0;
            for dy in -GABOR_R..=GABOR_R {
                let yy = (y as isize + dy).clamp(0, h as isize - 1) as usize;
                let row = &img.v[yy * w..yy * w + w];
                for dx in -GABOR_R..=GABOR_R {
                    let xx = (x as isize + dx).clamp(0, w as isize - 1) as usize;
                    acc += k[ki] * row[xx];
                    ki += 1;
                }
            }
            // Dark ridges give a negative response.
            ridge[i] = acc < 0.0;
        }
    }
    ridge
}

/// Zhang–Suen thinning, in place.
fn thin(b: &mut [bool], w: usize, h: usize) {
    let mut changed = true;
    let mut del = Vec::new();
    while changed {
        changed = false;
        for pass in 0..2 {
            del.clear();
            for y in 1..h - 1 {
                for x in 1..w - 1 {
                    let i = y * w + x;
                    if !b[i] {
                        continue;
                    }
                    let n = nbrs(b, w, x, y);
                    let count = n.iter().filter(|&&v| v).count();
                    if !(2..=6).contains(&count) {
                        continue;
                    }
                    let trans = (0..8).filter(|&k| !n[k] && n[(k + 1) % 8]).count();
                    if trans != 1 {
                        continue;
                    }
                    // n: P2 (N), P3 (NE), P4 (E), P5 (SE), P6 (S), P7 (SW), P8 (W), P9 (NW)
                    let ok = if pass == 0 {
                        // P2·P4·P6 = 0 and P4·P6·P8 = 0
                        !(n[2] && n[4] && (n[0] || n[6]))
                    } else {
                        // P2·P4·P8 = 0 and P2·P6·P8 = 0
                        !(n[0] && n[6] && (n[2] || n[4]))
                    };
                    if ok {
                        del.push(i);
                    }
                }
            }
            if !del.is_empty() {
                changed = true;
                for &i in &del {
                    b[i] = false;
                }
            }
        }
    }
}

/// The 8 neighbours clockwise from north (y down): N, NE, E, SE, S, SW, W, NW.
const DIRS: [(isize, isize); 8] = [
    (0, -1),
    (1, -1),
    (1, 0),
    (1, 1),
    (0, 1),
    (-1, 1),
    (-1, 0),
    (-1, -1),
];

fn nbrs(b: &[bool], w: usize, x: usize, y: usize) -> [bool; 8] {
    let mut n = [false; 8];
    for (k, (dx, dy)) in DIRS.iter().enumerate() {
        n[k] = b[(y as isize + dy) as usize * w + (x as isize + dx) as usize];
    }
    n
}

fn crossing_number(b: &[bool], w: usize, x: usize, y: usize) -> usize {
    let n = nbrs(b, w, x, y);
    (0..8).filter(|&k| n[k] != n[(k + 1) % 8]).count() / 2
}

/// How a skeleton trace ended.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Stop {
    Length,
    Ending,
    Junction,
    Edge,
}

/// Follows the skeleton from `start` through its neighbour `first` for up to `len`
/// pixels; returns the last pixel, the steps taken and why it stopped.
fn trace(
    b: &[bool],
    w: usize,
    h: usize,
    start: (usize, usize),
    first: (usize, usize),
    len: usize,
) -> ((usize, usize), usize, Stop) {
    let mut visited: Vec<(usize, usize)> = vec![start, first];
    let mut cur = first;
    let mut steps = 1;
    // Pixels adjacent to the start are part of the start's own junction: skip them.
    let start_adj: Vec<(usize, usize)> = DIRS
        .iter()
        .map(|(dx, dy)| {
            (
                (start.0 as isize + dx) as usize,
                (start.1 as isize + dy) as usize,
            )
        })
        .collect();
    while steps < len {
        let (x, y) = cur;
        if x == 0 || y == 0 || x + 1 >= w || y + 1 >= h {
            return (cur, steps, Stop::Edge);
        }
        let cn = crossing_number(b, w, x, y);
        if cn >= 3 {
            return (cur, steps, Stop::Junction);
        }
        let mut next: Option<(usize, usize)> = None;
        // 4-neighbours first keeps the walk on staircase skeletons.
        for k in [0usize, 2, 4, 6, 1, 3, 5, 7] {
            let (dx, dy) = DIRS[k];
            let p = ((x as isize + dx) as usize, (y as isize + dy) as usize);
            if !b[p.1 * w + p.0] || visited.contains(&p) {
                continue;
            }
            if steps <= 2 && start_adj.contains(&p) && p != first {
                continue;
            }
            // Skip a pixel adjacent to one visited two or more steps ago (corners).
            let back = visited.len().saturating_sub(3);
            if visited[..back]
                .iter()
                .any(|q| q.0.abs_diff(p.0) <= 1 && q.1.abs_diff(p.1) <= 1)
            {
                continue;
            }
            next = Some(p);
            break;
        }
        match next {
            Some(p) => {
                visited.push(p);
                cur = p;
                steps += 1;
            }
            None => return (cur, steps, Stop::Ending),
        }
    }
    (cur, steps, Stop::Length)
}

#[derive(Clone, Copy)]
struct Cand {
    x: usize,
    y: usize,
    /// Image frame (y down), radians.
    dir: f32,
    kind: MinutiaType,
    /// Why it may be false: what its trace met and after how many steps.
    stop: Stop,
    stop_at: (usize, usize),
    stop_steps: usize,
    alive: bool,
}

fn angle_diff(a: f32, b: f32) -> f32 {
    let d = (a - b).rem_euclid(TAU);
    d.min(TAU - d)
}

const TRACE: usize = 10;

/// Crossing-number minutiae of a skeleton (the frame must be clear), away from the
/// border by 4 px; directions from the traced skeleton, snapped to `theta` if given.
fn candidates(
    skel: &[bool],
    w: usize,
    h: usize,
    border: &[f32],
    theta: Option<&Plane>,
) -> Vec<Cand> {
    let mut cands: Vec<Cand> = Vec::new();
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            let i = y * w + x;
            if !skel[i] || border[i] < 4.0 {
                continue;
            }
            let cn = crossing_number(skel, w, x, y);
            let n = nbrs(skel, w, x, y);
            // One pixel per branch: the first of each run of set neighbours.
            let heads: Vec<(usize, usize)> = (0..8)
                .filter(|&k| n[k] && !n[(k + 7) % 8])
                .map(|k| {
                    (
                        (x as isize + DIRS[k].0) as usize,
                        (y as isize + DIRS[k].1) as usize,
                    )
                })
                .collect();
            let snap = |d: f32| match theta {
                // The field's sense nearer to the traced direction (y down).
                Some(theta) => {
                    let t = theta.v[i];
                    if angle_diff(t, d) <= FRAC_PI_2 {
                        t
                    } else {
                        t + PI
                    }
                }
                None => d,
            };
            if cn == 1 && heads.len() == 1 {
                let (end, steps, stop) = trace(skel, w, h, (x, y), heads[0], TRACE + 8);
                let d = (end.1 as f32 - y as f32).atan2(end.0 as f32 - x as f32);
                cands.push(Cand {
                    x,
                    y,
                    dir: snap(d),
                    kind: MinutiaType::RidgeEnding,
                    stop,
                    stop_at: end,
                    stop_steps: steps,
                    alive: true,
                });
            } else if cn == 3 && heads.len() == 3 {
                let dirs: Vec<(f32, (usize, usize), usize, Stop)> = heads
                    .iter()
                    .map(|&hd| {
                        let (end, steps, stop) = trace(skel, w, h, (x, y), hd, TRACE);
                        (
                            (end.1 as f32 - y as f32).atan2(end.0 as f32 - x as f32),
                            end,
                            steps,
                            stop,
                        )
                    })
                    .collect();
                // The stem is the branch farthest from the other two.
                let stem = (0..3)
                    .max_by(|&a, &b| {
                        let s = |i: usize| {
                            angle_diff(dirs[i].0, dirs[(i + 1) % 3].0)
                                + angle_diff(dirs[i].0, dirs[(i + 2) % 3].0)
                        };
                        s(a).total_cmp(&s(b))
                    })
                    .unwrap_or(0);
                // The shortest branch tells whether this is a spur.
                let shortest = (0..3).min_by_key(|&i| dirs[i].2).unwrap_or(0);
                cands.push(Cand {
                    x,
                    y,
                    dir: snap(dirs[stem].0 + PI),
                    kind: MinutiaType::Bifurcation,
                    stop: dirs[shortest].3,
                    stop_at: dirs[shortest].1,
                    stop_steps: dirs[shortest].2,
                    alive: true,
                });
            }
        }
    }
    cands
}

/// Minutiae of a clean binary ridge map (true = ridge) inside `mask`, for the image
/// generator's ground truth: thinning, crossing number, traced directions; adjacent
/// bifurcation pixels merged and pairs closer than 6 px (thinning artefacts) dropped.
/// (x, y, direction counter-clockwise on screen, type), image frame.
pub(crate) fn skeleton_minutiae(
    ridges: &[bool],
    w: usize,
    h: usize,
    mask: &[bool],
) -> Vec<(f32, f32, f32, MinutiaType)> {
    let mut skel: Vec<bool> = ridges.to_vec();
    for y in 0..h {
        for x in 0..w {
            if x == 0 || y == 0 || x + 1 == w || y + 1 == h {
                skel[y * w + x] = false;
            }
        }
    }
    thin(&mut skel, w, h);
    let border = border_distance(mask, w, h);
    let mut c = candidates(&skel, w, h, &border, None);
    let n = c.len();
    let mut drop = vec![false; n];
    for a in 0..n {
        for b in a + 1..n {
            let d = (c[a].x as f32 - c[b].x as f32).hypot(c[a].y as f32 - c[b].y as f32);
            if c[a].kind == MinutiaType::Bifurcation
                && c[b].kind == MinutiaType::Bifurcation
                && d <= 2.9
            {
                c[b].alive = false;
            } else if d < 6.0 && c[a].alive && c[b].alive {
                drop[a] = true;
                drop[b] = true;
            }
        }
    }
    c.iter()
        .zip(&drop)
        .filter(|(m, d)| m.alive && !**d)
        .map(|(m, _)| (m.x as f32, m.y as f32, (-m.dir).rem_euclid(TAU), m.kind))
        .collect()
}

/// Extracts minutiae from a grayscale finger image. Deterministic.
pub fn extract(image: &GrayImage) -> Result<Extraction, ExtractError> {
    let img = resample(image)?;
    let (w, h) = (img.w, img.h);
    let mask = segment(&img).ok_or(ExtractError::NoFinger)?;
    let border = border_distance(&mask, w, h);
    let norm = normalise(&img);
    let (theta, coh) = orientation(&norm);
    let period = frequency(&norm, &theta, &mask);
    let mut skel = enhance(&norm, &theta, &period, &mask);
    // The frame is never skeleton, so every neighbour access below stays inside.
    for y in 0..h {
        for x in 0..w {
            if x == 0 || y == 0 || x + 1 == w || y + 1 == h {
                skel[y * w + x] = false;
            }
        }
    }
    thin(&mut skel, w, h);

    let mut cands = candidates(&skel, w, h, &border, Some(&theta));
    // Bifurcation pixels in a clump (thinning leaves 2–3 adjacent CN-3 pixels): keep one.
    for a in 0..cands.len() {
        for b in a + 1..cands.len() {
            let (p, q) = (cands[a], cands[b]);
            if p.alive
                && q.alive
                && p.kind == MinutiaType::Bifurcation
                && q.kind == MinutiaType::Bifurcation
                && p.x.abs_diff(q.x) <= 2
                && p.y.abs_diff(q.y) <= 2
            {
                cands[b].alive = false;
            }
        }
    }
    let dist = |p: &Cand, q: &Cand| (p.x as f32 - q.x as f32).hypot(p.y as f32 - q.y as f32);
    let near =
        |c: &Cand, at: (usize, usize), r: usize| c.x.abs_diff(at.0) <= r && c.y.abs_diff(at.1) <= r;
    let n = cands.len();
    let mut kill = vec![false; n];
    for a in 0..n {
        let p = cands[a];
        if !p.alive {
            continue;
        }
        let i = p.y * w + p.x;
        if border[i] < 12.0 || coh.v[i] < 0.25 {
            kill[a] = true;
        }
        match (p.kind, p.stop) {
            // Short ridge or island: the ridge ends again within the trace.
            (MinutiaType::RidgeEnding, Stop::Ending) if p.stop_steps < 16 => {
                kill[a] = true;
                for b in 0..n {
                    if b != a && cands[b].alive && near(&cands[b], p.stop_at, 2) {
                        kill[b] = true;
                    }
                }
            }
            // Spur: the ridge meets a junction right away; both go.
            (MinutiaType::RidgeEnding, Stop::Junction) if p.stop_steps < 12 => {
                kill[a] = true;
                for b in 0..n {
                    if b != a
                        && cands[b].alive
                        && cands[b].kind == MinutiaType::Bifurcation
                        && near(&cands[b], p.stop_at, 3)
                    {
                        kill[b] = true;
                    }
                }
            }
            _ => {}
        }
        for b in a + 1..n {
            let q = cands[b];
            if !q.alive {
                continue;
            }
            let d = dist(&p, &q);
            match (p.kind, q.kind) {
                (MinutiaType::Bifurcation, MinutiaType::Bifurcation) if d < 10.0 => {
                    kill[a] = true;
                    kill[b] = true;
                }
                (MinutiaType::RidgeEnding, MinutiaType::RidgeEnding) if d < 14.0 => {
                    // Facing each other across a gap: a broken ridge.
                    let link = (q.y as f32 - p.y as f32).atan2(q.x as f32 - p.x as f32);
                    if angle_diff(p.dir, link + PI) < 0.8
                        && angle_diff(q.dir, link) < 0.8
                        && angle_diff(p.dir, q.dir + PI) < 0.9
                    {
                        kill[a] = true;
                        kill[b] = true;
                    }
                }
                _ => {}
            }
        }
    }
    for a in 0..n {
        if !cands[a].alive || kill[a] {
            continue;
        }
        let crowd = (0..n)
            .filter(|&b| b != a && cands[b].alive && dist(&cands[a], &cands[b]) < 8.0)
            .count();
        if crowd >= 2 {
            kill[a] = true;
        }
    }
    let minutiae: Vec<Found> = cands
        .iter()
        .zip(&kill)
        .filter(|(c, k)| c.alive && !**k)
        .map(|(c, _)| {
            let i = c.y * w + c.x;
            let q = coh.v[i].clamp(0.0, 1.0) * (border[i] / 32.0).min(1.0);
            Found {
                x: c.x as f32,
                y: c.y as f32,
                // y down → counter-clockwise on screen.
                direction: (-c.dir).rem_euclid(TAU),
                kind: c.kind,
                quality: (100.0 * q).round().clamp(1.0, 100.0) as u8,
            }
        })
        .collect();
    let fg = mask.iter().filter(|&&m| m).count();
    let mean_coh = mask
        .iter()
        .zip(&coh.v)
        .filter(|(m, _)| **m)
        .map(|(_, c)| *c)
        .sum::<f32>()
        / fg.max(1) as f32;
    // A finger that covers less than ~ 40 000 px (≈ 10 × 10 mm) is a partial capture.
    let area = (fg as f32 / 40_000.0).min(1.0);
    let quality = (100.0 * mean_coh.clamp(0.0, 1.0) * area).round() as u8;
    Ok(Extraction {
        width: w,
        height: h,
        minutiae,
        quality,
        foreground: fg as f32 / (w * h) as f32,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat(w: usize, h: usize, v: u8) -> GrayImage {
        GrayImage {
            width: w,
            height: h,
            ppi: 500.0,
            pixels: vec![v; w * h],
        }
    }

    #[test]
    fn blank_images_have_no_finger() {
        assert_eq!(
            extract(&flat(200, 200, 255)).unwrap_err(),
            ExtractError::NoFinger
        );
    }

    #[test]
    fn bad_shapes_are_errors_not_panics() {
        assert!(matches!(
            extract(&flat(20, 300, 0)),
            Err(ExtractError::BadSize { .. })
        ));
        let mut g = flat(100, 100, 0);
        g.pixels.pop();
        assert!(matches!(extract(&g), Err(ExtractError::BufferSize { .. })));
        g = flat(100, 100, 0);
        g.ppi = 100.0;
        assert!(matches!(extract(&g), Err(ExtractError::BadResolution(_))));
        g.ppi = f32::NAN;
        assert!(matches!(extract(&g), Err(ExtractError::BadResolution(_))));
    }

    #[test]
    fn parallel_ridges_have_few_minutiae_and_the_right_orientation() {
        // Straight ridges at 30° (on screen, counter-clockwise), period 9 px.
        let (w, h) = (240usize, 240usize);
        let t = 30f32.to_radians();
        let mut g = flat(w, h, 0);
        for y in 0..h {
            for x in 0..w {
                let across = -(x as f32) * t.sin() - (y as f32) * t.cos();
                g.pixels[y * w + x] = (128.0 + 100.0 * (TAU * across / 9.0).cos()) as u8;
            }
        }
        let e = extract(&g).unwrap();
        assert!(e.minutiae.len() <= 2, "{} minutiae", e.minutiae.len());
        assert!(e.quality > 50, "quality {}", e.quality);
        let img = resample(&g).unwrap();
        let norm = normalise(&img);
        let (theta, _) = orientation(&norm);
        // Image frame (y down): 30° counter-clockwise on screen is −30° ≡ 150°.
        let got = theta.at(120, 120).to_degrees();
        assert!((got - 150.0).abs() < 3.0, "orientation {got}");
        let period = frequency(&norm, &theta, &vec![true; w * h]);
        assert!(
            (period.at(120, 120) - 9.0).abs() < 0.8,
            "{}",
            period.at(120, 120)
        );
    }
}
