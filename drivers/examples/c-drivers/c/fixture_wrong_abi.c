/* Test fixture: a driver built for a future, incompatible ABI major (2.0). Its
 * constructor writes a marker file when TORII_TEST_MARKER is set: the test asserts the
 * file never appears, i.e. the host refused the driver before running any of its code. */
#include <torii/driver.h>

#include <stdio.h>
#include <stdlib.h>

__attribute__((constructor)) static void ran_code(void) {
    const char *marker = getenv("TORII_TEST_MARKER");
    if (marker != NULL) {
        FILE *f = fopen(marker, "w");
        if (f != NULL) {
            fputs("wrong-ABI driver code ran\n", f);
            fclose(f);
        }
    }
}

TORII_EXPORT const torii_abi_tag torii_driver_abi_tag = {TORII_ABI_MAGIC, 2, 0, TORII_CLASS_CAMERA, 0};

TORII_EXPORT const torii_driver_api *torii_driver_entry(void) {
    ran_code();
    return NULL;
}
