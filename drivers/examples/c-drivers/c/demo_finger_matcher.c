/* Example matcher plugin in one C file, written against <torii/matcher.h> only.
 *
 * THIS IS AN EXAMPLE OF THE ABI, NOT A MATCHER FOR PRODUCTION. Its algorithm is
 * deliberately trivial but honest: it reads view 0 of an ISO/IEC 19794-2:2005 record
 * and counts the probe minutiae that have a reference minutia within 15 px and 30°
 * WITHOUT any alignment, so it only recognises prints placed the same way. Its
 * "calibration" (score = 6 x the share of paired minutiae) was not measured on any
 * impostor set: a real vendor maps its raw score to -log10 FMR measured on its own
 * impostor comparisons (matcher.h rule 6).
 *
 * What it does show: the ABI tag, the api table, opaque plugin-owned handles, reasons
 * for refused templates, strict parsing (a malformed record is an error, never a match),
 * and TORII_MATCHER_CAP_THREAD_SAFE (prepared templates are immutable, no shared state).
 */
#include <torii/matcher.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The layout the Rust SDK mirrors (sdk/torii-sdk/src/matcher.rs asserts the same). */
_Static_assert(sizeof(void *) != 8 || sizeof(torii_matcher_tag) == 16, "tag");
_Static_assert(sizeof(void *) != 8 || sizeof(torii_template) == 32, "template");
_Static_assert(sizeof(void *) != 8 || offsetof(torii_template, finger_position) == 24, "t.fp");
_Static_assert(sizeof(void *) != 8 || sizeof(torii_comparison) == 24, "comparison");
_Static_assert(sizeof(void *) != 8 || offsetof(torii_comparison, score) == 8, "c.score");
_Static_assert(sizeof(void *) != 8 || sizeof(torii_matcher_api) == 80, "api");
_Static_assert(sizeof(void *) != 8 || offsetof(torii_matcher_api, create) == 40, "api.create");
_Static_assert(sizeof(void *) != 8 || offsetof(torii_matcher_api, compare) == 72, "api.compare");

#define MAX_MINUTIAE 255
#define DIST_TOL 15.0
#define ANGLE_TOL_DEG 30.0

struct torii_matcher {
    int unused;
};

typedef struct minutia {
    double x, y, angle_deg;
} minutia;

struct torii_prepared {
    int quality;
    unsigned count;
    minutia points[MAX_MINUTIAE];
};

static unsigned be16(const uint8_t *p) { return ((unsigned)p[0] << 8) | p[1]; }
static unsigned long be32(const uint8_t *p) {
    return ((unsigned long)p[0] << 24) | ((unsigned long)p[1] << 16) | ((unsigned long)p[2] << 8) | p[3];
}

static torii_status refuse(char *message, size_t capacity, size_t *out_len, const char *why) {
    size_t len = 0;
    if (message != NULL && capacity > 0) {
        len = strlen(why);
        if (len > capacity - 1) len = capacity - 1;
        memcpy(message, why, len);
        message[len] = '\0';
    }
    if (out_len != NULL) *out_len = len;
    return TORII_INVALID_ARGUMENT;
}

static torii_status demo_create(const char *config, torii_matcher **out) {
    (void)config;
    if (out == NULL) return TORII_INVALID_ARGUMENT;
    *out = calloc(1, sizeof(torii_matcher));
    return *out == NULL ? TORII_INTERNAL_ERROR : TORII_OK;
}

static void demo_destroy(torii_matcher *matcher) { free(matcher); }

