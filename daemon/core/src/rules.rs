//! The eligibility rules, one table row each (§6(3)オ, §7(3)(4)(10)(11), §9, §10(2), §12).
//!
//! Rules run in two phases: once the passport (or QR code) identified the traveler and
//! the registry was consulted, and again once the card's chip was read and its
//! signature verified. The first failing rule, in table order, is the referral reason.

use time::Date;

use crate::card::CardData;
use crate::reason::ReasonCode;
use crate::registry::{Registration, RegistrationStatus};

/// Landing records a card's back holds before it must be rewritten (§10(2)).
pub const CARD_RECORD_CAPACITY: u8 = 15;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Lane {
    Entry,
    Exit,
}

/// The passport as the gate read it (MRZ, or the QR code's data).
#[derive(Clone, PartialEq, Eq)]
pub struct PresentedPassport {
    pub number: String,
    pub nationality: String,
    /// Unknown when identified by QR code.
    pub expiry: Option<Date>,
    /// [`crate::registry::holder_key`]; unknown when identified by QR code.
    pub holder_key: Option<String>,
}

impl std::fmt::Debug for PresentedPassport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PresentedPassport")
            .field("nationality", &self.nationality)
            .finish_non_exhaustive()
    }
}

/// Everything the rules look at.
#[derive(Clone, Debug)]
pub struct Facts<'a> {
    pub today: Date,
    pub lane: Lane,
    pub passport: &'a PresentedPassport,
    /// The registration found for the presented passport number and nationality.
    pub registration: Option<&'a Registration>,
    /// Another registration of the same holder (found by holder key): a renewed passport.
    pub registration_of_holder: Option<&'a Registration>,
    /// The card's verified chip data (phase 2 only).
    pub card: Option<&'a CardData>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// After the registry lookup.
    Registration,
    /// After the card's chip was read and verified.
    Card,
}

pub struct Rule {
    pub name: &'static str,
    pub phase: Phase,
    /// `Some(reason)` when the rule refuses the traveler.
    pub check: fn(&Facts) -> Option<ReasonCode>,
}

/// The last day a card is valid: min(issue + 3 years − 1 day, the passport's expiry, the
/// validity written at issue).
pub fn card_last_valid_day(
    issued: Date,
    written_valid_until: Date,
    passport_expiry: Option<Date>,
) -> Date {
    let three_years = issued
        .replace_year(issued.year() + 3)
        .unwrap_or_else(|_| {
            issued
                .replace_day(28)
                .and_then(|d| d.replace_year(issued.year() + 3))
                .unwrap_or(issued)
        })
        .previous_day()
        .unwrap_or(issued);
    let mut last = three_years.min(written_valid_until);
    if let Some(expiry) = passport_expiry {
        last = last.min(expiry);
    }
    last
}

