//! The built-in fingerprint matcher behind the SDK's matcher class: the same
//! [`torii_sdk::matcher::Matcher`] trait a vendor's plugin implements, so the daemon
//! handles "the configured plugin or the built-in one" as one `Arc<dyn DynMatcher>`,
//! and [`verify_with`] runs the two-finger policy on either.

use std::ffi::CStr;
use std::sync::Arc;

use torii_sdk::matcher::{
    DynMatcher, Matcher, MatcherError, Modality, Score, Template, TemplateFormat, native,
};

use crate::ansi378::AnsiRecord;
use crate::calibration::calibrated_score;
use crate::iso19794_2::IsoRecord;
use crate::matcher::{PreparedTemplate, TemplateError, compare};
use crate::policy::{Policy, PolicyError, ScoredFinger, Verification, decide};
use crate::record::FingerPosition;

/// Probes with fewer minutiae than this report quality 0 ("capture again").
pub const MIN_PROBE_MINUTIAE: usize = 10;

/// torii's matcher as a [`Matcher`]: ISO/IEC 19794-2 and ANSI/INCITS 378 records, scores
/// calibrated with [`crate::calibration`].
#[derive(Debug, Default, Clone, Copy)]
pub struct BuiltinMatcher;

const fn c_str(bytes: &'static [u8]) -> &'static CStr {
    match CStr::from_bytes_with_nul(bytes) {
        Ok(text) => text,
        Err(_) => panic!("not NUL-terminated"),
    }
}

fn bad(e: TemplateError) -> MatcherError {
    MatcherError::BadTemplate(e.to_string())
}

impl Matcher for BuiltinMatcher {
    const NAME: &'static CStr = c"torii-builtin-finger";
    const VERSION: &'static CStr = c_str(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes());
    const VENDOR: &'static CStr = c"torii";
    const MODALITY: Modality = Modality::Finger;
    type Prepared = PreparedTemplate;

    fn create(_config_json: &str) -> Result<Self, MatcherError> {
        Ok(BuiltinMatcher)
    }

    fn prepare(&self, template: Template<'_>) -> Result<PreparedTemplate, MatcherError> {
        let index = template.view_index as usize;
        let prepared = match template.format {
            TemplateFormat::Iso19794_2 => IsoRecord::parse(template.data)
                .map_err(|e| bad(e.into()))
                .and_then(|r| PreparedTemplate::from_iso(&r, index).map_err(bad))?,
            TemplateFormat::Ansi378 => AnsiRecord::parse(template.data)
                .map_err(|e| bad(e.into()))
                .and_then(|r| PreparedTemplate::from_ansi(&r, index).map_err(bad))?,
            other => {
                return Err(MatcherError::NotSupported(format!(
                    "the built-in matcher reads minutiae records, not {other:?}"
                )));
            }
        };
        let expected = template.finger_position;
        let found = prepared.position().code();
        if expected != 0 && found != 0 && u32::from(found) != expected {
            return Err(MatcherError::BadTemplate(format!(
                "the record's finger position is {found}, {expected} was expected"
            )));
        }
        Ok(prepared)
    }

    fn compare(
        &self,
        probe: &PreparedTemplate,
        reference: &PreparedTemplate,
    ) -> Result<Score, MatcherError> {
        let raw = compare(probe, reference);
        let quality = if probe.minutiae_count() < MIN_PROBE_MINUTIAE {
            0
        } else {
            probe.quality()
        };
        Ok(Score {
            score: calibrated_score(raw),
            raw_score: f64::from(raw),
            quality: Some(quality),
        })
    }
}

/// The built-in matcher as the daemon uses every matcher.
pub fn builtin() -> Arc<dyn DynMatcher> {
    Arc::new(native(BuiltinMatcher))
}

/// One finger to verify with any matcher: the enrolled and the captured record.
#[derive(Clone, Copy)]
pub struct TemplatePair<'a> {
    pub position: FingerPosition,
    pub reference: Template<'a>,
    pub probe: Template<'a>,
}

/// Why [`verify_with`] could not decide.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VerifyError {
    /// The enrolled template is unusable: not the traveler's fault, never a match.
    #[error("finger {index}: reference: {source}")]
    Reference { index: usize, source: MatcherError },
    /// The comparison failed (matcher error, broken score contract): never a match.
    #[error("finger {index}: comparison: {source}")]
    Compare { index: usize, source: MatcherError },
    #[error(transparent)]
    Policy(#[from] PolicyError),
}