static torii_status demo_prepare(torii_matcher *matcher, const torii_template *t,
                                 torii_prepared **out, char *message, size_t capacity,
                                 size_t *out_len) {
    if (out_len != NULL) *out_len = 0;
    if (matcher == NULL || t == NULL || out == NULL || t->struct_size < sizeof(torii_template))
        return TORII_INVALID_ARGUMENT;
    if (t->format != TORII_TEMPLATE_ISO_19794_2) return TORII_NOT_SUPPORTED;
    const uint8_t *d = t->borrowed_data;
    size_t n = t->data_len;
    if (d == NULL || n < 24 + 4 + 2)
        return refuse(message, capacity, out_len, "record shorter than a header and one view");
    if (memcmp(d, "FMR\0", 4) != 0) return refuse(message, capacity, out_len, "magic is not FMR");
    if (memcmp(d + 4, " 20\0", 4) != 0) return refuse(message, capacity, out_len, "version is not 20");
    if (be32(d + 8) != n) return refuse(message, capacity, out_len, "record length field differs from the data length");
    double xres = be16(d + 18), yres = be16(d + 20);
    if (xres == 0 || yres == 0) return refuse(message, capacity, out_len, "zero resolution");
    if (d[22] == 0) return refuse(message, capacity, out_len, "no finger view");
    if (t->view_index != 0) return refuse(message, capacity, out_len, "only view 0 is read");
    const uint8_t *v = d + 24;
    unsigned position = v[0], quality = v[2], count = v[3];
    if (t->finger_position != 0 && position != 0 && position != t->finger_position)
        return refuse(message, capacity, out_len, "finger position differs from the expected one");
    if (quality > 100) return refuse(message, capacity, out_len, "finger quality above 100");
    if (24 + 4 + (size_t)count * 6 + 2 > n)
        return refuse(message, capacity, out_len, "minutiae run past the end of the record");
    torii_prepared *p = calloc(1, sizeof(torii_prepared));
    if (p == NULL) return TORII_INTERNAL_ERROR;
    p->quality = (int)quality;
    p->count = count;
    for (unsigned i = 0; i < count; i++) {
        const uint8_t *m = v + 4 + 6 * i;
        /* Scale to 500 dpi (pixels per cm: 196.85). */
        p->points[i].x = (double)(be16(m) & 0x3fff) * 196.85 / xres;
        p->points[i].y = (double)(be16(m + 2) & 0x3fff) * 196.85 / yres;
        p->points[i].angle_deg = (double)m[4] * 360.0 / 256.0;
    }
    *out = p;
    return TORII_OK;
}

static void demo_release(torii_matcher *matcher, torii_prepared *prepared) {
    (void)matcher;
    free(prepared);
}

static torii_status demo_compare(torii_matcher *matcher, const torii_prepared *probe,
                                 const torii_prepared *reference, torii_comparison *result) {
    if (matcher == NULL || probe == NULL || reference == NULL || result == NULL ||
        result->struct_size < sizeof(torii_comparison))
        return TORII_INVALID_ARGUMENT;
    unsigned paired = 0;
    for (unsigned i = 0; i < probe->count; i++) {
        for (unsigned k = 0; k < reference->count; k++) {
            double dx = probe->points[i].x - reference->points[k].x;
            double dy = probe->points[i].y - reference->points[k].y;
            double da = fabs(probe->points[i].angle_deg - reference->points[k].angle_deg);
            if (da > 180.0) da = 360.0 - da;
            if (dx * dx + dy * dy <= DIST_TOL * DIST_TOL && da <= ANGLE_TOL_DEG) {
                paired++;
                break;
            }
        }
    }
    unsigned fewer = probe->count < reference->count ? probe->count : reference->count;
    double share = fewer == 0 ? 0.0 : (double)paired / (double)fewer;
    if (share > 1.0) share = 1.0;
    result->raw_score = (double)paired;
    result->score = 6.0 * share; /* illustrative mapping only: see the top of the file */
    result->quality = probe->count < 10 ? 0 : probe->quality;
    return TORII_OK;
}

static const torii_matcher_api API = {
    .struct_size = sizeof(torii_matcher_api),
    .modality = TORII_MODALITY_FINGER,
    .static_name = "demo-finger-matcher",
    .static_version = "1.0.0",
    .static_vendor = "torii examples",
    .capabilities = TORII_MATCHER_CAP_THREAD_SAFE,
    .create = demo_create,
    .destroy = demo_destroy,
    .prepare = demo_prepare,
    .release_prepared = demo_release,
    .compare = demo_compare,
};

static const torii_matcher_api *entry(void) { return &API; }

TORII_DEFINE_MATCHER(TORII_MODALITY_FINGER, entry)
