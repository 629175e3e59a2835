//! The scenario file: the travelers the simulator knows (TOML, see `SCENARIOS.md`).
//!
//! Parsing never panics: every problem is a [`ScenarioError`] naming the file and,
//! where the TOML parser knows it, the line and column of the offending key.

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use torii_core::rules::Lane;
use torii_core::stay::StayTable;
use torii_sdk::model::FingerPosition;

use crate::script::{Expect, Script};

/// The scenario shipped with the simulator (used when `--scenario` is not given).
pub const DEFAULT_SCENARIO: &str = include_str!("../scenarios/default.toml");
/// The name reported for the embedded default scenario in error messages.
pub const DEFAULT_SCENARIO_NAME: &str = "<embedded>/scenarios/default.toml";

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("{path}: cannot read the scenario file: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// TOML syntax or schema error; toml's message carries the line, column and key.
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    /// A semantically invalid value (the message names the traveler and the key).
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// A calendar date (`YYYY-MM-DD`), accepted as a TOML date or a string.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    pub year: u16,
    pub month: u8,
    pub day: u8,
}

impl Date {
    pub fn new(year: u16, month: u8, day: u8) -> Option<Self> {
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return None;
        }
        Some(Self { year, month, day })
    }

    /// `YYMMDD` as used in the MRZ.
    pub fn yymmdd(&self) -> String {
        format!("{:02}{:02}{:02}", self.year % 100, self.month, self.day)
    }

    /// The day before this one.
    pub fn previous_day(&self) -> Self {
        if self.day > 1 {
            return Self {
                day: self.day - 1,
                ..*self
            };
        }
        if self.month > 1 {
            let month = self.month - 1;
            return Self {
                month,
                day: days_in_month(self.year, month),
                ..*self
            };
        }
        Self {
            year: self.year.saturating_sub(1),
            month: 12,
            day: 31,
        }
    }

    /// The same day `years` later (29 February becomes 28 February when needed).
    pub fn plus_years(&self, years: u16) -> Self {
        let year = self.year.saturating_add(years);
        let day = self.day.min(days_in_month(year, self.month));
        Self {
            year,
            month: self.month,
            day,
        }
    }
}

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => {
            29
        }
        2 => 28,
        _ => 0,
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

impl FromStr for Date {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("invalid date {s:?}, expected YYYY-MM-DD");
        let mut parts = s.trim().split('-');
        let (Some(y), Some(m), Some(d), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        if y.len() != 4 || m.len() != 2 || d.len() != 2 {
            return Err(bad());
        }
        let year = y.parse().map_err(|_| bad())?;
        let month = m.parse().map_err(|_| bad())?;
        let day = d.parse().map_err(|_| bad())?;
        Date::new(year, month, day).ok_or_else(bad)
    }
}

