//! ED card JSON from the kiosk, then its validation: never a panic, and a card that
//! parses writes back to JSON that parses to the same card.
#![no_main]
use torii_core::edcard::EdCard;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(card) = serde_json::from_slice::<EdCard>(data) else {
        return;
    };
    let _ = card.validate();
    let _ = card.needs_examination();
    let written = serde_json::to_vec(&card).expect("a card serializes");
    let again: EdCard = serde_json::from_slice(&written).expect("a written card parses");
    assert!(
        again == card,
        "an ED card changed through a write and a read"
    );
});
