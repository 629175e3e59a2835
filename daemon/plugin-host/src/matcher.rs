//! Matcher plugins (`sdk/include/torii/matcher.h`): probed from the ELF file before
//! loading (an incompatible matcher runs none of its code), loaded in-process, and
//! used through the SDK's object-safe [`DynMatcher`] like the built-in matcher.
//!
//! The daemon gets "the configured matcher or the built-in one" from [`configured_or`].
//! Libraries are never unloaded (see `loader.rs`). Matchers run in-process: a crashing
//! matcher takes the daemon down, so only install matchers you trust as much as the
//! daemon itself.

use std::ffi::{CStr, CString, c_char};
use std::mem::MaybeUninit;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use object::{Object, ObjectSection, ObjectSymbol};
use torii_sdk::abi;
use torii_sdk::matcher::{
    self as m, DynMatcher, MatcherError, MatcherInfo, Modality, Prepared, Score, Template,
    torii_comparison, torii_matcher, torii_matcher_api, torii_prepared, torii_template,
};

/// What a matcher's ELF file says about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MatcherProbe {
    pub abi_major: u16,
    pub abi_minor: u16,
    pub modality: Modality,
}

#[derive(Debug, thiserror::Error)]
pub enum MatcherLoadError {
    #[error("matcher {path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("matcher {path}: not a shared library for this machine: {reason}")]
    NotElf { path: PathBuf, reason: String },
    #[error(
        "matcher {path}: exports no `{}` symbol; not a torii matcher, or built without the torii SDK",
        m::MATCHER_ABI_TAG_SYMBOL
    )]
    NoTag { path: PathBuf },
    #[error(
        "matcher {path}: `{}` is malformed: {reason}",
        m::MATCHER_ABI_TAG_SYMBOL
    )]
    Malformed { path: PathBuf, reason: String },
    #[error(
        "matcher {path} was built for torii matcher ABI {major}.{minor}, but this host speaks \
         ABI {}.{}; major versions must match: rebuild the matcher against the torii SDK",
        m::TORII_MATCHER_ABI_MAJOR,
        m::TORII_MATCHER_ABI_MINOR
    )]
    Incompatible {
        path: PathBuf,
        major: u16,
        minor: u16,
    },
    #[error("matcher {path} declares unknown modality {modality}")]
    UnknownModality { path: PathBuf, modality: u32 },
    #[error("matcher {path} is a {found:?} matcher, a {expected:?} matcher was configured")]
    WrongModality {
        path: PathBuf,
        expected: Modality,
        found: Modality,
    },
    #[error("matcher {path}: {reason}")]
    Load { path: PathBuf, reason: String },
    #[error("matcher {path}: create failed with status {status}")]
    Create { path: PathBuf, status: i32 },
}

/// Probes `path` without loading it.
pub fn probe_matcher(path: &Path) -> Result<MatcherProbe, MatcherLoadError> {
    let data = std::fs::read(path).map_err(|source| MatcherLoadError::Read {
        path: path.into(),
        source,
    })?;
    probe_matcher_bytes(path, &data)
}

/// Probes the bytes of an ELF file (`path` only names it in errors).
pub fn probe_matcher_bytes(path: &Path, data: &[u8]) -> Result<MatcherProbe, MatcherLoadError> {
    let not_elf = |reason: String| MatcherLoadError::NotElf {
        path: path.into(),
        reason,
    };
    let malformed = |reason: String| MatcherLoadError::Malformed {
        path: path.into(),
        reason,
    };
    let file = object::File::parse(data).map_err(|e| not_elf(e.to_string()))?;
    if file.format() != object::BinaryFormat::Elf {
        return Err(not_elf(format!("{:?} file", file.format())));
    }
    if file.is_little_endian() != cfg!(target_endian = "little") {
        return Err(not_elf("wrong byte order".into()));
    }
    // Exported symbols are in .dynsym; fall back to .symtab for unusual links.
    let symbol = file
        .dynamic_symbols()
        .chain(file.symbols())
        .find(|s| s.is_definition() && s.name() == Ok(m::MATCHER_ABI_TAG_SYMBOL))
        .ok_or_else(|| MatcherLoadError::NoTag { path: path.into() })?;
    let section_index = symbol
        .section_index()
        .ok_or_else(|| malformed("not in a section".into()))?;
    let section = file
        .section_by_index(section_index)
        .map_err(|e| malformed(e.to_string()))?;
    let bytes = section
        .data_range(symbol.address(), symbol.size())
        .map_err(|e| malformed(e.to_string()))?
        .ok_or_else(|| malformed("its bytes are not stored in the file".into()))?;
    let expected = size_of::<m::torii_matcher_tag>();
    if bytes.len() < expected {
        return Err(malformed(format!(
            "{} bytes, expected {expected}",
            bytes.len()
        )));
    }
    let u32_at =
        |at: usize| u32::from_ne_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    let u16_at = |at: usize| u16::from_ne_bytes([bytes[at], bytes[at + 1]]);
    let (magic, major, minor, modality) = (u32_at(0), u16_at(4), u16_at(6), u32_at(8));
    if magic != m::TORII_MATCHER_ABI_MAGIC {
        return Err(malformed(format!(
            "magic {magic:#010x}, expected {:#010x}",
            m::TORII_MATCHER_ABI_MAGIC
        )));
    }
    if major != m::TORII_MATCHER_ABI_MAJOR {
        return Err(MatcherLoadError::Incompatible {
            path: path.into(),
            major,
            minor,
        });
    }
    let modality = Modality::from_abi(modality).ok_or(MatcherLoadError::UnknownModality {
        path: path.into(),
        modality,
    })?;
    Ok(MatcherProbe {
        abi_major: major,
        abi_minor: minor,
        modality,
    })
}

