//! The registered-user registry: who may use the TTP lanes.
//!
//! Looked up by passport number and nationality (§7(3)). Stored locally in SQLite (WAL),
//! filled from central immigration: a local [`import`] of the registry export, and the
//! central link's sync, which applies registry changes and revocations page by page
//! ([`RegistryStore::apply_changes`], [`RegistryStore::apply_revocations`]; each page in
//! one transaction with its feed cursor). Names and dates of birth are not stored: a
//! registration carries only a `holder_key`, a hash of the holder's MRZ identity, which
//! lets the gate tell a renewed passport from an unregistered one.
//!
//! Sealed at rest ([`seal`]): passport and card numbers, the holder key, the ED card and
//! the fingerprint templates are stored only encrypted, and rows are found by keyed
//! lookup tags, so the database file alone tells nobody who is registered.
//!
//! Deleted rows are overwritten (`secure_delete`), and the write-ahead log is truncated
//! after an erasure, so a deregistered person's data does not linger in the files.

use std::fmt;
use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::Date;
use torii_sdk::model::FingerPosition;
use zeroize::Zeroizing;

use crate::edcard::EdCard;

mod seal;
mod sync;

use seal::TagOf;
pub use seal::{RegistryKey, SealError};
pub use sync::{
    AppliedChanges, AppliedRevocations, PageBounds, SyncChange, SyncRevocation, SyncState,
};

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
    pub fn as_str(self) -> &'static str {
        match self {
            RegistrationStatus::Active => "active",
            RegistrationStatus::Revoked => "revoked",
            RegistrationStatus::PassportReportedLost => "passport-reported-lost",
            RegistrationStatus::ChangedToResident => "changed-to-resident",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
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
    /// The database was sealed with another key (a replaced `outbox.key_file`).
    #[error(
        "the registry database was sealed with another key: remove it (it is rebuilt from \
         central's feed and registry.import) or restore the key"
    )]
    WrongKey,
    #[error("registry sealing: {0}")]
    Seal(#[from] SealError),
    /// A synced page was refused because of one change (named by its feed `seq`); nothing
    /// of the page was applied.
    #[error("registry sync: change {seq} refused: {problem}")]
    RefusedChange { seq: u64, problem: String },
    /// A synced page was refused as a whole (its cursor or order); nothing was applied.
    #[error("registry sync: page refused: {0}")]
    RefusedPage(String),
}

impl RegistryError {
    /// The data offered was refused (as opposed to the database failing).
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            RegistryError::RefusedChange { .. } | RegistryError::RefusedPage(_)
        )
    }
}

/// The SQLite store. Identifying values are sealed and rows found by keyed lookup tags
/// ([`seal`]); the key is not in the database.
pub struct RegistryStore {
    conn: Mutex<Connection>,
    key: RegistryKey,
}

/// Version 3 seals the registry at rest (version 2 added the sync state, version 1 was
/// the first); older databases are migrated in place when opened.
const SCHEMA_VERSION: i32 = 3;

/// Lookup tags (HMAC-SHA256) instead of passport, card and holder values; everything
/// that names a person in `sealed` (AES-256-GCM, bound to the row's passport tag).
const SCHEMA: &str = "
CREATE TABLE registration (
    passport_tag     BLOB NOT NULL PRIMARY KEY,
    holder_tag       BLOB NOT NULL,
    card_tag         BLOB NOT NULL UNIQUE,
    card_issued      TEXT NOT NULL,
    card_valid_until TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN
                        ('active', 'revoked', 'passport-reported-lost', 'changed-to-resident')),
    records_on_card  INTEGER NOT NULL DEFAULT 0 CHECK (records_on_card BETWEEN 0 AND 15),
    sealed           BLOB NOT NULL
);
CREATE INDEX registration_holder ON registration (holder_tag);
CREATE TABLE enrolled_finger (
    passport_tag BLOB NOT NULL REFERENCES registration (passport_tag) ON DELETE CASCADE,
    position     INTEGER NOT NULL CHECK (position BETWEEN 1 AND 10),
    template     BLOB NOT NULL,
    PRIMARY KEY (passport_tag, position)
);
CREATE TABLE pending_revocation (
    passport_tag BLOB NOT NULL PRIMARY KEY,
    status       TEXT NOT NULL CHECK (status IN
                    ('revoked', 'passport-reported-lost', 'changed-to-resident'))
);
CREATE TABLE registry_key (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    key_check BLOB NOT NULL
);
";

