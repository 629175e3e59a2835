//! Two-finger verification policy for the Trusted Traveler Program.
//!
//! A traveler presents the two registered fingers; each probe is compared with its
//! reference. Two modes:
//!
//! - [`Mode::BothMustPass`]: each finger must pass its own threshold, set at the target
//!   FMR. The system FMR is then at most the target (about its square if the two
//!   fingers' impostor scores are independent): conservative.
//! - [`Mode::ScoreFusion`] (default): the calibrated scores `-log10 FMR` of the two
//!   fingers are added — the log of the product of the two p-values, i.e. Fisher's
//!   method — and the sum is compared with the threshold at which two independent
//!   impostor fingers reach it with probability equal to the target:
//!   `P(-ln(p1·p2) ≥ x) = e^(-x)·(1 + x)`. One finger placed badly but matching is
//!   then carried by a clearly matching other finger, which is what fusion is for.
//!
//! Capture quality counts: a probe whose finger quality is below `min_quality` or with
//! fewer than `min_minutiae` minutiae is a **retry** ("place the finger again"), never
//! a mismatch. Every comparison's score and threshold is returned, for the record
//! (BSI TR-03121 logs both for every comparison).

use crate::calibration::{CalibrationError, Threshold, calibrated_score};
use crate::matcher::{PreparedTemplate, compare};
use crate::record::FingerPosition;

/// How the two fingers are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    BothMustPass,
    ScoreFusion,
}

/// The configured policy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    pub mode: Mode,
    /// Target false match rate of the whole two-finger verification (EES: 5e-4).
    pub target_fmr: f64,
    /// Probe finger quality (0..=100) below which the capture is retried.
    pub min_quality: u8,
    /// Probe minutiae below which the capture is retried.
    pub min_minutiae: usize,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            mode: Mode::ScoreFusion,
            target_fmr: 5e-4,
            min_quality: 20,
            min_minutiae: 10,
        }
    }
}

/// One finger to verify: the enrolled reference and the live probe.
#[derive(Debug, Clone, Copy)]
pub struct FingerPair<'a> {
    pub reference: &'a PreparedTemplate,
    pub probe: &'a PreparedTemplate,
}

/// What happened to one finger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FingerOutcome {
    Pass,
    Fail,
    /// The probe capture is too poor to decide on.
    PoorCapture,
}

/// One comparison, for the record. Scores are on the calibrated `-log10 FMR` scale.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Comparison {
    pub position: FingerPosition,
    pub raw_score: f32,
    pub score: f64,
    /// The per-finger threshold (both-must-pass), or the fused threshold (fusion).
    pub threshold: f64,
    pub probe_quality: u8,
    pub probe_minutiae: usize,
    pub outcome: FingerOutcome,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Match,
    NoMatch,
    /// Capture again: a probe was too poor to decide on.
    Retry,
}

