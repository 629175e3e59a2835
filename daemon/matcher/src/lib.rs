//! torii's built-in fingerprint matcher.
//!
//! - [`iso19794_2`] and [`ansi378`]: strict readers and writers of ISO/IEC 19794-2:2005
//!   and ANSI/INCITS 378-2004 finger minutiae records ([`record`] has what they share).
//! - [`matcher`]: [`PreparedTemplate`] and [`compare`], a local-structure + global
//!   consolidation minutiae matcher.
//! - [`calibration`]: raw scores → false match rates; thresholds set as a target FMR.
//! - [`policy`]: the two-finger verification policy of the Trusted Traveler Program.
//! - [`synth`]: deterministic synthetic genuine/impostor data for evaluation.
//! - [`iso19794_4`]: strict reader and writer of ISO/IEC 19794-4:2005 finger image
//!   records, decoded to 8-bit grayscale.
//! - [`extract`]: the built-in minutiae extractor (image → ISO/IEC 19794-2), and
//!   [`extract::probe_template`], what the daemon's verifier uses for image-only captures.
//! - [`synth_image`]: deterministic synthetic finger images with ground-truth minutiae.
//! - [`builtin`]: this matcher behind the SDK's matcher plugin class ([`builtin::builtin`],
//!   [`builtin::verify_with`]).
//!
//! Templates are biometric data: no `Debug` impl in this crate prints a minutia.

pub mod ansi378;
pub mod builtin;
pub mod calibration;
pub mod extract;
pub mod iso19794_2;
pub mod iso19794_4;
pub mod matcher;
pub mod policy;
pub mod record;
pub mod synth;
pub mod synth_image;

pub use calibration::{Threshold, calibrated_score};
pub use matcher::{PreparedTemplate, TemplateError, compare};
pub use record::RecordError;
