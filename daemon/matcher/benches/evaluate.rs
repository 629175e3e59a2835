//! Accuracy and speed of torii's matcher (and NIST BOZORTH3 with `--features bozorth3`)
//! on the same synthetic data, in the same run.
//!
//! `cargo bench -p torii-matcher --bench evaluate [--features bozorth3]`
//!
//! Environment: `TORII_EVAL_FINGERS` (default 400 fingers × 4 impressions),
//! `TORII_CALIBRATE=<fingers>` prints fresh calibration tables instead, the
//! single-finger `TABLE` and the two-finger `FUSED_TABLE` (`<fingers>` travelers,
//! `TORII_CALIBRATE_TRAVELERS` to change; see `src/calibration.rs`).

use std::time::Instant;
use torii_matcher::policy::{Decision, FingerPair, Mode, Policy, verify};
use torii_matcher::record::FingerPosition;
use torii_matcher::synth::{Dataset, Params};
use torii_matcher::{PreparedTemplate, compare};

/// The evaluation population; the shipped calibration table comes from another seed.
const EVAL_SEED: u64 = 0x7041_2026;
const CALIBRATION_SEED: u64 = 0xCA11_B8A7;

type Pair = ((usize, usize), (usize, usize));

struct Scores {
    genuine: Vec<f64>,
    impostor: Vec<f64>,
    per_second: f64,
}

fn det(name: &str, s: &Scores) -> f64 {
    let mut imp = s.impostor.clone();
    imp.sort_by(|a, b| b.total_cmp(a));
    let fnmr_at = |fmr: f64| -> Option<f64> {
        let allowed = (fmr * imp.len() as f64).floor() as usize;
        // Fewer than ~3 impostors at this rate: the point is not measurable.
        if fmr * (imp.len() as f64) < 3.0 {
            return None;
        }
        let t = imp[allowed.min(imp.len() - 1)];
        Some(s.genuine.iter().filter(|&&g| g <= t).count() as f64 / s.genuine.len() as f64)
    };
    let eer = eer(&s.genuine, &s.impostor);
    let mut line = format!("{name:<10} EER {:>6.2} %", 100.0 * eer);
    for fmr in [1e-2, 1e-3, 5e-4, 1e-4] {
        match fnmr_at(fmr) {
            Some(v) => line += &format!(" | FNMR@{:.2}% {:>6.2} %", 100.0 * fmr, 100.0 * v),
            None => line += &format!(" | FNMR@{:.2}%    n/a", 100.0 * fmr),
        }
    }
    if s.per_second > 0.0 {
        line += &format!(" | {:>9.0} cmp/s", s.per_second);
    }
    println!("{line}");
    eer
}

