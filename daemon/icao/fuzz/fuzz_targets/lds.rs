#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = torii_icao::lds::parse_ef_com(data);
    let _ = torii_icao::lds::parse_dg1(data);
    let _ = torii_icao::lds::parse_dg2(data);
    let _ = torii_icao::lds::parse_raw(14, data);
});