/// Two-finger verification with any matcher (the configured plugin or [`builtin`]).
/// A probe that cannot be prepared, or whose quality is below `policy.min_quality`, is
/// a poor capture (a retry); every matcher error is an `Err`, never a match.
///
/// With [`builtin`], the decision is the one [`crate::policy::verify`] makes except that
/// the per-finger threshold of `BothMustPass` is applied to the calibrated score.
pub fn verify_with(
    matcher: &dyn DynMatcher,
    policy: &Policy,
    fingers: &[TemplatePair<'_>],
) -> Result<Verification, VerifyError> {
    let mut scored = Vec::with_capacity(fingers.len());
    for (index, finger) in fingers.iter().enumerate() {
        let reference = matcher
            .prepare(finger.reference)
            .map_err(|source| VerifyError::Reference { index, source })?;
        let probe = match matcher.prepare(finger.probe) {
            Ok(probe) => probe,
            Err(MatcherError::BadTemplate(_)) => {
                scored.push(ScoredFinger {
                    position: finger.position,
                    raw_score: 0.0,
                    score: 0.0,
                    probe_quality: 0,
                    probe_minutiae: 0,
                    poor: true,
                });
                continue;
            }
            Err(source) => return Err(VerifyError::Compare { index, source }),
        };
        let score = matcher
            .compare(&probe, &reference)
            .map_err(|source| VerifyError::Compare { index, source })?;
        let quality = score.quality.unwrap_or(100);
        scored.push(ScoredFinger {
            position: finger.position,
            raw_score: score.raw_score as f32,
            score: score.score,
            probe_quality: quality,
            probe_minutiae: 0,
            poor: quality < policy.min_quality,
        });
    }
    Ok(decide(policy, &scored)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Decision;
    use crate::synth::{Finger, Params};

    fn record(finger: u64, impression: u64, position: FingerPosition) -> Vec<u8> {
        let p = Params::default();
        let mut imp = Finger::new(&p, 9, finger).impression(&p, 9, finger, impression);
        imp.quality = 80;
        imp.to_iso(position).to_bytes().unwrap()
    }

    #[test]
    fn builtin_through_the_trait_matches_genuine_and_refuses_garbage() {
        let m = builtin();
        assert_eq!(m.info().name, "torii-builtin-finger");
        let (r, l) = (FingerPosition::RIGHT_INDEX, FingerPosition::LEFT_INDEX);
        let refs = [record(0, 0, r), record(1, 0, l)];
        let same = [record(0, 1, r), record(1, 1, l)];
        let other = [record(2, 1, r), record(3, 1, l)];
        fn pairs<'a>(refs: &'a [Vec<u8>; 2], probes: &'a [Vec<u8>; 2]) -> [TemplatePair<'a>; 2] {
            let (r, l) = (FingerPosition::RIGHT_INDEX, FingerPosition::LEFT_INDEX);
            [
                TemplatePair {
                    position: r,
                    reference: Template::iso19794_2(&refs[0], 2),
                    probe: Template::iso19794_2(&probes[0], 2),
                },
                TemplatePair {
                    position: l,
                    reference: Template::iso19794_2(&refs[1], 7),
                    probe: Template::iso19794_2(&probes[1], 7),
                },
            ]
        }
        let policy = Policy::default();
        let v = verify_with(m.as_ref(), &policy, &pairs(&refs, &same)).unwrap();
        assert_eq!(v.decision, Decision::Match, "{v:?}");
        let v = verify_with(m.as_ref(), &policy, &pairs(&refs, &other)).unwrap();
        assert_eq!(v.decision, Decision::NoMatch, "{v:?}");
        // The same scores as the direct path.
        let a = PreparedTemplate::from_iso_bytes(&same[0], 0).unwrap();
        let b = PreparedTemplate::from_iso_bytes(&refs[0], 0).unwrap();
        let direct = calibrated_score(compare(&a, &b));
        assert_eq!(v.comparisons.len(), 2);
        let pa = m.prepare(Template::iso19794_2(&same[0], 2)).unwrap();
        let pb = m.prepare(Template::iso19794_2(&refs[0], 2)).unwrap();
        assert_eq!(m.compare(&pa, &pb).unwrap().score, direct);
        // Garbage and a wrong finger are errors naming the problem.
        let err = m
            .prepare(Template::iso19794_2(b"FMR\0junk", 2))
            .unwrap_err();
        assert!(matches!(err, MatcherError::BadTemplate(_)), "{err}");
        let err = m.prepare(Template::iso19794_2(&refs[0], 7)).unwrap_err();
        assert!(err.to_string().contains("finger position"), "{err}");
        // A malformed reference is an error, a malformed probe a retry.
        let mut bad = pairs(&refs, &same);
        bad[0].reference = Template::iso19794_2(b"nope", 2);
        assert!(verify_with(m.as_ref(), &policy, &bad).is_err());
        let mut bad = pairs(&refs, &same);
        bad[1].probe = Template::iso19794_2(b"nope", 7);
        let v = verify_with(m.as_ref(), &policy, &bad).unwrap();
        assert_eq!(v.decision, Decision::Retry);
    }
}
