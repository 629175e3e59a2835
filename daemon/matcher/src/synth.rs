//! Deterministic synthetic fingerprints at the minutiae level, for evaluation and
//! calibration (genuine and impostor sets).
//!
//! A *finger* is a master minutiae set on an elliptical pad (≈ 16 × 21 mm at 500 dpi)
//! whose minutia directions follow a ridge orientation field of a realistic class
//! (loop, whorl, arch — the zero-pole model: orientation = ½ Σ arg(z − core) −
//! ½ Σ arg(z − delta)), so that impostors share the global flow the way real fingers
//! do, which makes chance matches likelier than uniform random directions would.
//!
//! An *impression* places the finger on a sensor window and applies, in order:
//! rigid placement (rotation, translation; sometimes a partial print far off-centre),
//! elastic distortion (skin stretch that is zero under the pressure centre and grows
//! outwards, plus smooth random bumps; minutia directions follow the local rotation of
//! the displacement field), cropping to the sensor window, dropout (higher towards the
//! rim of the contact area), position and angle noise, type flips, and spurious
//! minutiae (mostly along the ridge flow). [`Params::default`] documents every figure.
//!
//! Everything is seeded ChaCha: the same seed yields the same data on every machine.

use crate::iso19794_2::IsoRecord;
use crate::record::{AngleUnit, FingerPosition, FingerView, ImageGeometry, Minutia, MinutiaType};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::f32::consts::{PI, TAU};

/// Generator parameters. Lengths in pixels at 500 dpi (≈ 0.05 mm), angles in degrees.
#[derive(Clone, Debug, PartialEq)]
pub struct Params {
    /// Minutiae on the whole finger pad (uniform in the range).
    pub master_minutiae: (usize, usize),
    /// Semi-axes of the elliptical finger pad.
    pub pad: (f32, f32),
    /// Minimum distance between master minutiae (about one ridge period).
    pub min_spacing: f32,
    /// Sensor capture window (width, height).
    pub sensor: (u16, u16),
    /// Maximum |rotation| of a placement.
    pub rotation: f32,
    /// Maximum |translation| per axis of a normal placement.
    pub translation: f32,
    /// Probability that a placement is partial: the pad is shifted by
    /// `partial_shift` in a random direction, so only part of it is on the sensor.
    pub partial_probability: f32,
    pub partial_shift: (f32, f32),
    /// Elastic distortion: displacement (px) reached 150 px from the pressure centre.
    pub distortion: f32,
    /// Position noise σ (px) and angle noise σ (degrees) per minutia.
    pub position_noise: f32,
    pub angle_noise: f32,
    /// Fraction of minutiae missed (uniform in the range per impression), plus
    /// `rim_dropout` more at the rim of the contact area.
    pub dropout: (f32, f32),
    pub rim_dropout: f32,
    /// Spurious minutiae as a fraction of the genuine ones kept (uniform in the range).
    pub spurious: (f32, f32),
    /// Probability that an ending reads as a bifurcation or vice versa.
    pub type_flip: f32,
    /// Probability of a poor capture (dry finger, bad placement): dropout in
    /// `poor_dropout`, noise ×1.8, finger quality 5–30 instead of 45–95.
    pub poor_probability: f32,
    pub poor_dropout: (f32, f32),
}

/// The benchmark's difficulty on the [`Params::with_difficulty`] scale, calibrated so
/// that NIST BOZORTH3 has an EER of a few percent on it, as published for such
/// matchers on real data (measured: 4.4 % at 0.6; 3.1 % at 0.5; 31 % at 1.0).
pub const BENCH_DIFFICULTY: f32 = 0.6;

impl Default for Params {
    /// [`Params::full`] at [`BENCH_DIFFICULTY`].
    fn default() -> Self {
        Params::with_difficulty(BENCH_DIFFICULTY)
    }
}

impl Params {
    /// Difficulty 1.0: the worst captures the generator is meant to model. Figures are
    /// documented on the fields.
    pub fn full() -> Self {
        Params {
            master_minutiae: (40, 75),
            pad: (165.0, 215.0),
            min_spacing: 11.0,
            sensor: (300, 380),
            rotation: 25.0,
            translation: 40.0,
            partial_probability: 0.15,
            partial_shift: (70.0, 120.0),
            distortion: 12.0,
            position_noise: 3.0,
            angle_noise: 9.0,
            dropout: (0.10, 0.35),
            rim_dropout: 0.3,
            spurious: (0.05, 0.30),
            type_flip: 0.1,
            poor_probability: 0.03,
            poor_dropout: (0.45, 0.65),
        }
    }
}

