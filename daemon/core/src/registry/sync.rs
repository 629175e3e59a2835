//! Applying central immigration's registry and revocation feeds to the store.
//!
//! Each feed is a cursor: a page of changes is applied in one SQLite transaction together
//! with the feed's new cursor (and, when the page caught the feed up, the time of that
//! success), so a crash or a refused page never leaves the registry ahead of or behind
//! its cursor. The networking lives in torii-link; this is only the storage side.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{OptionalExtension, Transaction, params};

use super::{
    RegistrationStatus, RegistryError, RegistryStore, TagOf, erase_registration, import,
    replace_registration, truncate_wal,
};

/// Where the feeds stand, as stored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncState {
    /// Ask the registry feed with `after=registry_cursor` next (0: from the beginning).
    pub registry_cursor: u64,
    pub revocation_cursor: u64,
    /// When the registry feed was last caught up (a page with nothing more after it).
    pub last_registry_sync: Option<SystemTime>,
    pub last_revocation_sync: Option<SystemTime>,
}

/// One change of the registry feed.
#[derive(Clone, Copy, Debug)]
pub enum SyncChange<'a> {
    /// A registration, new or changed: one entry of the registry export
    /// ([`import::parse_entry`]).
    Upsert {
        seq: u64,
        entry: &'a serde_json::Value,
    },
    /// A deregistration: the registration, its fingers and its ED card are erased.
    Erase {
        seq: u64,
        passport_number: &'a str,
        nationality: &'a str,
    },
}

impl SyncChange<'_> {
    pub fn seq(&self) -> u64 {
        match self {
            SyncChange::Upsert { seq, .. } | SyncChange::Erase { seq, .. } => *seq,
        }
    }
}

/// One entry of the revocation feed: the registration's new status, one of `revoked`,
/// `passport-reported-lost`, `changed-to-resident`.
#[derive(Clone, Copy, Debug)]
pub struct SyncRevocation<'a> {
    pub seq: u64,
    pub passport_number: &'a str,
    pub nationality: &'a str,
    pub status: &'a str,
}

/// A page's place in its feed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageBounds {
    /// The cursor the page was asked with; must be the stored cursor.
    pub after: u64,
    /// The cursor to store with the page (the page's `cursor`).
    pub cursor: u64,
    /// `Some(time)` when nothing more waits after this page: stored as the feed's last
    /// successful sync in the same transaction.
    pub caught_up_at: Option<SystemTime>,
}

/// What one registry page did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AppliedChanges {
    pub upserts: usize,
    /// Upserted registrations whose revocation had arrived first (and now applies).
    pub revoked_on_arrival: usize,
    /// Erasures that removed a registration.
    pub erasures: usize,
    /// Erasures of a registration the gate did not hold.
    pub erasures_unknown: usize,
}

/// What one revocation page did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AppliedRevocations {
    /// Registrations whose status was set.
    pub applied: usize,
    /// Revocations of a registration the gate does not hold (counted, not an error):
    /// remembered, and applied if the registration arrives later (the two feeds are not
    /// ordered with each other).
    pub unknown: usize,
}

#[derive(Clone, Copy)]
enum Feed {
    Registry,
    Revocations,
}

impl Feed {
    fn cursor_column(self) -> &'static str {
        match self {
            Feed::Registry => "registry_cursor",
            Feed::Revocations => "revocation_cursor",
        }
    }
    fn time_column(self) -> &'static str {
        match self {
            Feed::Registry => "last_registry_sync",
            Feed::Revocations => "last_revocation_sync",
        }
    }
}

