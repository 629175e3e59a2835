//! The HTTP API tokens file (`[http] tokens_file`): never a panic; what is accepted
//! writes back (`[[token]]` entries as `toriictl token new` writes them) and reads
//! back the same.
#![no_main]
use std::fmt::Write as _;

use toriid::api::auth::parse_tokens;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(entries) = parse_tokens(text) else {
        return;
    };
    let mut written = String::new();
    for entry in &entries {
        let hex: String = entry.sha256.iter().map(|b| format!("{b:02x}")).collect();
        let _ = write!(
            written,
            "[[token]]\nname = \"{}\"\nrole = \"{}\"\nsha256 = \"{hex}\"\n",
            entry.name,
            entry.role.name()
        );
    }
    let again = parse_tokens(&written).expect("written tokens read back");
    assert_eq!(again, entries, "tokens changed through a write and a read");
});
