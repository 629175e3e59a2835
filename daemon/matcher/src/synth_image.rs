//! Deterministic synthetic fingerprint *images* with ground-truth minutiae, for
//! evaluating minutiae extractors (the built-in one, MINDTCT) end to end.
//!
//! In the manner of SFinGe (Cappelli, Maio & Maltoni), written from the published
//! description:
//!
//! - **Master finger**: an elliptical pad; a ridge orientation field from singular
//!   points (zero-pole model, loops / whorls / arches as in [`crate::synth`]); one ridge
//!   period per finger; ridges *grown* from a few random seeds by iterated Gabor
//!   filtering tuned to the local orientation and period (each pass filters, amplifies
//!   and clips), so the pattern's minutiae appear where growth fronts meet, as they do
//!   in SFinGe. The ground-truth (master) minutiae are the crossing-number minutiae of
//!   the thinned clean master pattern (thinning artefacts closer than 6 px dropped).
//! - **Impression**: the master seen through a placement (rotation, translation,
//!   sometimes a partial placement far off-centre), elastic distortion (the same skin
//!   model as [`crate::synth`]: a stretch that grows away from the pressure centre plus
//!   smooth bumps), a contact area that grows with pressure, ridge thickness that
//!   follows pressure (dry/light → thin, broken ridges; heavy → thick, merged),
//!   dry-skin blotches that wash ridges out, contrast and background changes, pixel
//!   noise and a light sensor blur. The truth minutiae go through the same placement
//!   and distortion; those outside the visible contact area, or within 16 px of its
//!   rim or of the sensor's edge, are dropped.
//!
//! [`ImageParams::default`] documents the figures. Everything is seeded ChaCha.

use crate::extract::skeleton_minutiae;
use crate::iso19794_4::GrayImage;
use crate::record::MinutiaType;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::f32::consts::{PI, TAU};

/// Generator parameters; lengths in pixels at 500 ppi, angles in degrees.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageParams {
    /// Semi-axes of the elliptical finger pad.
    pub pad: (f32, f32),
    /// Ridge period range (one value per finger).
    pub period: (f32, f32),
    /// Seeds of ridge growth: one per this many square pixels of pad.
    pub seed_area: f32,
    /// Gabor growth passes.
    pub growth_passes: usize,
    /// Sensor window (width, height).
    pub sensor: (u16, u16),
    pub rotation: f32,
    pub translation: f32,
    pub partial_probability: f32,
    pub partial_shift: (f32, f32),
    /// Elastic displacement (px) reached 150 px from the pressure centre.
    pub distortion: f32,
    /// Pressure in −p..p: ridge thickness and contact area.
    pub pressure: f32,
    /// Dry-skin blotches: strength 0..1 (share of the ink they can take away).
    pub dryness: f32,
    /// Pixel noise σ in gray levels.
    pub noise: f32,
    /// Ridge-to-valley contrast range in gray levels.
    pub contrast: (f32, f32),
}

/// The image benchmark's difficulty (see the crate README for why 0.8, not the
/// minutiae-level 0.6).
pub const IMAGE_BENCH_DIFFICULTY: f32 = 0.8;

impl Default for ImageParams {
    /// [`ImageParams::full`] at [`IMAGE_BENCH_DIFFICULTY`].
    fn default() -> Self {
        ImageParams::with_difficulty(IMAGE_BENCH_DIFFICULTY)
    }
}

impl ImageParams {
    /// Difficulty 1.0: rotation ±25°, translation ±40 px, 15 % partial placements
    /// shifted 70–120 px, distortion 12 px, pressure ±0.5, six dry blotches of up to
    /// full strength, noise σ 30, contrast 70–170 gray levels; sensor 256 × 360 px
    /// (12.8 × 18 mm, narrower than the pad: the sides are cut off).
    pub fn full() -> Self {
        ImageParams {
            pad: (150.0, 195.0),
            period: (8.5, 10.5),
            seed_area: 1800.0,
            growth_passes: 16,
            sensor: (256, 360),
            rotation: 25.0,
            translation: 40.0,
            partial_probability: 0.15,
            partial_shift: (70.0, 120.0),
            distortion: 12.0,
            pressure: 0.5,
            dryness: 1.0,
            noise: 30.0,
            contrast: (70.0, 170.0),
        }
    }

