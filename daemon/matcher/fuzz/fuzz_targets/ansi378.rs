//! `cargo +nightly fuzz run ansi378` (from daemon/matcher): the ANSI parser never
//! panics; what it accepts writes back bit-exactly and compares without panicking.
#![no_main]
use libfuzzer_sys::fuzz_target;
use torii_matcher::ansi378::AnsiRecord;
use torii_matcher::{PreparedTemplate, compare};

fuzz_target!(|data: &[u8]| {
    if let Ok(rec) = AnsiRecord::parse(data) {
        assert_eq!(rec.to_bytes().expect("a parsed record encodes"), data);
        for i in 0..rec.views.len() {
            let t = PreparedTemplate::from_ansi(&rec, i).expect("view exists");
            assert!(compare(&t, &t).is_finite());
        }
    }
});
