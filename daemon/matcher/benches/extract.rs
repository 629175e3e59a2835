//! Image-level evaluation: synthetic finger images ([`torii_matcher::synth_image`]),
//! minutiae extraction, matching; with `--features bozorth3` NIST MINDTCT (through
//! nbis-rs) extracts from the same images in the same run, and its minutiae are matched
//! both by torii's matcher and by BOZORTH3 (NIST's whole pipeline).
//!
//! `cargo bench -p torii-matcher --bench extract [--features bozorth3]`
//!
//! Environment: `TORII_IMG_FINGERS` (default 100 fingers × 3 impressions: 300 genuine,
//! 44 550 impostor comparisons — every pair of impressions of different fingers),
//! `TORII_IMG_IMPRESSIONS`, `TORII_IMG_DIFFICULTY` (default 0.8, see
//! [`torii_matcher::synth_image::ImageParams`]).
//!
//! Ground truth: an extracted minutia counts as true if a distinct truth minutia lies
//! within 10 px (about one ridge period) and 30°; types are not compared.

use std::time::{Duration, Instant};
use torii_matcher::extract::extract;
use torii_matcher::record::{AngleUnit, FingerPosition, FingerView, ImageGeometry, Minutia};
use torii_matcher::synth_image::{
    IMAGE_BENCH_DIFFICULTY, ImageFinger, ImageImpression, ImageParams, matched_truth,
};
use torii_matcher::{PreparedTemplate, compare};

const SEED: u64 = 0x1A6E_2026;
const TOL_PX: f32 = 10.0;
const TOL_DEG: f32 = 30.0;

type Pair = ((usize, usize), (usize, usize));

