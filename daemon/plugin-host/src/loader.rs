//! Loads a probed driver library and reads its `torii_driver_api`.
//!
//! Libraries are never unloaded (no `dlclose`): a driver may have left threads, TLS
//! destructors or callbacks behind, and unmapping their code would turn that into a
//! crash. A library is loaded once per path and shared by every device using it.

use std::collections::HashMap;
use std::ffi::CStr;
use std::mem::MaybeUninit;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use torii_sdk::abi::{self, torii_driver_api};
use torii_sdk::model::DeviceClass;

use crate::device::{DriverInfo, OpenError};
use crate::probe::{AbiProbe, probe};

/// A class's ops table, truncated to what the driver declared (missing = `None`).
#[derive(Clone, Copy, Debug)]
pub enum ClassOps {
    DocumentReader(abi::torii_document_reader_ops),
    CodeReader(abi::torii_code_reader_ops),
    CardPrinter(abi::torii_card_printer_ops),
    CardReader(abi::torii_card_reader_ops),
    FingerprintSensor(abi::torii_fingerprint_sensor_ops),
    Camera(abi::torii_camera_ops),
    LaneController(abi::torii_lane_controller_ops),
}

/// A loaded driver library.
#[derive(Debug)]
pub struct LoadedDriver {
    pub path: PathBuf,
    pub probe: AbiProbe,
    pub info: DriverInfo,
    pub api: torii_driver_api,
    pub ops: ClassOps,
}

// SAFETY: the api and ops tables are immutable copies; the pointers in them target the
// library's static data and code, which stay mapped forever (no dlclose). Calling through
// them is governed by the driver contract (the host serialises per device).
unsafe impl Send for LoadedDriver {}
// SAFETY: as above.
unsafe impl Sync for LoadedDriver {}

/// Copies a `struct_size`-prefixed ABI struct, zero-filling fields the driver does not
/// know (so later entry points read as `None`).
///
/// # Safety
/// `source` must be NULL or point at a struct starting with a `u32` struct_size, readable
/// for that many bytes. `T` must be valid when zeroed.
unsafe fn copy_sized<T: Copy>(source: *const T) -> Option<(T, u32)> {
    if source.is_null() {
        return None;
    }
    // SAFETY: the struct starts with its u32 size, per the caller's contract.
    let declared = unsafe { *(source as *const u32) };
    if (declared as usize) < size_of::<u32>() {
        return None;
    }
    let len = (declared as usize).min(size_of::<T>());
    let mut out = MaybeUninit::<T>::zeroed();
    // SAFETY: reading `len` <= declared bytes from source; writing len <= size_of::<T>().
    unsafe { std::ptr::copy_nonoverlapping(source as *const u8, out.as_mut_ptr() as *mut u8, len) };
    // SAFETY: every ABI struct is valid all-zero (integers, raw pointers, Option<fn>).
    Some((unsafe { out.assume_init() }, declared))
}

fn static_str(text: *const std::ffi::c_char) -> String {
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

fn loaded_libraries() -> &'static Mutex<HashMap<PathBuf, Arc<LoadedDriver>>> {
    static LOADED: OnceLock<Mutex<HashMap<PathBuf, Arc<LoadedDriver>>>> = OnceLock::new();
    LOADED.get_or_init(Default::default)
}

