/* Prints the header's sizes, offsets and constants, one "name=value" per line, for the
 * test that checks the Rust mirror (torii_sdk::abi::layout_table) against the header. */
#include <torii/driver.h>

#include <stddef.h>
#include <stdio.h>

#define SIZE(t) printf("sizeof(%s)=%zu\n", #t, sizeof(t))
#define OFF(t, f) printf("offsetof(%s,%s)=%zu\n", #t, #f, offsetof(t, f))
#define CONST(c) printf("%s=%zu\n", #c, (size_t)(c))

int main(void) {
    SIZE(torii_abi_tag); OFF(torii_abi_tag, device_class);
    SIZE(torii_usb_id);
    SIZE(torii_event); OFF(torii_event, value); OFF(torii_event, borrowed_data); OFF(torii_event, data_len);
    SIZE(torii_host_api); OFF(torii_host_api, emit_event); OFF(torii_host_api, log);
    SIZE(torii_document_reader_ops); OFF(torii_document_reader_ops, chip_disconnect);
    SIZE(torii_code_reader_ops);
    SIZE(torii_card_printer_ops); OFF(torii_card_printer_ops, retain);
    SIZE(torii_card_reader_ops);
    SIZE(torii_finger_sample); OFF(torii_finger_sample, quality);
    OFF(torii_finger_sample, caller_owned_template); OFF(torii_finger_sample, image_len);
    SIZE(torii_fingerprint_sensor_ops);
    SIZE(torii_camera_ops);
    SIZE(torii_lane_controller_ops); OFF(torii_lane_controller_ops, set_light);
    SIZE(torii_driver_api); OFF(torii_driver_api, static_name); OFF(torii_driver_api, capabilities);
    OFF(torii_driver_api, open); OFF(torii_driver_api, cancel); OFF(torii_driver_api, class_ops);
    CONST(TORII_ABI_MAGIC); CONST(TORII_ABI_MAJOR); CONST(TORII_ABI_MINOR);
    CONST(TORII_INTERNAL_ERROR); CONST(TORII_CLASS_LANE_CONTROLLER); CONST(TORII_EVENT_FIRE_ALARM);
    CONST(TORII_CAP_RETAIN); CONST(TORII_DOOR_FREE); CONST(TORII_LIGHT_AMBER);
    return 0;
}