impl Serialize for Date {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Date {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct DateVisitor;
        impl<'de> Visitor<'de> for DateVisitor {
            type Value = Date;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a date YYYY-MM-DD")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Date, E> {
                v.parse().map_err(E::custom)
            }
            // A bare TOML date arrives as a one-entry map holding its text.
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Date, A::Error> {
                let Some((_key, value)) = map.next_entry::<String, String>()? else {
                    return Err(de::Error::custom("empty date"));
                };
                value.parse().map_err(de::Error::custom)
            }
        }
        d.deserialize_any(DateVisitor)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Sex {
    #[serde(rename = "M")]
    Male,
    #[serde(rename = "F")]
    Female,
    /// Unspecified (`<` in the MRZ).
    #[serde(rename = "X")]
    Unspecified,
}

impl Sex {
    pub fn mrz_char(self) -> char {
        match self {
            Sex::Male => 'M',
            Sex::Female => 'F',
            Sex::Unspecified => '<',
        }
    }
}

/// How well this traveler's fingers read on the sensor when placed "genuinely".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FingerCondition {
    #[default]
    Good,
    /// Dry, sweaty, injured or a young child's fingers: genuine placements read as poor.
    Poor,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RegistrationStatus {
    Active,
    /// Registration cancelled (grounds for denial of landing, requirements no longer met).
    Revoked,
    /// The registered passport was reported lost or stolen (even if later found).
    PassportReportedLost,
    /// Status changed to a mid-to-long-term resident.
    ChangedToResident,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Passport {
    /// Document number (at most 9 characters A–Z 0–9 for the MRZ).
    pub number: String,
    /// Issuing state (ISO 3166 alpha-3); defaults to the nationality.
    #[serde(default)]
    pub issuing_state: Option<String>,
    pub expiry: Date,
    /// Whether the passport has a contactless chip (eMRTD).
    pub chip: bool,
    /// Whether a TTP registration QR sticker is next to the "registered" stamp.
    #[serde(default)]
    pub qr_sticker: bool,
    /// MRZ optional data / personal number (at most 14 characters).
    #[serde(default)]
    pub personal_number: Option<String>,
    /// The data page's MRZ reads with a wrong document number check digit (damaged or
    /// tampered page); the chip's DG1 keeps the true MRZ.
    #[serde(default)]
    pub mrz_corrupt: bool,
    /// A forged, altered or cloned chip (passive authentication must fail):
    /// "tampered-dg1", "tampered-dg2", "wrong-ds", "unknown-csca", "expired-ds",
    /// "mrz-mismatch", "issuer-mismatch", "cloned".
    #[serde(default)]
    pub chip_fault: Option<ChipFault>,
}

/// Chip fault modes a scenario can give a passport.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChipFault {
    TamperedDg1,
    TamperedDg2,
    WrongDs,
    UnknownCsca,
    ExpiredDs,
    MrzMismatch,
    IssuerMismatch,
    /// A copy of a genuine chip without its private keys (fails Chip/Active Authentication).
    Cloned,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    pub card_number: String,
    pub card_issued: Date,
    /// Defaults to the earlier of 3 years from issue (minus a day) and the passport expiry.
    #[serde(default)]
    pub card_valid_until: Option<Date>,
    /// The passport number registered; defaults to the current passport (set it to an
    /// older number to simulate a renewed passport).
    #[serde(default)]
    pub passport_number: Option<String>,
    pub fingers: Vec<FingerPosition>,
    #[serde(default)]
    pub records_on_card: u32,
    pub status: RegistrationStatus,
    /// Registered as the unmarried minor child of a TTP member.
    #[serde(default)]
    pub minor_child_of_member: bool,
    /// The card's chip data is signed by another key than the issuing authority's.
    #[serde(default)]
    pub card_forged: bool,
    /// The card's chip data was altered after signing (one payload byte changed).
    #[serde(default)]
    pub card_altered: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdCard {
    pub flight: String,
    pub arrival_date: Option<Date>,
    pub address_in_japan: String,
    pub phone_in_japan: Option<String>,
    pub purpose: String,
    pub length_of_stay_days: u32,
    pub occupation: Option<String>,
    #[serde(default)]
    pub deported_before: bool,
    #[serde(default)]
    pub convicted_before: bool,
    #[serde(default)]
    pub carrying_prohibited_items: bool,
    #[serde(default)]
    pub carrying_firearms: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Traveler {
    /// Short id used in control actions and logs ("alice").
    pub id: String,
    pub surname: String,
    pub given_names: String,
    /// ISO 3166 alpha-3.
    pub nationality: String,
    pub sex: Sex,
    pub date_of_birth: Date,
    #[serde(default)]
    pub height_cm: Option<u32>,
    #[serde(default)]
    pub finger_condition: FingerCondition,
    pub passport: Passport,
    /// Absent: the traveler is not registered in the TTP.
    #[serde(default)]
    pub registration: Option<Registration>,
    /// Absent: nothing pre-entered online.
    #[serde(default)]
    pub ed_card: Option<EdCard>,
    /// Free text shown by `GET /v1/travelers` (what this traveler exercises).
    #[serde(default)]
    pub note: Option<String>,
    /// What the traveler does at the gate (`torii-sim scenario run`).
    #[serde(default)]
    pub script: Option<Script>,
    /// How the transaction must end (`torii-sim scenario run`).
    #[serde(default)]
    pub expect: Option<Expect>,
}

impl Traveler {
    pub fn issuing_state(&self) -> &str {
        self.passport
            .issuing_state
            .as_deref()
            .unwrap_or(&self.nationality)
    }

    /// The passport number the registration (if any) was made with.
    pub fn registered_passport_number(&self) -> Option<&str> {
        let reg = self.registration.as_ref()?;
        Some(
            reg.passport_number
                .as_deref()
                .unwrap_or(&self.passport.number),
        )
    }

    /// Card validity: explicit, or 3 years from issue capped by the passport expiry.
    pub fn card_valid_until(&self) -> Option<Date> {
        let reg = self.registration.as_ref()?;
        Some(reg.card_valid_until.unwrap_or_else(|| {
            reg.card_issued
                .plus_years(3)
                .previous_day()
                .min(self.passport.expiry)
        }))
    }
}

/// `[gate]`: how a simulated gate for this scenario is configured (`torii-sim gate`,
/// the end-to-end harness) and which lane its scripts are written for.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateSettings {
    /// The lane the scripts are written for (`scenario run` checks the gate's lane).
    #[serde(default)]
    pub lane: Option<Lane>,
    /// The port printed on the card's back (default "NRT").
    #[serde(default)]
    pub port: Option<String>,
    /// The period-of-stay table (`[flow.stay]` of toriid).
    #[serde(default)]
    pub stay: StayTable,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Free text describing the scenario.
    #[serde(default)]
    pub description: Option<String>,
    /// How a simulated gate for this scenario is configured.
    #[serde(default)]
    pub gate: GateSettings,
    #[serde(rename = "traveler", default)]
    pub travelers: Vec<Traveler>,
}

impl Scenario {
    /// The shipped default scenario.
    pub fn default_scenario() -> Result<Self, ScenarioError> {
        Self::parse(DEFAULT_SCENARIO, Path::new(DEFAULT_SCENARIO_NAME))
    }

    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses and validates scenario text; `path` only names the source in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ScenarioError> {
        let scenario: Scenario = toml::from_str(text).map_err(|e| ScenarioError::Parse {
            path: path.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        scenario
            .validate()
            .map_err(|message| ScenarioError::Invalid {
                path: path.to_owned(),
                message,
            })?;
        Ok(scenario)
    }

    pub fn traveler(&self, id: &str) -> Option<&Traveler> {
        self.travelers.iter().find(|t| t.id == id)
    }

    /// The travelers with a script and an expected outcome, in file order.
    pub fn scripted(&self) -> impl Iterator<Item = &Traveler> {
        self.travelers
            .iter()
            .filter(|t| t.script.is_some() && t.expect.is_some())
    }

    fn validate(&self) -> Result<(), String> {
        self.gate
            .stay
            .validate()
            .map_err(|e| format!("key `gate.stay`: {e}"))?;
        if let Some(port) = &self.gate.port
            && (port.is_empty()
                || port.len() > 5
                || !port
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()))
        {
            return Err("key `gate.port`: 1 to 5 characters A-Z 0-9 (e.g. NRT)".into());
        }
        let mut ids = BTreeSet::new();
        let mut cards = BTreeSet::new();
        for (i, t) in self.travelers.iter().enumerate() {
            let at = format!("traveler[{i}] (id {:?})", t.id);
            if t.id.is_empty()
                || !t
                    .id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(format!("{at}: key `id` must be non-empty [A-Za-z0-9_-]"));
            }
            if !ids.insert(t.id.as_str()) {
                return Err(format!("{at}: duplicate traveler id"));
            }
            check_alpha3(&t.nationality).map_err(|m| format!("{at}: key `nationality`: {m}"))?;
            if let Some(state) = &t.passport.issuing_state {
                check_alpha3(state)
                    .map_err(|m| format!("{at}: key `passport.issuing_state`: {m}"))?;
            }
            check_doc_number(&t.passport.number)
                .map_err(|m| format!("{at}: key `passport.number`: {m}"))?;
            if let Some(p) = &t.passport.personal_number
                && (p.len() > 14 || !p.chars().all(|c| c.is_ascii_alphanumeric()))
            {
                return Err(format!(
                    "{at}: key `passport.personal_number`: at most 14 characters A-Z 0-9"
                ));
            }
            if !has_mrz_letters(&t.surname) {
                return Err(format!(
                    "{at}: key `surname`: needs at least one letter A-Z"
                ));
            }
            if let Some(reg) = &t.registration {
                if reg.card_number.is_empty()
                    || reg.card_number.len() > 20
                    || !reg.card_number.chars().all(|c| c.is_ascii_alphanumeric())
                {
                    return Err(format!(
                        "{at}: key `registration.card_number`: 1 to 20 characters A-Z 0-9"
                    ));
                }
                if !cards.insert(reg.card_number.as_str()) {
                    return Err(format!(
                        "{at}: key `registration.card_number`: duplicate card number"
                    ));
                }
                if let Some(old) = &reg.passport_number {
                    check_doc_number(old)
                        .map_err(|m| format!("{at}: key `registration.passport_number`: {m}"))?;
                }
                if reg.fingers.is_empty() {
                    return Err(format!(
                        "{at}: key `registration.fingers`: at least one finger"
                    ));
                }
                let unique: BTreeSet<_> = reg.fingers.iter().collect();
                if unique.len() != reg.fingers.len() {
                    return Err(format!(
                        "{at}: key `registration.fingers`: duplicate finger"
                    ));
                }
                if reg.records_on_card > 15 {
                    return Err(format!(
                        "{at}: key `registration.records_on_card`: the card back holds at most 15 records"
                    ));
                }
            }
            match (&t.script, &t.expect) {
                (Some(_), None) => {
                    return Err(format!(
                        "{at}: key `expect`: a scripted traveler needs [traveler.expect]"
                    ));
                }
                (None, Some(_)) => {
                    return Err(format!(
                        "{at}: key `script`: [traveler.expect] needs [traveler.script]"
                    ));
                }
                _ => {}
            }
            if let Some(expect) = &t.expect {
                expect.validate().map_err(|m| format!("{at}: {m}"))?;
            }
        }
        // Travelers named in scripts must exist.
        for (i, t) in self.travelers.iter().enumerate() {
            let Some(script) = &t.script else { continue };
            for (n, action) in script.actions.iter().enumerate() {
                if let Some(other) = action.travelers()
                    && self.traveler(other).is_none()
                {
                    return Err(format!(
                        "traveler[{i}] (id {:?}): key `script.actions[{n}]`: unknown traveler {other:?}",
                        t.id
                    ));
                }
            }
        }
        Ok(())
    }
}

fn check_alpha3(code: &str) -> Result<(), String> {
    if code.len() == 3 && code.chars().all(|c| c.is_ascii_uppercase()) {
        Ok(())
    } else {
        Err(format!(
            "{code:?} is not an ISO 3166 alpha-3 code (3 letters A-Z)"
        ))
    }
}

fn check_doc_number(n: &str) -> Result<(), String> {
    if !n.is_empty()
        && n.len() <= 9
        && n.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
    {
        Ok(())
    } else {
        Err("1 to 9 characters A-Z 0-9".to_owned())
    }
}

fn has_mrz_letters(s: &str) -> bool {
    s.chars().any(|c| c.is_ascii_alphabetic())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_scenario_parses() {
        let s = Scenario::default_scenario().unwrap();
        assert!(s.travelers.len() >= 6);
        assert!(s.traveler("alice").is_some());
    }

    #[test]
    fn dates_parse_and_validate() {
        assert_eq!(
            "2024-02-29".parse::<Date>().unwrap().to_string(),
            "2024-02-29"
        );
        assert!("2023-02-29".parse::<Date>().is_err());
        assert!("2023-13-01".parse::<Date>().is_err());
        assert!("20230101".parse::<Date>().is_err());
        let d: Date = "2024-01-01".parse().unwrap();
        assert_eq!(d.previous_day().to_string(), "2023-12-31");
        assert_eq!(d.plus_years(3).to_string(), "2027-01-01");
    }

    #[test]
    fn errors_name_the_file_and_the_line() {
        let text = "[[traveler]]\nid = \"x\"\nsurname = 5\n";
        let err = Scenario::parse(text, Path::new("bad.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("bad.toml:"), "{err}");
        assert!(err.contains("line 3"), "{err}");
    }

    #[test]
    fn bad_values_are_errors_not_panics() {
        let base = DEFAULT_SCENARIO;
        for (from, to) in [
            ("nationality = \"GBR\"", "nationality = \"gb\""),
            ("\"right-index\"", "\"right-pinky\""),
            (
                "date_of_birth = 1986-04-12",
                "date_of_birth = \"1986-04-31\"",
            ),
        ] {
            assert!(base.contains(from), "{from}");
            let text = base.replacen(from, to, 1);
            let err = Scenario::parse(&text, Path::new("s.toml"))
                .unwrap_err()
                .to_string();
            assert!(err.starts_with("s.toml:"), "{err}");
        }
        assert!(Scenario::parse("not toml [", Path::new("x")).is_err());
    }

    #[test]
    fn card_validity_defaults_to_three_years_capped_by_the_passport() {
        let s = Scenario::default_scenario().unwrap();
        for t in &s.travelers {
            if let (Some(reg), Some(until)) = (&t.registration, t.card_valid_until()) {
                assert!(until <= t.passport.expiry || reg.card_valid_until.is_some());
                assert!(until > reg.card_issued);
            }
        }
    }
}
