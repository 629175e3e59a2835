/*
 * torii matcher ABI — the contract between the torii gate daemon (the host) and
 * vendor biometric matchers (shared libraries): fingerprint or face comparison
 * algorithms that replace the built-in one. The built-in fingerprint matcher is the
 * default; a matcher plugin is used only when the daemon's config names one.
 *
 * Rules of this contract (those of driver.h, adapted)
 * ---------------------------------------------------
 *  1. Versioning. Every matcher exports `torii_matcher_abi_tag`, a plain-data object
 *     (no pointers, no relocations) with its own magic (TORII_MATCHER_ABI_MAGIC, not the
 *     drivers') and its modality. The host reads it straight from the ELF file *before*
 *     the library is loaded, so none of an incompatible matcher's code ever runs (not
 *     even its constructors). A different MAJOR is refused; MINOR versions only append.
 *     A library may be a driver or a matcher, never both.
 *  2. Growth. Every struct the two sides exchange starts with `struct_size`. A side reads
 *     only the fields inside the other side's `struct_size`; a field (or entry point)
 *     beyond it, or a NULL entry point, means "not supported". Every entry point of
 *     torii_matcher_api 1.0 is required.
 *  3. Ownership is written in names:
 *       borrowed_*      valid only for the duration of the call; do not keep it.
 *       caller_owned_*  memory of the caller; the callee writes at most *_capacity
 *                       bytes and reports the length it wrote through out_*_len.
 *       static_*        lives as long as the process (the host never dlclose()s).
 *       plugin_owned_*  an object the plugin allocated and owns; the host hands it back
 *                       exactly once (destroy / release_prepared) and never frees it.
 *     No memory is ever freed by the other side.
 *  4. Threads. A prepared template is immutable: compare() must not change it. Unless
 *     the matcher declares TORII_MATCHER_CAP_THREAD_SAFE, the host makes one call at a
 *     time per torii_matcher; with it, prepare/compare/release_prepared may run on
 *     several threads at once (destroy never overlaps anything).
 *  5. Failure. Every operation returns a torii_status (driver.h). A matcher must never let
 *     an exception/panic/longjmp cross this boundary (the Rust SDK catches panics and
 *     poisons the matcher: every later call answers TORII_INTERNAL_ERROR). A template
 *     the matcher cannot use is TORII_INVALID_ARGUMENT from prepare(), with a reason
 *     written to caller_owned_message (no biometric data in it).
 *  6. Scores. compare() reports `score` CALIBRATED as -log10(FMR): the false match rate
 *     the vendor measured, on an impostor set representative of the deployment, at
 *     that score (4.0 = one impostor comparison in 10 000 scores at least this high).
 *     Thresholds are configured as target FMRs (threshold = -log10(target)), so they
 *     keep their meaning whichever matcher is installed, and two-finger fusion adds
 *     scores. `raw_score` is the algorithm's own number, logged next to it (BSI
 *     TR-03121). Any non-OK status, a score that is NaN, infinite or negative, a raw
 *     score that is not finite, or a quality outside -1..100 is an ERROR for the host:
 *     never a match.
 *
 * A C matcher is one .c file:  #include <torii/matcher.h>, fill a torii_matcher_api,
 * and use TORII_DEFINE_MATCHER(modality, entry_function).
 */
#ifndef TORII_MATCHER_H
#define TORII_MATCHER_H

#include <torii/driver.h> /* torii_status, TORII_OK ..., TORII_FINGER_*, TORII_EXPORT */

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ versions */

#define TORII_MATCHER_ABI_MAGIC 0x544D4348u /* "TMCH" */
#define TORII_MATCHER_ABI_MAJOR 1u
#define TORII_MATCHER_ABI_MINOR 0u

/* Modalities (the tag's and the api's `modality`). */
#define TORII_MODALITY_FINGER 1u
#define TORII_MODALITY_FACE   2u

/* Exported as `torii_matcher_abi_tag` by every matcher (the type and the symbol have
 * different names: C keeps them in one namespace). */
typedef struct torii_matcher_tag {
    uint32_t magic;     /* TORII_MATCHER_ABI_MAGIC */
    uint16_t abi_major; /* TORII_MATCHER_ABI_MAJOR the matcher was built against */
    uint16_t abi_minor; /* TORII_MATCHER_ABI_MINOR the matcher was built against */
    uint32_t modality;  /* TORII_MODALITY_* */
    uint32_t reserved;  /* 0 */
} torii_matcher_tag;

/* Capabilities (torii_matcher_api.capabilities). */
#define TORII_MATCHER_CAP_THREAD_SAFE (1ull << 0) /* see rule 4 */

