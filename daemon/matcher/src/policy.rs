//! Two-finger verification policy for the Trusted Traveler Program.
//!
//! A traveler presents the two registered fingers; each probe is compared with its
//! reference. Two modes:
//!
//! - [`Mode::BothMustPass`]: each finger must pass its own threshold, set at the target
//!   FMR. The system FMR is then at most the target (about its square if the two
//!   fingers' impostor scores are independent): conservative.
//! - [`Mode::ScoreFusion`] (default): the calibrated scores `-log10 FMR` of the two
//!   fingers are added (the log of the product of the two p-values, as in Fisher's
//!   method) and the sum is compared with the fused score that two-finger impostor
//!   transactions reach with probability equal to the target, **as measured**
//!   ([`crate::calibration::fused_threshold_for_fmr`]: a shipped table of the fused
//!   impostor distribution instead of Fisher's formula, which assumes exactly
//!   calibrated, independent p-values). Targets below the table's last measured point
//!   are refused. Synthetic populations vary: see the README's figures. One finger placed
//!   badly but matching is then carried by a clearly matching other finger, which is
//!   what fusion is for.
//!
//! Capture quality counts: a probe whose finger quality is below `min_quality` or with
//! fewer than `min_minutiae` minutiae is a **retry** ("place the finger again"), never
//! a mismatch. Every comparison's score and threshold is returned, for the record
//! (BSI TR-03121 logs both for every comparison).

use crate::calibration::{CalibrationError, Threshold, calibrated_score, fused_threshold_for_fmr};
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

/// The fused threshold (sum of two calibrated `-log10 FMR` scores) for a target
/// two-finger FMR, read from the measured fused impostor table
/// ([`fused_threshold_for_fmr`]); targets outside its measured range are refused.
pub fn fused_threshold(fmr: f64) -> Result<f64, CalibrationError> {
    // Validates the target the same way single thresholds do.
    Threshold::for_fmr(fmr)?;
    fused_threshold_for_fmr(fmr)
}

/// The per-finger threshold, and the fused one in score-fusion mode (only there: a
/// both-must-pass target below the fused table's range stays valid).
fn thresholds(policy: &Policy) -> Result<(Threshold, Option<f64>), CalibrationError> {
    let single = Threshold::for_fmr(policy.target_fmr)?;
    let fused = match policy.mode {
        Mode::ScoreFusion => Some(fused_threshold(policy.target_fmr)?),
        Mode::BothMustPass => None,
    };
    Ok((single, fused))
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
    let (single, fused_t) = thresholds(policy)?;
    let comparisons = fingers
        .iter()
        .map(|f| {
            let (threshold, pass) = match policy.mode {
                Mode::BothMustPass => (single.score(), f.score >= single.score()),
                Mode::ScoreFusion => (fused_t.unwrap_or(f64::NAN), false),
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
    let (single, fused_t) = thresholds(policy)?;
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
            Mode::ScoreFusion => (fused_t.unwrap_or(f64::NAN), false),
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
fn conclude(mode: Mode, mut comparisons: Vec<Comparison>, fused_t: Option<f64>) -> Verification {
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
            // `thresholds` always gives one in this mode; NaN would refuse anyway.
            let fused_t = fused_t.unwrap_or(f64::NAN);
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
    fn fused_threshold_comes_from_the_measured_table() {
        let t = fused_threshold(1e-3).unwrap();
        assert_eq!(Ok(t), fused_threshold_for_fmr(1e-3));
        assert!(fused_threshold(1e-4).unwrap() > t);
        assert!(fused_threshold(0.0).is_err());
        assert_eq!(
            fused_threshold(1e-6),
            Err(CalibrationError::BeyondFusedCalibration(1e-6))
        );
    }

    #[test]
    fn targets_outside_the_fused_table_are_refused_in_fusion_mode_only() {
        let a = template(3, 0, 0, R, Some(80));
        let b = template(3, 1, 0, L, Some(80));
        let pairs = [
            FingerPair {
                reference: &a,
                probe: &a,
            },
            FingerPair {
                reference: &b,
                probe: &b,
            },
        ];
        let fusion = Policy {
            target_fmr: 1e-6,
            ..Policy::default()
        };
        assert_eq!(
            verify(&fusion, &pairs),
            Err(PolicyError::Calibration(
                CalibrationError::BeyondFusedCalibration(1e-6)
            ))
        );
        let scored: Vec<ScoredFinger> = [(&a, R), (&b, L)]
            .iter()
            .map(|(t, position)| ScoredFinger {
                position: *position,
                raw_score: 40.0,
                score: 8.0,
                probe_quality: t.quality(),
                probe_minutiae: t.minutiae_count(),
                poor: false,
            })
            .collect();
        assert!(matches!(
            decide(&fusion, &scored),
            Err(PolicyError::Calibration(_))
        ));
        let both = Policy {
            mode: Mode::BothMustPass,
            ..fusion
        };
        assert_eq!(verify(&both, &pairs).unwrap().decision, Decision::Match);
        assert_eq!(decide(&both, &scored).unwrap().decision, Decision::Match);
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
