//! The C entry points behind [`export_driver!`](crate::export_driver): every call from the
//! host lands here, is checked, runs the driver's trait method inside `catch_unwind`, and
//! is turned back into a `torii_status`. A panic poisons the device: from then on every
//! operation answers INTERNAL_ERROR and the state is UNAVAILABLE (the host reports the
//! fault; an isolated driver gets a fresh process).

use std::ffi::{CStr, c_char, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::abi::{self, DevicePtr, torii_driver_api, torii_finger_sample, torii_host_api};
use crate::driver::*;
use crate::model::{DeviceState, Door, DoorCommand, Event, FingerPosition, Light, Status, Zone};

struct DeviceBox<D> {
    driver: D,
    host: Host,
    poisoned: AtomicBool,
}

type Outcome = Result<(), Status>;

fn to_raw(outcome: Outcome) -> i32 {
    match outcome {
        Ok(()) => abi::TORII_OK,
        Err(status) => status.to_abi(),
    }
}

/// Panic messages can carry whatever the driver was handling (an MRZ, a name); the
/// default hook would print them. Replace the hook of the driver's copy of std once,
/// keeping only the location.
fn install_quiet_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let location = info
                .location()
                .map(|l| format!("{}:{}", l.file(), l.line()))
                .unwrap_or_else(|| "unknown location".into());
            eprintln!("torii driver panicked at {location} (message withheld)");
        }))
    });
}

/// Runs `op` on the device behind `device`, containing panics.
///
/// # Safety
/// `device` must be NULL or a pointer returned by this driver's `open` and not yet closed.
unsafe fn with_device<D: Driver>(
    device: DevicePtr,
    op_name: &str,
    op: impl FnOnce(&D) -> Outcome,
) -> i32 {
    // SAFETY: per this function's contract, a non-null device is our live DeviceBox<D>.
    let Some(boxed) = (unsafe { (device as *const DeviceBox<D>).as_ref() }) else {
        return abi::TORII_INVALID_ARGUMENT;
    };
    if boxed.poisoned.load(Ordering::Acquire) {
        return abi::TORII_INTERNAL_ERROR;
    }
    match catch_unwind(AssertUnwindSafe(|| op(&boxed.driver))) {
        Ok(outcome) => to_raw(outcome),
        Err(_) => {
            boxed.poisoned.store(true, Ordering::Release);
            boxed.host.log(
                LogLevel::Error,
                &format!(
                    "driver {} panicked in {op_name}; device poisoned",
                    D::NAME.to_string_lossy()
                ),
            );
            boxed.host.emit(&Event::StateChanged {
                state: DeviceState::Unavailable,
            });
            abi::TORII_INTERNAL_ERROR
        }
    }
}

/// Copies `data` into a caller-owned buffer, reporting the full length.
///
/// # Safety
/// `buffer` must be NULL or valid for `capacity` bytes; `out_len` NULL or writable.
unsafe fn copy_out(data: &[u8], buffer: *mut u8, capacity: usize, out_len: *mut usize) -> Outcome {
    if !out_len.is_null() {
        // SAFETY: caller contract: out_len is writable when non-null.
        unsafe { *out_len = data.len() };
    }
    if data.len() > capacity {
        return Err(Status::BufferTooSmall);
    }
    if data.is_empty() {
        return Ok(());
    }
    if buffer.is_null() {
        return Err(Status::InvalidArgument);
    }
    // SAFETY: buffer is valid for capacity >= data.len() bytes and cannot overlap `data`,
    // which the driver allocated itself.
    unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), buffer, data.len()) };
    Ok(())
}

/// # Safety
/// `text` must be NULL or a NUL-terminated string.
unsafe fn borrowed_str<'a>(text: *const c_char) -> Result<&'a str, Status> {
    if text.is_null() {
        return Err(Status::InvalidArgument);
    }
    // SAFETY: non-null and NUL-terminated per the contract.
    unsafe { CStr::from_ptr(text) }
        .to_str()
        .map_err(|_| Status::InvalidArgument)
}

// ---------------------------------------------------------------- common entry points

