//! QR payloads from the code reader (`TTP1:<card>:<passport>:<nationality>`, as
//! torii-sim's `data::qr` writes them): never a panic, and what is accepted is exactly
//! that shape, read back to the passport it names.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some(passport) = torii_core::flow::parse_registration_qr(data) else {
        return;
    };
    let text = std::str::from_utf8(data).expect("an accepted payload is text");
    let fields: Vec<&str> = text.split(':').collect();
    assert_eq!(fields.len(), 4, "an accepted payload has four fields");
    assert_eq!(fields[0], "TTP1");
    assert_eq!(passport.number, fields[2]);
    assert_eq!(passport.nationality, fields[3]);
    let written = format!(
        "TTP1:{}:{}:{}",
        fields[1], passport.number, passport.nationality
    );
    let again = torii_core::flow::parse_registration_qr(written.as_bytes())
        .expect("a written payload reads back");
    assert!(again.number == passport.number && again.nationality == passport.nationality);
});
