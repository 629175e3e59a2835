//! PACE answers from a hostile chip: EF.CardAccess and GENERAL AUTHENTICATE data.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(infos) = torii_icao::pace::parse_card_access(data) {
        let _ = torii_icao::pace::choose(&infos).map(|info| info.supported_curve());
    }
    for tag in [0x80, 0x82, 0x84, 0x86] {
        let _ = torii_icao::pace::dynamic_data(data, tag, "fuzz");
    }
});
