//! Reason codes: why a transaction was referred to an officer.
//!
//! Every referral carries exactly one code. The officer console shows the code, its
//! meaning and the recommended action; the traveler's screen shows only
//! [`ReasonCode::guidance`], never the grounds of a refusal (the inquiry desks do not
//! tell travelers the reasons either). `docs/reason-codes.md` is generated from this
//! table and a test keeps the two in step.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! reason_codes {
    ($( $variant:ident = $code:literal, $meaning:literal, $action:literal, $guidance:ident; )+) => {
        /// Why the gate referred a traveler to an officer. Serialised as its code.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum ReasonCode { $($variant),+ }

        impl ReasonCode {
            pub const ALL: &'static [ReasonCode] = &[$(ReasonCode::$variant),+];

            /// The stable code, e.g. `REG_NOT_FOUND`.
            pub const fn code(self) -> &'static str {
                match self { $(ReasonCode::$variant => $code),+ }
            }

            /// What happened, for the officer.
            pub const fn meaning(self) -> &'static str {
                match self { $(ReasonCode::$variant => $meaning),+ }
            }

            /// What the officer should do.
            pub const fn officer_action(self) -> &'static str {
                match self { $(ReasonCode::$variant => $action),+ }
            }

            /// What the traveler's screen says: guidance, never the grounds.
            pub const fn guidance(self) -> Guidance {
                match self { $(ReasonCode::$variant => Guidance::$guidance),+ }
            }

            pub fn from_code(code: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|r| r.code() == code)
            }
        }
    };
}

reason_codes! {
    DocumentUnreadable = "DOC_UNREADABLE", "The passport's MRZ could not be read or fails its check digits.", "Inspect the passport manually at the booth.", SeeOfficer;
    DocumentChipInvalid = "DOC_CHIP_INVALID", "The passport chip failed an authenticity check (forged, altered or cloned).", "Examine the passport for forgery; do not admit through the gate.", SeeOfficer;
    QrCodeInvalid = "QR_INVALID", "The code presented is not a TTP registration code.", "Ask for the passport's data page instead, or examine at the booth.", SeeOfficer;
    RegistrationNotFound = "REG_NOT_FOUND", "No TTP registration for this passport number and nationality.", "Examine at the booth; check whether the traveler is registered.", UseBooth;
    RegistrationRevoked = "REG_REVOKED", "The registration was revoked (grounds for denial of landing, or requirements no longer met).", "Examine at the booth; the gate may not be used.", UseBooth;
    PassportReportedLost = "REG_PASSPORT_LOST", "The registered passport was reported lost or stolen (even if later found).", "Examine the passport at the booth; the registration is void.", UseBooth;
    ChangedToResident = "REG_RESIDENT", "The holder's status changed to mid-to-long-term resident: TTP no longer applies.", "Examine at the booth; the resident may apply for the resident gates.", UseBooth;
    PassportRenewed = "REG_PASSPORT_RENEWED", "The passport was renewed since registration: the card is unusable even within its validity.", "Examine at the booth; the traveler must register again.", UseBooth;
    CardMissing = "CARD_MISSING", "No registered user card was presented in time.", "Examine at the booth (no card, no gate).", UseBooth;
    CardUnreadable = "CARD_UNREADABLE", "The card's chip could not be read.", "Examine at the booth; the card may need to be reissued.", SeeOfficer;
    CardForged = "CARD_FORGED", "The card's data fails the issuing authority's signature: forged or altered.", "Retain the card and examine the traveler.", SeeOfficer;
    CardNotHolders = "CARD_NOT_HOLDERS", "The card does not belong to this registration (number, passport or nationality differ).", "Examine at the booth; check for card misuse.", SeeOfficer;
    CardExpired = "CARD_EXPIRED", "The card has expired (3 years from issue or the passport's expiry, whichever is earlier).", "Examine at the booth; the traveler must register again.", UseBooth;
    CardFull = "CARD_FULL", "The card's back holds 15 landing records: it must be rewritten.", "Examine at the booth; direct the traveler to a registration office to rewrite the card (free).", UseBooth;
    CardRemovedEarly = "CARD_REMOVED", "The card was pulled out of the printer before the record was printed.", "Examine at the booth; the landing was not recorded on the card.", SeeOfficer;
    EdCardDeclaration = "ED_DECLARATION", "The traveler answered yes to an ED card question that requires examination (deportation, conviction, prohibited items, firearms).", "Examine the traveler and their declaration at the booth.", SeeOfficer;
    EdCardIncomplete = "ED_INCOMPLETE", "The disembarkation card was not completed or confirmed.", "Complete the ED card with the traveler at the booth.", SeeOfficer;
    FingersUnusable = "FP_UNUSABLE", "Fewer than two registered fingers could be used.", "Verify identity at the booth.", SeeOfficer;
    FingerprintMismatch = "FP_MISMATCH", "The fingerprints did not match the registered ones after the allowed attempts.", "Verify identity at the booth.", SeeOfficer;
    FingerprintQuality = "FP_QUALITY", "The fingerprints could not be captured well enough after the allowed attempts (dry, injured or young fingers).", "Verify identity at the booth.", SeeOfficer;
    FaceCaptureFailed = "FACE_FAILED", "No face photo could be taken.", "Take the photo at the booth.", SeeOfficer;
    MultiplePersons = "MULTI_PERSON", "More than one person was in the lane.", "Check the lane; only one person may pass at a time.", SeeOfficer;
    Timeout = "TIMEOUT", "The traveler did not complete a step in time.", "Assist the traveler or examine at the booth.", SeeOfficer;
    TravelerLeft = "ABANDONED", "The traveler left the gate during the transaction.", "No action unless the traveler returns.", SeeOfficer;
    DeviceFault = "DEVICE_FAULT", "A device failed during the transaction.", "Examine at the booth; report the device fault to maintenance.", SeeOfficer;
    FireAlarm = "FIRE_ALARM", "The fire alarm aborted the transaction; every door was released.", "Follow the evacuation procedure; examine the traveler afterwards.", Evacuate;
    OutOfService = "OUT_OF_SERVICE", "The gate was put out of service or into maintenance during the transaction.", "Examine at the booth.", UseBooth;
    WrongLane = "WRONG_LANE", "The card presented belongs to the other direction's procedure.", "Direct the traveler to the right lane.", SeeOfficer;
    RecordNotStored = "RECORD_NOT_STORED", "The transaction record could not be stored durably (outbox full or storage fault), so the door stayed closed.", "Examine at the booth; report the storage fault to maintenance.", SeeOfficer;
    OfficerIntervention = "OFFICER_INTERVENTION", "An officer commanded a door during the transaction, which ended it.", "Complete the examination at the booth.", SeeOfficer;
    InternalError = "INTERNAL", "The gate software could not decide (an internal error).", "Examine at the booth; report the fault to maintenance.", SeeOfficer;
}

