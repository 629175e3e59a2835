//! A device whose driver runs inside this process.
//!
//! Calls run on tokio's blocking threads, one at a time per device (drivers need not be
//! thread-safe); `cancel` is the one entry point called concurrently, as the contract
//! allows. A panic is contained by the SDK's shims and reported as INTERNAL_ERROR: the
//! device is then faulted for good (its memory may be inconsistent). A call that does
//! not return in time faults the device until it does.

use std::ffi::{CString, c_char, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use torii_sdk::abi::{DevicePtr, torii_event, torii_finger_sample, torii_host_api};
use torii_sdk::convert::event_from_abi;
use torii_sdk::driver::{LogLevel, limits};
use torii_sdk::model::{
    DeviceState, DoorState, Event, FingerPosition, FingerSample, Request, Response, Status,
};

use crate::device::{
    CallError, DeviceHealth, DeviceSpec, DriverInfo, EventSink, HealthCell, OpenError,
};
use crate::loader::{self, ClassOps, LoadedDriver};

/// A raw device pointer that may move to the blocking thread running a call.
#[derive(Clone, Copy)]
struct SendPtr(DevicePtr);
// SAFETY: the driver contract lets the host call a device from any thread as long as
// calls are serialised (call_lock), and `cancel`/`get_state` from any thread at any time.
unsafe impl Send for SendPtr {}
// SAFETY: as above.
unsafe impl Sync for SendPtr {}

/// What the driver's callbacks need; its address is `host_ctx`.
struct HostCtx {
    device_id: String,
    health: Arc<HealthCell>,
}

/// The host api block handed to the driver: boxed so its address never changes, and
/// kept alive as long as the device (the driver may call back until close returns).
struct HostBlock {
    api: torii_host_api,
    ctx: HostCtx,
}

// SAFETY: the block is written once before the driver sees it and only read afterwards
// (by the driver's callbacks, from any thread, which the contract allows).
unsafe impl Send for HostBlock {}
// SAFETY: as above.
unsafe impl Sync for HostBlock {}

struct Shared {
    driver: Arc<LoadedDriver>,
    device: SendPtr,
    // Read by the driver through `host_ctx` until close returns; never moved.
    _host: Box<HostBlock>,
    health: Arc<HealthCell>,
    call_lock: Mutex<()>,
    call_timeout: Duration,
    /// Set after INTERNAL_ERROR (a contained panic): the device is never used again.
    poisoned: AtomicBool,
    /// Set while a call overran its time limit and has not come back yet.
    hung: AtomicBool,
    closed: AtomicBool,
}

pub struct InProcessDevice {
    shared: Arc<Shared>,
}

unsafe extern "C" fn host_emit(ctx: *mut c_void, raw: *const torii_event) {
    // Nothing may unwind into the driver's (possibly C) stack.
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: host_ctx is the HostCtx of a live HostBlock (we set it).
        let Some(ctx) = (unsafe { (ctx as *const HostCtx).as_ref() }) else {
            return;
        };
        // SAFETY: the driver passes a valid event for the duration of the call.
        let Some(raw) = (unsafe { raw.as_ref() }) else {
            return;
        };
        let data = if raw.borrowed_data.is_null() || raw.data_len == 0 {
            &[][..]
        } else {
            // SAFETY: the driver promises data_len readable bytes during the call.
            unsafe { std::slice::from_raw_parts(raw.borrowed_data, raw.data_len) }
        };
        match event_from_abi(raw, data) {
            Ok(event) => {
                if let Event::StateChanged { state } = event {
                    ctx.health.update(|h| {
                        if h.fault.is_none() {
                            h.state = state
                        }
                    });
                }
                ctx.health.emit(event);
            }
            Err(error) => {
                tracing::warn!(device = %ctx.device_id, %error, "driver sent a malformed event")
            }
        }
    }));
}

