//! Biometric matchers as plugins: the C ABI of `sdk/include/torii/matcher.h` in Rust, the
//! safe [`Matcher`] trait a vendor implements, [`export_matcher!`](crate::export_matcher)
//! to turn it into a `.so`, and [`DynMatcher`], the object-safe face of any matcher
//! (a loaded plugin, or a Rust type through [`native`]) that the daemon uses.
//!
//! The score contract is checked in one place, [`Score::checked`]: the calibrated score
//! is `-log10 FMR`, finite and ≥ 0; anything else is an error, never a match.
//!
//! ```ignore
//! struct MyMatcher;
//! impl torii_sdk::matcher::Matcher for MyMatcher { /* NAME, ..., prepare, compare */ }
//! torii_sdk::export_matcher!(MyMatcher);
//! ```

#![allow(non_camel_case_types)]

use std::any::Any;
use std::ffi::{CStr, c_char};
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::abi;

// ---------------------------------------------------------------- ABI mirror

/// The header this module mirrors, for tools that compile C matchers.
pub const C_HEADER: &str = include_str!("../../include/torii/matcher.h");

pub const TORII_MATCHER_ABI_MAGIC: u32 = 0x544D_4348;
pub const TORII_MATCHER_ABI_MAJOR: u16 = 1;
pub const TORII_MATCHER_ABI_MINOR: u16 = 0;

/// Name of the plain-data ABI tag every matcher exports.
pub const MATCHER_ABI_TAG_SYMBOL: &str = "torii_matcher_abi_tag";
/// Name of the entry point, returning `*const torii_matcher_api`.
pub const MATCHER_ENTRY_SYMBOL: &str = "torii_matcher_entry";

pub const TORII_MODALITY_FINGER: u32 = 1;
pub const TORII_MODALITY_FACE: u32 = 2;

pub const TORII_MATCHER_CAP_THREAD_SAFE: u64 = 1 << 0;

pub const TORII_TEMPLATE_ISO_19794_2: u32 = 1;
pub const TORII_TEMPLATE_ANSI_378: u32 = 2;
pub const TORII_TEMPLATE_ISO_19794_4: u32 = 3;
pub const TORII_TEMPLATE_JPEG: u32 = 4;

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct torii_matcher_tag {
    pub magic: u32,
    pub abi_major: u16,
    pub abi_minor: u16,
    pub modality: u32,
    pub reserved: u32,
}

impl torii_matcher_tag {
    pub const fn current(modality: u32) -> Self {
        Self {
            magic: TORII_MATCHER_ABI_MAGIC,
            abi_major: TORII_MATCHER_ABI_MAJOR,
            abi_minor: TORII_MATCHER_ABI_MINOR,
            modality,
            reserved: 0,
        }
    }
}

/// Opaque matcher instance, owned by the plugin.
#[repr(C)]
pub struct torii_matcher {
    _private: [u8; 0],
}