impl RegistryStore {
    /// The feeds' cursors and last successful syncs.
    pub fn sync_state(&self) -> Result<SyncState, RegistryError> {
        let conn = self.conn();
        conn.query_row(
            "SELECT registry_cursor, revocation_cursor, last_registry_sync, last_revocation_sync
             FROM sync_state WHERE id = 1",
            [],
            |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, Option<i64>>(2)?,
                    row.get::<_, Option<i64>>(3)?,
                ))
            },
        )
        .optional()?
        .map(|(registry, revocation, last_registry, last_revocation)| {
            Ok(SyncState {
                registry_cursor: u64::try_from(registry)
                    .map_err(|_| RegistryError::Corrupt("sync cursor"))?,
                revocation_cursor: u64::try_from(revocation)
                    .map_err(|_| RegistryError::Corrupt("sync cursor"))?,
                last_registry_sync: last_registry.map(from_millis),
                last_revocation_sync: last_revocation.map(from_millis),
            })
        })
        .unwrap_or(Err(RegistryError::Corrupt("sync state row missing")))
    }

    /// Applies one page of the registry feed, all or nothing, with its cursor.
    ///
    /// Upserts are parsed with [`import::parse_entry`]; a registration that keeps its card
    /// keeps the larger count of landing records printed on it (the gate prints them, the
    /// feed may lag). Erasures remove the registration with its fingers and ED card, and
    /// the database files are then rid of them. Any bad change refuses the whole page
    /// ([`RegistryError::RefusedChange`], naming the change's `seq`), and the cursor stays.
    pub fn apply_changes(
        &self,
        bounds: PageBounds,
        changes: &[SyncChange<'_>],
    ) -> Result<AppliedChanges, RegistryError> {
        check_order(bounds, changes.iter().map(SyncChange::seq))?;
        // Parse everything before touching the database.
        let mut parsed = Vec::with_capacity(changes.len());
        for change in changes {
            parsed.push(match *change {
                SyncChange::Upsert { seq, entry } => {
                    let registration = import::parse_entry(entry, 0).map_err(|e| match e {
                        import::ImportError::Entry { problem, .. } => {
                            RegistryError::RefusedChange { seq, problem }
                        }
                        import::ImportError::Format(problem) => {
                            RegistryError::RefusedChange { seq, problem }
                        }
                    })?;
                    Parsed::Upsert(seq, Box::new(registration))
                }
                SyncChange::Erase {
                    seq,
                    passport_number,
                    nationality,
                } => {
                    if passport_number.is_empty() || nationality.len() != 3 {
                        return Err(RegistryError::RefusedChange {
                            seq,
                            problem: "erasure without a passport number and alpha-3 nationality"
                                .into(),
                        });
                    }
                    Parsed::Erase(passport_number, nationality)
                }
            });
        }
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        check_stored_cursor(&tx, Feed::Registry, bounds.after)?;
        let mut applied = AppliedChanges::default();
        for change in parsed {
            match change {
                Parsed::Upsert(seq, mut registration) => {
                    let tag = self
                        .key
                        .passport_tag(&registration.passport_number, &registration.nationality);
                    let card_tag = self.key.tag(TagOf::Card, &[&registration.card_number]);
                    let printed: Option<u8> = tx
                        .query_row(
                            "SELECT records_on_card FROM registration
                             WHERE passport_tag = ?1 AND card_tag = ?2",
                            params![tag, card_tag],
                            |row| row.get(0),
                        )
                        .optional()?;
                    if let Some(printed) = printed {
                        registration.records_on_card = registration.records_on_card.max(printed);
                    }
                    let pending: Option<String> = tx
                        .query_row(
                            "SELECT status FROM pending_revocation WHERE passport_tag = ?1",
                            params![tag],
                            |row| row.get(0),
                        )
                        .optional()?;
                    if let Some(status) = pending {
                        registration.status = RegistrationStatus::parse(&status)
                            .ok_or(RegistryError::Corrupt("pending revocation status"))?;
                        forget_pending_revocation(&tx, &tag)?;
                        applied.revoked_on_arrival += 1;
                    }
                    replace_registration(&tx, &self.key, &registration)
                        .map_err(|e| constraint_refusal(seq, e))?;
                    applied.upserts += 1;
                }
                Parsed::Erase(passport_number, nationality) => {
                    let tag = self.key.passport_tag(passport_number, nationality);
                    forget_pending_revocation(&tx, &tag)?;
                    if erase_registration(&tx, &tag)? {
                        applied.erasures += 1;
                    } else {
                        applied.erasures_unknown += 1;
                    }
                }
            }
        }
        store_cursor(&tx, Feed::Registry, bounds)?;
        tx.commit()?;
        if applied.erasures > 0 {
            truncate_wal(&conn);
        }
        Ok(applied)
    }

    /// Applies one page of the revocation feed, all or nothing, with its cursor. A
    /// revocation of a registration the gate does not hold is counted, not refused; an
    /// unknown status refuses the page.
    pub fn apply_revocations(
        &self,
        bounds: PageBounds,
        revocations: &[SyncRevocation<'_>],
    ) -> Result<AppliedRevocations, RegistryError> {
        check_order(bounds, revocations.iter().map(|r| r.seq))?;
        let mut statuses = Vec::with_capacity(revocations.len());
        for revocation in revocations {
            match RegistrationStatus::parse(revocation.status) {
                Some(RegistrationStatus::Active) | None => {
                    return Err(RegistryError::RefusedChange {
                        seq: revocation.seq,
                        problem: "status is not one of revoked, passport-reported-lost, changed-to-resident".into(),
                    });
                }
                Some(status) => statuses.push(status),
            }
        }
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        check_stored_cursor(&tx, Feed::Revocations, bounds.after)?;
        let mut applied = AppliedRevocations::default();
        for (revocation, status) in revocations.iter().zip(statuses) {
            let tag = self
                .key
                .passport_tag(revocation.passport_number, revocation.nationality);
            let n = tx.execute(
                "UPDATE registration SET status = ?2 WHERE passport_tag = ?1",
                params![tag, status.as_str()],
            )?;
            if n > 0 {
                applied.applied += 1;
            } else {
                tx.execute(
                    "INSERT OR REPLACE INTO pending_revocation (passport_tag, status) VALUES (?1, ?2)",
                    params![tag, status.as_str()],
                )?;
                applied.unknown += 1;
            }
        }
        store_cursor(&tx, Feed::Revocations, bounds)?;
        tx.commit()?;
        Ok(applied)
    }
}

pub(super) fn forget_pending_revocation(
    conn: &rusqlite::Connection,
    passport_tag: &[u8],
) -> Result<(), RegistryError> {
    conn.execute(
        "DELETE FROM pending_revocation WHERE passport_tag = ?1",
        params![passport_tag],
    )?;
    Ok(())
}

enum Parsed<'a> {
    Upsert(u64, Box<super::Registration>),
    Erase(&'a str, &'a str),
}

