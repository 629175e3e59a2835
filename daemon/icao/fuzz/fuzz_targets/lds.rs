#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = torii_icao::lds::parse_ef_com(data);
    let _ = torii_icao::lds::parse_dg1(data);
    let _ = torii_icao::lds::parse_dg2(data);
    let _ = torii_icao::lds::parse_raw(14, data);
    if let Ok(d) = torii_icao::auth::parse_dg14(data) {
        let _ = d.choose();
    }
    let _ = torii_icao::auth::parse_dg15(data);
});