    /// Capture effects of [`ImageParams::full`] scaled by `d` (the finger itself does
    /// not change): 0 = the clean master seen straight on.
    pub fn with_difficulty(d: f32) -> Self {
        let p = ImageParams::full();
        let d = d.clamp(0.0, 1.0);
        ImageParams {
            rotation: p.rotation * d,
            translation: p.translation * d,
            partial_probability: p.partial_probability * d,
            distortion: p.distortion * d,
            pressure: p.pressure * d,
            dryness: p.dryness * d,
            noise: p.noise * d,
            contrast: (
                p.contrast.1 - (p.contrast.1 - p.contrast.0) * d,
                p.contrast.1,
            ),
            ..p
        }
    }
}

/// A ground-truth minutia in image coordinates (y down), direction in radians
/// counter-clockwise on screen (the 19794-2 convention).
#[derive(Clone, Copy, PartialEq)]
pub struct TrueMinutia {
    pub x: f32,
    pub y: f32,
    pub direction: f32,
    pub kind: MinutiaType,
}

impl std::fmt::Debug for TrueMinutia {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TrueMinutia(..)")
    }
}

/// A master finger: the grown ridge pattern and its minutiae.
#[derive(Clone)]
pub struct ImageFinger {
    /// Canvas size; the pad is centred.
    w: usize,
    h: usize,
    /// Grown ridge map in −1..1 (> 0 = ridge).
    ridge: Vec<f32>,
    pad: (f32, f32),
    /// In canvas coordinates relative to the centre (y down).
    truth: Vec<TrueMinutia>,
}

impl std::fmt::Debug for ImageFinger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageFinger")
            .field("canvas", &(self.w, self.h))
            .field("minutiae", &self.truth.len())
            .finish()
    }
}

/// One capture: the sensor image and the truth minutiae visible on it.
#[derive(Clone)]
pub struct ImageImpression {
    pub image: GrayImage,
    pub truth: Vec<TrueMinutia>,
}

impl std::fmt::Debug for ImageImpression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageImpression")
            .field("image", &self.image)
            .field("truth", &self.truth.len())
            .finish()
    }
}

