//! `cargo +nightly fuzz run iso19794_2` (from daemon/matcher): the ISO parser never
//! panics; what it accepts writes back bit-exactly and compares without panicking.
#![no_main]
use libfuzzer_sys::fuzz_target;
use torii_matcher::iso19794_2::IsoRecord;
use torii_matcher::{PreparedTemplate, compare};

fuzz_target!(|data: &[u8]| {
    if let Ok(rec) = IsoRecord::parse(data) {
        assert_eq!(rec.to_bytes().expect("a parsed record encodes"), data);
        for i in 0..rec.views.len() {
            let t = PreparedTemplate::from_iso(&rec, i).expect("view exists");
            assert!(compare(&t, &t).is_finite());
        }
    }
});