unsafe extern "C" fn open<D: Driver>(
    host: *const torii_host_api,
    config_json: *const c_char,
    out_device: *mut DevicePtr,
) -> i32 {
    install_quiet_panic_hook();
    if host.is_null() || out_device.is_null() {
        return abi::TORII_INVALID_ARGUMENT;
    }
    // SAFETY: the host keeps its api valid until close() returns.
    let host = unsafe { Host::from_raw(host) };
    let config = if config_json.is_null() {
        "{}"
    } else {
        // SAFETY: non-null config is a NUL-terminated string per the contract.
        match unsafe { borrowed_str(config_json) } {
            Ok(config) => config,
            Err(status) => return status.to_abi(),
        }
    };
    match catch_unwind(AssertUnwindSafe(|| D::open(host, config))) {
        Ok(Ok(driver)) => {
            let boxed = Box::new(DeviceBox {
                driver,
                host,
                poisoned: AtomicBool::new(false),
            });
            // SAFETY: out_device checked non-null above.
            unsafe { *out_device = Box::into_raw(boxed) as DevicePtr };
            abi::TORII_OK
        }
        Ok(Err(status)) => status.to_abi(),
        Err(_) => {
            host.log(
                LogLevel::Error,
                &format!("driver {} panicked in open", D::NAME.to_string_lossy()),
            );
            abi::TORII_INTERNAL_ERROR
        }
    }
}

unsafe extern "C" fn close<D: Driver>(device: DevicePtr) {
    if device.is_null() {
        return;
    }
    // SAFETY: the host passes a pointer from open() exactly once to close().
    let boxed = unsafe { Box::from_raw(device as *mut DeviceBox<D>) };
    // A panicking Drop must not unwind into the host either.
    let _ = catch_unwind(AssertUnwindSafe(move || drop(boxed)));
}

unsafe extern "C" fn get_state<D: Driver>(device: DevicePtr) -> i32 {
    let mut state = DeviceState::Unavailable;
    // SAFETY: forwarded host contract.
    let status = unsafe {
        with_device::<D>(device, "get_state", |d| {
            state = d.state();
            Ok(())
        })
    };
    if status == abi::TORII_OK {
        state.to_abi()
    } else {
        abi::TORII_STATE_UNAVAILABLE
    }
}

unsafe extern "C" fn cancel<D: Driver>(device: DevicePtr) -> i32 {
    // SAFETY: forwarded host contract.
    unsafe {
        with_device::<D>(device, "cancel", |d| {
            d.cancel();
            Ok(())
        })
    }
}

/// The `torii_driver_api` of driver type `D`.
pub const fn driver_api<D: Driver>(
    device_class: u32,
    class_ops: *const c_void,
) -> torii_driver_api {
    torii_driver_api {
        struct_size: size_of::<torii_driver_api>() as u32,
        device_class,
        static_name: D::NAME.as_ptr(),
        static_version: D::VERSION.as_ptr(),
        static_vendor: D::VENDOR.as_ptr(),
        capabilities: D::CAPABILITIES,
        open: Some(open::<D>),
        close: Some(close::<D>),
        get_state: Some(get_state::<D>),
        cancel: Some(cancel::<D>),
        class_ops,
    }
}

// ---------------------------------------------------------------- document reader

unsafe extern "C" fn read_mrz<D: DocumentReader>(
    device: DevicePtr,
    text: *mut c_char,
    capacity: usize,
    out_len: *mut usize,
) -> i32 {
    // SAFETY: forwarded host contract on device and buffers.
    unsafe {
        with_device::<D>(device, "read_mrz", |d| {
            let lines = d.read_mrz()?.join("\n");
            copy_out(lines.as_bytes(), text as *mut u8, capacity, out_len)
        })
    }
}

unsafe extern "C" fn chip_connect<D: DocumentReader>(
    device: DevicePtr,
    atr: *mut u8,
    capacity: usize,
    out_len: *mut usize,
) -> i32 {
    // SAFETY: forwarded host contract on device and buffers.
    unsafe {
        with_device::<D>(device, "chip_connect", |d| {
            copy_out(&d.chip_connect()?, atr, capacity, out_len)
        })
    }
}

unsafe extern "C" fn chip_transmit<D: DocumentReader>(
    device: DevicePtr,
    command: *const u8,
    command_len: usize,
    response: *mut u8,
    capacity: usize,
    out_len: *mut usize,
) -> i32 {
    if command.is_null() || command_len == 0 {
        return abi::TORII_INVALID_ARGUMENT;
    }
    // SAFETY: the host passes command_len readable bytes, borrowed for this call.
    let command = unsafe { std::slice::from_raw_parts(command, command_len) };
    // SAFETY: forwarded host contract on device and buffers.
    unsafe {
        with_device::<D>(device, "chip_transmit", |d| {
            copy_out(&d.chip_transmit(command)?, response, capacity, out_len)
        })
    }
}

unsafe extern "C" fn chip_disconnect<D: DocumentReader>(device: DevicePtr) -> i32 {
    // SAFETY: forwarded host contract.
    unsafe { with_device::<D>(device, "chip_disconnect", |d| d.chip_disconnect()) }
}