/// Opaque prepared template, owned by the plugin.
#[repr(C)]
pub struct torii_prepared {
    _private: [u8; 0],
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct torii_template {
    pub struct_size: u32,
    pub format: u32,
    pub borrowed_data: *const u8,
    pub data_len: usize,
    pub finger_position: u32,
    pub view_index: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct torii_comparison {
    pub struct_size: u32,
    pub quality: i32,
    pub score: f64,
    pub raw_score: f64,
}

pub type CreateFn = unsafe extern "C" fn(*const c_char, *mut *mut torii_matcher) -> i32;
pub type DestroyFn = unsafe extern "C" fn(*mut torii_matcher);
pub type PrepareFn = unsafe extern "C" fn(
    *mut torii_matcher,
    *const torii_template,
    *mut *mut torii_prepared,
    *mut c_char,
    usize,
    *mut usize,
) -> i32;
pub type ReleaseFn = unsafe extern "C" fn(*mut torii_matcher, *mut torii_prepared);
pub type CompareFn = unsafe extern "C" fn(
    *mut torii_matcher,
    *const torii_prepared,
    *const torii_prepared,
    *mut torii_comparison,
) -> i32;

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct torii_matcher_api {
    pub struct_size: u32,
    pub modality: u32,
    pub static_name: *const c_char,
    pub static_version: *const c_char,
    pub static_vendor: *const c_char,
    pub capabilities: u64,
    pub create: Option<CreateFn>,
    pub destroy: Option<DestroyFn>,
    pub prepare: Option<PrepareFn>,
    pub release_prepared: Option<ReleaseFn>,
    pub compare: Option<CompareFn>,
}

pub type torii_matcher_entry_fn = unsafe extern "C" fn() -> *const torii_matcher_api;

// The header's layout on the 64-bit targets torii runs on; the C example matcher
// asserts the same numbers with _Static_assert, so both sides are pinned.
#[cfg(target_pointer_width = "64")]
const _: () = {
    assert!(size_of::<torii_matcher_tag>() == 16);
    assert!(size_of::<torii_template>() == 32);
    assert!(std::mem::offset_of!(torii_template, finger_position) == 24);
    assert!(size_of::<torii_comparison>() == 24);
    assert!(std::mem::offset_of!(torii_comparison, score) == 8);
    assert!(size_of::<torii_matcher_api>() == 80);
    assert!(std::mem::offset_of!(torii_matcher_api, create) == 40);
    assert!(std::mem::offset_of!(torii_matcher_api, compare) == 72);
};

// ---------------------------------------------------------------- vocabulary

/// What a matcher compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Modality {
    Finger,
    Face,
}

impl Modality {
    pub const fn to_abi(self) -> u32 {
        match self {
            Modality::Finger => TORII_MODALITY_FINGER,
            Modality::Face => TORII_MODALITY_FACE,
        }
    }

    pub const fn from_abi(raw: u32) -> Option<Self> {
        match raw {
            TORII_MODALITY_FINGER => Some(Modality::Finger),
            TORII_MODALITY_FACE => Some(Modality::Face),
            _ => None,
        }
    }
}

/// The encoding of a template's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TemplateFormat {
    Iso19794_2,
    Ansi378,
    Iso19794_4,
    Jpeg,
}

impl TemplateFormat {
    pub const fn to_abi(self) -> u32 {
        match self {
            TemplateFormat::Iso19794_2 => TORII_TEMPLATE_ISO_19794_2,
            TemplateFormat::Ansi378 => TORII_TEMPLATE_ANSI_378,
            TemplateFormat::Iso19794_4 => TORII_TEMPLATE_ISO_19794_4,
            TemplateFormat::Jpeg => TORII_TEMPLATE_JPEG,
        }
    }

    pub const fn from_abi(raw: u32) -> Option<Self> {
        match raw {
            TORII_TEMPLATE_ISO_19794_2 => Some(TemplateFormat::Iso19794_2),
            TORII_TEMPLATE_ANSI_378 => Some(TemplateFormat::Ansi378),
            TORII_TEMPLATE_ISO_19794_4 => Some(TemplateFormat::Iso19794_4),
            TORII_TEMPLATE_JPEG => Some(TemplateFormat::Jpeg),
            _ => None,
        }
    }
}

/// One template to prepare. `Debug` shows the shape only: templates are biometric data.
#[derive(Clone, Copy)]
pub struct Template<'a> {
    pub format: TemplateFormat,
    pub data: &'a [u8],
    /// ISO/IEC 19794 finger position code (0 = unknown; 0 for faces).
    pub finger_position: u32,
    /// Which view of a multi-view record.
    pub view_index: u32,
}

impl<'a> Template<'a> {
    /// View 0 of an ISO/IEC 19794-2 record.
    pub fn iso19794_2(data: &'a [u8], finger_position: u32) -> Self {
        Template {
            format: TemplateFormat::Iso19794_2,
            data,
            finger_position,
            view_index: 0,
        }
    }
}

impl fmt::Debug for Template<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Template")
            .field("format", &self.format)
            .field("bytes", &self.data.len())
            .field("finger_position", &self.finger_position)
            .field("view_index", &self.view_index)
            .finish()
    }
}

/// What one comparison found.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Score {
    /// Calibrated: `-log10 FMR`, finite and ≥ 0.
    pub score: f64,
    /// The algorithm's own score, for the log.
    pub raw_score: f64,
    /// The probe's usability for this comparison (0..=100), when the matcher knows it.
    pub quality: Option<u8>,
}

