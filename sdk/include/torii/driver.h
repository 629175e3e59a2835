/*
 * torii driver ABI — the single source of truth of the contract between the torii
 * gate daemon (the host) and vendor driver plugins (shared libraries).
 *
 * Rules of this contract
 * ----------------------
 *  1. Versioning. Every driver exports `torii_driver_abi_tag`, a plain-data object
 *     (no pointers, no relocations). The host reads it straight from the ELF file
 *     *before* the library is loaded, so none of an incompatible driver's code ever
 *     runs. A different MAJOR is refused; MINOR versions only append.
 *  2. Growth. Every struct the two sides exchange starts with `struct_size`. A side
 *     reads only the fields that lie inside the other side's `struct_size`; a field
 *     (or entry point) beyond it, or a NULL entry point, means "not supported".
 *  3. Ownership is written in names:
 *       borrowed_*      valid only for the duration of the call; do not keep it.
 *       caller_owned_*  memory of the caller; the callee writes at most *_capacity
 *                       bytes and reports the length it wrote through out_*_len.
 *       static_*        lives as long as the process (the host never dlclose()s).
 *     No memory is ever freed by the other side.
 *  4. Threads. The host calls a device's operations one at a time unless the driver
 *     declares TORII_CAP_THREAD_SAFE; `cancel` and `get_state` may be called from
 *     another thread at any time. `emit_event` and `log` may be called by the driver
 *     from any thread, including from inside an operation.
 *  5. Failure. Every operation returns a torii_status. A driver must never let an
 *     exception/panic/longjmp cross this boundary (the Rust SDK catches panics and
 *     poisons the device). Drivers the integrator does not trust run in a separate
 *     driver-host process, which the daemon restarts when it crashes.
 *
 * A C driver is one .c file:  #include <torii/driver.h>, fill a torii_driver_api and
 * the class's ops struct, and use TORII_DEFINE_DRIVER(class, entry_function).
 */
#ifndef TORII_DRIVER_H
#define TORII_DRIVER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ versions */

#define TORII_ABI_MAGIC 0x54524949u /* "TRII" */
#define TORII_ABI_MAJOR 1u
#define TORII_ABI_MINOR 0u

/* Exported as `torii_driver_abi_tag` by every driver. */
typedef struct torii_abi_tag {
    uint32_t magic;        /* TORII_ABI_MAGIC */
    uint16_t abi_major;    /* TORII_ABI_MAJOR the driver was built against */
    uint16_t abi_minor;    /* TORII_ABI_MINOR the driver was built against */
    uint32_t device_class; /* TORII_CLASS_* */
    uint32_t reserved;     /* 0 */
} torii_abi_tag;

/* Optional export `torii_driver_usb_ids`: the USB devices this driver binds to,
 * terminated by {0, 0}. Plain data, read from the ELF file before loading, so the
 * host can match hotplugged devices to drivers without running driver code. */
typedef struct torii_usb_id {
    uint16_t vendor_id;
    uint16_t product_id;
} torii_usb_id;

/* ------------------------------------------------------------------ vocabulary */

/* Status codes (IATA CUSS message-code vocabulary where one exists). */
typedef int32_t torii_status;
#define TORII_OK               0
#define TORII_TIMEOUT          1  /* nothing happened within the requested time   */
#define TORII_CANCELLED        2  /* the host called cancel() during the operation */
#define TORII_HARDWARE_ERROR   3
#define TORII_MEDIA_JAMMED     4  /* card/document stuck in the mechanism           */
#define TORII_MEDIA_ABSENT     5  /* no document/card/finger/subject to work on     */
#define TORII_MEDIA_PRESENT    6  /* media still present where it must not be       */
#define TORII_MEDIA_DAMAGED    7  /* unreadable chip, torn card, ...                 */
#define TORII_BUFFER_TOO_SMALL 8  /* *out_len holds the length that is needed       */
#define TORII_NOT_SUPPORTED    9
#define TORII_INVALID_ARGUMENT 10
#define TORII_BUSY             11
#define TORII_UNAVAILABLE      12 /* device unplugged, offline, powered down         */
#define TORII_INTERNAL_ERROR   13 /* driver bug; the device is poisoned              */