unsafe extern "C" fn host_log(ctx: *mut c_void, level: i32, message: *const c_char) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: as in host_emit.
        let Some(ctx) = (unsafe { (ctx as *const HostCtx).as_ref() }) else {
            return;
        };
        if message.is_null() {
            return;
        }
        // SAFETY: a NUL-terminated string borrowed for the call.
        let text = unsafe { std::ffi::CStr::from_ptr(message) }.to_string_lossy();
        let text: String = text.chars().take(512).collect();
        let device = ctx.device_id.as_str();
        match LogLevel::from_abi(level) {
            LogLevel::Error => tracing::error!(target: "torii::driver", device, "{text}"),
            LogLevel::Warn => tracing::warn!(target: "torii::driver", device, "{text}"),
            LogLevel::Info => tracing::info!(target: "torii::driver", device, "{text}"),
            LogLevel::Debug => tracing::debug!(target: "torii::driver", device, "{text}"),
        }
    }));
}

impl InProcessDevice {
    pub async fn open(spec: &DeviceSpec, events: EventSink) -> Result<Self, OpenError> {
        let path = spec.driver.clone();
        let expected = spec.expected_class;
        let driver = tokio::task::spawn_blocking(move || loader::load(&path, expected))
            .await
            .map_err(|e| OpenError::Load {
                path: spec.driver.clone(),
                reason: e.to_string(),
            })??;

        let health = Arc::new(HealthCell::new(&spec.id, events));
        let mut host = Box::new(HostBlock {
            api: torii_host_api {
                struct_size: size_of::<torii_host_api>() as u32,
                host_ctx: std::ptr::null_mut(),
                emit_event: Some(host_emit),
                log: Some(host_log),
            },
            ctx: HostCtx {
                device_id: spec.id.clone(),
                health: health.clone(),
            },
        });
        host.api.host_ctx = &mut host.ctx as *mut HostCtx as *mut c_void;

        let config = CString::new(spec.config_json.clone()).map_err(|_| OpenError::Load {
            path: spec.driver.clone(),
            reason: "config contains a NUL byte".into(),
        })?;
        let open = driver.api.open.ok_or_else(|| OpenError::Load {
            path: spec.driver.clone(),
            reason: "no open entry point".into(),
        })?;
        let api_ptr = SendApi(&host.api as *const torii_host_api);
        let device = tokio::task::spawn_blocking(move || {
            let api_ptr = api_ptr;
            let mut device: DevicePtr = std::ptr::null_mut();
            // SAFETY: the host api block outlives the device (kept in Shared); config is a
            // NUL-terminated string borrowed for the call.
            let raw = unsafe { open(api_ptr.0, config.as_ptr(), &mut device) };
            Status::check(raw).map(|()| SendPtr(device))
        })
        .await
        .map_err(|e| OpenError::Load {
            path: spec.driver.clone(),
            reason: e.to_string(),
        })?
        .map_err(|status| OpenError::Open {
            path: spec.driver.clone(),
            status,
        })?;
        if device.0.is_null() {
            return Err(OpenError::Open {
                path: spec.driver.clone(),
                status: Status::InternalError,
            });
        }

        let shared = Arc::new(Shared {
            driver,
            device,
            _host: host,
            health,
            call_lock: Mutex::new(()),
            call_timeout: spec.call_timeout,
            poisoned: AtomicBool::new(false),
            hung: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        });
        shared.refresh_state();
        Ok(InProcessDevice { shared })
    }

    pub fn info(&self) -> &DriverInfo {
        &self.shared.driver.info
    }

