//! The registered-user registry: who may use the TTP lanes.
//!
//! Looked up by passport number and nationality (§7(3)). Stored locally in SQLite (WAL),
//! filled from central immigration (a local import now; the mTLS sync comes with the
//! central-link work). Names and dates of birth are not stored: a registration carries
//! only a `holder_key`, a hash of the holder's MRZ identity, which lets the gate tell a
//! renewed passport from an unregistered one.

use std::fmt;
use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::Date;
use torii_sdk::model::FingerPosition;

use crate::edcard::EdCard;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RegistrationStatus {
    Active,
    /// Grounds for denial of landing arose, or the requirements are no longer met.
    Revoked,
    /// The registered passport was reported lost or stolen (even if later found).
    PassportReportedLost,
    /// The holder became a mid-to-long-term resident.
    ChangedToResident,
}

impl RegistrationStatus {
    fn as_str(self) -> &'static str {
        match self {
            RegistrationStatus::Active => "active",
            RegistrationStatus::Revoked => "revoked",
            RegistrationStatus::PassportReportedLost => "passport-reported-lost",
            RegistrationStatus::ChangedToResident => "changed-to-resident",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [
            Self::Active,
            Self::Revoked,
            Self::PassportReportedLost,
            Self::ChangedToResident,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// One registered finger and its enrolment template (ISO/IEC 19794-2).
#[derive(Clone, PartialEq, Eq)]
pub struct EnrolledFinger {
    pub position: FingerPosition,
    pub template: Vec<u8>,
}

impl fmt::Debug for EnrolledFinger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "EnrolledFinger({:?}, {} bytes)",
            self.position,
            self.template.len()
        )
    }
}

/// A TTP registration.
#[derive(Clone, PartialEq, Eq)]
pub struct Registration {
    /// The registered passport's number.
    pub passport_number: String,
    /// ISO 3166 alpha-3.
    pub nationality: String,
    /// [`holder_key`] of the holder.
    pub holder_key: String,
    pub card_number: String,
    pub card_issued: Date,
    pub card_valid_until: Date,
    pub status: RegistrationStatus,
    /// Landing records already printed on the card's back (0..=15).
    pub records_on_card: u8,
    pub fingers: Vec<EnrolledFinger>,
    /// The ED card pre-entered online, if any.
    pub ed_card: Option<EdCard>,
}

impl fmt::Debug for Registration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registration")
            .field("nationality", &self.nationality)
            .field("status", &self.status)
            .field("records_on_card", &self.records_on_card)
            .field("fingers", &self.fingers.len())
            .finish_non_exhaustive()
    }
}