pub static RULES: &[Rule] = &[
    Rule {
        name: "registered",
        phase: Phase::Registration,
        check: |f| match (f.registration, f.registration_of_holder) {
            (Some(_), _) => None,
            (None, Some(_)) => Some(ReasonCode::PassportRenewed),
            (None, None) => Some(ReasonCode::RegistrationNotFound),
        },
    },
    Rule {
        name: "registration-status",
        phase: Phase::Registration,
        check: |f| match f.registration?.status {
            RegistrationStatus::Active => None,
            RegistrationStatus::Revoked => Some(ReasonCode::RegistrationRevoked),
            RegistrationStatus::PassportReportedLost => Some(ReasonCode::PassportReportedLost),
            RegistrationStatus::ChangedToResident => Some(ReasonCode::ChangedToResident),
        },
    },
    Rule {
        name: "card-validity-registered",
        phase: Phase::Registration,
        check: |f| {
            let r = f.registration?;
            let last = card_last_valid_day(r.card_issued, r.card_valid_until, f.passport.expiry);
            (f.today > last).then_some(ReasonCode::CardExpired)
        },
    },
    Rule {
        name: "two-registered-fingers",
        phase: Phase::Registration,
        check: |f| (f.registration?.fingers.len() < 2).then_some(ReasonCode::FingersUnusable),
    },
    Rule {
        name: "card-back-not-full",
        phase: Phase::Registration,
        check: |f| {
            (f.lane == Lane::Entry && f.registration?.records_on_card >= CARD_RECORD_CAPACITY)
                .then_some(ReasonCode::CardFull)
        },
    },
    Rule {
        name: "card-of-this-registration",
        phase: Phase::Card,
        check: |f| {
            let (r, card) = (f.registration?, f.card?);
            (card.card_number != r.card_number || card.nationality != r.nationality)
                .then_some(ReasonCode::CardNotHolders)
        },
    },
    Rule {
        name: "card-for-the-presented-passport",
        phase: Phase::Card,
        check: |f| {
            // A card registered with an old passport is unusable even within its
            // validity (§7(10)).
            (f.card?.passport_number != f.passport.number).then_some(ReasonCode::PassportRenewed)
        },
    },
    Rule {
        name: "card-validity-on-chip",
        phase: Phase::Card,
        check: |f| {
            let card = f.card?;
            let last = card_last_valid_day(card.issued, card.valid_until, f.passport.expiry);
            (f.today > last).then_some(ReasonCode::CardExpired)
        },
    },
];