/// The result of a verification: the decision and every comparison behind it.
#[derive(Debug, Clone, PartialEq)]
pub struct Verification {
    pub decision: Decision,
    pub comparisons: Vec<Comparison>,
    /// (fused score, fused threshold) in score-fusion mode.
    pub fused: Option<(f64, f64)>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PolicyError {
    #[error("the policy verifies exactly 2 fingers, {0} were given")]
    FingerCount(usize),
    #[error("finger {index}: probe position {probe} does not match reference position {reference}")]
    PositionMismatch {
        index: usize,
        reference: u8,
        probe: u8,
    },
    #[error("finger {index}: the reference has {minutiae} minutiae, too few to verify against")]
    UnusableReference { index: usize, minutiae: usize },
    #[error(transparent)]
    Calibration(#[from] CalibrationError),
}

/// The fused threshold (sum of two `-log10 p` scores) for a target FMR, from
/// `e^(-x)(1 + x) = fmr` in natural-log units (bisection: the left side is monotonic).
pub fn fused_threshold(fmr: f64) -> Result<f64, CalibrationError> {
    // Validates the target the same way single thresholds do.
    Threshold::for_fmr(fmr)?;
    let tail = |x: f64| (-x).exp() * (1.0 + x);
    let (mut lo, mut hi) = (0.0f64, 200.0f64);
    for _ in 0..200 {
        let mid = (lo + hi) / 2.0;
        if tail(mid) > fmr {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Ok(hi / std::f64::consts::LN_10)
}

/// One finger already compared (by any matcher), for [`decide`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoredFinger {
    pub position: FingerPosition,
    /// The matcher's own score (logged).
    pub raw_score: f32,
    /// Calibrated `-log10 FMR`.
    pub score: f64,
    pub probe_quality: u8,
    /// Minutiae of the probe, when the matcher tells (0 when it does not).
    pub probe_minutiae: usize,
    /// The capture is too poor to decide on (the caller applies the policy's minimums
    /// to what it knows).
    pub poor: bool,
}

/// The two-finger decision on scores from any matcher (a plugin's included): the same
/// rules as [`verify`], with the per-finger threshold applied to the calibrated score.
pub fn decide(policy: &Policy, fingers: &[ScoredFinger]) -> Result<Verification, PolicyError> {
    if fingers.len() != 2 {
        return Err(PolicyError::FingerCount(fingers.len()));
    }
    let single = Threshold::for_fmr(policy.target_fmr)?;
    let fused_t = fused_threshold(policy.target_fmr)?;
    let comparisons = fingers
        .iter()
        .map(|f| {
            let (threshold, pass) = match policy.mode {
                Mode::BothMustPass => (single.score(), f.score >= single.score()),
                Mode::ScoreFusion => (fused_t, false),
            };
            Comparison {
                position: f.position,
                raw_score: f.raw_score,
                score: f.score,
                threshold,
                probe_quality: f.probe_quality,
                probe_minutiae: f.probe_minutiae,
                outcome: if f.poor {
                    FingerOutcome::PoorCapture
                } else if pass {
                    FingerOutcome::Pass
                } else {
                    FingerOutcome::Fail
                },
            }
        })
        .collect();
    Ok(conclude(policy.mode, comparisons, fused_t))
}

/// Verifies the two fingers under `policy`.
pub fn verify(policy: &Policy, fingers: &[FingerPair<'_>]) -> Result<Verification, PolicyError> {
    if fingers.len() != 2 {
        return Err(PolicyError::FingerCount(fingers.len()));
    }
    let single = Threshold::for_fmr(policy.target_fmr)?;
    let fused_t = fused_threshold(policy.target_fmr)?;
    let mut comparisons = Vec::with_capacity(2);
    for (index, f) in fingers.iter().enumerate() {
        let (rp, pp) = (f.reference.position(), f.probe.position());
        // Position 0 is "unknown" in both formats: it cannot contradict anything.
        if rp != pp && rp != FingerPosition::UNKNOWN && pp != FingerPosition::UNKNOWN {
            return Err(PolicyError::PositionMismatch {
                index,
                reference: rp.code(),
                probe: pp.code(),
            });
        }
        if f.reference.minutiae_count() < policy.min_minutiae {
            return Err(PolicyError::UnusableReference {
                index,
                minutiae: f.reference.minutiae_count(),
            });
        }
        let raw = compare(f.probe, f.reference);
        let score = calibrated_score(raw);
        let poor = f.probe.quality() < policy.min_quality
            || f.probe.minutiae_count() < policy.min_minutiae;
        let (threshold, pass) = match policy.mode {
            Mode::BothMustPass => (single.score(), single.accepts(raw)),
            Mode::ScoreFusion => (fused_t, false),
        };
        comparisons.push(Comparison {
            position: rp,
            raw_score: raw,
            score,
            threshold,
            probe_quality: f.probe.quality(),
            probe_minutiae: f.probe.minutiae_count(),
            outcome: if poor {
                FingerOutcome::PoorCapture
            } else if pass {
                FingerOutcome::Pass
            } else {
                FingerOutcome::Fail
            },
        });
    }
    Ok(conclude(policy.mode, comparisons, fused_t))
}

/// The decision from the per-finger comparisons.
fn conclude(mode: Mode, mut comparisons: Vec<Comparison>, fused_t: f64) -> Verification {
    let any_poor = comparisons
        .iter()
        .any(|c| c.outcome == FingerOutcome::PoorCapture);
    let (decision, fused) = match mode {
        Mode::BothMustPass => {
            let all = comparisons.iter().all(|c| c.outcome == FingerOutcome::Pass);
            (
                if any_poor {
                    Decision::Retry
                } else if all {
                    Decision::Match
                } else {
                    Decision::NoMatch
                },
                None,
            )
        }
        Mode::ScoreFusion => {
            let sum: f64 = comparisons.iter().map(|c| c.score).sum();
            let pass = sum >= fused_t;
            for c in comparisons.iter_mut() {
                if c.outcome != FingerOutcome::PoorCapture {
                    c.outcome = if pass {
                        FingerOutcome::Pass
                    } else {
                        FingerOutcome::Fail
                    };
                }
            }
            (
                if any_poor {
                    Decision::Retry
                } else if pass {
                    Decision::Match
                } else {
                    Decision::NoMatch
                },
                Some((sum, fused_t)),
            )
        }
    };
    Verification {
        decision,
        comparisons,
        fused,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::{Finger, Params};

    fn template(
        seed: u64,
        finger: u64,
        n: u64,
        position: FingerPosition,
        quality: Option<u8>,
    ) -> PreparedTemplate {
        let p = Params::default();
        let mut imp = Finger::new(&p, seed, finger).impression(&p, seed, finger, n);
        if let Some(q) = quality {
            imp.quality = q;
        }
        PreparedTemplate::from_iso(&imp.to_iso(position), 0).unwrap()
    }

    const R: FingerPosition = FingerPosition::RIGHT_INDEX;
    const L: FingerPosition = FingerPosition::LEFT_INDEX;

    #[test]
    fn fused_threshold_follows_fishers_method() {
        // e^-x (1 + x) = 1e-3 at x ≈ 9.233 (natural log units).
        let t = fused_threshold(1e-3).unwrap();
        assert!((t * std::f64::consts::LN_10 - 9.2334).abs() < 1e-3, "{t}");
        assert!(fused_threshold(1e-4).unwrap() > t);
        assert!(fused_threshold(0.0).is_err());
    }

    #[test]
    fn decisions_for_each_mode() {
        let refs = [
            template(1, 0, 0, R, Some(80)),
            template(1, 1, 0, L, Some(80)),
        ];
        let same = [
            template(1, 0, 1, R, Some(80)),
            template(1, 1, 1, L, Some(80)),
        ];
        let other = [
            template(1, 2, 1, R, Some(80)),
            template(1, 3, 1, L, Some(80)),
        ];
        let poor = [
            template(1, 0, 1, R, Some(5)),
            template(1, 1, 1, L, Some(80)),
        ];
        fn pairs<'a>(
            refs: &'a [PreparedTemplate; 2],
            probes: &'a [PreparedTemplate; 2],
        ) -> [FingerPair<'a>; 2] {
            [
                FingerPair {
                    reference: &refs[0],
                    probe: &probes[0],
                },
                FingerPair {
                    reference: &refs[1],
                    probe: &probes[1],
                },
            ]
        }
        for mode in [Mode::BothMustPass, Mode::ScoreFusion] {
            let policy = Policy {
                mode,
                ..Policy::default()
            };
            let cases = [
                (&same, Decision::Match),
                (&other, Decision::NoMatch),
                (&poor, Decision::Retry),
            ];
            for (probes, expected) in cases {
                let v = verify(&policy, &pairs(&refs, probes)).unwrap();
                assert_eq!(v.decision, expected, "{mode:?}: {v:?}");
                assert_eq!(v.comparisons.len(), 2);
                assert_eq!(v.fused.is_some(), mode == Mode::ScoreFusion);
                for c in &v.comparisons {
                    assert!(c.threshold > 0.0 && c.score >= 0.0);
                }
            }
        }
    }

    #[test]
    fn bad_calls_are_errors() {
        let a = template(2, 0, 0, R, None);
        let b = template(2, 0, 1, L, None);
        let p = Policy::default();
        assert_eq!(
            verify(
                &p,
                &[FingerPair {
                    reference: &a,
                    probe: &a
                }]
            ),
            Err(PolicyError::FingerCount(1))
        );
        let pair = FingerPair {
            reference: &a,
            probe: &b,
        };
        assert!(matches!(
            verify(&p, &[pair, pair]),
            Err(PolicyError::PositionMismatch {
                index: 0,
                reference: 2,
                probe: 7
            })
        ));
        let bad = Policy {
            target_fmr: 2.0,
            ..p
        };
        let ok = FingerPair {
            reference: &a,
            probe: &a,
        };
        assert!(matches!(
            verify(&bad, &[ok, ok]),
            Err(PolicyError::Calibration(_))
        ));
    }
}