/// Probes, then loads `path` (once per canonical path) and validates its api.
pub fn load(
    path: &Path,
    expected_class: Option<DeviceClass>,
) -> Result<Arc<LoadedDriver>, OpenError> {
    let load_err = |reason: String| OpenError::Load {
        path: path.into(),
        reason,
    };
    let canonical = path.canonicalize().map_err(|e| load_err(e.to_string()))?;
    let mut loaded = loaded_libraries().lock().unwrap_or_else(|p| p.into_inner());
    if let Some(driver) = loaded.get(&canonical) {
        check_class(path, expected_class, driver.info.class)?;
        return Ok(driver.clone());
    }
    // The tag is read from the file first: a wrong ABI never gets to run any code.
    let probe = probe(&canonical)?;
    check_class(path, expected_class, probe.class)?;

    // SAFETY: loading runs the library's initialisers; the probe established that it is
    // a torii driver built for this ABI. RTLD_LOCAL keeps its symbols to itself.
    let library = unsafe {
        libloading::os::unix::Library::open(
            Some(&canonical),
            libloading::os::unix::RTLD_NOW | libloading::os::unix::RTLD_LOCAL,
        )
    }
    .map_err(|e| load_err(e.to_string()))?;
    // SAFETY: the symbol has the torii_driver_entry_fn type by the contract.
    let entry: abi::torii_driver_entry_fn = unsafe {
        *library
            .get::<abi::torii_driver_entry_fn>(abi::ENTRY_SYMBOL.as_bytes())
            .map_err(|e| load_err(format!("no `{}` entry point: {e}", abi::ENTRY_SYMBOL)))?
    };
    // Never dlclose: see the module comment.
    std::mem::forget(library);

    // SAFETY: calling the driver's entry point, as the contract allows once per load.
    let api_ptr = unsafe { entry() };
    // SAFETY: the entry returns NULL or a static torii_driver_api.
    let (api, declared) = unsafe { copy_sized(api_ptr) }
        .ok_or_else(|| load_err("torii_driver_entry returned no driver api".into()))?;
    if (declared as usize) < size_of::<torii_driver_api>() {
        // Every 1.0 field is required; later minors only append.
        return Err(load_err(format!(
            "driver api struct_size {declared} is smaller than ABI 1.0's {}",
            size_of::<torii_driver_api>()
        )));
    }
    if api.device_class != probe.class.to_abi() {
        return Err(load_err(format!(
            "driver api class {} differs from its ABI tag's class {}",
            api.device_class,
            probe.class.to_abi()
        )));
    }
    if api.open.is_none() || api.close.is_none() || api.get_state.is_none() {
        return Err(load_err("driver api lacks open, close or get_state".into()));
    }
    let ops = read_class_ops(probe.class, api.class_ops)
        .ok_or_else(|| load_err("driver api has no class ops table".into()))?;
    let info = DriverInfo {
        name: static_str(api.static_name),
        version: static_str(api.static_version),
        vendor: static_str(api.static_vendor),
        class: probe.class,
        capabilities: api.capabilities,
        abi_major: probe.abi_major,
        abi_minor: probe.abi_minor,
    };
    let driver = Arc::new(LoadedDriver {
        path: canonical.clone(),
        probe,
        info,
        api,
        ops,
    });
    loaded.insert(canonical, driver.clone());
    Ok(driver)
}

fn check_class(
    path: &Path,
    expected: Option<DeviceClass>,
    found: DeviceClass,
) -> Result<(), OpenError> {
    match expected {
        Some(expected) if expected != found => Err(OpenError::ClassMismatch {
            path: path.into(),
            expected,
            found,
        }),
        _ => Ok(()),
    }
}

fn read_class_ops(class: DeviceClass, ops: *const std::ffi::c_void) -> Option<ClassOps> {
    // SAFETY: (all arms) class_ops points at the ops struct of the class the driver
    // declared (contract), which starts with its struct_size.
    unsafe {
        Some(match class {
            DeviceClass::DocumentReader => ClassOps::DocumentReader(copy_sized(ops.cast())?.0),
            DeviceClass::CodeReader => ClassOps::CodeReader(copy_sized(ops.cast())?.0),
            DeviceClass::CardPrinter => ClassOps::CardPrinter(copy_sized(ops.cast())?.0),
            DeviceClass::CardReader => ClassOps::CardReader(copy_sized(ops.cast())?.0),
            DeviceClass::FingerprintSensor => {
                ClassOps::FingerprintSensor(copy_sized(ops.cast())?.0)
            }
            DeviceClass::Camera => ClassOps::Camera(copy_sized(ops.cast())?.0),
            DeviceClass::LaneController => ClassOps::LaneController(copy_sized(ops.cast())?.0),
        })
    }
}
