//! `cargo +nightly fuzz run iso19794_4` (from daemon/matcher): the ISO/IEC 19794-4
//! parser never panics; what it accepts writes back bit-exactly; decoding an accepted
//! image (uncompressed, PNG, JPEG, or a refusal) and extracting minutiae from small
//! decoded images never panics either.
#![no_main]
use libfuzzer_sys::fuzz_target;
use torii_matcher::extract::extract;
use torii_matcher::iso19794_4::FirRecord;

fuzz_target!(|data: &[u8]| {
    if let Ok(rec) = FirRecord::parse(data) {
        assert_eq!(rec.to_bytes().expect("a parsed record encodes"), data);
        for i in 0..rec.images.len() {
            if let Ok(gray) = rec.gray(i) {
                assert_eq!(gray.pixels.len(), gray.width * gray.height);
                // Extraction is slow on big images: keep the fuzzer's rate up.
                if gray.width * gray.height <= 256 * 256 {
                    let _ = extract(&gray);
                }
            }
        }
    }
});
