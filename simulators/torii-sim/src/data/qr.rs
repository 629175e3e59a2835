//! The TTP registration QR code (the sticker next to the "registered" stamp).

use crate::scenario::Traveler;

/// The QR payload for `traveler`'s registration, or `None` when not registered:
/// `TTP1:<card-number>:<registered passport number>:<nationality>` (ASCII, no
/// trailing newline). `TTP1` is the payload format version.
pub fn registration_qr_payload(traveler: &Traveler) -> Option<String> {
    let reg = traveler.registration.as_ref()?;
    let passport = traveler.registered_passport_number()?;
    Some(format!(
        "TTP1:{}:{}:{}",
        reg.card_number, passport, traveler.nationality
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Scenario;

    #[test]
    fn payload_format() {
        let s = Scenario::default_scenario().unwrap();
        let emil = s.traveler("emil").unwrap();
        assert_eq!(
            registration_qr_payload(emil).unwrap(),
            "TTP1:TTP0000001005:19TE00001:FRA"
        );
        assert!(registration_qr_payload(s.traveler("farah").unwrap()).is_none());
    }
}