/// Seqs strictly increasing, above `after`, not beyond the page's cursor; the cursor not
/// going back.
fn check_order(bounds: PageBounds, seqs: impl Iterator<Item = u64>) -> Result<(), RegistryError> {
    if bounds.cursor < bounds.after {
        return Err(RegistryError::RefusedPage(format!(
            "cursor {} is behind the cursor {} it was asked after",
            bounds.cursor, bounds.after
        )));
    }
    if i64::try_from(bounds.cursor).is_err() {
        return Err(RegistryError::RefusedPage(format!(
            "cursor {} is out of range",
            bounds.cursor
        )));
    }
    let mut previous = bounds.after;
    for seq in seqs {
        if seq <= previous {
            return Err(RegistryError::RefusedChange {
                seq,
                problem: format!("out of order (not above {previous})"),
            });
        }
        if seq > bounds.cursor {
            return Err(RegistryError::RefusedChange {
                seq,
                problem: format!("beyond the page's cursor {}", bounds.cursor),
            });
        }
        previous = seq;
    }
    Ok(())
}

fn check_stored_cursor(tx: &Transaction<'_>, feed: Feed, after: u64) -> Result<(), RegistryError> {
    let stored: i64 = tx.query_row(
        &format!(
            "SELECT {} FROM sync_state WHERE id = 1",
            feed.cursor_column()
        ),
        [],
        |row| row.get(0),
    )?;
    if u64::try_from(stored).ok() != Some(after) {
        return Err(RegistryError::RefusedPage(format!(
            "asked after cursor {after}, but the stored cursor is {stored}"
        )));
    }
    Ok(())
}

