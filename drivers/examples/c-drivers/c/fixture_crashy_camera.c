/* Test fixture: a camera whose capture_face misbehaves as its config asks:
 *   {"mode":"segfault"}  writes through a NULL pointer (SIGSEGV),
 *   {"mode":"hang"}      never returns,
 *   anything else        returns a tiny JPEG-like payload.
 * It also declares a future ABI *minor* with a larger driver api struct, to show that
 * growth stays compatible. */
#include <torii/driver.h>

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct torii_device {
    int mode; /* 0 ok, 1 segfault, 2 hang */
};

static torii_status cam_open(const torii_host_api *host, const char *config, torii_device **out) {
    (void)host;
    struct torii_device *dev = calloc(1, sizeof *dev);
    if (dev == NULL)
        return TORII_HARDWARE_ERROR;
    if (config != NULL && strstr(config, "\"segfault\"") != NULL)
        dev->mode = 1;
    else if (config != NULL && strstr(config, "\"hang\"") != NULL)
        dev->mode = 2;
    *out = dev;
    return TORII_OK;
}

static void cam_close(torii_device *dev) { free(dev); }
static torii_device_state cam_state(torii_device *dev) { (void)dev; return TORII_STATE_READY; }

static torii_status cam_capture(torii_device *dev, uint32_t timeout_ms, uint8_t *jpeg, size_t cap,
                                size_t *out_len) {
    (void)timeout_ms;
    if (dev->mode == 1) {
        volatile int *nowhere = NULL;
        *nowhere = 42;
    }
    while (dev->mode == 2)
        pause();
    static const uint8_t tiny[] = {0xFF, 0xD8, 0xFF, 0xD9};
    *out_len = sizeof tiny;
    if (cap < sizeof tiny)
        return TORII_BUFFER_TOO_SMALL;
    memcpy(jpeg, tiny, sizeof tiny);
    return TORII_OK;
}

static const torii_camera_ops cam_ops = {sizeof(torii_camera_ops), cam_capture};

/* ABI 1.7 adds (hypothetically) one more entry point after class_ops. */
struct future_driver_api {
    torii_driver_api v1;
    void (*some_future_entry_point)(void);
};

static const struct future_driver_api cam_api = {
    {sizeof(struct future_driver_api), TORII_CLASS_CAMERA, "crashy-camera", "0.0.1", "torii tests", 0,
     cam_open, cam_close, cam_state, NULL, &cam_ops},
    NULL,
};

static const torii_driver_api *cam_entry(void) { return &cam_api.v1; }

TORII_EXPORT const torii_abi_tag torii_driver_abi_tag = {TORII_ABI_MAGIC, TORII_ABI_MAJOR, 7,
                                                         TORII_CLASS_CAMERA, 0};
TORII_EXPORT const torii_driver_api *torii_driver_entry(void) { return cam_entry(); }