fn rng_for(seed: u64, parts: &[u64]) -> ChaCha8Rng {
    // SplitMix64 over the parts, as in `synth`: independent streams per finger.
    let mut h = seed ^ 0x5EED_1A6E_0000_0001;
    for &p in parts {
        h = (h ^ p).wrapping_add(0x9E37_79B9_7F4A_7C15);
        h = (h ^ (h >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        h = (h ^ (h >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        h ^= h >> 31;
    }
    ChaCha8Rng::seed_from_u64(h)
}

fn gauss(rng: &mut ChaCha8Rng) -> f32 {
    let u: f32 = 1.0 - rng.random::<f32>();
    let v: f32 = rng.random();
    (-2.0 * u.ln()).sqrt() * (TAU * v).cos()
}

fn range(rng: &mut ChaCha8Rng, r: (f32, f32)) -> f32 {
    if r.1 > r.0 {
        rng.random_range(r.0..r.1)
    } else {
        r.0
    }
}

/// Orientation field (zero-pole model) in the canvas frame (y down, origin at the pad
/// centre): the core sits above the delta on screen.
struct Field {
    base: f32,
    cores: Vec<(f32, f32)>,
    deltas: Vec<(f32, f32)>,
    arch: f32,
}

impl Field {
    fn random(rng: &mut ChaCha8Rng) -> Field {
        let class = rng.random_range(0..100);
        let mut j = |s: f32| rng.random_range(-s..s);
        if class < 60 {
            let side = if j(1.0) > 0.0 { 1.0 } else { -1.0 };
            Field {
                base: j(0.25),
                cores: vec![(j(25.0), -30.0 + j(25.0))],
                deltas: vec![(side * (75.0 + j(25.0)), 85.0 + j(20.0))],
                arch: 0.0,
            }
        } else if class < 90 {
            let (cx, cy) = (j(20.0), -10.0 + j(20.0));
            Field {
                base: j(0.25),
                cores: vec![(cx - 12.0, cy - 8.0), (cx + 12.0, cy + 8.0)],
                deltas: vec![
                    (-95.0 + j(20.0), 100.0 + j(20.0)),
                    (95.0 + j(20.0), 100.0 + j(20.0)),
                ],
                arch: 0.0,
            }
        } else {
            Field {
                base: j(0.2),
                cores: vec![],
                deltas: vec![],
                arch: 0.45 + j(0.15),
            }
        }
    }

    /// Ridge orientation mod π (image frame angle, y down).
    fn at(&self, x: f32, y: f32) -> f32 {
        let mut o = self.base;
        for &(cx, cy) in &self.cores {
            o += 0.5 * (y - cy).atan2(x - cx);
        }
        for &(dx, dy) in &self.deltas {
            o -= 0.5 * (y - dy).atan2(x - dx);
        }
        o -= self.arch * (x / 90.0).sin() * (-(y * y) / (2.0 * 140.0 * 140.0)).exp();
        o
    }
}

const ORIENTATIONS: usize = 32;
/// Truth minutiae closer than this to the rim of the contact area or to the sensor's
/// edge are left out: no extractor can tell them from the rim's own artefacts (both
/// the built-in one and MINDTCT drop minutiae there).
const RIM: f32 = 16.0;
const R: isize = 6;

impl ImageFinger {
    /// Finger `id` of the population seeded by `seed`.
    pub fn new(params: &ImageParams, seed: u64, id: u64) -> ImageFinger {
        let mut rng = rng_for(seed, &[0xF1, id]);
        let field = Field::random(&mut rng);
        let period = range(&mut rng, params.period);
        let (a, b) = params.pad;
        let (w, h) = ((2.0 * a) as usize + 40, (2.0 * b) as usize + 40);
        let (cx, cy) = (w as f32 / 2.0, h as f32 / 2.0);
        // Grow a little beyond the pad so its rim has no growth-front artefacts.
        let inside = |x: usize, y: usize, k: f32| {
            let (u, v) = ((x as f32 - cx) / a, (y as f32 - cy) / b);
            u * u + v * v <= k * k
        };
        let obin: Vec<u8> = (0..w * h)
            .map(|i| {
                let t = field.at((i % w) as f32 - cx, (i / w) as f32 - cy);
                ((t.rem_euclid(PI) / PI * ORIENTATIONS as f32).round() as usize % ORIENTATIONS)
                    as u8
            })
            .collect();
        let sigma = 0.45 * period;
        let kernels: Vec<Vec<f32>> = (0..ORIENTATIONS)
            .map(|o| {
                let t = o as f32 * PI / ORIENTATIONS as f32;
                let (s, c) = t.sin_cos();
                let mut k = Vec::new();
                for dy in -R..=R {
                    for dx in -R..=R {
                        let (dx, dy) = (dx as f32, dy as f32);
                        let across = -dx * s + dy * c;
                        k.push(
                            (-(dx * dx + dy * dy) / (2.0 * sigma * sigma)).exp()
                                * (TAU * across / period).cos(),
                        );
                    }
                }
                let norm: f32 = k.iter().map(|v| v.abs()).sum();
                k.iter_mut().for_each(|v| *v *= 6.0 / norm);
                k
            })
            .collect();
        let mut ridge = vec![0f32; w * h];
        let seeds = (std::f32::consts::PI * a * b / params.seed_area).round() as usize;
        for _ in 0..seeds {
            let (x, y) = loop {
                let x = rng.random_range(R as usize..w - R as usize);
                let y = rng.random_range(R as usize..h - R as usize);
                if inside(x, y, 1.0) {
                    break (x, y);
                }
            };
            for dy in 0..2 {
                for dx in 0..2 {
                    ridge[(y + dy) * w + x + dx] = 1.0;
                }
            }
        }
        let active: Vec<usize> = (0..w * h)
            .filter(|&i| {
                let (x, y) = (i % w, i / w);
                x as isize >= R
                    && y as isize >= R
                    && (x as isize) < w as isize - R
                    && (y as isize) < h as isize - R
                    && inside(x, y, 1.08)
            })
            .collect();
        let side = (2 * R + 1) as usize;
        for _ in 0..params.growth_passes {
            let mut next = vec![0f32; w * h];
            for &i in &active {
                let k = &kernels[usize::from(obin[i])];
                let (x, y) = (i % w, i / w);
                let mut acc = 0.0;
                for (ky, row) in k.chunks_exact(side).enumerate() {
                    let base = (y + ky - R as usize) * w + x - R as usize;
                    for (kv, pv) in row.iter().zip(&ridge[base..base + side]) {
                        acc += kv * pv;
                    }
                }
                next[i] = acc.clamp(-1.0, 1.0);
            }
            ridge = next;
        }
        let binary: Vec<bool> = ridge.iter().map(|&v| v > 0.0).collect();
        let mask: Vec<bool> = (0..w * h).map(|i| inside(i % w, i / w, 0.97)).collect();
        let truth = skeleton_minutiae(&binary, w, h, &mask)
            .into_iter()
            .map(|(x, y, direction, kind)| TrueMinutia {
                x: x - cx,
                y: y - cy,
                direction,
                kind,
            })
            .collect();
        ImageFinger {
            w,
            h,
            ridge,
            pad: params.pad,
            truth,
        }
    }

    pub fn minutiae_count(&self) -> usize {
        self.truth.len()
    }

    fn sample(&self, x: f32, y: f32) -> f32 {
        let (x, y) = (x + self.w as f32 / 2.0, y + self.h as f32 / 2.0);
        if x < 0.0 || y < 0.0 || x >= (self.w - 1) as f32 || y >= (self.h - 1) as f32 {
            return 0.0;
        }
        let (x0, y0) = (x as usize, y as usize);
        let (fx, fy) = (x - x0 as f32, y - y0 as f32);
        let i = y0 * self.w + x0;
        let top = self.ridge[i] * (1.0 - fx) + self.ridge[i + 1] * fx;
        let bot = self.ridge[i + self.w] * (1.0 - fx) + self.ridge[i + self.w + 1] * fx;
        top * (1.0 - fy) + bot * fy
    }

    /// Impression `n` of this finger (`finger_id` keeps the streams apart).
    pub fn impression(
        &self,
        params: &ImageParams,
        seed: u64,
        finger_id: u64,
        n: u64,
    ) -> ImageImpression {
        let mut rng = rng_for(seed, &[0x1A, finger_id, n]);
        let rot = rng
            .random_range(-params.rotation..=params.rotation)
            .to_radians();
        let (mut tx, mut ty) = (
            rng.random_range(-params.translation..=params.translation),
            rng.random_range(-params.translation..=params.translation),
        );
        if rng.random_bool(f64::from(params.partial_probability.clamp(0.0, 1.0))) {
            let dir = rng.random_range(0.0..TAU);
            let d = range(&mut rng, params.partial_shift);
            tx += d * dir.cos();
            ty += d * dir.sin();
        }
        let centre = (rng.random_range(-40.0..40.0), rng.random_range(-40.0..40.0));
        let k = params.distortion / 150.0;
        let stretch: [f32; 4] = std::array::from_fn(|_| rng.random_range(-k..=k));
        let bumps: Vec<(f32, f32, f32, f32)> = (0..3)
            .map(|_| {
                (
                    rng.random_range(-150.0..150.0),
                    rng.random_range(-200.0..200.0),
                    0.5 * params.distortion * gauss(&mut rng),
                    0.5 * params.distortion * gauss(&mut rng),
                )
            })
            .collect();
        let displace = |x: f32, y: f32| {
            let (rx, ry) = (x - centre.0, y - centre.1);
            let fade = 1.0 - (-(rx * rx + ry * ry) / (2.0 * 80.0 * 80.0)).exp();
            let mut dx = fade * (stretch[0] * rx + stretch[1] * ry);
            let mut dy = fade * (stretch[2] * rx + stretch[3] * ry);
            for &(bx, by, ux, uy) in &bumps {
                let g = (-((x - bx).powi(2) + (y - by).powi(2)) / (2.0 * 110.0 * 110.0)).exp();
                dx += g * ux;
                dy += g * uy;
            }
            (x + dx, y + dy)
        };
        let (sin, cos) = rot.sin_cos();
        let place = |x: f32, y: f32| {
            let (dx, dy) = displace(x, y);
            (cos * dx - sin * dy + tx, sin * dx + cos * dy + ty)
        };
        // Sensor → finger: undo the rigid part, then invert the (small, smooth)
        // distortion by fixed-point iteration.
        let unplace = |qx: f32, qy: f32| {
            let (ux, uy) = (qx - tx, qy - ty);
            let (ux, uy) = (cos * ux + sin * uy, -sin * ux + cos * uy);
            let (mut px, mut py) = (ux, uy);
            for _ in 0..5 {
                let (dx, dy) = displace(px, py);
                px -= dx - ux;
                py -= dy - uy;
            }
            (px, py)
        };
        let pressure = rng.random_range(-params.pressure..=params.pressure);
        // Contact ellipse: light pressure touches less of the pad.
        let reach = 0.86 + 0.2 * pressure;
        let (a, b) = (self.pad.0 * reach, self.pad.1 * reach);
        let contrast = range(&mut rng, params.contrast);
        let background = rng.random_range(215.0..250.0);
        let blotches: Vec<(f32, f32, f32, f32)> = (0..6)
            .map(|_| {
                (
                    rng.random_range(-a..a),
                    rng.random_range(-b..b),
                    rng.random_range(20.0..55.0),
                    params.dryness * rng.random_range(0.3..1.0),
                )
            })
            .collect();
        let (sw, sh) = (usize::from(params.sensor.0), usize::from(params.sensor.1));
        let mut raw = vec![0f32; sw * sh];
        for iy in 0..sh {
            for ix in 0..sw {
                let (qx, qy) = (ix as f32 - sw as f32 / 2.0, iy as f32 - sh as f32 / 2.0);
                let (px, py) = unplace(qx, qy);
                let e = ((px / a).powi(2) + (py / b).powi(2)).sqrt();
                // Soft rim over ≈ 8 px.
                let contact = ((1.0 - e) * a.min(b) / 8.0).clamp(0.0, 1.0);
                let mut ink = 0.0;
                if contact > 0.0 {
                    let v = self.sample(px, py) + 0.45 * pressure;
                    ink = ((v + 0.3) / 0.6).clamp(0.0, 1.0);
                    ink = ink * ink * (3.0 - 2.0 * ink);
                    let mut dry = 0.0f32;
                    for &(bx, by, r, s) in &blotches {
                        dry += s * (-((px - bx).powi(2) + (py - by).powi(2)) / (2.0 * r * r)).exp();
                    }
                    ink *= contact * (1.0 - dry.min(0.95));
                }
                raw[iy * sw + ix] = background - contrast * ink + params.noise * gauss(&mut rng);
            }
        }
        // Sensor blur: 3 × 3 binomial.
        let mut pixels = vec![0u8; sw * sh];
        for iy in 0..sh {
            for ix in 0..sw {
                let mut acc = 0.0;
                for (dy, wy) in [(-1isize, 1.0f32), (0, 2.0), (1, 1.0)] {
                    for (dx, wx) in [(-1isize, 1.0f32), (0, 2.0), (1, 1.0)] {
                        let x = (ix as isize + dx).clamp(0, sw as isize - 1) as usize;
                        let y = (iy as isize + dy).clamp(0, sh as isize - 1) as usize;
                        acc += wx * wy * raw[y * sw + x];
                    }
                }
                pixels[iy * sw + ix] = (acc / 16.0).round().clamp(0.0, 255.0) as u8;
            }
        }
        let truth = self
            .truth
            .iter()
            .filter(|m| ((m.x / a).powi(2) + (m.y / b).powi(2)).sqrt() < 1.0 - RIM / a.min(b))
            .filter_map(|m| {
                let (x, y) = place(m.x, m.y);
                let (ex, ey) = place(m.x + 4.0 * m.direction.cos(), m.y - 4.0 * m.direction.sin());
                let (ix, iy) = (x + sw as f32 / 2.0, y + sh as f32 / 2.0);
                let margin = RIM;
                if ix < margin || iy < margin || ix > sw as f32 - margin || iy > sh as f32 - margin
                {
                    return None;
                }
                Some(TrueMinutia {
                    x: ix,
                    y: iy,
                    direction: (-(ey - y)).atan2(ex - x).rem_euclid(TAU),
                    kind: m.kind,
                })
            })
            .collect();
        ImageImpression {
            image: GrayImage {
                width: sw,
                height: sh,
                ppi: 500.0,
                pixels,
            },
            truth,
        }
    }
}

/// How many `found` minutiae (x, y, direction counter-clockwise in radians, image
/// frame) match a distinct truth minutia within `distance` px and `angle` degrees,
/// greedily by distance. Types are not compared (pressure flips them).
pub fn matched_truth(
    found: &[(f32, f32, f32)],
    truth: &[TrueMinutia],
    distance: f32,
    angle: f32,
) -> usize {
    let tol = angle.to_radians();
    let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
    for (i, f) in found.iter().enumerate() {
        for (j, t) in truth.iter().enumerate() {
            let d = (f.0 - t.x).hypot(f.1 - t.y);
            let da = (f.2 - t.direction).rem_euclid(TAU);
            if d <= distance && da.min(TAU - da) <= tol {
                pairs.push((d, i, j));
            }
        }
    }
    pairs.sort_by(|p, q| p.0.total_cmp(&q.0));
    let (mut used_f, mut used_t) = (vec![false; found.len()], vec![false; truth.len()]);
    let mut n = 0;
    for (_, i, j) in pairs {
        if !used_f[i] && !used_t[j] {
            used_f[i] = true;
            used_t[j] = true;
            n += 1;
        }
    }
    n
}