/// A privacy-preserving key of a person's identity as written in an MRZ: SHA-256 of the
/// nationality, the date of birth (YYMMDD) and the MRZ name field (`SURNAME<<GIVEN<NAMES`,
/// at most 39 characters, trailing fillers removed).
pub fn holder_key(nationality: &str, birth_yymmdd: &str, mrz_name: &str) -> String {
    let name: String = mrz_name
        .chars()
        .take(39)
        .collect::<String>()
        .trim_end_matches('<')
        .to_owned();
    let digest =
        Sha256::digest(format!("torii-holder-v1|{nationality}|{birth_yymmdd}|{name}").as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// `SURNAME<<GIVEN<NAMES` as an MRZ writes it (A–Z only, other characters become `<`).
pub fn mrz_name(surname: &str, given_names: &str) -> String {
    let clean = |text: &str| -> String {
        text.trim()
            .to_ascii_uppercase()
            .chars()
            .map(|c| if c.is_ascii_uppercase() { c } else { '<' })
            .collect()
    };
    format!("{}<<{}", clean(surname), clean(given_names))
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("registry database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("registry row for a registration is corrupt: {0}")]
    Corrupt(&'static str),
    #[error("registry import: {0}")]
    Import(String),
}

/// The SQLite store.
pub struct RegistryStore {
    conn: Mutex<Connection>,
}

const SCHEMA_VERSION: i32 = 1;

const SCHEMA: &str = "
CREATE TABLE registration (
    passport_number  TEXT NOT NULL,
    nationality      TEXT NOT NULL CHECK (length(nationality) = 3),
    holder_key       TEXT NOT NULL,
    card_number      TEXT NOT NULL UNIQUE,
    card_issued      TEXT NOT NULL,
    card_valid_until TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN
                        ('active', 'revoked', 'passport-reported-lost', 'changed-to-resident')),
    records_on_card  INTEGER NOT NULL DEFAULT 0 CHECK (records_on_card BETWEEN 0 AND 15),
    ed_card          TEXT,
    PRIMARY KEY (passport_number, nationality)
);
CREATE INDEX registration_holder ON registration (holder_key);
CREATE TABLE enrolled_finger (
    passport_number TEXT NOT NULL,
    nationality     TEXT NOT NULL,
    position        INTEGER NOT NULL CHECK (position BETWEEN 1 AND 10),
    template        BLOB NOT NULL,
    PRIMARY KEY (passport_number, nationality, position),
    FOREIGN KEY (passport_number, nationality)
        REFERENCES registration (passport_number, nationality) ON DELETE CASCADE
);
";

impl RegistryStore {
    pub fn open(path: &Path) -> Result<Self, RegistryError> {
        Self::init(Connection::open(path)?)
    }

    pub fn open_in_memory() -> Result<Self, RegistryError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<Self, RegistryError> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        let version: i32 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
        if version == 0 {
            conn.execute_batch(SCHEMA)?;
            conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        } else if version != SCHEMA_VERSION {
            return Err(RegistryError::Import(format!(
                "registry schema version {version} is not {SCHEMA_VERSION}: upgrade or remove the database"
            )));
        }
        Ok(RegistryStore {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Replaces or adds registrations, all or nothing.
    pub fn upsert_all(&self, registrations: &[Registration]) -> Result<usize, RegistryError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        for r in registrations {
            tx.execute(
                "DELETE FROM registration WHERE passport_number = ?1 AND nationality = ?2",
                params![r.passport_number, r.nationality],
            )?;
            let ed_card = match &r.ed_card {
                Some(card) => Some(
                    serde_json::to_string(card)
                        .map_err(|e| RegistryError::Import(e.to_string()))?,
                ),
                None => None,
            };
            tx.execute(
                "INSERT INTO registration (passport_number, nationality, holder_key, card_number, card_issued,
                     card_valid_until, status, records_on_card, ed_card)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    r.passport_number,
                    r.nationality,
                    r.holder_key,
                    r.card_number,
                    r.card_issued.to_string(),
                    r.card_valid_until.to_string(),
                    r.status.as_str(),
                    r.records_on_card,
                    ed_card
                ],
            )?;
            for finger in &r.fingers {
                tx.execute(
                    "INSERT INTO enrolled_finger (passport_number, nationality, position, template) VALUES (?1, ?2, ?3, ?4)",
                    params![r.passport_number, r.nationality, finger.position.code(), finger.template],
                )?;
            }
        }
        tx.commit()?;
        Ok(registrations.len())
    }

    /// Deregistration: the registration and its fingerprints are erased (§11).
    pub fn erase(&self, passport_number: &str, nationality: &str) -> Result<bool, RegistryError> {
        let n = self.conn().execute(
            "DELETE FROM registration WHERE passport_number = ?1 AND nationality = ?2",
            params![passport_number, nationality],
        )?;
        Ok(n > 0)
    }

    pub fn lookup(
        &self,
        passport_number: &str,
        nationality: &str,
    ) -> Result<Option<Registration>, RegistryError> {
        let conn = self.conn();
        Self::lookup_where(
            &conn,
            "passport_number = ?1 AND nationality = ?2",
            params![passport_number, nationality],
        )
        .map(|mut found| found.pop())
    }

    /// Registrations of the same person under another passport (a renewed passport).
    pub fn lookup_holder(&self, holder_key: &str) -> Result<Vec<Registration>, RegistryError> {
        let conn = self.conn();
        Self::lookup_where(&conn, "holder_key = ?1", params![holder_key])
    }

    fn lookup_where(
        conn: &Connection,
        condition: &str,
        args: impl rusqlite::Params,
    ) -> Result<Vec<Registration>, RegistryError> {
        let sql = format!(
            "SELECT passport_number, nationality, holder_key, card_number, card_issued, card_valid_until,
                    status, records_on_card, ed_card FROM registration WHERE {condition}"
        );
        let mut statement = conn.prepare(&sql)?;
        let rows = statement.query_map(args, |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, String>(4)?,
                row.get::<_, String>(5)?,
                row.get::<_, String>(6)?,
                row.get::<_, u8>(7)?,
                row.get::<_, Option<String>>(8)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (
                passport_number,
                nationality,
                holder_key,
                card_number,
                issued,
                valid_until,
                status,
                records,
                ed_card,
            ) = row?;
            let date = |text: &str| {
                Date::parse(
                    text,
                    time::macros::format_description!("[year]-[month]-[day]"),
                )
                .map_err(|_| RegistryError::Corrupt("date"))
            };
            let fingers = {
                let mut statement = conn.prepare(
                    "SELECT position, template FROM enrolled_finger
                     WHERE passport_number = ?1 AND nationality = ?2 ORDER BY position",
                )?;
                let fingers = statement
                    .query_map(params![passport_number, nationality], |row| {
                        Ok((row.get::<_, u32>(0)?, row.get::<_, Vec<u8>>(1)?))
                    })?;
                let mut list = Vec::new();
                for finger in fingers {
                    let (code, template) = finger?;
                    let position = FingerPosition::from_code(code)
                        .ok_or(RegistryError::Corrupt("finger position"))?;
                    list.push(EnrolledFinger { position, template });
                }
                list
            };
            out.push(Registration {
                card_issued: date(&issued)?,
                card_valid_until: date(&valid_until)?,
                status: RegistrationStatus::parse(&status)
                    .ok_or(RegistryError::Corrupt("status"))?,
                records_on_card: records,
                ed_card: match ed_card {
                    Some(json) => Some(
                        serde_json::from_str(&json)
                            .map_err(|_| RegistryError::Corrupt("ed_card"))?,
                    ),
                    None => None,
                },
                passport_number,
                nationality,
                holder_key,
                card_number,
                fingers,
            });
        }
        Ok(out)
    }

    /// One more landing record on the card's back; returns the new count.
    pub fn record_landing(&self, card_number: &str) -> Result<u8, RegistryError> {
        let conn = self.conn();
        conn.execute(
            "UPDATE registration SET records_on_card = min(records_on_card + 1, 15) WHERE card_number = ?1",
            params![card_number],
        )?;
        conn.query_row(
            "SELECT records_on_card FROM registration WHERE card_number = ?1",
            params![card_number],
            |row| row.get(0),
        )
        .optional()?
        .ok_or(RegistryError::Corrupt("card vanished"))
    }

    pub fn count(&self) -> Result<usize, RegistryError> {
        Ok(self
            .conn()
            .query_row("SELECT count(*) FROM registration", [], |row| {
                row.get::<_, i64>(0)
            })? as usize)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use time::macros::date;

    pub fn alice() -> Registration {
        Registration {
            passport_number: "TW1000017".into(),
            nationality: "GBR".into(),
            holder_key: holder_key("GBR", "860412", &mrz_name("Testwood", "Alice Sample")),
            card_number: "TTP0000001001".into(),
            card_issued: date!(2025 - 05 - 20),
            card_valid_until: date!(2028 - 05 - 19),
            status: RegistrationStatus::Active,
            records_on_card: 3,
            fingers: vec![
                EnrolledFinger {
                    position: FingerPosition::RightIndex,
                    template: vec![1, 2, 3],
                },
                EnrolledFinger {
                    position: FingerPosition::LeftIndex,
                    template: vec![4, 5, 6],
                },
            ],
            ed_card: None,
        }
    }

    #[test]
    fn registrations_round_trip_and_are_found_by_passport_or_holder() {
        let dir = tempfile::tempdir().unwrap();
        let store = RegistryStore::open(&dir.path().join("registry.db")).unwrap();
        store.upsert_all(&[alice()]).unwrap();
        assert_eq!(store.lookup("TW1000017", "GBR").unwrap(), Some(alice()));
        assert_eq!(store.lookup("TW1000017", "FRA").unwrap(), None);
        assert_eq!(
            store.lookup_holder(&alice().holder_key).unwrap(),
            vec![alice()]
        );
        // Re-import replaces, never duplicates.
        let mut updated = alice();
        updated.status = RegistrationStatus::Revoked;
        store.upsert_all(&[updated.clone()]).unwrap();
        assert_eq!(store.count().unwrap(), 1);
        assert_eq!(store.lookup("TW1000017", "GBR").unwrap(), Some(updated));
        // Reopening keeps everything (and does not re-create the schema).
        drop(store);
        let store = RegistryStore::open(&dir.path().join("registry.db")).unwrap();
        assert_eq!(store.count().unwrap(), 1);
    }

    #[test]
    fn landings_are_counted_up_to_fifteen() {
        let store = RegistryStore::open_in_memory().unwrap();
        store.upsert_all(&[alice()]).unwrap();
        assert_eq!(store.record_landing("TTP0000001001").unwrap(), 4);
        for _ in 0..20 {
            store.record_landing("TTP0000001001").unwrap();
        }
        assert_eq!(
            store
                .lookup("TW1000017", "GBR")
                .unwrap()
                .unwrap()
                .records_on_card,
            15
        );
    }

    #[test]
    fn deregistration_erases_the_fingerprints_too() {
        let store = RegistryStore::open_in_memory().unwrap();
        store.upsert_all(&[alice()]).unwrap();
        assert!(store.erase("TW1000017", "GBR").unwrap());
        let left: i64 = store
            .conn()
            .query_row("SELECT count(*) FROM enrolled_finger", [], |row| row.get(0))
            .unwrap();
        assert_eq!(left, 0);
    }

    #[test]
    fn holder_keys_ignore_mrz_fillers_and_truncation() {
        let a = holder_key(
            "GBR",
            "860412",
            "TESTWOOD<<ALICE<SAMPLE<<<<<<<<<<<<<<<<<<<<<<",
        );
        let b = holder_key("GBR", "860412", &mrz_name("Testwood", "Alice Sample"));
        assert_eq!(a, b);
        assert_ne!(a, holder_key("GBR", "860413", "TESTWOOD<<ALICE<SAMPLE"));
    }
}

/// Central immigration's registry export (`{"travelers": [...]}`), as served by the
/// central link (and written by `torii-sim export-registry`).
pub mod import {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::Deserialize;

    use super::{EnrolledFinger, Registration, RegistrationStatus, holder_key, mrz_name};
    use crate::edcard::EdCard;
    use torii_sdk::model::FingerPosition;

    #[derive(Deserialize)]
    struct Export {
        travelers: Vec<Entry>,
    }

    #[derive(Deserialize)]
    struct Entry {
        passport_number: String,
        nationality: String,
        surname: String,
        given_names: String,
        date_of_birth: time::Date,
        card_number: String,
        card_issued: time::Date,
        card_valid_until: time::Date,
        status: RegistrationStatus,
        #[serde(default)]
        records_on_card: u8,
        fingers: Vec<Finger>,
        #[serde(default)]
        ed_card: Option<CentralEdCard>,
    }

    #[derive(Deserialize)]
    struct Finger {
        position: FingerPosition,
        template: String,
    }

    #[derive(Deserialize)]
    struct CentralEdCard {
        #[serde(default)]
        flight: String,
        #[serde(default)]
        arrival_date: Option<time::Date>,
        #[serde(default)]
        address_in_japan: String,
        #[serde(default)]
        phone_in_japan: Option<String>,
        #[serde(default)]
        purpose: String,
        #[serde(default)]
        length_of_stay_days: u16,
        #[serde(default)]
        occupation: Option<String>,
        #[serde(default)]
        deported_before: Option<bool>,
        #[serde(default)]
        convicted_before: Option<bool>,
        #[serde(default)]
        carrying_prohibited_items: Option<bool>,
        #[serde(default)]
        carrying_firearms: Option<bool>,
    }

    /// Why an export was refused; `entry` is its index (never a name or number).
    #[derive(Debug, thiserror::Error)]
    pub enum ImportError {
        #[error("registry export is not valid: {0}")]
        Format(String),
        #[error("registry export entry {entry}: {problem}")]
        Entry { entry: usize, problem: String },
    }

    /// Parses an export into registrations. Names and dates of birth are used only to
    /// compute each holder key; they are not kept.
    pub fn parse(bytes: &[u8]) -> Result<Vec<Registration>, ImportError> {
        let export: Export =
            serde_json::from_slice(bytes).map_err(|e| ImportError::Format(e.to_string()))?;
        let mut out = Vec::with_capacity(export.travelers.len());
        for (index, entry) in export.travelers.into_iter().enumerate() {
            let problem = |problem: String| ImportError::Entry {
                entry: index,
                problem,
            };
            if entry.nationality.len() != 3 {
                return Err(problem("nationality is not an alpha-3 code".into()));
            }
            if entry.records_on_card > 15 {
                return Err(problem("records_on_card exceeds 15".into()));
            }
            let mut fingers = Vec::with_capacity(entry.fingers.len());
            for finger in entry.fingers {
                let template = STANDARD.decode(finger.template.as_bytes()).map_err(|_| {
                    problem(format!("{:?} template is not base64", finger.position))
                })?;
                fingers.push(EnrolledFinger {
                    position: finger.position,
                    template,
                });
            }
            let dob = entry.date_of_birth;
            let yymmdd = format!(
                "{:02}{:02}{:02}",
                dob.year().rem_euclid(100),
                u8::from(dob.month()),
                dob.day()
            );
            out.push(Registration {
                holder_key: holder_key(
                    &entry.nationality,
                    &yymmdd,
                    &mrz_name(&entry.surname, &entry.given_names),
                ),
                passport_number: entry.passport_number,
                nationality: entry.nationality,
                card_number: entry.card_number,
                card_issued: entry.card_issued,
                card_valid_until: entry.card_valid_until,
                status: entry.status,
                records_on_card: entry.records_on_card,
                fingers,
                ed_card: entry.ed_card.map(|e| EdCard {
                    flight: e.flight,
                    arrival_date: e.arrival_date,
                    address_in_japan: e.address_in_japan,
                    phone_in_japan: e.phone_in_japan.unwrap_or_default(),
                    purpose: e.purpose,
                    length_of_stay_days: e.length_of_stay_days,
                    occupation: e.occupation.unwrap_or_default(),
                    deported_before: e.deported_before,
                    convicted_before: e.convicted_before,
                    carrying_prohibited_items: e.carrying_prohibited_items,
                    carrying_firearms: e.carrying_firearms,
                }),
            });
        }
        Ok(out)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn an_export_becomes_registrations_without_names() {
            let json = br#"{"travelers":[{"passport_number":"TW1000017","nationality":"GBR","surname":"TESTWOOD",
                "given_names":"ALICE SAMPLE","date_of_birth":"1986-04-12","sex":"F","card_number":"TTP0000001001",
                "card_issued":"2025-05-20","card_valid_until":"2028-05-19","status":"active","records_on_card":3,
                "fingers":[{"position":"right-index","template":"AQID"},{"position":"left-index","template":"BAUG"}],
                "ed_card":{"flight":"NH212","address_in_japan":"x","phone_in_japan":null,"purpose":"tourism",
                "length_of_stay_days":10,"deported_before":false,"convicted_before":false,
                "carrying_prohibited_items":false,"carrying_firearms":false},"face_jpeg":null}]}"#;
            let registrations = parse(json).unwrap();
            assert_eq!(registrations.len(), 1);
            let r = &registrations[0];
            assert_eq!(r.holder_key, super::super::tests::alice().holder_key);
            assert_eq!(r.fingers[1].template, vec![4, 5, 6]);
            assert_eq!(r.ed_card.as_ref().unwrap().deported_before, Some(false));
        }

        #[test]
        fn bad_exports_name_the_entry() {
            assert!(matches!(parse(b"[]"), Err(ImportError::Format(_))));
            let bad = br#"{"travelers":[{"passport_number":"X","nationality":"GBRX","surname":"A","given_names":"B",
                "date_of_birth":"1986-04-12","card_number":"C","card_issued":"2025-05-20","card_valid_until":"2028-05-19",
                "status":"active","fingers":[]}]}"#;
            let error = parse(bad).unwrap_err().to_string();
            assert!(
                error.contains("entry 0") && error.contains("nationality"),
                "{error}"
            );
        }
    }
}