impl Params {
    /// The full difficulty scaled by `d` (0 = clean copies, 1 = [`Params::full`]):
    /// placement, distortion, noise, dropout, spurious minutiae, partial and poor
    /// captures all scale together. The knob used to calibrate the benchmark.
    pub fn with_difficulty(d: f32) -> Params {
        let p = Params::full();
        let d = d.max(0.0);
        let s2 = |r: (f32, f32)| (r.0 * d, r.1 * d);
        Params {
            rotation: p.rotation * d.min(1.0),
            translation: p.translation * d.min(1.0),
            partial_probability: (p.partial_probability * d).min(1.0),
            distortion: p.distortion * d,
            position_noise: p.position_noise * d,
            angle_noise: p.angle_noise * d,
            dropout: (s2(p.dropout).0.min(0.9), s2(p.dropout).1.min(0.9)),
            rim_dropout: p.rim_dropout * d,
            spurious: s2(p.spurious),
            type_flip: (p.type_flip * d).min(1.0),
            poor_probability: (p.poor_probability * d).min(1.0),
            ..p
        }
    }
}

#[derive(Clone, Copy)]
struct M {
    x: f32,
    y: f32,
    dir: f32,
    kind: MinutiaType,
    quality: u8,
}

/// A ridge orientation field (zero-pole model).
#[derive(Clone)]
struct Field {
    base: f32,
    cores: Vec<(f32, f32)>,
    deltas: Vec<(f32, f32)>,
    /// Arch: no singular points, a bump of this amplitude instead.
    arch: f32,
}

impl Field {
    /// Ridge orientation (mod π) at (x, y).
    fn at(&self, x: f32, y: f32) -> f32 {
        let mut o = self.base;
        for &(cx, cy) in &self.cores {
            o += 0.5 * (y - cy).atan2(x - cx);
        }
        for &(dx, dy) in &self.deltas {
            o -= 0.5 * (y - dy).atan2(x - dx);
        }
        o += self.arch * (x / 90.0).sin() * (-(y * y) / (2.0 * 150.0 * 150.0)).exp();
        o
    }
}

/// One synthetic finger: its master minutiae and its orientation field.
#[derive(Clone)]
pub struct Finger {
    master: Vec<M>,
    field: Field,
}

impl std::fmt::Debug for Finger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Finger")
            .field("minutiae", &self.master.len())
            .finish()
    }
}