pub const fn document_reader_ops<D: DocumentReader>() -> abi::torii_document_reader_ops {
    abi::torii_document_reader_ops {
        struct_size: size_of::<abi::torii_document_reader_ops>() as u32,
        read_mrz: Some(read_mrz::<D>),
        chip_connect: Some(chip_connect::<D>),
        chip_transmit: Some(chip_transmit::<D>),
        chip_disconnect: Some(chip_disconnect::<D>),
    }
}

// ---------------------------------------------------------------- code reader

unsafe extern "C" fn set_enabled<D: CodeReader>(device: DevicePtr, enabled: i32) -> i32 {
    // SAFETY: forwarded host contract.
    unsafe { with_device::<D>(device, "set_enabled", |d| d.set_enabled(enabled != 0)) }
}

pub const fn code_reader_ops<D: CodeReader>() -> abi::torii_code_reader_ops {
    abi::torii_code_reader_ops {
        struct_size: size_of::<abi::torii_code_reader_ops>() as u32,
        set_enabled: Some(set_enabled::<D>),
    }
}

// ---------------------------------------------------------------- card printer / reader

unsafe extern "C" fn printer_read_chip<D: CardPrinter>(
    device: DevicePtr,
    data: *mut u8,
    capacity: usize,
    out_len: *mut usize,
) -> i32 {
    // SAFETY: forwarded host contract on device and buffers.
    unsafe {
        with_device::<D>(device, "read_chip", |d| {
            copy_out(&d.read_chip()?, data, capacity, out_len)
        })
    }
}

unsafe extern "C" fn print_line<D: CardPrinter>(device: DevicePtr, line: *const c_char) -> i32 {
    // SAFETY: the host passes a NUL-terminated borrowed line.
    let line = match unsafe { borrowed_str(line) } {
        Ok(line) => line,
        Err(status) => return status.to_abi(),
    };
    // SAFETY: forwarded host contract.
    unsafe { with_device::<D>(device, "print_line", |d| d.print_line(line)) }
}

unsafe extern "C" fn eject<D: CardPrinter>(device: DevicePtr) -> i32 {
    // SAFETY: forwarded host contract.
    unsafe { with_device::<D>(device, "eject", |d| d.eject()) }
}

unsafe extern "C" fn retain<D: CardPrinter>(device: DevicePtr) -> i32 {
    // SAFETY: forwarded host contract.
    unsafe { with_device::<D>(device, "retain", |d| d.retain()) }
}

pub const fn card_printer_ops<D: CardPrinter>() -> abi::torii_card_printer_ops {
    abi::torii_card_printer_ops {
        struct_size: size_of::<abi::torii_card_printer_ops>() as u32,
        read_chip: Some(printer_read_chip::<D>),
        print_line: Some(print_line::<D>),
        eject: Some(eject::<D>),
        retain: Some(retain::<D>),
    }
}

unsafe extern "C" fn reader_read_chip<D: CardReader>(
    device: DevicePtr,
    data: *mut u8,
    capacity: usize,
    out_len: *mut usize,
) -> i32 {
    // SAFETY: forwarded host contract on device and buffers.
    unsafe {
        with_device::<D>(device, "read_chip", |d| {
            copy_out(&d.read_chip()?, data, capacity, out_len)
        })
    }
}

pub const fn card_reader_ops<D: CardReader>() -> abi::torii_card_reader_ops {
    abi::torii_card_reader_ops {
        struct_size: size_of::<abi::torii_card_reader_ops>() as u32,
        read_chip: Some(reader_read_chip::<D>),
    }
}

// ---------------------------------------------------------------- fingerprint sensor