fn env(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn eer(genuine: &[f64], impostor: &[f64]) -> f64 {
    let mut all: Vec<(f64, bool)> = genuine
        .iter()
        .map(|&g| (g, true))
        .chain(impostor.iter().map(|&i| (i, false)))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (ng, ni) = (genuine.len() as f64, impostor.len() as f64);
    let (mut g_below, mut i_below) = (0.0, 0.0);
    let mut best = (f64::MAX, 0.5);
    let mut k = 0;
    while k < all.len() {
        let v = all[k].0;
        while k < all.len() && all[k].0 == v {
            if all[k].1 {
                g_below += 1.0;
            } else {
                i_below += 1.0;
            }
            k += 1;
        }
        let (fnmr, fmr) = (g_below / ng, 1.0 - i_below / ni);
        if (fnmr - fmr).abs() < best.0 {
            best = ((fnmr - fmr).abs(), (fnmr + fmr) / 2.0);
        }
    }
    best.1
}

fn det(name: &str, genuine: &[f64], impostor: &[f64]) {
    let mut imp = impostor.to_vec();
    imp.sort_by(|a, b| b.total_cmp(a));
    let fnmr_at = |fmr: f64| -> Option<f64> {
        if fmr * (imp.len() as f64) < 3.0 {
            return None;
        }
        let allowed = (fmr * imp.len() as f64).floor() as usize;
        let t = imp[allowed.min(imp.len() - 1)];
        Some(genuine.iter().filter(|&&g| g <= t).count() as f64 / genuine.len() as f64)
    };
    let mut line = format!("{name:<26} EER {:>6.2} %", 100.0 * eer(genuine, impostor));
    for fmr in [1e-2, 1e-3, 1e-4] {
        match fnmr_at(fmr) {
            Some(v) => line += &format!(" | FNMR@{:.2}% {:>6.2} %", 100.0 * fmr, 100.0 * v),
            None => line += &format!(" | FNMR@{:.2}%    n/a", 100.0 * fmr),
        }
    }
    println!("{line}");
}

/// Per-extractor tallies.
#[derive(Default)]
struct Tally {
    time: Duration,
    images: usize,
    failures: usize,
    extracted: usize,
    truth: usize,
    matched: usize,
    /// Matched with every direction turned half a turn (a convention check).
    matched_flipped: usize,
}

impl Tally {
    fn add(&mut self, found: &[(f32, f32, f32)], imp: &ImageImpression, t: Duration) {
        self.time += t;
        self.images += 1;
        self.extracted += found.len();
        self.truth += imp.truth.len();
        self.matched += matched_truth(found, &imp.truth, TOL_PX, TOL_DEG);
        let flipped: Vec<_> = found
            .iter()
            .map(|&(x, y, d)| (x, y, d + std::f32::consts::PI))
            .collect();
        self.matched_flipped += matched_truth(&flipped, &imp.truth, TOL_PX, TOL_DEG);
    }

    fn print(&self, name: &str) {
        let ms = self.time.as_secs_f64() * 1e3 / self.images.max(1) as f64;
        println!(
            "{name:<26} {ms:>7.1} ms/image | {:>5.1} minutiae/image | true {:>5.1} % of extracted \
             (directions flipped: {:.1} %) | found {:>5.1} % of truth | failures {}",
            self.extracted as f64 / self.images.max(1) as f64,
            100.0 * self.matched as f64 / self.extracted.max(1) as f64,
            100.0 * self.matched_flipped as f64 / self.extracted.max(1) as f64,
            100.0 * self.matched as f64 / self.truth.max(1) as f64,
            self.failures,
        );
    }
}

/// A template from (x, y, direction, minutia quality) with the matcher's own cap.
fn template(found: &[(f32, f32, f32, u8)], quality: u8, w: usize, h: usize) -> PreparedTemplate {
    let minutiae = found
        .iter()
        .map(|&(x, y, d, q)| Minutia {
            kind: torii_matcher::record::MinutiaType::RidgeEnding,
            x: (x.round().max(0.0) as u16).min(w as u16 - 1),
            y: (y.round().max(0.0) as u16).min(h as u16 - 1),
            angle_code: AngleUnit::Iso.code_for(d.to_degrees()),
            quality: q,
        })
        .collect();
    let view = FingerView::new(FingerPosition::RIGHT_INDEX, quality, minutiae);
    PreparedTemplate::from_view(
        &view,
        ImageGeometry {
            width: w as u16,
            height: h as u16,
            x_resolution: 197,
            y_resolution: 197,
        },
        AngleUnit::Iso,
    )
}

fn scores<T>(pairs: &[Pair], items: &[Vec<T>], f: impl Fn(&T, &T) -> f64) -> (Vec<f64>, f64) {
    let start = Instant::now();
    let out: Vec<f64> = pairs
        .iter()
        .map(|&((fa, ia), (fb, ib))| f(&items[fa][ia], &items[fb][ib]))
        .collect();
    let rate = pairs.len() as f64 / start.elapsed().as_secs_f64();
    (out, rate)
}

#[cfg(feature = "bozorth3")]
fn pgm(img: &torii_matcher::iso19794_4::GrayImage) -> Vec<u8> {
    // nbis-rs takes an encoded image; binary PGM costs nothing to write or read.
    let mut out = format!("P5\n{} {}\n255\n", img.width, img.height).into_bytes();
    out.extend_from_slice(&img.pixels);
    out
}

fn main() {
    let fingers = env("TORII_IMG_FINGERS", 100.0) as usize;
    let impressions = env("TORII_IMG_IMPRESSIONS", 3.0) as usize;
    let difficulty = env("TORII_IMG_DIFFICULTY", f64::from(IMAGE_BENCH_DIFFICULTY)) as f32;
    let params = ImageParams::with_difficulty(difficulty);
    println!(
        "{fingers} fingers x {impressions} impressions, difficulty {difficulty}, seed {SEED:#x}"
    );
    println!("{params:?}");

    let start = Instant::now();
    let mut images: Vec<Vec<ImageImpression>> = Vec::with_capacity(fingers);
    let mut master_minutiae = 0;
    for f in 0..fingers as u64 {
        let finger = ImageFinger::new(&params, SEED, f);
        master_minutiae += finger.minutiae_count();
        images.push(
            (0..impressions as u64)
                .map(|n| finger.impression(&params, SEED, f, n))
                .collect(),
        );
    }
    println!(
        "generated in {:.1} s; {:.1} master minutiae per finger, {:.1} truth minutiae per image",
        start.elapsed().as_secs_f64(),
        master_minutiae as f64 / fingers as f64,
        images
            .iter()
            .flatten()
            .map(|i| i.truth.len())
            .sum::<usize>() as f64
            / (fingers * impressions) as f64
    );

    let mut genuine: Vec<Pair> = Vec::new();
    let mut impostor: Vec<Pair> = Vec::new();
    for fa in 0..fingers {
        for ia in 0..impressions {
            for fb in fa..fingers {
                for ib in 0..impressions {
                    if fa == fb && ib <= ia {
                        continue;
                    }
                    if fa == fb {
                        genuine.push(((fa, ia), (fb, ib)));
                    } else {
                        impostor.push(((fa, ia), (fb, ib)));
                    }
                }
            }
        }
    }
    println!(
        "{} genuine, {} impostor comparisons; truth tolerance {TOL_PX} px, {TOL_DEG}°",
        genuine.len(),
        impostor.len()
    );

    // Built-in extractor.
    let mut tally = Tally::default();
    let mut builtin: Vec<Vec<PreparedTemplate>> = Vec::new();
    for row in &images {
        let mut out = Vec::new();
        for imp in row {
            let t = Instant::now();
            let result = extract(&imp.image);
            let elapsed = t.elapsed();
            let (found, q) = match &result {
                Ok(e) => (
                    e.minutiae
                        .iter()
                        .map(|m| (m.x, m.y, m.direction))
                        .collect::<Vec<_>>(),
                    e.quality,
                ),
                Err(_) => {
                    tally.failures += 1;
                    (Vec::new(), 0)
                }
            };
            tally.add(&found, imp, elapsed);
            // Through the real record path: Extraction → 19794-2 → prepared template.
            out.push(match result {
                Ok(e) => PreparedTemplate::from_view(
                    &e.to_view(FingerPosition::RIGHT_INDEX),
                    e.geometry(),
                    AngleUnit::Iso,
                ),
                Err(_) => template(&[], q, imp.image.width, imp.image.height),
            });
        }
        builtin.push(out);
    }

    #[cfg(feature = "bozorth3")]
    let (mindtct_tally, mindtct_torii, mindtct_nist) = {
        let mut tally = Tally::default();
        let mut torii = Vec::new();
        let mut nist = Vec::new();
        for row in &images {
            let (mut t_row, mut n_row) = (Vec::new(), Vec::new());
            for imp in row {
                let bytes = pgm(&imp.image);
                let t = Instant::now();
                let result = nbis::extract_minutiae(&bytes, Some(500.0));
                let elapsed = t.elapsed();
                let found: Vec<(f32, f32, f32, u8)> = match &result {
                    Ok(m) => m
                        .get()
                        .iter()
                        .map(|m| {
                            (
                                m.x() as f32,
                                m.y() as f32,
                                (m.angle() as f32).to_radians(),
                                (m.reliability() * 100.0).round().clamp(1.0, 100.0) as u8,
                            )
                        })
                        .collect(),
                    Err(_) => {
                        tally.failures += 1;
                        Vec::new()
                    }
                };
                let xyd: Vec<_> = found.iter().map(|&(x, y, d, _)| (x, y, d)).collect();
                tally.add(&xyd, imp, elapsed);
                t_row.push(template(&found, 60, imp.image.width, imp.image.height));
                n_row.push(result.ok());
            }
            torii.push(t_row);
            nist.push(n_row);
        }
        (tally, torii, nist)
    };

    println!("\nextraction (same images, same run):");
    tally.print("built-in");
    #[cfg(feature = "bozorth3")]
    {
        mindtct_tally.print("MINDTCT (nbis-rs)");
        println!(
            "{:<26} {:.2} (built-in time / MINDTCT time)",
            "ratio",
            tally.time.as_secs_f64() / mindtct_tally.time.as_secs_f64()
        );
    }

    println!("\nmatching:");
    let (g, _) = scores(&genuine, &builtin, |a, b| f64::from(compare(a, b)));
    let (i, rate) = scores(&impostor, &builtin, |a, b| f64::from(compare(a, b)));
    det("built-in + torii", &g, &i);
    println!("{:<26} {rate:.0} comparisons/s", "");
    #[cfg(feature = "bozorth3")]
    {
        let (g, _) = scores(&genuine, &mindtct_torii, |a, b| f64::from(compare(a, b)));
        let (i, _) = scores(&impostor, &mindtct_torii, |a, b| f64::from(compare(a, b)));
        det("MINDTCT + torii", &g, &i);
        let bz = |a: &Option<nbis::Minutiae>, b: &Option<nbis::Minutiae>| match (a, b) {
            (Some(a), Some(b)) => f64::from(a.compare(b)),
            _ => 0.0,
        };
        let (g, _) = scores(&genuine, &mindtct_nist, bz);
        let (i, rate) = scores(&impostor, &mindtct_nist, bz);
        det("MINDTCT + BOZORTH3", &g, &i);
        println!("{:<26} {rate:.0} comparisons/s", "");
    }
}