/// The matcher instance and its api table, shared by the [`LoadedMatcher`] and every
/// template it prepared: destroyed when the last of them goes.
struct Instance {
    api: torii_matcher_api,
    handle: *mut torii_matcher,
    /// Held around every call unless the matcher declared THREAD_SAFE.
    serial: Option<Mutex<()>>,
    poisoned: AtomicBool,
}

// SAFETY: the api table is an immutable copy whose pointers target the library's static
// code (never unloaded); the handle is only used through calls that the contract allows
// from any thread, serialised by `serial` unless the matcher declared THREAD_SAFE.
unsafe impl Send for Instance {}
// SAFETY: as above.
unsafe impl Sync for Instance {}

impl Instance {
    fn call<T>(&self, op: impl FnOnce() -> T) -> T {
        let _guard = self
            .serial
            .as_ref()
            .map(|m| m.lock().unwrap_or_else(|p| p.into_inner()));
        op()
    }

    fn status(&self, raw: i32) -> Result<(), MatcherError> {
        match raw {
            abi::TORII_OK => Ok(()),
            abi::TORII_INTERNAL_ERROR => {
                self.poisoned.store(true, Ordering::Release);
                Err(MatcherError::Poisoned)
            }
            abi::TORII_NOT_SUPPORTED => Err(MatcherError::NotSupported(
                "the matcher does not support this".into(),
            )),
            other => Err(MatcherError::Status(other)),
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Some(destroy) = self.api.destroy {
            // SAFETY: every prepared template holds an Arc<Instance>, so none is left;
            // no call runs (we are the last owner); destroyed once.
            unsafe { destroy(self.handle) };
        }
    }
}

/// A plugin's prepared template; released through the plugin when dropped.
struct PluginPrepared {
    instance: Arc<Instance>,
    handle: *mut torii_prepared,
}

// SAFETY: prepared templates are immutable (matcher.h rule 4); release goes through the
// instance's serialisation.
unsafe impl Send for PluginPrepared {}
// SAFETY: as above.
unsafe impl Sync for PluginPrepared {}

impl Drop for PluginPrepared {
    fn drop(&mut self) {
        if let Some(release) = self.instance.api.release_prepared {
            let (instance, handle) = (&self.instance, self.handle);
            // SAFETY: the handle came from this instance's prepare and is given back once.
            instance.call(|| unsafe { release(instance.handle, handle) });
        }
    }
}

/// A matcher plugin loaded in-process.
pub struct LoadedMatcher {
    pub path: PathBuf,
    pub probe: MatcherProbe,
    info: MatcherInfo,
    id: u64,
    instance: Arc<Instance>,
}

impl std::fmt::Debug for LoadedMatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedMatcher")
            .field("path", &self.path)
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

fn static_str(text: *const c_char) -> String {
    if text.is_null() {
        return String::new();
    }
    // SAFETY: static_* strings are NUL-terminated and live forever (contract rule 3).
    unsafe { CStr::from_ptr(text) }
        .to_string_lossy()
        .chars()
        .take(128)
        .collect()
}

impl LoadedMatcher {
    /// Probes `path` (refusing a wrong ABI or modality before any of its code runs),
    /// loads it and creates an instance with `config_json` (`"{}"` for none).
    pub fn load(
        path: &Path,
        expected: Modality,
        config_json: &str,
    ) -> Result<LoadedMatcher, MatcherLoadError> {
        let load_err = |reason: String| MatcherLoadError::Load {
            path: path.into(),
            reason,
        };
        let canonical = path.canonicalize().map_err(|e| load_err(e.to_string()))?;
        let probe = probe_matcher(&canonical)?;
        if probe.modality != expected {
            return Err(MatcherLoadError::WrongModality {
                path: path.into(),
                expected,
                found: probe.modality,
            });
        }
        // SAFETY: loading runs the library's initialisers; the probe established that it
        // is a torii matcher built for this ABI. RTLD_LOCAL keeps its symbols to itself.
        let library = unsafe {
            libloading::os::unix::Library::open(
                Some(&canonical),
                libloading::os::unix::RTLD_NOW | libloading::os::unix::RTLD_LOCAL,
            )
        }
        .map_err(|e| load_err(e.to_string()))?;
        // SAFETY: the symbol has the torii_matcher_entry_fn type by the contract.
        let entry: m::torii_matcher_entry_fn = unsafe {
            *library
                .get::<m::torii_matcher_entry_fn>(m::MATCHER_ENTRY_SYMBOL.as_bytes())
                .map_err(|e| {
                    load_err(format!("no `{}` entry point: {e}", m::MATCHER_ENTRY_SYMBOL))
                })?
        };
        // Never dlclose: the matcher may have left threads or TLS destructors behind.
        std::mem::forget(library);
        // SAFETY: calling the matcher's entry point once after the tag was accepted.
        let api_ptr = unsafe { entry() };
        if api_ptr.is_null() {
            return Err(load_err("torii_matcher_entry returned no api".into()));
        }
        // SAFETY: a non-null api starts with its u32 struct_size (contract rule 2).
        let declared = unsafe { *(api_ptr as *const u32) } as usize;
        if declared < size_of::<torii_matcher_api>() {
            // Every 1.0 field is required; later minors only append.
            return Err(load_err(format!(
                "matcher api struct_size {declared} is smaller than ABI 1.0's {}",
                size_of::<torii_matcher_api>()
            )));
        }
        let mut api = MaybeUninit::<torii_matcher_api>::zeroed();
        // SAFETY: the matcher declared at least size_of::<torii_matcher_api>() readable
        // bytes; we copy exactly that many into our own struct.
        let api = unsafe {
            std::ptr::copy_nonoverlapping(
                api_ptr as *const u8,
                api.as_mut_ptr() as *mut u8,
                size_of::<torii_matcher_api>(),
            );
            api.assume_init()
        };
        if api.modality != probe.modality.to_abi() {
            return Err(load_err(format!(
                "matcher api modality {} differs from its ABI tag's {}",
                api.modality,
                probe.modality.to_abi()
            )));
        }
        let (Some(create), Some(_), Some(_), Some(_), Some(_)) = (
            api.create,
            api.destroy,
            api.prepare,
            api.release_prepared,
            api.compare,
        ) else {
            return Err(load_err(
                "matcher api lacks create, destroy, prepare, release_prepared or compare".into(),
            ));
        };
        let info = MatcherInfo {
            name: static_str(api.static_name),
            version: static_str(api.static_version),
            vendor: static_str(api.static_vendor),
            modality: probe.modality,
        };
        let config = CString::new(config_json)
            .map_err(|_| load_err("the matcher config contains a NUL byte".into()))?;
        let mut handle: *mut torii_matcher = std::ptr::null_mut();
        // SAFETY: config is NUL-terminated and borrowed for the call; handle is ours.
        let status = unsafe { create(config.as_ptr(), &mut handle) };
        if status != abi::TORII_OK || handle.is_null() {
            return Err(MatcherLoadError::Create {
                path: path.into(),
                status,
            });
        }
        let thread_safe = api.capabilities & m::TORII_MATCHER_CAP_THREAD_SAFE != 0;
        Ok(LoadedMatcher {
            path: canonical,
            probe,
            info,
            id: m::next_instance_id(),
            instance: Arc::new(Instance {
                api,
                handle,
                serial: (!thread_safe).then(|| Mutex::new(())),
                poisoned: AtomicBool::new(false),
            }),
        })
    }
}

impl DynMatcher for LoadedMatcher {
    fn info(&self) -> &MatcherInfo {
        &self.info
    }