impl Score {
    /// The score contract of matcher.h rule 6: anything but a finite score ≥ 0 with a
    /// finite raw score is an error.
    pub fn checked(self) -> Result<Score, MatcherError> {
        if !self.score.is_finite() || self.score < 0.0 {
            return Err(MatcherError::BadScore(format!(
                "calibrated score {} is not a finite number >= 0",
                self.score
            )));
        }
        if !self.raw_score.is_finite() {
            return Err(MatcherError::BadScore(format!(
                "raw score {} is not finite",
                self.raw_score
            )));
        }
        if self.quality.is_some_and(|q| q > 100) {
            return Err(MatcherError::BadScore("quality above 100".into()));
        }
        Ok(self)
    }

    /// Reads a comparison a plugin filled in (rule 6), `raw_quality` −1 = unknown.
    pub fn from_abi(result: &torii_comparison) -> Result<Score, MatcherError> {
        let quality = match result.quality {
            -1 => None,
            q @ 0..=100 => Some(q as u8),
            q => {
                return Err(MatcherError::BadScore(format!(
                    "quality {q} is outside -1..=100"
                )));
            }
        };
        Score {
            score: result.score,
            raw_score: result.raw_score,
            quality,
        }
        .checked()
    }
}

/// Why a matcher operation failed. Messages never carry biometric data.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum MatcherError {
    /// The template cannot be used (malformed, no such view, too poor to prepare).
    #[error("bad template: {0}")]
    BadTemplate(String),
    /// A format or operation this matcher does not support.
    #[error("not supported: {0}")]
    NotSupported(String),
    /// The matcher broke its score contract (NaN, negative, ...).
    #[error("score contract broken: {0}")]
    BadScore(String),
    /// A prepared template from another matcher instance.
    #[error("the prepared template belongs to another matcher")]
    ForeignTemplate,
    /// The matcher panicked (Rust) or reported INTERNAL_ERROR; it stays unusable.
    #[error("matcher failed internally and is poisoned")]
    Poisoned,
    /// Any other status a plugin returned.
    #[error("matcher returned status {0}")]
    Status(i32),
}

impl MatcherError {
    /// The status a plugin returns for this error.
    pub fn to_abi(&self) -> i32 {
        match self {
            MatcherError::BadTemplate(_) | MatcherError::ForeignTemplate => {
                abi::TORII_INVALID_ARGUMENT
            }
            MatcherError::NotSupported(_) => abi::TORII_NOT_SUPPORTED,
            MatcherError::BadScore(_) | MatcherError::Poisoned => abi::TORII_INTERNAL_ERROR,
            MatcherError::Status(s) if *s != abi::TORII_OK => *s,
            MatcherError::Status(_) => abi::TORII_INTERNAL_ERROR,
        }
    }
}

/// Name, version, vendor and modality of a matcher.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MatcherInfo {
    pub name: String,
    pub version: String,
    pub vendor: String,
    pub modality: Modality,
}

// ---------------------------------------------------------------- the vendor's trait

/// A biometric matcher. Implement it, then `export_matcher!(MyMatcher)` in a `cdylib`.
/// The type is shared between threads (the export declares TORII_MATCHER_CAP_THREAD_SAFE).
pub trait Matcher: Send + Sync + Sized + 'static {
    const NAME: &'static CStr;
    const VERSION: &'static CStr;
    const VENDOR: &'static CStr;
    const MODALITY: Modality;
    /// A template after parsing and feature extraction; immutable once made.
    type Prepared: Send + Sync + 'static;

    /// Makes an instance from the matcher's config table as JSON (`"{}"` when none).
    fn create(config_json: &str) -> Result<Self, MatcherError>;
    fn prepare(&self, template: Template<'_>) -> Result<Self::Prepared, MatcherError>;
    /// Compares a live probe with an enrolled reference. The score must follow the
    /// contract of matcher.h rule 6 (calibrated `-log10 FMR`).
    fn compare(
        &self,
        probe: &Self::Prepared,
        reference: &Self::Prepared,
    ) -> Result<Score, MatcherError>;
}

