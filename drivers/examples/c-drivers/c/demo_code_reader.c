/*
 * demo_code_reader.c — a complete torii driver in one C file, for OEMs to start from.
 *
 * A code reader that "reads" a fixed QR payload each time scanning is enabled, from a
 * background thread, showing: the ABI tag and entry point (TORII_DEFINE_DRIVER), the
 * ops table, events through the host callback, and cancellation.
 *
 * Build: cc -shared -fPIC -I sdk/include -o libdemo.so demo_code_reader.c -lpthread
 */
#include <torii/driver.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct torii_device {
    const torii_host_api *host; /* borrowed until close() returns */
    atomic_int enabled;
    atomic_int cancelled;
    pthread_t scanner;
    int scanner_running;
};

static const char DEMO_PAYLOAD[] = "TTP1:DEMO";

static void emit_state(struct torii_device *dev, torii_device_state state) {
    torii_event ev = {sizeof(torii_event), TORII_EVENT_STATE_CHANGED, state, 0, NULL, 0};
    dev->host->emit_event(dev->host->host_ctx, &ev);
}

static void *scan(void *arg) {
    struct torii_device *dev = arg;
    usleep(10 * 1000); /* the "optics" take a moment */
    if (atomic_load(&dev->enabled) && !atomic_load(&dev->cancelled)) {
        torii_event ev = {sizeof(torii_event), TORII_EVENT_CODE_READ, TORII_SYMBOLOGY_QR, 0,
                          (const uint8_t *)DEMO_PAYLOAD, sizeof(DEMO_PAYLOAD) - 1};
        dev->host->emit_event(dev->host->host_ctx, &ev);
    }
    return NULL;
}

static void join_scanner(struct torii_device *dev) {
    if (dev->scanner_running) {
        pthread_join(dev->scanner, NULL);
        dev->scanner_running = 0;
    }
}

static torii_status demo_open(const torii_host_api *host, const char *borrowed_config_json,
                              torii_device **out_device) {
    (void)borrowed_config_json; /* a real driver would parse its port, baud rate, ... */
    if (host == NULL || out_device == NULL || host->struct_size < sizeof(torii_host_api))
        return TORII_INVALID_ARGUMENT;
    struct torii_device *dev = calloc(1, sizeof *dev);
    if (dev == NULL)
        return TORII_HARDWARE_ERROR;
    dev->host = host;
    host->log(host->host_ctx, TORII_LOG_INFO, "demo code reader opened");
    *out_device = dev;
    return TORII_OK;
}

static void demo_close(torii_device *dev) {
    atomic_store(&dev->cancelled, 1);
    join_scanner(dev);
    free(dev);
}

static torii_device_state demo_get_state(torii_device *dev) {
    (void)dev;
    return TORII_STATE_READY;
}

static torii_status demo_cancel(torii_device *dev) {
    atomic_store(&dev->cancelled, 1);
    return TORII_OK;
}

static torii_status demo_set_enabled(torii_device *dev, int32_t enabled) {
    join_scanner(dev);
    atomic_store(&dev->enabled, enabled != 0);
    atomic_store(&dev->cancelled, 0);
    if (enabled) {
        emit_state(dev, TORII_STATE_READY);
        if (pthread_create(&dev->scanner, NULL, scan, dev) != 0)
            return TORII_HARDWARE_ERROR;
        dev->scanner_running = 1;
    }
    return TORII_OK;
}

static const torii_code_reader_ops demo_ops = {
    sizeof(torii_code_reader_ops),
    demo_set_enabled,
};

static const torii_driver_api demo_api = {
    sizeof(torii_driver_api),
    TORII_CLASS_CODE_READER,
    "demo-c-code-reader",
    "1.0.0",
    "torii project",
    0,
    demo_open,
    demo_close,
    demo_get_state,
    demo_cancel,
    &demo_ops,
};

static const torii_driver_api *demo_entry(void) { return &demo_api; }

TORII_DEFINE_DRIVER(TORII_CLASS_CODE_READER, demo_entry)

/* The USB ids this driver would bind to (made-up demo ids). */
TORII_EXPORT const torii_usb_id torii_driver_usb_ids[] = {{0x1d6b, 0x7001}, {0x1d6b, 0x7002}, {0, 0}};