    pub async fn call(&self, request: Request) -> Result<Response, CallError> {
        if let Some(fault) = self.shared.health.get().fault {
            return Err(CallError::Faulted(fault));
        }
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(CallError::Unavailable);
        }
        let limit =
            self.shared.call_timeout + Duration::from_millis(request.traveler_wait_ms().into());
        let shared = self.shared.clone();
        let call = tokio::task::spawn_blocking(move || shared.call_blocking(request));
        match tokio::time::timeout(limit, call).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(CallError::Faulted("driver call thread failed".into())),
            Err(_) => {
                self.cancel();
                let after_ms = limit.as_millis() as u64;
                self.shared.hung.store(true, Ordering::Release);
                self.shared.health.update(|h| {
                    h.state = DeviceState::Unavailable;
                    h.fault.get_or_insert_with(|| {
                        format!("driver call did not return within {after_ms} ms")
                    });
                });
                Err(CallError::Timeout { after_ms })
            }
        }
    }

    pub fn cancel(&self) {
        if let Some(cancel) = self.shared.driver.api.cancel {
            if self.shared.closed.load(Ordering::Acquire)
                || self.shared.poisoned.load(Ordering::Acquire)
            {
                return;
            }
            // SAFETY: cancel may be called from any thread while the device is open.
            unsafe { cancel(self.shared.device.0) };
        }
    }

    pub fn health(&self) -> DeviceHealth {
        self.shared.health.get()
    }

    pub async fn shutdown(&self) {
        let shared = self.shared.clone();
        let _ = tokio::time::timeout(
            self.shared.call_timeout,
            tokio::task::spawn_blocking(move || shared.close_blocking()),
        )
        .await;
    }
}

#[derive(Clone, Copy)]
struct SendApi(*const torii_host_api);
// SAFETY: points at a boxed host block that outlives the device; read-only for the driver.
unsafe impl Send for SendApi {}

impl Shared {
    fn refresh_state(&self) {
        let Some(get_state) = self.driver.api.get_state else {
            return;
        };
        // SAFETY: get_state may be called from any thread while the device is open.
        let state = DeviceState::from_abi(unsafe { get_state(self.device.0) });
        self.health.update(|h| {
            if h.fault.is_none() {
                h.state = state;
            }
        });
    }

    fn call_blocking(&self, request: Request) -> Result<Response, CallError> {
        let _serialised = self.call_lock.lock().unwrap_or_else(|p| p.into_inner());
        if self.closed.load(Ordering::Acquire) {
            return Err(CallError::Unavailable);
        }
        if self.poisoned.load(Ordering::Acquire) {
            return Err(CallError::Faulted("driver panicked earlier".into()));
        }
        let result = dispatch(&self.driver, self.device.0, request);
        if matches!(result, Err(CallError::Status(Status::InternalError))) {
            self.poisoned.store(true, Ordering::Release);
            self.health.update(|h| {
                h.state = DeviceState::Unavailable;
                h.fault =
                    Some("driver failed internally (panic contained); device poisoned".into());
            });
            return Err(CallError::Faulted(
                "driver failed internally (panic contained)".into(),
            ));
        }
        if self.hung.swap(false, Ordering::AcqRel) {
            // The overrunning call came back: the device is usable again.
            self.health.update(|h| h.fault = None);
        }
        self.refresh_state();
        result
    }

    fn close_blocking(&self) {
        let _serialised = self.call_lock.lock().unwrap_or_else(|p| p.into_inner());
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Some(close) = self.driver.api.close {
            // SAFETY: the device is open, no call runs (lock held), and it is closed once.
            unsafe { close(self.device.0) };
        }
        self.health.update(|h| h.state = DeviceState::Unavailable);
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // A hung call still uses the device: leaking it is the only safe choice then.
        if !self.hung.load(Ordering::Acquire) {
            self.close_blocking();
        }
    }
}

fn need<T>(entry: Option<T>) -> Result<T, CallError> {
    entry.ok_or(CallError::NotSupported)
}

fn check(raw: i32) -> Result<(), CallError> {
    Status::check(raw).map_err(CallError::Status)
}

/// Calls `fill` with a fresh caller-owned buffer of `capacity` bytes and returns what it wrote.
fn read_into(
    capacity: usize,
    fill: impl FnOnce(*mut u8, usize, *mut usize) -> i32,
) -> Result<Vec<u8>, CallError> {
    let mut buffer = vec![0u8; capacity];
    let mut len = 0usize;
    check(fill(buffer.as_mut_ptr(), capacity, &mut len))?;
    if len > capacity {
        // A driver bug: it claims to have written more than it was given.
        return Err(CallError::Status(Status::HardwareError));
    }
    buffer.truncate(len);
    Ok(buffer)
}