// ---------------------------------------------------------------- the daemon's view

/// A prepared template of some [`DynMatcher`]; give it back only to that matcher.
pub struct Prepared {
    owner: u64,
    inner: Box<dyn Any + Send + Sync>,
}

impl Prepared {
    /// Wraps what a matcher made; `owner` is [`DynMatcher::instance_id`].
    pub fn new(owner: u64, inner: Box<dyn Any + Send + Sync>) -> Self {
        Prepared { owner, inner }
    }

    /// The matcher's own object, if `owner` made it and it has type `T`.
    pub fn get<T: 'static>(&self, owner: u64) -> Result<&T, MatcherError> {
        if self.owner != owner {
            return Err(MatcherError::ForeignTemplate);
        }
        self.inner
            .downcast_ref::<T>()
            .ok_or(MatcherError::ForeignTemplate)
    }
}

impl fmt::Debug for Prepared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Prepared")
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

/// Any matcher, as the daemon uses it: a loaded plugin (`torii-plugin-host`'s
/// `LoadedMatcher`) or a Rust [`Matcher`] through [`native`] (the built-in one).
/// Scores returned are already checked against the contract ([`Score::checked`]).
pub trait DynMatcher: Send + Sync {
    fn info(&self) -> &MatcherInfo;
    /// Unique per instance: prepared templates are tagged with it.
    fn instance_id(&self) -> u64;
    fn prepare(&self, template: Template<'_>) -> Result<Prepared, MatcherError>;
    fn compare(&self, probe: &Prepared, reference: &Prepared) -> Result<Score, MatcherError>;
}

/// A fresh id for [`DynMatcher::instance_id`].
pub fn next_instance_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A Rust [`Matcher`] used in-process as a [`DynMatcher`]: panics are contained and
/// poison it, scores are checked, exactly as for an exported plugin.
pub struct Native<M: Matcher> {
    matcher: M,
    info: MatcherInfo,
    id: u64,
    poisoned: AtomicBool,
}

/// Wraps `matcher` as a [`DynMatcher`].
pub fn native<M: Matcher>(matcher: M) -> Native<M> {
    Native {
        matcher,
        info: MatcherInfo {
            name: M::NAME.to_string_lossy().into_owned(),
            version: M::VERSION.to_string_lossy().into_owned(),
            vendor: M::VENDOR.to_string_lossy().into_owned(),
            modality: M::MODALITY,
        },
        id: next_instance_id(),
        poisoned: AtomicBool::new(false),
    }
}

impl<M: Matcher> Native<M> {
    pub fn inner(&self) -> &M {
        &self.matcher
    }

    fn guarded<T>(&self, op: impl FnOnce() -> Result<T, MatcherError>) -> Result<T, MatcherError> {
        if self.poisoned.load(Ordering::Acquire) {
            return Err(MatcherError::Poisoned);
        }
        match catch_unwind(AssertUnwindSafe(op)) {
            Ok(result) => result,
            Err(_) => {
                self.poisoned.store(true, Ordering::Release);
                Err(MatcherError::Poisoned)
            }
        }
    }
}

impl<M: Matcher> DynMatcher for Native<M> {
    fn info(&self) -> &MatcherInfo {
        &self.info
    }

    fn instance_id(&self) -> u64 {
        self.id
    }

    fn prepare(&self, template: Template<'_>) -> Result<Prepared, MatcherError> {
        let prepared = self.guarded(|| self.matcher.prepare(template))?;
        Ok(Prepared::new(self.id, Box::new(prepared)))
    }

    fn compare(&self, probe: &Prepared, reference: &Prepared) -> Result<Score, MatcherError> {
        let probe = probe.get::<M::Prepared>(self.id)?;
        let reference = reference.get::<M::Prepared>(self.id)?;
        self.guarded(|| self.matcher.compare(probe, reference))?
            .checked()
    }
}

// ---------------------------------------------------------------- export

#[doc(hidden)]
pub mod export {
    //! The C entry points behind [`export_matcher!`](crate::export_matcher).

    use super::*;
    use std::sync::Once;

    struct MatcherBox<M> {
        matcher: M,
        poisoned: AtomicBool,
    }

