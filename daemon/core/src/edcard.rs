//! The disembarkation (ED) card: pre-entered online, shown at the gate, corrected or
//! completed by the traveler, validated field by field, and kept in the record.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The ED card's fields (entry only).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdCard {
    #[serde(default)]
    pub flight: String,
    #[serde(default)]
    pub arrival_date: Option<time::Date>,
    #[serde(default)]
    pub address_in_japan: String,
    #[serde(default)]
    pub phone_in_japan: String,
    #[serde(default)]
    pub purpose: String,
    #[serde(default)]
    pub length_of_stay_days: u16,
    #[serde(default)]
    pub occupation: String,
    /// The four yes/no questions; `None` until answered.
    #[serde(default)]
    pub deported_before: Option<bool>,
    #[serde(default)]
    pub convicted_before: Option<bool>,
    #[serde(default)]
    pub carrying_prohibited_items: Option<bool>,
    #[serde(default)]
    pub carrying_firearms: Option<bool>,
}

// Addresses and phone numbers are personal data.
impl fmt::Debug for EdCard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EdCard(..)")
    }
}

/// One invalid field: its name and what is wrong (never the value).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: &'static str,
    /// A stable code for screens to translate: `required`, `format`, `too-long`,
    /// `characters`, `range`, `yes-or-no`.
    pub code: &'static str,
    /// The problem in English.
    pub problem: &'static str,
}

impl EdCard {
    /// Every problem, so the screen can mark all the fields at once.
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let mut check = |ok: bool, field: &'static str, problem: &'static str| {
            if !ok {
                let code = match problem {
                    "required" => "required",
                    "answer yes or no" => "yes-or-no",
                    "at most 200 characters" => "too-long",
                    "digits, spaces, + and - only" => "characters",
                    "between 1 and 90 days" => "range",
                    _ => "format",
                };
                errors.push(FieldError {
                    field,
                    code,
                    problem,
                });
            }
        };
        let flight = self.flight.trim();
        check(!flight.is_empty(), "flight", "required");
        check(
            flight.is_empty()
                || (flight.len() <= 8
                    && flight.len() >= 3
                    && flight.chars().take(2).all(|c| c.is_ascii_alphanumeric())
                    && flight.chars().skip(2).all(|c| c.is_ascii_digit())
                    && flight.chars().skip(2).count() >= 1),
            "flight",
            "expected an airline code and a number, e.g. NH212",
        );
        check(
            !self.address_in_japan.trim().is_empty(),
            "address_in_japan",
            "required",
        );
        check(
            self.address_in_japan.chars().count() <= 200,
            "address_in_japan",
            "at most 200 characters",
        );
        check(
            self.phone_in_japan.is_empty()
                || (self.phone_in_japan.len() <= 20
                    && self
                        .phone_in_japan
                        .chars()
                        .all(|c| c.is_ascii_digit() || c == '-' || c == '+' || c == ' ')),
            "phone_in_japan",
            "digits, spaces, + and - only",
        );
        check(!self.purpose.trim().is_empty(), "purpose", "required");
        check(
            (1..=90).contains(&self.length_of_stay_days),
            "length_of_stay_days",
            "between 1 and 90 days",
        );
        for (answer, field) in [
            (self.deported_before, "deported_before"),
            (self.convicted_before, "convicted_before"),
            (self.carrying_prohibited_items, "carrying_prohibited_items"),
            (self.carrying_firearms, "carrying_firearms"),
        ] {
            check(answer.is_some(), field, "answer yes or no");
        }
        errors
    }

    /// Answering "yes" to any of the four questions needs an officer's examination.
    pub fn needs_examination(&self) -> bool {
        [
            self.deported_before,
            self.convicted_before,
            self.carrying_prohibited_items,
            self.carrying_firearms,
        ]
        .into_iter()
        .any(|a| a == Some(true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete() -> EdCard {
        EdCard {
            flight: "NH212".into(),
            arrival_date: None,
            address_in_japan: "1-1 Test-cho, Chiyoda-ku, Tokyo".into(),
            phone_in_japan: "03-0000-0001".into(),
            purpose: "tourism".into(),
            length_of_stay_days: 10,
            occupation: String::new(),
            deported_before: Some(false),
            convicted_before: Some(false),
            carrying_prohibited_items: Some(false),
            carrying_firearms: Some(false),
        }
    }

    #[test]
    fn a_complete_card_is_valid() {
        assert_eq!(complete().validate(), vec![]);
        assert!(!complete().needs_examination());
    }

    #[test]
    fn each_field_is_validated_by_name() {
        type Breakage = Box<dyn Fn(&mut EdCard)>;
        let cases: Vec<(&str, Breakage)> = vec![
            ("flight", Box::new(|c| c.flight.clear())),
            ("flight", Box::new(|c| c.flight = "NH".into())),
            ("flight", Box::new(|c| c.flight = "NH21A".into())),
            (
                "address_in_japan",
                Box::new(|c| c.address_in_japan = "  ".into()),
            ),
            (
                "phone_in_japan",
                Box::new(|c| c.phone_in_japan = "call me".into()),
            ),
            ("purpose", Box::new(|c| c.purpose.clear())),
            (
                "length_of_stay_days",
                Box::new(|c| c.length_of_stay_days = 0),
            ),
            (
                "length_of_stay_days",
                Box::new(|c| c.length_of_stay_days = 91),
            ),
            (
                "carrying_firearms",
                Box::new(|c| c.carrying_firearms = None),
            ),
        ];
        for (field, break_it) in cases {
            let mut card = complete();
            break_it(&mut card);
            let errors = card.validate();
            assert!(
                errors.iter().any(|e| e.field == field),
                "{field}: {errors:?}"
            );
        }
    }

    #[test]
    fn nothing_pre_entered_means_every_field_must_be_entered() {
        let errors = EdCard::default().validate();
        for field in [
            "flight",
            "address_in_japan",
            "purpose",
            "length_of_stay_days",
            "deported_before",
        ] {
            assert!(errors.iter().any(|e| e.field == field), "{field}");
        }
        assert!(!format!("{:?}", complete()).contains("Chiyoda"));
    }
}
