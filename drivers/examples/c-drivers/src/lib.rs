//! Paths of the C drivers this crate's build compiled from `c/` against the SDK header.

/// The OEM example: a code reader in one C file.
pub const DEMO_CODE_READER: &str = concat!(env!("OUT_DIR"), "/libtorii_demo_code_reader.so");
/// Fixture: built for ABI 2.0; its constructor would write `$TORII_TEST_MARKER`.
pub const FIXTURE_WRONG_ABI: &str = concat!(env!("OUT_DIR"), "/libtorii_fixture_wrong_abi.so");
/// Fixture: a camera that segfaults or hangs on capture as its config says (ABI 1.7).
pub const FIXTURE_CRASHY_CAMERA: &str =
    concat!(env!("OUT_DIR"), "/libtorii_fixture_crashy_camera.so");
/// Executable printing the header's sizes/offsets/constants as `name=value` lines.
pub const ABI_LAYOUT_PROBE: &str = concat!(env!("OUT_DIR"), "/torii_abi_layout_probe");
/// The OEM example matcher (matcher.h): a toy minutiae count without alignment, not for
/// production; reads view 0 of ISO/IEC 19794-2 records.
pub const DEMO_FINGER_MATCHER: &str = concat!(env!("OUT_DIR"), "/libtorii_demo_finger_matcher.so");
/// Fixture: a matcher built for matcher ABI 2.0; its constructor would write
/// `$TORII_TEST_MARKER`.
pub const FIXTURE_WRONG_ABI_MATCHER: &str =
    concat!(env!("OUT_DIR"), "/libtorii_fixture_wrong_abi_matcher.so");
