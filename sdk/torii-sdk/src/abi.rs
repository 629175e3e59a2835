//! The C ABI of `sdk/include/torii/driver.h`, mirrored in Rust.
//!
//! The header is the source of truth; `tests/abi_layout.rs` compiles a C probe against
//! it and fails when any size, offset or constant here disagrees.

#![allow(non_camel_case_types)]

use std::ffi::{c_char, c_void};

pub const TORII_ABI_MAGIC: u32 = 0x5452_4949;
pub const TORII_ABI_MAJOR: u16 = 1;
pub const TORII_ABI_MINOR: u16 = 0;

/// Name of the plain-data ABI tag every driver exports.
pub const ABI_TAG_SYMBOL: &str = "torii_driver_abi_tag";
/// Name of the optional plain-data USB id table (terminated by `{0, 0}`).
pub const USB_IDS_SYMBOL: &str = "torii_driver_usb_ids";
/// Name of the entry point, returning `*const torii_driver_api`.
pub const ENTRY_SYMBOL: &str = "torii_driver_entry";

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct torii_abi_tag {
    pub magic: u32,
    pub abi_major: u16,
    pub abi_minor: u16,
    pub device_class: u32,
    pub reserved: u32,
}

impl torii_abi_tag {
    pub const fn current(device_class: u32) -> Self {
        Self {
            magic: TORII_ABI_MAGIC,
            abi_major: TORII_ABI_MAJOR,
            abi_minor: TORII_ABI_MINOR,
            device_class,
            reserved: 0,
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct torii_usb_id {
    pub vendor_id: u16,
    pub product_id: u16,
}

pub type torii_status = i32;
pub const TORII_OK: i32 = 0;
pub const TORII_TIMEOUT: i32 = 1;
pub const TORII_CANCELLED: i32 = 2;
pub const TORII_HARDWARE_ERROR: i32 = 3;
pub const TORII_MEDIA_JAMMED: i32 = 4;
pub const TORII_MEDIA_ABSENT: i32 = 5;
pub const TORII_MEDIA_PRESENT: i32 = 6;
pub const TORII_MEDIA_DAMAGED: i32 = 7;
pub const TORII_BUFFER_TOO_SMALL: i32 = 8;
pub const TORII_NOT_SUPPORTED: i32 = 9;
pub const TORII_INVALID_ARGUMENT: i32 = 10;
pub const TORII_BUSY: i32 = 11;
pub const TORII_UNAVAILABLE: i32 = 12;
pub const TORII_INTERNAL_ERROR: i32 = 13;

pub type torii_device_state = i32;
pub const TORII_STATE_READY: i32 = 0;
pub const TORII_STATE_BUSY: i32 = 1;
pub const TORII_STATE_UNAVAILABLE: i32 = 2;

pub const TORII_CLASS_DOCUMENT_READER: u32 = 1;
pub const TORII_CLASS_CODE_READER: u32 = 2;
pub const TORII_CLASS_CARD_PRINTER: u32 = 3;
pub const TORII_CLASS_CARD_READER: u32 = 4;
pub const TORII_CLASS_FINGERPRINT_SENSOR: u32 = 5;
pub const TORII_CLASS_CAMERA: u32 = 6;
pub const TORII_CLASS_LANE_CONTROLLER: u32 = 7;

pub const TORII_CAP_THREAD_SAFE: u64 = 1 << 0;
pub const TORII_CAP_HOTPLUG: u64 = 1 << 1;
pub const TORII_CAP_MRZ: u64 = 1 << 8;
pub const TORII_CAP_CHIP: u64 = 1 << 9;
pub const TORII_CAP_FINGER_TEMPLATE: u64 = 1 << 10;
pub const TORII_CAP_FINGER_IMAGE: u64 = 1 << 11;
pub const TORII_CAP_PRINT: u64 = 1 << 12;
pub const TORII_CAP_RETAIN: u64 = 1 << 13;

pub const TORII_LOG_ERROR: i32 = 1;
pub const TORII_LOG_WARN: i32 = 2;
pub const TORII_LOG_INFO: i32 = 3;
pub const TORII_LOG_DEBUG: i32 = 4;

pub const TORII_EVENT_STATE_CHANGED: u32 = 1;
pub const TORII_EVENT_MEDIA_PRESENT: u32 = 2;
pub const TORII_EVENT_MEDIA_REMOVED: u32 = 3;
pub const TORII_EVENT_CODE_READ: u32 = 4;
pub const TORII_EVENT_FINGER_PRESENT: u32 = 5;
pub const TORII_EVENT_SUBJECT_PRESENT: u32 = 6;
pub const TORII_EVENT_DOOR_STATE: u32 = 7;
pub const TORII_EVENT_PERSON_COUNT: u32 = 8;
pub const TORII_EVENT_FIRE_ALARM: u32 = 9;

pub const TORII_SYMBOLOGY_QR: u32 = 1;
pub const TORII_SYMBOLOGY_DATA_MATRIX: u32 = 2;
pub const TORII_SYMBOLOGY_PDF417: u32 = 3;
pub const TORII_SYMBOLOGY_CODE128: u32 = 4;

pub const TORII_DOOR_ENTRY: u32 = 0;
pub const TORII_DOOR_EXIT: u32 = 1;
pub const TORII_DOOR_OPEN: u32 = 1;
pub const TORII_DOOR_CLOSE: u32 = 2;
pub const TORII_DOOR_LOCK: u32 = 3;
pub const TORII_DOOR_FREE: u32 = 4;
pub const TORII_DOOR_STATE_CLOSED: u32 = 0;
pub const TORII_DOOR_STATE_OPEN: u32 = 1;
pub const TORII_DOOR_STATE_LOCKED: u32 = 2;
pub const TORII_DOOR_STATE_MOVING: u32 = 3;
pub const TORII_DOOR_STATE_FAULT: u32 = 4;
pub const TORII_ZONE_ENTRY: u32 = 0;
pub const TORII_ZONE_LANE: u32 = 1;
pub const TORII_ZONE_EXIT: u32 = 2;
pub const TORII_LIGHT_OFF: u32 = 0;
pub const TORII_LIGHT_GREEN: u32 = 1;
pub const TORII_LIGHT_RED: u32 = 2;
pub const TORII_LIGHT_AMBER: u32 = 3;

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct torii_event {
    pub struct_size: u32,
    pub kind: u32,
    pub value: i64,
    pub value2: i64,
    pub borrowed_data: *const u8,
    pub data_len: usize,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct torii_host_api {
    pub struct_size: u32,
    pub host_ctx: *mut c_void,
    pub emit_event: Option<unsafe extern "C" fn(*mut c_void, *const torii_event)>,
    pub log: Option<unsafe extern "C" fn(*mut c_void, i32, *const c_char)>,
}

/// Opaque device handle, owned by the driver.
#[repr(C)]
pub struct torii_device {
    _private: [u8; 0],
}

pub type DevicePtr = *mut torii_device;

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct torii_document_reader_ops {
    pub struct_size: u32,
    pub read_mrz: Option<unsafe extern "C" fn(DevicePtr, *mut c_char, usize, *mut usize) -> i32>,
    pub chip_connect: Option<unsafe extern "C" fn(DevicePtr, *mut u8, usize, *mut usize) -> i32>,
    pub chip_transmit: Option<
        unsafe extern "C" fn(DevicePtr, *const u8, usize, *mut u8, usize, *mut usize) -> i32,
    >,
    pub chip_disconnect: Option<unsafe extern "C" fn(DevicePtr) -> i32>,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct torii_code_reader_ops {
    pub struct_size: u32,
    pub set_enabled: Option<unsafe extern "C" fn(DevicePtr, i32) -> i32>,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct torii_card_printer_ops {
    pub struct_size: u32,
    pub read_chip: Option<unsafe extern "C" fn(DevicePtr, *mut u8, usize, *mut usize) -> i32>,
    pub print_line: Option<unsafe extern "C" fn(DevicePtr, *const c_char) -> i32>,
    pub eject: Option<unsafe extern "C" fn(DevicePtr) -> i32>,
    pub retain: Option<unsafe extern "C" fn(DevicePtr) -> i32>,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct torii_card_reader_ops {
    pub struct_size: u32,
    pub read_chip: Option<unsafe extern "C" fn(DevicePtr, *mut u8, usize, *mut usize) -> i32>,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct torii_finger_sample {
    pub struct_size: u32,
    pub finger_position: u32,
    pub quality: i32,
    pub caller_owned_template: *mut u8,
    pub template_capacity: usize,
    pub template_len: usize,
    pub caller_owned_image: *mut u8,
    pub image_capacity: usize,
    pub image_len: usize,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct torii_fingerprint_sensor_ops {
    pub struct_size: u32,
    pub capture:
        Option<unsafe extern "C" fn(DevicePtr, u32, *mut torii_finger_sample, usize) -> i32>,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct torii_camera_ops {
    pub struct_size: u32,
    pub capture_face:
        Option<unsafe extern "C" fn(DevicePtr, u32, *mut u8, usize, *mut usize) -> i32>,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct torii_lane_controller_ops {
    pub struct_size: u32,
    pub set_door: Option<unsafe extern "C" fn(DevicePtr, u32, u32) -> i32>,
    pub get_door: Option<unsafe extern "C" fn(DevicePtr, u32, *mut u32) -> i32>,
    pub get_person_count: Option<unsafe extern "C" fn(DevicePtr, u32, *mut u32) -> i32>,
    pub get_fire_alarm: Option<unsafe extern "C" fn(DevicePtr, *mut i32) -> i32>,
    pub set_light: Option<unsafe extern "C" fn(DevicePtr, u32) -> i32>,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct torii_driver_api {
    pub struct_size: u32,
    pub device_class: u32,
    pub static_name: *const c_char,
    pub static_version: *const c_char,
    pub static_vendor: *const c_char,
    pub capabilities: u64,
    pub open:
        Option<unsafe extern "C" fn(*const torii_host_api, *const c_char, *mut DevicePtr) -> i32>,
    pub close: Option<unsafe extern "C" fn(DevicePtr)>,
    pub get_state: Option<unsafe extern "C" fn(DevicePtr) -> i32>,
    pub cancel: Option<unsafe extern "C" fn(DevicePtr) -> i32>,
    pub class_ops: *const c_void,
}

pub type torii_driver_entry_fn = unsafe extern "C" fn() -> *const torii_driver_api;

/// Wraps ABI structs that hold raw pointers so a driver can keep them in a `static`.
///
/// The pointers inside point at other statics (strings, ops tables) that are never
/// written, so sharing them between threads is sound.
#[repr(transparent)]
pub struct StaticAbi<T>(pub T);

// SAFETY: only used for immutable statics whose pointers target immutable statics.
unsafe impl<T> Sync for StaticAbi<T> {}

/// `offset_of!` tables for the layout test against the C header.
#[doc(hidden)]
pub fn layout_table() -> Vec<(&'static str, usize)> {
    use std::mem::{offset_of, size_of};
    vec![
        ("sizeof(torii_abi_tag)", size_of::<torii_abi_tag>()),
        (
            "offsetof(torii_abi_tag,device_class)",
            offset_of!(torii_abi_tag, device_class),
        ),
        ("sizeof(torii_usb_id)", size_of::<torii_usb_id>()),
        ("sizeof(torii_event)", size_of::<torii_event>()),
        (
            "offsetof(torii_event,value)",
            offset_of!(torii_event, value),
        ),
        (
            "offsetof(torii_event,borrowed_data)",
            offset_of!(torii_event, borrowed_data),
        ),
        (
            "offsetof(torii_event,data_len)",
            offset_of!(torii_event, data_len),
        ),
        ("sizeof(torii_host_api)", size_of::<torii_host_api>()),
        (
            "offsetof(torii_host_api,emit_event)",
            offset_of!(torii_host_api, emit_event),
        ),
        (
            "offsetof(torii_host_api,log)",
            offset_of!(torii_host_api, log),
        ),
        (
            "sizeof(torii_document_reader_ops)",
            size_of::<torii_document_reader_ops>(),
        ),
        (
            "offsetof(torii_document_reader_ops,chip_disconnect)",
            offset_of!(torii_document_reader_ops, chip_disconnect),
        ),
        (
            "sizeof(torii_code_reader_ops)",
            size_of::<torii_code_reader_ops>(),
        ),
        (
            "sizeof(torii_card_printer_ops)",
            size_of::<torii_card_printer_ops>(),
        ),
        (
            "offsetof(torii_card_printer_ops,retain)",
            offset_of!(torii_card_printer_ops, retain),
        ),
        (
            "sizeof(torii_card_reader_ops)",
            size_of::<torii_card_reader_ops>(),
        ),
        (
            "sizeof(torii_finger_sample)",
            size_of::<torii_finger_sample>(),
        ),
        (
            "offsetof(torii_finger_sample,quality)",
            offset_of!(torii_finger_sample, quality),
        ),
        (
            "offsetof(torii_finger_sample,caller_owned_template)",
            offset_of!(torii_finger_sample, caller_owned_template),
        ),
        (
            "offsetof(torii_finger_sample,image_len)",
            offset_of!(torii_finger_sample, image_len),
        ),
        (
            "sizeof(torii_fingerprint_sensor_ops)",
            size_of::<torii_fingerprint_sensor_ops>(),
        ),
        ("sizeof(torii_camera_ops)", size_of::<torii_camera_ops>()),
        (
            "sizeof(torii_lane_controller_ops)",
            size_of::<torii_lane_controller_ops>(),
        ),
        (
            "offsetof(torii_lane_controller_ops,set_light)",
            offset_of!(torii_lane_controller_ops, set_light),
        ),
        ("sizeof(torii_driver_api)", size_of::<torii_driver_api>()),
        (
            "offsetof(torii_driver_api,static_name)",
            offset_of!(torii_driver_api, static_name),
        ),
        (
            "offsetof(torii_driver_api,capabilities)",
            offset_of!(torii_driver_api, capabilities),
        ),
        (
            "offsetof(torii_driver_api,open)",
            offset_of!(torii_driver_api, open),
        ),
        (
            "offsetof(torii_driver_api,cancel)",
            offset_of!(torii_driver_api, cancel),
        ),
        (
            "offsetof(torii_driver_api,class_ops)",
            offset_of!(torii_driver_api, class_ops),
        ),
        ("TORII_ABI_MAGIC", TORII_ABI_MAGIC as usize),
        ("TORII_ABI_MAJOR", TORII_ABI_MAJOR as usize),
        ("TORII_ABI_MINOR", TORII_ABI_MINOR as usize),
        ("TORII_INTERNAL_ERROR", TORII_INTERNAL_ERROR as usize),
        (
            "TORII_CLASS_LANE_CONTROLLER",
            TORII_CLASS_LANE_CONTROLLER as usize,
        ),
        ("TORII_EVENT_FIRE_ALARM", TORII_EVENT_FIRE_ALARM as usize),
        ("TORII_CAP_RETAIN", TORII_CAP_RETAIN as usize),
        ("TORII_DOOR_FREE", TORII_DOOR_FREE as usize),
        ("TORII_LIGHT_AMBER", TORII_LIGHT_AMBER as usize),
    ]
}