/// Where the central link's feeds stand (one row), since version 2.
const SYNC_STATE_SCHEMA: &str = "
CREATE TABLE sync_state (
    id                   INTEGER PRIMARY KEY CHECK (id = 1),
    registry_cursor      INTEGER NOT NULL DEFAULT 0 CHECK (registry_cursor >= 0),
    revocation_cursor    INTEGER NOT NULL DEFAULT 0 CHECK (revocation_cursor >= 0),
    last_registry_sync   INTEGER,
    last_revocation_sync INTEGER
);
INSERT INTO sync_state (id) VALUES (1);
";

/// The identifying part of a registration, sealed in `registration.sealed`.
#[derive(Serialize, Deserialize)]
struct Identity {
    passport_number: String,
    nationality: String,
    holder_key: String,
    card_number: String,
    ed_card: Option<EdCard>,
}

fn registration_context(passport_tag: &[u8]) -> Vec<u8> {
    [b"torii registration v3\0".as_slice(), passport_tag].concat()
}

fn finger_context(passport_tag: &[u8], position: u32) -> Vec<u8> {
    [
        b"torii finger v3\0".as_slice(),
        passport_tag,
        &position.to_be_bytes(),
    ]
    .concat()
}

impl RegistryStore {
    /// Opens (creating or migrating) the registry at `path`, sealed with `key`. A
    /// database sealed with another key is refused ([`RegistryError::WrongKey`]).
    pub fn open(path: &Path, key: RegistryKey) -> Result<Self, RegistryError> {
        Self::init(Connection::open(path)?, key)
    }

    /// A registry that lives as long as the process (tests, benchmarks).
    pub fn open_in_memory() -> Result<Self, RegistryError> {
        Self::init(Connection::open_in_memory()?, RegistryKey::random())
    }

    fn init(mut conn: Connection, key: RegistryKey) -> Result<Self, RegistryError> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        // Erased registrations are overwritten, not just unlinked.
        conn.pragma_update(None, "secure_delete", true)?;
        let version: i32 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
        match version {
            0 => conn.execute_batch(&format!(
                "BEGIN; {SCHEMA} {SYNC_STATE_SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
            ))?,
            1 | 2 => legacy::migrate(&mut conn, &key, version)?,
            SCHEMA_VERSION => {}
            _ => {
                return Err(RegistryError::Import(format!(
                    "registry schema version {version} is newer than {SCHEMA_VERSION}: \
                     upgrade toriid or remove the database"
                )));
            }
        }
        let stored: Option<Vec<u8>> = conn
            .query_row(
                "SELECT key_check FROM registry_key WHERE id = 1",
                [],
                |row| row.get(0),
            )
            .optional()?;
        match stored {
            Some(check) if !key.verifies(&check) => return Err(RegistryError::WrongKey),
            Some(_) => {}
            None => {
                conn.execute(
                    "INSERT INTO registry_key (id, key_check) VALUES (1, ?1)",
                    params![key.key_check()?],
                )?;
            }
        }
        Ok(RegistryStore {
            conn: Mutex::new(conn),
            key,
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
            replace_registration(&tx, &self.key, r)?;
        }
        tx.commit()?;
        Ok(registrations.len())
    }