/// One request through the class's ops table. Runs on the calling (blocking) thread.
///
/// Every `unsafe` block here is a call through the driver's ops table with the same
/// justification, given once: `dev` is open and not closed meanwhile, calls are
/// serialised by the caller (`call_lock`), and every buffer is owned by this frame and
/// passed with its true capacity.
#[allow(clippy::undocumented_unsafe_blocks)]
fn dispatch(
    driver: &LoadedDriver,
    dev: DevicePtr,
    request: Request,
) -> Result<Response, CallError> {
    use ClassOps as O;
    let wrong = |request: &Request| CallError::WrongClass {
        op: request.name().into(),
        class: driver.info.class,
    };
    match (&driver.ops, request) {
        (_, Request::GetState) => {
            let get_state = need(driver.api.get_state)?;
            Ok(Response::State {
                state: DeviceState::from_abi(unsafe { get_state(dev) }),
            })
        }
        (O::DocumentReader(ops), Request::ReadMrz) => {
            let read = need(ops.read_mrz)?;
            let text = read_into(limits::MRZ_TEXT, |b, c, l| unsafe {
                read(dev, b.cast(), c, l)
            })?;
            let text =
                String::from_utf8(text).map_err(|_| CallError::Status(Status::MediaDamaged))?;
            Ok(Response::Mrz {
                lines: text
                    .lines()
                    .map(|l| l.trim_end().to_owned())
                    .filter(|l| !l.is_empty())
                    .collect(),
            })
        }
        (O::DocumentReader(ops), Request::ChipConnect) => {
            let connect = need(ops.chip_connect)?;
            Ok(Response::Atr {
                atr: read_into(limits::ATR, |b, c, l| unsafe { connect(dev, b, c, l) })?,
            })
        }
        (O::DocumentReader(ops), Request::ChipTransmit { apdu }) => {
            let transmit = need(ops.chip_transmit)?;
            let response = read_into(limits::APDU_RESPONSE, |b, c, l| unsafe {
                transmit(dev, apdu.as_ptr(), apdu.len(), b, c, l)
            })?;
            Ok(Response::Apdu { response })
        }
        (O::DocumentReader(ops), Request::ChipDisconnect) => {
            check(unsafe { need(ops.chip_disconnect)?(dev) })?;
            Ok(Response::Done)
        }
        (O::CodeReader(ops), Request::SetCodeReaderEnabled { enabled }) => {
            check(unsafe { need(ops.set_enabled)?(dev, i32::from(enabled)) })?;
            Ok(Response::Done)
        }
        (O::CardPrinter(ops), Request::ReadCardChip) => {
            let read = need(ops.read_chip)?;
            Ok(Response::CardChip {
                data: read_into(limits::CARD_CHIP, |b, c, l| unsafe { read(dev, b, c, l) })?,
            })
        }
        (O::CardReader(ops), Request::ReadCardChip) => {
            let read = need(ops.read_chip)?;
            Ok(Response::CardChip {
                data: read_into(limits::CARD_CHIP, |b, c, l| unsafe { read(dev, b, c, l) })?,
            })
        }
        (O::CardPrinter(ops), Request::PrintLine { line }) => {
            let line =
                CString::new(line).map_err(|_| CallError::Status(Status::InvalidArgument))?;
            check(unsafe { need(ops.print_line)?(dev, line.as_ptr()) })?;
            Ok(Response::Done)
        }
        (O::CardPrinter(ops), Request::EjectCard) => {
            check(unsafe { need(ops.eject)?(dev) })?;
            Ok(Response::Done)
        }
        (O::CardPrinter(ops), Request::RetainCard) => {
            check(unsafe { need(ops.retain)?(dev) })?;
            Ok(Response::Done)
        }
        (
            O::FingerprintSensor(ops),
            Request::CaptureFingers {
                fingers,
                timeout_ms,
                want_template,
                want_image,
            },
        ) => {
            let capture = need(ops.capture)?;
            capture_fingers(
                capture,
                dev,
                &fingers,
                timeout_ms,
                want_template,
                want_image,
            )
        }
        (O::Camera(ops), Request::CaptureFace { timeout_ms }) => {
            let capture = need(ops.capture_face)?;
            let jpeg = read_into(limits::FACE_JPEG, |b, c, l| unsafe {
                capture(dev, timeout_ms, b, c, l)
            })?;
            Ok(Response::Face { jpeg })
        }
        (O::LaneController(ops), Request::SetDoor { door, command }) => {
            check(unsafe { need(ops.set_door)?(dev, door.to_abi(), command.to_abi()) })?;
            Ok(Response::Done)
        }
        (O::LaneController(ops), Request::GetDoor { door }) => {
            let mut raw = u32::MAX;
            check(unsafe { need(ops.get_door)?(dev, door.to_abi(), &mut raw) })?;
            let state = DoorState::from_abi(raw).ok_or(CallError::Status(Status::HardwareError))?;
            Ok(Response::DoorState { state })
        }
        (O::LaneController(ops), Request::GetPersonCount { zone }) => {
            let mut count = 0u32;
            check(unsafe { need(ops.get_person_count)?(dev, zone.to_abi(), &mut count) })?;
            Ok(Response::PersonCount { count })
        }
        (O::LaneController(ops), Request::GetFireAlarm) => {
            let mut active = 0i32;
            check(unsafe { need(ops.get_fire_alarm)?(dev, &mut active) })?;
            Ok(Response::FireAlarm {
                active: active != 0,
            })
        }
        (O::LaneController(ops), Request::SetLight { light }) => {
            check(unsafe { need(ops.set_light)?(dev, light.to_abi()) })?;
            Ok(Response::Done)
        }
        (_, request) => Err(wrong(&request)),
    }
}