impl Serialize for ReasonCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for ReasonCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let code = String::deserialize(d)?;
        ReasonCode::from_code(&code)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown reason code {code:?}")))
    }
}

impl fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// What the traveler is told when referred: where to go, not why.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Guidance {
    /// "Please see the officer."
    SeeOfficer,
    /// "Please use the immigration booth."
    UseBooth,
    /// "Please leave the gate by the nearest exit."
    Evacuate,
}

impl Guidance {
    pub const fn english(self) -> &'static str {
        match self {
            Guidance::SeeOfficer => "Please see the officer at the gate.",
            Guidance::UseBooth => "Please use the staffed immigration booth.",
            Guidance::Evacuate => "Please leave the gate by the nearest exit.",
        }
    }
}

/// The reason-code table as Markdown (`docs/reason-codes.md`).
pub fn markdown_table() -> String {
    let mut out = String::from(
        "# Reason codes\n\nGenerated from `daemon/core/src/reason.rs`; a test keeps this file in step.\n\
         The traveler's screen shows only the guidance column, never the meaning.\n\n\
         | code | meaning | what the officer should do | traveler guidance |\n| --- | --- | --- | --- |\n",
    );
    for reason in ReasonCode::ALL {
        out.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            reason.code(),
            reason.meaning(),
            reason.officer_action(),
            reason.guidance().english()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for reason in ReasonCode::ALL {
            assert!(seen.insert(reason.code()), "duplicate {}", reason.code());
            assert_eq!(ReasonCode::from_code(reason.code()), Some(*reason));
        }
    }

    #[test]
    fn the_documented_table_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/reason-codes.md");
        let current = std::fs::read_to_string(path).unwrap_or_default();
        if current != markdown_table() {
            // Regenerate with: TORII_REGENERATE_DOCS=1 cargo test -p torii-core reason
            if std::env::var_os("TORII_REGENERATE_DOCS").is_some() {
                std::fs::write(path, markdown_table()).unwrap();
            } else {
                panic!(
                    "docs/reason-codes.md is stale: run TORII_REGENERATE_DOCS=1 cargo test -p torii-core reason"
                );
            }
        }
    }
}