    /// Deregistration: the registration, its fingerprints and its ED card are erased
    /// (§11), and overwritten in the database files.
    pub fn erase(&self, passport_number: &str, nationality: &str) -> Result<bool, RegistryError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let tag = self.key.passport_tag(passport_number, nationality);
        let erased = erase_registration(&tx, &tag)?;
        sync::forget_pending_revocation(&tx, &tag)?;
        tx.commit()?;
        if erased {
            truncate_wal(&conn);
        }
        Ok(erased)
    }

    pub fn lookup(
        &self,
        passport_number: &str,
        nationality: &str,
    ) -> Result<Option<Registration>, RegistryError> {
        let conn = self.conn();
        let tag = self.key.passport_tag(passport_number, nationality);
        read_where(&conn, &self.key, "passport_tag = ?1", params![tag]).map(|mut found| found.pop())
    }

    /// Registrations of the same person under another passport (a renewed passport).
    pub fn lookup_holder(&self, holder_key: &str) -> Result<Vec<Registration>, RegistryError> {
        let conn = self.conn();
        let tag = self.key.tag(TagOf::Holder, &[holder_key]);
        read_where(&conn, &self.key, "holder_tag = ?1", params![tag])
    }

    /// One more landing record on the card's back; returns the new count.
    pub fn record_landing(&self, card_number: &str) -> Result<u8, RegistryError> {
        let conn = self.conn();
        let tag = self.key.tag(TagOf::Card, &[card_number]);
        conn.execute(
            "UPDATE registration SET records_on_card = min(records_on_card + 1, 15) WHERE card_tag = ?1",
            params![tag],
        )?;
        conn.query_row(
            "SELECT records_on_card FROM registration WHERE card_tag = ?1",
            params![tag],
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

impl RegistryKey {
    fn passport_tag(&self, passport_number: &str, nationality: &str) -> Vec<u8> {
        self.tag(TagOf::Passport, &[nationality, passport_number])
    }
}

fn parse_date(text: &str) -> Result<Date, RegistryError> {
    Date::parse(
        text,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .map_err(|_| RegistryError::Corrupt("date"))
}

/// The registrations whose row matches `condition`, opened.
fn read_where(
    conn: &Connection,
    key: &RegistryKey,
    condition: &str,
    args: impl rusqlite::Params,
) -> Result<Vec<Registration>, RegistryError> {
    let sql = format!(
        "SELECT passport_tag, card_issued, card_valid_until, status, records_on_card, sealed
         FROM registration WHERE {condition}"
    );
    let mut statement = conn.prepare(&sql)?;
    let rows = statement.query_map(args, |row| {
        Ok((
            row.get::<_, Vec<u8>>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, String>(2)?,
            row.get::<_, String>(3)?,
            row.get::<_, u8>(4)?,
            row.get::<_, Vec<u8>>(5)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (tag, issued, valid_until, status, records, sealed) = row?;
        let plain = Zeroizing::new(
            key.open(&registration_context(&tag), &sealed)
                .map_err(|_| RegistryError::Corrupt("sealed registration does not open"))?,
        );
        let identity: Identity = serde_json::from_slice(&plain)
            .map_err(|_| RegistryError::Corrupt("sealed registration"))?;
        let mut fingers = Vec::new();
        let mut statement = conn.prepare(
            "SELECT position, template FROM enrolled_finger WHERE passport_tag = ?1 ORDER BY position",
        )?;
        let found = statement.query_map(params![tag], |row| {
            Ok((row.get::<_, u32>(0)?, row.get::<_, Vec<u8>>(1)?))
        })?;
        for finger in found {
            let (code, sealed) = finger?;
            let position =
                FingerPosition::from_code(code).ok_or(RegistryError::Corrupt("finger position"))?;
            let template = key
                .open(&finger_context(&tag, code), &sealed)
                .map_err(|_| RegistryError::Corrupt("sealed template does not open"))?;
            fingers.push(EnrolledFinger { position, template });
        }
        out.push(Registration {
            passport_number: identity.passport_number,
            nationality: identity.nationality,
            holder_key: identity.holder_key,
            card_number: identity.card_number,
            card_issued: parse_date(&issued)?,
            card_valid_until: parse_date(&valid_until)?,
            status: RegistrationStatus::parse(&status).ok_or(RegistryError::Corrupt("status"))?,
            records_on_card: records,
            fingers,
            ed_card: identity.ed_card,
        });
    }
    Ok(out)
}

/// Replaces (or adds) one registration with its fingers and ED card.
fn replace_registration(
    conn: &Connection,
    key: &RegistryKey,
    r: &Registration,
) -> Result<(), RegistryError> {
    let tag = key.passport_tag(&r.passport_number, &r.nationality);
    erase_registration(conn, &tag)?;
    let identity = Zeroizing::new(
        serde_json::to_vec(&Identity {
            passport_number: r.passport_number.clone(),
            nationality: r.nationality.clone(),
            holder_key: r.holder_key.clone(),
            card_number: r.card_number.clone(),
            ed_card: r.ed_card.clone(),
        })
        .map_err(|e| RegistryError::Import(e.to_string()))?,
    );
    conn.execute(
        "INSERT INTO registration (passport_tag, holder_tag, card_tag, card_issued,
             card_valid_until, status, records_on_card, sealed)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            tag,
            key.tag(TagOf::Holder, &[&r.holder_key]),
            key.tag(TagOf::Card, &[&r.card_number]),
            r.card_issued.to_string(),
            r.card_valid_until.to_string(),
            r.status.as_str(),
            r.records_on_card,
            key.seal(&registration_context(&tag), &identity)?,
        ],
    )?;
    for finger in &r.fingers {
        let code = finger.position.code();
        conn.execute(
            "INSERT INTO enrolled_finger (passport_tag, position, template) VALUES (?1, ?2, ?3)",
            params![
                tag,
                code,
                key.seal(&finger_context(&tag, code), &finger.template)?
            ],
        )?;
    }
    Ok(())
}

/// Deletes a registration; its fingers go with it (`ON DELETE CASCADE`), its ED card is
/// in its sealed column. Returns whether there was one.
fn erase_registration(conn: &Connection, passport_tag: &[u8]) -> Result<bool, RegistryError> {
    // Explicit as well as cascaded, so a database opened without foreign keys still
    // loses the fingers.
    conn.execute(
        "DELETE FROM enrolled_finger WHERE passport_tag = ?1",
        params![passport_tag],
    )?;
    let n = conn.execute(
        "DELETE FROM registration WHERE passport_tag = ?1",
        params![passport_tag],
    )?;
    Ok(n > 0)
}

/// After an erasure: copies the write-ahead log into the (overwritten) database and
/// empties it, so the erased rows' old pages do not stay in the log. Best effort: a
/// reader holding an old snapshot may keep part of the log until the next checkpoint.
fn truncate_wal(conn: &Connection) {
    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
        tracing::warn!(error = %e, "registry: WAL checkpoint after an erasure failed");
    }
}

/// Databases written before the registry was sealed (schema versions 1 and 2, values in
/// clear): read whole, rewritten sealed in one transaction, then the file is vacuumed so
/// no page keeps the clear values.
mod legacy {
    use super::*;

    pub(super) fn migrate(
        conn: &mut Connection,
        key: &RegistryKey,
        version: i32,
    ) -> Result<(), RegistryError> {
        let tx = conn.transaction()?;
        let registrations = read_v2_registrations(&tx)?;
        let pending: Vec<(String, String, String)> = if version >= 2 {
            let mut statement =
                tx.prepare("SELECT passport_number, nationality, status FROM pending_revocation")?;
            statement
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
                .collect::<Result<_, _>>()?
        } else {
            Vec::new()
        };
        tx.execute_batch(
            "DROP TABLE enrolled_finger; DROP TABLE registration; \
             DROP TABLE IF EXISTS pending_revocation;",
        )?;
        tx.execute_batch(SCHEMA)?;
        if version < 2 {
            tx.execute_batch(SYNC_STATE_SCHEMA)?;
        }
        for registration in &registrations {
            replace_registration(&tx, key, registration)?;
        }
        for (passport_number, nationality, status) in &pending {
            tx.execute(
                "INSERT OR REPLACE INTO pending_revocation (passport_tag, status) VALUES (?1, ?2)",
                params![key.passport_tag(passport_number, nationality), status],
            )?;
        }
        tx.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION};"))?;
        tx.commit()?;
        conn.execute_batch("VACUUM;")?;
        truncate_wal(conn);
        tracing::info!(
            registrations = registrations.len(),
            from_version = version,
            "registry sealed at rest (schema migrated)"
        );
        Ok(())
    }

    fn read_v2_registrations(conn: &Connection) -> Result<Vec<Registration>, RegistryError> {
        let mut statement = conn.prepare(
            "SELECT passport_number, nationality, holder_key, card_number, card_issued,
                    card_valid_until, status, records_on_card, ed_card FROM registration",
        )?;
        type Row = (
            String,
            String,
            String,
            String,
            String,
            String,
            String,
            u8,
            Option<String>,
        );
        let rows: Vec<Row> = statement
            .query_map([], |row| {
                Ok((
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                    row.get(5)?,
                    row.get(6)?,
                    row.get(7)?,
                    row.get(8)?,
                ))
            })?
            .collect::<Result<_, _>>()?;
        let mut out = Vec::with_capacity(rows.len());
        for (passport, nationality, holder, card, issued, valid, status, records, ed) in rows {
            let mut statement = conn.prepare(
                "SELECT position, template FROM enrolled_finger
                 WHERE passport_number = ?1 AND nationality = ?2 ORDER BY position",
            )?;
            let mut fingers = Vec::new();
            for finger in statement.query_map(params![passport, nationality], |row| {
                Ok((row.get::<_, u32>(0)?, row.get::<_, Vec<u8>>(1)?))
            })? {
                let (code, template) = finger?;
                let position = FingerPosition::from_code(code)
                    .ok_or(RegistryError::Corrupt("finger position"))?;
                fingers.push(EnrolledFinger { position, template });
            }
            out.push(Registration {
                card_issued: parse_date(&issued)?,
                card_valid_until: parse_date(&valid)?,
                status: RegistrationStatus::parse(&status)
                    .ok_or(RegistryError::Corrupt("status"))?,
                records_on_card: records,
                ed_card: match ed {
                    Some(json) => Some(
                        serde_json::from_str(&json)
                            .map_err(|_| RegistryError::Corrupt("ed_card"))?,
                    ),
                    None => None,
                },
                passport_number: passport,
                nationality,
                holder_key: holder,
                card_number: card,
                fingers,
            });
        }
        Ok(out)
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
        let store = RegistryStore::open(
            &dir.path().join("registry.db"),
            RegistryKey::derive_from(&[1; 32]),
        )
        .unwrap();
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
        let store = RegistryStore::open(
            &dir.path().join("registry.db"),
            RegistryKey::derive_from(&[1; 32]),
        )
        .unwrap();
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
        travelers: Vec<serde_json::Value>,
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
        let export: Export = serde_json::from_slice(bytes)
            .map_err(|e| ImportError::Format(redact(&e.to_string())))?;
        export
            .travelers
            .iter()
            .enumerate()
            .map(|(index, entry)| parse_entry(entry, index))
            .collect()
    }

    /// Parses one entry of an export (`index` names it in errors; the central link's sync
    /// passes each upsert's `traveler` here).
    pub fn parse_entry(
        value: &serde_json::Value,
        index: usize,
    ) -> Result<Registration, ImportError> {
        let problem = |problem: String| ImportError::Entry {
            entry: index,
            problem,
        };
        let entry = Entry::deserialize(value).map_err(|e| problem(redact(&e.to_string())))?;
        if entry.passport_number.trim().is_empty() {
            return Err(problem("passport_number is empty".into()));
        }
        if entry.card_number.trim().is_empty() {
            return Err(problem("card_number is empty".into()));
        }
        if entry.nationality.len() != 3 {
            return Err(problem("nationality is not an alpha-3 code".into()));
        }
        if entry.records_on_card > 15 {
            return Err(problem("records_on_card exceeds 15".into()));
        }
        let mut fingers = Vec::with_capacity(entry.fingers.len());
        for finger in entry.fingers {
            let template = STANDARD
                .decode(finger.template.as_bytes())
                .map_err(|_| problem(format!("{:?} template is not base64", finger.position)))?;
            if fingers
                .iter()
                .any(|f: &EnrolledFinger| f.position == finger.position)
            {
                return Err(problem(format!("{:?} is enrolled twice", finger.position)));
            }
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
        Ok(Registration {
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
        })
    }

    /// A serde message without the values it quotes (a wrongly typed passport number
    /// would otherwise be repeated in the error): quoted text is kept only where it names
    /// a field (`missing field `surname``).
    fn redact(message: &str) -> String {
        let mut out = String::with_capacity(message.len());
        let mut rest = message;
        while let Some(start) = rest.find(['`', '"']) {
            let quote = rest[start..].chars().next().unwrap_or('"');
            let before = &rest[..start];
            let Some(len) = rest[start + 1..].find(quote) else {
                out.push_str(before);
                out.push('…');
                return out;
            };
            let quoted = &rest[start..start + 1 + len + 1];
            out.push_str(before);
            if before.trim_end().ends_with("field") {
                out.push_str(quoted);
            } else {
                out.push('…');
            }
            rest = &rest[start + 1 + len + 1..];
        }
        out.push_str(rest);
        out
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
        fn entry_errors_never_repeat_a_value() {
            // A passport number of the wrong type: serde would quote it.
            let entry = serde_json::json!({"passport_number": 9876543210u64, "nationality": "GBR",
                "surname": "SECRETNAME", "given_names": "B", "date_of_birth": "1986-04-12",
                "card_number": "C", "card_issued": "2025-05-20", "card_valid_until": "2028-05-19",
                "status": "active", "fingers": []});
            let error = parse_entry(&entry, 4).unwrap_err().to_string();
            assert!(error.contains("entry 4"), "{error}");
            assert!(!error.contains("9876543210"), "{error}");
            let entry = serde_json::json!({"passport_number": "X", "nationality": "GBR",
                "given_names": "B", "date_of_birth": "1986-04-12", "card_number": "C",
                "card_issued": "2025-05-20", "card_valid_until": "2028-05-19", "status": "SECRET", "fingers": []});
            let error = parse_entry(&entry, 0).unwrap_err().to_string();
            assert!(!error.contains("SECRET"), "{error}");
            let missing = serde_json::json!({"passport_number": "X"});
            let error = parse_entry(&missing, 0).unwrap_err().to_string();
            assert!(error.contains("missing field `nationality`"), "{error}");
            assert_eq!(
                redact(r#"invalid type: string "A<<B", expected u8"#),
                "invalid type: string …, expected u8"
            );
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