type CaptureFn = unsafe extern "C" fn(DevicePtr, u32, *mut torii_finger_sample, usize) -> i32;

fn capture_fingers(
    capture: CaptureFn,
    dev: DevicePtr,
    fingers: &[FingerPosition],
    timeout_ms: u32,
    want_template: bool,
    want_image: bool,
) -> Result<Response, CallError> {
    if fingers.is_empty() || (!want_template && !want_image) {
        return Err(CallError::Status(Status::InvalidArgument));
    }
    let mut templates: Vec<Vec<u8>> = fingers
        .iter()
        .map(|_| {
            if want_template {
                vec![0; limits::FINGER_TEMPLATE]
            } else {
                Vec::new()
            }
        })
        .collect();
    let mut images: Vec<Vec<u8>> = fingers
        .iter()
        .map(|_| {
            if want_image {
                vec![0; limits::FINGER_IMAGE]
            } else {
                Vec::new()
            }
        })
        .collect();
    let mut samples: Vec<torii_finger_sample> = fingers
        .iter()
        .zip(templates.iter_mut().zip(images.iter_mut()))
        .map(|(finger, (template, image))| torii_finger_sample {
            struct_size: size_of::<torii_finger_sample>() as u32,
            finger_position: finger.code(),
            quality: -1,
            caller_owned_template: if want_template {
                template.as_mut_ptr()
            } else {
                std::ptr::null_mut()
            },
            template_capacity: template.len(),
            template_len: 0,
            caller_owned_image: if want_image {
                image.as_mut_ptr()
            } else {
                std::ptr::null_mut()
            },
            image_capacity: image.len(),
            image_len: 0,
        })
        .collect();
    // SAFETY: the samples and their buffers live in this frame for the whole call.
    check(unsafe { capture(dev, timeout_ms, samples.as_mut_ptr(), samples.len()) })?;
    let mut out = Vec::with_capacity(fingers.len());
    for ((sample, mut template), mut image) in samples.iter().zip(templates).zip(images) {
        if sample.template_len > template.len() || sample.image_len > image.len() {
            return Err(CallError::Status(Status::HardwareError));
        }
        template.truncate(sample.template_len);
        image.truncate(sample.image_len);
        out.push(FingerSample {
            position: FingerPosition::from_code(sample.finger_position)
                .ok_or(CallError::Status(Status::HardwareError))?,
            quality: u8::try_from(sample.quality).ok().filter(|q| *q <= 100),
            template,
            image,
        });
    }
    Ok(Response::Fingers { samples: out })
}