    /// Panic messages may carry what the matcher was handling; keep the location only.
    fn install_quiet_panic_hook() {
        static ONCE: Once = Once::new();
        ONCE.call_once(|| {
            std::panic::set_hook(Box::new(|info| {
                let location = info
                    .location()
                    .map(|l| format!("{}:{}", l.file(), l.line()))
                    .unwrap_or_else(|| "unknown location".into());
                eprintln!("torii matcher panicked at {location} (message withheld)");
            }))
        });
    }

    /// Runs `op` on the matcher behind `matcher`, containing panics (which poison it).
    ///
    /// # Safety
    /// `matcher` must be NULL or a pointer returned by this plugin's `create` and not
    /// yet destroyed.
    unsafe fn with_matcher<M: Matcher>(
        matcher: *mut torii_matcher,
        op: impl FnOnce(&M) -> Result<(), MatcherError>,
    ) -> i32 {
        // SAFETY: per this function's contract, a non-null matcher is our live MatcherBox<M>.
        let Some(boxed) = (unsafe { (matcher as *const MatcherBox<M>).as_ref() }) else {
            return abi::TORII_INVALID_ARGUMENT;
        };
        if boxed.poisoned.load(Ordering::Acquire) {
            return abi::TORII_INTERNAL_ERROR;
        }
        match catch_unwind(AssertUnwindSafe(|| op(&boxed.matcher))) {
            Ok(Ok(())) => abi::TORII_OK,
            Ok(Err(e)) => e.to_abi(),
            Err(_) => {
                boxed.poisoned.store(true, Ordering::Release);
                abi::TORII_INTERNAL_ERROR
            }
        }
    }

    pub unsafe extern "C" fn create<M: Matcher>(
        config: *const c_char,
        out: *mut *mut torii_matcher,
    ) -> i32 {
        install_quiet_panic_hook();
        if out.is_null() {
            return abi::TORII_INVALID_ARGUMENT;
        }
        let config = if config.is_null() {
            "{}"
        } else {
            // SAFETY: the host passes a NUL-terminated string borrowed for this call.
            match unsafe { CStr::from_ptr(config) }.to_str() {
                Ok(text) => text,
                Err(_) => return abi::TORII_INVALID_ARGUMENT,
            }
        };
        match catch_unwind(|| M::create(config)) {
            Ok(Ok(matcher)) => {
                let boxed = Box::new(MatcherBox {
                    matcher,
                    poisoned: AtomicBool::new(false),
                });
                // SAFETY: out is non-null and writable (host contract).
                unsafe { *out = Box::into_raw(boxed) as *mut torii_matcher };
                abi::TORII_OK
            }
            Ok(Err(e)) => e.to_abi(),
            Err(_) => abi::TORII_INTERNAL_ERROR,
        }
    }

    pub unsafe extern "C" fn destroy<M: Matcher>(matcher: *mut torii_matcher) {
        if matcher.is_null() {
            return;
        }
        // SAFETY: the host gives back what create() made, once, with no call running.
        let boxed = unsafe { Box::from_raw(matcher as *mut MatcherBox<M>) };
        // A panicking destructor must not unwind into C.
        let _ = catch_unwind(AssertUnwindSafe(move || drop(boxed)));
    }

    /// # Safety
    /// `message` is NULL or writable for `capacity` bytes; `out_len` NULL or writable.
    unsafe fn write_message(
        message: *mut c_char,
        capacity: usize,
        out_len: *mut usize,
        text: &str,
    ) {
        let mut len = 0;
        if !message.is_null() && capacity > 0 {
            // Cut at a char boundary, leaving room for the NUL.
            let mut end = text.len().min(capacity - 1);
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            // SAFETY: end + 1 <= capacity bytes of the caller's buffer.
            unsafe {
                std::ptr::copy_nonoverlapping(text.as_ptr(), message as *mut u8, end);
                *message.add(end) = 0;
            }
            len = end;
        }
        if !out_len.is_null() {
            // SAFETY: writable per the caller's contract.
            unsafe { *out_len = len };
        }
    }