    fn instance_id(&self) -> u64 {
        self.id
    }

    fn prepare(&self, template: Template<'_>) -> Result<Prepared, MatcherError> {
        let instance = &self.instance;
        if instance.poisoned.load(Ordering::Acquire) {
            return Err(MatcherError::Poisoned);
        }
        let prepare = instance.api.prepare.ok_or(MatcherError::Poisoned)?;
        let raw = torii_template {
            struct_size: size_of::<torii_template>() as u32,
            format: template.format.to_abi(),
            borrowed_data: template.data.as_ptr(),
            data_len: template.data.len(),
            finger_position: template.finger_position,
            view_index: template.view_index,
        };
        let mut handle: *mut torii_prepared = std::ptr::null_mut();
        let mut message = [0u8; 256];
        let mut message_len = 0usize;
        // SAFETY: every pointer is to this frame's data, valid for the call; the
        // capacity is the buffer's true length.
        let status = instance.call(|| unsafe {
            prepare(
                instance.handle,
                &raw,
                &mut handle,
                message.as_mut_ptr().cast(),
                message.len(),
                &mut message_len,
            )
        });
        if status == abi::TORII_INVALID_ARGUMENT {
            let len = message_len.min(message.len());
            let text = String::from_utf8_lossy(&message[..len])
                .trim_end_matches('\0')
                .to_string();
            // A successful-looking handle with an error status is still released.
            if !handle.is_null() {
                drop(PluginPrepared {
                    instance: instance.clone(),
                    handle,
                });
            }
            return Err(MatcherError::BadTemplate(if text.is_empty() {
                "the matcher refused the template".into()
            } else {
                text
            }));
        }
        instance.status(status)?;
        if handle.is_null() {
            return Err(MatcherError::Status(abi::TORII_INTERNAL_ERROR));
        }
        let prepared = PluginPrepared {
            instance: instance.clone(),
            handle,
        };
        Ok(Prepared::new(self.id, Box::new(prepared)))
    }