fn eer(genuine: &[f64], impostor: &[f64]) -> f64 {
    let mut all: Vec<(f64, bool)> = genuine
        .iter()
        .map(|&g| (g, true))
        .chain(impostor.iter().map(|&i| (i, false)))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Threshold just above all[k]: FNMR = genuine ≤ t, FMR = impostors > t.
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

fn run<T>(
    pairs_g: &[Pair],
    pairs_i: &[Pair],
    prepared: &[Vec<T>],
    cmp: impl Fn(&T, &T) -> f64,
) -> Scores {
    let score = |pairs: &[Pair]| -> Vec<f64> {
        pairs
            .iter()
            .map(|&((fa, ia), (fb, ib))| cmp(&prepared[fa][ia], &prepared[fb][ib]))
            .collect()
    };
    let start = Instant::now();
    let genuine = score(pairs_g);
    let impostor = score(pairs_i);
    let per_second = (pairs_g.len() + pairs_i.len()) as f64 / start.elapsed().as_secs_f64();
    Scores {
        genuine,
        impostor,
        per_second,
    }
}

fn calibrate(fingers: usize) {
    let params = Params::default();
    let data = Dataset::generate(&params, CALIBRATION_SEED, fingers, 1);
    let prepared: Vec<PreparedTemplate> = data
        .impressions
        .iter()
        .map(|f| PreparedTemplate::from_iso(&f[0].to_iso(FingerPosition::RIGHT_INDEX), 0).unwrap())
        .collect();
    let n = prepared.len();
    // Two threads: each takes every other row.
    let mut scores: Vec<f32> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|t| {
                let prepared = &prepared;
                s.spawn(move || {
                    let mut out = Vec::new();
                    for a in (t..n).step_by(2) {
                        for b in a + 1..n {
                            out.push(compare(&prepared[a], &prepared[b]));
                        }
                    }
                    out
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    scores.sort_by(|a, b| b.total_cmp(a));
    let total = scores.len();
    println!("// {total} impostor comparisons, {fingers} fingers, seed {CALIBRATION_SEED:#x}");
    println!("// (raw score, FMR = share of impostor scores >= it)");
    let mut fmr = 0.5f64;
    while fmr * total as f64 >= 2.0 {
        let k = ((fmr * total as f64).ceil() as usize).clamp(1, total) - 1;
        println!("    ({:.4}, {:e}),", scores[k], fmr);
        fmr /= 10f64.sqrt();
    }
    println!("// max impostor score {:.4}", scores[0]);
    // The fused table uses `fingers` travelers (2 × fingers fingers, unless
    // TORII_CALIBRATE_TRAVELERS says otherwise): 4× the transactions of `fingers / 2`
    // travelers, for a tail measured as far as the single table's. The first fingers
    // are the single table's (the generator is seeded per finger).
    let travelers = std::env::var("TORII_CALIBRATE_TRAVELERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(fingers);
    if 2 * travelers == fingers {
        calibrate_fusion(&data);
    } else {
        calibrate_fusion(&Dataset::generate(
            &params,
            CALIBRATION_SEED,
            2 * travelers,
            1,
        ));
    }
}

/// The fused table (`FUSED_TABLE` in `src/calibration.rs`): two-finger impostor
/// transactions on the same calibration set, built as the benchmark builds its own —
/// travelers are finger pairs (2t, 2t + 1), traveler b's fingers as probes against
/// traveler a's references, a < b — through [`verify`] (in both-must-pass mode, which
/// needs no fused table), the fused score being the sum of the two calibrated scores
/// exactly as score fusion adds them. Transactions the policy would retry (poor probe)
/// are left out, as the benchmark leaves them out of its FMR.
fn calibrate_fusion(data: &Dataset) {
    let prepared: Vec<PreparedTemplate> = data
        .impressions
        .iter()
        .map(|f| PreparedTemplate::from_iso(&f[0].to_iso(FingerPosition::RIGHT_INDEX), 0).unwrap())
        .collect();
    let travelers = prepared.len() / 2;
    let policy = Policy {
        mode: Mode::BothMustPass,
        ..Policy::default()
    };
    let mut fused: Vec<f64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|t| {
                let prepared = &prepared;
                s.spawn(move || {
                    let mut out = Vec::new();
                    for a in (t..travelers).step_by(2) {
                        for b in a + 1..travelers {
                            let pairs = [
                                FingerPair {
                                    reference: &prepared[2 * a],
                                    probe: &prepared[2 * b],
                                },
                                FingerPair {
                                    reference: &prepared[2 * a + 1],
                                    probe: &prepared[2 * b + 1],
                                },
                            ];
                            // A reference too poor to enrol is no transaction either.
                            let Ok(v) = verify(&policy, &pairs) else {
                                continue;
                            };
                            if v.decision != Decision::Retry {
                                out.push(v.comparisons.iter().map(|c| c.score).sum());
                            }
                        }
                    }
                    out
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    fused.sort_by(|a, b| b.total_cmp(a));
    let total = fused.len();
    println!(
        "// FUSED_TABLE: {total} two-finger impostor transactions, {travelers} travelers, seed {CALIBRATION_SEED:#x}"
    );
    println!("// (fused score, FMR = share of impostor transactions with a fused score >= it)");
    let mut fmr = 0.5f64;
    while fmr * total as f64 >= 2.0 {
        let k = ((fmr * total as f64).ceil() as usize).clamp(1, total) - 1;
        println!("    ({:.4}, {:e}),", fused[k], fmr);
        fmr /= 10f64.sqrt();
    }
    println!("// max impostor fused score {:.4}", fused[0]);
}

fn main() {
    if let Some(f) = std::env::var("TORII_CALIBRATE")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        calibrate(f);
        return;
    }
    let fingers: usize = std::env::var("TORII_EVAL_FINGERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400);
    let impressions = 4;
    let params = std::env::var("TORII_DIFFICULTY")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or_else(Params::default, Params::with_difficulty);
    println!("synthetic set: {fingers} fingers × {impressions} impressions, seed {EVAL_SEED:#x}");
    println!("generator: {params:?}");
    let data = Dataset::generate(&params, EVAL_SEED, fingers, impressions);
    let records: Vec<Vec<Vec<u8>>> = data
        .impressions
        .iter()
        .map(|f| {
            f.iter()
                .map(|i| i.to_iso(FingerPosition::RIGHT_INDEX).to_bytes().unwrap())
                .collect()
        })
        .collect();
    let genuine = data.genuine_pairs();
    let impostor = data.impostor_pairs();
    println!(
        "{} genuine, {} impostor single-finger comparisons",
        genuine.len(),
        impostor.len()
    );
    let start = Instant::now();
    let prepared: Vec<Vec<PreparedTemplate>> = records
        .iter()
        .map(|f| {
            f.iter()
                .map(|r| PreparedTemplate::from_iso_bytes(r, 0).unwrap())
                .collect()
        })
        .collect();
    let prep_us = start.elapsed().as_secs_f64() * 1e6 / (fingers * impressions) as f64;
    println!("template preparation (parse + features): {prep_us:.1} µs each");

    let torii = run(&genuine, &impostor, &prepared, |a, b| {
        f64::from(compare(a, b))
    });
    let torii_eer = det("torii", &torii);

    #[cfg(feature = "bozorth3")]
    {
        let loaded: Vec<Vec<nbis::Minutiae>> = records
            .iter()
            .map(|f| {
                f.iter()
                    .map(|r| nbis::load_iso_19794_2_2005(r).unwrap())
                    .collect()
            })
            .collect();
        let bz = run(&genuine, &impostor, &loaded, |a, b| f64::from(a.compare(b)));
        let bz_eer = det("BOZORTH3", &bz);
        println!(
            "torii / BOZORTH3: EER ratio {:.3}, speed ratio {:.2}",
            torii_eer / bz_eer.max(1e-9),
            torii.per_second / bz.per_second
        );
    }
    #[cfg(not(feature = "bozorth3"))]
    println!("BOZORTH3: not built (run with --features bozorth3)");
    let _ = torii_eer;

    two_finger(&data);
}

/// Two-finger verification: travelers are finger pairs (2t, 2t + 1). Genuine: the
/// reference is impression 0, the probes impression k (1..) of both fingers. Impostor:
/// traveler a's impressions 0 against traveler b's, a < b.
fn two_finger(data: &Dataset) {
    let prepared: Vec<Vec<PreparedTemplate>> = data
        .impressions
        .iter()
        .enumerate()
        .map(|(f, imps)| {
            let pos = if f % 2 == 0 {
                FingerPosition::RIGHT_INDEX
            } else {
                FingerPosition::LEFT_INDEX
            };
            imps.iter()
                .map(|i| PreparedTemplate::from_iso(&i.to_iso(pos), 0).unwrap())
                .collect()
        })
        .collect();
    let travelers = prepared.len() / 2;
    let impressions = prepared.first().map_or(0, Vec::len);
    for mode in [Mode::ScoreFusion, Mode::BothMustPass] {
        let policy = Policy {
            mode,
            ..Policy::default()
        };
        let run = |a: usize, ia: usize, b: usize, ib: usize| {
            let pairs = [
                FingerPair {
                    reference: &prepared[2 * a][ia],
                    probe: &prepared[2 * b][ib],
                },
                FingerPair {
                    reference: &prepared[2 * a + 1][ia],
                    probe: &prepared[2 * b + 1][ib],
                },
            ];
            verify(&policy, &pairs).unwrap()
        };
        let (mut g, mut gi) = (Vec::new(), Vec::new());
        let mut g_retry = 0;
        let (mut g_nomatch, mut g_decided) = (0usize, 0usize);
        for t in 0..travelers {
            for k in 1..impressions {
                let v = run(t, 0, t, k);
                g.push(
                    v.fused.map_or(
                        v.comparisons
                            .iter()
                            .map(|c| c.score)
                            .fold(f64::MAX, f64::min),
                        |f| f.0,
                    ),
                );
                match v.decision {
                    Decision::Retry => g_retry += 1,
                    Decision::NoMatch => {
                        g_nomatch += 1;
                        g_decided += 1
                    }
                    Decision::Match => g_decided += 1,
                }
            }
        }
        let (mut i_match, mut i_decided) = (0usize, 0usize);
        for a in 0..travelers {
            for b in a + 1..travelers {
                let v = run(a, 0, b, 0);
                gi.push(
                    v.fused.map_or(
                        v.comparisons
                            .iter()
                            .map(|c| c.score)
                            .fold(f64::MAX, f64::min),
                        |f| f.0,
                    ),
                );
                if v.decision != Decision::Retry {
                    i_decided += 1;
                    if v.decision == Decision::Match {
                        i_match += 1;
                    }
                }
            }
        }
        println!(
            "two-finger {mode:?} at target FMR {:.2} %: FNMR {:.2} % ({g_nomatch}/{g_decided}), retries {:.2} % of genuine, measured FMR {:.3} % ({i_match}/{i_decided})",
            100.0 * policy.target_fmr,
            100.0 * g_nomatch as f64 / g_decided.max(1) as f64,
            100.0 * g_retry as f64 / (g_decided + g_retry).max(1) as f64,
            100.0 * i_match as f64 / i_decided.max(1) as f64,
        );
        let s = Scores {
            genuine: g,
            impostor: gi,
            per_second: 0.0,
        };
        det(
            &format!(
                "2F {}",
                if mode == Mode::ScoreFusion {
                    "fusion"
                } else {
                    "both"
                }
            ),
            &s,
        );
    }
}
