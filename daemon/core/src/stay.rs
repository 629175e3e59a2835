//! Period of stay granted at the gate: "Temporary Visitor" for 90 days, unless the
//! traveler's nationality has a shorter visa exemption (30 or 15 days) — then that, even
//! if they hold a 90-day visa (§9: to use a visa they must go to a booth).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Days of stay by nationality (ISO 3166 alpha-3), with a default.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StayTable {
    #[serde(default = "default_days")]
    pub default_days: u16,
    /// Nationalities whose visa exemption is shorter, e.g. `{"THA" = 15, "IDN" = 15}`.
    #[serde(default)]
    pub by_nationality: BTreeMap<String, u16>,
}

fn default_days() -> u16 {
    90
}

impl Default for StayTable {
    fn default() -> Self {
        StayTable {
            default_days: default_days(),
            by_nationality: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StayTableError {
    #[error("nationality {0:?} is not an ISO 3166 alpha-3 code")]
    BadNationality(String),
    #[error("{days} days for {nationality} is not one of 15, 30 or 90")]
    BadDays { nationality: String, days: u16 },
}

impl StayTable {
    pub fn validate(&self) -> Result<(), StayTableError> {
        let allowed = [15, 30, 90];
        if !allowed.contains(&self.default_days) {
            return Err(StayTableError::BadDays {
                nationality: "default".into(),
                days: self.default_days,
            });
        }
        for (nationality, days) in &self.by_nationality {
            if nationality.len() != 3 || !nationality.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(StayTableError::BadNationality(nationality.clone()));
            }
            if !allowed.contains(days) {
                return Err(StayTableError::BadDays {
                    nationality: nationality.clone(),
                    days: *days,
                });
            }
        }
        Ok(())
    }

    pub fn days_for(&self, nationality: &str) -> u16 {
        self.by_nationality
            .get(nationality)
            .copied()
            .unwrap_or(self.default_days)
    }

    /// The status of residence as printed on the card: "Temporary Visitor (N days)".
    pub fn status_for(&self, nationality: &str) -> String {
        format!("Temporary Visitor ({} days)", self.days_for(nationality))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shorter_exemptions_override_the_default() {
        let mut table = StayTable::default();
        table.by_nationality.insert("THA".into(), 15);
        table.by_nationality.insert("ARE".into(), 30);
        assert!(table.validate().is_ok());
        assert_eq!(table.status_for("GBR"), "Temporary Visitor (90 days)");
        assert_eq!(table.status_for("THA"), "Temporary Visitor (15 days)");
        assert_eq!(table.status_for("ARE"), "Temporary Visitor (30 days)");
    }

    #[test]
    fn bad_tables_are_refused() {
        let mut table = StayTable::default();
        table.by_nationality.insert("Thailand".into(), 15);
        assert!(matches!(
            table.validate(),
            Err(StayTableError::BadNationality(_))
        ));
        let mut table = StayTable::default();
        table.by_nationality.insert("THA".into(), 45);
        assert!(matches!(
            table.validate(),
            Err(StayTableError::BadDays { .. })
        ));
    }
}