/* Template formats (torii_template.format). */
#define TORII_TEMPLATE_ISO_19794_2 1u /* ISO/IEC 19794-2:2005 finger minutiae record */
#define TORII_TEMPLATE_ANSI_378    2u /* ANSI/INCITS 378-2004 finger minutiae record */
#define TORII_TEMPLATE_ISO_19794_4 3u /* ISO/IEC 19794-4 finger image record          */
#define TORII_TEMPLATE_JPEG        4u /* frontal face image, as the camera gives it    */

/* ------------------------------------------------------------------ data */

typedef struct torii_matcher torii_matcher;   /* opaque; owned by the plugin */
typedef struct torii_prepared torii_prepared; /* opaque; owned by the plugin */

/* One template (reference from the registry, or probe from the sensor). */
typedef struct torii_template {
    uint32_t struct_size;
    uint32_t format;              /* TORII_TEMPLATE_*                                */
    const uint8_t *borrowed_data; /* the record's bytes; valid during prepare() only */
    size_t data_len;
    uint32_t finger_position;     /* FINGER: TORII_FINGER_*, 0 = unknown; FACE: 0    */
    uint32_t view_index;          /* which view of a multi-view record (usually 0)   */
} torii_template;

/* What one comparison found; the host sets struct_size, the matcher fills the rest. */
typedef struct torii_comparison {
    uint32_t struct_size;
    int32_t quality;   /* the probe's usability for this comparison, 0..100; -1 unknown.
                        * The host asks for a new capture below its minimum.           */
    double score;      /* calibrated: -log10(FMR), >= 0 (rule 6)                         */
    double raw_score;  /* the algorithm's own score, for the log                         */
} torii_comparison;

/* ------------------------------------------------------------------ matcher */

typedef struct torii_matcher_api {
    uint32_t struct_size;       /* sizeof(torii_matcher_api) as the matcher knows it   */
    uint32_t modality;          /* must equal the modality of torii_matcher_abi_tag   */
    const char *static_name;    /* e.g. "acme-finger-9"                                */
    const char *static_version; /* matcher version, e.g. "9.2.1"                       */
    const char *static_vendor;
    uint64_t capabilities;      /* TORII_MATCHER_CAP_*                                 */
    /* Create a matcher instance from borrowed_config_json (the matcher's table of the
     * daemon's config, as JSON; "{}" when there is none). */
    torii_status (*create)(const char *borrowed_config_json,
                           torii_matcher **out_plugin_owned_matcher);
    /* Called once, after every prepared template of this matcher was released. */
    void (*destroy)(torii_matcher *plugin_owned_matcher);
    /* Parse and pre-compute a template. TORII_INVALID_ARGUMENT for a template it cannot
     * use (malformed, wrong format, no such view), with a reason (UTF-8, no biometric
     * data) in caller_owned_message; TORII_NOT_SUPPORTED for a format it does not read. */
    torii_status (*prepare)(torii_matcher *matcher, const torii_template *borrowed_template,
                            torii_prepared **out_plugin_owned_prepared,
                            char *caller_owned_message, size_t message_capacity,
                            size_t *out_message_len);
    /* Give a prepared template back; the host never uses it afterwards. */
    void (*release_prepared)(torii_matcher *matcher, torii_prepared *plugin_owned_prepared);
    /* Compare a live probe with an enrolled reference (both prepared by this matcher). */
    torii_status (*compare)(torii_matcher *matcher, const torii_prepared *borrowed_probe,
                            const torii_prepared *borrowed_reference,
                            torii_comparison *caller_owned_result);
} torii_matcher_api;

/* The matcher's one entry point: returns a pointer to a static torii_matcher_api.
 * It is called once, after the ABI tag was accepted. */
typedef const torii_matcher_api *(*torii_matcher_entry_fn)(void);

#define TORII_MATCHER_ABI_TAG_INIT(modality)                                          \
    { TORII_MATCHER_ABI_MAGIC, (uint16_t)TORII_MATCHER_ABI_MAJOR,                     \
      (uint16_t)TORII_MATCHER_ABI_MINOR, (modality), 0u }

/* Defines the two symbols the host looks for. */
#define TORII_DEFINE_MATCHER(modality, entry_function)                                  \
    TORII_EXPORT const torii_matcher_tag torii_matcher_abi_tag =                    \
        TORII_MATCHER_ABI_TAG_INIT(modality);                                           \
    TORII_EXPORT const torii_matcher_api *torii_matcher_entry(void) { return entry_function(); }

#ifdef __cplusplus
}
#endif

#endif /* TORII_MATCHER_H */