unsafe extern "C" fn capture<D: FingerprintSensor>(
    device: DevicePtr,
    timeout_ms: u32,
    samples: *mut torii_finger_sample,
    sample_count: usize,
) -> i32 {
    if samples.is_null() || sample_count == 0 {
        return abi::TORII_INVALID_ARGUMENT;
    }
    // SAFETY: the host passes sample_count caller-owned samples, exclusively ours for the call.
    let samples = unsafe { std::slice::from_raw_parts_mut(samples, sample_count) };
    let mut fingers = Vec::with_capacity(sample_count);
    for sample in samples.iter() {
        if (sample.struct_size as usize) < size_of::<torii_finger_sample>() {
            return abi::TORII_INVALID_ARGUMENT;
        }
        match FingerPosition::from_code(sample.finger_position) {
            Some(finger) => fingers.push(finger),
            None => return abi::TORII_INVALID_ARGUMENT,
        }
    }
    let wants = CaptureWants {
        template: samples.iter().all(|s| !s.caller_owned_template.is_null()),
        image: samples.iter().all(|s| !s.caller_owned_image.is_null()),
    };
    // SAFETY: forwarded host contract on device and the sample buffers.
    unsafe {
        with_device::<D>(device, "capture", |d| {
            let captured = d.capture(&fingers, Duration::from_millis(timeout_ms.into()), wants)?;
            if captured.len() != samples.len() {
                return Err(Status::HardwareError);
            }
            for (out, sample) in samples.iter_mut().zip(captured) {
                out.quality = sample.quality.map_or(-1, i32::from);
                if wants.template {
                    copy_out(
                        &sample.template,
                        out.caller_owned_template,
                        out.template_capacity,
                        &mut out.template_len,
                    )?;
                }
                if wants.image {
                    copy_out(
                        &sample.image,
                        out.caller_owned_image,
                        out.image_capacity,
                        &mut out.image_len,
                    )?;
                }
            }
            Ok(())
        })
    }
}

pub const fn fingerprint_sensor_ops<D: FingerprintSensor>() -> abi::torii_fingerprint_sensor_ops {
    abi::torii_fingerprint_sensor_ops {
        struct_size: size_of::<abi::torii_fingerprint_sensor_ops>() as u32,
        capture: Some(capture::<D>),
    }
}

// ---------------------------------------------------------------- camera

unsafe extern "C" fn capture_face<D: Camera>(
    device: DevicePtr,
    timeout_ms: u32,
    jpeg: *mut u8,
    capacity: usize,
    out_len: *mut usize,
) -> i32 {
    // SAFETY: forwarded host contract on device and buffers.
    unsafe {
        with_device::<D>(device, "capture_face", |d| {
            let image = d.capture_face(Duration::from_millis(timeout_ms.into()))?;
            copy_out(&image, jpeg, capacity, out_len)
        })
    }
}

pub const fn camera_ops<D: Camera>() -> abi::torii_camera_ops {
    abi::torii_camera_ops {
        struct_size: size_of::<abi::torii_camera_ops>() as u32,
        capture_face: Some(capture_face::<D>),
    }
}

// ---------------------------------------------------------------- lane controller

unsafe extern "C" fn set_door<D: LaneController>(
    device: DevicePtr,
    door: u32,
    command: u32,
) -> i32 {
    let (Some(door), Some(command)) = (Door::from_abi(door), DoorCommand::from_abi(command)) else {
        return abi::TORII_INVALID_ARGUMENT;
    };
    // SAFETY: forwarded host contract.
    unsafe { with_device::<D>(device, "set_door", |d| d.set_door(door, command)) }
}

/// # Safety
/// `out` must be NULL or writable.
unsafe fn write_out<T>(out: *mut T, value: T) -> Outcome {
    if out.is_null() {
        return Err(Status::InvalidArgument);
    }
    // SAFETY: checked non-null; writable per the caller's contract.
    unsafe { *out = value };
    Ok(())
}

unsafe extern "C" fn get_door<D: LaneController>(
    device: DevicePtr,
    door: u32,
    out_state: *mut u32,
) -> i32 {
    let Some(door) = Door::from_abi(door) else {
        return abi::TORII_INVALID_ARGUMENT;
    };
    // SAFETY: forwarded host contract on device and out pointer.
    unsafe {
        with_device::<D>(device, "get_door", |d| {
            write_out(out_state, d.door_state(door)?.to_abi())
        })
    }
}

unsafe extern "C" fn get_person_count<D: LaneController>(
    device: DevicePtr,
    zone: u32,
    out_count: *mut u32,
) -> i32 {
    let Some(zone) = Zone::from_abi(zone) else {
        return abi::TORII_INVALID_ARGUMENT;
    };
    // SAFETY: forwarded host contract on device and out pointer.
    unsafe {
        with_device::<D>(device, "get_person_count", |d| {
            write_out(out_count, d.person_count(zone)?)
        })
    }
}

unsafe extern "C" fn get_fire_alarm<D: LaneController>(
    device: DevicePtr,
    out_active: *mut i32,
) -> i32 {
    // SAFETY: forwarded host contract on device and out pointer.
    unsafe {
        with_device::<D>(device, "get_fire_alarm", |d| {
            write_out(out_active, i32::from(d.fire_alarm()?))
        })
    }
}