    pub unsafe extern "C" fn prepare<M: Matcher>(
        matcher: *mut torii_matcher,
        template: *const torii_template,
        out: *mut *mut torii_prepared,
        message: *mut c_char,
        capacity: usize,
        out_len: *mut usize,
    ) -> i32 {
        // SAFETY: out_len is NULL or writable (host contract).
        unsafe { write_message(message, capacity, out_len, "") };
        if out.is_null() || template.is_null() {
            return abi::TORII_INVALID_ARGUMENT;
        }
        // SAFETY: a non-null template is readable for its struct_size (host contract);
        // every 1.0 field is required.
        let t = unsafe { *template };
        if (t.struct_size as usize) < size_of::<torii_template>()
            || (t.borrowed_data.is_null() && t.data_len != 0)
        {
            return abi::TORII_INVALID_ARGUMENT;
        }
        let Some(format) = TemplateFormat::from_abi(t.format) else {
            return abi::TORII_NOT_SUPPORTED;
        };
        let data = if t.data_len == 0 {
            &[][..]
        } else {
            // SAFETY: the host passes data_len readable bytes, borrowed for this call.
            unsafe { std::slice::from_raw_parts(t.borrowed_data, t.data_len) }
        };
        let template = Template {
            format,
            data,
            finger_position: t.finger_position,
            view_index: t.view_index,
        };
        let mut failure = None;
        let op = |m: &M| match m.prepare(template) {
            Ok(prepared) => {
                let raw = Box::into_raw(Box::new(prepared)) as *mut torii_prepared;
                // SAFETY: out checked non-null, writable by the host contract.
                unsafe { *out = raw };
                Ok(())
            }
            Err(e) => {
                failure = Some(e.to_string());
                Err(e)
            }
        };
        // SAFETY: forwarded host contract on the matcher.
        let status = unsafe { with_matcher::<M>(matcher, op) };
        if let Some(text) = failure {
            // SAFETY: caller-owned buffer of `capacity` bytes.
            unsafe { write_message(message, capacity, out_len, &text) };
        }
        status
    }

    pub unsafe extern "C" fn release_prepared<M: Matcher>(
        _matcher: *mut torii_matcher,
        prepared: *mut torii_prepared,
    ) {
        if prepared.is_null() {
            return;
        }
        // SAFETY: the host gives back what prepare() made, exactly once.
        let boxed = unsafe { Box::from_raw(prepared as *mut M::Prepared) };
        let _ = catch_unwind(AssertUnwindSafe(move || drop(boxed)));
    }

    pub unsafe extern "C" fn compare<M: Matcher>(
        matcher: *mut torii_matcher,
        probe: *const torii_prepared,
        reference: *const torii_prepared,
        result: *mut torii_comparison,
    ) -> i32 {
        if probe.is_null() || reference.is_null() || result.is_null() {
            return abi::TORII_INVALID_ARGUMENT;
        }
        // SAFETY: the result is caller-owned and starts with its struct_size.
        if (unsafe { (*result).struct_size } as usize) < size_of::<torii_comparison>() {
            return abi::TORII_INVALID_ARGUMENT;
        }
        // SAFETY: both are live prepared templates of this matcher (host contract),
        // immutable while borrowed.
        let (probe, reference) = unsafe {
            (
                &*(probe as *const M::Prepared),
                &*(reference as *const M::Prepared),
            )
        };
        let op = |m: &M| {
            let score = m.compare(probe, reference)?.checked()?;
            // SAFETY: checked non-null and large enough above; caller-owned for the call.
            let out = unsafe { &mut *result };
            out.score = score.score;
            out.raw_score = score.raw_score;
            out.quality = score.quality.map_or(-1, i32::from);
            Ok(())
        };
        // SAFETY: forwarded host contract on the matcher.
        unsafe { with_matcher::<M>(matcher, op) }
    }