fn store_cursor(tx: &Transaction<'_>, feed: Feed, bounds: PageBounds) -> Result<(), RegistryError> {
    let cursor = i64::try_from(bounds.cursor).map_err(|_| RegistryError::Corrupt("cursor"))?;
    tx.execute(
        &format!(
            "UPDATE sync_state SET {} = ?1 WHERE id = 1",
            feed.cursor_column()
        ),
        params![cursor],
    )?;
    if let Some(at) = bounds.caught_up_at {
        tx.execute(
            &format!(
                "UPDATE sync_state SET {} = ?1 WHERE id = 1",
                feed.time_column()
            ),
            params![to_millis(at)],
        )?;
    }
    Ok(())
}

/// A constraint the change broke (e.g. a card number held by another registration)
/// refuses the page; SQLite's message names the constraint, not the value.
fn constraint_refusal(seq: u64, error: RegistryError) -> RegistryError {
    match error {
        RegistryError::Sqlite(rusqlite::Error::SqliteFailure(code, message))
            if code.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            RegistryError::RefusedChange {
                seq,
                problem: message.unwrap_or_else(|| "violates a registry constraint".into()),
            }
        }
        other => other,
    }
}

fn to_millis(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

fn from_millis(millis: i64) -> SystemTime {
    if millis >= 0 {
        UNIX_EPOCH + Duration::from_millis(millis.unsigned_abs())
    } else {
        UNIX_EPOCH - Duration::from_millis(millis.unsigned_abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::RegistryKey;
    use crate::registry::tests::alice;
    use rusqlite::Connection;
    use serde_json::json;

    fn entry(passport: &str, card: &str) -> serde_json::Value {
        json!({"passport_number": passport, "nationality": "GBR", "surname": "TESTWOOD",
            "given_names": "ALICE SAMPLE", "date_of_birth": "1986-04-12", "card_number": card,
            "card_issued": "2025-05-20", "card_valid_until": "2028-05-19", "status": "active",
            "records_on_card": 0,
            "fingers": [{"position": "right-index", "template": "RklOR0VSLVRFTVBMQVRFLU1BUktFUg=="}],
            "ed_card": {"flight": "NH212", "address_in_japan": "ADDRESS-MARKER-1-2-3", "purpose": "tourism",
                "length_of_stay_days": 10}})
    }

    fn bounds(after: u64, cursor: u64) -> PageBounds {
        PageBounds {
            after,
            cursor,
            caught_up_at: None,
        }
    }

    #[test]
    fn a_fresh_store_starts_both_feeds_at_zero_never_synced() {
        let store = RegistryStore::open_in_memory().unwrap();
        assert_eq!(store.sync_state().unwrap(), SyncState::default());
    }

    #[test]
    fn a_page_is_applied_with_its_cursor_and_success_time() {
        let store = RegistryStore::open_in_memory().unwrap();
        let a = entry("P1", "C1");
        let b = entry("P2", "C2");
        let at = UNIX_EPOCH + Duration::from_millis(1_777_000_000_123);
        let applied = store
            .apply_changes(
                PageBounds {
                    after: 0,
                    cursor: 5,
                    caught_up_at: Some(at),
                },
                &[
                    SyncChange::Upsert { seq: 2, entry: &a },
                    SyncChange::Upsert { seq: 5, entry: &b },
                ],
            )
            .unwrap();
        assert_eq!(applied.upserts, 2);
        assert_eq!(store.count().unwrap(), 2);
        let state = store.sync_state().unwrap();
        assert_eq!(state.registry_cursor, 5);
        assert_eq!(state.last_registry_sync, Some(at));
        assert_eq!(state.revocation_cursor, 0);
        assert_eq!(state.last_revocation_sync, None);
        let alice = store.lookup("P1", "GBR").unwrap().unwrap();
        assert_eq!(alice.fingers.len(), 1);
        assert!(alice.ed_card.is_some());
    }

    #[test]
    fn a_garbage_change_refuses_the_whole_page_and_the_cursor_stays() {
        let store = RegistryStore::open_in_memory().unwrap();
        let good = entry("P1", "C1");
        let mut bad = entry("SECRETPASSPORT", "C2");
        bad["card_issued"] = json!("not a date");
        let error = store
            .apply_changes(
                bounds(0, 9),
                &[
                    SyncChange::Upsert {
                        seq: 3,
                        entry: &good,
                    },
                    SyncChange::Upsert {
                        seq: 9,
                        entry: &bad,
                    },
                ],
            )
            .unwrap_err();
        assert!(error.is_refusal());
        let text = error.to_string();
        assert!(text.contains("change 9"), "{text}");
        assert!(
            !text.contains("SECRETPASSPORT") && !text.contains("TESTWOOD"),
            "{text}"
        );
        assert_eq!(store.count().unwrap(), 0);
        assert_eq!(store.sync_state().unwrap().registry_cursor, 0);
    }

    #[test]
    fn a_constraint_broken_mid_page_rolls_the_page_back() {
        let store = RegistryStore::open_in_memory().unwrap();
        let a = entry("P1", "SAMECARD");
        let b = entry("P2", "SAMECARD");
        let error = store
            .apply_changes(
                bounds(0, 2),
                &[
                    SyncChange::Upsert { seq: 1, entry: &a },
                    SyncChange::Upsert { seq: 2, entry: &b },
                ],
            )
            .unwrap_err();
        assert!(
            matches!(error, RegistryError::RefusedChange { seq: 2, .. }),
            "{error}"
        );
        assert!(!error.to_string().contains("SAMECARD"));
        assert_eq!(store.count().unwrap(), 0);
        assert_eq!(store.sync_state().unwrap().registry_cursor, 0);
    }

    #[test]
    fn pages_out_of_order_or_behind_the_stored_cursor_are_refused() {
        let store = RegistryStore::open_in_memory().unwrap();
        let a = entry("P1", "C1");
        store
            .apply_changes(bounds(0, 4), &[SyncChange::Upsert { seq: 4, entry: &a }])
            .unwrap();
        // Asked with a stale cursor.
        let error = store.apply_changes(bounds(0, 6), &[]).unwrap_err();
        assert!(matches!(error, RegistryError::RefusedPage(_)), "{error}");
        // Seqs not increasing, or at/below `after`, or past the cursor.
        for seqs in [[6, 5], [4, 6], [5, 9]] {
            let changes: Vec<_> = seqs
                .iter()
                .map(|&seq| SyncChange::Erase {
                    seq,
                    passport_number: "P1",
                    nationality: "GBR",
                })
                .collect();
            assert!(store.apply_changes(bounds(4, 8), &changes).is_err());
        }
        // A cursor going back.
        assert!(store.apply_changes(bounds(4, 3), &[]).is_err());
        assert_eq!(store.sync_state().unwrap().registry_cursor, 4);
        assert_eq!(store.count().unwrap(), 1);
        // An empty page that only moves the cursor is fine.
        store.apply_changes(bounds(4, 7), &[]).unwrap();
        assert_eq!(store.sync_state().unwrap().registry_cursor, 7);
    }

    fn raw_files(dir: &std::path::Path) -> Vec<u8> {
        let mut bytes = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            bytes.extend(std::fs::read(entry.unwrap().path()).unwrap());
        }
        bytes
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn an_erasure_leaves_nothing_of_the_person_behind() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            RegistryStore::open(&dir.path().join("registry.db"), RegistryKey::random()).unwrap();
        let a = entry("ERASEDPASSPORT1", "ERASEDCARD0001");
        let b = entry("KEPTPASSPORT2", "KEPTCARD0002");
        store
            .apply_changes(
                bounds(0, 2),
                &[
                    SyncChange::Upsert { seq: 1, entry: &a },
                    SyncChange::Upsert { seq: 2, entry: &b },
                ],
            )
            .unwrap();
        // Sealed at rest: the files never held the numbers in clear.
        let before = raw_files(dir.path());
        assert!(!contains(&before, b"ERASEDPASSPORT1"));
        assert!(!contains(&before, b"ERASEDCARD0001"));
        let passport_tag = store.key.passport_tag("ERASEDPASSPORT1", "GBR");
        let card_tag = store.key.tag(TagOf::Card, &["ERASEDCARD0001"]);
        assert!(contains(&before, &passport_tag) && contains(&before, &card_tag));

        let applied = store
            .apply_changes(
                bounds(2, 4),
                &[
                    SyncChange::Erase {
                        seq: 3,
                        passport_number: "ERASEDPASSPORT1",
                        nationality: "GBR",
                    },
                    SyncChange::Erase {
                        seq: 4,
                        passport_number: "NEVERHELD",
                        nationality: "GBR",
                    },
                ],
            )
            .unwrap();
        assert_eq!(
            applied,
            AppliedChanges {
                upserts: 0,
                revoked_on_arrival: 0,
                erasures: 1,
                erasures_unknown: 1
            }
        );
        assert_eq!(store.lookup("ERASEDPASSPORT1", "GBR").unwrap(), None);
        {
            let conn = store.conn();
            let by_card: i64 = conn
                .query_row(
                    "SELECT count(*) FROM registration WHERE card_tag = ?1",
                    [&card_tag],
                    |row| row.get(0),
                )
                .unwrap();
            let fingers: i64 = conn
                .query_row(
                    "SELECT count(*) FROM enrolled_finger WHERE passport_tag = ?1",
                    [&passport_tag],
                    |row| row.get(0),
                )
                .unwrap();
            assert_eq!((by_card, fingers), (0, 0));
        }
        // The other registration (fingers, ED card) is untouched.
        let kept = store.lookup("KEPTPASSPORT2", "GBR").unwrap().unwrap();
        assert_eq!(kept.fingers.len(), 1);
        assert!(kept.ed_card.is_some());
        // Nor does anything of the erased registration remain in the files, not even
        // its lookup tags.
        let after = raw_files(dir.path());
        assert!(!contains(&after, &passport_tag));
        assert!(!contains(&after, &card_tag));
        assert!(contains(
            &after,
            &store.key.tag(TagOf::Card, &["KEPTCARD0002"])
        ));
    }

    #[test]
    fn revocations_set_the_status_and_unknown_passports_are_counted() {
        let store = RegistryStore::open_in_memory().unwrap();
        store.upsert_all(&[alice()]).unwrap();
        let applied = store
            .apply_revocations(
                PageBounds {
                    after: 0,
                    cursor: 2,
                    caught_up_at: Some(UNIX_EPOCH + Duration::from_secs(10)),
                },
                &[
                    SyncRevocation {
                        seq: 1,
                        passport_number: "TW1000017",
                        nationality: "GBR",
                        status: "passport-reported-lost",
                    },
                    SyncRevocation {
                        seq: 2,
                        passport_number: "UNKNOWN",
                        nationality: "FRA",
                        status: "revoked",
                    },
                ],
            )
            .unwrap();
        assert_eq!(
            applied,
            AppliedRevocations {
                applied: 1,
                unknown: 1
            }
        );
        assert_eq!(
            store.lookup("TW1000017", "GBR").unwrap().unwrap().status,
            RegistrationStatus::PassportReportedLost
        );
        let state = store.sync_state().unwrap();
        assert_eq!(state.revocation_cursor, 2);
        assert_eq!(
            state.last_revocation_sync,
            Some(UNIX_EPOCH + Duration::from_secs(10))
        );
        assert_eq!(state.registry_cursor, 0);
        // An unknown status (or "active") refuses the page.
        for status in ["active", "deported"] {
            let error = store
                .apply_revocations(
                    bounds(2, 3),
                    &[SyncRevocation {
                        seq: 3,
                        passport_number: "TW1000017",
                        nationality: "GBR",
                        status,
                    }],
                )
                .unwrap_err();
            assert!(
                matches!(error, RegistryError::RefusedChange { seq: 3, .. }),
                "{error}"
            );
        }
        assert_eq!(store.sync_state().unwrap().revocation_cursor, 2);
    }

    #[test]
    fn a_revocation_that_arrives_before_its_registration_applies_when_it_arrives() {
        let store = RegistryStore::open_in_memory().unwrap();
        let revoke = |after, seq, passport| {
            store.apply_revocations(
                bounds(after, seq),
                &[SyncRevocation {
                    seq,
                    passport_number: passport,
                    nationality: "GBR",
                    status: "changed-to-resident",
                }],
            )
        };
        assert_eq!(revoke(0, 1, "LATE1").unwrap().unknown, 1);
        assert_eq!(revoke(1, 2, "ERASED2").unwrap().unknown, 1);
        let late = entry("LATE1", "C1");
        let erased = entry("ERASED2", "C2");
        let applied = store
            .apply_changes(
                bounds(0, 3),
                &[
                    SyncChange::Erase {
                        seq: 1,
                        passport_number: "ERASED2",
                        nationality: "GBR",
                    },
                    SyncChange::Upsert {
                        seq: 2,
                        entry: &late,
                    },
                    SyncChange::Upsert {
                        seq: 3,
                        entry: &erased,
                    },
                ],
            )
            .unwrap();
        assert_eq!((applied.upserts, applied.revoked_on_arrival), (2, 1));
        assert_eq!(
            store.lookup("LATE1", "GBR").unwrap().unwrap().status,
            RegistrationStatus::ChangedToResident
        );
        // The erasure forgot the remembered revocation along with the person.
        assert_eq!(
            store.lookup("ERASED2", "GBR").unwrap().unwrap().status,
            RegistrationStatus::Active
        );
        // Applied once: a later upsert (a reinstatement) is central's word.
        store
            .apply_changes(
                bounds(3, 4),
                &[SyncChange::Upsert {
                    seq: 4,
                    entry: &late,
                }],
            )
            .unwrap();
        assert_eq!(
            store.lookup("LATE1", "GBR").unwrap().unwrap().status,
            RegistrationStatus::Active
        );
    }

    #[test]
    fn an_upsert_keeps_the_landings_printed_on_the_same_card() {
        let store = RegistryStore::open_in_memory().unwrap();
        let a = entry("P1", "C1");
        store
            .apply_changes(bounds(0, 1), &[SyncChange::Upsert { seq: 1, entry: &a }])
            .unwrap();
        store.record_landing("C1").unwrap();
        store.record_landing("C1").unwrap();
        store
            .apply_changes(bounds(1, 2), &[SyncChange::Upsert { seq: 2, entry: &a }])
            .unwrap();
        assert_eq!(
            store.lookup("P1", "GBR").unwrap().unwrap().records_on_card,
            2
        );
        // A new card starts from the feed's count.
        let renewed = entry("P1", "C9");
        store
            .apply_changes(
                bounds(2, 3),
                &[SyncChange::Upsert {
                    seq: 3,
                    entry: &renewed,
                }],
            )
            .unwrap();
        assert_eq!(
            store.lookup("P1", "GBR").unwrap().unwrap().records_on_card,
            0
        );
    }

    /// The clear schema of versions 1 and 2 (version 2 added `sync_state` and
    /// `pending_revocation`), as older toriid releases wrote it.
    const CLEAR_V1: &str = "
        CREATE TABLE registration (
            passport_number TEXT NOT NULL, nationality TEXT NOT NULL, holder_key TEXT NOT NULL,
            card_number TEXT NOT NULL UNIQUE, card_issued TEXT NOT NULL,
            card_valid_until TEXT NOT NULL, status TEXT NOT NULL,
            records_on_card INTEGER NOT NULL DEFAULT 0, ed_card TEXT,
            PRIMARY KEY (passport_number, nationality));
        CREATE TABLE enrolled_finger (
            passport_number TEXT NOT NULL, nationality TEXT NOT NULL,
            position INTEGER NOT NULL, template BLOB NOT NULL,
            PRIMARY KEY (passport_number, nationality, position));
        INSERT INTO registration VALUES ('TW1000017', 'GBR', 'holder', 'TTP0000001001',
            '2025-05-20', '2028-05-19', 'active', 3, NULL);
        INSERT INTO enrolled_finger VALUES ('TW1000017', 'GBR', 7, x'0102C0FFEE');";
    const CLEAR_V2_EXTRA: &str = "
        CREATE TABLE sync_state (id INTEGER PRIMARY KEY, registry_cursor INTEGER NOT NULL,
            revocation_cursor INTEGER NOT NULL, last_registry_sync INTEGER,
            last_revocation_sync INTEGER);
        INSERT INTO sync_state VALUES (1, 41, 7, NULL, NULL);
        CREATE TABLE pending_revocation (passport_number TEXT NOT NULL,
            nationality TEXT NOT NULL, status TEXT NOT NULL,
            PRIMARY KEY (passport_number, nationality));
        INSERT INTO pending_revocation VALUES ('LATE000001', 'FRA', 'revoked');";

    #[test]
    fn clear_version_1_and_2_databases_are_sealed_in_place() {
        for version in [1, 2] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("registry.db");
            {
                let conn = Connection::open(&path).unwrap();
                conn.execute_batch(CLEAR_V1).unwrap();
                if version == 2 {
                    conn.execute_batch(CLEAR_V2_EXTRA).unwrap();
                }
                conn.pragma_update(None, "user_version", version).unwrap();
            }
            let key = RegistryKey::derive_from(&[9; 32]);
            let store = RegistryStore::open(&path, key.clone()).unwrap();
            let alice = store.lookup("TW1000017", "GBR").unwrap().unwrap();
            assert_eq!(alice.card_number, "TTP0000001001");
            assert_eq!(alice.fingers[0].template, [1, 2, 0xC0, 0xFF, 0xEE]);
            assert_eq!(store.record_landing("TTP0000001001").unwrap(), 4);
            let state = store.sync_state().unwrap();
            if version == 2 {
                assert_eq!((state.registry_cursor, state.revocation_cursor), (41, 7));
                // The early revocation still waits for its registration.
                let late = entry("LATE000001", "LATECARD0001");
                let mut late = late.clone();
                late["nationality"] = "FRA".into();
                let applied = store
                    .apply_changes(
                        bounds(41, 42),
                        &[SyncChange::Upsert {
                            seq: 42,
                            entry: &late,
                        }],
                    )
                    .unwrap();
                assert_eq!(applied.revoked_on_arrival, 1);
            } else {
                assert_eq!(state, SyncState::default());
            }
            drop(store);
            let files = raw_files(dir.path());
            for clear in [
                &b"TW1000017"[..],
                b"TTP0000001001",
                b"LATE000001",
                b"\x01\x02\xC0\xFF\xEE",
            ] {
                assert!(
                    !contains(&files, clear),
                    "version {version}: a clear value is left"
                );
            }
            assert!(matches!(
                RegistryStore::open(&path, RegistryKey::derive_from(&[8; 32])),
                Err(RegistryError::WrongKey)
            ));
            let store = RegistryStore::open(&path, key).unwrap();
            assert_eq!(store.count().unwrap(), if version == 2 { 2 } else { 1 });
        }
    }
}