unsafe extern "C" fn set_light<D: LaneController>(device: DevicePtr, light: u32) -> i32 {
    let Some(light) = Light::from_abi(light) else {
        return abi::TORII_INVALID_ARGUMENT;
    };
    // SAFETY: forwarded host contract.
    unsafe { with_device::<D>(device, "set_light", |d| d.set_light(light)) }
}

pub const fn lane_controller_ops<D: LaneController>() -> abi::torii_lane_controller_ops {
    abi::torii_lane_controller_ops {
        struct_size: size_of::<abi::torii_lane_controller_ops>() as u32,
        set_door: Some(set_door::<D>),
        get_door: Some(get_door::<D>),
        get_person_count: Some(get_person_count::<D>),
        get_fire_alarm: Some(get_fire_alarm::<D>),
        set_light: Some(set_light::<D>),
    }
}

/// Exports a Rust type as a torii driver plugin: `export_driver!(DocumentReader => MyReader);`
///
/// The class is one of `DocumentReader`, `CodeReader`, `CardPrinter`, `CardReader`,
/// `FingerprintSensor`, `Camera`, `LaneController`; the type implements [`Driver`] and
/// that class's trait. Build the crate as a `cdylib`.
#[macro_export]
macro_rules! export_driver {
    (DocumentReader => $ty:ty) => {
        $crate::__export_driver!(
            $ty,
            TORII_CLASS_DOCUMENT_READER,
            torii_document_reader_ops,
            document_reader_ops
        );
    };
    (CodeReader => $ty:ty) => {
        $crate::__export_driver!(
            $ty,
            TORII_CLASS_CODE_READER,
            torii_code_reader_ops,
            code_reader_ops
        );
    };
    (CardPrinter => $ty:ty) => {
        $crate::__export_driver!(
            $ty,
            TORII_CLASS_CARD_PRINTER,
            torii_card_printer_ops,
            card_printer_ops
        );
    };
    (CardReader => $ty:ty) => {
        $crate::__export_driver!(
            $ty,
            TORII_CLASS_CARD_READER,
            torii_card_reader_ops,
            card_reader_ops
        );
    };
    (FingerprintSensor => $ty:ty) => {
        $crate::__export_driver!(
            $ty,
            TORII_CLASS_FINGERPRINT_SENSOR,
            torii_fingerprint_sensor_ops,
            fingerprint_sensor_ops
        );
    };
    (Camera => $ty:ty) => {
        $crate::__export_driver!($ty, TORII_CLASS_CAMERA, torii_camera_ops, camera_ops);
    };
    (LaneController => $ty:ty) => {
        $crate::__export_driver!(
            $ty,
            TORII_CLASS_LANE_CONTROLLER,
            torii_lane_controller_ops,
            lane_controller_ops
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __export_driver {
    ($ty:ty, $class:ident, $ops_ty:ident, $ops_fn:ident) => {
        const _: () = {
            static OPS: $crate::abi::StaticAbi<$crate::abi::$ops_ty> =
                $crate::abi::StaticAbi($crate::export::$ops_fn::<$ty>());
            static API: $crate::abi::StaticAbi<$crate::abi::torii_driver_api> =
                $crate::abi::StaticAbi($crate::export::driver_api::<$ty>(
                    $crate::abi::$class,
                    &OPS.0 as *const $crate::abi::$ops_ty as *const ::std::ffi::c_void,
                ));

            /// Read by the host from the ELF file before loading: see driver.h.
            #[allow(unsafe_code, non_upper_case_globals)]
            #[unsafe(no_mangle)]
            pub static torii_driver_abi_tag: $crate::abi::torii_abi_tag =
                $crate::abi::torii_abi_tag::current($crate::abi::$class);

            #[allow(unsafe_code)]
            #[unsafe(no_mangle)]
            pub extern "C" fn torii_driver_entry() -> *const $crate::abi::torii_driver_api {
                &API.0
            }
        };
    };
}

/// Declares the USB devices a driver binds to: `export_usb_ids!([(0x0c27, 0x3bfa)]);`
/// The table is plain data; the host reads it without running driver code.
#[macro_export]
macro_rules! export_usb_ids {
    ([$(($vid:expr, $pid:expr)),* $(,)?]) => {
        #[allow(unsafe_code, non_upper_case_globals)]
        #[unsafe(no_mangle)]
        pub static torii_driver_usb_ids: [$crate::abi::torii_usb_id; [$($vid),*].len() + 1] = [
            $($crate::abi::torii_usb_id { vendor_id: $vid, product_id: $pid },)*
            $crate::abi::torii_usb_id { vendor_id: 0, product_id: 0 },
        ];
    };
}