    pub const fn matcher_api<M: Matcher>() -> torii_matcher_api {
        torii_matcher_api {
            struct_size: size_of::<torii_matcher_api>() as u32,
            modality: M::MODALITY.to_abi(),
            static_name: M::NAME.as_ptr(),
            static_version: M::VERSION.as_ptr(),
            static_vendor: M::VENDOR.as_ptr(),
            capabilities: TORII_MATCHER_CAP_THREAD_SAFE,
            create: Some(create::<M>),
            destroy: Some(destroy::<M>),
            prepare: Some(prepare::<M>),
            release_prepared: Some(release_prepared::<M>),
            compare: Some(compare::<M>),
        }
    }
}

/// Exports a Rust [`Matcher`] as a torii matcher plugin: `export_matcher!(MyMatcher);`
/// Build the crate as a `cdylib`. One matcher per library, and no driver in it.
#[macro_export]
macro_rules! export_matcher {
    ($ty:ty) => {
        const _: () = {
            static API: $crate::abi::StaticAbi<$crate::matcher::torii_matcher_api> =
                $crate::abi::StaticAbi($crate::matcher::export::matcher_api::<$ty>());

            /// Read by the host from the ELF file before loading: see matcher.h.
            #[allow(unsafe_code, non_upper_case_globals)]
            #[unsafe(no_mangle)]
            pub static torii_matcher_abi_tag: $crate::matcher::torii_matcher_tag =
                $crate::matcher::torii_matcher_tag::current(
                    <$ty as $crate::matcher::Matcher>::MODALITY.to_abi(),
                );

            #[allow(unsafe_code)]
            #[unsafe(no_mangle)]
            pub extern "C" fn torii_matcher_entry() -> *const $crate::matcher::torii_matcher_api {
                &API.0
            }
        };
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Counting;

    impl Matcher for Counting {
        const NAME: &'static CStr = c"counting";
        const VERSION: &'static CStr = c"1";
        const VENDOR: &'static CStr = c"torii tests";
        const MODALITY: Modality = Modality::Finger;
        type Prepared = usize;

        fn create(_config_json: &str) -> Result<Self, MatcherError> {
            Ok(Counting)
        }

        fn prepare(&self, template: Template<'_>) -> Result<usize, MatcherError> {
            match template.data.len() {
                0 => Err(MatcherError::BadTemplate("empty".into())),
                13 => panic!("unlucky"),
                n => Ok(n),
            }
        }

        fn compare(&self, probe: &usize, reference: &usize) -> Result<Score, MatcherError> {
            // 7 bytes: a broken score, to see the contract enforced.
            let score = if *probe == 7 { f64::NAN } else { 2.0 };
            Ok(Score {
                score,
                raw_score: (*probe + *reference) as f64,
                quality: None,
            })
        }
    }

    #[test]
    fn native_checks_scores_owners_and_contains_panics() {
        let m = native(Counting);
        let other = native(Counting);
        let t = |n: usize| Template::iso19794_2(&[0u8; 32][..n], 2);
        let a = m.prepare(t(3)).unwrap();
        let b = m.prepare(t(4)).unwrap();
        assert_eq!(m.compare(&a, &b).unwrap().raw_score, 7.0);
        assert!(matches!(m.prepare(t(0)), Err(MatcherError::BadTemplate(_))));
        let nan = m.prepare(t(7)).unwrap();
        assert!(matches!(
            m.compare(&nan, &b),
            Err(MatcherError::BadScore(_))
        ));
        let foreign = other.prepare(t(3)).unwrap();
        assert_eq!(m.compare(&foreign, &b), Err(MatcherError::ForeignTemplate));
        assert_eq!(m.prepare(t(13)).unwrap_err(), MatcherError::Poisoned);
        assert_eq!(m.compare(&a, &b), Err(MatcherError::Poisoned));
        assert!(other.compare(&foreign, &foreign).is_ok());
    }

    #[test]
    fn score_contract() {
        let ok = Score {
            score: 0.0,
            raw_score: -3.0,
            quality: Some(100),
        };
        assert!(ok.checked().is_ok());
        for score in [-0.5, f64::NAN, f64::INFINITY] {
            assert!(Score { score, ..ok }.checked().is_err());
        }
        let raw = torii_comparison {
            struct_size: 24,
            quality: 101,
            score: 1.0,
            raw_score: 1.0,
        };
        assert!(Score::from_abi(&raw).is_err());
        assert_eq!(
            Score::from_abi(&torii_comparison { quality: -1, ..raw })
                .unwrap()
                .quality,
            None
        );
    }
}