/// The first rule of `phase` that refuses the traveler.
pub fn evaluate(phase: Phase, facts: &Facts) -> Result<(), (ReasonCode, &'static str)> {
    for rule in RULES.iter().filter(|r| r.phase == phase) {
        if let Some(reason) = (rule.check)(facts) {
            return Err((reason, rule.name));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::card::tests::sample as card;
    use crate::registry::tests::alice;
    use time::macros::date;

    fn passport() -> PresentedPassport {
        PresentedPassport {
            number: "TW1000017".into(),
            nationality: "GBR".into(),
            expiry: Some(date!(2033 - 09 - 30)),
            holder_key: Some(alice().holder_key),
        }
    }

    struct Case {
        name: &'static str,
        phase: Phase,
        lane: Lane,
        today: Date,
        change: fn(
            &mut PresentedPassport,
            &mut Option<Registration>,
            &mut Option<Registration>,
            &mut CardData,
        ),
        expect: Option<ReasonCode>,
    }

    const TODAY: Date = date!(2026 - 11 - 21);

    fn cases() -> Vec<Case> {
        let case = |name, phase, expect, change| Case {
            name,
            phase,
            lane: Lane::Entry,
            today: TODAY,
            change,
            expect,
        };
        vec![
            case(
                "eligible after lookup",
                Phase::Registration,
                None,
                |_, _, _, _| {},
            ),
            case("eligible with card", Phase::Card, None, |_, _, _, _| {}),
            case(
                "no registration",
                Phase::Registration,
                Some(ReasonCode::RegistrationNotFound),
                |_, r, _, _| *r = None,
            ),
            case(
                "renewed passport, found by holder",
                Phase::Registration,
                Some(ReasonCode::PassportRenewed),
                |_, r, h, _| *h = r.take(),
            ),
            case(
                "revoked",
                Phase::Registration,
                Some(ReasonCode::RegistrationRevoked),
                |_, r, _, _| r.as_mut().unwrap().status = RegistrationStatus::Revoked,
            ),
            case(
                "passport reported lost",
                Phase::Registration,
                Some(ReasonCode::PassportReportedLost),
                |_, r, _, _| r.as_mut().unwrap().status = RegistrationStatus::PassportReportedLost,
            ),
            case(
                "now a resident",
                Phase::Registration,
                Some(ReasonCode::ChangedToResident),
                |_, r, _, _| r.as_mut().unwrap().status = RegistrationStatus::ChangedToResident,
            ),
            case(
                "card expired (registry)",
                Phase::Registration,
                Some(ReasonCode::CardExpired),
                |_, r, _, _| r.as_mut().unwrap().card_valid_until = date!(2026 - 11 - 20),
            ),
            case(
                "card expires with the passport",
                Phase::Registration,
                Some(ReasonCode::CardExpired),
                |p, _, _, _| p.expiry = Some(date!(2026 - 11 - 01)),
            ),
            case(
                "card valid on its last day",
                Phase::Registration,
                None,
                |_, r, _, _| r.as_mut().unwrap().card_valid_until = TODAY,
            ),
            case(
                "three years from issue, whatever was written",
                Phase::Registration,
                Some(ReasonCode::CardExpired),
                |_, r, _, _| {
                    let r = r.as_mut().unwrap();
                    r.card_issued = date!(2023 - 11 - 21);
                    r.card_valid_until = date!(2030 - 01 - 01);
                },
            ),
            case(
                "one registered finger",
                Phase::Registration,
                Some(ReasonCode::FingersUnusable),
                |_, r, _, _| r.as_mut().unwrap().fingers.truncate(1),
            ),
            case(
                "card back full",
                Phase::Registration,
                Some(ReasonCode::CardFull),
                |_, r, _, _| r.as_mut().unwrap().records_on_card = 15,
            ),
            case(
                "14 records: the 15th may be printed",
                Phase::Registration,
                None,
                |_, r, _, _| r.as_mut().unwrap().records_on_card = 14,
            ),
            case(
                "another registration's card",
                Phase::Card,
                Some(ReasonCode::CardNotHolders),
                |_, _, _, c| c.card_number = "TTP0000009999".into(),
            ),
            case(
                "card of another nationality",
                Phase::Card,
                Some(ReasonCode::CardNotHolders),
                |_, _, _, c| c.nationality = "FRA".into(),
            ),
            case(
                "card registered with an old passport",
                Phase::Card,
                Some(ReasonCode::PassportRenewed),
                |_, _, _, c| c.passport_number = "PAA000111".into(),
            ),
            case(
                "card expired (chip)",
                Phase::Card,
                Some(ReasonCode::CardExpired),
                |_, _, _, c| c.valid_until = date!(2025 - 01 - 09),
            ),
        ]
    }

    #[test]
    fn every_rule_refuses_with_its_own_reason() {
        for case in cases() {
            let mut passport = passport();
            let mut registration = Some(alice());
            let mut of_holder = None;
            let mut card = card();
            (case.change)(&mut passport, &mut registration, &mut of_holder, &mut card);
            let facts = Facts {
                today: case.today,
                lane: case.lane,
                passport: &passport,
                registration: registration.as_ref(),
                registration_of_holder: of_holder.as_ref(),
                card: (case.phase == Phase::Card).then_some(&card),
            };
            let got = evaluate(case.phase, &facts).err().map(|(reason, _)| reason);
            assert_eq!(got, case.expect, "{}", case.name);
        }
    }

    #[test]
    fn a_full_card_does_not_matter_on_exit() {
        let mut registration = alice();
        registration.records_on_card = 15;
        let passport = passport();
        let facts = Facts {
            today: TODAY,
            lane: Lane::Exit,
            passport: &passport,
            registration: Some(&registration),
            registration_of_holder: None,
            card: None,
        };
        assert_eq!(evaluate(Phase::Registration, &facts), Ok(()));
    }

    #[test]
    fn every_rule_is_covered_by_a_case() {
        let names: Vec<&str> = RULES.iter().map(|r| r.name).collect();
        assert_eq!(names.len(), 8, "a new rule needs its own case in cases()");
    }

    #[test]
    fn leap_day_issues_expire_three_years_later() {
        let last = card_last_valid_day(date!(2024 - 02 - 29), date!(2030 - 01 - 01), None);
        assert_eq!(last, date!(2027 - 02 - 27));
    }
}