/* Device states (CUSS component states). */
typedef int32_t torii_device_state;
#define TORII_STATE_READY       0
#define TORII_STATE_BUSY        1
#define TORII_STATE_UNAVAILABLE 2

/* Device classes. */
#define TORII_CLASS_DOCUMENT_READER    1u /* passport MRZ + contactless chip          */
#define TORII_CLASS_CODE_READER        2u /* QR / barcode registration codes          */
#define TORII_CLASS_CARD_PRINTER       3u /* registered user card: chip, print, eject */
#define TORII_CLASS_CARD_READER        4u /* registered user card: chip only (exit)   */
#define TORII_CLASS_FINGERPRINT_SENSOR 5u
#define TORII_CLASS_CAMERA             6u
#define TORII_CLASS_LANE_CONTROLLER    7u /* doors, presence zones, fire alarm, light */

/* Capabilities (torii_driver_api.capabilities). */
#define TORII_CAP_THREAD_SAFE      (1ull << 0) /* operations may run concurrently  */
#define TORII_CAP_HOTPLUG          (1ull << 1) /* reports UNAVAILABLE/READY itself  */
#define TORII_CAP_MRZ              (1ull << 8)
#define TORII_CAP_CHIP             (1ull << 9)
#define TORII_CAP_FINGER_TEMPLATE  (1ull << 10) /* ISO/IEC 19794-2 minutiae       */
#define TORII_CAP_FINGER_IMAGE     (1ull << 11) /* ISO/IEC 19794-4 image           */
#define TORII_CAP_PRINT            (1ull << 12)
#define TORII_CAP_RETAIN           (1ull << 13)

/* Log levels. */
#define TORII_LOG_ERROR 1
#define TORII_LOG_WARN  2
#define TORII_LOG_INFO  3
#define TORII_LOG_DEBUG 4

/* ------------------------------------------------------------------ events */

#define TORII_EVENT_STATE_CHANGED   1  /* value = torii_device_state                      */
#define TORII_EVENT_MEDIA_PRESENT   2  /* document on the reader / card inserted or placed */
#define TORII_EVENT_MEDIA_REMOVED   3
#define TORII_EVENT_CODE_READ       4  /* value = TORII_SYMBOLOGY_*, data = payload bytes  */
#define TORII_EVENT_FINGER_PRESENT  5  /* value = 1 present, 0 lifted                     */
#define TORII_EVENT_SUBJECT_PRESENT 6  /* value = 1 a face is in view, 0 gone             */
#define TORII_EVENT_DOOR_STATE      7  /* value = TORII_DOOR_*, value2 = TORII_DOOR_STATE_* */
#define TORII_EVENT_PERSON_COUNT    8  /* value = TORII_ZONE_*, value2 = persons in zone  */
#define TORII_EVENT_FIRE_ALARM      9  /* value = 1 active, 0 cleared                     */

#define TORII_SYMBOLOGY_QR          1
#define TORII_SYMBOLOGY_DATA_MATRIX 2
#define TORII_SYMBOLOGY_PDF417      3
#define TORII_SYMBOLOGY_CODE128     4

typedef struct torii_event {
    uint32_t struct_size;
    uint32_t kind;                /* TORII_EVENT_* */
    int64_t value;
    int64_t value2;
    const uint8_t *borrowed_data; /* may be NULL; valid during emit_event only */
    size_t data_len;
} torii_event;

/* ------------------------------------------------------------------ host side */

/* Given to the driver at open(); valid until close() returns. */
typedef struct torii_host_api {
    uint32_t struct_size;
    void *host_ctx;
    void (*emit_event)(void *host_ctx, const torii_event *borrowed_event);
    /* Never log names, document or card numbers, or biometric data. */
    void (*log)(void *host_ctx, int32_t level, const char *borrowed_message);
} torii_host_api;

