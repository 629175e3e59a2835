//! The registered user card's chip content.

use crate::scenario::Traveler;
use serde::Serialize;

/// Format name and version written into every card document.
pub const CARD_FORMAT: &str = "torii-ttp-card";
pub const CARD_FORMAT_VERSION: u32 = 1;

#[derive(Serialize)]
struct CardDocument<'a> {
    format: &'a str,
    version: u32,
    card_number: &'a str,
    passport_number: &'a str,
    nationality: &'a str,
    issued: String,
    valid_until: String,
    records: u32,
}

/// The bytes stored on `traveler`'s registered user card chip, or `None` when the
/// traveler has no card (not registered).
///
/// Format (version 1): a UTF-8 JSON object
/// `{"format":"torii-ttp-card","version":1,"card_number":…,"passport_number":…,
/// "nationality":…,"issued":"YYYY-MM-DD","valid_until":"YYYY-MM-DD","records":N}` where
/// `passport_number` is the passport the registration was made with and `records` the
/// landing records on the card's back when it was last written. Unsigned for now: a
/// later version wraps this document with the issuing authority's signature, which is
/// why the whole content comes from this one function.
pub fn card_chip_content(traveler: &Traveler) -> Option<Vec<u8>> {
    let reg = traveler.registration.as_ref()?;
    let doc = CardDocument {
        format: CARD_FORMAT,
        version: CARD_FORMAT_VERSION,
        card_number: &reg.card_number,
        passport_number: traveler.registered_passport_number()?,
        nationality: &traveler.nationality,
        issued: reg.card_issued.to_string(),
        valid_until: traveler.card_valid_until()?.to_string(),
        records: reg.records_on_card,
    };
    serde_json::to_vec(&doc).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Scenario;

    #[test]
    fn card_documents() {
        let s = Scenario::default_scenario().unwrap();
        let bytes = card_chip_content(s.traveler("bruno").unwrap()).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["format"], CARD_FORMAT);
        assert_eq!(v["version"], 1);
        assert_eq!(v["card_number"], "TTP0000001002");
        assert_eq!(v["passport_number"], "C0TEST123");
        assert_eq!(v["records"], 14);
        assert_eq!(v["issued"], "2024-03-01");
        assert_eq!(v["valid_until"], "2027-02-28");
        let hugo: serde_json::Value =
            serde_json::from_slice(&card_chip_content(s.traveler("hugo").unwrap()).unwrap())
                .unwrap();
        assert_eq!(hugo["passport_number"], "PAA000111");
        assert!(card_chip_content(s.traveler("farah").unwrap()).is_none());
    }
}
