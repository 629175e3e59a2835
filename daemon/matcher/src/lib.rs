//! torii's built-in fingerprint matcher.
//!
//! - [`iso19794_2`] and [`ansi378`]: strict readers and writers of ISO/IEC 19794-2:2005
//!   and ANSI/INCITS 378-2004 finger minutiae records ([`record`] has what they share).
//! - [`matcher`]: [`PreparedTemplate`] and [`compare`], a local-structure + global
//!   consolidation minutiae matcher.
//! - [`calibration`]: raw scores → false match rates; thresholds set as a target FMR.
//! - [`policy`]: the two-finger verification policy of the Trusted Traveler Program.
//! - [`synth`]: deterministic synthetic genuine/impostor data for evaluation.
//! - [`builtin`]: this matcher behind the SDK's matcher plugin class ([`builtin::builtin`],
//!   [`builtin::verify_with`]).
//!
//! Templates are biometric data: no `Debug` impl in this crate prints a minutia.

pub mod ansi378;
pub mod builtin;
pub mod calibration;
pub mod iso19794_2;
pub mod matcher;
pub mod policy;
pub mod record;
pub mod synth;

pub use calibration::{Threshold, calibrated_score};
pub use matcher::{PreparedTemplate, TemplateError, compare};
pub use record::RecordError;