/* ------------------------------------------------------------------ class ops */

typedef struct torii_device torii_device; /* opaque; owned by the driver */

typedef struct torii_document_reader_ops {
    uint32_t struct_size;
    /* MRZ lines as read optically, separated by '\n', ASCII. */
    torii_status (*read_mrz)(torii_device *device, char *caller_owned_text,
                             size_t text_capacity, size_t *out_text_len);
    /* Power the contactless chip; writes its ATR/ATS. */
    torii_status (*chip_connect)(torii_device *device, uint8_t *caller_owned_atr,
                                 size_t atr_capacity, size_t *out_atr_len);
    /* One command APDU → one response APDU (including SW1 SW2). */
    torii_status (*chip_transmit)(torii_device *device, const uint8_t *borrowed_command,
                                  size_t command_len, uint8_t *caller_owned_response,
                                  size_t response_capacity, size_t *out_response_len);
    torii_status (*chip_disconnect)(torii_device *device);
} torii_document_reader_ops;

/* Codes arrive as TORII_EVENT_CODE_READ; the host only switches scanning on/off. */
typedef struct torii_code_reader_ops {
    uint32_t struct_size;
    torii_status (*set_enabled)(torii_device *device, int32_t enabled);
} torii_code_reader_ops;

typedef struct torii_card_printer_ops {
    uint32_t struct_size;
    /* Contents of the card's chip (the application's data file). */
    torii_status (*read_chip)(torii_device *device, uint8_t *caller_owned_data,
                              size_t data_capacity, size_t *out_data_len);
    /* Append one line (UTF-8) to the card's back. */
    torii_status (*print_line)(torii_device *device, const char *borrowed_line);
    torii_status (*eject)(torii_device *device);  /* hand the card back to the traveler */
    torii_status (*retain)(torii_device *device); /* keep the card in the bin           */
} torii_card_printer_ops;

typedef struct torii_card_reader_ops {
    uint32_t struct_size;
    torii_status (*read_chip)(torii_device *device, uint8_t *caller_owned_data,
                              size_t data_capacity, size_t *out_data_len);
} torii_card_reader_ops;

/* ISO/IEC 19794 finger position codes. */
#define TORII_FINGER_RIGHT_THUMB  1
#define TORII_FINGER_RIGHT_INDEX  2
#define TORII_FINGER_RIGHT_MIDDLE 3
#define TORII_FINGER_RIGHT_RING   4
#define TORII_FINGER_RIGHT_LITTLE 5
#define TORII_FINGER_LEFT_THUMB   6
#define TORII_FINGER_LEFT_INDEX   7
#define TORII_FINGER_LEFT_MIDDLE  8
#define TORII_FINGER_LEFT_RING    9
#define TORII_FINGER_LEFT_LITTLE  10

typedef struct torii_finger_sample {
    uint32_t struct_size;
    uint32_t finger_position;         /* in: TORII_FINGER_* to capture              */
    int32_t quality;                  /* out: 0..100, or -1 when unknown           */
    uint8_t *caller_owned_template;   /* out: ISO/IEC 19794-2 record; may be NULL  */
    size_t template_capacity;
    size_t template_len;
    uint8_t *caller_owned_image;      /* out: ISO/IEC 19794-4 record; may be NULL  */
    size_t image_capacity;
    size_t image_len;
} torii_finger_sample;

typedef struct torii_fingerprint_sensor_ops {
    uint32_t struct_size;
    /* Capture the requested fingers (in the order given); waits up to timeout_ms for
     * them to be placed; returns TORII_CANCELLED when cancel() is called meanwhile. */
    torii_status (*capture)(torii_device *device, uint32_t timeout_ms,
                            torii_finger_sample *caller_owned_samples, size_t sample_count);
} torii_fingerprint_sensor_ops;