    fn compare(&self, probe: &Prepared, reference: &Prepared) -> Result<Score, MatcherError> {
        let instance = &self.instance;
        if instance.poisoned.load(Ordering::Acquire) {
            return Err(MatcherError::Poisoned);
        }
        let probe = probe.get::<PluginPrepared>(self.id)?;
        let reference = reference.get::<PluginPrepared>(self.id)?;
        let compare = instance.api.compare.ok_or(MatcherError::Poisoned)?;
        // NaN until the matcher writes something: an untouched result is an error.
        let mut result = torii_comparison {
            struct_size: size_of::<torii_comparison>() as u32,
            quality: -1,
            score: f64::NAN,
            raw_score: f64::NAN,
        };
        // SAFETY: both handles are live templates of this instance (they hold it), the
        // result is this frame's, sized as declared.
        let status = instance.call(|| unsafe {
            compare(instance.handle, probe.handle, reference.handle, &mut result)
        });
        instance.status(status)?;
        Score::from_abi(&result)
    }
}

/// Where the daemon's matcher comes from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MatcherConfig {
    /// A matcher plugin (`.so`); `None` = the built-in matcher.
    pub plugin: Option<PathBuf>,
    /// The plugin's config table as JSON (`"{}"` when empty).
    pub config_json: String,
}

/// The configured matcher plugin, or `builtin()` when none is configured. A configured
/// plugin that cannot be loaded is an error (never a silent fallback to the built-in:
/// the operator asked for that matcher and its calibration).
///
/// From the daemon: `configured_or(&cfg, Modality::Finger, torii_matcher::builtin::builtin)`.
pub fn configured_or(
    config: &MatcherConfig,
    modality: Modality,
    builtin: impl FnOnce() -> Arc<dyn DynMatcher>,
) -> Result<Arc<dyn DynMatcher>, MatcherLoadError> {
    match &config.plugin {
        None => {
            let matcher = builtin();
            if matcher.info().modality != modality {
                return Err(MatcherLoadError::WrongModality {
                    path: PathBuf::from("(built-in)"),
                    expected: modality,
                    found: matcher.info().modality,
                });
            }
            Ok(matcher)
        }
        Some(path) => {
            let json = if config.config_json.trim().is_empty() {
                "{}"
            } else {
                config.config_json.as_str()
            };
            Ok(Arc::new(LoadedMatcher::load(path, modality, json)?))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_and_drivers_are_not_matchers() {
        let path = Path::new("/matchers/libjunk.so");
        for data in [&b""[..], b"\x7fELF", b"not a matcher", &[0u8; 64]] {
            let err = probe_matcher_bytes(path, data).unwrap_err();
            assert!(err.to_string().contains("/matchers/libjunk.so"), "{err}");
        }
        let me = std::env::current_exe().unwrap();
        assert!(matches!(
            probe_matcher(&me),
            Err(MatcherLoadError::NoTag { .. })
        ));
    }
}
