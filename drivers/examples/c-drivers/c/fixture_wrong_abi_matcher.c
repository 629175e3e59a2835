/* Test fixture: a matcher built for a future, incompatible matcher ABI major (2.0). Its
 * constructor writes a marker file when TORII_TEST_MARKER is set: the test asserts the
 * file never appears, i.e. the host refused the matcher before running any of its code. */
#include <torii/matcher.h>

#include <stdio.h>
#include <stdlib.h>

__attribute__((constructor)) static void ran_code(void) {
    const char *marker = getenv("TORII_TEST_MARKER");
    if (marker != NULL) {
        FILE *f = fopen(marker, "w");
        if (f != NULL) {
            fputs("wrong-ABI matcher code ran\n", f);
            fclose(f);
        }
    }
}

TORII_EXPORT const torii_matcher_tag torii_matcher_abi_tag = {TORII_MATCHER_ABI_MAGIC, 2, 0,
                                                                  TORII_MODALITY_FINGER, 0};

TORII_EXPORT const torii_matcher_api *torii_matcher_entry(void) {
    ran_code();
    return NULL;
}