typedef struct torii_camera_ops {
    uint32_t struct_size;
    /* A frontal face image as JPEG; waits up to timeout_ms for a subject. */
    torii_status (*capture_face)(torii_device *device, uint32_t timeout_ms,
                                 uint8_t *caller_owned_jpeg, size_t jpeg_capacity,
                                 size_t *out_jpeg_len);
} torii_camera_ops;

#define TORII_DOOR_ENTRY 0u
#define TORII_DOOR_EXIT  1u

#define TORII_DOOR_OPEN   1u /* open for one passage                     */
#define TORII_DOOR_CLOSE  2u
#define TORII_DOOR_LOCK   3u /* closed and locked (out of service)      */
#define TORII_DOOR_FREE   4u /* held open, unlocked (fire alarm egress) */

#define TORII_DOOR_STATE_CLOSED 0u
#define TORII_DOOR_STATE_OPEN   1u
#define TORII_DOOR_STATE_LOCKED 2u
#define TORII_DOOR_STATE_MOVING 3u
#define TORII_DOOR_STATE_FAULT  4u

#define TORII_ZONE_ENTRY 0u /* in front of the entry door  */
#define TORII_ZONE_LANE  1u /* between the doors (mantrap) */
#define TORII_ZONE_EXIT  2u /* past the exit door          */

#define TORII_LIGHT_OFF   0u
#define TORII_LIGHT_GREEN 1u
#define TORII_LIGHT_RED   2u
#define TORII_LIGHT_AMBER 3u

typedef struct torii_lane_controller_ops {
    uint32_t struct_size;
    torii_status (*set_door)(torii_device *device, uint32_t door, uint32_t command);
    torii_status (*get_door)(torii_device *device, uint32_t door, uint32_t *out_state);
    torii_status (*get_person_count)(torii_device *device, uint32_t zone, uint32_t *out_count);
    torii_status (*get_fire_alarm)(torii_device *device, int32_t *out_active);
    torii_status (*set_light)(torii_device *device, uint32_t light);
} torii_lane_controller_ops;

/* ------------------------------------------------------------------ driver */

typedef struct torii_driver_api {
    uint32_t struct_size;          /* sizeof(torii_driver_api) as the driver knows it */
    uint32_t device_class;         /* must equal torii_driver_abi_tag.device_class   */
    const char *static_name;       /* e.g. "acme-mrz-300"                             */
    const char *static_version;    /* driver version, e.g. "2.1.0"                    */
    const char *static_vendor;
    uint64_t capabilities;         /* TORII_CAP_*                                     */
    /* Open the device described by borrowed_config_json (the device's table of the
     * daemon's config, as JSON). `host` stays valid until close() returns. */
    torii_status (*open)(const torii_host_api *host, const char *borrowed_config_json,
                         torii_device **out_device);
    void (*close)(torii_device *device);
    torii_device_state (*get_state)(torii_device *device);
    /* Make the operation running on another thread return TORII_CANCELLED soon.
     * May be NULL when the driver has no long operations. */
    torii_status (*cancel)(torii_device *device);
    /* Points at the class's ops struct (torii_document_reader_ops, ...). */
    const void *class_ops;
} torii_driver_api;

/* The driver's one entry point: returns a pointer to a static torii_driver_api.
 * It is called once, after the ABI tag was accepted. */
typedef const torii_driver_api *(*torii_driver_entry_fn)(void);

#define TORII_ABI_TAG_INIT(device_class) \
    { TORII_ABI_MAGIC, (uint16_t)TORII_ABI_MAJOR, (uint16_t)TORII_ABI_MINOR, (device_class), 0u }

#define TORII_EXPORT __attribute__((visibility("default")))

/* Defines the two symbols the host looks for. */
#define TORII_DEFINE_DRIVER(device_class, entry_function)                                   \
    TORII_EXPORT const torii_abi_tag torii_driver_abi_tag = TORII_ABI_TAG_INIT(device_class); \
    TORII_EXPORT const torii_driver_api *torii_driver_entry(void) { return entry_function(); }

#ifdef __cplusplus
}
#endif

#endif /* TORII_DRIVER_H */