fn rng_for(seed: u64, parts: &[u64]) -> ChaCha8Rng {
    // SplitMix64 over the parts: independent, reproducible streams per finger/impression.
    let mut h = seed ^ 0x9E37_79B9_7F4A_7C15;
    for &p in parts {
        h = (h ^ p).wrapping_add(0x9E37_79B9_7F4A_7C15);
        h = (h ^ (h >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        h = (h ^ (h >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        h ^= h >> 31;
    }
    ChaCha8Rng::seed_from_u64(h)
}

fn gauss(rng: &mut ChaCha8Rng) -> f32 {
    // Box–Muller; 1 - u keeps the logarithm finite.
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

impl Finger {
    /// Finger number `id` of the population seeded by `seed`.
    pub fn new(params: &Params, seed: u64, id: u64) -> Finger {
        let mut rng = rng_for(seed, &[0xF1, id]);
        let (a, b) = params.pad;
        let class = rng.random_range(0..100);
        let jitter = |rng: &mut ChaCha8Rng, s: f32| rng.random_range(-s..s);
        let field = if class < 60 {
            // Loop (left or right): a core above a delta, off to one side.
            let side = if rng.random_bool(0.5) { 1.0 } else { -1.0 };
            let core = (jitter(&mut rng, 30.0), 30.0 + jitter(&mut rng, 30.0));
            let delta = (
                side * (70.0 + jitter(&mut rng, 30.0)),
                -90.0 + jitter(&mut rng, 30.0),
            );
            Field {
                base: jitter(&mut rng, 0.3),
                cores: vec![core],
                deltas: vec![delta],
                arch: 0.0,
            }
        } else if class < 90 {
            // Whorl: two cores close together, two deltas low on each side.
            let (cx, cy) = (jitter(&mut rng, 25.0), 10.0 + jitter(&mut rng, 25.0));
            Field {
                base: jitter(&mut rng, 0.3),
                cores: vec![(cx - 12.0, cy + 8.0), (cx + 12.0, cy - 8.0)],
                deltas: vec![
                    (
                        -100.0 + jitter(&mut rng, 25.0),
                        -110.0 + jitter(&mut rng, 25.0),
                    ),
                    (
                        100.0 + jitter(&mut rng, 25.0),
                        -110.0 + jitter(&mut rng, 25.0),
                    ),
                ],
                arch: 0.0,
            }
        } else {
            Field {
                base: jitter(&mut rng, 0.2),
                cores: vec![],
                deltas: vec![],
                arch: 0.4 + jitter(&mut rng, 0.2),
            }
        };
        let count = rng.random_range(params.master_minutiae.0..=params.master_minutiae.1);
        let mut master: Vec<M> = Vec::with_capacity(count);
        let mut attempts = 0;
        while master.len() < count && attempts < 20_000 {
            attempts += 1;
            let x = rng.random_range(-a..a);
            let y = rng.random_range(-b..b);
            if (x / a).powi(2) + (y / b).powi(2) > 1.0 {
                continue;
            }
            if master
                .iter()
                .any(|m| (m.x - x).hypot(m.y - y) < params.min_spacing)
            {
                continue;
            }
            // A minutia points along the ridge, one of the two ways.
            let flip = if rng.random_bool(0.5) { PI } else { 0.0 };
            let dir = (field.at(x, y) + flip + 0.1 * gauss(&mut rng)).rem_euclid(TAU);
            let kind = if rng.random_bool(0.55) {
                MinutiaType::RidgeEnding
            } else {
                MinutiaType::Bifurcation
            };
            master.push(M {
                x,
                y,
                dir,
                kind,
                quality: rng.random_range(40..=100),
            });
        }
        Finger { master, field }
    }

    pub fn minutiae_count(&self) -> usize {
        self.master.len()
    }

    /// Impression number `n` of this finger (`finger_id` keeps streams apart).
    pub fn impression(&self, params: &Params, seed: u64, finger_id: u64, n: u64) -> Impression {
        let mut rng = rng_for(seed, &[0x1A, finger_id, n]);
        let poor = rng.random_bool(f64::from(params.poor_probability.clamp(0.0, 1.0)));
        let noise_gain = if poor { 1.8 } else { 1.0 };
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
        // Elastic distortion: a random linear stretch that fades in away from the
        // pressure centre, plus three smooth random bumps.
        let centre = (rng.random_range(-40.0..40.0), rng.random_range(-40.0..40.0));
        let k = params.distortion / 150.0;
        let stretch = [
            rng.random_range(-k..=k),
            rng.random_range(-k..=k),
            rng.random_range(-k..=k),
            rng.random_range(-k..=k),
        ];
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
                let w = (-((x - bx).powi(2) + (y - by).powi(2)) / (2.0 * 110.0 * 110.0)).exp();
                dx += w * ux;
                dy += w * uy;
            }
            (x + dx, y + dy)
        };
        let (sin, cos) = rot.sin_cos();
        let place = |x: f32, y: f32| {
            let (dx, dy) = displace(x, y);
            (cos * dx - sin * dy + tx, sin * dx + cos * dy + ty)
        };
        let (hw, hh) = (
            f32::from(params.sensor.0) / 2.0,
            f32::from(params.sensor.1) / 2.0,
        );
        let on_sensor = |x: f32, y: f32| x.abs() < hw - 6.0 && y.abs() < hh - 6.0;
        let dropout = if poor {
            range(&mut rng, params.poor_dropout)
        } else {
            range(&mut rng, params.dropout)
        };
        let (a, b) = params.pad;

        let mut out: Vec<M> = Vec::with_capacity(self.master.len() + 16);
        for m in &self.master {
            let (x, y) = place(m.x, m.y);
            if !on_sensor(x, y) {
                continue;
            }
            let rim = ((m.x / a).powi(2) + (m.y / b).powi(2)).sqrt();
            let p_drop = (dropout + params.rim_dropout * (rim - 0.7).max(0.0) / 0.3).min(0.95);
            if rng.random_bool(f64::from(p_drop)) {
                continue;
            }
            // The direction follows the displacement field's local rotation.
            let (ex, ey) = place(m.x + 4.0 * m.dir.cos(), m.y + 4.0 * m.dir.sin());
            let dir = (ey - y).atan2(ex - x)
                + params.angle_noise.to_radians() * noise_gain * gauss(&mut rng);
            let kind = if rng.random_bool(f64::from(params.type_flip)) {
                match m.kind {
                    MinutiaType::RidgeEnding => MinutiaType::Bifurcation,
                    _ => MinutiaType::RidgeEnding,
                }
            } else {
                m.kind
            };
            out.push(M {
                x: x + params.position_noise * noise_gain * gauss(&mut rng),
                y: y + params.position_noise * noise_gain * gauss(&mut rng),
                dir: dir.rem_euclid(TAU),
                kind,
                quality: if poor {
                    rng.random_range(5..=40)
                } else {
                    m.quality.saturating_sub(rng.random_range(0..20))
                },
            });
        }
        let spurious = (out.len() as f32 * range(&mut rng, params.spurious)).round() as usize;
        let mut attempts = 0;
        let mut added = 0;
        while added < spurious && attempts < 1000 {
            attempts += 1;
            // Somewhere on the pad, seen through the same placement.
            let (fx, fy) = (rng.random_range(-a..a), rng.random_range(-b..b));
            if (fx / a).powi(2) + (fy / b).powi(2) > 1.0 {
                continue;
            }
            let (x, y) = place(fx, fy);
            if !on_sensor(x, y) {
                continue;
            }
            let dir = if rng.random_bool(0.7) {
                let flip = if rng.random_bool(0.5) { PI } else { 0.0 };
                self.field.at(fx, fy) + rot + flip + 0.3 * gauss(&mut rng)
            } else {
                rng.random_range(0.0..TAU)
            };
            out.push(M {
                x,
                y,
                dir: dir.rem_euclid(TAU),
                kind: if rng.random_bool(0.5) {
                    MinutiaType::RidgeEnding
                } else {
                    MinutiaType::Bifurcation
                },
                quality: rng.random_range(5..=50),
            });
            added += 1;
        }
        // Extractors report minutiae in scan order, not master order.
        out.sort_by(|p, q| p.y.total_cmp(&q.y).then(p.x.total_cmp(&q.x)).reverse());
        out.truncate(255);
        let quality = if poor {
            rng.random_range(5..=30)
        } else {
            (95.0 - 120.0 * (dropout - params.dropout.0).max(0.0)).clamp(45.0, 95.0) as u8
        };
        Impression {
            minutiae: out,
            quality,
            sensor: params.sensor,
            poor,
        }
    }
}

/// One capture of a finger, in the sensor's frame (y up, origin at the window centre).
#[derive(Clone)]
pub struct Impression {
    minutiae: Vec<M>,
    pub quality: u8,
    sensor: (u16, u16),
    /// Generated as a poor capture (the policy should ask for a retry).
    pub poor: bool,
}

impl std::fmt::Debug for Impression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Impression")
            .field("minutiae", &self.minutiae.len())
            .field("quality", &self.quality)
            .field("poor", &self.poor)
            .finish()
    }
}

impl Impression {
    /// The ISO/IEC 19794-2 finger view (image pixels, y down, ISO angles).
    pub fn to_view(&self, position: FingerPosition) -> FingerView {
        let (w, h) = (f32::from(self.sensor.0), f32::from(self.sensor.1));
        let minutiae = self
            .minutiae
            .iter()
            .map(|m| Minutia {
                kind: m.kind,
                x: (m.x + w / 2.0).round().clamp(0.0, w - 1.0) as u16,
                y: (h / 2.0 - m.y).round().clamp(0.0, h - 1.0) as u16,
                angle_code: AngleUnit::Iso.code_for(m.dir.to_degrees()),
                quality: m.quality.min(100),
            })
            .collect();
        FingerView::new(position, self.quality, minutiae)
    }

    /// A one-view ISO/IEC 19794-2:2005 record at 500 dpi.
    pub fn to_iso(&self, position: FingerPosition) -> IsoRecord {
        IsoRecord {
            certification: 0,
            device_type: 0,
            geometry: self.geometry(),
            views: vec![self.to_view(position)],
        }
    }

    pub fn geometry(&self) -> ImageGeometry {
        ImageGeometry {
            width: self.sensor.0,
            height: self.sensor.1,
            x_resolution: 197,
            y_resolution: 197,
        }
    }

    pub fn minutiae_count(&self) -> usize {
        self.minutiae.len()
    }
}

/// A genuine/impostor evaluation set: `fingers` fingers × `impressions` each.
/// Genuine pairs are impressions of one finger; impostor pairs use the first
/// impression of two different fingers (the FVC protocol).
#[derive(Debug)]
pub struct Dataset {
    pub impressions: Vec<Vec<Impression>>,
}

impl Dataset {
    pub fn generate(params: &Params, seed: u64, fingers: usize, impressions: usize) -> Dataset {
        let impressions = (0..fingers as u64)
            .map(|f| {
                let finger = Finger::new(params, seed, f);
                (0..impressions as u64)
                    .map(|n| finger.impression(params, seed, f, n))
                    .collect()
            })
            .collect();
        Dataset { impressions }
    }

    /// (finger, impression) index pairs of all genuine comparisons (i < j).
    pub fn genuine_pairs(&self) -> Vec<((usize, usize), (usize, usize))> {
        let mut out = Vec::new();
        for (f, imps) in self.impressions.iter().enumerate() {
            for i in 0..imps.len() {
                for j in i + 1..imps.len() {
                    out.push(((f, i), (f, j)));
                }
            }
        }
        out
    }

    /// Impostor comparisons: impression 0 of finger a against impression 0 of b, a < b.
    pub fn impostor_pairs(&self) -> Vec<((usize, usize), (usize, usize))> {
        let n = self.impressions.len();
        let mut out = Vec::with_capacity(n * n.saturating_sub(1) / 2);
        for a in 0..n {
            for b in a + 1..n {
                out.push(((a, 0), (b, 0)));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matcher::{PreparedTemplate, compare};

    #[test]
    fn deterministic_per_seed() {
        let p = Params::default();
        let a = Finger::new(&p, 7, 3)
            .impression(&p, 7, 3, 1)
            .to_iso(FingerPosition::RIGHT_INDEX);
        let b = Finger::new(&p, 7, 3)
            .impression(&p, 7, 3, 1)
            .to_iso(FingerPosition::RIGHT_INDEX);
        assert_eq!(a, b);
        let c = Finger::new(&p, 8, 3)
            .impression(&p, 8, 3, 1)
            .to_iso(FingerPosition::RIGHT_INDEX);
        assert_ne!(a, c);
    }

    #[test]
    fn records_are_valid_and_plausible() {
        let p = Params::default();
        for f in 0..20 {
            let finger = Finger::new(&p, 1, f);
            assert!((40..=75).contains(&finger.minutiae_count()));
            for n in 0..3 {
                let imp = finger.impression(&p, 1, f, n);
                let rec = imp.to_iso(FingerPosition::LEFT_INDEX);
                let bytes = rec.to_bytes().unwrap();
                assert_eq!(IsoRecord::parse(&bytes).unwrap(), rec);
                assert!(imp.minutiae_count() <= 255);
            }
        }
    }

    #[test]
    fn genuine_pairs_outscore_impostor_pairs_on_average() {
        let p = Params::default();
        let d = Dataset::generate(&p, 11, 12, 3);
        let prep = |(f, i): (usize, usize)| {
            PreparedTemplate::from_iso(&d.impressions[f][i].to_iso(FingerPosition::RIGHT_INDEX), 0)
                .unwrap()
        };
        let mean = |pairs: Vec<((usize, usize), (usize, usize))>| {
            let n = pairs.len() as f32;
            pairs
                .into_iter()
                .map(|(a, b)| compare(&prep(a), &prep(b)))
                .sum::<f32>()
                / n
        };
        let (g, i) = (mean(d.genuine_pairs()), mean(d.impostor_pairs()));
        assert!(g > 4.0 * i, "genuine {g} impostor {i}");
    }
}
